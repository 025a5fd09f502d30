"""Speed of the whole ``hmore flow`` command (issue 13's goal: >= 8 pairs/s at 256x192 with default settings on
2 cores, camera compensation included, in the same run as DIS).

Each round renders nothing new: one generated held-out clip (``hmore synth``, panning camera, 2 people, 256x192) is
made once; then ``hmore flow CLIP -o OUT`` runs in a fresh process per round (imports, model loading, the clip's
masks, flow, ``flow.npz``, ``preview.mp4``, ``index.html``), with default settings and with ``--no-preview``, and
OpenCV DIS (medium) times the same frames in this process. Interleaved round by round, so a change of load hits all
rows alike. Columns (medians over rounds): ``pairs/s`` of the whole command as it reports it (start-up included),
``after first`` the pairs/s after the first pair (what a long video approaches), ``start s`` seconds to the first
pair, ``x DIS`` the whole-command pairs/s over DIS's.

Usage: python benchmarks/flow_command.py [--frames 121] [--rounds 3] [--camera pan] [--threads N]
       [--baseline-src DIR] [--variant '--refine search']
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np


def _hmore(*args: str, src: str | None = None) -> None:
    env = None if src is None else {**os.environ, "PYTHONPATH": src}
    subprocess.run([sys.executable, "-m", "hmore", *args], check=True, stdout=subprocess.DEVNULL, env=env)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=121)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--camera", default="pan", choices=["static", "pan", "track"])
    ap.add_argument("--threads", type=int, default=None, help="hmore flow --threads (default: its own default)")
    ap.add_argument("--baseline-src", default=None, metavar="DIR",
                    help="also time `hmore flow` from another source tree (its src/ folder, e.g. a clone of an "
                         "earlier commit), interleaved with this one: an A/B in the same run")
    ap.add_argument("--variant", action="append", default=[], metavar="FLAGS",
                    help="an extra row: `hmore flow` with these flags (e.g. '--refine search'); repeatable")
    args = ap.parse_args()
    from hmore.synth.clip import load_clip

    rows: dict[str, dict[str, list[float]]] = {}
    with tempfile.TemporaryDirectory(prefix="hmore-flow-command-") as tmp:
        data = Path(tmp) / "clip"
        _hmore("synth", "--out", str(data), "--frames", str(args.frames), "--camera", args.camera, "--subjects", "2",
               "--seed", "20261201", "--size", "192x256")
        clip_path = data / "clip_00000.npz"
        grey = [cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in load_clip(clip_path).frames]
        dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
        extra = [] if args.threads is None else ["--threads", str(args.threads)]
        variants: dict[str, tuple[list[str], str | None]] = {"hmore flow": ([], None),
                                                             "hmore flow --no-preview": (["--no-preview"], None)}
        for flags in args.variant:
            variants[f"hmore flow {flags}"] = (flags.split(), None)
        if args.baseline_src:
            variants["baseline hmore flow"] = ([], args.baseline_src)
        for r in range(args.rounds):
            for k, (name, (flags, src)) in enumerate(variants.items()):
                out = Path(tmp) / f"out_{r}_{k}"
                t0 = time.perf_counter()
                _hmore("flow", str(clip_path), "-o", str(out), *flags, *extra, src=src)
                wall = time.perf_counter() - t0
                meta = json.loads((out / "meta.json").read_text())
                row = rows.setdefault(name, {"pairs/s": [], "after first": [], "start s": [], "process s": [],
                                             "load": []})
                row["pairs/s"].append(meta["pairs_per_second"])
                for col, key in (("after first", "pairs_per_second_after_first"),
                                 ("start s", "seconds_to_first_pair")):
                    if meta.get(key) is not None:  # (an earlier hmore's meta.json may lack them)
                        row[col].append(meta[key])
                row["process s"].append(wall)
                row["load"].append(os.getloadavg()[0])
            t0 = time.perf_counter()
            for a, b in zip(grey[:-1], grey[1:]):
                dis.calc(a, b, None)
            row = rows.setdefault("dis", {"pairs/s": [], "load": []})
            row["pairs/s"].append((len(grey) - 1) / (time.perf_counter() - t0))
            row["load"].append(os.getloadavg()[0])
    ref = statistics.median(rows["dis"]["pairs/s"])
    print(f"{args.frames - 1} pairs at 256x192 ({args.camera} camera, 2 people), {args.rounds} interleaved rounds, "
          f"{os.cpu_count()} CPUs; hmore flow {' '.join(extra) or 'default threads'}\n")
    cols = ["pairs/s", "after first", "start s", "process s"]
    print(f"{'row':<26}" + "".join(f"{c:>12}" for c in cols) + f"{'x DIS':>8}{'load':>7}")
    for name, row in rows.items():
        vals = "".join(f"{statistics.median(row[c]):>12.2f}" if row.get(c) else f"{'-':>12}" for c in cols)
        print(f"{name:<26}{vals}{statistics.median(row['pairs/s']) / ref:>8.3f}{float(np.mean(row['load'])):>7.2f}")


if __name__ == "__main__":
    main()
