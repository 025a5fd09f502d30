"""Procedural motions and mocap playback: determinism, rigid bones, ground contact, gait parameters, errors."""

from __future__ import annotations

import numpy as np
import pytest

from hmore.errors import InputError, UsageError
from hmore.io.bvh import read_bvh
from hmore.skeleton import bone_lengths
from hmore.synth.identity import Identity, sample_identity
from hmore.synth.motion import (
    ACTIONS,
    embedded_bvh,
    face_from_joints,
    generate_motion,
    motion_from_bvh,
    two_bone_ik,
)
from hmore.synth.motion_types import Motion

FPS = 30.0
IDENTITIES = (Identity(identity_id=0), sample_identity(3), sample_identity(11, seed=5))


def _ankle_rest(ident: Identity) -> float:
    return ident.segment_lengths()["ankle_height"]


def _bones_constant(m: Motion, ident: Identity) -> None:
    bl = bone_lengths(m.joints, "h36m17")  # (T, 16)
    np.testing.assert_allclose(bl, np.broadcast_to(bl[0], bl.shape), rtol=0, atol=1e-9)
    np.testing.assert_allclose(bl[0], bone_lengths(ident.rest_pose(), "h36m17"), rtol=0, atol=1e-9)


def test_action_library() -> None:
    assert len(ACTIONS) >= 12 and len(set(ACTIONS)) == len(ACTIONS)
    for name in ("stand", "walk", "run", "jump", "wave_one", "wave_both", "squat", "kick", "punch", "bend", "clap",
                 "turn", "sit_down"):
        assert name in ACTIONS


@pytest.mark.parametrize("action", ACTIONS)
def test_every_action_is_rigid_grounded_and_deterministic(action: str) -> None:
    for k, ident in enumerate(IDENTITIES):
        m = generate_motion(action, ident, num_frames=150, fps=FPS, seed=k)
        assert isinstance(m, Motion) and m.name == action and m.fps == FPS
        assert m.joints.shape == (150, 17, 3) and m.joints.dtype == np.float64
        assert np.isfinite(m.joints).all()
        _bones_constant(m, ident)
        assert m.joints[..., 1].min() >= -1e-9  # nothing below the ground
        assert m.joints[:, [3, 6], 1].min() >= _ankle_rest(ident) - 1e-6  # feet never sink into it
        np.testing.assert_allclose(np.linalg.norm(m.face, axis=-1), 1.0)
        assert np.abs(m.face[:, 1]).max() == 0.0
        again = generate_motion(action, ident, num_frames=150, fps=FPS, seed=k)
        np.testing.assert_array_equal(m.joints, again.joints)
        np.testing.assert_array_equal(m.face, again.face)
        # a shorter clip is the start of a longer one
        short = generate_motion(action, ident, num_frames=40, fps=FPS, seed=k)
        np.testing.assert_array_equal(short.joints, m.joints[:40])


@pytest.mark.parametrize("action", ACTIONS)
def test_seed_changes_the_motion(action: str) -> None:
    a = generate_motion(action, IDENTITIES[0], num_frames=60, seed=0).joints
    b = generate_motion(action, IDENTITIES[0], num_frames=60, seed=1).joints
    assert np.abs(a - b).max() > 1e-3


def test_single_frame_and_start_pose() -> None:
    ident = IDENTITIES[1]
    m = generate_motion("stand", ident, num_frames=1, start=(2.0, -1.0))
    assert m.joints.shape == (1, 17, 3)
    np.testing.assert_allclose(m.joints[0, 0, [0, 2]], [2.0, -1.0], atol=0.02)
    np.testing.assert_allclose(m.face[0], [0, 0, 1], atol=0.05)
    # standing upright: head well above the root, feet at their rest height
    assert m.joints[0, 10, 1] - m.joints[0, 0, 1] > 0.3 * ident.height
    np.testing.assert_allclose(m.joints[0, [3, 6], 1], _ankle_rest(ident), atol=1e-6)


def _stride_and_speed(m: Motion) -> float:
    xz = m.joints[:, 0][:, [0, 2]]
    return float(np.linalg.norm(xz[-1] - xz[0]) / ((m.num_frames - 1) / m.fps))


@pytest.mark.parametrize("ident", IDENTITIES, ids=lambda i: f"id{i.identity_id}")
def test_walking_speed_is_stride_times_cadence(ident: Identity) -> None:
    m = generate_motion("walk", ident, num_frames=301, fps=FPS, seed=2)
    expected = ident.stride * ident.leg_ratio * ident.height * ident.cadence  # step length x steps per second
    assert _stride_and_speed(m) == pytest.approx(expected, rel=0.15)
    run = generate_motion("run", ident, num_frames=301, fps=FPS, seed=2)
    assert _stride_and_speed(run) > 1.6 * _stride_and_speed(m)


def _cadence_from_ankle(m: Motion) -> float:
    """Steps per second from the period of the left ankle's height (one period = two steps)."""
    y = m.joints[:, 6, 1] - m.joints[:, 6, 1].mean()
    ac = np.correlate(y, y, mode="full")[len(y) - 1:]
    lag_min = int(0.6 * m.fps)  # strides last 0.8-1.4 s
    lag = lag_min + int(np.argmax(ac[lag_min: int(1.6 * m.fps)]))
    # refine the peak with a parabola through its neighbours
    a, b, c = ac[lag - 1], ac[lag], ac[lag + 1]
    lag_f = lag + 0.5 * (a - c) / (a - 2 * b + c)
    return 2.0 * m.fps / lag_f


def test_two_walkers_differ_measurably() -> None:
    slow = Identity(identity_id=1, cadence=1.6, stride=0.65, arm_swing=0.2)
    fast = Identity(identity_id=2, cadence=2.05, stride=0.85, arm_swing=0.55)
    cad = {}
    for ident in (slow, fast):
        m = generate_motion("walk", ident, num_frames=300, fps=FPS, seed=0)
        cad[ident.identity_id] = _cadence_from_ankle(m)
        assert cad[ident.identity_id] == pytest.approx(ident.cadence, rel=0.07)
    assert cad[2] > 1.15 * cad[1]
    # arm swing: range of the wrist's forward position relative to the root
    ranges = []
    for ident in (slow, fast):
        m = generate_motion("walk", ident, num_frames=90, fps=FPS, seed=0)
        rel = m.joints[:, 13, 2] - m.joints[:, 0, 2]
        ranges.append(np.ptp(rel))
    assert ranges[1] > 1.5 * ranges[0]


def _planted_runs(y: np.ndarray, rest: float, tol: float = 0.005) -> list[np.ndarray]:
    low = y < rest + tol
    runs, start = [], None
    for i, v in enumerate(np.append(low, False)):
        if v and start is None:
            start = i
        elif not v and start is not None:
            if i - start >= 3:
                runs.append(np.arange(start, i))
            start = None
    return runs


@pytest.mark.parametrize("ident", IDENTITIES, ids=lambda i: f"id{i.identity_id}")
def test_stance_foot_stays_planted(ident: Identity) -> None:
    m = generate_motion("walk", ident, num_frames=180, fps=FPS, seed=4, heading=0.7)
    rest = _ankle_rest(ident)
    for ankle in (3, 6):
        y = m.joints[:, ankle, 1]
        runs = _planted_runs(y, rest)
        assert len(runs) >= 4  # 6 s of walking: one stance per stride and foot
        for r in runs:
            xz = m.joints[r, ankle][:, [0, 2]]
            assert np.linalg.norm(xz - xz[0], axis=-1).max() < 0.03  # no sliding while planted
        # each stride comes back down to the rest height (within 2 cm) and lifts off in between
        assert y.max() > rest + 0.05


def test_heading_and_start() -> None:
    ident = IDENTITIES[0]
    m = generate_motion("walk", ident, num_frames=90, seed=0, heading=np.pi / 2, start=(1.0, 2.0))
    np.testing.assert_allclose(m.joints[0, 0, [0, 2]], [1.0, 2.0], atol=0.05)
    d = m.joints[-1, 0] - m.joints[0, 0]
    assert d[0] > 2.0 and abs(d[2]) < 0.1  # walks towards +x
    np.testing.assert_allclose(m.face.mean(axis=0), [1, 0, 0], atol=0.05)
    # rotating the heading rotates the whole motion about the start
    m0 = generate_motion("walk", ident, num_frames=90, seed=0, heading=0.0, start=(1.0, 2.0))
    rel0 = m0.joints - [1.0, 0.0, 2.0]
    rel = m.joints - [1.0, 0.0, 2.0]
    np.testing.assert_allclose(rel[..., 0], rel0[..., 2], atol=1e-9)
    np.testing.assert_allclose(rel[..., 2], -rel0[..., 0], atol=1e-9)


def test_bad_arguments() -> None:
    ident = IDENTITIES[0]
    with pytest.raises(UsageError, match="unknown action 'moonwalk'.*walk"):
        generate_motion("moonwalk", ident, num_frames=10)
    with pytest.raises(UsageError, match="num_frames"):
        generate_motion("walk", ident, num_frames=0)
    with pytest.raises(UsageError, match="fps"):
        generate_motion("walk", ident, num_frames=10, fps=0.0)
    with pytest.raises(UsageError, match="embedded BVH"):
        embedded_bvh("nope")


def test_two_bone_ik_is_exact() -> None:
    rng = np.random.default_rng(0)
    base = rng.normal(size=(50, 3))
    target = base + rng.normal(size=(50, 3)) * 0.6
    pole = rng.normal(size=(50, 3))
    mid, end = two_bone_ik(base, target, 0.45, 0.4, pole)
    np.testing.assert_allclose(np.linalg.norm(mid - base, axis=-1), 0.45, atol=1e-12)
    np.testing.assert_allclose(np.linalg.norm(end - mid, axis=-1), 0.4, atol=1e-12)
    d = np.linalg.norm(target - base, axis=-1)
    ok = (d < 0.85 - 1e-3) & (d > 0.05 + 1e-3)
    np.testing.assert_allclose(end[ok], target[ok], atol=1e-9)  # reachable targets are reached
    # the middle joint bends towards the pole
    axis = target - base
    perp = pole - np.sum(pole * axis, -1, keepdims=True) / np.sum(axis * axis, -1, keepdims=True) * axis
    assert np.all(np.sum((mid - base) * perp, axis=-1)[ok] > 0)


def test_face_from_joints() -> None:
    j = np.tile(Identity(identity_id=0).rest_pose(), (2, 1, 1))
    np.testing.assert_allclose(face_from_joints(j), [[0, 0, 1], [0, 0, 1]], atol=1e-12)


# ---- mocap playback -----------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def cmu_walk():
    return read_bvh(embedded_bvh())


@pytest.mark.parametrize("ident", IDENTITIES[:2], ids=lambda i: f"id{i.identity_id}")
def test_motion_from_bvh(cmu_walk, ident: Identity) -> None:
    m = motion_from_bvh(cmu_walk, ident, fps=FPS, heading=0.0, place_at=(0.5, -1.0))
    assert m.name == "bvh:cmu_131_01_walk"
    duration = (cmu_walk.num_frames - 1) * cmu_walk.frame_time
    assert m.num_frames == int(np.floor(duration * FPS + 1e-6)) + 1
    _bones_constant(m, ident)
    np.testing.assert_allclose(m.joints[0, 0, [0, 2]], [0.5, -1.0], atol=1e-9)
    d = m.joints[-1, 0] - m.joints[0, 0]
    assert d[2] > 1.5 and abs(d[0]) < 0.3 * d[2]  # moves forward, along the heading
    rest = _ankle_rest(ident)
    lowest = m.joints[:, [3, 6], 1].min(axis=1)  # the lower ankle of each frame
    assert lowest.min() == pytest.approx(rest, abs=1e-9)
    assert np.median(lowest - rest) < 0.03  # feet on the ground most of the time
    assert m.joints[..., 1].min() >= -1e-9
    # both feet take turns: each ankle rises clearly above the other at some point
    assert np.ptp(m.joints[:, 3, 1]) > 0.1 and np.ptp(m.joints[:, 6, 1]) > 0.1


def test_motion_from_bvh_resampling_and_window(cmu_walk) -> None:
    ident = IDENTITIES[0]
    full = motion_from_bvh(cmu_walk, ident, fps=FPS)
    part = motion_from_bvh(embedded_bvh(), ident, fps=FPS, start_frame=30, num_frames=20)
    assert part.num_frames == 20
    # same frames up to the placement (root translated to the origin) and grounding lift
    np.testing.assert_allclose(part.joints - part.joints[:, :1], full.joints[30:50] - full.joints[30:50, :1],
                               atol=1e-9)
    fast = motion_from_bvh(cmu_walk, ident, fps=60.0)
    assert abs(fast.num_frames - 2 * full.num_frames) <= 2
    np.testing.assert_allclose(fast.joints[::2][: full.num_frames] - fast.joints[:1, :1],
                               full.joints[: fast.joints[::2].shape[0]] - full.joints[:1, :1], atol=1e-9)
    with pytest.raises(UsageError, match="num_frames"):
        motion_from_bvh(cmu_walk, ident, num_frames=10_000)
    with pytest.raises(UsageError, match="start_frame"):
        motion_from_bvh(cmu_walk, ident, start_frame=100_000)
    with pytest.raises(UsageError, match="fps"):
        motion_from_bvh(cmu_walk, ident, fps=-1.0)


def test_motion_from_bad_bvh(tmp_path) -> None:
    bad = tmp_path / "x.bvh"
    bad.write_text("HIERARCHY\nROOT A\n{\n OFFSET 0 0 0\n CHANNELS 3 Xrotation Yrotation Zrotation\n}\nMOTION\n"
                   "Frames: 1\nFrame Time: 0.1\n0 0 0\n")
    with pytest.raises(InputError, match="unknown BVH hierarchy"):
        motion_from_bvh(bad, IDENTITIES[0])


def _check_semantics(action: str, m: Motion, ident: Identity) -> None:
    """What each action must visibly do (heading 0: the person faces +z)."""
    j = m.joints
    rest = ident.rest_pose()
    ankle = _ankle_rest(ident)
    leg = ident.segment_lengths()["thigh"] + ident.segment_lengths()["shin"]
    arm = ident.segment_lengths()["upper_arm"] + ident.segment_lengths()["forearm"]
    both_up = np.minimum(j[:, 3, 1], j[:, 6, 1]) - ankle  # height of the lower ankle above its rest height
    if action == "stand":
        assert np.ptp(j[:, 0, 0]) < 0.03 and np.ptp(j[:, 0, 2]) < 0.03 and both_up.max() < 1e-6
    elif action in ("run", "jump"):
        assert both_up.max() > 0.03  # a flight phase: both feet off the ground
    elif action == "squat":
        assert j[:, 0, 1].min() < rest[0, 1] - 0.3 * leg
    elif action == "sit_down":
        assert j[:, 0, 1].min() < ankle + ident.segment_lengths()["shin"] + 0.1 * leg
        assert j[int(np.argmin(j[:, 0, 1])):, 0, 1].max() > rest[0, 1] - 0.05  # and stands up again
    elif action in ("wave_one", "wave_both"):
        late = slice(int(m.fps), None)
        assert np.all(j[late, 16, 1] > j[late, 14, 1] + 0.05)  # right wrist above the right shoulder
        left_up = np.all(j[late, 13, 1] > j[late, 11, 1] + 0.05)
        assert left_up == (action == "wave_both")
        assert np.ptp(j[late, 16, 0]) > 0.05  # the hand moves to and fro
    elif action == "clap":
        gap = np.linalg.norm(j[:, 13] - j[:, 16], axis=-1)
        assert gap[int(m.fps):].min() < 0.08 and gap[int(m.fps):].max() > 0.2
    elif action == "punch":
        for sh, wr in ((11, 13), (14, 16)):
            assert (j[:, wr, 2] - j[:, sh, 2]).max() > 0.8 * arm
    elif action == "kick":
        assert j[:, 3, 1].max() > ankle + 0.35 * leg  # the right foot comes up
        assert np.ptp(j[:, 6, 1]) < 1e-6  # the left one stays down
    elif action == "bend":
        assert j[:, 10, 1].min() < rest[10, 1] - 0.25
    elif action == "turn":
        cosang = m.face @ m.face[0]
        assert cosang.min() < -0.9  # half a turn
    elif action == "walk":
        assert j[-1, 0, 2] - j[0, 0, 2] > 3.0


@pytest.mark.parametrize("action", ACTIONS)
def test_actions_do_what_they_say(action: str) -> None:
    for k, ident in enumerate(IDENTITIES):
        m = generate_motion(action, ident, num_frames=int(6 * FPS), fps=FPS, seed=k)
        _check_semantics(action, m, ident)
