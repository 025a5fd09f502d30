"""A small (2+1)D CNN video classifier (Tran et al., "A Closer Look at Spatiotemporal Convolutions for Action
Recognition", CVPR 2018): every 3D convolution is split into a spatial (1 x k x k) and a temporal (k x 1 x 1) one.

Input (B, C, T, H, W): RGB and any flow channels stacked per frame (early fusion: flow channels only widen the first
convolution, the paper's "plug and play" use), or flow channels alone (``r2plus1d_flow``: the flow stream of a
two-stream classifier, :mod:`hmore.models.fusion`). Output: (B, num_classes) logits.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from hmore.config import from_dict, to_dict
from hmore.models.fusion import scale_extra_inputs
from hmore.registry import register_model


@dataclass(frozen=True)
class R2Plus1DConfig:
    """Attributes:
        in_channels: channels per frame (3 RGB + flow channels).
        widths: channels of the stem and of each stage.
        spatial_strides, temporal_strides: stride of each stage.
        stem_stride: spatial stride of the stem.
        num_classes: classes.
        dropout: before the classifier.
        extra_init_scale: the stem's initial weights on the input channels after the first three (RGB), i.e. the
            flow, are multiplied by this (0: the network starts as an RGB-only one; :mod:`hmore.models.fusion`).
    """

    in_channels: int = 3
    widths: tuple[int, ...] = (16, 32, 64, 128)
    spatial_strides: tuple[int, ...] = (2, 2, 2, 1)
    temporal_strides: tuple[int, ...] = (1, 2, 2, 1)
    stem_stride: int = 2
    num_classes: int = 12
    dropout: float = 0.3
    extra_init_scale: float = 1.0

    def __post_init__(self) -> None:
        if not (len(self.widths) == len(self.spatial_strides) == len(self.temporal_strides) >= 1):
            raise ValueError("R2Plus1DConfig: widths, spatial_strides and temporal_strides need the same length")
        if self.in_channels < 1 or self.num_classes < 1:
            raise ValueError("R2Plus1DConfig: in_channels and num_classes must be >= 1")


class Conv2Plus1D(nn.Sequential):
    """Spatial 1 x 3 x 3 convolution, BN, ReLU, temporal 3 x 1 x 1 convolution."""

    def __init__(self, *, in_ch: int, out_ch: int, stride: tuple[int, int]) -> None:
        mid = out_ch
        ts, ss = stride
        super().__init__(nn.Conv3d(in_ch, mid, (1, 3, 3), (1, ss, ss), (0, 1, 1), bias=False), nn.BatchNorm3d(mid),
                         nn.ReLU(inplace=True), nn.Conv3d(mid, out_ch, (3, 1, 1), (ts, 1, 1), (1, 0, 0), bias=False))


class Block(nn.Module):
    """Residual block of two (2+1)D convolutions."""

    def __init__(self, *, in_ch: int, out_ch: int, stride: tuple[int, int]) -> None:
        super().__init__()
        self.conv1 = Conv2Plus1D(in_ch=in_ch, out_ch=out_ch, stride=stride)
        self.bn1 = nn.BatchNorm3d(out_ch)
        self.conv2 = Conv2Plus1D(in_ch=out_ch, out_ch=out_ch, stride=(1, 1))
        self.bn2 = nn.BatchNorm3d(out_ch)
        ts, ss = stride
        self.short = (nn.Identity() if stride == (1, 1) and in_ch == out_ch else
                      nn.Sequential(nn.Conv3d(in_ch, out_ch, 1, (ts, ss, ss), bias=False), nn.BatchNorm3d(out_ch)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu(self.bn1(self.conv1(x)))
        return F.relu(self.bn2(self.conv2(y)) + self.short(x))


class R2Plus1D(nn.Module):
    """(2+1)D ResNet-style classifier (see the module docstring)."""

    def __init__(self, *, config: R2Plus1DConfig) -> None:
        super().__init__()
        c = config
        self.config = c
        self.stem = nn.Sequential(
            nn.Conv3d(c.in_channels, c.widths[0], (1, 5, 5), (1, c.stem_stride, c.stem_stride), (0, 2, 2),
                      bias=False),
            nn.BatchNorm3d(c.widths[0]), nn.ReLU(inplace=True))
        scale_extra_inputs(self.stem[0], base_channels=min(3, c.in_channels), scale=c.extra_init_scale)
        blocks, prev = [], c.widths[0]
        for w, ss, ts in zip(c.widths, c.spatial_strides, c.temporal_strides):
            blocks.append(Block(in_ch=prev, out_ch=w, stride=(ts, ss)))
            prev = w
        self.blocks = nn.Sequential(*blocks)
        self.drop = nn.Dropout(c.dropout)
        self.fc = nn.Linear(prev, c.num_classes)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, T, H, W) -> (B, width) pooled features."""
        if x.ndim != 5 or x.shape[1] != self.config.in_channels:
            raise ValueError(f"R2Plus1D expects (B, {self.config.in_channels}, T, H, W), got {tuple(x.shape)}")
        return self.blocks(self.stem(x)).mean(dim=(2, 3, 4))

    def forward_head(self, feats: torch.Tensor) -> torch.Tensor:
        """(B, width) -> (B, num_classes) logits."""
        return self.fc(self.drop(feats))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


def _config(base: R2Plus1DConfig, overrides: dict[str, Any]) -> R2Plus1DConfig:
    return from_dict(R2Plus1DConfig, {**to_dict(base), **overrides})


R2PLUS1D_CPU = R2Plus1DConfig()
# the flow stream of a two-stream classifier (flow channels only): half the widths (about a quarter of the compute
# and parameters) and more dropout, regularised harder than the RGB stream for a few hundred training clips
R2PLUS1D_FLOW = R2Plus1DConfig(in_channels=4, widths=(8, 16, 32, 64), dropout=0.5)
R2PLUS1D_TEST = R2Plus1DConfig(widths=(4, 8), spatial_strides=(1, 2), temporal_strides=(1, 2), num_classes=3)


@register_model
def r2plus1d_cpu(**overrides: Any) -> R2Plus1D:
    """A small (2+1)D CNN for CPUs (widths 16-128, 0.44 M parameters; 1/8 resolution after the first stage)."""
    return R2Plus1D(config=_config(R2PLUS1D_CPU, overrides))


@register_model
def r2plus1d_flow(**overrides: Any) -> R2Plus1D:
    """The flow-only stream of a two-stream classifier (widths 8-64, dropout 0.5; ``in_channels`` = 2 per flow)."""
    return R2Plus1D(config=_config(R2PLUS1D_FLOW, overrides))


@register_model
def r2plus1d_test(**overrides: Any) -> R2Plus1D:
    """A tiny (2+1)D CNN for tests."""
    return R2Plus1D(config=_config(R2PLUS1D_TEST, overrides))
