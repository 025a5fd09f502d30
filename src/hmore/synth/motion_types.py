"""The data that passes from motions to the renderer.

Conventions used throughout ``hmore.synth`` (and documented in the README):

* World frame: metres, right-handed, **y up**, ground plane ``y = 0``. A person at rest faces **+z**; their left is +x.
* Camera frame (OpenCV): x right, y down, z forward (depth). ``kp3d`` in clips is in this frame.
* Pixels: x right, y down, the centre of pixel (i, j) at x = j, y = i. Flow is (dx, dy) in pixels.
* Joints: H36M-17 order (``hmore.skeleton.H36M17``) for 3D; COCO-17 for 2D keypoints in clips.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class Motion:
    """A motion of one person.

    Attributes:
        joints: (T, 17, 3) float64 joint positions in the world frame, metres, H36M-17 order. Bone lengths are
            constant over time (the renderer's body parts are rigid).
        fps: frames per second.
        name: action name (``"walk"``, ``"bvh:cmu_131_01_walk"`` ...).
        face: (T, 3) unit vectors, the direction the pelvis faces (horizontal), used to orient the body.
        extra: COCO-only points the H36M layout lacks, by name: ``"left_eye"`` etc. may be absent; the renderer
            derives eyes and ears from the head otherwise.
    """

    joints: np.ndarray
    fps: float
    name: str
    face: np.ndarray
    extra: dict[str, np.ndarray] = field(default_factory=dict)

    def __post_init__(self) -> None:
        j = np.asarray(self.joints)
        if j.ndim != 3 or j.shape[1:] != (17, 3):
            raise ValueError(f"Motion.joints must be (T, 17, 3), got {j.shape}")
        if np.asarray(self.face).shape != (j.shape[0], 3):
            raise ValueError(f"Motion.face must be (T, 3) = ({j.shape[0]}, 3), got {np.asarray(self.face).shape}")
        if not np.isfinite(j).all():
            raise ValueError("Motion.joints contains NaN or inf")

    @property
    def num_frames(self) -> int:
        return int(self.joints.shape[0])
