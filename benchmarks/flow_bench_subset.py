"""Means of an ``hmore bench flow`` run over a subset of its clips, per set: e.g. the held-out real clips only.

Reads ``results.json`` (per-clip means) and averages each method's per-clip values over the chosen clips, weighting
each clip by its pair count (the bench's own set means weight pairs, too; clips with a null value are skipped).

Usage: python benchmarks/flow_bench_subset.py OUT/results.json --clips NAME [NAME ...] [--metrics leakage ...]
"""

from __future__ import annotations

import argparse
import json
import math


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("results")
    ap.add_argument("--clips", nargs="+", required=True, help="clip names (or substrings of them)")
    ap.add_argument("--metrics", nargs="*", default=None)
    args = ap.parse_args()
    with open(args.results) as fh:
        res = json.load(fh)
    chosen = [c for c in res["clips"] if any(k in c["name"] for k in args.clips)]
    metrics = args.metrics or [m for m in res["metrics"] if not res["metrics"][m]["ground_truth"]]
    sets = list(dict.fromkeys(c["set"] for c in chosen))
    for s in sets:
        clips = [c for c in chosen if c["set"] == s]
        print(f"\n{s}: {len(clips)} clips ({', '.join(c['name'] for c in clips)})")
        print(f"{'method':<34}" + "".join(f"{res['metrics'][m]['label']:>12}" for m in metrics))
        for name, e in res["methods"].items():
            cells = []
            for m in metrics:
                vals = [(e["per_clip"][c["name"]][m], c["pairs"]) for c in clips
                        if e["per_clip"].get(c["name"], {}).get(m) is not None]
                n = sum(w for _, w in vals)
                cells.append(sum(v * w for v, w in vals) / n if n else math.nan)
            print(f"{name:<34}" + "".join(f"{v:>12.4f}" for v in cells))


if __name__ == "__main__":
    main()
