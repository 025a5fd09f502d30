"""Name the people of a probe video by their gait: ``hmore gait GALLERY PROBE -o OUT``.

The people of the gallery video are tracked (``hmore priors``: MediaPipe pose and masks) and enrolled as gallery
identities G<track id>; every person of the probe video gets its nearest gallery identities by gait (silhouette
sequences, plus flow for models trained with it). Writes ``OUT/gait.json`` and ``OUT/index.html`` (the tracks'
frames and silhouettes, and the nearest identities with their distances).
"""

from __future__ import annotations

import argparse
from pathlib import Path

HELP = "enrol the people of a gallery video and name the people of a probe video by their gait"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("gallery", type=Path, help="video whose people are enrolled")
    p.add_argument("probe", type=Path, help="video whose people are named")
    p.add_argument("-o", "--out", type=Path, required=True, help="output folder")
    p.add_argument("--weights", default="gaitbase_cpu_sil",
                   help="gait model: shipped weights name, .safetensors checkpoint or hmore train gait run folder "
                        "(default gaitbase_cpu_sil)")
    p.add_argument("--max-side", type=int, default=512, help="processing size, longer side (default 512)")
    p.add_argument("--stride", type=int, default=1, help="use every n-th frame (default 1)")
    p.add_argument("--min-frames", type=int, default=8, help="shortest track kept, in frames (default 8)")
    p.add_argument("--top", type=int, default=3, help="nearest gallery identities listed per probe (default 3)")


def run(args: argparse.Namespace) -> int:
    from hmore.gait.demo import run_gait_demo

    res = run_gait_demo(args.gallery, args.probe, args.out, weights=args.weights, max_side=args.max_side,
                        stride=args.stride, min_frames=args.min_frames, top=args.top)
    print(f"gallery: {', '.join(g['name'] for g in res['gallery'])}")
    for p in res["probes"]:
        near = ", ".join(f"{n['gallery']} ({n['distance']:.3f})" for n in p["nearest"])
        print(f"{p['name']} ({p['frames']} frames): {near}")
    print(f"wrote {args.out}/gait.json and {args.out}/index.html")
    return 0
