"""Loss of the subject network Psi: L1 between predicted v_s and the subject's target motion (docs/hmore.md, ours).

Targets: on real video, the confidence-weighted displacement of the hip centre from the pose estimate
(:func:`hip_centre_displacement`); on synthetic clips, the generator's exact projected root displacement
(``subject_velocity`` (T-1, P, 2) of a clip) with weight 1 for present subjects.
"""

from __future__ import annotations

import torch

from hmore.skeleton import COCO17

_LEFT_HIP = COCO17.index("left_hip")
_RIGHT_HIP = COCO17.index("right_hip")


def hip_centre_displacement(kp_t: torch.Tensor, kp_t1: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Target motion of each subject from COCO-17 keypoints: the hip centre's displacement from t to t+1.

    The hip centre is the confidence-weighted mean of the two hips; the weight of the target is the mean hip
    confidence, taking the lower of t and t+1 (0 when a frame has no confident hip or a coordinate is not finite).

    Args:
        kp_t: (B, P, 17, 3) keypoints (x, y, confidence) at t.
        kp_t1: (B, P, 17, 3) the same subjects at t+1.

    Returns:
        ``(target, weight)``: (B, P, 2) displacements in pixels and (B, P) weights in [0, 1].
    """
    if kp_t.ndim != 4 or kp_t.shape[2:] != (17, 3) or kp_t1.shape != kp_t.shape:
        raise ValueError(f"kp_t and kp_t1 must both be (B, P, 17, 3), got {tuple(kp_t.shape)} and {tuple(kp_t1.shape)}")

    def centre(kp: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        hips = kp[:, :, [_LEFT_HIP, _RIGHT_HIP]]  # (B, P, 2, 3)
        ok = torch.isfinite(hips).all(-1)
        conf = torch.where(ok, hips[..., 2].clamp(0, 1), torch.zeros_like(hips[..., 2]))  # (B, P, 2)
        xy = torch.nan_to_num(hips[..., :2])
        total = conf.sum(-1, keepdim=True)  # (B, P, 1)
        c = (xy * conf[..., None]).sum(-2) / total.clamp_min(1e-6)  # (B, P, 2)
        return c, conf.mean(-1)

    c0, w0 = centre(kp_t)
    c1, w1 = centre(kp_t1)
    return c1 - c0, torch.minimum(w0, w1)


def subject_velocity_loss(pred: torch.Tensor, target: torch.Tensor,
                          weight: torch.Tensor | None = None) -> torch.Tensor:
    """Weighted mean over subjects of the L1 distance |v_s - target_s| (summed over x and y).

    Args:
        pred: (B, P, 2) subject velocities from Psi, pixels.
        target: (B, P, 2) target displacements; non-finite rows are ignored.
        weight: (B, P) per-subject weights (0 = absent subject, masked out; bool allowed), or None for all ones.

    Returns:
        A scalar tensor; 0 with a gradient path when no subject has weight.
    """
    if pred.ndim != 3 or pred.shape[2] != 2:
        raise ValueError(f"pred must be (B, P, 2), got {tuple(pred.shape)}")
    if target.shape != pred.shape:
        raise ValueError(f"target must have pred's shape {tuple(pred.shape)}, got {tuple(target.shape)}")
    if weight is None:
        weight = pred.new_ones(pred.shape[:2])
    elif weight.shape != pred.shape[:2]:
        raise ValueError(f"weight must be (B, P) = {tuple(pred.shape[:2])}, got {tuple(weight.shape)}")
    w = weight.to(pred.dtype) * torch.isfinite(target).all(-1).to(pred.dtype)  # (B, P)
    err = (pred - torch.nan_to_num(target)).abs().sum(-1)  # (B, P)
    return (err * w).sum() / w.sum().clamp_min(1e-6)
