"""Frames per second of the ground-truth renderer at 192x256 with 2 subjects and full ground truth.

Run: ``.venv/bin/python benchmarks/synth_speed.py [--frames 64] [--size 192x256] [--subjects 2] [--repeat 3]``.
Each figure covers everything :func:`hmore.synth.render_clip` does for a clip (motions, bodies, camera, frames,
flow, masks, keypoints, visibility), best of ``--repeat`` runs, for each camera motion. ``wall`` is elapsed time,
``cpu`` the process's CPU time (closer to the unloaded figure when other jobs share the cores). Writing the npz
(deflate compression) is timed separately. Issue 2's goal: >= 30 frames/s on 2 CPU cores.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from hmore.synth.clip import render_clip


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--frames", type=int, default=64)
    p.add_argument("--size", default="192x256")
    p.add_argument("--subjects", type=int, default=2)
    p.add_argument("--cameras", default="static,pan,track", help="comma-separated camera motions")
    p.add_argument("--distractors", type=int, default=2)
    p.add_argument("--repeat", type=int, default=3)
    args = p.parse_args()
    h, w = (int(v) for v in args.size.lower().split("x"))
    render_clip(size=(h, w), num_frames=2, subjects=1, seed=0)  # warm-up (imports, caches)
    clip = None
    for camera in args.cameras.split(","):
        wall = cpu = float("inf")
        for r in range(args.repeat):
            t0, c0 = time.perf_counter(), time.process_time()
            clip = render_clip(size=(h, w), num_frames=args.frames, subjects=args.subjects, seed=r,
                               actions=["walk"], camera_motion=camera, distractors=args.distractors)
            wall = min(wall, time.perf_counter() - t0)
            cpu = min(cpu, time.process_time() - c0)
        print(f"synth {h}x{w}, {args.subjects} subjects, {args.distractors} distractors, camera {camera:6s}: "
              f"{args.frames / wall:6.1f} frames/s wall, {args.frames / cpu:6.1f} frames/s cpu "
              f"({args.frames} frames, best of {args.repeat})")
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        clip.save(Path(tmp) / "clip.npz")
        save_s = time.perf_counter() - t0
    print(f"npz save (compressed): {args.frames / save_s:.1f} frames/s")


if __name__ == "__main__":
    main()
