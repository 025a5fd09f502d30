"""The ``lift`` training task: pretrain a 2D-to-3D lifter (DSTformer or a baseline) on generated and BVH motion.

Data: world-frame 3D motions from ``hmore.synth.motion`` (training identities x actions x headings) and BVH files,
looked at through random virtual cameras, noised and masked as in MotionBERT (``hmore.lift.data``). Evaluation uses
held-out identities and held-out BVH files, with the same noise but no masking, and reports MPJPE / P-MPJPE in mm.
A sample is a pure function of ``(data seed, step, global sample index)``, so resuming and DDP see the same data.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from hmore.errors import InputError
from hmore.lift.data import (
    CameraConfig,
    MotionClip,
    NoiseConfig,
    SampleConfig,
    bvh_clip,
    generated_clips,
    make_sample,
    sample_window,
)
from hmore.losses.pose3d import LiftLossWeights, lift_loss
from hmore.metrics.pose3d import mpjpe, p_mpjpe
from hmore.paths import shared_data_dir
from hmore.registry import create_model
from hmore.train.engine import TrainConfig

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LiftModelConfig:
    """Attributes: registered model name and keyword overrides for its builder."""

    name: str = "dstformer_cpu"
    kwargs: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class LiftDataConfig:
    """Where the 3D motion comes from and how clips are cut.

    Attributes:
        seed: seed of the motions, cameras, noise and masks.
        train_identities: identities 0 .. n-1 are used for training.
        test_identities: the next n identities are held out for evaluation.
        actions: generator actions (empty: all of ``hmore.synth.motion.ACTIONS``).
        headings: headings per (identity, action).
        motion_frames: frames per generated motion (>= clip_len).
        bvh_train: BVH files (relative to the shared data folder, or absolute) used for training.
        bvh_test: BVH files held out for evaluation.
        bvh_weight: fraction of training clips drawn from the BVH files (when there are any).
        clip_len: longest training clip (frames).
        min_len: shortest training clip; each step draws its length in [min_len, clip_len].
        fps: frame rate of every motion (BVH files are resampled).
        eval_clips: held-out clips per evaluation set.
        flip_prob: probability of a mirrored training sample.
        input_from_coco: build the 2D input from the COCO-17 view of the skeleton converted to H36M-17 (what real
            detections give), while the target stays the true H36M-17 skeleton.
    """

    seed: int = 0
    train_identities: int = 16
    test_identities: int = 4
    actions: tuple[str, ...] = ()
    headings: int = 2
    motion_frames: int = 150
    bvh_train: tuple[str, ...] = ("mocap/cmu_131_01_walk.bvh",)
    bvh_test: tuple[str, ...] = ("mocap/cmu_131_02_walk.bvh",)
    bvh_weight: float = 0.15
    clip_len: int = 81
    min_len: int = 27
    fps: float = 30.0
    eval_clips: int = 32
    flip_prob: float = 0.5
    input_from_coco: bool = True
    camera: CameraConfig = field(default_factory=CameraConfig)
    noise: NoiseConfig = field(default_factory=NoiseConfig)


@dataclass(frozen=True)
class LiftRunConfig:
    model: LiftModelConfig = field(default_factory=LiftModelConfig)
    data: LiftDataConfig = field(default_factory=LiftDataConfig)
    loss: LiftLossWeights = field(default_factory=LiftLossWeights)
    train: TrainConfig = field(default_factory=TrainConfig)


def _bvh_path(p: str):
    from pathlib import Path

    path = Path(p)
    return path if path.is_absolute() else shared_data_dir() / path


def _bvh_clips(paths: tuple[str, ...], fps: float) -> list[MotionClip]:
    return [bvh_clip(_bvh_path(p), fps=fps) for p in paths]


def _check_bvh_files(data: LiftDataConfig) -> None:
    """:class:`InputError` naming the BVH files of the config that do not exist (where they were looked for)."""
    for key in ("bvh_train", "bvh_test"):
        missing = [str(_bvh_path(p)) for p in getattr(data, key) if not _bvh_path(p).is_file()]
        if missing:
            raise InputError(f"data.{key}: BVH file(s) not found: {', '.join(missing)} (relative paths are under "
                             f"the shared data folder {shared_data_dir()}; set data.{key}=[] to train without)")


class LiftLossMixin:
    """``model_config`` and ``loss`` of the lifting tasks (``config.model`` a :class:`LiftModelConfig`, ``config.loss``
    a :class:`~hmore.losses.pose3d.LiftLossWeights`)."""

    config: Any

    def model_config(self) -> dict:
        return {"name": self.config.model.name, "kwargs": dict(self.config.model.kwargs)}

    def loss(self, model: nn.Module, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
        pred = model(batch["x"])  # (B, F, 17, 3)
        terms = lift_loss(pred.float(), batch["y"], weights=self.config.loss)
        return terms.total, {"mpjpe_mm": 1000 * terms.mpjpe.item(), "n_mpjpe_mm": 1000 * terms.n_mpjpe.item(),
                             "vel_mm": 1000 * terms.velocity.item()}


class LiftTask(LiftLossMixin):
    """2D-to-3D lifting with MotionBERT's loss (MPJPE + 0.5 N-MPJPE + 20 velocity error).

    Args:
        config: the run config.
        clips: optional (train, held-out) motion lists replacing the generated/BVH data (for tests).
    """

    name = "lift"
    config_class = LiftRunConfig

    def __init__(self, *, config: LiftRunConfig,
                 clips: tuple[list[MotionClip], dict[str, list[MotionClip]]] | None = None) -> None:
        d = config.data
        if not 1 <= d.min_len <= d.clip_len:
            raise InputError(f"data.min_len must be within 1..clip_len={d.clip_len}, got {d.min_len}")
        if clips is None:
            _check_bvh_files(d)
        self.config = config
        self._clips = clips
        self._sample_cfg = SampleConfig(camera=d.camera, noise=d.noise, flip_prob=d.flip_prob,
                                        input_from_coco=d.input_from_coco)

    # ---- data ---------------------------------------------------------------------------------------------------
    def _load(self) -> tuple[list[MotionClip], dict[str, list[MotionClip]]]:
        if self._clips is None:
            d = self.config.data
            acts = list(d.actions) or None
            gen_train = generated_clips(identities=range(d.train_identities), actions=acts,
                                        num_frames=d.motion_frames, headings=d.headings, seed=d.seed, fps=d.fps)
            gen_test = generated_clips(identities=range(d.train_identities, d.train_identities + d.test_identities),
                                       actions=acts, num_frames=d.motion_frames, headings=1, seed=d.seed + 1,
                                       fps=d.fps)
            bvh_train = _bvh_clips(d.bvh_train, d.fps)
            bvh_test = _bvh_clips(d.bvh_test, d.fps)
            held = {"gen": gen_test}
            if bvh_test:
                held["bvh"] = bvh_test
            self._clips = (gen_train + bvh_train, held)
            log.info("lift data: %d training motions (%d BVH), held out: %s", len(gen_train) + len(bvh_train),
                     len(bvh_train), {k: len(v) for k, v in held.items()})
        return self._clips

    def _weights(self, train: list[MotionClip]) -> np.ndarray:
        is_bvh = np.array([c.name.startswith("bvh:") for c in train])
        w = np.ones(len(train))
        if is_bvh.any() and (~is_bvh).any():
            w[is_bvh] = self.config.data.bvh_weight / is_bvh.sum()
            w[~is_bvh] = (1 - self.config.data.bvh_weight) / (~is_bvh).sum()
        return w / w.sum()

    def clip_length(self, step: int) -> int:
        """The clip length of a step (the same on every rank)."""
        d = self.config.data
        return int(np.random.default_rng([d.seed, 11, step]).integers(d.min_len, d.clip_len + 1))

    def sample(self, clip: MotionClip, length: int, rng: np.random.Generator, cfg: SampleConfig | None = None):
        """A random window of ``clip`` as a :class:`~hmore.lift.data.LiftSample`."""
        length = min(length, clip.joints.shape[0])
        return make_sample(clip.joints[sample_window(clip.joints.shape[0], length, rng)], rng,
                           cfg or self._sample_cfg)

    def batch(self, step: int, *, rank: int, world_size: int, batch_size: int) -> dict[str, torch.Tensor]:
        train, _ = self._load()
        length = min([self.clip_length(step)] + [c.joints.shape[0] for c in train])
        p = self._weights(train)
        xs, ys = [], []
        for g in range(rank * batch_size, (rank + 1) * batch_size):  # this rank's slice of the global batch
            rng = np.random.default_rng([self.config.data.seed, 12, step, g])
            s = self.sample(train[int(rng.choice(len(train), p=p))], length, rng)
            xs.append(s.x)
            ys.append(s.y)
        return {"x": torch.from_numpy(np.stack(xs)), "y": torch.from_numpy(np.stack(ys))}  # (B, F, 17, 3) each

    def eval_set(self) -> dict[str, dict[str, np.ndarray]]:
        """The fixed held-out clips, by set name: ``{"gen": {"x": (N, F, 17, 3), "y": ...}, "bvh": ...}``."""
        _, held = self._load()
        d = self.config.data
        cfg = SampleConfig(camera=d.camera, flip_prob=0.0, input_from_coco=d.input_from_coco,
                           noise=NoiseConfig(**{**vars(d.noise), "mask_joint": 0.0, "mask_frame": 0.0}))
        out = {}
        for name, clips in held.items():
            if not clips:
                continue
            length = min([d.clip_len] + [c.joints.shape[0] for c in clips])
            xs, ys = [], []
            for i in range(d.eval_clips):
                rng = np.random.default_rng([d.seed, 13, i, len(name)])
                s = self.sample(clips[i % len(clips)], length, rng, cfg)
                xs.append(s.x)
                ys.append(s.y)
            out[name] = {"x": np.stack(xs), "y": np.stack(ys)}
        return out

    # ---- model, loss, evaluation --------------------------------------------------------------------------------
    def build_model(self) -> nn.Module:
        from hmore.lift.infer import check_clip_fits, check_frame_stride

        model = create_model(self.config.model.name, **self.config.model.kwargs)
        check_clip_fits(model, self.config.data.clip_len, name=self.config.model.name)
        check_frame_stride(model, 1, name=self.config.model.name)  # its windows take every frame
        return model

    @torch.no_grad()
    def evaluate(self, model: nn.Module) -> dict[str, float]:
        dev = next(model.parameters()).device
        out: dict[str, float] = {}
        for name, s in self.eval_set().items():
            pred = torch.cat([model(torch.from_numpy(s["x"][i : i + 16]).to(dev)).float().cpu()
                              for i in range(0, len(s["x"]), 16)])
            y = torch.from_numpy(s["y"])
            out[f"{name}_mpjpe_mm"] = 1000 * float(mpjpe(pred, y))
            out[f"{name}_p_mpjpe_mm"] = 1000 * float(p_mpjpe(pred.double(), y.double()))
        return out

    def images(self, model: nn.Module, batch: dict[str, torch.Tensor]) -> dict[str, np.ndarray]:
        return {}
