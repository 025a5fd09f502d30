"""NW-UCLA (Northwestern-UCLA Multiview Action 3D) Kinect v1 skeletons as shared in ``<data>/nw_ucla`` (README there).

1,484 sequences of 20 Kinect v1 joints (:data:`JOINT_NAMES`, :data:`PARENTS`), metres in the recording sensor's
skeleton space (right-handed: y up, z away from the sensor, x to the sensor's left), 10 actions (:data:`ACTIONS`),
10 subjects, 3 views. Standard cross-view split: train on views 1 and 2 (1,020 sequences), test on view 3 (464).
Left and right are the subject's own: ``(ShoulderCenter - HipCenter) x (ShoulderRight - ShoulderLeft)`` points the
way the feet point.

**Mapping to H36M-17** (:data:`TO_H36M17`, :func:`to_h36m17`): each H36M joint is the mean of the Kinect joints
listed. Hips, knees, ankles, shoulders, elbows and wrists are the Kinect joints of the same name; root = HipCenter;
neck (H36M Thorax) = ShoulderCenter; belly (H36M Spine) = mean(HipCenter, ShoulderCenter), as hmore derives it from
COCO keypoints (Kinect's own "Spine" sits only ~7 cm above HipCenter); head = Head (Kinect's head *centre*, lower
than H36M's head marker); nose (H36M Neck/Nose) = mean(ShoulderCenter, Head): Kinect v1 tracks no face point, and
H36M's Neck/Nose lies about halfway between Thorax and Head. Hands and feet (HandLeft/Right, FootLeft/Right) are not
used there; models of the ``kinect20`` layout (:data:`hmore.skeleton.KINECT20`, its own graph) take all 20 joints.

**2D view** (:func:`sensor_view`): the skeleton seen through its own sensor as a pinhole camera with the Kinect v1
depth camera's nominal focal length (285.63 px at 320x240, i.e. 571.26 px at 640x480; Kinect for Windows SDK
``NUI_CAMERA_DEPTH_NOMINAL_FOCAL_LENGTH_IN_PIXELS``): u = -f X / Z + 320, v = -f Y / Z + 240 (X points to the
sensor's left, i.e. to the image's left; Y up, image y down).

**Copies across views** (:meth:`NWUCLA.copies`): in the shared ``all_sqe`` release every view-3 sequence of "pick up
with two hands" (a02, 50) and "drop trash" (a03, 45) is byte-identical to the view-2 file of the same subject and
episode, so 95 of the 464 cross-view test sequences are also training sequences; ``hmore bench action`` reports top-1
with and without them.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hmore.data import NpzArrays, dataset_dir, require_file
from hmore.errors import InputError
from hmore.skeleton import KINECT20

JOINT_NAMES: tuple[str, ...] = KINECT20.joints
PARENTS: tuple[int, ...] = KINECT20.parents
#: Class names by label 0..9 (original action ids a01-a06, a08, a09, a11, a12).
ACTIONS: tuple[str, ...] = ("pick up with one hand", "pick up with two hands", "drop trash", "walk around",
                            "sit down", "stand up", "donning", "doffing", "throw", "carry")
TRAIN_VIEWS: tuple[int, ...] = (1, 2)
TEST_VIEWS: tuple[int, ...] = (3,)
#: Kinect joints averaged into each H36M-17 joint (H36M17 order; see the module doc).
TO_H36M17: tuple[tuple[int, ...], ...] = (
    (0,),            # root <- HipCenter
    (16,), (17,), (18,),  # right hip, knee, ankle
    (12,), (13,), (14,),  # left hip, knee, ankle
    (0, 2),          # belly <- mean(HipCenter, ShoulderCenter)
    (2,),            # neck (Thorax) <- ShoulderCenter
    (2, 3),          # nose <- mean(ShoulderCenter, Head)
    (3,),            # head <- Head
    (4,), (5,), (6,),     # left shoulder, elbow, wrist
    (8,), (9,), (10,),    # right shoulder, elbow, wrist
)
KINECT_FOCAL_640 = 571.26  # px at 640x480 (2 x the SDK's 285.63 at 320x240)
SENSOR_SIZE = (640, 480)


def h36m17_matrix() -> np.ndarray:
    """(17, 20) matrix M with rows summing to 1: H36M-17 joints = M @ Kinect v1 joints (:data:`TO_H36M17`)."""
    m = np.zeros((len(TO_H36M17), len(JOINT_NAMES)))
    for i, src in enumerate(TO_H36M17):
        m[i, list(src)] = 1.0 / len(src)
    return m


def to_h36m17(joints: np.ndarray) -> np.ndarray:
    """Kinect v1 joints (..., 20, C) -> H36M-17 (..., 17, C) by :data:`TO_H36M17` (means of source joints)."""
    j = np.asarray(joints)
    if j.ndim < 2 or j.shape[-2] != len(JOINT_NAMES):
        raise ValueError(f"expected (..., 20, C) Kinect v1 joints, got {j.shape}")
    out = np.einsum("ds,...sc->...dc", h36m17_matrix(), j.astype(np.float64))
    return out.astype(j.dtype if j.dtype.kind == "f" else np.float64)


def camera_frame(joints: np.ndarray) -> np.ndarray:
    """Skeleton-space points (..., 3) -> the sensor's camera axes (x right, y down, z forward, as OpenCV and
    ``hmore lift``): (-X, -Y, Z)."""
    p = np.asarray(joints)
    return np.stack([-p[..., 0], -p[..., 1], p[..., 2]], axis=-1)


def sensor_view(joints: np.ndarray, *, focal: float = KINECT_FOCAL_640,
                size: tuple[int, int] = SENSOR_SIZE) -> np.ndarray:
    """Skeleton-space points (..., 3) metres -> pixels (..., 3): x, y and a score (1 where the point is in front of
    the sensor and not the untracked (0, 0, 0), else 0 with x = y = 0), as the sensor's pinhole camera sees them."""
    p = np.asarray(joints, dtype=np.float64)
    ok = (p[..., 2] > 1e-3) & (np.abs(p).sum(axis=-1) > 0)
    z = np.where(ok, p[..., 2], 1.0)
    u = -p[..., 0] / z * focal + size[0] / 2
    v = -p[..., 1] / z * focal + size[1] / 2
    out = np.stack([u, v, ok.astype(np.float64)], axis=-1)
    out[~ok] = 0.0
    return out


@dataclass(frozen=True)
class NWUCLASequence:
    """One sequence.

    Attributes:
        name: original file name, ``aAA_sSS_eEE_vVV``.
        joints: (T, 20, 3) float32 metres, the sensor's skeleton space (read-only view).
        label: class index 0..9 (:data:`ACTIONS`).
        action_id, subject, episode, view: the numbers in the name.
        split: ``"train"`` (views 1, 2) or ``"test"`` (view 3).
    """

    name: str
    joints: np.ndarray
    label: int
    action_id: int
    subject: int
    episode: int
    view: int
    split: str

    @property
    def action(self) -> str:
        return ACTIONS[self.label]

    @property
    def num_frames(self) -> int:
        return int(self.joints.shape[0])

    def h36m(self) -> np.ndarray:
        """(T, 17, 3) H36M-17 joints (metres, skeleton space), see :data:`TO_H36M17`."""
        return to_h36m17(self.joints)


class NWUCLA:
    """The NW-UCLA folder, read once (12 MB).

    Args:
        root: the ``nw_ucla`` folder (default: ``shared_data_dir() / "nw_ucla"``).
    """

    def __init__(self, root: str | Path | None = None) -> None:
        self.root = dataset_dir("nw_ucla", root)
        z = NpzArrays(require_file(self.root / "nw_ucla_skeletons.npz", "NW-UCLA skeletons"))
        try:
            joints, offsets = z["joints"], z["offsets"]
            cols = {k: z[k] for k in ("label", "action_id", "subject", "episode", "view", "split", "file_name")}
        except KeyError as exc:
            raise InputError(f"{z.path}: missing array {exc}") from None
        if offsets.shape[0] != cols["label"].shape[0] + 1 or offsets[-1] != joints.shape[0]:
            raise InputError(f"{z.path}: offsets do not match the joints array")
        self.sequences: list[NWUCLASequence] = [
            NWUCLASequence(name=str(cols["file_name"][i]), joints=joints[offsets[i] : offsets[i + 1]],
                           label=int(cols["label"][i]), action_id=int(cols["action_id"][i]),
                           subject=int(cols["subject"][i]), episode=int(cols["episode"][i]),
                           view=int(cols["view"][i]), split="train" if int(cols["split"][i]) == 0 else "test")
            for i in range(cols["label"].shape[0])
        ]

    def split(self, name: str) -> list[NWUCLASequence]:
        """The sequences of the cross-view split ``"train"`` (views 1, 2) or ``"test"`` (view 3)."""
        if name not in ("train", "test"):
            raise InputError(f"NW-UCLA split must be 'train' or 'test', got {name!r}")
        return [s for s in self.sequences if s.split == name]

    def copies(self, views: tuple[int, ...], of_views: tuple[int, ...]) -> set[str]:
        """Names of the sequences of ``views`` whose joints are byte-identical (same frames, same values) to a sequence
        of ``of_views``, e.g. ``copies((3,), (1, 2))``: the test sequences that are also training sequences."""
        seen = {(s.joints.shape, s.joints.tobytes()) for s in self.sequences if s.view in of_views}
        return {s.name for s in self.sequences if s.view in views and (s.joints.shape, s.joints.tobytes()) in seen}

    def __len__(self) -> int:
        return len(self.sequences)


@functools.lru_cache(maxsize=2)
def _load(root: str) -> NWUCLA:
    return NWUCLA(root)


def load_nw_ucla(root: str | Path | None = None) -> NWUCLA:
    """The process-wide :class:`NWUCLA` of a folder."""
    return _load(str(dataset_dir("nw_ucla", root).resolve()))


__all__ = ["ACTIONS", "JOINT_NAMES", "KINECT_FOCAL_640", "NWUCLA", "NWUCLASequence", "PARENTS", "TEST_VIEWS",
           "TO_H36M17", "TRAIN_VIEWS", "camera_frame", "h36m17_matrix", "load_nw_ucla", "sensor_view", "to_h36m17"]
