"""Classify the actions of skeleton clips: ``hmore classify INPUT --checkpoint RUN``.

INPUT is a pyskl action pickle (every clip is classified; with labels, top-1 accuracy is printed) or any keypoint
file ``hmore lift`` reads (one clip, all its people). The model comes from ``hmore train action``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

HELP = "classify skeleton actions (pyskl pickle or keypoint file) with a trained action model"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("input", type=Path, help="pyskl action pickle or keypoint file")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--checkpoint", type=Path, help="action training run folder or checkpoint")
    src.add_argument("--weights", help="shipped action weights name")
    p.add_argument("--split", default=None, help="only this split of a pyskl pickle (e.g. test)")
    p.add_argument("--top", type=int, default=3, help="classes to print per clip (default 3)")
    p.add_argument("--size", default=None, help="image size WxH when a keypoint file does not give it")


def run(args: argparse.Namespace) -> int:
    from hmore.errors import UsageError
    from hmore.lift.actions import read_action_pickle
    from hmore.lift.classify import classify_clips, load_action_model, read_action_clips

    if args.top < 1:
        raise UsageError(f"--top must be at least 1, got {args.top}")
    size = None
    if args.size:
        try:
            size = tuple(int(v) for v in args.size.lower().split("x"))
        except ValueError:
            raise UsageError(f"--size must look like 1920x1080, got {args.size!r}") from None
    am = load_action_model(checkpoint=args.checkpoint, weights=args.weights)
    if args.split:
        clips = read_action_pickle(args.input).subset(args.split)
    else:
        clips = read_action_clips(args.input, size=size)
    prob = classify_clips(am, clips)
    for c, pr in zip(clips, prob):
        order = pr.argsort()[::-1][: args.top]
        best = ", ".join(f"{am.classes[k]} {pr[k]:.2f}" for k in order)
        truth = f" (true: {am.classes[c.label]})" if 0 <= c.label < len(am.classes) else ""
        print(f"{c.name}: {best}{truth}")
    labelled = [i for i, c in enumerate(clips) if c.label >= 0]
    if labelled:
        acc = np.mean([prob[i].argmax() == clips[i].label for i in labelled])
        print(f"top-1 accuracy: {acc:.3f} on {len(labelled)} labelled clips")
    return 0
