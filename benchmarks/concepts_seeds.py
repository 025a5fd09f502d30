"""Seed-averaged table of concept training runs (issue 16): mean +- std over seeds of each group's evaluation
(NMI / purity against action labels, concepts in use, retrieval R@1) at one step, read from the runs'
``metrics.jsonl`` (validation split when the runs set ``data.val_fraction``).

    python benchmarks/concepts_seeds.py --step 600 vqvae=runs/s16/vq_s0,runs/s16/vq_s1 full=runs/s16/full_s0

A group is ``label=run[,run...]``; a run without an evaluation at that step is left out and named on stderr. The std
is the sample std (n - 1) and is left blank for a single run.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from hmore.commands.train import _last_eval  # the engine's metrics.jsonl reader

COLUMNS = (("bandai_nmi", "Bandai NMI"), ("bandai_purity", "Bandai purity"), ("bandai_clusters", "Bandai used"),
           ("nw_ucla_nmi", "NW-UCLA NMI"), ("nw_ucla_purity", "NW-UCLA purity"), ("nw_ucla_clusters", "NW-UCLA used"),
           ("r1", "R@1"))


def mean_std(values: list[float], digits: int = 3) -> str:
    """``mean +- std`` (sample std) of the values, ``mean`` alone for one value, blank for none."""
    if not values:
        return ""
    v = np.asarray(values, np.float64)
    if len(v) == 1:
        return f"{v[0]:.{digits}f}"
    return f"{v.mean():.{digits}f} +- {v.std(ddof=1):.{digits}f}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("groups", nargs="+", help="label=run[,run...]")
    ap.add_argument("--step", type=int, default=None, help="the evaluation step (default: each run's last)")
    args = ap.parse_args()
    print("| group | runs | " + " | ".join(name for _, name in COLUMNS) + " |")
    print("|---|---|" + "---|" * len(COLUMNS))
    for group in args.groups:
        label, _, runs = group.partition("=")
        if not runs:
            sys.exit(f"error: group {group!r} is not label=run[,run...]")
        evals = []
        for run in runs.split(","):
            ev = _last_eval(Path(run), step=args.step)
            if ev:
                evals.append(ev)
            else:
                print(f"{run}: no evaluation at step {args.step}", file=sys.stderr)
        cells = [mean_std([e[key] for e in evals if key in e], 1 if key.endswith("clusters") else 3)
                 for key, _ in COLUMNS]
        print(f"| {label} | {len(evals)} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
