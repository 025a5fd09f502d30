"""Lifting throughput: frames per second of the shipped lifters on a real Human3.6M track, same run, same input.

Each model lifts the SH detections of S9/Walking camera 54138969 (a 3,000-frame track at 50 fps by default) the way
``hmore bench lift`` does (consecutive windows of the model's length, or the whole sequence for the conv and
per-frame baselines), with and without the test-time flip, and the way ``hmore lift`` does (``lift_tracks``: pixels
in, windows overlapping by half and blended, flip). Frames/s = frames of the track / wall time of the best of
``--repeats`` runs, with ``--threads`` torch threads. The load average is printed beside the figures: timings taken
while other jobs run are noisy, compare the models of one run (ratios).

Usage: python benchmarks/lift_throughput.py [--threads 2] [--frames 3000] [--models dstformer_cpu_h36m ...]
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
import torch

from hmore.data.h36m import load_h36m
from hmore.lift.h36m import build_arrays, model_window, predict
from hmore.lift.pipeline import load_lifter
from hmore.weights import list_weights


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--frames", type=int, default=3000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--models", nargs="+",
                    default=["dstformer_cpu_h36m", "dstformer_cpu", "lift_tcn_h36m", "lift_mlp_h36m"])
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    data = load_h36m()
    ex = [e for e in data.examples(["S9"]) if e.sequence == "S9/Walking" and e.camera == "54138969"]
    arrays = build_arrays(data, ex, sources=("sh",))
    n = min(args.frames, arrays.num_frames)
    x = arrays.x["sh"][:n]
    offsets = np.array([0, n])
    print(f"threads {args.threads}, {n} frames of S9/Walking 54138969; load average before: "
          f"{' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    print("| model | parameters | window | frames/s, flip | frames/s, no flip | frames/s, hmore lift path |")
    print("|---|---|---|---|---|---|")
    from hmore.lift.infer import lift_tracks

    px = data.keypoints_sh(ex[0].sequence, ex[0].camera, mapping="nearest")[:n][None]  # (1, T, 17, 3)
    width, height = data.image_size(ex[0].subject, ex[0].camera)
    shipped = set(list_weights())
    for name in args.models:
        if name not in shipped:
            print(f"| {name} | (no shipped weights) | | | |")
            continue
        model = load_lifter(weights=name).float().eval()
        win = model_window(model)
        cells = []
        for flip in (True, False):
            predict(model, x[: min(n, 300)], np.array([0, min(n, 300)]), window=win, flip=flip)  # warm-up
            best = np.inf
            for _ in range(args.repeats):
                t0 = time.perf_counter()
                predict(model, x, offsets, window=win, flip=flip)
                best = min(best, time.perf_counter() - t0)
            cells.append(f"{n / best:.0f}")
        best = np.inf
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            lift_tracks(model, px, width=width, height=height, window=win or n)
            best = min(best, time.perf_counter() - t0)
        cells.append(f"{n / best:.0f}")
        params = sum(p.numel() for p in model.parameters())
        print(f"| {name} | {params / 1e6:.2f} M | {win or 'whole sequence'} | {cells[0]} | {cells[1]} | {cells[2]} |")
    print(f"load average after: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")


if __name__ == "__main__":
    main()
