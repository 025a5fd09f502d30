"""Weights shipped inside the package: ``hmore/assets/weights/<name>.safetensors`` + ``<name>.json``.

The JSON file is the weights' passport: the model to build (registry name or builder, and its keyword arguments),
the training task, data and seeds, the recipe (resolved run config), steps, metrics, licence, and the sha256 of the
safetensors file. :func:`load_model` never touches the network: it checks the hash, builds the model and loads the
tensors with their names and shapes checked. :func:`export_weights` turns a training checkpoint into such a pair.
"""

from __future__ import annotations

import hashlib
import importlib
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from hmore.errors import InputError, UsageError
from hmore.io.atomic import write_json_atomic
from hmore.io.jsonfile import read_json
from hmore.paths import assets_dir
from hmore.train.checkpoint import load_weights_into, read_metadata, resolve_checkpoint, save_weights

log = logging.getLogger(__name__)

_DTYPES = {"float16": torch.float16, "bfloat16": torch.bfloat16, "float32": torch.float32}
_RESERVED = ("name", "model", "sha256", "size_bytes", "file", "dtype")


def default_weights_dir() -> Path:
    """The folder of the weights shipped with the package."""
    return assets_dir() / "weights"


def list_weights(weights_dir: str | Path | None = None) -> list[str]:
    """Names of the weights present in ``weights_dir`` (default: the shipped ones), sorted."""
    root = _root(weights_dir)
    if not root.is_dir():
        return []
    return sorted(p.stem for p in root.glob("*.json") if p.with_suffix(".safetensors").is_file())


def sha256_file(path: str | Path) -> str:
    """Hex sha256 of a file, read in 1 MB chunks."""
    h = hashlib.sha256()
    with Path(path).open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def read_weights_metadata(name: str, *, weights_dir: str | Path | None = None) -> dict[str, Any]:
    """The JSON metadata of the weights ``name``; :class:`InputError` naming the file if it is missing or broken."""
    root = _root(weights_dir)
    path = root / f"{name}.json"
    if not path.is_file():
        known = ", ".join(list_weights(root)) or "none"
        raise InputError(f"weights metadata file not found: {path} (weights available there: {known})")
    meta = read_json(path, what="weights metadata file")
    if not isinstance(meta, dict) or not isinstance(meta.get("model"), dict) or "sha256" not in meta:
        raise InputError(f"weights metadata file {path} lacks the 'model' and 'sha256' entries")
    return meta


def weights_file(spec: str | Path, *, weights_dir: str | Path | None = None) -> Path:
    """The ``.safetensors`` file a ``--weights`` argument means: an existing file as given, else the shipped weights
    of that name (their sha256 checked against their JSON).

    Raises:
        InputError: neither a file nor shipped weights (the message lists the shipped names), or a corrupt file.
    """
    path = Path(spec)
    if path.is_file():
        return path
    name, shipped = str(spec), list_weights(weights_dir)
    if path.suffix or "/" in name or name not in shipped:
        known = ", ".join(shipped) or "none"
        raise InputError(f"weights file not found: {spec} (nor shipped weights of that name; shipped: {known})")
    meta = read_weights_metadata(name, weights_dir=weights_dir)
    return _checked_file(_root(weights_dir) / f"{name}.safetensors", meta)


def _checked_file(path: Path, meta: Mapping[str, Any]) -> Path:
    """``path`` if it exists and its sha256 is the one its JSON records; else :class:`InputError`."""
    if not path.is_file():
        raise InputError(f"weights file not found: {path}")
    digest = sha256_file(path)
    if digest != meta["sha256"]:
        raise InputError(f"corrupt weights file {path}: sha256 {digest[:16]}... differs from the recorded "
                         f"{str(meta['sha256'])[:16]}... in {path.with_suffix('.json').name}")
    return path


def list_ensembles(weights_dir: str | Path | None = None) -> list[str]:
    """Names of the score ensembles (``<name>.ensemble.json``: member weights and fusion weights) in ``weights_dir``."""
    root = _root(weights_dir)
    return sorted(p.name[: -len(".ensemble.json")] for p in root.glob("*.ensemble.json")) if root.is_dir() else []


def read_ensemble_metadata(name: str, *, weights_dir: str | Path | None = None) -> dict[str, Any]:
    """The JSON of the ensemble ``name``: ``members``, a list of ``{"weights": shipped name, "weight": w}``, and its
    provenance (how the fusion weights were chosen, metrics); :class:`InputError` naming the file if it is broken."""
    path = _root(weights_dir) / f"{name}.ensemble.json"
    meta = read_json(path, what="ensemble file")
    members = meta.get("members") if isinstance(meta, dict) else None
    if not isinstance(members, list) or not members or not all(
            isinstance(m, dict) and isinstance(m.get("weights"), str) and isinstance(m.get("weight", 1.0), (int, float))
            for m in members):
        raise InputError(f"ensemble file {path} needs 'members': [{{'weights': NAME, 'weight': W}}, ...]")
    return meta


def build_model_from_config(model_config: Mapping[str, Any], *, source: str = "model config") -> torch.nn.Module:
    """Build a model from ``{"name": registry name, "kwargs": {...}}`` or ``{"builder": "hmore.x:fn", "kwargs"}``.

    Builders outside the ``hmore`` package are refused (metadata files must not run arbitrary code).
    """
    kwargs = dict(model_config.get("kwargs") or {})
    if "builder" in model_config:
        target = str(model_config["builder"])
        module_name, _, fn_name = target.partition(":")
        if not (module_name == "hmore" or module_name.startswith("hmore.")) or not fn_name:
            raise InputError(f"{source}: builder {target!r} must be a 'hmore.module:function' string")
        try:
            fn = getattr(importlib.import_module(module_name), fn_name)
        except (ImportError, AttributeError) as exc:
            raise InputError(f"{source}: cannot import builder {target!r}: {exc}") from None
        return fn(**kwargs)
    if "name" in model_config:
        from hmore.registry import create_model

        try:
            return create_model(str(model_config["name"]), **kwargs)
        except UsageError as exc:
            raise InputError(f"{source}: {exc}") from None
    raise InputError(f"{source}: model config {dict(model_config)!r} names neither a model nor a builder")


def load_model(name: str, *, device: str | torch.device = "cpu", weights_dir: str | Path | None = None
               ) -> torch.nn.Module:
    """The model ``name`` with its shipped weights, in eval mode, on ``device``. Never uses the network.

    Args:
        name: the weights' name, e.g. ``"hmore_flow_cpu"`` (files ``<name>.safetensors`` and ``<name>.json``).
        device: where to put the model.
        weights_dir: folder holding the files (default: the package's ``assets/weights``).

    Raises:
        InputError: a missing or corrupt file (named in the message), a hash mismatch, or tensors whose names or
            shapes do not fit the model.
    """
    meta = read_weights_metadata(name, weights_dir=weights_dir)
    path = _checked_file(_root(weights_dir) / f"{name}.safetensors", meta)
    model = build_model_from_config(meta["model"], source=str(path.with_suffix(".json")))
    load_weights_into(model, path, strict=True)
    return model.to(device).eval()


def export_weights(run_dir_or_checkpoint: str | Path, name: str, *, metadata: Mapping[str, Any],
                   out_dir: str | Path | None = None, dtype: str = "float16") -> tuple[Path, Path]:
    """Turn a training checkpoint into shippable weights: ``<out_dir>/<name>.safetensors`` and ``<name>.json``.

    Args:
        run_dir_or_checkpoint: a run folder (its last checkpoint) or a checkpoint's ``.safetensors`` file.
        name: the weights' name (file stem).
        metadata: what the JSON should say besides what the checkpoint knows: training data and seeds, metrics,
            recipe command, licence ... (keys ``name``, ``model``, ``sha256``, ``size_bytes``, ``file`` and ``dtype``
            are set by this function).
        out_dir: destination (default: the package's ``assets/weights``).
        dtype: storage dtype of floating-point tensors: ``"float16"`` (half the size), ``"bfloat16"`` or ``"float32"``.

    Returns:
        ``(safetensors path, json path)``.
    """
    if dtype not in _DTYPES:
        raise UsageError(f"dtype must be one of {sorted(_DTYPES)}, got {dtype!r}")
    clash = sorted(set(metadata) & set(_RESERVED))
    if clash:
        raise UsageError(f"metadata keys {clash} are set by export_weights itself")
    src = resolve_checkpoint(run_dir_or_checkpoint)
    ckpt_meta = read_metadata(src)
    model_config = ckpt_meta.get("model_config")
    if not isinstance(model_config, dict):
        raise InputError(f"checkpoint {src} carries no model_config in its metadata")
    model = build_model_from_config(model_config, source=str(src))
    load_weights_into(model, src, strict=True)
    root = Path(out_dir) if out_dir is not None else default_weights_dir()
    root.mkdir(parents=True, exist_ok=True)
    st_path = root / f"{name}.safetensors"
    save_weights(st_path, model, metadata={"name": name, "model": model_config}, dtype=_DTYPES[dtype])
    info: dict[str, Any] = {
        "name": name,
        "model": model_config,
        "task": ckpt_meta.get("task"),
        "step": ckpt_meta.get("step"),
        "recipe": ckpt_meta.get("run_config"),
        "source_checkpoint": src.name,
        "licence": "MIT (weights trained by hmore on generated data)",
    }
    info.update(metadata)
    info.update(file=st_path.name, dtype=dtype, size_bytes=st_path.stat().st_size, sha256=sha256_file(st_path))
    json_path = write_json_atomic(root / f"{name}.json", info)
    log.info("exported %s (%.2f MB, %s)", st_path, info["size_bytes"] / 1e6, dtype)
    return st_path, json_path


__all__ = ["build_model_from_config", "export_weights", "list_ensembles", "list_weights", "load_model",
           "read_ensemble_metadata", "read_weights_metadata", "sha256_file", "default_weights_dir", "weights_file"]


def _root(weights_dir: str | Path | None) -> Path:
    return Path(weights_dir) if weights_dir is not None else default_weights_dir()
