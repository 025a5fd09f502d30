"""MotionBERT's mesh head on the DSTformer backbone, regressing an Anny body (arXiv 2210.06551, section 3.3).

MotionBERT's head regresses SMPL pose and shape from the motion representation: per frame, the joints' features are
flattened and mapped to the pose; the shape comes from the features pooled over time. Here the body is Anny (SMPL
is licence-gated): per frame, one rotation per bone group (24, :func:`hmore.synth.retarget.rig_groups`) in the
camera frame, as 6D vectors (Zhou et al., CVPR 2019, arXiv 1812.07035) turned into matrices by Gram-Schmidt; per
clip, the six phenotype values in [0, 1]. :class:`hmore.mesh.decoder.BodyDecoder` turns them into vertices.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

from hmore.registry import create_model, register_model

NUM_GROUPS = 24
NUM_PHENOTYPES = 6


class MeshParams(NamedTuple):
    """rot6d (B, F, G, 6), rot (B, F, G, 3, 3) camera-frame rest -> posed rotations, phenotype (B, 6) in [0, 1]."""

    rot6d: torch.Tensor
    rot: torch.Tensor
    phenotype: torch.Tensor


def rot6d_to_matrix(x: torch.Tensor) -> torch.Tensor:
    """(..., 6) -> (..., 3, 3) rotation matrices whose first two columns are the Gram-Schmidt of the two 3-vectors."""
    if x.shape[-1] != 6:
        raise ValueError(f"rot6d_to_matrix expects (..., 6), got {tuple(x.shape)}")
    a1, a2 = x[..., :3], x[..., 3:]
    b1 = F.normalize(a1, dim=-1)
    b2 = F.normalize(a2 - (b1 * a2).sum(-1, keepdim=True) * b1, dim=-1)
    return torch.stack([b1, b2, torch.cross(b1, b2, dim=-1)], dim=-1)


def matrix_to_rot6d(r: torch.Tensor) -> torch.Tensor:
    """(..., 3, 3) -> (..., 6): the first two columns."""
    return torch.cat([r[..., 0], r[..., 1]], dim=-1)


class AnnyMeshHead(nn.Module):
    """Motion representation (B, F, J, C) -> :class:`MeshParams`.

    Args:
        rep_dim: width C of the representation. num_joints: J.
        num_groups: rotations per frame. num_phenotypes: shape values per clip.
        hidden: width of the shared hidden layer (1024 in MotionBERT).
        dropout: dropout on the hidden layer.
    """

    def __init__(self, *, rep_dim: int, num_joints: int = 17, num_groups: int = NUM_GROUPS,
                 num_phenotypes: int = NUM_PHENOTYPES, hidden: int = 512, dropout: float = 0.1) -> None:
        super().__init__()
        self.num_groups = num_groups
        self.fc = nn.Linear(rep_dim * num_joints, hidden)
        self.norm = nn.LayerNorm(hidden)
        self.drop = nn.Dropout(dropout)
        self.pose = nn.Linear(hidden, num_groups * 6)
        self.shape = nn.Linear(hidden, num_phenotypes)
        nn.init.zeros_(self.pose.weight)
        with torch.no_grad():  # start at the identity rotation
            self.pose.bias.copy_(torch.tensor([1.0, 0.0, 0.0, 0.0, 1.0, 0.0]).repeat(num_groups))
        nn.init.zeros_(self.shape.weight)
        nn.init.zeros_(self.shape.bias)  # phenotype 0.5: Anny's average

    def forward(self, rep: torch.Tensor) -> MeshParams:
        if rep.ndim != 4:
            raise ValueError(f"AnnyMeshHead expects (B, F, J, C), got {tuple(rep.shape)}")
        h = self.drop(F.gelu(self.norm(self.fc(rearrange(rep, "b f j c -> b f (j c)")))))  # (B, F, hidden)
        rot6d = rearrange(self.pose(h), "b f (g s) -> b f g s", g=self.num_groups, s=6)
        phenotype = torch.sigmoid(self.shape(h.mean(dim=1)))  # (B, 6)
        return MeshParams(rot6d=rot6d, rot=rot6d_to_matrix(rot6d), phenotype=phenotype)


class MeshRegressor(nn.Module):
    """A backbone with ``forward_features`` (B, F, J, 3) -> (B, F, J, C) and an :class:`AnnyMeshHead`."""

    def __init__(self, *, backbone: nn.Module, head: AnnyMeshHead) -> None:
        super().__init__()
        self.backbone = backbone
        self.head = head

    @property
    def config(self):  # the backbone's (max_len, num_joints ...), as inference code reads it
        return self.backbone.config

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.backbone.forward_features(x)

    def forward_head(self, rep: torch.Tensor) -> MeshParams:
        return self.head(rep)

    def forward(self, x: torch.Tensor) -> MeshParams:
        """(B, F, 17, 3) normalised 2D + confidence (``hmore.lift.data``) -> :class:`MeshParams`."""
        return self.forward_head(self.forward_features(x))


@register_model
def dstformer_mesh(*, backbone: str = "dstformer_cpu", hidden: int = 512, dropout: float = 0.1,
                   **backbone_overrides) -> MeshRegressor:
    """A DSTformer backbone (registered name) with the Anny mesh head."""
    bb = create_model(backbone, **backbone_overrides)
    head = AnnyMeshHead(rep_dim=bb.config.rep_dim, num_joints=bb.config.num_joints, hidden=hidden, dropout=dropout)
    return MeshRegressor(backbone=bb, head=head)


@register_model
def dstformer_mesh_test(**overrides) -> MeshRegressor:
    """Tiny mesh model for tests."""
    return dstformer_mesh(**{"backbone": "dstformer_test", "hidden": 32, **overrides})
