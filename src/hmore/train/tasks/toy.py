"""A tiny regression task that exercises the training engine in tests (resume, DDP, CLI) in a fraction of a second.

Data: ``y = x @ W + noise`` with ``W`` fixed by the data seed and ``x`` drawn from a generator seeded by
``(data seed, step)``, so the samples of a step never depend on what ran before.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from hmore.train.engine import TrainConfig


@dataclass(frozen=True)
class ToyModelConfig:
    """Attributes: in_dim, hidden and out_dim of a two-layer MLP; dropout after the hidden layer (0 = none)."""

    in_dim: int = 4
    hidden: int = 16
    out_dim: int = 2
    dropout: float = 0.0


@dataclass(frozen=True)
class ToyDataConfig:
    """Attributes: seed of the data stream; noise standard deviation; held-out samples for evaluation."""

    seed: int = 0
    noise: float = 0.01
    eval_samples: int = 64


@dataclass(frozen=True)
class ToyRunConfig:
    """The run config of ``hmore train toy``: model, data and engine sections."""

    model: ToyModelConfig = field(default_factory=ToyModelConfig)
    data: ToyDataConfig = field(default_factory=ToyDataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)


def build_toy_mlp(*, in_dim: int = 4, hidden: int = 16, out_dim: int = 2, dropout: float = 0.0) -> nn.Module:
    """Linear -> tanh -> dropout -> Linear."""
    return nn.Sequential(nn.Linear(in_dim, hidden), nn.Tanh(), nn.Dropout(dropout), nn.Linear(hidden, out_dim))


class ToyTask:
    """Regression of a fixed random linear map with an MLP (mean squared error)."""

    name = "toy"
    config_class = ToyRunConfig

    def __init__(self, *, config: ToyRunConfig) -> None:
        self.config = config
        m = config.model
        self._w = np.random.default_rng([config.data.seed, 1]).normal(size=(m.in_dim, m.out_dim))

    def build_model(self) -> nn.Module:
        return build_toy_mlp(**vars(self.config.model))

    def model_config(self) -> dict:
        return {"builder": "hmore.train.tasks.toy:build_toy_mlp", "kwargs": dict(vars(self.config.model))}

    def _samples(self, rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
        x = rng.normal(size=(n, self.config.model.in_dim))  # (N, in_dim)
        y = x @ self._w + self.config.data.noise * rng.normal(size=(n, self.config.model.out_dim))  # (N, out_dim)
        return x.astype(np.float32), y.astype(np.float32)

    def batch(self, step: int, *, rank: int, world_size: int, batch_size: int) -> dict[str, torch.Tensor]:
        rng = np.random.default_rng([self.config.data.seed, 2, step])
        x, y = self._samples(rng, batch_size * world_size)  # the global batch; this rank takes its slice
        sl = slice(rank * batch_size, (rank + 1) * batch_size)
        return {"x": torch.from_numpy(x[sl]), "y": torch.from_numpy(y[sl])}

    def loss(self, model: nn.Module, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
        err = model(batch["x"]) - batch["y"]  # (B, out_dim)
        loss = err.pow(2).mean()
        return loss, {"mae": float(err.detach().abs().mean())}

    def evaluate(self, model: nn.Module) -> dict[str, float]:
        x, y = self._samples(np.random.default_rng([self.config.data.seed, 3]), self.config.data.eval_samples)
        dev = next(model.parameters()).device
        pred = model(torch.from_numpy(x).to(dev)).cpu().numpy()
        return {"mse": float(np.mean((pred - y) ** 2))}

    def images(self, model: nn.Module, batch: dict[str, torch.Tensor]) -> dict[str, np.ndarray]:
        w = model[0].weight.detach().cpu().numpy()  # (hidden, in_dim)
        g = np.clip(128 + 64 * w, 0, 255).astype(np.uint8)
        return {"first_layer": np.repeat(g[:, :, None], 3, axis=2)}
