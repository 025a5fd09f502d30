"""Lifting at the lifter's own frame rate vs the track's, and the shipped lifters side by side, on generated clips with
ground truth and on real videos without it.

For every model of ``--models`` (shipped weights) and each way of running it (``resampled``: ``lift_tracks`` resamples
the track to the rate the lifter was trained at, the default; ``native``: ``model_fps=0``, the track's own frames):

- generated clips (``--generated DIR`` of ``hmore synth`` clips; their 2D is the generator's, hidden joints score 0):
  MPJPE and P-MPJPE in mm over the detected frames, mean over clips;
- real videos (``--videos``; MediaPipe 2D through the priors, as ``hmore lift`` reads a video): no ground truth, so
  the bone-length variation over each person's track (std / mean, averaged over bones and people) and the mean
  joint acceleration (m/s^2, second differences at the video's rate): lower is steadier.

Usage:
  hmore synth --out DIR --clips 6 --frames 90 --seed 77 --identities 2000,2001,2002,2003,2004,2005
  OMP_NUM_THREADS=1 python benchmarks/lift_frame_rate.py --generated DIR --videos V1.mp4 V2.mp4 ...
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np
import torch

from hmore.lift.h36m import bone_length_variation
from hmore.lift.infer import input_fps_of, lift_tracks
from hmore.lift.pipeline import load_lifter, read_tracks
from hmore.metrics.pose3d import mpjpe, p_mpjpe

MODES = {"resampled": None, "native": 0.0}


def _steadiness(res, fps: float) -> tuple[float, float]:
    people = [i for i in range(res.pose3d.shape[0]) if (~res.interpolated[i]).sum() >= 10]
    if not people:
        return float("nan"), float("nan")
    pose = res.pose3d[people]  # (P, T, 17, 3)
    p, t = pose.shape[:2]
    cv = bone_length_variation(pose.reshape(p * t, 17, 3), np.arange(p + 1) * t, ~res.interpolated[people].reshape(-1))
    acc = np.linalg.norm(np.diff(pose, n=2, axis=1) * fps**2, axis=-1).mean(axis=(1, 2))  # (P,)
    return cv, float(acc.mean())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--generated", type=Path, default=None, help="folder of hmore synth clips (clip_*.npz)")
    ap.add_argument("--videos", type=Path, nargs="*", default=[])
    ap.add_argument("--models", nargs="+", default=["dstformer_cpu", "dstformer_cpu_h36m_pose", "dstformer_cpu_h36m"])
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    models = {m: load_lifter(weights=m) for m in args.models}
    print(f"load {os.getloadavg()[0]:.1f}; models' training rates: "
          + ", ".join(f"{m} {input_fps_of(v)} fps" for m, v in models.items()))
    if args.generated is not None:
        clips = sorted(args.generated.glob("clip_*.npz"))
        if not clips:
            raise SystemExit(f"no clip_*.npz in {args.generated}")
        tracks = [read_tracks(c) for c in clips]
        print(f"\ngenerated: {len(clips)} clips from {args.generated} ({tracks[0].fps:g} fps)")
        print("| model | run at | MPJPE (mm) | P-MPJPE (mm) |\n|---|---|---|---|")
        for name, model in models.items():
            for mode, model_fps in MODES.items():
                e, pe = [], []
                for tr in tracks:
                    res = lift_tracks(model, tr.kp2d, width=tr.width, height=tr.height, fps=tr.fps,
                                      model_fps=model_fps)
                    true = tr.kp3d_true - tr.kp3d_true[..., :1, :]
                    ok = ~res.interpolated
                    e.append(1000 * float(mpjpe(res.pose3d[ok], true[ok])))
                    pe.append(1000 * float(p_mpjpe(res.pose3d[ok].astype(np.float64), true[ok].astype(np.float64))))
                rate = f"{res.lift_fps:.0f} fps" if mode == "resampled" else "the clip's rate"
                print(f"| {name} | {rate} | {np.mean(e):.1f} | {np.mean(pe):.1f} |", flush=True)
    if args.videos:
        print("\nreal videos: bone std/mean (%) | mean acceleration (m/s^2)")
        print("| video (fps) | " + " | ".join(f"{m} {mode}" for m in models for mode in MODES) + " |")
        print("|---" * (1 + 2 * len(models)) + "|")
        for v in args.videos:
            tr = read_tracks(v)
            cells = []
            for model in models.values():
                for model_fps in MODES.values():
                    res = lift_tracks(model, tr.kp2d, width=tr.width, height=tr.height, fps=tr.fps,
                                      model_fps=model_fps)
                    cv, acc = _steadiness(res, tr.fps)
                    cells.append(f"{100 * cv:.1f} / {acc:.1f}")
            print(f"| {v.name} ({tr.fps:.0f}) | " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
