"""The ``gait`` training task: a GaitBase-style recogniser on silhouettes plus optional flow channels.

Data: a generated gait set (``hmore.gait.data``; ``data.format: hmore``) or an OpenGait pickle folder with its
partition file (``data.format: opengait``, silhouettes only). Input channels (``data.channels``): ``sil`` plus any of
``dis``, ``world``, ``local``, ``exact_world``, ``exact_local`` joined with ``+`` (e.g. ``sil+world+local``); flow
channels are pair t's flow, divided by ``data.flow_scale``. Every row uses frames 0..T-2 (the frames that have a
flow pair), so rows differ only in their channels. The flow representation (``data.flow_mask``,
``data.flow_smooth``, :func:`hmore.flowfeed.flow_channel`) and the training-time ``data.flow_dropout`` apply
identically to every flow channel, the exact ones included.

Batches follow OpenGait's triplet sampler: ``train.batch_size / data.seqs_per_id`` identities, ``seqs_per_id``
sequences each, ``data.frames`` frames drawn without order from each sequence (a set). Loss: batch-all triplet
(margin 0.2) + cross-entropy (scale 16 in the model). The last ``data.val_identities`` training identities are held
out for the engine's periodic evaluation (CASIA-B protocol on them); the test split is only scored by
:meth:`GaitTask.test`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from hmore.errors import ConfigError, InputError
from hmore.flowfeed import channels_of, flow_channel
from hmore.gait.data import GaitArrays, load_gait_set, open_set
from hmore.losses.gait import batch_all_triplet_loss, part_cross_entropy
from hmore.metrics.gait import GaitRank1, casia_rank1
from hmore.registry import create_model
from hmore.train.engine import TrainConfig

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class GaitModelConfig:
    """Attributes: registered model name and builder overrides (in_channels and num_classes come from the data)."""

    name: str = "gaitbase_cpu"
    kwargs: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class GaitDataConfig:
    """Attributes:
        root: the gait set folder (``format: hmore``) or the OpenGait pickle folder.
        format: ``hmore`` or ``opengait``.
        partition: OpenGait partition JSON (``format: opengait``).
        channels: input channels, ``sil`` plus flow channel names joined by ``+``.
        flow_key: the H-MoRe flow cache folder (``<model>-<sha12>``) for ``world``/``local``.
        val_identities: training identities held out for periodic evaluation (0: none).
        seqs_per_id: sequences per identity in a batch (K of the triplet sampler).
        frames: frames drawn from each sequence in training.
        flow_scale: flow channels are divided by this (pixels of the 64 x 44 crop).
        flow_mask: multiply each flow channel by frame t's silhouette (0..1), so flow off the body (the estimators'
            halo; the exact channels are already 0 there) is dropped.
        flow_smooth: centred moving average of each flow channel over this many pairs (odd; 1: none), clipped at the
            sequence's ends.
        flow_dropout: in training only, the probability that a sequence's flow channels are all zeroed (the model
            must also work from silhouettes alone).
        seed: seed of the batch sampling.
    """

    root: str = "runs/gait/full/set"
    format: str = "hmore"
    partition: str = ""
    channels: str = "sil"
    flow_key: str = ""
    val_identities: int = 4
    seqs_per_id: int = 2
    frames: int = 8
    flow_scale: float = 2.0
    flow_mask: bool = False
    flow_smooth: int = 1
    flow_dropout: float = 0.0
    seed: int = 0


@dataclass(frozen=True)
class GaitLossConfig:
    """Attributes: triplet margin, weights of the triplet and cross-entropy terms, label smoothing."""

    margin: float = 0.2
    triplet_weight: float = 1.0
    ce_weight: float = 1.0
    label_smoothing: float = 0.0


@dataclass(frozen=True)
class GaitRunConfig:
    model: GaitModelConfig = field(default_factory=GaitModelConfig)
    data: GaitDataConfig = field(default_factory=GaitDataConfig)
    loss: GaitLossConfig = field(default_factory=GaitLossConfig)
    train: TrainConfig = field(default_factory=TrainConfig)


def gait_input(arrays: GaitArrays, k: int, frames: np.ndarray, *, channels: tuple[str, ...],
               flow_scale: float, flow_mask: bool = False, flow_smooth: int = 1,
               drop_flow: bool = False) -> np.ndarray:
    """Sequence ``k``'s frames ``frames`` as model input (S, 1 + 2 * len(channels), 64, 44) float32 (flow channels
    by :func:`flow_channel`; all zero when ``drop_flow``)."""
    parts = [arrays.sil[k][frames, None].astype(np.float32) / 255.0]  # (S, 1, 64, 44)
    for c in channels:
        if drop_flow:
            parts.append(np.zeros((len(frames), 2, *parts[0].shape[2:]), np.float32))
        else:
            parts.append(flow_channel(arrays.flows[c][k], arrays.sil[k], frames, flow_scale=flow_scale,
                                      mask=flow_mask, smooth=flow_smooth))  # (S, 2, 64, 44)
    return np.concatenate(parts, axis=1)


def usable_frames(arrays: GaitArrays, k: int) -> np.ndarray:
    """Indices of sequence k's frames that have a silhouette and a flow pair (0..T-2); all of 0..T-2 if none."""
    v = np.flatnonzero(arrays.valid[k][:-1])
    return v if len(v) else np.arange(len(arrays.valid[k]) - 1)


class GaitTask:
    """Gait recognition with triplet + cross-entropy losses (see the module docstring)."""

    name = "gait"
    config_class = GaitRunConfig

    def __init__(self, *, config: GaitRunConfig, arrays: GaitArrays | None = None,
                 test_arrays: GaitArrays | None = None) -> None:
        d = config.data
        if d.format not in ("hmore", "opengait"):
            raise ConfigError(f"data.format must be 'hmore' or 'opengait', got {d.format!r}")
        self.channels = channels_of(d.channels)
        if "sil" not in d.channels.split("+"):
            raise ConfigError(f"data.channels must include sil, got {d.channels!r}")
        if d.format == "opengait" and self.channels:
            raise ConfigError("OpenGait pickles hold silhouettes only: data.channels must be 'sil'")
        if d.seqs_per_id < 2:
            raise ConfigError(f"data.seqs_per_id must be >= 2 (triplets need positives), got {d.seqs_per_id}")
        if config.train.batch_size % d.seqs_per_id:
            raise ConfigError(f"train.batch_size {config.train.batch_size} must be a multiple of data.seqs_per_id "
                              f"{d.seqs_per_id}")
        if d.frames < 1 or d.flow_scale <= 0 or d.val_identities < 0:
            raise ConfigError("data.frames >= 1, data.flow_scale > 0 and data.val_identities >= 0 required")
        if d.flow_smooth < 1 or d.flow_smooth % 2 == 0:
            raise ConfigError(f"data.flow_smooth must be an odd number of pairs >= 1, got {d.flow_smooth}")
        if not 0.0 <= d.flow_dropout < 1.0:
            raise ConfigError(f"data.flow_dropout must be in [0, 1), got {d.flow_dropout}")
        self.config = config
        self._train = arrays
        self._test = test_arrays
        self._val: GaitArrays | None = None

    # ---- data -----------------------------------------------------------------------------------------------------
    def _load(self) -> None:
        if self._train is not None and self._test is not None:
            self._split_val()
            return
        d = self.config.data
        if d.format == "hmore":
            cfg = open_set(d.root)
            train_ids, test_ids = cfg.train_subjects, cfg.test_subjects
            load = dict(channels=self.channels, flow_key=d.flow_key or None)
            if self._train is None:
                self._train = load_gait_set(d.root, subjects=train_ids, **load)
            if self._test is None:
                self._test = load_gait_set(d.root, subjects=test_ids, **load)
        else:
            from hmore.gait.opengait import read_opengait, read_partition

            if not d.partition:
                raise ConfigError("data.format opengait needs data.partition (the partition JSON)")
            part = read_partition(d.partition)
            if self._train is None:
                self._train, _ = read_opengait(d.root, subjects=part["TRAIN_SET"])
            if self._test is None:
                self._test, _ = read_opengait(d.root, subjects=part["TEST_SET"])
        self._split_val()

    def _split_val(self) -> None:
        if self._val is not None or self._train is None:
            return
        subs = sorted({s.subject for s in self._train.sequences})
        n_val = self.config.data.val_identities
        if len(subs) - n_val < 2:
            raise InputError(f"{len(subs)} training identities leave fewer than 2 after holding out {n_val}")
        val = set(subs[len(subs) - n_val:]) if n_val else set()
        keep = [k for k, s in enumerate(self._train.sequences) if s.subject not in val]
        held = [k for k, s in enumerate(self._train.sequences) if s.subject in val]
        self._val = self._train.subset(held) if held else None
        self._train = self._train.subset(keep)
        self.train_subjects = sorted({s.subject for s in self._train.sequences})
        self._label = {s: i for i, s in enumerate(self.train_subjects)}
        self._by_subject = {s: [k for k, q in enumerate(self._train.sequences) if q.subject == s]
                            for s in self.train_subjects}

    @property
    def train_arrays(self) -> GaitArrays:
        self._load()
        assert self._train is not None
        return self._train

    @property
    def test_arrays(self) -> GaitArrays:
        self._load()
        assert self._test is not None
        return self._test

    @property
    def in_channels(self) -> int:
        return 1 + 2 * len(self.channels)

    # ---- engine protocol ------------------------------------------------------------------------------------------
    def build_model(self) -> nn.Module:
        self._load()
        m = self.config.model
        return create_model(m.name, **{**m.kwargs, "in_channels": self.in_channels,
                                       "num_classes": len(self.train_subjects)})

    def model_config(self) -> dict:
        self._load()
        m, d = self.config.model, self.config.data
        return {"name": m.name, "kwargs": {**m.kwargs, "in_channels": self.in_channels,
                                           "num_classes": len(self.train_subjects)},
                "channels": d.channels, "flow_scale": d.flow_scale, "flow_key": d.flow_key,
                **self.representation()}

    def representation(self) -> dict[str, Any]:
        """The flow representation keys :func:`gait_input` takes (also written into exported weights' metadata)."""
        d = self.config.data
        return {"flow_mask": d.flow_mask, "flow_smooth": d.flow_smooth}

    def batch(self, step: int, *, rank: int, world_size: int, batch_size: int) -> dict[str, torch.Tensor]:
        self._load()
        d = self.config.data
        arrays = self.train_arrays
        k_per = d.seqs_per_id
        total = batch_size * world_size
        n_ids = total // k_per
        rng = np.random.default_rng([d.seed, 71, step])
        ids = rng.choice(self.train_subjects, size=n_ids, replace=n_ids > len(self.train_subjects))
        picks: list[tuple[int, int]] = []  # (sequence, label), identity-major so every rank gets whole identities
        for s in ids:
            pool = self._by_subject[int(s)]
            for k in rng.choice(pool, size=k_per, replace=k_per > len(pool)):
                picks.append((int(k), self._label[int(s)]))
        xs, ys = [], []
        for g in range(rank * batch_size, (rank + 1) * batch_size):
            k, label = picks[g]
            frng = np.random.default_rng([d.seed, 72, step, g])
            usable = usable_frames(arrays, k)
            frames = frng.choice(usable, size=d.frames, replace=d.frames > len(usable))
            drop = bool(self.channels) and d.flow_dropout > 0 and frng.random() < d.flow_dropout
            xs.append(gait_input(arrays, k, frames, channels=self.channels, flow_scale=d.flow_scale,
                                 drop_flow=drop, **self.representation()))
            ys.append(label)
        return {"x": torch.from_numpy(np.stack(xs)), "y": torch.tensor(ys, dtype=torch.long)}

    def loss(self, model: nn.Module, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
        lc = self.config.loss
        out = model(batch["x"])
        tri = batch_all_triplet_loss(out.embeddings, batch["y"], margin=lc.margin)
        ce = part_cross_entropy(out.logits, batch["y"], label_smoothing=lc.label_smoothing)
        acc = (out.logits.detach().mean(dim=1).argmax(dim=-1) == batch["y"]).float().mean()
        return lc.triplet_weight * tri + lc.ce_weight * ce, {"triplet": tri.detach(), "ce": ce.detach(),
                                                             "acc": acc}

    @torch.no_grad()
    def embed(self, model: nn.Module, arrays: GaitArrays, *, batch: int = 16) -> np.ndarray:
        """(N, parts, D) embeddings of every sequence of ``arrays`` from all its usable frames."""
        dev = next(model.parameters()).device
        was = model.training
        model.eval()
        d = self.config.data
        out: list[np.ndarray | None] = [None] * len(arrays)
        groups: dict[int, list[int]] = {}
        frames = [usable_frames(arrays, k) for k in range(len(arrays))]
        for k, f in enumerate(frames):
            groups.setdefault(len(f), []).append(k)
        for ks in groups.values():
            for s in range(0, len(ks), batch):
                chunk = ks[s:s + batch]
                x = np.stack([gait_input(arrays, k, frames[k], channels=self.channels, flow_scale=d.flow_scale,
                                         **self.representation()) for k in chunk])
                emb = model(torch.from_numpy(x).to(dev)).embeddings.float().cpu().numpy()
                for k, e in zip(chunk, emb):
                    out[k] = e
        model.train(was)
        return np.stack(out)  # type: ignore[arg-type]

    def rank1(self, model: nn.Module, arrays: GaitArrays) -> GaitRank1:
        emb = self.embed(model, arrays)
        seqs = arrays.sequences
        return casia_rank1(emb, [s.subject for s in seqs], [s.type_name for s in seqs], [s.view for s in seqs])

    def evaluate(self, model: nn.Module) -> dict[str, float]:
        self._load()
        if self._val is None or len({s.view for s in self._val.sequences}) < 2:
            return {}
        r = self.rank1(model, self._val)
        out = {f"val_{k.lower()}": v for k, v in r.mean.items()}
        out["val_mean"] = float(np.nanmean(list(r.mean.values())))
        return out

    def test(self, model: nn.Module) -> GaitRank1:
        """CASIA-B rank-1 on the test split (the bench's number)."""
        return self.rank1(model, self.test_arrays)

    def images(self, model: nn.Module, batch: Any) -> dict[str, np.ndarray]:
        return {}
