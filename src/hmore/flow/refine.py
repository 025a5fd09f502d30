"""Photometric refinement of the network's flow inside people (issue 13, the census goal).

The network predicts flow on a 1/8 grid and upsamples it, so inside a person its flow is smoother than the images
say: on the shared real clips its census error inside people was 1-9% above DIS's, whose last step is a variational
refinement of the same energy. :func:`refine_in_people` runs that step on hmore's flow: OpenCV's
``VariationalRefinement`` (a few fixed-point iterations of the energy of Brox et al. 2004, as DIS uses it) started
from the network's optical flow (world + camera), and keeps the refined flow only inside the people's masks dilated by
a few pixels. The background keeps the network's flow, so the refinement cannot bring camera motion or texture
noise back into world flow where hmore keeps it near zero.

The energy, per pixel with flow u and brightness I (grey, 0-255):

    E(u) = delta * |I_{t+1}(p + u) - I_t(p)|^2 + gamma * |grad I_{t+1}(p + u) - grad I_t(p)|^2 + alpha * |grad u|^2

(robust penalties, linearised about the current flow). ``alpha`` was chosen on generated held-out clips, where the
exact flow is known (``benchmarks/flow_refine.py``), never on the shared real clips: in-mask EPE falls with every
alpha tried from 40 down to 5; 5 is lowest on the held-out, background and small-people sets and within 0.1% of 10
on fast motion.

Opt-in search before it (``RefineConfig(search="dis")``, ``refine="search"``, ``hmore flow --refine search``): the
variational step only corrects what its linearisation reaches (about a pixel), so where the network under-estimates
fast limbs it stays short. The search runs OpenCV DIS (medium preset: coarse-to-fine patch search, then DIS's own
variational step) on the people's box, started from the network's flow, and keeps, pixel by pixel, whichever of the
two flows explains the frames better: the lower census cost (5x5 census Hamming distance between frame t and frame
t+1 warped back, averaged over a 7x7 window; the network's flow on ties). The variational step then runs as above.
Measured on generated clips, where the exact flow is known: in-mask EPE 1-16% lower on 256x192 renders, 0-3.5%
higher on renders scaled down from 640x480 (README, issue 13), hence opt-in.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from hmore.config import resolve_switch
from hmore.errors import UsageError

REFINE_MODES = ("variational", "search", "off")
DEFAULT_REFINE = "variational"
SEARCH_MODES = ("off", "dis")
CROP_MARGIN = 8  # pixels around the people (beyond the flow's reach) that the refinement sees
SEARCH_MARGIN = 16  # extra margin of the DIS search (its patches and coarse levels need context)
MIN_SEARCH_SIDE = 32  # people's boxes smaller than this on a side skip the search (DIS has no coarse level there)
CENSUS_RADIUS = 2  # the fusion's census window: 5x5
FUSE_WINDOW = 7  # the fusion's cost is averaged over this window before each pixel picks its flow

__all__ = ["DEFAULT_REFINE", "REFINE_MODES", "SEARCH_MODES", "RefineConfig", "census_cost", "check_pair",
           "fuse_flows", "refine_in_people", "refine_mode", "resolve_refine"]


@dataclass(frozen=True)
class RefineConfig:
    """Settings of :func:`refine_in_people`.

    Attributes:
        alpha: smoothness weight of the variational energy (OpenCV's default is 20).
        delta: brightness constancy weight.
        gamma: gradient constancy weight.
        fixed_point_iterations: outer iterations (the robust penalties are re-linearised each time).
        sor_iterations: inner successive over-relaxation iterations per outer one.
        dilation: pixels by which the person masks grow before the refined flow is kept inside them (0: the masks).
        search: ``"off"`` or ``"dis"``: before the variational step, a DIS search started from the given flow, and
            per pixel the flow (given or searched) with the lower census cost (see the module docstring).
    """

    alpha: float = 5.0
    delta: float = 5.0
    gamma: float = 10.0
    fixed_point_iterations: int = 5
    sor_iterations: int = 5
    dilation: int = 3
    search: str = "off"

    def __post_init__(self) -> None:
        if self.search not in SEARCH_MODES:
            raise UsageError(f"refine search must be one of {', '.join(SEARCH_MODES)}, got {self.search!r}")
        for name in ("alpha", "delta", "gamma"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 0):
                raise UsageError(f"refine {name} must be a finite number >= 0, got {value!r}")
        for name in ("fixed_point_iterations", "sor_iterations"):
            value = getattr(self, name)
            if not (isinstance(value, int) and value >= 1):
                raise UsageError(f"refine {name} must be an integer >= 1, got {value!r}")
        if not (isinstance(self.dilation, int) and self.dilation >= 0):
            raise UsageError(f"refine dilation must be an integer >= 0, got {self.dilation!r}")


def resolve_refine(refine: str | RefineConfig | None) -> RefineConfig | None:
    """``"variational"`` -> the default :class:`RefineConfig`; ``"search"`` -> the default with ``search="dis"``;
    ``"off"`` or None -> None; a config as it is."""
    return resolve_switch(refine, RefineConfig, on="variational", what="refine", presets={"search": {"search": "dis"}})


def refine_mode(config: RefineConfig | None) -> str:
    """The name of a refinement setting: ``off``, ``variational`` or ``search`` (what :func:`resolve_refine` reads)."""
    if config is None:
        return "off"
    return "search" if config.search != "off" else "variational"


def census_cost(grey_t: np.ndarray, grey_t1: np.ndarray, flow: np.ndarray, *, radius: int = CENSUS_RADIUS,
                window: int = FUSE_WINDOW) -> np.ndarray:
    """(H, W) float32 photometric cost of a flow: the share of differing census bits between frame t and frame t+1
    sampled at p + flow(p) (bilinear), averaged over a ``window`` x ``window`` box; a sample outside frame t+1 costs
    1 (every bit)."""
    from hmore.metrics.flow import census_transform, warp_backward

    warped, inside = warp_backward(np.asarray(grey_t1, np.float32), flow)
    ham = (census_transform(warped, radius) != census_transform(np.asarray(grey_t, np.float32), radius)).mean(-1)
    ham = np.where(inside, ham, 1.0).astype(np.float32)
    return cv2.blur(ham, (window, window), borderType=cv2.BORDER_REPLICATE) if window > 1 else ham


def fuse_flows(grey_t: np.ndarray, grey_t1: np.ndarray, flows: list[np.ndarray]) -> np.ndarray:
    """Per pixel, the flow of ``flows`` with the lowest :func:`census_cost` (the earlier one on ties)."""
    costs = np.stack([census_cost(grey_t, grey_t1, f) for f in flows])  # (n, H, W)
    pick = np.argmin(costs, axis=0)  # argmin takes the first of equal costs
    out = np.array(flows[0], np.float32, copy=True)
    for i in range(1, len(flows)):
        out[pick == i] = flows[i][pick == i]
    return out


def _searched(grey_t: np.ndarray, grey_t1: np.ndarray, flow: np.ndarray) -> np.ndarray:
    """DIS (medium preset) started from ``flow``, fused with ``flow`` pixel by pixel (:func:`fuse_flows`)."""
    if min(flow.shape[:2]) < MIN_SEARCH_SIDE:
        return flow
    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    found = dis.calc(grey_t, grey_t1, np.ascontiguousarray(flow, np.float32).copy())  # starts from the given flow
    return fuse_flows(grey_t, grey_t1, [flow, found])


def check_pair(frame_t: np.ndarray, frame_t1: np.ndarray, flow: np.ndarray, labels: np.ndarray, *,
               name: str = "flow") -> np.ndarray:
    """``flow`` as float32 (H, W, 2) after checking that the frames are (H, W, 3), the labels (H, W) and the flow
    finite; a :class:`ValueError` naming the first that is not."""
    flow = np.asarray(flow, np.float32)
    hw = flow.shape[:2]
    if flow.ndim != 3 or flow.shape[2] != 2:
        raise ValueError(f"{name} must be (H, W, 2), got {flow.shape}")
    if np.shape(frame_t) != (*hw, 3) or np.shape(frame_t1) != (*hw, 3):
        raise ValueError(f"frames {np.shape(frame_t)} and {np.shape(frame_t1)} do not match the flow's size {hw}")
    if np.shape(labels) != hw:
        raise ValueError(f"labels {np.shape(labels)} do not match the flow's size {hw}")
    if not np.isfinite(flow).all():
        raise ValueError(f"{name} has NaN or infinite values")
    return flow


def _grey(frame: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(np.ascontiguousarray(frame), cv2.COLOR_RGB2GRAY)


def refine_in_people(frame_t: np.ndarray, frame_t1: np.ndarray, flow: np.ndarray, labels: np.ndarray,
                     config: RefineConfig | None = None) -> np.ndarray:
    """``flow`` refined photometrically inside the people, unchanged elsewhere.

    Args:
        frame_t, frame_t1: (H, W, 3) uint8 RGB.
        flow: (H, W, 2) optical flow t -> t+1 in pixels (image motion: world + camera).
        labels: (H, W) subject labels at t (> 0 inside a person).
        config: the settings (None: defaults).

    Returns:
        (H, W, 2) float32; equal to ``flow`` outside the dilated masks and everywhere when nobody is in view.

    Raises:
        ValueError: shapes that do not match, or a flow that is not finite.
    """
    cfg = config or RefineConfig()
    flow = check_pair(frame_t, frame_t1, flow, labels)
    hw = flow.shape[:2]
    person = np.asarray(labels) > 0
    if not person.any():
        return flow.copy()
    if cfg.dilation:
        side = 2 * cfg.dilation + 1
        person = cv2.dilate(person.astype(np.uint8), np.ones((side, side), np.uint8)) > 0
    # Only the people's bounding box is refined, so small people in a large frame cost little. The box grows by a
    # margin for the smoothness term's reach plus the largest flow inside it, so that every p + u(p) of the people
    # lands inside the box of frame t+1 too (where the whole frame would not clip it either).
    rows, cols = np.nonzero(person.any(axis=1))[0], np.nonzero(person.any(axis=0))[0]
    reach = float(np.abs(flow[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]).max())
    margin = CROP_MARGIN + math.ceil(min(reach, float(max(hw)))) + (SEARCH_MARGIN if cfg.search != "off" else 0)
    y0, y1 = max(int(rows[0]) - margin, 0), min(int(rows[-1]) + margin + 1, hw[0])
    x0, x1 = max(int(cols[0]) - margin, 0), min(int(cols[-1]) + margin + 1, hw[1])
    grey_t = np.ascontiguousarray(_grey(frame_t)[y0:y1, x0:x1])
    grey_t1 = np.ascontiguousarray(_grey(frame_t1)[y0:y1, x0:x1])
    box = np.ascontiguousarray(flow[y0:y1, x0:x1])
    if cfg.search == "dis":
        box = np.ascontiguousarray(_searched(grey_t, grey_t1, box))
    vr = cv2.VariationalRefinement_create()
    vr.setAlpha(float(cfg.alpha))
    vr.setDelta(float(cfg.delta))
    vr.setGamma(float(cfg.gamma))
    vr.setFixedPointIterations(int(cfg.fixed_point_iterations))
    vr.setSorIterations(int(cfg.sor_iterations))
    vr.calc(grey_t, grey_t1, box)  # in place: (h, w, 2) float32
    out = flow.copy()
    inside = person[y0:y1, x0:x1, None]
    out[y0:y1, x0:x1] = np.where(inside, box, flow[y0:y1, x0:x1])
    return out
