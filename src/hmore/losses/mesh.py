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
    error, and the vertices' frame-to-frame velocity error (metres); ``h36m``: weight of the joint-only loss of
    Human3.6M windows (:func:`joint_loss`) beside the mesh loss of generated ones."""

    vertex: float = 1.0
    joint: float = 1.0
    rotation: float = 0.1
    phenotype: float = 0.1
    velocity: float = 1.0
    h36m: float = 1.0


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


class JointLossTerms(NamedTuple):
    """The weighted total (with gradient) and the unweighted terms of :func:`joint_loss`."""

    total: torch.Tensor
    joint: torch.Tensor
    phenotype: torch.Tensor
    velocity: torch.Tensor


def joint_loss(*, joints: torch.Tensor, joints_gt: torch.Tensor, phenotype: torch.Tensor, phenotype_gt: torch.Tensor,
               has_phenotype: torch.Tensor,
               weights: MeshLossWeights = MeshLossWeights()) -> JointLossTerms:  # noqa: B008 - frozen dataclass
    """Loss of windows with joints only (Human3.6M): decoded joints (B, F, 17, 3) against true ones, their velocity,
    and phenotypes (B, 6) against targets where ``has_phenotype`` (B,) bool; weighted by ``weights.joint``,
    ``weights.velocity`` and ``weights.phenotype`` (``weights.h36m`` is applied by the caller)."""
    if joints.shape != joints_gt.shape or phenotype.shape != phenotype_gt.shape:
        raise ValueError(f"joint_loss: prediction and target shapes differ: {tuple(joints.shape)} vs "
                         f"{tuple(joints_gt.shape)}, {tuple(phenotype.shape)} vs {tuple(phenotype_gt.shape)}")
    j = mpjpe(joints, joints_gt)
    m = has_phenotype.to(phenotype.dtype)[:, None]  # (B, 1)
    p = ((phenotype - phenotype_gt).square() * m).sum() / (m.sum() * phenotype.shape[1]).clamp(min=1)
    if joints.shape[1] > 1:
        vel = mpjpe(joints[:, 1:] - joints[:, :-1], joints_gt[:, 1:] - joints_gt[:, :-1])
    else:
        vel = joints.new_zeros(())
    total = weights.joint * j + weights.phenotype * p + weights.velocity * vel
    return JointLossTerms(total=total, joint=j, phenotype=p, velocity=vel)
