"""Classify the actions of skeleton clips: ``hmore classify INPUT --checkpoint RUN``.

INPUT is a pyskl action pickle (every clip is classified; with labels, top-1 accuracy is printed) or any keypoint
file ``hmore lift`` reads (one clip, all its people). The model comes from ``hmore train action``.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import numpy as np

from hmore.commands.lift import image_size

HELP = "classify skeleton actions (pyskl pickle or keypoint file) with a trained action model"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("input", type=Path, help="pyskl action pickle or keypoint file")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--checkpoint", type=Path, help="action training run folder or checkpoint")
    src.add_argument("--weights", help="shipped action weights name")
    p.add_argument("--split", default=None, help="only this split of a pyskl pickle (e.g. test)")
    p.add_argument("--top", type=int, default=3, help="classes to print per clip (default 3)")
    p.add_argument("--size", type=image_size, default=None,
                   help="image size WxH when a keypoint file does not give it")


def run(args: argparse.Namespace) -> int:
    from hmore.errors import InputError, UsageError
    from hmore.lift.actions import read_action_pickle
    from hmore.lift.classify import classify_clips, load_action_model, read_action_clips

    if args.top < 1:
        raise UsageError(f"--top must be at least 1, got {args.top}")
    if args.split:  # the input is read (and checked) before the model
        clips = read_action_pickle(args.input).subset(args.split)
    else:
        clips = read_action_clips(args.input, size=args.size)
    am = load_action_model(checkpoint=args.checkpoint, weights=args.weights)
    beyond = sorted({c.label for c in clips if c.label >= len(am.classes)})
    if beyond:
        raise InputError(f"{args.input}: labels {beyond} are beyond the model's {len(am.classes)} classes "
                         f"({', '.join(am.classes[:8])}{', ...' if len(am.classes) > 8 else ''}): the file's "
                         "classes are not the model's")
    unlabelled = [c.name for c in clips if c.label < 0]
    if unlabelled and len(unlabelled) < len(clips):
        logging.getLogger(__name__).warning(
            "%d clip(s) have a negative label (%s) and are counted as unlabelled: left out of the accuracy",
            len(unlabelled), ", ".join(f"{c.name}={c.label}" for c in clips if c.label < 0)[:200])
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
