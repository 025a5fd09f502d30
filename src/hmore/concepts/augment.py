"""Style views of a motion window: the same action as another performer or mood would do it (issue 16).

The informativeness terms split each action over styles (README, "Why the informativeness terms do not raise NMI"):
a tired or childish walk has other speeds, amplitudes and proportions than a normal one. A *style view* changes
exactly those things in a window and keeps the action, so a consistency term can ask the codebook to give both
the same concepts (:func:`hmore.losses.concepts.consistency_loss`):

* time-warp: the window is resampled about its middle frame at ``speed`` times the original rate (1.4: the same
  frames' span played 1.4x as fast, reading 1.4x as many source frames), linearly interpolated;
* bone lengths: each bone of the H36M-17 tree scaled by its own factor (left and right alike), rebuilt from the root;
* amplitude: each joint's root-relative excursion from its mean over the window scaled by one factor;
* mirror (off by default): x negated and left/right joints swapped, which turns "raise-up-right-hand" into the
  labelled action "raise-up-left-hand" on Bandai, so it is not style-preserving there.

Joints are (T, 17, 3) y-up metres (:mod:`hmore.concepts.motion`); every function returns new arrays.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from hmore.skeleton import H36M17, flip

ROOT = 0


@dataclass(frozen=True)
class ViewConfig:
    """Ranges of a style view (each drawn uniformly; the speed log-uniformly, so 0.7x and 1.4x are about as likely).

    Attributes:
        speed: (low, high) time-warp factor.
        amplitude: the excursion factor is drawn from [1 - amplitude, 1 + amplitude].
        bone: each bone's factor is drawn from [1 - bone, 1 + bone].
        mirror: probability of a left/right mirror.
    """

    speed: tuple[float, float] = (0.7, 1.4)
    amplitude: float = 0.15
    bone: float = 0.1
    mirror: float = 0.0

    def __post_init__(self) -> None:
        lo, hi = self.speed
        if not 0 < lo <= hi:
            raise ValueError(f"view speed must be 0 < low <= high, got {self.speed}")
        if not 0 <= self.amplitude < 1 or not 0 <= self.bone < 1:
            raise ValueError(f"view amplitude and bone must be in [0, 1), got {self.amplitude}, {self.bone}")
        if not 0 <= self.mirror <= 1:
            raise ValueError(f"view mirror is a probability, got {self.mirror}")


def warp_times(num_frames: int, start: int, length: int, speed: float) -> np.ndarray:
    """Source times (frames of the sequence, float) of a ``length``-frame view of the window ``[start, start +
    length)`` warped by ``speed`` about the window's middle: t_k = m + (k - c) * speed with c = (length - 1) / 2 and
    m = start + c. A speed whose span would leave the sequence is lowered until it fits (a slowed view always fits)."""
    if length < 1 or start < 0 or start + length > num_frames:
        raise ValueError(f"window [{start}, {start + length}) is not inside a sequence of {num_frames} frames")
    c = (length - 1) / 2
    mid = start + c
    if c > 0:
        speed = min(speed, mid / c, (num_frames - 1 - mid) / c)
    return mid + (np.arange(length) - c) * speed


def sample_at(joints: np.ndarray, times: np.ndarray) -> np.ndarray:
    """(T, J, 3) joints linearly interpolated at float frame ``times`` (each inside [0, T - 1])."""
    j = np.asarray(joints, dtype=np.float64)
    t = np.clip(np.asarray(times, dtype=np.float64), 0, len(j) - 1)
    lo = np.floor(t).astype(int)
    hi = np.minimum(lo + 1, len(j) - 1)
    w = (t - lo)[:, None, None]
    return j[lo] * (1 - w) + j[hi] * w


def mirror(joints: np.ndarray) -> np.ndarray:
    """Reflect (..., 17, 3) joints in the x = 0 plane and swap every left joint with its right one
    (:func:`hmore.skeleton.flip` of H36M-17, as float64)."""
    return flip(np.asarray(joints, dtype=np.float64), H36M17)


def scale_bones(joints: np.ndarray, factors: np.ndarray) -> np.ndarray:
    """(T, 17, 3) joints with the bone ending at joint j scaled by ``factors[j]`` (the root's factor unused), each
    joint rebuilt from its parent's new place outwards; the root stays."""
    j = np.asarray(joints, dtype=np.float64)
    f = np.asarray(factors, dtype=np.float64)
    out = j.copy()
    for child, parent in enumerate(H36M17.parents):  # parents come before their children in H36M-17's order
        if parent >= 0:
            out[:, child] = out[:, parent] + f[child] * (j[:, child] - j[:, parent])
    return out


def scale_amplitude(joints: np.ndarray, factor: float) -> np.ndarray:
    """(T, 17, 3) joints whose root-relative positions move ``factor`` times as far from their window mean (the root
    trajectory kept)."""
    j = np.asarray(joints, dtype=np.float64)
    rel = j - j[:, ROOT : ROOT + 1]
    mean = rel.mean(axis=0, keepdims=True)
    return j[:, ROOT : ROOT + 1] + mean + factor * (rel - mean)


@dataclass(frozen=True)
class StyleView:
    """A style view of a window.

    Attributes:
        joints: (length, 17, 3) the view.
        times: (length,) each view frame's time in frames of the original window (0 = its first frame).
    """

    joints: np.ndarray
    times: np.ndarray


def style_view(joints: np.ndarray, start: int, length: int, rng: np.random.Generator, config: ViewConfig
               ) -> StyleView:
    """A random style view of the window ``joints[start : start + length]`` of a (T, 17, 3) sequence (see the module
    docstring; the time-warp may read frames outside the window)."""
    lo, hi = config.speed
    speed = math.exp(rng.uniform(math.log(lo), math.log(hi)))
    times = warp_times(len(joints), start, length, speed)
    view = sample_at(joints, times)
    if config.bone > 0:
        f = rng.uniform(1 - config.bone, 1 + config.bone, size=H36M17.num_joints)
        view = scale_bones(view, f[np.minimum(np.arange(len(f)), H36M17.flip_index)])  # left and right alike
    if config.amplitude > 0:
        view = scale_amplitude(view, rng.uniform(1 - config.amplitude, 1 + config.amplitude))
    if config.mirror > 0 and rng.random() < config.mirror:
        view = mirror(view)
    return StyleView(joints=view, times=times - start)


def token_map(times: np.ndarray, token_valid: np.ndarray, segment: int) -> np.ndarray:
    """For each token of a view, the original window's token holding the same moment, or -1.

    Args:
        times: (W,) each view frame's time in original window frames (:attr:`StyleView.times`, padded to the
            window with NaN; a token's moment is the mean of its frames' times that are not NaN).
        token_valid: (N,) bool, tokens of the original window with a real frame (N = W / segment); the view's
            view's tokens without a frame map to -1.
        segment: frames per token.

    Returns:
        (N,) int64: the original token whose frames [m * segment, (m + 1) * segment) contain the view token's middle
        moment, -1 when that falls outside the window or on an invalid token.
    """
    n = len(token_valid)
    if len(times) != n * segment:
        raise ValueError(f"times ({len(times)}) must be tokens ({n}) x segment ({segment})")
    t = np.asarray(times, np.float64).reshape(n, segment)
    real = np.isfinite(t)
    mid = np.where(real, t, 0.0).sum(axis=1) / np.maximum(real.sum(axis=1), 1)
    m = np.floor((mid + 0.5) / segment).astype(np.int64)
    inside = (m >= 0) & (m < n) & real.any(axis=1)
    ok = inside & np.asarray(token_valid, bool)[np.clip(m, 0, n - 1)]
    return np.where(ok, m, -1)


__all__ = ["StyleView", "ViewConfig", "mirror", "sample_at", "scale_amplitude", "scale_bones", "style_view",
           "token_map", "warp_times"]
