"""The network run again on an enlarged crop around each small person (issue 13, small people).

The flow network works on a 1/8 grid: a person 60 px tall is 7-8 cells high, so arms and legs share cells with the
background and their flow is smeared (on the shared real clips most of hmore's skeleton-consistency gap to DIS was one
clip of small people). :func:`zoom_people` gives each person shorter than ``below`` pixels a second pass of the
network on a crop of both frames around them, enlarged z times (z = clip(below / height, min_zoom, max_zoom)), and
puts that flow, scaled back by 1/z, inside the person's mask dilated by ``dilation`` pixels; everything else keeps the
first pass's flow. With a moving camera the crop pass is compensated with the frame's camera motion (its
homography carried into the crop's pixels, ``camera``), so what it gives and what is pasted is world flow, as in the
first pass. Enlarging multiplies the person's displacement too, so z is capped where the enlarged motion
(the 90th percentile inside the person) would pass ``max_motion`` pixels (3 cells of the grid, within the 4-cell reach
of its correlation lookup), and a person moving too fast for z >= ``min_zoom`` keeps one pass. The crop has no camera
compensation of its own (its background is too small to fit one): what is
pasted is optical flow (world + camera), and the caller takes the frame's camera flow off again.

The settings were chosen on generated clips only, where the exact flow is known, never on the shared real clips
(``python benchmarks/flow_zoom.py``): on ``robustness:small`` (people 50-150 px tall in 256x192 frames) in-mask EPE
falls from 0.498 to 0.438 px and skeleton consistency rises from 0.689 to 0.746 with ``below`` 128 and z >= 2;
enlarging people of ~150 px (``synth-heldout``, ``below`` 192) made it worse (0.372 -> 0.469), and so did enlarging
people of 64-96 px by only ~1.3x (0.421 -> 0.47), hence ``min_zoom`` 2. Without the motion cap one fast clip of
``robustness:motion`` got worse (6 fps, 9.0 -> 13.5 px); with a cap of 12, 20 or 32 px it keeps its one pass and the
small-people gains stay the same.

Cost: each enlarged person costs about a pass of the network over (crop area x z^2) pixels. On the 256x192 panning
clip of ``benchmarks/flow_command.py`` (2 people, both under 128 px) the whole ``hmore flow`` command ran at 5.6
pairs/s with it against 10.0 without (same run), below the issue's 8 pairs/s, so it is opt-in (``zoom="auto"``,
``hmore flow --zoom auto``) rather than the default.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np

from hmore.config import resolve_switch
from hmore.errors import UsageError
from hmore.flow.refine import check_pair

ZOOM_MODES = ("auto", "off")
DEFAULT_ZOOM = "off"  # opt-in: a second pass costs up to ~2x on clips of small people (module docstring)

__all__ = ["DEFAULT_ZOOM", "ZOOM_MODES", "ZoomConfig", "Zoomed", "resolve_zoom", "zoom_people"]

CropFlow = Callable[[np.ndarray, np.ndarray, np.ndarray, tuple[int, int, int, int], tuple[float, float]], np.ndarray]
"""(frame_t crop, frame_t1 crop, labels crop, box (y0, y1, x0, x1) in the frame, (sx, sy) frame pixels per enlarged
pixel) -> (h, w, 2) flow of the crop at the enlarged size, in the kind of the flow it replaces (world or optical)."""


@dataclass(frozen=True)
class ZoomConfig:
    """Settings of :func:`zoom_people`.

    Attributes:
        below: people whose mask is shorter than this many pixels get a second, enlarged pass.
        min_zoom, max_zoom: bounds of the enlargement z = below / height.
        max_people: at most this many people a pair get one (the smallest first), bounding the extra cost.
        max_cover: people whose crop covers more than this share of the frame are left alone (enlarging the whole
            frame is what a larger processing size does).
        max_motion: enlarging multiplies a person's displacement too: z is capped so that the 90th percentile of the
            first pass's flow magnitude inside the person, times z, stays within this many pixels, and a person whose
            cap falls below ``min_zoom`` is left alone (0: no cap).
        camera: the crop pass takes the frame's camera motion (True) or runs on the crops as they are (False).
        dilation: pixels by which a person's mask grows before the crop's flow replaces the first pass's inside it.
        margin: pixels around the person (beyond the flow's reach) that the crop keeps.
    """

    below: int = 128
    min_zoom: float = 2.0
    max_zoom: float = 3.0
    max_people: int = 4
    max_cover: float = 0.5
    max_motion: float = 24.0
    camera: bool = True
    dilation: int = 3
    margin: int = 8

    def __post_init__(self) -> None:
        for name in ("below", "max_people", "dilation", "margin"):
            value = getattr(self, name)
            if not (isinstance(value, int) and not isinstance(value, bool) and value >= 0):
                raise UsageError(f"zoom {name} must be an integer >= 0, got {value!r}")
        for name in ("min_zoom", "max_zoom"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 1):
                raise UsageError(f"zoom {name} must be a finite number >= 1, got {value!r}")
        if self.max_zoom < self.min_zoom:
            raise UsageError(f"zoom max_zoom ({self.max_zoom}) must be >= min_zoom ({self.min_zoom})")
        if not (isinstance(self.max_cover, (int, float)) and 0 < self.max_cover <= 1):
            raise UsageError(f"zoom max_cover must be in (0, 1], got {self.max_cover!r}")
        if not (isinstance(self.max_motion, (int, float)) and math.isfinite(self.max_motion) and self.max_motion >= 0):
            raise UsageError(f"zoom max_motion must be a finite number >= 0, got {self.max_motion!r}")


def resolve_zoom(zoom: str | ZoomConfig | None) -> ZoomConfig | None:
    """``"auto"`` -> the default :class:`ZoomConfig`; ``"off"`` or None -> None; a config as it is."""
    return resolve_switch(zoom, ZoomConfig, on="auto", what="zoom")


@dataclass(frozen=True)
class Zoomed:
    """One person given an enlarged pass: label, mask height (pixels), enlargement, crop box (y0, y1, x0, x1)."""

    label: int
    height: int
    zoom: float
    box: tuple[int, int, int, int]


def _size_at(n: int, z: float) -> int:
    """Enlarged side: a multiple of 8 (the network's grid), at least 32 pixels."""
    return max(32, int(round(n * z / 8)) * 8)


def zoom_people(frame_t: np.ndarray, frame_t1: np.ndarray, optical: np.ndarray, labels: np.ndarray,
                crop_flow: CropFlow, config: ZoomConfig | None = None, *, reach: np.ndarray | None = None
                ) -> tuple[np.ndarray, list[Zoomed]]:
    """``optical`` with each small person's flow taken from an enlarged second pass (see the module docstring).

    Args:
        frame_t, frame_t1: (H, W, 3) uint8 RGB.
        optical: (H, W, 2) the first pass's flow t -> t+1 that the crops' replace, pixels (world flow when the
            crops are camera-compensated; its magnitude is what the motion cap sees).
        labels: (H, W) subject labels at t (> 0 inside a person).
        crop_flow: runs the network on an enlarged crop pair (:data:`CropFlow`); its labels crop marks the person
            with 1 and everything else with 0.
        config: the settings (None: defaults).
        reach: (H, W, 2) the image motion (world + camera) that sets each crop's margin, so that p + u(p) stays
            inside it in frame t+1 (None: ``optical``).

    Returns:
        ``(flow (H, W, 2) float32, the people enlarged)``; the flow equals ``optical`` outside their dilated masks.

    Raises:
        ValueError: shapes that do not match, a flow that is not finite, or a crop flow of the wrong shape.
    """
    cfg = config or ZoomConfig()
    optical = check_pair(frame_t, frame_t1, optical, labels, name="optical flow")
    hw = optical.shape[:2]
    labels = np.asarray(labels)
    reach_flow = optical if reach is None else np.asarray(reach, np.float32)
    if reach_flow.shape != optical.shape or not np.isfinite(reach_flow).all():
        raise ValueError(f"reach must be a finite flow of shape {optical.shape}, got {reach_flow.shape}")
    out = optical.copy()
    picks = []
    for s in np.unique(labels[labels > 0]):
        person = labels == s
        rows, cols = np.nonzero(person.any(axis=1))[0], np.nonzero(person.any(axis=0))[0]
        height = int(rows[-1] - rows[0] + 1)
        if height >= cfg.below:
            continue
        # the crop reaches as far as the person's flow, so every p + u(p) stays inside it in frame t+1
        margin = cfg.margin + math.ceil(min(float(np.abs(reach_flow[person]).max()), float(max(hw))))
        y0, y1 = max(int(rows[0]) - margin, 0), min(int(rows[-1]) + margin + 1, hw[0])
        x0, x1 = max(int(cols[0]) - margin, 0), min(int(cols[-1]) + margin + 1, hw[1])
        if (y1 - y0) * (x1 - x0) > cfg.max_cover * hw[0] * hw[1]:
            continue
        z = min(cfg.max_zoom, max(cfg.min_zoom, cfg.below / height))
        if cfg.max_motion > 0:
            reach90 = float(np.percentile(np.hypot(optical[person][:, 0], optical[person][:, 1]), 90))
            z = min(z, cfg.max_motion / max(reach90, 1e-6))
            if z < cfg.min_zoom:
                continue
        picks.append((height, int(s), (y0, y1, x0, x1), z))
    done = []
    side = 2 * cfg.dilation + 1
    for height, s, (y0, y1, x0, x1), z in sorted(picks)[: cfg.max_people]:
        ch, cw = y1 - y0, x1 - x0
        zh, zw = _size_at(ch, z), _size_at(cw, z)
        a = cv2.resize(np.ascontiguousarray(frame_t[y0:y1, x0:x1]), (zw, zh), interpolation=cv2.INTER_CUBIC)
        b = cv2.resize(np.ascontiguousarray(frame_t1[y0:y1, x0:x1]), (zw, zh), interpolation=cv2.INTER_CUBIC)
        crop_labels = (labels[y0:y1, x0:x1] == s).astype(np.uint8)
        big = np.asarray(crop_flow(a, b, cv2.resize(crop_labels, (zw, zh), interpolation=cv2.INTER_NEAREST),
                                   (y0, y1, x0, x1), (cw / zw, ch / zh)), np.float32)
        if big.shape != (zh, zw, 2):
            raise ValueError(f"crop flow must be {(zh, zw, 2)}, got {big.shape}")
        flow = cv2.resize(big, (cw, ch), interpolation=cv2.INTER_AREA)
        flow[..., 0] *= cw / zw  # back to the frame's pixels (the exact scale of the rounded crop size)
        flow[..., 1] *= ch / zh
        inside = cv2.dilate(crop_labels, np.ones((side, side), np.uint8)) > 0 if cfg.dilation else crop_labels > 0
        region = out[y0:y1, x0:x1]
        region[inside] = flow[inside]
        done.append(Zoomed(label=s, height=height, zoom=round(z, 3), box=(y0, y1, x0, x1)))
    return out, done
