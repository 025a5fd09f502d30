"""GaitBase (OpenGait; Fan et al., "OpenGait: Revisiting Gait Recognition Toward Better Practicality", CVPR 2023),
re-implemented from its description in docs/hmore.md with configurable input channels.

A *set* of frames goes through a ResNet-9-like backbone frame by frame (one basic block per stage, widths
64/128/256/512, strides 1/2/2/1), the frame features are max-pooled over the set (temporal pooling: frame order is
ignored, so any number of frames works), split into horizontal strips (horizontal pyramid pooling, mean + max over
each strip), and each strip gets its own FC layer (the embedding used for retrieval) and its own BN-neck classifier
(cosine logits times ``logit_scale`` for the cross-entropy loss). Silhouettes are 1 channel; extra channels (flow)
only widen the first convolution, as in the paper's "plug and play" use of H-MoRe.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

from hmore.config import from_dict, to_dict
from hmore.models.fusion import scale_extra_inputs
from hmore.registry import register_model


@dataclass(frozen=True)
class GaitBaseConfig:
    """Attributes:
        in_channels: channels per frame (1 silhouette + flow channels).
        widths: output channels of the stem + 4 stages (the stem has widths[0]).
        strides: spatial stride of each stage.
        blocks: basic blocks per stage.
        parts: horizontal strips of the pyramid pooling (16 in GaitBase).
        embed_dim: width of each strip's embedding.
        num_classes: training identities (the BN-neck classifier).
        logit_scale: cosine logits are multiplied by this (16 in GaitBase).
        extra_init_scale: the stem's initial weights on the input channels after the first (flow) are multiplied by
            this (0: the network starts as a silhouette-only one and learns how much flow to take in).
    """

    in_channels: int = 1
    widths: tuple[int, ...] = (64, 128, 256, 512)
    strides: tuple[int, ...] = (1, 2, 2, 1)
    blocks: tuple[int, ...] = (1, 1, 1, 1)
    parts: int = 16
    embed_dim: int = 256
    num_classes: int = 74
    logit_scale: float = 16.0
    extra_init_scale: float = 1.0

    def __post_init__(self) -> None:
        if not (len(self.widths) == len(self.strides) == len(self.blocks) >= 1):
            raise ValueError(f"GaitBaseConfig: widths, strides and blocks need the same length, got "
                             f"{self.widths}, {self.strides}, {self.blocks}")
        if self.in_channels < 1 or self.parts < 1 or self.embed_dim < 1 or self.num_classes < 1:
            raise ValueError("GaitBaseConfig: in_channels, parts, embed_dim and num_classes must be >= 1")


@dataclass(frozen=True)
class GaitOutput:
    """What :class:`GaitBase` returns.

    Attributes:
        embeddings: (B, parts, embed_dim) per-strip embeddings (retrieval compares these).
        logits: (B, parts, num_classes) scaled cosine logits of the BN-neck classifiers.
    """

    embeddings: torch.Tensor
    logits: torch.Tensor


class BasicBlock(nn.Module):
    """Two 3x3 convolutions with batch norm and a (projected) shortcut."""

    def __init__(self, *, in_ch: int, out_ch: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_ch, out_ch, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_ch)
        self.conv2 = nn.Conv2d(out_ch, out_ch, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_ch)
        self.short = (nn.Identity() if stride == 1 and in_ch == out_ch else
                      nn.Sequential(nn.Conv2d(in_ch, out_ch, 1, stride, bias=False), nn.BatchNorm2d(out_ch)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu(self.bn1(self.conv1(x)))
        return F.relu(self.bn2(self.conv2(y)) + self.short(x))


class GaitBase(nn.Module):
    """Set-based gait recogniser (see the module docstring).

    Input: (B, S, C, H, W) float, a set of S frames per sequence (C = ``config.in_channels``); H / (product of the
    strides) must be divisible by ``config.parts``.
    """

    def __init__(self, *, config: GaitBaseConfig) -> None:
        super().__init__()
        c = config
        self.config = c
        self.stem = nn.Sequential(nn.Conv2d(c.in_channels, c.widths[0], 3, 1, 1, bias=False),
                                  nn.BatchNorm2d(c.widths[0]), nn.ReLU(inplace=True))
        stages, prev = [], c.widths[0]
        for width, stride, n in zip(c.widths, c.strides, c.blocks):
            blocks = [BasicBlock(in_ch=prev if i == 0 else width, out_ch=width, stride=stride if i == 0 else 1)
                      for i in range(n)]
            stages.append(nn.Sequential(*blocks))
            prev = width
        self.stages = nn.Sequential(*stages)
        self.fc = nn.Parameter(torch.empty(c.parts, prev, c.embed_dim))  # separate FC per strip
        self.neck = nn.BatchNorm1d(c.parts * c.embed_dim)
        self.classifier = nn.Parameter(torch.empty(c.parts, c.embed_dim, c.num_classes))
        nn.init.xavier_uniform_(self.fc)
        nn.init.xavier_uniform_(self.classifier)
        scale_extra_inputs(self.stem[0], base_channels=1, scale=c.extra_init_scale)  # channels 1.. are the flow
        self.stride = 1
        for s in c.strides:
            self.stride *= s

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """(B, S, C, H, W) -> (B, width, parts) pooled strip features."""
        c = self.config
        if x.ndim != 5 or x.shape[2] != c.in_channels:
            raise ValueError(f"GaitBase expects (B, S, {c.in_channels}, H, W), got {tuple(x.shape)}")
        b, s, _, h, w = x.shape
        if (h // self.stride) % c.parts or h % self.stride:
            raise ValueError(f"GaitBase: height {h} / stride {self.stride} is not divisible into {c.parts} parts")
        f = self.stages(self.stem(rearrange(x, "b s c h w -> (b s) c h w")))  # (B*S, C', h', w')
        f = rearrange(f, "(b s) c h w -> b s c h w", b=b, s=s).amax(dim=1)  # temporal max pooling: (B, C', h', w')
        strips = rearrange(f, "b c (p r) w -> b c p (r w)", p=c.parts)  # (B, C', parts, cells per strip)
        return strips.mean(dim=-1) + strips.amax(dim=-1)  # (B, C', parts)

    def forward_head(self, feats: torch.Tensor) -> GaitOutput:
        """(B, width, parts) -> :class:`GaitOutput`."""
        c = self.config
        emb = torch.einsum("bcp,pcd->bpd", feats, self.fc)  # (B, parts, D)
        neck = self.neck(rearrange(emb, "b p d -> b (p d)"))
        neck = F.normalize(rearrange(neck, "b (p d) -> b p d", p=c.parts), dim=-1)
        weight = F.normalize(self.classifier, dim=1)  # (parts, D, classes), unit columns
        logits = c.logit_scale * torch.einsum("bpd,pdk->bpk", neck, weight)
        return GaitOutput(embeddings=emb, logits=logits)

    def forward(self, x: torch.Tensor) -> GaitOutput:
        return self.forward_head(self.forward_features(x))


def build_gaitbase(config: GaitBaseConfig) -> GaitBase:
    return GaitBase(config=config)


def _config(base: GaitBaseConfig, overrides: dict[str, Any]) -> GaitBaseConfig:
    return from_dict(GaitBaseConfig, {**to_dict(base), **overrides})


# OpenGait's GaitBase on CASIA-B (docs/hmore.md).
GAITBASE = GaitBaseConfig()
# An eighth of the widths and a 64-wide embedding: ~1/60 of the convolution cost, 0.55 CPU-s per training step of
# 16 sequences x 8 frames on one core (ours; the quarter-width (16, ..., 128) variant costs 1.5 CPU-s).
GAITBASE_CPU = GaitBaseConfig(widths=(8, 16, 32, 64), embed_dim=64)
GAITBASE_TEST = GaitBaseConfig(widths=(4, 8, 8, 8), parts=4, embed_dim=8, num_classes=4)


@register_model
def gaitbase(**overrides: Any) -> GaitBase:
    """GaitBase at OpenGait's size (widths 64-512, 16 strips of 256)."""
    return build_gaitbase(_config(GAITBASE, overrides))


@register_model
def gaitbase_cpu(**overrides: Any) -> GaitBase:
    """GaitBase narrowed for CPUs (widths 8-64, 16 strips of 64)."""
    return build_gaitbase(_config(GAITBASE_CPU, overrides))


@register_model
def gaitbase_test(**overrides: Any) -> GaitBase:
    """A tiny GaitBase for tests (4 strips)."""
    return build_gaitbase(_config(GAITBASE_TEST, overrides))
