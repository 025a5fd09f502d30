"""The boundary constraint G of H-MoRe (CVPR 2025, arXiv 2504.10676; soft edges and scales are ours, docs/hmore.md).

The Chamfer distance between the flow's edges s and the person boundary e is approximated by the distance between
the centroids of corresponding patches, averaged over patch scales:

    G = mean over scales of mean over patches (where e has edges) of || c(P_s) - c(P_e) ||   (pixels)

* e: Canny edges (kornia) of the person mask (any subject), widened to the band of pixels that straddles the
  boundary (within 1 px of a Canny edge and touched by the mask's Sobel kernel). A step in the flow has Sobel
  response on both sides of the step, so this puts both centroids on the same half-pixel boundary; Canny alone
  picks one side and would leave a 0.5 px floor.
* s = tanh(|Sobel(M)| / tau), the Sobel magnitude over both flow channels (kornia, replicate border).
* c(P) = sum(w x) / sum(w) per patch (sum pooling). A patch without flow edges has its s-centroid at the patch centre
  (a small prior weight ``eps`` there), so missing flow edges are penalised smoothly.
"""

from __future__ import annotations

from collections.abc import Sequence

import kornia
import torch
import torch.nn.functional as F


@torch.no_grad()
def mask_boundary(masks: torch.Tensor, *, low_threshold: float = 0.1, high_threshold: float = 0.2) -> torch.Tensor:
    """Boundary band of the person mask, (B, 1, H, W) float 0/1 (see the module docstring).

    Args:
        masks: (B, H, W) subject labels (0 background) or a bool/0-1 person mask.
        low_threshold, high_threshold: Canny hysteresis thresholds (the mask is 0/1).
    """
    person = (masks > 0).to(torch.float32)[:, None]  # (B, 1, H, W)
    _, canny = kornia.filters.canny(person, low_threshold=low_threshold, high_threshold=high_threshold,
                                    hysteresis=False)
    near = F.max_pool2d(canny, 3, stride=1, padding=1) > 0
    touched = kornia.filters.sobel(person) > 1e-3
    return (near & touched).to(torch.float32)


def soft_flow_edges(flow: torch.Tensor, tau: float = 0.5) -> torch.Tensor:
    """(B, 1, H, W) soft edges tanh(|Sobel(flow)| / tau); with kornia's normalised Sobel a step of a pixels gives
    a/2 on the two pixels beside it, so tau = 0.5 maps a 1 px step to tanh(1) = 0.76."""
    grad = kornia.filters.spatial_gradient(flow, mode="sobel", normalized=True)  # (B, 2, 2, H, W): channel, d/dx|dy
    mag = torch.sqrt(grad.pow(2).sum(dim=(1, 2)) + 1e-12)[:, None]  # (B, 1, H, W)
    return torch.tanh(mag / tau)


def _patch_centroids(weight: torch.Tensor, coords: torch.Tensor, scale: int,
                     prior: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Centroids (B, 2, h, w) of ``weight`` (B, 1, H, W) in scale x scale patches, and the patches' weight sums.

    With ``prior`` > 0 a weight ``prior`` sits at each patch's centre, so an empty patch has its centre as centroid.
    """
    def patch_sum(x: torch.Tensor) -> torch.Tensor:
        return F.avg_pool2d(x, scale, stride=scale, ceil_mode=True, divisor_override=1)

    total = patch_sum(weight)  # (B, 1, h, w)
    moment = patch_sum(weight * coords)  # (B, 2, h, w)
    if prior > 0:
        ones = torch.ones_like(coords[:, :1])
        centre = patch_sum(coords) / patch_sum(ones)  # (1, 2, h, w) centre of each (possibly partial) patch
        return (moment + prior * centre) / (total + prior), total
    return moment / total.clamp_min(1e-12), total


def boundary_constraint(flow: torch.Tensor, masks: torch.Tensor, *, scales: Sequence[int] = (8, 16, 32),
                        tau: float = 0.5, eps: float = 1e-2,
                        boundary: torch.Tensor | None = None) -> torch.Tensor:
    """G: mean over scales of the mean patch-centroid distance (pixels) between flow edges and the person boundary.

    Args:
        flow: (B, 2, H, W) flow in pixels (world or local).
        masks: (B, H, W) subject labels at t (0 background) or a bool person mask.
        scales: patch sizes in pixels.
        tau: softness of the flow edges (see :func:`soft_flow_edges`).
        eps: prior weight at the patch centre for the flow-edge centroid.
        boundary: optional precomputed boundary e (B, 1, H, W) or (B, H, W) in [0, 1]; default
            :func:`mask_boundary` of ``masks``.

    Returns:
        A scalar tensor; 0 (with a gradient path) when no mask has a boundary.
    """
    if flow.ndim != 4 or flow.shape[1] != 2:
        raise ValueError(f"flow must be (B, 2, H, W), got {tuple(flow.shape)}")
    b, _, h, w = flow.shape
    if masks.shape != (b, h, w):
        raise ValueError(f"masks must be (B, H, W) = {(b, h, w)}, got {tuple(masks.shape)}")
    if not scales or min(scales) < 1:
        raise ValueError(f"scales must be positive patch sizes, got {tuple(scales)}")
    if boundary is None:
        edges = mask_boundary(masks)
    else:
        edges = boundary.reshape(b, 1, h, w).to(torch.float32)
    flow = flow.float()
    s = soft_flow_edges(flow, tau)  # (B, 1, H, W)
    ys, xs = torch.meshgrid(torch.arange(h, device=flow.device, dtype=flow.dtype),
                            torch.arange(w, device=flow.device, dtype=flow.dtype), indexing="ij")
    coords = torch.stack([xs, ys])[None]  # (1, 2, H, W) pixel (x, y)
    per_scale = []
    for scale in scales:
        c_e, n_e = _patch_centroids(edges, coords, int(scale), prior=0.0)
        c_s, _ = _patch_centroids(s, coords, int(scale), prior=eps)
        counted = (n_e > 0).to(flow.dtype)  # (B, 1, h, w) patches where the boundary has edges
        dist = torch.sqrt(((c_s - c_e) ** 2).sum(dim=1, keepdim=True) + 1e-12)  # (B, 1, h, w)
        per_scale.append((dist * counted).sum() / counted.sum().clamp_min(1.0))
    return torch.stack(per_scale).mean()
