"""Mesh error on held-out generated Anny people: the mesh head against lifting then retargeting (issue 18 item 3,
goal MPVE <= 80 mm).

Run: ``OMP_NUM_THREADS=1 .venv/bin/python benchmarks/mesh.py [--checkpoint RUN | --weights NAME] [--clips 48]
[--h36m 2] [--no-gen]``.

The windows are the ``mesh`` task's evaluation sets (``configs/mesh_cpu.yaml``): 27-frame windows of held-out Anny
people (other identities, seed 1) playing every generator action (``gen``, with MotionBERT's 2D noise; ``gen_clean``
without) and CMU 131_02 (``bvh``), random cameras. Methods:

* ``mesh head``: the model's bone-group rotations and phenotype, decoded by :class:`hmore.mesh.decoder.BodyDecoder`;
* ``lift + retarget``: the shipped lifter ``dstformer_cpu`` gives 3D joints, retargeted onto the average Anny body
  (phenotype 0.5) with :func:`hmore.synth.retarget.retarget_h36m` (a baseline without any mesh training).

Reported (mm, root-aligned as MotionBERT): MPVE over all 13,718 vertices, the same weighted by each vertex's share of
the surface (a third of Anny's vertices are on its face), and MPJPE of the meshes' H36M-17 joints.
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from hmore.config import load_config
from hmore.lift.data import coco_derived_h36m, normalize_2d, resample
from hmore.mesh.task import MeshRunConfig, MeshTask
from hmore.metrics.mesh import mpve
from hmore.metrics.pose3d import mpjpe, p_mpjpe
from hmore.paths import shared_data_dir

FLIP_YZ = np.diag([1.0, -1.0, -1.0])  # camera frame (y down, z forward) <-> a y-up frame (a half turn about x)


def lift_retarget(lifter, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Group rotations (B, F, G, 3, 3) and phenotypes (B, 6) from lifting ``x`` and retargeting onto Anny."""
    from hmore.synth.anny_body import ANNY_ROLES, Phenotype, anny_body, h36m_regressor
    from hmore.synth.retarget import retarget_h36m, rig_groups

    body = anny_body(Phenotype(age=0.67))
    reg = h36m_regressor(body)
    first = [body.bone(g[0]) for g in rig_groups(ANNY_ROLES)]
    with torch.no_grad():
        joints = lifter(x).float().numpy().astype(np.float64)  # (B, F, 17, 3) root-relative camera frame
    rots = []
    for j in joints:
        pose = retarget_h36m(body, ANNY_ROLES, reg, j @ FLIP_YZ)  # y up for the rig's flat feet
        rots.append(FLIP_YZ @ pose.rot[:, first])
    ph = torch.tensor(Phenotype(age=0.67).values(), dtype=torch.float32).expand(len(joints), 6)
    return torch.tensor(np.stack(rots), dtype=torch.float32), ph


def h36m_windows(per_take: int, *, fps: float, length: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Model input (N, length, 17, 3) and root-relative camera-frame targets (N, length, 17, 3), metres, of the
    Human3.6M test sequences (S9, S11) seen by each of their cameras, ``per_take`` evenly spaced windows each."""
    import json

    root = shared_data_dir() / "h36m"
    cams = json.loads((root / "cameras.json").read_text())  # {subject: {camera id: R, T, f, c, resolution}}
    xs, ys = [], []
    with np.load(root / "poses_3d.npz") as z:
        for key in sorted(k for k in z.files if k.split("/")[0] in ("S9", "S11")):
            world = resample(z[key].astype(np.float64) / 1000.0, 50.0, fps)  # (T, 17, 3) metres, world frame
            seen_world = coco_derived_h36m(world)  # what a COCO detector's joints would be, as in training
            starts = np.linspace(0, len(world) - length, per_take).round().astype(int)
            for cam in cams[key.split("/")[0]].values():
                rot, pos = np.asarray(cam["R"]), np.asarray(cam["T"]) / 1000.0
                f, c = np.asarray(cam["f"]), np.asarray(cam["c"])
                w, h = cam["resolution"]
                pc, seen = (world - pos) @ rot.T, (seen_world - pos) @ rot.T  # camera frame: x right, y down
                px = seen[..., :2] / seen[..., 2:] * f + c
                x = np.concatenate([normalize_2d(px, w, h), np.ones(px.shape[:-1] + (1,))], axis=-1)
                y = pc - pc[:, :1]
                for s in starts:
                    xs.append(x[s : s + length])
                    ys.append(y[s : s + length])
    return torch.tensor(np.stack(xs), dtype=torch.float32), torch.tensor(np.stack(ys), dtype=torch.float32)


def h36m_table(model, lifter, dec, *, per_take: int, fps: float, length: int,
               lifter_name: str = "dstformer_cpu") -> None:
    """Print the Human3.6M MPJPE / P-MPJPE of the lifter and of the mesh head's regressed joints."""
    x, y = h36m_windows(per_take, fps=fps, length=length)
    lift = f"lift ({lifter_name})"
    sums = {lift: [0.0, 0.0], "mesh head joints": [0.0, 0.0]}
    for i in range(0, len(x), 8):
        xb, yb = x[i : i + 8], y[i : i + 8]
        with torch.no_grad():
            out = model(xb)
            preds = {lift: lifter(xb).float(),
                     "mesh head joints": dec(out.rot.float(), out.phenotype.float(), "joints").joints}
        for name, pred in preds.items():
            sums[name][0] += len(xb) * float(mpjpe(pred, yb))
            sums[name][1] += len(xb) * float(p_mpjpe(pred, yb))
    n = len(x)
    res = {k: (1000 * a / n, 1000 * b / n) for k, (a, b) in sums.items()}
    (lj, lp), (mj, mp) = res[lift], res["mesh head joints"]
    print(f"\nHuman3.6M S9+S11, {n} windows of {length} frames at {fps:g} fps (input from the true joints):")
    print(f"{'method':22s} {'MPJPE (mm)':>11s} {'P-MPJPE (mm)':>13s}")
    for name, (j, pj) in res.items():
        print(f"{name:28s} {j:11.1f} {pj:13.1f}")
    print(f"{'ratio mesh / lift':22s} {mj / lj:11.2f} {mp / lp:13.2f}   (goal: MPJPE ratio <= 1.2)")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    src = p.add_mutually_exclusive_group()
    src.add_argument("--checkpoint", default=None, help="a mesh training run folder or checkpoint")
    src.add_argument("--weights", default="dstformer_mesh_cpu", help="shipped mesh weights")
    p.add_argument("--config", default="configs/mesh_cpu.yaml")
    p.add_argument("--lifter", default="dstformer_cpu", help="shipped lifter the mesh head is compared with")
    p.add_argument("--clips", type=int, default=48, help="windows per set")
    p.add_argument("--h36m", type=int, default=2, help="Human3.6M windows per sequence and camera (0: skip)")
    p.add_argument("--gen", action=argparse.BooleanOptionalAction, default=True,
                   help="the generated held-out sets (--no-gen: Human3.6M only)")
    args = p.parse_args()
    torch.set_num_threads(1)
    from hmore.lift.pipeline import load_lifter

    cfg = load_config(MeshRunConfig, args.config, overrides=[f"data.eval_clips={args.clips}"])
    task = MeshTask(config=cfg)
    from hmore.models.motion.mesh import MeshRegressor

    model = load_lifter(checkpoint=args.checkpoint, weights=None if args.checkpoint else args.weights,
                        kinds=(MeshRegressor,), what="a mesh regressor")
    lifter = load_lifter(weights=args.lifter)
    dec = task.decoder()
    if args.gen:
        print(f"{'set':10s} {'method':16s} {'MPVE (mm)':>10s} {'area MPVE':>10s} {'MPJPE (mm)':>11s}")
    for name, s in (task.eval_set() if args.gen else {}).items():
        res: dict[str, list[float]] = {"mesh head": [0.0, 0.0, 0.0], "lift + retarget": [0.0, 0.0, 0.0]}
        for i in range(0, len(s["x"]), 4):
            x = s["x"][i : i + 4]
            truth = dec(s["rot"][i : i + 4], s["phenotype"][i : i + 4], "all")
            with torch.no_grad():
                out = model(x)
            for method, (rot, ph) in (("mesh head", (out.rot.float(), out.phenotype.float())),
                                      ("lift + retarget", lift_retarget(lifter, x))):
                d = dec(rot, ph, "all")
                res[method][0] += len(x) * float(mpve(d.vertices, truth.vertices))
                res[method][1] += len(x) * float(mpve(d.vertices, truth.vertices, dec.vertex_area))
                res[method][2] += len(x) * float(mpjpe(d.joints, truth.joints))
        n = len(s["x"])
        for method, (v, va, j) in res.items():
            print(f"{name:10s} {method:16s} {1000 * v / n:10.1f} {1000 * va / n:10.1f} {1000 * j / n:11.1f}")
    if args.h36m > 0:
        h36m_table(model, lifter, dec, per_take=args.h36m, fps=cfg.data.fps, length=cfg.data.clip_len,
                   lifter_name=args.lifter)


if __name__ == "__main__":
    main()
