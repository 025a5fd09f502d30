"""Which CPU thread setting makes ``hmore flow`` fastest here: torch/OpenCV threads x OpenMP wait policy.

Each setting runs in its own process (the OpenMP wait policy is read when torch loads), on the same generated
held-out clip, through the whole inference path (``hmore.flow.iter_flow`` with the clip's masks: DIS start, network,
Psi, camera compensation). Settings are interleaved round by round, so a change of load on a shared machine hits all of
them alike; the table gives the median pairs/s over the rounds, the spread, and the load average seen by each run.

``active`` is OpenMP's default of spinning threads (libgomp: busy-wait for a while before sleeping); ``passive`` is
``OMP_WAIT_POLICY=PASSIVE`` (threads sleep at once), which hmore sets unless the environment says otherwise.

Usage: python benchmarks/flow_threads.py [--settings 1:active 2:active 1:passive 2:passive] [--rounds 5]
       [--pairs 12] [--size 256x192]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time


def worker(threads: int, pairs: int, h: int, w: int) -> None:
    import torch

    from hmore.bench.flow_bench import set_threads
    from hmore.bench.robustness import bench_seed
    from hmore.flow.inference import iter_flow, load_flow_model
    from hmore.synth.clip import render_clip

    set_threads(threads)
    clip = render_clip(size=(h, w), num_frames=pairs + 1, seed=bench_seed("synth-heldout", 0), subjects=1,
                       distractors=2, camera_motion="pan")
    net, _ = load_flow_model("hmore_flow_cpu", device="cpu")
    list(iter_flow(clip.frames[:3], model=net, masks=clip.masks[:3], device="cpu", progress=False))  # warm-up
    load = os.getloadavg()[0]
    t0 = time.perf_counter()
    n = sum(1 for _ in iter_flow(clip.frames, model=net, masks=clip.masks, device="cpu", progress=False))
    dt = time.perf_counter() - t0
    print(json.dumps({"pairs_per_s": n / dt, "load": (load + os.getloadavg()[0]) / 2,
                      "torch_threads": torch.get_num_threads(), "wait_policy": os.environ.get("OMP_WAIT_POLICY")}))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--settings", nargs="+", default=["1:active", "2:active", "1:passive", "2:passive"],
                    help="THREADS:POLICY, POLICY active or passive")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--pairs", type=int, default=12)
    ap.add_argument("--size", default="256x192", help="WxH")
    ap.add_argument("--worker", type=int, default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    w, h = (int(v) for v in args.size.split("x"))
    if args.worker is not None:
        worker(args.worker, args.pairs, h, w)
        return
    results: dict[str, list[dict]] = {s: [] for s in args.settings}
    print(f"{args.rounds} rounds x {len(args.settings)} settings, {args.pairs} pairs at {w}x{h}; "
          f"load average at start {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs", flush=True)
    for r in range(args.rounds):
        for s in args.settings:
            threads, _, policy = s.partition(":")
            env = {**os.environ, "OMP_WAIT_POLICY": policy.upper() or "PASSIVE"}
            out = subprocess.run([sys.executable, __file__, "--worker", threads, "--pairs", str(args.pairs),
                                  "--size", args.size], env=env, capture_output=True, text=True)
            if out.returncode != 0:
                print(f"round {r + 1} {s}: failed\n{out.stderr[-2000:]}", flush=True)
                continue
            row = json.loads(out.stdout.strip().splitlines()[-1])
            results[s].append(row)
            print(f"round {r + 1} {s:<12} {row['pairs_per_s']:7.2f} pairs/s  load {row['load']:.2f}", flush=True)
    print(f"\n{'setting':<12}{'median pairs/s':>16}{'min':>8}{'max':>8}{'mean load':>11}")
    for s, rows in results.items():
        v = [x["pairs_per_s"] for x in rows]
        if not v:
            print(f"{s:<12}{'failed':>16}")
            continue
        print(f"{s:<12}{statistics.median(v):>16.2f}{min(v):>8.2f}{max(v):>8.2f}"
              f"{statistics.mean(x['load'] for x in rows):>11.2f}")


if __name__ == "__main__":
    main()
