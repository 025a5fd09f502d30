"""Heads on a motion representation (B, F, J, C): action classification (MotionBERT's), embedding, and the
action models that put a backbone and a head together."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

from hmore.models.motion.input_norm import normalize_input
from hmore.registry import create_model, register_model


class ActionHead(nn.Module):
    """MotionBERT's action head: mean over time, flatten the joints, mean over persons, FC -> BN -> ReLU -> FC.

    Args:
        rep_dim: width C of the representation.
        num_joints: J.
        num_classes: number of actions.
        hidden: width of the hidden layer (2048 in the paper).
        dropout: dropout on the pooled feature.
    """

    def __init__(self, *, rep_dim: int, num_joints: int = 17, num_classes: int, hidden: int = 2048,
                 dropout: float = 0.0) -> None:
        super().__init__()
        self.drop = nn.Dropout(dropout)
        self.fc1 = nn.Linear(rep_dim * num_joints, hidden)
        self.bn = nn.BatchNorm1d(hidden)
        self.fc2 = nn.Linear(hidden, num_classes)

    def forward(self, rep: torch.Tensor) -> torch.Tensor:
        """(N, M, T, J, C) features of M persons -> (N, classes) logits."""
        if rep.ndim != 5:
            raise ValueError(f"ActionHead expects (N, M, T, J, C), got {tuple(rep.shape)}")
        pooled = rearrange(rep.mean(dim=2), "n m j c -> n m (j c)").mean(dim=1)  # (N, J*C)
        return self.fc2(F.relu(self.bn(self.fc1(self.drop(pooled)))))


class EmbeddingHead(nn.Module):
    """A unit-length clip embedding: mean over time, flatten joints, mean over persons, Linear, L2-normalise."""

    def __init__(self, *, rep_dim: int, num_joints: int = 17, embed_dim: int = 256) -> None:
        super().__init__()
        self.fc = nn.Linear(rep_dim * num_joints, embed_dim)

    def forward(self, rep: torch.Tensor) -> torch.Tensor:
        """(N, M, T, J, C) -> (N, embed_dim) with unit norm."""
        if rep.ndim != 5:
            raise ValueError(f"EmbeddingHead expects (N, M, T, J, C), got {tuple(rep.shape)}")
        pooled = rearrange(rep.mean(dim=2), "n m j c -> n m (j c)").mean(dim=1)
        return F.normalize(self.fc(pooled), dim=-1)


class ActionClassifier(nn.Module):
    """A backbone with ``forward_features`` (B, F, J, 3) -> (B, F, J, C) and an :class:`ActionHead`.

    Args:
        backbone: e.g. a :class:`~hmore.models.motion.dstformer.DSTformer`.
        head: the classification head.
    """

    def __init__(self, *, backbone: nn.Module, head: nn.Module) -> None:
        super().__init__()
        self.backbone = backbone
        self.head = head

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """(N, M, T, J, 3) -> (N, M, T, J, C)."""
        if x.ndim != 5:
            raise ValueError(f"ActionClassifier expects (N, M, T, J, 3), got {tuple(x.shape)}")
        n = x.shape[0]
        rep = self.backbone.forward_features(rearrange(x, "n m t j c -> (n m) t j c"))
        return rearrange(rep, "(n m) t j c -> n m t j c", n=n)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, M, T, J, 3) -> (N, classes) logits."""
        return self.head(self.forward_features(x))


class PoseStatsBackbone(nn.Module):
    """Baseline 'backbone' without learning across time: per-frame joint positions and velocities as features
    (after the same root-centred, scale-normalised input as dstformer_cpu)."""

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """(B, F, J, 3) -> (B, F, J, 6): x, y, confidence and their absolute frame-to-frame differences."""
        x = normalize_input(x, "root_scale")
        vel = torch.diff(x, dim=1, prepend=x[:, :1])
        return torch.cat([x, vel.abs()], dim=-1)


@register_model
def dstformer_action(*, backbone: str = "dstformer_cpu", num_classes: int = 10, hidden: int = 512,
                     dropout: float = 0.2, **backbone_overrides) -> ActionClassifier:
    """A DSTformer backbone (registered name) with MotionBERT's action head (hidden 2048 in the paper)."""
    bb = create_model(backbone, **backbone_overrides)
    head = ActionHead(rep_dim=bb.config.rep_dim, num_joints=bb.config.num_joints, num_classes=num_classes,
                      hidden=hidden, dropout=dropout)
    return ActionClassifier(backbone=bb, head=head)


@register_model
def pose_stats_action(*, num_classes: int = 10, hidden: int = 256, dropout: float = 0.2) -> ActionClassifier:
    """The simple action baseline: the same head on time-averaged pose and absolute velocity (no transformer)."""
    return ActionClassifier(backbone=PoseStatsBackbone(),
                            head=ActionHead(rep_dim=6, num_classes=num_classes, hidden=hidden, dropout=dropout))


@register_model
def dstformer_action_test(**overrides) -> ActionClassifier:
    """Tiny action model for tests."""
    return dstformer_action(**{"backbone": "dstformer_test", "num_classes": 4, "hidden": 32, **overrides})
