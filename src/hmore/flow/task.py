"""Training task of the H-MoRe flow models (``hmore train flow``), both stages of docs/hmore.md.

* Stage 1 (``loss.stage: supervised``, ``configs/flow_synth.yaml``): the supervised sequence loss against the
  generator's exact flow plus Psi's loss against the exact projected root displacement, on clips rendered on the fly
  (``data.source: generate``) or read from a folder of ``.npz`` clips (``data.source: folder``).
* Stage 2 (``loss.stage: hmore``, ``configs/flow_hmore.yaml``): the paper's F + 0.1 G on the world flow plus Psi's
  loss against the hip-centre displacement of the keypoints, with the pose and mask priors taken from the generator
  (``data.priors: groundtruth``) or from ``priors.npz`` files of real videos (``data.priors: files``).

Data are a pure function of (data seed, step, sample): sample ``g`` of the run (``g = step * global batch + index``)
uses clip ``c(g)`` and pair ``p(g)``, and its crop and flip come from a generator seeded by ``(seed, g)``, so a
resumed run sees exactly the same samples and DDP ranks split the global batch without coordination. Clips rendered
for training use seeds below :data:`HELD_OUT_SEED_BASE`; the evaluation clips (and benchmarks) use seeds above it.

Target of the world flow (``loss.target``, ours): ``human`` (default) is the generator's flow inside the people's
masks and 0 outside them, since H-MoRe's world flow is human-centric; ``full`` is the optical flow everywhere.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import cv2
import numpy as np
import torch
from torch import nn

from hmore.errors import ConfigError, InputError, UsageError
from hmore.train.engine import TrainConfig

log = logging.getLogger(__name__)

HELD_OUT_SEED_BASE = 2**31  # generator seeds >= this are never used for training clips
_TRAIN_SEED_MULT = 1_000_003
_MIN_SUBJECT_PIXELS = 20  # a subject with fewer mask pixels in the crop does not count for Psi's loss


@dataclass(frozen=True)
class FlowModelConfig:
    """Which flow model is trained.

    Attributes:
        name: registered model (``hmore_flow``, ``hmore_flow_cpu``, ``hmore_flow_test``).
        overrides: keyword overrides passed to the model builder (e.g. ``{iters: 4}``); saved with the weights.
        train_iters: refinement iterations during training (None: the model's default).
        zero_flow_head: zero the output layer of the update block's flow head after the model is built (and after
            ``init_from``): every refinement step is then 0, so a model with ``init_residual`` starts exactly at its
            initial (DIS) flow and training moves it from there (ours; the other weights keep their values).
    """

    name: str = "hmore_flow_cpu"
    overrides: dict[str, Any] = field(default_factory=dict)
    train_iters: int | None = None
    zero_flow_head: bool = False


@dataclass(frozen=True)
class FlowDataConfig:
    """Where the pairs come from and how they are augmented.

    Attributes:
        source: ``generate`` (render clips on the fly) or ``folder`` (``.npz`` clips under ``folder``).
        folder: folder of clips for ``source: folder`` (searched recursively).
        seed: seed of the data stream (clips, pairs, crops, flips).
        size: (H, W) render size of generated clips.
        crop: (H, W) random crop of every pair (equal to ``size`` for none).
        frames_per_clip: frames per generated clip; each clip gives ``frames_per_clip - 1`` training pairs.
        clip_cache: clips in use at a time: consecutive samples come from different clips of this window.
        subjects: (min, max) people per generated clip; ``max`` is also the subject slots of every batch.
        camera_motions: camera motions drawn from for generated clips.
        distractors: (min, max) moving background objects per generated clip.
        max_overlap: the screen overlap of several people is drawn from [0, max_overlap].
        shading_prob: probability that a generated clip uses Lambert shading.
        fps: (min, max) frame rate of generated clips, drawn per clip: lower rates give longer flows (ours).
        flip_prob: probability of a horizontal flip (flow x and keypoint x mirrored; labels unchanged).
        priors: stage 2's pose and mask source: ``groundtruth`` (the clips' own kp2d and masks) or ``files``.
        priors_folder: folder searched recursively for ``priors.npz`` (``priors: files``).
        video_folder: where the videos named in the priors files are (default: beside each priors file).
        eval_clips: held-out generated clips for evaluation (seeds >= HELD_OUT_SEED_BASE; 0 = no evaluation).
        eval_size: (H, W) of the evaluation clips.
        leak_dilation: pixels by which the person masks are dilated before measuring background leakage.
        body: body model of generated clips, ``capsule`` or ``anny`` (``hmore.synth.clip.BODIES``).
    """

    source: Literal["generate", "folder"] = "generate"
    folder: str = ""
    seed: int = 0
    size: tuple[int, int] = (208, 272)
    crop: tuple[int, int] = (192, 256)
    frames_per_clip: int = 8
    clip_cache: int = 8
    subjects: tuple[int, int] = (1, 3)
    camera_motions: tuple[str, ...] = ("static", "pan", "track")
    distractors: tuple[int, int] = (0, 3)
    max_overlap: float = 0.5
    shading_prob: float = 0.5
    fps: tuple[float, float] = (10.0, 30.0)
    flip_prob: float = 0.5
    priors: Literal["groundtruth", "files"] = "groundtruth"
    priors_folder: str = ""
    video_folder: str = ""
    eval_clips: int = 8
    eval_size: tuple[int, int] = (192, 256)
    leak_dilation: int = 5
    body: str = "capsule"


@dataclass(frozen=True)
class FlowLossConfig:
    """The loss of a stage.

    Attributes:
        stage: ``supervised`` (stage 1) or ``hmore`` (stage 2: F + alpha G + Psi's hip-centre loss).
        target: world-flow target of stage 1: ``human`` (flow inside the masks, 0 outside; ours) or ``full``.
        gamma: decay of the earlier iterations' weights in the sequence loss (RAFT: 0.8).
        background_weight: weight of background pixels relative to people's pixels in the sequence loss.
        balance: people's pixels and background pixels each make up half of every sample's sequence loss (then
            ``background_weight`` scales the background half; ours). Without it the background, most of the image,
            dominates, and a short run settles on predicting zero flow everywhere.
        max_flow: target flows at least this long are ignored.
        subject_weight: weight of Psi's loss.
        skeleton_weight: weight of the skeleton constraint F (stage 2).
        boundary_weight: weight alpha of the boundary constraint G (stage 2; paper: 0.1).
        supervised_weight: weight of the supervised sequence loss in stage 2 (0 = the paper's unsupervised loss;
            only clips with ground-truth flow count).
        background_l1: weight of an L1 penalty on world flow outside dilated masks (ablation switch, off by default).
    """

    stage: Literal["supervised", "hmore"] = "supervised"
    target: Literal["human", "full"] = "human"
    gamma: float = 0.8
    background_weight: float = 1.0
    balance: bool = False
    max_flow: float = 400.0
    subject_weight: float = 0.1
    skeleton_weight: float = 1.0
    boundary_weight: float = 0.1
    supervised_weight: float = 0.0
    background_l1: float = 0.0


@dataclass(frozen=True)
class FlowRunConfig:
    """The run config of ``hmore train flow``.

    Attributes:
        model: which model and its overrides.
        data: the data stream.
        loss: the loss of the stage.
        train: the engine settings.
        init_from: a checkpoint (``.safetensors``) or run folder whose weights initialise the model (stage 2 starts
            from stage 1); empty for a fresh initialisation. Ignored when the run resumes from its own checkpoint.
    """

    model: FlowModelConfig = field(default_factory=FlowModelConfig)
    data: FlowDataConfig = field(default_factory=FlowDataConfig)
    loss: FlowLossConfig = field(default_factory=FlowLossConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    init_from: str = ""


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
    }


def balance_weights(weight: torch.Tensor, person: torch.Tensor) -> torch.Tensor:
    """Rescale per-pixel loss weights (B, H, W) so that, in every sample, people's pixels (``person`` 1) and the
    background's each sum to half the pixel count (a group with no weight stays 0)."""
    n = float(person.shape[1] * person.shape[2])
    people = (weight * person).sum(dim=(1, 2), keepdim=True).clamp_min(1e-6)  # (B, 1, 1)
    rest = (weight * (1.0 - person)).sum(dim=(1, 2), keepdim=True).clamp_min(1e-6)
    return weight * (person * (0.5 * n / people) + (1.0 - person) * (0.5 * n / rest))


def augment(sample: dict[str, np.ndarray], rng: np.random.Generator, *, crop: tuple[int, int],
            flip_prob: float) -> dict[str, np.ndarray]:
    """Random crop to ``crop`` (H, W) (clamped to the image) and horizontal flip with probability ``flip_prob``.

    The flip mirrors every image-like array, negates the x component of the flow and of the subject velocities and
    maps keypoint x to ``W - 1 - x`` (pixel centres sit at integer x); it swaps nothing else (mask labels and joint
    names stay). Also sets ``subject_weight`` from the subjects' mask pixels left in the crop.
    """
    h, w = sample["masks"].shape
    ch, cw = min(crop[0], h), min(crop[1], w)
    y0 = int(rng.integers(0, h - ch + 1))
    x0 = int(rng.integers(0, w - cw + 1))
    flip = bool(rng.random() < flip_prob)
    out = dict(sample)
    for k in ("image1", "image2", "flow", "valid", "masks"):
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
    )


class _LRU:
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
    return {
        "subjects": subjects,
        "camera_motion": str(data.camera_motions[int(rng.integers(len(data.camera_motions)))]),
        "distractors": int(rng.integers(data.distractors[0], data.distractors[1] + 1)),
        "overlap": float(rng.uniform(0.0, data.max_overlap)) if subjects > 1 else 0.0,
        "shading": bool(rng.random() < data.shading_prob),
        "fps": float(rng.uniform(data.fps[0], data.fps[1])),
        "body": data.body,
    }


def render_training_clip(seed: int, params: dict[str, Any], *, size: tuple[int, int], num_frames: int) -> Any:
    """``render_clip`` with ``params``; retries with fewer people when they do not fit in the image."""
    from hmore.synth.clip import render_clip

    params = dict(params)
    while True:
        try:
            return render_clip(size=size, num_frames=num_frames, seed=seed, **params)
        except UsageError:
            if params["subjects"] <= 1:
                raise
            params["subjects"] -= 1
            params["overlap"] = params["overlap"] if params["subjects"] > 1 else 0.0


# ---- the task ----------------------------------------------------------------------------------------------------


class FlowTask:
    """Trains ``hmore_flow*`` models (see the module docstring)."""

    name = "flow"
    config_class = FlowRunConfig

    def __init__(self, *, config: FlowRunConfig) -> None:
        self.config = config
        d, loss = config.data, config.loss
        if not 0 < d.fps[0] <= d.fps[1]:
            raise ConfigError(f"data.fps must be (min, max) with 0 < min <= max, got {d.fps}")
        if len(d.subjects) != 2 or not 1 <= d.subjects[0] <= d.subjects[1]:
            raise ConfigError(f"data.subjects must be (min, max) with 1 <= min <= max, got {d.subjects}")
        if d.frames_per_clip < 2 or d.clip_cache < 1 or d.eval_clips < 0:
            raise ConfigError("data.frames_per_clip must be >= 2, data.clip_cache >= 1, data.eval_clips >= 0")
        if min(d.size) < 16 or min(d.crop) < 16 or min(d.eval_size) < 16:
            raise ConfigError(f"data.size, crop and eval_size must be at least 16 px, got {d.size}, {d.crop}, "
                              f"{d.eval_size}")
        if d.source == "generate" and (d.crop[0] > d.size[0] or d.crop[1] > d.size[1]):
            raise ConfigError(f"data.crop {d.crop} is larger than the render size data.size {d.size}")
        if d.source == "folder" and not d.folder:
            raise ConfigError("data.source: folder needs data.folder")
        if loss.stage == "hmore" and d.priors == "files" and not d.priors_folder:
            raise ConfigError("data.priors: files needs data.priors_folder")
        if loss.stage == "supervised" and d.priors == "files":
            raise ConfigError("data.priors: files has no ground-truth flow; use it with loss.stage: hmore")
        self.slots = int(d.subjects[1])
        self._clips = _LRU(d.clip_cache + 1)
        self._files: list[Path] | None = None
        self._priors: _PriorsSource | None = None
        self._eval: list[dict[str, np.ndarray]] | None = None
        self._dis_reference: float | None = None

    # -- model

    def build_model(self) -> nn.Module:
        from hmore.registry import create_model

        model = create_model(self.config.model.name, **self.config.model.overrides)
        max_subjects = getattr(getattr(model, "config", None), "max_subjects", self.slots)
        if max_subjects < self.slots:
            raise ConfigError(f"data.subjects max {self.slots} exceeds the model's max_subjects {max_subjects}")
        if self.config.init_from:
            from hmore.train.checkpoint import load_weights_into, resolve_checkpoint

            path = resolve_checkpoint(self.config.init_from)
            load_weights_into(model, path, strict=True)
            log.info("initialised %s from %s", self.config.model.name, path)
        if self.config.model.zero_flow_head:
            head = getattr(getattr(getattr(model, "update_block", None), "head", None), "conv2", None)
            if not isinstance(head, nn.Conv2d):
                raise ConfigError(f"model.zero_flow_head: {self.config.model.name} has no update_block.head.conv2")
            with torch.no_grad():
                head.weight.zero_()
                if head.bias is not None:
                    head.bias.zero_()
        return model

    def model_config(self) -> dict:
        return {"name": self.config.model.name, "kwargs": dict(self.config.model.overrides)}

    # -- data

    def batch(self, step: int, *, rank: int, world_size: int, batch_size: int) -> FlowBatch:
        first = step * batch_size * world_size + rank * batch_size  # global index of this rank's first sample
        return collate([self.sample(first + i) for i in range(batch_size)])

    def sample(self, g: int) -> dict[str, np.ndarray]:
        """Augmented sample number ``g`` of the run's data stream (a pure function of the data seed and ``g``)."""
        d = self.config.data
        if self.config.loss.stage == "hmore" and d.priors == "files":
            raw = self._priors_source().sample(np.random.default_rng([d.seed, 13, g]), self.slots)
        elif d.source == "folder":
            raw = self._folder_sample(g)
        else:
            raw = self._generated_sample(g)
        h, w = raw["masks"].shape
        if h < d.crop[0] or w < d.crop[1]:
            raise InputError(f"sample {g}: its {h}x{w} frames are smaller than data.crop {tuple(d.crop)}")
        return augment(raw, np.random.default_rng([d.seed, 7, g]), crop=d.crop, flip_prob=d.flip_prob)

    def _generated_sample(self, g: int) -> dict[str, np.ndarray]:
        d = self.config.data
        pairs = d.frames_per_clip - 1
        k = d.clip_cache
        # a window of k clips serves k * pairs consecutive samples, each clip one sample in k
        clip_index = (g // (k * pairs)) * k + g % k
        order = np.random.default_rng([d.seed, 3, clip_index]).permutation(pairs)
        t = int(order[(g // k) % pairs])
        clip = self._clips.get(("gen", clip_index), lambda: self._render(clip_index))
        return _clip_pair(clip, t, self.slots)

    def _render(self, clip_index: int) -> Any:
        d = self.config.data
        params = render_params(d, np.random.default_rng([d.seed, 5, clip_index]))
        return render_training_clip(train_clip_seed(d.seed, clip_index), params, size=d.size,
                                    num_frames=d.frames_per_clip)

    def _folder_sample(self, g: int) -> dict[str, np.ndarray]:
        from hmore.synth.clip import load_clip

        if self._files is None:
            root = Path(self.config.data.folder)
            if not root.is_dir():
                raise InputError(f"clip folder not found: {root}")
            self._files = sorted(p for p in root.rglob("*.npz") if p.name != "priors.npz")
            if not self._files:
                raise InputError(f"no .npz clips in {root}")
        rng = np.random.default_rng([self.config.data.seed, 11, g])
        path = self._files[int(rng.integers(len(self._files)))]
        clip = self._clips.get(("file", path), lambda: load_clip(path))
        return _clip_pair(clip, int(rng.integers(clip.num_frames - 1)), self.slots)

    def _priors_source(self) -> _PriorsSource:
        if self._priors is None:
            d = self.config.data
            self._priors = _PriorsSource(Path(d.priors_folder), Path(d.video_folder) if d.video_folder else None,
                                         cache=d.clip_cache)
        return self._priors

    # -- loss

    def loss(self, model: nn.Module, batch: FlowBatch) -> tuple[torch.Tensor, dict[str, float]]:
        from hmore.losses.flow_sequence import endpoint_error, sequence_loss
        from hmore.losses.subject_velocity import hip_centre_displacement, subject_velocity_loss

        c = self.config.loss
        out = model(batch.image1, batch.image2, masks=batch.masks, num_subjects=batch.num_subjects,
                    iters=self.config.model.train_iters)
        person = batch.masks > 0  # (B, H, W)
        logs: dict[str, float] = {}
        total = out.world.new_zeros(())
        if c.stage == "supervised" or c.supervised_weight > 0:
            target, weight = self._flow_target(batch)
            seq = sequence_loss(out.iterations, target, weight, gamma=c.gamma, max_flow=c.max_flow)
            total = total + (1.0 if c.stage == "supervised" else c.supervised_weight) * seq
            logs["sequence"] = float(seq.detach())
            with torch.no_grad():
                counted = person & batch.valid & batch.has_flow[:, None, None]  # (B, H, W)
                logs["epe_mask"] = float(endpoint_error(out.world.detach(), target, counted))
        if c.stage == "supervised":
            sv_target, sv_weight = batch.subject_velocity, batch.subject_weight
        else:
            from hmore.losses.boundary_constraint import boundary_constraint
            from hmore.losses.skeleton_constraint import skeleton_constraint

            f = skeleton_constraint(out.world, batch.kp_t, batch.kp_t1, batch.masks)
            gb = boundary_constraint(out.world, batch.masks)
            total = total + c.skeleton_weight * f + c.boundary_weight * gb
            logs.update(skeleton=float(f.detach()), boundary=float(gb.detach()))
            sv_target, hip_w = hip_centre_displacement(batch.kp_t, batch.kp_t1)
            sv_weight = hip_w * batch.subject_weight
        psi = subject_velocity_loss(out.subject_velocity, sv_target, sv_weight)
        total = total + c.subject_weight * psi
        logs["subject"] = float(psi.detach())
        if c.background_l1 > 0:
            outside = (~dilate_masks(person, self.config.data.leak_dilation)).to(out.world.dtype)  # (B, H, W)
            bg = (out.world.abs().sum(1) * outside).sum() / outside.sum().clamp_min(1.0)
            total = total + c.background_l1 * bg
            logs["background_l1"] = float(bg.detach())
        return total, logs

    def _flow_target(self, batch: FlowBatch) -> tuple[torch.Tensor, torch.Tensor]:
        """Target flow (B, 2, H, W) and per-pixel weights (B, H, W) of the sequence loss."""
        c = self.config.loss
        person = (batch.masks > 0).to(batch.flow.dtype)  # (B, H, W)
        has = batch.has_flow.to(batch.flow.dtype)[:, None, None]  # (B, 1, 1)
        valid = batch.valid.to(batch.flow.dtype)
        if c.target == "human":
            target = batch.flow * person[:, None]
            weight = person * valid + (1.0 - person) * c.background_weight
        else:
            target = batch.flow
            weight = valid * (person + (1.0 - person) * c.background_weight)
        if c.balance:
            weight = balance_weights(weight, person)
        return target, weight * has

    # -- evaluation

    def _eval_set(self) -> list[dict[str, np.ndarray]]:
        if self._eval is None:
            d = self.config.data
            samples = []
            for i in range(d.eval_clips):
                params = render_params(d, np.random.default_rng([d.seed, 17, i]))
                clip = render_training_clip(held_out_clip_seed(d.seed, i), params, size=d.eval_size, num_frames=2)
                s = _clip_pair(clip, 0, self.slots)
                s["local"] = clip.local_flow()[0]
                samples.append(s)
            self._eval = samples
        return self._eval

    @torch.no_grad()
    def _predict(self, model: nn.Module, samples: list[dict[str, np.ndarray]]) -> Any:
        s = augment_none(samples)
        dev = next(model.parameters()).device
        batch = collate(s)
        return model(batch.image1.to(dev), batch.image2.to(dev), masks=batch.masks.to(dev),
                     num_subjects=self.slots), batch

    def evaluate(self, model: nn.Module) -> dict[str, float]:
        """EPE inside the masks, background leakage, local-flow EPE and Psi's error on the held-out clips.

        ``zero_flow_epe_mask`` (the mean ground-truth flow length inside the masks) is the EPE of predicting no
        motion and ``dis_epe_mask`` that of OpenCV's DIS flow: the scales against which ``epe_mask`` reads.
        """
        evals = self._eval_set()
        if not evals:
            return {}
        sums = dict(epe=0.0, n_in=0.0, leak=0.0, n_out=0.0, local=0.0, gt=0.0, sv=0.0, n_sv=0.0)
        for i in range(0, len(evals), 4):
            chunk = evals[i:i + 4]
            out, batch = self._predict(model, chunk)
            world = out.world.cpu().numpy().transpose(0, 2, 3, 1)  # (B, H, W, 2)
            local = out.local.cpu().numpy().transpose(0, 2, 3, 1)
            vel = out.subject_velocity.cpu().numpy()  # (B, P, 2)
            for j, s in enumerate(chunk):
                person = s["masks"] > 0
                inside = person & s["valid"]
                sums["epe"] += float(np.linalg.norm(world[j] - s["flow"], axis=-1)[inside].sum())
                sums["local"] += float(np.linalg.norm(local[j] - s["local"], axis=-1)[inside].sum())
                sums["gt"] += float(np.linalg.norm(s["flow"], axis=-1)[inside].sum())
                sums["n_in"] += float(inside.sum())
                outside = ~dilate_masks_np(person, self.config.data.leak_dilation)
                sums["leak"] += float(np.linalg.norm(world[j], axis=-1)[outside].sum())
                sums["n_out"] += float(outside.sum())
                w = batch.subject_weight[j].numpy() > 0
                sums["sv"] += float(np.linalg.norm(vel[j] - s["subject_velocity"], axis=-1)[w].sum())
                sums["n_sv"] += float(w.sum())
        if self._dis_reference is None:
            self._dis_reference = _dis_epe_mask(evals)
        return {
            "epe_mask": sums["epe"] / max(sums["n_in"], 1.0),
            "dis_epe_mask": self._dis_reference,  # OpenCV DIS (medium) on the same pairs, the classical reference
            "leakage": sums["leak"] / max(sums["n_out"], 1.0),
            "local_epe_mask": sums["local"] / max(sums["n_in"], 1.0),
            "zero_flow_epe_mask": sums["gt"] / max(sums["n_in"], 1.0),  # the error of predicting no motion
            "subject_velocity_error": sums["sv"] / max(sums["n_sv"], 1.0),
        }

    def images(self, model: nn.Module, batch: FlowBatch) -> dict[str, np.ndarray]:
        """``frame | ground truth | predicted world | predicted local`` for the first held-out clip."""
        from hmore.report.flowviz import flow_to_color, robust_max_magnitude

        evals = self._eval_set()
        if not evals:
            return {}
        s = evals[0]
        out, _ = self._predict(model, [s])
        world = out.world[0].cpu().numpy().transpose(1, 2, 0)  # (H, W, 2)
        local = out.local[0].cpu().numpy().transpose(1, 2, 0)
        gt = s["flow"] * (s["masks"] > 0)[..., None] if self.config.loss.target == "human" else s["flow"]
        scale = max(robust_max_magnitude(gt), 1.0)
        panels = [s["image1"], flow_to_color(gt, max_mag=scale), flow_to_color(world, max_mag=scale),
                  flow_to_color(local, max_mag=scale)]
        return {"frame_gt_world_local": np.concatenate(panels, axis=1)}


def _dis_epe_mask(samples: list[dict[str, np.ndarray]]) -> float:
    """EPE of OpenCV DIS (medium) inside the valid person pixels of ``samples``, pooled over pixels."""
    from hmore.models.flow.init import dis_flow

    err, n = 0.0, 0.0
    for s in samples:
        img1 = torch.from_numpy(np.ascontiguousarray(s["image1"])).permute(2, 0, 1)[None].float()
        img2 = torch.from_numpy(np.ascontiguousarray(s["image2"])).permute(2, 0, 1)[None].float()
        flow = dis_flow(img1, img2)[0].numpy().transpose(1, 2, 0)  # (H, W, 2)
        inside = (s["masks"] > 0) & s["valid"]
        err += float(np.linalg.norm(flow - s["flow"], axis=-1)[inside].sum())
        n += float(inside.sum())
    return err / max(n, 1.0)


def augment_none(samples: list[dict[str, np.ndarray]]) -> list[dict[str, np.ndarray]]:
    """Samples as :func:`augment` would leave them without crop or flip (adds ``subject_weight``)."""
    out = []
    for s in samples:
        h, w = s["masks"].shape
        out.append(augment(s, np.random.default_rng(0), crop=(h, w), flip_prob=0.0))
    return out


def _clip_pair(clip: Any, t: int, slots: int) -> dict[str, np.ndarray]:
    """Pair (t, t+1) of a generated or loaded clip as a sample."""
    valid = None if clip.flow_valid is None else clip.flow_valid[t]
    return make_sample(image1=clip.frames[t], image2=clip.frames[t + 1], masks=clip.masks[t], kp_t=clip.kp2d[t],
                       kp_t1=clip.kp2d[t + 1], flow=clip.flow[t], valid=valid,
                       subject_velocity=clip.subject_velocity[t], slots=slots)


def dilate_masks_np(person: np.ndarray, radius: int) -> np.ndarray:
    """(H, W) bool mask dilated by a disc of ``radius`` pixels."""
    if radius <= 0:
        return person.astype(bool)
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
    return cv2.dilate(person.astype(np.uint8), kernel) > 0


def dilate_masks(person: torch.Tensor, radius: int) -> torch.Tensor:
    """(B, H, W) bool masks dilated by a square of ``radius`` pixels (max pooling)."""
    if radius <= 0:
        return person
    x = person[:, None].to(torch.float32)
    return torch.nn.functional.max_pool2d(x, 2 * radius + 1, stride=1, padding=radius)[:, 0] > 0


class _PriorsSource:
    """Pairs of real-video frames with pose and mask priors from ``priors.npz`` files (``hmore priors``).

    Each ``priors.npz`` names its video (``source``); the video is looked up in ``video_folder`` or beside the
    priors file. Frames are decoded at the priors' mask size and the keypoints scaled to it.
    """

    def __init__(self, folder: Path, video_folder: Path | None, *, cache: int) -> None:
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
        self._frames = _LRU(cache)

    def _decode(self, index: int) -> np.ndarray:
        from hmore.io.video import iter_frames

        _, video, pri = self.entries[index]
        w, h = pri.mask_size
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
        sx = pri.mask_size[0] / pri.size[0]
        sy = pri.mask_size[1] / pri.size[1]
        kp = pri.kp2d[t:t + 2].astype(np.float32).copy()  # (2, P, 17, 3) source pixels -> mask pixels
        kp[..., 0] *= sx
        kp[..., 1] *= sy
        kp[..., 2] *= pri.valid[t:t + 2, :, None]
        kp = np.nan_to_num(kp)
        # mask labels are track ids; subject p of kp2d has id track_ids[p]: relabel the mask to p + 1
        lut = np.zeros(256, np.uint8)
        for p, tid in enumerate(pri.track_ids[:255]):
            if 0 < int(tid) < 256:
                lut[int(tid)] = p + 1
        return make_sample(image1=frames[t], image2=frames[t + 1], masks=lut[pri.masks[t]], kp_t=kp[0], kp_t1=kp[1],
                           flow=None, valid=None, subject_velocity=None, slots=slots)


__all__ = ["FlowBatch", "FlowDataConfig", "FlowLossConfig", "FlowModelConfig", "FlowRunConfig", "FlowTask",
           "HELD_OUT_SEED_BASE", "augment", "collate", "held_out_clip_seed", "make_sample", "train_clip_seed"]
