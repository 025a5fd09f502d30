"""Optical flow as colour: the Middlebury colour wheel (Baker et al., "A Database and Evaluation Methodology for
Optical Flow", ICCV 2007), the coding that flow papers and tools (RAFT, torchvision, H-MoRe) show.

Direction is hue, magnitude is saturation: zero flow is white, flow at the normalising magnitude is the fully
saturated wheel colour. With the image convention x right / y down, flow (+1, 0) (to the right) is red, (-1, 0)
cyan-blue, (0, +1) (down) orange-yellow, (0, -1) blue-violet. The 55 hues are interpolated evenly around the circle.
Every frame of a video should share one magnitude scale: pass ``max_mag`` computed once with
:func:`robust_max_magnitude` over the whole clip (or give the whole clip at once).
"""

from __future__ import annotations

import functools

import cv2
import numpy as np

# Number of hues between the six primary and secondary colours of the wheel, chosen by Baker et al. to make the
# perceived colour change roughly even (red-yellow, yellow-green, green-cyan, cyan-blue, blue-magenta, magenta-red).
_SEGMENTS: tuple[int, ...] = (15, 6, 4, 11, 13, 6)
# The channel that ramps up (+) or down (-) in each segment, the others held at their start value.
_SEGMENT_START: tuple[tuple[int, int, int], ...] = (
    (255, 0, 0),  # red -> yellow: G rises
    (255, 255, 0),  # yellow -> green: R falls
    (0, 255, 0),  # green -> cyan: B rises
    (0, 255, 255),  # cyan -> blue: G falls
    (0, 0, 255),  # blue -> magenta: R rises
    (255, 0, 255),  # magenta -> red: B falls
)
_SEGMENT_RAMP: tuple[tuple[int, int], ...] = ((1, +1), (0, -1), (2, +1), (1, -1), (0, +1), (2, -1))

NUM_HUES = sum(_SEGMENTS)  # 55


def wheel_colors() -> np.ndarray:
    """The 55 hues of the Middlebury wheel, in order of increasing angle index: ``(55, 3)`` float64 in [0, 255].

    Index 0 is pure red (the colour of flow pointing along +x); the hues run red, yellow, green, cyan, blue, magenta.
    """
    rows = []
    for n, start, (channel, sign) in zip(_SEGMENTS, _SEGMENT_START, _SEGMENT_RAMP):
        seg = np.tile(np.asarray(start, dtype=np.float64), (n, 1))  # (n, 3)
        ramp = np.floor(255.0 * np.arange(n) / n)
        seg[:, channel] = ramp if sign > 0 else 255.0 - ramp
        rows.append(seg)
    return np.concatenate(rows, axis=0)


_STEPS = 64  # angles per hue in the colour table
_SATURATIONS = 256  # saturations (|flow| / max_mag from 0 to 1) in the colour table


@functools.lru_cache(maxsize=1)
def _colour_table() -> np.ndarray:
    """(55 * _STEPS * _SATURATIONS, 3) uint8: the colour of flow at angle index a (hues linearly interpolated,
    _STEPS per hue) and saturation index r, at row a * _SATURATIONS + r (white at r = 0, the hue at the last r)."""
    wheel = (wheel_colors() / 255.0).astype(np.float32)  # (55, 3)
    pos = np.arange(NUM_HUES * _STEPS, dtype=np.float32) / _STEPS  # (A,) in hue units
    k0 = np.floor(pos).astype(np.int64)
    f = (pos - k0)[:, None]
    hue = (1.0 - f) * wheel[k0] + f * wheel[(k0 + 1) % NUM_HUES]  # (A, 3) in [0, 1]
    rad = np.linspace(0.0, 1.0, _SATURATIONS, dtype=np.float32)[None, :, None]  # (1, R, 1)
    col = 1.0 - rad * (1.0 - hue[:, None, :])  # (A, R, 3)
    return np.floor(255.0 * col + 0.5).clip(0, 255).astype(np.uint8).reshape(-1, 3)


def robust_max_magnitude(flow: np.ndarray, *, percentile: float = 99.0, floor: float = 1e-6) -> float:
    """A robust normalising magnitude for colour coding: the ``percentile`` of finite flow magnitudes.

    Args:
        flow: ``(..., 2)`` flow (x, y) in pixels; any leading axes (a whole clip ``(T, H, W, 2)`` gives one scale
            shared by all its frames). NaN and inf vectors are ignored.
        percentile: which percentile of the magnitudes; 99 keeps a few outliers from washing out the picture.
        floor: the smallest value returned (all-zero or all-NaN flow gives ``floor``), so dividing by it is safe.

    Returns:
        The magnitude in pixels that maps to full saturation.
    """
    flow = np.asarray(flow)
    if flow.ndim < 1 or flow.shape[-1] != 2:
        raise ValueError(f"flow must have shape (..., 2), got {flow.shape}")
    mag = np.hypot(flow[..., 0], flow[..., 1]).ravel()
    mag = mag[np.isfinite(mag)]
    if mag.size == 0:
        return float(floor)
    return float(max(np.percentile(mag, percentile), floor))


def flow_to_color(
    flow: np.ndarray,
    *,
    max_mag: float | None = None,
    percentile: float = 99.0,
    nan_color: tuple[int, int, int] = (0, 0, 0),
) -> np.ndarray:
    """Colour-code a flow field with the Middlebury wheel.

    Args:
        flow: ``(H, W, 2)`` flow (x right, y down) in pixels, or ``(T, H, W, 2)`` for a clip (one shared scale).
        max_mag: the magnitude in pixels shown fully saturated; longer vectors are clipped to it. None: the
            ``percentile`` of this field's finite magnitudes (:func:`robust_max_magnitude`). For a video give the same
            value to every frame.
        percentile: used when ``max_mag`` is None.
        nan_color: RGB colour of pixels whose flow is NaN or inf (black by default; zero flow is white).

    Returns:
        ``flow.shape[:-1] + (3,)`` uint8 RGB.
    """
    flow = np.asarray(flow)
    if flow.ndim not in (3, 4) or flow.shape[-1] != 2:
        raise ValueError(f"flow must have shape (H, W, 2) or (T, H, W, 2), got {flow.shape}")
    if max_mag is None:
        max_mag = robust_max_magnitude(flow, percentile=percentile)
    if not np.isfinite(max_mag) or max_mag <= 0:
        raise ValueError(f"max_mag must be a positive finite number, got {max_mag}")
    # One lookup per pixel in a table of colours by (angle, saturation): a preview frame's three panels took ~18 ms
    # with float64 interpolation per pixel. The table's steps (_STEPS per hue, 256 saturations) keep every colour
    # within one level of the exact formula.
    u = flow[..., 0].astype(np.float32)  # copies (zeroed below where not finite: never the caller's array)
    v = flow[..., 1].astype(np.float32)
    bad = ~(np.isfinite(u) & np.isfinite(v))
    if bad.any():
        u[bad] = 0.0
        v[bad] = 0.0
    shape = u.shape
    # Angle measured so that +x maps to wheel index 0 (red) and the index grows clockwise on screen (y down):
    # +y (down) lands a quarter of the way round, in the red-yellow segment, -x half way, in cyan-blue.
    mag, ang = cv2.cartToPolar(u.reshape(-1, shape[-1]), v.reshape(-1, shape[-1]))  # ang = atan2(v, u) in [0, 2pi)
    n_ang = NUM_HUES * _STEPS
    a_idx = np.rint(ang * np.float32(n_ang / (2.0 * np.pi))).astype(np.int32) % n_ang
    r_idx = np.rint(np.minimum(mag * np.float32(1.0 / max_mag), np.float32(1.0)) * np.float32(_SATURATIONS - 1))
    out = _colour_table()[a_idx * _SATURATIONS + r_idx.astype(np.int32)].reshape(*shape, 3)
    out[bad] = np.asarray(nan_color, dtype=np.uint8)
    return out


def color_wheel(size: int = 128, *, background: tuple[int, int, int] = (255, 255, 255)) -> np.ndarray:
    """The legend: a disc whose pixel at offset (dx, dy) from the centre shows the colour of flow (dx, dy).

    The rim is the colour of flow at the normalising magnitude (``max_mag``), the centre is zero flow.

    Args:
        size: side of the square image in pixels (at least 8).
        background: RGB outside the disc.

    Returns:
        ``(size, size, 3)`` uint8 RGB.
    """
    if size < 8:
        raise ValueError(f"color_wheel size must be at least 8 pixels, got {size}")
    c = (size - 1) / 2.0
    r = c - 0.5  # a half-pixel margin keeps the rim inside the image
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64)  # (size, size) pixel centres, y down
    flow = np.stack([(xx - c) / r, (yy - c) / r], axis=-1)  # (size, size, 2)
    img = flow_to_color(flow, max_mag=1.0)
    outside = np.hypot(flow[..., 0], flow[..., 1]) > 1.0
    img[outside] = np.asarray(background, dtype=np.uint8)
    return img
