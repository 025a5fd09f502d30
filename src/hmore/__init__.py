"""hmore: human-centric motion representation and action analysis."""

from __future__ import annotations

__version__ = "0.1.0"

import os  # noqa: E402

# OpenMP threads that spin while waiting for work make torch many times slower on a busy machine (2 threads on 2 busy
# cores: 0.2-0.6 pairs/s for `hmore flow` against 3-7 with sleeping threads; benchmarks/flow_threads.py). libgomp
# reads the policy when torch loads, so it is set here, before anything imports torch, unless the user chose one.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from typing import TYPE_CHECKING  # noqa: E402

from hmore.registry import create_model, list_models, register_model  # noqa: E402

if TYPE_CHECKING:
    import torch

__all__ = ["__version__", "create_model", "flow", "list_models", "load_model", "register_model"]


def load_model(name: str, *, device: str = "cpu", weights_dir: str | None = None) -> torch.nn.Module:
    """The model ``name`` with its shipped weights, in eval mode (lazy wrapper of :func:`hmore.weights.load_model`)."""
    from hmore.weights import load_model as _load_model

    return _load_model(name, device=device, weights_dir=weights_dir)


def __getattr__(name: str) -> object:
    # ``hmore.flow`` is the flow package, callable as ``hmore.flow(video, ...)``; imported on first use (torch).
    if name == "flow":
        import importlib

        return importlib.import_module("hmore.flow")
    raise AttributeError(f"module 'hmore' has no attribute {name!r}")
