"""Human3.6M windows for the mesh head (issue 18 item 3: trained on Human3.6M joints through the keypoint regressor).

Human3.6M has no meshes: its windows train the head through the joints its decoded body regresses
(:class:`hmore.mesh.decoder.BodyDecoder`), against the true camera-frame joints, and its phenotype against the
subject's phenotype fitted by :func:`hmore.mesh.fit.fit_h36m` (when a fit folder is given). Inputs, per window, from
one of three sources: ``sh`` and ``gt`` as the lifter's (:mod:`hmore.lift.h36m`), and ``coco``: the COCO-derived
joints (:func:`hmore.lift.data.coco_derived_h36m`, what hmore's detector path gives) projected through the real
camera. Windows run at the mesh task's frame rate, taken from the 50 fps frames by the nearest frame.

Validation: for each subject of ``val_subjects``, the last trial of each action
(:func:`hmore.lift.h36m.split_validation`), never S9/S11.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from hmore.data.h36m import FPS, TRAIN_SUBJECTS
from hmore.errors import ConfigError
from hmore.lift.data import coco_derived_h36m, flip_batch, mask_batch
from hmore.lift.h36m import LiftArrays, build_arrays, normalized_input, split_validation

log = logging.getLogger(__name__)

SOURCES = ("sh", "gt", "coco")


@dataclass(frozen=True)
class MeshH36MConfig:
    """Attributes:
        weight: share of each training batch taken from Human3.6M (0: none; below 1).
        root: the Human3.6M folder (empty: ``<shared data>/h36m``).
        subjects: training subjects; val_subjects: those whose last trial of each action is held out.
        source_weights: shares of the ``sh``, ``gt`` and ``coco`` inputs.
        fit: folder of the per-subject fits (:func:`hmore.mesh.fit.fit_h36m`, built when missing) whose phenotypes
            are the windows' targets (empty: no phenotype target).
        fit_every: every n-th 50 fps frame is fitted.
        mask_joint_max: each window drops each joint with a probability drawn in [0, this]; mask_frame: whole frames.
        flip_prob: mirrored windows.
    """

    weight: float = 0.0
    root: str = ""
    subjects: tuple[str, ...] = TRAIN_SUBJECTS
    val_subjects: tuple[str, ...] = ("S8",)
    source_weights: tuple[float, float, float] = (0.4, 0.3, 0.3)
    fit: str = ""
    fit_every: int = 10
    mask_joint_max: float = 0.15
    mask_frame: float = 0.1
    flip_prob: float = 0.5

    def __post_init__(self) -> None:
        w = np.asarray(self.source_weights, np.float64)
        if not 0.0 <= self.weight < 1.0:
            raise ConfigError(f"data.h36m.weight must be in [0, 1), got {self.weight}")
        if len(w) != len(SOURCES) or (w < 0).any() or w.sum() <= 0:
            raise ConfigError(f"data.h36m.source_weights must be 3 shares (sh, gt, coco) >= 0, got {w.tolist()}")
        if self.fit_every < 1 or not 0 <= self.mask_joint_max < 1 or not 0 <= self.mask_frame < 1:
            raise ConfigError("data.h36m.fit_every must be >= 1, mask_joint_max and mask_frame in [0, 1)")


def coco_input(data, examples) -> np.ndarray:
    """(N, 17, 3) float16 ``coco`` inputs of examples (frames concatenated as :func:`build_arrays` does)."""
    out = []
    for e in examples:
        cam = data.camera(e.subject, e.camera)
        seen = coco_derived_h36m(data.poses_world(e.sequence).astype(np.float64) / 1000.0) * 1000.0
        px = cam.project(seen)
        kp = np.concatenate([px, np.ones(px.shape[:-1] + (1,))], axis=-1)
        out.append(normalized_input(kp, cam.width, cam.height).astype(np.float16))
    return np.concatenate(out) if out else np.zeros((0, 17, 3), np.float16)


def window_index(length: int, fps: float) -> np.ndarray:
    """(length,) offsets, in 50 fps frames, of a window of ``length`` frames at ``fps``."""
    return np.round(np.arange(length) * FPS / fps).astype(np.int64)


class H36MWindows:
    """Training and validation windows of Human3.6M (see the module doc).

    Args:
        config: the Human3.6M section of the mesh data config.
        fps: frame rate of the windows.
        arrays: optional (train, validation) arrays with all three sources (tests).
        phenotypes: optional subject -> fitted phenotype (6,) (tests; else from ``config.fit``).
    """

    def __init__(self, config: MeshH36MConfig, *, fps: float, arrays: tuple[LiftArrays, LiftArrays] | None = None,
                 phenotypes: dict[str, np.ndarray] | None = None) -> None:
        self.config = config
        self.fps = fps
        self._arrays = arrays
        self._phenotypes = phenotypes
        w = np.asarray(config.source_weights, np.float64)
        self._source_p = w / w.sum()
        self._starts: dict[int, np.ndarray] = {}

    def arrays(self) -> tuple[LiftArrays, LiftArrays]:
        if self._arrays is None:
            from hmore.data.h36m import load_h36m

            c = self.config
            data = load_h36m(c.root or None)
            train, val = split_validation(data.examples(c.subjects), c.val_subjects)
            tr = build_arrays(data, train, sources=("sh", "gt"), dtype=np.float16)
            tr.x["coco"] = coco_input(data, train)
            va = build_arrays(data, val, sources=("sh", "gt"), dtype=np.float16)
            va.x["coco"] = coco_input(data, val)
            self._arrays = (tr, va)
            log.info("mesh h36m: %d training frames (%d examples), %d validation frames", tr.num_frames, len(train),
                     va.num_frames)
        return self._arrays

    def phenotypes(self) -> dict[str, np.ndarray]:
        """subject -> fitted phenotype (empty without a fit folder)."""
        if self._phenotypes is None:
            self._phenotypes = {}
            if self.config.fit:
                from hmore.mesh.fit import fit_h36m, load_fit

                paths = fit_h36m(self.config.fit, subjects=tuple(self.config.subjects), every=self.config.fit_every,
                                 root=self.config.root or None)
                self._phenotypes = {s: load_fit(p)["phenotype"].astype(np.float32) for s, p in paths.items()}
        return self._phenotypes

    def _subject_phenotype(self, arrays: LiftArrays, frames: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        ex = arrays.example_of_frame()[frames]
        ph = self.phenotypes()
        subj = [arrays.examples[e].subject for e in ex]
        has = np.array([s in ph for s in subj])
        values = np.stack([ph.get(s, np.full(6, 0.5, np.float32)) for s in subj]).astype(np.float32)
        return values, has

    def sample(self, rng: np.random.Generator, n: int, length: int) -> dict[str, np.ndarray]:
        """``n`` random training windows: x (n, length, 17, 3) input, y (n, length, 17, 3) camera-frame
        root-relative metres, phenotype (n, 6) and has_phenotype (n,) bool."""
        train, _ = self.arrays()
        idx = window_index(length, self.fps)
        if length not in self._starts:
            self._starts[length] = train.window_starts(int(idx[-1]) + 1)
        starts = self._starts[length]
        if len(starts) == 0:
            raise ConfigError(f"no Human3.6M training sequence is long enough for {length}-frame windows")
        s = starts[rng.integers(len(starts), size=n)]
        frames = s[:, None] + idx  # (n, L)
        src = rng.choice(len(SOURCES), size=n, p=self._source_p)
        x = np.stack([train.x[SOURCES[k]][f] for k, f in zip(src, frames)]).astype(np.float32)
        y = train.y[frames].astype(np.float32)
        c = self.config
        x = mask_batch(x, rng, joint_prob=rng.uniform(0, c.mask_joint_max, n), frame_prob=c.mask_frame)
        x, y = flip_batch(x, y, rng.random(n) < c.flip_prob)
        ph, has = self._subject_phenotype(train, s)
        return {"x": np.ascontiguousarray(x), "y": np.ascontiguousarray(y), "phenotype": ph, "has_phenotype": has}

    def validation(self, n: int, length: int, source: str = "coco") -> dict[str, np.ndarray]:
        """``n`` evenly spaced validation windows (no masking, no flip) of ``source``."""
        _, val = self.arrays()
        idx = window_index(length, self.fps)
        starts = val.window_starts(int(idx[-1]) + 1)
        if len(starts) == 0:
            return {}
        s = starts[np.linspace(0, len(starts) - 1, n).round().astype(np.int64)]
        frames = s[:, None] + idx
        ph, has = self._subject_phenotype(val, s)
        return {"x": val.x[source][frames].astype(np.float32), "y": val.y[frames].astype(np.float32),
                "phenotype": ph, "has_phenotype": has}
