"""Transformer blocks for the flow model: self-attention on 1/8 features and cross-attention for the subject net.

All attention goes through ``torch.nn.functional.scaled_dot_product_attention`` (fused kernels on CPU and GPU).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn


def sincos_position_2d(h: int, w: int, dim: int, *, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """Fixed 2D sine-cosine positional encoding, (h * w, dim) in row-major token order.

    Half of the channels encode the row, half the column, at geometric frequencies; positions are in 1/8-grid cells,
    so the encoding is the same for a cell whatever the image size (inputs of any size share one model).
    """
    if dim % 4:
        raise ValueError(f"positional encoding needs dim divisible by 4, got {dim}")
    quarter = dim // 4
    freq = torch.exp(torch.arange(quarter, device=device, dtype=torch.float32) * (-math.log(1000.0) / quarter))
    ys = torch.arange(h, device=device, dtype=torch.float32)[:, None] * freq  # (h, dim/4)
    xs = torch.arange(w, device=device, dtype=torch.float32)[:, None] * freq  # (w, dim/4)
    ey = torch.cat([ys.sin(), ys.cos()], dim=1)[:, None, :].expand(h, w, 2 * quarter)
    ex = torch.cat([xs.sin(), xs.cos()], dim=1)[None, :, :].expand(h, w, 2 * quarter)
    return torch.cat([ey, ex], dim=2).reshape(h * w, dim).to(dtype)  # (h*w, dim)


class Mlp(nn.Module):
    def __init__(self, *, dim: int, ratio: float) -> None:
        super().__init__()
        hidden = max(int(dim * ratio), 1)
        self.fc1 = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(F.gelu(self.fc1(x)))


class MultiHeadAttention(nn.Module):
    """Multi-head attention of queries (B, Nq, D) over keys/values (B, Nk, D).

    ``mask`` (B, Nq, Nk) is either boolean (True = may attend) or an additive float bias on the attention logits.
    """

    def __init__(self, *, dim: int, heads: int) -> None:
        super().__init__()
        if dim % heads:
            raise ValueError(f"attention dim {dim} is not divisible by heads {heads}")
        self.heads = heads
        self.q = nn.Linear(dim, dim)
        self.kv = nn.Linear(dim, 2 * dim)
        self.out = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor, context: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        q = rearrange(self.q(x), "b n (h d) -> b h n d", h=self.heads)
        k, v = rearrange(self.kv(context), "b n (two h d) -> two b h n d", two=2, h=self.heads)
        attn_mask = None if mask is None else mask[:, None]  # (B, 1, Nq, Nk), broadcast over heads
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask)
        return self.out(rearrange(y, "b h n d -> b n (h d)"))


class TransformerBlock(nn.Module):
    """Pre-norm transformer block: x + Attn(LN(x), LN(context)), then x + MLP(LN(x)).

    A self-attention block (``cross=False``) attends ``x`` to itself; a cross-attention block (``cross=True``) takes
    a ``context`` with its own LayerNorm. Only cross blocks own that norm, so every parameter gets a gradient (DDP
    needs no ``find_unused_parameters``).
    """

    def __init__(self, *, dim: int, heads: int, mlp_ratio: float = 4.0, cross: bool = False) -> None:
        super().__init__()
        self.norm_q = nn.LayerNorm(dim)
        self.norm_kv = nn.LayerNorm(dim) if cross else None
        self.attn = MultiHeadAttention(dim=dim, heads=heads)
        self.norm_mlp = nn.LayerNorm(dim)
        self.mlp = Mlp(dim=dim, ratio=mlp_ratio)

    def forward(self, x: torch.Tensor, context: torch.Tensor | None = None,
                mask: torch.Tensor | None = None) -> torch.Tensor:
        q = self.norm_q(x)
        if (context is None) != (self.norm_kv is None):
            kind = "cross" if self.norm_kv is not None else "self"
            raise ValueError(f"a {kind}-attention block got context={'None' if context is None else 'a tensor'}")
        kv = q if context is None else self.norm_kv(context)
        x = x + self.attn(q, kv, mask)
        return x + self.mlp(self.norm_mlp(x))


class FeatureSelfAttention(nn.Module):
    """Self-attention blocks on a 1/8 feature map (B, C, h, w) -> (B, C, h, w), residual around the whole stack.

    Features are projected to the attention width, given a 2D positional encoding, passed through ``blocks``
    transformer blocks and projected back; the output projection starts at zero so that a fresh model begins as the
    plain CNN features (the attention learns a correction).
    """

    def __init__(self, *, channels: int, dim: int, heads: int, blocks: int, mlp_ratio: float = 4.0) -> None:
        super().__init__()
        self.dim = dim
        self.proj_in = nn.Linear(channels, dim)
        self.blocks = nn.ModuleList(TransformerBlock(dim=dim, heads=heads, mlp_ratio=mlp_ratio) for _ in range(blocks))
        self.norm = nn.LayerNorm(dim)
        self.proj_out = nn.Linear(dim, channels)
        nn.init.zeros_(self.proj_out.weight)
        nn.init.zeros_(self.proj_out.bias)

    def forward(self, fmap: torch.Tensor) -> torch.Tensor:
        if not self.blocks:
            return fmap
        _, _, h, w = fmap.shape
        tokens = rearrange(fmap, "b c h w -> b (h w) c")
        x = self.proj_in(tokens) + sincos_position_2d(h, w, self.dim, device=fmap.device, dtype=tokens.dtype)
        for block in self.blocks:
            x = block(x)
        out = tokens + self.proj_out(self.norm(x))  # (B, h*w, C)
        return rearrange(out, "b (h w) c -> b c h w", h=h, w=w)
