"""Checkpoints of the training engine: model weights as safetensors, the rest of the training state beside them.

A run folder holds ``checkpoints/step_XXXXXXX.safetensors`` (model weights, with the model config, the resolved run
config and the step in the safetensors metadata), ``checkpoints/step_XXXXXXX.state.pt`` (optimiser, scheduler,
grad-scaler and RNG states, step) and ``checkpoints/last`` naming the newest complete checkpoint. Every file is
written to a temporary name and renamed, state first and weights second, so a checkpoint whose weights file exists
is complete; a crash leaves at worst a temporary file, never a half checkpoint under the real name.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file

from hmore.errors import InputError
from hmore.io.atomic import as_disk_full, atomic_path, write_text_atomic

log = logging.getLogger(__name__)

CKPT_DIR = "checkpoints"
LAST = "last"
BEST = "best.safetensors"  # weights of the best evaluation so far (TrainConfig.best_metric); not a resumable checkpoint
WEIGHTS_SUFFIX = ".safetensors"
STATE_SUFFIX = ".state.pt"
META_KEY = "hmore"
_NAME_RE = re.compile(r"^step_(\d{7,})\.safetensors$")


def checkpoint_stem(step: int) -> str:
    """``step_0000123`` for step 123."""
    return f"step_{step:07d}"


def weights_state_dict(model: torch.nn.Module, *, dtype: torch.dtype | None = None) -> dict[str, torch.Tensor]:
    """The model's state dict ready for safetensors: on the CPU, contiguous, one name per shared tensor.

    Args:
        model: the model (unwrap DDP first).
        dtype: cast floating-point tensors to this dtype (e.g. ``torch.float16`` for shipping); None keeps them.
    """
    out: dict[str, torch.Tensor] = {}
    seen: set[tuple[int, int, tuple[int, ...], tuple[int, ...]]] = set()
    for name, t in model.state_dict().items():
        if t.numel() > 0:  # tied parameters appear under several names: keep the first one only
            key = (t.untyped_storage().data_ptr(), t.storage_offset(), tuple(t.shape), tuple(t.stride()))
            if key in seen:
                continue
            seen.add(key)
        t = t.detach().to("cpu")
        if dtype is not None and t.is_floating_point():
            t = t.to(dtype)
        out[name] = t.contiguous().clone()
    return out


def save_weights(path: str | Path, model: torch.nn.Module, *, metadata: Mapping[str, Any],
                 dtype: torch.dtype | None = None) -> Path:
    """Write the model's weights to ``path`` atomically, with ``metadata`` (JSON-able) in the header.

    The metadata is stored as one JSON string under the header key ``hmore`` (safetensors writes several keys in a
    random order; one key keeps the bytes reproducible, so a shipped file's sha256 is stable).
    """
    meta = {META_KEY: json.dumps(dict(metadata), sort_keys=True)}
    tensors = weights_state_dict(model, dtype=dtype)
    try:
        with atomic_path(path) as tmp:
            save_file(tensors, str(tmp), metadata=meta)
    except SafetensorError as exc:
        raise as_disk_full(path, exc) or exc from None
    return Path(path)


def read_metadata(path: str | Path) -> dict[str, Any]:
    """The metadata saved by :func:`save_weights` (other header keys as strings); :class:`InputError` if unreadable."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"weights file not found: {path}")
    try:
        with safe_open(str(path), framework="pt") as fh:
            raw = fh.metadata() or {}
    except (SafetensorError, OSError, ValueError) as exc:
        raise InputError(f"corrupt or unreadable weights file {path}: {exc}") from None
    out: dict[str, Any] = {k: v for k, v in raw.items() if k != META_KEY}
    if META_KEY in raw:
        try:
            out.update(json.loads(raw[META_KEY]))
        except json.JSONDecodeError as exc:
            raise InputError(f"corrupt metadata in weights file {path}: {exc}") from None
    return out


def load_weights_into(model: torch.nn.Module, path: str | Path, *, strict: bool = True) -> dict[str, Any]:
    """Load the safetensors file ``path`` into ``model``, checking names and shapes.

    Args:
        model: the model to fill (its parameters keep their dtype and device).
        path: a ``.safetensors`` file written by :func:`save_weights`.
        strict: raise on missing or unexpected names; shape mismatches always raise.

    Returns:
        The file's metadata (see :func:`read_metadata`).

    Raises:
        InputError: unreadable file, or names/shapes that do not fit the model (the message lists them).
    """
    path = Path(path)
    meta = read_metadata(path)
    try:
        tensors = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as exc:
        raise InputError(f"corrupt or unreadable weights file {path}: {exc}") from None
    check_state_dict(model, tensors, source=str(path), strict=strict)
    own = model.state_dict()
    fitted = {k: v.to(dtype=own[k].dtype) if v.is_floating_point() else v for k, v in tensors.items() if k in own}
    model.load_state_dict(fitted, strict=False)
    return meta


def check_state_dict(model: torch.nn.Module, tensors: Mapping[str, torch.Tensor], *, source: str,
                     strict: bool = True) -> None:
    """Raise :class:`InputError` when ``tensors`` do not fit ``model`` (names missing or unexpected, shapes differ).

    A model name missing from ``tensors`` is fine when it shares its storage with a name that is present (tied
    weights are saved once).
    """
    own = model.state_dict()
    def where(t: torch.Tensor) -> tuple[int, int, tuple[int, ...]]:
        return t.untyped_storage().data_ptr(), t.storage_offset(), tuple(t.shape)

    present = {where(t) for k, t in own.items() if k in tensors}
    missing = [k for k, t in own.items() if k not in tensors and (t.numel() == 0 or where(t) not in present)]
    unexpected = [k for k in tensors if k not in own]
    wrong = [
        f"{k} {tuple(tensors[k].shape)} vs model {tuple(own[k].shape)}"
        for k in tensors if k in own and tuple(tensors[k].shape) != tuple(own[k].shape)
    ]
    problems = []
    if wrong:
        problems.append(f"{len(wrong)} shape mismatch(es): " + ", ".join(wrong[:5]))
    if strict and missing:
        problems.append(f"{len(missing)} missing key(s): " + ", ".join(missing[:5]))
    if strict and unexpected:
        problems.append(f"{len(unexpected)} unexpected key(s): " + ", ".join(unexpected[:5]))
    if problems:
        raise InputError(f"weights {source} do not fit the model {type(model).__name__}: " + "; ".join(problems))


def save_checkpoint(run_dir: str | Path, step: int, model: torch.nn.Module, *, state: Mapping[str, Any],
                    metadata: Mapping[str, Any], keep: int = 2) -> Path:
    """Write checkpoint ``step`` into ``run_dir/checkpoints``, point ``last`` at it and prune old ones.

    Args:
        run_dir: the run folder.
        step: number of optimiser steps taken.
        model: the (unwrapped) model.
        state: optimiser/scheduler/RNG states (saved with ``torch.save``; plain containers and tensors only).
        metadata: stored in the safetensors header (``step`` is added).
        keep: how many of the newest checkpoints to keep (``<= 0`` keeps all).

    Returns:
        The path of the weights file.
    """
    ckpt_dir = Path(run_dir) / CKPT_DIR
    ckpt_dir.mkdir(parents=True, exist_ok=True)
    stem = checkpoint_stem(step)
    try:
        with atomic_path(ckpt_dir / f"{stem}{STATE_SUFFIX}", suffix=".pt") as tmp:
            torch.save(dict(state, step=step), tmp)
    except RuntimeError as exc:  # torch reports a failed write as a RuntimeError
        raise as_disk_full(ckpt_dir / f"{stem}{STATE_SUFFIX}", exc) or exc from None
    weights = save_weights(ckpt_dir / f"{stem}{WEIGHTS_SUFFIX}", model, metadata=dict(metadata, step=step))
    write_text_atomic(ckpt_dir / LAST, f"{stem}\n")
    if keep > 0:
        prune_checkpoints(ckpt_dir, keep=keep)
    log.info("saved checkpoint %s", weights)
    return weights


def list_checkpoints(ckpt_dir: str | Path) -> list[tuple[int, Path]]:
    """Complete checkpoints (weights and state both present) in ``ckpt_dir``: ``(step, weights)``, oldest first."""
    ckpt_dir = Path(ckpt_dir)
    if not ckpt_dir.is_dir():
        return []
    out = []
    for p in ckpt_dir.iterdir():
        m = _NAME_RE.match(p.name)
        if m and state_path(p).is_file():
            out.append((int(m.group(1)), p))
    return sorted(out)


def state_path(weights: str | Path) -> Path:
    """The ``.state.pt`` file beside a checkpoint's weights file."""
    weights = Path(weights)
    return weights.with_name(weights.name[: -len(WEIGHTS_SUFFIX)] + STATE_SUFFIX)


def prune_checkpoints(ckpt_dir: str | Path, *, keep: int) -> None:
    """Delete all but the ``keep`` newest complete checkpoints (weights first, so no orphan looks complete)."""
    for _, weights in list_checkpoints(ckpt_dir)[:-keep]:
        weights.unlink(missing_ok=True)
        state_path(weights).unlink(missing_ok=True)


def last_checkpoint(run_dir: str | Path) -> Path | None:
    """The weights file of the newest complete checkpoint of a run folder, or None.

    Follows ``checkpoints/last`` when it names a complete checkpoint, else the highest complete step.
    """
    ckpt_dir = Path(run_dir) / CKPT_DIR
    pointer = ckpt_dir / LAST
    if pointer.is_file():
        cand = ckpt_dir / f"{pointer.read_text().strip()}{WEIGHTS_SUFFIX}"
        if cand.is_file() and state_path(cand).is_file():
            return cand
        log.warning("%s names an incomplete checkpoint; using the newest complete one", pointer)
    found = list_checkpoints(ckpt_dir)
    return found[-1][1] if found else None


def save_best(run_dir: str | Path, model: torch.nn.Module, *, metadata: Mapping[str, Any], metric: str,
              value: float, step: int) -> Path:
    """Write ``run_dir/checkpoints/best.safetensors`` (atomically): the weights of step ``step``, whose eval
    ``metric`` was ``value``, recorded in the metadata under ``best`` (and ``step``)."""
    best = {"metric": metric, "value": float(value), "step": int(step)}
    path = save_weights(Path(run_dir) / CKPT_DIR / BEST, model, metadata=dict(metadata, step=step, best=best))
    log.info("new best %s=%.4g at step %d: %s", metric, value, step, path)
    return path


def best_checkpoint(run_dir: str | Path) -> tuple[Path, dict[str, Any]] | None:
    """``(path, {"metric", "value", "step"})`` of a run folder's best weights, or None when it has none."""
    path = Path(run_dir) / CKPT_DIR / BEST
    if not path.is_file():
        return None
    best = read_metadata(path).get("best")
    if not isinstance(best, dict) or not {"metric", "value", "step"} <= set(best):
        raise InputError(f"{path} has no 'best' record in its metadata")
    return path, best


def resolve_checkpoint(path: str | Path) -> Path:
    """A weights file from a run folder (its last checkpoint), a checkpoints folder or a ``.safetensors`` path."""
    path = Path(path)
    if path.is_dir():
        run_dir = path.parent if path.name == CKPT_DIR else path
        found = last_checkpoint(run_dir)
        if found is None:
            raise InputError(f"no complete checkpoint in {path}")
        return found
    if not path.is_file():
        raise InputError(f"checkpoint not found: {path}")
    return path


def load_state(weights: str | Path) -> dict[str, Any]:
    """The training state saved beside a checkpoint's weights."""
    sp = state_path(weights)
    if not sp.is_file():
        raise InputError(f"checkpoint state file not found: {sp}")
    try:
        return torch.load(sp, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unpickling failure means a bad file
        raise InputError(f"corrupt checkpoint state {sp}: {exc}".splitlines()[0]) from None
