"""Joint layouts (COCO-17, H36M-17, BlazePose-33, Kinect v1 20) and conversions between them.

Keypoint arrays have joints on the second-to-last axis: ``(..., J, C)`` with ``C`` = 2 (x, y), 3 (x, y, score or
x, y, z) or 4. Conversions keep every channel; a joint derived from several sources gets their mean position and,
when ``has_score=True``, the minimum of their scores (a derived joint is only as sure as its least sure source).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hmore.errors import InputError


@dataclass(frozen=True)
class Layout:
    """A named joint layout.

    Attributes:
        name: layout name, e.g. ``"coco17"``.
        joints: joint names in index order.
        bones: (parent, child) index pairs drawn as the skeleton.
        flip_pairs: (left, right) index pairs swapped by a horizontal flip.
    """

    name: str
    joints: tuple[str, ...]
    bones: tuple[tuple[int, int], ...]
    flip_pairs: tuple[tuple[int, int], ...]

    @property
    def num_joints(self) -> int:
        return len(self.joints)

    def index(self, joint: str) -> int:
        return self.joints.index(joint)

    @property
    def parents(self) -> tuple[int, ...]:
        """Each joint's parent index along ``bones`` (-1 for a joint that is no bone's child, the root); for
        layouts whose bones form a tree (H36M-17; COCO-17's face triangle does not)."""
        out = [-1] * self.num_joints
        for a, b in self.bones:
            if out[b] != -1:
                raise ValueError(f"{self.name}: joint {self.joints[b]} has two parents; its bones are not a tree")
            out[b] = a
        return tuple(out)

    @property
    def flip_index(self) -> np.ndarray:
        """Permutation ``p`` such that ``kp[..., p, :]`` swaps every left joint with its right one."""
        perm = np.arange(self.num_joints)
        for a, b in self.flip_pairs:
            perm[a], perm[b] = b, a
        return perm


COCO17 = Layout(
    name="coco17",
    joints=(
        "nose", "left_eye", "right_eye", "left_ear", "right_ear",
        "left_shoulder", "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist",
        "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle",
    ),
    bones=(
        (15, 13), (13, 11), (16, 14), (14, 12), (11, 12), (5, 11), (6, 12), (5, 6), (5, 7), (6, 8),
        (7, 9), (8, 10), (1, 2), (0, 1), (0, 2), (1, 3), (2, 4), (3, 5), (4, 6),
    ),
    flip_pairs=((1, 2), (3, 4), (5, 6), (7, 8), (9, 10), (11, 12), (13, 14), (15, 16)),
)

# H36M-17 as MotionBERT and VideoPose3D use it (docs/motionbert.md).
H36M17 = Layout(
    name="h36m17",
    joints=(
        "root", "right_hip", "right_knee", "right_ankle", "left_hip", "left_knee", "left_ankle",
        "belly", "neck", "nose", "head",
        "left_shoulder", "left_elbow", "left_wrist", "right_shoulder", "right_elbow", "right_wrist",
    ),
    bones=(
        (0, 1), (1, 2), (2, 3), (0, 4), (4, 5), (5, 6), (0, 7), (7, 8), (8, 9), (9, 10),
        (8, 11), (11, 12), (12, 13), (8, 14), (14, 15), (15, 16),
    ),
    flip_pairs=((1, 4), (2, 5), (3, 6), (11, 14), (12, 15), (13, 16)),
)

BLAZEPOSE33 = Layout(
    name="blazepose33",
    joints=(
        "nose", "left_eye_inner", "left_eye", "left_eye_outer", "right_eye_inner", "right_eye", "right_eye_outer",
        "left_ear", "right_ear", "mouth_left", "mouth_right", "left_shoulder", "right_shoulder", "left_elbow",
        "right_elbow", "left_wrist", "right_wrist", "left_pinky", "right_pinky", "left_index", "right_index",
        "left_thumb", "right_thumb", "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle",
        "right_ankle", "left_heel", "right_heel", "left_foot_index", "right_foot_index",
    ),
    bones=(
        (11, 12), (11, 13), (13, 15), (12, 14), (14, 16), (11, 23), (12, 24), (23, 24), (23, 25), (25, 27),
        (24, 26), (26, 28), (27, 29), (29, 31), (27, 31), (28, 30), (30, 32), (28, 32), (15, 17), (15, 19),
        (15, 21), (16, 18), (16, 20), (16, 22), (0, 1), (1, 2), (2, 3), (3, 7), (0, 4), (4, 5), (5, 6), (6, 8),
        (9, 10),
    ),
    flip_pairs=(
        (1, 4), (2, 5), (3, 6), (7, 8), (9, 10), (11, 12), (13, 14), (15, 16), (17, 18), (19, 20), (21, 22),
        (23, 24), (25, 26), (27, 28), (29, 30), (31, 32),
    ),
)

# Kinect v1's 20 skeleton joints in the SDK's order (NUI_SKELETON_POSITION_*), as NW-UCLA stores them
# (hmore.data.nw_ucla); left and right are the subject's own. Unlike H36M-17 it has the hands and feet and a spine
# joint just above the hip centre, but no nose; ``Head`` is the head's centre.
KINECT20 = Layout(
    name="kinect20",
    joints=(
        "HipCenter", "Spine", "ShoulderCenter", "Head", "ShoulderLeft", "ElbowLeft", "WristLeft", "HandLeft",
        "ShoulderRight", "ElbowRight", "WristRight", "HandRight", "HipLeft", "KneeLeft", "AnkleLeft", "FootLeft",
        "HipRight", "KneeRight", "AnkleRight", "FootRight",
    ),
    bones=(
        (0, 1), (1, 2), (2, 3), (2, 4), (4, 5), (5, 6), (6, 7), (2, 8), (8, 9), (9, 10), (10, 11),
        (0, 12), (12, 13), (13, 14), (14, 15), (0, 16), (16, 17), (17, 18), (18, 19),
    ),
    flip_pairs=((4, 8), (5, 9), (6, 10), (7, 11), (12, 16), (13, 17), (14, 18), (15, 19)),
)

LAYOUTS: dict[str, Layout] = {lay.name: lay for lay in (COCO17, H36M17, BLAZEPOSE33, KINECT20)}

# Each target joint is the mean of these source joints (by name).
_RECIPES: dict[tuple[str, str], tuple[tuple[str, ...], ...]] = {
    ("blazepose33", "coco17"): tuple((n,) for n in COCO17.joints),
    ("coco17", "h36m17"): (
        ("left_hip", "right_hip"),  # root = mid-hip
        ("right_hip",), ("right_knee",), ("right_ankle",),
        ("left_hip",), ("left_knee",), ("left_ankle",),
        ("left_hip", "right_hip", "left_shoulder", "right_shoulder"),  # belly = mid(root, neck)
        ("left_shoulder", "right_shoulder"),  # neck = mid-shoulder
        ("nose",),
        ("left_eye", "right_eye"),  # head = mid-eyes (COCO has no head top)
        ("left_shoulder",), ("left_elbow",), ("left_wrist",),
        ("right_shoulder",), ("right_elbow",), ("right_wrist",),
    ),
}


def get_layout(layout: str | Layout) -> Layout:
    if isinstance(layout, Layout):
        return layout
    try:
        return LAYOUTS[layout.lower().replace("-", "").replace("_", "")]
    except KeyError:
        raise InputError(f"unknown keypoint layout {layout!r}; known: {', '.join(LAYOUTS)}") from None


def guess_layout(num_joints: int) -> Layout:
    """The layout with ``num_joints`` joints (17 is taken as COCO-17, the detectors' layout)."""
    for lay in (COCO17, BLAZEPOSE33):
        if lay.num_joints == num_joints:
            return lay
    raise InputError(f"no known keypoint layout has {num_joints} joints (COCO-17: 17, BlazePose-33: 33)")


def _mixing_matrix(src: Layout, dst: Layout) -> np.ndarray:
    """(J_dst, J_src) matrix with rows summing to 1: dst = M @ src."""
    key = (src.name, dst.name)
    if key not in _RECIPES:
        raise InputError(f"no conversion from {src.name} to {dst.name}")
    m = np.zeros((dst.num_joints, src.num_joints))
    for i, names in enumerate(_RECIPES[key]):
        for n in names:
            m[i, src.index(n)] = 1.0 / len(names)
    return m


def convert(kp: np.ndarray, src: str | Layout, dst: str | Layout, *, has_score: bool | None = None) -> np.ndarray:
    """Convert keypoints ``(..., J_src, C)`` from layout ``src`` to ``dst`` -> ``(..., J_dst, C)``.

    Supported: blazepose33 -> coco17, coco17 -> h36m17, blazepose33 -> h36m17 (through COCO-17), and the identity.

    Args:
        kp: keypoints with joints on axis -2.
        src, dst: layouts or their names.
        has_score: whether the last channel is a confidence (min over sources instead of mean). None means
            ``C == 3`` (x, y, score); pass False for 3D positions (x, y, z).
    """
    src, dst = get_layout(src), get_layout(dst)
    kp = np.asarray(kp)
    if kp.ndim < 2 or kp.shape[-2] != src.num_joints:
        raise InputError(
            f"keypoints of shape {kp.shape} do not fit layout {src.name} ({src.num_joints} joints on axis -2)"
        )
    if src == dst:
        return kp.copy()
    if (src.name, dst.name) == ("blazepose33", "h36m17"):
        return convert(convert(kp, src, COCO17, has_score=has_score), COCO17, dst, has_score=has_score)
    m = _mixing_matrix(src, dst)
    dtype = kp.dtype if kp.dtype.kind == "f" else np.float32
    out = np.einsum("ds,...sc->...dc", m, kp.astype(np.float64)).astype(dtype)  # (..., J_dst, C)
    if has_score is None:
        has_score = kp.shape[-1] == 3
    if has_score:
        score = kp[..., -1]  # (..., J_src)
        for i, names in enumerate(_RECIPES[(src.name, dst.name)]):
            idx = [src.index(n) for n in names]
            out[..., i, -1] = score[..., idx].min(axis=-1)
    return out


def flip(kp: np.ndarray, layout: str | Layout, width: float | None = None) -> np.ndarray:
    """Mirror keypoints horizontally: swap left/right joints and negate x (or map x -> width - 1 - x).

    ``width=None`` negates x (for root-centred or normalised coordinates); with a width, pixel x is mirrored.
    Flipping twice gives the input back.
    """
    lay = get_layout(layout)
    kp = np.asarray(kp)
    if kp.shape[-2] != lay.num_joints:
        raise InputError(f"keypoints of shape {kp.shape} do not fit layout {lay.name}")
    out = kp[..., lay.flip_index, :].copy()
    out[..., 0] = -out[..., 0] if width is None else (width - 1) - out[..., 0]
    return out


def bone_lengths(kp3d: np.ndarray, layout: str | Layout) -> np.ndarray:
    """Length of every bone of ``layout``: ``(..., J, 3) -> (..., num_bones)``."""
    lay = get_layout(layout)
    b = np.asarray(lay.bones)
    return np.linalg.norm(kp3d[..., b[:, 1], :3] - kp3d[..., b[:, 0], :3], axis=-1)
