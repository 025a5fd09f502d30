"""Fitting the Anny body to 3D joints (issue 18 item 2: Human3.6M joints retargeted onto the rig by fitting).

:func:`fit_joints` solves, for one person, a phenotype shared by all frames and per-frame bone-group rotations
whose regressed H36M-17 joints (:class:`hmore.mesh.decoder.BodyDecoder`) match the given joints, root-relative, by
gradient descent (Adam) on the mean joint distance. The rotations start from the closed-form retargeting
(:func:`hmore.synth.retarget.retarget_h36m` onto the average body) and are pulled gently towards it
(``FitConfig.prior``): joints alone do not fix the twist of a limb about its own axis, the closed form does.

:func:`fit_h36m` runs it on every ``every``-th frame of each Human3.6M subject's 3D sequences and caches one
``<subject>.npz`` per subject (written atomically; existing ones are kept, so an interrupted run resumes):
``sequences`` (S,), ``sequence`` (N,) index into it, ``frame`` (N,) frame at 50 fps, ``rot`` (N, G, 3, 3) world-frame
(hmore axes: y up) group rotations, ``phenotype`` (6,), ``error`` (N, 17) joint distances after fitting, metres.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from hmore.models.motion.mesh import matrix_to_rot6d, rot6d_to_matrix

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FitConfig:
    """Attributes: Adam steps and learning rate; ``prior``: weight of the squared distance (Frobenius) of every
    rotation to its starting value; ``phenotype``: the starting phenotype (Anny's average person)."""

    steps: int = 100
    lr: float = 0.02
    prior: float = 1e-3
    phenotype: tuple[float, ...] = (0.5, 0.67, 0.5, 0.5, 0.5, 0.5)


@dataclass(frozen=True)
class FitResult:
    """rot (N, G, 3, 3) group rotations, phenotype (6,) in [0, 1], error (N, 17) joint distances (metres)."""

    rot: np.ndarray
    phenotype: np.ndarray
    error: np.ndarray


def initial_rotations(joints: np.ndarray) -> np.ndarray:
    """(N, G, 3, 3) group rotations of the closed-form retargeting of world joints (N, 17, 3) (y up) onto Anny's
    average body."""
    from hmore.synth.anny_body import ANNY_ROLES, Phenotype, anny_body, h36m_regressor
    from hmore.synth.retarget import retarget_h36m, rig_groups

    body = anny_body(Phenotype())
    first = [body.bone(g[0]) for g in rig_groups(ANNY_ROLES)]
    pose = retarget_h36m(body, ANNY_ROLES, h36m_regressor(body), np.asarray(joints, np.float64))
    return pose.rot[:, first]


def _logit(p: np.ndarray) -> torch.Tensor:
    p = np.clip(np.asarray(p, np.float64), 1e-3, 1 - 1e-3)
    return torch.tensor(np.log(p / (1 - p)), dtype=torch.float32)


def fit_joints(decoder: torch.nn.Module, joints: np.ndarray, init_rot: np.ndarray,
               config: FitConfig = FitConfig()) -> FitResult:  # noqa: B008 - frozen dataclass
    """Fit one person's phenotype and per-frame rotations to joints.

    Args:
        decoder: a :class:`~hmore.mesh.decoder.BodyDecoder` (G groups).
        joints: (N, 17, 3) H36M-17 joints, metres, in the frame of ``init_rot`` (any root position).
        init_rot: (N, G, 3, 3) starting rotations.
        config: the optimisation.

    Returns:
        The :class:`FitResult`.
    """
    j = np.asarray(joints, np.float64)
    if j.ndim != 3 or j.shape[1:] != (17, 3):
        raise ValueError(f"fit_joints: joints must be (N, 17, 3), got {j.shape}")
    if init_rot.shape != (j.shape[0], decoder.num_groups, 3, 3):
        raise ValueError(f"fit_joints: init_rot must be ({j.shape[0]}, {decoder.num_groups}, 3, 3), "
                         f"got {init_rot.shape}")
    target = torch.tensor(j - j[:, :1], dtype=torch.float32)[None]  # (1, N, 17, 3) root-relative
    r0 = torch.tensor(init_rot, dtype=torch.float32)[None]  # (1, N, G, 3, 3)
    rot6d = matrix_to_rot6d(r0).clone().requires_grad_(True)
    logits = _logit(config.phenotype)[None].clone().requires_grad_(True)  # (1, 6)
    opt = torch.optim.Adam([rot6d, logits], lr=config.lr)
    for _ in range(config.steps):
        opt.zero_grad()
        rot = rot6d_to_matrix(rot6d)
        got = decoder(rot, torch.sigmoid(logits), "joints").joints
        loss = (got - target).norm(dim=-1).mean() + config.prior * (rot - r0).square().sum(dim=(-1, -2)).mean()
        loss.backward()
        opt.step()
    with torch.no_grad():
        rot = rot6d_to_matrix(rot6d)
        phen = torch.sigmoid(logits)
        err = (decoder(rot, phen, "joints").joints - target).norm(dim=-1)[0]
    return FitResult(rot=rot[0].numpy(), phenotype=phen[0].double().numpy(), error=err.numpy())


def fit_h36m(out_dir: str | Path, *, subjects: tuple[str, ...], every: int = 10, root: str | Path | None = None,
             config: FitConfig = FitConfig(), decoder: torch.nn.Module | None = None,  # noqa: B008
             progress: bool = True) -> dict[str, Path]:
    """Fit Anny to every ``every``-th 3D frame of each subject (one phenotype per subject); cached per subject.

    Returns:
        subject -> its ``.npz`` (see the module doc).
    """
    from tqdm.auto import tqdm

    from hmore.data.h36m import load_h36m, world_to_hmore
    from hmore.io.atomic import save_npz_atomic

    if every < 1:
        raise ValueError(f"fit_h36m: every must be >= 1, got {every}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    data = load_h36m(root)
    paths = {}
    for subject in tqdm(subjects, desc="h36m fit", unit="subject", disable=not progress):
        path = out / f"{subject}.npz"
        paths[subject] = path
        if path.is_file():
            continue
        seqs = data.sequences([subject])
        if not seqs:
            raise ValueError(f"fit_h36m: no Human3.6M 3D sequence of subject {subject!r}")
        parts, seq_idx, frames = [], [], []
        for s, name in enumerate(seqs):
            world = world_to_hmore(data.poses_world(name))  # (T, 17, 3) metres, y up
            f = np.arange(0, len(world), every)
            parts.append(world[f])
            seq_idx.append(np.full(len(f), s))
            frames.append(f)
        joints = np.concatenate(parts)
        if decoder is None:
            from hmore.mesh.decoder import anny_decoder

            decoder = anny_decoder()
        res = fit_joints(decoder, joints, initial_rotations(joints), config)
        save_npz_atomic(path, sequences=np.array(seqs), sequence=np.concatenate(seq_idx).astype(np.int32),
                        frame=np.concatenate(frames).astype(np.int32), rot=res.rot.astype(np.float32),
                        phenotype=res.phenotype, error=res.error.astype(np.float32))
        log.info("h36m fit %s: %d frames, mean joint error %.1f mm, phenotype %s", subject, len(joints),
                 1000 * res.error.mean(), np.round(res.phenotype, 3))
    return paths


def load_fit(path: str | Path) -> dict[str, np.ndarray]:
    """The arrays of one subject's cached fit."""
    with np.load(path) as z:
        return {k: z[k] for k in z.files}
