"""Training tasks, registered by name for ``hmore train TASK``.

A task name maps to a ``"module:Class"`` string, imported only when the task is asked for, so a task whose module
is missing (not written yet, or an optional dependency absent) fails alone with a clear message.

A task class provides:
    * ``config_class``: a frozen dataclass with ``model``, ``data`` and ``train`` sections, ``train`` being a
      :class:`hmore.train.engine.TrainConfig`; loaded strictly by :func:`hmore.config.load_config`;
    * ``__init__(self, *, config)`` building the task from that config;
    * the methods of the :class:`hmore.train.engine.Task` protocol.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from hmore.config import load_config, to_dict
from hmore.errors import UsageError

log = logging.getLogger(__name__)

TASKS: dict[str, str] = {
    "toy": "hmore.train.tasks.toy:ToyTask",
    "flow": "hmore.flow.task:FlowTask",
    "lift": "hmore.train.tasks.lift:LiftTask",
    "action": "hmore.train.tasks.action:ActionTask",
    "concepts": "hmore.train.tasks.concepts:ConceptsTask",
    "concept_qa": "hmore.train.tasks.concepts:ConceptQATask",
    "lift_h36m": "hmore.train.tasks.lift_h36m:H36MLiftTask",
    "mesh": "hmore.mesh.task:MeshTask",
    "gait": "hmore.gait.task:GaitTask",
    "action_flow": "hmore.fineaction.task:ActionFlowTask",
}


def register_task(name: str, target: str) -> None:
    """Register (or replace, with a warning) the task ``name`` as ``"module:Class"``."""
    if ":" not in target:
        raise ValueError(f"task target must look like 'module:Class', got {target!r}")
    if name in TASKS and TASKS[name] != target:
        log.warning("task %r re-registered: %s replaces %s", name, target, TASKS[name])
    TASKS[name] = target


def list_tasks() -> list[str]:
    """The registered task names, sorted."""
    return sorted(TASKS)


def task_class(name: str) -> type:
    """Import and return the class of task ``name``; :class:`UsageError` for unknown or unavailable tasks."""
    if name not in TASKS:
        raise UsageError(f"unknown training task {name!r}; known tasks: {', '.join(list_tasks())}")
    module_name, _, class_name = TASKS[name].partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise UsageError(f"training task {name!r} is not available: cannot import {module_name} ({exc})") from None
    try:
        cls = getattr(module, class_name)
    except AttributeError:
        raise UsageError(f"training task {name!r} is not available: {module_name} has no {class_name}") from None
    if not hasattr(cls, "config_class"):
        raise UsageError(f"training task {name!r}: {TASKS[name]} lacks the 'config_class' attribute")
    return cls


def load_task_config(name: str, source: str | Path | Mapping[str, Any] | None = None,
                     overrides: Sequence[str] | Mapping[str, Any] = ()) -> Any:
    """The strict run config of task ``name`` from a YAML/JSON file (``base:`` inheritance) and overrides."""
    return load_config(task_class(name).config_class, source, overrides)


def build_task(name: str, config: Any) -> Any:
    """An instance of task ``name`` built from its run config (a ``config_class`` instance or a mapping)."""
    cls = task_class(name)
    if not isinstance(config, cls.config_class):
        config = load_config(cls.config_class, to_dict(config) if not isinstance(config, Mapping) else config)
    return cls(config=config)
