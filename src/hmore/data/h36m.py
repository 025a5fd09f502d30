"""Human3.6M as shared in ``<data>/h36m`` (its README has the layout, the conventions and checked figures).

What the folder holds and what this reader gives:

* ``poses_3d.npz``: per sequence (``"S1/Directions 1"``), int16 (T, 17, 3) millimetres in the **world frame (z up)**,
  50 fps, H36M-17 joint order (= :data:`hmore.skeleton.H36M17`, MotionBERT's and VideoPose3D's). Missing in the
  snapshot: ``S5/Discussion 2``, ``S5/Discussion 3``, ``S7/Discussion``, ``S7/SittingDown 1`` and, in the test set,
  ``S9/Discussion 1`` (:data:`MISSING_3D`).
* ``detections_2d_sh.npz``: per sequence and camera (``"S1/Directions 1/54138969"``), int16 (T, 16, 2) pixels: the
  Stacked-Hourglass detections of 3d-pose-baseline (Martinez et al. 2017, *not* fine-tuned on Human3.6M), MPII
  joint order. ``S11/Directions/54138969`` is missing (a corrupt video in the original too).
* ``cameras.json``: the 4 cameras of each subject (:class:`H36MCamera`), with 3 radial and 2 tangential distortion
  coefficients.

**SH 16 -> H36M-17.** :data:`SH_TO_H36M17` is 3d-pose-baseline's layout: the 16 SH joints are the 17 H36M joints
minus Neck/Nose (index 9); MPII "thorax" is put in the Spine slot (7), "upper neck" in the Thorax slot (8), "head
top" in the Head slot (10). :data:`SH_TO_H36M17_NEAREST` assigns by position instead (the README measured each SH
joint against the projected ground truth): thorax -> Thorax (13 px away, against 44 px to the Spine), upper neck ->
Neck/Nose, head top -> Head, and leaves **Spine (7)** without a detection. :meth:`H36M.keypoints_sh` returns 17
joints with score 1 for detected joints and an all-zero row (x, y, score) for the joint without a detection, which
is how hmore's lifters mark a missing joint.

**Ground-truth 2D** (:meth:`H36M.keypoints_gt`) is the 3D projected through the camera with its distortion, all 17
joints with score 1. **Camera-frame 3D** (:meth:`H36M.poses_camera`): ``X_cam = R (X_world - T)`` (x right, y down,
z forward, mm), root-relative by default (joint 0, Hip, at the origin), as the lifting protocol uses.

**Split** (the standard one): train :data:`TRAIN_SUBJECTS` S1, S5, S6, S7, S8; test :data:`TEST_SUBJECTS` S9, S11.
:meth:`H36M.examples` lists every (sequence, camera) pair with both 3D and 2D, i.e. exactly the frames a protocol
run can evaluate (the test set lacks ``S9/Discussion 1``'s 3D and ``S11/Directions``' camera 54138969 2D).
"""

from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hmore.data import NpzArrays, dataset_dir, require_file
from hmore.errors import InputError
from hmore.skeleton import H36M17

SUBJECTS: tuple[str, ...] = ("S1", "S5", "S6", "S7", "S8", "S9", "S11")
TRAIN_SUBJECTS: tuple[str, ...] = ("S1", "S5", "S6", "S7", "S8")
TEST_SUBJECTS: tuple[str, ...] = ("S9", "S11")
CAMERAS: tuple[str, ...] = ("54138969", "55011271", "58860488", "60457274")
#: The 15 actions, in the order of published per-action tables.
ACTIONS: tuple[str, ...] = ("Directions", "Discussion", "Eating", "Greeting", "Phoning", "Photo", "Posing",
                            "Purchases", "Sitting", "SittingDown", "Smoking", "Waiting", "WalkDog", "Walking",
                            "WalkTogether")
#: Sequence names of the original that the data lacks in 3D (their 2D is present).
MISSING_3D: tuple[str, ...] = ("S5/Discussion 2", "S5/Discussion 3", "S7/Discussion", "S7/SittingDown 1",
                               "S9/Discussion 1")
FPS = 50.0
NUM_JOINTS = 17
ROOT = 0
#: H36M-17 joint names as the README spells them (order of :data:`hmore.skeleton.H36M17`).
JOINT_NAMES: tuple[str, ...] = ("Hip", "RHip", "RKnee", "RFoot", "LHip", "LKnee", "LFoot", "Spine", "Thorax",
                                "Neck/Nose", "Head", "LShoulder", "LElbow", "LWrist", "RShoulder", "RElbow", "RWrist")
PARENTS: tuple[int, ...] = H36M17.parents
#: MPII names of the 16 Stacked-Hourglass joints, in file order.
SH_JOINT_NAMES: tuple[str, ...] = ("r_ankle", "r_knee", "r_hip", "l_hip", "l_knee", "l_ankle", "pelvis", "thorax",
                                   "upper_neck", "head_top", "r_wrist", "r_elbow", "r_shoulder", "l_shoulder",
                                   "l_elbow", "l_wrist")
#: SH joint i -> H36M-17 index, 3d-pose-baseline's layout (Neck/Nose, 9, has no detection).
SH_TO_H36M17: tuple[int, ...] = (3, 2, 1, 4, 5, 6, 0, 7, 8, 10, 16, 15, 14, 11, 12, 13)
#: SH joint i -> H36M-17 index by position (Spine, 7, has no detection).
SH_TO_H36M17_NEAREST: tuple[int, ...] = (3, 2, 1, 4, 5, 6, 0, 8, 9, 10, 16, 15, 14, 11, 12, 13)
SH_MAPPINGS: dict[str, tuple[int, ...]] = {"baseline": SH_TO_H36M17, "nearest": SH_TO_H36M17_NEAREST}

_TRIAL = re.compile(r"\s*\d+$")


def action_of(sequence: str) -> str:
    """The action of a sequence name: ``"S1/Directions 1"`` or ``"Directions 1"`` -> ``"Directions"``."""
    name = sequence.split("/")[1] if "/" in sequence else sequence
    action = _TRIAL.sub("", name)
    if action not in ACTIONS:
        raise InputError(f"unknown Human3.6M action in sequence name {sequence!r}")
    return action


def world_to_hmore(points_mm: np.ndarray) -> np.ndarray:
    """Human3.6M world points (..., 3) (mm, z up) -> hmore's world frame (metres, y up): (x, z, -y) / 1000.

    A proper rotation (det +1), so left and right are kept.
    """
    p = np.asarray(points_mm, dtype=np.float64)
    return np.stack([p[..., 0], p[..., 2], -p[..., 1]], axis=-1) / 1000.0


@dataclass(frozen=True)
class H36MCamera:
    """One calibrated Human3.6M camera (README "Cameras").

    Attributes:
        subject, id: e.g. ``"S9"``, ``"54138969"``.
        R: (3, 3) world -> camera rotation, ``X_cam = R (X_world - T)``.
        T: (3,) camera centre in the world, mm.
        f: (2,) focal lengths in pixels (fx, fy).
        c: (2,) principal point in pixels.
        k: (3,) radial distortion coefficients.
        p: (2,) tangential distortion coefficients (3d-pose-baseline's order).
        width, height: image size in pixels.
    """

    subject: str
    id: str
    R: np.ndarray
    T: np.ndarray
    f: np.ndarray
    c: np.ndarray
    k: np.ndarray
    p: np.ndarray
    width: int
    height: int

    def to_camera(self, points_world: np.ndarray) -> np.ndarray:
        """World points (..., 3) mm -> camera frame (..., 3) mm (x right, y down, z forward)."""
        return (np.asarray(points_world, dtype=np.float64) - self.T) @ self.R.T

    def project_camera(self, points_cam: np.ndarray) -> np.ndarray:
        """Camera-frame points (..., 3) -> distorted pixels (..., 2) (x right, y down)."""
        pc = np.asarray(points_cam, dtype=np.float64)
        xy = pc[..., :2] / pc[..., 2:3]
        r2 = (xy**2).sum(axis=-1)  # (...,)
        k, p = self.k, self.p
        radial = 1.0 + k[0] * r2 + k[1] * r2**2 + k[2] * r2**3
        tangential = p[0] * xy[..., 1] + p[1] * xy[..., 0]
        xy = xy * (radial + tangential)[..., None] + r2[..., None] * np.array([p[1], p[0]])
        return xy * self.f + self.c

    def project(self, points_world: np.ndarray) -> np.ndarray:
        """World points (..., 3) mm -> distorted pixels (..., 2)."""
        return self.project_camera(self.to_camera(points_world))


@dataclass(frozen=True)
class H36MExample:
    """One (sequence, camera) pair with both 3D and 2D: ``num_frames`` frames at 50 fps."""

    subject: str
    sequence: str
    action: str
    camera: str
    num_frames: int

    @property
    def key(self) -> str:
        """``"S9/Walking/54138969"``, the detections' key."""
        return f"{self.sequence}/{self.camera}"


class H36M:
    """The Human3.6M folder. Arrays are decompressed on first use and kept for the life of the object; use
    :func:`load_h36m` to share one per process.

    Args:
        root: the ``h36m`` folder (default: ``shared_data_dir() / "h36m"``).
    """

    def __init__(self, root: str | Path | None = None) -> None:
        self.root = dataset_dir("h36m", root)
        self._p3 = NpzArrays(require_file(self.root / "poses_3d.npz", "Human3.6M 3D poses"))
        self._d2 = NpzArrays(require_file(self.root / "detections_2d_sh.npz", "Human3.6M SH detections"))
        cam_path = require_file(self.root / "cameras.json", "Human3.6M cameras")
        try:
            raw = json.loads(cam_path.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise InputError(f"cannot read {cam_path}: {exc}") from None
        self.cameras: dict[str, dict[str, H36MCamera]] = {}
        for subject, cams in raw.items():
            self.cameras[subject] = {
                cid: H36MCamera(subject=subject, id=cid, R=np.asarray(c["R"], np.float64).reshape(3, 3),
                                T=np.asarray(c["T"], np.float64).reshape(3), f=np.asarray(c["f"], np.float64),
                                c=np.asarray(c["c"], np.float64), k=np.asarray(c["k"], np.float64),
                                p=np.asarray(c["p"], np.float64), width=int(c["resolution"][0]),
                                height=int(c["resolution"][1]))
                for cid, c in cams.items()
            }

    # ---- listing ---------------------------------------------------------------------------------------------------
    def sequences(self, subjects: tuple[str, ...] | list[str] | None = None) -> list[str]:
        """Names of the sequences with 3D (``"S1/Directions 1"``), in file order, optionally of some subjects."""
        keep = set(subjects) if subjects is not None else None
        return [k for k in self._p3.keys if keep is None or k.split("/")[0] in keep]

    def has_2d(self, sequence: str, camera: str) -> bool:
        return f"{sequence}/{camera}" in self._d2

    def examples(self, subjects: tuple[str, ...] | list[str] | None = None) -> list[H36MExample]:
        """Every (sequence, camera) pair of ``subjects`` with both 3D and 2D, sorted by subject, sequence, camera.

        This is the frames list of a protocol run: each example contributes all its ``num_frames`` frames.
        """
        subjects = tuple(subjects) if subjects is not None else SUBJECTS
        bad = sorted(set(subjects) - set(SUBJECTS))
        if bad:
            raise InputError(f"unknown Human3.6M subject(s) {bad}; known: {', '.join(SUBJECTS)}")
        out = []
        for seq in sorted(self.sequences(subjects), key=lambda s: (SUBJECTS.index(s.split("/")[0]), s)):
            for cam in CAMERAS:
                if self.has_2d(seq, cam):
                    out.append(H36MExample(subject=seq.split("/")[0], sequence=seq, action=action_of(seq),
                                           camera=cam, num_frames=int(self._p3[seq].shape[0])))
        return out

    def camera(self, subject: str, camera: str) -> H36MCamera:
        try:
            return self.cameras[subject][camera]
        except KeyError:
            raise InputError(f"no camera {camera!r} for subject {subject!r} in {self.root / 'cameras.json'}") from None

    # ---- arrays ----------------------------------------------------------------------------------------------------
    def poses_world(self, sequence: str) -> np.ndarray:
        """(T, 17, 3) float32 world-frame joints in mm (z up)."""
        if sequence not in self._p3:
            why = " (absent from this snapshot)" if sequence in MISSING_3D else ""
            raise InputError(f"no Human3.6M 3D sequence {sequence!r}{why}")
        return self._p3[sequence].astype(np.float32)

    def poses_camera(self, sequence: str, camera: str, *, root_relative: bool = True) -> np.ndarray:
        """(T, 17, 3) float32 camera-frame joints in mm, root-relative (Hip at the origin) by default."""
        cam = self.camera(sequence.split("/")[0], camera)
        pc = cam.to_camera(self.poses_world(sequence))
        if root_relative:
            pc = pc - pc[:, ROOT : ROOT + 1]
        return pc.astype(np.float32)

    def detections_sh(self, sequence: str, camera: str) -> np.ndarray:
        """(T, 16, 2) float32 Stacked-Hourglass detections in pixels, MPII joint order (:data:`SH_JOINT_NAMES`)."""
        key = f"{sequence}/{camera}"
        if key not in self._d2:
            raise InputError(f"no Human3.6M SH detections for {key!r}")
        return self._d2[key].astype(np.float32)

    def keypoints_sh(self, sequence: str, camera: str, *, mapping: str = "baseline") -> np.ndarray:
        """(T, 17, 3) float32 SH detections in H36M-17 order: pixels + score 1; the joint without a detection
        (Neck/Nose for ``mapping="baseline"``, Spine for ``"nearest"``; see the module doc) is all zero."""
        if mapping not in SH_MAPPINGS:
            raise ValueError(f"mapping must be one of {sorted(SH_MAPPINGS)}, got {mapping!r}")
        sh = self.detections_sh(sequence, camera)
        out = np.zeros((sh.shape[0], NUM_JOINTS, 3), np.float32)
        idx = list(SH_MAPPINGS[mapping])
        out[:, idx, :2] = sh
        out[:, idx, 2] = 1.0
        return out

    def keypoints_gt(self, sequence: str, camera: str) -> np.ndarray:
        """(T, 17, 3) float32 ground-truth 2D: the 3D projected with the camera's distortion, pixels + score 1."""
        cam = self.camera(sequence.split("/")[0], camera)
        px = cam.project(self.poses_world(sequence))
        return np.concatenate([px, np.ones(px.shape[:-1] + (1,))], axis=-1).astype(np.float32)

    def image_size(self, subject: str, camera: str) -> tuple[int, int]:
        """(width, height) of a camera's images."""
        cam = self.camera(subject, camera)
        return cam.width, cam.height

    def motion_clip(self, sequence: str):
        """A sequence as a :class:`hmore.lift.data.MotionClip`: hmore's world frame (metres, y up), 50 fps."""
        from hmore.lift.data import MotionClip

        return MotionClip(joints=world_to_hmore(self.poses_world(sequence)), fps=FPS, name=f"h36m:{sequence}")


@functools.lru_cache(maxsize=4)
def _load(root: str) -> H36M:
    return H36M(root)


def load_h36m(root: str | Path | None = None) -> H36M:
    """The process-wide :class:`H36M` of a folder (its decompressed arrays are shared between callers)."""
    return _load(str(dataset_dir("h36m", root).resolve()))


__all__ = ["ACTIONS", "CAMERAS", "FPS", "H36M", "H36MCamera", "H36MExample", "JOINT_NAMES", "MISSING_3D", "PARENTS",
           "SH_JOINT_NAMES", "SH_MAPPINGS", "SH_TO_H36M17", "SH_TO_H36M17_NEAREST", "SUBJECTS", "TEST_SUBJECTS",
           "TRAIN_SUBJECTS", "action_of", "load_h36m", "world_to_hmore"]
