"""Unsupervised photometric loss for real video: frame t+1 warped back by the flow should look like frame t.

The comparison is a soft census transform (a 7x7 ternary census made differentiable, as in UnFlow, Meister et al.,
AAAI 2018, and ARFlow, Liu et al., CVPR 2020): robust to the lighting changes and codec noise of real footage,
where plain intensity differences are not. Only the pixels the caller weights count (inside the people, occluded
pixels left out: hmore weights them with a forward-backward check of OpenCV DIS computed with the data).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def warp_backward(image: torch.Tensor, flow: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Sample ``image`` (B, C, H, W) (frame t+1) at p + flow(p) (bilinear, border replicated): the prediction of
    frame t the flow makes; also (B, H, W) bool, True where the sample point lies inside the image."""
    b, _, h, w = image.shape
    ys, xs = torch.meshgrid(torch.arange(h, device=flow.device, dtype=flow.dtype),
                            torch.arange(w, device=flow.device, dtype=flow.dtype), indexing="ij")
    x = xs + flow[:, 0]  # (B, H, W)
    y = ys + flow[:, 1]
    grid = torch.stack([2.0 * x / max(w - 1, 1) - 1.0, 2.0 * y / max(h - 1, 1) - 1.0], dim=-1)  # (B, H, W, 2)
    warped = F.grid_sample(image, grid, mode="bilinear", padding_mode="border", align_corners=True)
    inside = (x >= 0) & (x <= w - 1) & (y >= 0) & (y <= h - 1)
    return warped, inside


def soft_census(grey: torch.Tensor, radius: int = 3) -> torch.Tensor:
    """(B, 1, H, W) grey in [0, 1] -> (B, (2r+1)^2, H, W) soft ternary census: each neighbour's difference to the
    centre, squashed by d / sqrt(0.81 + d^2) (ARFlow's constants, on 0-255 intensities)."""
    k = 2 * radius + 1
    patches = F.unfold(F.pad(grey * 255.0, (radius,) * 4, mode="replicate"), k)  # (B, k*k, H*W)
    patches = patches.view(grey.shape[0], k * k, *grey.shape[-2:])
    d = patches - grey * 255.0
    return d / torch.sqrt(0.81 + d * d)


def _grey(image: torch.Tensor) -> torch.Tensor:
    """(B, 3, H, W) RGB in [0, 255] -> (B, 1, H, W) grey in [0, 1]."""
    w = torch.tensor([0.299, 0.587, 0.114], dtype=torch.float32, device=image.device).view(1, 3, 1, 1)
    return (image.to(torch.float32) * w).sum(dim=1, keepdim=True) / 255.0


def census_loss(image1: torch.Tensor, image2: torch.Tensor, flow: torch.Tensor, weight: torch.Tensor, *,
                radius: int = 3) -> torch.Tensor:
    """Mean soft-census distance between frame t and frame t+1 warped back by ``flow``, over weighted pixels.

    Args:
        image1: (B, 3, H, W) frame t, RGB 0-255 (uint8 or float).
        image2: (B, 3, H, W) frame t+1.
        flow: (B, 2, H, W) flow t -> t+1 in pixels (differentiable).
        weight: (B, H, W) non-negative pixel weights (0 = not counted); samples pointing outside frame t+1 are
            dropped as well.
        radius: census window radius (3: 7x7).

    Returns:
        A scalar tensor (0 with a gradient path when no pixel counts). The per-pixel distance is
        ``mean_k (t1_k - t2_k)^2 / (0.1 + (t1_k - t2_k)^2)``, robust (bounded) per neighbour.
    """
    if image1.shape != image2.shape or image1.ndim != 4 or image1.shape[1] != 3:
        raise ValueError(f"image1 and image2 must both be (B, 3, H, W), got {tuple(image1.shape)} and "
                         f"{tuple(image2.shape)}")
    b, _, h, w = image1.shape
    if flow.shape != (b, 2, h, w) or weight.shape != (b, h, w):
        raise ValueError(f"flow must be (B, 2, H, W) = {(b, 2, h, w)} and weight (B, H, W), got "
                         f"{tuple(flow.shape)} and {tuple(weight.shape)}")
    g2_warped, inside = warp_backward(_grey(image2), flow.to(torch.float32))
    t1, t2 = soft_census(_grey(image1), radius), soft_census(g2_warped, radius)
    diff = (t1 - t2) ** 2
    dist = (diff / (0.1 + diff)).mean(dim=1)  # (B, H, W)
    wgt = weight.to(dist.dtype) * inside.to(dist.dtype)
    return (dist * wgt).sum() / wgt.sum().clamp_min(1.0)


__all__ = ["census_loss", "soft_census", "warp_backward"]
