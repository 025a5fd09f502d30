"""A generated fine-grained action set (Diving48's spirit): the 12 arm-gesture variants of
:mod:`hmore.fineaction.motions` under random identity, clothing, view, base motion (walk or stand) and camera
(static, pan, track: a walking person followed by the camera moves the background).

Item ``train-00007`` / ``test-00003``: class = index modulo 12, everything else drawn from the item's seed; train and
test use disjoint identities. Each item is a person-centred square crop (the union of the person's masks over the
clip, 15 % margin) resized to ``crop`` x ``crop``: ``rgb`` (T, crop, crop, 3) uint8, ``mask`` (T, crop, crop) uint8
(the generator's person masks cropped the same way, 255 = person; what ``data.flow_mask`` multiplies every flow
channel by, as the gait set's silhouettes) and the flow channels (T-1, 2, crop, crop) int8 in steps of ``flow_step``
pixels of the crop. The folder layout and the caching (resumable,
shardable, H-MoRe flows per weights) are those of :func:`hmore.flowfeed.build_clip_cache`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from hmore.errors import UsageError
from hmore.fineaction.motions import CLASSES, GESTURES, overlay_gesture
from hmore.flowfeed import (
    BuildSummary,
    FlowModel,
    Prepared,
    build_clip_cache,
    load_clip_cache,
    open_set_config,
    quantise_flow,
)

VIEWS = tuple(float(v) for v in range(0, 181, 18))


@dataclass(frozen=True)
class ActionSetConfig:
    """A generated fine-grained action set.

    Attributes:
        train_identities, test_identities: people of each split (disjoint).
        train_per_class, test_per_class: clips per class in each split.
        frames, fps: clip length and frame rate.
        size: rendered (H, W).
        crop: side of the person-centred square crop.
        flow_step: pixels per int8 unit of the stored flows.
        cameras: camera motions drawn for walking people (standing people: a static camera).
        distractors: moving background objects.
        seed: the set's seed.
    """

    train_identities: int = 24
    test_identities: int = 8
    train_per_class: int = 36
    test_per_class: int = 20
    frames: int = 24
    fps: float = 15.0
    size: tuple[int, int] = (112, 112)
    crop: int = 64
    flow_step: float = 0.25
    cameras: tuple[str, ...] = ("static", "pan", "track")
    distractors: int = 1
    seed: int = 0

    def __post_init__(self) -> None:
        if min(self.train_identities, self.test_identities, self.train_per_class, self.test_per_class) < 1:
            raise UsageError("action set: identities and clips per class must be >= 1")
        if self.frames < 3 or self.crop < 8 or self.flow_step <= 0:
            raise UsageError("action set: frames >= 3, crop >= 8 and flow_step > 0 required")


PRESETS: dict[str, ActionSetConfig] = {
    "full": ActionSetConfig(),
    "quick": ActionSetConfig(train_identities=8, test_identities=4, train_per_class=6, test_per_class=3, frames=16,
                             size=(80, 80), crop=48),
    # between quick and full: what the README's action table could afford on the shared 2-core machine
    "mid": ActionSetConfig(train_identities=12, test_identities=6, train_per_class=16, test_per_class=6, frames=16,
                           size=(80, 80), crop=48),
    # the first 24 training and 12 test clips per class of "full" (an item's bytes depend on its index and the
    # identities only, so these are the full set's own files): what one session's CPU budget could build and train
    "full24": ActionSetConfig(train_per_class=24, test_per_class=12),
    "test": ActionSetConfig(train_identities=2, test_identities=1, train_per_class=1, test_per_class=1, frames=5,
                            size=(48, 48), crop=16, distractors=0),
}


def action_preset(name: str) -> ActionSetConfig:
    if name not in PRESETS:
        raise UsageError(f"unknown action set preset {name!r}; known: {', '.join(PRESETS)}")
    return PRESETS[name]


@dataclass(frozen=True)
class ActionItem:
    """One clip: ``split`` (train/test), ``index``, ``label`` (class index), ``identity`` and its render seed."""

    split: str
    index: int
    label: int
    identity: int
    seed: int

    @property
    def key(self) -> str:
        return f"{self.split}-{self.index:05d}"


def items(config: ActionSetConfig, split: str | None = None) -> list[ActionItem]:
    """The set's items (of one split, or both), class = index modulo the number of classes."""
    out = []
    n_tr, n_te = config.train_identities, config.test_identities
    for sp, n_per, ids in (("train", config.train_per_class, range(1, n_tr + 1)),
                           ("test", config.test_per_class, range(n_tr + 1, n_tr + n_te + 1))):
        if split is not None and sp != split:
            continue
        ids = list(ids)
        for i in range(n_per * len(CLASSES)):
            seed = int(np.random.SeedSequence([config.seed & 0xFFFFFFFF, sp == "test", i, 0xAC71]).generate_state(1)[0]
                       >> 1)
            ident = ids[int(np.random.default_rng([seed, 1]).integers(len(ids)))]
            out.append(ActionItem(split=sp, index=i, label=i % len(CLASSES), identity=ident, seed=seed))
    return out


def render_item(config: ActionSetConfig, item: ActionItem) -> Any:
    """The generated clip of an item (:class:`hmore.synth.clip.Clip`)."""
    from hmore.synth.clip import render_clip
    from hmore.synth.identity import sample_identity
    from hmore.synth.motion import generate_motion

    rng = np.random.default_rng([item.seed, 2])
    person = sample_identity(item.identity, seed=config.seed)
    view = float(rng.choice(VIEWS))
    walk = bool(rng.random() < 0.5)
    camera = str(rng.choice(config.cameras)) if walk else "static"
    condition = str(rng.choice(("normal", "bag", "coat")))
    base = generate_motion("walk" if walk else "stand", person, num_frames=config.frames, fps=config.fps,
                           seed=int(rng.integers(2**31 - 1)), heading=float(np.pi + np.deg2rad(view)))
    motion = overlay_gesture(base, GESTURES[item.label], rng=rng)
    return render_clip(size=tuple(config.size), num_frames=config.frames, subjects=1, seed=item.seed,
                       conditions=[condition], identities=[person], camera_motion=camera,
                       distractors=config.distractors, fps=config.fps, motions=[motion])


def square_box(masks: np.ndarray, *, margin: float = 0.15) -> tuple[float, float, float]:
    """(x0, y0, side) of the square around the union of the person's masks over the clip (whole frame if empty)."""
    ys, xs = np.nonzero((masks > 0).any(axis=0))
    h, w = masks.shape[1:]
    if len(xs) == 0:
        side = float(max(h, w))
        return (w - side) / 2.0, (h - side) / 2.0, side
    x0, x1, y0, y1 = xs.min(), xs.max() + 1, ys.min(), ys.max() + 1
    side = max(x1 - x0, y1 - y0) * (1.0 + 2 * margin)
    return (x0 + x1 - side) / 2.0, (y0 + y1 - side) / 2.0, float(side)


def crop_square(image: np.ndarray, box: tuple[float, float, float], size: int) -> np.ndarray:
    """The square ``box`` of an (H, W[, C]) image resized to ``size`` x ``size`` (zeros outside the image)."""
    x0, y0, side = box
    s = size / side
    m = np.array([[s, 0.0, -s * x0 + 0.5 * s - 0.5], [0.0, s, -s * y0 + 0.5 * s - 0.5]])
    img = np.asarray(image)
    if s < 1.0:  # shrink: blur first so that the warp does not alias
        k = int(2 * round(0.5 / s) + 1)
        img = cv2.GaussianBlur(img.astype(np.float32), (k, k), 0.4 / s)
    out = cv2.warpAffine(img.astype(np.float32), m, (size, size), flags=cv2.INTER_LINEAR,
                         borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    return out.reshape(size, size, *np.asarray(image).shape[2:])


def prepare_item(config: ActionSetConfig, item: ActionItem, clip: Any) -> Prepared:
    """The item's RGB crop, its person mask's crop (the generator's masks, as the gait set's silhouettes) and the
    crop of its flows."""
    box = square_box(clip.masks)
    rgb = np.stack([np.clip(np.rint(crop_square(f, box, config.crop)), 0, 255).astype(np.uint8)
                    for f in clip.frames])
    mask = np.stack([np.clip(np.rint(255.0 * crop_square((m > 0).astype(np.float32), box, config.crop)), 0, 255)
                     .astype(np.uint8) for m in clip.masks])
    scale = config.crop / box[2]

    def crop_flow(flow: np.ndarray) -> np.ndarray:  # (T-1, 2, H, W) -> (T-1, 2, crop, crop) int8
        out = np.stack([crop_square(f.transpose(1, 2, 0), box, config.crop) for f in flow]) * scale
        return quantise_flow(out.transpose(0, 3, 1, 2), config.flow_step)

    lab = clip.meta["labels"][0]
    meta = {"item": item.__dict__, "class": CLASSES[item.label], "view": lab["view"],
            "condition": lab["condition"], "camera": clip.meta["params"]["camera_motion"],
            "base": "walk" if float(np.abs(clip.subject_velocity).sum()) > 1.0 else "stand"}
    return Prepared(arrays={"rgb": rgb, "mask": mask, "label": np.array(item.label)}, crop_flow=crop_flow, meta=meta)


def open_set(root: str | Path, config: ActionSetConfig | None = None) -> ActionSetConfig:
    """The config of the action set in ``root``; with ``config``, create ``set.json`` or check that it matches."""
    return open_set_config(root, ActionSetConfig, config, what="action set", hint="hmore bench action-flow")


def build_action_set(root: str | Path, config: ActionSetConfig, *, flow_model: FlowModel | None = None,
                     shard: tuple[int, int] = (0, 1), progress: bool | None = None) -> BuildSummary:
    """Render and cache the set (resumable, shardable; H-MoRe flows of ``flow_model`` when given)."""
    open_set(root, config)
    by_key = {it.key: it for it in items(config)}
    return build_clip_cache(root, list(by_key), render=lambda k: render_item(config, by_key[k]),
                            prepare=lambda k, clip: prepare_item(config, by_key[k], clip), flow_model=flow_model,
                            shard=shard, progress=progress, desc="action set")


@dataclass(frozen=True)
class ActionArrays:
    """Items in memory: ``rgb`` (T, c, c, 3) uint8, the flow channels (T-1, 2, c, c) int8 and, when loaded, the
    person masks ``mask`` (T, c, c) uint8 (255 = person) per item."""

    items: list[ActionItem]
    rgb: list[np.ndarray]
    flows: dict[str, list[np.ndarray]]
    flow_step: float
    mask: list[np.ndarray] | None = None

    def __len__(self) -> int:
        return len(self.items)

    @property
    def labels(self) -> np.ndarray:
        return np.array([it.label for it in self.items])

    def subset(self, keep: Sequence[int]) -> ActionArrays:
        return ActionArrays(items=[self.items[k] for k in keep], rgb=[self.rgb[k] for k in keep],
                            flows={c: [v[k] for k in keep] for c, v in self.flows.items()},
                            flow_step=self.flow_step, mask=None if self.mask is None else [self.mask[k] for k in keep])


def load_action_set(root: str | Path, *, split: str, channels: Sequence[str] = (), flow_key: str | None = None,
                    mask: bool = False, progress: bool | None = None) -> ActionArrays:
    """The items of ``split`` with the flow ``channels`` (see :func:`hmore.flowfeed.load_clip_cache`) and, with
    ``mask``, the person masks (sets built before the masks were stored raise InputError: build them anew)."""
    config = open_set(root)
    its = items(config, split)
    arrays = ("rgb", "mask") if mask else ("rgb",)
    got = load_clip_cache(root, [it.key for it in its], arrays=arrays, channels=channels, flow_key=flow_key,
                          progress=progress, desc=f"load {split}")
    return ActionArrays(items=its, rgb=got["rgb"], flows={c: got[c] for c in channels}, flow_step=config.flow_step,
                        mask=got["mask"] if mask else None)
