"""``hmore bench flow``: every flow method on the same frame pairs, every metric, one table, one report.

Pipeline: clips from one or more sources (:func:`bench_clips`: :func:`generated_clips` for ``synth-heldout`` /
``robustness`` sets, :func:`real_clips` for videos) -> :func:`run_flow_bench` (each method's forward flow on the first
``pairs`` consecutive pairs of every clip, one shared DIS forward-backward occlusion check per pair; the metrics of
:mod:`hmore.metrics.flow`) -> :func:`measure_cost`
(pairs/s and peak memory per method at 128x96, 256x192 and 512x384) -> :func:`write_outputs` (``results.json``,
``report.html`` with bar charts, robustness curves and thumbnails).

``results.json`` holds no NaN: a value that cannot be computed is ``null`` and the metric entry says why. Means are
given over all pairs (``metrics``) and per set (``by_set``: ``real``, ``synth-heldout``, ``overlap``, ...); with
several sets, the printed tables and the report show each set on its own (real and generated numbers are not pooled).
"""

from __future__ import annotations

import logging
import math
import os
import sys
import threading
import time
import tracemalloc
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from hmore.bench import json_clean
from hmore.bench.flow_methods import FlowMethod, MethodFlow, MethodUnavailable, create_method
from hmore.errors import InputError, UsageError
from hmore.metrics import flow as fm
from hmore.report.charts import save_png

log = logging.getLogger(__name__)

GENERATED_SETS = ("synth-heldout", "robustness", "robustness:overlap", "robustness:background",
                  "robustness:clothing", "robustness:small", "robustness:motion")
COST_SIZES = ((96, 128), (192, 256), (384, 512))  # (H, W): 128x96, 256x192, 512x384
MIN_PRIOR_FRAMES = 8  # hmore.priors drops tracks shorter than 3 frames: look at a few more frames than the pairs


@dataclass(frozen=True)
class MetricInfo:
    """A column of the benchmark.

    Attributes:
        name: key in ``results.json``.
        label: short column title.
        description: what it measures, with its unit.
        higher_is_better: the direction of "better".
        ground_truth: needs ground-truth flow (generated clips only).
    """

    name: str
    label: str
    description: str
    higher_is_better: bool = False
    ground_truth: bool = False


METRICS: tuple[MetricInfo, ...] = (
    MetricInfo("epe_mask", "EPE in masks", "end-point error inside the person masks against the optical flow (px); "
               "a compensating method is judged on world + the camera flow it removed", ground_truth=True),
    MetricInfo("epe_scene", "EPE scene", "end-point error inside the person masks against the motion relative to the "
               "scene: optical flow minus the exact camera-induced flow (px)", ground_truth=True),
    MetricInfo("camera_epe", "camera EPE", "error of the camera-induced flow the method removed, against the exact "
               "one, over all pixels (px); a method without compensation removes none", ground_truth=True),
    MetricInfo("local_epe", "local EPE", "local-flow error inside masks, local = flow - v_s (px); methods without a "
               "subject network use each subject's median flow as v_s", ground_truth=True),
    MetricInfo("joint_local", "joint local", "local flow at the joints against each joint's motion relative to the "
               "pelvis, from the pose (px); methods without a subject network use flow minus each subject's median"),
    MetricInfo("leakage", "leakage", "mean |flow| outside masks dilated by 5 px / mean |flow| inside (0 = none)"),
    MetricInfo("leakage_px", "bg |flow|", "mean |flow| outside masks dilated by 5 px (px)"),
    MetricInfo("photo_l1", "photo L1", "L1 between frame t and frame t+1 warped back by the optical flow (world + any "
               "removed camera flow), in masks, occlusions removed (intensity 0-1)"),
    MetricInfo("photo_census", "census", "census (7x7) Hamming distance after warping, in masks (fraction of bits)"),
    MetricInfo("photo_ssim", "1-SSIM", "(1 - SSIM) / 2 after warping, in masks"),
    MetricInfo("skeleton", "skeleton ok", "share of body pixels whose flow is within 15 deg and 0.8-1.2x of the "
               "nearest bone point's displacement", higher_is_better=True),
    MetricInfo("chamfer", "chamfer", "exact symmetric Chamfer distance flow edges <-> person boundary (px)"),
    MetricInfo("stability", "stability", "change of the subject-compensated flow between consecutive pairs (px)"),
)
METRIC_NAMES = tuple(m.name for m in METRICS)


# ---- clips ------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BenchClip:
    """Frames with masks (and pose, and ground truth when generated) for ``pairs`` consecutive pairs.

    Attributes:
        name: unique clip name.
        set_name: ``real``, ``synth-heldout`` or a robustness set.
        level: level label inside the set; level_value: its number for curves.
        frames: (N+1, H, W, 3) uint8 RGB.
        masks: (N+1, H, W) uint8 subject labels (zeros when no person prior exists).
        kp2d: (N+1, P, 17, 3) COCO-17 x, y, confidence in the frames' pixels, or None.
        flow: (N, H, W, 2) ground-truth flow, or None.
        subject_velocity: (N, P, 2) ground-truth v_s, or None.
        notes: why parts are missing (no priors, ...), where the masks came from.
        camera_flow: (N, H, W, 2) exact camera-induced flow (generated clips), or None.
        mask_source: where ``masks`` came from: ``generator``, ``ground truth (FILE)``, ``priors (...)`` or ``none``.
    """

    name: str
    set_name: str
    level: str
    level_value: float
    frames: np.ndarray
    masks: np.ndarray
    kp2d: np.ndarray | None = None
    flow: np.ndarray | None = None
    subject_velocity: np.ndarray | None = None
    notes: tuple[str, ...] = ()
    camera_flow: np.ndarray | None = None
    mask_source: str = "generator"

    @property
    def num_pairs(self) -> int:
        return int(self.frames.shape[0]) - 1


def generated_clips(name: str = "synth-heldout", *, clips: int = 2, pairs: int = 2, size: tuple[int, int] = (192, 256),
                    progress: bool | None = None, fps: float | None = None) -> list[BenchClip]:
    """Render a generated held-out set (see :mod:`hmore.bench.robustness`) with ``pairs`` pairs per clip.

    ``fps`` renders every clip at that frame rate (default: the set's, 30 frames per second for most).
    """
    from hmore.bench.robustness import iter_set

    if pairs < 1:
        raise UsageError(f"pairs must be >= 1, got {pairs}")
    specs = list(iter_set(name, clips=clips, size=size, fps=fps))
    out = []
    for spec in tqdm(specs, desc="render", unit="clip", disable=not _show(progress), leave=False):
        c = spec.render(num_frames=pairs + 1)
        out.append(BenchClip(name=spec.name, set_name=spec.set_name, level=spec.level, level_value=spec.level_value,
                             frames=c.frames, masks=c.masks, kp2d=c.kp2d, flow=c.flow,
                             subject_velocity=c.subject_velocity, camera_flow=c.camera_flow))
    return out


def _priors_file(video: Path) -> Path | None:
    cands = [video.with_name(video.name + ".priors.npz"), video.with_name(video.stem + ".priors.npz"),
             video.parent / video.stem / "priors.npz"]
    if video.is_dir():
        cands.insert(0, video / "priors.npz")
    for cand in cands:
        if cand.is_file():
            return cand
    return None


def _priors_for(video: Path, frames: np.ndarray, *, priors_side: int,
                start: int = 0) -> tuple[np.ndarray, np.ndarray | None, str]:
    """(masks (T, H, W), kp2d (T, P, 17, 3) or None, note) for the T frames of ``video`` from ``start``."""
    import cv2

    from hmore.priors.pipeline import extract_priors, load_priors

    t, h, w = frames.shape[:3]
    path = _priors_file(video)
    try:
        if path is not None:
            pri = load_priors(path)
            note = f"priors from {path.name}"
        else:
            from hmore.priors.pose import create_estimator

            pri = extract_priors(video, estimator=create_estimator("mediapipe"), max_side=priors_side,
                                 start=start, end=start + max(t, MIN_PRIOR_FRAMES), progress=False)
            note = f"priors from hmore.priors ({pri.backend})"
    except (ImportError, InputError, OSError, RuntimeError) as exc:
        log.warning("%s: no person priors (%s): metrics that need masks or pose are null", video.name, exc)
        return np.zeros((t, h, w), np.uint8), None, f"no priors: {exc}"
    rows = {int(f): i for i, f in enumerate(pri.frame_index)}
    masks = np.zeros((t, h, w), np.uint8)
    kp = np.zeros((t, pri.num_people, 17, 3), np.float32)
    sx, sy = w / pri.size[0], h / pri.size[1]
    for k in range(t):
        r = rows.get(start + k)
        if r is None:
            continue
        masks[k] = cv2.resize(pri.masks[r], (w, h), interpolation=cv2.INTER_NEAREST)
        kp[k] = pri.kp2d[r]
        kp[k, :, :, 0] *= sx
        kp[k, :, :, 1] *= sy
        kp[k, ~pri.valid[r], :, 2] = 0.0  # a person not tracked in this frame has no usable joints
    return masks, kp, note


MOVING_CAMERA_PX = 0.2  # a real clip's camera counts as moving when its median camera-induced flow exceeds this


def masks_file(video: Path) -> Path | None:
    """``<stem>_masks.npz`` beside a video (DAVIS layout; ``masks`` (T, H, W) uint8 labels, row t = frame t)."""
    cand = video.with_name(video.stem + "_masks.npz")
    return cand if video.is_file() and cand.is_file() else None


def _ground_truth_masks(path: Path, hw: tuple[int, int], start: int, count: int) -> np.ndarray:
    """Rows ``start .. start+count`` of a ``*_masks.npz`` resized to ``hw`` (nearest), as (count, H, W) uint8."""
    import cv2

    try:
        with np.load(path, allow_pickle=False) as z:
            if "masks" not in z.files:
                raise InputError(f"{path}: no 'masks' array")
            raw = z["masks"]
    except (OSError, ValueError) as exc:
        raise InputError(f"cannot read masks {path}: {exc}") from None
    if raw.ndim != 3 or raw.dtype.kind not in "ub":
        raise InputError(f"{path}: masks must be (T, H, W) unsigned labels, got {raw.shape} {raw.dtype}")
    if raw.shape[0] < start + count:
        raise InputError(f"{path}: {raw.shape[0]} masks but frames up to {start + count - 1} are used")
    h, w = hw
    return np.stack([cv2.resize(np.ascontiguousarray(m).astype(np.uint8), (w, h), interpolation=cv2.INTER_NEAREST)
                     for m in raw[start:start + count]])


def _match_people(kp: np.ndarray, masks: np.ndarray, min_confidence: float = 0.3) -> np.ndarray:
    """Reorder the prior's people (T, P, 17, 3) so row k-1 is the one whose confident joints fall most often inside
    label k of ``masks`` (T, H, W); labels nobody matches get zero confidence."""
    t, h, w = masks.shape
    num = int(masks.max()) if masks.size else 0
    out = np.zeros((t, num, 17, 3), np.float32)
    if kp.shape[1] == 0 or num == 0:
        return out
    xi = np.clip(np.rint(np.nan_to_num(kp[..., 0])).astype(np.int64), 0, w - 1)  # (T, P, 17)
    yi = np.clip(np.rint(np.nan_to_num(kp[..., 1])).astype(np.int64), 0, h - 1)
    lab = masks[np.arange(t)[:, None, None], yi, xi]  # (T, P, 17) label under each joint
    conf = kp[..., 2] > min_confidence
    taken: set[int] = set()
    for k in range(1, num + 1):
        hits = ((lab == k) & conf).sum(axis=(0, 2))  # (P,)
        order = [int(p) for p in np.argsort(-hits, kind="stable") if hits[p] > 0 and int(p) not in taken]
        if order:
            taken.add(order[0])
            out[:, k - 1] = kp[:, order[0]]
    return out


def camera_motion_px(frames: np.ndarray, masks: np.ndarray) -> float:
    """Median over the pairs of the mean camera-induced flow (px) fitted to OpenCV DIS on the background."""
    import cv2

    from hmore.flow.camera import estimate_camera

    dis = create_method("dis")
    mags = []
    for t in range(len(frames) - 1):
        flow = dis(frames[t], frames[t + 1]).world
        motion = estimate_camera(flow, masks[t] > 0, cv2.cvtColor(frames[t], cv2.COLOR_RGB2GRAY))
        mags.append(float(np.linalg.norm(motion.flow(flow.shape[:2]), axis=-1).mean()))
    return float(np.median(mags)) if mags else 0.0


def real_clips(path: str | Path, *, pairs: int = 4, max_side: int = 256, priors_side: int = 640,
               start: int = 0) -> list[BenchClip]:
    """Clips from a video, a folder of videos, or an image folder (images as one sequence), no ground-truth flow.

    Person masks and keypoints come from ``<video>.priors.npz`` / ``<stem>.priors.npz`` / ``<stem>/priors.npz``
    beside the video, or ``priors.npz`` inside an image folder (``hmore priors`` output), or else from
    :mod:`hmore.priors` (MediaPipe) on the frames used; without either the metrics that need them are null. Masks in
    ``<stem>_masks.npz`` beside a video (DAVIS's ground truth) replace the priors' masks (given to the methods and
    used for scoring); the priors' people are then matched to its labels by their joints.

    Each clip's set says whether its camera moves (the median camera-induced flow that :mod:`hmore.flow.camera`
    fits to OpenCV DIS exceeds :data:`MOVING_CAMERA_PX`) and which masks it uses: ``real (static camera)``,
    ``real (moving camera)``, or either with ``, ground-truth masks``.

    Args:
        path: video file, image folder, or folder holding videos (and possibly images).
        pairs: consecutive pairs per clip (from frame ``start``).
        max_side: frames are scaled so their longer side is at most this.
        priors_side: longer side at which hmore.priors looks for people (small people need more pixels); its
            masks and keypoints are then scaled to the frames.
        start: first frame.
    """
    from hmore.flow.inference import MIN_FLOW_SIDE
    from hmore.io.video import VIDEO_SUFFIXES, find_videos, iter_frames, list_images

    if pairs < 1:
        raise UsageError(f"pairs must be >= 1, got {pairs}")
    root = Path(path)
    if not root.exists():
        raise InputError(f"no such file or folder: {root}")
    sources: list[Path] = []
    if root.is_dir():
        sources = find_videos(root, recursive=False)
        if len(list_images(root)) >= 2:
            sources.append(root)
    elif root.suffix.lower() in VIDEO_SUFFIXES:
        sources = [root]
    if not sources:
        raise InputError(f"{root}: no video or image sequence found")
    out = []
    skipped: list[str] = []
    for src in sources:
        frames = np.stack(list(iter_frames(src, start=start, end=start + pairs + 1, max_side=max_side)))
        reason = ""
        if len(frames) < 2:
            reason = "fewer than 2 frames"
        elif min(frames.shape[1:3]) < MIN_FLOW_SIDE:
            reason = (f"frames of {frames.shape[2]}x{frames.shape[1]} px at this size are too small for flow (at "
                      f"least {MIN_FLOW_SIDE} px per side)")
        if reason:
            log.warning("%s: %s, skipped", src, reason)
            skipped.append(f"{src.name}: {reason}")
            continue
        masks, kp, note = _priors_for(src, frames, priors_side=max(priors_side, max_side), start=start)
        notes = [note]
        gt_file = masks_file(src)
        mask_source = f"priors ({note})" if kp is not None else "none"
        if gt_file is not None:
            masks = _ground_truth_masks(gt_file, frames.shape[1:3], start, len(frames))
            kp = None if kp is None else _match_people(kp, masks)
            mask_source = f"ground truth ({gt_file.name})"
            notes.append(f"masks: ground truth from {gt_file.name} (given to the methods and used for scoring)")
        moving = camera_motion_px(frames, masks)
        camera = "moving" if moving > MOVING_CAMERA_PX else "static"
        notes.append(f"camera: {camera} (median fitted camera flow {moving:.2f} px per pair)")
        set_name = f"real ({camera} camera{', ground-truth masks' if gt_file is not None else ''})"
        name = f"{src.name} (image sequence)" if src.is_dir() else src.name
        out.append(BenchClip(name=name, set_name=set_name, level=name, level_value=float(len(out)),
                             frames=frames, masks=masks, kp2d=kp, notes=tuple(notes), mask_source=mask_source))
    if not out:
        raise InputError(f"{root}: no clip to benchmark ({'; '.join(skipped)})"[:400])
    return out


def is_generated(source: str) -> bool:
    """Whether a data source names a generated set (:data:`GENERATED_SETS` or ``robustness:SET``), not a path."""
    return source in GENERATED_SETS or source.startswith("robustness:")


def _renamed(clip: BenchClip, source: str, taken: set[str]) -> BenchClip:
    """``clip`` under a name not in ``taken``: prefixed with its source (the path as given), numbered if needed."""
    src = Path(source)
    base = f"{src.as_posix()}/{clip.name}" if src.is_dir() else src.as_posix()
    name, k = base, 2
    while name in taken:
        name, k = f"{base} ({k})", k + 1
    return replace(clip, name=name, level=name if clip.level == clip.name else clip.level,
                   notes=(*clip.notes, f"renamed from {clip.name!r}: an earlier source has a clip of that name"))


def bench_clips(data: str | Sequence[str], *, pairs: int = 2, clips: int = 2, size: tuple[int, int] = (192, 256),
                fps: float | None = None, progress: bool | None = None) -> list[BenchClip]:
    """The clips of one or more data sources, concatenated in the order given.

    Args:
        data: a source or a sequence of them; each a generated set name (:data:`GENERATED_SETS`,
            ``robustness:SET``) or a video / folder path (:func:`real_clips`).
        pairs: consecutive pairs per clip.
        clips: clips per level of a generated set.
        size: (H, W) of generated clips; real frames are scaled to a longer side of max(size).
        fps: frame rate of generated clips (None: each set's own); real clips keep theirs.
        progress: progress bars (None: on a terminal).

    Returns:
        The clips, with unique names: a real clip whose name an earlier source already uses is prefixed with its
        source path (a note says so).

    Raises:
        UsageError: no source, a source given twice, or generated sets that repeat the same clips
            (``robustness`` and ``robustness:SET``).
    """
    sources = [data] if isinstance(data, str) else [str(d) for d in data]
    if not sources:
        raise UsageError("no data source given")
    repeated = sorted({s for s in sources if sources.count(s) > 1})
    if repeated:
        raise UsageError(f"data source given twice: {', '.join(repeated)}")
    if fps is not None and not (math.isfinite(fps) and fps > 0):
        raise UsageError(f"fps must be a finite number > 0, got {fps}")
    if fps is not None and not any(is_generated(s) for s in sources):
        log.warning("fps %g applies to generated sets only: real clips keep their own frame rate", fps)
    out: list[BenchClip] = []
    origin: dict[str, str] = {}  # clip name -> its source
    for source in sources:
        if is_generated(source):
            got = generated_clips(source, clips=clips, pairs=pairs, size=size, progress=progress, fps=fps)
        else:
            got = real_clips(source, pairs=pairs, max_side=max(size))
        for clip in got:
            if clip.name in origin:
                if is_generated(source):
                    raise UsageError(f"data sources {origin[clip.name]} and {source} both hold the generated clip "
                                     f"{clip.name}: give each set once")
                clip = _renamed(clip, source, set(origin))
            origin[clip.name] = source
            out.append(clip)
    return out


# ---- running ----------------------------------------------------------------------------------------------------


@dataclass
class MethodSpec:
    """A method to benchmark, or the reason it cannot run."""

    spec: str
    method: FlowMethod | None
    reason: str | None = None

    @property
    def name(self) -> str:
        return self.method.name if self.method is not None else self.spec.partition("=")[0]


def build_methods(specs: Sequence[str], *, weights: str | None = None, device: str = "cpu") -> list[MethodSpec]:
    """Create each method; methods that cannot run here (no weights) are kept with their reason."""
    out = []
    for s in specs:
        try:
            out.append(MethodSpec(spec=s, method=create_method(s, weights=weights, device=device)))
        except MethodUnavailable as exc:
            log.warning("method %s unavailable: %s", s, exc)
            out.append(MethodSpec(spec=s, method=None, reason=str(exc)))
    names = [m.name for m in out]
    if len(set(names)) != len(names):
        raise UsageError(f"methods given twice: {', '.join(sorted({n for n in names if names.count(n) > 1}))}")
    return out


def _pair_metrics(clip: BenchClip, t: int, out: MethodFlow, backward: np.ndarray | None,
                  occluded: np.ndarray | None = None) -> dict[str, float]:
    """Every per-pair metric of one method's flow (nan where undefined).

    A method that removed camera motion (``out.camera``) is judged on what it claims: metrics of image motion (EPE
    against the optical flow, the photometric errors, skeleton consistency against the keypoints' image
    displacement) use its optical flow, world + camera; metrics of human-centric motion (EPE against the
    scene-relative flow, leakage, Chamfer, stability, local flow) use its world flow.
    """
    mask = clip.masks[t]
    world = out.world
    optical = world if out.camera is None else world + out.camera
    vals: dict[str, float] = dict.fromkeys(METRIC_NAMES, math.nan)
    if not (mask > 0).any():
        return vals
    local = out.local if out.local is not None else fm.local_from_world(world, mask)
    if clip.flow is not None:
        gt = clip.flow[t]
        vals["epe_mask"] = fm.epe(optical, gt, mask)
        if clip.camera_flow is not None:
            cam = clip.camera_flow[t]
            vals["epe_scene"] = fm.epe(world, gt - cam, mask)
            vals["camera_epe"] = fm.epe(np.zeros_like(cam) if out.camera is None else out.camera, cam)
        if clip.subject_velocity is not None:
            vals["local_epe"] = fm.local_flow_epe(local, gt, mask, clip.subject_velocity[t])
    leak = fm.background_leakage(world, mask)
    vals["leakage"], vals["leakage_px"] = leak.ratio, leak.outside
    pe = fm.photometric_error(clip.frames[t], clip.frames[t + 1], optical, mask, flow_backward=backward,
                              occluded=occluded)
    vals["photo_l1"], vals["photo_census"], vals["photo_ssim"] = pe.l1, pe.census, pe.ssim
    if clip.kp2d is not None and clip.kp2d.shape[1] > 0:
        vals["skeleton"] = fm.skeleton_consistency(optical, mask, clip.kp2d[t], clip.kp2d[t + 1]).consistency
        vals["joint_local"] = fm.joint_local_error(local, mask, clip.kp2d[t], clip.kp2d[t + 1])
    vals["chamfer"] = fm.boundary_chamfer(world, mask).chamfer
    return vals


@dataclass
class BenchResults:
    """Per-pair metric values of every method on every clip, and the cost measurements.

    Attributes:
        clips: the clips (without their arrays' ownership: kept for thumbnails).
        methods: the method specs, in order.
        values: method -> clip name -> metric -> list of per-pair values (nan where undefined).
        thumbs: method -> clip name -> first pair's world flow (H, W, 2).
        seconds: method -> seconds spent computing forward flows.
        cost: method -> list of cost rows (see :func:`measure_cost`).
        notes: free-form lines for the report.
    """

    clips: list[BenchClip]
    methods: list[MethodSpec]
    values: dict[str, dict[str, dict[str, list[float]]]] = field(default_factory=dict)
    thumbs: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    cost: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def _show(progress: bool | None) -> bool:
    return sys.stderr.isatty() if progress is None else bool(progress)


OCCLUSION_MODES = ("reference", "own", "none")


def reference_occlusions(clip: BenchClip) -> np.ndarray:
    """(N, H, W) bool occluded pixels of each pair: the forward-backward check of OpenCV DIS (medium).

    One occlusion mask per pair, shared by every method, so the photometric errors of all methods average over the
    same pixels (a method's own check would let it drop the pixels it finds hard, e.g. DIS x mask at the boundary).
    """
    dis = create_method("dis")
    out = np.zeros((clip.num_pairs, *clip.frames.shape[1:3]), bool)  # (N, H, W)
    for t in range(clip.num_pairs):
        a, b = clip.frames[t], clip.frames[t + 1]
        out[t] = ~fm.forward_backward_valid(dis(a, b).world, dis(b, a).world)
    return out


def run_flow_bench(clips: Sequence[BenchClip], methods: Sequence[MethodSpec], *, occlusion: str = "reference",
                   progress: bool | None = None) -> BenchResults:
    """Run every available method on every pair of every clip and compute the metrics.

    Args:
        clips: the clips (all pairs of each are used).
        methods: from :func:`build_methods`.
        occlusion: how occluded pixels leave the photometric error: ``reference`` (one DIS forward-backward check
            per pair for all methods, see :func:`reference_occlusions`), ``own`` (each method's own backward flow;
            file methods have none and are scored without a check) or ``none``.
        progress: progress bar (None: only on a terminal).

    Returns:
        :class:`BenchResults`.
    """
    if not clips:
        raise UsageError("no clips to benchmark")
    if occlusion not in OCCLUSION_MODES:
        raise UsageError(f"occlusion must be one of {', '.join(OCCLUSION_MODES)}, got {occlusion!r}")
    occluded = {c.name: reference_occlusions(c) for c in clips} if occlusion == "reference" else {}
    res = BenchResults(clips=list(clips), methods=list(methods))
    todo = [(m, c) for m in methods if m.method is not None for c in clips]
    bar = tqdm(total=sum(c.num_pairs for _, c in todo), desc="bench flow", unit="pair", disable=not _show(progress))
    for spec in methods:
        res.values[spec.name] = {}
        res.thumbs[spec.name] = {}
        res.seconds[spec.name] = 0.0
    for spec, clip in todo:
        method = spec.method
        assert method is not None
        per: dict[str, list[float]] = {k: [] for k in METRIC_NAMES}
        worlds = []
        for t in range(clip.num_pairs):
            a, b = clip.frames[t], clip.frames[t + 1]
            pose = None if clip.kp2d is None else (clip.kp2d[t], clip.kp2d[t + 1])
            t0 = time.perf_counter()
            out = method(a, b, clip.masks[t], pose)
            res.seconds[spec.name] += time.perf_counter() - t0
            backward = None
            if occlusion == "own" and not method.sequential:
                back = method(b, a, clip.masks[t + 1])
                backward = back.world if back.camera is None else back.world + back.camera
            occ = occluded[clip.name][t] if occluded else None
            for k, v in _pair_metrics(clip, t, out, backward, occ).items():
                per[k].append(float(v))
            worlds.append(out.world)
            bar.update(1)
        per["stability"] = [fm.temporal_stability(worlds[t], worlds[t + 1], clip.masks[t])
                            if (clip.masks[t] > 0).any() else math.nan for t in range(len(worlds) - 1)]
        res.values[spec.name][clip.name] = per
        res.thumbs[spec.name][clip.name] = worlds[0]
    bar.close()
    return res


# ---- cost -------------------------------------------------------------------------------------------------------


def set_threads(threads: int | None) -> dict[str, int]:
    """Set torch's and OpenCV's CPU threads (None: leave them); returns the counts in use."""
    import cv2
    import torch

    if threads is not None:
        if threads < 1:
            raise UsageError(f"threads must be >= 1, got {threads}")
        torch.set_num_threads(int(threads))
        cv2.setNumThreads(int(threads))
    return {"torch": int(torch.get_num_threads()), "opencv": int(cv2.getNumThreads())}


def _rss_bytes() -> int:
    try:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):  # pragma: no cover - not Linux
        import resource

        return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024


class _PeakRss:
    """Samples the resident set size in a thread; ``peak - start`` is the run's peak memory increase."""

    def __init__(self, interval: float = 0.002) -> None:
        self.interval = interval
        self.start = self.peak = _rss_bytes()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, _rss_bytes())
            time.sleep(self.interval)

    def __enter__(self) -> _PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, _rss_bytes())


def measure_cost(methods: Sequence[MethodSpec], *, sizes: Sequence[tuple[int, int]] = COST_SIZES, pairs: int = 3,
                 repeats: int = 5, progress: bool | None = None) -> dict[str, list[dict[str, Any]]]:
    """Pairs per second and peak memory of each method's forward flow at each (H, W) size.

    Frames are a generated held-out clip of that size. Per size: one warm-up pair per method, then ``repeats``
    rounds, each timing ``pairs`` pairs of every method in turn (interleaved, so a change of load on a shared machine
    hits every method alike); pairs/s is the median over the rounds, with the slowest and fastest round beside it.
    Then the same pairs again under ``tracemalloc`` (peak Python/numpy allocation) while a thread samples the
    process's resident memory (peak increase over the start: covers torch and OpenCV buffers, but memory the process
    already holds from earlier work is reused and not counted). Each row states the threads in use and the load
    average (1 minute) while it was timed.

    Returns:
        method -> rows ``{"size": "WxH", "pairs_per_s", "pairs_per_s_min", "pairs_per_s_max", "repeats",
        "threads", "load", "peak_tracemalloc_mb", "peak_rss_increase_mb", "reason"}`` (values null with a reason
        for unavailable or file methods).
    """
    from hmore.bench.robustness import bench_seed
    from hmore.synth.clip import render_clip

    if repeats < 1:
        raise UsageError(f"repeats must be >= 1, got {repeats}")
    out: dict[str, list[dict[str, Any]]] = {m.name: [] for m in methods}
    for h, w in tqdm(sizes, desc="cost", unit="size", disable=not _show(progress), leave=False):
        clip = render_clip(size=(h, w), num_frames=pairs + 1, seed=bench_seed("synth-heldout", 0), subjects=1,
                           distractors=2, camera_motion="pan")  # a moving camera: compensation runs in full
        rows: dict[str, dict[str, Any]] = {}
        timed = []
        for spec in methods:
            row = rows[spec.name] = {
                "size": f"{w}x{h}", "pairs_per_s": None, "pairs_per_s_min": None, "pairs_per_s_max": None,
                "repeats": repeats, "threads": set_threads(None), "load": None, "peak_tracemalloc_mb": None,
                "peak_rss_increase_mb": None, "reason": None}
            m = spec.method
            if m is None or m.sequential:
                row["reason"] = spec.reason if m is None else "flow read from files: no compute to measure"
                continue
            m(clip.frames[0], clip.frames[1], clip.masks[0], (clip.kp2d[0], clip.kp2d[1]))  # warm-up (lazy init)
            timed.append(spec)
        speeds: dict[str, list[float]] = {s.name: [] for s in timed}
        loads: dict[str, list[float]] = {s.name: [] for s in timed}
        for _ in range(repeats):
            for spec in timed:
                m = spec.method
                assert m is not None
                t0 = time.perf_counter()
                for t in range(pairs):
                    m(clip.frames[t], clip.frames[t + 1], clip.masks[t], (clip.kp2d[t], clip.kp2d[t + 1]))
                speeds[spec.name].append(pairs / max(time.perf_counter() - t0, 1e-9))
                loads[spec.name].append(os.getloadavg()[0])
        for spec in timed:
            m, row = spec.method, rows[spec.name]
            assert m is not None
            v = speeds[spec.name]
            row.update(pairs_per_s=float(np.median(v)), pairs_per_s_min=min(v), pairs_per_s_max=max(v),
                       load=float(np.mean(loads[spec.name])))
            tracemalloc.start()
            try:
                with _PeakRss() as rss:
                    for t in range(pairs):
                        m(clip.frames[t], clip.frames[t + 1], clip.masks[t], (clip.kp2d[t], clip.kp2d[t + 1]))
                row["peak_tracemalloc_mb"] = tracemalloc.get_traced_memory()[1] / 2**20
            finally:
                tracemalloc.stop()
            row["peak_rss_increase_mb"] = (rss.peak - rss.start) / 2**20
        for spec in methods:
            out[spec.name].append(rows[spec.name])
    return out


# ---- summaries --------------------------------------------------------------------------------------------------


def _finite_mean(values: Sequence[float]) -> tuple[float | None, int]:
    v = [x for x in values if x is not None and math.isfinite(x)]
    return (float(np.mean(v)) if v else None), len(v)


def _missing_reason(metric: MetricInfo, res: BenchResults, spec: MethodSpec, clips: Sequence[BenchClip]) -> str:
    if spec.method is None:
        return f"method unavailable: {spec.reason}"
    if metric.ground_truth and all(c.flow is None for c in clips):
        return "no ground-truth flow (real video)"
    if metric.name in ("epe_scene", "camera_epe") and all(c.camera_flow is None for c in clips):
        return "no camera-induced ground truth"
    if all(not (c.masks > 0).any() for c in clips):
        return "no person masks (no priors)"
    if metric.name in ("skeleton", "joint_local") and all(c.kp2d is None or c.kp2d.shape[1] == 0 for c in clips):
        return "no pose prior"
    if metric.name == "joint_local":
        return "no confident joints (hips and at least one other joint at t and t+1) on a person's mask"
    if metric.name == "stability" and all(c.num_pairs < 2 for c in clips):
        return "needs at least 2 consecutive pairs per clip"
    if metric.name == "leakage":
        return "undefined (no background or no person pixel, or only the background moves)"
    if metric.name == "chamfer":
        return "no flow edge (flow constant) or no person boundary"
    return "no pixel could be scored (all occluded or outside the image)"


def summarise(res: BenchResults) -> dict[str, Any]:
    """The ``results.json`` content (JSON types only, no NaN).

    Per method: ``metrics`` (mean over all pairs, with ``n`` and the reason of a null), ``by_set`` (set -> metric ->
    mean over that set's pairs), ``by_level`` (set -> level -> metric -> mean), ``per_clip`` and ``cost``. ``sets``
    gives each set's clip and pair counts, in the order of the clips.
    """
    from hmore import __version__
    from hmore.bench.robustness import BENCH_SEED_BASE

    methods: dict[str, Any] = {}
    for spec in res.methods:
        vals = res.values.get(spec.name, {})
        entry: dict[str, Any] = {
            "spec": spec.spec, "available": spec.method is not None, "reason": spec.reason,
            "info": {} if spec.method is None else dict(spec.method.info),
            "human_centric": bool(spec.method is not None and spec.method.human_centric),
            "metrics": {}, "by_set": {}, "by_level": {}, "per_clip": {}, "cost": res.cost.get(spec.name, []),
            "seconds_forward": res.seconds.get(spec.name),
        }
        for metric in METRICS:
            allv = [x for c in vals.values() for x in c.get(metric.name, [])]
            value, n = _finite_mean(allv)
            entry["metrics"][metric.name] = {
                "value": value, "n": n,
                "reason": None if value is not None else _missing_reason(metric, res, spec, res.clips),
            }
        groups: dict[str, dict[str, list[BenchClip]]] = {}
        for c in res.clips:
            groups.setdefault(c.set_name, {}).setdefault(c.level, []).append(c)
        for set_name, levels in groups.items():
            entry["by_set"][set_name] = {
                m.name: _finite_mean([x for cl in levels.values() for c in cl
                                      for x in vals.get(c.name, {}).get(m.name, [])])[0]
                for m in METRICS
            }
            entry["by_level"][set_name] = {
                level: {m.name: _finite_mean([x for c in cl for x in vals.get(c.name, {}).get(m.name, [])])[0]
                        for m in METRICS}
                for level, cl in levels.items()
            }
        for c in res.clips:
            entry["per_clip"][c.name] = {m.name: _finite_mean(vals.get(c.name, {}).get(m.name, []))[0]
                                         for m in METRICS}
        methods[spec.name] = entry
    return json_clean({
        "hmore_version": __version__,
        "seed_base": BENCH_SEED_BASE,
        "metrics": {m.name: {"label": m.label, "description": m.description,
                             "better": "higher" if m.higher_is_better else "lower", "ground_truth": m.ground_truth}
                    for m in METRICS},
        "clips": [{"name": c.name, "set": c.set_name, "level": c.level, "level_value": c.level_value,
                   "pairs": c.num_pairs, "size": [int(c.frames.shape[1]), int(c.frames.shape[2])],
                   "subjects": int(c.masks.max()) if c.masks.size else 0, "masks": c.mask_source,
                   "notes": list(c.notes)}
                  for c in res.clips],
        "sets": {s: {"clips": sum(c.set_name == s for c in res.clips),
                     "pairs": sum(c.num_pairs for c in res.clips if c.set_name == s)}
                 for s in dict.fromkeys(c.set_name for c in res.clips)},
        "methods": methods,
        "notes": list(res.notes),
    })


def summary_sets(summary: dict[str, Any]) -> dict[str, dict[str, int]]:
    """Set name -> ``{"clips": n, "pairs": n}`` in the order of the clips (from ``summary["clips"]``)."""
    out: dict[str, dict[str, int]] = {}
    for c in summary["clips"]:
        row = out.setdefault(c["set"], {"clips": 0, "pairs": 0})
        row["clips"] += 1
        row["pairs"] += int(c["pairs"])
    return out


def method_values(summary: dict[str, Any], set_name: str | None = None) -> dict[str, dict[str, float | None]]:
    """Method -> metric -> value: the means over all pairs, or over the pairs of ``set_name``."""
    if set_name is None:
        return {n: {m: v["value"] for m, v in e["metrics"].items()} for n, e in summary["methods"].items()}
    known = summary_sets(summary)
    if set_name not in known:
        raise UsageError(f"no set {set_name!r} in these results; sets: {', '.join(known) or 'none'}")
    return {n: dict(e["by_set"].get(set_name) or dict.fromkeys(summary["metrics"]))
            for n, e in summary["methods"].items()}


def format_table(summary: dict[str, Any], metrics: Sequence[str] | None = None, set_name: str | None = None) -> str:
    """A plain-text table: one row per method, one column per metric (``-`` for null), the best marked ``*``.

    Values are the means over all pairs, or with ``set_name`` over the pairs of that set (``by_set``).
    """
    names = list(metrics or summary["metrics"])
    info = summary["metrics"]
    values = method_values(summary, set_name)
    rows = list(summary["methods"].items())
    best: dict[str, float] = {}
    for m in names:
        vals = [values[n][m] for n, _ in rows if values[n][m] is not None]
        if vals:
            best[m] = max(vals) if info[m]["better"] == "higher" else min(vals)
    header = ["method", *[info[m]["label"] for m in names]]
    body = []
    for name, e in rows:
        cells = [name if e["available"] else f"{name} (unavailable)"]
        for m in names:
            v = values[name][m]
            cells.append("-" if v is None else f"{v:.4g}{'*' if best.get(m) == v else ''}")
        body.append(cells)
    widths = [max(len(r[i]) for r in [header, *body]) for i in range(len(header))]
    line = "  ".join(h.ljust(w) for h, w in zip(header, widths))
    out = [line, "-" * len(line)]
    out += ["  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths))) for r in body]
    return "\n".join(out)


def _set_heading(set_name: str, counts: dict[str, int]) -> str:
    clips, pairs = counts["clips"], counts["pairs"]
    return f"{set_name}: {clips} clip{'s' if clips != 1 else ''}, {pairs} pair{'s' if pairs != 1 else ''}"


def format_tables(summary: dict[str, Any], metrics: Sequence[str] | None = None) -> str:
    """The results as text: one table per set, each headed by its name and counts, when the clips come from several
    sets (real and generated numbers are not pooled); otherwise the single :func:`format_table`."""
    sets = summary_sets(summary)
    if len(sets) <= 1:
        return format_table(summary, metrics)
    return "\n\n".join(f"{_set_heading(s, n)}\n{format_table(summary, metrics, set_name=s)}" for s, n in sets.items())


def winners(summary: dict[str, Any], set_name: str | None = None) -> list[list[Any]]:
    """Per metric: the best method(s) and value, and the next best (``-`` when fewer than two methods scored).

    Over all pairs, or with ``set_name`` over the pairs of that set.
    """
    values = method_values(summary, set_name)
    rows = []
    for m, info in summary["metrics"].items():
        vals = {n: values[n][m] for n in summary["methods"] if values[n][m] is not None}
        if not vals:
            rows.append([m, "-", "-", "-", "-"])
            continue
        ranked = sorted(set(vals.values()), reverse=info["better"] == "higher")
        best = [n for n, v in vals.items() if v == ranked[0]]
        nxt = [n for n, v in vals.items() if len(ranked) > 1 and v == ranked[1]]
        rows.append([m, ", ".join(best), round(ranked[0], 4), ", ".join(nxt) or "-",
                     round(ranked[1], 4) if len(ranked) > 1 else "-"])
    return rows


def format_cost_table(summary: dict[str, Any]) -> str:
    """pairs/s (median of the repeats, slowest-fastest), threads, load and peak memory per method and size."""
    lines = [f"{'method':<22}{'size':>9}{'pairs/s':>10}{'range':>15}{'threads':>9}{'load':>7}"
             f"{'tracemalloc MB':>16}{'RSS+ MB':>10}"]
    for name, e in summary["methods"].items():
        for row in e["cost"]:
            def f(v: float | None, fmt: str) -> str:
                return "-" if v is None else format(v, fmt)

            lo, hi = row.get("pairs_per_s_min"), row.get("pairs_per_s_max")
            spread = "-" if lo is None or hi is None else f"{lo:.2f}-{hi:.2f}"
            threads = row.get("threads") or {}
            lines.append(f"{name:<22}{row['size']:>9}{f(row['pairs_per_s'], '.2f'):>10}{spread:>15}"
                         f"{threads.get('torch', '-')!s:>9}{f(row.get('load'), '.2f'):>7}"
                         f"{f(row['peak_tracemalloc_mb'], '.1f'):>16}{f(row['peak_rss_increase_mb'], '.1f'):>10}")
    if any(e["cost"] for e in summary["methods"].values()):
        reps = {row.get("repeats") for e in summary["methods"].values() for row in e["cost"]}
        lines.append(f"pairs/s: median over {', '.join(str(r) for r in sorted(reps, key=str))} interleaved rounds; "
                     "threads: torch's; load: 1-minute load average while timed")
    return "\n".join(lines)


# ---- report -----------------------------------------------------------------------------------------------------


def _chart_metrics(summary: dict[str, Any], set_name: str | None = None) -> list[str]:
    """The metrics a set's bar chart shows: those at least one method has there (no EPE panels for real clips)."""
    values = method_values(summary, set_name)
    names = list(summary["methods"])
    shown = [m for m in summary["metrics"] if any(values[n][m] is not None for n in names)]
    return shown or list(summary["metrics"])


def _bar_chart(path: Path, summary: dict[str, Any], set_name: str | None = None) -> Path:
    names = list(summary["methods"])
    values = method_values(summary, set_name)
    metrics = _chart_metrics(summary, set_name)
    cols = 4
    rows = math.ceil(len(metrics) / cols)

    def draw(fig: Any) -> None:
        for i, m in enumerate(metrics):
            ax = fig.add_subplot(rows, cols, i + 1)
            vals = [values[n][m] for n in names]
            ax.bar(range(len(names)), [0.0 if v is None else v for v in vals],
                   color=[f"C{j}" for j in range(len(names))])
            for j, v in enumerate(vals):
                if v is None:
                    ax.text(j, 0, "n/a", ha="center", va="bottom", fontsize=7)
                elif v == 0:  # e.g. the masked baseline's leakage: say 0 rather than leave a gap
                    ax.text(j, 0, "0", ha="center", va="bottom", fontsize=7)
            ax.set_xticks(range(len(names)), names, rotation=35, ha="right", fontsize=7)
            better = "higher" if summary["metrics"][m]["better"] == "higher" else "lower"
            ax.set_title(f"{summary['metrics'][m]['label']} ({better} is better)", fontsize=8)
            ax.tick_params(axis="y", labelsize=7)

    return save_png(path, draw, figsize=(3.0 * cols, 2.6 * rows))


def _curves(path: Path, summary: dict[str, Any], set_name: str) -> Path:
    metrics = [m for m in summary["metrics"]
               if any(summary["methods"][n]["by_level"].get(set_name, {}).get(lv, {}).get(m) is not None
                      for n in summary["methods"] for lv in summary["methods"][n]["by_level"].get(set_name, {}))]
    levels = list(dict.fromkeys(c["level"] for c in summary["clips"] if c["set"] == set_name))
    cols = 4
    rows = max(1, math.ceil(len(metrics) / cols))

    def draw(fig: Any) -> None:
        for i, m in enumerate(metrics):
            ax = fig.add_subplot(rows, cols, i + 1)
            for j, (n, e) in enumerate(summary["methods"].items()):
                ys = [e["by_level"].get(set_name, {}).get(lv, {}).get(m) for lv in levels]
                if all(y is None for y in ys):
                    continue
                ax.plot(range(len(levels)), [math.nan if y is None else y for y in ys], color=f"C{j}", label=n,
                        marker="osd^v<>"[j % 7], linestyle=("-", "--", ":", "-.")[j % 4], markersize=4 - 0.5 * (j % 3))
            ax.set_xticks(range(len(levels)), levels, fontsize=7, rotation=20)
            ax.set_title(summary["metrics"][m]["label"], fontsize=8)
            ax.tick_params(axis="y", labelsize=7)
            if i == 0:
                ax.legend(fontsize=6)

    return save_png(path, draw, figsize=(3.0 * cols, 2.5 * rows))


def _thumbnail(path: Path, res: BenchResults, clip: BenchClip) -> Path | None:
    import cv2

    from hmore.io.atomic import atomic_path
    from hmore.report.draw import hstack_panels
    from hmore.report.flowviz import flow_to_color, robust_max_magnitude

    flows = [(s.name, res.thumbs[s.name][clip.name]) for s in res.methods if clip.name in res.thumbs.get(s.name, {})]
    if not flows:
        return None
    if clip.flow is not None:
        flows.insert(0, ("ground truth", clip.flow[0]))
    inside = clip.masks[0] > 0
    ref = np.concatenate([f[inside] if inside.any() else f.reshape(-1, 2) for _, f in flows])
    scale = robust_max_magnitude(ref[None], percentile=95.0, floor=0.5)
    panels = [clip.frames[0], *[flow_to_color(f, max_mag=scale) for _, f in flows]]
    titles = ["frame", *[n for n, _ in flows]]
    img = hstack_panels(panels, titles, height=max(96, min(192, clip.frames.shape[1])))
    with atomic_path(path, suffix=".png") as tmp:
        cv2.imwrite(str(tmp), cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
    return path


def _safe_name(name: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in name)


def _thumbnail_picks(clips: Sequence[BenchClip], limit: int) -> list[int]:
    """Indices of at most ``limit`` clips to show, taken from each set in turn (so every set is shown), in order."""
    by_set: dict[str, list[int]] = {}
    for i, c in enumerate(clips):
        by_set.setdefault(c.set_name, []).append(i)
    picks: list[int] = []
    queues = [list(v) for v in by_set.values()]
    while len(picks) < limit and any(queues):
        for q in queues:
            if q and len(picks) < limit:
                picks.append(q.pop(0))
    return sorted(picks)


def write_outputs(out_dir: str | Path, res: BenchResults, *, title: str = "hmore bench flow", command: str = "",
                  max_thumbnails: int = 12) -> dict[str, Any]:
    """Write ``results.json`` and ``report.html`` (with ``figures/``) into ``out_dir``; returns the summary.

    With clips from several sets, the Results section shows one table, winners table and bar chart
    (``figures/bars_<set>.png``) per set instead of the pooled ones (``figures/bars.png``).
    """
    from hmore.io.atomic import write_json_atomic
    from hmore.report.html import Report

    out = Path(out_dir)
    figs = out / "figures"
    figs.mkdir(parents=True, exist_ok=True)
    summary = summarise(res)
    write_json_atomic(out / "results.json", summary)

    report = Report(title, intro="Every method ran on the same frame pairs. Lower is better except for "
                    "'skeleton ok'. Missing values (n/a) are explained in results.json.")
    if command:
        report.add_code(command)
    metric_names = list(summary["metrics"])
    header = ["method", *[summary["metrics"][m]["label"] for m in metric_names]]
    set_counts = summary_sets(summary)

    def results(set_name: str | None, bars: Path) -> None:
        values = method_values(summary, set_name)
        report.add_table([[n, *[("-" if values[n][m] is None else round(values[n][m], 4)) for m in metric_names]]
                          for n in summary["methods"]], header=header)
        report.add_table(winners(summary, set_name), header=["metric", "best method(s)", "value", "next best", "value"])
        report.add_figure(_bar_chart(bars, summary, set_name), "one bar per method and metric"
                          + ("" if set_name is None else f" (set '{set_name}')"))

    if len(set_counts) > 1:
        report.add_section("Results", "Means over the pairs of each set; real and generated clips (and the generated "
                           "sets) are not pooled into one mean.")
        for s, counts in set_counts.items():
            report.add_section(f"Results: {_set_heading(s, counts)}")
            results(s, figs / f"bars_{_safe_name(s)}.png")
        report.add_section("Methods and metrics")
    else:
        report.add_section("Results", "Means over all pairs.")
        results(None, figs / "bars.png")
    report.add_table([[n, e["spec"], "; ".join(f"{k}: {v}" for k, v in e["info"].items()) or "-"]
                      for n, e in summary["methods"].items()], header=["method", "spec", "details"])
    report.add_table([[m, summary["metrics"][m]["description"], summary["metrics"][m]["better"]]
                      for m in metric_names], header=["metric", "definition", "better"])
    unavailable = [(n, e["reason"]) for n, e in summary["methods"].items() if not e["available"]]
    if unavailable:
        report.add_table([list(u) for u in unavailable], header=["unavailable method", "reason"])

    sets = list(dict.fromkeys(c.set_name for c in res.clips))
    curve_sets = [s for s in sets if not s.startswith("real") and s != "synth-heldout"]
    if curve_sets:
        report.add_section("Robustness", "The same scenes at each level of one knob; one line per method.")
        for s in curve_sets:
            report.add_figure(_curves(figs / f"curves_{s}.png", summary, s),
                              f"set '{s}': metric per level (methods with equal values overlap, e.g. DIS and DIS x "
                              "mask inside the masks)")

    def cell(v: Any, nd: int = 3) -> Any:
        return "-" if v is None else round(v, nd) if isinstance(v, float) else v

    cost_rows = [[n, r["size"], cell(r["pairs_per_s"]),
                  "-" if r.get("pairs_per_s_min") is None else f"{r['pairs_per_s_min']:.2f}-{r['pairs_per_s_max']:.2f}",
                  cell((r.get("threads") or {}).get("torch")), cell(r.get("load"), 2),
                  cell(r["peak_tracemalloc_mb"], 1), cell(r["peak_rss_increase_mb"], 1)]
                 for n, e in summary["methods"].items() for r in e["cost"]]
    if cost_rows:
        reps = sorted({str(r.get("repeats")) for e in summary["methods"].values() for r in e["cost"]})
        report.add_section("Cost", f"Forward flow only, on this machine: pairs/s is the median over {', '.join(reps)} "
                           "interleaved rounds (range: slowest to fastest round), with torch's threads and the "
                           "1-minute load average while timed; memory: peak tracemalloc (Python and numpy "
                           "allocations) and peak increase of the resident set during the run.")
        report.add_table(cost_rows, header=["method", "size", "pairs/s", "range", "threads", "load",
                                            "peak tracemalloc MB", "peak RSS+ MB"])

    report.add_section("Clips", "First pair of each clip: frame | flow per method (one colour scale per clip).")
    for i in _thumbnail_picks(res.clips, max_thumbnails):
        clip = res.clips[i]
        p = _thumbnail(figs / f"clip_{i:03d}_{_safe_name(clip.name)}.png", res, clip)
        if p is not None:
            report.add_figure(p, f"{clip.name}" + (f" ({'; '.join(clip.notes)})" if clip.notes else ""))
    for note in res.notes:
        report.add_text(note)
    report.save(out / "report.html")
    return summary


def run(data: str | Sequence[str], *, methods: Sequence[str], out_dir: str | Path, pairs: int = 2, clips: int = 2,
        size: tuple[int, int] = (192, 256), fps: float | None = None, weights: str | None = None,
        device: str = "cpu", cost_sizes: Sequence[tuple[int, int]] | None = COST_SIZES, cost_pairs: int = 3,
        occlusion: str = "reference", threads: int | None = None, progress: bool | None = None,
        command: str = "", cost_repeats: int = 5) -> dict[str, Any]:
    """The whole benchmark: clips, methods, metrics, cost, outputs. Returns the summary (``results.json``).

    Args:
        data: a source or a sequence of sources, each a generated set name (:data:`GENERATED_SETS`,
            ``robustness:SET``) or a video / folder path; their clips are concatenated (see :func:`bench_clips`).
        methods: method specs (see :mod:`hmore.bench.flow_methods`).
        out_dir: output folder.
        pairs: consecutive pairs per clip.
        clips: clips per level of a generated set.
        size: (H, W) of generated clips; real frames are scaled to a longer side of max(size).
        fps: frame rate of generated clips (None: each set's own, 30 for most); real clips keep theirs.
        weights: weights for hmore models given without ``=PATH``.
        device: torch device for hmore models.
        cost_sizes: sizes for :func:`measure_cost` (None or empty: skip).
        cost_pairs: pairs per size for the cost.
        cost_repeats: timed rounds per size (pairs/s is their median).
        occlusion: occlusion handling of the photometric error (see :func:`run_flow_bench`).
        threads: CPU threads for torch and OpenCV (None: their defaults). On a shared, loaded machine torch's
            default (one thread per core) can be many times slower than 1 thread (busy-waiting threads).
        progress: progress bars (None: on a terminal).
        command: the command line, shown in the report.
    """
    used_threads = set_threads(threads)
    specs = build_methods(methods, weights=weights, device=device)
    clip_list = bench_clips(data, pairs=pairs, clips=clips, size=size, fps=fps, progress=progress)
    res = run_flow_bench(clip_list, specs, occlusion=occlusion, progress=progress)
    if fps is not None and any(c.flow is not None for c in clip_list):
        res.notes.append(f"Generated clips rendered at {fps:g} frames per second.")
    res.notes.append(f"Photometric errors: occlusions removed by the '{occlusion}' forward-backward check.")
    res.notes.append(f"CPU threads: torch {used_threads['torch']}, OpenCV {used_threads['opencv']}.")
    if cost_sizes:
        res.cost = measure_cost(specs, sizes=cost_sizes, pairs=cost_pairs, repeats=cost_repeats,
                                progress=progress)
    return write_outputs(out_dir, res, command=command)
