"""hmore: human-centric motion representation and action analysis."""

from __future__ import annotations

__version__ = "0.1.0"

from hmore.registry import create_model, list_models, register_model  # noqa: E402

__all__ = ["__version__", "create_model", "list_models", "register_model"]
