"""The configuration of the H-MoRe flow model (one frozen dataclass; never mutated).

Widths follow RAFT-small (Teed & Deng 2020): encoders 32/64/96 at 1/8 resolution, feature 128, hidden 96, context 64,
4 correlation levels of radius 3. The attention width d = 256 and the subject network are hmore's reading of the
H-MoRe paper (see ``docs/hmore.md``, "ours").
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class FlowConfig:
    """Hyper-parameters of :class:`hmore.models.flow.model.HMoReFlow`.

    Attributes:
        encoder_dims: channel widths of the three residual stages (1/2, 1/4, 1/8 resolution).
        feature_dim: channels of the matching features (feature encoder output).
        hidden_dim: channels of the ConvGRU hidden state.
        context_dim: channels of the context features fed to every GRU step.
        corr_levels: levels of the all-pairs correlation pyramid.
        corr_radius: lookup radius r: each level gives (2r+1)^2 samples.
        motion_dim: output channels of the motion encoder (before the flow is appended).
        attn_dim: width of the self-attention blocks on the 1/8 features (ours: 256, docs/hmore.md).
        attn_heads: attention heads of those blocks.
        attn_blocks: number of self-attention blocks (paper: 2).
        mlp_ratio: MLP hidden width / model width in every transformer block.
        subject_dim: width of the subject network Psi.
        subject_heads: attention heads of Psi.
        subject_layers: cross-attention layers of Psi (paper: 4).
        max_subjects: number of learned subject queries, the most subjects one forward can take.
        subject_detach_flow: Psi reads a detached world flow, so its loss trains Psi only (ours).
        iters: default number of refinement iterations.
        upsample: ``"bilinear"`` (RAFT-small) or ``"convex"`` (learned 3x3 convex combination, RAFT).
        init: where the refinement starts when no ``flow_init`` is given: ``"zero"`` (RAFT) or ``"dis"`` (ours: OpenCV
            DIS flow computed inside the model, see :mod:`hmore.models.flow.init`).
        init_context: also give the context encoder the full-resolution initial flow (2 channels, divided by
            ``init_scale``) beside frame t, so the refinement and the upsampling mask see the detail that pooling the
            initial flow to 1/8 loses (ours; zeros when the refinement starts from zero flow).
        init_scale: pixels per unit of the initial flow fed to the context encoder.
        init_residual: the output is the full-resolution initial flow plus the upsampled change the refinement made
            to it at 1/8 resolution, instead of the upsampled 1/8 flow alone (ours): before any training the model
            returns the initial flow unchanged, detail included, and learning only has to correct it.
    """

    encoder_dims: tuple[int, int, int] = (32, 64, 96)
    feature_dim: int = 128
    hidden_dim: int = 96
    context_dim: int = 64
    corr_levels: int = 4
    corr_radius: int = 3
    motion_dim: int = 80
    attn_dim: int = 256
    attn_heads: int = 8
    attn_blocks: int = 2
    mlp_ratio: float = 4.0
    subject_dim: int = 256
    subject_heads: int = 8
    subject_layers: int = 4
    max_subjects: int = 16
    subject_detach_flow: bool = True
    iters: int = 12
    upsample: Literal["bilinear", "convex"] = "bilinear"
    init: Literal["zero", "dis"] = "zero"
    init_context: bool = False
    init_scale: float = 8.0
    init_residual: bool = False

    def __post_init__(self) -> None:
        positive = {
            "feature_dim": self.feature_dim, "hidden_dim": self.hidden_dim, "context_dim": self.context_dim,
            "corr_levels": self.corr_levels, "motion_dim": self.motion_dim, "attn_dim": self.attn_dim,
            "attn_heads": self.attn_heads, "subject_dim": self.subject_dim, "subject_heads": self.subject_heads,
            "max_subjects": self.max_subjects, "iters": self.iters,
        }
        for key, value in positive.items():
            if value < 1:
                raise ValueError(f"FlowConfig.{key} must be >= 1, got {value}")
        for key, value in {"corr_radius": self.corr_radius, "attn_blocks": self.attn_blocks,
                           "subject_layers": self.subject_layers}.items():
            if value < 0:
                raise ValueError(f"FlowConfig.{key} must be >= 0, got {value}")
        if len(self.encoder_dims) != 3 or min(self.encoder_dims) < 4:
            raise ValueError(f"FlowConfig.encoder_dims must be 3 widths >= 4, got {self.encoder_dims}")
        if self.attn_dim % self.attn_heads:
            raise ValueError(f"attn_dim {self.attn_dim} is not divisible by attn_heads {self.attn_heads}")
        if self.subject_dim % self.subject_heads:
            raise ValueError(f"subject_dim {self.subject_dim} is not divisible by subject_heads {self.subject_heads}")
        if self.motion_dim < 3:
            raise ValueError(f"FlowConfig.motion_dim must be >= 3, got {self.motion_dim}")
        if self.upsample not in ("bilinear", "convex"):
            raise ValueError(f"FlowConfig.upsample must be 'bilinear' or 'convex', got {self.upsample!r}")
        if not self.init_scale > 0:
            raise ValueError(f"FlowConfig.init_scale must be > 0, got {self.init_scale}")
        if self.init not in ("zero", "dis"):
            raise ValueError(f"FlowConfig.init must be 'zero' or 'dis', got {self.init!r}")
