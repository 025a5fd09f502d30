"""OpenGait's per-sequence pickle layout: a reader (so CASIA-B users can run hmore's recogniser on their own copy)
and a writer (so OpenGait can read hmore's generated sets).

Layout (OpenGait ``datasets/pretreatment.py``): ``ROOT/<subject>/<type>/<view>/<name>.pkl``, e.g.
``CASIA-B-pkl/001/nm-01/036/036.pkl``, each pickle one uint8 array (T, 64, 64) of silhouettes already cropped and
height-normalised; OpenGait's loader cuts 10 columns on each side (64 x 44). A sequence folder may hold several
pickles (modalities), loaded in sorted order; the silhouettes are the first. A partition file (``CASIA-B.json``)
lists ``TRAIN_SET`` and ``TEST_SET`` subject names.

Pickles are read with hmore's restricted unpickler (numpy arrays and plain containers only): a file cannot run code.
Sequence folders must be named CASIA-B style: ``<type>-<NN>`` (``nm-01``, ``bg-02``, ``cl-01``) and ``<angle>``.
"""

from __future__ import annotations

import pickle
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from hmore.errors import InputError
from hmore.gait.data import GaitArrays, GaitSequence
from hmore.gait.silhouette import SIL_CUT, SIL_HEIGHT, SIL_WIDTH
from hmore.io.atomic import write_bytes_atomic
from hmore.io.jsonfile import read_json
from hmore.io.safe_pickle import load_pickle_safely

_TYPE = re.compile(r"^([A-Za-z]+)-(\d+)$")


def read_partition(path: str | Path) -> dict[str, list[str]]:
    """An OpenGait partition file -> ``{"TRAIN_SET": [...], "TEST_SET": [...]}`` (subject names as strings)."""
    path = Path(path)
    data = read_json(path, what="partition file")
    if not isinstance(data, dict) or not all(isinstance(data.get(k), list) for k in ("TRAIN_SET", "TEST_SET")):
        raise InputError(f"{path}: an OpenGait partition needs TRAIN_SET and TEST_SET lists")
    return {k: [str(s) for s in data[k]] for k in ("TRAIN_SET", "TEST_SET")}


def _silhouettes(arr: object, where: Path) -> np.ndarray:
    a = np.asarray(arr)
    if a.ndim != 3 or a.shape[0] < 1 or a.shape[1] != SIL_HEIGHT or a.shape[2] not in (SIL_HEIGHT, SIL_WIDTH):
        raise InputError(f"{where}: silhouettes must be (T, 64, 64) or (T, 64, 44), got {a.shape}")
    if a.dtype != np.uint8:
        if a.dtype.kind not in "biuf" or not np.isfinite(a).all():
            raise InputError(f"{where}: silhouettes must be numbers, got dtype {a.dtype}")
        a = np.clip(a * (255.0 if a.max() <= 1.0 else 1.0), 0, 255).astype(np.uint8)
    if a.shape[2] == SIL_HEIGHT:
        a = a[:, :, SIL_CUT:SIL_HEIGHT - SIL_CUT]  # OpenGait's BaseSilCuttingTransform
    return np.ascontiguousarray(a)


def read_opengait(root: str | Path, *, subjects: Sequence[str] | None = None) -> tuple[GaitArrays, list[str]]:
    """Read an OpenGait pickle folder (silhouettes only).

    Args:
        root: the dataset folder (``<subject>/<type>/<view>/*.pkl``).
        subjects: only these subject folder names (e.g. a partition's TEST_SET); default all.

    Returns:
        (arrays, names): the sequences, with ``subject`` = 1 + the index of the subject's folder name in ``names``.

    Raises:
        InputError: no sequences, folder names not CASIA-B style, unreadable or malformed pickles.
    """
    root = Path(root)
    if not root.is_dir():
        raise InputError(f"OpenGait dataset folder not found: {root}")
    names = sorted(p.name for p in root.iterdir() if p.is_dir())
    if subjects is not None:
        wanted = {str(s) for s in subjects}
        absent = sorted(wanted - set(names))
        if absent:
            raise InputError(f"{root}: subjects not found: {', '.join(absent[:5])}")
        names = [n for n in names if n in wanted]
    seqs, sil, valid = [], [], []
    for k, name in enumerate(names):
        for tdir in sorted(p for p in (root / name).iterdir() if p.is_dir()):
            m = _TYPE.match(tdir.name)
            if m is None:
                raise InputError(f"{tdir}: sequence folders must be named like nm-01 (CASIA-B style)")
            for vdir in sorted(p for p in tdir.iterdir() if p.is_dir()):
                try:
                    view = float(vdir.name)
                except ValueError:
                    raise InputError(f"{vdir}: view folders must be angles like 036") from None
                pkls = sorted(vdir.glob("*.pkl"))
                if not pkls:
                    continue
                a = _silhouettes(load_pickle_safely(pkls[0], what="OpenGait silhouette pickle"), pkls[0])
                seqs.append(GaitSequence(subject=k + 1, type=m.group(1).lower(), index=int(m.group(2)), view=view))
                sil.append(a)
                valid.append(a.reshape(len(a), -1).max(axis=1) > 0)
    if not seqs:
        raise InputError(f"{root}: no OpenGait sequences (<subject>/<type>/<view>/*.pkl)")
    return GaitArrays(sequences=seqs, sil=sil, valid=valid, flows={}), names


def write_opengait(root: str | Path, arrays: GaitArrays) -> int:
    """Write silhouettes in OpenGait's layout (64 x 64: the 44 columns padded with 10 zero columns on each side).

    Returns:
        The number of sequences written.
    """
    root = Path(root)
    for seq, a in zip(arrays.sequences, arrays.sil):
        full = np.pad(a, ((0, 0), (0, 0), (SIL_CUT, SIL_CUT)))  # (T, 64, 64)
        out = root / f"{seq.subject:03d}" / seq.type_name / seq.view_name / f"{seq.view_name}.pkl"
        write_bytes_atomic(out, pickle.dumps(full, protocol=4))
    return len(arrays.sequences)
