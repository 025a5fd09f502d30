"""DSTformer: MotionBERT's dual-stream spatio-temporal transformer (arXiv 2210.06551, docs/motionbert.md).

Input (B, F, J=17, 3): normalised 2D x, y and a confidence, H36M-17 joint order. Every one of ``depth`` layers runs
two streams on the same tokens: ST (spatial attention -> MLP -> temporal attention -> MLP) and TS (temporal first),
then fuses them per token with learned weights ``softmax(Linear(2 dim -> 2))`` that start at an even 0.5 / 0.5.
``forward_features`` returns the motion representation (B, F, J, rep_dim) (LayerNorm -> Linear -> tanh);
``forward_head`` maps it to 3D joints (B, F, J, 3).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

from hmore.models.motion.input_norm import check_input_norm, normalize_input
from hmore.registry import register_model

NUM_JOINTS = 17


@dataclass(frozen=True)
class DSTformerConfig:
    """Architecture of a :class:`DSTformer`.

    Attributes:
        dim: token width.
        depth: number of dual-stream layers.
        num_heads: attention heads (``dim`` must be divisible by it).
        mlp_ratio: hidden width of each MLP as a multiple of ``dim``.
        rep_dim: width of the tanh motion representation.
        max_len: longest clip (frames) the temporal embedding covers; longer inputs raise ``ValueError``.
        num_joints: joints per frame.
        in_dim: input channels (x, y, confidence).
        out_dim: output channels of the 3D head.
        dropout: dropout in attention projections and MLPs (0 in the paper's pretraining).
        input_norm: ``"none"`` (the paper: image-size normalised input) or ``"root_scale"`` (each frame centred on
            its root, the window scaled to unit RMS; see ``hmore.models.motion.input_norm``).
        frame_stride: the model sees every k-th frame of a track: a window of ``max_len`` frames spans
            ``(max_len - 1) * k + 1`` frames of the track. The forward pass does not use it; training
            (``lift_h36m``'s ``data.frame_stride`` must equal it) and inference (:func:`hmore.lift.infer.run_windows`,
            :func:`hmore.lift.h36m.predict`: the k interleaved sub-tracks are lifted one by one) read it, so weights
            trained with a stride are always applied with it. 1: every frame (the paper).
        target_norm: the head predicts per-joint, per-axis standardised 3D (Martinez et al. 2017): its output is
            multiplied by the buffer ``out_std`` and ``out_mean`` is added (both (J, out_dim), saved with the
            weights; identity until :meth:`DSTformer.set_target_stats`, which ``lift_h36m`` calls with its training
            targets). False: the head predicts the 3D directly (the paper).
        pose_embed: width of a whole-pose embedding added to every token (:class:`PoseEmbed`: each frame's
            normalised joints flattened, a residual MLP of that width, one ``dim`` vector per joint out), so that a
            joint's token knows the whole pose before the first attention (a Martinez-style per-frame lifter as
            the stem). 0: only the paper's per-joint linear embedding.
        pose_embed_blocks: residual blocks of the whole-pose embedding (used when ``pose_embed`` > 0).
    """

    dim: int = 512
    depth: int = 5
    num_heads: int = 8
    mlp_ratio: float = 2.0
    rep_dim: int = 512
    max_len: int = 243
    num_joints: int = NUM_JOINTS
    in_dim: int = 3
    out_dim: int = 3
    dropout: float = 0.0
    input_norm: str = "none"
    frame_stride: int = 1
    target_norm: bool = False
    pose_embed: int = 0
    pose_embed_blocks: int = 1

    def __post_init__(self) -> None:
        check_input_norm(self.input_norm)
        if self.pose_embed < 0 or self.pose_embed_blocks < 0:
            raise ValueError(f"pose_embed and pose_embed_blocks must be >= 0, got {self.pose_embed}, "
                             f"{self.pose_embed_blocks}")
        if self.frame_stride < 1:
            raise ValueError(f"frame_stride must be >= 1, got {self.frame_stride}")
        if self.dim % self.num_heads:
            raise ValueError(f"dim {self.dim} must be divisible by num_heads {self.num_heads}")
        if min(self.dim, self.depth, self.num_heads, self.rep_dim, self.max_len) <= 0:
            raise ValueError(f"sizes must be positive: {self}")


class Attention(nn.Module):
    """Multi-head self-attention over the second-to-last axis of a (N, L, C) token batch."""

    def __init__(self, *, dim: int, num_heads: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q, k, v = rearrange(self.qkv(x), "n l (three h d) -> three n h l d", three=3, h=self.num_heads)
        y = F.scaled_dot_product_attention(q, k, v)  # (N, H, L, D)
        return self.drop(self.proj(rearrange(y, "n h l d -> n l (h d)")))


class Mlp(nn.Module):
    """Linear -> GELU -> Linear."""

    def __init__(self, *, dim: int, hidden: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(hidden, dim)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.drop(self.fc2(self.drop(F.gelu(self.fc1(x)))))


class AxisBlock(nn.Module):
    """Pre-LN attention + MLP along one axis of (B, F, J, C): ``"spatial"`` (the J joints of a frame) or
    ``"temporal"`` (the F frames of a joint)."""

    def __init__(self, *, axis: str, dim: int, num_heads: int, mlp_ratio: float, dropout: float) -> None:
        super().__init__()
        if axis not in ("spatial", "temporal"):
            raise ValueError(f"axis must be 'spatial' or 'temporal', got {axis!r}")
        self.axis = axis
        self.norm1 = nn.LayerNorm(dim)
        self.attn = Attention(dim=dim, num_heads=num_heads, dropout=dropout)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim=dim, hidden=int(dim * mlp_ratio), dropout=dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, f = x.shape[:2]
        if self.axis == "spatial":
            t = rearrange(x, "b f j c -> (b f) j c")
        else:
            t = rearrange(x, "b f j c -> (b j) f c")
        t = t + self.attn(self.norm1(t))
        t = t + self.mlp(self.norm2(t))
        if self.axis == "spatial":
            return rearrange(t, "(b f) j c -> b f j c", b=b)
        return rearrange(t, "(b j) f c -> b f j c", b=b)


class PoseEmbed(nn.Module):
    """Whole-pose token embedding: (B, F, J, in_dim) -> (B, F, J, dim), each frame on its own.

    The frame's joints are flattened, lifted to ``width`` by a Linear, refined by ``blocks`` pre-norm residual MLP
    blocks and mapped to one ``dim`` vector per joint. The output Linear starts at zero, so a model built with it
    starts as the model without it.
    """

    def __init__(self, *, num_joints: int, in_dim: int, dim: int, width: int, blocks: int) -> None:
        super().__init__()
        self.num_joints = num_joints
        self.inp = nn.Linear(num_joints * in_dim, width)
        self.blocks = nn.ModuleList(
            nn.Sequential(nn.LayerNorm(width), nn.Linear(width, width), nn.GELU(), nn.Linear(width, width))
            for _ in range(blocks)
        )
        self.out = nn.Linear(width, num_joints * dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.inp(rearrange(x, "b f j c -> b f (j c)"))  # (B, F, width)
        for block in self.blocks:
            h = h + block(h)
        return rearrange(self.out(F.gelu(h)), "b f (j c) -> b f j c", j=self.num_joints)  # (B, F, J, dim)


class DualStreamLayer(nn.Module):
    """One DSTformer layer: the ST and TS streams on the same input, fused per token by learned weights."""

    def __init__(self, *, dim: int, num_heads: int, mlp_ratio: float, dropout: float) -> None:
        super().__init__()
        kw = dict(dim=dim, num_heads=num_heads, mlp_ratio=mlp_ratio, dropout=dropout)
        self.st = nn.Sequential(AxisBlock(axis="spatial", **kw), AxisBlock(axis="temporal", **kw))
        self.ts = nn.Sequential(AxisBlock(axis="temporal", **kw), AxisBlock(axis="spatial", **kw))
        self.fusion = nn.Linear(2 * dim, 2)
        # Even average at the start (MotionBERT: weight 0, bias 0.5 -> softmax gives 0.5 / 0.5).
        nn.init.zeros_(self.fusion.weight)
        nn.init.constant_(self.fusion.bias, 0.5)

    def fusion_weights(self, x_st: torch.Tensor, x_ts: torch.Tensor) -> torch.Tensor:
        """(B, F, J, 2) softmax weights (alpha_st, alpha_ts) of each token."""
        return self.fusion(torch.cat([x_st, x_ts], dim=-1)).softmax(dim=-1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x_st, x_ts = self.st(x), self.ts(x)  # (B, F, J, C) each
        alpha = self.fusion_weights(x_st, x_ts)  # (B, F, J, 2)
        return x_st * alpha[..., :1] + x_ts * alpha[..., 1:]


class DSTformer(nn.Module):
    """The dual-stream spatio-temporal transformer with its 3D pose head.

    Args:
        config: the architecture (:class:`DSTformerConfig`).
    """

    def __init__(self, *, config: DSTformerConfig) -> None:
        super().__init__()
        c = config
        self.config = c
        self.joints_embed = nn.Linear(c.in_dim, c.dim)
        self.pose_embed_mlp = (
            PoseEmbed(num_joints=c.num_joints, in_dim=c.in_dim, dim=c.dim, width=c.pose_embed,
                      blocks=c.pose_embed_blocks) if c.pose_embed else None
        )
        self.pos_embed = nn.Parameter(torch.zeros(1, c.num_joints, c.dim))  # (1, J, C)
        self.temp_embed = nn.Parameter(torch.zeros(1, c.max_len, 1, c.dim))  # (1, F_max, 1, C)
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        nn.init.trunc_normal_(self.temp_embed, std=0.02)
        self.layers = nn.ModuleList(
            DualStreamLayer(dim=c.dim, num_heads=c.num_heads, mlp_ratio=c.mlp_ratio, dropout=c.dropout)
            for _ in range(c.depth)
        )
        self.norm = nn.LayerNorm(c.dim)
        self.pre_logits = nn.Linear(c.dim, c.rep_dim)
        self.head = nn.Linear(c.rep_dim, c.out_dim)
        if c.target_norm:
            self.register_buffer("out_mean", torch.zeros(c.num_joints, c.out_dim))  # (J, out_dim)
            self.register_buffer("out_std", torch.ones(c.num_joints, c.out_dim))
        self.apply(_init_linear)
        for layer in self.layers:  # _init_linear must not undo the even-average start
            nn.init.zeros_(layer.fusion.weight)
            nn.init.constant_(layer.fusion.bias, 0.5)
        if self.pose_embed_mlp is not None:
            nn.init.zeros_(self.pose_embed_mlp.out.weight)

    def _check(self, x: torch.Tensor) -> None:
        c = self.config
        if x.ndim != 4 or x.shape[2] != c.num_joints or x.shape[3] != c.in_dim:
            raise ValueError(f"DSTformer expects (B, F, {c.num_joints}, {c.in_dim}), got {tuple(x.shape)}")
        if x.shape[1] > c.max_len:
            raise ValueError(f"clip of {x.shape[1]} frames is longer than the model's max_len {c.max_len}")
        if x.shape[1] < 1:
            raise ValueError(f"clip has no frames: {tuple(x.shape)}")

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """(B, F, J, in_dim) -> motion representation (B, F, J, rep_dim) in (-1, 1)."""
        self._check(x)
        f = x.shape[1]
        x = normalize_input(x, self.config.input_norm)
        h = self.joints_embed(x) + self.pos_embed[:, None] + self.temp_embed[:, :f]  # (B, F, J, C)
        if self.pose_embed_mlp is not None:
            h = h + self.pose_embed_mlp(x)
        for layer in self.layers:
            h = layer(h)
        return torch.tanh(self.pre_logits(self.norm(h)))

    def forward_head(self, rep: torch.Tensor) -> torch.Tensor:
        """Motion representation (B, F, J, rep_dim) -> 3D joints (B, F, J, out_dim)."""
        if self.config.target_norm:
            return self.head(rep) * self.out_std + self.out_mean
        return self.head(rep)

    @torch.no_grad()
    def set_target_stats(self, mean: torch.Tensor, std: torch.Tensor) -> None:
        """Set the (J, out_dim) target statistics of a ``target_norm`` model (std clamped to >= 1e-3)."""
        if not self.config.target_norm:
            raise ValueError("set_target_stats needs a model built with target_norm=True")
        shape = (self.config.num_joints, self.config.out_dim)
        if tuple(mean.shape) != shape or tuple(std.shape) != shape:
            raise ValueError(f"target stats must be {shape}, got {tuple(mean.shape)} and {tuple(std.shape)}")
        self.out_mean.copy_(mean)
        self.out_std.copy_(std.clamp_min(1e-3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, F, J, 3) normalised 2D + confidence -> (B, F, J, 3) root-relative 3D (see ``hmore.lift.data``)."""
        return self.forward_head(self.forward_features(x))


def _init_linear(m: nn.Module) -> None:
    if isinstance(m, nn.Linear):
        nn.init.trunc_normal_(m.weight, std=0.02)
        if m.bias is not None:
            nn.init.zeros_(m.bias)
    elif isinstance(m, nn.LayerNorm):
        nn.init.ones_(m.weight)
        nn.init.zeros_(m.bias)


def _build(defaults: dict, overrides: dict) -> DSTformer:
    return DSTformer(config=DSTformerConfig(**{**defaults, **overrides}))


@register_model
def dstformer(**overrides) -> DSTformer:
    """The paper's DSTformer: dim 512, depth 5, 8 heads, MLP ratio 2, 243 frames (42.5 M parameters)."""
    return _build(dict(dim=512, depth=5, num_heads=8, mlp_ratio=2.0, rep_dim=512, max_len=243), overrides)


@register_model
def dstformer_lite(**overrides) -> DSTformer:
    """MotionBERT-Lite: dim 256, MLP ratio 4 (16.0 M parameters)."""
    return _build(dict(dim=256, depth=5, num_heads=8, mlp_ratio=4.0, rep_dim=512, max_len=243), overrides)


@register_model
def dstformer_cpu(**overrides) -> DSTformer:
    """A DSTformer small enough to pretrain on two shared CPU cores in half an hour: dim 64, depth 3, 4 heads,
    27-frame windows (a step of 16 clips takes ~1.5 s there on one thread; 81 frames cost over 5x more), with
    root-centred, scale-normalised input."""
    return _build(dict(dim=64, depth=3, num_heads=4, mlp_ratio=2.0, rep_dim=128, max_len=27,
                       input_norm="root_scale"), overrides)


@register_model
def dstformer_test(**overrides) -> DSTformer:
    """A tiny DSTformer for tests."""
    return _build(dict(dim=16, depth=2, num_heads=2, mlp_ratio=2.0, rep_dim=16, max_len=27), overrides)
