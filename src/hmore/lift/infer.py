"""Lifting 2D keypoint tracks of any length to 3D with a trained lifter.

A track longer than the model's window is cut into overlapping windows (stride = window / 2 by default, the last
window aligned with the end); each window's output is weighted by a smooth bump (a raised cosine, highest in the
window's middle and small but non-zero at its ends) and the weighted outputs are summed and normalised, so
neighbouring windows cross-fade instead of meeting at a seam. Frames without a detection are given to the model as
masked (all-zero) frames, which is what its masking pretraining taught it to fill in, and are flagged in the
result; their 2D is interpolated from the neighbouring detections.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import numpy as np
import torch
from tqdm.auto import tqdm

from hmore.errors import UsageError
from hmore.lift.data import ROOT, flip_pair, normalize_2d

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LiftResult:
    """3D tracks of the people of a clip.

    Attributes:
        pose3d: (P, T, 17, 3) float32 root-relative 3D joints, camera frame (x right, y down, z forward), metres.
        root: (P, T, 3) float32 estimated camera-frame root positions (metres; NaN when not requested).
        kp2d: (P, T, 17, 3) float32 the H36M-17 2D input in pixels + score, gaps interpolated (score 0 there).
        interpolated: (P, T) bool, True where the person had no detection (3D inferred from the context).
        fps: frame rate.
        width, height: image size the 2D refers to.
        lift_fps: the frame rate the model ran at (``fps`` unless the track was resampled to the model's rate).
    """

    pose3d: np.ndarray
    root: np.ndarray
    kp2d: np.ndarray
    interpolated: np.ndarray
    fps: float
    width: int
    height: int
    lift_fps: float | None = None


def max_len_of(model: torch.nn.Module) -> int | None:
    """The longest clip (frames) a motion model takes (its ``config.max_len``, or its backbone's), None if unlimited."""
    for part in (model, getattr(model, "backbone", None)):
        value = getattr(getattr(part, "config", None), "max_len", None)
        if value is not None:
            return int(value)
    return None


def frame_stride_of(model: torch.nn.Module) -> int:
    """Every how many frames of a track the model takes one (its ``config.frame_stride``, or its backbone's; 1)."""
    for part in (model, getattr(model, "backbone", None)):
        value = getattr(getattr(part, "config", None), "frame_stride", None)
        if value is not None:
            return int(value)
    return 1


def input_fps_of(model: torch.nn.Module) -> float | None:
    """The frame rate of the tracks ``model`` was trained on (its ``input_fps`` attribute, which
    :func:`hmore.lift.pipeline.load_lifter` sets from the weights' metadata), or None when unknown."""
    value = getattr(model, "input_fps", None)
    return float(value) if value else None


def frames_at_rate(num: int, fps: float, rate: float | None, *, tolerance: float = 0.02) -> int:
    """How many frames a track of ``num`` frames at ``fps`` has when resampled to ``rate`` over the same span (first
    to last frame); ``num`` itself when ``rate`` is None or within ``tolerance`` (relative) of ``fps``."""
    if rate is None or num < 2 or abs(fps - rate) <= tolerance * rate:
        return num
    return max(2, int(round((num - 1) * rate / fps)) + 1)


def _neighbours(length: int, num: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For ``num`` evenly spaced times over frames 0 .. length - 1: (frame before, frame after, weight of the after)."""
    pos = np.linspace(0.0, length - 1, num)
    i0 = np.floor(pos).astype(np.int64)
    return i0, np.minimum(i0 + 1, length - 1), pos - i0


def interp_frames(a: np.ndarray, num: int) -> np.ndarray:
    """(T, ...) -> (num, ...): linear interpolation at ``num`` evenly spaced times from the first to the last frame."""
    a = np.asarray(a)
    if num == a.shape[0]:
        return a.copy()
    i0, i1, w = _neighbours(a.shape[0], num)
    w = w.reshape((-1,) + (1,) * (a.ndim - 1))
    return ((1 - w) * a[i0] + w * a[i1]).astype(a.dtype)


def resample_input(x: np.ndarray, num: int) -> np.ndarray:
    """A (T, J, 3) model input (coordinates + score; coordinates given everywhere, e.g. gaps filled) resampled to
    ``num`` frames: coordinates linearly, each joint's score the smaller of its two neighbouring frames' (a joint
    missing in either is missing), masked joints all zero as the model was trained."""
    x = np.asarray(x, dtype=np.float64)
    out = interp_frames(x, num)
    if num != x.shape[0]:
        i0, i1, w = _neighbours(x.shape[0], num)
        out[..., 2] = np.where(w[:, None] > 1e-9, np.minimum(x[i0, :, 2], x[i1, :, 2]), x[i0, :, 2])
    out[out[..., 2] <= 0] = 0.0
    return out.astype(np.float32)


def check_frame_stride(model: torch.nn.Module, stride: int, *, name: str) -> None:
    """:class:`ConfigError` when the training data's frame stride differs from the model ``name``'s."""
    from hmore.errors import ConfigError

    if frame_stride_of(model) != stride:
        raise ConfigError(f"model {name} takes every {frame_stride_of(model)}-th frame (model.kwargs.frame_stride) "
                          f"but the training windows take every {stride}-th (data.frame_stride): set them equal")


def check_clip_fits(model: torch.nn.Module, clip_len: int, *, name: str) -> None:
    """:class:`ConfigError` when training clips of ``clip_len`` frames are longer than the model ``name`` takes."""
    from hmore.errors import ConfigError

    limit = max_len_of(model)
    if limit is not None and clip_len > limit:
        raise ConfigError(f"data.clip_len {clip_len} is longer than model {name}'s max_len of {limit} frames: "
                          f"set data.clip_len <= {limit} or choose a model with a longer max_len")


def blend_weights(length: int) -> np.ndarray:
    """(length,) raised-cosine window weights, positive everywhere and largest in the middle."""
    t = (np.arange(length) + 0.5) / length
    return 0.5 - 0.5 * np.cos(2 * math.pi * t) + 1e-3


def window_starts(num_frames: int, window: int, stride: int) -> list[int]:
    """Start frames of the overlapping windows covering ``num_frames`` (the last one ends at the last frame)."""
    if window <= 0 or stride <= 0:
        raise ValueError(f"window and stride must be positive, got {window} and {stride}")
    if num_frames <= window:
        return [0]
    starts = list(range(0, num_frames - window + 1, stride))
    if starts[-1] != num_frames - window:
        starts.append(num_frames - window)
    return starts


@torch.no_grad()
def run_windows(model: torch.nn.Module, x: np.ndarray, *, window: int, stride: int | None = None,
                batch_size: int = 16, flip: bool = False, device: str | torch.device = "cpu",
                progress: bool = False) -> np.ndarray:
    """Apply ``model`` ((B, L, J, 3) -> (B, L, J, 3)) to a track (T, J, 3) of any length with blended windows.

    Args:
        model: the lifter (in eval mode).
        x: (T, J, 3) model input (normalised 2D + confidence).
        window: frames per window (at most the model's max_len).
        stride: step between windows (default window // 2), in the model's frames.
        batch_size: windows per forward pass.
        flip: also run the mirrored input and average with the un-mirrored output (test-time flip).
        device: where the model runs.
        progress: show a progress bar (only on a terminal).
    """
    x = np.asarray(x, dtype=np.float32)
    if x.ndim != 3:
        raise ValueError(f"run_windows expects (T, J, C), got {x.shape}")
    k = frame_stride_of(model)
    if k > 1:  # a model of every k-th frame: the k interleaved sub-tracks one by one, then merged
        out = np.zeros(x.shape[:2] + (3,), np.float32)
        for r in range(min(k, x.shape[0])):
            out[r::k] = _run_windows(model, x[r::k], window=window, stride=stride, batch_size=batch_size, flip=flip,
                                     device=device, progress=progress)
        return smooth_phases(out, k)
    return _run_windows(model, x, window=window, stride=stride, batch_size=batch_size, flip=flip, device=device,
                        progress=progress)


def phase_kernel(k: int) -> np.ndarray:
    """The centred box that averages k interleaved phases: k ones for odd k, [1/2, 1, ..., 1, 1/2] (k + 1 taps) for
    even k; normalised to sum 1. Its response is zero at the period-k comb that independent phases leave."""
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    w = np.ones(k) if k % 2 else np.concatenate([[0.5], np.ones(k - 1), [0.5]])
    return w / w.sum()


def smooth_phases(y: np.ndarray, k: int, covered: np.ndarray | None = None) -> np.ndarray:
    """Merge the k interleaved phases of a model of every k-th frame: each frame of ``y`` (T, ...) becomes the
    :func:`phase_kernel` average of its neighbourhood (over ``covered`` (T,) frames only, if given; the track's ends
    use the frames there are). The phases are lifted one by one, so they disagree by a few millimetres; unsmoothed, this
    shows as a period-k jitter (Human3.6M validation, SH input: mean joint acceleration 33.9 -> 3.8 m/s^2, P1 55.82 ->
    55.56 mm). At 50 fps and k = 3 a 3 Hz motion keeps 95% of its amplitude."""
    if k <= 1 or y.shape[0] < 2:
        return y
    w = phase_kernel(k)
    h = len(w) // 2
    t = y.shape[0]
    cov = np.ones(t) if covered is None else np.asarray(covered, np.float64)
    yv = np.asarray(y, np.float64).reshape(t, -1) * cov[:, None]
    num = np.zeros_like(yv)
    den = np.zeros(t)
    for i, wi in enumerate(w):
        d = i - h  # neighbour offset
        lo, hi = max(0, -d), min(t, t - d)
        num[lo:hi] += wi * yv[lo + d : hi + d]
        den[lo:hi] += wi * cov[lo + d : hi + d]
    out = np.where(den[:, None] > 0, num / np.maximum(den, 1e-12)[:, None], np.asarray(y, np.float64).reshape(t, -1))
    return out.reshape(y.shape).astype(y.dtype)


def _run_windows(model: torch.nn.Module, x: np.ndarray, *, window: int, stride: int | None, batch_size: int,
                 flip: bool, device: str | torch.device, progress: bool) -> np.ndarray:
    num = x.shape[0]
    stride = stride or max(1, window // 2)
    length = min(window, num)
    starts = window_starts(num, length, stride)
    w = blend_weights(length)  # (L,)
    acc = np.zeros(x.shape[:2] + (3,), dtype=np.float64)
    norm = np.zeros(num, dtype=np.float64)
    bar = tqdm(range(0, len(starts), batch_size), disable=not progress, desc="lift", unit="batch", leave=False)
    for b0 in bar:
        chunk = starts[b0 : b0 + batch_size]
        xb = np.stack([x[s : s + length] for s in chunk])  # (B, L, J, 3)
        yb = _forward(model, xb, device)
        if flip:
            xf, _ = flip_pair(xb)
            yf = _forward(model, xf, device)
            yb = 0.5 * (yb + flip_pair(yf)[0])
        for s, y in zip(chunk, yb):
            acc[s : s + length] += w[:, None, None] * y
            norm[s : s + length] += w
    return (acc / norm[:, None, None]).astype(np.float32)


def _forward(model: torch.nn.Module, xb: np.ndarray, device) -> np.ndarray:
    out = model(torch.from_numpy(np.ascontiguousarray(xb)).to(device))
    return out.float().cpu().numpy()


def fill_gaps(kp: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Linearly interpolate (T, J, C) keypoints over frames where ``valid`` (T,) is False; hold at the ends."""
    out = np.array(kp, dtype=np.float64)
    idx = np.flatnonzero(valid)
    if idx.size == 0 or idx.size == len(valid):
        return out
    t = np.arange(len(valid))
    flat = out.reshape(len(valid), -1)
    for c in range(flat.shape[1]):
        flat[:, c] = np.interp(t, idx, flat[idx, c])
    return flat.reshape(out.shape)


def estimate_root(pose3d: np.ndarray, kp2d_px: np.ndarray, *, focal: float, cx: float, cy: float) -> np.ndarray:
    """Camera-frame root positions (T, 3) that make the root-relative 3D (T, J, 3) project onto the 2D (T, J, 2+).

    Weak perspective per frame: pixel offsets from the root ~ (focal / z) x 3D offsets, solved for z in least
    squares, then the root is un-projected at that depth.
    """
    d3 = pose3d[..., :2] - pose3d[..., ROOT : ROOT + 1, :2]  # (T, J, 2)
    d2 = kp2d_px[..., :2] - kp2d_px[..., ROOT : ROOT + 1, :2]
    num = (d3 * d3).sum(axis=(-1, -2))
    den = (d2 * d3).sum(axis=(-1, -2))
    z = focal * num / np.where(np.abs(den) < 1e-9, 1e-9, den)
    z = np.clip(z, 0.3, 200.0)
    u, v = kp2d_px[:, ROOT, 0], kp2d_px[:, ROOT, 1]
    return np.stack([(u - cx) * z / focal, (v - cy) * z / focal, z], axis=-1)


def lift_tracks(model: torch.nn.Module, kp2d: np.ndarray, *, width: int, height: int, fps: float = 30.0,
                window: int | None = None, stride: int | None = None, flip: bool = True, trajectory: bool = False,
                focal: float | None = None, model_fps: float | None = None, device: str | torch.device = "cpu",
                progress: bool = False) -> LiftResult:
    """Lift H36M-17 2D tracks to 3D.

    Args:
        model: a lifter taking normalised input (see ``hmore.lift.data``), in eval mode.
        kp2d: (P, T, 17, 3) pixels + score per person and frame; a frame whose scores are all 0 (or NaN) is a frame
            without detection.
        width, height: image size in pixels.
        fps: frame rate (recorded in the result).
        window: window length (default: the model's ``config.max_len`` or 81).
        stride: window step (default: window // 2).
        flip: test-time flip averaging.
        trajectory: also estimate the camera-frame root trajectory (needs ``focal``; default ``max(width,
            height)``, a 53 degree field of view).
        focal: focal length in pixels for the trajectory.
        model_fps: the frame rate the model was trained at (default :func:`input_fps_of` the model; 0 or a rate
            within 2% of ``fps``: no resampling). A track at another rate is resampled to it (linearly, over the
            same span) before lifting and the 3D is resampled back to the track's frames, so that the model sees
            motion at the speed it learnt (a 50 fps Human3.6M lifter on a 30 fps video would otherwise see every
            motion 1.7x too fast).
        device: where the model runs.
        progress: progress bars (only on a terminal).
    """
    kp2d = np.asarray(kp2d, dtype=np.float64)
    if kp2d.ndim != 4 or kp2d.shape[2:] != (17, 3):
        raise ValueError(f"lift_tracks expects (P, T, 17, 3) H36M-17 keypoints with scores, got {kp2d.shape}")
    if window is None:
        window = int(getattr(getattr(model, "config", None), "max_len", 81))
    if focal is not None and not (math.isfinite(focal) and focal > 0):
        raise UsageError(f"focal length must be a finite number of pixels > 0, got {focal}")
    if not (math.isfinite(fps) and fps > 0) or width <= 0 or height <= 0:
        raise UsageError(f"fps, width and height must be > 0, got {fps}, {width}, {height}")
    if model_fps is None:
        model_fps = input_fps_of(model)
    if model_fps is not None and not (math.isfinite(model_fps) and model_fps >= 0):
        raise UsageError(f"model_fps must be a finite number >= 0, got {model_fps}")
    kp2d = np.where(np.isfinite(kp2d), kp2d, 0.0)
    p, t = kp2d.shape[:2]
    num = frames_at_rate(t, fps, model_fps or None)
    valid = kp2d[..., 2].max(axis=-1) > 0  # (P, T)
    pose = np.zeros((p, t, 17, 3), np.float32)
    filled = np.zeros_like(kp2d, dtype=np.float32)
    root = np.full((p, t, 3), np.nan, np.float32)
    for i in range(p):
        filled_i = fill_gaps(kp2d[i], valid[i])
        filled_i[~valid[i], :, 2] = 0.0
        filled[i] = filled_i
        if not valid[i].any():
            log.warning("person %d has no detection in any frame; their 3D is left at zero", i)
            continue
        x = np.concatenate([normalize_2d(filled_i[..., :2], width, height), kp2d[i, ..., 2:3]], axis=-1)
        x = resample_input(x, num)  # undetected joints and frames: masked (all zero), as in pretraining
        y = run_windows(model, x, window=window, stride=stride, flip=flip, device=device, progress=progress)
        pose[i] = interp_frames(y, t)
        if trajectory:
            f = focal or float(max(width, height))
            root[i] = estimate_root(pose[i].astype(np.float64), filled_i, focal=f, cx=width / 2, cy=height / 2)
    return LiftResult(pose3d=pose, root=root, kp2d=filled, interpolated=~valid, fps=float(fps), width=int(width),
                      height=int(height), lift_fps=float(fps) if num == t else (num - 1) * float(fps) / max(t - 1, 1))
