"""HuMoCon's concept model (docs/humocon.md): a motion encoder and a video encoder, each with a VQ codebook whose
codes are the motion concepts, masked reconstruction decoders, InfoCon's hypernetwork discriminator with its
velocity predictor, and the video-motion alignment projections.

Shapes: a batch holds B windows of T frames (T a multiple of ``segment``); every ``segment`` frames become one token,
so N = T / segment tokens per window, and a token's code is the concept of its frames.

* Motion input: canonical states (B, T, STATE_DIM) from :func:`hmore.concepts.motion.window_features` and a validity
  mask (B, T).
* Video input: (B, T, 7, S, S) RGB and world/local flow crops from :func:`hmore.concepts.pairs.video_channels`.

The losses live in :mod:`hmore.losses.concepts`; the training loop in :mod:`hmore.train.tasks.concepts`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

from hmore.concepts.motion import MODEL_FPS, POSE_DIM, STATE_DIM, VELOCITY_DIM, VELOCITY_UNIT
from hmore.registry import create_model, register_model

BACKBONES = ("temporal", "dstformer")


@dataclass(frozen=True)
class ConceptModelConfig:
    """Architecture of a :class:`ConceptModel`.

    Attributes:
        state_dim, velocity_dim: motion state and velocity widths (see :mod:`hmore.concepts.motion`).
        window: frames per window (the temporal embedding's length).
        segment: frames per token (one concept per segment).
        dim: token width of both encoders.
        depth, heads, mlp_ratio: temporal transformer of the encoders.
        backbone: motion encoder: ``"temporal"`` (per-frame MLP + temporal transformer) or ``"dstformer"`` (the
            DSTformer of :mod:`hmore.models.motion`, built by ``dstformer_name`` with ``dstformer_kwargs``, pooled
            over joints).
        dstformer_name, dstformer_kwargs: the DSTformer variant (``in_dim`` 3 and ``max_len`` = window are set).
        codebook_size: concepts per codebook (K).
        codebook_decay: EMA decay of the codebooks (InfoCon: 0.9).
        commitment: commitment loss weight inside the quantiser.
        dead_code_threshold: codes whose EMA cluster size falls below it are re-initialised from the batch
            (vector-quantize-pytorch's ``threshold_ema_dead_code``; 0 disables).
        kmeans_init: initialise the codebooks by k-means on the first training batch (vector-quantize-pytorch's
            ``kmeans_init``); false: random codes.
        kmeans_iters: Lloyd iterations of that k-means (``kmeans_iters``).
        cosine_codebook: nearest code by cosine similarity with unit-norm codes (vector-quantize-pytorch's
            ``use_cosine_sim``; InfoCon's choice); false: by Euclidean distance with free-norm codes.
        codebook_diversity: weight of vector-quantize-pytorch's codebook diversity loss on the motion codebook
            (``codebook_diversity_loss_weight``; the video codebook is unchanged): the negative entropy of the mean
            soft assignment softmax(similarity x ``codebook_diversity_temperature``) over the batch's windows, at
            each token position, so the encoder is pushed to spread the tokens over the codes (issue 16: the full
            model's NW-UCLA concepts shrink as it trains). It is part of the quantiser's loss (``commit_loss``, so
            the training loss's ``commit`` weight multiplies it too); 0 (default) turns it off.
        codebook_diversity_temperature: that softmax's inverse temperature (the library's default, 100).
        decoder_depth: transformer layers of the reconstruction decoders.
        hyper_dim: width of the hypernetwork's state embedding (InfoCon: 128).
        hyper_bottleneck: the concept vector's bottleneck before the weight generator (InfoCon: 2).
        hyper_tau: temperature of the cosine score (InfoCon: 0.1).
        hyper_motion: the hypernetwork's classifiers (and so the actionable term's gradient and the velocity
            predictor) read each frame's state with its pose change from the previous frame appended,
            [s_t, (pose_t - pose_t-1) x ``hyper_motion_scale``] (0 at a window's first frame and next to padding),
            so a concept's classifier can tell motions apart, not only postures. Only the past is read, so the
            velocity from t to t+1 is still not in the input. False (default): the frame state alone (InfoCon's).
            Issue 16 screened it (README, "A motion-aware discriminator state"): its reason, that the present state
            alone makes the concepts posture clusters, was not supported, and it did not lift the concepts.
        hyper_motion_scale: the pose change's factor: frames per second / ``VELOCITY_UNIT`` (15 / 2), which puts it
            in the units of the velocity target.
        predictor_dim, predictor_depth: the causal transformer predicting velocity from [state, gradient];
            ``predictor_depth`` 0: no transformer, each frame's velocity from its own [state, gradient] only (no
            history to read the velocity from, so the concept's gradient has to carry it).
        align_dim: width of the shared video-motion space.
        video: build the video branch.
        shared_codebook: the video branch quantises with the motion branch's codebook (one module, so a video
            token's id and a motion token's id name the same concept vector, and both branches' tokens update its
            EMA and dead-code replacement; ``codebook_diversity``, when on, then applies to the video tokens too).
            The module is registered once, as ``motion_vq`` (``video_vq`` is an alias outside the state dict), so
            a shared checkpoint has no ``video_vq.*`` names and does not load into a model with two codebooks, nor
            the reverse. Needs ``video``. False (default): two codebooks.
        shared_codebook_video_update: with ``shared_codebook``, the video tokens update the shared codebook (EMA
            and dead codes) like the motion tokens; false: the video branch only reads it (vector-quantize-pytorch's
            ``freeze_codebook``: nearest code, straight-through and commitment loss, no codebook update), so the
            concepts are learnt from motion alone. Must stay true without ``shared_codebook``.
        video_size: side of the video crops the CNN reads.
        video_frame_stride: the CNN reads every this many frames (their features are repeated to the frames in
            between; the flow channels still hold the motion between consecutive frames).
        video_recon_grid: the video decoder reconstructs the flows average-pooled to this grid.
        dropout: dropout in the transformers.
    """

    state_dim: int = STATE_DIM
    velocity_dim: int = VELOCITY_DIM
    window: int = 24
    segment: int = 4
    dim: int = 64
    depth: int = 2
    heads: int = 4
    mlp_ratio: float = 2.0
    backbone: str = "temporal"
    dstformer_name: str = "dstformer_cpu"
    dstformer_kwargs: dict[str, Any] = field(default_factory=dict)
    codebook_size: int = 64
    codebook_decay: float = 0.9
    commitment: float = 0.25
    dead_code_threshold: float = 2.0
    kmeans_init: bool = True
    kmeans_iters: int = 10
    cosine_codebook: bool = True
    codebook_diversity: float = 0.0
    codebook_diversity_temperature: float = 100.0
    decoder_depth: int = 1
    hyper_dim: int = 64
    hyper_bottleneck: int = 2
    hyper_tau: float = 0.1
    hyper_motion: bool = False
    hyper_motion_scale: float = MODEL_FPS / VELOCITY_UNIT
    predictor_dim: int = 64
    predictor_depth: int = 1
    align_dim: int = 64
    video: bool = True
    shared_codebook: bool = False
    shared_codebook_video_update: bool = True
    video_size: int = 48
    video_frame_stride: int = 2
    video_recon_grid: int = 8
    dropout: float = 0.0

    def __post_init__(self) -> None:
        if self.backbone not in BACKBONES:
            raise ValueError(f"backbone must be one of {BACKBONES}, got {self.backbone!r}")
        if self.window % self.segment:
            raise ValueError(f"window {self.window} must be a multiple of segment {self.segment}")
        if self.dim % self.heads:
            raise ValueError(f"dim {self.dim} must be divisible by heads {self.heads}")
        if min(self.window, self.segment, self.dim, self.depth, self.codebook_size, self.hyper_dim) <= 0:
            raise ValueError(f"sizes must be positive: {self}")
        if self.segment % self.video_frame_stride:
            raise ValueError(f"segment {self.segment} must be a multiple of video_frame_stride "
                             f"{self.video_frame_stride}")
        if self.kmeans_iters < 1:
            raise ValueError(f"kmeans_iters must be >= 1, got {self.kmeans_iters}")
        if self.dead_code_threshold < 0:
            raise ValueError(f"dead_code_threshold must be >= 0 (0 disables), got {self.dead_code_threshold}")
        if self.codebook_diversity < 0 or self.codebook_diversity_temperature <= 0:
            raise ValueError(f"codebook_diversity must be >= 0 (0 disables) and codebook_diversity_temperature > 0, "
                             f"got {self.codebook_diversity}, {self.codebook_diversity_temperature}")
        if self.shared_codebook and not self.video:
            raise ValueError("shared_codebook needs the video branch (video=True)")
        if not self.shared_codebook_video_update and not self.shared_codebook:
            raise ValueError("shared_codebook_video_update=False needs shared_codebook=True")
        if self.hyper_motion and self.state_dim < POSE_DIM:
            raise ValueError(f"hyper_motion needs the pose ({POSE_DIM} values) first in the state, got state_dim "
                             f"{self.state_dim}")
        if self.video_size % 16:
            raise ValueError(f"video_size must be a multiple of 16, got {self.video_size}")

    @property
    def tokens(self) -> int:
        """Tokens per window, N = window / segment."""
        return self.window // self.segment

    @property
    def hyper_state_dim(self) -> int:
        """Width of the states the hypernetwork and the velocity predictor read (see ``hyper_motion``)."""
        return self.state_dim + (POSE_DIM if self.hyper_motion else 0)


@dataclass(frozen=True)
class BranchOutput:
    """One branch (motion or video) on a batch.

    Attributes:
        latent: (B, N, dim) encoder output before quantisation.
        quantized: (B, N, dim) the codes (gradients pass straight through to ``latent``).
        ids: (B, N) long concept ids.
        commit_loss: scalar loss of the quantiser: its commitment loss, plus ``codebook_diversity`` x ``diversity``
            when that is on.
        token_valid: (B, N) bool, tokens with at least one real frame.
        diversity: scalar unweighted codebook diversity loss (negative entropy of the mean soft assignment) in
            training mode with ``codebook_diversity`` on; None otherwise.
    """

    latent: torch.Tensor
    quantized: torch.Tensor
    ids: torch.Tensor
    commit_loss: torch.Tensor
    token_valid: torch.Tensor
    diversity: torch.Tensor | None = None


def transformer(dim: int, depth: int, heads: int, mlp_ratio: float, dropout: float) -> nn.TransformerEncoder:
    """A stack of pre-LN, GELU, batch-first transformer encoder layers."""
    layer = nn.TransformerEncoderLayer(d_model=dim, nhead=heads, dim_feedforward=int(dim * mlp_ratio),
                                       dropout=dropout, activation="gelu", batch_first=True, norm_first=True)
    return nn.TransformerEncoder(layer, num_layers=depth, enable_nested_tensor=False)


def segment_valid(valid: torch.Tensor, segment: int) -> torch.Tensor:
    """(B, T) frame validity -> (B, N) token validity (any frame of the segment)."""
    return rearrange(valid, "b (n s) -> b n s", s=segment).any(dim=-1)


def segment_pool(x: torch.Tensor, valid: torch.Tensor, segment: int) -> torch.Tensor:
    """Mean of (B, T, C) over the valid frames of each segment -> (B, N, C) (zeros for empty segments)."""
    w = rearrange(valid.to(x.dtype), "b (n s) -> b n s 1", s=segment)
    xs = rearrange(x, "b (n s) c -> b n s c", s=segment)
    return (xs * w).sum(dim=2) / w.sum(dim=2).clamp_min(1.0)


class TemporalEncoder(nn.Module):
    """Per-frame features (B, T, in_dim) -> tokens (B, N, dim): Linear + temporal embedding, a pre-LN transformer over
    the frames (padding masked out), mean-pooled per segment, LayerNorm."""

    def __init__(self, *, in_dim: int, dim: int, depth: int, heads: int, mlp_ratio: float, max_len: int,
                 segment: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.segment = segment
        self.embed = nn.Linear(in_dim, dim)
        self.pos = nn.Parameter(torch.zeros(1, max_len, dim))
        nn.init.trunc_normal_(self.pos, std=0.02)
        self.blocks = transformer(dim, depth, heads, mlp_ratio, dropout)
        self.norm = nn.LayerNorm(dim)

    def forward(self, x: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        t = x.shape[1]
        if t > self.pos.shape[1]:
            raise ValueError(f"window of {t} frames is longer than the encoder's {self.pos.shape[1]}")
        h = self.embed(x) + self.pos[:, :t]  # (B, T, C)
        h = self.blocks(h, src_key_padding_mask=~valid)
        return self.norm(segment_pool(h, valid, self.segment))


class DSTformerMotionEncoder(nn.Module):
    """The DSTformer backbone over the pose part of the states (B, T, 17, 3), pooled over joints, joined with the root
    velocity and flag, then the temporal encoder's segment pooling (a 1-layer temporal transformer on top)."""

    def __init__(self, *, config: ConceptModelConfig) -> None:
        super().__init__()
        c = config
        kwargs = {**c.dstformer_kwargs, "in_dim": 3, "max_len": c.window, "input_norm": "none"}
        self.backbone = create_model(c.dstformer_name, **kwargs)
        rep = self.backbone.config.rep_dim
        self.head = TemporalEncoder(in_dim=rep + c.state_dim - 51, dim=c.dim, depth=1, heads=c.heads,
                                    mlp_ratio=c.mlp_ratio, max_len=c.window, segment=c.segment, dropout=c.dropout)

    def forward(self, states: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        pose = rearrange(states[..., :51], "b t (j c) -> b t j c", c=3)
        feats = self.backbone.forward_features(pose).mean(dim=2)  # (B, T, rep)
        return self.head(torch.cat([feats, states[..., 51:]], dim=-1), valid)


class VideoFrameEncoder(nn.Module):
    """(B, T, 7, S, S) crops -> (B, T, dim): four stride-2 convolutions with GroupNorm and GELU, global average."""

    def __init__(self, *, channels: int, dim: int) -> None:
        super().__init__()
        widths = (16, 32, 64, dim)
        layers: list[nn.Module] = []
        c_in = channels
        for w in widths:
            layers += [nn.Conv2d(c_in, w, 3, stride=2, padding=1), nn.GroupNorm(min(8, w), w), nn.GELU()]
            c_in = w
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b = x.shape[0]
        h = self.net(rearrange(x, "b t c h w -> (b t) c h w")).mean(dim=(-2, -1))  # (B*T, dim)
        return rearrange(h, "(b t) c -> b t c", b=b)


class SegmentDecoder(nn.Module):
    """Tokens (B, N, dim), some replaced by a learned mask token -> per-frame reconstruction (B, N * segment, out)."""

    def __init__(self, *, dim: int, depth: int, heads: int, mlp_ratio: float, tokens: int, segment: int,
                 out_dim: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.segment = segment
        self.mask_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos = nn.Parameter(torch.zeros(1, tokens, dim))
        nn.init.trunc_normal_(self.pos, std=0.02)
        nn.init.trunc_normal_(self.mask_token, std=0.02)
        self.blocks = transformer(dim, depth, heads, mlp_ratio, dropout)
        self.out = nn.Linear(dim, segment * out_dim)

    def forward(self, tokens: torch.Tensor, masked: torch.Tensor | None = None) -> torch.Tensor:
        h = tokens
        if masked is not None:
            h = torch.where(masked[..., None], self.mask_token.to(h.dtype), h)
        h = self.blocks(h + self.pos[:, : h.shape[1]])
        return rearrange(self.out(h), "b n (s c) -> b (n s) c", s=self.segment)


class ConceptHypernet(nn.Module):
    """InfoCon's hypernetwork discriminator: each concept vector becomes a classifier of states.

    A shared Linear embeds the state (x, width ``hidden``); the concept vector goes through Linear(dim -> bottleneck)
    -> Linear(bottleneck -> hidden x (hidden + 1)), giving W (started at the identity) and b, x <- x W + b; another
    Linear of the concept vector gives a prototype mu; the score is sigmoid(cos(mu, x) / tau).
    """

    def __init__(self, *, code_dim: int, state_dim: int, hidden: int, bottleneck: int, tau: float) -> None:
        super().__init__()
        self.hidden, self.tau = hidden, tau
        self.embed = nn.Linear(state_dim, hidden)
        self.squeeze = nn.Linear(code_dim, bottleneck)
        self.params = nn.Linear(bottleneck, hidden * (hidden + 1))
        nn.init.normal_(self.params.weight, std=0.01)
        nn.init.zeros_(self.params.bias)
        self.proto = nn.Linear(code_dim, hidden)

    def logits(self, codes: torch.Tensor, states: torch.Tensor) -> torch.Tensor:
        """cos(mu, x W + b) / tau for codes (..., code_dim) and states (..., state_dim), broadcast against each other
        (e.g. (K, 1, D) with (1, M, S) -> (K, M))."""
        h = self.hidden
        p = rearrange(self.params(self.squeeze(codes)), "... (i o) -> ... i o", o=h)  # (..., h + 1, h)
        w = p[..., :h, :] + torch.eye(h, device=codes.device, dtype=p.dtype)
        b = p[..., h, :]
        x = torch.einsum("...i,...io->...o", self.embed(states), w) + b  # (..., h)
        return F.cosine_similarity(self.proto(codes), x, dim=-1) / self.tau

    def forward(self, codes: torch.Tensor, states: torch.Tensor) -> torch.Tensor:
        """Scores r in (0, 1) (see :meth:`logits`)."""
        return torch.sigmoid(self.logits(codes, states))


class VelocityPredictor(nn.Module):
    """InfoCon's action predictor, predicting velocity: an MLP embeds the discriminator's gradient g_t, a Linear the
    state s_t; a causal transformer over the frame tokens [s_t + g_t] outputs the velocity from t to t+1 (with
    ``depth`` 0, a per-frame GELU + Linear head instead: no temporal context)."""

    def __init__(self, *, state_dim: int, out_dim: int, dim: int, depth: int, heads: int, max_len: int) -> None:
        super().__init__()
        self.state = nn.Linear(state_dim, dim)
        self.grad = nn.Sequential(nn.Linear(state_dim, dim), nn.GELU(), nn.Linear(dim, dim))
        self.pos = nn.Parameter(torch.zeros(1, max_len, dim))
        nn.init.trunc_normal_(self.pos, std=0.02)
        self.blocks = transformer(dim, depth, heads, 2.0, 0.0) if depth > 0 else None
        self.out = nn.Linear(dim, out_dim) if depth > 0 else nn.Sequential(nn.GELU(), nn.Linear(dim, out_dim))

    def forward(self, states: torch.Tensor, grads: torch.Tensor) -> torch.Tensor:
        t = states.shape[1]
        h = self.state(states) + self.grad(grads) + self.pos[:, :t]
        if self.blocks is None:
            return self.out(h)
        causal = torch.triu(torch.ones(t, t, dtype=torch.bool, device=states.device), diagonal=1)
        return self.out(self.blocks(h, mask=causal))


class ConceptModel(nn.Module):
    """Motion and video encoders with VQ codebooks, decoders, discriminator, velocity predictor and alignment heads.

    Args:
        config: :class:`ConceptModelConfig`.
    """

    def __init__(self, *, config: ConceptModelConfig) -> None:
        super().__init__()
        c = config
        self.config = c
        enc = dict(dim=c.dim, depth=c.depth, heads=c.heads, mlp_ratio=c.mlp_ratio, max_len=c.window,
                   segment=c.segment, dropout=c.dropout)
        if c.backbone == "temporal":
            self.motion_encoder: nn.Module = TemporalEncoder(in_dim=c.state_dim, **enc)
        else:
            self.motion_encoder = DSTformerMotionEncoder(config=c)
        self.motion_vq = self._codebook(diversity=c.codebook_diversity)
        dec = dict(dim=c.dim, depth=c.decoder_depth, heads=c.heads, mlp_ratio=c.mlp_ratio, tokens=c.tokens,
                   segment=c.segment, dropout=c.dropout)
        self.motion_decoder = SegmentDecoder(out_dim=c.state_dim, **dec)
        self.hypernet = ConceptHypernet(code_dim=c.dim, state_dim=c.hyper_state_dim, hidden=c.hyper_dim,
                                        bottleneck=c.hyper_bottleneck, tau=c.hyper_tau)
        self.predictor = VelocityPredictor(state_dim=c.hyper_state_dim, out_dim=c.velocity_dim, dim=c.predictor_dim,
                                           depth=c.predictor_depth, heads=c.heads, max_len=c.window)
        self.motion_proj = nn.Linear(c.dim, c.align_dim)
        self.logit_scale = nn.Parameter(torch.tensor(math.log(1 / 0.07)))  # CLIP's start
        if c.video:
            self.video_frames = VideoFrameEncoder(channels=7, dim=c.dim)
            self.video_encoder = TemporalEncoder(in_dim=c.dim, **enc)
            if c.shared_codebook:  # an alias, not a second registration: the state dict holds the codebook once
                object.__setattr__(self, "video_vq", self.motion_vq)
            else:
                self.video_vq = self._codebook()
            self.video_decoder = SegmentDecoder(out_dim=4 * c.video_recon_grid**2, **dec)
            self.video_proj = nn.Linear(c.dim, c.align_dim)

    def _codebook(self, diversity: float = 0.0) -> nn.Module:
        try:
            from vector_quantize_pytorch import VectorQuantize
        except ImportError as exc:  # the "concepts" extra
            raise ImportError(f"concept models need vector-quantize-pytorch (pip install 'hmore[concepts]'): {exc}"
                              ) from None
        c = self.config
        # the diversity options only when on, so that configs without them run on library versions that lack them
        extra = dict(codebook_diversity_loss_weight=diversity,
                     codebook_diversity_temperature=c.codebook_diversity_temperature) if diversity > 0 else {}
        return VectorQuantize(dim=c.dim, codebook_size=c.codebook_size, decay=c.codebook_decay,
                              commitment_weight=c.commitment, kmeans_init=c.kmeans_init, kmeans_iters=c.kmeans_iters,
                              threshold_ema_dead_code=c.dead_code_threshold, use_cosine_sim=c.cosine_codebook,
                              **extra)

    # ---- motion ------------------------------------------------------------------------------------------------
    def _check_motion(self, states: torch.Tensor, valid: torch.Tensor) -> None:
        c = self.config
        if states.ndim != 3 or states.shape[-1] != c.state_dim or states.shape[1] % c.segment:
            raise ValueError(f"motion states must be (B, T, {c.state_dim}) with T a multiple of {c.segment}, got "
                             f"{tuple(states.shape)}")
        if valid.shape != states.shape[:2]:
            raise ValueError(f"valid must be {tuple(states.shape[:2])}, got {tuple(valid.shape)}")

    def forward_features(self, states: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        """Motion states (B, T, state_dim) and validity (B, T) -> latent tokens (B, N, dim) before quantisation."""
        self._check_motion(states, valid)
        return self.motion_encoder(states, valid)

    def _quantize(self, vq: nn.Module, latent: torch.Tensor, token_valid: torch.Tensor, *,
                  freeze: bool = False) -> BranchOutput:
        diversity = None
        if self.training:
            # freeze_codebook only when asked, so that the default runs on library versions without it
            extra = {"freeze_codebook": True} if freeze else {}
            if getattr(vq, "has_codebook_diversity_loss", False):
                quantized, ids, commit, parts = vq(latent, mask=token_valid, return_loss_breakdown=True, **extra)
                diversity = parts.codebook_diversity
            else:
                quantized, ids, commit = vq(latent, mask=token_valid, **extra)
            commit = commit.sum() if commit.ndim else commit
        else:  # the library's nearest code, without its first-call set-up (seconds)
            codebook = vq.codebook.reshape(-1, latent.shape[-1])  # (K, dim)
            if self.config.cosine_codebook:  # unit-norm codes: the largest cosine
                ids = (F.normalize(latent, dim=-1) @ codebook.t()).argmax(dim=-1)
            else:  # the smallest squared distance |z|^2 - 2 z.c + |c|^2 (|z|^2 is the same for every code)
                ids = (codebook.square().sum(-1) - 2 * latent @ codebook.t()).argmin(dim=-1)
            quantized = codebook[ids]
            commit = latent.new_zeros(())
        return BranchOutput(latent=latent, quantized=quantized, ids=ids, commit_loss=commit, token_valid=token_valid,
                            diversity=diversity)

    def motion(self, states: torch.Tensor, valid: torch.Tensor) -> BranchOutput:
        """The motion branch: encoder + codebook (updates the EMA codebook in training mode)."""
        latent = self.forward_features(states, valid)
        return self._quantize(self.motion_vq, latent, segment_valid(valid, self.config.segment))

    def decode_motion(self, quantized: torch.Tensor, masked: torch.Tensor | None = None) -> torch.Tensor:
        """Tokens (B, N, dim) -> reconstructed states (B, T, state_dim); ``masked`` (B, N) tokens are hidden."""
        return self.motion_decoder(quantized, masked)

    @torch.no_grad()
    def concept_ids(self, states: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        """(B, N) motion concept ids (the codebook is not updated)."""
        was = self.training
        self.eval()
        try:
            return self.motion(states, valid).ids
        finally:
            self.train(was)

    def codebook(self, branch: str = "motion") -> torch.Tensor:
        """(K, dim) the concept vectors of a branch (unit-norm with ``cosine_codebook``)."""
        vq = self.motion_vq if branch == "motion" else self.video_vq
        return vq.codebook.reshape(-1, self.config.dim)

    # ---- informativeness ---------------------------------------------------------------------------------------
    def hyper_states(self, states: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        """The states the hypernetwork reads: (B, T, state_dim) with (B, T) validity -> (B, T, hyper_state_dim);
        the input itself without ``hyper_motion``."""
        c = self.config
        if not c.hyper_motion:
            return states
        pose = states[..., :POSE_DIM]  # (B, T, 51)
        both = (valid[:, 1:] & valid[:, :-1])[..., None].to(states.dtype)  # (B, T-1, 1) frames t and t-1 real
        step = (pose[:, 1:] - pose[:, :-1]) * both * c.hyper_motion_scale  # (B, T-1, 51)
        step = torch.cat([torch.zeros_like(pose[:, :1]), step], dim=1)  # (B, T, 51): none before the first frame
        return torch.cat([states, step], dim=-1)

    def predict_velocity(self, states: torch.Tensor, codes: torch.Tensor) -> torch.Tensor:
        """InfoCon's actionable path: the gradient of each frame's own-concept score r(code of its segment, s_t)
        with respect to the state (``create_graph``, so the loss trains the hypernetwork and, through the codes,
        the encoder) feeds the causal predictor.

        Args:
            states: (B, T, hyper_state_dim), :meth:`hyper_states` of the motion states (the same as them without
                ``hyper_motion``).
            codes: (B, N, dim) the tokens' (straight-through) codes.

        Returns:
            (B, T, velocity_dim) predicted velocity from t to t+1.
        """
        seg = self.config.segment
        if states.shape[-1] != self.config.hyper_state_dim:
            raise ValueError(f"predict_velocity: states must have {self.config.hyper_state_dim} values per frame "
                             f"(hyper_states), got {tuple(states.shape)}")
        with torch.enable_grad():
            s = states.detach().requires_grad_(True)
            grouped = rearrange(s, "b (n s) c -> b n s c", s=seg)
            r = self.hypernet(codes[:, :, None, :], grouped)  # (B, N, S): one classifier per token, not per frame
            (g,) = torch.autograd.grad(r.sum(), s, create_graph=True)
        return self.predictor(s, g)

    # ---- video -------------------------------------------------------------------------------------------------
    def _require_video(self) -> None:
        if not self.config.video:
            raise ValueError("this concept model has no video branch (config.video=False)")

    def video_features(self, video: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        """(B, T, 7, S, S) crops and (B, T) validity -> latent tokens (B, N, dim)."""
        self._require_video()
        c = self.config
        if video.ndim != 5 or video.shape[2] != 7 or video.shape[-1] != c.video_size or video.shape[1] % c.segment:
            raise ValueError(f"video must be (B, T, 7, {c.video_size}, {c.video_size}) with T a multiple of "
                             f"{c.segment}, got {tuple(video.shape)}")
        k = c.video_frame_stride
        feats = self.video_frames(video[:, ::k]).repeat_interleave(k, dim=1)  # (B, T, dim)
        return self.video_encoder(feats, valid)

    def video(self, video: torch.Tensor, valid: torch.Tensor) -> BranchOutput:
        """The video branch: CNN + temporal encoder + codebook."""
        latent = self.video_features(video, valid)
        return self._quantize(self.video_vq, latent, segment_valid(valid, self.config.segment),
                              freeze=not self.config.shared_codebook_video_update)

    def video_target(self, video: torch.Tensor) -> torch.Tensor:
        """(B, T, 4 * grid^2): the world and local flow channels average-pooled to the reconstruction grid."""
        g = self.config.video_recon_grid
        b = video.shape[0]
        pooled = F.adaptive_avg_pool2d(rearrange(video[:, :, 3:], "b t c h w -> (b t) c h w"), g)
        return rearrange(pooled, "(b t) c h w -> b t (c h w)", b=b)

    def decode_video(self, quantized: torch.Tensor, masked: torch.Tensor | None = None) -> torch.Tensor:
        return self.video_decoder(quantized, masked)

    # ---- alignment ---------------------------------------------------------------------------------------------
    def embed(self, out: BranchOutput, branch: str) -> torch.Tensor:
        """(B, align_dim) unit-norm clip embedding: the mean of the valid quantized tokens, projected."""
        w = out.token_valid.to(out.quantized.dtype)[..., None]
        pooled = (out.quantized * w).sum(dim=1) / w.sum(dim=1).clamp_min(1.0)
        proj = self.motion_proj if branch == "motion" else self.video_proj
        return F.normalize(proj(pooled), dim=-1)


def _build(defaults: dict, overrides: dict) -> ConceptModel:
    return ConceptModel(config=ConceptModelConfig(**{**defaults, **overrides}))


@register_model
def concepts_cpu(**overrides: Any) -> ConceptModel:
    """The shipped size: dim 64, 2 temporal layers, 64 concepts, windows of 24 frames (1.6 s at 15 fps) in segments
    of 4, video crops of 48 px."""
    return _build(dict(dim=64, depth=2, heads=4, codebook_size=64, window=24, segment=4), overrides)


@register_model
def concepts_dstformer_cpu(**overrides: Any) -> ConceptModel:
    """The same with a DSTformer (``dstformer_cpu`` size) as motion encoder."""
    return _build(dict(dim=64, depth=2, heads=4, codebook_size=64, window=24, segment=4, backbone="dstformer",
                       dstformer_name="dstformer_cpu"), overrides)


@register_model
def concepts_test(**overrides: Any) -> ConceptModel:
    """A tiny concept model for tests."""
    return _build(dict(dim=16, depth=1, heads=2, codebook_size=8, window=8, segment=4, hyper_dim=8,
                       predictor_dim=16, align_dim=8, video_size=16, video_recon_grid=2, kmeans_init=False),
                  overrides)
