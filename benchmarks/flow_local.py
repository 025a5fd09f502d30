"""Which subject motion v_s makes hmore's local flow carry the limbs' motion (issue 13, item 3).

hmore's world flow (shipped weights, camera compensation on) is computed once per pair; local flow = world - v_s is
then formed with each candidate v_s:

* ``psi``: the subject network Psi (the paper's learned v_s).
* ``median``: the median world flow inside the person's mask (what flow methods without Psi use).
* ``pose``: the pelvis (mid-hip) displacement of the pose track, minus the camera-induced flow there.
* ``torso``: the median world flow over the mask pixels inside the torso (shoulders-hips quadrilateral of the pose).

Scores: ``joint`` (local flow at the joints against each joint's motion relative to the pelvis, the joint-motion
metric of ``hmore bench flow``), on generated held-out clips (exact keypoints) and on real clips (keypoints from
hmore.priors; DAVIS ground-truth masks where present); ``local EPE`` against the exact local flow on generated clips.
Reference rows: ``zero`` (no local motion) and ``dis-median`` (OpenCV DIS minus its in-mask median).

Usage: python benchmarks/flow_local.py [--clips 16] [--pairs 3] [--real ../shared/data/video ../shared/data/davis]
       [--real-pairs 6] [--threads 1]
"""

from __future__ import annotations

import argparse
import os
import time

import cv2
import numpy as np

from hmore.bench import flow_bench
from hmore.metrics import flow as fm

CANDIDATES = ("psi", "median", "pose", "torso")
HIPS, TORSO = (11, 12), (5, 6, 12, 11)  # COCO-17: hips; shoulders and hips around the torso


def candidate_velocities(world: np.ndarray, labels: np.ndarray, psi: np.ndarray, kp_t: np.ndarray | None,
                         kp_t1: np.ndarray | None, camera: np.ndarray, min_conf: float = 0.5) -> dict[str, np.ndarray]:
    """v_s (P, 2) of every candidate for labels 1..P (keypoint row k-1 for label k; median where the pose lacks)."""
    p = psi.shape[0]
    out = {name: np.zeros((p, 2), np.float32) for name in CANDIDATES}
    out["psi"] = psi.astype(np.float32)
    h, w = labels.shape
    for k in range(1, p + 1):
        own = labels == k
        if not own.any():
            continue
        med = np.median(world[own], axis=0)
        out["median"][k - 1] = out["pose"][k - 1] = out["torso"][k - 1] = med
        if kp_t is None or kp_t.shape[0] < k:
            continue
        a, b = kp_t[k - 1], kp_t1[k - 1]
        if (a[list(HIPS), 2] > min_conf).all() and (b[list(HIPS), 2] > min_conf).all():
            pel = a[list(HIPS), :2].mean(0)
            x, y = int(np.clip(round(pel[0]), 0, w - 1)), int(np.clip(round(pel[1]), 0, h - 1))
            out["pose"][k - 1] = (b[list(HIPS), :2].mean(0) - pel) - camera[y, x]
        if (a[list(TORSO), 2] > min_conf).all():
            quad = np.zeros((h, w), np.uint8)
            cv2.fillConvexPoly(quad, np.rint(a[list(TORSO), :2]).astype(np.int32), 1)
            inside = own & (quad > 0)
            if inside.sum() >= 20:
                out["torso"][k - 1] = np.median(world[inside], axis=0)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clips", type=int, default=16, help="generated synth-heldout clips")
    ap.add_argument("--pairs", type=int, default=3, help="pairs per generated clip")
    ap.add_argument("--real", nargs="*", default=["../shared/data/video", "../shared/data/davis"])
    ap.add_argument("--real-pairs", type=int, default=6)
    ap.add_argument("--weights", default=None)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    t0 = time.perf_counter()
    flow_bench.set_threads(args.threads)
    hmore = flow_bench.create_method("hmore_flow_cpu" + (f"={args.weights}" if args.weights else ""))
    dis = flow_bench.create_method("dis")
    sets = {"generated": flow_bench.generated_clips("synth-heldout", clips=args.clips, pairs=args.pairs)}
    for src in args.real:
        for c in flow_bench.real_clips(src, pairs=args.real_pairs):
            sets.setdefault(c.set_name, []).append(c)
    rows = ["zero", "dis-median", *CANDIDATES]
    for set_name, clips in sets.items():
        joint = {r: [] for r in rows}
        lepe = {r: [] for r in rows}
        for clip in clips:
            for t in range(clip.num_pairs):
                m = clip.masks[t]
                if not (m > 0).any() or clip.kp2d is None:
                    continue
                out = hmore(clip.frames[t], clip.frames[t + 1], m)
                cam = np.zeros_like(out.world) if out.camera is None else out.camera
                psi = out.subject_velocity[: int(m.max())]
                vs = candidate_velocities(out.world, m, psi, clip.kp2d[t], clip.kp2d[t + 1], cam)
                locals_ = {r: fm.local_from_world(out.world, m, v) for r, v in vs.items()}
                locals_["zero"] = np.zeros_like(out.world)
                locals_["dis-median"] = fm.local_from_world(dis(clip.frames[t], clip.frames[t + 1]).world, m)
                for r, loc in locals_.items():
                    joint[r].append(fm.joint_local_error(loc, m, clip.kp2d[t], clip.kp2d[t + 1]))
                    if clip.flow is not None:
                        lepe[r].append(fm.local_flow_epe(loc, clip.flow[t], m, clip.subject_velocity[t]))
        n = sum(np.isfinite(joint["zero"]))
        print(f"\n{set_name}: {len(clips)} clips, {n} pairs with scored joints")
        print(f"{'v_s':<12}{'joint px':>10}{'vs zero':>9}{'vs dis-med':>12}{'local EPE':>11}")
        for r in rows:
            j = float(np.nanmean(joint[r])) if n else float("nan")
            z, d = float(np.nanmean(joint["zero"])), float(np.nanmean(joint["dis-median"]))
            le = float(np.nanmean(lepe[r])) if lepe[r] else float("nan")
            print(f"{r:<12}{j:>10.3f}{j / z - 1:>+9.1%}{j / d - 1:>+12.1%}{le:>11.3f}")
    print(f"\n{time.perf_counter() - t0:.0f} s, load average {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
