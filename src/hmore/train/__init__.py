"""Training engine shared by every hmore model: :func:`hmore.train.engine.train` runs a task
(:mod:`hmore.train.tasks`) with checkpoints (:mod:`hmore.train.checkpoint`), exact resume, DDP
(:mod:`hmore.train.distributed`) and the optimiser schedule of :mod:`hmore.train.schedule`."""

from hmore.train.engine import OptimConfig, Task, TrainConfig, TrainSummary, train

__all__ = ["OptimConfig", "Task", "TrainConfig", "TrainSummary", "train"]
