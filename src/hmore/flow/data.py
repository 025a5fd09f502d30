"""The data stream of ``hmore train flow``: samples from generated clips, clip folders or real videos with priors.

Data are a pure function of (data seed, step, sample): sample ``g`` of the run (``g = step * global batch + index``)
uses clip ``c(g)`` and pair ``p(g)``, and its crop and flip come from a generator seeded by ``(seed, g)``, so a
resumed run sees exactly the same samples and DDP ranks split the global batch without coordination. Clips rendered
for training use seeds below :data:`HELD_OUT_SEED_BASE`; the evaluation clips (and benchmarks) use seeds above it.

A sample is a dict of numpy arrays (:func:`make_sample`, :func:`augment`); :func:`collate` stacks samples into a
:class:`FlowBatch`.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch

from hmore.errors import InputError, UsageError
from hmore.flow.config import FlowDataConfig

log = logging.getLogger(__name__)

HELD_OUT_SEED_BASE = 2**31  # generator seeds >= this are never used for training clips
_TRAIN_SEED_MULT = 1_000_003
_MIN_SUBJECT_PIXELS = 20  # a subject with fewer mask pixels in the crop does not count for Psi's loss


@dataclass(frozen=True)
class FlowBatch:
    """A batch of frame pairs with their ground truth and priors.

    Attributes:
        image1: (B, 3, H, W) uint8 RGB frame t.
        image2: (B, 3, H, W) uint8 RGB frame t+1.
        flow: (B, 2, H, W) float32 ground-truth flow t -> t+1 (zeros where ``has_flow`` is False).
        valid: (B, H, W) bool pixels whose flow is defined (visible at t+1).
        masks: (B, H, W) int64 subject labels at t (0 background, k subject k).
        kp_t: (B, P, 17, 3) COCO-17 keypoints at t (x, y, confidence); padded subjects have confidence 0.
        kp_t1: (B, P, 17, 3) the same at t+1.
        subject_velocity: (B, P, 2) exact root displacement (generated clips; zeros otherwise).
        subject_weight: (B, P) 1 for subjects present in the crop, 0 for padding and absent ones.
        has_flow: (B,) bool samples with ground-truth flow (False for real video).
        occluded: (B, H, W) bool pixels of frame t not seen in frame t+1 (a forward-backward check of OpenCV DIS;
            all False unless the photometric loss asked for it).
    """

    image1: torch.Tensor
    image2: torch.Tensor
    flow: torch.Tensor
    valid: torch.Tensor
    masks: torch.Tensor
    kp_t: torch.Tensor
    kp_t1: torch.Tensor
    subject_velocity: torch.Tensor
    subject_weight: torch.Tensor
    has_flow: torch.Tensor
    occluded: torch.Tensor

    @property
    def num_subjects(self) -> int:
        return int(self.kp_t.shape[1])


# ---- samples -----------------------------------------------------------------------------------------------------


def _empty_kp(p: int) -> np.ndarray:
    return np.zeros((p, 17, 3), np.float32)


def make_sample(*, image1: np.ndarray, image2: np.ndarray, masks: np.ndarray, kp_t: np.ndarray, kp_t1: np.ndarray,
                flow: np.ndarray | None, valid: np.ndarray | None, subject_velocity: np.ndarray | None,
                slots: int) -> dict[str, np.ndarray]:
    """One sample as numpy arrays, subjects padded (or cut) to ``slots``.

    Args:
        image1, image2: (H, W, 3) uint8 frames t and t+1.
        masks: (H, W) subject labels at t.
        kp_t, kp_t1: (P, 17, 3) keypoints.
        flow: (H, W, 2) flow t -> t+1 or None (real video).
        valid: (H, W) bool validity of ``flow`` or None (all valid).
        subject_velocity: (P, 2) root displacements or None.
        slots: subject slots of the batch.
    """
    h, w = masks.shape
    p = min(int(kp_t.shape[0]), slots)
    kt, kt1 = _empty_kp(slots), _empty_kp(slots)
    kt[:p], kt1[:p] = kp_t[:p], kp_t1[:p]
    sv = np.zeros((slots, 2), np.float32)
    if subject_velocity is not None:
        sv[:p] = subject_velocity[:p]
    labels = masks.astype(np.int64)
    labels[labels > slots] = 0
    return {
        "image1": image1, "image2": image2, "masks": labels, "kp_t": kt, "kp_t1": kt1, "subject_velocity": sv,
        "flow": np.zeros((h, w, 2), np.float32) if flow is None else flow.astype(np.float32),
        "valid": np.ones((h, w), bool) if valid is None else valid.astype(bool),
        "has_flow": np.array(flow is not None),
        "occluded": np.zeros((h, w), bool),
    }


def augment(sample: dict[str, np.ndarray], rng: np.random.Generator, *, crop: tuple[int, int],
            flip_prob: float, on_people: bool = False) -> dict[str, np.ndarray]:
    """Random crop to ``crop`` (H, W) (clamped to the image) and horizontal flip with probability ``flip_prob``.

    With ``on_people`` the crop is drawn among those that contain a random person pixel (when there is one), so
    large real frames with small people still give crops with people in them.

    The flip mirrors every image-like array, negates the x component of the flow and of the subject velocities and
    maps keypoint x to ``W - 1 - x`` (pixel centres sit at integer x); it swaps nothing else (mask labels and joint
    names stay). Also sets ``subject_weight`` from the subjects' mask pixels left in the crop.
    """
    h, w = sample["masks"].shape
    ch, cw = min(crop[0], h), min(crop[1], w)
    ylo, yhi, xlo, xhi = 0, h - ch, 0, w - cw
    if on_people:
        ys, xs = np.nonzero(sample["masks"] > 0)
        if len(ys):
            k = int(rng.integers(len(ys)))
            ylo, yhi = max(0, int(ys[k]) - ch + 1), min(h - ch, int(ys[k]))
            xlo, xhi = max(0, int(xs[k]) - cw + 1), min(w - cw, int(xs[k]))
    y0 = int(rng.integers(ylo, yhi + 1))
    x0 = int(rng.integers(xlo, xhi + 1))
    flip = bool(rng.random() < flip_prob)
    out = dict(sample)
    for k in ("image1", "image2", "flow", "valid", "masks", "occluded"):
        if k not in sample:
            continue
        a = sample[k][y0:y0 + ch, x0:x0 + cw]
        out[k] = np.ascontiguousarray(a[:, ::-1] if flip else a)
    kt, kt1 = sample["kp_t"].copy(), sample["kp_t1"].copy()
    for kp in (kt, kt1):
        kp[..., 0] -= x0
        kp[..., 1] -= y0
        if flip:
            kp[..., 0] = (cw - 1) - kp[..., 0]
    sv = sample["subject_velocity"].copy()
    if flip:
        out["flow"] = out["flow"] * np.array([-1.0, 1.0], np.float32)
        sv[:, 0] = -sv[:, 0]
    out.update(kp_t=kt, kp_t1=kt1, subject_velocity=sv)
    slots = kt.shape[0]
    counts = np.bincount(out["masks"].ravel(), minlength=slots + 1)[1:slots + 1]
    out["subject_weight"] = (counts >= _MIN_SUBJECT_PIXELS).astype(np.float32)
    return out


def collate(samples: list[dict[str, np.ndarray]]) -> FlowBatch:
    """Stack augmented samples into a :class:`FlowBatch` (images channel-first)."""

    def stack(key: str) -> torch.Tensor:
        return torch.from_numpy(np.stack([s[key] for s in samples]))

    return FlowBatch(
        image1=stack("image1").permute(0, 3, 1, 2).contiguous(),  # (B, H, W, 3) -> (B, 3, H, W)
        image2=stack("image2").permute(0, 3, 1, 2).contiguous(),
        flow=stack("flow").permute(0, 3, 1, 2).contiguous(),  # (B, H, W, 2) -> (B, 2, H, W)
        valid=stack("valid"),
        masks=stack("masks"),
        kp_t=stack("kp_t"),
        kp_t1=stack("kp_t1"),
        subject_velocity=stack("subject_velocity"),
        subject_weight=stack("subject_weight"),
        has_flow=stack("has_flow"),
        occluded=stack("occluded") if all("occluded" in s for s in samples) else torch.zeros_like(stack("valid")),
    )


class LRU:
    """A small least-recently-used cache of expensive objects (rendered or decoded clips)."""

    def __init__(self, size: int) -> None:
        self.size = max(1, size)
        self._items: OrderedDict[Any, Any] = OrderedDict()

    def get(self, key: Any, make: Callable[[], Any]) -> Any:
        if key in self._items:
            self._items.move_to_end(key)
            return self._items[key]
        value = make()
        self._items[key] = value
        while len(self._items) > self.size:
            self._items.popitem(last=False)
        return value


def train_clip_seed(data_seed: int, clip_index: int) -> int:
    """Generator seed of training clip ``clip_index`` (always below :data:`HELD_OUT_SEED_BASE`)."""
    return (int(data_seed) * _TRAIN_SEED_MULT + int(clip_index)) % HELD_OUT_SEED_BASE


def held_out_clip_seed(data_seed: int, index: int) -> int:
    """Generator seed of held-out clip ``index`` (at or above :data:`HELD_OUT_SEED_BASE`, never used in training)."""
    return HELD_OUT_SEED_BASE + (int(data_seed) * 4099 + int(index)) % HELD_OUT_SEED_BASE


def render_params(data: FlowDataConfig, rng: np.random.Generator) -> dict[str, Any]:
    """Random ``render_clip`` settings (people, camera, distractors, overlap, shading) for one clip."""
    lo, hi = data.subjects
    subjects = int(rng.integers(lo, hi + 1))
    params = {
        "subjects": subjects,
        "camera_motion": str(data.camera_motions[int(rng.integers(len(data.camera_motions)))]),
        "distractors": int(rng.integers(data.distractors[0], data.distractors[1] + 1)),
        "overlap": float(rng.uniform(0.0, data.max_overlap)) if subjects > 1 else 0.0,
        "shading": bool(rng.random() < data.shading_prob),
        "fps": float(rng.uniform(data.fps[0], data.fps[1])),
    }
    if data.body != "capsule":  # only when asked: capsule streams unchanged
        params["body"] = data.body
    if data.shake_prob > 0 and rng.random() < data.shake_prob:  # drawn only when asked: older streams unchanged
        params["camera_shake"] = float(rng.uniform(*data.camera_shake))
    return params


def render_training_clip(seed: int, params: dict[str, Any], *, size: tuple[int, int], num_frames: int) -> Any:
    """``render_clip`` with ``params``; when the people do not fit in the image, retries with fewer people and, for
    one person who travels too far for a static or panning camera (a slow frame rate over many frames), with a
    tracking camera that follows them. Draws that fit are rendered exactly as before, so streams are unchanged."""
    from hmore.synth.clip import render_clip

    params = dict(params)
    while True:
        try:
            return render_clip(size=size, num_frames=num_frames, seed=seed, **params)
        except UsageError:
            if params["subjects"] > 1:
                params["subjects"] -= 1
                params["overlap"] = params["overlap"] if params["subjects"] > 1 else 0.0
            elif params.get("camera_motion") != "track":
                log.debug("clip seed %d: one person does not fit a %s camera; following them", seed,
                          params.get("camera_motion"))
                params["camera_motion"] = "track"
            else:
                raise


def stabilise_sample(sample: dict[str, np.ndarray], camera: Any = None) -> dict[str, np.ndarray]:
    """``sample`` as inference sees it with camera compensation (:func:`hmore.flow.inference.pair_flow`): the camera
    motion fitted to OpenCV DIS on the background, frame t+1 warped onto frame t's view, and the ground-truth flow,
    the keypoints at t+1 and the subject motion moved into that view (unchanged when the camera counts as still).

    Adds ``camera_homography`` (3, 3).
    """
    from hmore.flow.camera import CameraConfig, estimate_camera, stabilise, to_stabilised
    from hmore.models.flow.init import DIS_PRESETS

    a, b = sample["image1"], sample["image2"]
    grey_a = cv2.cvtColor(np.ascontiguousarray(a), cv2.COLOR_RGB2GRAY)
    dis = cv2.DISOpticalFlow_create(DIS_PRESETS["medium"])
    flow = dis.calc(grey_a, cv2.cvtColor(np.ascontiguousarray(b), cv2.COLOR_RGB2GRAY), None)
    motion = estimate_camera(flow, sample["masks"] > 0, grey_a, camera or CameraConfig())
    out = dict(sample)
    out["camera_homography"] = np.asarray(motion.homography, np.float64)
    if motion.is_identity:
        return out
    inv = np.linalg.inv(motion.homography)
    out["image2"] = np.ascontiguousarray(stabilise(b, motion))
    if bool(sample["has_flow"]):
        out["flow"] = to_stabilised(sample["flow"], motion)

    def unmove(xy: np.ndarray) -> np.ndarray:  # (..., 2) points of frame t+1 -> the stabilised view
        p = xy @ inv[:2, :2].T + inv[:2, 2]
        z = xy @ inv[2, :2] + inv[2, 2]
        return p / z[..., None]

    kp1 = sample["kp_t1"].copy()
    kp1[..., :2] = unmove(kp1[..., :2].astype(np.float64))
    out["kp_t1"] = kp1.astype(np.float32)
    hips = sample["kp_t"][:, 11:13, :2].mean(axis=1).astype(np.float64)  # (P, 2): where each subject's root is
    sv = sample["subject_velocity"].astype(np.float64)
    out["subject_velocity"] = (unmove(hips + sv) - hips).astype(np.float32) * (np.abs(sv).sum(-1, keepdims=True) > 0)
    return out


def dis_occlusion(image1: np.ndarray, image2: np.ndarray) -> np.ndarray:
    """(H, W) bool pixels of ``image1`` occluded in ``image2``: the forward-backward check of OpenCV DIS (medium)."""
    from hmore.metrics.flow import forward_backward_valid
    from hmore.models.flow.init import DIS_PRESETS

    g1 = cv2.cvtColor(np.ascontiguousarray(image1), cv2.COLOR_RGB2GRAY)
    g2 = cv2.cvtColor(np.ascontiguousarray(image2), cv2.COLOR_RGB2GRAY)
    dis = cv2.DISOpticalFlow_create(DIS_PRESETS["medium"])
    return ~forward_backward_valid(dis.calc(g1, g2, None), dis.calc(g2, g1, None))


def augment_none(samples: list[dict[str, np.ndarray]]) -> list[dict[str, np.ndarray]]:
    """Samples as :func:`augment` would leave them without crop or flip (adds ``subject_weight``)."""
    out = []
    for s in samples:
        h, w = s["masks"].shape
        out.append(augment(s, np.random.default_rng(0), crop=(h, w), flip_prob=0.0))
    return out


def clip_pair(clip: Any, t: int, slots: int) -> dict[str, np.ndarray]:
    """Pair (t, t+1) of a generated or loaded clip as a sample."""
    valid = None if clip.flow_valid is None else clip.flow_valid[t]
    return make_sample(image1=clip.frames[t], image2=clip.frames[t + 1], masks=clip.masks[t], kp_t=clip.kp2d[t],
                       kp_t1=clip.kp2d[t + 1], flow=clip.flow[t], valid=valid,
                       subject_velocity=clip.subject_velocity[t], slots=slots)


class PriorsSource:
    """Pairs of real-video frames with pose and mask priors from ``priors.npz`` files (``hmore priors``).

    Each ``priors.npz`` names its video (``source``); the video is looked up in ``video_folder`` or beside the
    priors file. Frames are decoded at the priors' mask size (or scaled to a longer side of ``max_side``), enlarged
    where needed to cover ``min_size`` (H, W) (so a crop of that size fits portrait and landscape videos alike), and
    the masks and keypoints scaled to it.
    """

    def __init__(self, folder: Path, video_folder: Path | None, *, cache: int,
                 min_size: tuple[int, int] = (0, 0), max_side: int = 0) -> None:
        from hmore.priors.pipeline import load_priors

        if not folder.is_dir():
            raise InputError(f"priors folder not found: {folder}")
        files = sorted(folder.rglob("priors.npz"))
        if not files:
            raise InputError(f"no priors.npz under {folder}")
        self.entries = []
        for path in files:
            pri = load_priors(path)
            video = (video_folder or path.parent) / pri.source
            if not video.exists():
                raise InputError(f"video {video} named by {path} not found (set data.video_folder)")
            if pri.num_frames >= 2:
                self.entries.append((path, video, pri))
        if not self.entries:
            raise InputError(f"no priors file under {folder} covers two frames")
        self._frames = LRU(cache)
        self.min_size = (int(min_size[0]), int(min_size[1]))
        self.max_side = int(max_side)

    def frame_size(self, index: int) -> tuple[int, int]:
        """(W, H) at which entry ``index`` is decoded: its mask size (or ``max_side``), enlarged to cover
        ``min_size``."""
        w, h = self.entries[index][2].mask_size
        s = self.max_side / max(w, h) if self.max_side > 0 else 1.0
        s = max(s, self.min_size[0] / h, self.min_size[1] / w)
        return max(self.min_size[1], int(np.ceil(w * s))), max(self.min_size[0], int(np.ceil(h * s)))

    def _decode(self, index: int) -> np.ndarray:
        from hmore.io.video import iter_frames

        _, video, pri = self.entries[index]
        w, h = self.frame_size(index)
        frames = []
        step = int(pri.frame_index[1] - pri.frame_index[0]) if pri.num_frames > 1 else 1
        for f in iter_frames(video, stride=step, start=int(pri.frame_index[0]), end=int(pri.frame_index[-1]) + 1):
            if f.shape[:2] != (h, w):
                f = cv2.resize(f, (w, h), interpolation=cv2.INTER_AREA)
            frames.append(f)
            if len(frames) == pri.num_frames:
                break
        return np.stack(frames)  # (T, h, w, 3)

    def sample(self, rng: np.random.Generator, slots: int) -> dict[str, np.ndarray]:
        index = int(rng.integers(len(self.entries)))
        _, _, pri = self.entries[index]
        frames = self._frames.get(index, lambda: self._decode(index))
        t = int(rng.integers(min(len(frames), pri.num_frames) - 1))
        w, h = self.frame_size(index)
        sx = w / pri.size[0]
        sy = h / pri.size[1]
        kp = pri.kp2d[t:t + 2].astype(np.float32).copy()  # (2, P, 17, 3) source pixels -> decoded pixels
        kp[..., 0] *= sx
        kp[..., 1] *= sy
        kp[..., 2] *= pri.valid[t:t + 2, :, None]
        kp = np.nan_to_num(kp)
        # mask labels are track ids; subject p of kp2d has id track_ids[p]: relabel the mask to p + 1
        lut = np.zeros(256, np.uint8)
        for p, tid in enumerate(pri.track_ids[:255]):
            if 0 < int(tid) < 256:
                lut[int(tid)] = p + 1
        masks = lut[pri.masks[t]]
        if masks.shape != (h, w):
            masks = cv2.resize(masks, (w, h), interpolation=cv2.INTER_NEAREST)
        return make_sample(image1=frames[t], image2=frames[t + 1], masks=masks, kp_t=kp[0], kp_t1=kp[1],
                           flow=None, valid=None, subject_velocity=None, slots=slots)


__all__ = ["FlowBatch", "HELD_OUT_SEED_BASE", "LRU", "PriorsSource", "augment", "augment_none", "clip_pair", "collate",
           "dis_occlusion", "held_out_clip_seed", "make_sample", "render_params", "render_training_clip",
           "stabilise_sample", "train_clip_seed"]
