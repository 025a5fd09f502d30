"""Training engine shared by every hmore model: :func:`hmore.train.engine.train` runs a task
(:mod:`hmore.train.tasks`) with checkpoints (:mod:`hmore.train.checkpoint`), exact resume, DDP
(:mod:`hmore.train.distributed`) and the optimiser schedule of :mod:`hmore.train.schedule`.

The engine's names load on first use, so the torch-free task registry (:mod:`hmore.train.tasks`, read when the CLI
builds its parsers) does not import torch."""

from __future__ import annotations

from typing import Any

__all__ = ["OptimConfig", "Task", "TrainConfig", "TrainSummary", "train"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from hmore.train import engine

        return getattr(engine, name)
    raise AttributeError(f"module 'hmore.train' has no attribute {name!r}")
