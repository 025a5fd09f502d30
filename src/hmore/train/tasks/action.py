"""The ``action`` training task: skeleton action recognition on a pyskl-format action set.

The model is a DSTformer backbone with MotionBERT's action head (``dstformer_action``), optionally initialised from a
pretrained lifter (``model.backbone_init``: shipped weights name or a lift run folder/checkpoint), or the simple
baseline ``pose_stats_action``. Data: a pyskl pickle (``data.pickle``); when it is empty, a generated action set
(the generator's actions, identities split between train and test) is made once and cached in ``data.cache``.
A clip becomes model input (M, L, 17, 3): COCO-17 -> H36M-17, pixels normalised by the image size, a window of
``clip_len`` frames taken every ``frame_step`` frames (random start in training, every window averaged in evaluation).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from hmore.errors import InputError
from hmore.lift.actions import ActionClip, ActionDataset, generate_action_set, read_action_pickle, write_action_pickle
from hmore.lift.data import flip_pair, normalize_2d
from hmore.registry import create_model
from hmore.train.engine import TrainConfig

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ActionModelConfig:
    """Attributes: registered model name, builder overrides (num_classes is set from the data), backbone init."""

    name: str = "dstformer_action"
    kwargs: dict[str, Any] = field(default_factory=dict)
    backbone_init: str = ""


@dataclass(frozen=True)
class ActionDataConfig:
    """Attributes:
        pickle: a pyskl action pickle; empty: the generated set, cached at ``cache``.
        cache: where the generated set is written (relative paths: to the current folder).
        train_split, test_split: split names.
        seed: seed of the generated set and of the sampling.
        train_identities, test_identities: identities of the generated set.
        clips_per_pair: generated clips per (identity, action).
        num_frames: frames per generated clip.
        clip_len: frames per model window (at most the backbone's max_len).
        frame_step: temporal stride inside a window.
        persons: persons per sample (padded with zeros / cut).
        flip_prob: mirrored training samples.
        jitter: std of normalised 2D noise added in training.
    """

    pickle: str = ""
    cache: str = "runs/action/generated_actions.pkl"
    train_split: str = "train"
    test_split: str = "test"
    seed: int = 0
    train_identities: int = 12
    test_identities: int = 4
    clips_per_pair: int = 3
    num_frames: int = 64
    clip_len: int = 27
    frame_step: int = 2
    persons: int = 1
    flip_prob: float = 0.5
    jitter: float = 0.003


@dataclass(frozen=True)
class ActionRunConfig:
    model: ActionModelConfig = field(default_factory=ActionModelConfig)
    data: ActionDataConfig = field(default_factory=ActionDataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)


def clip_input(clip: ActionClip, *, persons: int) -> np.ndarray:
    """A clip as normalised model input (M=persons, T, 17, 3); undetected joints are zero."""
    kp = clip.h36m()  # (M, T, 17, 3) pixels + score
    x = np.concatenate([normalize_2d(kp[..., :2], clip.width, clip.height), kp[..., 2:3]], axis=-1)
    x[kp[..., 2] <= 0] = 0.0
    out = np.zeros((persons,) + x.shape[1:], np.float32)
    out[: min(persons, x.shape[0])] = x[:persons]
    return out


def windows(x: np.ndarray, *, clip_len: int, frame_step: int, starts: list[int] | None = None) -> np.ndarray:
    """(M, T, 17, 3) -> (N, M, clip_len, 17, 3): windows every ``clip_len * frame_step`` frames (or at ``starts``);
    clips shorter than a window are stretched by repeating frames."""
    t = x.shape[1]
    span = clip_len * frame_step
    if starts is None:
        starts = list(range(0, max(1, t - span + 1), span)) or [0]
    out = []
    for s in starts:
        idx = s + np.arange(clip_len) * frame_step
        if t < span:
            idx = np.linspace(0, t - 1, clip_len).round().astype(int)
        out.append(x[:, np.clip(idx, 0, t - 1)])
    return np.stack(out)


class ActionTask:
    """Action classification with cross-entropy; reports top-1 accuracy on the test split."""

    name = "action"
    config_class = ActionRunConfig

    def __init__(self, *, config: ActionRunConfig, dataset: ActionDataset | None = None) -> None:
        self.config = config
        self._data = dataset

    def dataset(self) -> ActionDataset:
        """The action set (read, or generated and cached, on first use)."""
        if self._data is None:
            d = self.config.data
            if d.pickle:
                self._data = read_action_pickle(d.pickle)
            else:
                cache = Path(d.cache)
                if cache.is_file():
                    self._data = read_action_pickle(cache)
                else:
                    n_tr, n_te = d.train_identities, d.test_identities
                    self._data = generate_action_set(train_identities=range(n_tr),
                                                     test_identities=range(n_tr, n_tr + n_te),
                                                     clips_per_pair=d.clips_per_pair, num_frames=d.num_frames,
                                                     seed=d.seed)
                    write_action_pickle(cache, self._data)
            for s in (self.config.data.train_split, self.config.data.test_split):
                if not self._data.subset(s):
                    raise InputError(f"split {s!r} of the action set is empty")
                bad = sorted({c.label for c in self._data.subset(s)} - set(range(len(self._data.classes))))
                if bad:
                    raise InputError(f"split {s!r} of the action set has labels {bad[:5]} outside the "
                                     f"{len(self._data.classes)} classes 0..{len(self._data.classes) - 1}")
        return self._data

    @property
    def classes(self) -> list[str]:
        return self.dataset().classes

    def build_model(self) -> nn.Module:
        from hmore.lift.infer import check_clip_fits

        m = self.config.model
        model = create_model(m.name, **{**m.kwargs, "num_classes": len(self.classes)})
        check_clip_fits(model, self.config.data.clip_len, name=m.name)
        if m.backbone_init:
            from hmore.lift.pipeline import load_lifter

            src = Path(m.backbone_init)
            lifter = load_lifter(checkpoint=src) if src.exists() else load_lifter(weights=m.backbone_init)
            missing = model.backbone.load_state_dict(lifter.state_dict(), strict=False)
            log.info("backbone initialised from %s (missing %d, unexpected %d keys)", m.backbone_init,
                     len(missing.missing_keys), len(missing.unexpected_keys))
        return model

    def model_config(self) -> dict:
        m = self.config.model
        return {"name": m.name, "kwargs": {**m.kwargs, "num_classes": len(self.classes)},
                "classes": list(self.classes), "clip_len": self.config.data.clip_len,
                "frame_step": self.config.data.frame_step, "persons": self.config.data.persons}

    def batch(self, step: int, *, rank: int, world_size: int, batch_size: int) -> dict[str, torch.Tensor]:
        d = self.config.data
        train = self.dataset().subset(d.train_split)
        xs, ys = [], []
        for g in range(rank * batch_size, (rank + 1) * batch_size):
            rng = np.random.default_rng([d.seed, 41, step, g])
            clip = train[int(rng.integers(len(train)))]
            x = clip_input(clip, persons=d.persons)
            span = d.clip_len * d.frame_step
            start = int(rng.integers(0, max(1, x.shape[1] - span + 1)))
            w = windows(x, clip_len=d.clip_len, frame_step=d.frame_step, starts=[start])[0]  # (M, L, 17, 3)
            if rng.random() < d.flip_prob:
                w, _ = flip_pair(w)
            w = w.copy()
            seen = w[..., 2:3] > 0
            w[..., :2] += rng.normal(0, d.jitter, size=w[..., :2].shape) * seen
            xs.append(w)
            ys.append(clip.label)
        return {"x": torch.from_numpy(np.stack(xs).astype(np.float32)), "y": torch.tensor(ys, dtype=torch.long)}

    def loss(self, model: nn.Module, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
        logits = model(batch["x"])  # (B, classes)
        loss = F.cross_entropy(logits.float(), batch["y"])
        acc = (logits.argmax(dim=-1) == batch["y"]).float().mean()
        return loss, {"acc": acc.item()}

    @torch.no_grad()
    def predict(self, model: nn.Module, clips: list[ActionClip]) -> np.ndarray:
        """(N, classes) class probabilities, averaged over each clip's windows."""
        d = self.config.data
        return predict_clips(model, clips, clip_len=d.clip_len, frame_step=d.frame_step, persons=d.persons)

    def evaluate(self, model: nn.Module) -> dict[str, float]:
        test = self.dataset().subset(self.config.data.test_split)
        prob = self.predict(model, test)
        labels = np.array([c.label for c in test])
        return {"top1": float((prob.argmax(axis=1) == labels).mean())}

    def images(self, model: nn.Module, batch: Any) -> dict[str, np.ndarray]:
        return {}


@torch.no_grad()
def predict_clips(model: nn.Module, clips: list[ActionClip], *, clip_len: int, frame_step: int,
                  persons: int) -> np.ndarray:
    """(N, classes) class probabilities of ``clips``, averaged over each clip's windows."""
    dev = next(model.parameters()).device
    was = model.training
    model.eval()
    out = []
    for c in clips:
        w = windows(clip_input(c, persons=persons), clip_len=clip_len, frame_step=frame_step)
        out.append(model(torch.from_numpy(w).to(dev)).float().softmax(dim=-1).mean(dim=0).cpu().numpy())
    model.train(was)
    return np.stack(out)
