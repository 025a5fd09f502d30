"""Speed of ``hmore flow``'s streaming path on static and moving cameras, in the same run as OpenCV DIS.

Issue 13's speed goal is for the whole command with default settings (camera compensation on, v_s from the pelvis of
the pose track), so this times :func:`hmore.flow.iter_flow` over a generated held-out clip with its exact masks and
keypoints (what the priors would give; the priors' own speed is ``benchmarks/priors.py``). Rows:

- ``hmore stream``: the stream as ``hmore flow`` runs it: torch on half the cores while a worker thread encodes the
  next frame and does the OpenCV work (DIS and the camera fit of the next pair, the refinement and v_s of the previous
  one); each frame is encoded once and its features serve the next pair (a moving camera is compensated in the
  correlation lookup, so no frame is warped).
- ``hmore per pair``: every pair on its own (each frame encoded twice): the stream before feature reuse, and what
  ``benchmarks/flow_synth.py``'s cost column times.
- ``hmore serial``: the stream with ``overlap=False``, the same threads: every stage of a pair in turn on one thread
  (:func:`hmore.flow.inference.iter_flow`).
- ``hmore serial xN``: the same with torch and OpenCV on all N cores (hmore's default before the overlap).
- ``hmore no refine``: the stream with ``refine="off"`` (the network's flow without the photometric refinement
  inside people, :mod:`hmore.flow.refine`): what the refinement costs.
- ``dis``: OpenCV DIS (medium) on the same frames.

Methods and cameras are interleaved round by round, so a change of load on a shared machine hits all of them alike;
the table gives the median pairs/s over the rounds, the slowest and fastest round, and the load average seen.

Usage: python benchmarks/flow_stream.py [--cameras static pan track] [--rounds 5] [--pairs 12] [--size 256x192]
       [--threads N]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable

import cv2
import numpy as np


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cameras", nargs="+", default=["static", "pan", "track"], choices=["static", "pan", "track"])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--pairs", type=int, default=12)
    ap.add_argument("--size", default="256x192", help="WxH")
    ap.add_argument("--threads", type=int, default=None, help="torch and OpenCV threads (default: `hmore flow`'s, "
                    "hmore.flow.inference.stream_threads)")
    args = ap.parse_args()
    w, h = (int(v) for v in args.size.split("x"))

    import torch

    from hmore.bench.flow_bench import set_threads
    from hmore.bench.robustness import bench_seed
    from hmore.flow.inference import iter_flow, load_flow_model, stream_threads
    from hmore.synth.clip import render_clip

    threads = set_threads(stream_threads() if args.threads is None else args.threads)
    cores = os.cpu_count() or 1
    net, weights = load_flow_model("hmore_flow_cpu", device="cpu")
    clips = {cam: render_clip(size=(h, w), num_frames=args.pairs + 1, seed=bench_seed("synth-heldout", 0),
                              subjects=1, distractors=2, camera_motion=cam) for cam in args.cameras}
    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)

    def stream(cam: str) -> int:
        c = clips[cam]
        return sum(1 for _ in iter_flow(c.frames, model=net, masks=c.masks, keypoints=c.kp2d, device="cpu",
                                        progress=False))

    def stream_noref(cam: str) -> int:
        c = clips[cam]
        return sum(1 for _ in iter_flow(c.frames, model=net, masks=c.masks, keypoints=c.kp2d, device="cpu",
                                        progress=False, refine="off"))

    def stream_serial(cam: str) -> int:
        c = clips[cam]
        return sum(1 for _ in iter_flow(c.frames, model=net, masks=c.masks, keypoints=c.kp2d, device="cpu",
                                        progress=False, overlap=False))

    def serial_all_cores(cam: str) -> int:
        set_threads(cores)
        try:
            return stream_serial(cam)
        finally:
            set_threads(threads["torch"])

    def per_pair(cam: str) -> int:
        c = clips[cam]
        for t in range(args.pairs):
            next(iter_flow(c.frames[t: t + 2], model=net, masks=c.masks[t: t + 2], keypoints=c.kp2d[t: t + 2],
                           device="cpu", progress=False))
        return args.pairs

    def dis_run(cam: str) -> int:
        grey = [cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in clips[cam].frames]
        for a, b in zip(grey[:-1], grey[1:]):
            dis.calc(a, b, None)
        return args.pairs

    methods: dict[str, Callable[[str], int]] = {"hmore stream": stream, "hmore serial": stream_serial,
                                                f"hmore serial x{cores}": serial_all_cores,
                                                "hmore no refine": stream_noref,
                                                "hmore per pair": per_pair, "dis": dis_run}
    with torch.inference_mode():
        for cam in args.cameras:  # warm-up (lazy initialisation, caches)
            for fn in methods.values():
                fn(cam)
        speeds: dict[tuple[str, str], list[float]] = {(m, c): [] for m in methods for c in args.cameras}
        loads: dict[tuple[str, str], list[float]] = {k: [] for k in speeds}
        for _ in range(args.rounds):
            for cam in args.cameras:
                for name, fn in methods.items():
                    t0 = time.perf_counter()
                    n = fn(cam)
                    speeds[name, cam].append(n / max(time.perf_counter() - t0, 1e-9))
                    loads[name, cam].append(os.getloadavg()[0])
    print(f"{args.pairs} pairs at {w}x{h}, {args.rounds} interleaved rounds; hmore_flow_cpu ({weights}), defaults: "
          f"camera compensation on, refinement inside people on, v_s from the pelvis track; threads torch "
          f"{threads['torch']}, OpenCV {threads['opencv']}; {os.cpu_count()} CPUs\n")
    print(f"{'camera':<8}{'method':<17}{'pairs/s':>9}{'min':>8}{'max':>8}{'x DIS':>8}{'load':>7}")
    for cam in args.cameras:
        ref = statistics.median(speeds["dis", cam])
        for name in methods:
            v = speeds[name, cam]
            med = statistics.median(v)
            print(f"{cam:<8}{name:<17}{med:>9.2f}{min(v):>8.2f}{max(v):>8.2f}{med / ref:>8.3f}"
                  f"{float(np.mean(loads[name, cam])):>7.2f}")


if __name__ == "__main__":
    main()
