"""Frames per second of the ground-truth renderer at 192x256 with 2 subjects and full ground truth.

Run: ``.venv/bin/python benchmarks/synth_speed.py [--frames 64] [--size 192x256] [--subjects 2] [--repeat 3]
[--bodies capsule,anny]``. Each figure covers everything :func:`hmore.synth.render_clip` does for a clip (motions,
bodies, camera, frames, flow, masks, keypoints, visibility), best of ``--repeat`` runs, for each camera motion and
body model. ``wall`` is elapsed time, ``cpu`` the process's CPU time (closer to the unloaded figure when other jobs
share the cores); ``vs capsule`` is the ratio of cpu figures, which load affects least. The Anny bodies are built
once before timing (a new identity costs about 0.1 s once per process: its rest mesh); people are fresh in every
repeat (seed r), as in a dataset. Writing the npz (deflate compression) is timed separately. Goals: capsules >= 30
frames/s on 2 CPU cores (issue 2), Anny >= 15 frames/s (issue 18).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from hmore.synth.clip import render_clip


def _bench(body: str, camera: str, args: argparse.Namespace, size: tuple[int, int]) -> tuple[float, float, object]:
    """Best wall and cpu seconds of ``args.repeat`` clips, and the last clip."""
    wall = cpu = float("inf")
    clip = None
    for r in range(args.repeat):
        t0, c0 = time.perf_counter(), time.process_time()
        clip = render_clip(size=size, num_frames=args.frames, subjects=args.subjects, seed=r, actions=["walk"],
                           camera_motion=camera, distractors=args.distractors, body=body)
        wall = min(wall, time.perf_counter() - t0)
        cpu = min(cpu, time.process_time() - c0)
    return wall, cpu, clip


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--frames", type=int, default=64)
    p.add_argument("--size", default="192x256")
    p.add_argument("--subjects", type=int, default=2)
    p.add_argument("--cameras", default="static,pan,track", help="comma-separated camera motions")
    p.add_argument("--bodies", default="capsule,anny", help="comma-separated body models (capsule, anny)")
    p.add_argument("--distractors", type=int, default=2)
    p.add_argument("--repeat", type=int, default=3)
    args = p.parse_args()
    h, w = (int(v) for v in args.size.lower().split("x"))
    print(f"load average {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} on {os.cpu_count()} cores")
    clip = None
    capsule_cpu: dict[str, float] = {}
    for body in args.bodies.split(","):
        render_clip(size=(h, w), num_frames=2, subjects=1, seed=0, body=body)  # warm-up (imports, caches, model)
        for r in range(args.repeat):  # build the repeats' people once (rest meshes are cached per process)
            render_clip(size=(h, w), num_frames=2, subjects=args.subjects, seed=r, actions=["walk"], body=body)
        for camera in args.cameras.split(","):
            wall, cpu, clip = _bench(body, camera, args, (h, w))
            ratio = ""
            if body == "capsule":
                capsule_cpu[camera] = cpu
            elif camera in capsule_cpu:
                ratio = f", {capsule_cpu[camera] / cpu:.2f} x capsule"
            print(f"synth {body:7s} {h}x{w}, {args.subjects} subjects, {args.distractors} distractors, camera "
                  f"{camera:6s}: {args.frames / wall:6.1f} frames/s wall, {args.frames / cpu:6.1f} frames/s cpu "
                  f"({args.frames} frames, best of {args.repeat}{ratio})")
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        clip.save(Path(tmp) / "clip.npz")
        save_s = time.perf_counter() - t0
    print(f"npz save (compressed): {args.frames / save_s:.1f} frames/s")
    print(f"load average {os.getloadavg()[0]:.2f} after")


if __name__ == "__main__":
    main()
