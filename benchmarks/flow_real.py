"""Flow methods on the shared real clips (``../shared/data/video``), with the metrics that need no ground truth.

Person masks and COCO-17 keypoints come from a ``priors.npz`` beside each video when present, else from hmore.priors
(MediaPipe) on the frames used. Skips cleanly (exit 0, a message) when the shared data folder is absent.

With ``--long-video``, also streams ``hmore.flow.inference.iter_flow`` (what ``hmore flow`` runs) over vtest.avi (795
frames) and prints the resident memory every 100 pairs: it should stay flat. Masks are ``whole`` (the priors' cost is
not the point) and the model needs weights (shipped or ``--weights``; random weights are fine for memory).

Usage: python benchmarks/flow_real.py [--pairs 4] [--max-side 256] [--priors-side 640] [--weights W] [-o OUT]
       [--threads N] [--long-video]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from hmore.bench import flow_bench
from hmore.paths import shared_data

METHODS = ("hmore_flow_cpu", "dis", "farneback", "dis_mask")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pairs", type=int, default=4)
    ap.add_argument("--max-side", type=int, default=256)
    ap.add_argument("--priors-side", type=int, default=640, help="longer side at which people are searched")
    ap.add_argument("--weights", default=None)
    ap.add_argument("--threads", type=int, default=None, help="CPU threads for torch and OpenCV")
    ap.add_argument("--methods", nargs="+", default=list(METHODS))
    ap.add_argument("-o", "--out", default=None, help="also write results.json and report.html here")
    ap.add_argument("--long-video", action="store_true", help="memory of hmore's streaming flow over vtest.avi")
    args = ap.parse_args()
    video_dir = shared_data("video")
    if not video_dir.is_dir():
        print(f"skipped: shared real data not found at {video_dir} (set HMORE_DATA)")
        return 0
    t0 = time.perf_counter()
    threads = flow_bench.set_threads(args.threads)
    methods = flow_bench.build_methods(args.methods, weights=args.weights)
    clips = flow_bench.real_clips(video_dir, pairs=args.pairs, max_side=args.max_side,
                                  priors_side=args.priors_side)
    res = flow_bench.run_flow_bench(clips, methods)
    summary = flow_bench.write_outputs(args.out, res) if args.out else flow_bench.summarise(res)
    print(f"{len(clips)} real clips x up to {args.pairs} pairs, longer side {args.max_side} px "
          f"({time.perf_counter() - t0:.0f} s; threads torch {threads['torch']}, OpenCV {threads['opencv']})")
    for c in summary["clips"]:
        print(f"  {c['name']}: {c['pairs']} pairs, {c['subjects']} people; {'; '.join(c['notes'])}")
    print()
    names = [m for m, info in summary["metrics"].items() if not info["ground_truth"]]
    print(flow_bench.format_table(summary, names))
    for name, e in summary["methods"].items():
        if not e["available"]:
            print(f"{name}: unavailable: {e['reason']}")
    if args.long_video:
        long_video_memory(video_dir / "vtest.avi", weights=args.weights, max_side=args.max_side)
    return 0


def long_video_memory(video: Path, *, weights: str | None, max_side: int, every: int = 100) -> None:
    """Stream hmore_flow_cpu over ``video`` and print the resident memory every ``every`` pairs."""
    from hmore.bench.flow_bench import _rss_bytes
    from hmore.flow.inference import iter_flow
    from hmore.weights import list_weights

    if weights is None and "hmore_flow_cpu" not in list_weights():
        print("\nlong video: skipped, hmore_flow_cpu has no weights (give --weights)")
        return
    print(f"\nlong video: hmore_flow_cpu streaming over {video.name} at longer side {max_side} px")
    t0, n, peak = time.perf_counter(), 0, 0
    for n, _pair in enumerate(iter_flow(video, model="hmore_flow_cpu", weights=weights, size=max_side,
                                        device="cpu", masks="whole", progress=False), start=1):
        peak = max(peak, _rss_bytes())
        if n == 1 or n % every == 0:
            print(f"  pairs {n:4d}  RSS {_rss_bytes() / 2**20:7.1f} MB  ({n / (time.perf_counter() - t0):.2f} pairs/s)")
    print(f"  pairs {n:4d}  peak RSS {peak / 2**20:7.1f} MB")


if __name__ == "__main__":
    sys.exit(main())
