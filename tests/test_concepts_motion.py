"""Canonical motion features, sequences and their cache (hmore.concepts.motion)."""

from __future__ import annotations

import numpy as np
import pytest

from hmore.concepts import motion as cm
from hmore.errors import InputError, UsageError


def _walk(frames: int = 20, heading: float = 0.3, seed: int = 0) -> np.ndarray:
    from hmore.synth.identity import sample_identity
    from hmore.synth.motion import generate_motion

    m = generate_motion("walk", sample_identity(3), num_frames=frames, fps=cm.MODEL_FPS, seed=seed, heading=heading)
    return m.joints


def test_features_ignore_heading_position_and_size():
    j = _walk()
    ref = cm.window_features(j)
    turned = j @ cm.rot_y(1.1).T + np.array([3.0, 0.0, -2.0])
    f = cm.window_features(turned)
    np.testing.assert_allclose(f.states, ref.states, atol=1e-5)
    np.testing.assert_allclose(f.velocity, ref.velocity, atol=1e-5)
    bigger = cm.window_features(j * 1.3)
    np.testing.assert_allclose(bigger.states, ref.states, atol=1e-5)  # leg lengths as the unit


def test_features_values_by_hand():
    j = _walk(frames=6)
    f = cm.window_features(j, fps=15.0)
    assert f.states.shape == (6, cm.STATE_DIM) and f.velocity.shape == (5, cm.VELOCITY_DIM)
    k = np.einsum("ij,tnj->tni", f.rotation, j) / f.scale
    pose = k - k[:, :1]
    np.testing.assert_allclose(f.states[:, :51], pose.reshape(6, 51), atol=1e-5)
    np.testing.assert_allclose(f.velocity[:, :51], np.diff(pose, axis=0).reshape(5, 51) * 15.0 / cm.VELOCITY_UNIT,
                               atol=1e-4)
    root_step = np.diff(k[:, 0], axis=0) * 15.0 / cm.VELOCITY_UNIT
    np.testing.assert_allclose(f.velocity[:, 51:], root_step, atol=1e-5)
    np.testing.assert_allclose(f.states[1:, 51:54], root_step, atol=1e-5)  # past root motion only
    assert (f.states[:, 54] == 1).all()
    no_root = cm.window_features(j, has_root=False)
    assert (no_root.states[:, 51:] == 0).all() and (no_root.velocity[:, 51:] == 0).all()
    np.testing.assert_allclose(no_root.states[:, :51], f.states[:, :51])


def test_facing_rotation_turns_body_to_face_plus_z():
    j = _walk()
    for angle in (0.0, 0.7, -2.5):
        pose = j[10] @ cm.rot_y(angle).T
        p = pose @ cm.facing_rotation(pose).T
        left = (p[cm.L_HIP] - p[cm.R_HIP]) + (p[cm.L_SHOULDER] - p[cm.R_SHOULDER])
        assert left[0] > 0 and abs(left[2]) < 1e-6  # left is +x, so the body faces +z


def test_to_y_up_frames():
    p = np.array([[1.0, 2.0, 3.0]])
    np.testing.assert_allclose(cm.to_y_up(p, "camera"), [[1.0, -2.0, -3.0]])
    np.testing.assert_allclose(cm.to_y_up(p, "y_up"), p)
    np.testing.assert_allclose(cm.to_y_up(np.array([[1000.0, 2000.0, 3000.0]]), "h36m_world"), [[1.0, 3.0, -2.0]])
    with pytest.raises(UsageError):
        cm.to_y_up(p, "z_up")
    for frame in ("camera", "h36m_world"):  # proper rotations keep left and right: det +1
        basis = cm.to_y_up(np.eye(3), frame)
        assert np.isclose(np.linalg.det(basis / np.linalg.norm(basis, axis=1, keepdims=True)), 1.0)


def test_window_padding():
    j = _walk(frames=30)
    wb = cm.make_windows([j[:25], j[:10]], window=24, has_root=[True, False])
    assert wb.states.shape == (2, 24, cm.STATE_DIM)
    assert wb.valid[0].all() and wb.velocity_valid[0].all()  # 25 frames: the 24th has a target
    assert wb.valid[1].sum() == 10 and wb.velocity_valid[1].sum() == 9
    assert (wb.states[1, 10:] == 0).all() and (wb.states[1, :10, 54] == 0).all()
    with pytest.raises(ValueError):
        cm.window_features(np.zeros((5, 16, 3)))


def test_sequences_roundtrip(tmp_path):
    seqs = cm.procedural_sequences(identities=[0], split="train", num_frames=12, actions=["walk", "wave_one"])
    assert [s.action for s in seqs] == ["walk", "wave_one"] and seqs[0].joints.shape == (12, 17, 3)
    path = cm.save_sequences(tmp_path / "s.npz", seqs)
    back = cm.load_sequences(path)
    assert [s.name for s in back] == [s.name for s in seqs]
    np.testing.assert_allclose(back[1].joints, seqs[1].joints, atol=1e-6)
    assert cm.sequence_summary(back) == {"procedural/train": 24}
    with pytest.raises(InputError):
        cm.load_sequences(tmp_path / "missing.npz")
    with pytest.raises(UsageError):
        cm.build_skeleton_cache(tmp_path, sources=["kinetics"])


def test_frame_pose_features_are_per_frame_canonical():
    j = _walk()
    f = cm.frame_pose_features(j)
    g = cm.frame_pose_features(j @ cm.rot_y(2.0).T + 5.0)
    assert f.shape == (20, 51)
    np.testing.assert_allclose(f, g, atol=1e-5)
    one_by_one = np.stack([((p - p[0]) @ cm.facing_rotation(p).T / cm.leg_length(j)).reshape(-1) for p in j])
    np.testing.assert_allclose(f, one_by_one, atol=1e-6)


def test_resample_joints():
    j = np.arange(2 * 17 * 3, dtype=float).reshape(2, 17, 3)
    r = cm.resample_joints(np.concatenate([j, j[-1:] + 3]), 30.0, 15.0)
    assert r.shape == (2, 17, 3)
    np.testing.assert_allclose(r[0], j[0])


def test_velocity_horizon_is_the_mean_velocity_over_h_frames_by_hand():
    j = _walk(frames=7)
    one = cm.window_features(j, fps=15.0)
    three = cm.window_features(j, fps=15.0, horizon=3)
    np.testing.assert_allclose(three.states, one.states)  # the states do not depend on the target
    assert three.velocity.shape == (4, cm.VELOCITY_DIM)
    k = np.einsum("ij,tnj->tni", one.rotation, j) / one.scale
    pose = (k - k[:, :1]).reshape(7, 51)
    unit = 15.0 / cm.VELOCITY_UNIT
    np.testing.assert_allclose(three.velocity[:, :51], (pose[3:] - pose[:4]) / 3 * unit, atol=1e-4)
    np.testing.assert_allclose(three.velocity[:, 51:], (k[3:, 0] - k[:4, 0]) / 3 * unit, atol=1e-5)
    # the mean of three one-frame velocities
    np.testing.assert_allclose(three.velocity[0], one.velocity[:3].mean(axis=0), atol=1e-5)
    assert (cm.window_features(j, horizon=3, has_root=False).velocity[:, 51:] == 0).all()
    assert cm.window_features(j[:2], horizon=3).velocity.shape == (0, cm.VELOCITY_DIM)  # too short: no target
    for bad in (0, 1.5):
        with pytest.raises(ValueError, match="horizon"):
            cm.window_features(j, horizon=bad)


def test_window_padding_with_a_velocity_horizon():
    j = _walk(frames=30)
    wb = cm.make_windows([j[:27], j[:10]], window=24, horizon=3)
    assert wb.valid[0].all() and wb.velocity_valid[0].all()  # 24 + 3 frames: every window frame has a target
    assert wb.valid[1].sum() == 10 and wb.velocity_valid[1].sum() == 7  # the last 3 frames have none
    f = cm.window_features(j[:10], horizon=3)
    np.testing.assert_allclose(wb.velocity[1, :7], f.velocity)
    assert (wb.velocity[1, 7:] == 0).all()
