"""Mesh metrics: mean per-vertex position error (MPVE), as MotionBERT reports it (root-aligned meshes)."""

from __future__ import annotations

import torch


def mpve(pred: torch.Tensor, target: torch.Tensor, weights: torch.Tensor | None = None) -> torch.Tensor:
    """Mean Euclidean distance between corresponding vertices (..., V, 3) of root-aligned meshes (input units);
    with ``weights`` (V,) a weighted mean over the vertices (e.g. their share of the surface, for a mesh whose vertex
    density varies: Anny's face holds a third of its vertices)."""
    if pred.shape != target.shape or pred.shape[-1] != 3:
        raise ValueError(f"mpve expects two (..., V, 3) tensors of one shape, got {tuple(pred.shape)} and "
                         f"{tuple(target.shape)}")
    d = (pred - target).norm(dim=-1)  # (..., V)
    if weights is None:
        return d.mean()
    if weights.shape != d.shape[-1:]:
        raise ValueError(f"mpve: weights must be ({d.shape[-1]},), got {tuple(weights.shape)}")
    return (d * (weights / weights.sum())).sum(dim=-1).mean()
