"""Speed of skeleton concept encoding (issue 16's goal: >= 500 frames/s on 2 cores), with the load stated.

Measures, with the shipped ``concepts_cpu`` weights (or ``--checkpoint``), warm (after one call):

* ``encode``: :func:`hmore.concepts.encode.encode_sequences` on held-out Bandai-Namco takes (30 fps takes resampled
  to the model's 15 fps beforehand; frames/s are given at 15 fps and per 30 fps input frame);
* ``bvh file``: the whole ``hmore concepts encode`` path on a BVH file (read, forward kinematics, resample, encode),
  frames/s of the file's own frames (the CMU walk shipped with hmore, 120 fps);
* ``k-means baseline``: raw pose features + nearest-centroid assignment of the same frames (same run: a ratio that
  survives a noisy machine).

    OMP_NUM_THREADS=2 python benchmarks/concepts_speed.py --threads 2
    OMP_NUM_THREADS=1 python benchmarks/concepts_speed.py --threads 1
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
import torch


def best_of(fn, repeats: int) -> float:
    fn()  # warm-up
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--checkpoint", default=None, help="a concepts run or checkpoint instead of the shipped weights")
    ap.add_argument("--takes", type=int, default=40, help="held-out Bandai takes to encode (default 40)")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    from hmore.concepts.encode import encode_sequences, load_concept_model, read_motion
    from hmore.concepts.evaluate import kmeans_assign, pose_features
    from hmore.concepts.motion import bandai_sequences
    from hmore.data import bandai
    from hmore.synth.motion import embedded_bvh

    model = load_concept_model(checkpoint=args.checkpoint) if args.checkpoint else load_concept_model()
    held = [t for t in bandai.load_index() if bandai.is_held_out(t)][: args.takes]
    seqs = bandai_sequences(takes=held)
    joints = [s.joints for s in seqs]
    frames = sum(len(j) for j in joints)
    load_before = os.getloadavg()[0]
    t_enc = best_of(lambda: encode_sequences(model, joints), args.repeats)
    bvh = embedded_bvh()
    n_bvh = read_motion(bvh).source_frames
    t_bvh = best_of(lambda: encode_sequences(model, [read_motion(bvh).joints]), args.repeats)
    cent = np.random.default_rng(0).normal(size=(model.config.codebook_size, 51))
    t_km = best_of(lambda: kmeans_assign(pose_features(seqs), cent), args.repeats)
    load_after = os.getloadavg()[0]
    print(f"threads {args.threads}, load average {load_before:.1f} -> {load_after:.1f} (2 cores), best of "
          f"{args.repeats} after a warm-up")
    print(f"{'path':18s} {'frames':>8s} {'seconds':>8s} {'frames/s':>10s}  note")
    print(f"{'encode':18s} {frames:8d} {t_enc:8.3f} {frames / t_enc:10.0f}  at 15 fps; {2 * frames / t_enc:.0f} "
          f"per 30 fps input frame ({len(seqs)} Bandai held-out takes)")
    print(f"{'bvh file':18s} {n_bvh:8d} {t_bvh:8.3f} {n_bvh / t_bvh:10.0f}  read + encode, 120 fps file frames")
    print(f"{'k-means baseline':18s} {frames:8d} {t_km:8.3f} {frames / t_km:10.0f}  raw pose features + assignment")
    print(f"encode / k-means time ratio: {t_enc / t_km:.2f}")


if __name__ == "__main__":
    main()
