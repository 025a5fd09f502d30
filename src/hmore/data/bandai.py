"""Bandai-Namco Research Motion dataset as shared in ``<data>/bandai`` (README there; CC BY-NC 4.0, research only).

1,164 gzipped BVH takes (30 fps, centimetres, y up) with ``index.json`` labels: action (``walk``, ``wave-right-hand``
...), style (``normal``, ``tired``, ``elderly`` ...), take number and set (1 or 2). They are read through
:func:`hmore.io.bvh.read_bvh` (``.gz`` paths are gunzipped; every joint carries position channels, which replace its
OFFSET: see :mod:`hmore.io.bvh`) in units of ``"cm"``.

**Mapping to H36M-17 / COCO-17** (:func:`hmore.io.bvh.to_h36m`, :func:`~hmore.io.bvh.to_coco`, by the skeleton's
own names): hips, knees, ankles = ``UpperLeg``, ``LowerLeg``, ``Foot``; shoulders, elbows, wrists = ``UpperArm``,
``LowerArm``, ``Hand`` (``Shoulder_L/R`` are the collar bones); root = mid-hip; neck (H36M Thorax) = ``Neck``;
belly = mid(root, neck). The Head's End Site has zero length, so the head top is placed on the Neck -> Head line at
0.21 x the leg length from the neck (H36M's proportion) and the face points (nose, eyes, ears) are built on the
head below it (:data:`hmore.io.bvh.HEAD_TOP_PER_LEG`). ``_L`` / ``_R`` are the performer's left / right: in
``wave-right-hand`` the ``_R`` arm is the one raised.

Positions come out in hmore's world frame: metres, y up (the BVH's own axes).
"""

from __future__ import annotations

import functools
import json
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hmore.data import dataset_dir, require_file
from hmore.errors import InputError

FPS = 30.0
UNIT = "cm"
LAYOUTS = ("h36m17", "coco17")


@dataclass(frozen=True)
class BandaiTake:
    """One take of ``index.json``.

    Attributes:
        path: the ``.bvh.gz`` file.
        set: 1 or 2 (the dataset's two releases).
        action: content label, e.g. ``"walk"``.
        style: style label, e.g. ``"normal"``.
        take: take number within (set, action, style).
        frames: number of frames.
        fps: frame rate.
    """

    path: Path
    set: int
    action: str
    style: str
    take: int
    frames: int
    fps: float

    @property
    def name(self) -> str:
        """The file name without ``.bvh.gz``, e.g. ``"dataset-2_walk_normal_001"``."""
        return self.path.name.removesuffix(".gz").removesuffix(".bvh")


@functools.lru_cache(maxsize=2)
def _index(root: str) -> tuple[BandaiTake, ...]:
    folder = Path(root)
    path = require_file(folder / "index.json", "Bandai-Namco index")
    try:
        data = json.loads(path.read_text())
        takes = tuple(BandaiTake(path=folder / r["file"], set=int(r["set"]), action=str(r["action"]),
                                 style=str(r["style"]), take=int(r["take"]), frames=int(r["frames"]),
                                 fps=float(r["fps"])) for r in data["files"])
    except (OSError, json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise InputError(f"cannot read {path}: {exc}") from None
    return takes


def load_index(root: str | Path | None = None) -> list[BandaiTake]:
    """Every take listed in ``index.json`` (cached per process)."""
    return list(_index(str(dataset_dir("bandai", root).resolve())))


def takes(*, root: str | Path | None = None, actions: Sequence[str] | None = None,
          styles: Sequence[str] | None = None, sets: Sequence[int] | None = None) -> list[BandaiTake]:
    """The takes with the given actions / styles / sets (None: any)."""
    out = load_index(root)
    if actions is not None:
        out = [t for t in out if t.action in set(actions)]
    if styles is not None:
        out = [t for t in out if t.style in set(styles)]
    if sets is not None:
        out = [t for t in out if t.set in set(sets)]
    return out


def is_held_out(take: BandaiTake, fraction: float = 0.1) -> bool:
    """A fixed, content-independent split: the take is held out when the CRC-32 of its name falls in the lowest
    ``fraction`` of the range (the same takes in every process and run)."""
    return zlib.crc32(take.name.encode()) < fraction * 2**32


def read_take(take: BandaiTake | str | Path):
    """The take's parsed :class:`hmore.io.bvh.Bvh`."""
    from hmore.io.bvh import read_bvh

    path = take.path if isinstance(take, BandaiTake) else Path(take)
    return read_bvh(path)


def take_joints(take: BandaiTake | str | Path, *, layout: str = "h36m17") -> np.ndarray:
    """(T, 17, 3) float64 joints in metres, y up, at the file's 30 fps: H36M-17 (``layout="h36m17"``) or COCO-17."""
    from hmore.io.bvh import to_coco, to_h36m

    if layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {LAYOUTS}, got {layout!r}")
    bvh = read_take(take)
    pos = bvh.forward_kinematics(scale=UNIT)
    return to_h36m(pos, bvh) if layout == "h36m17" else to_coco(pos, bvh)


def motion_clip(take: BandaiTake | str | Path, *, fps: float = FPS):
    """The take as a :class:`hmore.lift.data.MotionClip` (H36M-17, metres, y up), resampled to ``fps``."""
    from hmore.lift.data import MotionClip, resample

    joints = take_joints(take)
    if fps != FPS:
        joints = resample(joints, FPS, fps)
    name = take.name if isinstance(take, BandaiTake) else Path(take).name.removesuffix(".gz").removesuffix(".bvh")
    return MotionClip(joints=joints, fps=float(fps), name=f"bandai:{name}")


__all__ = ["FPS", "BandaiTake", "is_held_out", "load_index", "motion_clip", "read_take", "take_joints", "takes"]
