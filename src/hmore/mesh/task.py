"""The ``mesh`` training task: the Anny mesh head on the DSTformer backbone, trained on generated bodies.

Data (:mod:`hmore.mesh.data`): Anny people (training identities with their phenotypes) playing every generator
action and CMU mocap, random cameras, MotionBERT noise and masking; held out: other identities (another seed) and
another CMU take. The backbone starts from the shipped lifter (``dstformer_cpu``) unless told otherwise. Loss
(:mod:`hmore.losses.mesh`) on meshes decoded from predicted and true parameters by the same
:class:`~hmore.mesh.decoder.BodyDecoder` (a fixed vertex subset while training, every vertex when evaluating).
Evaluation: MPVE (per vertex, and weighted by surface area) and MPJPE (root-aligned, mm) of the decoded meshes, with
noisy and clean 2D input.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from hmore.errors import InputError
from hmore.lift.data import CameraConfig, NoiseConfig, SampleConfig, sample_window
from hmore.losses.mesh import MeshLossWeights, mesh_loss
from hmore.mesh.data import PosedClip, make_mesh_sample, posed_clips
from hmore.metrics.mesh import mpve
from hmore.metrics.pose3d import mpjpe
from hmore.paths import shared_data_dir
from hmore.registry import create_model
from hmore.train.engine import TrainConfig

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class MeshModelConfig:
    """Attributes: registered model name, keyword overrides, and the shipped weights whose tensors start the
    backbone (``""``: none)."""

    name: str = "dstformer_mesh"
    kwargs: dict[str, Any] = field(default_factory=dict)
    init_backbone: str = "dstformer_cpu"


@dataclass(frozen=True)
class MeshDataConfig:
    """Clips of posed Anny people.

    Attributes:
        seed: seed of people, motions, cameras, noise and masks (held-out people use ``seed + 1``).
        train_identities, test_identities: people 0 .. n-1 of each seed.
        actions: generator actions (empty: all). headings: headings per (person, action).
        motion_frames: frames per generated motion.
        bvh_train, bvh_test: BVH files (relative to the shared data folder, or absolute), played by every person of
            the set.
        clip_len, min_len: training windows have a length drawn in [min_len, clip_len].
        fps: frame rate. eval_clips: windows per evaluation set. flip_prob: mirrored training samples.
        train_vertices: vertices of the training loss (a fixed, surface-uniform subset).
    """

    seed: int = 0
    train_identities: int = 48
    test_identities: int = 8
    actions: tuple[str, ...] = ()
    headings: int = 1
    motion_frames: int = 120
    bvh_train: tuple[str, ...] = ("mocap/cmu_131_01_walk.bvh",)
    bvh_test: tuple[str, ...] = ("mocap/cmu_131_02_walk.bvh",)
    clip_len: int = 27
    min_len: int = 9
    fps: float = 30.0
    eval_clips: int = 48
    flip_prob: float = 0.5
    train_vertices: int = 1000
    camera: CameraConfig = field(default_factory=CameraConfig)
    noise: NoiseConfig = field(default_factory=NoiseConfig)


@dataclass(frozen=True)
class MeshRunConfig:
    model: MeshModelConfig = field(default_factory=MeshModelConfig)
    data: MeshDataConfig = field(default_factory=MeshDataConfig)
    loss: MeshLossWeights = field(default_factory=MeshLossWeights)
    train: TrainConfig = field(default_factory=TrainConfig)


def _paths(paths: tuple[str, ...]) -> list:
    from pathlib import Path

    out = [Path(p) if Path(p).is_absolute() else shared_data_dir() / p for p in paths]
    missing = [str(p) for p in out if not p.is_file()]
    if missing:
        log.warning("BVH files not found, used without them: %s", missing)
    return [p for p in out if p.is_file()]


class MeshTask:
    """Anny mesh regression from 2D keypoint sequences.

    Args:
        config: the run config.
        clips: optional (train, held-out by set name) clips replacing the generated data (tests).
        decoder: optional decoder (tests); default :func:`hmore.mesh.decoder.anny_decoder`.
    """

    name = "mesh"
    config_class = MeshRunConfig

    def __init__(self, *, config: MeshRunConfig,
                 clips: tuple[list[PosedClip], dict[str, list[PosedClip]]] | None = None,
                 decoder: nn.Module | None = None) -> None:
        d = config.data
        if not 1 <= d.min_len <= d.clip_len:
            raise InputError(f"data.min_len must be within 1..clip_len={d.clip_len}, got {d.min_len}")
        self.config = config
        self._clips = clips
        self._decoder = decoder
        self._mirror: np.ndarray | None = None
        self._cfg = SampleConfig(camera=d.camera, noise=d.noise, flip_prob=d.flip_prob)

    # ---- data ---------------------------------------------------------------------------------------------------
    def _load_held_out(self) -> dict[str, list[PosedClip]]:
        """The held-out clips by set name: other people (``seed + 1``) playing every action, and the test BVHs."""
        d = self.config.data
        held = {"gen": posed_clips(identities=range(d.test_identities), actions=list(d.actions) or None,
                                   num_frames=d.motion_frames, headings=1, seed=d.seed + 1, fps=d.fps)}
        bvh_test = _paths(d.bvh_test)
        if bvh_test:
            held["bvh"] = posed_clips(identities=range(d.test_identities), actions=(), seed=d.seed + 1, fps=d.fps,
                                      bvh=bvh_test)
        return held

    def _load(self) -> tuple[list[PosedClip], dict[str, list[PosedClip]]]:
        if self._clips is None:
            d = self.config.data
            train = posed_clips(identities=range(d.train_identities), actions=list(d.actions) or None,
                                num_frames=d.motion_frames, headings=d.headings, seed=d.seed, fps=d.fps,
                                bvh=_paths(d.bvh_train))
            held = self._load_held_out()
            self._clips = (train, held)
            log.info("mesh data: %d training clips, held out: %s", len(train), {k: len(v) for k, v in held.items()})
        return self._clips

    def decoder(self) -> nn.Module:
        if self._decoder is None:
            from hmore.mesh.decoder import anny_decoder

            self._decoder = anny_decoder(train_vertices=self.config.data.train_vertices)
        return self._decoder

    def mirror(self) -> np.ndarray:
        if self._mirror is None:
            from hmore.synth.anny_body import ANNY_ROLES
            from hmore.synth.retarget import mirror_groups, rig_groups

            self._mirror = mirror_groups(rig_groups(ANNY_ROLES))
        return self._mirror

    def clip_length(self, step: int) -> int:
        d = self.config.data
        return int(np.random.default_rng([d.seed, 21, step]).integers(d.min_len, d.clip_len + 1))

    def _stack(self, samples: list) -> dict[str, torch.Tensor]:
        return {"x": torch.from_numpy(np.stack([s.x for s in samples])),
                "rot": torch.from_numpy(np.stack([s.rot for s in samples])),
                "phenotype": torch.from_numpy(np.stack([s.phenotype for s in samples])),
                "joints": torch.from_numpy(np.stack([s.joints for s in samples]))}

    def batch(self, step: int, *, rank: int, world_size: int, batch_size: int) -> dict[str, torch.Tensor]:
        train, _ = self._load()
        length = min([self.clip_length(step)] + [c.num_frames for c in train])
        samples = []
        for g in range(rank * batch_size, (rank + 1) * batch_size):
            rng = np.random.default_rng([self.config.data.seed, 22, step, g])
            clip = train[int(rng.integers(len(train)))]
            samples.append(make_mesh_sample(clip, sample_window(clip.num_frames, length, rng), rng, self._cfg,
                                            self.mirror()))
        return self._stack(samples)

    def eval_set(self) -> dict[str, dict[str, torch.Tensor]]:
        """Fixed held-out windows: ``gen`` and ``bvh`` with noise (no masking, no flip), ``gen_clean`` without."""
        _, held = self._load()
        d = self.config.data
        noisy = SampleConfig(camera=d.camera, flip_prob=0.0,
                             noise=NoiseConfig(**{**vars(d.noise), "mask_joint": 0.0, "mask_frame": 0.0}))
        clean = SampleConfig(camera=d.camera, flip_prob=0.0,
                             noise=NoiseConfig(**{**vars(d.noise), "mask_joint": 0.0, "mask_frame": 0.0,
                                                  "noise_prob": 0.0}))
        out = {}
        sets = [(name, clips, noisy) for name, clips in held.items()] + [("gen_clean", held.get("gen", []), clean)]
        for name, clips, cfg in sets:
            if not clips:
                continue
            length = min([d.clip_len] + [c.num_frames for c in clips])
            samples = []
            for i in range(d.eval_clips):
                rng = np.random.default_rng([d.seed, 23, i, {"bvh": 1}.get(name, 0)])  # gen_clean: gen's views
                clip = clips[i % len(clips)]
                samples.append(make_mesh_sample(clip, sample_window(clip.num_frames, length, rng), rng, cfg,
                                                self.mirror()))
            out[name] = self._stack(samples)
        return out

    # ---- model, loss, evaluation --------------------------------------------------------------------------------
    def build_model(self) -> nn.Module:
        m = self.config.model
        model = create_model(m.name, **m.kwargs)
        if m.init_backbone:
            from hmore.weights import load_model

            model.backbone.load_state_dict(load_model(m.init_backbone).state_dict())
            log.info("backbone initialised from the shipped weights %s", m.init_backbone)
        return model

    def model_config(self) -> dict:
        return {"name": self.config.model.name, "kwargs": dict(self.config.model.kwargs)}

    def loss(self, model: nn.Module, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
        dec = self.decoder()
        pred = model(batch["x"])
        out = dec(pred.rot.float(), pred.phenotype.float(), "train")
        with torch.no_grad():
            gt = dec(batch["rot"], batch["phenotype"], "train")
        terms = mesh_loss(vertices=out.vertices, vertices_gt=gt.vertices, joints=out.joints, joints_gt=gt.joints,
                          rot=pred.rot.float(), rot_gt=batch["rot"], phenotype=pred.phenotype.float(),
                          phenotype_gt=batch["phenotype"], weights=self.config.loss)
        return terms.total, {"mpve_mm": 1000 * terms.vertex.item(), "mpjpe_mm": 1000 * terms.joint.item(),
                             "rot": terms.rotation.item(), "phenotype_mse": terms.phenotype.item()}

    @torch.no_grad()
    def evaluate(self, model: nn.Module) -> dict[str, float]:
        dec = self.decoder()
        dev = next(model.parameters()).device
        out: dict[str, float] = {}
        for name, s in self.eval_set().items():
            v_err, va_err, j_err, ph_err, n = 0.0, 0.0, 0.0, 0.0, 0
            for i in range(0, len(s["x"]), 4):
                pred = model(s["x"][i : i + 4].to(dev))
                p = dec(pred.rot.float().cpu(), pred.phenotype.float().cpu(), "all")
                t = dec(s["rot"][i : i + 4], s["phenotype"][i : i + 4], "all")
                k = len(s["x"][i : i + 4])
                v_err += k * float(mpve(p.vertices, t.vertices))
                va_err += k * float(mpve(p.vertices, t.vertices, dec.vertex_area))
                j_err += k * float(mpjpe(p.joints, t.joints))
                ph_err += k * float((pred.phenotype.cpu() - s["phenotype"][i : i + 4]).abs().mean())
                n += k
            out[f"{name}_mpve_mm"] = 1000 * v_err / n
            out[f"{name}_mpve_area_mm"] = 1000 * va_err / n  # weighted by each vertex's share of the surface
            out[f"{name}_mpjpe_mm"] = 1000 * j_err / n
            out[f"{name}_phenotype_mae"] = ph_err / n
        return out

    def images(self, model: nn.Module, batch: dict[str, torch.Tensor]) -> dict[str, np.ndarray]:
        return {}
