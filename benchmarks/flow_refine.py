"""How much the photometric refinement inside people (hmore.flow.refine) gives, and which smoothness weight.

hmore's flow (shipped weights, camera compensation on, refinement off) is computed once per pair; each candidate
refinement is then applied to it (:func:`hmore.flow.refine.refine_in_people` on the optical flow, world + camera),
next to OpenCV DIS and Farneback as references. The smoothness weight alpha is chosen HERE, on generated held-out
clips where the exact flow is known (in-mask EPE), never on the shared real clips; the real clips (``--real``) are
then only reported.

Columns: ``epe`` in-mask EPE of the optical flow against the exact flow (generated only), ``census`` (7x7 census
Hamming distance after warping, inside the masks, occlusions by the DIS forward-backward check shared by all rows),
``leakage`` (mean |world| outside / inside the dilated masks), ``skeleton`` (skeleton consistency), ``ms`` mean
refinement time per pair.

Usage: python benchmarks/flow_refine.py [--data synth-heldout robustness:background robustness:motion]
       [--clips 3] [--pairs 4] [--alphas 40 20 10 5] [--real ../shared/data/video ../shared/data/davis]
       [--real-pairs 6] [--threads 1]
"""

from __future__ import annotations

import argparse
import math
import os
import time

import numpy as np

from hmore.bench import flow_bench
from hmore.bench.flow_methods import MethodFlow, create_method
from hmore.flow.refine import RefineConfig, refine_in_people

COLUMNS = ("epe_mask", "photo_census", "leakage", "skeleton")


def _refined(a: np.ndarray, b: np.ndarray, out: MethodFlow, labels: np.ndarray, cfg: RefineConfig) -> MethodFlow:
    optical = out.world if out.camera is None else out.world + out.camera
    new = refine_in_people(a, b, optical, labels, cfg)
    return MethodFlow(world=new if out.camera is None else new - out.camera, local=out.local,
                      subject_velocity=out.subject_velocity, camera=out.camera)


def run(clips: list, alphas: list[float]) -> dict[str, dict[str, dict[str, float]]]:
    """set name -> row -> column -> mean over the set's pairs."""
    methods = {name: create_method(name) for name in ("hmore_flow_cpu+noref", "dis", "farneback")}
    rows: dict[tuple[str, str], list[dict[str, float]]] = {}
    ms: dict[str, list[float]] = {}
    for clip in clips:
        occluded = flow_bench.reference_occlusions(clip)
        for t in range(clip.num_pairs):
            a, b, labels = clip.frames[t], clip.frames[t + 1], clip.masks[t]
            pose = None if clip.kp2d is None else (clip.kp2d[t], clip.kp2d[t + 1])
            outs = {name: m(a, b, labels, pose) for name, m in methods.items()}
            for name, out in outs.items():
                rows.setdefault((clip.set_name, name), []).append(
                    flow_bench._pair_metrics(clip, t, out, None, occluded[t]))
            for alpha in alphas:
                row = f"hmore_flow_cpu + refine alpha {alpha:g}"
                t0 = time.perf_counter()
                out = _refined(a, b, outs["hmore_flow_cpu+noref"], labels, RefineConfig(alpha=alpha))
                ms.setdefault(row, []).append(1000 * (time.perf_counter() - t0))
                rows.setdefault((clip.set_name, row), []).append(flow_bench._pair_metrics(clip, t, out, None,
                                                                                         occluded[t]))
    table: dict[str, dict[str, dict[str, float]]] = {}
    for (set_name, row), vals in rows.items():
        cols = {}
        for c in COLUMNS:
            x = np.array([v[c] for v in vals], float)
            x = x[np.isfinite(x)]
            cols[c] = float(x.mean()) if len(x) else math.nan
        cols["ms"] = float(np.mean(ms[row])) if row in ms else math.nan
        cols["pairs"] = len(vals)
        table.setdefault(set_name, {})[row] = cols
    return table


def show(table: dict[str, dict[str, dict[str, float]]]) -> None:
    for set_name, rows in table.items():
        n = next(iter(rows.values()))["pairs"]
        print(f"\n{set_name} ({n} pairs)")
        print(f"| row | {' | '.join(COLUMNS)} | ms |")
        print("|---" * (len(COLUMNS) + 2) + "|")
        for row, cols in rows.items():
            vals = " | ".join("-" if math.isnan(cols[c]) else f"{cols[c]:.4f}" for c in (*COLUMNS, "ms"))
            print(f"| {row} | {vals} |")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", nargs="+", default=["synth-heldout", "robustness:background", "robustness:motion"])
    p.add_argument("--clips", type=int, default=3, help="clips per level of each generated set")
    p.add_argument("--pairs", type=int, default=4)
    p.add_argument("--alphas", type=float, nargs="+", default=[40.0, 20.0, 10.0, 5.0])
    p.add_argument("--real", nargs="*", default=[], help="real sources, reported only (never used to choose)")
    p.add_argument("--real-pairs", type=int, default=6)
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args()
    flow_bench.set_threads(args.threads)
    print(f"threads {args.threads}, load {os.getloadavg()[0]:.1f}")
    show(run(flow_bench.bench_clips(args.data, clips=args.clips, pairs=args.pairs), args.alphas))
    if args.real:
        show(run(flow_bench.bench_clips(args.real, pairs=args.real_pairs), args.alphas))


if __name__ == "__main__":
    main()
