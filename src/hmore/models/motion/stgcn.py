"""An ST-GCN-style graph network (Yan, Xiong, Lin, AAAI 2018) as a skeleton backbone for action recognition.

Each block: a spatial graph convolution over the joints with the "spatial configuration" partition of the skeleton
graph (three adjacency matrices: the joint itself, its neighbour nearer the root, its neighbours farther from it,
each normalised by the neighbour count), then a temporal convolution over frames (kernel ``temporal_kernel``),
batch norm, ReLU, a residual connection. The input goes through a batch norm over (joint, channel) first. Its
input can be several streams stacked on the channel axis (``streams``: the joints, the bones = joint minus its
parent, the velocities = next frame minus this one, CTR-GCN's inputs). The graph is H36M-17's or, with
``layout="kinect20"``, Kinect v1's 20 joints (:data:`hmore.skeleton.KINECT20`: hands, feet and a spine joint). Its
``forward_features`` returns (B, F', J, C) features (F' = F / 2 per strided block), so
:class:`hmore.models.motion.heads.ActionHead` pools it like the DSTformer's representation.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from einops import rearrange
from torch import nn

from hmore.registry import register_model
from hmore.skeleton import H36M17, KINECT20, Layout


def partition_adjacency(layout: Layout = H36M17, root: int = 0) -> np.ndarray:
    """(3, J, J) adjacency of the spatial-configuration partition: ``A[k, i, j]`` = weight of joint ``i`` in the
    update of joint ``j``; k = 0 itself, 1 the neighbour nearer the root, 2 the neighbours farther from it. Each
    column of each partition sums to 1 (or 0)."""
    j = layout.num_joints
    hops = np.full(j, np.inf)
    hops[root] = 0
    adj = np.zeros((j, j), bool)
    for a, b in layout.bones:
        adj[a, b] = adj[b, a] = True
    frontier = [root]
    while frontier:  # breadth-first distances from the root
        nxt = []
        for v in frontier:
            for u in np.flatnonzero(adj[v]):
                if hops[u] == np.inf:
                    hops[u] = hops[v] + 1
                    nxt.append(u)
        frontier = nxt
    out = np.zeros((3, j, j))
    for v in range(j):
        out[0, v, v] = 1.0
        for u in np.flatnonzero(adj[v]):
            out[1 if hops[u] < hops[v] else 2, u, v] = 1.0
    col = out.sum(axis=1, keepdims=True)
    return out / np.where(col > 0, col, 1.0)


STREAMS = ("joint", "bone", "velocity")
#: Skeleton graphs by name (``STGCNConfig.layout``): H36M-17, or Kinect v1's 20 joints with hands and feet.
GRAPHS: dict[str, Layout] = {"h36m17": H36M17, "kinect20": KINECT20}


def input_streams(x: torch.Tensor, streams: Sequence[str], parents: Sequence[int]) -> torch.Tensor:
    """(B, F, J, C) joints -> (B, F, J, C * len(streams)): each stream in order; bones are joint minus parent (0 at
    the root), velocities next frame minus this one (0 at the last frame)."""
    out = []
    for name in streams:
        if name == "joint":
            out.append(x)
        elif name == "bone":
            out.append(x - x[:, :, list(parents)])
        else:
            out.append(torch.cat([x[:, 1:] - x[:, :-1], torch.zeros_like(x[:, :1])], dim=1))
    return torch.cat(out, dim=-1)


@dataclass(frozen=True)
class STGCNConfig:
    """Attributes: input channels per stream, output channels of each block, which blocks halve the frame rate,
    temporal kernel size, dropout, joint count (the graph's), input streams (``joint``, ``bone``, ``velocity``;
    stacked on the channel axis), the skeleton graph (:data:`GRAPHS`: ``h36m17`` or ``kinect20``)."""

    in_dim: int = 3
    channels: tuple[int, ...] = (64, 64, 64, 128, 128, 128)
    strides: tuple[int, ...] = (1, 1, 1, 2, 1, 1)
    temporal_kernel: int = 9
    dropout: float = 0.1
    num_joints: int = 17
    streams: tuple[str, ...] = ("joint",)
    layout: str = "h36m17"

    def __post_init__(self) -> None:
        if self.layout not in GRAPHS:
            raise ValueError(f"layout must be one of {tuple(GRAPHS)}, got {self.layout!r}")
        if self.num_joints != GRAPHS[self.layout].num_joints:
            raise ValueError(f"the {self.layout} graph has {GRAPHS[self.layout].num_joints} joints, num_joints is "
                             f"{self.num_joints}")
        if not self.streams or set(self.streams) - set(STREAMS) or len(set(self.streams)) != len(self.streams):
            raise ValueError(f"streams must be distinct names from {STREAMS}, got {self.streams}")
        if len(self.channels) != len(self.strides) or not self.channels:
            raise ValueError(f"channels and strides need the same, non-zero length: {self}")
        if self.temporal_kernel % 2 == 0:
            raise ValueError(f"temporal_kernel must be odd, got {self.temporal_kernel}")


class GraphBlock(nn.Module):
    """Spatial graph convolution (3 partitions) -> BN -> ReLU -> temporal conv -> BN, residual, ReLU."""

    def __init__(self, *, cin: int, cout: int, stride: int, kernel: int, dropout: float,
                 adjacency: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("adjacency", adjacency, persistent=False)  # (K, J, J)
        k = adjacency.shape[0]
        self.spatial = nn.Conv2d(cin, cout * k, 1)
        self.k = k
        self.temporal = nn.Sequential(
            nn.BatchNorm2d(cout), nn.ReLU(),
            nn.Conv2d(cout, cout, (kernel, 1), stride=(stride, 1), padding=(kernel // 2, 0)),
            nn.BatchNorm2d(cout), nn.Dropout(dropout),
        )
        if cin == cout and stride == 1:
            self.residual: nn.Module = nn.Identity()
        else:
            self.residual = nn.Sequential(nn.Conv2d(cin, cout, 1, stride=(stride, 1)), nn.BatchNorm2d(cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, F, J) -> (B, C', F', J)."""
        h = rearrange(self.spatial(x), "b (k c) f j -> b k c f j", k=self.k)
        h = torch.einsum("bkcfi,kij->bcfj", h, self.adjacency)
        return torch.relu(self.temporal(h) + self.residual(x))


class STGCN(nn.Module):
    """ST-GCN backbone: (B, F, J, in_dim) -> features (B, F', J, C).

    Args:
        config: the architecture.
    """

    def __init__(self, *, config: STGCNConfig) -> None:
        super().__init__()
        c = config
        self.config = c
        graph = GRAPHS[c.layout]
        adj = torch.from_numpy(partition_adjacency(graph)).float()
        self.parents = tuple(j if p < 0 else p for j, p in enumerate(graph.parents))  # the root: its own parent
        self.data_bn = nn.BatchNorm1d(c.num_joints * c.in_dim * len(c.streams))
        blocks = []
        cin = c.in_dim * len(c.streams)
        for cout, stride in zip(c.channels, c.strides):
            blocks.append(GraphBlock(cin=cin, cout=cout, stride=stride, kernel=c.temporal_kernel, dropout=c.dropout,
                                     adjacency=adj))
            cin = cout
        self.blocks = nn.Sequential(*blocks)

    @property
    def rep_dim(self) -> int:
        return self.config.channels[-1]

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """(B, F, J, C_in) -> (B, F', J, C)."""
        c = self.config
        if x.ndim != 4 or x.shape[2] != c.num_joints or x.shape[3] != c.in_dim:
            raise ValueError(f"STGCN expects (B, F, {c.num_joints}, {c.in_dim}), got {tuple(x.shape)}")
        if c.streams != ("joint",):
            x = input_streams(x, c.streams, self.parents)  # (B, F, J, C * streams)
        h = self.data_bn(rearrange(x, "b f j c -> b (j c) f"))
        h = rearrange(h, "b (j c) f -> b c f j", j=c.num_joints)
        return rearrange(self.blocks(h), "b c f j -> b f j c")


def _stgcn_action(num_classes: int, hidden: int, dropout: float, config: dict) -> nn.Module:
    from hmore.models.motion.heads import ActionClassifier, ActionHead

    bb = STGCN(config=STGCNConfig(**config))
    head = ActionHead(rep_dim=bb.rep_dim, num_joints=bb.config.num_joints, num_classes=num_classes, hidden=hidden,
                      dropout=dropout)
    return ActionClassifier(backbone=bb, head=head)


@register_model
def stgcn_action(*, num_classes: int = 10, hidden: int = 256, dropout: float = 0.3,
                 channels: Sequence[int] = (64, 64, 64, 128, 128, 128), strides: Sequence[int] = (1, 1, 1, 2, 1, 1),
                 **config) -> nn.Module:
    """The ST-GCN-style action baseline (6 graph blocks, 64-128 channels) with MotionBERT's action head; ``layout``
    ``kinect20`` (with ``num_joints`` 20 by default) takes Kinect v1's 20 joints on their own graph."""
    if "streams" in config:
        config = {**config, "streams": tuple(config["streams"])}
    if "num_joints" not in config and "layout" in config and config["layout"] in GRAPHS:
        config = {**config, "num_joints": GRAPHS[config["layout"]].num_joints}
    return _stgcn_action(num_classes, hidden, dropout, {"channels": tuple(channels), "strides": tuple(strides),
                                                        **config})


@register_model
def stgcn_action_test(**overrides) -> nn.Module:
    """A tiny ST-GCN action model for tests."""
    return stgcn_action(**{"num_classes": 4, "hidden": 16, "channels": (8, 16), "strides": (1, 2),
                           "temporal_kernel": 3, **overrides})
