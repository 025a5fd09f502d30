"""The ``concepts`` training task (HuMoCon) and the ``concept_qa`` task (the question answerer).

``concepts``: unsupervised; the labels are only read by the evaluation. Each step draws ``train.batch_size`` motion
windows from the cached skeleton sequences (training splits of the chosen sources, a source drawn by
``data.source_weights``, then a sequence, then a window) and ``data.pair_batch`` paired video-motion windows from
the cached pairs (``hmore concepts data``). The loss (``loss:`` weights, 0 switches a term off, HuMoCon's
ablation) is

    rec_motion L_rec,motion + rec_video L_rec,video + commit (VQ commitment) + dis L_dis + cluster L_cluster
    + act L_act + align L_align

with the motion terms over all motion windows (the paired windows' motion included) and the video and alignment
terms over the paired windows. A sample is a pure function of (data seed, step, index), so runs resume exactly.
This task calls the model's parts directly, so it trains in one process (no DDP).

``concept_qa``: the answerer of :mod:`hmore.models.concepts.qa` on a generated QA set (:mod:`hmore.concepts.qa`)
whose concept tokens come from a trained concept model (``data.concept_weights`` / ``data.concept_checkpoint``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch
from torch import nn

from hmore.concepts.augment import ViewConfig, style_view, token_map
from hmore.concepts.motion import (
    SOURCES,
    SkeletonSequence,
    is_validation,
    load_sequences,
    make_windows,
    pair_sequence_name,
)
from hmore.concepts.pairs import PairedClip, list_pairs, load_pair, video_channels
from hmore.errors import ConfigError, InputError
from hmore.losses.concepts import (
    actionable_loss,
    clustering_loss,
    consistency_loss,
    discriminative_loss,
    info_nce,
    reconstruction_loss,
)
from hmore.models.concepts.model import BranchOutput, ConceptModel, segment_valid
from hmore.registry import create_model
from hmore.train.engine import TrainConfig

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ConceptsModelSection:
    """Attributes: registered model name and keyword overrides for its builder."""

    name: str = "concepts_cpu"
    kwargs: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ConceptsDataSection:
    """Attributes:
        cache: the folder ``hmore concepts data`` wrote (relative paths: to the current folder).
        sources: skeleton sources for training (their ``train`` split).
        source_weights: sampling weight of each source (empty: equal).
        pair_batch: paired video-motion windows per step (0: none); their motion joins the motion windows, their video
            feeds the video terms when those are on.
        max_pairs: use at most this many training pairs (0: all cached).
        root_dropout: probability that a training window hides its root trajectory (as lifted input does).
        noise: std of Gaussian joint noise in metres added to training windows.
        mask_ratio: fraction of tokens hidden from the reconstruction decoders.
        seed: data seed.
        eval_sources: sources whose test split the evaluation scores (NMI / purity against actions).
        eval_sequences: at most this many held-out sequences per source (evenly spread; 0: all).
        eval_pairs: held-out pairs for retrieval (0: none).
        val_fraction: when > 0, this fraction of the evaluated sources' training sequences (fixed by name,
            :func:`hmore.concepts.motion.is_validation`) becomes a validation split: left out of training (with the
            pairs rendered from them) and scored by the evaluation instead of the test split, so recipes are chosen
            without the reported held-out data.
        velocity_horizon: frames h the actionable term's velocity target spans: the mean velocity from t to t+h
            (:func:`hmore.concepts.motion.window_features`); 1 (default, HuMoCon's): the next frame's displacement.
            Larger h averages out frame-to-frame jitter (noisy Kinect skeletons) and asks the concepts for where the
            motion is heading over h / 15 s; each window is then drawn h - 1 frames longer for the targets.
            Screened (README, twenty-first session): 4 lifts the concept recipe to level with or above the VQ-VAE on
            the validation NMI / purity of both datasets (three seeds), not clearly above; the default stays 1.
        view_speed, view_amplitude, view_bone, view_mirror: the style view of every motion window that the
            consistency term reads when ``loss.consistency`` > 0 (:class:`hmore.concepts.augment.ViewConfig`: time-warp
            range, excursion and bone-length factors +-, mirror probability); drawn from a random stream of its own,
            so the original windows are the same with the term on or off.
    """

    cache: str = "runs/concepts/data"
    sources: tuple[str, ...] = SOURCES
    source_weights: tuple[float, ...] = ()
    pair_batch: int = 12
    max_pairs: int = 0
    root_dropout: float = 0.2
    noise: float = 0.005
    mask_ratio: float = 0.25
    seed: int = 0
    eval_sources: tuple[str, ...] = ("bandai", "nw_ucla")
    eval_sequences: int = 200
    eval_pairs: int = 100
    val_fraction: float = 0.0
    velocity_horizon: int = 1
    view_speed: tuple[float, float] = (0.7, 1.4)
    view_amplitude: float = 0.15
    view_bone: float = 0.1
    view_mirror: float = 0.0

    def __post_init__(self) -> None:
        if not 0.0 <= self.val_fraction < 1.0:
            raise ConfigError(f"data.val_fraction must be in [0, 1), got {self.val_fraction}")
        if isinstance(self.velocity_horizon, bool) or not isinstance(self.velocity_horizon, int) \
                or self.velocity_horizon < 1:
            raise ConfigError(f"data.velocity_horizon must be a whole number of frames >= 1, got "
                              f"{self.velocity_horizon!r}")
        try:
            self.view()
        except (ValueError, TypeError) as exc:
            raise ConfigError(f"data.view_*: {exc}") from None

    def view(self) -> ViewConfig:
        """The style view's ranges."""
        if len(self.view_speed) != 2:
            raise ValueError(f"view_speed must be [low, high], got {list(self.view_speed)}")
        return ViewConfig(speed=(float(self.view_speed[0]), float(self.view_speed[1])),
                          amplitude=self.view_amplitude, bone=self.view_bone, mirror=self.view_mirror)


@dataclass(frozen=True)
class ConceptsLossSection:
    """Loss weights (0 turns a term off) and the discriminative term's set-up: ``dis_positive`` ``"segment"`` (each
    token's classifier, positive on its own segment's frames) or ``"concept"`` (each concept's classifier, positive on
    the frames of all its segments, InfoCon's); ``dis_tokens`` / ``dis_states`` bound the pairs scored per step;
    ``align_stop_motion``: the alignment's gradient stops at the motion codes (it trains the video branch and both
    projections, not the motion encoder or codebook, so the motion concepts are shaped by reconstruction and the
    informativeness terms alone); ``consistency`` weighs the style-invariance term (issue 16,
    :func:`hmore.losses.concepts.consistency_loss` at temperature ``consistency_tau``): each motion token and the
    token of its window's style view (``data.view_*``) that covers the same moment should get the same concept.
    The temperature is 0.01, not InfoCon's 0.1: the encoder's latents lie in a narrow cone around the codes (cosine
    to the 64 codes spread by a std of 0.04-0.07 in the VQ-VAE, 0.4 in the full model), where 0.1 leaves the soft
    assignments nearly uniform. ``dis_views`` (with ``dis_positive: concept``): the discriminative term also scores
    up to ``dis_states`` frames of the style views, each a positive of the concept of the original token it
    matches, so a concept's classifier must accept its states at another speed, amplitude and build.
    ``dis_negatives`` (with ``dis_positive: concept``): ``"batch"`` (InfoCon's) scores each concept's classifier on
    ``dis_states`` frames of the whole batch, which mixes the datasets; ``"source"`` (issue 16) draws the frames per
    dataset (``dis_states`` split evenly over the datasets in the batch; a pair's motion counts as its render's
    source) and scores one row per (concept, dataset it occurs in) on that dataset's frames only, so a classifier
    cannot be satisfied by telling one dataset from another (the easy negatives that let NW-UCLA collapse to a few
    dataset-specific concepts). ``dis_source_weights`` (with ``dis_negatives: source``): a weight per dataset name
    (the others 1) for its rows of the discriminative term and its tokens in the clustering term; 0 leaves that
    dataset out of both (it keeps reconstruction, commitment, the actionable and the consistency terms).
    ``consistency_source_weights`` (with ``consistency`` > 0; issue 16): a weight per dataset name (the others 1) of
    its windows' token pairs in the consistency term's mean; 0 leaves that dataset's windows out of the term (the
    term shrinks the VQ-VAE's NW-UCLA concepts, 21 -> 14 in use at step 1200)."""

    rec_motion: float = 1.0
    rec_video: float = 1.0
    commit: float = 1.0
    dis: float = 0.5
    cluster: float = 0.05
    act: float = 0.5
    align: float = 0.5
    dis_positive: str = "concept"
    dis_tokens: int = 48
    dis_states: int = 256
    align_stop_motion: bool = False
    consistency: float = 0.0
    consistency_tau: float = 0.01
    dis_views: bool = False
    dis_negatives: str = "batch"
    dis_source_weights: dict[str, float] = field(default_factory=dict)
    consistency_source_weights: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.dis_positive not in ("segment", "concept"):
            raise ConfigError(f"loss.dis_positive must be 'segment' or 'concept', got {self.dis_positive!r}")
        if self.consistency < 0 or self.consistency_tau <= 0:
            raise ConfigError(f"loss.consistency must be >= 0 and loss.consistency_tau > 0, got {self.consistency}, "
                              f"{self.consistency_tau}")
        if self.dis_views and self.dis_positive != "concept":
            raise ConfigError("loss.dis_views needs loss.dis_positive: concept")
        if self.dis_negatives not in ("batch", "source"):
            raise ConfigError(f"loss.dis_negatives must be 'batch' or 'source', got {self.dis_negatives!r}")
        if self.dis_negatives == "source" and self.dis_positive != "concept":
            raise ConfigError("loss.dis_negatives: source needs loss.dis_positive: concept")
        for key in ("dis_source_weights", "consistency_source_weights"):
            weights = getattr(self, key)
            if set(weights) - set(SOURCES) or any(float(v) < 0 for v in weights.values()):
                raise ConfigError(f"loss.{key}: datasets must be among {', '.join(SOURCES)} and weights >= 0, "
                                  f"got {dict(weights)}")
        if self.dis_source_weights and self.dis_negatives != "source":
            raise ConfigError("loss.dis_source_weights needs loss.dis_negatives: source")
        if self.consistency_source_weights and self.consistency <= 0:
            raise ConfigError("loss.consistency_source_weights needs loss.consistency > 0")

    def source_weight_table(self) -> torch.Tensor:
        """(len(SOURCES) + 1,) the weight of each dataset code (:func:`_source_code`) in the discriminative and
        clustering terms (``dis_source_weights``, the others 1)."""
        return _weight_table(self.dis_source_weights)

    def consistency_weight_table(self) -> torch.Tensor:
        """(len(SOURCES) + 1,) the weight of each dataset code (:func:`_source_code`) in the consistency term
        (``consistency_source_weights``, the others 1)."""
        return _weight_table(self.consistency_source_weights)

    @property
    def needs_source(self) -> bool:
        """Whether a batch carries each window's dataset (``source``)."""
        return self.dis_negatives == "source" or bool(self.consistency_source_weights)


@dataclass(frozen=True)
class ConceptsRunConfig:
    model: ConceptsModelSection = field(default_factory=ConceptsModelSection)
    data: ConceptsDataSection = field(default_factory=ConceptsDataSection)
    loss: ConceptsLossSection = field(default_factory=ConceptsLossSection)
    train: TrainConfig = field(default_factory=TrainConfig)


def _slice(out: BranchOutput, rows: slice) -> BranchOutput:
    return BranchOutput(latent=out.latent[rows], quantized=out.quantized[rows], ids=out.ids[rows],
                        commit_loss=out.commit_loss, token_valid=out.token_valid[rows], diversity=out.diversity)


class DisInputs(NamedTuple):
    """The discriminative term's inputs (:func:`hmore.losses.concepts.discriminative_loss`): (K, M) logits and
    positives, the (K, M) scored states (None: all) and the (K,) row weights (None: equal)."""

    logits: torch.Tensor
    positive: torch.Tensor
    scored: torch.Tensor | None = None
    row_weight: torch.Tensor | None = None


def _weight_table(weights: dict[str, float]) -> torch.Tensor:
    """(len(SOURCES) + 1,) a weight per dataset code (:func:`_source_code`): ``weights[name]``, else 1 (and 1 for
    windows of no listed dataset)."""
    return torch.tensor([float(weights.get(s, 1.0)) for s in SOURCES] + [1.0])


def _source_code(name: str) -> int:
    """A window's dataset as an index in :data:`SOURCES` (``len(SOURCES)`` for any other, e.g. real videos)."""
    return SOURCES.index(name) if name in SOURCES else len(SOURCES)


# the terms of the real datasets a run trains on (``/work/shared/data`` READMEs); they go into exported weights' licence
DATA_TERMS = {
    "bandai": "Bandai-Namco Research Motion dataset (CC BY-NC 4.0, non-commercial)",
    "nw_ucla": "Northwestern-UCLA Multiview Action 3D (research use only)",
    "h36m": "Human3.6M (academic non-commercial research only)",
}


def weights_licence(sources: tuple[str, ...]) -> str:
    """The licence line of weights trained on ``sources``: MIT code, plus the terms of every real dataset used."""
    terms = [DATA_TERMS[s] for s in sources if s in DATA_TERMS]
    if not terms:
        return "MIT (weights trained by hmore on generated data)"
    return ("MIT (hmore), trained on research datasets whose terms apply to these weights: " + "; ".join(terms)
            + ". Research, non-commercial use only.")


class ConceptsTask:
    """See the module docstring.

    Args:
        config: the run config.
        sequences: skeleton sequences to use instead of the cache (tests).
        pairs: paired clips to use instead of the cache (tests).
    """

    name = "concepts"
    config_class = ConceptsRunConfig

    @property
    def weights_licence(self) -> str:
        return weights_licence(tuple(self.config.data.sources))

    @property
    def export_metadata(self) -> dict[str, Any]:
        """What an export records besides the recipe: the flow weights the paired clips' flow comes from."""
        from hmore.concepts.pairs import CONCEPT_FLOW_WEIGHTS
        from hmore.weights import read_weights_metadata

        sha = read_weights_metadata(CONCEPT_FLOW_WEIGHTS)["sha256"]
        return {"flow_weights": {"name": CONCEPT_FLOW_WEIGHTS, "model": "hmore_flow_cpu", "sha256": sha}}

    def __init__(self, *, config: ConceptsRunConfig, sequences: list[SkeletonSequence] | None = None,
                 pairs: list[PairedClip] | None = None) -> None:
        self.config = config
        d = config.data
        bad = sorted(set(d.sources) - set(SOURCES))
        if bad:
            raise ConfigError(f"data.sources: unknown {bad}; known: {', '.join(SOURCES)}")
        if d.source_weights and len(d.source_weights) != len(d.sources):
            raise ConfigError(f"data.source_weights has {len(d.source_weights)} values for {len(d.sources)} sources")
        self._seqs = sequences
        self._pairs = pairs

    # ---- data ------------------------------------------------------------------------------------------------------
    def sequences(self) -> list[SkeletonSequence]:
        """Every cached sequence of the configured and evaluated sources (train and test splits)."""
        if self._seqs is None:
            d = self.config.data
            seqs: list[SkeletonSequence] = []
            for src in dict.fromkeys(d.sources + d.eval_sources):
                seqs += load_sequences(Path(d.cache) / f"skeleton_{src}.npz")
            self._seqs = seqs
        if self.config.data.val_fraction and not getattr(self, "_val_marked", False):
            self._seqs = [replace(s, split="val") if self._is_val(s.source, s.split, s.name) else s
                          for s in self._seqs]
            self._val_marked = True
        return self._seqs

    def _is_val(self, source: str, split: str, name: str) -> bool:
        d = self.config.data
        return (d.val_fraction > 0 and split == "train" and source in d.eval_sources
                and is_validation(name, d.val_fraction))

    def _pair_split(self, p: PairedClip) -> str:
        split = p.meta.get("split", "train")
        name = pair_sequence_name(p.meta)
        return "val" if name and self._is_val(p.meta.get("source", ""), split, name) else split

    def _train_by_source(self) -> list[list[SkeletonSequence]]:
        if not hasattr(self, "_by_source"):
            d = self.config.data
            groups = [[s for s in self.sequences() if s.source == src and s.split == "train" and s.num_frames >= 2]
                      for src in d.sources]
            for src, g in zip(d.sources, groups):
                if not g:
                    raise InputError(f"no training sequences of source {src!r} in {d.cache}")
            self._by_source = groups
        return self._by_source

    def pairs(self, split: str) -> list[PairedClip]:
        """Cached pairs of a split (kept in memory, resized to the model's video size)."""
        if self._pairs is None:
            d = self.config.data
            size = self._model_shape()[1]
            self._pairs = [load_pair(f).resized(size) for f in list_pairs(d.cache)]
        out = [p for p in self._pairs if self._pair_split(p) == split]
        if split == "train" and self.config.data.max_pairs:
            out = out[: self.config.data.max_pairs]
        return out

    def build_model(self) -> nn.Module:
        m = self.config.model
        return create_model(m.name, **m.kwargs)

    def model_config(self) -> dict:
        m = self.config.model
        return {"name": m.name, "kwargs": dict(m.kwargs)}

    def _model_shape(self) -> tuple[int, int, bool, int]:
        """(window, video_size, video, segment) of the configured model, without building it twice."""
        if not hasattr(self, "_shape"):
            probe = create_model(self.config.model.name, **{**self.config.model.kwargs, "kmeans_init": False})
            self._shape = (probe.config.window, probe.config.video_size, probe.config.video, probe.config.segment)
        return self._shape

    def batch(self, step: int, *, rank: int, world_size: int, batch_size: int) -> dict[str, torch.Tensor]:
        d = self.config.data
        window, video_size, has_video, _ = self._model_shape()
        groups = self._train_by_source()
        weights = np.asarray(d.source_weights or [1.0] * len(groups), np.float64)
        weights = weights / weights.sum()
        pieces, roots, source = [], [], []
        views: list[Any] = []  # style views for the consistency term: (sequence joints, start, length, stream)
        want_views = self.config.loss.consistency > 0 or self.config.loss.dis_views
        for g in range(rank * batch_size, (rank + 1) * batch_size):
            rng = np.random.default_rng([d.seed, 0xC0C, step, g])
            gi = int(rng.choice(len(groups), p=weights))
            group = groups[gi]
            source.append(_source_code(d.sources[gi]))
            seq = group[int(rng.integers(len(group)))]
            n = min(window + d.velocity_horizon, seq.num_frames)
            s = int(rng.integers(0, seq.num_frames - n + 1))
            piece = seq.joints[s : s + n].astype(np.float64)
            if d.noise > 0:
                piece = piece + rng.normal(0, d.noise, size=piece.shape)
            pieces.append(piece)
            roots.append(seq.has_root and rng.random() >= d.root_dropout)
            if want_views:
                views.append((seq.joints, s, n, [d.seed, 0x5717E, step, g]))
        out: dict[str, torch.Tensor] = {}
        videos = []
        # the paired clips' motion joins the motion windows whatever the losses (every ablation variant sees the same
        # motion data); their video only when a video term is on
        want_video = has_video and (self.config.loss.rec_video > 0 or self.config.loss.align > 0)
        train_pairs = self.pairs("train") if d.pair_batch > 0 else []
        if train_pairs:
            for g in range(rank * d.pair_batch, (rank + 1) * d.pair_batch):
                rng = np.random.default_rng([d.seed, 0xFA1, step, g])
                p = train_pairs[int(rng.integers(len(train_pairs)))]
                h = min(d.velocity_horizon, p.num_frames - 1)  # a clip shorter than the horizon: what it has
                n = min(window, p.num_frames - h)
                s = int(rng.integers(0, p.num_frames - h - n + 1))
                piece = p.joints[s : s + n + h].astype(np.float64)
                pieces.append(piece)
                source.append(_source_code(str(p.meta.get("source", ""))))
                roots.append(bool(p.meta.get("has_root", True)) and rng.random() >= d.root_dropout)
                if want_views:
                    views.append((p.joints, s, n + h, [d.seed, 0x5717F, step, g]))
                if want_video:
                    frames = np.zeros((window,) + p.frames.shape[1:], np.uint8)
                    world = np.zeros((window, 2) + p.world.shape[2:], np.float32)
                    local = np.zeros_like(world)
                    frames[:n], world[:n], local[:n] = p.frames[s : s + n], p.world[s : s + n], p.local[s : s + n]
                    videos.append(video_channels(frames, world, local, size=video_size))
        wb = make_windows(pieces, window=window, has_root=roots, horizon=d.velocity_horizon)
        out.update(states=torch.from_numpy(wb.states), velocity=torch.from_numpy(wb.velocity),
                   valid=torch.from_numpy(wb.valid), velocity_valid=torch.from_numpy(wb.velocity_valid))
        if videos:
            out["video"] = torch.from_numpy(np.stack(videos))
        if self.config.loss.needs_source:
            out["source"] = torch.tensor(source, dtype=torch.long)  # (B,) index in SOURCES, len(SOURCES) for others
        if want_views:
            out.update(self._view_batch(views, roots, wb.valid, window))
        return out

    def _view_batch(self, views: list[Any], roots: list[bool], valid: np.ndarray, window: int
                    ) -> dict[str, torch.Tensor]:
        """The style views of a batch's windows (``view_states`` / ``view_valid``) and, per view token, the token of
        its original window that covers the same moment (``view_map``, -1 for none)."""
        d = self.config.data
        cfg = d.view()
        seg = self._model_shape()[3]
        pieces, times = [], np.full((len(views), window), np.nan)
        for i, (joints, start, length, stream) in enumerate(views):
            rng = np.random.default_rng(stream)
            v = style_view(joints, start, length, rng, cfg)
            piece = v.joints
            if d.noise > 0:
                piece = piece + rng.normal(0, d.noise, size=piece.shape)
            pieces.append(piece)
            m = min(length, window)
            times[i, :m] = v.times[:m]
        vb = make_windows(pieces, window=window, has_root=roots, horizon=d.velocity_horizon)  # as the originals
        token_valid = valid.reshape(len(views), -1, seg).any(axis=-1)  # (B, N) of the original windows
        vmap = np.stack([token_map(times[i], token_valid[i], seg) for i in range(len(views))])
        return {"view_states": torch.from_numpy(vb.states), "view_valid": torch.from_numpy(vb.valid),
                "view_map": torch.from_numpy(vmap)}

    # ---- loss --------------------------------------------------------------------------------------------------
    def loss(self, model: nn.Module, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
        core: ConceptModel = getattr(model, "module", model)
        w, d = self.config.loss, self.config.data
        states, valid = batch["states"], batch["valid"]
        out = core.motion(states, valid)
        tv = out.token_valid
        masked = (torch.rand(tv.shape, device=tv.device) < d.mask_ratio) & tv
        rec = reconstruction_loss(core.decode_motion(out.quantized, masked), states, valid)
        total = w.rec_motion * rec + w.commit * out.commit_loss
        logs = {"rec_motion": rec.detach(), "commit_motion": out.commit_loss.detach(),
                "codes_used": float(torch.unique(out.ids[tv]).numel())}
        if out.diversity is not None:  # model.kwargs.codebook_diversity: already inside commit_motion, weighted
            logs["diversity_motion"] = out.diversity.detach()
        hyper = core.hyper_states(states, valid)  # what the hypernetwork reads (both informativeness terms)
        if w.dis > 0:
            source = batch["source"] if w.dis_negatives == "source" else None
            dis_in = self._dis_inputs(core, out, hyper, valid, batch if w.dis_views else None, source=source)
            dis = discriminative_loss(*dis_in)
            tok_w = tv if not w.dis_source_weights else (
                tv * w.source_weight_table().to(states.device)[source][:, None])  # (B, N) per-dataset weights
            clu = clustering_loss(out.latent, core.codebook("motion"), tok_w)
            total = total + w.dis * dis + w.cluster * clu
            logs.update(dis=dis.detach(), cluster=clu.detach())
        if w.consistency > 0:
            vmap = batch["view_map"]
            view_latent = core.forward_features(batch["view_states"], batch["view_valid"])  # (B, N, D)
            pair_ok = (vmap >= 0) & segment_valid(batch["view_valid"], core.config.segment)
            matched = torch.gather(out.latent, 1, vmap.clamp_min(0)[..., None].expand_as(out.latent))
            if w.consistency_source_weights:  # per-dataset weights of the token pairs in the mean
                pair_ok = pair_ok * w.consistency_weight_table().to(states.device)[batch["source"]][:, None]
            con = consistency_loss(matched, view_latent, core.codebook("motion"), pair_ok, tau=w.consistency_tau)
            total = total + w.consistency * con
            logs["consistency"] = con.detach()
        if w.act > 0:
            pred = core.predict_velocity(hyper, out.quantized)
            act = actionable_loss(pred, batch["velocity"], batch["velocity_valid"] & valid)
            total = total + w.act * act
            logs["act"] = act.detach()
        if "video" in batch and core.config.video:
            video = batch["video"]
            n_p = video.shape[0]
            rows = slice(states.shape[0] - n_p, states.shape[0])
            pvalid = valid[rows]
            vout = core.video(video, pvalid)
            vmask = (torch.rand(vout.token_valid.shape, device=video.device) < d.mask_ratio) & vout.token_valid
            vrec = reconstruction_loss(core.decode_video(vout.quantized, vmask), core.video_target(video), pvalid)
            total = total + w.rec_video * vrec + w.commit * vout.commit_loss
            logs.update(rec_video=vrec.detach(), commit_video=vout.commit_loss.detach())
            if w.align > 0:
                m_out = _slice(out, rows)
                if w.align_stop_motion:
                    m_out = replace(m_out, quantized=m_out.quantized.detach())
                m_emb = core.embed(m_out, "motion")
                v_emb = core.embed(vout, "video")
                align = info_nce(v_emb, m_emb, core.logit_scale)
                total = total + w.align * align
                logs.update(align=align.detach(), temperature=float(1.0 / core.logit_scale.exp().item()))
        return total, logs

    def _dis_inputs(self, core: ConceptModel, out: BranchOutput, states: torch.Tensor, valid: torch.Tensor,
                    views: dict[str, torch.Tensor] | None = None, *, source: torch.Tensor | None = None
                    ) -> DisInputs:
        """Classifier logits, positives, scored states and row weights (None: all, equal) of the discriminative term
        (``loss.dis_positive``, ``loss.dis_negatives``, ``loss.dis_source_weights``); ``states`` are the
        hypernetwork's (B, T, hyper_state_dim) (:meth:`ConceptModel.hyper_states`).

        ``"segment"`` (the issue's wording): up to ``dis_tokens`` tokens, each code's classifier scored on the frames
        of those tokens, its own segment's frames positive and every other segment's (same code or not) negative.
        ``"concept"`` (InfoCon): every concept present, scored on up to ``dis_states`` frames, the frames of all its
        segments positive; with ``views`` (a batch's ``view_states`` / ``view_valid`` / ``view_map``) also on up to
        ``dis_states`` style-view frames, labelled with the concept of the original token their token matches.
        With ``source`` (a batch's (B,) dataset codes, ``dis_negatives: source``) the frames are drawn per dataset
        and each row is one (concept, dataset) pair, scored on that dataset's frames only.
        """
        w = self.config.loss
        seg = core.config.segment
        tv = out.token_valid
        if w.dis_positive == "segment":
            tokens = torch.nonzero(tv.reshape(-1)).squeeze(1)  # flat (b * N + n) indices
            if tokens.numel() > w.dis_tokens:
                tokens = tokens[torch.randperm(tokens.numel(), device=tokens.device)[: w.dis_tokens]]
            grouped = states.reshape(-1, seg, states.shape[-1])  # (B*N, S, C): the frames of each token
            frames_ok = valid.reshape(-1, seg)[tokens]  # (U, S)
            sel = grouped[tokens][frames_ok]  # (M, C)
            owner = torch.arange(len(tokens), device=states.device)[:, None].expand(-1, seg)[frames_ok]  # (M,)
            codes = out.quantized.reshape(-1, out.quantized.shape[-1])[tokens]  # (U, D) straight-through
            logits = core.hypernet.logits(codes[:, None, :], sel[None, :, :])  # (U, M)
            return DisInputs(logits, owner[None, :] == torch.arange(len(tokens), device=states.device)[:, None])
        frame_ids = out.ids.repeat_interleave(seg, dim=1)  # (B, T)
        flat_valid = valid.reshape(-1)
        if source is None:
            idx = torch.nonzero(flat_valid).squeeze(1)
            if idx.numel() > w.dis_states:
                idx = idx[torch.randperm(idx.numel(), device=idx.device)[: w.dis_states]]
        else:  # dis_states split evenly over the datasets of the batch
            frame_src = source[:, None].expand_as(valid).reshape(-1)  # (B*T,)
            present = torch.unique(frame_src[flat_valid])
            per = max(1, w.dis_states // max(1, len(present)))
            chosen = []
            for code in present:
                i = torch.nonzero(flat_valid & (frame_src == code)).squeeze(1)
                chosen.append(i[torch.randperm(i.numel(), device=i.device)[:per]])
            idx = torch.cat(chosen).sort().values  # in batch order
        sel_states = states.reshape(-1, states.shape[-1])[idx]  # (M, C)
        sel_ids = frame_ids.reshape(-1)[idx]  # (M,)
        sel_src = None if source is None else frame_src[idx]  # (M,)
        if views is not None:
            vmap = views["view_map"]  # (B, N): the original token of each view token, -1 for none
            view_ids = torch.gather(out.ids, 1, vmap.clamp_min(0)).repeat_interleave(seg, dim=1)  # (B, T)
            ok = (vmap >= 0).repeat_interleave(seg, dim=1) & views["view_valid"]
            vidx = torch.nonzero(ok.reshape(-1)).squeeze(1)
            if vidx.numel() > w.dis_states:
                vidx = vidx[torch.randperm(vidx.numel(), device=vidx.device)[: w.dis_states]]
            view_states = core.hyper_states(views["view_states"], views["view_valid"])
            sel_states = torch.cat([sel_states, view_states.reshape(-1, states.shape[-1])[vidx]])
            sel_ids = torch.cat([sel_ids, view_ids.reshape(-1)[vidx]])
            if sel_src is not None:  # a view frame belongs to its window's dataset
                sel_src = torch.cat([sel_src, source[:, None].expand_as(ok).reshape(-1)[vidx]])
        uniq, inv = torch.unique(out.ids[tv], return_inverse=True)
        # each present concept's vector: the mean of its tokens' straight-through codes (equal to the code)
        codes = torch.zeros(len(uniq), out.quantized.shape[-1], device=states.device, dtype=out.quantized.dtype)
        codes = codes.index_add(0, inv, out.quantized[tv])
        codes = codes / torch.bincount(inv, minlength=len(uniq)).clamp_min(1)[:, None].to(codes.dtype)
        if sel_src is None:
            logits = core.hypernet.logits(codes[:, None, :], sel_states[None, :, :])  # (U, M)
            return DisInputs(logits, sel_ids[None, :] == uniq[:, None])
        # one row per (concept, dataset) pair that occurs among the valid tokens
        token_src = source[:, None].expand_as(out.ids)[tv]  # (V,) with inv: the concept row of each valid token
        pairs = torch.unique(torch.stack([inv, token_src], dim=1), dim=0)  # (R, 2): (concept row, dataset)
        logits = core.hypernet.logits(codes[pairs[:, 0]][:, None, :], sel_states[None, :, :])  # (R, M)
        scored = sel_src[None, :] == pairs[:, 1:2]
        row_weight = w.source_weight_table().to(states.device)[pairs[:, 1]] if w.dis_source_weights else None
        return DisInputs(logits, (sel_ids[None, :] == uniq[pairs[:, 0]][:, None]) & scored, scored, row_weight)

    # ---- evaluation --------------------------------------------------------------------------------------------
    def evaluate(self, model: nn.Module) -> dict[str, float]:
        from hmore.concepts.evaluate import cluster_scores, encode_labelled, retrieval_scores, window_majority
        from hmore.metrics.concepts import nmi

        d = self.config.data
        split = "val" if d.val_fraction else "test"
        metrics: dict[str, float] = {}
        for src in d.eval_sources:
            test = [s for s in self.sequences() if s.source == src and s.split == split and s.action]
            if d.eval_sequences and len(test) > d.eval_sequences:
                test = [test[i] for i in np.linspace(0, len(test) - 1, d.eval_sequences).round().astype(int)]
            if not test:
                continue
            fl = encode_labelled(model, test)
            for k, v in cluster_scores(fl.ids, fl.action).items():
                metrics[f"{src}_{k}"] = v
            if any(fl.style):  # Bandai: do the concepts follow the style, or the (action, style) pair?
                metrics[f"{src}_nmi_style"] = nmi(fl.ids, fl.style)
                pair = np.char.add(np.char.add(fl.action.astype(str), "|"), fl.style.astype(str))
                metrics[f"{src}_nmi_action_style"] = nmi(fl.ids, pair)
            # the same, each frame taking its window's most frequent concept (one model window, centred)
            win = window_majority(fl.ids, fl.sequence, model.config.window)
            for k, v in cluster_scores(win, fl.action).items():
                metrics[f"{src}_{k}_win"] = v
        if d.eval_pairs and model.config.video:
            test_pairs = self.pairs(split)[: d.eval_pairs]
            if test_pairs:
                r = retrieval_scores(model, test_pairs)
                metrics.update(r1=r["r1"], r5=r["r5"], retrieval_n=r["n"])
        return metrics

    def images(self, model: nn.Module, batch: Any) -> dict[str, np.ndarray]:
        return {}


__all__ = ["ConceptsRunConfig", "ConceptsTask"]


# ---- question answering ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ConceptQAModelSection:
    """Attributes: registered answerer name and keyword overrides (``use_concepts: false`` for the question-only
    baseline); vocab, answers and num_concepts are set from the data."""

    name: str = "concept_qa_cpu"
    kwargs: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ConceptQADataSection:
    """Attributes:
        cache: the concepts data folder (skeleton sequences; the encoded QA set is cached there too).
        sources: skeleton sources of the generated QA set.
        concept_weights: shipped concept weights that turn motions into concept tokens.
        concept_checkpoint: a concept training run / checkpoint instead (overrides ``concept_weights``).
        seed: QA generation and sampling seed.
        composites_per_sequence: before/after questions per sequence.
        babel_qa: a BABEL-QA ``questions.json`` to train on instead of the generated set (with ``babel_motions``;
            ``babel_qa_test`` for its evaluation split).
        babel_qa_test: the held-out BABEL-QA questions.
        babel_motions: the folder of BABEL-QA motions.
    """

    cache: str = "runs/concepts/data"
    sources: tuple[str, ...] = ("bandai", "nw_ucla", "procedural")
    concept_weights: str = "concepts_cpu"
    concept_checkpoint: str = ""
    seed: int = 0
    composites_per_sequence: float = 1.0
    babel_qa: str = ""
    babel_qa_test: str = ""
    babel_motions: str = ""


@dataclass(frozen=True)
class ConceptQARunConfig:
    model: ConceptQAModelSection = field(default_factory=ConceptQAModelSection)
    data: ConceptQADataSection = field(default_factory=ConceptQADataSection)
    train: TrainConfig = field(default_factory=TrainConfig)


@dataclass(frozen=True)
class QAArrays:
    """A tokenised QA set: concepts (N, Lc), words (N, Lq), answer (N,) index, query_type (N,) str, split (N,) str."""

    concepts: np.ndarray
    words: np.ndarray
    answer: np.ndarray
    query_type: np.ndarray
    split: np.ndarray


def qa_items(config: ConceptQADataSection) -> list:
    """The QA items of a config: BABEL-QA when given, else the generated set of the cached sequences."""
    from hmore.concepts.qa import generate_qa, read_babel_qa

    if config.babel_qa:
        motions = config.babel_motions or None
        items = read_babel_qa(config.babel_qa, motions=motions, split="train")
        if config.babel_qa_test:
            items += read_babel_qa(config.babel_qa_test, motions=motions, split="test")
        return items
    seqs: list[SkeletonSequence] = []
    for src in config.sources:
        seqs += load_sequences(Path(config.cache) / f"skeleton_{src}.npz")
    return generate_qa(seqs, seed=config.seed, composites_per_sequence=config.composites_per_sequence)


def concept_tokens(concept_model: nn.Module, items: list, *, max_tokens: int) -> np.ndarray:
    """(N, max_tokens) concept tokens of the items' motions (each distinct motion encoded once)."""
    from hmore.concepts.encode import encode_sequences
    from hmore.concepts.qa import segment_tokens

    missing = [i for i, it in enumerate(items) if it.joints is None]
    if missing:
        raise InputError(f"{len(missing)} QA item(s) have no motion (e.g. {items[missing[0]].motion_id!r}): give the "
                         "BABEL-QA motions folder")
    keys: dict[str, int] = {}
    motions, roots = [], []
    for it in items:
        key = f"{it.motion_id}|{len(it.joints)}"
        if key not in keys:
            keys[key] = len(motions)
            motions.append(it.joints)
            roots.append(it.has_root)
    enc = encode_sequences(concept_model, motions, has_root=roots)
    seg = concept_model.config.segment
    tokens = [segment_tokens(e.ids, seg, max_tokens=max_tokens) for e in enc]
    return np.stack([tokens[keys[f"{it.motion_id}|{len(it.joints)}"]] for it in items])


class ConceptQATask:
    """Train the answerer (cross-entropy over the answer vocabulary); reports accuracy per query type."""

    name = "concept_qa"
    config_class = ConceptQARunConfig

    @property
    def weights_licence(self) -> str:  # its questions come from these sources, its concept tokens from all four
        return weights_licence(tuple(dict.fromkeys((*self.config.data.sources, *SOURCES))))

    def __init__(self, *, config: ConceptQARunConfig, items: list | None = None,
                 concept_model: nn.Module | None = None) -> None:
        self.config = config
        self._items = items
        self._concept_model = concept_model
        self._arrays: QAArrays | None = None

    def concept_model(self) -> nn.Module:
        if self._concept_model is None:
            from hmore.concepts.encode import load_concept_model

            d = self.config.data
            self._concept_model = load_concept_model(weights=d.concept_weights or None,
                                                     checkpoint=d.concept_checkpoint or None)
        return self._concept_model

    def _probe(self) -> Any:
        return create_model(self.config.model.name, **{k: v for k, v in self.config.model.kwargs.items()
                                                       if k not in ("vocab", "answers", "num_concepts")})

    def vocab(self) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """(question words, answers) of the set."""
        from hmore.concepts.qa import build_vocab

        items = self.items()
        vocab = build_vocab([it.question for it in items if it.split == "train"])
        answers = tuple(sorted({it.answer for it in items}))
        return vocab, answers

    def items(self) -> list:
        if self._items is None:
            self._items = qa_items(self.config.data)
            if not any(it.split == "train" for it in self._items):
                raise InputError("the QA set has no training questions")
        return self._items

    def arrays(self) -> QAArrays:
        if self._arrays is None:
            from hmore.concepts.qa import encode_question

            items = self.items()
            probe = self._probe().config
            vocab, answers = self.vocab()
            index = {a: i for i, a in enumerate(answers)}
            self._arrays = QAArrays(
                concepts=concept_tokens(self.concept_model(), items, max_tokens=probe.max_concepts),
                words=np.stack([encode_question(it.question, vocab, max_words=probe.max_words) for it in items]),
                answer=np.array([index[it.answer] for it in items], np.int64),
                query_type=np.array([it.query_type for it in items]),
                split=np.array([it.split for it in items]))
        return self._arrays

    def _model_kwargs(self) -> dict[str, Any]:
        vocab, answers = self.vocab()
        return {**self.config.model.kwargs, "vocab": list(vocab), "answers": list(answers),
                "num_concepts": int(self.concept_model().config.codebook_size)}

    def build_model(self) -> nn.Module:
        return create_model(self.config.model.name, **self._model_kwargs())

    def model_config(self) -> dict:
        d = self.config.data
        source = d.concept_checkpoint or d.concept_weights
        sha = ""
        if not d.concept_checkpoint:
            from hmore.weights import read_weights_metadata

            try:
                sha = str(read_weights_metadata(d.concept_weights)["sha256"])
            except InputError:
                sha = ""
        return {"name": self.config.model.name, "kwargs": self._model_kwargs(),
                "concept_model": {"source": source, "sha256": sha, "segment": int(self.concept_model().config.segment)}}

    def batch(self, step: int, *, rank: int, world_size: int, batch_size: int) -> dict[str, torch.Tensor]:
        a = self.arrays()
        train = np.flatnonzero(a.split == "train")
        rng = np.random.default_rng([self.config.data.seed, 0x9A, step, rank])
        pick = train[rng.integers(0, len(train), size=batch_size)]
        return {"concepts": torch.from_numpy(a.concepts[pick]), "words": torch.from_numpy(a.words[pick]),
                "answer": torch.from_numpy(a.answer[pick])}

    def loss(self, model: nn.Module, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
        logits = model(batch["concepts"], batch["words"])
        loss = torch.nn.functional.cross_entropy(logits.float(), batch["answer"])
        return loss, {"acc": (logits.argmax(dim=-1) == batch["answer"]).float().mean().item()}

    @torch.no_grad()
    def predict(self, model: nn.Module, rows: np.ndarray) -> np.ndarray:
        """Answer indices of the given rows of :meth:`arrays`."""
        a = self.arrays()
        was = model.training
        model.eval()
        out = []
        for b0 in range(0, len(rows), 256):
            r = rows[b0 : b0 + 256]
            out.append(model(torch.from_numpy(a.concepts[r]), torch.from_numpy(a.words[r])).argmax(dim=-1).numpy())
        model.train(was)
        return np.concatenate(out) if out else np.zeros(0, np.int64)

    def evaluate(self, model: nn.Module) -> dict[str, float]:
        a = self.arrays()
        test = np.flatnonzero(a.split == "test")
        if not len(test):
            return {}
        correct = self.predict(model, test) == a.answer[test]
        metrics = {"acc": float(correct.mean())}
        for qt in sorted(set(a.query_type[test])):
            m = a.query_type[test] == qt
            metrics[f"acc_{qt}"] = float(correct[m].mean())
        return metrics

    def images(self, model: nn.Module, batch: Any) -> dict[str, np.ndarray]:
        return {}


__all__ += ["ConceptQARunConfig", "ConceptQATask", "concept_tokens", "qa_items"]
