"""Residual CNN encoders from an image to 1/8-resolution features (RAFT-small style bottleneck stages)."""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn

Norm = Literal["instance", "batch", "group", "none"]


def _norm(kind: Norm, channels: int) -> nn.Module:
    if kind == "instance":
        return nn.InstanceNorm2d(channels, affine=False)
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    if kind == "group":
        return nn.GroupNorm(max(1, channels // 8), channels)
    if kind == "none":
        return nn.Identity()
    raise ValueError(f"unknown norm {kind!r}; use instance, batch, group or none")


class BottleneckBlock(nn.Module):
    """1x1 -> 3x3 (strided) -> 1x1 convolutions with a residual connection (projected when the shape changes)."""

    def __init__(self, *, in_dim: int, out_dim: int, stride: int = 1, norm: Norm = "instance") -> None:
        super().__init__()
        mid = max(out_dim // 4, 1)
        self.body = nn.Sequential(
            nn.Conv2d(in_dim, mid, 1), _norm(norm, mid), nn.ReLU(inplace=True),
            nn.Conv2d(mid, mid, 3, stride=stride, padding=1), _norm(norm, mid), nn.ReLU(inplace=True),
            nn.Conv2d(mid, out_dim, 1), _norm(norm, out_dim), nn.ReLU(inplace=True),
        )
        if stride == 1 and in_dim == out_dim:
            self.skip: nn.Module = nn.Identity()
        else:
            self.skip = nn.Sequential(nn.Conv2d(in_dim, out_dim, 1, stride=stride), _norm(norm, out_dim))
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.skip(x) + self.body(x))


class ResidualEncoder(nn.Module):
    """Image (B, 3, H, W) -> features (B, out_dim, H/8, W/8): a 7x7 stride-2 stem and three bottleneck stages.

    Args:
        dims: widths of the stages at 1/2, 1/4 and 1/8 resolution.
        out_dim: output channels (a 1x1 projection).
        norm: normalisation inside the blocks (RAFT: instance for matching features, none for context).
    """

    def __init__(self, *, dims: tuple[int, int, int], out_dim: int, norm: Norm = "instance", in_dim: int = 3) -> None:
        super().__init__()
        d1, d2, d3 = dims
        self.stem = nn.Sequential(nn.Conv2d(in_dim, d1, 7, stride=2, padding=3), _norm(norm, d1), nn.ReLU(inplace=True))
        self.stages = nn.Sequential(
            BottleneckBlock(in_dim=d1, out_dim=d1, stride=1, norm=norm),
            BottleneckBlock(in_dim=d1, out_dim=d1, stride=1, norm=norm),
            BottleneckBlock(in_dim=d1, out_dim=d2, stride=2, norm=norm),
            BottleneckBlock(in_dim=d2, out_dim=d2, stride=1, norm=norm),
            BottleneckBlock(in_dim=d2, out_dim=d3, stride=2, norm=norm),
            BottleneckBlock(in_dim=d3, out_dim=d3, stride=1, norm=norm),
        )
        self.head = nn.Conv2d(d3, out_dim, 1)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.stages(self.stem(x)))  # (B, out_dim, H/8, W/8)
