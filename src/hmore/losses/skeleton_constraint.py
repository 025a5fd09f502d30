"""The skeleton constraint F of H-MoRe (CVPR 2025, arXiv 2504.10676, section 3.2; hinge forms are ours, docs/hmore.md).

For each subject, n_k points are sampled along every COCO-17 bone at t and t+1; their displacements k are the motion
the skeleton prescribes. Each flow pixel p inside the subject's mask is matched to the skeleton point
q^ = argmin_q ( -||p - q|| log c_q ) (c_q its confidence, clamped to [floor, 0.999]), under no_grad. Then

    F_A = relu(cos 15deg - cos angle(u_p, k_q^))
    F_I = (relu(0.8 |k| - |u_p|) + relu(|u_p| - 1.2 |k|)) / |k|
    F   = 1 / (h w) * sum_p [F_A + beta F_I],  beta = 0.01,

averaged over the batch. Where |k| is below ``min_displacement`` (a joint at rest) the angle is meaningless: those
pixels get only the upper intensity hinge relu(|u| - 1.2 k0) / k0 with k0 = ``min_displacement``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from hmore.skeleton import COCO17

_BONES = torch.tensor(COCO17.bones, dtype=torch.long)  # (19, 2) parent, child


def _check(flow: torch.Tensor, kp_t: torch.Tensor, kp_t1: torch.Tensor, masks: torch.Tensor) -> None:
    if flow.ndim != 4 or flow.shape[1] != 2:
        raise ValueError(f"flow must be (B, 2, H, W), got {tuple(flow.shape)}")
    b, _, h, w = flow.shape
    if kp_t.ndim != 4 or kp_t.shape[0] != b or kp_t.shape[2:] != (17, 3):
        raise ValueError(f"kp_t must be (B, P, 17, 3) with B = {b} (COCO-17 x, y, confidence), got {tuple(kp_t.shape)}")
    if kp_t1.shape != kp_t.shape:
        raise ValueError(f"kp_t1 must have kp_t's shape {tuple(kp_t.shape)}, got {tuple(kp_t1.shape)}")
    if masks.shape != (b, h, w):
        raise ValueError(f"masks must be (B, H, W) = {(b, h, w)}, got {tuple(masks.shape)}")


def skeleton_points(kp_t: torch.Tensor, kp_t1: torch.Tensor, points_per_bone: int = 8,
                    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Points sampled along the COCO-17 bones at t, their displacement to t+1 and their confidence.

    Args:
        kp_t: (B, P, 17, 3) keypoints (x, y, confidence) at t.
        kp_t1: (B, P, 17, 3) the same people at t+1.
        points_per_bone: n_k, evenly spaced from parent to child, both ends included.

    Returns:
        ``(pos, disp, conf)``: (B, P, Q, 2) positions at t, (B, P, Q, 2) displacements, (B, P, Q) confidences with
        Q = 19 * n_k. A point's confidence interpolates its joints' and takes the lower of t and t+1.
    """
    bones = _BONES.to(kp_t.device)
    s = torch.linspace(0.0, 1.0, points_per_bone, device=kp_t.device, dtype=kp_t.dtype)[:, None]  # (n_k, 1)

    def along(kp: torch.Tensor) -> torch.Tensor:
        a, c = kp[:, :, bones[:, 0]], kp[:, :, bones[:, 1]]  # (B, P, 19, 3)
        pts = a[:, :, :, None] * (1 - s) + c[:, :, :, None] * s  # (B, P, 19, n_k, 3)
        return pts.flatten(2, 3)  # (B, P, Q, 3)

    p0, p1 = along(kp_t), along(kp_t1)
    pos, disp = p0[..., :2], p1[..., :2] - p0[..., :2]
    conf = torch.minimum(p0[..., 2], p1[..., 2])
    finite = torch.isfinite(pos).all(-1) & torch.isfinite(disp).all(-1) & torch.isfinite(conf)
    # A point with a NaN/inf coordinate is a missing joint: confidence 0, so it never matches.
    return torch.nan_to_num(pos), torch.nan_to_num(disp), torch.where(finite, conf, torch.zeros_like(conf))


@torch.no_grad()
def match_skeleton_points(masks: torch.Tensor, pos: torch.Tensor, conf: torch.Tensor, *,
                          conf_floor: float = 1e-3, conf_ceil: float = 0.999, min_confidence: float = 0.0,
                          chunk: int = 16384) -> tuple[torch.Tensor, torch.Tensor]:
    """Match every pixel of subject s's mask to argmin_q ( -||p - q|| log c_q ) over subject s's skeleton points.

    Args:
        masks: (B, H, W) labels, 0 background, k = 1..P subject k (labels above P are ignored).
        pos: (B, P, Q, 2) skeleton point positions (x, y) in pixels; pixel (i, j) is at x = j, y = i.
        conf: (B, P, Q) confidences; points at or below ``min_confidence`` (missing joints) never match.
        conf_floor, conf_ceil: the confidence is clamped to this range before its log (ceil < 1 keeps log c < 0).
        min_confidence: points with this confidence or lower are excluded.
        chunk: body pixels per distance block (bounds memory to chunk * Q).

    Returns:
        ``(index, matched)``: (B, H*W) long index into the subject's Q points, and (B, H*W) bool, True for pixels
        inside a subject that has at least one usable point.
    """
    b, h, w = masks.shape
    p, q = pos.shape[1], pos.shape[2]
    if p == 0 or q == 0:
        return (torch.zeros(b, h * w, dtype=torch.long, device=pos.device),
                torch.zeros(b, h * w, dtype=torch.bool, device=pos.device))
    labels = masks.reshape(b, h * w).long()  # (B, HW)
    usable = conf > min_confidence  # (B, P, Q)
    weight = -torch.log(conf.clamp(min=conf_floor, max=conf_ceil))  # (B, P, Q) > 0
    weight = torch.where(usable, weight, torch.full_like(weight, math.inf))
    has_point = usable.any(dim=2)  # (B, P)
    subj = (labels - 1).clamp(0, p - 1)  # (B, HW)
    matched = (labels >= 1) & (labels <= p) & torch.gather(has_point, 1, subj)  # (B, HW)
    index = torch.zeros(b, h * w, dtype=torch.long, device=pos.device)
    # Only the pixels inside subjects are matched, each against its own subject's Q points.
    bi, pi = matched.nonzero(as_tuple=True)  # (N,), (N,) batch and flat pixel index of each body pixel
    si = subj[bi, pi]  # (N,) subject of each body pixel
    for start in range(0, bi.numel(), chunk):
        b_c, p_c, s_c = bi[start:start + chunk], pi[start:start + chunk], si[start:start + chunk]
        xy = torch.stack([p_c % w, torch.div(p_c, w, rounding_mode="floor")], dim=1).to(pos.dtype)  # (n, 2)
        dist = torch.linalg.vector_norm(pos[b_c, s_c] - xy[:, None], dim=-1)  # (n, Q)
        score = dist * weight[b_c, s_c]  # (n, Q)
        score = torch.where(torch.isnan(score), torch.full_like(score, math.inf), score)  # 0 * inf -> never
        index[b_c, p_c] = score.argmin(dim=1)
    return index, matched


def skeleton_constraint_terms(flow: torch.Tensor, kp_t: torch.Tensor, kp_t1: torch.Tensor, masks: torch.Tensor, *,
                              points_per_bone: int = 8, angle_deg: float = 15.0, low: float = 0.8, high: float = 1.2,
                              min_displacement: float = 0.5, conf_floor: float = 1e-3, conf_ceil: float = 0.999,
                              min_confidence: float = 0.0, chunk: int = 16384) -> tuple[torch.Tensor, torch.Tensor]:
    """The angle and intensity terms of F separately: (1/(hw) sum_p F_A, 1/(hw) sum_p F_I), batch means.

    Args:
        flow: (B, 2, H, W) predicted flow (dx, dy) in pixels.
        kp_t: (B, P, 17, 3) COCO-17 keypoints (x, y, confidence) of the P subjects at t, in pixels.
        kp_t1: (B, P, 17, 3) the same subjects at t+1.
        masks: (B, H, W) subject labels at t: 0 background, k = 1..P subject k (row k-1 of the keypoints).
        points_per_bone: n_k.
        angle_deg: theta_a, the angle beyond which F_A is positive (paper: 15 degrees).
        low, high: the band [low, high] x |k| where F_I is 0 (paper: 0.8, 1.2).
        min_displacement: |k| (pixels) below which a point counts as at rest (intensity-only penalty).
        conf_floor, conf_ceil, min_confidence, chunk: see :func:`match_skeleton_points`.

    Returns:
        Two scalar tensors; both 0 (with a gradient path) when no pixel is matched.
    """
    _check(flow, kp_t, kp_t1, masks)
    b, _, h, w = flow.shape
    pos, disp, conf = skeleton_points(kp_t.float(), kp_t1.float(), points_per_bone)
    index, matched = match_skeleton_points(masks, pos, conf, conf_floor=conf_floor, conf_ceil=conf_ceil,
                                           min_confidence=min_confidence, chunk=chunk)
    p, q = pos.shape[1], pos.shape[2]
    labels = (masks.reshape(b, h * w).long() - 1).clamp(0, max(p - 1, 0))
    flat = labels * q + index  # (B, HW) index into the P*Q points
    if p == 0:
        k = flow.new_zeros(b, h * w, 2)
    else:
        k = torch.gather(disp.reshape(b, p * q, 2), 1, flat[..., None].expand(-1, -1, 2))  # (B, HW, 2)
    k = k.to(flow.dtype)
    u = flow.reshape(b, 2, h * w).transpose(1, 2)  # (B, HW, 2)
    eps = 1e-6
    u_norm = torch.sqrt((u * u).sum(-1) + eps**2)  # (B, HW), smooth at 0
    k_norm = torch.linalg.vector_norm(k, dim=-1)  # (B, HW), no gradient needed
    moving = k_norm >= min_displacement
    cos = (u * k).sum(-1) / (u_norm * k_norm.clamp_min(eps))
    f_angle = F.relu(math.cos(math.radians(angle_deg)) - cos) * moving
    k_safe = k_norm.clamp_min(min_displacement)
    f_moving = (F.relu(low * k_norm - u_norm) + F.relu(u_norm - high * k_norm)) / k_safe
    f_rest = F.relu(u_norm - high * min_displacement) / min_displacement
    f_int = torch.where(moving, f_moving, f_rest)
    weight = matched.to(flow.dtype) / (h * w)
    return (f_angle * weight).sum(1).mean(), (f_int * weight).sum(1).mean()


def skeleton_constraint(flow: torch.Tensor, kp_t: torch.Tensor, kp_t1: torch.Tensor, masks: torch.Tensor, *,
                        beta: float = 0.01, **kwargs: float) -> torch.Tensor:
    """F = 1/(hw) sum_p [F_A + beta F_I] (batch mean); keyword arguments as :func:`skeleton_constraint_terms`.

    Args:
        flow: (B, 2, H, W) predicted flow.
        kp_t: (B, P, 17, 3) keypoints at t.
        kp_t1: (B, P, 17, 3) keypoints at t+1.
        masks: (B, H, W) subject labels at t.
        beta: weight of the intensity term (paper: 0.01).

    Returns:
        A scalar tensor, 0 with a gradient path when no pixel lies in a subject.
    """
    f_angle, f_int = skeleton_constraint_terms(flow, kp_t, kp_t1, masks, **kwargs)
    return f_angle + beta * f_int
