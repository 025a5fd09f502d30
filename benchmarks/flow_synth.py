"""Issue 3's measured table: hmore's flow against OpenCV baselines on generated held-out clips.

Columns: end-point error inside the people's masks against the optical flow (issue 3's target) and against the motion
relative to the scene (optical flow minus the exact camera-induced flow), the error of the camera flow each method
removed, background leakage (mean |flow| outside masks dilated by 5 px, as a ratio to the mean inside and in pixels),
local-flow error (flow - v_s inside masks; baselines use each subject's median flow as v_s), local flow at the joints
against their motion relative to the pelvis, and forward pairs per second at 256x192 on this machine (median of
interleaved rounds). Rows: ``hmore_flow_cpu`` (shipped weights, or ``--weights``; reported as unavailable otherwise,
never run with random weights) with camera compensation and without (``+nocam``), each also without the
photometric refinement inside people (``+noref``, :mod:`hmore.flow.refine`), OpenCV DIS (medium) and Farneback
without and with the same compensation (``+cam``), DIS x person mask, zero flow. When hmore runs, a second table gives
every method's value divided by hmore's.

Clips: ``synth-heldout`` of :mod:`hmore.bench.robustness` (generator seeds >= 2**31 + 10**9, never used in training;
static and panning cameras), or another generated set with ``--set`` (``robustness:background`` has static,
distractor, pan and track levels).

Usage: python benchmarks/flow_synth.py [--clips 8] [--pairs 3] [--size 256x192] [--fps 30] [--weights W] [-o OUT]
       [--set synth-heldout]
"""

from __future__ import annotations

import argparse
import os
import time

from hmore.bench import flow_bench

METHODS = ("hmore_flow_cpu", "hmore_flow_cpu+noref", "hmore_flow_cpu+nocam", "hmore_flow_cpu+nocam+noref", "dis",
           "dis+cam", "farneback", "farneback+cam", "dis_mask", "zero")
COLUMNS = ("epe_mask", "epe_scene", "camera_epe", "leakage", "leakage_px", "local_epe", "joint_local")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clips", type=int, default=8)
    ap.add_argument("--set", default="synth-heldout", help="generated set (synth-heldout, robustness:background ...)")
    ap.add_argument("--pairs", type=int, default=3)
    ap.add_argument("--size", default="256x192", help="WxH")
    ap.add_argument("--fps", type=float, default=None,
                    help="render the clips at this frame rate (default 30); lower rates give longer flows")
    ap.add_argument("--weights", default=None, help=".safetensors for hmore_flow_cpu when none ship")
    ap.add_argument("--threads", type=int, default=None, help="CPU threads for torch and OpenCV")
    ap.add_argument("--methods", nargs="+", default=list(METHODS))
    ap.add_argument("--cost-pairs", type=int, default=5, help="pairs timed per method (0 skips the timing)")
    ap.add_argument("-o", "--out", default=None, help="also write results.json and report.html here")
    args = ap.parse_args()
    w, h = (int(v) for v in args.size.split("x"))

    t0 = time.perf_counter()
    threads = flow_bench.set_threads(args.threads)
    methods = flow_bench.build_methods(args.methods, weights=args.weights)
    clips = flow_bench.generated_clips(args.set, clips=args.clips, pairs=args.pairs, size=(h, w), fps=args.fps)
    res = flow_bench.run_flow_bench(clips, methods)
    if args.cost_pairs > 0:
        res.cost = flow_bench.measure_cost(methods, sizes=((h, w),), pairs=args.cost_pairs)
    summary = flow_bench.write_outputs(args.out, res) if args.out else flow_bench.summarise(res)

    n_pairs = sum(c.num_pairs for c in clips)
    print(f"{args.set}: {len(clips)} clips x {args.pairs} pairs = {n_pairs} pairs at {w}x{h}, "
          f"{args.fps or 30:g} fps "
          f"({time.perf_counter() - t0:.0f} s; threads torch {threads['torch']}, OpenCV {threads['opencv']}; "
          f"load average {os.getloadavg()[0]:.1f})\n")
    labels = {m: summary["metrics"][m]["label"] for m in COLUMNS}
    header = f"{'method':<22}" + "".join(f"{labels[m]:>12}" for m in COLUMNS) + f"{'pairs/s':>10}"
    print(header)
    print("-" * len(header))
    for name, e in summary["methods"].items():
        cells = [e["metrics"][m]["value"] for m in COLUMNS]
        pps = e["cost"][0]["pairs_per_s"] if e.get("cost") else None
        print(f"{name:<22}" + "".join("-".rjust(12) if v is None else f"{v:12.4f}" for v in cells)
              + ("-".rjust(10) if pps is None else f"{pps:10.2f}"))
    hm = summary["methods"].get("hmore_flow_cpu")
    if hm is None or not hm["available"]:
        reason = "not requested" if hm is None else hm["reason"]
        print(f"\nno ratios vs hmore: hmore_flow_cpu unavailable ({reason})")
        return
    print("\nratio to hmore_flow_cpu (> 1: hmore is better for error/leakage columns)")
    for name, e in summary["methods"].items():
        ratios = []
        for m in COLUMNS:
            a, b = e["metrics"][m]["value"], hm["metrics"][m]["value"]
            ratios.append(None if a is None or b in (None, 0.0) else a / b)
        print(f"{name:<22}" + "".join("-".rjust(12) if r is None else f"{r:12.2f}" for r in ratios))


if __name__ == "__main__":
    main()
