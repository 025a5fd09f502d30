"""The ``action_flow`` training task: fine-grained action classes from RGB with optional flow channels.

Input (``data.channels``): ``rgb`` plus any of ``dis``, ``world``, ``local``, ``exact_world``, ``exact_local`` joined
with ``+`` (early fusion), or flow channels alone (a two-stream classifier's flow stream). A sample is
``data.frames`` frames taken every ``data.frame_step`` frames of a clip; frame t carries pair t's flow (divided by
``data.flow_scale``; with ``data.flow_mask`` multiplied by frame t's person mask, the gait task's representation,
:func:`hmore.flowfeed.flow_channel`), so every row sees the same frames. Training samples start at a random frame
(when the clip is longer than the window), may be shifted by up to ``data.shift`` pixels and, with ``data.flip``, are
mirrored left-right half of the time (flow x negated, the label its mirror class,
:data:`hmore.fineaction.motions.MIRRORED`); evaluation uses the first window. The last ``data.val_identities``
training identities are held out (the validation split: the engine's periodic evaluation and
:meth:`ActionFlowTask.scores` with ``split="val"``, on which recipes are chosen); the test split (other identities)
is only scored by :meth:`ActionFlowTask.test`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from hmore.errors import ConfigError, InputError, UsageError
from hmore.fineaction.data import ActionArrays, load_action_set
from hmore.fineaction.motions import CLASSES, MIRRORED
from hmore.flowfeed import channels_of, flow_channel
from hmore.metrics.classification import confusion_matrix, topk_accuracy
from hmore.registry import create_model
from hmore.train.engine import TrainConfig


@dataclass(frozen=True)
class ActionFlowModelConfig:
    """Attributes: registered model name and builder overrides (in_channels and num_classes come from the data)."""

    name: str = "r2plus1d_cpu"
    kwargs: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ActionFlowDataConfig:
    """Attributes:
        root: the action set folder (``hmore.fineaction.data``).
        channels: ``rgb`` and/or flow channel names joined by ``+`` (flow alone: a flow stream).
        flow_key: the H-MoRe flow cache folder for ``world``/``local``.
        frames, frame_step: the window.
        flow_scale: flow channels are divided by this (pixels of the crop).
        flow_mask: multiply each flow channel by frame t's person mask (the generator's masks cropped with the clip,
            0..1), so flow off the person (the estimators' halo, the camera's motion on the background) is dropped.
        shift: random translation in training (pixels, 0: none).
        flip: mirror half the training samples left-right (flow x negated, the label its mirror class).
        val_identities: the last training identities, held out as the validation split.
        seed: seed of the sampling.
    """

    root: str = "runs/action_flow/full/set"
    channels: str = "rgb"
    flow_key: str = ""
    frames: int = 12
    frame_step: int = 2
    flow_scale: float = 4.0
    flow_mask: bool = False
    shift: int = 3
    flip: bool = False
    val_identities: int = 3
    seed: int = 0


@dataclass(frozen=True)
class ActionFlowRunConfig:
    model: ActionFlowModelConfig = field(default_factory=ActionFlowModelConfig)
    data: ActionFlowDataConfig = field(default_factory=ActionFlowDataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)


def flip_input(x: np.ndarray, *, rgb: bool) -> np.ndarray:
    """A model input (C, F, h, w) mirrored left-right: every channel reversed along w and, flow being (x, y) pairs
    after the 3 RGB channels (when ``rgb``), every flow x negated (a motion to the right becomes one to the left)."""
    out = x[..., ::-1].copy()
    first = 3 if rgb else 0
    if (x.shape[0] - first) % 2:
        raise ValueError(f"flip_input: (x, y) flow pairs after {first} image channels expected, got {x.shape[0]}")
    out[first::2] *= -1.0  # (C, F, h, w): channels first, first + 2, ... are the flows' x
    return out


def action_input(arrays: ActionArrays, k: int, start: int, *, frames: int, step: int, channels: tuple[str, ...],
                 flow_scale: float, flow_mask: bool = False, shift: tuple[int, int] = (0, 0), rgb: bool = True,
                 flip: bool = False) -> np.ndarray:
    """Item ``k``'s window as model input (C, frames, crop, crop) float32: RGB in [-1, 1] (unless not ``rgb``), flows
    by :func:`hmore.flowfeed.flow_channel` (masked to the person when ``flow_mask``, / flow_scale), mirrored by
    :func:`flip_input` when ``flip``."""
    n_pairs = len(arrays.rgb[k]) - 1
    idx = np.clip(start + np.arange(frames) * step, 0, n_pairs - 1)
    parts = [arrays.rgb[k][idx].astype(np.float32).transpose(3, 0, 1, 2) / 127.5 - 1.0] if rgb else []  # (3, F, c, c)
    person = None if arrays.mask is None else arrays.mask[k]
    for c in channels:
        f = flow_channel(arrays.flows[c][k], person, idx, flow_scale=flow_scale, mask=flow_mask,
                         step=arrays.flow_step)  # (F, 2, c, c)
        parts.append(f.transpose(1, 0, 2, 3))
    x = np.concatenate(parts, axis=0)
    if flip:
        x = flip_input(x, rgb=rgb)
    if shift != (0, 0):
        x = np.roll(x, shift, axis=(2, 3))
        dy, dx = shift
        if dy > 0:
            x[:, :, :dy] = 0
        elif dy < 0:
            x[:, :, dy:] = 0
        if dx > 0:
            x[:, :, :, :dx] = 0
        elif dx < 0:
            x[:, :, :, dx:] = 0
    return x


class ActionFlowTask:
    """Fine-grained action classification with cross-entropy (see the module docstring)."""

    name = "action_flow"
    config_class = ActionFlowRunConfig

    def __init__(self, *, config: ActionFlowRunConfig, train_arrays: ActionArrays | None = None,
                 test_arrays: ActionArrays | None = None) -> None:
        d = config.data
        names = d.channels.split("+")
        self.channels = channels_of(d.channels)
        self.rgb = "rgb" in names
        if "sil" in names or not (self.rgb or self.channels):
            raise ConfigError(f"data.channels must be rgb and/or flow channels, got {d.channels!r}")
        if not self.rgb and config.model.kwargs.get("extra_init_scale", 1.0) != 1.0:
            raise ConfigError("model.kwargs.extra_init_scale scales the flow after 3 RGB channels: a flow-only "
                              f"input ({d.channels!r}) has none; drop it")
        if d.frames < 1 or d.frame_step < 1 or d.flow_scale <= 0 or d.shift < 0 or d.val_identities < 0:
            raise ConfigError("data.frames, frame_step >= 1, flow_scale > 0, shift and val_identities >= 0 required")
        self.config = config
        self._train = train_arrays
        self._test = test_arrays
        self._val: ActionArrays | None = None
        self._split = False

    def _load(self) -> None:
        if self._split:
            return
        d = self.config.data
        load = dict(channels=self.channels, flow_key=d.flow_key or None, mask=d.flow_mask and bool(self.channels))
        if self._train is None:
            self._train = load_action_set(d.root, split="train", **load)
        if self._test is None:
            self._test = load_action_set(d.root, split="test", **load)
        ids = sorted({it.identity for it in self._train.items})
        if len(ids) - d.val_identities < 1:
            raise InputError(f"{len(ids)} training identities leave none after holding out {d.val_identities}")
        val = set(ids[len(ids) - d.val_identities:]) if d.val_identities else set()
        held = [k for k, it in enumerate(self._train.items) if it.identity in val]
        self._val = self._train.subset(held) if held else None
        self._train = self._train.subset([k for k, it in enumerate(self._train.items) if it.identity not in val])
        self._split = True

    @property
    def train_arrays(self) -> ActionArrays:
        self._load()
        assert self._train is not None
        return self._train

    @property
    def test_arrays(self) -> ActionArrays:
        self._load()
        assert self._test is not None
        return self._test

    @property
    def in_channels(self) -> int:
        return 3 * self.rgb + 2 * len(self.channels)

    def build_model(self) -> nn.Module:
        m = self.config.model
        return create_model(m.name, **{**m.kwargs, "in_channels": self.in_channels, "num_classes": len(CLASSES)})

    def model_config(self) -> dict:
        m, d = self.config.model, self.config.data
        return {"name": m.name, "kwargs": {**m.kwargs, "in_channels": self.in_channels, "num_classes": len(CLASSES)},
                "classes": list(CLASSES), "channels": d.channels, "flow_scale": d.flow_scale, "flow_key": d.flow_key,
                "flow_mask": d.flow_mask, "frames": d.frames, "frame_step": d.frame_step}

    def _window(self, arrays: ActionArrays, k: int, start: int, shift: tuple[int, int] = (0, 0),
                flip: bool = False) -> np.ndarray:
        d = self.config.data
        return action_input(arrays, k, start, frames=d.frames, step=d.frame_step, channels=self.channels,
                            flow_scale=d.flow_scale, flow_mask=d.flow_mask, shift=shift, rgb=self.rgb, flip=flip)

    def batch(self, step: int, *, rank: int, world_size: int, batch_size: int) -> dict[str, torch.Tensor]:
        d = self.config.data
        arrays = self.train_arrays
        xs, ys = [], []
        for g in range(rank * batch_size, (rank + 1) * batch_size):
            rng = np.random.default_rng([d.seed, 91, step, g])
            k = int(rng.integers(len(arrays)))
            span = (d.frames - 1) * d.frame_step + 1
            start = int(rng.integers(0, max(1, len(arrays.rgb[k]) - 1 - span + 1)))
            shift = tuple(int(v) for v in rng.integers(-d.shift, d.shift + 1, size=2)) if d.shift else (0, 0)
            flip = bool(d.flip and rng.random() < 0.5)  # drawn last: runs without flip keep their samples
            xs.append(self._window(arrays, k, start, shift, flip))  # type: ignore[arg-type]
            label = arrays.items[k].label
            ys.append(MIRRORED[label] if flip else label)
        return {"x": torch.from_numpy(np.stack(xs)), "y": torch.tensor(ys, dtype=torch.long)}

    def loss(self, model: nn.Module, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
        logits = model(batch["x"])
        loss = F.cross_entropy(logits.float(), batch["y"])
        return loss, {"acc": (logits.detach().argmax(dim=-1) == batch["y"]).float().mean()}

    @torch.no_grad()
    def predict(self, model: nn.Module, arrays: ActionArrays, *, batch: int = 16) -> np.ndarray:
        """(N, classes) class probabilities of every item (first window)."""
        dev = next(model.parameters()).device
        was = model.training
        model.eval()
        out = []
        for s in range(0, len(arrays), batch):
            x = np.stack([self._window(arrays, k, 0) for k in range(s, min(s + batch, len(arrays)))])
            out.append(model(torch.from_numpy(x).to(dev)).float().softmax(dim=-1).cpu().numpy())
        model.train(was)
        return np.concatenate(out)

    def evaluate(self, model: nn.Module) -> dict[str, float]:
        self._load()
        if self._val is None:
            return {}
        prob = self.predict(model, self._val)
        return {"val_top1": topk_accuracy(prob, self._val.labels, 1)}

    def test(self, model: nn.Module) -> dict[str, Any]:
        """:meth:`scores` on the test split."""
        return self.scores(model, "test")

    def scores(self, model: nn.Module, split: str = "test") -> dict[str, Any]:
        """Top-1/top-5 accuracy, the confusion matrix and the class probabilities (``probs``, with ``labels``) of
        ``split`` (``test``, or ``val``: the held-out training identities) on ``n`` clips; the validation split's
        probabilities and top-1 (``val_probs``, ``val_labels``, ``val_top1``; None without one), which a two-stream
        row's fusion weight is chosen on; and the top-1 on the training clips (``train_top1``, first window, no
        shift: how far the model memorised its training set).

        Raises:
            InputError: ``split="val"`` with no validation identities; UsageError: an unknown split.
        """
        if split not in ("val", "test"):
            raise UsageError(f"split must be val or test, got {split!r}")
        self._load()
        val = None if self._val is None else (self.predict(model, self._val), self._val.labels)
        if split == "val" and val is None:
            raise InputError("the validation split is empty: set data.val_identities (--recipe val_identities=N)")
        prob, labels = val if split == "val" else (self.predict(model, self.test_arrays), self.test_arrays.labels)
        train = self.train_arrays
        return {"split": split, "top1": topk_accuracy(prob, labels, 1), "top5": topk_accuracy(prob, labels, 5),
                "confusion": confusion_matrix(labels, prob.argmax(axis=1), len(CLASSES)).tolist(),
                "classes": list(CLASSES), "n": int(len(labels)), "probs": prob.tolist(), "labels": labels.tolist(),
                "val_probs": None if val is None else val[0].tolist(),
                "val_labels": None if val is None else val[1].tolist(),
                "val_top1": None if val is None else topk_accuracy(val[0], val[1], 1),
                "train_top1": topk_accuracy(self.predict(model, train), train.labels, 1), "train_n": len(train)}

    def images(self, model: nn.Module, batch: Any) -> dict[str, np.ndarray]:
        return {}
