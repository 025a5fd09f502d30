"""Retargeting H36M-17 joint motion (generated, mocap, Human3.6M) onto a rigged body.

The source joints are first given the body's own bone lengths (:func:`relength`: every H36M bone keeps its direction
and takes the body's length, the root trajectory is kept), which is the motion the body can perform exactly. Then
each bone's rotation is solved in closed form (:func:`retarget_h36m`):

* pelvis, chest and head: the rotations between hmore's body frames (as :func:`hmore.synth.body.body_frames`: hip line
  and root -> belly, shoulder line and belly -> neck, neck -> head and nose) of the target and of the rest pose; the
  spine bones take rotations interpolated from the pelvis to the chest, then the whole spine is turned about its
  base so that the neck lands on its target; the neck bones interpolate from the chest to the head.
* clavicles: turned so that the shoulder joints land on their targets.
* arms and legs: two-bone chains whose bones take the target directions exactly; the twist comes from the hinge
  axis (elbow and knee bend plane), which falls back smoothly, as the limb straightens, to an axis built from the
  body's forward direction.
* feet stay flat on the ground, pointing where the knee points; hands keep their rest angle to the forearm.

So limb joints, hips and root are exact, and the remaining error is where the rig's shape differs from the target's
(belly, nose and head top, a few millimetres at the neck and shoulders): :func:`retarget_error` measures it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.spatial.transform import Rotation

from hmore.skeleton import H36M17
from hmore.synth.body import _frame_from_yx, _min_rotation, _unit
from hmore.synth.rig import JointRegressor, RigPose, SkinnedBody, fill_rotations, forward_kinematics, regress

# H36M-17 indices
ROOT, RHIP, RKNEE, RANKLE, LHIP, LKNEE, LANKLE, BELLY, NECK, NOSE, HEAD = range(11)
LSHO, LELB, LWRI, RSHO, RELB, RWRI = range(11, 17)
H36M_PARENTS = H36M17.parents
_UP = np.array([0.0, 1.0, 0.0])


@dataclass(frozen=True)
class RigRoles:
    """How the H36M-17 body maps onto a rig's bones (names). Per side, the first entry is the left one.

    Attributes:
        root: the root bone; ``pelvis``: bones rigid with it.
        spine: bones from the pelvis up to the chest (the last one carries the chest, the neck joint and the
            clavicles); ``belly``: the spine bone whose head is the belly joint.
        neck: bones from the chest up to the head; ``head``: the head bone.
        clavicle, upper_arm, forearm, hand, thigh, shin, foot: (left bones, right bones); a segment's bones all take
            the segment's rotation.
    """

    root: str
    pelvis: tuple[str, ...]
    spine: tuple[str, ...]
    belly: str
    neck: tuple[str, ...]
    head: str
    clavicle: tuple[tuple[str, ...], tuple[str, ...]]
    upper_arm: tuple[tuple[str, ...], tuple[str, ...]]
    forearm: tuple[tuple[str, ...], tuple[str, ...]]
    hand: tuple[tuple[str, ...], tuple[str, ...]]
    thigh: tuple[tuple[str, ...], tuple[str, ...]]
    shin: tuple[tuple[str, ...], tuple[str, ...]]
    foot: tuple[tuple[str, ...], tuple[str, ...]]


def relength(joints: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """(T, 17, 3) H36M joints whose bones keep their directions and take ``lengths`` (16,), in
    :data:`hmore.skeleton.H36M17` bone order; the root trajectory is kept."""
    j = np.asarray(joints, dtype=np.float64)
    out = np.empty_like(j)
    out[:, ROOT] = j[:, ROOT]
    for k, (a, b) in enumerate(H36M17.bones):  # parents come first in this order
        out[:, b] = out[:, a] + lengths[k] * _unit(j[:, b] - j[:, a])
    return out


def rest_joints(body: SkinnedBody, reg: JointRegressor) -> np.ndarray:
    """(17, 3) H36M joints of the body's rest pose."""
    rest = RigPose(rot=np.broadcast_to(np.eye(3), (1, body.num_bones, 3, 3)).copy(), root=body.heads[:1].copy())
    return regress(body, reg, forward_kinematics(body, rest))[0]


def _slerp(a: np.ndarray, b: np.ndarray, w: float) -> np.ndarray:
    """(T, 3, 3) rotations a (b a^-1)^w ... i.e. from a (w = 0) to b (w = 1) along the shortest arc."""
    rel = Rotation.from_matrix(b @ np.swapaxes(a, -1, -2)).as_rotvec()
    return Rotation.from_rotvec(w * rel).as_matrix() @ a


def _hinge(d1: np.ndarray, d2: np.ndarray, forward: np.ndarray, lateral: np.ndarray, arm: bool) -> np.ndarray:
    """(T, 3) unit hinge axes of two-bone chains with unit directions d1, d2 (T, 3).

    Bent chains use d1 x d2; near-straight ones blend (smoothly, by the bend) towards a fallback perpendicular to
    d1: d1 x forward for arms (elbows flex forward), forward x d1 for legs (knees flex backward), nudged by the
    body's ``lateral`` axis (the hinge of the chain hanging straight down) where d1 is along ``forward``.
    """
    bent = np.cross(d1, d2)
    s = np.linalg.norm(bent, axis=-1, keepdims=True)
    fb = np.cross(d1, forward) if arm else np.cross(forward, d1)
    fb = fb + 0.1 * lateral
    fb = _unit(fb - np.sum(fb * d1, axis=-1, keepdims=True) * d1)
    x = np.clip(s / np.sin(np.deg2rad(20.0)), 0.0, 1.0)
    w = x * x * (3.0 - 2.0 * x)
    axis = w * bent / np.maximum(s, 1e-12) + (1.0 - w) * fb
    weak = np.linalg.norm(axis, axis=-1) < 1e-6
    axis[weak] = fb[weak]
    return _unit(axis)


def _reach(g: np.ndarray, chain: list[int], heads: np.ndarray, base: np.ndarray, want: np.ndarray,
           carry: list[int] | None = None) -> None:
    """Put the end of a bone chain on ``want`` (T, 3), in place on ``g`` (T, J, 3, 3).

    ``chain`` is a chain of bones (each the parent of the next) with rest heads ``heads`` (n + 1, 3), the last row
    the end point's, posed from ``base`` (T, 3). The last bone bends about its head (in the plane it already makes
    with the rest of the chain) until the end is at the target's distance from the base (or as close as it can get),
    then the whole chain turns about the base by the smallest rotation that points it at the target. Bones of
    ``carry`` take the rotations of the last bone.
    """
    moved_last = [chain[-1], *(carry or [])]
    seg = np.diff(heads, axis=0)  # (n, 3) rest segments
    vec = np.einsum("tnij,nj->tni", g[:, chain], seg)  # (T, n, 3) posed segments
    if len(chain) > 1:
        a = vec[:, :-1].sum(axis=1)  # base -> the last bone's head
        b = vec[:, -1]
        la, lb = np.linalg.norm(a, axis=-1), np.linalg.norm(b, axis=-1)
        d = np.clip(np.linalg.norm(want - base, axis=-1), np.abs(la - lb) + 1e-9, la + lb - 1e-9)
        cos_want = np.clip((d * d - la * la - lb * lb) / (2 * la * lb), -1.0, 1.0)  # angle between a and b
        cos_now = np.clip(np.sum(a * b, axis=-1) / (la * lb), -1.0, 1.0)
        axis = np.cross(a, b)
        weak = np.linalg.norm(axis, axis=-1) < 1e-9
        if weak.any():  # a straight chain: bend about any perpendicular
            alt = np.cross(a[weak], np.array([1.0, 0.0, 0.0]))
            alt[np.linalg.norm(alt, axis=-1) < 1e-9] = (0.0, 0.0, 1.0)
            axis[weak] = alt
        angle = np.arccos(cos_want) - np.arccos(cos_now)
        bend = Rotation.from_rotvec(_unit(axis) * angle[:, None]).as_matrix()
        g[:, moved_last] = bend[:, None] @ g[:, moved_last]
        vec[:, -1] = np.einsum("tij,tj->ti", bend, b)
    end = base + vec.sum(axis=1)
    turn = _min_rotation(_unit(end - base), _unit(want - base))
    moved = list(chain) + list(carry or [])
    g[:, moved] = turn[:, None] @ g[:, moved]


def _frame(y: np.ndarray, x_hint: np.ndarray) -> np.ndarray:
    """(T, 3, 3) frames (columns x, y, z) with y exact and x from the hint."""
    return _frame_from_yx(y, x_hint.copy())


def _trunk_frames(j: np.ndarray) -> dict[str, np.ndarray]:
    """(T, 3, 3) pelvis, chest and head frames of H36M joints (T, 17, 3) (columns x, y, z): pelvis from the hip line
    (exact) and root -> belly, chest from belly -> neck (exact) and the shoulder line, head from the neck, nose and
    head top."""
    x = _unit(j[:, LHIP] - j[:, RHIP])  # the hip line is exact (the hips are rigid with the pelvis)
    up = j[:, BELLY] - j[:, ROOT]
    y = _unit(up - np.sum(up * x, axis=-1, keepdims=True) * x)
    pelvis = np.stack([x, y, np.cross(x, y)], axis=-1)
    chest = _frame_from_yx(j[:, NECK] - j[:, BELLY], j[:, LSHO] - j[:, RSHO])
    # head: the bisector of neck -> nose and neck -> head top, so that a face whose angle there differs from the
    # rig's (definitions of the "nose" vary between sources) shares the error between the two; the shoulder line
    # steadies its sideways axis when the three points are nearly in line (H36M's joint 9 often is)
    up, fwd = _unit(j[:, HEAD] - j[:, NECK]), _unit(j[:, NOSE] - j[:, NECK])
    head = _frame_from_yx(up + fwd, 2.0 * np.cross(up, fwd) + 0.1 * _unit(j[:, LSHO] - j[:, RSHO]))
    return {"pelvis": pelvis, "chest": chest, "head": head}


def retarget_h36m(body: SkinnedBody, roles: RigRoles, reg: JointRegressor, joints: np.ndarray,
                  lengths_kept: bool = False, rest: np.ndarray | None = None) -> RigPose:
    """Pose ``body`` so that its H36M joints (``reg``) follow ``joints``.

    Args:
        body: the rigged body.
        roles: how H36M maps onto its bones.
        reg: the body's H36M-17 joint regressor.
        joints: (T, 17, 3) world joints (any bone lengths: they are first given the body's, :func:`relength`).
        lengths_kept: the joints already have the body's bone lengths (skip :func:`relength`).
        rest: the body's rest H36M joints (17, 3) when already known (:func:`rest_joints`).

    Returns:
        The :class:`RigPose`.
    """
    j = np.asarray(joints, dtype=np.float64)
    if j.ndim != 3 or j.shape[1:] != (17, 3):
        raise ValueError(f"retarget_h36m: joints must be (T, 17, 3), got {j.shape}")
    rest = rest_joints(body, reg) if rest is None else rest
    from hmore.synth.rig import h36m_bone_lengths

    tgt = j if lengths_kept else relength(j, h36m_bone_lengths(rest))
    T, J = tgt.shape[0], body.num_bones
    idx = body.bone
    g = np.broadcast_to(np.eye(3), (T, J, 3, 3)).copy()
    driven = np.zeros(J, dtype=bool)

    def put(names: tuple[str, ...] | list[str], rot: np.ndarray) -> None:
        for n in names:
            g[:, idx(n)] = rot
            driven[idx(n)] = True

    src = _trunk_frames(tgt)
    ref = {k: v[0] for k, v in _trunk_frames(rest[None]).items()}
    g_root = src["pelvis"] @ ref["pelvis"].T
    put([roles.root, *roles.pelvis], g_root)
    root_pos = tgt[:, ROOT] - g_root @ (rest[ROOT] - body.heads[0])

    def fk() -> np.ndarray:
        return forward_kinematics(body, RigPose(rot=fill_rotations(body.parents, g.copy(), driven), root=root_pos))

    def posed(transforms: np.ndarray, point_rest: np.ndarray, bone: str) -> np.ndarray:
        a = transforms[:, idx(bone)]
        return a[..., :3] @ point_rest + a[..., 3]

    # spine: interpolate pelvis -> chest, then bend the lower spine so the belly lands on its target and the upper
    # spine so the neck does
    g_chest = src["chest"] @ ref["chest"].T
    n = len(roles.spine)
    for k, b in enumerate(roles.spine):
        put([b], _slerp(g_root, g_chest, (k + 1) / n))
    spine = [idx(b) for b in roles.spine]
    kb = roles.spine.index(roles.belly)
    if kb > 0:
        tr = fk()
        base = posed(tr, body.heads[spine[0]], roles.spine[0])
        _reach(g, spine[:kb], body.heads[spine[:kb + 1]], base, tgt[:, BELLY], carry=spine[kb:])
    tr = fk()
    base = posed(tr, body.heads[spine[kb]], roles.spine[kb])
    _reach(g, spine[kb:], np.concatenate([body.heads[spine[kb:]], rest[NECK][None]]), base, tgt[:, NECK])
    g_chest = g[:, spine[-1]]

    # neck and head: interpolate chest -> head, then turn the neck about its base so that the head's pivot lands
    # where turning the whole head rigidly about the neck joint would put it
    g_head = src["head"] @ ref["head"].T
    n = len(roles.neck)
    for k, b in enumerate(roles.neck):
        put([b], _slerp(g_chest, g_head, (k + 1) / (n + 1)))
    put([roles.head], g_head)
    tr = fk()
    base = posed(tr, body.heads[idx(roles.neck[0])], roles.spine[-1])
    pivot_rest = body.heads[idx(roles.head)]
    pivot_want = tgt[:, NECK] + g_head @ (pivot_rest - rest[NECK])
    fix = _min_rotation(_unit(posed(tr, pivot_rest, roles.neck[-1]) - base), _unit(pivot_want - base))
    for b in roles.neck:
        g[:, idx(b)] = fix @ g[:, idx(b)]
    _reach(g, [idx(b) for b in roles.neck], body.heads[[idx(b) for b in roles.neck] + [idx(roles.head)]], base,
           pivot_want)
    # clavicles: put the shoulders on their targets
    tr = fk()
    for side, sho in ((0, LSHO), (1, RSHO)):
        bones = [idx(b) for b in roles.clavicle[side]]
        put(roles.clavicle[side], g_chest)
        base = posed(tr, body.heads[bones[0]], roles.spine[-1])
        _reach(g, bones, np.concatenate([body.heads[bones], rest[sho][None]]), base, tgt[:, sho])

    # limbs
    chest_fwd, chest_lat = g_chest[..., 2], g_chest[..., 0]  # rest chest axes are the world axes (rest faces +z)
    pelvis_fwd, pelvis_lat = g_root[..., 2], g_root[..., 0]
    z, x = np.array([0.0, 0.0, 1.0]), np.array([1.0, 0.0, 0.0])
    limbs = (
        (True, (LSHO, LELB, LWRI), (RSHO, RELB, RWRI), roles.upper_arm, roles.forearm, chest_fwd, -chest_lat),
        (False, (LHIP, LKNEE, LANKLE), (RHIP, RKNEE, RANKLE), roles.thigh, roles.shin, pelvis_fwd, pelvis_lat),
    )
    for arm, left, right, upper, lower, fwd, lat in limbs:
        for side, (a, b, c) in enumerate((left, right)):
            d1, d2 = _unit(tgt[:, b] - tgt[:, a]), _unit(tgt[:, c] - tgt[:, b])
            u1, u2 = _unit(rest[b] - rest[a])[None], _unit(rest[c] - rest[b])[None]
            hinge = _hinge(d1, d2, fwd, lat, arm)
            hinge_rest = _hinge(u1, u2, z[None], (-x if arm else x)[None], arm)
            g_up = _frame(d1, hinge) @ np.swapaxes(_frame(u1, hinge_rest), -1, -2)
            g_lo = _frame(d2, hinge) @ np.swapaxes(_frame(u2, hinge_rest), -1, -2)
            put(upper[side], g_up)
            put(lower[side], g_lo)
            if arm:
                put(roles.hand[side], g_lo)
            else:  # flat foot, pointing where the knee points (the hinge's horizontal part, turned to forward)
                lat_h = hinge - hinge[:, 1:2] * _UP
                ok = np.linalg.norm(lat_h, axis=-1, keepdims=True) > 1e-3
                foot_fwd = np.where(ok, np.cross(_unit(lat_h), _UP), fwd - fwd[:, 1:2] * _UP)
                foot_fwd = _unit(foot_fwd)
                put(roles.foot[side], np.stack([np.cross(_UP, foot_fwd), np.broadcast_to(_UP, foot_fwd.shape),
                                                foot_fwd], axis=-1))
    return RigPose(rot=fill_rotations(body.parents, g, driven), root=root_pos)


def retarget_error(body: SkinnedBody, reg: JointRegressor, pose: RigPose, joints: np.ndarray) -> np.ndarray:
    """(T, 17) distances (metres) between the posed body's H36M joints and ``joints`` given the body's bone lengths
    (:func:`relength`): how far the retargeted motion is from the motion the body could perform exactly."""
    from hmore.synth.rig import h36m_bone_lengths

    target = relength(np.asarray(joints, dtype=np.float64), h36m_bone_lengths(rest_joints(body, reg)))
    got = regress(body, reg, forward_kinematics(body, pose))
    return np.linalg.norm(got - target, axis=-1)


def rig_groups(roles: RigRoles) -> tuple[tuple[str, ...], ...]:
    """The bone groups that :func:`retarget_h36m` gives one rotation each (24 for Anny): the root with the pelvis,
    each spine and neck bone, the head, then per side (left first) each clavicle bone, the upper arm, the forearm
    with the hand, the thigh, the shin and the foot. A pose is fully given by these rotations and the root
    position; every other bone keeps its rest angle to its parent."""
    groups: list[tuple[str, ...]] = [(roles.root, *roles.pelvis)]
    groups += [(b,) for b in roles.spine] + [(b,) for b in roles.neck] + [(roles.head,)]
    for s in (0, 1):
        groups += [(b,) for b in roles.clavicle[s]]
        groups += [roles.upper_arm[s], roles.forearm[s] + roles.hand[s], roles.thigh[s], roles.shin[s],
                   roles.foot[s]]
    return tuple(groups)


def bone_groups(body: SkinnedBody, groups: tuple[tuple[str, ...], ...]) -> np.ndarray:
    """(J,) the group of every bone: its own, or its nearest grouped ancestor's."""
    out = np.full(body.num_bones, -1, dtype=np.int64)
    for g, names in enumerate(groups):
        for n in names:
            out[body.bone(n)] = g
    if out[0] < 0:
        raise ValueError("bone_groups: the root bone must belong to a group")
    for c in range(1, body.num_bones):
        if out[c] < 0:
            out[c] = out[body.parents[c]]
    return out


def mirror_groups(groups: tuple[tuple[str, ...], ...]) -> np.ndarray:
    """(G,) the index of each group's mirror image (left <-> right; Anny's ``.L`` / ``.R`` suffixes)."""
    def swap(name: str) -> str:
        return name[:-2] + {".L": ".R", ".R": ".L"}[name[-2:]] if name[-2:] in (".L", ".R") else name

    index = {frozenset(g): k for k, g in enumerate(groups)}
    return np.array([index[frozenset(swap(n) for n in g)] for g in groups])
