"""H-MoRe world and local flow of a video, an image folder, a generated clip (.npz, with its exact masks) or a folder
of videos: writes flow.npz (world, local, subject_velocity, masks, camera), preview.mp4 (frame | world | local |
camera) and index.html per clip. World flow is relative to the scene: the camera's motion, fitted on the background,
is removed (--camera). Streams: memory does not grow with the clip's length. In folder mode, a clip is done when all
its outputs exist (meta.json, written last, marks it complete); done clips are skipped (resume), and a clip that
fails is reported and skipped: the others go on, and the command ends with a summary and exit code 1."""

from __future__ import annotations

import argparse
import itertools
import logging
import sys
import time
from pathlib import Path

import numpy as np
from tqdm import tqdm

from hmore.errors import InputError, UsageError

HELP = "world/local flow (H-MoRe) of a video or a folder of videos"
log = logging.getLogger(__name__)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("input", type=Path, help="video file, folder of frames, or folder of videos")
    p.add_argument("-o", "--out", type=Path, required=True, help="output folder")
    p.add_argument("--model", default="hmore_flow_cpu", help="registered flow model (default hmore_flow_cpu)")
    p.add_argument("--weights", type=Path, default=None,
                   help="a .safetensors file for --model, or the name of other shipped weights of it "
                        "(default: the shipped weights)")
    p.add_argument("--size", type=int, default=None, help="longer side of the processing size (default 512)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1 ...")
    p.add_argument("--stride", type=int, default=1, help="use every n-th frame")
    p.add_argument("--iters", type=int, default=None, help="refinement iterations (default: the model's)")
    p.add_argument("--masks", default="auto",
                   help="auto (person masks from hmore.priors, else the whole frame), priors, whole, "
                        "or a priors.npz from `hmore priors`")
    p.add_argument("--camera", choices=("homography", "affine", "off"), default="homography",
                   help="camera compensation: the camera's motion, fitted on the background, is removed from the "
                        "world flow (default homography; off keeps the optical flow)")
    p.add_argument("--refine", choices=("variational", "search", "off"), default="variational",
                   help="photometric refinement of the flow inside the people (default variational: the network's "
                        "flow is refined against the frames inside the dilated person masks, as DIS's last step; "
                        "the background keeps the network's flow); search: first a DIS search started from the "
                        "network's flow, each pixel keeping the flow with the lower census cost (opt-in, for fast "
                        "limbs; about 7 ms more a pair at 256x192); off: the network's flow as it is")
    p.add_argument("--zoom", choices=("auto", "off"), default="off",
                   help="small people: auto gives a person under 128 px at the processing size a second pass of the "
                        "network on a crop around them enlarged 2-3x (at most 4 people a pair; better flow inside "
                        "small people, up to ~2x the time); default off: one pass")
    p.add_argument("--subject-motion", choices=("pose", "median", "psi"), default="pose",
                   help="v_s that local flow is relative to: the pelvis of the pose track (default; the median flow "
                        "where there is no pose), each person's median flow, or the subject network Psi")
    p.add_argument("--float16", action="store_true", help="store world/local/camera flow as float16")
    p.add_argument("--no-preview", action="store_true", help="skip preview.mp4 and index.html")
    p.add_argument("--shard", default=None, metavar="I/N", help="folder mode: process videos k with k %% N == I")
    p.add_argument("--force", action="store_true", help="recompute clips whose flow.npz exists")
    p.add_argument("--threads", type=int, default=None,
                   help="CPU threads for torch and OpenCV (default: half the cores, at least 1: the network runs on "
                        "them while a worker thread encodes the next frame and does the OpenCV work on the other "
                        "half; with more threads than that the stages run in turn: benchmarks/flow_stream.py)")


def _preview_frame(pair: object) -> np.ndarray:
    from hmore.report.flowviz import flow_to_color, robust_max_magnitude

    world = pair.world.transpose(1, 2, 0)  # (H, W, 2)
    local = pair.local.transpose(1, 2, 0)
    camera = pair.camera_field().transpose(1, 2, 0)
    scale = max(robust_max_magnitude(world), 1.0)  # one scale per pair, shared by world, local and camera
    return np.concatenate([pair.frame, flow_to_color(world, max_mag=scale), flow_to_color(local, max_mag=scale),
                           flow_to_color(camera, max_mag=scale)], axis=1)  # (H, 4W, 3)


def process_clip(src: Path, out_dir: Path, args: argparse.Namespace) -> dict:
    """Flow of one clip into ``out_dir``; returns the summary written to ``meta.json``."""
    from hmore.flow.inference import iter_flow, source_fps, write_flow_npz
    from hmore.io.atomic import write_json_atomic

    masks = args.masks if args.masks in ("auto", "priors", "whole") else Path(args.masks)
    info: dict = {}
    pairs = iter_flow(src, model=args.model, size=args.size, device=args.device, stride=args.stride, masks=masks,
                      weights=args.weights, iters=args.iters, info=info, camera=args.camera, refine=args.refine,
                      subject_motion=args.subject_motion, zoom=args.zoom)
    fps = source_fps(src, args.stride)
    t0 = time.perf_counter()
    first = next(pairs, None)  # the model, masks and first frames are checked before any output is written
    if first is None:
        raise InputError(f"{src}: fewer than 2 frames selected: no frame pair to compute flow on")
    to_first = time.perf_counter() - t0  # start-up: model, masks (the priors pass), the first pair
    pairs = itertools.chain([first], pairs)
    out_dir.mkdir(parents=True, exist_ok=True)
    dtype = "float16" if args.float16 else "float32"
    if args.no_preview:
        n = write_flow_npz(out_dir / "flow.npz", pairs, dtype=dtype, meta={"fps": fps})
    else:
        from hmore.io.video import write_video

        n = _write_both(out_dir, pairs, dtype, fps, write_video)
    elapsed = time.perf_counter() - t0
    meta = {"source": str(src), "pairs": n, "fps": fps, "seconds": round(elapsed, 2),
            "pairs_per_second": round(n / max(elapsed, 1e-9), 3), "seconds_to_first_pair": round(to_first, 2),
            "pairs_per_second_after_first": (round((n - 1) / max(elapsed - to_first, 1e-9), 3) if n > 1 else None),
            "dtype": dtype, "stride": args.stride,
            "size": args.size, **info}
    if not args.no_preview:
        _write_index(out_dir, meta)
    write_json_atomic(out_dir / "meta.json", meta)  # last: the clip's completion marker
    return meta


def clip_done(out_dir: Path, *, preview: bool) -> bool:
    """Whether every output of a clip exists (``meta.json`` is written last, after the others)."""
    names = ["flow.npz", "meta.json"] + (["preview.mp4", "index.html"] if preview else [])
    return all((out_dir / n).is_file() for n in names)


def _write_both(out_dir: Path, pairs: object, dtype: str, fps: float, write_video: object) -> int:
    """Write flow.npz and preview.mp4 from one pass over ``pairs`` (at least one): the video writer pulls preview
    frames from a generator that also appends each pair to the npz writer, so nothing is held beyond one pair."""
    from hmore.flow.inference import StreamingNpzWriter, append_pair, camera_notes_array

    writer = StreamingNpzWriter(out_dir / "flow.npz")
    count = {"n": 0}
    notes: list[str] = []

    def preview_frames() -> object:
        for pair in pairs:
            append_pair(writer, pair, dtype, notes)
            count["n"] += 1
            yield _preview_frame(pair)

    try:
        write_video(out_dir / "preview.mp4", preview_frames(), fps, preset="ultrafast")
    except BaseException:
        writer.discard()
        raise
    writer.close(fps=np.float64(fps), camera_note=camera_notes_array(notes))
    return count["n"]


def _write_index(out_dir: Path, meta: dict) -> None:
    try:
        from hmore.report.html import Report
    except ImportError:  # pragma: no cover - the report module ships with the package
        return
    report = Report(f"hmore flow: {Path(meta['source']).name}",
                    intro="World flow (motion relative to the scene) and local flow (motion relative to each "
                          "subject) from H-MoRe. Colours: Middlebury wheel, white = no motion, one scale per frame "
                          "shared by world and local.")
    report.add_figure(out_dir / "preview.mp4", "frame | world flow | local flow | camera-induced flow (removed from "
                      "the world flow)")
    rows = [[k, v] for k, v in meta.items() if not isinstance(v, (dict, list))]
    report.add_table(rows, header=["", "value"])
    if meta.get("weights") == "random":
        report.add_text("WARNING: no trained weights were available; the model was randomly initialised and its "
                        "flow is meaningless.")
    if meta.get("mask_source") == "whole":
        report.add_text("No person masks: one subject = the whole frame (local flow is relative to the frame's "
                        "overall motion).")
    report.add_code(" ".join(["hmore", *sys.argv[1:]]) if sys.argv[1:] else "hmore flow ...")
    report.save(out_dir / "index.html")


def run(args: argparse.Namespace) -> int:
    from hmore.flow.inference import MASK_MODES, check_flow_model_name, load_flow_model, resolve_device
    from hmore.io.atomic import check_output_dir
    from hmore.priors.batch import collect_inputs, parse_shard

    if args.stride < 1:
        raise UsageError(f"--stride must be >= 1, got {args.stride}")
    if args.size is not None and args.size < 16:
        raise UsageError(f"--size must be >= 16, got {args.size}")
    if args.iters is not None and args.iters < 1:
        raise UsageError(f"--iters must be >= 1, got {args.iters}")
    resolve_device(args.device)
    check_flow_model_name(args.model)
    if args.weights is not None:  # checked once here: a wrong file is not the fault of every clip of a folder
        load_flow_model(args.model, weights=args.weights, device="cpu")
    if args.masks not in MASK_MODES and not Path(args.masks).is_file():
        raise UsageError(f"--masks must be {', '.join(MASK_MODES)} or a priors.npz file from `hmore priors`; "
                         f"{args.masks!r} is none of these")
    check_output_dir(args.out)
    if args.threads is not None and args.threads < 1:
        raise UsageError(f"--threads must be >= 1, got {args.threads}")
    from hmore.bench.flow_bench import set_threads
    from hmore.flow.inference import stream_threads

    set_threads(stream_threads() if args.threads is None else args.threads)
    shard_i, shard_n = parse_shard(args.shard)
    inputs, folder = collect_inputs(args.input)
    if not folder:
        meta = process_clip(inputs[0], args.out, args)
        print(f"{meta['pairs']} pairs -> {args.out / 'flow.npz'} ({meta['pairs_per_second']} pairs/s, "
              f"masks: {meta['mask_source']}, weights: {meta['weights']})")
        return 0
    mine = [v for k, v in enumerate(inputs) if k % shard_n == shard_i]
    done = skipped = 0
    failed: list[tuple[Path, str]] = []
    for video in tqdm(mine, disable=not sys.stderr.isatty(), desc="videos", unit="video"):
        rel = video.relative_to(args.input).with_suffix("")
        out_dir = args.out / rel
        if clip_done(out_dir, preview=not args.no_preview) and not args.force:
            skipped += 1
            continue
        try:
            process_clip(video, out_dir, args)
        except InputError as exc:  # a bad clip: report it and go on (usage errors stop the run)
            print(f"{video}: failed: {exc}")
            failed.append((video, str(exc)))
            continue
        done += 1
    print(f"{done} videos processed, {skipped} skipped (done before), {len(failed)} failed -> {args.out}")
    if failed:
        first = failed[0]
        raise InputError(f"{len(failed)} of {len(mine)} videos failed (first: {first[0].name}: {first[1]})"[:400])
    return 0
