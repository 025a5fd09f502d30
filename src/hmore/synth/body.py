"""Articulated bodies made of rigid parts (ellipsoids and boxes), one set per identity and clothing condition.

Every part hangs on a *frame*: a bone (origin at the parent joint, local y along the bone) or a body frame (pelvis,
chest, head, feet). A part's shape is fixed in its frame, so between frames t and t+1 each part moves rigidly and a
surface point keeps its part-local coordinates: this is what makes the ground-truth flow exact.

Frames (all right-handed, columns of ``rot`` are the local axes in world coordinates):

* ``pelvis``: origin root, y root -> belly, x towards the left hip, z forward.
* ``chest``: origin belly, y belly -> neck, x towards the left shoulder, z forward.
* ``head``: origin neck, y neck -> head, z towards the nose, x = y x z (the head's left).
* ``foot_l`` / ``foot_r``: origin ankle, y world up, z the pelvis' horizontal forward.
* ``bone:<parent>-<child>``: origin the parent joint, y along the bone; x and z are carried from frame to frame by
  parallel transport *inside the chest (arms) or pelvis (legs) frame*, so limbs neither spin about their axis nor
  lag behind when the body turns.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hmore.errors import UsageError
from hmore.synth.identity import Identity

CONDITIONS = ("normal", "bag", "coat")

# Texture pattern codes shared with hmore.synth.raster.
PATTERN_CODES = {"plain": 0, "stripes": 1, "checks": 2, "dots": 3, "noise": 4, "head": 5}
KIND_CODES = {"ellipsoid": 0, "box": 1}

# H36M-17 indices
ROOT, RHIP, RKNEE, RANKLE, LHIP, LKNEE, LANKLE, BELLY, NECK, NOSE, HEAD = range(11)
LSHO, LELB, LWRI, RSHO, RELB, RWRI = range(11, 17)

_ARM_BONES = ((LSHO, LELB), (LELB, LWRI), (RSHO, RELB), (RELB, RWRI))
_LEG_BONES = ((LHIP, LKNEE), (LKNEE, LANKLE), (RHIP, RKNEE), (RKNEE, RANKLE))


@dataclass(frozen=True)
class Material:
    """Surface appearance, a function of part-local coordinates only.

    Attributes:
        pattern: one of :data:`PATTERN_CODES`.
        colour: main RGB colour (0-255).
        colour2: second colour (stripes, checks, dots, noise; hair for ``head``).
        scale: pattern period in metres.
        seed: noise seed.
    """

    pattern: str
    colour: tuple[int, int, int]
    colour2: tuple[int, int, int]
    scale: float = 0.08
    seed: int = 0


@dataclass(frozen=True)
class PartSpec:
    """One rigid part of a body.

    Attributes:
        name: part name (``"head"``, ``"l_upper_arm"`` ...).
        frame: the frame it hangs on (see the module docstring).
        kind: ``"ellipsoid"`` or ``"box"``.
        half: (3,) radii or half extents along the part's local x, y, z (metres).
        offset: (3,) centre in the frame's coordinates (metres).
        material: its :class:`Material`.
    """

    name: str
    frame: str
    kind: str
    half: tuple[float, float, float]
    offset: tuple[float, float, float]
    material: Material


@dataclass(frozen=True)
class Body:
    """The parts of one person in one clothing condition."""

    identity: Identity
    condition: str
    parts: tuple[PartSpec, ...]

    @property
    def num_parts(self) -> int:
        return len(self.parts)


def _shift(c: tuple[int, int, int], k: float) -> tuple[int, int, int]:
    return tuple(int(np.clip(round(v * k), 0, 255)) for v in c)  # type: ignore[return-value]


def _mat(pattern: str, colour: tuple[int, int, int], seed: int, scale: float) -> Material:
    """A material whose second colour is a darker or lighter shade (or a contrasting one for checks/stripes)."""
    c2 = _shift(colour, 0.45) if sum(colour) > 300 else _shift(tuple(min(255, v + 90) for v in colour), 1.0)
    return Material(pattern=pattern, colour=colour, colour2=c2, scale=scale, seed=seed)


def build_body(identity: Identity, condition: str, bone_length: dict[tuple[int, int], float]) -> Body:
    """The rigid parts of ``identity`` wearing ``condition``.

    Args:
        identity: the person.
        condition: one of :data:`CONDITIONS`.
        bone_length: metres per (parent, child) H36M bone, as measured on the motion (they are constant).

    Returns:
        A :class:`Body`.
    """
    if condition not in CONDITIONS:
        raise UsageError(f"unknown condition {condition!r}; known: {', '.join(CONDITIONS)}")
    s = identity.height / 1.72
    th = identity.thickness * s
    gi = identity.girth * s
    seg = identity.segment_lengths()
    rng = np.random.default_rng([identity.texture_seed, CONDITIONS.index(condition), 0xB0D])
    tseed = identity.texture_seed
    top = _mat(identity.top_pattern, identity.top, tseed + 1, float(rng.uniform(0.08, 0.15)) * s)
    bottom = _mat(identity.bottom_pattern, identity.bottom, tseed + 2, float(rng.uniform(0.08, 0.15)) * s)
    skin = Material(pattern="noise", colour=identity.skin, colour2=_shift(identity.skin, 0.8), scale=0.05, seed=tseed)
    head = Material(pattern="head", colour=identity.skin, colour2=identity.hair, scale=0.05, seed=tseed + 3)
    shoes = Material(pattern="noise", colour=identity.shoes, colour2=_shift(identity.shoes, 1.8), scale=0.05,
                     seed=tseed + 4)
    coat = condition == "coat"
    if coat:
        coat_colour = tuple(int(v) for v in rng.integers(20, 200, size=3))
        top = _mat(str(rng.choice(("plain", "noise", "checks"))), coat_colour, tseed + 5,  # type: ignore[arg-type]
                   float(rng.uniform(0.08, 0.15)) * s)
    k_torso = 1.18 if coat else 1.0
    k_thigh = 1.3 if coat else 1.0

    def bone(a: int, b: int) -> float:
        return float(bone_length[(a, b)])

    parts: list[PartSpec] = []
    add = parts.append
    # head and neck
    head_len = bone(NECK, NOSE) + bone(NOSE, HEAD)  # not a straight line, close enough for a size
    add(PartSpec("head", "head", "ellipsoid", (0.075 * s, 0.108 * s, 0.092 * s),
                 (0.0, 0.62 * head_len, 0.0), head))
    add(PartSpec("neck", "head", "ellipsoid", (0.045 * th, 0.07 * s, 0.045 * th), (0.0, 0.12 * head_len, -0.01 * s),
                 skin))
    # trunk
    chest_len = bone(BELLY, NECK)
    add(PartSpec("chest", "chest", "ellipsoid",
                 (k_torso * (seg["shoulder_half"] * 0.9 + 0.02 * gi), 0.62 * chest_len, k_torso * 0.105 * gi),
                 (0.0, 0.5 * chest_len, 0.0), top))
    pelvis_len = bone(ROOT, BELLY)
    add(PartSpec("belly", "pelvis", "ellipsoid",
                 (k_torso * (seg["hip_half"] * 1.45 + 0.02 * gi), 0.62 * pelvis_len, k_torso * 0.1 * gi),
                 (0.0, 0.55 * pelvis_len, 0.0), top))
    add(PartSpec("hips", "pelvis", "ellipsoid", (seg["hip_half"] * 1.75 + 0.02 * gi, 0.095 * s, 0.1 * gi),
                 (0.0, -0.01 * s, -0.01 * s), bottom))
    # limbs
    for side, (sho, elb, wri) in (("l", (LSHO, LELB, LWRI)), ("r", (RSHO, RELB, RWRI))):
        ua, fa = bone(sho, elb), bone(elb, wri)
        add(PartSpec(f"{side}_upper_arm", f"bone:{sho}-{elb}", "ellipsoid", (0.046 * th, 0.6 * ua, 0.046 * th),
                     (0.0, 0.5 * ua, 0.0), top))
        add(PartSpec(f"{side}_forearm", f"bone:{elb}-{wri}", "ellipsoid", (0.038 * th, 0.58 * fa, 0.038 * th),
                     (0.0, 0.5 * fa, 0.0), top if coat else skin))
        add(PartSpec(f"{side}_hand", f"bone:{elb}-{wri}", "ellipsoid", (0.022 * th, 0.055 * s, 0.04 * th),
                     (0.0, fa + 0.045 * s, 0.0), skin))
    for side, (hip, kne, ank) in (("l", (LHIP, LKNEE, LANKLE)), ("r", (RHIP, RKNEE, RANKLE))):
        tl, sl = bone(hip, kne), bone(kne, ank)
        add(PartSpec(f"{side}_thigh", f"bone:{hip}-{kne}", "ellipsoid",
                     (k_thigh * 0.072 * th, 0.6 * tl, k_thigh * 0.075 * th), (0.0, 0.5 * tl, 0.0),
                     top if coat else bottom))
        add(PartSpec(f"{side}_shin", f"bone:{kne}-{ank}", "ellipsoid", (0.052 * th, 0.58 * sl, 0.055 * th),
                     (0.0, 0.5 * sl, 0.0), bottom))
        add(PartSpec(f"{side}_foot", f"foot_{side}", "ellipsoid", (0.045 * s, 0.035 * s, 0.12 * s),
                     (0.0, -0.035 * s, 0.06 * s), shoes))
    if coat:  # the hem: a wide shell over the upper legs, hanging from the pelvis
        add(PartSpec("coat_hem", "pelvis", "ellipsoid", (seg["hip_half"] * 1.9 + 0.03 * gi, 0.24 * s, 0.125 * gi),
                     (0.0, -0.16 * s, -0.01 * s), top))
    if condition == "bag":
        bag_colour = tuple(int(v) for v in rng.integers(20, 220, size=3))
        bag = _mat(str(rng.choice(("plain", "stripes", "noise"))), bag_colour, tseed + 6, 0.05)  # type: ignore[arg-type]
        side = str(rng.choice(("l", "r")))
        if rng.uniform() < 0.5:  # hand-carried: hangs below the hand, moves with the forearm
            elb, wri = (LELB, LWRI) if side == "l" else (RELB, RWRI)
            fa = bone(elb, wri)
            add(PartSpec("bag", f"bone:{elb}-{wri}", "box", (0.05 * s, 0.13 * s, 0.16 * s),
                         (0.0, fa + 0.2 * s, 0.0), bag))
        else:  # shoulder bag: rides on the side of the trunk, moves with the chest
            sign = 1.0 if side == "l" else -1.0
            add(PartSpec("bag", "chest", "box", (0.06 * s, 0.14 * s, 0.15 * s),
                         (sign * (seg["shoulder_half"] + 0.06 * gi), -0.05 * chest_len, -0.02 * s), bag))
    return Body(identity=identity, condition=condition, parts=tuple(parts))


def measure_bones(joints: np.ndarray) -> dict[tuple[int, int], float]:
    """Bone lengths (metres) of a (T, 17, 3) H36M motion, from its first frame."""
    from hmore.skeleton import H36M17

    j0 = np.asarray(joints)[0]
    return {(a, b): float(np.linalg.norm(j0[b] - j0[a])) for a, b in H36M17.bones}


# ---- frames ----------------------------------------------------------------------------------------------------


def _unit(v: np.ndarray) -> np.ndarray:
    n = np.linalg.norm(v, axis=-1, keepdims=True)
    return v / np.maximum(n, 1e-12)


def _frame_from_yx(y: np.ndarray, x_hint: np.ndarray, z_fallback: np.ndarray | None = None) -> np.ndarray:
    """(..., 3, 3) rotations with columns x, y, z: y given, x the hint made orthogonal to y, z = x cross y."""
    y = _unit(y)
    x = x_hint - np.sum(x_hint * y, axis=-1, keepdims=True) * y
    if z_fallback is not None:  # x_hint parallel to y: take x from the fallback
        bad = np.linalg.norm(x, axis=-1) < 1e-6
        if bad.any():
            alt = np.cross(y[bad], z_fallback[bad])
            x[bad] = alt
    x = _unit(x)
    z = np.cross(x, y)
    return np.stack([x, y, z], axis=-1)


def _min_rotation(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(N, 3, 3) smallest rotations taking unit vectors a to b (N, 3) (never antiparallel between frames)."""
    v = np.cross(a, b)
    c = np.sum(a * b, axis=-1)
    vx = np.zeros(a.shape[:-1] + (3, 3))
    vx[..., 0, 1], vx[..., 0, 2] = -v[..., 2], v[..., 1]
    vx[..., 1, 0], vx[..., 1, 2] = v[..., 2], -v[..., 0]
    vx[..., 2, 0], vx[..., 2, 1] = -v[..., 1], v[..., 0]
    k = 1.0 / np.maximum(1.0 + c, 1e-9)
    out = np.eye(3) + vx + (vx @ vx) * k[..., None, None]
    flip = c < -1.0 + 1e-9  # a half turn (only at absurdly low frame rates): turn about any perpendicular axis
    if flip.any():
        axis = np.cross(a[flip], np.array([1.0, 0.0, 0.0]))
        weak = np.linalg.norm(axis, axis=-1) < 1e-3
        axis[weak] = np.cross(a[flip][weak], np.array([0.0, 1.0, 0.0]))
        axis = _unit(axis)
        out[flip] = 2.0 * axis[..., :, None] * axis[..., None, :] - np.eye(3)
    return out


def body_frames(joints: np.ndarray, face: np.ndarray) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Every frame a part can hang on, over time.

    Args:
        joints: (T, 17, 3) H36M-17 world joints.
        face: (T, 3) facing directions (used when the hip line is degenerate).

    Returns:
        name -> (rot (T, 3, 3) with the local axes as columns, origin (T, 3)).
    """
    j = np.asarray(joints, dtype=np.float64)  # (T, 17, 3)
    face = _unit(np.asarray(face, dtype=np.float64))
    up = np.broadcast_to(np.array([0.0, 1.0, 0.0]), face.shape)
    frames: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    face_left = np.cross(up, face)  # left = up x forward (forward +z, up +y -> +x)
    pelvis = _frame_from_yx(j[:, BELLY] - j[:, ROOT], j[:, LHIP] - j[:, RHIP] + 1e-3 * face_left, face)
    chest = _frame_from_yx(j[:, NECK] - j[:, BELLY], j[:, LSHO] - j[:, RSHO] + 1e-3 * face_left, face)
    frames["pelvis"] = (pelvis, j[:, ROOT])
    frames["chest"] = (chest, j[:, BELLY])
    y_head = _unit(j[:, HEAD] - j[:, NECK])
    z_head = j[:, NOSE] - j[:, NECK]
    z_head = _unit(z_head - np.sum(z_head * y_head, axis=-1, keepdims=True) * y_head)
    frames["head"] = (np.stack([np.cross(y_head, z_head), y_head, z_head], axis=-1), j[:, NECK])
    fwd = pelvis[:, :, 2].copy()
    fwd[:, 1] = 0.0
    small = np.linalg.norm(fwd, axis=-1) < 1e-3
    fwd[small] = face[small]
    fwd = _unit(fwd)
    foot_rot = np.stack([np.cross(up, fwd), up, fwd], axis=-1)
    frames["foot_l"] = (foot_rot, j[:, LANKLE])
    frames["foot_r"] = (foot_rot, j[:, RANKLE])
    for bones, ref in ((_ARM_BONES, chest), (_LEG_BONES, pelvis)):
        a = np.array([b[0] for b in bones])
        b = np.array([b[1] for b in bones])
        # bone directions in the reference frame: (T, B, 3)
        d_world = _unit(j[:, b] - j[:, a])
        d_ref = np.einsum("tij,tbi->tbj", ref, d_world)
        rots = np.empty(d_ref.shape + (3,))  # (T, B, 3, 3) in the reference frame
        x_hint = np.broadcast_to(np.array([1.0, 0.0, 0.0]), d_ref[0].shape)
        z_fb = np.broadcast_to(np.array([0.0, 0.0, 1.0]), d_ref[0].shape)
        rots[0] = _frame_from_yx(d_ref[0], x_hint.copy(), np.array(z_fb))
        for t in range(1, d_ref.shape[0]):  # parallel transport
            rots[t] = _min_rotation(d_ref[t - 1], d_ref[t]) @ rots[t - 1]
            rots[t] = _reorthonormalise(rots[t], d_ref[t])
        world = np.einsum("tij,tbjk->tbik", ref, rots)
        for k, (pa, ch) in enumerate(bones):
            frames[f"bone:{pa}-{ch}"] = (world[:, k], j[:, pa])
    return frames


def _reorthonormalise(r: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Keep y exactly on the bone and the frame orthonormal (numerical drift over long clips)."""
    return _frame_from_yx(y, r[..., :, 0].copy(), r[..., :, 2].copy())


def part_poses(body: Body, frames: dict[str, tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    """Per-frame pose of each part of ``body``.

    Returns:
        rot (T, N, 3, 3) part-local -> world rotations (columns are the local axes), centre (T, N, 3) world
        position of each part's centre (the origin of its local coordinates).
    """
    rots, centres = [], []
    for p in body.parts:
        r, o = frames[p.frame]
        rots.append(r)
        centres.append(o + r @ np.asarray(p.offset))
    return np.stack(rots, axis=1), np.stack(centres, axis=1)


def head_points(frames: dict[str, tuple[np.ndarray, np.ndarray]], body: Body) -> dict[str, np.ndarray]:
    """COCO eyes and ears from the head part: name -> (T, 3) world points on (or just inside) the head surface."""
    head = next(p for p in body.parts if p.name == "head")
    r, o = frames["head"]
    c = np.asarray(head.offset)
    rx, ry, rz = head.half
    local = {
        "left_eye": c + (0.38 * rx, 0.12 * ry, 0.9 * rz),
        "right_eye": c + (-0.38 * rx, 0.12 * ry, 0.9 * rz),
        "left_ear": c + (0.97 * rx, 0.0, -0.05 * rz),
        "right_ear": c + (-0.97 * rx, 0.0, -0.05 * rz),
    }
    return {k: o + r @ v for k, v in local.items()}
