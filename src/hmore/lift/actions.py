"""Skeleton action data in pyskl's pickle format: a reader (labels, splits, keypoints) and a generated action set.

pyskl format (docs/motionbert.md): ``{"split": {name: [frame_dir, ...]}, "annotations": [{"frame_dir", "label",
"img_shape": (h, w), "total_frames", "keypoint": (M, T, 17, 2), "keypoint_score": (M, T, 17)}]}`` with COCO-17
keypoints in pixels. hmore adds an optional top-level ``"classes"`` list of label names (pyskl ignores it).
Pickles are read with :mod:`hmore.io.safe_pickle`, so a file cannot run code.
"""

from __future__ import annotations

import logging
import math
import pickle
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hmore.errors import InputError
from hmore.io.atomic import write_bytes_atomic
from hmore.lift.data import CameraConfig, h36m_to_coco, sample_camera
from hmore.skeleton import convert

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ActionClip:
    """One labelled clip.

    Attributes:
        name: ``frame_dir``.
        label: class index.
        kp2d: (M, T, 17, 3) COCO-17 pixels + score.
        width, height: image size.
    """

    name: str
    label: int
    kp2d: np.ndarray
    width: int
    height: int

    def h36m(self) -> np.ndarray:
        """(M, T, 17, 3) H36M-17 pixels + score (``hmore.skeleton.convert``)."""
        return convert(self.kp2d, "coco17", "h36m17", has_score=True)


@dataclass(frozen=True)
class ActionDataset:
    """Clips, named splits (lists of clip names) and class names (``str(label)`` when the file has none)."""

    clips: list[ActionClip]
    split: dict[str, list[str]]
    classes: list[str]

    def subset(self, split: str) -> list[ActionClip]:
        """The clips of a split; :class:`InputError` naming the known splits otherwise."""
        if split not in self.split:
            raise InputError(f"no split {split!r} in the action set; known: {', '.join(self.split) or 'none'}")
        names = set(self.split[split])
        return [c for c in self.clips if c.name in names]


def read_action_pickle(path: str | Path) -> ActionDataset:
    """Read a pyskl action pickle; :class:`InputError` for missing, unreadable or malformed files."""
    from hmore.io.keypoints import pyskl_keypoints
    from hmore.io.safe_pickle import load_pickle_safely

    path = Path(path)
    if not path.is_file():
        raise InputError(f"no such file: {path}")
    data = load_pickle_safely(path)
    if not isinstance(data, dict) or not isinstance(data.get("annotations"), list):
        raise InputError(f"{path}: a pyskl action pickle is a dict with 'split' and 'annotations'")
    clips = []
    for k, a in enumerate(data["annotations"]):
        where = f"{path} annotation {k}"
        if not isinstance(a, dict) or "keypoint" not in a or "label" not in a:
            raise InputError(f"{where}: needs 'keypoint' and 'label'")
        kp = pyskl_keypoints(a, where, joints=17)
        shape = a.get("img_shape")
        try:
            label, height, width = int(a["label"]), int(shape[0]), int(shape[1])
        except (TypeError, ValueError, IndexError, KeyError):
            raise InputError(f"{where}: needs an integer 'label' and 'img_shape' (h, w) of positive integers, got "
                             f"{a.get('label')!r} and {shape!r}"[:300]) from None
        if height <= 0 or width <= 0:
            raise InputError(f"{where}: 'img_shape' must be positive, got {shape!r}")
        clips.append(ActionClip(name=str(a.get("frame_dir", k)), label=label, kp2d=kp, width=width, height=height))
    split = {str(k): [str(n) for n in v] for k, v in (data.get("split") or {}).items()}
    n_cls = max((c.label for c in clips), default=-1) + 1
    classes = [str(c) for c in data.get("classes", [])] or [str(i) for i in range(n_cls)]
    if len(classes) < n_cls:
        raise InputError(f"{path}: {len(classes)} class names for labels up to {n_cls - 1}")
    return ActionDataset(clips=clips, split=split, classes=classes)


def write_action_pickle(path: str | Path, dataset: ActionDataset) -> Path:
    """Write ``dataset`` as a pyskl pickle (keypoint (M, T, 17, 2) + keypoint_score) atomically."""
    anns = [{"frame_dir": c.name, "label": int(c.label), "img_shape": (c.height, c.width),
             "original_shape": (c.height, c.width), "total_frames": int(c.kp2d.shape[1]),
             "keypoint": np.ascontiguousarray(c.kp2d[..., :2], np.float32),
             "keypoint_score": np.ascontiguousarray(c.kp2d[..., 2], np.float32)} for c in dataset.clips]
    data = {"split": dataset.split, "annotations": anns, "classes": list(dataset.classes)}
    return write_bytes_atomic(path, pickle.dumps(data, protocol=4))


def generate_action_set(*, actions: Sequence[str] | None = None, train_identities: Sequence[int] = range(12),
                        test_identities: Sequence[int] = range(12, 16), clips_per_pair: int = 2,
                        num_frames: int = 60, seed: int = 0, camera: CameraConfig = CameraConfig()  # noqa: B008
                        ) -> ActionDataset:
    """Single-person action clips of the generator's actions, seen by random cameras, as COCO-17 pixels.

    Identities are split between ``"train"`` and ``"test"`` (no person appears in both).
    """
    from hmore.synth.identity import sample_identity
    from hmore.synth.motion import ACTIONS, generate_motion

    acts = list(actions) if actions else list(ACTIONS)
    clips: list[ActionClip] = []
    split: dict[str, list[str]] = {"train": [], "test": []}
    for part, ids in (("train", train_identities), ("test", test_identities)):
        for i in ids:
            ident = sample_identity(i, seed)
            for a, act in enumerate(acts):
                for r in range(clips_per_pair):
                    rng = np.random.default_rng([seed, 31, i, a, r])
                    m = generate_motion(act, ident, num_frames=num_frames, seed=int(rng.integers(2**31)),
                                        heading=float(rng.uniform(0, 2 * math.pi)))
                    joints = np.asarray(m.joints, np.float64)
                    cam = sample_camera(rng, joints[:, 0].mean(axis=0), camera)
                    pc = cam.to_camera(h36m_to_coco(joints))  # (T, 17, 3)
                    px = cam.project(pc)
                    score = (pc[..., 2] > 0.3).astype(np.float64)
                    kp = np.concatenate([px, score[..., None]], axis=-1)[None]  # (M=1, T, 17, 3)
                    name = f"{part}_id{i:03d}_{act}_{r}"
                    clips.append(ActionClip(name=name, label=a, kp2d=kp.astype(np.float32), width=cam.width,
                                            height=cam.height))
                    split[part].append(name)
    log.info("generated action set: %d classes, %d train / %d test clips", len(acts), len(split["train"]),
             len(split["test"]))
    return ActionDataset(clips=clips, split=split, classes=acts)
