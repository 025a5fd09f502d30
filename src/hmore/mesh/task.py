"""The ``mesh`` training task: the Anny mesh head on the DSTformer backbone, trained on generated bodies and
optionally on Human3.6M windows (``data.h36m``, :mod:`hmore.mesh.h36m`: a share of every batch trained through the
decoded body's joints against the true joints, and the subject's fitted phenotype).

Data (:mod:`hmore.mesh.data`): Anny people (training identities with their phenotypes) playing every generator
action and CMU mocap, random cameras, MotionBERT noise and masking; held out: other identities (another seed) and
another CMU take. The backbone starts from the shipped lifter (``dstformer_cpu``) unless told otherwise. Loss
(:mod:`hmore.losses.mesh`) on meshes decoded from predicted and true parameters by the same
:class:`~hmore.mesh.decoder.BodyDecoder` (a fixed vertex subset while training, every vertex when evaluating).
Evaluation: MPVE (per vertex, and weighted by surface area) and MPJPE (root-aligned, mm) of the decoded meshes, with
noisy and clean 2D input; with Human3.6M, the regressed joints' MPJPE on validation trials of the training subjects
(``h36m_val_mpjpe_mm``, COCO-derived input).
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
from hmore.losses.mesh import MeshLossWeights, joint_loss, mesh_loss
from hmore.mesh.data import PosedClip, make_mesh_sample, posed_clips
from hmore.mesh.h36m import H36MWindows, MeshH36MConfig
from hmore.metrics.mesh import mpve
from hmore.metrics.pose3d import mpjpe
from hmore.paths import shared_data_dir
from hmore.registry import create_model
from hmore.train.engine import TrainConfig

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class MeshModelConfig:
    """Attributes: registered model name, keyword overrides, the shipped weights whose tensors start the
    backbone (``""``: none; e.g. ``dstformer_cpu_h36m``, the lifter trained on Human3.6M), and whether the backbone
    stays frozen (only the head trains)."""

    name: str = "dstformer_mesh"
    kwargs: dict[str, Any] = field(default_factory=dict)
    init_backbone: str = "dstformer_cpu"
    freeze_backbone: bool = False


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
        h36m: Human3.6M windows (:class:`hmore.mesh.h36m.MeshH36MConfig`; off by default).
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
    h36m: MeshH36MConfig = field(default_factory=MeshH36MConfig)


@dataclass(frozen=True)
class MeshRunConfig:
    """Attributes: model, data, loss and engine sections; ``init_from``: a checkpoint / exported ``.safetensors`` or
    shipped weights name whose weights start the whole model (a later leg starts from the previous one's)."""

    model: MeshModelConfig = field(default_factory=MeshModelConfig)
    data: MeshDataConfig = field(default_factory=MeshDataConfig)
    loss: MeshLossWeights = field(default_factory=MeshLossWeights)
    train: TrainConfig = field(default_factory=TrainConfig)
    init_from: str = ""


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
        h36m: optional Human3.6M windows replacing those of ``config.data.h36m`` (tests).
    """

    name = "mesh"
    config_class = MeshRunConfig

    def __init__(self, *, config: MeshRunConfig,
                 clips: tuple[list[PosedClip], dict[str, list[PosedClip]]] | None = None,
                 decoder: nn.Module | None = None, h36m: H36MWindows | None = None) -> None:
        d = config.data
        if not 1 <= d.min_len <= d.clip_len:
            raise InputError(f"data.min_len must be within 1..clip_len={d.clip_len}, got {d.min_len}")
        self.config = config
        self._clips = clips
        self._decoder = decoder
        self._mirror: np.ndarray | None = None
        self._cfg = SampleConfig(camera=d.camera, noise=d.noise, flip_prob=d.flip_prob)
        self._h36m = h36m if h36m is not None else H36MWindows(d.h36m, fps=d.fps) if d.h36m.weight > 0 else None
        if self._h36m is not None:
            #: the exported weights' licence (``hmore train --export``): the training data's terms apply.
            self.weights_licence = ("research use only: trained on Human3.6M (academic, non-commercial licence); its "
                                    "terms apply. The Anny body model they decode to is the anny package "
                                    "(Apache-2.0, MakeHuman/MPFB2 assets CC0 1.0), not part of these weights.")

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

    def h36m_count(self, batch_size: int) -> int:
        """Windows of a batch taken from Human3.6M (the rest are generated; at least one is)."""
        if self._h36m is None:
            return 0
        return min(batch_size - 1, int(round(batch_size * self.config.data.h36m.weight)))

    def batch(self, step: int, *, rank: int, world_size: int, batch_size: int) -> dict[str, torch.Tensor]:
        train, _ = self._load()
        length = min([self.clip_length(step)] + [c.num_frames for c in train])
        n_h36m = self.h36m_count(batch_size)
        n_gen = batch_size - n_h36m
        samples = []
        for g in range(rank * n_gen, (rank + 1) * n_gen):
            rng = np.random.default_rng([self.config.data.seed, 22, step, g])
            clip = train[int(rng.integers(len(train)))]
            samples.append(make_mesh_sample(clip, sample_window(clip.num_frames, length, rng), rng, self._cfg,
                                            self.mirror()))
        out = self._stack(samples)
        if n_h36m:  # appended after the generated windows: x (B, F, 17, 3), the rest per Human3.6M window
            h = self._h36m.sample(np.random.default_rng([self.config.data.seed, 24, step, rank]), n_h36m, length)
            out["x"] = torch.cat([out["x"], torch.from_numpy(h["x"])])
            out["h36m_y"] = torch.from_numpy(h["y"])
            out["h36m_phenotype"] = torch.from_numpy(h["phenotype"])
            out["h36m_has_phenotype"] = torch.from_numpy(h["has_phenotype"])
        return out

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
        if self.config.init_from:
            from hmore.train.tasks.lift_h36m import init_model_from

            init_model_from(model, self.config.init_from)
        if m.freeze_backbone:
            model.backbone.requires_grad_(False)
        return model

    def model_config(self) -> dict:
        return {"name": self.config.model.name, "kwargs": dict(self.config.model.kwargs)}

    def loss(self, model: nn.Module, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
        dec = self.decoder()
        pred = model(batch["x"])
        n = len(batch["rot"])  # generated windows first, then Human3.6M ones
        rot, phenotype = pred.rot.float(), pred.phenotype.float()
        out = dec(rot[:n], phenotype[:n], "train")
        with torch.no_grad():
            gt = dec(batch["rot"], batch["phenotype"], "train")
        terms = mesh_loss(vertices=out.vertices, vertices_gt=gt.vertices, joints=out.joints, joints_gt=gt.joints,
                          rot=rot[:n], rot_gt=batch["rot"], phenotype=phenotype[:n], phenotype_gt=batch["phenotype"],
                          weights=self.config.loss)
        logs = {"mpve_mm": 1000 * terms.vertex.item(), "mpjpe_mm": 1000 * terms.joint.item(),
                "rot": terms.rotation.item(), "phenotype_mse": terms.phenotype.item()}
        total = terms.total
        if "h36m_y" in batch:
            joints = dec(rot[n:], phenotype[n:], "joints").joints
            h = joint_loss(joints=joints, joints_gt=batch["h36m_y"], phenotype=phenotype[n:],
                           phenotype_gt=batch["h36m_phenotype"], has_phenotype=batch["h36m_has_phenotype"],
                           weights=self.config.loss)
            total = total + self.config.loss.h36m * h.total
            logs.update(h36m_mpjpe_mm=1000 * h.joint.item(), h36m_phenotype_mse=h.phenotype.item())
        return total, logs

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
        if self._h36m is not None:
            out.update(self._evaluate_h36m(model))
        return out

    def _evaluate_h36m(self, model: nn.Module) -> dict[str, float]:
        """MPJPE (mm) of the regressed joints, and the phenotype's error to the fit, on Human3.6M validation
        windows."""
        d = self.config.data
        v = self._h36m.validation(d.eval_clips, d.clip_len)
        if not v:
            return {}
        dev = next(model.parameters()).device
        j_err, ph_err, n = 0.0, 0.0, 0
        for i in range(0, len(v["x"]), 8):
            pred = model(torch.from_numpy(v["x"][i : i + 8]).to(dev))
            joints = self.decoder()(pred.rot.float().cpu(), pred.phenotype.float().cpu(), "joints").joints
            k = len(joints)
            j_err += k * float(mpjpe(joints, torch.from_numpy(v["y"][i : i + 8])))
            ph = pred.phenotype.float().cpu()
            ph_err += k * float((ph - torch.from_numpy(v["phenotype"][i : i + 8])).abs().mean())
            n += k
        return {"h36m_val_mpjpe_mm": 1000 * j_err / n, "h36m_val_phenotype_mae": ph_err / n}

    def images(self, model: nn.Module, batch: dict[str, torch.Tensor]) -> dict[str, np.ndarray]:
        return {}
