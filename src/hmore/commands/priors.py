"""Extract 2D pose, person masks and boundaries (the H-MoRe priors) from a video, an image, an image folder or a folder
of videos: writes priors.npz, an overlay preview.mp4 and index.html per video.

People are found by MediaPipe's BlazePose person detector on the whole frame and on tiles (small people), tracked
from frame to frame, and completed from what the person segmentation covers but nobody explains. Joints the model
does not see (outside the frame or the person's crop) are reported missing (score 0); implausible skeletons are
rejected. Confirmation: a track detected in fewer than 5 frames is dropped as spurious, except in inputs of fewer
than 5 frames (a single image, a 2-frame clip), where every person found is kept."""

from __future__ import annotations

import argparse
from pathlib import Path

from hmore.errors import InputError, UsageError

HELP = "2D keypoints, person masks and boundaries of a video (or a folder of videos)"


def _box(text: str) -> tuple[float, float, float, float]:
    try:
        x0, y0, x1, y1 = (float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"a box is x0,y0,x1,y1 in pixels, got {text!r}") from None
    if not (x1 > x0 and y1 > y0):
        raise argparse.ArgumentTypeError(f"a box needs x1 > x0 and y1 > y0, got {text!r}")
    return x0, y0, x1, y1


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("input", type=Path, help="video file, folder of frames, or folder of videos")
    p.add_argument("-o", "--out", type=Path, required=True, help="output folder")
    p.add_argument("--backend", choices=("mediapipe", "file"), default="mediapipe", help="pose backend")
    p.add_argument("--keypoints", type=Path, help="keypoint file for --backend file (COCO/AlphaPose/OpenPose/...)")
    p.add_argument("--max-side", type=int, default=960, help="process frames scaled to this longer side (0: full)")
    p.add_argument("--stride", type=int, default=1, help="process every n-th frame")
    p.add_argument("--start", type=int, default=0, help="first frame")
    p.add_argument("--end", type=int, default=None, help="frame to stop before")
    p.add_argument("--box", type=_box, action="append", default=[], metavar="X0,Y0,X1,Y1",
                   help="a person box to search in every frame (repeatable)")
    p.add_argument("--max-people", type=int, default=20, help="most people per frame (MediaPipe)")
    p.add_argument("--detector", choices=("blazepose", "hog", "none"), default="blazepose",
                   help="person proposals for MediaPipe: BlazePose's detector on the frame and tiles (default), "
                        "OpenCV's HOG (the former default), or none (tracked people and --box only)")
    p.add_argument("--no-preview", action="store_true", help="skip preview.mp4")
    p.add_argument("--preview-side", type=int, default=640, help="longer side of preview.mp4")
    p.add_argument("--shard", default=None, metavar="I/N", help="folder mode: process videos k with k %% N == I")
    p.add_argument("--cache-dir", type=Path, default=None, help="cache folder (default OUT/.cache)")
    p.add_argument("--force", action="store_true", help="recompute even when the output or cache is there")


def run(args: argparse.Namespace) -> int:
    from hmore.io.atomic import check_output_dir
    from hmore.io.video import probe_video
    from hmore.priors.batch import PriorsSettings, collect_inputs, parse_shard, run_priors
    from hmore.priors.pose import create_estimator

    if args.stride < 1 or args.max_side < 0 or args.max_people < 1 or args.preview_side < 16:
        raise UsageError("--stride and --max-people must be >= 1, --max-side >= 0, --preview-side >= 16")
    if (args.backend == "file") != (args.keypoints is not None):
        raise UsageError("--keypoints goes with --backend file (and --backend file needs --keypoints)")
    shard = parse_shard(args.shard)
    check_output_dir(args.out)
    inputs, folder_mode = collect_inputs(args.input)
    if args.backend == "file" and folder_mode:
        raise UsageError("--backend file takes one video, not a folder of videos")
    if not folder_mode:
        probe_video(inputs[0])  # a missing or unreadable video is reported before the pose backend loads
    settings = PriorsSettings(max_side=args.max_side or None, stride=args.stride, start=args.start, end=args.end,
                              boxes=tuple(args.box), max_people=args.max_people)
    if args.backend == "file":
        estimator = create_estimator("file", path=args.keypoints)
    else:
        estimator = create_estimator("mediapipe", max_people=args.max_people, detector=args.detector)
    results = run_priors(inputs, args.out, estimator=estimator, settings=settings, folder_mode=folder_mode,
                         root=args.input if folder_mode else None, shard=shard, cache_dir=args.cache_dir,
                         preview=not args.no_preview, preview_side=args.preview_side, force=args.force)
    failed = [r for r in results if r.status == "failed"]
    for r in results:
        if r.status == "failed":
            print(f"{r.video}: failed: {r.message}")
        else:
            print(f"{r.video}: {r.status}, {r.frames} frames, {r.people} people -> {r.out_dir / 'priors.npz'}")
    if failed:
        raise InputError(f"{len(failed)} of {len(results)} videos failed (first: {failed[0].video.name}: "
                         f"{failed[0].message})"[:400])
    return 0
