"""The ``lift_h36m`` training task: 2D-to-3D lifting on Human3.6M's training subjects, optionally with motions seen
from random virtual cameras (the role AMASS plays in MotionBERT).

Each batch mixes three kinds of windows of ``clip_len`` frames, drawn in proportion to their weights:

* ``sh``: Human3.6M training frames with their Stacked-Hourglass detections as input (``hmore.lift.h36m``);
* ``gt``: the same frames with ground-truth 2D (the 3D projected through the real camera);
* ``virtual``: world-frame motions (Human3.6M training subjects' 3D, Bandai-Namco takes outside its fixed held-out
  split, generated motions) looked at by random virtual cameras, their COCO-derived H36M-17 2D noised as in
  MotionBERT (``hmore.lift.data.virtual_batch``): what real detectors give, for ``hmore lift`` on videos.

Every window is masked (each joint with a per-window probability drawn in [0, ``mask_joint_max``], each frame with
``mask_frame``) and mirrored with ``flip_prob``. Everything is precomputed as arrays and gathered by index, so a batch
costs no per-sample Python. A batch is a function of ``(data.seed, step, rank)``.

Validation (model selection) uses training subjects only, never S9/S11: for each subject of ``val_subjects`` and
each action, the trial whose name sorts last, all cameras, held out of training; scored as the protocol does on
every ``val_every``-th window (``hmore.lift.h36m.evaluate``) with SH and with ground-truth input.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from hmore.data.h36m import TRAIN_SUBJECTS
from hmore.errors import ConfigError
from hmore.lift.data import (
    BODIES,
    CameraConfig,
    MotionPool,
    NoiseConfig,
    SampleConfig,
    flip_batch,
    flip_pair,
    mask_batch,
    virtual_batch,
)
from hmore.lift.h36m import LiftArrays, build_arrays, evaluate, gather_windows, split_validation
from hmore.losses.pose3d import LiftLossWeights
from hmore.train.engine import TrainConfig
from hmore.train.tasks.lift import LiftLossMixin, LiftModelConfig

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class H36MLiftDataConfig:
    """Attributes:
        root: the Human3.6M folder (empty: ``<shared data>/h36m``).
        train_subjects: subjects whose frames are trained on (minus the validation trials).
        val_subjects: subjects whose last trial of each action is held out for validation.
        clip_len: frames per training window.
        frame_stride: a window takes every k-th frame (spanning ``(clip_len - 1) * k + 1`` frames); must equal the
            model's ``frame_stride`` (``hmore.models.motion.dstformer``), which inference applies. 1: every frame.
        sh_weight, gt_weight, virtual_weight: shares of the three kinds of windows in a batch.
        virtual_h36m: use the training subjects' 3D (minus validation) in the virtual pool.
        virtual_bandai: use the Bandai-Namco takes (outside ``hmore.data.bandai.is_held_out``) in the virtual pool.
        virtual_generated: generated identities (x every generator action x 2 headings) in the virtual pool (0: none).
        virtual_body: the generated identities' bodies: ``"capsule"`` (the generator's skeleton) or ``"anny"`` (the
            same identities, actions and headings on Anny bodies, phenotype drawn per identity: 3D joints and COCO 2D
            from the body's regressors; :func:`hmore.lift.data.anny_clips`, ~6 s an identity once, then cached).
        virtual_cache: folder of the cached Anny clips (empty: ``$HMORE_CACHE/lift_anny``, ``~/.cache/hmore``).
        fps: frame rate of the virtual pool (Human3.6M's 50: windows then span the same time as the real ones).
        mask_joint_max: each window drops each joint with a probability drawn uniformly in [0, this].
        mask_frame: probability of dropping a whole frame.
        flip_prob: probability of a mirrored window.
        seed: seed of the batches.
        val_every: validation scores every n-th window of the validation sequences.
        val_flip: test-time flip in validation.
        camera, noise: virtual cameras and 2D noise of the virtual windows.
    """

    root: str = ""
    train_subjects: tuple[str, ...] = TRAIN_SUBJECTS
    val_subjects: tuple[str, ...] = ("S8",)
    clip_len: int = 27
    frame_stride: int = 1
    sh_weight: float = 0.5
    gt_weight: float = 0.3
    virtual_weight: float = 0.2
    virtual_h36m: bool = True
    virtual_bandai: bool = True
    virtual_generated: int = 0
    virtual_body: str = "capsule"
    virtual_cache: str = ""
    fps: float = 50.0
    mask_joint_max: float = 0.3
    mask_frame: float = 0.1
    flip_prob: float = 0.5
    seed: int = 0
    val_every: int = 8
    val_flip: bool = False
    camera: CameraConfig = field(default_factory=CameraConfig)
    noise: NoiseConfig = field(default_factory=NoiseConfig)


@dataclass(frozen=True)
class H36MLiftRunConfig:
    """Attributes: model, data, loss and engine sections; ``init_from``: a checkpoint / exported ``.safetensors`` or a
    shipped weights name whose weights start the run (a later leg of a long recipe starts from the previous one)."""

    model: LiftModelConfig = field(default_factory=LiftModelConfig)
    data: H36MLiftDataConfig = field(default_factory=H36MLiftDataConfig)
    loss: LiftLossWeights = field(default_factory=lambda: LiftLossWeights(velocity=1.0))
    train: TrainConfig = field(default_factory=TrainConfig)
    init_from: str = ""


class H36MLiftTask(LiftLossMixin):
    """Lifting on Human3.6M (see the module doc).

    Args:
        config: the run config.
        arrays: optional (train, validation) :class:`~hmore.lift.h36m.LiftArrays` replacing the Human3.6M ones (tests).
        pool: optional virtual-camera motion pool replacing the configured one (tests).
    """

    name = "lift_h36m"
    config_class = H36MLiftRunConfig

    def __init__(self, *, config: H36MLiftRunConfig, arrays: tuple[LiftArrays, LiftArrays] | None = None,
                 pool: MotionPool | None = None) -> None:
        d = config.data
        weights = np.array([d.sh_weight, d.gt_weight, d.virtual_weight], np.float64)
        if (weights < 0).any() or weights.sum() <= 0:
            raise ConfigError(f"data.sh_weight, gt_weight, virtual_weight must be >= 0 and not all 0, got {weights}")
        masks_ok = 0 <= d.mask_joint_max < 1 and 0 <= d.mask_frame < 1
        if min(d.clip_len, d.frame_stride, d.val_every) < 1 or not masks_ok:
            raise ConfigError("data.clip_len, frame_stride and val_every must be >= 1, mask_joint_max and mask_frame "
                              "in [0, 1)")
        if d.virtual_body not in BODIES:
            raise ConfigError(f"data.virtual_body must be one of {BODIES}, got {d.virtual_body!r}")
        self.config = config
        self._weights = weights / weights.sum()
        #: the exported weights' licence (``hmore train --export``): the training data's terms apply.
        uses_h36m = d.sh_weight + d.gt_weight > 0 or (d.virtual_h36m and d.virtual_weight > 0)
        research = [name for name, used in (("Human3.6M (academic, non-commercial licence)", uses_h36m),
                                            ("Bandai-Namco motions (CC BY-NC 4.0)",
                                             d.virtual_bandai and d.virtual_weight > 0)) if used]
        self.weights_licence = (f"research use only: trained on {' and '.join(research)}; the terms of those datasets "
                                "apply" if research else None)  # None: generated data only, the default (MIT)
        self._arrays = arrays
        self._pool = pool
        self._starts: np.ndarray | None = None
        self._pool_starts: np.ndarray | None = None
        self._sample_cfg = SampleConfig(camera=d.camera, noise=d.noise, flip_prob=0.0, input_from_coco=True)

    # ---- data ---------------------------------------------------------------------------------------------------
    def arrays(self) -> tuple[LiftArrays, LiftArrays]:
        """(train, validation) arrays, built on first use (~30 s for the five training subjects)."""
        if self._arrays is None:
            from hmore.data.h36m import load_h36m

            d = self.config.data
            data = load_h36m(d.root or None)
            train, val = split_validation(data.examples(d.train_subjects), d.val_subjects)
            sources = [s for s, w in zip(("sh", "gt"), self._weights[:2]) if w > 0]
            if not sources:  # virtual windows only: no Human3.6M training frames needed
                train, sources = [], ["sh"]
            self._arrays = (build_arrays(data, train, sources=sources, dtype=np.float16),
                            build_arrays(data, val, sources=("sh", "gt")))
            log.info("lift_h36m: %d training frames (%d examples), %d validation frames (%d examples)",
                     self._arrays[0].num_frames, len(train), self._arrays[1].num_frames, len(val))
        return self._arrays

    def pool(self) -> MotionPool:
        """The virtual-camera motion pool, built on first use."""
        if self._pool is None:
            d = self.config.data
            clips = []
            if d.virtual_weight > 0:
                if d.virtual_h36m:
                    from hmore.data.h36m import load_h36m

                    data = load_h36m(d.root or None)
                    train, _ = split_validation(data.examples(d.train_subjects), d.val_subjects)
                    clips += [data.motion_clip(s) for s in sorted({e.sequence for e in train})]
                if d.virtual_bandai:
                    from hmore.data import bandai

                    clips += [bandai.motion_clip(t) for t in bandai.load_index() if not bandai.is_held_out(t)]
                if d.virtual_generated:
                    from hmore.lift.data import generated_clips

                    clips += generated_clips(identities=range(d.virtual_generated), num_frames=150, headings=2,
                                             seed=d.seed, fps=30.0, body=d.virtual_body,
                                             cache=d.virtual_cache or None, progress=True)
            self._pool = MotionPool.from_clips(clips, fps=d.fps)
            log.info("lift_h36m: virtual pool of %d motions, %d frames", len(clips), self._pool.joints.shape[0])
        return self._pool

    def _counts(self, rng: np.random.Generator, batch_size: int) -> np.ndarray:
        counts = rng.multinomial(batch_size, self._weights)
        if self._weights[2] > 0 and len(self.pool().joints) == 0:
            counts[0] += counts[2]
            counts[2] = 0
        return counts

    def batch(self, step: int, *, rank: int, world_size: int, batch_size: int) -> dict[str, torch.Tensor]:
        d = self.config.data
        rng = np.random.default_rng([d.seed, 23, step, rank])
        n_sh, n_gt, n_virt = self._counts(rng, batch_size)
        length, k = d.clip_len, d.frame_stride
        xs, ys = [], []
        for src, n in (("sh", n_sh), ("gt", n_gt)):
            if n:
                train, _ = self.arrays()
                if self._starts is None:
                    self._starts = train.window_starts(length, k)
                s = self._starts[rng.integers(len(self._starts), size=n)]
                xs.append(gather_windows(train.x[src], s, length, step=k).astype(np.float32))
                ys.append(gather_windows(train.y, s, length, step=k).astype(np.float32))
        if n_virt:
            pool = self.pool()
            if self._pool_starts is None:
                self._pool_starts = pool.window_starts(length, k)
            s = self._pool_starts[rng.integers(len(self._pool_starts), size=n_virt)]
            xv, yv = virtual_batch(pool, s, length, rng, self._sample_cfg, step=k)
            xs.append(xv)
            ys.append(yv)
        x, y = np.concatenate(xs), np.concatenate(ys)
        x = mask_batch(x, rng, joint_prob=rng.uniform(0, d.mask_joint_max, len(x)), frame_prob=d.mask_frame)
        x, y = flip_batch(x, y, rng.random(len(x)) < d.flip_prob)
        return {"x": torch.from_numpy(np.ascontiguousarray(x)), "y": torch.from_numpy(np.ascontiguousarray(y))}

    # ---- model, loss, evaluation --------------------------------------------------------------------------------
    def build_model(self) -> nn.Module:
        from hmore.lift.infer import check_clip_fits, check_frame_stride
        from hmore.registry import create_model

        model = create_model(self.config.model.name, **self.config.model.kwargs)
        check_clip_fits(model, self.config.data.clip_len, name=self.config.model.name)
        check_frame_stride(model, self.config.data.frame_stride, name=self.config.model.name)
        if hasattr(model, "set_target_stats") and model.config.target_norm:
            mean, std = self.target_stats()
            model.set_target_stats(torch.from_numpy(mean), torch.from_numpy(std))
        if self.config.init_from:
            init_model_from(model, self.config.init_from)
        return model

    def target_stats(self, every: int = 10) -> tuple[np.ndarray, np.ndarray]:
        """(J, 3) per-joint, per-axis mean and std of the Human3.6M training targets (every n-th frame), mirrored
        copies included (training flips windows, so the statistics are left/right symmetric)."""
        y = self.arrays()[0].y[::every].astype(np.float64)
        if len(y) == 0:
            raise ConfigError("model.kwargs.target_norm needs Human3.6M training frames (sh_weight or gt_weight > 0)")
        y = np.concatenate([y, flip_pair(y, y)[1]])
        return y.mean(axis=0).astype(np.float32), y.std(axis=0).astype(np.float32)

    @torch.no_grad()
    def evaluate(self, model: nn.Module) -> dict[str, float]:
        d = self.config.data
        _, val = self.arrays()
        out: dict[str, float] = {}
        for src in ("sh", "gt"):
            r = evaluate(model, val, source=src, flip=d.val_flip, every=d.val_every)
            out[f"val_{src}_p1"] = r.p1
            out[f"val_{src}_p2"] = r.p2
        out["val_p1"] = 0.5 * (out["val_sh_p1"] + out["val_gt_p1"])
        return out

    def images(self, model: nn.Module, batch: Any) -> dict[str, np.ndarray]:
        return {}


def init_model_from(model: nn.Module, source: str) -> None:
    """Load a checkpoint / exported ``.safetensors`` (a path) or shipped weights (a name) into ``model``."""
    from pathlib import Path

    from hmore.train.checkpoint import load_weights_into, resolve_checkpoint

    if Path(source).exists():
        path = resolve_checkpoint(source)
    else:
        from hmore.weights import default_weights_dir, read_weights_metadata

        read_weights_metadata(source)  # a clear error for an unknown name
        path = default_weights_dir() / f"{source}.safetensors"
    load_weights_into(model, path, strict=True)
    log.info("initialised the model from %s", path)
