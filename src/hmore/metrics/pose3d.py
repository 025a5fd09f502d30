"""3D pose errors on (..., J, 3) joint arrays (torch tensors; numpy arrays are accepted and converted).

* :func:`mpjpe`: mean per-joint position error (Protocol 1).
* :func:`n_mpjpe`: MPJPE after the least-squares scale of the prediction onto the target (Rhodin et al. 2018).
* :func:`p_mpjpe`: MPJPE after Procrustes alignment (rotation, scale, translation) per pose (Protocol 2).
* :func:`velocity_error`: mean error of the frame-to-frame joint velocities (MPJVE), frames on axis ``-3``.

Each returns the mean over every leading axis as a 0-d tensor in the inputs' units, unless ``reduce=False``,
when it returns the per-pose errors (..., ) (for velocity: one fewer frame).
"""

from __future__ import annotations

import numpy as np
import torch


def _as_tensors(pred, target) -> tuple[torch.Tensor, torch.Tensor]:
    p = torch.as_tensor(np.asarray(pred) if not isinstance(pred, torch.Tensor) else pred)
    t = torch.as_tensor(np.asarray(target) if not isinstance(target, torch.Tensor) else target)
    if p.shape != t.shape or p.ndim < 2 or p.shape[-1] != 3:
        raise ValueError(f"pred and target must have the same shape (..., J, 3), got {tuple(p.shape)} and "
                         f"{tuple(t.shape)}")
    if not p.is_floating_point():
        p = p.double()
    return p, t.to(p.dtype)


def _reduce(err: torch.Tensor, reduce: bool) -> torch.Tensor:
    return err.mean() if reduce else err


def mpjpe(pred, target, *, reduce: bool = True) -> torch.Tensor:
    """Mean Euclidean distance between predicted and target joints."""
    p, t = _as_tensors(pred, target)
    return _reduce((p - t).norm(dim=-1).mean(dim=-1), reduce)


def n_mpjpe(pred, target, *, reduce: bool = True) -> torch.Tensor:
    """MPJPE after scaling each predicted pose by ``s = <p, t> / <p, p>`` (the least-squares scale)."""
    p, t = _as_tensors(pred, target)
    num = (p * t).sum(dim=(-1, -2), keepdim=True)
    den = (p * p).sum(dim=(-1, -2), keepdim=True).clamp_min(1e-12)
    return mpjpe(p * (num / den), t, reduce=reduce)


def procrustes_align(pred, target) -> torch.Tensor:
    """``pred`` (..., J, 3) moved by the similarity transform (R, s, t) that best fits it onto ``target``.

    Vectorised over leading axes (one batched SVD). Reflections are excluded (det R = +1).
    """
    p, t = _as_tensors(pred, target)
    mu_p, mu_t = p.mean(dim=-2, keepdim=True), t.mean(dim=-2, keepdim=True)
    p0, t0 = p - mu_p, t - mu_t
    norm_p = (p0 * p0).sum(dim=(-1, -2), keepdim=True).clamp_min(1e-12)
    h = p0.transpose(-1, -2) @ t0  # (..., 3, 3) cross-covariance
    u, s, vh = torch.linalg.svd(h)
    # Flip the last singular direction where U V^T would be a reflection.
    d = torch.sign(torch.linalg.det(vh.transpose(-1, -2) @ u.transpose(-1, -2)))
    d = torch.where(d == 0, torch.ones_like(d), d)
    sign = torch.ones_like(s)
    sign[..., -1] = d
    rot = vh.transpose(-1, -2) @ (sign[..., :, None] * u.transpose(-1, -2))  # (..., 3, 3): t0 ~ s * R p0
    scale = (s * sign).sum(dim=-1)[..., None, None] / norm_p
    return scale * (p0 @ rot.transpose(-1, -2)) + mu_t


def p_mpjpe(pred, target, *, reduce: bool = True) -> torch.Tensor:
    """MPJPE after Procrustes alignment of each pose."""
    p, t = _as_tensors(pred, target)
    return mpjpe(procrustes_align(p, t), t, reduce=reduce)


def velocity_error(pred, target, *, reduce: bool = True) -> torch.Tensor:
    """Mean distance between predicted and target joint velocities; frames on axis -3: (..., F, J, 3)."""
    p, t = _as_tensors(pred, target)
    if p.ndim < 3 or p.shape[-3] < 2:
        raise ValueError(f"velocity_error needs (..., F >= 2, J, 3), got {tuple(p.shape)}")
    return mpjpe(torch.diff(p, dim=-3), torch.diff(t, dim=-3), reduce=reduce)
