"""Optimiser and learning-rate schedule of the training engine: AdamW, linear warm-up, exponential decay."""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import TYPE_CHECKING

import torch

from hmore.errors import ConfigError

if TYPE_CHECKING:
    from hmore.train.engine import OptimConfig


def lr_factor(step: int, *, decay_gamma: float, decay_every: int, warmup_steps: int) -> float:
    """The multiplier of the base learning rate at optimiser step ``step`` (0-based).

    Linear warm-up from ``1 / warmup_steps`` to 1 over the first ``warmup_steps`` steps, then the rate is multiplied
    by ``decay_gamma`` every ``decay_every`` steps (counted from the end of the warm-up).

    Args:
        step: the number of optimiser steps already taken.
        decay_gamma: exponential decay factor (1 disables the decay).
        decay_every: steps between two decays.
        warmup_steps: length of the linear warm-up (0 disables it).
    """
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    return float(decay_gamma ** ((step - warmup_steps) // decay_every))


def check_optim(optim: OptimConfig) -> None:
    """Raise :class:`ConfigError` when an :class:`~hmore.train.engine.OptimConfig` holds impossible values."""
    lr = optim.lr
    if not (lr > 0 and math.isfinite(lr)):
        raise ConfigError(f"train.optim.lr must be a positive number, got {lr}")
    if not 0 < optim.decay_gamma <= 1:
        raise ConfigError(f"train.optim.decay_gamma must lie in (0, 1], got {optim.decay_gamma}")
    if optim.decay_every < 1:
        raise ConfigError(f"train.optim.decay_every must be >= 1, got {optim.decay_every}")
    if optim.warmup_steps < 0 or optim.grad_clip < 0 or optim.weight_decay < 0:
        raise ConfigError("train.optim.warmup_steps, grad_clip and weight_decay must be >= 0")


def build_optimizer(params: Iterable[torch.nn.Parameter], optim: OptimConfig) -> torch.optim.AdamW:
    """AdamW over the trainable ``params`` with the settings of an ``OptimConfig``."""
    check_optim(optim)
    trainable = [p for p in params if p.requires_grad]
    if not trainable:
        raise ValueError("the model has no trainable parameters")
    return torch.optim.AdamW(
        trainable,
        lr=optim.lr,
        betas=tuple(optim.betas),
        weight_decay=optim.weight_decay,
    )


def build_scheduler(optimizer: torch.optim.Optimizer, optim: OptimConfig) -> torch.optim.lr_scheduler.LambdaLR:
    """A ``LambdaLR`` applying :func:`lr_factor`; step it once per optimiser step."""
    gamma, every, warm = optim.decay_gamma, optim.decay_every, optim.warmup_steps
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: lr_factor(s, decay_gamma=gamma, decay_every=every, warmup_steps=warm)
    )
