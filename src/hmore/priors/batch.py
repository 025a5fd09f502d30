"""Priors for one video or a folder of videos: outputs on disk, a content-hash cache, resume and shards.

For each video, ``OUT[/<name>]/`` gets ``priors.npz`` (:mod:`hmore.priors.pipeline`), ``preview.mp4`` (masks and
skeletons over the frames), ``meta.json`` (settings, timings, cache key) and ``index.html``. A cache folder keeps
``priors.npz`` by ``sha256(video bytes) + backend version + settings``: a video already done (in this folder or
under another name) is copied instead of processed again, so an interrupted run resumes where it stopped.
"""

from __future__ import annotations

import hashlib
import json
import logging
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from hmore.errors import InputError, UsageError
from hmore.io.atomic import write_json_atomic
from hmore.io.video import IMAGE_SUFFIXES, find_videos, list_images, write_video
from hmore.priors.pipeline import Priors, extract_priors, load_priors, render_preview, save_priors
from hmore.priors.pose import PoseEstimator

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class PriorsSettings:
    """What changes the priors of a video (part of the cache key).

    Attributes:
        max_side: processing size (longer side, pixels).
        stride: process every n-th frame.
        start: first frame.
        end: frame to stop before (None: the end).
        boxes: user person boxes (x0, y0, x1, y1) in source pixels.
        max_people: most people per frame.
    """

    max_side: int | None = 960
    stride: int = 1
    start: int = 0
    end: int | None = None
    boxes: tuple[tuple[float, float, float, float], ...] = ()
    max_people: int = 20


@dataclass(frozen=True)
class VideoResult:
    """What happened to one video.

    Attributes:
        video: the input.
        out_dir: its output folder.
        status: ``"done"``, ``"cached"`` (copied from the cache), ``"skipped"`` (output already there) or ``"failed"``.
        frames: frames processed.
        people: tracks found.
        message: the error for a failed video, else empty.
    """

    video: Path
    out_dir: Path
    status: str
    frames: int = 0
    people: int = 0
    message: str = ""


def content_hash(path: str | Path, *, chunk: int = 1 << 20) -> str:
    """sha256 of a file's bytes, or of an image folder's file names and bytes (hex)."""
    path = Path(path)
    h = hashlib.sha256()
    files = list_images(path) if path.is_dir() else [path]
    for f in files:
        if path.is_dir():
            h.update(f.name.encode() + b"\0")
        with f.open("rb") as fh:
            while block := fh.read(chunk):
                h.update(block)
    return h.hexdigest()


def cache_key(video: str | Path, backend_version: str, settings: PriorsSettings) -> str:
    """The cache key of a video's priors: content hash, backend version and settings."""
    blob = json.dumps({"backend": backend_version, "settings": asdict(settings)}, sort_keys=True)
    return f"{content_hash(video)[:24]}-{hashlib.sha256(blob.encode()).hexdigest()[:12]}"


def parse_shard(text: str | None) -> tuple[int, int]:
    """``"i/n"`` -> (i, n) with 0 <= i < n; None -> (0, 1)."""
    if text is None:
        return 0, 1
    try:
        i, n = (int(v) for v in text.split("/"))
    except ValueError:
        raise UsageError(f"--shard must be i/n with integers, e.g. 0/4; got {text!r}") from None
    if not (n >= 1 and 0 <= i < n):
        raise UsageError(f"--shard i/n needs 0 <= i < n, got {text!r}")
    return i, n


def collect_inputs(path: str | Path) -> tuple[list[Path], bool]:
    """The videos to process and whether ``path`` is a folder of videos (rather than one video or image folder)."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"no such file or folder: {path}")
    if path.is_file() or path.suffix.lower() in IMAGE_SUFFIXES:
        return [path], False
    if list_images(path):
        return [path], False  # a folder of frames is one video
    videos = find_videos(path)
    if not videos:
        raise InputError(f"no videos or images in folder {path}")
    return videos, True


def write_outputs(out_dir: Path, video: Path, priors: Priors, *, preview: bool, preview_side: int,
                  meta: dict) -> None:
    """``priors.npz``, ``preview.mp4``, ``index.html`` and, last, ``meta.json`` (the completion marker) of one video."""
    save_priors(out_dir / "priors.npz", priors)
    if preview:
        write_video(out_dir / "preview.mp4", render_preview(video, priors, max_side=preview_side), fps=priors.fps)
    write_index(out_dir, priors, preview=preview)
    write_json_atomic(out_dir / "meta.json", dict(meta, preview=preview))


def outputs_done(out_dir: Path, key: str) -> bool:
    """Whether a video's outputs are complete (``meta.json``, written last, names ``key`` and everything it lists
    exists)."""
    try:
        meta = json.loads((out_dir / "meta.json").read_text())
    except (OSError, json.JSONDecodeError, UnicodeDecodeError):
        return False
    names = ["priors.npz", "index.html"] + (["preview.mp4"] if meta.get("preview", True) else [])
    return meta.get("cache_key") == key and all((out_dir / n).is_file() for n in names)


def summary_rows(priors: Priors) -> list[list[object]]:
    rows = []
    for p, tid in enumerate(priors.track_ids):
        det = priors.valid[:, p] & ~priors.interpolated[:, p]
        rows.append([int(tid), int(det.sum()), int(priors.interpolated[:, p].sum()),
                     f"{float(priors.kp2d[det, p, :, 2].mean()) if det.any() else 0.0:.2f}"])
    return rows


def write_index(out_dir: Path, priors: Priors, *, preview: bool) -> Path:
    """A small ``index.html`` for one video (hmore.report.html)."""
    from hmore.report.html import Report

    report = Report(f"hmore priors: {priors.source}", intro=(
        f"{priors.num_frames} frames at {priors.fps:g} fps, source {priors.size[0]}x{priors.size[1]}, masks at "
        f"{priors.mask_size[0]}x{priors.mask_size[1]}; backend {priors.backend_version}; "
        f"{priors.num_people} tracked people."))
    if preview:
        report.add_figure(out_dir / "preview.mp4", "instance masks and COCO-17 skeletons, colour = track id")
    report.add_section("Tracks")
    report.add_table(summary_rows(priors), header=["track id", "detected frames", "interpolated", "mean confidence"])
    report.add_section("Files", "priors.npz: kp2d (T, P, 17, 3), valid, interpolated, track_ids, masks, boundaries, "
                       "fps, size, mask_size, frame_index, backend, backend_version.")
    return report.save(out_dir / "index.html")


def run_priors(
    inputs: Sequence[Path],
    out: Path,
    *,
    estimator: PoseEstimator,
    settings: PriorsSettings,
    folder_mode: bool,
    root: Path | None = None,
    shard: tuple[int, int] = (0, 1),
    cache_dir: Path | None = None,
    preview: bool = True,
    preview_side: int = 640,
    force: bool = False,
    progress: bool | None = None,
) -> list[VideoResult]:
    """Process videos into ``out`` (one sub-folder per video in folder mode), with cache, resume and shards.

    In folder mode a video that fails is reported and the others go on; a single video's error is raised.
    """
    i, n = shard
    todo = [v for k, v in enumerate(inputs) if k % n == i]
    cache_dir = cache_dir or out / ".cache"
    version = getattr(estimator, "version", "unknown")
    show = sys.stderr.isatty() if progress is None else progress
    results = []
    for video in tqdm(todo, disable=not show or len(todo) < 2, desc="videos", unit="video"):
        if folder_mode:
            rel = video.relative_to(root) if root is not None else Path(video.name)
            out_dir = out / rel.parent / rel.stem
        else:
            out_dir = out
        try:
            key = cache_key(video, version, settings)
            if not force and outputs_done(out_dir, key):
                try:
                    pr = load_priors(out_dir / "priors.npz")
                    results.append(VideoResult(video, out_dir, "skipped", pr.num_frames, pr.num_people))
                    continue
                except InputError:
                    pass
            cached = cache_dir / f"{key}.npz"
            meta = {"video": str(video), "cache_key": key, "backend_version": version, "settings": asdict(settings)}
            if not force and cached.is_file():
                pr = load_priors(cached)
                status = "cached"
            else:
                boxes = [np.asarray(b, np.float64) for b in settings.boxes]
                pr = extract_priors(video, estimator=estimator, max_side=settings.max_side, stride=settings.stride,
                                    start=settings.start, end=settings.end, boxes=boxes, progress=show)
                meta["timings_s"] = {k: round(v, 3) for k, v in pr.timings.items()}
                cached.parent.mkdir(parents=True, exist_ok=True)
                save_priors(cached, pr)
                status = "done"
            write_outputs(out_dir, video, pr, preview=preview, preview_side=preview_side, meta=meta)
            results.append(VideoResult(video, out_dir, status, pr.num_frames, pr.num_people))
        except InputError as exc:
            if not folder_mode:
                raise
            logger.warning("%s", exc)
            results.append(VideoResult(video, out_dir, "failed", message=str(exc)))
    return results

