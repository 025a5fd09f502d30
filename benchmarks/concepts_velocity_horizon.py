"""How much action the actionable term's velocity target carries, by horizon (issue 16's diagnosis for
``data.velocity_horizon``).

On training frames only (the training sequences of each set split in two halves by a seeded permutation; no held-out
frame is read), per-frame features [pose] and [pose, mean velocity over the next h frames] for each horizon h are
scored against the action label in two ways: k-means (K = ``--k``, fitted on one half, NMI / purity on the other) and
a linear probe (softmax regression, L-BFGS, fitted on one half, accuracy on the other). The hypothesis it tests: a
one-frame velocity (HuMoCon's target) is dominated by frame-to-frame jitter on Kinect skeletons (NW-UCLA), so the
target a concept's gradient must explain carries little of the action; averaged over a few frames it carries more.

    python benchmarks/concepts_velocity_horizon.py --data runs/concepts/data --horizons 1 2 4 8
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np


def features(seqs, horizon: int) -> tuple[np.ndarray, np.ndarray]:
    """(F, 51) pose, or (F, 102) pose and the mean velocity to h frames ahead (clamped at the last frame), x 7.5 as
    the concept model's velocity unit; and the (F,) action labels."""
    from hmore.concepts.motion import MODEL_FPS, VELOCITY_UNIT, frame_pose_features

    out, labels = [], []
    for s in seqs:
        f = frame_pose_features(s.joints)  # (T, 51)
        if horizon > 0:
            ahead = np.minimum(np.arange(len(f)) + horizon, len(f) - 1)
            f = np.concatenate([f, (f[ahead] - f) * (MODEL_FPS / VELOCITY_UNIT / horizon)], axis=1)
        out.append(f)
        labels += [s.action] * len(f)
    return np.concatenate(out).astype(np.float64), np.asarray(labels)


def probe_accuracy(x_fit: np.ndarray, y_fit: np.ndarray, x_test: np.ndarray, y_test: np.ndarray) -> float:
    """Accuracy of a softmax regression (standardised inputs, L2 1e-3, L-BFGS) fitted on one half, on the other."""
    import torch

    classes = {c: i for i, c in enumerate(np.unique(np.concatenate([y_fit, y_test])))}
    mu, sd = x_fit.mean(axis=0), x_fit.std(axis=0) + 1e-6
    a = torch.tensor((x_fit - mu) / sd, dtype=torch.float32)
    b = torch.tensor((x_test - mu) / sd, dtype=torch.float32)
    ya = torch.tensor([classes[c] for c in y_fit])
    yb = torch.tensor([classes[c] for c in y_test])
    torch.manual_seed(0)
    lin = torch.nn.Linear(a.shape[1], len(classes))
    opt = torch.optim.LBFGS(lin.parameters(), max_iter=200)

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(lin(a), ya) + 1e-3 * lin.weight.pow(2).sum()
        loss.backward()
        return loss

    opt.step(closure)
    with torch.no_grad():
        return float((lin(b).argmax(dim=1) == yb).float().mean())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", default="runs/concepts/data", help="concepts data folder (hmore concepts data)")
    ap.add_argument("--sets", nargs="+", default=["bandai", "nw_ucla"])
    ap.add_argument("--horizons", nargs="+", type=int, default=[1, 2, 4, 8])
    ap.add_argument("--sequences", type=int, default=300, help="training sequences per half")
    ap.add_argument("--probe-frames", type=int, default=8000, help="frames the probe is fitted on")
    ap.add_argument("--k", type=int, default=64)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    if any(h < 1 for h in args.horizons):
        raise SystemExit("--horizons: every horizon must be >= 1 frame")
    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
    import torch

    torch.set_num_threads(args.threads)
    from hmore.concepts.evaluate import kmeans_assign, kmeans_fit
    from hmore.concepts.motion import load_sequences
    from hmore.metrics.concepts import nmi, purity

    rows = []
    for src in args.sets:
        path = Path(args.data) / f"skeleton_{src}.npz"
        if not path.is_file():
            raise SystemExit(f"{path} not found: run hmore concepts data --out {args.data} first")
        seqs = [s for s in load_sequences(path) if s.split == "train" and s.action]
        order = np.random.default_rng(0).permutation(len(seqs))
        half = len(seqs) // 2
        fit = [seqs[i] for i in order[:half]][: args.sequences]
        test = [seqs[i] for i in order[half:]][: args.sequences]
        for h in [0, *args.horizons]:
            x_fit, y_fit = features(fit, h)
            x_test, y_test = features(test, h)
            ids = kmeans_assign(x_test, kmeans_fit(x_fit, args.k, seed=0))
            sub = np.random.default_rng(1).choice(len(x_fit), min(args.probe_frames, len(x_fit)), replace=False)
            acc = probe_accuracy(x_fit[sub], y_fit[sub], x_test, y_test)
            name = "pose" if h == 0 else f"pose + velocity over {h} frame{'s' if h > 1 else ''}"
            rows.append((src, name, nmi(ids, y_test), purity(ids, y_test), acc))
    print(f"| set | features | k-means NMI (K={args.k}) | k-means purity | linear probe accuracy |")
    print("|---|---|---|---|---|")
    for src, name, a, b, c in rows:
        print(f"| {src} | {name} | {a:.3f} | {b:.3f} | {c:.3f} |")


if __name__ == "__main__":
    main()
