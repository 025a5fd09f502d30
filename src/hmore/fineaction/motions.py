"""One movement family in 12 variants: arm raises that differ only in limb, direction, speed and order.

Every variant is a walk or a stand of the generator (``hmore.synth.motion.generate_motion``) whose gesturing arm(s)
are replaced: the upper arm turns from hanging (theta = 0) towards the front (``forward``, up to 110-150 degrees) or
the side (``side``, 75-100 degrees) and back, theta(t) = theta_max sin^2(pi (t - t0) / P), the forearm bent a little
further. ``slow`` raises once per clip, ``fast`` twice; the ``then`` variants raise one arm and then the other, once
each. Bone lengths stay those of the base motion (the renderer's parts are rigid). The arm that does not gesture keeps
the base motion (swinging while walking), so a single frame rarely tells the class: the motion does.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hmore.synth.motion_types import Motion

_ARM_JOINTS = {"left": (11, 12, 13), "right": (14, 15, 16)}  # H36M-17 shoulder, elbow, wrist
_SIDE_SIGN = {"left": 1.0, "right": -1.0}  # the person's left is +x in their own frame


@dataclass(frozen=True)
class Gesture:
    """A class of the family: ``arms`` raised in this order, ``direction`` (forward/side), ``speed`` (slow/fast)."""

    name: str
    arms: tuple[str, ...]
    direction: str
    speed: str


def _family() -> tuple[Gesture, ...]:
    out = []
    for arm in ("left", "right"):
        for direction in ("forward", "side"):
            for speed in ("slow", "fast"):
                out.append(Gesture(f"{arm}_{direction}_{speed}", (arm,), direction, speed))
    for direction in ("forward", "side"):
        for first, second in (("left", "right"), ("right", "left")):
            out.append(Gesture(f"{first}_then_{second}_{direction}", (first, second), direction, "fast"))
    return tuple(out)


GESTURES: tuple[Gesture, ...] = _family()
CLASSES: tuple[str, ...] = tuple(g.name for g in GESTURES)


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.maximum(np.linalg.norm(v, axis=-1, keepdims=True), 1e-9)


def gesture_angles(gesture: Gesture, *, num_frames: int, fps: float, rng: np.random.Generator
                   ) -> dict[str, np.ndarray]:
    """theta(t) (T,) in radians for each gesturing arm (see the module docstring)."""
    t = np.arange(num_frames) / float(fps)
    dur = num_frames / float(fps)
    top = rng.uniform(1.9, 2.6) if gesture.direction == "forward" else rng.uniform(1.3, 1.75)
    out: dict[str, np.ndarray] = {}
    if len(gesture.arms) == 1:
        period = dur * rng.uniform(0.9, 1.1) / (1.0 if gesture.speed == "slow" else 2.0)
        t0 = rng.uniform(-0.15, 0.15) * period
        out[gesture.arms[0]] = top * np.sin(np.pi * (t - t0) / period) ** 2
        return out
    period = dur * rng.uniform(0.85, 1.0) / 2.0
    t0 = rng.uniform(0.0, 0.1) * period
    for k, arm in enumerate(gesture.arms):  # one raise each, one after the other
        u = (t - t0 - k * period) / period
        out[arm] = np.where((u >= 0) & (u <= 1), top * np.sin(np.pi * np.clip(u, 0, 1)) ** 2, 0.0)
    return out


def overlay_gesture(base: Motion, gesture: Gesture, *, rng: np.random.Generator) -> Motion:
    """``base`` with the gesture's arm(s) replaced (see the module docstring); named after the gesture."""
    j = np.array(base.joints, dtype=np.float64)  # (T, 17, 3)
    up = _unit(j[:, 8] - j[:, 7])  # belly -> neck
    left = j[:, 11] - j[:, 14]  # right -> left shoulder
    left = _unit(left - np.sum(left * up, axis=-1, keepdims=True) * up)
    fwd = np.cross(left, up)  # the chest's forward direction
    angles = gesture_angles(gesture, num_frames=base.num_frames, fps=base.fps, rng=rng)
    bend = rng.uniform(0.1, 0.45)
    for arm, theta in angles.items():
        sh, el, wr = _ARM_JOINTS[arm]
        sign = _SIDE_SIGN[arm]
        upper = float(np.linalg.norm(j[0, el] - j[0, sh]))
        fore = float(np.linalg.norm(j[0, wr] - j[0, el]))
        th = theta[:, None]
        out = sign * left  # outwards, away from the trunk
        if gesture.direction == "forward":
            d_u = _unit(-up * np.cos(th) + fwd * np.sin(th) + 0.12 * out)
            d_f = _unit(-up * np.cos(th + bend) + fwd * np.sin(th + bend) + 0.12 * out)
        else:
            d_u = _unit(-up * np.cos(th + 0.1) + out * np.sin(th + 0.1))
            d_f = _unit(np.cos(bend) * d_u + np.sin(bend) * fwd)
        j[:, el] = j[:, sh] + upper * d_u
        j[:, wr] = j[:, el] + fore * d_f
    return Motion(joints=j, fps=base.fps, name=gesture.name, face=base.face, extra=dict(base.extra))


def _mirror_name(name: str) -> str:
    return name.replace("left", "\0").replace("right", "left").replace("\0", "right")


# The class a left-right mirror image shows: a mirrored person raising the left arm raises the right one, and the
# order of a ``then`` variant swaps its arms too (``left_then_right_side`` <-> ``right_then_left_side``). What the
# ``data.flip`` augmentation relabels a horizontally flipped clip with.
MIRRORED: tuple[int, ...] = tuple(CLASSES.index(_mirror_name(c)) for c in CLASSES)
