"""One explicit registry of model builders.

A builder is a function returning an ``nn.Module``; ``@register_model`` records it under its name. Variants
(``hmore_flow``, ``hmore_flow_cpu``, ``hmore_flow_test`` ...) are separate builders; keyword overrides pass through
to the builder, so a test can call ``create_model("hmore_flow_test", corr_levels=2)``.
"""

from __future__ import annotations

import fnmatch
import importlib
import logging
from collections.abc import Callable
from typing import Any, TypeVar

from hmore.errors import UsageError

log = logging.getLogger(__name__)

F = TypeVar("F", bound=Callable[..., Any])

_REGISTRY: dict[str, Callable[..., Any]] = {}
_LOADED = False


def register_model(fn: F | None = None, *, name: str | None = None) -> Any:
    """Register a model builder under ``name`` (default: the function's name).

    Usable as ``@register_model`` or ``@register_model(name="x")``. Registering a name twice keeps the newer
    builder and logs a warning.
    """

    def deco(f: F) -> F:
        key = name or f.__name__
        if key in _REGISTRY and _REGISTRY[key] is not f:
            log.warning("model %r registered twice; the later builder (%s) wins", key, f.__module__)
        _REGISTRY[key] = f
        return f

    return deco(fn) if fn is not None else deco


def _load_builtin_models() -> None:
    """Import hmore's model packages once so that their builders register themselves."""
    global _LOADED
    if not _LOADED:
        _LOADED = True
        importlib.import_module("hmore.models")


def list_models(pattern: str = "*") -> list[str]:
    """Names of the registered models matching a shell-style ``pattern``, sorted."""
    _load_builtin_models()
    return sorted(n for n in _REGISTRY if fnmatch.fnmatchcase(n, pattern))


def get_builder(name: str) -> Callable[..., Any]:
    """The builder registered as ``name``; :class:`UsageError` listing the known names otherwise."""
    _load_builtin_models()
    try:
        return _REGISTRY[name]
    except KeyError:
        known = ", ".join(sorted(_REGISTRY)) or "none"
        raise UsageError(f"unknown model {name!r}; registered models: {known}") from None


def create_model(name: str, **overrides: Any) -> Any:
    """Build the model registered as ``name``, passing ``overrides`` to its builder."""
    return get_builder(name)(**overrides)
