"""The ``action`` training task: skeleton action recognition on a pyskl-format action set or on NW-UCLA.

The model is a DSTformer backbone with MotionBERT's action head (``dstformer_action``), optionally initialised from a
pretrained lifter (``model.backbone_init``: shipped weights name or a lift run folder/checkpoint), the ST-GCN-style
baseline ``stgcn_action``, or the simple baseline ``pose_stats_action``.

Data (``data.dataset``):

* ``""`` (default): a pyskl pickle (``data.pickle``); when it is empty, a generated action set (the generator's
  actions, identities split between train and test) is made once and cached in ``data.cache``. Input ``"2d"``: a
  clip becomes (M, T, 17, 3): COCO-17 -> H36M-17, pixels normalised by the image size, score.
* ``"nw_ucla"``: NW-UCLA's cross-view split (train views 1-2, test view 3; ``hmore.data.nw_ucla``). Input ``"3d"``:
  the Kinect v1 joints mapped to H36M-17 (:data:`hmore.data.nw_ucla.TO_H36M17`; with ``data.layout: kinect20`` all
  20 Kinect joints, hands and feet included, :data:`hmore.skeleton.KINECT20`), turned into camera axes (x right,
  y down, z forward: what ``hmore lift`` outputs) and made root-relative per frame, metres. Training views are turned
  about the vertical axis by up to ``rotate_deg``, tilted by up to ``tilt_deg`` and scaled by up to ``scale``.
  ``data.validate_on: view2`` trains on view 1 only and evaluates on view 2: a cross-view proxy for choosing a recipe
  that never reads view 3.

3D normalisation (``data.normalize``, recorded in the model's metadata so that ``hmore classify`` and ``hmore bench
action`` apply the same): ``"none"`` (default), root-relative camera axes as above; ``"view"``
(:func:`view_normalize`), root-relative and turned into the body's own axes (x along the hip + shoulder line to the
subject's right, y down the mean spine of the first quarter of the frames, z forward) and scaled to a unit mean
torso (root-neck) length, which removes the camera's viewpoint, so NW-UCLA's views and lifted videos look alike;
``"view_track"``, the same axes and scale but centred on the first frame's root, so the root's path (walking, sitting
down) stays in the input (``hmore classify`` then lifts videos with their estimated root trajectory).

Frames (``data.sampling``): ``"windows"``, windows of ``clip_len`` frames every ``frame_step`` frames (random start in
training, every window averaged in evaluation); ``"whole"``, the whole clip resampled to ``clip_len`` frames (in
training a random stretch of at least ``crop_min`` of it, as CTR-GCN samples NW-UCLA).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from hmore.errors import InputError
from hmore.lift.actions import ActionClip, ActionDataset, generate_action_set, read_action_pickle, write_action_pickle
from hmore.lift.data import normalize_2d
from hmore.registry import create_model
from hmore.skeleton import LAYOUTS, flip
from hmore.train.engine import TrainConfig

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ActionModelConfig:
    """Attributes: registered model name, builder overrides (num_classes is set from the data), backbone init."""

    name: str = "dstformer_action"
    kwargs: dict[str, Any] = field(default_factory=dict)
    backbone_init: str = ""


@dataclass(frozen=True)
class ActionDataConfig:
    """Attributes:
        pickle: a pyskl action pickle; empty: the generated set, cached at ``cache``.
        cache: where the generated set is written (relative paths: to the current folder).
        train_split, test_split: split names.
        seed: seed of the generated set and of the sampling.
        train_identities, test_identities: identities of the generated set.
        clips_per_pair: generated clips per (identity, action).
        num_frames: frames per generated clip.
        clip_len: frames per model window (at most the backbone's max_len).
        frame_step: temporal stride inside a window.
        persons: persons per sample (padded with zeros / cut).
        flip_prob: mirrored training samples.
        jitter: std of the noise added to x, y (and z) in training (normalised 2D units, or metres for 3D input).
        dataset: ``""`` (pickle / generated set) or ``"nw_ucla"``.
        root: the dataset folder for ``dataset`` (empty: the shared data's).
        input: ``"2d"`` or ``"3d"`` (see the module doc; NW-UCLA needs ``"3d"``).
        sampling: ``"windows"`` or ``"whole"`` (see the module doc).
        crop_min: shortest random stretch of a clip in ``"whole"`` sampling (fraction of its frames).
        rotate_deg, tilt_deg, scale: 3D view augmentation in training (degrees about the vertical axis and about the
            camera's x axis, relative scale).
        normalize: 3D normalisation, ``"none"`` (default), ``"view"`` or ``"view_track"`` (see the module doc).
        validate_on: ``""`` (evaluate on the test split) or ``"view2"`` (NW-UCLA: train on view 1, evaluate on view 2).
        label_smoothing: cross-entropy label smoothing.
        layout: joints of 3D input: ``"h36m17"`` (default) or ``"kinect20"`` (NW-UCLA's own 20 Kinect v1 joints,
            hands and feet included; needs a model of that layout, e.g. ``stgcn_action`` with ``layout: kinect20``).
    """

    pickle: str = ""
    cache: str = "runs/action/generated_actions.pkl"
    train_split: str = "train"
    test_split: str = "test"
    seed: int = 0
    train_identities: int = 12
    test_identities: int = 4
    clips_per_pair: int = 3
    num_frames: int = 64
    clip_len: int = 27
    frame_step: int = 2
    persons: int = 1
    flip_prob: float = 0.5
    jitter: float = 0.003
    dataset: str = ""
    root: str = ""
    input: str = "2d"
    sampling: str = "windows"
    crop_min: float = 0.8
    rotate_deg: float = 0.0
    tilt_deg: float = 0.0
    scale: float = 0.0
    normalize: str = "none"
    validate_on: str = ""
    label_smoothing: float = 0.0
    layout: str = "h36m17"


DATASETS = ("", "nw_ucla")
INPUTS = ("2d", "3d")
SAMPLINGS = ("windows", "whole")
NORMALIZATIONS = ("none", "view", "view_track")
VALIDATIONS = ("", "view2")
#: (root, neck, right hip, left hip, right shoulder, left shoulder) of each layout :func:`view_normalize` knows.
BODY_AXES_JOINTS: dict[str, tuple[int, int, int, int, int, int]] = {
    "h36m17": (0, 8, 1, 4, 14, 11), "kinect20": (0, 2, 16, 12, 8, 4)}
#: Layout names recorded in the models' metadata (``layout``) for 3D NW-UCLA input of each ``data.layout``.
NW_UCLA_LAYOUTS = {"h36m17": "nw_ucla_h36m17", "kinect20": "nw_ucla_kinect20"}


@dataclass(frozen=True)
class ActionInput:
    """A clip ready for the model: ``x`` (M, T, 17, 3) (normalised 2D + score, or root-relative 3D), its label."""

    name: str
    label: int
    x: np.ndarray


@dataclass(frozen=True)
class ActionRunConfig:
    model: ActionModelConfig = field(default_factory=ActionModelConfig)
    data: ActionDataConfig = field(default_factory=ActionDataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)


def clip_input(clip: ActionClip, *, persons: int) -> np.ndarray:
    """A clip as normalised model input (M=persons, T, 17, 3); undetected joints are zero."""
    kp = clip.h36m()  # (M, T, 17, 3) pixels + score
    x = np.concatenate([normalize_2d(kp[..., :2], clip.width, clip.height), kp[..., 2:3]], axis=-1)
    x[kp[..., 2] <= 0] = 0.0
    out = np.zeros((persons,) + x.shape[1:], np.float32)
    out[: min(persons, x.shape[0])] = x[:persons]
    return out


def windows(x: np.ndarray, *, clip_len: int, frame_step: int, starts: list[int] | None = None) -> np.ndarray:
    """(M, T, 17, 3) -> (N, M, clip_len, 17, 3): windows every ``clip_len * frame_step`` frames (or at ``starts``);
    clips shorter than a window are stretched by repeating frames."""
    t = x.shape[1]
    span = clip_len * frame_step
    if starts is None:
        starts = list(range(0, max(1, t - span + 1), span)) or [0]
    out = []
    for s in starts:
        idx = s + np.arange(clip_len) * frame_step
        if t < span:
            idx = np.linspace(0, t - 1, clip_len).round().astype(int)
        out.append(x[:, np.clip(idx, 0, t - 1)])
    return np.stack(out)


def resample_frames(x: np.ndarray, length: int, start: float = 0.0, stop: float | None = None) -> np.ndarray:
    """(M, T, J, C) -> (M, length, J, C): frames ``start .. stop`` (fractional, default the whole clip) sampled at
    ``length`` evenly spaced, rounded positions."""
    t = x.shape[1]
    stop = t - 1 if stop is None else stop
    idx = np.clip(np.rint(np.linspace(start, stop, length)).astype(int), 0, t - 1)
    return x[:, idx]


def view_normalize(joints: np.ndarray, *, first: float = 0.25, track: bool = False,
                   layout: str = "h36m17") -> np.ndarray:
    """H36M-17 joints (T, 17, 3) in any right-handed frame -> (T, 17, 3) in the body's own axes, unit torso
    (``layout="kinect20"``: Kinect v1's (T, 20, 3), by its hip centre, shoulder centre, hips and shoulders, so the
    result mapped to H36M-17 equals the H36M-17 result: the mapping is linear with rows summing to 1).

    Root-relative per frame (``track``: relative to the first frame's root, keeping the root's path); then turned so
    that y points down the mean spine (root -> neck, negated) of the first ``first`` of the frames, x along their
    mean hip + shoulder line (left -> right joints) made orthogonal to y, and z = x cross y (the subject's forward);
    scaled so that the mean root-neck length over all frames is 1. A proper rotation (no mirror), so a sequence turned
    or tilted by any angle gives the same array. Degenerate skeletons (all joints on the root) are only made
    root-relative.
    """
    if layout not in BODY_AXES_JOINTS:
        raise ValueError(f"view_normalize knows the layouts {tuple(BODY_AXES_JOINTS)}, got {layout!r}")
    n = LAYOUTS[layout].num_joints
    j = np.asarray(joints, np.float64)
    if j.ndim != 3 or j.shape[1:] != (n, 3) or j.shape[0] < 1:
        raise ValueError(f"view_normalize expects (T, {n}, 3) {layout} joints, got {j.shape}")
    root, neck, r_hip, l_hip, r_sh, l_sh = BODY_AXES_JOINTS[layout]
    rel = j - j[:, root : root + 1]  # (T, J, 3)
    lead = rel[: max(1, int(np.ceil(first * len(rel))))]
    down = -lead[:, neck].mean(axis=0)  # root -> neck, negated
    right = (lead[:, r_hip] - lead[:, l_hip] + lead[:, r_sh] - lead[:, l_sh]).mean(axis=0)  # right hip/shoulder - left
    torso = float(np.linalg.norm(rel[:, neck], axis=-1).mean())
    if track:
        rel = j - j[:1, root : root + 1]
    if np.linalg.norm(down) < 1e-6 or torso < 1e-6:
        return rel.astype(np.float32)
    y = down / np.linalg.norm(down)
    x = right - (right @ y) * y
    if np.linalg.norm(x) < 1e-6:
        return (rel / torso).astype(np.float32)
    x /= np.linalg.norm(x)
    rot = np.stack([x, y, np.cross(x, y)])  # (3, 3) rows: the new axes
    return (rel @ rot.T / torso).astype(np.float32)


def skeleton3d_input(joints_cam: np.ndarray, normalize: str = "none", layout: str = "h36m17") -> np.ndarray:
    """Camera-frame joints (T, J, 3) metres of ``layout`` (H36M-17 or Kinect v1's 20) -> model input (1, T, J, 3):
    root-relative per frame (``normalize="none"``), or :func:`view_normalize` (``"view"``; ``"view_track"``: with
    ``track=True``, so give joints with their root's path)."""
    if normalize not in NORMALIZATIONS:
        raise ValueError(f"normalize must be one of {NORMALIZATIONS}, got {normalize!r}")
    if normalize != "none":
        return view_normalize(joints_cam, track=normalize == "view_track", layout=layout)[None]
    j = np.asarray(joints_cam, np.float32)
    return (j - j[:, :1])[None]


def rotate_3d(x: np.ndarray, yaw_deg: float, tilt_deg: float, scale: float) -> np.ndarray:
    """Turn camera-frame points (..., 3) about the vertical (y) axis, then the camera x axis, and scale them."""
    a, b = np.radians(yaw_deg), np.radians(tilt_deg)
    yaw = np.array([[np.cos(a), 0, np.sin(a)], [0, 1, 0], [-np.sin(a), 0, np.cos(a)]])
    tilt = np.array([[1, 0, 0], [0, np.cos(b), -np.sin(b)], [0, np.sin(b), np.cos(b)]])
    return (scale * x @ (tilt @ yaw).T).astype(x.dtype)


def nw_ucla_inputs(split: str, root: str | None = None, *, normalize: str = "none",
                   views: tuple[int, ...] | None = None, layout: str = "h36m17") -> list[ActionInput]:
    """NW-UCLA's ``split`` (only ``views`` of it when given) as 3D model inputs of ``layout`` (``h36m17``: the Kinect
    joints mapped to H36M-17; ``kinect20``: all 20 of them; see the module doc)."""
    from hmore.data.nw_ucla import camera_frame, load_nw_ucla

    if layout not in NW_UCLA_LAYOUTS:
        raise ValueError(f"layout must be one of {tuple(NW_UCLA_LAYOUTS)}, got {layout!r}")
    data = load_nw_ucla(root or None)
    return [ActionInput(name=s.name, label=s.label,
                        x=skeleton3d_input(camera_frame(s.joints if layout == "kinect20" else s.h36m()), normalize,
                                           layout))
            for s in data.split(split) if views is None or s.view in views]


def sample_frames(x: np.ndarray, rng: np.random.Generator | None, *, clip_len: int, frame_step: int, sampling: str,
                  crop_min: float = 1.0) -> np.ndarray:
    """One training window (M, clip_len, 17, 3) of an input (random when ``rng`` is given)."""
    t = x.shape[1]
    if sampling == "whole":
        span = (t - 1) * (rng.uniform(crop_min, 1.0) if rng is not None else 1.0)
        start = rng.uniform(0, t - 1 - span) if rng is not None else 0.0
        return resample_frames(x, clip_len, start, start + span)
    span = clip_len * frame_step
    start = int(rng.integers(0, max(1, t - span + 1))) if rng is not None else 0
    return windows(x, clip_len=clip_len, frame_step=frame_step, starts=[start])[0]


class ActionTask:
    """Action classification with cross-entropy; reports top-1 accuracy on the test split."""

    name = "action"
    config_class = ActionRunConfig

    def __init__(self, *, config: ActionRunConfig, dataset: ActionDataset | None = None) -> None:
        from hmore.errors import ConfigError

        d = config.data
        if d.dataset not in DATASETS or d.input not in INPUTS or d.sampling not in SAMPLINGS:
            raise ConfigError(f"data.dataset must be one of {DATASETS}, data.input one of {INPUTS}, data.sampling "
                              f"one of {SAMPLINGS}; got {d.dataset!r}, {d.input!r}, {d.sampling!r}")
        if d.dataset == "nw_ucla" and d.input != "3d":
            raise ConfigError("data.dataset nw_ucla needs data.input 3d (Kinect skeletons in camera axes)")
        if d.dataset == "" and d.input != "2d":
            raise ConfigError("pyskl and generated action sets are 2D: data.input must be 2d")
        if not 0 < d.crop_min <= 1:
            raise ConfigError(f"data.crop_min must lie in (0, 1], got {d.crop_min}")
        if d.normalize not in NORMALIZATIONS or (d.normalize != "none" and d.input != "3d"):
            raise ConfigError(f"data.normalize must be one of {NORMALIZATIONS} (view* needs data.input 3d), got "
                              f"{d.normalize!r} with input {d.input!r}")
        if d.validate_on not in VALIDATIONS or (d.validate_on and d.dataset != "nw_ucla"):
            raise ConfigError(f"data.validate_on must be one of {VALIDATIONS} ('view2' needs data.dataset nw_ucla), "
                              f"got {d.validate_on!r}")
        if not 0 <= d.label_smoothing < 1:
            raise ConfigError(f"data.label_smoothing must lie in [0, 1), got {d.label_smoothing}")
        if d.layout not in NW_UCLA_LAYOUTS or (d.layout != "h36m17" and d.dataset != "nw_ucla"):
            raise ConfigError(f"data.layout must be one of {tuple(NW_UCLA_LAYOUTS)} ('kinect20' needs data.dataset "
                              f"nw_ucla), got {d.layout!r}")
        self.config = config
        self._data = dataset
        if d.dataset == "nw_ucla":  # the exported weights' licence (``hmore train --export``)
            self.weights_licence = ("research use only: trained on NW-UCLA (Wang et al., CVPR 2014); the terms of "
                                    "the original dataset apply")
        self._inputs: dict[str, list[ActionInput]] = {}

    def dataset(self) -> ActionDataset:
        """The action set (read, or generated and cached, on first use)."""
        if self._data is None:
            d = self.config.data
            if d.pickle:
                self._data = read_action_pickle(d.pickle)
            else:
                cache = Path(d.cache)
                if cache.is_file():
                    self._data = read_action_pickle(cache)
                else:
                    n_tr, n_te = d.train_identities, d.test_identities
                    self._data = generate_action_set(train_identities=range(n_tr),
                                                     test_identities=range(n_tr, n_tr + n_te),
                                                     clips_per_pair=d.clips_per_pair, num_frames=d.num_frames,
                                                     seed=d.seed)
                    write_action_pickle(cache, self._data)
            for s in (self.config.data.train_split, self.config.data.test_split):
                if not self._data.subset(s):
                    raise InputError(f"split {s!r} of the action set is empty")
                bad = sorted({c.label for c in self._data.subset(s)} - set(range(len(self._data.classes))))
                if bad:
                    raise InputError(f"split {s!r} of the action set has labels {bad[:5]} outside the "
                                     f"{len(self._data.classes)} classes 0..{len(self._data.classes) - 1}")
        return self._data

    @property
    def classes(self) -> list[str]:
        if self.config.data.dataset == "nw_ucla":
            from hmore.data.nw_ucla import ACTIONS

            return list(ACTIONS)
        return self.dataset().classes

    def inputs(self, split: str) -> list[ActionInput]:
        """The model inputs of a split (``data.train_split`` / ``data.test_split``; NW-UCLA: train / test), cached."""
        if split not in self._inputs:
            d = self.config.data
            if d.dataset == "nw_ucla":
                views = None  # validate_on view2: train on view 1 of the train split, evaluate on its view 2
                if d.validate_on == "view2":
                    views, split_read = ((1,), "train") if split == d.train_split else ((2,), "train")
                else:
                    split_read = split
                self._inputs[split] = nw_ucla_inputs(split_read, d.root or None, normalize=d.normalize, views=views,
                                                     layout=d.layout)
            else:
                self._inputs[split] = [ActionInput(name=c.name, label=c.label, x=clip_input(c, persons=d.persons))
                                       for c in self.dataset().subset(split)]
            if not self._inputs[split]:
                raise InputError(f"split {split!r} of the action set is empty")
        return self._inputs[split]

    def build_model(self) -> nn.Module:
        from hmore.lift.infer import check_clip_fits

        m = self.config.model
        model = create_model(m.name, **{**m.kwargs, "num_classes": len(self.classes)})
        check_clip_fits(model, self.config.data.clip_len, name=m.name)
        if m.backbone_init:
            from hmore.lift.pipeline import load_lifter

            src = Path(m.backbone_init)
            lifter = load_lifter(checkpoint=src) if src.exists() else load_lifter(weights=m.backbone_init)
            missing = model.backbone.load_state_dict(lifter.state_dict(), strict=False)
            log.info("backbone initialised from %s (missing %d, unexpected %d keys)", m.backbone_init,
                     len(missing.missing_keys), len(missing.unexpected_keys))
        return model

    def model_config(self) -> dict:
        m = self.config.model
        d = self.config.data
        return {"name": m.name, "kwargs": {**m.kwargs, "num_classes": len(self.classes)},
                "classes": list(self.classes), "clip_len": d.clip_len, "frame_step": d.frame_step,
                "persons": d.persons, "input": d.input, "sampling": d.sampling, "normalize": d.normalize,
                "layout": NW_UCLA_LAYOUTS[d.layout] if d.dataset == "nw_ucla" else "coco17_h36m17"}

    def batch(self, step: int, *, rank: int, world_size: int, batch_size: int) -> dict[str, torch.Tensor]:
        d = self.config.data
        train = self.inputs(d.train_split)
        xs, ys = [], []
        for g in range(rank * batch_size, (rank + 1) * batch_size):
            rng = np.random.default_rng([d.seed, 41, step, g])
            item = train[int(rng.integers(len(train)))]
            w = sample_frames(item.x, rng, clip_len=d.clip_len, frame_step=d.frame_step, sampling=d.sampling,
                              crop_min=d.crop_min)  # (M, L, 17, 3)
            if rng.random() < d.flip_prob:  # mirror: x negated, left and right joints swapped
                w = flip(w, d.layout)
            w = w.copy()
            if d.input == "3d":
                w = rotate_3d(w, rng.uniform(-d.rotate_deg, d.rotate_deg), rng.uniform(-d.tilt_deg, d.tilt_deg),
                              rng.uniform(1 - d.scale, 1 + d.scale))
                w += rng.normal(0, d.jitter, size=w.shape).astype(w.dtype)
            else:
                seen = w[..., 2:3] > 0
                w[..., :2] += rng.normal(0, d.jitter, size=w[..., :2].shape) * seen
            xs.append(w)
            ys.append(item.label)
        return {"x": torch.from_numpy(np.stack(xs).astype(np.float32)), "y": torch.tensor(ys, dtype=torch.long)}

    def loss(self, model: nn.Module, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
        logits = model(batch["x"])  # (B, classes)
        loss = F.cross_entropy(logits.float(), batch["y"], label_smoothing=self.config.data.label_smoothing)
        acc = (logits.argmax(dim=-1) == batch["y"]).float().mean()
        return loss, {"acc": acc.item()}

    @torch.no_grad()
    def predict(self, model: nn.Module, clips: list[ActionClip] | list[ActionInput]) -> np.ndarray:
        """(N, classes) class probabilities, averaged over each clip's windows."""
        d = self.config.data
        xs = [c.x if isinstance(c, ActionInput) else clip_input(c, persons=d.persons) for c in clips]
        return predict_inputs(model, xs, clip_len=d.clip_len, frame_step=d.frame_step, sampling=d.sampling)

    def evaluate(self, model: nn.Module) -> dict[str, float]:
        test = self.inputs(self.config.data.test_split)
        prob = self.predict(model, test)
        labels = np.array([c.label for c in test])
        return {"top1": float((prob.argmax(axis=1) == labels).mean())}

    def images(self, model: nn.Module, batch: Any) -> dict[str, np.ndarray]:
        return {}


@torch.no_grad()
def predict_inputs(model: nn.Module, xs: list[np.ndarray], *, clip_len: int, frame_step: int,
                   sampling: str = "windows", batch_size: int = 64) -> np.ndarray:
    """(N, classes) class probabilities of model inputs (M, T, 17, 3), averaged over each one's windows."""
    dev = next(model.parameters()).device
    was = model.training
    model.eval()
    wins = [resample_frames(x, clip_len)[None] if sampling == "whole"
            else windows(x, clip_len=clip_len, frame_step=frame_step) for x in xs]  # (n_i, M, L, 17, 3) each
    owner = np.concatenate([np.full(len(w), i) for i, w in enumerate(wins)])
    flat = np.concatenate(wins).astype(np.float32)
    prob = np.concatenate([model(torch.from_numpy(flat[i : i + batch_size]).to(dev)).float().softmax(dim=-1).cpu()
                           .numpy() for i in range(0, len(flat), batch_size)])
    model.train(was)
    out = np.zeros((len(xs), prob.shape[1]))
    np.add.at(out, owner, prob)
    return out / np.bincount(owner, minlength=len(xs))[:, None]


@torch.no_grad()
def predict_clips(model: nn.Module, clips: list[ActionClip], *, clip_len: int, frame_step: int,
                  persons: int) -> np.ndarray:
    """(N, classes) class probabilities of 2D ``clips``, averaged over each clip's windows."""
    return predict_inputs(model, [clip_input(c, persons=persons) for c in clips], clip_len=clip_len,
                          frame_step=frame_step)
