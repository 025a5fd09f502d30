"""Is one flow method's lead over another in ``hmore bench flow`` more than the clips' noise?

Reads a ``results.json`` written by ``hmore bench flow`` and, for each set of clips, prints the difference A - B of
each metric (set mean, pairs weighted as in the table) with a 95% interval from resampling whole clips with
replacement (pairs of one clip are not independent: they share the person, the camera and the priors' errors).
An interval that contains 0 means the clips given cannot tell the two methods apart on that metric.

Usage: python benchmarks/flow_compare.py OUT/results.json A B [--metrics photo_census skeleton leakage joint_local]
       [--resamples 2000] [--seed 0] [--clips NAME ...] [--pool] [--also OUT2/results.json A2 B2 ...]

``--clips`` keeps only the named clips (e.g. the clips held out of a fine-tune's training); ``--pool`` treats all kept
clips as one set (for a handful of clips spread over several sets; the sets' masks may differ, see results.json).
``--also`` adds the same comparison from other runs (e.g. other training seeds of both methods, each benched on the
same clips): each clip's difference is then the mean of its differences over the runs (a clip counts only if every
run scored it), so the interval is over clips of the seed-averaged difference.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import numpy as np


def compare(results: dict, a: str, b: str, metric: str, *, resamples: int, seed: int,
            clips: set[str] | None = None, pool: bool = False, also: list[tuple[dict, str, str]] | None = None,
            ) -> dict[str, tuple[float, float, float, int, float, float]]:
    """set name -> (mean difference, 2.5% and 97.5% bootstrap quantiles, clips, mean of A, mean of B) for
    ``metric`` (means weighted by pairs); only the clips named in ``clips`` (None: all), all of them as one set
    ``"pooled"`` with ``pool``; ``also``: further (results, A, B) runs whose per-clip values are averaged with the
    first run's."""
    runs = [(results, a, b), *(also or [])]
    for res, name_a, name_b in runs:
        for name in (name_a, name_b):
            method = res["methods"].get(name)
            if method is None or not method.get("available", True):
                raise SystemExit(f"method {name!r} not in {', '.join(res['methods'])} (or unavailable)")
    rng = np.random.default_rng(seed)
    out = {}
    kept = [c for c in results["clips"] if clips is None or c["name"] in clips]
    for set_name in ["pooled"] if pool else sorted({c["set"] for c in kept}):
        weights, values = [], []
        for clip in kept:
            if not pool and clip["set"] != set_name:
                continue
            pairs = []  # (A, B) of this clip in each run
            for res, name_a, name_b in runs:
                va = res["methods"][name_a]["per_clip"].get(clip["name"], {}).get(metric)
                vb = res["methods"][name_b]["per_clip"].get(clip["name"], {}).get(metric)
                if va is None or vb is None or not (math.isfinite(va) and math.isfinite(vb)):
                    break
                pairs.append((va, vb))
            else:
                values.append(np.mean(pairs, axis=0))
                weights.append(clip["pairs"])
        if not values:
            continue
        v, w = np.array(values), np.array(weights, float)  # (clips, 2) run-averaged A and B, (clips,)
        d = v[:, 0] - v[:, 1]
        picks = rng.integers(0, len(d), (resamples, len(d)))  # (R, clips) resampled clip indices
        boot = (d[picks] * w[picks]).sum(1) / w[picks].sum(1)
        lo, hi = np.quantile(boot, [0.025, 0.975])
        ma, mb = (v * w[:, None]).sum(0) / w.sum()
        out[set_name] = (float((d * w).sum() / w.sum()), float(lo), float(hi), len(d), float(ma), float(mb))
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("results", type=Path)
    p.add_argument("a")
    p.add_argument("b")
    p.add_argument("--metrics", nargs="+", default=["photo_census", "skeleton", "leakage", "joint_local"])
    p.add_argument("--resamples", type=int, default=2000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--clips", nargs="+", help="only these clips (results.json clips[].name)")
    p.add_argument("--pool", action="store_true", help="all kept clips as one set")
    p.add_argument("--also", nargs=3, action="append", default=[], metavar=("RESULTS", "A", "B"),
                   help="the same comparison in another run (e.g. another seed); per-clip values averaged over runs")
    args = p.parse_args()
    results = json.loads(args.results.read_text())
    also = [(json.loads(Path(path).read_text()), name_a, name_b) for path, name_a, name_b in args.also]
    clips = None
    if args.clips:
        clips = set(args.clips)
        unknown = clips - {c["name"] for c in results["clips"]}
        if unknown:
            raise SystemExit(f"clips not in {args.results}: {', '.join(sorted(unknown))}")
    runs = f" (mean over {1 + len(also)} runs)" if also else ""
    print(f"{args.a} - {args.b}{runs}: set mean difference [95% clip-bootstrap interval], clips, A's and B's means")
    for metric in args.metrics:
        for set_name, (mean, lo, hi, n, ma, mb) in compare(results, args.a, args.b, metric, resamples=args.resamples,
                                                   seed=args.seed, clips=clips, pool=args.pool,
                                                   also=also).items():
            verdict = "" if lo <= 0 <= hi else ("  A higher" if lo > 0 else "  A lower")
            if n < 2:
                verdict = "  (one clip: no interval)"
            print(f"{metric:<14}{set_name:<44}{mean:+9.4f} [{lo:+.4f}, {hi:+.4f}] {n:>3}  {ma:.4f} {mb:.4f}{verdict}")


if __name__ == "__main__":
    main()
