"""Classify the actions of skeleton clips: ``hmore classify INPUT [--weights NAME | --checkpoint RUN]``.

INPUT is a pyskl action pickle (every clip is classified; with labels, top-1 accuracy is printed), any keypoint
file ``hmore lift`` reads (its people), an NW-UCLA file (the shared ``nw_ucla_skeletons.npz`` with labels, a CTR-GCN
``all_sqe`` JSON or a (T, 20, 3) ``.npy``) or a video. A 3D H36M-17 model (``--weights action_ucla_stgcn``, the
shipped NW-UCLA model) lifts 2D keypoints and videos to 3D first with the shipped lifter and says when the skeleton
layouts differ; models and ensembles of Kinect's 20 joints take NW-UCLA files only. ``--ensemble A+B*0.5`` sums the
softmax scores of several models. Without a model option the shipped NW-UCLA models are used, and named:
``action_ucla_stgcn_k20`` for NW-UCLA files, ``action_ucla_stgcn`` for everything else.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import numpy as np

from hmore.commands.lift import image_size

HELP = "classify skeleton actions (pyskl pickle, keypoint file, NW-UCLA file or video) with an action model"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("input", type=Path, help="pyskl pickle, keypoint file, NW-UCLA file or video")
    src = p.add_mutually_exclusive_group()
    src.add_argument("--checkpoint", type=Path, help="action training run folder or checkpoint")
    src.add_argument("--weights", help="shipped action weights or ensemble name (default: action_ucla_stgcn_k20 "
                     "for NW-UCLA files, action_ucla_stgcn otherwise)")
    src.add_argument("--ensemble", help="score ensemble of action models, MEMBER[*WEIGHT]+MEMBER[*WEIGHT]... "
                     "(shipped weights names or run folders; softmax scores summed with the weights)")
    p.add_argument("--split", default=None, help="only this split of a pyskl pickle or of the NW-UCLA archive")
    p.add_argument("--top", type=int, default=3, help="classes to print per clip (default 3)")
    p.add_argument("--size", type=image_size, default=None,
                   help="image size WxH when a keypoint file does not give it")


DEFAULT_WEIGHTS = "action_ucla_stgcn"  # H36M-17: keypoint files and videos (lifted) as well as NW-UCLA files
DEFAULT_WEIGHTS_NW_UCLA = "action_ucla_stgcn_k20"  # Kinect's 20 joints: NW-UCLA files only, the better model there


def default_action_weights(path: Path) -> str:
    """The shipped action model ``hmore classify`` uses when none is given: the 20-joint NW-UCLA model for NW-UCLA
    files, the H36M-17 one (which lifts 2D keypoints and videos first) for everything else."""
    from hmore.lift.classify import is_nw_ucla_file

    return DEFAULT_WEIGHTS_NW_UCLA if Path(path).is_file() and is_nw_ucla_file(Path(path)) else DEFAULT_WEIGHTS


def run(args: argparse.Namespace) -> int:
    from hmore.errors import InputError, UsageError
    from hmore.lift.classify import classify_inputs, load_action_model, prepare_inputs, read_clips_first

    if args.top < 1:
        raise UsageError(f"--top must be at least 1, got {args.top}")
    clips = read_clips_first(args.input, size=args.size, split=args.split)  # the input is checked before the model
    weights = args.weights
    if weights is None and args.checkpoint is None and args.ensemble is None:
        weights = default_action_weights(args.input)
        print(f"model: {weights} (shipped, NW-UCLA's 10 actions; --weights, --checkpoint or --ensemble for another)",
              file=sys.stderr)
    am = load_action_model(checkpoint=args.checkpoint, weights=weights, ensemble=args.ensemble)
    prepared = prepare_inputs(am, args.input, size=args.size, split=args.split, clips=clips)
    beyond = sorted({lab for lab in prepared.labels if lab >= len(am.classes)})
    if beyond:
        raise InputError(f"{args.input}: labels {beyond} are beyond the model's {len(am.classes)} classes "
                         f"({', '.join(am.classes[:8])}{', ...' if len(am.classes) > 8 else ''}): the file's "
                         "classes are not the model's")
    unlabelled = [f"{n}={lab}" for n, lab in zip(prepared.names, prepared.labels) if lab < 0]
    if unlabelled and len(unlabelled) < len(prepared.names):
        logging.getLogger(__name__).warning(
            "%d clip(s) have a negative label (%s) and are counted as unlabelled: left out of the accuracy",
            len(unlabelled), ", ".join(unlabelled)[:200])
    for note in prepared.notes:
        print(note)
    prob = classify_inputs(am, prepared)
    for name, label, pr in zip(prepared.names, prepared.labels, prob):
        order = pr.argsort()[::-1][: args.top]
        best = ", ".join(f"{am.classes[k]} {pr[k]:.2f}" for k in order)
        truth = f" (true: {am.classes[label]})" if 0 <= label < len(am.classes) else ""
        print(f"{name}: {best}{truth}")
    labelled = [i for i, lab in enumerate(prepared.labels) if lab >= 0]
    if labelled:
        acc = np.mean([prob[i].argmax() == prepared.labels[i] for i in labelled])
        print(f"top-1 accuracy: {acc:.3f} on {len(labelled)} labelled clips")
    return 0
