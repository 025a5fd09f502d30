"""How much a concept model's concepts are a partition of posture (issue 16's diagnosis for ``hyper_motion``).

For each model, the concept ids of training frames (a spread of ``--sequences`` training sequences per dataset of a
concepts data folder; no held-out frame is read, so nothing here can be tuned to the test split) are compared with
k-means clusters (K = ``--k``, fitted on the same frames) of the raw pose (``pose``) and of the pose with its change
from the previous frame (``pose+motion``): NMI(concepts, k-means) near 1 means the concepts are posture clusters;
NMI against the action label is given alongside. The hypothesis it tests: a discriminative term whose classifiers
read only the present state pulls the concepts towards a partition of pose space, away from one of motion.

    python benchmarks/concepts_pose_likeness.py --data runs/concepts/data concepts_cpu concepts_cpu_vqvae \
        c3=runs/i16/c3_nwoff_s0/checkpoints/step_0001200.safetensors

``NAME=SOURCE`` or ``SOURCE`` (shipped weights name, run folder or checkpoint).
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("models", nargs="+")
    ap.add_argument("--data", default="runs/concepts/data", help="concepts data folder (hmore concepts data)")
    ap.add_argument("--sets", nargs="+", default=["bandai", "nw_ucla"])
    ap.add_argument("--sequences", type=int, default=150, help="training sequences per set (evenly spread)")
    ap.add_argument("--k", type=int, default=64)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
    import torch

    torch.set_num_threads(args.threads)
    from hmore.bench.concepts_bench import _load, _spread
    from hmore.concepts.evaluate import encode_labelled, kmeans_assign, kmeans_fit, pose_features
    from hmore.concepts.motion import load_sequences
    from hmore.metrics.concepts import nmi

    rows = []
    loaded = [_load(spec) for spec in args.models]
    for src in args.sets:
        path = Path(args.data) / f"skeleton_{src}.npz"
        if not path.is_file():
            raise SystemExit(f"{path} not found: run hmore concepts data --out {args.data} first")
        seqs = _spread([s for s in load_sequences(path) if s.split == "train" and s.action], args.sequences)
        ref = {}
        for kind, vel in (("pose", False), ("pose+motion", True)):
            feats = pose_features(seqs, velocity=vel)
            ref[kind] = kmeans_assign(feats, kmeans_fit(feats, args.k, seed=0))
        action = np.concatenate([[s.action] * s.num_frames for s in seqs])
        rows.append((src, f"k-means on pose (K={args.k})", 1.0, nmi(ref["pose"], ref["pose+motion"]),
                     nmi(ref["pose"], action), len(np.unique(ref["pose"]))))
        for name, _, model in loaded:
            ids = encode_labelled(model, seqs).ids
            rows.append((src, name, nmi(ids, ref["pose"]), nmi(ids, ref["pose+motion"]), nmi(ids, action),
                         len(np.unique(ids))))
    print("| set | concepts | NMI vs k-means pose | NMI vs k-means pose+motion | NMI vs action | used |")
    print("|---|---|---|---|---|---|")
    for src, name, a, b, c, n in rows:
        print(f"| {src} | {name} | {a:.3f} | {b:.3f} | {c:.3f} | {n} |")


if __name__ == "__main__":
    main()
