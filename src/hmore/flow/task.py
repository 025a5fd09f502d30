"""Training task of the H-MoRe flow models (``hmore train flow``), both stages of docs/hmore.md.

* Stage 1 (``loss.stage: supervised``, ``configs/flow_synth.yaml``): the supervised sequence loss against the
  generator's exact flow plus Psi's loss against the exact projected root displacement, on clips rendered on the fly
  (``data.source: generate``) or read from a folder of ``.npz`` clips (``data.source: folder``).
* Stage 2 (``loss.stage: hmore``, ``configs/flow_hmore.yaml``): the paper's F + 0.1 G on the world flow plus Psi's
  loss against the hip-centre displacement of the keypoints, with the pose and mask priors taken from the generator
  (``data.priors: groundtruth``) or from ``priors.npz`` files of real videos (``data.priors: files``).

The parts: the run config (:mod:`hmore.flow.config`), the deterministic data stream (:mod:`hmore.flow.data`), the
loss of a batch (:mod:`hmore.flow.objective`) and the held-out evaluation (:mod:`hmore.flow.evaluation`). This
module holds the task the engine drives (config checks, model building, batches) and re-exports the names tests and
scripts use.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from hmore.errors import ConfigError, InputError
from hmore.flow.config import FlowDataConfig, FlowLossConfig, FlowModelConfig, FlowRunConfig
from hmore.flow.data import (
    HELD_OUT_SEED_BASE,
    LRU,
    FlowBatch,
    PriorsSource,
    augment,
    augment_none,
    clip_pair,
    collate,
    dis_occlusion,
    held_out_clip_seed,
    make_sample,
    render_params,
    render_training_clip,
    stabilise_sample,
    train_clip_seed,
)
from hmore.flow.evaluation import dis_epe_mask, evaluate_samples, held_out_samples, preview_panels
from hmore.flow.objective import balance_weights, flow_loss

log = logging.getLogger(__name__)


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
        if not all(0.0 <= v <= 1.0 for v in (d.real_fraction, d.shake_prob, d.stabilise)):
            raise ConfigError(f"data.real_fraction, data.shake_prob and data.stabilise must be in [0, 1], got "
                              f"{d.real_fraction}, {d.shake_prob} and {d.stabilise}")
        if d.realism.background_prob > 0 and not d.priors_folder:
            raise ConfigError("data.realism.background_prob > 0 needs data.priors_folder (the photos come from the "
                              "frames of those videos, people painted out)")
        #: the exported weights' licence (``hmore train --export``): real video frames (stage-2 samples or the
        #: realism step's background photos) bring their videos' terms; None: generated data only (MIT).
        uses_real = (loss.stage == "hmore" and d.priors == "files" and d.real_fraction > 0) \
            or d.realism.background_prob > 0
        self.weights_licence = (f"trained on frames of real videos ({d.video_folder or d.priors_folder}): the terms "
                                "of those videos apply to these weights (the clips of hmore's shared data are for "
                                "research use only)" if uses_real else None)
        self.slots = int(d.subjects[1])
        self._clips = LRU(d.clip_cache + 1)
        self._files: list[Path] | None = None
        self._priors: PriorsSource | None = None
        self._photos: Any = None
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
        real = False
        if self.config.loss.stage == "hmore" and d.priors == "files":
            pick = np.random.default_rng([d.seed, 13, g])
            real = d.real_fraction >= 1.0 or pick.random() < d.real_fraction  # no draw for a real-only stream
        if real:
            raw = self._priors_source().sample(pick, self.slots)
        elif d.source == "folder":
            raw = self._folder_sample(g)
        else:
            raw = self._generated_sample(g)
        if not real and self._degrades():
            from hmore.synth.realism import degrade_pair

            raw = dict(raw)
            raw["image1"], raw["image2"] = degrade_pair(raw["image1"], raw["image2"],
                                                        np.random.default_rng([d.seed, 19, g]), d.realism)
        if d.stabilise > 0 and (d.stabilise >= 1 or np.random.default_rng([d.seed, 29, g]).random() < d.stabilise):
            raw = stabilise_sample(raw)
        h, w = raw["masks"].shape
        if h < d.crop[0] or w < d.crop[1]:
            raise InputError(f"sample {g}: its {h}x{w} frames are smaller than data.crop {tuple(d.crop)}")
        out = augment(raw, np.random.default_rng([d.seed, 7, g]), crop=d.crop, flip_prob=d.flip_prob,
                      on_people=d.crop_on_people)
        if self.config.loss.photometric_weight > 0 and not bool(out["has_flow"]):
            out["occluded"] = dis_occlusion(out["image1"], out["image2"])
        return out

    def _degrades(self) -> bool:
        r = self.config.data.realism
        return max(r.noise_prob, r.blur_prob, r.jpeg_prob, r.light_prob) > 0

    def _generated_sample(self, g: int) -> dict[str, np.ndarray]:
        d = self.config.data
        pairs = d.frames_per_clip - 1
        k = d.clip_cache
        # a window of k clips serves k * pairs consecutive samples, each clip one sample in k
        clip_index = (g // (k * pairs)) * k + g % k
        order = np.random.default_rng([d.seed, 3, clip_index]).permutation(pairs)
        t = int(order[(g // k) % pairs])
        clip = self._clips.get(("gen", clip_index), lambda: self._render(clip_index))
        return clip_pair(clip, t, self.slots)

    def _render(self, clip_index: int) -> Any:
        d = self.config.data
        params = render_params(d, np.random.default_rng([d.seed, 5, clip_index]))
        clip = render_training_clip(train_clip_seed(d.seed, clip_index), params, size=d.size,
                                    num_frames=d.frames_per_clip)
        if d.realism.background_prob > 0:
            rng = np.random.default_rng([d.seed, 23, clip_index])
            if rng.random() < d.realism.background_prob:
                from dataclasses import replace

                from hmore.synth.realism import composite_background

                photo = self._photo_bank().crop(rng, d.size)
                clip = replace(clip, frames=composite_background(clip.frames, clip.static_background,
                                                                 clip.camera_flow, photo))
        return clip

    def _photo_bank(self) -> Any:
        if self._photos is None:
            from hmore.synth.realism import PhotoBank

            self._photos = PhotoBank([(video, path) for path, video, _ in self._priors_source().entries])
        return self._photos

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
        return clip_pair(clip, int(rng.integers(clip.num_frames - 1)), self.slots)

    def _priors_source(self) -> PriorsSource:
        if self._priors is None:
            d = self.config.data
            self._priors = PriorsSource(Path(d.priors_folder), Path(d.video_folder) if d.video_folder else None,
                                        cache=d.clip_cache, min_size=d.crop, max_side=d.real_max_side)
        return self._priors

    # -- loss

    def loss(self, model: nn.Module, batch: FlowBatch) -> tuple[torch.Tensor, dict[str, float]]:
        out = model(batch.image1, batch.image2, masks=batch.masks, num_subjects=batch.num_subjects,
                    iters=self.config.model.train_iters)
        return flow_loss(out, batch, self.config.loss, leak_dilation=self.config.data.leak_dilation)

    # -- evaluation

    def _eval_set(self) -> list[dict[str, np.ndarray]]:
        if self._eval is None:
            self._eval = held_out_samples(self.config.data, self.slots)
        return self._eval

    def evaluate(self, model: nn.Module) -> dict[str, float]:
        """EPE inside the masks, background leakage, local-flow EPE and Psi's error on the held-out clips
        (:func:`hmore.flow.evaluation.evaluate_samples`), with ``dis_epe_mask``, OpenCV DIS's EPE on the same pairs.
        """
        evals = self._eval_set()
        if not evals:
            return {}
        metrics = evaluate_samples(model, evals, slots=self.slots, leak_dilation=self.config.data.leak_dilation)
        if self._dis_reference is None:
            self._dis_reference = dis_epe_mask(evals)
        # OpenCV DIS (medium) on the same pairs, the classical reference
        return {"epe_mask": metrics.pop("epe_mask"), "dis_epe_mask": self._dis_reference, **metrics}

    def images(self, model: nn.Module, batch: FlowBatch) -> dict[str, np.ndarray]:
        """``frame | ground truth | predicted world | predicted local`` for the first held-out clip."""
        evals = self._eval_set()
        if not evals:
            return {}
        return {"frame_gt_world_local": preview_panels(model, evals[0], slots=self.slots,
                                                       target=self.config.loss.target)}


__all__ = ["FlowBatch", "FlowDataConfig", "FlowLossConfig", "FlowModelConfig", "FlowRunConfig", "FlowTask",
           "HELD_OUT_SEED_BASE", "augment", "augment_none", "balance_weights", "collate", "held_out_clip_seed",
           "make_sample", "train_clip_seed"]
