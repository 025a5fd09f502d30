"""Training data of the mesh head: generated Anny people playing generated motions and mocap, seen through random
virtual cameras with MotionBERT's 2D noise and masking (as :mod:`hmore.lift.data` does for the lifter).

A clip stores world-frame ground truth (bone-group rotations, the phenotype, COCO keypoints from Anny's regressor);
a sample looks at a window of it through a camera: the input is the COCO keypoints converted to H36M-17 (what a
real detector and :func:`hmore.skeleton.convert` give), projected and normalised; the target is the group rotations
in the camera frame and the phenotype. Every draw comes from the ``numpy.random.Generator`` passed in.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hmore.lift.data import SampleConfig, add_noise, apply_mask, flip_pair, normalize_2d, sample_camera
from hmore.skeleton import COCO17, H36M17, convert

MIRROR = np.diag([-1.0, 1.0, 1.0])  # camera-frame reflection of a horizontal flip


@dataclass(frozen=True)
class PosedClip:
    """An Anny person playing a motion (world frame, metres, y up).

    Attributes:
        name: source (``"walk/id3/h0"``, ``"bvh:cmu_131_01_walk/id3"``).
        rot: (T, G, 3, 3) rest -> posed group rotations (:func:`hmore.synth.retarget.rig_groups`).
        phenotype: (6,) Anny phenotype.
        coco: (T, 17, 3) COCO-17 keypoints (Anny's regressor on the posed mesh).
        joints: (T, 17, 3) H36M-17 joints of the posed body.
        fps: frame rate.
    """

    name: str
    rot: np.ndarray
    phenotype: np.ndarray
    coco: np.ndarray
    joints: np.ndarray
    fps: float

    @property
    def num_frames(self) -> int:
        return int(self.rot.shape[0])


@dataclass(frozen=True)
class MeshSample:
    """x (F, 17, 3) model input (normalised 2D + confidence); rot (F, G, 3, 3) camera-frame group rotations;
    phenotype (6,); joints (F, 17, 3) root-relative camera-frame H36M joints (metres)."""

    x: np.ndarray
    rot: np.ndarray
    phenotype: np.ndarray
    joints: np.ndarray


def _posed(person, motion, name: str, groups_first: list[int]) -> PosedClip:
    from hmore.synth.anny_body import pose_anny

    p = pose_anny(person, motion, "normal", with_vertices=False)
    return PosedClip(name=name, rot=p.pose.rot[:, groups_first].astype(np.float32),
                     phenotype=person.phenotype.values().astype(np.float32), coco=p.coco.astype(np.float32),
                     joints=p.motion.joints.astype(np.float32), fps=float(motion.fps))


def _group_heads() -> list[int]:
    from hmore.synth.anny_body import ANNY_ROLES, Phenotype, anny_body
    from hmore.synth.retarget import rig_groups

    body = anny_body(Phenotype())
    return [body.bone(g[0]) for g in rig_groups(ANNY_ROLES)]


def posed_clips(*, identities: Sequence[int], actions: Sequence[str] | None = None, num_frames: int = 120,
                headings: int = 1, seed: int = 0, fps: float = 30.0,
                bvh: Sequence[str | Path] = ()) -> list[PosedClip]:
    """Anny people (identity i drawn with ``sample_identity(i, seed)`` and its phenotype) playing every generator
    action x heading (``actions``: None for all of them, empty for none), and every BVH file, retargeted onto their
    bodies."""
    from hmore.synth.anny_body import anny_person
    from hmore.synth.identity import sample_identity
    from hmore.synth.motion import ACTIONS, generate_motion, motion_from_bvh

    acts = list(ACTIONS) if actions is None else list(actions)
    first = _group_heads()
    rng = np.random.default_rng([seed, 0x3E5])
    out = []
    for i in identities:
        person = anny_person(sample_identity(i, seed), "normal")
        for a_i, act in enumerate(acts):
            for h in range(headings):
                heading = 2 * math.pi * (h + rng.random()) / headings
                m = generate_motion(act, person.identity, num_frames=num_frames, fps=fps,
                                    seed=seed * 100003 + i * 101 + a_i, heading=heading)
                out.append(_posed(person, m, f"{act}/id{i}/h{h}", first))
        for path in bvh:
            m = motion_from_bvh(path, person.identity, fps=fps)
            out.append(_posed(person, m, f"bvh:{Path(path).stem}/id{i}", first))
    return out


def make_mesh_sample(clip: PosedClip, window: slice, rng: np.random.Generator, cfg: SampleConfig,
                     mirror: np.ndarray) -> MeshSample:
    """Look at ``clip[window]`` through a random camera; ``mirror`` (G,) maps each group to its mirror image."""
    joints = clip.joints[window].astype(np.float64)
    target = joints[:, 0].mean(axis=0)
    target[1] = rng.uniform(0.7, 1.1) * max(target[1], 0.5)
    for _ in range(10):
        cam = sample_camera(rng, target, cfg.camera)
        if cam.to_camera(joints)[..., 2].min() > 0.5:
            break
    else:  # pragma: no cover - only for clips that wander far from their mean
        raise ValueError("could not place a camera in front of the clip")
    seen = cam.to_camera(convert(clip.coco[window].astype(np.float64), COCO17, H36M17, has_score=False))
    clean2d = normalize_2d(cam.project(seen), cam.width, cam.height)
    x = add_noise(clean2d, rng, cfg.noise)
    x = apply_mask(x, rng, joint_prob=cfg.noise.mask_joint, frame_prob=cfg.noise.mask_frame)
    rot = np.einsum("ij,tgjk->tgik", cam.rotation, clip.rot[window].astype(np.float64))
    pc = cam.to_camera(joints)
    y = pc - pc[:, :1]
    if rng.random() < cfg.flip_prob:
        x, y = flip_pair(x, y)
        rot = MIRROR @ rot[:, mirror] @ MIRROR
    return MeshSample(x=x.astype(np.float32), rot=rot.astype(np.float32), phenotype=clip.phenotype.copy(),
                      joints=y.astype(np.float32))
