"""Procedural motions and mocap playback on any body.

Every pose is built by forward kinematics from the identity's rest pose (:meth:`Identity.rest_pose`): each bone is
its rest offset turned by a rotation matrix, and the two-bone chains (legs, arms) are solved by an exact two-bone
inverse kinematics that places the middle joint at exactly the bone lengths. So bone lengths are constant over time
to rounding error, whatever the action.

Actions are built in a *local* frame (the person starts with the pelvis above the origin and faces +z, left = +x,
y up), then turned by ``heading`` about +y and moved to ``start = (x, z)`` on the ground.

Gait model (walk, run): the ankle of the stance foot is planted on the ground (at its rest height) from heel strike
until heel-off, then the foot rolls about its toe; the swing ankle follows a minimum-jerk path with a lift that grows
with ``Identity.knee_lift``. The pelvis moves at the constant speed ``stride * leg * cadence`` (step length times
steps per second), its height follows the reach of the legs (scaled by ``Identity.bounce``) and it sways, yaws and
lists with the steps; arms swing against the legs with ``Identity.arm_swing`` and bend with ``Identity.elbow_bend``;
the trunk leans by ``Identity.lean``. The seed draws the gait phase and small (few per cent) variations.

The other actions (:data:`ACTIONS`) repeat with a period of about 1-6 s (jump, squat, kick, punch, bend, turn,
sit_down) or start from standing and keep going (wave_one, wave_both, clap); all are functions of absolute time, so a
shorter clip is exactly the start of a longer one with the same arguments. ``sit_down`` sits on an implied seat at
knee height (nothing is rendered under the person).
"""

from __future__ import annotations

import logging
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hmore.errors import UsageError
from hmore.io.bvh import Bvh, bvh_stem, read_bvh, to_h36m
from hmore.skeleton import H36M17
from hmore.synth.identity import Identity
from hmore.synth.motion_types import Motion

log = logging.getLogger(__name__)

# H36M-17 parent of every joint (root has none).
PARENTS: tuple[int, ...] = H36M17.parents
# Side index 0 = left (+x), 1 = right (-x); joint indices (hip, knee, ankle) and (shoulder, elbow, wrist) per side.
_SIGN = (1.0, -1.0)
_LEG = ((4, 5, 6), (1, 2, 3))
_ARM = ((11, 12, 13), (14, 15, 16))


# ---- rotations (batched over any leading axes) -------------------------------------------------------------------
def _rot(axis: int, angle: np.ndarray | float) -> np.ndarray:
    """Rotation matrices ``(..., 3, 3)`` about world axis 0 (x), 1 (y) or 2 (z) by ``angle`` radians (right hand)."""
    a = np.asarray(angle, dtype=np.float64)
    c, s = np.cos(a), np.sin(a)
    r = np.zeros(a.shape + (3, 3))
    i, j = [(1, 2), (2, 0), (0, 1)][axis]
    r[..., axis, axis] = 1.0
    r[..., i, i] = c
    r[..., j, j] = c
    r[..., i, j] = -s
    r[..., j, i] = s
    return r


def rot_x(angle: np.ndarray | float) -> np.ndarray:
    return _rot(0, angle)


def rot_y(angle: np.ndarray | float) -> np.ndarray:
    return _rot(1, angle)


def rot_z(angle: np.ndarray | float) -> np.ndarray:
    return _rot(2, angle)


def _apply(r: np.ndarray, v: np.ndarray) -> np.ndarray:
    """``r @ v`` for rotations ``(..., 3, 3)`` and vectors ``(..., 3)`` (broadcast)."""
    return np.einsum("...ij,...j->...i", r, v)


def _unit(v: np.ndarray) -> np.ndarray:
    n = np.linalg.norm(v, axis=-1, keepdims=True)
    return v / np.maximum(n, 1e-12)


def _smoothstep(x: np.ndarray | float) -> np.ndarray:
    """Minimum-jerk ramp 0 -> 1 on [0, 1] (clipped outside)."""
    x = np.clip(np.asarray(x, dtype=np.float64), 0.0, 1.0)
    return x * x * x * (10.0 + x * (-15.0 + 6.0 * x))


def two_bone_ik(
    base: np.ndarray, target: np.ndarray, a: float, b: float, pole: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Exact two-bone inverse kinematics.

    Args:
        base: (T, 3) first joint (hip or shoulder).
        target: (T, 3) wanted end joint (ankle or wrist); moved onto the reachable shell when out of reach.
        a: first bone length; b: second bone length.
        pole: (T, 3) direction the middle joint bends towards (only its part perpendicular to base -> target counts).

    Returns:
        ``(mid, end)``, each (T, 3), with ``|mid - base| == a`` and ``|end - mid| == b`` to rounding error.
    """
    d_vec = target - base  # (T, 3)
    d = np.linalg.norm(d_vec, axis=-1)
    u = d_vec / np.maximum(d, 1e-12)[:, None]
    d_c = np.clip(d, abs(a - b) + 1e-6, a + b - 1e-6)
    x = (a * a - b * b + d_c * d_c) / (2.0 * d_c)
    r = np.sqrt(np.maximum(a * a - x * x, 0.0))
    p = pole - np.sum(pole * u, axis=-1, keepdims=True) * u
    bad = np.linalg.norm(p, axis=-1) < 1e-9
    if bad.any():  # pole along the chain: bend towards any perpendicular
        alt = np.cross(u[bad], np.array([1.0, 0.0, 0.0]))
        alt[np.linalg.norm(alt, axis=-1) < 1e-6] = (0.0, 0.0, 1.0)
        p[bad] = alt
    p = _unit(p)
    mid = base + x[:, None] * u + r[:, None] * p
    end_goal = base + d_c[:, None] * u
    end = mid + b * _unit(end_goal - mid)
    return mid, end


# ---- the rig: rest offsets and a pose description ---------------------------------------------------------------
@dataclass(frozen=True)
class _Rig:
    rest: np.ndarray  # (17, 3) rest pose
    offsets: np.ndarray  # (17, 3) child - parent at rest (root: its position)
    seg: dict[str, float]

    @classmethod
    def of(cls, identity: Identity) -> _Rig:
        rest = identity.rest_pose()
        off = rest.copy()
        for j, p in enumerate(PARENTS):
            if p >= 0:
                off[j] = rest[j] - rest[p]
        return cls(rest=rest, offsets=off, seg=identity.segment_lengths())

    def length(self, j: int) -> float:
        return float(np.linalg.norm(self.offsets[j]))

    @property
    def root_height(self) -> float:
        return float(self.rest[0, 1])

    @property
    def ankle_height(self) -> float:
        return float(self.seg["ankle_height"])

    @property
    def leg(self) -> float:
        """Hip-to-ankle length (thigh + shin)."""
        return self.length(2) + self.length(3)


@dataclass
class _Pose:
    """A pose sequence in the local frame. Rotations are relative to the parent segment's frame.

    root (T, 3); pelvis, spine, chest, neck (T, 3, 3); ankles (T, 2, 3) world targets (left, right);
    wrists (T, 2, 3) and elbow_poles (T, 2, 3) in the chest frame, relative to each shoulder;
    knee_poles: optional (T, 2, 3) world directions (default: the leg's sagittal plane, knees forward).
    """

    root: np.ndarray
    pelvis: np.ndarray
    spine: np.ndarray
    chest: np.ndarray
    neck: np.ndarray
    ankles: np.ndarray
    wrists: np.ndarray
    elbow_poles: np.ndarray
    knee_poles: np.ndarray | None = None


def _eye(t: int) -> np.ndarray:
    return np.broadcast_to(np.eye(3), (t, 3, 3)).copy()


def _arm_fk(
    rig: _Rig, side: int, *, flex: np.ndarray, abd: np.ndarray, elbow: np.ndarray, twist: np.ndarray | float = 0.0
) -> tuple[np.ndarray, np.ndarray]:
    """Wrist position and elbow pole (chest frame, relative to the shoulder) from joint angles.

    ``flex`` swings the arm forward (about x), ``abd`` raises it sideways (about z), ``twist`` turns it about its
    own axis (positive: the elbow's bending plane turns from forward to upward when the arm is raised sideways),
    ``elbow`` bends the forearm forward in the upper arm's frame. All (T,) radians.
    """
    sg = _SIGN[side]
    _, el, wr = _ARM[side]
    r_sh = rot_z(sg * np.asarray(abd)) @ rot_x(-np.asarray(flex)) @ rot_y(sg * np.asarray(twist))  # (T, 3, 3)
    elbow_rel = _apply(r_sh, rig.offsets[el])
    wrist_rel = elbow_rel + _apply(r_sh @ rot_x(-np.asarray(elbow)), rig.offsets[wr])
    return wrist_rel, elbow_rel


def _arms(rig: _Rig, t: int, **per_side: tuple[np.ndarray | float, np.ndarray | float]) -> tuple[np.ndarray, ...]:
    """Both arms from angles: ``per_side[name] = (left, right)`` for flex, abd, elbow, twist -> (wrists, poles)."""
    wrists = np.zeros((t, 2, 3))
    poles = np.zeros((t, 2, 3))
    for s in (0, 1):
        kw = {k: np.broadcast_to(np.asarray(v[s], dtype=np.float64), (t,)) for k, v in per_side.items()}
        wrists[:, s], poles[:, s] = _arm_fk(rig, s, **kw)
    return wrists, poles


def _assemble(rig: _Rig, pose: _Pose) -> np.ndarray:
    """Joint positions (T, 17, 3) of a pose sequence in the local frame."""
    o = rig.offsets
    t = pose.root.shape[0]
    j = np.zeros((t, 17, 3))
    j[:, 0] = pose.root
    r_p = pose.pelvis  # (T, 3, 3)
    r_s = r_p @ pose.spine
    r_c = r_s @ pose.chest
    r_n = r_c @ pose.neck
    left = r_p[:, :, 0]  # pelvis x axis = the person's left
    for s, (hip, knee, ankle) in enumerate(_LEG):
        j[:, hip] = pose.root + _apply(r_p, o[hip])
        target = pose.ankles[:, s]
        if pose.knee_poles is not None:
            pole = pose.knee_poles[:, s]
        else:  # perpendicular to the leg in its sagittal plane: knees bend forward
            pole = np.cross(target - j[:, hip], left)
        j[:, knee], j[:, ankle] = two_bone_ik(j[:, hip], target, rig.length(knee), rig.length(ankle), pole)
    j[:, 7] = pose.root + _apply(r_s, o[7])
    j[:, 8] = j[:, 7] + _apply(r_c, o[8])
    j[:, 9] = j[:, 8] + _apply(r_n, o[9])
    j[:, 10] = j[:, 9] + _apply(r_n, o[10])
    for s, (sh, el, wr) in enumerate(_ARM):
        j[:, sh] = j[:, 8] + _apply(r_c, o[sh])
        target = j[:, sh] + _apply(r_c, pose.wrists[:, s])
        pole = _apply(r_c, pose.elbow_poles[:, s])
        j[:, el], j[:, wr] = two_bone_ik(j[:, sh], target, rig.length(el), rig.length(wr), pole)
    return j


def face_from_joints(joints: np.ndarray) -> np.ndarray:
    """(T, 3) horizontal unit vectors the pelvis faces: perpendicular to the right -> left hip line, y = 0."""
    hip_line = joints[:, 4] - joints[:, 1]  # right hip -> left hip, (T, 3)
    f = np.cross(hip_line, np.array([0.0, 1.0, 0.0]))  # left x up = forward
    f[:, 1] = 0.0
    return _unit(f)


def _standing(rig: _Rig, t: int) -> _Pose:
    """Rest standing pose repeated ``t`` times (arms hanging, slightly bent elbows)."""
    root = np.tile(rig.rest[0], (t, 1))
    ankles = np.tile(rig.rest[[6, 3]], (t, 1, 1))  # (T, 2, 3) left, right
    wrists, poles = _arms(rig, t, flex=(0.03, 0.03), abd=(0.05, 0.05), elbow=(0.15, 0.15))
    return _Pose(
        root=root, pelvis=_eye(t), spine=_eye(t), chest=_eye(t), neck=_eye(t), ankles=ankles, wrists=wrists,
        elbow_poles=poles,
    )


# ---- actions -----------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Ctx:
    identity: Identity
    rig: _Rig
    t: np.ndarray  # (T,) seconds
    rng: np.random.Generator

    @property
    def n(self) -> int:
        return int(self.t.shape[0])

    def jitter(self, rel: float = 0.03) -> float:
        """A multiplicative variation ``1 + rel * N(0, 1)`` clipped to +-2.5 sigma."""
        return float(1.0 + rel * np.clip(self.rng.standard_normal(), -2.5, 2.5))


def _act_stand(c: _Ctx) -> _Pose:
    rig, t, ident = c.rig, c.t, c.identity
    pose = _standing(rig, c.n)
    ph = c.rng.uniform(0, 2 * np.pi, size=4)
    sway = 0.008 * np.sin(2 * np.pi * 0.23 * t + ph[0])  # weight shift, metres
    fore = 0.005 * np.sin(2 * np.pi * 0.17 * t + ph[1])
    breath = np.sin(2 * np.pi * 0.25 * t + ph[2])
    pose.root[:, 0] += sway
    pose.root[:, 2] += fore
    pose.root[:, 1] -= 0.006 + 0.003 * (1 + breath)  # knees soft, never locked
    pose.pelvis = rot_z(-0.6 * sway / rig.seg["hip_half"] * 0.1)
    pose.spine = rot_x(0.5 * ident.lean + 0.005 * breath)
    pose.chest = rot_x(0.3 * ident.lean - 0.01 * breath)
    pose.neck = rot_x(-0.6 * ident.lean + 0.03 * np.sin(2 * np.pi * 0.11 * t + ph[3])) @ rot_y(
        0.08 * np.sin(2 * np.pi * 0.07 * t + ph[3])
    )
    e = 0.1 + 0.3 * ident.elbow_bend
    pose.wrists, pose.elbow_poles = _arms(
        rig, c.n, flex=(0.02 + 0.02 * breath, 0.02 - 0.02 * breath), abd=(0.07, 0.07), elbow=(e, e)
    )
    return pose


@dataclass(frozen=True)
class _GaitParams:
    step: float  # step length, metres
    cadence: float  # steps per second
    duty: float  # stance fraction of the cycle
    hs_ahead: float  # ankle ahead of the pelvis at heel strike, in step lengths
    heel_off: float  # fraction of stance after which the heel rises
    roll: float  # foot roll angle at toe-off, radians
    lift: float  # swing ankle lift, metres
    bob: float  # 0..1 share of the geometric pelvis bob kept
    lean: float
    arm_amp: float
    elbow: float
    run: bool


def _gait_params(c: _Ctx, *, run: bool) -> _GaitParams:
    ident, rig = c.identity, c.rig
    leg_len = ident.leg_ratio * ident.height
    step = ident.stride * leg_len * c.jitter(0.03)
    cadence = ident.cadence * c.jitter(0.02)
    lift = (0.03 + 0.12 * ident.knee_lift) * rig.leg
    if run:
        return _GaitParams(
            step=1.45 * step, cadence=1.55 * cadence, duty=0.38, hs_ahead=0.3, heel_off=0.5, roll=0.6,
            lift=2.2 * lift, bob=float(np.clip(0.5 * ident.bounce, 0.25, 0.75)), lean=ident.lean + 0.14,
            arm_amp=0.45 + 0.6 * ident.arm_swing, elbow=1.25 + 0.4 * ident.elbow_bend, run=True,
        )
    return _GaitParams(
        step=step, cadence=cadence, duty=0.6, hs_ahead=0.4, heel_off=0.55, roll=1.1, lift=lift,
        bob=float(np.clip(0.75 * ident.bounce + 0.1, 0.5, 0.95)), lean=ident.lean + 0.02, arm_amp=ident.arm_swing,
        elbow=ident.elbow_bend, run=False,
    )


def _gait_feet(rig: _Rig, g: _GaitParams, cycles: np.ndarray, phase0: float) -> np.ndarray:
    """Ankle positions (T, 2, 3) [left, right] at gait cycle counts ``cycles`` (right heel strike at integers).

    The pelvis is at z = 2 * step * (cycles - phase0).
    """
    h_a = rig.ankle_height
    foot = 2.2 * h_a  # ankle -> toe (the roll pivot), metres
    out = np.zeros(cycles.shape + (2, 3))
    u_ho = g.heel_off * g.duty

    def stance(anchor: np.ndarray, u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        alpha = g.roll * _smoothstep((u - u_ho) / (g.duty - u_ho))  # heel rises, foot rolls about the toe
        z = anchor + foot - foot * np.cos(alpha) + h_a * np.sin(alpha)
        y = foot * np.sin(alpha) + h_a * np.cos(alpha)
        return z, y

    for s, off in ((0, 0.5), (1, 0.0)):
        p = cycles - off
        n = np.floor(p)
        u = p - n
        anchor = 2.0 * g.step * (n + off - phase0) + g.hs_ahead * g.step  # planted ankle z of this cycle
        z_st, y_st = stance(anchor, u)
        z_to, y_to = stance(anchor, np.full_like(u, g.duty))
        w = np.clip((u - g.duty) / (1.0 - g.duty), 0.0, 1.0)
        m = _smoothstep(w)
        m_z = 0.5 * m + 0.5 * (1.0 - (1.0 - w) ** 2)  # leaves toe-off moving forward, lands at rest
        z_sw = z_to + (anchor + 2.0 * g.step - z_to) * m_z
        y_sw = y_to + (h_a - y_to) * m + g.lift * np.sin(np.pi * w)
        in_stance = u < g.duty
        out[..., s, 2] = np.where(in_stance, z_st, z_sw)
        out[..., s, 1] = np.where(in_stance, y_st, y_sw)
        out[..., s, 0] = _SIGN[s] * 0.85 * rig.seg["hip_half"]
    return out


def _softmin(a: np.ndarray, b: np.ndarray, k: float = 0.01) -> np.ndarray:
    """Smooth minimum, never above ``min(a, b)``."""
    m = np.minimum(a, b)
    return m - k * np.log(np.exp(-(a - m) / k) + np.exp(-(b - m) / k))


def _gait(c: _Ctx, *, run: bool) -> _Pose:
    rig, ident = c.rig, c.identity
    g = _gait_params(c, run=run)
    phase0 = float(c.rng.uniform(0.0, 1.0))
    hip_half = rig.seg["hip_half"]
    reach = 0.992 * rig.leg

    def layout(cycles: np.ndarray) -> tuple[np.ndarray, ...]:
        z = 2.0 * g.step * (cycles - phase0)
        ang = 2.0 * np.pi * (cycles - 0.5 * g.hs_ahead)  # 0 when the pelvis passes over the right ankle
        sway = -0.25 * hip_half * np.cos(ang) * (0.4 if run else 1.0)
        yaw = 0.07 * np.cos(2.0 * np.pi * cycles) * (1.3 if run else 1.0)
        roll = -0.05 * np.cos(ang) * (0.5 if run else 1.0)
        feet = _gait_feet(rig, g, cycles, phase0)
        ys = []
        for s in (0, 1):
            hip_x = sway + _SIGN[s] * hip_half * np.cos(yaw)
            hip_z = z - _SIGN[s] * hip_half * np.sin(yaw)
            dist2 = (feet[:, s, 0] - hip_x) ** 2 + (feet[:, s, 2] - hip_z) ** 2
            y_s = feet[:, s, 1] + np.sqrt(np.maximum(reach**2 - dist2, 0.0))
            # a foot in mid-swing does not hold the pelvis down (its knee bends instead)
            u = (cycles - (0.5 if s == 0 else 0.0)) % 1.0
            relax = np.sin(np.pi * np.clip((u - g.duty) / (0.75 * (1.0 - g.duty)), 0.0, 1.0))
            ys.append(y_s + 0.3 * relax - abs(np.sin(roll)) * hip_half)  # a listing pelvis lifts one hip
        return z, sway, yaw, roll, feet, _softmin(ys[0], ys[1])

    cycles = c.t * g.cadence / 2.0 + phase0  # (T,) gait cycles (2 steps each)
    z, sway, yaw, roll, feet, y_geom = layout(cycles)
    y_low = float(layout(np.linspace(0.0, 1.0, 401) + phase0)[5].min())  # lowest pelvis over a cycle
    y = y_low + g.bob * (y_geom - y_low)
    if run:  # knees give at mid-stance
        for off in (0.5, 0.0):
            u = (cycles - off) % 1.0
            y -= 0.05 * rig.leg * np.sin(np.pi * np.clip(u / g.duty, 0.0, 1.0)) * (u < g.duty)
    root = np.stack([sway, y, z], axis=-1)
    pelvis = rot_y(yaw) @ rot_z(roll)
    spine = rot_x(0.5 * g.lean) @ rot_y(-0.6 * yaw) @ rot_z(-0.7 * roll)
    chest = rot_x(0.5 * g.lean) @ rot_y(-0.6 * yaw) @ rot_z(-0.3 * roll)
    neck = rot_x(-0.8 * g.lean)
    swing = np.cos(2.0 * np.pi * (cycles - 0.04))  # +1: left arm forward (right leg forward)
    flex_l = -0.04 + g.arm_amp * swing
    flex_r = -0.04 - g.arm_amp * swing
    elb_l = g.elbow + 0.5 * g.arm_amp * np.maximum(flex_l, 0.0) + 0.05
    elb_r = g.elbow + 0.5 * g.arm_amp * np.maximum(flex_r, 0.0) + 0.05
    abd = 0.08 + 0.04 * ident.girth
    wrists, poles = _arms(c.rig, c.n, flex=(flex_l, flex_r), abd=(abd, abd), elbow=(elb_l, elb_r))
    return _Pose(
        root=root, pelvis=pelvis, spine=spine, chest=chest, neck=neck, ankles=feet, wrists=wrists,
        elbow_poles=poles,
    )


def _act_walk(c: _Ctx) -> _Pose:
    return _gait(c, run=False)


def _act_run(c: _Ctx) -> _Pose:
    return _gait(c, run=True)


def _keys(tau: np.ndarray, keys: tuple[tuple[float, float], ...]) -> np.ndarray:
    """Ease-in-out interpolation through keyframes ``(time, value)`` (times increasing), held outside them."""
    ts = np.array([k[0] for k in keys])
    vs = np.array([k[1] for k in keys])
    i = np.clip(np.searchsorted(ts, tau, side="right") - 1, 0, len(ts) - 2)
    w = (tau - ts[i]) / np.maximum(ts[i + 1] - ts[i], 1e-12)
    return vs[i] + (vs[i + 1] - vs[i]) * _smoothstep(w)


def _phase(c: _Ctx, period: float) -> tuple[np.ndarray, np.ndarray]:
    """(cycle index, phase in [0, 1)) of every frame for a repeating action of ``period`` seconds; the seed offsets
    the start by up to a fifth of a period."""
    x = c.t / period + c.rng.uniform(0.0, 0.2)
    k = np.floor(x)
    return k, x - k


def _act_jump(c: _Ctx) -> _Pose:
    """Jumps in place: crouch, push off, flight, landing, recover (one every ~1.4 s)."""
    rig = c.rig
    pose = _standing(rig, c.n)
    _, tau = _phase(c, 1.4 * c.jitter(0.05))
    height = 0.16 * rig.leg * c.jitter(0.1)  # flight apex above take-off, metres
    dip = 0.2 * rig.leg
    y0 = rig.root_height - 0.01
    y_to = rig.ankle_height + 0.97 * rig.leg  # legs (almost) straight when the feet leave the ground
    y = _keys(tau, ((0.0, y0), (0.3, y0 - dip), (0.4, y_to), (0.4, y_to), (0.65, y_to), (0.8, y0 - 0.6 * dip),
                    (1.0, y0)))
    flight = (tau >= 0.4) & (tau < 0.65)
    w = np.clip((tau - 0.4) / 0.25, 0.0, 1.0)
    y = np.where(flight, y_to + 4.0 * height * w * (1.0 - w), y)
    pose.root[:, 1] = y
    tuck = 0.08 * rig.leg * np.sin(np.pi * w) * flight
    ankle_y = np.maximum(rig.ankle_height, y - 0.97 * rig.leg + rig.ankle_height + tuck)
    pose.ankles[:, :, 1] = ankle_y[:, None]
    crouch = np.clip((y0 - y) / dip, 0.0, 1.0)
    pose.spine = rot_x(0.35 * crouch + 0.5 * c.identity.lean)
    pose.chest = rot_x(0.2 * crouch)
    pose.neck = rot_x(-0.4 * crouch)
    flex = _keys(tau, ((0.0, 0.05), (0.3, -0.7), (0.45, 2.6), (0.65, 2.2), (0.85, 0.3), (1.0, 0.05)))
    e = 0.2 + 0.3 * c.identity.elbow_bend
    pose.wrists, pose.elbow_poles = _arms(rig, c.n, flex=(flex, flex), abd=(0.15, 0.15), elbow=(e, e))
    return pose


def _wave_arm(c: _Ctx, side: int, *, raise_to: float, freq: float) -> tuple[np.ndarray, np.ndarray]:
    """An arm raised sideways (``raise_to`` radians) and waving its forearm in the frontal plane."""
    up = _smoothstep(c.t / 0.6)
    e_rest = 0.1 + 0.3 * c.identity.elbow_bend
    osc = np.sin(2.0 * np.pi * freq * c.t + c.rng.uniform(0, 2 * np.pi))
    abd = 0.07 + (raise_to - 0.07) * up
    elbow = e_rest + (1.2 - e_rest) * up + 0.45 * up * osc
    return _arm_fk(c.rig, side, flex=0.25 * up, abd=abd, elbow=elbow, twist=1.45 * up)


def _act_wave_one(c: _Ctx) -> _Pose:
    pose = _act_stand(c)
    side = 1  # right hand
    pose.wrists[:, side], pose.elbow_poles[:, side] = _wave_arm(c, side, raise_to=1.75, freq=2.0 * c.jitter(0.1))
    return pose


def _act_wave_both(c: _Ctx) -> _Pose:
    pose = _act_stand(c)
    f = 1.6 * c.jitter(0.1)
    for side in (0, 1):
        pose.wrists[:, side], pose.elbow_poles[:, side] = _wave_arm(c, side, raise_to=2.3, freq=f)
    return pose


def _act_squat(c: _Ctx) -> _Pose:
    """Deep knee bends with the feet planted, hips back, trunk forward, arms reaching forward (~2.6 s each)."""
    rig = c.rig
    pose = _standing(rig, c.n)
    _, tau = _phase(c, 2.6 * c.jitter(0.05))
    s = 0.5 - 0.5 * np.cos(2.0 * np.pi * tau)  # 0 standing, 1 at the bottom
    depth = 0.4 * rig.leg * c.jitter(0.05)
    pose.root[:, 1] -= s * depth
    pose.root[:, 2] -= s * 0.15 * rig.leg
    pose.spine = rot_x(0.45 * s + 0.5 * c.identity.lean)
    pose.chest = rot_x(0.2 * s)
    pose.neck = rot_x(-0.5 * s)
    flex = 0.05 + 1.35 * s
    e = 0.1 + 0.2 * c.identity.elbow_bend
    pose.wrists, pose.elbow_poles = _arms(rig, c.n, flex=(flex, flex), abd=(0.1, 0.1), elbow=(e, e))
    return pose


def _act_kick(c: _Ctx) -> _Pose:
    """Front kicks with the right leg, weight on the left (one every ~1.8 s)."""
    rig = c.rig
    pose = _act_stand(c)
    _, tau = _phase(c, 1.8 * c.jitter(0.05))
    u = np.clip((tau - 0.15) / 0.45, 0.0, 1.0)  # kick window
    active = (tau > 0.15) & (tau < 0.6)
    lift = np.sin(np.pi * u) * active  # 0 -> 1 -> 0
    angle = 1.15 * c.jitter(0.08) * lift  # thigh/shank line forward, radians
    reach = 0.97 * rig.leg * (1.0 - 0.3 * np.sin(2.0 * np.pi * u) ** 2)  # chamber, extend, chamber
    shift = _smoothstep(tau / 0.15) * (1.0 - _smoothstep((tau - 0.6) / 0.25))  # weight onto the left foot
    pose.root[:, 0] += 0.6 * rig.seg["hip_half"] * shift
    hip = pose.root + _apply(pose.pelvis, rig.offsets[1])  # right hip, (T, 3)
    target = hip + np.stack([np.zeros(c.n), -reach * np.cos(angle), reach * np.sin(angle)], axis=-1)
    blend = (_smoothstep(u / 0.15) * (1.0 - _smoothstep((u - 0.85) / 0.15)) * active)[:, None]
    rest_ankle = pose.ankles[:, 1].copy()
    kicked = rest_ankle + blend * (target - rest_ankle)
    kicked[:, 1] = np.maximum(kicked[:, 1], rig.ankle_height)
    pose.ankles[:, 1] = kicked
    pose.spine = rot_x(-0.15 * lift + 0.5 * c.identity.lean)
    e = 0.4 + 0.3 * c.identity.elbow_bend
    pose.wrists, pose.elbow_poles = _arms(
        rig, c.n, flex=(0.6 * lift, -0.3 * lift), abd=(0.15 + 0.3 * lift, 0.15 + 0.3 * lift), elbow=(e, e)
    )
    return pose


def _act_punch(c: _Ctx) -> _Pose:
    """Boxing guard with alternating straight punches (one every ~0.55 s)."""
    rig = c.rig
    pose = _act_stand(c)
    arm = rig.length(12) + rig.length(13)
    half = rig.seg["shoulder_half"]
    period = 1.1 * c.jitter(0.06)
    _, tau = _phase(c, period)
    for s in (0, 1):
        sg = _SIGN[s]
        u = (tau - 0.5 * s) % 1.0
        p = _keys(u, ((0.0, 0.0), (0.12, 1.0), (0.3, 0.0), (1.0, 0.0)))  # fast out, slower back
        guard = np.array([-0.45 * sg * half, -0.02, 0.3 * arm])
        strike = np.array([-0.55 * sg * half, 0.0, 0.95 * arm])
        pose.wrists[:, s] = guard + p[:, None] * (strike - guard)
        pose.elbow_poles[:, s] = np.array([sg * 0.6, -1.0, -0.3])
        pose.chest = pose.chest @ rot_y(-sg * 0.25 * p)
    pose.spine = pose.spine @ rot_x(np.full(c.n, 0.08))
    pose.root[:, 1] -= 0.02 * rig.leg  # knees soft
    return pose


def _act_bend(c: _Ctx) -> _Pose:
    """Bending forward from the hips and back up, arms hanging (one every ~3 s)."""
    rig = c.rig
    pose = _act_stand(c)
    _, tau = _phase(c, 3.0 * c.jitter(0.05))
    s = _keys(tau, ((0.0, 0.0), (0.4, 1.0), (0.6, 1.0), (1.0, 0.0)))
    depth = 1.25 * c.jitter(0.05)  # trunk angle at the bottom, radians
    pose.spine = rot_x(0.7 * depth * s + 0.5 * c.identity.lean)
    pose.chest = rot_x(0.3 * depth * s)
    pose.neck = rot_x(-0.35 * s)
    pose.root[:, 2] -= 0.12 * rig.leg * s  # hips go back (and a little down, so the legs still reach)
    pose.root[:, 1] -= 0.015 * rig.leg * s
    e = 0.1 + 0.3 * c.identity.elbow_bend
    flex = 0.9 * depth * s + 0.03  # arms keep hanging down
    pose.wrists, pose.elbow_poles = _arms(rig, c.n, flex=(flex, flex), abd=(0.07, 0.07), elbow=(e, e))
    return pose


def _act_clap(c: _Ctx) -> _Pose:
    """Clapping hands in front of the chest (about two claps a second)."""
    rig = c.rig
    pose = _act_stand(c)
    arm = rig.length(12) + rig.length(13)
    half = rig.seg["shoulder_half"]
    freq = 2.0 * c.jitter(0.1)
    up = _smoothstep(c.t / 0.5)
    closed = (0.5 + 0.5 * np.cos(2.0 * np.pi * freq * c.t + c.rng.uniform(0, 2 * np.pi))) ** 2 * up
    rest_w = pose.wrists.copy()
    for s in (0, 1):
        sg = _SIGN[s]
        open_ = np.array([sg * 0.35 * half, -0.25 * arm, 0.5 * arm])
        shut = np.array([-sg * (half - 0.03), -0.2 * arm, 0.55 * arm])
        clap = open_ + closed[:, None] * (shut - open_)
        pose.wrists[:, s] = rest_w[:, s] + up[:, None] * (clap - rest_w[:, s])
        pose.elbow_poles[:, s] = np.array([sg * 1.0, -1.0, -0.2])
    return pose


def _act_turn(c: _Ctx) -> _Pose:
    """Turning on the spot by half a turn with two small steps, then a pause (every ~3 s)."""
    rig = c.rig
    pose = _act_stand(c)
    k, tau = _phase(c, 3.0 * c.jitter(0.05))
    direction = 1.0 if c.rng.uniform() < 0.5 else -1.0
    yaw = direction * np.pi * (k + _smoothstep(tau / 0.6))
    pose.pelvis = rot_y(yaw) @ pose.pelvis
    windows = ((0.15, 0.6), (0.0, 0.45)) if direction > 0 else ((0.0, 0.45), (0.15, 0.6))  # lead with the inner foot
    for s in (0, 1):
        a, b = windows[s]
        w = np.clip((tau - a) / (b - a), 0.0, 1.0)
        foot_yaw = direction * np.pi * (k + _smoothstep(w))
        base = np.array([_SIGN[s] * rig.seg["hip_half"], 0.0, 0.0])
        pos = _apply(rot_y(foot_yaw), base)
        pos[:, 1] = rig.ankle_height + 0.05 * rig.leg * np.sin(np.pi * w)
        pose.ankles[:, s] = pos
    pose.root[:, 1] -= 0.02 * rig.leg * np.sin(np.pi * np.clip(tau / 0.6, 0.0, 1.0))
    return pose


def _act_sit_down(c: _Ctx) -> _Pose:
    """Sitting down on a seat at knee height, sitting, standing up again (a 6 s cycle)."""
    rig = c.rig
    pose = _act_stand(c)
    _, tau = _phase(c, 6.0 * c.jitter(0.04))
    s = _keys(tau, ((0.0, 0.0), (0.08, 0.0), (0.33, 1.0), (0.66, 1.0), (0.92, 0.0), (1.0, 0.0)))
    thigh, shin = rig.length(2), rig.length(3)
    y_sit = rig.ankle_height + shin + 0.06 * rig.leg
    z_sit = -0.9 * thigh
    pose.root[:, 1] += s * (y_sit - pose.root[:, 1])
    pose.root[:, 2] += s * (z_sit - pose.root[:, 2])
    lean = 0.1 * s + 0.6 * np.sin(np.pi * s)  # lean forward on the way down and up
    pose.spine = rot_x(0.6 * lean + 0.5 * c.identity.lean)
    pose.chest = rot_x(0.4 * lean)
    pose.neck = rot_x(-0.5 * lean)
    e = 0.1 + 0.3 * c.identity.elbow_bend
    flex = 0.03 + 0.6 * s + 0.3 * np.sin(np.pi * s)
    pose.wrists, pose.elbow_poles = _arms(rig, c.n, flex=(flex, flex), abd=(0.1, 0.1), elbow=(e + 0.5 * s, e + 0.5 * s))
    return pose


_ACTIONS: dict[str, Callable[[_Ctx], _Pose]] = {
    "stand": _act_stand,
    "walk": _act_walk,
    "run": _act_run,
    "jump": _act_jump,
    "wave_one": _act_wave_one,
    "wave_both": _act_wave_both,
    "squat": _act_squat,
    "kick": _act_kick,
    "punch": _act_punch,
    "bend": _act_bend,
    "clap": _act_clap,
    "turn": _act_turn,
    "sit_down": _act_sit_down,
}
ACTIONS: tuple[str, ...] = tuple(_ACTIONS)


def _to_world(joints: np.ndarray, *, heading: float, start: tuple[float, float]) -> np.ndarray:
    r = rot_y(float(heading))
    out = joints @ r.T
    out[..., 0] += float(start[0])
    out[..., 2] += float(start[1])
    return out


def _check_common(num_frames: int, fps: float) -> None:
    if not isinstance(num_frames, (int, np.integer)) or num_frames < 1:
        raise UsageError(f"num_frames must be a positive integer, got {num_frames!r}")
    if not np.isfinite(fps) or fps <= 0:
        raise UsageError(f"fps must be positive, got {fps!r}")


def generate_motion(
    action: str,
    identity: Identity,
    *,
    num_frames: int,
    fps: float = 30.0,
    seed: int = 0,
    start: tuple[float, float] = (0.0, 0.0),
    heading: float = 0.0,
) -> Motion:
    """A procedural motion of ``identity``.

    Args:
        action: one of :data:`ACTIONS`.
        identity: the person (body proportions and gait style).
        num_frames: number of frames (>= 1).
        fps: frames per second (> 0).
        seed: draws the phase and small variations; same arguments give identical arrays.
        start: (x, z) ground position of the pelvis at frame 0, metres.
        heading: direction of travel/facing in radians about +y; 0 faces +z, pi/2 faces +x.

    Returns:
        A :class:`Motion` with (T, 17, 3) H36M-17 joints in the world frame (y up, ground y = 0).

    Raises:
        UsageError: unknown action, ``num_frames < 1`` or ``fps <= 0``.
    """
    if action not in _ACTIONS:
        raise UsageError(f"unknown action {action!r}; known actions: {', '.join(ACTIONS)}")
    _check_common(num_frames, fps)
    rig = _Rig.of(identity)
    rng = np.random.default_rng(
        [int(seed) & 0xFFFFFFFF, zlib.crc32(action.encode()), int(identity.identity_id) & 0xFFFFFFFF]
    )
    ctx = _Ctx(identity=identity, rig=rig, t=np.arange(int(num_frames)) / float(fps), rng=rng)
    local = _assemble(rig, _ACTIONS[action](ctx))
    joints = _to_world(local, heading=heading, start=start)
    return Motion(joints=joints, fps=float(fps), name=action, face=face_from_joints(joints))


def motion_from_bvh(
    source: str | Path | Bvh,
    identity: Identity,
    *,
    fps: float = 30.0,
    start_frame: int = 0,
    num_frames: int | None = None,
    heading: float | None = None,
    place_at: tuple[float, float] = (0.0, 0.0),
) -> Motion:
    """Play motion capture on ``identity``'s body.

    The mocap is mapped onto H36M-17 (:func:`hmore.io.bvh.to_h36m`), resampled to ``fps`` by linear interpolation,
    and rebuilt joint by joint from the root: each bone keeps the mocap's direction and takes the identity's length,
    so bone lengths are constant. The root trajectory is scaled by the ratio of leg lengths (identity / mocap), the
    clip is lifted so that its lowest ankle sits at the identity's ankle height (and no joint is below the ground),
    turned about +y so that its overall travel (first to last root position; the facing direction when it travels
    less than 0.2 m) points along ``heading`` when one is given, and moved so that the root starts above
    ``place_at = (x, z)``.

    Args:
        source: a BVH path or a parsed :class:`Bvh`.
        identity: the body to play the motion on.
        fps: output frame rate (> 0).
        start_frame: first output frame, counted at ``fps`` from the start of the file.
        num_frames: number of output frames; None takes all that fit in the file.
        heading: radians about +y (0 = +z); None keeps the mocap's own direction.
        place_at: (x, z) of the root at the first frame, metres.

    Returns:
        A :class:`Motion` named ``"bvh:<file stem>"``.

    Raises:
        InputError: unreadable or malformed file, unknown hierarchy.
        UsageError: bad fps, start_frame or num_frames (or more frames than the file holds).
    """
    bvh = source if isinstance(source, Bvh) else read_bvh(source)
    if not np.isfinite(fps) or fps <= 0:
        raise UsageError(f"fps must be positive, got {fps!r}")
    if start_frame < 0:
        raise UsageError(f"start_frame must be >= 0, got {start_frame}")
    duration = (bvh.num_frames - 1) * bvh.frame_time
    avail = int(np.floor(duration * fps + 1e-6)) + 1 - int(start_frame)
    if avail < 1:
        raise UsageError(f"start_frame {start_frame} is past the end of {bvh.source} ({duration:.2f} s at {fps} fps)")
    n = avail if num_frames is None else int(num_frames)
    if n < 1 or n > avail:
        raise UsageError(
            f"num_frames must be within 1-{avail} for {bvh.source} from start_frame {start_frame}, got {n}"
        )
    to_h36m(bvh.rest_positions()[None], bvh)  # an unknown hierarchy fails here, before any work
    src_all = to_h36m(bvh.forward_kinematics(), bvh)  # (F, 17, 3) metres
    s = (start_frame + np.arange(n)) / fps / bvh.frame_time  # fractional source frame of each output frame
    i0 = np.clip(np.floor(s).astype(int), 0, max(bvh.num_frames - 2, 0))
    i1 = np.minimum(i0 + 1, bvh.num_frames - 1)
    w = np.clip(s - i0, 0.0, 1.0)[:, None, None]
    src = src_all[i0] * (1.0 - w) + src_all[i1] * w  # (T, 17, 3)

    rig = _Rig.of(identity)
    mocap_leg = float(
        np.mean(np.linalg.norm(src[:, [2, 5]] - src[:, [1, 4]], axis=-1))
        + np.mean(np.linalg.norm(src[:, [3, 6]] - src[:, [2, 5]], axis=-1))
    )
    out = np.zeros_like(src)
    out[:, 0] = src[:, 0] * (rig.leg / max(mocap_leg, 1e-9))
    for j in range(1, 17):  # parents come before children in H36M order
        p = PARENTS[j]
        out[:, j] = out[:, p] + rig.length(j) * _unit(src[:, j] - src[:, p])
    lift = rig.ankle_height - out[:, [3, 6], 1].min()
    lift = max(lift, -out[..., 1].min())
    out[..., 1] += lift
    origin = out[0, 0].copy()
    if heading is not None:
        travel = out[-1, 0] - out[0, 0]
        if np.hypot(travel[0], travel[2]) < 0.2:
            travel = face_from_joints(out).mean(axis=0)
        turn = float(heading) - float(np.arctan2(travel[0], travel[2]))
        out = (out - origin) @ rot_y(turn).T + origin
    out[..., 0] += float(place_at[0]) - origin[0]
    out[..., 2] += float(place_at[1]) - origin[2]
    return Motion(joints=out, fps=float(fps), name=f"bvh:{bvh_stem(bvh.source)}", face=face_from_joints(out))


def embedded_bvh(name: str = "cmu_131_01_walk") -> Path:
    """Path of a BVH file shipped with hmore (``hmore/assets/motion/<name>.bvh``)."""
    from hmore.paths import assets_dir

    path = assets_dir() / "motion" / f"{name}.bvh"
    if not path.is_file():
        known = sorted(p.stem for p in (assets_dir() / "motion").glob("*.bvh"))
        raise UsageError(f"no embedded BVH named {name!r}; known: {', '.join(known) or 'none'}")
    return path
