"""Joint error after retargeting mocap and Human3.6M onto Anny bodies (issue 18, goal <= 20 mm).

Run: ``.venv/bin/python benchmarks/retarget.py [--bodies 5] [--bandai 30] [--h36m 6] [--seconds 10]
[--h36m-fit runs/h36m_fit [--fit-subjects S1,S5,S6,S7,S8] [--fit-every 10]]``.

Sources (``../shared/data``, read-only): the two CMU takes of ``mocap/``, ``--bandai`` Bandai-Namco takes (set 2,
spread over actions and styles by a fixed stride through ``index.json``) and ``--h36m`` Human3.6M test sequences
(S9, S11; 3D joints at 50 fps, taken at 25 fps), each for its first ``--seconds``. Every source is mapped onto H36M-17
and retargeted onto ``--bodies`` Anny people (identities 0.. of the generator: phenotypes from
:func:`hmore.synth.anny_body.sample_phenotype`). The error of a joint is its distance to the source joint once the
source's bones are given the body's lengths (:func:`hmore.synth.retarget.retarget_error`: the motion the body could
perform exactly; a body's proportions differ from the actor's, so raw positions cannot match). Reported: mean over
all 17 joints and over the 15 joints besides the two face points ("nose" and head top, whose definitions differ
between sources: CMU's nose is the tip of the nose, H36M's joint 9 the centre of the head), and the 95th percentile
over all joints and frames, in millimetres.

``--h36m-fit DIR``: the other way onto the rig, fitting by gradient descent (:func:`hmore.mesh.fit.fit_h36m`: one
phenotype per subject and per-frame rotations, against the *true* Human3.6M joints, bone lengths included): fits (or
reads the cache of) every ``--fit-every``-th frame of ``--fit-subjects`` and prints the joint error after fitting.

Bandai files are read here with :mod:`hmore.io.bvh` and gzip (their joint names mapped onto the CMU names that
:func:`hmore.io.bvh.to_h36m` knows); switch to ``hmore.data.bandai`` once that shared reader is merged.
"""

from __future__ import annotations

import argparse
import dataclasses
import gzip
import json
import time

import numpy as np

from hmore.io.bvh import parse_bvh, read_bvh, to_h36m
from hmore.paths import shared_data_dir
from hmore.synth.anny_body import ANNY_ROLES, anny_body, anny_person, h36m_regressor
from hmore.synth.identity import sample_identity
from hmore.synth.retarget import retarget_error, retarget_h36m

# Bandai-Namco joint names -> the CMU MotionBuilder names hmore.io.bvh maps onto H36M.
BANDAI_NAMES = {"UpperLeg": "UpLeg", "LowerLeg": "Leg", "Foot": "Foot", "UpperArm": "Arm", "LowerArm": "ForeArm",
                "Hand": "Hand", "Shoulder": "Shoulder", "Toes": "ToeBase"}
Z_UP_TO_Y_UP = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, -1.0, 0.0]])


def bandai_h36m(path, seconds: float) -> np.ndarray:
    """(T, 17, 3) metres, y up, of a gzipped Bandai-Namco BVH (30 fps, centimetres)."""
    with gzip.open(path, "rt", encoding="utf-8") as f:
        bvh = parse_bvh(f.read(), name=str(path))
    names = []
    for n in bvh.names:
        base, _, side = n.rpartition("_")
        end = n.endswith("_End")
        if not end and side in ("L", "R") and base in BANDAI_NAMES:
            n = ("Left" if side == "L" else "Right") + BANDAI_NAMES[base]
        names.append(n)
    bvh = dataclasses.replace(bvh, names=tuple(names))
    frames = np.arange(min(bvh.num_frames, int(seconds * bvh.fps)))
    positions = bvh.forward_kinematics(scale="cm", frames=frames)
    # the Head's End Site has a zero offset (no head top): detach it, so that to_h36m extends the neck -> head line
    head = bvh.names.index("Head")
    parents = tuple(-1 if p == head and bvh.is_end_site[j] else p for j, p in enumerate(bvh.parents))
    return to_h36m(positions, dataclasses.replace(bvh, parents=parents))


def sources(args: argparse.Namespace) -> list[tuple[str, str, np.ndarray]]:
    """(set, name, joints (T, 17, 3)) of every source take."""
    root = shared_data_dir()
    out = []
    for name in ("cmu_131_01_walk", "cmu_131_02_walk"):
        path = root / "mocap" / f"{name}.bvh"
        if path.is_file():
            bvh = read_bvh(path)
            step = max(1, round(bvh.fps / 30))  # 120 fps -> 30 fps
            frames = np.arange(0, min(bvh.num_frames, int(args.seconds * bvh.fps)), step)
            out.append(("CMU", name, to_h36m(bvh.forward_kinematics(frames=frames), bvh)))
    index = root / "bandai" / "index.json"
    if index.is_file() and args.bandai > 0:
        files = [f for f in json.loads(index.read_text())["files"] if f["set"] == 2]
        stride = max(1, len(files) // args.bandai)
        for f in files[::stride][: args.bandai]:
            out.append(("Bandai", f["file"], bandai_h36m(root / "bandai" / f["file"], args.seconds)))
    poses = root / "h36m" / "poses_3d.npz"
    if poses.is_file() and args.h36m > 0:
        with np.load(poses) as z:
            keys = sorted(k for k in z.files if k.split("/")[0] in ("S9", "S11"))
            for k in keys[:: max(1, len(keys) // args.h36m)][: args.h36m]:
                j = z[k][: int(args.seconds * 50) : 2].astype(np.float64) / 1000.0  # 25 fps, metres, z up
                out.append(("H36M", k, j @ Z_UP_TO_Y_UP.T))
    return out


def fit_table(args: argparse.Namespace) -> None:
    """Fit (or read the cached fits of) Human3.6M subjects and print their joint errors after fitting."""
    from hmore.mesh.fit import FitConfig, fit_h36m, load_fit

    subjects = tuple(s.strip() for s in args.fit_subjects.split(",") if s.strip())
    t0 = time.perf_counter()
    paths = fit_h36m(args.h36m_fit, subjects=subjects, every=args.fit_every, config=FitConfig(steps=args.fit_steps))
    print(f"Human3.6M fitted by the decoder (every {args.fit_every}th frame, {args.fit_steps} Adam steps; "
          f"{time.perf_counter() - t0:.0f} s including cached subjects)")
    print(f"{'subject':8s} {'frames':>7s} {'mean 17 (mm)':>13s} {'mean 15 (mm)':>13s} {'p50 (mm)':>9s} "
          f"{'p95 17 (mm)':>12s} {'nose (mm)':>10s} {'head (mm)':>10s}  phenotype")
    face = [9, 10]
    body_joints = [j for j in range(17) if j not in face]
    errs = []
    for subject, path in paths.items():
        fit = load_fit(path)
        e = 1000.0 * fit["error"]  # (N, 17) mm
        errs.append(e)
        print(f"{subject:8s} {e.shape[0]:7d} {e.mean():13.2f} {e[:, body_joints].mean():13.2f} "
              f"{np.percentile(e, 50):9.2f} {np.percentile(e, 95):12.2f} {e[:, 9].mean():10.2f} {e[:, 10].mean():10.2f}"
              f"  {np.round(fit['phenotype'], 2)}")
    e = np.concatenate(errs)
    print(f"{'all':8s} {e.shape[0]:7d} {e.mean():13.2f} {e[:, body_joints].mean():13.2f} {np.percentile(e, 50):9.2f} "
          f"{np.percentile(e, 95):12.2f} {e[:, 9].mean():10.2f} {e[:, 10].mean():10.2f}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--bodies", type=int, default=5, help="Anny people (identities 0..N-1)")
    p.add_argument("--bandai", type=int, default=30, help="Bandai-Namco takes")
    p.add_argument("--h36m", type=int, default=6, help="Human3.6M test sequences")
    p.add_argument("--seconds", type=float, default=10.0, help="seconds of each take")
    p.add_argument("--h36m-fit", default="", help="fit Human3.6M subjects by the decoder, cached in this folder")
    p.add_argument("--fit-subjects", default="S1,S5,S6,S7,S8", help="subjects of --h36m-fit")
    p.add_argument("--fit-every", type=int, default=10, help="every n-th 50 fps frame of --h36m-fit")
    p.add_argument("--fit-steps", type=int, default=100, help="Adam steps of --h36m-fit")
    args = p.parse_args()
    if args.h36m_fit:
        fit_table(args)
        return
    takes = sources(args)
    if not takes:
        raise SystemExit(f"no source found under {shared_data_dir()}")
    people = [anny_person(sample_identity(i), "normal") for i in range(args.bodies)]
    face = [9, 10]
    body_joints = [j for j in range(17) if j not in face]
    errs: dict[str, list[np.ndarray]] = {}
    t0 = time.perf_counter()
    frames = 0
    for group, _, joints in takes:
        for person in people:
            body = anny_body(person.phenotype, person.outfit)
            reg = h36m_regressor(body)
            pose = retarget_h36m(body, ANNY_ROLES, reg, joints)
            errs.setdefault(group, []).append(retarget_error(body, reg, pose, joints) * 1000.0)  # (T, 17) mm
            frames += joints.shape[0]
    dt = time.perf_counter() - t0
    print(f"{len(takes)} takes x {len(people)} Anny bodies, {frames} frames retargeted in {dt:.1f} s "
          f"({frames / dt:.0f} frames/s)")
    print(f"{'source':8s} {'takes':>5s} {'frames':>7s} {'mean 17 (mm)':>13s} {'mean 15 (mm)':>13s} "
          f"{'p95 17 (mm)':>12s} {'nose (mm)':>10s} {'head (mm)':>10s}")
    for group, e in errs.items():
        e = np.concatenate(e)
        n = sum(1 for g, _, _ in takes if g == group)
        print(f"{group:8s} {n:5d} {e.shape[0]:7d} {e.mean():13.2f} {e[:, body_joints].mean():13.2f} "
              f"{np.percentile(e, 95):12.2f} {e[:, 9].mean():10.2f} {e[:, 10].mean():10.2f}")


if __name__ == "__main__":
    main()
