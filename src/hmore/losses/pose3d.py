"""Losses of 2D-to-3D lifting (MotionBERT, docs/motionbert.md): MPJPE + 0.5 N-MPJPE + 20 velocity error for 3D
targets, and a confidence-weighted 2D error for data with 2D labels only. Metrics are in ``hmore.metrics.pose3d``."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from hmore.metrics.pose3d import mpjpe, n_mpjpe, velocity_error


@dataclass(frozen=True)
class LiftLossWeights:
    """Weights of the lifting loss terms (the paper's values by default)."""

    mpjpe: float = 1.0
    n_mpjpe: float = 0.5
    velocity: float = 20.0


@dataclass(frozen=True)
class LiftLossTerms:
    """The weighted total (a scalar tensor with gradient) and the unweighted terms (scalar tensors)."""

    total: torch.Tensor
    mpjpe: torch.Tensor
    n_mpjpe: torch.Tensor
    velocity: torch.Tensor


def lift_loss(pred: torch.Tensor, target: torch.Tensor, *,
              weights: LiftLossWeights = LiftLossWeights()) -> LiftLossTerms:  # noqa: B008 - frozen dataclass
    """The 3D lifting loss on (B, F, J, 3) predictions and targets (the same units, e.g. metres).

    Velocity needs F >= 2; with a single frame its term is zero.
    """
    if pred.shape != target.shape or pred.ndim != 4:
        raise ValueError(f"lift_loss expects pred and target (B, F, J, 3) of one shape, got {tuple(pred.shape)} "
                         f"and {tuple(target.shape)}")
    e = mpjpe(pred, target)
    n = n_mpjpe(pred, target)
    v = velocity_error(pred, target) if pred.shape[1] > 1 else pred.new_zeros(())
    total = weights.mpjpe * e + weights.n_mpjpe * n + weights.velocity * v
    return LiftLossTerms(total=total, mpjpe=e, n_mpjpe=n, velocity=v)


def confidence_weighted_2d_loss(pred_xy: torch.Tensor, target_xy: torch.Tensor,
                                confidence: torch.Tensor) -> torch.Tensor:
    """Confidence-weighted mean 2D joint distance, for samples with 2D labels only.

    Args:
        pred_xy: (..., J, 2) the prediction's x, y (e.g. the first two channels of a 3D output).
        target_xy: (..., J, 2) 2D labels.
        confidence: (..., J) weights in [0, 1]; zero for joints without a label.
    """
    if pred_xy.shape != target_xy.shape or pred_xy.shape[-1] != 2 or confidence.shape != pred_xy.shape[:-1]:
        raise ValueError(f"expected pred/target (..., J, 2) and confidence (..., J), got {tuple(pred_xy.shape)}, "
                         f"{tuple(target_xy.shape)}, {tuple(confidence.shape)}")
    dist = (pred_xy - target_xy).norm(dim=-1)  # (..., J)
    return (confidence * dist).sum() / confidence.sum().clamp_min(1e-6)
