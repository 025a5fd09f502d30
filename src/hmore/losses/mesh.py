"""The mesh head's loss (MotionBERT's mesh loss, arXiv 2210.06551: vertices, joints, pose and shape parameters),
on decoded Anny meshes. Metrics live in ``hmore.metrics.mesh`` and ``hmore.metrics.pose3d``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import torch

from hmore.metrics.mesh import mpve
from hmore.metrics.pose3d import mpjpe


@dataclass(frozen=True)
class MeshLossWeights:
    """Weights of the terms: vertex and joint errors (metres), squared rotation-matrix error, squared phenotype
    error, and the vertices' frame-to-frame velocity error (metres)."""

    vertex: float = 1.0
    joint: float = 1.0
    rotation: float = 0.1
    phenotype: float = 0.1
    velocity: float = 1.0


class MeshLossTerms(NamedTuple):
    """The weighted total (with gradient) and the unweighted terms."""

    total: torch.Tensor
    vertex: torch.Tensor
    joint: torch.Tensor
    rotation: torch.Tensor
    phenotype: torch.Tensor
    velocity: torch.Tensor


def mesh_loss(*, vertices: torch.Tensor, vertices_gt: torch.Tensor, joints: torch.Tensor, joints_gt: torch.Tensor,
              rot: torch.Tensor, rot_gt: torch.Tensor, phenotype: torch.Tensor, phenotype_gt: torch.Tensor,
              weights: MeshLossWeights = MeshLossWeights()) -> MeshLossTerms:  # noqa: B008 - frozen dataclass
    """Loss of decoded meshes (B, F, V, 3), joints (B, F, 17, 3), rotations (B, F, G, 3, 3), phenotypes (B, 6)."""
    if vertices.shape != vertices_gt.shape or rot.shape != rot_gt.shape or phenotype.shape != phenotype_gt.shape:
        raise ValueError(f"mesh_loss: prediction and target shapes differ: {tuple(vertices.shape)} vs "
                         f"{tuple(vertices_gt.shape)}, {tuple(rot.shape)} vs {tuple(rot_gt.shape)}, "
                         f"{tuple(phenotype.shape)} vs {tuple(phenotype_gt.shape)}")
    v = mpve(vertices, vertices_gt)
    j = mpjpe(joints, joints_gt)
    r = (rot - rot_gt).square().sum(dim=(-1, -2)).mean()
    p = (phenotype - phenotype_gt).square().mean()
    if vertices.shape[1] > 1:
        vel = mpve(vertices[:, 1:] - vertices[:, :-1], vertices_gt[:, 1:] - vertices_gt[:, :-1])
    else:
        vel = vertices.new_zeros(())
    total = (weights.vertex * v + weights.joint * j + weights.rotation * r + weights.phenotype * p
             + weights.velocity * vel)
    return MeshLossTerms(total=total, vertex=v, joint=j, rotation=r, phenotype=p, velocity=vel)
