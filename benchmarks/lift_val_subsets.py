"""How far an every-n-th-window subset of Human3.6M's validation trials is from all their frames, for the sampling
``hmore.lift.h36m.predict`` uses now and for the one it used until the fourteenth session.

Validation (S8's held-out trials, :func:`hmore.lift.h36m.split_validation`, as ``hmore train lift_h36m`` scores
them, no flip) of every model of ``--models``, Protocol 1 in mm on SH detections and ground-truth 2D, three ways:

- ``first``: every n-th window of each sequence starting with its first (the sampling before the fourteenth
  session; recorded in the validation figures of the earlier training legs);
- ``offset``: every n-th window from each sequence's :func:`hmore.lift.h36m.sample_offset` (now);
- ``all``: every frame.

A model of every 3rd frame has 79-frame windows, so a sequence holds few of them and ``first`` leans on the
sequences' starts. Needs Human3.6M under ``$HMORE_DATA`` (default ``../shared/data``).

Usage:
  OMP_NUM_THREADS=1 python benchmarks/lift_val_subsets.py \\
      --models c=legs/dstformer_cpu_h36m_pose1_c.safetensors d=legs/dstformer_cpu_h36m_pose1_d.safetensors
"""

from __future__ import annotations

import argparse
from unittest import mock

import torch


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", nargs="+", required=True,
                    help="NAME=PATH (checkpoint or exported .safetensors) or a shipped weights name")
    ap.add_argument("--config", default="configs/lift_h36m_pose1_c.yaml",
                    help="a lift_h36m recipe: its data section gives the validation split")
    ap.add_argument("--every", type=int, default=8, help="every n-th window (the recipes' data.val_every)")
    args = ap.parse_args()

    import hmore.lift.h36m as h36m
    from hmore.config import load_config
    from hmore.lift.pipeline import load_lifter
    from hmore.paths import shared_data
    from hmore.train.tasks.lift_h36m import H36MLiftRunConfig, H36MLiftTask

    if not shared_data("h36m").is_dir():
        raise SystemExit(f"skipped: no Human3.6M at {shared_data('h36m')} (set HMORE_DATA)")
    torch.set_num_threads(1)
    _, val = H36MLiftTask(config=load_config(H36MLiftRunConfig, args.config)).arrays()
    ways = {"first": (args.every, lambda example, every: 0), "offset": (args.every, None), "all": (1, None)}
    print(f"| model | sampling | SH P1 | GT P1 | frames (of {val.num_frames}) |")
    print("|---|---|---|---|---|")
    for spec in args.models:
        name, _, path = spec.partition("=")
        model = (load_lifter(checkpoint=path) if path else load_lifter(weights=name)).float().eval()
        for way, (every, offset) in ways.items():
            with mock.patch.object(h36m, "sample_offset", offset or h36m.sample_offset):
                r = {src: h36m.evaluate(model, val, source=src, flip=False, every=every) for src in ("sh", "gt")}
            print(f"| {name} | {way} | {r['sh'].p1:.1f} | {r['gt'].p1:.1f} | {r['sh'].frames} |", flush=True)


if __name__ == "__main__":
    main()
