"""Readers of the public datasets in the shared data folder (``hmore.paths.shared_data_dir()``), one module each:

* :mod:`hmore.data.h36m`: Human3.6M 3D poses, cameras (with distortion), Stacked-Hourglass 2D detections, ground-truth
  2D by projection, camera-frame 3D, the standard subject split.
* :mod:`hmore.data.nw_ucla`: NW-UCLA Kinect v1 skeleton sequences, labels, views, the cross-view split, a mapping to
  H36M-17.
* :mod:`hmore.data.bandai`: Bandai-Namco mocap takes (gzipped BVH through :mod:`hmore.io.bvh`) as H36M-17 / COCO-17
  joints, with their action, style and take labels.

Every reader takes an optional ``root`` (the dataset folder; default ``shared_data_dir() / <name>``), raises
:class:`hmore.errors.InputError` naming the missing file, and caches what it decompressed once per process
(:class:`NpzArrays`): a member of an ``.npz`` archive is decompressed in full on every ``npz[key]`` access.
These datasets are for research use only (see each folder's README); nothing of them is copied into the package.
"""

from __future__ import annotations

import threading
import zipfile
from pathlib import Path

import numpy as np

from hmore.errors import InputError
from hmore.paths import shared_data


def dataset_dir(name: str, root: str | Path | None = None) -> Path:
    """The folder of dataset ``name``: ``root`` if given, else ``shared_data_dir() / name``."""
    return Path(root).expanduser() if root is not None else shared_data(name)


def require_file(path: Path, what: str) -> Path:
    """``path`` if it is a file, else :class:`InputError` naming it and what it should hold."""
    if not path.is_file():
        raise InputError(f"{what} not found: {path} (set HMORE_DATA or pass root= to the reader)")
    return path


class NpzArrays:
    """The members of an ``.npz`` archive, each decompressed on first access and kept (read-only).

    Args:
        path: the archive.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        try:
            self._npz = np.load(self.path, allow_pickle=False)
        except (OSError, ValueError, zipfile.BadZipFile) as exc:
            raise InputError(f"cannot read {self.path}: {exc}") from None
        self._keys = tuple(self._npz.files)
        self._cache: dict[str, np.ndarray] = {}
        self._lock = threading.Lock()

    @property
    def keys(self) -> tuple[str, ...]:
        """Member names in archive order."""
        return self._keys

    def __contains__(self, key: object) -> bool:
        return key in self._cache or key in self._keys

    def __getitem__(self, key: str) -> np.ndarray:
        arr = self._cache.get(key)
        if arr is None:
            if key not in self._keys:
                raise KeyError(f"{self.path.name} has no member {key!r}")
            with self._lock:  # zipfile reads are not thread-safe
                arr = self._npz[key]
            arr.setflags(write=False)
            self._cache[key] = arr
        return arr

    def __len__(self) -> int:
        return len(self._keys)


__all__ = ["NpzArrays", "dataset_dir", "require_file"]
