"""H-MoRe inference on a video: world flow, local flow and subject velocities, streamed pair by pair.

:func:`iter_flow` decodes one frame at a time and yields one :class:`FlowPair` per consecutive pair of selected
frames, so memory does not grow with the video's length; :func:`flow` (exported as ``hmore.flow``) collects them into a
:class:`FlowRepresentation`; :func:`write_flow_npz` streams them into ``flow.npz`` without holding the clip.

Subject masks (``masks=``):

* ``"auto"`` (default): person masks from ``hmore.priors`` (MediaPipe pose with segmentation, tracked ids) when that
  backend can run; otherwise the whole-frame fallback, with a warning.
* ``"priors"``: ``hmore.priors`` or an error.
* ``"whole"``: the fallback: one subject covering the whole frame. Its v_s is then the frame's overall motion
  (camera pan plus the average of everything moving) and the local flow is the world flow relative to it.
* a ``priors.npz`` path (``hmore priors`` output) or an array ``(T, h, w)`` of labels (0 background, k subject k)
  for the selected frames, at any resolution (resized to the processing size with nearest neighbours).

Camera compensation (``camera=``, default ``"homography"``): world flow is motion relative to the scene. For each
pair the camera's image motion is fitted to OpenCV DIS flow on the background (:mod:`hmore.flow.camera`: outside the
dilated person masks, RANSAC), the network finds the flow from frame t to frame t+1 seen from frame t's view, where
the background stands still (H-MoReFlow looks its correlation up through the homography, so frame t+1 is encoded as it
is and its features serve the next pair; other flow models get frame t+1 warped), and that flow is mapped back to
"optical flow minus camera-induced flow". Where no fit can be
trusted (people fill the frame, a plain background, a static camera) the camera counts as still and the pair is
processed as it is; the reason is kept. ``camera="off"`` gives the network's optical flow as before.

Refinement (``refine=``, default ``"variational"``): the network's optical flow is refined photometrically inside
the people's masks (dilated by 3 pixels), the last step DIS takes too, and kept as it is on the background
(:mod:`hmore.flow.refine`); ``refine="off"`` gives the network's flow unchanged.

Small people (``zoom=``, default ``"off"``): with ``"auto"`` a person shorter than 128 pixels at the processing size
gets a second pass of the network on a crop around them enlarged 2-3x, whose flow replaces the first pass's inside
that person (:mod:`hmore.flow.zoom`; at most 4 people a pair, the smallest first; up to ~2x the cost).

Local flow (``subject_motion=``, default ``"pose"``): world flow minus each person's motion v_s, taken from the pelvis
of the pose track (priors, a priors.npz, a generated clip's keypoints, or ``keypoints=``) and else from the
person's median flow; ``"psi"`` uses the subject network (:mod:`hmore.flow.subject`).

Memory: flow is computed and written one pair at a time; only the priors pass (``"auto"``/``"priors"``) keeps the
clip's uint8 label masks (T x h x w bytes), and a generated clip (``.npz``) is read whole.

Track ids can exceed the model's subject queries (``max_subjects``): each pair is relabelled to the ids present, so
only more people at once than queries is a limit (the smallest masks then become background, with a warning).
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import zipfile
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from queue import Queue
from typing import Any

import cv2
import numpy as np
import torch
from tqdm import tqdm

from hmore.errors import InputError, UsageError
from hmore.flow.camera import CameraConfig, CameraMotion, estimate_camera, scene_flow, stabilise, to_stabilised
from hmore.flow.refine import DEFAULT_REFINE, RefineConfig, refine_in_people, refine_mode, resolve_refine
from hmore.flow.zoom import DEFAULT_ZOOM, ZoomConfig, resolve_zoom, zoom_people
from hmore.io.atomic import atomic_path

log = logging.getLogger(__name__)

DEFAULT_MODEL = "hmore_flow_cpu"
DEFAULT_MAX_SIDE = 512  # longer side of the processing size when ``size`` is None
MASK_MODES = ("auto", "priors", "whole")
# OpenCV's DIS flow (the model's initial flow, and a baseline) raises on frames under 16 px on a side, or corrupts the
# heap (SIGSEGV) when they are also wide (e.g. 15x200): smaller frames are refused
MIN_FLOW_SIDE = 16
CAMERA_MODES = ("homography", "affine", "off")
DEFAULT_CAMERA = "homography"
DEFAULT_SUBJECT_MOTION = "pose"


@dataclass(frozen=True)
class FlowPair:
    """The representation of one frame pair (t, t+1), at the processing size.

    Attributes:
        index: pair number t (0-based, in selected frames).
        frame: (H, W, 3) uint8 RGB frame t.
        world: (2, H, W) float32 world flow (dx, dy) in pixels.
        local: (2, H, W) float32 local flow (world - v_s inside subject s, 0 outside every subject).
        subject_velocity: (P, 2) float32 v_s in pixels for the video's subjects 1..P (0 where absent).
        mask: (H, W) uint8 subject labels of frame t that were used.
        camera: (2, H, W) float32 camera-induced flow that was removed from the world flow (zeros when the camera
            counts as still or compensation is off).
        camera_motion: the fitted camera motion (homography, model, and why the identity was used, if it was).
    """

    index: int
    frame: np.ndarray
    world: np.ndarray
    local: np.ndarray
    subject_velocity: np.ndarray
    mask: np.ndarray
    camera: np.ndarray | None = None
    camera_motion: CameraMotion = field(default_factory=CameraMotion)

    def camera_field(self) -> np.ndarray:
        """(2, H, W) camera-induced flow (zeros when none was removed)."""
        return np.zeros_like(self.world) if self.camera is None else self.camera


@dataclass(frozen=True)
class FlowRepresentation:
    """H-MoRe's representation of a clip: 4 float channels per frame pair, plus the subject motion.

    Attributes:
        world: (T-1, 2, H, W) world flow in pixels.
        local: (T-1, 2, H, W) local flow in pixels.
        subject_velocity: (T-1, P, 2) v_s per pair and subject.
        masks: (T-1, H, W) uint8 subject labels used (frame t of each pair).
        camera: (T-1, 2, H, W) camera-induced flow removed from the world flow (zeros where none was).
        camera_homography: (T-1, 3, 3) the camera motion of each pair (identity where none was fitted).
        camera_note: per pair, "" when the camera motion was fitted, else why the camera counted as still.
        fps: frame rate of the selected frames.
        model: model name.
        weights: where the weights came from (a file, the shipped name, or ``"random"``).
        mask_source: ``"priors"``, ``"whole"``, ``"file"``, ``"array"`` or ``"clip"`` (a generated clip's masks).
    """

    world: np.ndarray
    local: np.ndarray
    subject_velocity: np.ndarray
    masks: np.ndarray
    camera: np.ndarray
    camera_homography: np.ndarray
    camera_note: list[str]
    fps: float
    model: str
    weights: str
    mask_source: str

    @property
    def num_pairs(self) -> int:
        return int(self.world.shape[0])

    def channels(self) -> np.ndarray:
        """(T-1, 4, H, W) world and local flow stacked, the "plug and play" input of downstream networks."""
        return np.concatenate([self.world, self.local], axis=1)


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``"auto"`` -> CUDA when available, else CPU; otherwise the device named, which must exist on this machine
    (:class:`UsageError` for unknown devices and for CUDA without CUDA)."""
    from hmore.train.distributed import resolve_device as resolve

    return resolve(str(device))


def flow_model_names() -> list[str]:
    """The registered flow models (builders under ``hmore.models.flow``)."""
    from hmore.registry import get_builder, list_models

    return [n for n in list_models() if get_builder(n).__module__.startswith("hmore.models.flow")]


def check_flow_model_name(name: str) -> None:
    """:class:`UsageError` unless ``name`` is a registered flow model (the message lists them)."""
    from hmore.registry import list_models

    flows = flow_model_names()
    if name not in flows:
        what = "is not a flow model" if name in list_models() else "is not a registered model"
        raise UsageError(f"{name!r} {what}; flow models: {', '.join(flows)}")


def _check_is_flow_model(model: torch.nn.Module, source: str) -> None:
    from hmore.models.flow.model import HMoReFlow

    if not isinstance(model, HMoReFlow):
        raise InputError(f"{source} holds a {type(model).__name__}, not a flow model (give weights of "
                         f"{', '.join(flow_model_names())})")


def load_flow_model(name: str = DEFAULT_MODEL, *, weights: str | Path | None = None,
                    device: str | torch.device = "cpu") -> tuple[torch.nn.Module, str]:
    """The flow model ``name`` with weights, in eval mode; returns ``(model, weights description)``.

    ``weights`` is a ``.safetensors`` file (checkpoint or exported weights, names and shapes checked) or the name of
    other weights shipped for a flow model (``hmore weights`` lists them). Without it,
    the weights shipped as ``name`` (``hmore.weights.load_model``); when none ship, a randomly initialised model
    (seed 0) with a loud warning: its flow is meaningless, which is only good for tests.
    """
    from hmore.registry import create_model

    dev = resolve_device(device)
    check_flow_model_name(name)
    if weights is not None:
        from hmore.train.checkpoint import load_weights_into, read_metadata
        from hmore.weights import build_model_from_config, weights_file

        path = weights_file(weights)
        meta = read_metadata(path)
        # checkpoints carry "model_config", exported weights "model": build what the weights were trained as
        model_config = meta.get("model_config", meta.get("model"))
        if isinstance(model_config, dict):
            model = build_model_from_config(model_config, source=str(path))
        else:
            model = create_model(name)
        _check_is_flow_model(model, f"weights file {path}")
        load_weights_into(model, path, strict=True)
        return model.to(dev).eval(), str(path)
    try:
        from hmore.weights import load_model
    except ImportError:  # pragma: no cover - the weights module ships with the package
        load_model = None
    if load_model is not None:
        try:
            model = load_model(name, device=dev)
            _check_is_flow_model(model, f"shipped weights {name}")
            return model, name
        except InputError as exc:
            if "not found" not in str(exc):
                raise  # a corrupt file is an error, not a reason to fall back
            reason = str(exc)
    else:  # pragma: no cover
        reason = "hmore.weights is not available"
    log.warning("NO TRAINED WEIGHTS for %s (%s): using a RANDOMLY INITIALISED model; its flow is meaningless. "
                "Pass --weights PATH or ship weights.", name, reason)
    gen_state = torch.random.get_rng_state()
    torch.manual_seed(0)
    try:
        model = create_model(name)
    finally:
        torch.random.set_rng_state(gen_state)
    return model.to(dev).eval(), "random"


def _frames(video_or_frames: Any, *, size: int | None, stride: int) -> Iterator[np.ndarray]:
    """Stream (H, W, 3) uint8 frames from a path (video, image folder) or an array/list of frames."""
    max_side = DEFAULT_MAX_SIDE if size is None else size
    if isinstance(video_or_frames, (str, Path)):
        from hmore.io.video import iter_frames

        yield from iter_frames(video_or_frames, stride=stride, max_side=max_side)
        return
    for i, frame in enumerate(video_or_frames):
        if i % stride:
            continue
        frame = np.asarray(frame)
        if frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
            raise InputError(f"frame {i} must be (H, W, 3) uint8 RGB, got {frame.shape} {frame.dtype}")
        h, w = frame.shape[:2]
        if max(h, w) > max_side:
            s = max_side / max(h, w)
            frame = cv2.resize(frame, (max(1, round(w * s)), max(1, round(h * s))), interpolation=cv2.INTER_AREA)
        yield frame


MaskFn = Callable[[int, tuple[int, int]], np.ndarray]


def _resize_labels(labels: np.ndarray, hw: tuple[int, int]) -> np.ndarray:
    if labels.shape == hw:
        return labels.astype(np.uint8, copy=False)
    return cv2.resize(labels.astype(np.uint8), (hw[1], hw[0]), interpolation=cv2.INTER_NEAREST)


def _whole(_: int, hw: tuple[int, int]) -> np.ndarray:
    return np.ones(hw, np.uint8)


def resolve_masks(masks: Any, video_or_frames: Any, *, stride: int, size: int | None,
                  pose: dict[str, PoseFn] | None = None) -> tuple[MaskFn, str, int]:
    """``masks`` (see the module docstring) -> (function (pair index, (H, W)) -> labels, source name, P).

    When the masks come from priors (computed or a ``priors.npz``) and ``pose`` is a dict, ``pose["fn"]`` is set to
    the priors' keypoints by frame (:func:`pose_from_priors`).
    """
    if masks is None:
        masks = "auto"
    if isinstance(masks, str) and masks in MASK_MODES:
        if masks == "whole":
            return _whole, "whole", 1
        try:
            if not isinstance(video_or_frames, (str, Path)):
                raise InputError("person-mask priors need a video path")
            from hmore.priors.pipeline import extract_priors
            from hmore.priors.pose import create_estimator

            estimator = create_estimator("mediapipe")
        except (ImportError, InputError, OSError, RuntimeError) as exc:
            if masks == "priors":
                raise InputError(f"cannot compute person-mask priors: {exc}") from None
            log.warning("no person-mask priors (%s); falling back to one subject = the whole frame", exc)
            return _whole, "whole", 1
        priors = extract_priors(video_or_frames, estimator=estimator, stride=stride,
                                max_side=DEFAULT_MAX_SIDE if size is None else size)
        labels = priors.masks
        source = "priors"
        if pose is not None:
            pose["fn"] = pose_from_priors(priors, None)
    elif isinstance(masks, (str, Path)):
        from hmore.priors.pipeline import load_priors

        if not Path(masks).is_file():
            raise UsageError(f"masks must be {', '.join(MASK_MODES)} or a priors.npz file from `hmore priors`; "
                             f"{str(masks)!r} is none of these")
        priors = load_priors(masks)
        _check_masks_fit(priors, Path(masks), video_or_frames, stride)
        # Row of the priors for each selected frame k (source frame stride * k); frames it lacks get no subjects.
        rows = {int(f): i for i, f in enumerate(priors.frame_index)}
        total = int(priors.frame_index.max()) // stride + 1 if len(priors.frame_index) else 0
        pick = [rows.get(stride * k, -1) for k in range(total)]
        empty = np.zeros((1, *priors.masks.shape[1:]), np.uint8)
        labels = np.concatenate([priors.masks, empty])[pick]  # row -1 is the empty mask
        source = "file"
        if pose is not None:
            pose["fn"] = pose_from_priors(priors, pick)
    else:
        labels = np.asarray(masks)
        if labels.ndim != 3:
            raise UsageError(f"masks must be 'auto', 'priors', 'whole', a priors.npz path or (T, H, W) labels; "
                             f"got an array of shape {labels.shape}")
        if labels.dtype.kind not in "iub" or (labels.size and (labels.min() < 0 or labels.max() > 255)):
            raise InputError(f"mask labels must be integers in 0..255, got dtype {labels.dtype}")
        source = "array"
    num = int(labels.max()) if labels.size else 0

    def from_labels(t: int, hw: tuple[int, int]) -> np.ndarray:
        if t >= labels.shape[0]:
            return np.zeros(hw, np.uint8)  # no mask for this frame: no subjects
        return _resize_labels(labels[t], hw)

    return from_labels, source, num


def _check_masks_fit(priors: Any, path: Path, video_or_frames: Any, stride: int) -> None:
    """:class:`InputError` when a priors file was made from another video (other size, or frames the video lacks);
    a warning when it covers only the start of the video."""
    if isinstance(video_or_frames, (str, Path)):
        from hmore.io.video import probe_video

        info = probe_video(video_or_frames)
        size, frames, name = (info.width, info.height), info.frames, Path(video_or_frames).name
    elif isinstance(video_or_frames, np.ndarray) and video_or_frames.ndim == 4:
        size, frames, name = (video_or_frames.shape[2], video_or_frames.shape[1]), len(video_or_frames), "the clip"
    else:
        return
    if tuple(int(v) for v in priors.size) != tuple(size):
        raise InputError(f"masks file {path} was made from a {priors.size[0]}x{priors.size[1]} video "
                         f"({priors.source or 'unknown'}), but {name} is {size[0]}x{size[1]}")
    last = int(priors.frame_index.max()) if len(priors.frame_index) else -1
    if frames is not None and last >= frames:
        raise InputError(f"masks file {path} has masks up to frame {last}, but {name} has {frames} frames: it was "
                         f"made from another video ({priors.source or 'unknown'})")
    if frames is not None and last + stride < frames:
        log.warning("masks file %s covers frames 0-%d of %s's %d: later frames get no subjects", path, last, name,
                    frames)


def check_frame_size(width: int, height: int) -> None:
    """:class:`InputError` for frames (at the processing size) smaller than ``MIN_FLOW_SIDE`` on a side."""
    if min(width, height) < MIN_FLOW_SIDE:
        raise InputError(f"frames of {width}x{height} px (at the processing size) are too small for flow: at least "
                         f"{MIN_FLOW_SIDE} px per side (a larger --size keeps more of a thin video)")

PoseFn = Callable[[int, tuple[int, int]], "np.ndarray | None"]


def pose_from_priors(priors: Any, pick: list[int] | None) -> PoseFn:
    """Keypoints by selected frame from ``hmore.priors`` output: a function (frame k, (H, W)) -> (L, 17, 3) COCO-17
    x, y (scaled to H, W), confidence (0 where the person is not tracked) for mask labels 1..L (row label - 1), or
    None for a frame the priors lack. ``pick`` maps selected frames to prior rows (None: the same)."""
    kp = np.nan_to_num(priors.kp2d.astype(np.float32))  # (T, P, 17, 3) source pixels
    kp[..., 2] *= priors.valid[..., None]
    ids = [int(i) for i in priors.track_ids]
    by_label = np.zeros((kp.shape[0], max([0, *[i for i in ids if 0 < i < 256]]), 17, 3), np.float32)
    for p, tid in enumerate(ids):
        if 0 < tid < 256:
            by_label[:, tid - 1] = kp[:, p]
    src_w, src_h = priors.size

    def fn(k: int, hw: tuple[int, int]) -> np.ndarray | None:
        row = k if pick is None else (pick[k] if k < len(pick) else -1)
        if not 0 <= row < by_label.shape[0]:
            return None
        out = by_label[row].copy()
        out[..., 0] *= hw[1] / src_w
        out[..., 1] *= hw[0] / src_h
        return out

    return fn


def _pose_from_array(keypoints: np.ndarray, frame_hw: tuple[int, int]) -> PoseFn:
    """Keypoints (T, L, 17, 3) in the pixels of frames of size ``frame_hw`` -> a :data:`PoseFn`."""
    kp = np.asarray(keypoints, np.float32)
    if kp.ndim != 4 or kp.shape[2:] != (17, 3):
        raise UsageError(f"keypoints must be (T, L, 17, 3) COCO-17 per mask label, got {kp.shape}")

    def fn(k: int, hw: tuple[int, int]) -> np.ndarray | None:
        if k >= kp.shape[0]:
            return None
        out = np.nan_to_num(kp[k]).copy()
        out[..., 0] *= hw[1] / frame_hw[1]
        out[..., 1] *= hw[0] / frame_hw[0]
        return out

    return fn


def _by_compact(kp: np.ndarray | None, ids: np.ndarray) -> np.ndarray | None:
    """Rows of ``kp`` (L, 17, 3) for the compact labels 1..k of original ids ``ids`` (zeros where it has none)."""
    if kp is None:
        return None
    out = np.zeros((len(ids), 17, 3), np.float32)
    have = (ids >= 1) & (ids <= kp.shape[0])
    out[have] = kp[ids[have] - 1]
    return out


def _compact(mask: np.ndarray, max_subjects: int) -> tuple[np.ndarray, np.ndarray]:
    """Relabel the ids present in ``mask`` to 1..k (k <= max_subjects); returns (compact mask, original ids)."""
    ids, counts = np.unique(mask[mask > 0], return_counts=True)
    if len(ids) > max_subjects:
        keep = np.sort(ids[np.argsort(-counts, kind="stable")[:max_subjects]])
        log.warning("%d subjects in one frame but the model has %d subject queries; the %d smallest become "
                    "background", len(ids), max_subjects, len(ids) - max_subjects)
        ids = keep
    lut = np.zeros(256, np.int64)
    lut[ids] = np.arange(1, len(ids) + 1)
    return lut[mask], ids


def resolve_camera(camera: str | CameraConfig | None) -> CameraConfig | None:
    """``camera`` -> the estimation settings, or None when compensation is off.

    ``"homography"`` (default, also None) and ``"affine"`` pick the fitted model; ``"off"`` turns compensation off;
    a :class:`~hmore.flow.camera.CameraConfig` is used as it is.
    """
    if camera is None:
        camera = DEFAULT_CAMERA
    if isinstance(camera, CameraConfig):
        return camera
    if camera not in CAMERA_MODES:
        raise UsageError(f"camera must be one of {', '.join(CAMERA_MODES)}, got {camera!r}")
    return None if camera == "off" else CameraConfig(model=camera)


@dataclass
class FeatureCache:
    """The matching features of a video stream's last frame, for the next pair (:func:`pair_flow`).

    Pair (t, t+1) encodes frame t+1; pair (t+1, t+2) needs frame t+1's features again. The network always encodes
    frame t+1 as it is (a moving camera is compensated in the correlation lookup, not by warping the frame), so a
    stream encodes each frame once instead of twice. ``features`` is None when there is nothing to reuse.
    """

    features: torch.Tensor | None = None


@dataclass(frozen=True)
class PairPrep:
    """What one pair's network needs from OpenCV (:func:`prepare_pair`), computed before it, possibly on another
    thread while the network works on the previous pair.

    Attributes:
        dis: (1, 2, H, W) float32 CPU tensor, OpenCV DIS flow t -> t+1 (the camera fit's input and the model's own
            start), or None when the camera is not compensated.
        motion: the camera motion fitted to it (identity, with the reason, when compensation is off or no fit holds).
        features2: frame t+1's matching features (``HMoReFlow.encode_features``) when encoded here, else None.
    """

    dis: torch.Tensor | None
    motion: CameraMotion
    features2: torch.Tensor | None = None


def prepare_pair(frame_t: np.ndarray, frame_t1: np.ndarray, labels: np.ndarray, camera: CameraConfig | None, *,
                 encoder: Callable[[torch.Tensor], torch.Tensor] | None = None,
                 device: torch.device | None = None) -> PairPrep:
    """DIS flow and the camera motion of one pair, and frame t+1's matching features when ``encoder`` is given
    (none of it depends on the previous pair, so it can run while the network works on that pair);
    ``frame_t``, ``frame_t1`` (H, W, 3) uint8 RGB, ``labels`` (H, W) subject labels of frame t."""
    features2 = None
    if encoder is not None:
        with torch.inference_mode():  # thread-local: the worker thread needs its own
            features2 = encoder(torch.from_numpy(frame_t1).to(device or "cpu").permute(2, 0, 1)[None])
    if camera is None:
        return PairPrep(dis=None, motion=CameraMotion(reason="compensation off"), features2=features2)
    from hmore.models.flow.init import dis_flow

    dis = dis_flow(torch.from_numpy(frame_t).permute(2, 0, 1)[None], torch.from_numpy(frame_t1).permute(2, 0, 1)[None])
    grey = cv2.cvtColor(np.ascontiguousarray(frame_t), cv2.COLOR_RGB2GRAY)
    return PairPrep(dis=dis, motion=estimate_camera(dis[0].numpy().transpose(1, 2, 0), labels > 0, grey, camera),
                    features2=features2)


@torch.inference_mode()
def pair_flow(net: torch.nn.Module, frame_t: np.ndarray, frame_t1: np.ndarray, labels: np.ndarray,
              num_subjects: int, *, camera: CameraConfig | None, iters: int | None = None,
              device: torch.device | None = None, subject: str = "psi", kp_t: np.ndarray | None = None,
              kp_t1: np.ndarray | None = None, cache: FeatureCache | None = None, refine: RefineConfig | None = None,
              zoom: ZoomConfig | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray, CameraMotion]:
    """The representation of one pair with compact label masks (see the module docstring).

    The three stages, :func:`prepare_pair` (OpenCV), :func:`network_pair` (the network) and :func:`finish_pair`
    (refinement and v_s, numpy/OpenCV), run here one after the other; :func:`iter_flow` overlaps them across pairs.

    Args:
        net: the flow model (eval mode).
        frame_t, frame_t1: (H, W, 3) uint8 RGB.
        labels: (H, W) int labels 0..num_subjects of frame t (compact: 1..k).
        num_subjects: k.
        camera: camera estimation settings, or None for no compensation.
        iters: refinement iterations (None: the model's).
        device: where the network runs (default: its parameters' device).
        subject: where v_s comes from: ``psi``, ``median`` or ``pose`` (:mod:`hmore.flow.subject`).
        kp_t, kp_t1: (k, 17, 3) keypoints of labels 1..k at t and t+1 (for ``pose``), or None.
        cache: frame t's features from the previous pair of the same stream (read, then set to frame t+1's when
            they can serve the next pair); None: no reuse.
        refine: photometric refinement of the optical flow inside the people (:mod:`hmore.flow.refine`), or None.
        zoom: a second, enlarged pass of the network for small people (:mod:`hmore.flow.zoom`), or None.

    Returns:
        ``(world (2, H, W), local (2, H, W), v_s (k, 2), camera motion)``, float32 numpy.
    """
    prep = prepare_pair(frame_t, frame_t1, labels, camera)
    raw = network_pair(net, frame_t, frame_t1, labels, num_subjects, prep=prep, iters=iters, device=device,
                       cache=cache, zoom=zoom)
    return finish_pair(frame_t, frame_t1, labels, raw, subject=subject, kp_t=kp_t, kp_t1=kp_t1, refine=refine)


def finish_pair(frame_t: np.ndarray, frame_t1: np.ndarray, labels: np.ndarray,
                raw: tuple[np.ndarray, np.ndarray | None, np.ndarray, CameraMotion], *, subject: str,
                kp_t: np.ndarray | None, kp_t1: np.ndarray | None, refine: RefineConfig | None
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray, CameraMotion]:
    """The last stage of :func:`pair_flow` (no torch computation): the refinement inside people and v_s / local
    flow, from :func:`network_pair`'s ``raw`` output."""
    world, local, velocity, motion = raw
    if refine is not None and (labels > 0).any():
        world = _refined(frame_t, frame_t1, world, labels, motion, refine)
        local = None  # the network's local flow was taken from its unrefined world flow
    if subject == "psi" and local is not None:
        return world, local, velocity, motion
    from hmore.flow.subject import subject_motion
    from hmore.metrics.flow import local_from_world

    w = world.transpose(1, 2, 0)  # (H, W, 2)
    velocity = subject_motion(subject, w, labels, velocity, kp_t, kp_t1,
                              None if motion.is_identity else motion.homography)
    return world, local_from_world(w, labels, velocity).transpose(2, 0, 1), velocity, motion


def _refined(frame_t: np.ndarray, frame_t1: np.ndarray, world: np.ndarray, labels: np.ndarray, motion: CameraMotion,
             config: RefineConfig) -> np.ndarray:
    """World flow (2, H, W) refined inside the people: the optical flow (world + camera) is what the images show, so
    it is refined, and the camera flow is taken off again."""
    cam = None if motion.is_identity else motion.flow(world.shape[1:])  # (H, W, 2)
    optical = world.transpose(1, 2, 0) if cam is None else world.transpose(1, 2, 0) + cam
    out = refine_in_people(frame_t, frame_t1, optical, labels, config)
    return np.ascontiguousarray((out if cam is None else out - cam).transpose(2, 0, 1))


@torch.inference_mode()
def network_pair(net: torch.nn.Module, frame_t: np.ndarray, frame_t1: np.ndarray, labels: np.ndarray,
                 num_subjects: int, *, prep: PairPrep, iters: int | None, device: torch.device | None,
                 cache: FeatureCache | None = None, zoom: ZoomConfig | None = None
                 ) -> tuple[np.ndarray, np.ndarray | None, np.ndarray, CameraMotion]:
    """World flow, the model's local flow (None when the pair was stabilised or a person was zoomed: it is then
    not relative to the scene or not the world flow's), Psi's v_s and the camera motion of one pair, from
    :func:`prepare_pair`'s ``prep`` (the middle stage of :func:`pair_flow`: the only one that runs the network);
    ``zoom``: small people get a second, enlarged pass (:mod:`hmore.flow.zoom`), None: no second pass."""
    world, local, velocity, motion = _network_once(net, frame_t, frame_t1, labels, num_subjects, prep=prep,
                                                   iters=iters, device=device, cache=cache)
    if zoom is not None and (labels > 0).any():
        world, zoomed = _zoomed(net, frame_t, frame_t1, labels, world, motion, zoom, iters=iters, device=device)
        if zoomed:
            local = None
    return world, local, velocity, motion


def _zoomed(net: torch.nn.Module, frame_t: np.ndarray, frame_t1: np.ndarray, labels: np.ndarray, world: np.ndarray,
            motion: CameraMotion, zoom: ZoomConfig, *, iters: int | None, device: torch.device | None
            ) -> tuple[np.ndarray, bool]:
    """World flow (2, H, W) with the small people's flow from enlarged crops, and whether any was enlarged.

    With a moving camera and ``zoom.camera`` each crop pair is compensated like the frame: the frame's homography in
    the enlarged crop's pixels, ``A^-1 H A`` with ``A`` the crop-to-frame map of pixel centres, so the crop pass
    gives world flow, which replaces the frame's inside the person. Otherwise the crop pass sees the crops as they
    are, its flow is optical flow (world + camera), and the frame's camera flow is taken off it again.
    """
    from hmore.models.flow.init import dis_flow

    wf = world.transpose(1, 2, 0)  # (H, W, 2)
    cam = None if motion.is_identity else motion.flow(world.shape[1:])
    optical = wf if cam is None else wf + cam
    compensated = cam is not None and zoom.camera

    def crop_flow(a: np.ndarray, b: np.ndarray, crop_labels: np.ndarray, box: tuple[int, int, int, int],
                  scale: tuple[float, float]) -> np.ndarray:
        if compensated:
            (y0, _, x0, _), (sx, sy) = box, scale
            to_frame = np.array([[sx, 0.0, x0 + 0.5 * sx - 0.5], [0.0, sy, y0 + 0.5 * sy - 0.5], [0.0, 0.0, 1.0]])
            homography = np.linalg.inv(to_frame) @ motion.homography @ to_frame
            dis = dis_flow(torch.from_numpy(a).permute(2, 0, 1)[None], torch.from_numpy(b).permute(2, 0, 1)[None])
            prep = PairPrep(dis=dis, motion=CameraMotion(homography=homography, model=motion.model))
        else:
            prep = prepare_pair(a, b, crop_labels, None)
        flow, _, _, _ = _network_once(net, a, b, crop_labels, 1, prep=prep, iters=iters, device=device)
        return flow.transpose(1, 2, 0)

    if compensated:
        out, done = zoom_people(frame_t, frame_t1, wf, labels, crop_flow, zoom, reach=optical)
    else:
        out, done = zoom_people(frame_t, frame_t1, optical, labels, crop_flow, zoom)
        out = out if cam is None else out - cam
    if not done:
        return world, False
    return np.ascontiguousarray(out.transpose(2, 0, 1)), True


@torch.inference_mode()
def _network_once(net: torch.nn.Module, frame_t: np.ndarray, frame_t1: np.ndarray, labels: np.ndarray,
                  num_subjects: int, *, prep: PairPrep, iters: int | None, device: torch.device | None,
                  cache: FeatureCache | None = None) -> tuple[np.ndarray, np.ndarray | None, np.ndarray, CameraMotion]:
    """:func:`network_pair`'s one pass of the network over the whole frames."""
    from hmore.models.flow.model import HMoReFlow

    dev = device or next(net.parameters()).device
    is_hmore = isinstance(net, HMoReFlow)
    if not is_hmore:
        cache = None  # other flow models take no features
    feats: dict[str, Any] = {} if cache is None else {"features1": cache.features}
    if is_hmore and prep.features2 is not None:
        feats["features2"] = prep.features2
    img1 = torch.from_numpy(frame_t).to(dev).permute(2, 0, 1)[None]  # (1, 3, H, W) uint8
    mask_t = torch.from_numpy(labels).to(dev)[None]
    motion = prep.motion
    if prep.dis is None:
        out = net(img1, torch.from_numpy(frame_t1).to(dev).permute(2, 0, 1)[None], masks=mask_t,
                  num_subjects=num_subjects, iters=iters, all_iterations=False, **feats)
        if cache is not None:
            cache.features = out.features2
        return (out.world[0].float().cpu().numpy(), out.local[0].float().cpu().numpy(),
                out.subject_velocity[0].float().cpu().numpy(), motion)
    img2 = torch.from_numpy(frame_t1).to(dev).permute(2, 0, 1)[None]
    dis = prep.dis.to(dev)
    init = dis if getattr(getattr(net, "config", None), "init", None) == "dis" else None
    warp: dict[str, Any] = {}
    if not motion.is_identity:
        if init is not None:
            moved = to_stabilised(prep.dis[0].numpy().transpose(1, 2, 0), motion)  # (H, W, 2)
            init = torch.from_numpy(np.ascontiguousarray(moved.transpose(2, 0, 1)))[None].to(dev)
        if is_hmore:  # the correlation is looked up through the homography: frame t+1 is encoded as it is
            warp["camera"] = torch.from_numpy(motion.homography)[None].to(dev)
        else:  # another flow model sees frame t+1 stabilised
            img2 = torch.from_numpy(np.ascontiguousarray(stabilise(frame_t1, motion))).to(dev).permute(2, 0, 1)[None]
    out = net(img1, img2, masks=mask_t, num_subjects=num_subjects, iters=iters, flow_init=init, all_iterations=False,
              **feats, **warp)
    if cache is not None:  # frame t+1 was encoded as it is: its features serve the next pair
        cache.features = out.features2
    velocity = out.subject_velocity[0].float().cpu().numpy()
    if motion.is_identity:
        return out.world[0].float().cpu().numpy(), out.local[0].float().cpu().numpy(), velocity, motion
    world = scene_flow(out.world[0].float().cpu().numpy().transpose(1, 2, 0), motion)  # (H, W, 2)
    return world.transpose(2, 0, 1), None, velocity, motion


def _ready(net: torch.nn.Module, device: torch.device) -> torch.nn.Module:
    """A given model on ``device`` in eval mode; a no-op when it already is (``Module.to``/``eval`` walk every
    submodule: ~10 ms per call, which a caller that streams pair by pair through :func:`iter_flow` paid per pair)."""
    param = next(net.parameters(), None)
    if param is not None and param.device != device:
        net = net.to(device)
    return net.eval() if net.training else net


@torch.inference_mode()
def iter_flow(video_or_frames: Any, *, model: str | torch.nn.Module = DEFAULT_MODEL, size: int | None = None,
              device: str | torch.device = "auto", stride: int = 1, masks: Any = None,
              weights: str | Path | None = None, iters: int | None = None, progress: bool | None = None,
              info: dict[str, Any] | None = None, camera: str | CameraConfig | None = DEFAULT_CAMERA,
              subject_motion: str = DEFAULT_SUBJECT_MOTION, keypoints: np.ndarray | None = None,
              refine: str | RefineConfig | None = DEFAULT_REFINE, overlap: bool | None = None,
              zoom: str | ZoomConfig | None = DEFAULT_ZOOM) -> Iterator[FlowPair]:
    """Stream the H-MoRe representation of a video pair by pair (see the module docstring for ``masks``).

    Args:
        video_or_frames: a video file, an image folder, a generated clip (``.npz`` from ``hmore synth``; its exact
            masks are used unless ``masks`` says otherwise), or (T, H, W, 3) uint8 RGB frames (array or iterable).
        model: a registered flow model name, or a built model.
        size: longer side of the processing size in pixels (default 512; smaller frames are kept as they are).
        device: ``"auto"`` (CUDA if available), ``"cpu"``, ``"cuda:0"`` ...
        stride: use every ``stride``-th frame; pairs are consecutive selected frames.
        masks: subject masks: ``"auto"`` (None), ``"priors"``, ``"whole"``, a priors.npz path or (T, H, W) labels.
        weights: a ``.safetensors`` file for ``model`` (default: the shipped weights, else random with a warning).
        iters: refinement iterations (default: the model's).
        progress: show a progress bar (None: only when stderr is a terminal).
        info: if given, filled with ``model``, ``weights``, ``mask_source``, ``num_subjects``, ``camera``.
        camera: camera compensation: ``"homography"`` (default), ``"affine"``, ``"off"`` or a
            :class:`~hmore.flow.camera.CameraConfig`.
        subject_motion: v_s of the local flow: ``"pose"`` (default: the pelvis of the pose track, where the masks
            come with a pose: priors, a priors.npz, a generated clip or ``keypoints``; else the median), ``"median"``
            or ``"psi"`` (:mod:`hmore.flow.subject`).
        keypoints: (T, L, 17, 3) COCO-17 keypoints for mask labels 1..L in the pixels of the given frames (with
            ``masks`` given as an array), for ``subject_motion="pose"``.
        refine: ``"variational"`` (default: the optical flow is refined photometrically inside the people,
            :mod:`hmore.flow.refine`), ``"search"`` (opt-in: a DIS search from the network's flow and a per-pixel
            census choice before it), ``"off"`` (the network's flow as it is) or a
            :class:`~hmore.flow.refine.RefineConfig`.
        overlap: True: a worker thread encodes the next frame and runs the OpenCV/numpy work of neighbouring pairs
            (DIS and the camera fit before the network, the refinement and v_s after it) while the network works on
            the current pair (the same results); False: every stage in turn on the calling thread. None (default):
            :func:`overlap_fits` (torch's threads leave the worker cores of its own; ``hmore flow`` sets
            :func:`stream_threads`).
        zoom: ``"off"`` (default) or ``"auto"`` (people shorter than 128 px get a second pass of the network on an
            enlarged crop, :mod:`hmore.flow.zoom`; up to ~2x the cost), or a :class:`~hmore.flow.zoom.ZoomConfig`.

    Yields:
        :class:`FlowPair` per frame pair.
    """
    if stride < 1:
        raise UsageError(f"stride must be >= 1, got {stride}")
    if size is not None and size < 16:
        raise UsageError(f"size must be >= 16 pixels, got {size}")
    if iters is not None and iters < 1:
        raise UsageError(f"iters must be >= 1, got {iters}")
    camera_cfg = resolve_camera(camera)
    refine_cfg = resolve_refine(refine)
    zoom_cfg = resolve_zoom(zoom)
    from hmore.flow.subject import SUBJECT_MODES

    if subject_motion not in SUBJECT_MODES:
        raise UsageError(f"subject_motion must be one of {', '.join(SUBJECT_MODES)}, got {subject_motion!r}")
    pose: dict[str, PoseFn] = {}
    from_clip = _is_clip(video_or_frames)
    if from_clip:
        from hmore.synth.clip import load_clip

        clip = load_clip(video_or_frames)
        video_or_frames = clip.frames
        if masks is None or (isinstance(masks, str) and masks == "auto"):
            masks = clip.masks  # a generated clip carries exact subject masks and keypoints
            pose["fn"] = _pose_from_array(clip.kp2d, clip.size)
        else:
            from_clip = False
    if keypoints is not None:
        first = np.asarray(video_or_frames[0]) if not isinstance(video_or_frames, (str, Path)) else None
        if first is None:
            raise UsageError("keypoints can be given with frames in memory only (videos get theirs from the priors)")
        pose["fn"] = _pose_from_array(keypoints, first.shape[:2])
    dev = resolve_device(device)
    if isinstance(model, str):
        name = model
        net, weights_desc = load_flow_model(model, weights=weights, device=dev)
    else:
        name, net, weights_desc = type(model).__name__, _ready(model, dev), "given"
    max_subjects = int(getattr(getattr(net, "config", None), "max_subjects", 16))
    if isinstance(video_or_frames, (str, Path)):  # checked before the masks' priors pass reads the whole video
        from hmore.io.video import probe_video, resized_size

        info_v = probe_video(video_or_frames)
        check_frame_size(*resized_size(info_v.width, info_v.height, DEFAULT_MAX_SIDE if size is None else size))
    mask_fn, mask_source, num_subjects = resolve_masks(masks, video_or_frames, stride=stride, size=size,
                                                       pose=pose if subject_motion == "pose" else None)
    pose_fn = pose.get("fn")
    mask_source = "clip" if from_clip else mask_source
    if info is not None:
        info.update(model=name, weights=weights_desc, mask_source=mask_source, num_subjects=num_subjects,
                    camera="off" if camera_cfg is None else camera_cfg.model,
                    refine=refine_mode(refine_cfg),
                    zoom="off" if zoom_cfg is None else f"people under {zoom_cfg.below} px",
                    subject_motion=subject_motion if subject_motion != "pose" or pose_fn else "median (no pose)")
    show = sys.stderr.isatty() if progress is None else progress
    frames = tqdm(_frames(video_or_frames, size=size, stride=stride), disable=not show, desc="flow", unit="frame")
    jobs = _pair_jobs(frames, mask_fn, pose_fn, max_subjects)
    cache = FeatureCache()

    def network(job: _PairJob, prep: PairPrep) -> tuple[np.ndarray, np.ndarray | None, np.ndarray, CameraMotion]:
        return network_pair(net, job.frame_t, job.frame_t1, job.compact, len(job.ids), prep=prep, iters=iters,
                            device=dev, cache=cache, zoom=zoom_cfg)

    def finish(job: _PairJob, raw: tuple[np.ndarray, np.ndarray | None, np.ndarray, CameraMotion]) -> FlowPair:
        world, local, v, motion = finish_pair(job.frame_t, job.frame_t1, job.compact, raw, subject=subject_motion,
                                              kp_t=job.kp_t, kp_t1=job.kp_t1, refine=refine_cfg)
        velocity = np.zeros((num_subjects, 2), np.float32)
        in_range = job.ids <= num_subjects
        velocity[job.ids[in_range] - 1] = v[in_range]  # v: (k, 2) for the compact ids
        cam = None if motion.is_identity else motion.flow(job.frame_t.shape[:2]).transpose(2, 0, 1)
        return FlowPair(index=job.index, frame=job.frame_t, world=world, local=local, subject_velocity=velocity,
                        mask=job.labels, camera=cam, camera_motion=motion)

    if overlap is None:
        overlap = overlap_fits()
    from hmore.models.flow.model import HMoReFlow

    encoder = net.encode_features if overlap and isinstance(net, HMoReFlow) else None

    def prepare(job: _PairJob) -> PairPrep:
        return prepare_pair(job.frame_t, job.frame_t1, job.compact, camera_cfg, encoder=encoder, device=dev)

    if not overlap:
        for job in jobs:
            yield finish(job, network(job, prepare(job)))
        return
    # Overlapped: one worker thread encodes the next frame and runs the OpenCV/numpy stages (DIS and the camera fit
    # of the next pair, the refinement and v_s of the previous one) while this thread runs the rest of the network;
    # the results are the same.
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="hmore-flow")
    try:
        job = next(jobs, None)
        prep_next = None if job is None else pool.submit(prepare, job)
        pending = None
        while job is not None:
            prep = prep_next.result()
            following = next(jobs, None)  # decodes the next frame here, while the worker is busy
            prep_next = None if following is None else pool.submit(prepare, following)
            raw = network(job, prep)
            if pending is not None:
                yield pending.result()
            pending = pool.submit(finish, job, raw)
            job = following
        if pending is not None:
            yield pending.result()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def stream_threads() -> int:
    """torch (and OpenCV) threads for a flow stream on this machine: half the cores, at least one, so that the
    network runs on one half and :func:`iter_flow`'s overlapped worker on the other (on 2 cores one thread each:
    1.3-1.5x the pairs/s of one thread without the worker and 1.05-1.15x two threads without it,
    ``benchmarks/flow_stream.py``)."""
    return max(1, (os.cpu_count() or 1) // 2)


def overlap_fits() -> bool:
    """True when :func:`iter_flow` can overlap its stages without oversubscribing the cores: the network's torch
    threads and the worker's (as many again) fit in the machine's cores. Two threads that each run multi-threaded
    torch on too few cores are slower than one (on 2 cores with 2 torch threads: about half the pairs/s)."""
    return 2 * torch.get_num_threads() <= (os.cpu_count() or 1)


@dataclass(frozen=True)
class _PairJob:
    """One pair of :func:`iter_flow`'s stream with its masks and pose (labels as given, and compacted to 1..k)."""

    index: int
    frame_t: np.ndarray
    frame_t1: np.ndarray
    labels: np.ndarray
    compact: np.ndarray
    ids: np.ndarray
    kp_t: np.ndarray | None
    kp_t1: np.ndarray | None


def _pair_jobs(frames: Iterator[np.ndarray], mask_fn: Callable[[int, tuple[int, int]], np.ndarray],
               pose_fn: PoseFn | None, max_subjects: int) -> Iterator[_PairJob]:
    prev = None
    for t, frame in enumerate(frames):
        if prev is None:
            check_frame_size(frame.shape[1], frame.shape[0])
            prev = frame
            continue
        if frame.shape != prev.shape:
            raise InputError(f"frame {t} is {frame.shape[1]}x{frame.shape[0]} but the first frame is "
                             f"{prev.shape[1]}x{prev.shape[0]}")
        hw = prev.shape[:2]
        labels = mask_fn(t - 1, hw)
        compact, ids = _compact(labels, max_subjects)
        kp = (None, None) if pose_fn is None else (pose_fn(t - 1, hw), pose_fn(t, hw))
        yield _PairJob(index=t - 1, frame_t=prev, frame_t1=frame, labels=labels, compact=compact, ids=ids,
                       kp_t=_by_compact(kp[0], ids), kp_t1=_by_compact(kp[1], ids))
        prev = frame


def flow(video_or_frames: Any, *, model: str | torch.nn.Module = DEFAULT_MODEL, size: int | None = None,
         device: str | torch.device = "auto", stride: int = 1, masks: Any = None, weights: str | Path | None = None,
         iters: int | None = None, progress: bool | None = None,
         camera: str | CameraConfig | None = DEFAULT_CAMERA, subject_motion: str = DEFAULT_SUBJECT_MOTION,
         keypoints: np.ndarray | None = None, refine: str | RefineConfig | None = DEFAULT_REFINE,
         zoom: str | ZoomConfig | None = DEFAULT_ZOOM) -> FlowRepresentation:
    """The H-MoRe representation of a whole clip, in memory (computation streams; see :func:`iter_flow`).

    Returns:
        :class:`FlowRepresentation`. Raises :class:`InputError` when fewer than 2 frames are selected.
    """
    info: dict[str, Any] = {}
    fps = source_fps(video_or_frames, stride)
    pairs = list(iter_flow(video_or_frames, model=model, size=size, device=device, stride=stride, masks=masks,
                           weights=weights, iters=iters, progress=progress, info=info, camera=camera,
                           subject_motion=subject_motion, keypoints=keypoints, refine=refine, zoom=zoom))
    if not pairs:
        raise InputError("fewer than 2 frames selected: no frame pair to compute flow on")
    return FlowRepresentation(
        world=np.stack([p.world for p in pairs]), local=np.stack([p.local for p in pairs]),
        subject_velocity=np.stack([p.subject_velocity for p in pairs]), masks=np.stack([p.mask for p in pairs]),
        camera=np.stack([p.camera_field() for p in pairs]),
        camera_homography=np.stack([p.camera_motion.homography for p in pairs]),
        camera_note=[p.camera_motion.reason for p in pairs],
        fps=fps, model=info["model"], weights=info["weights"], mask_source=info["mask_source"],
    )


def _is_clip(video_or_frames: Any) -> bool:
    return isinstance(video_or_frames, (str, Path)) and Path(video_or_frames).suffix.lower() == ".npz"


def source_fps(video_or_frames: Any, stride: int) -> float:
    """Frame rate of the selected frames: the video's (image folders and arrays: 30) divided by ``stride``."""
    if _is_clip(video_or_frames):
        import json

        with np.load(video_or_frames, allow_pickle=False) as z:
            meta = json.loads(str(z["meta"])) if "meta" in z.files else {}
        return float(meta.get("fps", 30.0)) / stride
    if isinstance(video_or_frames, (str, Path)):
        from hmore.io.video import probe_video

        return probe_video(video_or_frames).fps / stride
    return 30.0 / stride


class StreamingNpzWriter:
    """Writes an ``.npz`` whose big arrays grow one slice at a time, holding none of them in memory.

    Slices go to temporary raw files beside the target; :meth:`close` writes the zip (fixed timestamps, so the same
    data gives the same bytes) with each array's ``.npy`` header and streams the raw data in, then renames it onto
    ``path`` atomically. Small arrays can be added whole with ``extra``.

    With ``background`` (default) a writer thread does the file writes, at most ``queue`` slices behind, so a slow
    disk does not hold up the caller (a flow pair is ~1.2 MB at 256x192: ~20 ms on a 60 MB/s disk); a write error
    is raised by the next :meth:`append` or by :meth:`close`.
    """

    def __init__(self, path: str | Path, *, background: bool = True, queue: int = 16) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._files: dict[str, tuple[Any, Path, np.dtype, tuple[int, ...]]] = {}
        self._counts: dict[str, int] = {}
        self._queue: Queue | None = Queue(maxsize=max(1, queue)) if background else None
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None

    def _write_loop(self) -> None:
        assert self._queue is not None
        while (job := self._queue.get()) is not None:
            if self._error is None:  # after an error the rest is drained, not written
                try:
                    job[0].write(job[1])
                except BaseException as exc:  # handed to the caller's thread
                    self._error = exc

    def _raise_error(self) -> None:
        if self._error is not None:
            raise self._error

    def _drain(self) -> None:
        """Wait until every queued slice is written (the writer thread ends)."""
        if self._thread is not None:
            assert self._queue is not None
            self._queue.put(None)
            self._thread.join()
            self._thread = None

    def append(self, name: str, item: np.ndarray) -> None:
        item = np.ascontiguousarray(item)
        if name not in self._files:
            raw = self.path.parent / f".{self.path.stem}.{name}.part"
            self._files[name] = (raw.open("wb"), raw, item.dtype, item.shape)
            self._counts[name] = 0
        fh, _, dtype, shape = self._files[name]
        if item.dtype != dtype or item.shape != shape:
            raise ValueError(f"slice of {name!r} is {item.shape} {item.dtype}, earlier ones were {shape} {dtype}")
        if self._queue is None:
            fh.write(item.tobytes())
        else:
            self._raise_error()
            if self._thread is None:
                self._thread = threading.Thread(target=self._write_loop, name="hmore-npz-writer", daemon=True)
                self._thread.start()
            self._queue.put((fh, item.tobytes()))
        self._counts[name] += 1

    def close(self, **extra: Any) -> Path:
        try:
            self._drain()
            self._raise_error()
            with atomic_path(self.path, suffix=".npz") as tmp, zipfile.ZipFile(tmp, "w", allowZip64=True) as zf:
                for name, (fh, raw, dtype, shape) in self._files.items():
                    fh.close()
                    header = {"descr": np.lib.format.dtype_to_descr(dtype), "fortran_order": False,
                              "shape": (self._counts[name], *shape)}
                    with zf.open(zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0)), "w",
                                 force_zip64=True) as out, raw.open("rb") as src:
                        np.lib.format.write_array_header_2_0(out, header)
                        while chunk := src.read(1 << 22):
                            out.write(chunk)
                for name, value in extra.items():
                    with zf.open(zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0)), "w",
                                 force_zip64=True) as out:
                        np.lib.format.write_array(out, np.asanyarray(value), allow_pickle=False)
        finally:
            self.discard()
        return self.path

    def discard(self) -> None:
        """Close and delete the temporary files (also after an error)."""
        self._drain()
        for fh, raw, _, _ in self._files.values():
            fh.close()
            raw.unlink(missing_ok=True)
        self._files.clear()


def append_pair(writer: StreamingNpzWriter, pair: FlowPair, dtype: str, notes: list[str]) -> None:
    """Append one pair's arrays to a ``flow.npz`` writer (see :func:`write_flow_npz`); its camera note to ``notes``."""
    writer.append("world", pair.world.astype(dtype))
    writer.append("local", pair.local.astype(dtype))
    writer.append("subject_velocity", pair.subject_velocity.astype(np.float32))
    writer.append("masks", pair.mask.astype(np.uint8))
    writer.append("camera", pair.camera_field().astype(dtype))
    writer.append("camera_homography", np.asarray(pair.camera_motion.homography, np.float64))
    notes.append(pair.camera_motion.reason)


def camera_notes_array(notes: list[str]) -> np.ndarray:
    """The ``camera_note`` entry of ``flow.npz``: (T-1,) unicode, "" where the camera motion was fitted."""
    return np.array(notes, dtype=f"<U{max([1, *map(len, notes)])}")


def write_flow_npz(path: str | Path, pairs: Iterator[FlowPair], *, dtype: str = "float32",
                   meta: dict[str, Any] | None = None, on_pair: Callable[[FlowPair], None] | None = None) -> int:
    """Stream ``pairs`` into ``path`` (``world``, ``local``, ``camera`` (T-1, 2, H, W) ``dtype``;
    ``subject_velocity`` (T-1, P, 2); ``masks`` (T-1, H, W) uint8; ``camera_homography`` (T-1, 3, 3);
    ``camera_note`` (T-1,) str, "" where the camera motion was fitted, else why not; plus ``meta`` entries as 0-d
    arrays). Returns the number of pairs.

    ``on_pair`` is called with every pair after it is written (e.g. to feed a preview writer).
    """
    if dtype not in ("float16", "float32"):
        raise UsageError(f"dtype must be float16 or float32, got {dtype!r}")
    writer = StreamingNpzWriter(path)
    n = 0
    notes: list[str] = []
    try:
        for pair in pairs:
            append_pair(writer, pair, dtype, notes)
            n += 1
            if on_pair is not None:
                on_pair(pair)
    except BaseException:
        writer.discard()
        raise
    if n == 0:
        writer.discard()
        raise InputError("fewer than 2 frames selected: no frame pair to compute flow on")
    writer.close(camera_note=camera_notes_array(notes), **{k: np.asarray(v) for k, v in (meta or {}).items()})
    return n


__all__ = ["CAMERA_MODES", "FeatureCache", "FlowPair", "FlowRepresentation", "StreamingNpzWriter", "append_pair",
           "camera_notes_array", "flow", "iter_flow", "load_flow_model", "pair_flow", "resolve_camera",
           "resolve_device", "resolve_masks", "source_fps", "write_flow_npz"]
