"""Paired comparison of fine-grained action rows on the same test clips (README "Downstream", `hmore flow`'s source):
per row the top-1 (mean over seeds) overall and per camera motion, then the difference of the first row to each
other row with two standard errors: binomial (the two accuracies taken as independent) and paired (over the clips, of
the per-clip difference in correctness averaged over the seeds, which uses that the rows share their clips).

A row is ``NAME=RUN`` or ``NAME=RGB_RUN|FLOW_RUN`` (a two-stream row, fused as ``hmore bench action-flow`` does:
:func:`hmore.fineaction.bench.two_stream`), RUN a run folder without its ``-s<seed>`` suffix, scored on the test split.

Run: ``OMP_NUM_THREADS=1 .venv/bin/python benchmarks/action_flow_paired.py runs/action_flow/full24/set --seeds 0 1 2
--rows "hmore=R/rgb|R/world_local@hmore_flow_cpu-3346b99954cd-command-1488de85" "DIS=R/rgb|R/dis" RGB=R/rgb`` with
``R=runs/action_flow/full24v_cmd_noflip/runs``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np


def _scores(run: str, seed: int) -> dict:
    path = Path(f"{run}-s{seed}") / "test.json"
    if not path.is_file():
        raise SystemExit(f"no test scores: {path} (score the run with hmore bench action-flow --split test)")
    return json.loads(path.read_text())


def correct(spec: str, seed: int) -> np.ndarray:
    """(N,) 1.0 where the row's seed classified the test clip right."""
    from hmore.fineaction.bench import two_stream

    parts = spec.split("|")
    base = _scores(parts[0], seed)
    if len(parts) == 1:
        pred = np.array(base["probs"]).argmax(axis=1)
    else:
        pred = np.array(two_stream(base, _scores(parts[1], seed))["pred"])
    return (pred == np.array(base["labels"])).astype(np.float64)


def main() -> None:
    from hmore.fineaction.bench import difference_se
    from hmore.fineaction.data import items, open_set
    from hmore.flowfeed import base_path

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("set", help="the built action set (for each test clip's camera motion)")
    p.add_argument("--rows", nargs="+", required=True, metavar="NAME=RUN[|RUN]")
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    args = p.parse_args()
    cams = []
    for it in items(open_set(args.set), "test"):
        with np.load(base_path(args.set, it.key), allow_pickle=False) as z:
            cams.append(json.loads(str(z["meta"]))["camera"])
    cams = np.array(cams)
    kinds = sorted(set(cams))
    rows = dict(r.split("=", 1) for r in args.rows)
    right = {name: np.mean([correct(spec, s) for s in args.seeds], axis=0) for name, spec in rows.items()}
    print(f"{len(cams)} test clips ({', '.join(f'{k} {int((cams == k).sum())}' for k in kinds)}), seeds "
          f"{' '.join(map(str, args.seeds))}; top-1 %")
    print(f"{'row':24s} {'all':>7s} " + " ".join(f"{k:>7s}" for k in kinds))
    for name, c in right.items():
        if len(c) != len(cams):
            raise SystemExit(f"{name}: {len(c)} clips scored, the set has {len(cams)} test clips")
        print(f"{name:24s} {100 * c.mean():7.2f} " + " ".join(f"{100 * c[cams == k].mean():7.1f}" for k in kinds))
    first, *others = right
    n = len(cams)
    for name in others:
        a, b = right[first], right[name]
        d = a - b
        binom = difference_se(100 * a.mean(), 100 * b.mean(), n)
        print(f"{first} - {name}: {100 * d.mean():+.2f} points, binomial s.e. {binom:.2f}, paired s.e. "
              f"{100 * d.std(ddof=1) / np.sqrt(n):.2f}")


if __name__ == "__main__":
    main()
