"""Mesh metrics: mean per-vertex position error (MPVE), as MotionBERT reports it (root-aligned meshes)."""

from __future__ import annotations

import torch


def mpve(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean Euclidean distance between corresponding vertices (..., V, 3) of root-aligned meshes (input units)."""
    if pred.shape != target.shape or pred.shape[-1] != 3:
        raise ValueError(f"mpve expects two (..., V, 3) tensors of one shape, got {tuple(pred.shape)} and "
                         f"{tuple(target.shape)}")
    return (pred - target).norm(dim=-1).mean()
