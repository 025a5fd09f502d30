"""Which NW-UCLA view-3 sequences an action model gets wrong, and what they have in common (read-only look at the
benchmark: nothing here is meant for choosing a model or a recipe).

For each model (shipped weights, an ensemble name, ``NAME=RUN_OR_CHECKPOINT`` or ``NAME=A*W+B``, as in ``hmore bench
action``): top-1 on all 464 view-3 sequences and on those that are not byte-identical copies of a training sequence
(:meth:`hmore.data.nw_ucla.NWUCLA.copies`), the most frequent (true -> predicted) pairs, errors per subject, the frame
counts and top probabilities of wrong and right predictions, then every error. With ``--lengths``: per class and
view, the median frame count and root path length (metres) of the sequences.

Usage: python benchmarks/nw_ucla_errors.py action_ucla_stgcn_k20 [MODEL ...] [--lengths]
"""

from __future__ import annotations

import argparse
from collections import Counter

import numpy as np


def class_lengths() -> None:
    from hmore.data.nw_ucla import ACTIONS, load_nw_ucla

    data = load_nw_ucla()
    print("class | " + " | ".join(f"view {v}: frames, root path (m)" for v in (1, 2, 3)))
    for c, action in enumerate(ACTIONS):
        cells = []
        for v in (1, 2, 3):
            seqs = [s for s in data.sequences if s.label == c and s.view == v]
            frames = np.median([s.num_frames for s in seqs])
            path = np.median([np.linalg.norm(np.diff(s.joints[:, 0], axis=0), axis=1).sum() for s in seqs])
            cells.append(f"{frames:.0f}, {path:.2f}")
        print(f"{action} | " + " | ".join(cells))


def errors(spec: str) -> None:
    from hmore.bench.action_bench import _load
    from hmore.data.nw_ucla import ACTIONS, load_nw_ucla
    from hmore.lift.classify import PreparedInputs, classify_inputs
    from hmore.train.tasks.action import nw_ucla_inputs

    data = load_nw_ucla()
    by_name = {s.name: s for s in data.split("test")}
    copies = data.copies((3,), (1, 2))
    name, am, _ = _load(spec)
    layout = "kinect20" if am.layout == "nw_ucla_kinect20" else "h36m17"
    inputs = nw_ucla_inputs("test", normalize=am.normalize, layout=layout)
    prob = classify_inputs(am, PreparedInputs(names=[i.name for i in inputs], labels=[i.label for i in inputs],
                                              xs=[i.x for i in inputs], notes=[]))
    seqs = [by_name[i.name] for i in inputs]
    label, pred = np.array([s.label for s in seqs]), prob.argmax(axis=1)
    right, fresh = pred == label, np.array([s.name not in copies for s in seqs])
    wrong = np.flatnonzero(~right)
    print(f"== {name}: top-1 {100 * right.mean():.1f}% ({len(wrong)} errors of {len(seqs)}); on the {fresh.sum()} "
          f"sequences that are not copies of training ones {100 * right[fresh].mean():.1f}%")
    for (a, b), n in Counter((ACTIONS[label[i]], ACTIONS[pred[i]]) for i in wrong).most_common(8):
        print(f"  {a} -> {b}: {n}")
    per_subject = Counter(seqs[i].subject for i in wrong)
    print("  errors / sequences per subject:",
          ", ".join(f"s{k}: {per_subject[k]}/{n}" for k, n in sorted(Counter(s.subject for s in seqs).items())))
    frames, top = np.array([s.num_frames for s in seqs]), prob.max(axis=1)
    print(f"  median frames: wrong {np.median(frames[~right]):.0f}, right {np.median(frames[right]):.0f}; "
          f"median top probability: wrong {np.median(top[~right]):.2f}, right {np.median(top[right]):.2f}")
    for i in wrong:
        print(f"  {seqs[i].name} ({frames[i]} frames): {ACTIONS[label[i]]} -> {ACTIONS[pred[i]]} "
              f"(p {prob[i, pred[i]]:.2f}, true class {prob[i, label[i]]:.2f})")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("models", nargs="*", default=["action_ucla_stgcn_k20"])
    ap.add_argument("--lengths", action="store_true", help="per class and view: median frames and root path")
    args = ap.parse_args()
    import torch

    torch.set_num_threads(1)
    if args.lengths:
        class_lengths()
    for spec in args.models:
        errors(spec)


if __name__ == "__main__":
    main()
