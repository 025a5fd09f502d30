"""Identities: body shape, appearance and walking style of a generated person.

A person is recognisable from the way they walk (stride, cadence, arm swing, posture) as well as from their body;
gait sets rely on that, so every identity draws its own style from its seed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

PATTERNS = ("plain", "stripes", "checks", "dots", "noise")


@dataclass(frozen=True)
class Identity:
    """One person. All lengths in metres, angles in radians, colours RGB 0-255.

    Body: ``height``; ``leg_ratio`` (hip height / height, ~0.53), ``arm_ratio`` (arm length / height, ~0.33),
    ``shoulder_width`` and ``hip_width`` (as fractions of height), ``thickness`` (limb radius scale, 1 = average),
    ``girth`` (torso width scale).
    Appearance: ``skin``, ``hair``, ``top``, ``bottom``, ``shoes`` colours; ``top_pattern`` and ``bottom_pattern`` from
    :data:`PATTERNS`; ``texture_seed`` for the procedural textures.
    Style: ``stride`` (step length / leg length, ~0.75), ``cadence`` (steps per second, ~1.8), ``arm_swing``
    (shoulder swing amplitude), ``lean`` (forward trunk lean), ``bounce`` (vertical pelvis bob scale), ``knee_lift``
    (extra knee flexion in swing), ``elbow_bend`` (resting elbow flexion).
    """

    identity_id: int
    height: float = 1.72
    leg_ratio: float = 0.53
    arm_ratio: float = 0.33
    shoulder_width: float = 0.22
    hip_width: float = 0.11
    thickness: float = 1.0
    girth: float = 1.0
    skin: tuple[int, int, int] = (205, 160, 130)
    hair: tuple[int, int, int] = (60, 40, 30)
    top: tuple[int, int, int] = (40, 90, 160)
    bottom: tuple[int, int, int] = (50, 50, 60)
    shoes: tuple[int, int, int] = (30, 30, 30)
    top_pattern: str = "plain"
    bottom_pattern: str = "plain"
    texture_seed: int = 0
    stride: float = 0.75
    cadence: float = 1.8
    arm_swing: float = 0.35
    lean: float = 0.05
    bounce: float = 1.0
    knee_lift: float = 0.3
    elbow_bend: float = 0.25

    def __post_init__(self) -> None:
        if not 0.5 <= self.height <= 2.5:
            raise ValueError(f"Identity.height must be within 0.5-2.5 m, got {self.height}")
        for name in ("top_pattern", "bottom_pattern"):
            if getattr(self, name) not in PATTERNS:
                raise ValueError(f"Identity.{name} must be one of {PATTERNS}, got {getattr(self, name)!r}")

    # ---- skeleton ---------------------------------------------------------------------------------------------
    def segment_lengths(self) -> dict[str, float]:
        """Bone lengths (metres) by segment name, from height and proportions."""
        h = self.height
        leg = self.leg_ratio * h  # hip joint height above the ground, standing
        arm = self.arm_ratio * h
        return {
            "thigh": 0.475 * leg,
            "shin": 0.455 * leg,
            "ankle_height": 0.07 * leg,
            "spine_lower": 0.14 * h,  # root -> belly
            "spine_upper": 0.145 * h,  # belly -> neck
            "neck_nose": 0.09 * h,
            "nose_head": 0.06 * h,
            "upper_arm": 0.56 * arm,
            "forearm": 0.44 * arm,
            "shoulder_half": 0.5 * self.shoulder_width * h,
            "hip_half": 0.5 * self.hip_width * h,
        }

    def rest_pose(self) -> np.ndarray:
        """(17, 3) H36M-17 joints standing at the origin, facing +z, left = +x, y up, arms hanging."""
        s = self.segment_lengths()
        j = np.zeros((17, 3))
        root_y = s["ankle_height"] + s["shin"] + s["thigh"]
        j[0] = (0.0, root_y, 0.0)
        for side, (hip, knee, ankle) in ((-1, (1, 2, 3)), (1, (4, 5, 6))):  # right is -x, left is +x
            j[hip] = (side * s["hip_half"], root_y, 0.0)
            j[knee] = (side * s["hip_half"], root_y - s["thigh"], 0.0)
            j[ankle] = (side * s["hip_half"], root_y - s["thigh"] - s["shin"], 0.0)
        j[7] = (0.0, root_y + s["spine_lower"], 0.0)
        j[8] = (0.0, root_y + s["spine_lower"] + s["spine_upper"], 0.0)
        # nose a little forward of the neck line, head above and behind the nose
        j[9] = j[8] + (0.0, s["neck_nose"] * 0.94, s["neck_nose"] * 0.34)
        j[10] = j[9] + (0.0, s["nose_head"] * 0.85, -s["nose_head"] * 0.53)
        for side, (sh, el, wr) in ((1, (11, 12, 13)), (-1, (14, 15, 16))):
            j[sh] = j[8] + (side * s["shoulder_half"], -0.01 * self.height, 0.0)
            j[el] = j[sh] + (side * 0.03 * s["upper_arm"], -s["upper_arm"], 0.0)
            j[wr] = j[el] + (side * 0.02 * s["forearm"], -s["forearm"], 0.0)
        return j


def sample_identity(identity_id: int, seed: int | None = None) -> Identity:
    """A random but reproducible identity: the same ``(identity_id, seed)`` always gives the same person."""
    rng = np.random.default_rng([int(identity_id), 0 if seed is None else int(seed), 0x1D])

    def colour(lo: int = 20, hi: int = 235) -> tuple[int, int, int]:
        return tuple(int(v) for v in rng.integers(lo, hi, size=3))

    skin_tone = rng.uniform(0.0, 1.0)
    skin = tuple(int(v) for v in np.array([235, 200, 170]) * (1 - skin_tone) + np.array([95, 60, 40]) * skin_tone)
    return Identity(
        identity_id=int(identity_id),
        height=float(rng.uniform(1.52, 1.95)),
        leg_ratio=float(rng.uniform(0.50, 0.56)),
        arm_ratio=float(rng.uniform(0.31, 0.35)),
        shoulder_width=float(rng.uniform(0.20, 0.25)),
        hip_width=float(rng.uniform(0.095, 0.125)),
        thickness=float(rng.uniform(0.85, 1.25)),
        girth=float(rng.uniform(0.85, 1.3)),
        skin=skin,  # type: ignore[arg-type]
        hair=colour(10, 120),
        top=colour(),
        bottom=colour(15, 160),
        shoes=colour(10, 90),
        top_pattern=str(rng.choice(PATTERNS)),
        bottom_pattern=str(rng.choice(("plain", "plain", "stripes", "noise"))),
        texture_seed=int(rng.integers(0, 2**31 - 1)),
        stride=float(rng.uniform(0.6, 0.9)),
        cadence=float(rng.uniform(1.55, 2.1)),
        arm_swing=float(rng.uniform(0.15, 0.6)),
        lean=float(rng.uniform(-0.02, 0.15)),
        bounce=float(rng.uniform(0.6, 1.4)),
        knee_lift=float(rng.uniform(0.15, 0.5)),
        elbow_bend=float(rng.uniform(0.1, 0.6)),
    )
