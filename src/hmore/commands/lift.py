"""Lift people's 2D keypoints to 3D: ``hmore lift INPUT -o OUT``.

INPUT is a keypoint file (COCO results or ground truth JSON, AlphaPose, OpenPose folder, pyskl pickle, hmore
``priors.npz``), a generated clip ``.npz`` (its ground truth is used to score the result) or a video (through the
pose priors). Every person gets one 3D track over the whole clip (any length: overlapping windows are blended);
frames without a detection are interpolated and flagged. Writes OUT/pose3d.npz, OUT/preview.mp4 and OUT/index.html.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from hmore.errors import UsageError
from hmore.lift import DEFAULT_LIFTER

HELP = "lift 2D keypoints (file, generated clip or video) to 3D skeletons with DSTformer"


def image_size(text: str) -> tuple[int, int]:
    """``"1920x1080"`` -> (1920, 1080) (width, height) for argparse; positive integers only."""
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"size must look like 1920x1080, got {text!r}") from None
    if w <= 0 or h <= 0:
        raise argparse.ArgumentTypeError(f"size must be positive, got {text!r}")
    return w, h


def add_input_arguments(p: argparse.ArgumentParser, *, default_weights: str) -> None:
    """The input, output and model options that ``hmore lift`` and ``hmore mesh`` share."""
    p.add_argument("input", type=Path, help="keypoint file/folder, generated clip .npz or video")
    p.add_argument("-o", "--out", type=Path, required=True, help="output folder")
    src = p.add_mutually_exclusive_group()
    src.add_argument("--weights", default=None, help=f"shipped weights name (default: {default_weights})")
    src.add_argument("--checkpoint", type=Path, default=None, help="a training run folder or checkpoint instead")
    p.add_argument("--size", type=image_size, default=None, help="image size WxH when the file does not give it")
    p.add_argument("--fps", type=float, default=None, help="frame rate when the file does not give it")


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_input_arguments(p, default_weights=DEFAULT_LIFTER)
    p.add_argument("--clip", default=None,
                   help="clip (pyskl pickle) or video (PoseTrack-style file) to lift, by name or index")
    p.add_argument("--window", type=int, default=None, help="frames per window (default: the model's maximum)")
    p.add_argument("--stride", type=int, default=None, help="step between windows (default: half a window)")
    p.add_argument("--no-flip", dest="flip", action="store_false", help="skip test-time flip averaging")
    p.add_argument("--trajectory", action="store_true", help="also estimate the camera-frame root trajectory")
    p.add_argument("--focal", type=float, default=None, help="focal length in pixels for --trajectory")
    p.add_argument("--no-video", dest="video", action="store_false", help="skip the preview video")


def run(args: argparse.Namespace) -> int:
    import logging
    import math
    import sys

    from hmore.io.atomic import check_output_dir
    from hmore.lift.pipeline import DEFAULT_WEIGHTS, lift_file, load_lifter

    for name in ("window", "stride"):
        v = getattr(args, name)
        if v is not None and v <= 0:
            raise UsageError(f"--{name} must be positive, got {v}")
    for name in ("fps", "focal"):
        v = getattr(args, name)
        if v is not None and not (math.isfinite(v) and v > 0):
            raise UsageError(f"--{name} must be a finite number > 0, got {v:g}")
    if args.focal is not None and not args.trajectory:
        logging.getLogger(__name__).warning("--focal is only used with --trajectory; ignoring it")
    check_output_dir(args.out)
    clip = args.clip
    model = load_lifter(weights=args.weights, checkpoint=args.checkpoint)
    max_len = getattr(getattr(model, "config", None), "max_len", None)
    if args.window is not None and max_len is not None and args.window > max_len:
        raise UsageError(f"--window {args.window} is longer than the model's maximum of {max_len} frames")
    name = str(args.checkpoint) if args.checkpoint else (args.weights or DEFAULT_WEIGHTS)
    res = lift_file(args.input, args.out, model=model, size=args.size, fps=args.fps, clip=clip, window=args.window,
                    stride=args.stride, flip=args.flip, trajectory=args.trajectory, focal=args.focal,
                    video=args.video, model_name=name, progress=sys.stderr.isatty())
    fps = res.num_frames * res.num_people / max(res.seconds, 1e-9)
    print(f"lift: {res.num_people} people x {res.num_frames} frames ({res.interpolated_frames} interpolated) in "
          f"{res.seconds:.2f} s ({fps:.0f} person-frames/s) -> {res.pose3d}")
    if res.mpjpe_mm is not None:
        print(f"  against the clip's ground truth: MPJPE {res.mpjpe_mm:.1f} mm, P-MPJPE {res.p_mpjpe_mm:.1f} mm")
    print(f"  open {res.index}")
    return 0
