"""Atomic output: write to a temporary file beside the target, then rename, so a crash never leaves a half-written
file that looks whole."""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import tempfile
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from hmore.errors import UsageError


@contextlib.contextmanager
def atomic_path(path: str | Path, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path in the target's folder; on success rename it onto ``path``, on error delete it.

    ``suffix`` (default: the target's own) is kept so that writers that pick a format by extension still work.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    suffix = path.suffix if suffix is None else suffix
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=f".tmp{suffix}", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.chmod(tmp_path, 0o666 & ~_umask())  # mkstemp makes 0600 files; give the usual permissions
        os.replace(tmp_path, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp_path.unlink()
        raise


def check_output_dir(path: str | Path, *, option: str = "-o") -> Path:
    """Check, before any work, that the folder ``path`` can be an output folder; nothing is created.

    Raises:
        UsageError: ``path`` (or a folder above it) is an existing file, or the nearest existing folder above it is
            not writable; the message names the path and the ``option`` it came from.
    """
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise UsageError(f"{option} {path}: is an existing file, not a folder")
    probe = path
    while not probe.exists():
        if probe.parent == probe:
            break
        probe = probe.parent
    if probe.exists() and not probe.is_dir():
        raise UsageError(f"{option} {path}: {probe} is a file, not a folder")
    if probe.is_dir() and not os.access(probe, os.W_OK | os.X_OK):
        raise UsageError(f"{option} {path}: cannot write in {probe} (permission denied)")
    return path


LOW_SPACE = 1 << 20  # bytes: a write that fails with less than this free failed for want of space


def as_disk_full(path: str | Path, exc: BaseException) -> OSError | None:
    """``OSError`` naming ``path`` when a writer that reports failures in its own way (torch.save's ``RuntimeError``,
    safetensors' ``SafetensorError``) failed for want of room: ``ENOSPC`` on a full device, ``EFBIG`` when the
    process runs under a file-size limit (``ulimit -f``); else None."""
    folder = Path(path).parent
    try:
        free = shutil.disk_usage(folder if folder.exists() else Path.cwd()).free
    except OSError:
        return None
    code = errno.ENOSPC if free < LOW_SPACE else None
    if code is None:
        try:
            import resource
        except ImportError:  # pragma: no cover - not on POSIX
            return None
        soft, _ = resource.getrlimit(resource.RLIMIT_FSIZE)
        if soft == resource.RLIM_INFINITY:
            return None
        code = errno.EFBIG
    full = OSError(code, os.strerror(code), str(path))
    full.__cause__ = exc
    return full


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_bytes_atomic(path: str | Path, data: bytes) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def write_text_atomic(path: str | Path, text: str) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_text(text)
    return Path(path)


def write_json_atomic(path: str | Path, obj: Any, indent: int | None = 2) -> Path:
    return write_text_atomic(path, json.dumps(obj, indent=indent, sort_keys=False) + "\n")


def save_npz_atomic(path: str | Path, compressed: bool = True, **arrays: Any) -> Path:
    """Write arrays as an ``.npz`` (readable by ``np.load``) atomically and reproducibly.

    Unlike ``np.savez``, the zip entries carry a fixed timestamp, so the same arrays give the same bytes.
    Strings (e.g. a JSON ``meta``) are stored as 0-d unicode arrays.
    """
    method = zipfile.ZIP_DEFLATED if compressed else zipfile.ZIP_STORED
    with atomic_path(path, suffix=".npz") as tmp:
        with zipfile.ZipFile(tmp, "w", compression=method, allowZip64=True) as zf:
            for name, value in arrays.items():
                info = zipfile.ZipInfo(f"{name}.npy", date_time=_ZIP_EPOCH)
                info.compress_type = method
                with zf.open(info, "w", force_zip64=True) as fh:
                    np.lib.format.write_array(fh, np.asanyarray(value), allow_pickle=False)
    return Path(path)


_ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)
