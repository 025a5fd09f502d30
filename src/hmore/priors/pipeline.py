"""Priors of a video: tracked COCO-17 keypoints, instance masks with the same ids, and mask boundaries.

:func:`extract_priors` streams the frames once: per frame, people are searched around the boxes the tracker predicts
(and any user boxes), then in the whole frame; detections are linked into tracks; per-person masks are kept as a label
image. At the end, short gaps are interpolated and the masks are relabelled with the final track ids.

``priors.npz`` (:func:`save_priors` / :func:`load_priors`) holds:

- ``kp2d`` ``(T, P, 17, 3)`` float32 x, y in pixels of the *source* video, confidence; ``valid``, ``interpolated``
  ``(T, P)`` bool; ``track_ids`` ``(P,)`` int64 (1..P).
- ``masks`` ``(T, h, w)`` uint8 instance ids (= track ids, 0 background) and ``boundaries`` ``(T, h, w)`` uint8 0/1,
  at the processing size ``mask_size`` = (w, h) (the source scaled so its longer side is at most ``max_side``).
- ``fps``, ``size`` (source width, height), ``mask_size``, ``frame_index`` ``(T,)`` source frame numbers,
  ``backend``, ``backend_version``, ``source`` (file name), ``hmore_version``.
"""

from __future__ import annotations

import inspect
import logging
import sys
import time
import zipfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from hmore.errors import InputError
from hmore.io.atomic import save_npz_atomic
from hmore.io.video import iter_frames, probe_video, resized_size
from hmore.priors.masks import boundaries, instance_mask
from hmore.priors.pose import PoseEstimator
from hmore.priors.tracking import Tracker, TrackerConfig

logger = logging.getLogger(__name__)

# Tracks detected in fewer than 5 frames are dropped (in inputs of at least 5 frames): fits on two people crossing or
# on an object last a few frames, people in view last longer (gait campus gallery: the 4 walkers are tracked over
# 230-235 frames, the 3 spurious tracks have 3-5 detections).
DEFAULT_TRACKER = TrackerConfig(min_track_len=5, max_interp_gap=10, max_age=15)


@dataclass(frozen=True)
class Priors:
    """The priors of one video (see the module docstring for the arrays).

    Attributes:
        timings: seconds spent per stage (``decode``, ``pose``, ``track``, ``masks``); not saved.
    """

    kp2d: np.ndarray
    valid: np.ndarray
    interpolated: np.ndarray
    track_ids: np.ndarray
    masks: np.ndarray
    boundaries: np.ndarray
    fps: float
    size: tuple[int, int]
    mask_size: tuple[int, int]
    frame_index: np.ndarray
    backend: str
    backend_version: str
    source: str
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def num_frames(self) -> int:
        return int(self.kp2d.shape[0])

    @property
    def num_people(self) -> int:
        return int(self.kp2d.shape[1])


def _timed(it: Iterator[np.ndarray], timings: dict[str, float], key: str) -> Iterator[np.ndarray]:
    while True:
        t0 = time.perf_counter()
        try:
            item = next(it)
        except StopIteration:
            return
        timings[key] = timings.get(key, 0.0) + time.perf_counter() - t0
        yield item


def extract_priors(
    video: str | Path,
    *,
    estimator: PoseEstimator,
    max_side: int | None = 960,
    stride: int = 1,
    start: int = 0,
    end: int | None = None,
    boxes: Sequence[np.ndarray] | None = None,
    tracker: TrackerConfig = DEFAULT_TRACKER,
    mask_threshold: float = 0.5,
    search_every: int = 5,
    progress: bool | None = None,
) -> Priors:
    """Pose, tracks, masks and boundaries of a video or image folder.

    Args:
        video: video file or image folder.
        estimator: a pose backend; masks come from backends with ``estimate_people`` returning masks (MediaPipe),
            others give empty masks.
        max_side: frames are processed scaled so their longer side is at most this (None: full size).
        stride: process every ``stride``-th frame (``fps`` becomes the source rate / stride).
        start, end: source frame range ``[start, end)``.
        boxes: person boxes (x0, y0, x1, y1, source pixels) searched in every frame, besides the tracked ones.
        tracker: the tracking settings.
        mask_threshold: person probability above which a pixel is in the person's mask.
        search_every: search the whole frame for new people every this many frames (and in the frame after one
            where somebody was lost); other frames only look around the tracked people. The first frame is searched
            at every tile size; later searches run a few tiles each, round robin (backends that take ``previous``).
        progress: show a progress bar (None: only when stderr is a terminal).

    Returns:
        :class:`Priors`.
    """
    info = probe_video(video)
    W, H = info.width, info.height
    w, h = resized_size(W, H, max_side)
    sx, sy = W / w, H / h  # processing pixels -> source pixels
    to_work = np.array([1 / sx, 1 / sy, 1 / sx, 1 / sy], np.float64)
    user_boxes = [np.asarray(b, np.float64) * to_work for b in (boxes or ())]
    people_fn = getattr(estimator, "estimate_people", None)
    trk = Tracker(config=tracker)
    det_labels: list[np.ndarray] = []  # per frame (h, w) uint8: detection index + 1
    timings: dict[str, float] = {}
    total = info.frames
    if total is not None:
        stop = total if end is None else min(end, total)
        total = max(0, (stop - start + stride - 1) // stride)
    show = sys.stderr.isatty() if progress is None else progress
    frames = _timed(iter_frames(video, stride=stride, start=start, end=end, max_side=max_side), timings, "decode")
    missed = True  # the last frame had fewer people than the one before: search the next one
    last_count = 0
    last_people: list = []
    last_tracks: list[int] = []  # internal track index of each of last_people
    takes_previous = people_fn is not None and "previous" in inspect.signature(people_fn).parameters
    for k, frame in enumerate(
        tqdm(frames, total=total, disable=not show, desc=f"priors {Path(video).name}", unit="frame")
    ):
        t0 = time.perf_counter()
        tracked = [b for _, b in trk.predicted_boxes()]
        proposals = tracked + user_boxes
        if people_fn is not None:
            search = missed or not tracked or k % max(search_every, 1) == 0
            if takes_previous:  # tracked people come through `previous`; lost tracks' boxes only when searching
                people = people_fn(frame, proposals if search else user_boxes, previous=last_people, search=search,
                                   all_tiles=k == 0)
            else:
                people = people_fn(frame, proposals, search=search)
            missed, last_count, last_people = len(people) < last_count, len(people), people
            kps = [p.kp for p in people]
            pboxes = [p.box for p in people]
            pmasks = [p.mask for p in people]
        else:
            kps = list(estimator.estimate(frame, proposals))
            pboxes, pmasks = [None] * len(kps), [None] * len(kps)
        t1 = time.perf_counter()
        links = [last_tracks[p.parent] if getattr(p, "parent", -1) >= 0 else -1 for p in people] \
            if people_fn is not None and takes_previous else None
        last_tracks = trk.update(kps, pboxes, links=links)
        t2 = time.perf_counter()
        with_mask = [(k, m) for k, m in enumerate(pmasks) if m is not None]
        if with_mask:
            labels = instance_mask([m for _, m in with_mask], [k + 1 for k, _ in with_mask],
                                   threshold=mask_threshold)
        else:
            labels = np.zeros((h, w), np.uint8)
        det_labels.append(labels)
        t3 = time.perf_counter()
        timings["pose"] = timings.get("pose", 0.0) + t1 - t0
        timings["track"] = timings.get("track", 0.0) + t2 - t1
        timings["masks"] = timings.get("masks", 0.0) + t3 - t2
    T = len(det_labels)
    if T == 0:
        raise InputError(f"no frames selected from {video} (start={start}, end={end})")
    t0 = time.perf_counter()
    tracks = trk.finish()
    timings["track"] = timings.get("track", 0.0) + time.perf_counter() - t0
    t0 = time.perf_counter()
    if tracks.num_people > 255:
        raise InputError(f"{video}: {tracks.num_people} tracks do not fit uint8 instance masks (at most 255)")
    masks = np.zeros((T, h, w), np.uint8)
    bounds = np.zeros((T, h, w), np.uint8)
    for t in range(T):
        lut = np.zeros(256, np.uint8)  # detection index + 1 -> track id
        for p in np.flatnonzero(tracks.det_index[t] >= 0):
            lut[tracks.det_index[t, p] + 1] = tracks.track_ids[p]
        masks[t] = lut[det_labels[t]]
        bounds[t] = boundaries(masks[t])
    timings["masks"] = timings.get("masks", 0.0) + time.perf_counter() - t0
    kp2d = tracks.kp2d.copy()
    kp2d[..., 0] *= sx
    kp2d[..., 1] *= sy
    logger.info("%s: %d frames, %d people tracked", video, T, tracks.num_people)
    return Priors(
        kp2d=kp2d, valid=tracks.valid, interpolated=tracks.interpolated, track_ids=tracks.track_ids, masks=masks,
        boundaries=bounds, fps=info.fps / stride, size=(W, H), mask_size=(w, h),
        frame_index=start + stride * np.arange(T, dtype=np.int64), backend=getattr(estimator, "name", "unknown"),
        backend_version=getattr(estimator, "version", "unknown"), source=Path(video).name, timings=timings,
    )


def save_priors(path: str | Path, priors: Priors) -> Path:
    """Write ``priors.npz`` atomically (deterministic bytes)."""
    from hmore import __version__

    return save_npz_atomic(
        path, kp2d=priors.kp2d, valid=priors.valid, interpolated=priors.interpolated, track_ids=priors.track_ids,
        masks=priors.masks, boundaries=priors.boundaries, fps=np.float64(priors.fps),
        size=np.asarray(priors.size, np.int64), mask_size=np.asarray(priors.mask_size, np.int64),
        frame_index=priors.frame_index, backend=np.str_(priors.backend),
        backend_version=np.str_(priors.backend_version), source=np.str_(priors.source),
        hmore_version=np.str_(__version__),
    )


def load_priors(path: str | Path) -> Priors:
    """Read a ``priors.npz`` written by :func:`save_priors`.

    Raises:
        InputError: missing file, not an npz, or arrays missing or of inconsistent shapes.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"no such file: {path}")
    try:
        with np.load(path, allow_pickle=False) as z:
            a = {k: z[k] for k in z.files}
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as exc:
        raise InputError(f"{path}: not a readable priors file ({str(exc).splitlines()[0]})") from None
    need = ("kp2d", "valid", "interpolated", "track_ids", "masks", "boundaries", "fps", "size", "mask_size")
    missing = [k for k in need if k not in a]
    if missing:
        raise InputError(f"{path}: not an hmore priors file (missing {', '.join(missing)})")
    T, P = a["kp2d"].shape[:2]
    if a["kp2d"].shape[2:] != (17, 3) or a["valid"].shape != (T, P) or a["masks"].shape[0] != T:
        raise InputError(f"{path}: inconsistent shapes kp2d {a['kp2d'].shape}, valid {a['valid'].shape}, "
                         f"masks {a['masks'].shape}")
    return Priors(
        kp2d=a["kp2d"], valid=a["valid"], interpolated=a["interpolated"], track_ids=a["track_ids"], masks=a["masks"],
        boundaries=a["boundaries"], fps=float(a["fps"]), size=tuple(int(v) for v in a["size"]),
        mask_size=tuple(int(v) for v in a["mask_size"]),
        frame_index=a.get("frame_index", np.arange(T, dtype=np.int64)), backend=str(a.get("backend", "")),
        backend_version=str(a.get("backend_version", "")), source=str(a.get("source", "")),
    )


def render_preview(video: str | Path, priors: Priors, *, max_side: int = 640) -> Iterator[np.ndarray]:
    """Overlay frames (masks tinted, skeletons drawn, ids labelled) as a generator, for :func:`write_video`."""
    from hmore.priors.masks import resize_mask
    from hmore.report.draw import draw_skeleton, overlay_masks

    first = int(priors.frame_index[0])
    step = int(priors.frame_index[1] - priors.frame_index[0]) if priors.num_frames > 1 else 1
    frames = iter_frames(video, stride=step, start=first, end=int(priors.frame_index[-1]) + 1, max_side=max_side)
    for t, frame in enumerate(frames):
        if t >= priors.num_frames:
            break
        fh, fw = frame.shape[:2]
        out = overlay_masks(frame, resize_mask(priors.masks[t], (fw, fh)), alpha=0.4)
        kp = priors.kp2d[t].astype(np.float64)  # (P, 17, 3) source pixels
        kp[..., 0] *= fw / priors.size[0]
        kp[..., 1] *= fh / priors.size[1]
        kp[~priors.valid[t]] = np.nan  # absent people are not drawn (but keep their colour slot)
        out = draw_skeleton(out, kp, threshold=0.3)
        yield out
