"""Render a dataset of people in motion with exact ground truth (frames, flow, masks, 2D/3D joints).

Writes DIR/clip_00000.npz ... and DIR/manifest.jsonl; the same seed gives the same bytes, and clips already in DIR
(same seed and parameters) are kept.
"""

from __future__ import annotations

import argparse

from hmore.errors import UsageError

HELP = "render synthetic clips of people with exact flow, masks and joints"


def _names(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


def parse_size(text: str) -> tuple[int, int]:
    """``"192x256"`` -> (192, 256); raises UsageError on anything else."""
    parts = text.lower().split("x")
    try:
        h, w = (int(p) for p in parts)
    except ValueError:
        raise UsageError(f"--size must be HxW (e.g. 192x256), got {text!r}") from None
    if h <= 0 or w <= 0:
        raise UsageError(f"--size must be positive, got {text!r}")
    return h, w


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", required=True, metavar="DIR", help="output folder")
    p.add_argument("--clips", type=int, default=1, metavar="N", help="number of clips (default 1)")
    p.add_argument("--frames", type=int, default=16, metavar="T", help="frames per clip (default 16)")
    p.add_argument("--size", default="192x256", metavar="HxW", help="frame size HxW (default 192x256)")
    p.add_argument("--subjects", type=int, default=1, metavar="P", help="people per clip (default 1)")
    p.add_argument("--seed", type=int, default=0, metavar="S", help="dataset seed (default 0)")
    p.add_argument("--actions", type=_names, default=None, help="comma-separated action names (default: any)")
    p.add_argument("--conditions", type=_names, default=None, help="comma-separated of normal,bag,coat (default: any)")
    p.add_argument("--views", default=None, help="comma-separated view angles 0-180 (default: 0,18,...,180)")
    p.add_argument("--identities", default=None,
                   help="comma-separated identity ids to draw people from (the same id is the same person in every "
                        "clip; default: new people)")
    p.add_argument("--camera", choices=("static", "pan", "track"), default="static", help="camera motion")
    p.add_argument("--shading", action=argparse.BooleanOptionalAction, default=False,
                   help="Lambert shading (off keeps brightness constancy exact; default off)")
    p.add_argument("--distractors", type=int, default=2, metavar="N",
                   help="moving background objects per clip (default 2)")
    p.add_argument("--overlap", type=float, default=0.0, help="subject overlap in [0, 1) (default 0)")
    p.add_argument("--bvh", default=None, metavar="FILE",
                   help="play this BVH file (.bvh or .bvh.gz) on every subject instead of actions")
    p.add_argument("--fps", type=float, default=30.0, help="frames per second (default 30)")
    p.add_argument("--body", choices=("capsule", "anny"), default="capsule",
                   help="body model: articulated capsules (default) or Anny meshes (phenotype-sampled people; needs "
                        "the body extra, and its first use builds Anny's cache, about 3 minutes)")
    p.add_argument("--workers", type=int, default=1, metavar="N",
                   help="processes rendering clips in parallel (default 1; the output does not depend on it)")


def run(args: argparse.Namespace) -> int:
    from hmore.io.atomic import check_output_dir
    from hmore.synth.dataset import MANIFEST, write_dataset

    check_output_dir(args.out, option="--out")
    size = parse_size(args.size)
    views = None
    if args.views is not None:
        try:
            views = [float(v) for v in _names(args.views)]
        except ValueError:
            raise UsageError(f"--views must be comma-separated numbers, got {args.views!r}") from None
    identities = None
    if args.identities is not None:
        try:
            identities = [int(v) for v in _names(args.identities)]
        except ValueError:
            raise UsageError(f"--identities must be comma-separated integers, got {args.identities!r}") from None
        if not identities:
            raise UsageError("--identities is empty")
    entries = write_dataset(
        args.out, clips=args.clips, seed=args.seed, workers=args.workers, size=size, num_frames=args.frames,
        subjects=args.subjects, actions=args.actions, conditions=args.conditions, views=views,
        identities=identities, camera_motion=args.camera, shading=args.shading, distractors=args.distractors,
        overlap=args.overlap, bvh=args.bvh, fps=args.fps, body=args.body,
    )
    print(f"wrote {len(entries)} clips and {MANIFEST} to {args.out}")
    return 0
