"""Measures of human-centric flow, with and without ground truth (issue 5).

Conventions: a flow is ``(H, W, 2)`` (dx, dy) in pixels from frame t to frame t+1; pixel centre (i, j) is at
x = j, y = i; ``masks`` are ``(H, W)`` subject labels (0 background, k subject k) or booleans; frames are
``(H, W, 3)`` uint8 RGB (or ``(H, W)`` grey). Every function is vectorised with numpy/OpenCV and returns plain floats
(or a small frozen dataclass); a value that cannot be defined (no pixel to average over) is ``nan`` and the caller
(the benchmark) turns it into ``null`` with a reason.

Without ground truth (any video):

* :func:`photometric_error` - warp frame t+1 back with the flow and compare with frame t inside the masks (L1,
  census Hamming distance, SSIM dissimilarity), occlusions removed by :func:`forward_backward_valid`.
* :func:`skeleton_consistency` - share of body pixels whose flow agrees with the displacement of the nearest bone
  point of the pose prior (the skeleton constraint's 15 degree / 0.8-1.2x bounds).
* :func:`boundary_chamfer` - exact symmetric Chamfer distance between flow edges and the person boundary.
* :func:`background_leakage` - mean |flow| outside the dilated person masks over mean |flow| inside.
* :func:`temporal_stability` - change of the subject-compensated flow between consecutive pairs.

With a pose prior (any video): :func:`joint_local_error` - local flow at the joints against each joint's motion
relative to the pelvis.

With ground truth (generated clips): :func:`epe` inside masks and :func:`local_flow_epe`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np
from scipy.spatial import cKDTree

__all__ = [
    "BoundaryChamfer", "Leakage", "PhotometricError", "SkeletonConsistency", "SkeletonMatches", "background_leakage",
    "boundary_chamfer", "census_transform", "epe", "flow_edges", "forward_backward_valid", "joint_local_error",
    "label_edges",
    "local_flow_epe", "local_from_world", "photometric_error", "skeleton_consistency", "skeleton_matches", "ssim_map",
    "temporal_stability", "warp_backward",
]


# ---- checks ------------------------------------------------------------------------------------------------------


def _flow(flow: np.ndarray, name: str = "flow") -> np.ndarray:
    flow = np.asarray(flow)
    if flow.ndim != 3 or flow.shape[2] != 2:
        raise ValueError(f"{name} must be (H, W, 2), got {flow.shape}")
    return flow.astype(np.float32, copy=False)


def _mask(mask: np.ndarray | None, hw: tuple[int, int], name: str = "mask") -> np.ndarray | None:
    if mask is None:
        return None
    mask = np.asarray(mask)
    if mask.shape != hw:
        raise ValueError(f"{name} must be (H, W) = {hw}, got {mask.shape}")
    return mask


def _grey(frame: np.ndarray) -> np.ndarray:
    frame = np.asarray(frame)
    if frame.ndim == 3 and frame.shape[2] == 3:
        return cv2.cvtColor(frame.astype(np.uint8, copy=False), cv2.COLOR_RGB2GRAY).astype(np.float32)
    if frame.ndim == 2:
        return frame.astype(np.float32)
    raise ValueError(f"frame must be (H, W, 3) RGB or (H, W) grey, got {frame.shape}")


def _masked_mean(values: np.ndarray, where: np.ndarray) -> float:
    n = int(where.sum())
    return float(values[where].mean()) if n else math.nan


# ---- warping and occlusions -------------------------------------------------------------------------------------


def warp_backward(image: np.ndarray, flow: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sample ``image`` (frame t+1) at x + u(x): the prediction of frame t the flow makes.

    ``warped(p) = image(p + flow(p))`` with bilinear interpolation (cv2.remap); samples outside the image replicate
    the border and are flagged.

    Args:
        image: (H, W, C) or (H, W) image of frame t+1 (any numeric dtype; returned as float32).
        flow: (H, W, 2) flow t -> t+1.

    Returns:
        ``(warped, inside)``: the warped image (float32, same shape as ``image``) and (H, W) bool, True where the
        sample point lies inside the image (0 <= x <= W-1, 0 <= y <= H-1).
    """
    flow = _flow(flow)
    h, w = flow.shape[:2]
    if image.shape[:2] != (h, w):
        raise ValueError(f"image {image.shape[:2]} and flow {flow.shape[:2]} differ in size")
    jj, ii = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    mx, my = jj + flow[..., 0], ii + flow[..., 1]  # (H, W) sample points
    warped = cv2.remap(np.asarray(image, np.float32), mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    inside = (mx >= 0) & (mx <= w - 1) & (my >= 0) & (my <= h - 1)
    return warped, inside


def forward_backward_valid(flow_fw: np.ndarray, flow_bw: np.ndarray, *, alpha1: float = 0.01,
                           alpha2: float = 0.5) -> np.ndarray:
    """Pixels that pass the forward-backward consistency check (not occluded at t+1).

    With ``b(p) = flow_bw(p + flow_fw(p))`` (bilinear), a pixel is valid when

        |f + b|^2 < alpha1 (|f|^2 + |b|^2) + alpha2

    (Sundaram, Brox and Keutzer, ECCV 2010; the constants of UnFlow, Meister et al., AAAI 2018).

    Args:
        flow_fw: (H, W, 2) flow t -> t+1.
        flow_bw: (H, W, 2) flow t+1 -> t.

    Returns:
        (H, W) bool.
    """
    f = _flow(flow_fw, "flow_fw")
    b = _flow(flow_bw, "flow_bw")
    if b.shape != f.shape:
        raise ValueError(f"flow_bw must have flow_fw's shape {f.shape}, got {b.shape}")
    b_w, _ = warp_backward(b, f)  # (H, W, 2) backward flow at the forward targets
    lhs = np.sum((f + b_w) ** 2, axis=-1)
    rhs = alpha1 * (np.sum(f**2, axis=-1) + np.sum(b_w**2, axis=-1)) + alpha2
    return lhs < rhs


# ---- photometric error ------------------------------------------------------------------------------------------


def census_transform(grey: np.ndarray, radius: int = 3) -> np.ndarray:
    """Census signature: for each pixel, which of its (2r+1)^2 - 1 neighbours are darker than it.

    Args:
        grey: (H, W) image.
        radius: r; neighbours outside the image replicate the border.

    Returns:
        (H, W, K) bool with K = (2r+1)^2 - 1, bit k = grey(p + d_k) < grey(p).
    """
    g = np.asarray(grey, np.float32)
    h, w = g.shape
    pad = np.pad(g, radius, mode="edge")
    offsets = [(di, dj) for di in range(-radius, radius + 1) for dj in range(-radius, radius + 1) if di or dj]
    out = np.empty((h, w, len(offsets)), dtype=bool)
    for k, (di, dj) in enumerate(offsets):
        out[..., k] = pad[radius + di:radius + di + h, radius + dj:radius + dj + w] < g
    return out


def ssim_map(a: np.ndarray, b: np.ndarray, *, sigma: float = 1.5) -> np.ndarray:
    """Per-pixel SSIM of two grey images in [0, 255] (Gaussian window, Wang et al. 2004 constants).

    SSIM = (2 mu_a mu_b + C1)(2 s_ab + C2) / ((mu_a^2 + mu_b^2 + C1)(s_a^2 + s_b^2 + C2)), C1 = (0.01 L)^2,
    C2 = (0.03 L)^2, L = 255.
    """
    a = np.asarray(a, np.float32)
    b = np.asarray(b, np.float32)
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2

    def blur(x: np.ndarray) -> np.ndarray:
        return cv2.GaussianBlur(x, (0, 0), sigma, borderType=cv2.BORDER_REPLICATE)

    mu_a, mu_b = blur(a), blur(b)
    s_a = blur(a * a) - mu_a**2
    s_b = blur(b * b) - mu_b**2
    s_ab = blur(a * b) - mu_a * mu_b
    return ((2 * mu_a * mu_b + c1) * (2 * s_ab + c2)) / ((mu_a**2 + mu_b**2 + c1) * (s_a + s_b + c2))


@dataclass(frozen=True)
class PhotometricError:
    """Photometric error of one flow inside the masks (``nan`` when no pixel is valid).

    Attributes:
        l1: mean |I_t - W(I_t+1)| over pixels and RGB channels, intensities in [0, 1].
        census: mean Hamming distance between census signatures (radius 3), as a fraction of the 48 bits.
        ssim: mean (1 - SSIM) / 2 of the grey images, in [0, 1].
        valid_fraction: share of mask pixels that were scored (inside the image after warping, not occluded).
        num_pixels: pixels scored.
    """

    l1: float
    census: float
    ssim: float
    valid_fraction: float
    num_pixels: int


def photometric_error(frame_t: np.ndarray, frame_t1: np.ndarray, flow: np.ndarray, mask: np.ndarray | None = None,
                      *, flow_backward: np.ndarray | None = None, occluded: np.ndarray | None = None,
                      census_radius: int = 3) -> PhotometricError:
    """How well frame t+1 warped back with the flow reproduces frame t, inside the person masks.

    With W(I_{t+1})(p) = I_{t+1}(p + u(p)) and V = mask & inside & (forward-backward consistent, when
    ``flow_backward`` is given) & not ``occluded``:

        l1     = 1/(3|V|) sum_{p in V} sum_c |I_t(p, c) - W(I_{t+1})(p, c)| / 255
        census = 1/|V| sum_{p in V} Hamming(C(I_t)(p), C(W(I_{t+1}))(p)) / K
        ssim   = 1/|V| sum_{p in V} (1 - SSIM(I_t, W(I_{t+1}))(p)) / 2

    Census (Zabih and Woodfill 1994) and SSIM compare local structure, so they tolerate brightness changes.

    Args:
        frame_t: (H, W, 3) uint8 RGB frame t.
        frame_t1: (H, W, 3) uint8 RGB frame t+1.
        flow: (H, W, 2) flow t -> t+1.
        mask: (H, W) labels or bool; pixels > 0 are scored (None: every pixel).
        flow_backward: (H, W, 2) flow t+1 -> t for the occlusion check (None: no check).
        occluded: (H, W) bool pixels to leave out, e.g. a shared reference occlusion mask (None: none).
        census_radius: r of the census window.

    Returns:
        :class:`PhotometricError`.
    """
    flow = _flow(flow)
    hw = flow.shape[:2]
    if np.asarray(frame_t).shape[:2] != hw or np.asarray(frame_t1).shape[:2] != hw:
        raise ValueError(f"frames {np.asarray(frame_t).shape} and {np.asarray(frame_t1).shape} do not match the "
                         f"flow's size {hw}")
    region = np.ones(hw, bool) if mask is None else _mask(mask, hw) > 0
    warped, inside = warp_backward(np.asarray(frame_t1), flow)
    valid = region & inside & np.isfinite(flow).all(-1)
    if flow_backward is not None:
        valid &= forward_backward_valid(flow, flow_backward)
    if occluded is not None:
        valid &= ~_mask(np.asarray(occluded, bool), hw, "occluded")
    n = int(valid.sum())
    total = int(region.sum())
    frac = n / total if total else math.nan
    if n == 0:
        return PhotometricError(l1=math.nan, census=math.nan, ssim=math.nan, valid_fraction=frac, num_pixels=0)
    a = np.asarray(frame_t, np.float32)
    diff = np.abs(a - warped) / 255.0
    l1 = float(diff[valid].mean())
    ga, gb = _grey(np.asarray(frame_t)), _grey(np.clip(warped, 0, 255))
    ca, cb = census_transform(ga, census_radius), census_transform(gb, census_radius)
    ham = (ca[valid] != cb[valid]).mean(axis=-1)  # (n,) fraction of differing bits
    dssim = (1.0 - ssim_map(ga, gb)) / 2.0
    return PhotometricError(l1=l1, census=float(ham.mean()), ssim=float(np.clip(dssim[valid], 0, 1).mean()),
                            valid_fraction=float(frac), num_pixels=n)


# ---- skeleton consistency ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SkeletonConsistency:
    """Agreement of the flow with the pose prior's bone displacements (``nan`` when no pixel is matched).

    Attributes:
        consistency: share of matched body pixels breaking neither bound (1 = the flow moves like the skeleton).
        angle_violation: share of matched moving pixels whose flow turns more than ``angle_deg`` from k.
        intensity_violation: share of matched pixels whose |u| is outside [low, high] x |k|.
        num_pixels: matched body pixels.
    """

    consistency: float
    angle_violation: float
    intensity_violation: float
    num_pixels: int


@dataclass(frozen=True)
class SkeletonMatches:
    """Every matched body pixel of :func:`skeleton_matches`, with its flow, its bone point's displacement and which
    bound it breaks (the per-pixel form of :class:`SkeletonConsistency`, for breaking the measure down).

    Attributes:
        flow: (N, 2) flow u at the matched pixels.
        bone_disp: (N, 2) displacement k of each pixel's matched bone point.
        bone: (N,) index of the matched point's bone in ``COCO17.bones``.
        subject: (N,) label of the pixel's person (1..P).
        pixels: (N, 2) (row, column) of each pixel.
        moving: (N,) |k| >= k0.
        angle_break: (N,) moving and the flow turns more than the angle bound from k (or is zero).
        slow: (N,) moving and |u| < low |k| (motion under-estimated).
        fast: (N,) moving and |u| > high |k| (motion over-estimated).
        rest_break: (N,) not moving (|k| < k0) and |u| > high k0.
    """

    flow: np.ndarray
    bone_disp: np.ndarray
    bone: np.ndarray
    subject: np.ndarray
    pixels: np.ndarray
    moving: np.ndarray
    angle_break: np.ndarray
    slow: np.ndarray
    fast: np.ndarray
    rest_break: np.ndarray

    @property
    def intensity_break(self) -> np.ndarray:
        """(N,) |u| outside the intensity bounds (slow, fast or moving at rest)."""
        return self.slow | self.fast | self.rest_break

    @property
    def ok(self) -> np.ndarray:
        """(N,) breaking neither bound."""
        return ~(self.angle_break | self.intensity_break)


def skeleton_matches(flow: np.ndarray, masks: np.ndarray, kp_t: np.ndarray, kp_t1: np.ndarray, *,
                     angle_deg: float = 15.0, low: float = 0.8, high: float = 1.2, points_per_bone: int = 8,
                     min_displacement: float = 0.5, min_confidence: float = 0.0) -> SkeletonMatches | None:
    """Match each body pixel to its bone point and test the skeleton constraint's bounds, pixel by pixel.

    Points are sampled along the COCO-17 bones and each body pixel p of subject s is matched to
    q^ = argmin_q ( -||p - q|| log c_q ) over s's points (the point sampling of
    :mod:`hmore.losses.skeleton_constraint` reused; its matching rule redone in numpy on mask pixels only, which is
    about 100x faster than its all-pixel torch helper). With u = flow(p) and k = K_{t+1}(q^) - K_t(q^):

        angle break     A(p) = |k| >= k0  and  angle(u, k) > angle_deg
        intensity break I(p) = |u| outside [low |k|, high |k|]     (|k| < k0, a point at rest: |u| > high k0)

    k0 = ``min_displacement`` pixels. Arguments as :func:`skeleton_consistency`.

    Returns:
        :class:`SkeletonMatches`, or None when no pixel is matched (no people, no confident joint).
    """
    import torch

    from hmore.losses.skeleton_constraint import skeleton_points

    flow = _flow(flow)
    h, w = flow.shape[:2]
    masks = _mask(masks, (h, w), "masks")
    kp_t, kp_t1 = np.asarray(kp_t, np.float32), np.asarray(kp_t1, np.float32)
    if kp_t.ndim != 3 or kp_t.shape[1:] != (17, 3) or kp_t1.shape != kp_t.shape:
        raise ValueError(f"kp_t and kp_t1 must both be (P, 17, 3), got {kp_t.shape} and {kp_t1.shape}")
    if kp_t.shape[0] == 0:
        return None
    with torch.no_grad():  # the loss's point sampling, reused: (1, P, Q, 2), (1, P, Q, 2), (1, P, Q)
        pos, disp, conf = (x[0].numpy().astype(np.float64) for x in skeleton_points(
            torch.from_numpy(kp_t)[None], torch.from_numpy(kp_t1)[None], points_per_bone))
    # The loss's matching rule, q^ = argmin_q -||p - q|| log c_q, evaluated only on mask pixels (numpy).
    weight = np.where(conf > min_confidence, -np.log(np.clip(conf, 1e-3, 0.999)), np.inf)  # (P, Q)
    us, ks, qs, ss, ps = [], [], [], [], []
    for s in range(kp_t.shape[0]):
        if not np.isfinite(weight[s]).any():
            continue
        ii, jj = np.nonzero(masks == s + 1)
        if len(ii) == 0:
            continue
        pix = np.stack([jj, ii], axis=1).astype(np.float64)  # (n, 2) x, y
        with np.errstate(invalid="ignore"):  # 0 px x inf weight (an unconfident point under a pixel) is NaN -> inf
            d = np.linalg.norm(pix[:, None, :] - pos[s][None], axis=-1) * weight[s][None]  # (n, Q)
        d = np.where(np.isnan(d), np.inf, d)
        q = np.argmin(d, axis=1)
        ks.append(disp[s][q])
        qs.append(q // points_per_bone)
        us.append(flow[ii, jj].astype(np.float64))
        ss.append(np.full(len(ii), s + 1, np.int64))
        ps.append(np.stack([ii, jj], axis=1))
    if not us:
        return None
    u, k = np.concatenate(us), np.concatenate(ks)  # (N, 2) flow and matched bone displacement
    un, kn = np.linalg.norm(u, axis=1), np.linalg.norm(k, axis=1)
    moving = kn >= min_displacement
    cos = np.sum(u * k, axis=1) / np.maximum(un * kn, 1e-12)
    return SkeletonMatches(
        flow=u, bone_disp=k, bone=np.concatenate(qs), subject=np.concatenate(ss), pixels=np.concatenate(ps),
        moving=moving, angle_break=moving & ((un < 1e-9) | (cos < math.cos(math.radians(angle_deg)) - 1e-9)),
        slow=moving & (un < low * kn - 1e-9), fast=moving & (un > high * kn + 1e-9),
        rest_break=~moving & (un > high * min_displacement))


def skeleton_consistency(flow: np.ndarray, masks: np.ndarray, kp_t: np.ndarray, kp_t1: np.ndarray, *,
                         angle_deg: float = 15.0, low: float = 0.8, high: float = 1.2, points_per_bone: int = 8,
                         min_displacement: float = 0.5, min_confidence: float = 0.0) -> SkeletonConsistency:
    """Share of body pixels whose flow respects the skeleton constraint's bounds.

    Each body pixel is matched to a point on its person's COCO-17 bones and tested against that point's
    displacement k (:func:`skeleton_matches`, which gives the per-pixel breaks):

        consistency = 1 - |{p : A(p) or I(p)}| / |{matched p}|

    The paper's bounds: 15 degrees, 0.8-1.2x (arXiv 2504.10676, section 3.2).

    Args:
        flow: (H, W, 2) flow t -> t+1.
        masks: (H, W) labels at t (k = row k-1 of the keypoints).
        kp_t: (P, 17, 3) COCO-17 keypoints (x, y, confidence) at t, in the flow's pixels.
        kp_t1: (P, 17, 3) the same people at t+1.
        angle_deg, low, high: the bounds.
        points_per_bone: n_k.
        min_displacement: k0 in pixels.
        min_confidence: points with this confidence or lower (missing joints) never match.

    Returns:
        :class:`SkeletonConsistency`.
    """
    m = skeleton_matches(flow, masks, kp_t, kp_t1, angle_deg=angle_deg, low=low, high=high,
                         points_per_bone=points_per_bone, min_displacement=min_displacement,
                         min_confidence=min_confidence)
    if m is None:
        return SkeletonConsistency(consistency=math.nan, angle_violation=math.nan, intensity_violation=math.nan,
                                   num_pixels=0)
    n_moving = int(m.moving.sum())
    return SkeletonConsistency(
        consistency=float(m.ok.mean()),
        angle_violation=float(m.angle_break.sum() / n_moving) if n_moving else math.nan,
        intensity_violation=float(m.intensity_break.mean()), num_pixels=len(m.flow),
    )


# ---- boundary alignment -----------------------------------------------------------------------------------------


def label_edges(labels: np.ndarray) -> np.ndarray:
    """Person boundary: pixels whose label differs from the pixel to their right or below.

    ``e(i, j) = L(i, j) != L(i, j+1)  or  L(i, j) != L(i+1, j)``, a one-pixel line on the upper-left side of
    every change of label (person/background and person/person). It is the same operator as :func:`flow_edges`,
    so a flow that steps exactly at the mask's edge has its edges exactly on this boundary.

    Args:
        labels: (H, W) integer labels or bool.

    Returns:
        (H, W) bool.
    """
    lab = np.asarray(labels)
    if lab.ndim != 2:
        raise ValueError(f"labels must be (H, W), got {lab.shape}")
    e = np.zeros(lab.shape, bool)
    e[:, :-1] |= lab[:, :-1] != lab[:, 1:]
    e[:-1, :] |= lab[:-1, :] != lab[1:, :]
    return e


def flow_edges(flow: np.ndarray, *, threshold: float | None = None, rel: float = 0.2,
               min_step: float = 0.1) -> np.ndarray:
    """Motion edges: pixels where the flow jumps to the pixel on their right or below.

    ``g(p) = max(|u(i, j) - u(i, j+1)|, |u(i, j) - u(i+1, j)|)`` (vector norms); an edge is g > tau with
    tau = ``threshold`` or, by default, max(``min_step``, ``rel`` x the 99th percentile of |u|): a step of a fifth
    of the scene's largest motion, and at least a tenth of a pixel.

    Args:
        flow: (H, W, 2).

    Returns:
        (H, W) bool.
    """
    f = _flow(flow)
    f = np.nan_to_num(f, nan=0.0, posinf=0.0, neginf=0.0)
    g = np.zeros(f.shape[:2], np.float32)
    g[:, :-1] = np.linalg.norm(f[:, :-1] - f[:, 1:], axis=-1)
    g[:-1, :] = np.maximum(g[:-1, :], np.linalg.norm(f[:-1, :] - f[1:, :], axis=-1))
    if threshold is None:
        mag = np.linalg.norm(f, axis=-1)
        threshold = max(min_step, rel * float(np.percentile(mag, 99)))
    return g > threshold


@dataclass(frozen=True)
class BoundaryChamfer:
    """Exact Chamfer distance between flow edges and the person boundary, in pixels (``nan`` if either is empty).

    Attributes:
        chamfer: (flow_to_boundary + boundary_to_flow) / 2.
        flow_to_boundary: mean distance from each flow-edge pixel to the nearest boundary pixel.
        boundary_to_flow: mean distance from each boundary pixel to the nearest flow-edge pixel.
        num_flow_edges: flow-edge pixels.
    """

    chamfer: float
    flow_to_boundary: float
    boundary_to_flow: float
    num_flow_edges: int


def boundary_chamfer(flow: np.ndarray, masks: np.ndarray, *, threshold: float | None = None,
                     edges: np.ndarray | None = None) -> BoundaryChamfer:
    """Symmetric Chamfer distance between the flow's edges S and the person boundary E, exact (k-d tree).

        C(S, E) = 1/2 [ 1/|S| sum_{s in S} min_{e in E} ||s - e||  +  1/|E| sum_{e in E} min_{s in S} ||e - s|| ]

    S = :func:`flow_edges` (whole image: background motion edges count against the method), E =
    :func:`label_edges` of the masks. Unlike the training loss G (patch centroids), nothing is approximated.

    Args:
        flow: (H, W, 2).
        masks: (H, W) labels or bool.
        threshold: flow-edge threshold (see :func:`flow_edges`).
        edges: precomputed (H, W) bool flow edges (``threshold`` is then ignored).

    Returns:
        :class:`BoundaryChamfer`.
    """
    flow = _flow(flow)
    masks = _mask(masks, flow.shape[:2], "masks")
    s = flow_edges(flow, threshold=threshold) if edges is None else np.asarray(edges, bool)
    e = label_edges(masks)
    ps = np.argwhere(s).astype(np.float64)  # (Ns, 2) (i, j)
    pe = np.argwhere(e).astype(np.float64)
    if len(ps) == 0 or len(pe) == 0:
        return BoundaryChamfer(chamfer=math.nan, flow_to_boundary=math.nan, boundary_to_flow=math.nan,
                               num_flow_edges=len(ps))
    d_se, _ = cKDTree(pe).query(ps, k=1)
    d_es, _ = cKDTree(ps).query(pe, k=1)
    a, b = float(d_se.mean()), float(d_es.mean())
    return BoundaryChamfer(chamfer=0.5 * (a + b), flow_to_boundary=a, boundary_to_flow=b, num_flow_edges=len(ps))


# ---- background leakage -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Leakage:
    """Background leakage (``ratio`` is ``nan`` when there is no person or no background pixel).

    Attributes:
        ratio: mean |u| outside the dilated masks / mean |u| inside the masks (0 for zero flow, inf when only the
            background moves).
        outside: mean |u| outside the dilated masks (pixels).
        inside: mean |u| inside the masks (pixels).
    """

    ratio: float
    outside: float
    inside: float


def background_leakage(flow: np.ndarray, masks: np.ndarray, *, dilate_px: int = 5) -> Leakage:
    """How much flow a method puts on the background, relative to the people.

        leakage = mean_{p not in D} |u(p)| / mean_{p in M} |u(p)|,   D = M dilated by ``dilate_px`` (square)

    with 0/0 = 0 (zero flow does not leak). The human-centric target is 0.

    Args:
        flow: (H, W, 2).
        masks: (H, W) labels or bool; M = masks > 0.
        dilate_px: dilation radius in pixels (keeps boundary blur out of the background).

    Returns:
        :class:`Leakage`.
    """
    flow = _flow(flow)
    masks = _mask(masks, flow.shape[:2], "masks")
    m = masks > 0
    if dilate_px > 0:
        kernel = np.ones((2 * dilate_px + 1, 2 * dilate_px + 1), np.uint8)
        d = cv2.dilate(m.astype(np.uint8), kernel) > 0
    else:
        d = m
    mag = np.linalg.norm(np.nan_to_num(flow), axis=-1)
    inside, outside = _masked_mean(mag, m), _masked_mean(mag, ~d)
    if math.isnan(inside) or math.isnan(outside):
        return Leakage(ratio=math.nan, outside=outside, inside=inside)
    if inside <= 1e-12:
        ratio = 0.0 if outside <= 1e-12 else math.inf
    else:
        ratio = outside / inside
    return Leakage(ratio=float(ratio), outside=outside, inside=inside)


# ---- temporal stability -----------------------------------------------------------------------------------------


def _subject_offsets(flow: np.ndarray, masks: np.ndarray, how: str) -> np.ndarray:
    """(H, W, 2) each pixel's subject median (or mean) flow; 0 on the background."""
    out = np.zeros_like(flow)
    for k in np.unique(masks[masks > 0]):
        sel = masks == k
        vals = flow[sel]
        out[sel] = np.median(vals, axis=0) if how == "median" else vals.mean(axis=0)
    return out


def temporal_stability(flow_a: np.ndarray, flow_b: np.ndarray, masks: np.ndarray, *, how: str = "median") -> float:
    """Mean change of the subject-compensated flow from pair (t, t+1) to pair (t+1, t+2), inside the masks at t.

    Each pixel p of subject s at t is followed to p' = p + a(p); with b'(p) = b(p') (bilinear) and m_a, m_b the
    subject's median (``how="median"``) or mean of a and b' over its mask,

        stability = 1/|M| sum_{p in M, p' inside} || (b'(p) - m_b) - (a(p) - m_a) ||     (pixels; 0 = steady)

    so a subject speeding up as a whole costs nothing; only its internal motion pattern changing does.

    Args:
        flow_a: (H, W, 2) flow t -> t+1.
        flow_b: (H, W, 2) flow t+1 -> t+2.
        masks: (H, W) labels at t.
        how: ``"median"`` or ``"mean"``.

    Returns:
        The mean change in pixels (``nan`` when no mask pixel stays inside the image).
    """
    if how not in ("median", "mean"):
        raise ValueError(f"how must be 'median' or 'mean', got {how!r}")
    a, b = _flow(flow_a, "flow_a"), _flow(flow_b, "flow_b")
    if a.shape != b.shape:
        raise ValueError(f"flow_a {a.shape} and flow_b {b.shape} differ")
    masks = _mask(masks, a.shape[:2], "masks")
    b_w, inside = warp_backward(b, a)  # (H, W, 2) b at the points a carries each pixel to
    lab = np.where(inside & np.isfinite(a).all(-1), masks, 0)
    if not (lab > 0).any():
        return math.nan
    ra = a - _subject_offsets(a, lab, how)
    rb = b_w - _subject_offsets(b_w, lab, how)
    return float(np.linalg.norm(rb - ra, axis=-1)[lab > 0].mean())


# ---- local flow against the pose ---------------------------------------------------------------------------------

COCO_HIPS = (11, 12)  # left and right hip in COCO-17: the pelvis is their midpoint


def joint_local_error(local: np.ndarray, masks: np.ndarray, kp_t: np.ndarray, kp_t1: np.ndarray, *,
                      min_confidence: float = 0.5, search_px: int = 4) -> float:
    """Local flow at the joints against each joint's motion relative to the pelvis (pixels; lower is better).

    For subject s (label s, row s-1 of the keypoints) with both hips confident at t and t+1, pelvis P = mid-hip, and
    every other joint j confident at t and t+1:

        error = mean over (s, j) of || l(x_j) - ((K_j(t+1) - K_j(t)) - (P(t+1) - P(t))) ||

    l(x_j) is the local flow at the pixel of s's mask nearest to joint j at t (within ``search_px``; a joint farther
    from s's mask is skipped). Predicting zero local flow scores the mean relative joint motion; subtracting each
    person's median flow from a flow method is the classical baseline.

    Args:
        local: (H, W, 2) local flow.
        masks: (H, W) labels at t.
        kp_t, kp_t1: (P, 17, 3) COCO-17 x, y, confidence at t and t+1, in the flow's pixels.
        min_confidence: joints (and hips) at or below it are not used.
        search_px: how far from the joint a pixel of the subject's mask may be.

    Returns:
        The mean error, ``nan`` when no joint qualifies.
    """
    local = _flow(local, "local")
    h, w = local.shape[:2]
    masks = _mask(masks, (h, w), "masks")
    kp_t, kp_t1 = np.asarray(kp_t, np.float64), np.asarray(kp_t1, np.float64)
    if kp_t.ndim != 3 or kp_t.shape[1:] != (17, 3) or kp_t1.shape != kp_t.shape:
        raise ValueError(f"kp_t and kp_t1 must both be (P, 17, 3), got {kp_t.shape} and {kp_t1.shape}")
    hips = list(COCO_HIPS)
    others = [j for j in range(17) if j not in COCO_HIPS]
    errs = []
    for s in range(kp_t.shape[0]):
        a, b = kp_t[s], kp_t1[s]
        if not ((a[hips, 2] > min_confidence).all() and (b[hips, 2] > min_confidence).all()):
            continue
        own = masks == s + 1
        if not own.any():
            continue
        pelvis = b[hips, :2].mean(0) - a[hips, :2].mean(0)
        # nearest pixel of the subject's mask for every pixel (distance transform over the complement)
        dist, labels = cv2.distanceTransformWithLabels((~own).astype(np.uint8), cv2.DIST_L2, 5,
                                                       labelType=cv2.DIST_LABEL_PIXEL)
        ys, xs = np.nonzero(own)
        lut = np.zeros(int(labels.max()) + 1, np.int64)
        lut[labels[ys, xs]] = np.arange(len(ys))
        for j in others:
            if a[j, 2] <= min_confidence or b[j, 2] <= min_confidence or not np.isfinite(a[j, :2]).all():
                continue
            x, y = int(round(a[j, 0])), int(round(a[j, 1]))
            if not (0 <= x < w and 0 <= y < h) or dist[y, x] > search_px:
                continue
            k = lut[labels[y, x]]
            rel = (b[j, :2] - a[j, :2]) - pelvis
            errs.append(float(np.linalg.norm(local[ys[k], xs[k]].astype(np.float64) - rel)))
    return float(np.mean(errs)) if errs else math.nan


# ---- with ground truth ------------------------------------------------------------------------------------------


def epe(flow: np.ndarray, gt: np.ndarray, mask: np.ndarray | None = None) -> float:
    """End-point error: mean_{p in M} ||u(p) - u_gt(p)|| in pixels (M = mask > 0, or every pixel; ``nan`` if empty)."""
    flow, gt = _flow(flow), _flow(gt, "gt")
    if flow.shape != gt.shape:
        raise ValueError(f"flow {flow.shape} and gt {gt.shape} differ")
    region = np.ones(flow.shape[:2], bool) if mask is None else _mask(mask, flow.shape[:2]) > 0
    return _masked_mean(np.linalg.norm(flow - gt, axis=-1), region)


def local_from_world(flow: np.ndarray, masks: np.ndarray, velocity: np.ndarray | None = None, *,
                     how: str = "median") -> np.ndarray:
    """Local flow u - v_s inside subject s's mask, 0 outside every mask.

    Args:
        flow: (H, W, 2) world flow.
        masks: (H, W) labels (k = subject k).
        velocity: (P, 2) v_s per subject (row k-1 for label k); None: each subject's median (or mean) flow in its
            mask, how a flow method without a subject network gets a local flow.
        how: ``"median"`` or ``"mean"`` (when ``velocity`` is None).

    Returns:
        (H, W, 2) float32.
    """
    flow = _flow(flow)
    masks = _mask(masks, flow.shape[:2], "masks").astype(np.int64)
    if velocity is None:
        return np.where((masks > 0)[..., None], flow - _subject_offsets(flow, masks, how), 0.0).astype(np.float32)
    v = np.asarray(velocity, np.float32).reshape(-1, 2)
    table = np.concatenate([np.zeros((1, 2), np.float32), v])  # (P+1, 2), row 0 the background
    per_pixel = table[np.clip(masks, 0, len(v))]
    inside = (masks > 0) & (masks <= len(v))
    return np.where(inside[..., None], flow - per_pixel, 0.0).astype(np.float32)


def local_flow_epe(local: np.ndarray, gt_flow: np.ndarray, masks: np.ndarray, gt_velocity: np.ndarray) -> float:
    """Local-flow error: mean over mask pixels of || l(p) - (u_gt(p) - v_gt,s) || (pixels).

    Args:
        local: (H, W, 2) predicted local flow.
        gt_flow: (H, W, 2) ground-truth flow.
        masks: (H, W) labels at t.
        gt_velocity: (P, 2) ground-truth subject velocities (row k-1 for label k).
    """
    gt_local = local_from_world(gt_flow, masks, gt_velocity)
    return epe(local, gt_local, masks)
