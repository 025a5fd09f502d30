"""The subject network Psi of H-MoRe: one motion vector v_s per subject, from the world flow and the frame features.

Each subject has a learned query; 4 cross-attention layers let it attend to tokens of the 1/8 grid made from the
world flow and frame-1 features, restricted to the cells that subject's mask covers (masked attention, weighted by
the covered fraction). The output is a correction to the mean world flow inside the mask, so a fresh network already
predicts the mask's mean motion (ours, docs/hmore.md).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

from hmore.models.flow.attention import TransformerBlock, sincos_position_2d

# Flow enters the tokens in 1/8-grid units, so typical values are O(1).
_FLOW_SCALE = 8.0


def subject_one_hot(masks: torch.Tensor, num_subjects: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Label masks (B, H, W) with values 0 (background) or k in 1..P -> one-hot (B, P, H, W)."""
    labels = torch.arange(1, num_subjects + 1, device=masks.device)
    return (masks[:, None] == labels[None, :, None, None]).to(dtype)


class SubjectNet(nn.Module):
    """Psi: (world flow, frame features, subject masks) -> subject velocities v_s (B, P, 2) in pixels.

    Args:
        feature_dim: channels of the 1/8 frame features it reads.
        dim: token width.
        heads: attention heads.
        layers: cross-attention layers (paper: 4).
        max_subjects: number of learned queries.
        mlp_ratio: MLP width ratio in each layer.
    """

    def __init__(self, *, feature_dim: int, dim: int, heads: int, layers: int, max_subjects: int,
                 mlp_ratio: float = 4.0) -> None:
        super().__init__()
        self.dim = dim
        self.max_subjects = max_subjects
        self.token = nn.Linear(feature_dim + 2, dim)
        self.null_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.queries = nn.Parameter(torch.randn(max_subjects, dim) * 0.02)
        self.query_from_mean = nn.Linear(dim, dim)
        self.layers = nn.ModuleList(
            TransformerBlock(dim=dim, heads=heads, mlp_ratio=mlp_ratio, cross=True) for _ in range(layers)
        )
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, 2)
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)

    def forward(self, flow: torch.Tensor, features: torch.Tensor, one_hot: torch.Tensor) -> torch.Tensor:
        """Subject velocities.

        Args:
            flow: world flow (B, 2, H, W) in pixels, H and W multiples of 8.
            features: frame features (B, C, H/8, W/8).
            one_hot: subject masks (B, P, H, W) in {0, 1}.

        Returns:
            (B, P, 2) velocities (dx, dy) in pixels; 0 for a subject whose mask is empty.
        """
        b, p = one_hot.shape[:2]
        if p > self.max_subjects:
            raise ValueError(f"{p} subjects but the model has {self.max_subjects} subject queries (max_subjects)")
        if p == 0:
            return flow.new_zeros(b, 0, 2)
        h, w = features.shape[-2:]
        one_hot = one_hot.to(flow.dtype)
        area = one_hot.sum(dim=(2, 3))  # (B, P) pixels per subject
        present = area > 0  # (B, P)
        mean_flow = torch.einsum("bphw,bchw->bpc", one_hot, flow) / area.clamp_min(1.0)[..., None]  # (B, P, 2)

        flow8 = F.avg_pool2d(flow, 8) / _FLOW_SCALE  # (B, 2, h, w)
        tokens = self.token(rearrange(torch.cat([features.to(flow.dtype), flow8], dim=1), "b c h w -> b (h w) c"))
        tokens = tokens + sincos_position_2d(h, w, self.dim, device=flow.device, dtype=tokens.dtype)
        cover = rearrange(F.avg_pool2d(one_hot, 8), "b p h w -> b p (h w)")  # (B, P, h*w) covered fraction
        context = torch.cat([self.null_token.expand(b, 1, self.dim).to(tokens.dtype), tokens], dim=1)

        # Attention bias (B, P, 1 + h*w): log of the covered fraction (-inf outside the mask); the null token is
        # reachable only by absent subjects, so every row has a finite entry and no NaN appears.
        neg_inf = torch.finfo(cover.dtype).min
        bias_cells = torch.where(cover > 0, cover.clamp_min(1e-6).log(), torch.full_like(cover, neg_inf))
        bias_null = torch.where(present, torch.full_like(area, neg_inf), torch.zeros_like(area))[..., None]
        bias = torch.cat([bias_null, bias_cells], dim=2).to(tokens.dtype)

        weights = cover / cover.sum(dim=2, keepdim=True).clamp_min(1e-6)  # (B, P, h*w)
        pooled = torch.einsum("bpn,bnd->bpd", weights, tokens)  # masked mean token per subject
        q = self.queries[:p].to(tokens.dtype)[None] + self.query_from_mean(pooled)  # (B, P, D)
        for layer in self.layers:
            q = layer(q, context, bias)
        v = mean_flow + _FLOW_SCALE * self.head(self.norm(q)).to(mean_flow.dtype)  # (B, P, 2)
        return v * present[..., None].to(v.dtype)
