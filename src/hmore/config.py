"""Strict configs: frozen dataclasses filled from YAML/JSON files, dicts and ``key=value`` overrides.

Unknown keys are errors (with the key's dotted path), values are type-checked and coerced where it is safe
(int -> float, list -> tuple), nested dataclasses are built recursively. A YAML file may name a ``base:`` file
(relative to itself) whose values it overrides, so variants inherit instead of being copied.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import types
import typing
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

from hmore.errors import ConfigError, UsageError

T = TypeVar("T")

BASE_KEY = "base"


def _read_file(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    text = path.read_text()
    try:
        if path.suffix in (".yaml", ".yml"):
            import yaml

            data = yaml.safe_load(text) or {}
        else:
            data = json.loads(text)
    except Exception as exc:  # noqa: BLE001 - any parse failure is the user's file
        raise ConfigError(f"cannot parse config {path}: {exc}".splitlines()[0]) from exc
    if not isinstance(data, dict):
        raise ConfigError(f"config {path} must hold a mapping at the top level, got {type(data).__name__}")
    base = data.pop(BASE_KEY, None)
    if base is not None:
        merged = _read_file((path.parent / base).resolve())
        return deep_merge(merged, data)
    return data


def deep_merge(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    """``over`` on top of ``base``; nested mappings merge key by key, anything else is replaced."""
    out = dict(base)
    for k, v in over.items():
        if isinstance(v, Mapping) and isinstance(out.get(k), Mapping):
            out[k] = deep_merge(out[k], v)
        else:
            out[k] = v
    return out


def parse_overrides(items: Sequence[str]) -> dict[str, Any]:
    """``["train.lr=1e-3", "model.name=x"]`` -> nested dict; values parsed as YAML scalars/lists."""
    import yaml

    out: dict[str, Any] = {}
    for item in items:
        if "=" not in item:
            raise ConfigError(f"override {item!r} is not of the form key=value")
        key, raw = item.split("=", 1)
        value = yaml.safe_load(raw) if raw else ""
        node = out
        parts = key.strip().split(".")
        for p in parts[:-1]:
            node = node.setdefault(p, {})
        node[parts[-1]] = value
    return out


def _coerce(value: Any, tp: Any, where: str) -> Any:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if tp is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for a in args:
            if a is type(None):
                continue
            try:
                return _coerce(value, a, where)
            except ConfigError as exc:
                errors.append(str(exc))
        raise ConfigError(f"{where}: {value!r} fits none of {tp}")
    if typing.get_origin(tp) is typing.Literal:
        if value not in args:
            raise ConfigError(f"{where}: {value!r} is not one of {list(args)}")
        return value
    if dataclasses.is_dataclass(tp):
        if isinstance(value, tp):
            return value
        if not isinstance(value, Mapping):
            raise ConfigError(f"{where}: expected a mapping for {tp.__name__}, got {value!r}")
        return from_dict(tp, value, _where=where)
    if origin in (tuple, list, Sequence) or tp in (tuple, list):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        if origin is tuple and len(args) == 2 and args[1] is Ellipsis:
            return tuple(_coerce(v, args[0], f"{where}[{i}]") for i, v in enumerate(value))
        if origin is tuple and args:
            if len(args) != len(value):
                raise ConfigError(f"{where}: expected {len(args)} items, got {len(value)}")
            return tuple(_coerce(v, a, f"{where}[{i}]") for i, (v, a) in enumerate(zip(value, args)))
        inner = args[0] if args else Any
        seq = [_coerce(v, inner, f"{where}[{i}]") for i, v in enumerate(value)]
        return seq if origin is list or tp is list else tuple(seq)
    if origin in (dict, Mapping) or tp is dict:
        if not isinstance(value, Mapping):
            raise ConfigError(f"{where}: expected a mapping, got {value!r}")
        return dict(value)
    if tp is float:
        if isinstance(value, str):  # YAML 1.1 reads 1e-4 (no dot) as a string
            with contextlib.suppress(ValueError):
                value = float(value)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where}: expected a number, got {value!r}")
        return float(value)
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where}: expected an integer, got {value!r}")
        return value
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: expected true or false, got {value!r}")
        return value
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where}: expected a string, got {value!r}")
        return value
    if isinstance(tp, type) and not isinstance(value, tp):
        raise ConfigError(f"{where}: expected {tp.__name__}, got {value!r}")
    return value


def from_dict(cls: type[T], data: Mapping[str, Any], *, _where: str = "") -> T:
    """Build the frozen dataclass ``cls`` from ``data``; unknown keys and wrong types raise :class:`ConfigError`."""
    if not dataclasses.is_dataclass(cls):
        raise TypeError(f"{cls!r} is not a dataclass")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        prefix = f"{_where}." if _where else ""
        raise ConfigError(
            f"unknown config key(s) {', '.join(prefix + u for u in unknown)} for {cls.__name__}; "
            f"known: {', '.join(sorted(fields))}"
        )
    kwargs = {}
    for name, value in data.items():
        where = f"{_where}.{name}" if _where else name
        kwargs[name] = _coerce(value, hints[name], where)
    try:
        return cls(**kwargs)
    except TypeError as exc:  # missing required fields
        raise ConfigError(f"{_where or cls.__name__}: {exc}") from exc


def to_dict(cfg: Any) -> Any:
    """A dataclass config as plain JSON-able data (tuples become lists)."""
    if dataclasses.is_dataclass(cfg):
        return {f.name: to_dict(getattr(cfg, f.name)) for f in dataclasses.fields(cfg)}
    if isinstance(cfg, (list, tuple)):
        return [to_dict(v) for v in cfg]
    if isinstance(cfg, Mapping):
        return {k: to_dict(v) for k, v in cfg.items()}
    if isinstance(cfg, Path):
        return str(cfg)
    return cfg


def load_config(cls: type[T], source: str | Path | Mapping[str, Any] | None = None,
                overrides: Sequence[str] | Mapping[str, Any] = ()) -> T:
    """Load ``cls`` from a file path or mapping (or its defaults), then apply ``overrides``.

    Args:
        cls: the frozen dataclass type of the config.
        source: a YAML/JSON file (may name a ``base:``), a mapping, or None for the defaults.
        overrides: ``key=value`` strings or a nested mapping applied on top.
    """
    if source is None:
        data: dict[str, Any] = {}
    elif isinstance(source, Mapping):
        data = dict(source)
    else:
        data = _read_file(Path(source))
    over = parse_overrides(overrides) if not isinstance(overrides, Mapping) else dict(overrides)
    return from_dict(cls, deep_merge(data, over))


def replace(cfg: T, **changes: Any) -> T:
    """A copy of a frozen config with ``changes`` (validated like any other value)."""
    return from_dict(type(cfg), deep_merge(to_dict(cfg), changes))


def resolve_switch(value: Any, cls: type[T], *, on: str, what: str,
                   presets: Mapping[str, dict[str, Any]] | None = None) -> T | None:
    """An optional processing step given by name or settings: ``on`` -> ``cls()`` (the default settings), a name of
    ``presets`` -> ``cls(**presets[name])``, ``"off"`` or None -> None, an instance of ``cls`` as it is; anything else
    is a :class:`UsageError` naming ``what`` and every accepted name."""
    presets = presets or {}
    if value is None or isinstance(value, cls):
        return value
    if value == "off":
        return None
    if value == on:
        return cls()
    if isinstance(value, str) and value in presets:
        return cls(**presets[value])
    raise UsageError(f"{what} must be one of {', '.join([on, *presets, 'off'])}, got {value!r}")

