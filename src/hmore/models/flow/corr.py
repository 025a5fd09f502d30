"""All-pairs correlation pyramid with local lookup (RAFT, Teed & Deng 2020, section 3.2)."""

from __future__ import annotations

import contextlib

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn


def _no_autocast(device_type: str) -> contextlib.AbstractContextManager:
    """Autocast switched off on devices that have it (``meta``, used to count FLOPs, has none)."""
    if device_type in ("cpu", "cuda", "xpu", "mps", "hpu"):
        return torch.autocast(device_type=device_type, enabled=False)
    return contextlib.nullcontext()


class CorrPyramid(nn.Module):
    """Builds the 4D correlation volume of two feature maps once, then samples local windows around coordinates.

    ``build(f1, f2)`` returns a list of ``levels`` tensors of shape (B*h*w, 1, h_l, w_l): level l holds, for every
    pixel of frame 1, its dot products with all pixels of frame 2 average-pooled ``l`` times by 2. ``lookup`` samples
    a (2r+1)^2 window around ``coords / 2**l`` at each level with bilinear ``grid_sample`` (zeros outside).

    Args:
        levels: number of pyramid levels.
        radius: lookup radius r.
    """

    def __init__(self, *, levels: int, radius: int) -> None:
        super().__init__()
        self.levels = levels
        self.radius = radius
        r = radius
        d = torch.arange(-r, r + 1, dtype=torch.float32)
        dy, dx = torch.meshgrid(d, d, indexing="ij")
        self.register_buffer("delta", torch.stack([dx, dy], dim=-1).reshape(1, 2 * r + 1, 2 * r + 1, 2),
                             persistent=False)  # (1, 2r+1, 2r+1, 2) as (x, y) offsets

    @property
    def out_channels(self) -> int:
        return self.levels * (2 * self.radius + 1) ** 2

    def build(self, fmap1: torch.Tensor, fmap2: torch.Tensor) -> list[torch.Tensor]:
        if fmap1.shape != fmap2.shape:
            raise ValueError(f"feature maps differ in shape: {tuple(fmap1.shape)} vs {tuple(fmap2.shape)}")
        b, c, h, w = fmap1.shape
        f1 = rearrange(fmap1.float(), "b c h w -> b (h w) c")
        f2 = rearrange(fmap2.float(), "b c h w -> b c (h w)")
        with _no_autocast(f1.device.type):  # the volume stays float32 under AMP
            corr = torch.bmm(f1, f2) / c**0.5  # (B, h*w, h*w): frame-1 pixel x frame-2 pixel
        corr = corr.reshape(b * h * w, 1, h, w)  # (B*h*w, 1, h, w)
        pyramid = [corr]
        for _ in range(1, self.levels):
            corr = F.avg_pool2d(corr, 2, stride=2, ceil_mode=True) if min(corr.shape[-2:]) > 1 else corr
            pyramid.append(corr)
        return pyramid

    def lookup(self, pyramid: list[torch.Tensor], coords: torch.Tensor) -> torch.Tensor:
        """Correlation features (B, levels*(2r+1)^2, h, w) around ``coords`` (B, 2, h, w) in 1/8-grid pixels (x, y)."""
        b, _, h, w = coords.shape
        centre = rearrange(coords.float(), "b c h w -> (b h w) 1 1 c")  # (B*h*w, 1, 1, 2)
        out = []
        for level, corr in enumerate(pyramid):
            hl, wl = corr.shape[-2:]
            pts = centre / 2**level + self.delta  # (B*h*w, 2r+1, 2r+1, 2), pixel coordinates at this level
            scale = pts.new_tensor([2.0 / max(wl - 1, 1), 2.0 / max(hl - 1, 1)])
            grid = pts * scale - 1.0  # align_corners=True: pixel 0 -> -1, pixel n-1 -> +1
            sampled = F.grid_sample(corr, grid, mode="bilinear", padding_mode="zeros", align_corners=True)
            out.append(sampled.reshape(b, h, w, -1))  # (B, h, w, (2r+1)^2)
        feats = torch.cat(out, dim=-1)  # (B, h, w, L*(2r+1)^2)
        return rearrange(feats, "b h w c -> b c h w").contiguous()
