"""Mesh error on held-out generated Anny people: the mesh head against lifting then retargeting (issue 18 item 3,
goal MPVE <= 80 mm).

Run: ``OMP_NUM_THREADS=1 .venv/bin/python benchmarks/mesh.py [--checkpoint RUN | --weights NAME] [--clips 48]``.

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
from hmore.mesh.task import MeshRunConfig, MeshTask
from hmore.metrics.mesh import mpve
from hmore.metrics.pose3d import mpjpe

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


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    src = p.add_mutually_exclusive_group()
    src.add_argument("--checkpoint", default=None, help="a mesh training run folder or checkpoint")
    src.add_argument("--weights", default="dstformer_mesh_cpu", help="shipped mesh weights")
    p.add_argument("--config", default="configs/mesh_cpu.yaml")
    p.add_argument("--clips", type=int, default=48, help="windows per set")
    args = p.parse_args()
    torch.set_num_threads(1)
    from hmore.lift.pipeline import load_lifter

    cfg = load_config(MeshRunConfig, args.config, overrides=[f"data.eval_clips={args.clips}"])
    task = MeshTask(config=cfg)
    model = load_lifter(checkpoint=args.checkpoint) if args.checkpoint else load_lifter(weights=args.weights)
    lifter = load_lifter(weights="dstformer_cpu")
    dec = task.decoder()
    print(f"{'set':10s} {'method':16s} {'MPVE (mm)':>10s} {'area MPVE':>10s} {'MPJPE (mm)':>11s}")
    for name, s in task.eval_set().items():
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


if __name__ == "__main__":
    main()
