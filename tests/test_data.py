"""Dataset readers (hmore.data) on small slices of the shared data: shapes, splits, joint order (left/right by the
facing rule of the READMEs), constant bone lengths, and the Human3.6M camera projection against the README's table.
Every test skips with a reason when its dataset is absent."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from conftest import require_file
from hmore.errors import InputError
from hmore.skeleton import COCO17, H36M17, bone_lengths


# ---- Human3.6M ------------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def h36m(shared_data: Path):
    from hmore.data.h36m import load_h36m

    for f in ("poses_3d.npz", "detections_2d_sh.npz", "cameras.json"):
        require_file(shared_data, "h36m", f)
    return load_h36m(shared_data / "h36m")


def test_h36m_split_and_frames_list(h36m) -> None:
    from hmore.data.h36m import ACTIONS, TEST_SUBJECTS, action_of

    test = h36m.examples(TEST_SUBJECTS)
    # S9 has 29 sequences with 3D (Discussion 1 is missing) x 4 cameras, S11 30 x 4 minus Directions/54138969.
    assert len(test) == 29 * 4 + 30 * 4 - 1
    assert not any(e.sequence == "S9/Discussion 1" for e in test)
    assert not any(e.key == "S11/Directions/54138969" for e in test)
    assert {e.action for e in test} == set(ACTIONS)
    assert action_of("S1/Directions 1") == action_of("Directions") == "Directions"
    with pytest.raises(InputError, match="absent"):
        h36m.poses_world("S9/Discussion 1")
    with pytest.raises(InputError, match="subject"):
        h36m.examples(["S2"])


def test_h36m_shapes_and_sh_mapping(h36m) -> None:
    from hmore.data.h36m import SH_TO_H36M17

    seq, cam = "S9/Walking", "54138969"
    x3 = h36m.poses_world(seq)
    t = x3.shape[0]
    assert x3.shape == (t, 17, 3) and x3.dtype == np.float32
    sh = h36m.detections_sh(seq, cam)
    assert sh.shape == (t, 16, 2)
    k = h36m.keypoints_sh(seq, cam)
    assert k.shape == (t, 17, 3)
    np.testing.assert_array_equal(k[:, list(SH_TO_H36M17), :2], sh)
    assert (k[:, 9] == 0).all() and (k[:, list(SH_TO_H36M17), 2] == 1).all()  # Neck/Nose has no detection
    near = h36m.keypoints_sh(seq, cam, mapping="nearest")
    assert (near[:, 7] == 0).all()  # ... or Spine, by position
    np.testing.assert_array_equal(near[:, 8, :2], sh[:, 7])  # MPII thorax -> Thorax
    gt = h36m.keypoints_gt(seq, cam)
    assert gt.shape == (t, 17, 3) and (gt[..., 2] == 1).all()
    pc = h36m.poses_camera(seq, cam)
    assert pc.shape == (t, 17, 3) and np.abs(pc[:, 0]).max() == 0.0
    assert (h36m.poses_camera(seq, cam, root_relative=False)[..., 2] > 1000).all()  # in front of the camera, mm


def test_h36m_projection_matches_the_readme(h36m) -> None:
    from hmore.data.h36m import CAMERAS, SH_TO_H36M17

    # README "Projection check", S1/Directions: median px distance per SH joint (baseline mapping), mean of 4 cameras.
    readme = [10.7, 6.5, 9.5, 9.4, 5.2, 13.0, 7.0, 47.7, 6.7, 21.0, 7.3, 6.3, 6.0, 6.4, 5.2, 5.7]
    med = []
    for cam in CAMERAS:
        gt = h36m.keypoints_gt("S1/Directions", cam)[:, list(SH_TO_H36M17), :2]
        med.append(np.median(np.linalg.norm(gt - h36m.detections_sh("S1/Directions", cam), axis=-1), axis=0))
    np.testing.assert_allclose(np.mean(med, axis=0), readme, atol=0.051)
    c = h36m.camera("S1", "54138969")
    np.testing.assert_allclose(c.R @ c.R.T, np.eye(3), atol=1e-6)
    assert np.linalg.det(c.R) == pytest.approx(1.0, abs=1e-6)
    assert (c.width, c.height) == (1000, 1002)
    # without distortion the projection moves: the coefficients are used
    plain = type(c)(**{**c.__dict__, "k": np.zeros(3), "p": np.zeros(2)})
    pts = h36m.poses_world("S1/Directions")[:50]
    assert np.abs(plain.project(pts) - c.project(pts)).max() > 0.5


def test_h36m_left_right_and_bone_lengths(h36m) -> None:
    from hmore.data.h36m import world_to_hmore

    for seq in ("S1/Walking", "S11/Eating"):
        x = h36m.poses_world(seq)[::10].astype(np.float64)
        # (Thorax - Hip) x (RHip - LHip) points the way the nose points (the README's facing rule)
        fwd = np.cross(x[:, 8] - x[:, 0], x[:, 1] - x[:, 4])
        nose = x[:, 9] - x[:, 8]
        assert np.mean((fwd * nose).sum(-1) > 0) > 0.9
        bl = bone_lengths(x, H36M17)  # (F, 16)
        assert (bl.std(axis=0) / bl.mean(axis=0)).max() < 0.01  # constant up to the 0.5 mm quantisation
        left = [H36M17.bones.index(b) for b in ((4, 5), (5, 6), (11, 12), (12, 13))]
        right = [H36M17.bones.index(b) for b in ((1, 2), (2, 3), (14, 15), (15, 16))]
        np.testing.assert_allclose(bl[:, left].mean(0), bl[:, right].mean(0), rtol=0.02)  # left = right limbs
        w = world_to_hmore(x)
        assert (w[:, 10, 1] > w[:, 0, 1]).mean() > 0.95  # y up: the head above the root
        np.testing.assert_allclose(bone_lengths(w, H36M17), bl / 1000, rtol=1e-9)


def test_h36m_motion_clip(h36m) -> None:
    clip = h36m.motion_clip("S5/Walking 1")
    assert clip.fps == 50.0 and clip.joints.shape[1:] == (17, 3) and clip.name == "h36m:S5/Walking 1"
    assert 0.7 < np.median(clip.joints[:, 0, 1]) < 1.2  # pelvis height in metres


# ---- NW-UCLA --------------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def ucla(shared_data: Path):
    from hmore.data.nw_ucla import load_nw_ucla

    require_file(shared_data, "nw_ucla", "nw_ucla_skeletons.npz")
    return load_nw_ucla(shared_data / "nw_ucla")


def test_nw_ucla_counts_and_split(ucla) -> None:
    from hmore.data.nw_ucla import ACTIONS

    assert len(ucla) == 1484
    train, test = ucla.split("train"), ucla.split("test")
    assert (len(train), len(test)) == (1020, 464)
    assert {s.view for s in train} == {1, 2} and {s.view for s in test} == {3}
    assert sorted({s.label for s in ucla.sequences}) == list(range(10))
    s = ucla.sequences[0]
    assert s.name == "a01_s01_e00_v01" and s.action == ACTIONS[0] and s.joints.shape == (s.num_frames, 20, 3)
    assert sum(x.num_frames for x in ucla.sequences) == 58534
    with pytest.raises(InputError, match="split"):
        ucla.split("val")


def test_nw_ucla_copies_across_views(ucla) -> None:
    copies = ucla.copies((3,), (1, 2))  # the shared release: view 3 of a02 and a03 is view 2's files again
    assert len(copies) == 95 and {c[:3] for c in copies} == {"a02", "a03"}
    by = {s.name: s for s in ucla.sequences}
    assert all(np.array_equal(by[c].joints, by[c.replace("_v03", "_v02")].joints) for c in sorted(copies)[::10])
    assert ucla.copies((2,), (1,)) == set()


def test_nw_ucla_copies_tiny_file(tmp_path: Path) -> None:
    from hmore.data.nw_ucla import NWUCLA

    # only the byte-identical view-3 sequence counts, not a prefix of a training one or a near copy
    a = np.random.default_rng(0).normal(size=(4, 20, 3)).astype(np.float32)
    seqs = [a, a, a[:3], a + 1e-6]
    np.savez(tmp_path / "nw_ucla_skeletons.npz", joints=np.concatenate(seqs),
             offsets=np.cumsum([0] + [len(x) for x in seqs]), label=np.zeros(4, np.int16),
             action_id=np.ones(4, np.int16), subject=np.ones(4, np.int16), episode=np.arange(4, dtype=np.int16),
             view=np.array([2, 3, 3, 3], np.int16), split=np.array([0, 1, 1, 1], np.int8),
             file_name=np.array([f"a01_s01_e0{i}_v0{v}" for i, v in enumerate([2, 3, 3, 3])]))
    assert NWUCLA(tmp_path).copies((3,), (1, 2)) == {"a01_s01_e01_v03"}


def test_nw_ucla_left_right_and_mapping(ucla) -> None:
    from hmore.data.nw_ucla import sensor_view, to_h36m17

    j = np.concatenate([s.joints for s in ucla.sequences[::20]]).astype(np.float64)
    fwd = np.cross(j[:, 2] - j[:, 0], j[:, 8] - j[:, 4])  # (ShoulderCenter - HipCenter) x (ShoulderR - ShoulderL)
    feet = (j[:, 15] - j[:, 14]) + (j[:, 19] - j[:, 18])
    assert np.mean((fwd * feet).sum(-1) > 0) > 0.85
    h = to_h36m17(j)
    np.testing.assert_allclose(h[:, 3], j[:, 18])  # right ankle <- AnkleRight
    np.testing.assert_allclose(h[:, 13], j[:, 6])  # left wrist <- WristLeft
    np.testing.assert_allclose(h[:, 7], 0.5 * (j[:, 0] + j[:, 2]))
    # The README's median Spine-ShoulderCenter length, 335 mm
    assert np.median(np.linalg.norm(j[:, 2] - j[:, 1], axis=-1)) == pytest.approx(0.335, abs=0.01)
    px = sensor_view(np.array([[0.0, 0.0, 2.0], [0.5, 0.0, 2.0], [0.0, 0.0, 0.0]]))
    np.testing.assert_allclose(px[0], [320, 240, 1])
    assert px[1, 0] < 320  # +x is the sensor's left: the image's left
    np.testing.assert_array_equal(px[2], [0, 0, 0])  # untracked joint


# ---- Bandai-Namco ---------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def bandai_root(shared_data: Path) -> Path:
    require_file(shared_data, "bandai", "index.json")
    return shared_data / "bandai"


def test_bandai_index_labels(bandai_root: Path) -> None:
    from hmore.data import bandai

    takes = bandai.load_index(bandai_root)
    assert len(takes) == 1164
    assert {t.set for t in takes} == {1, 2}
    walk = bandai.takes(root=bandai_root, actions=["walk"], styles=["normal"], sets=[2])
    assert len(walk) == 14 and all(t.name.startswith("dataset-2_walk_normal_") for t in walk)
    held = [t for t in takes if bandai.is_held_out(t)]
    assert 0.05 < len(held) / len(takes) < 0.15 and held == [t for t in takes if bandai.is_held_out(t)]


def test_bandai_joints_left_right_and_bones(bandai_root: Path) -> None:
    from hmore.data import bandai

    take = bandai.takes(root=bandai_root, actions=["wave-right-hand"], styles=["normal"])[0]
    require_file(bandai_root, "bvh", take.path.name)
    h = bandai.take_joints(take)
    assert h.shape == (take.frames, 17, 3)
    assert h[:, 16, 1].max() > h[:, 10, 1].max() > h[:, 13, 1].max()  # the right wrist goes above the head
    fwd = np.cross(h[:, 8] - h[:, 0], h[:, 1] - h[:, 4])
    assert np.mean((fwd * (h[:, 9] - h[:, 8])).sum(-1) > 0) > 0.95  # facing rule: towards the nose
    bvh = bandai.read_take(take)
    pos = bvh.forward_kinematics(scale="cm")
    toes = pos[:, bvh.index("Toes_L")] - pos[:, bvh.index("Foot_L")]
    assert np.mean((fwd * toes).sum(-1) > 0) > 0.95  # ... and the toes
    limbs = [H36M17.bones.index(b) for b in ((1, 2), (2, 3), (4, 5), (5, 6), (11, 12), (12, 13), (14, 15), (15, 16))]
    bl = bone_lengths(h, H36M17)[:, limbs]
    assert (bl.std(axis=0) / bl.mean(axis=0)).max() < 1e-3
    assert 0.3 < bl[0, 0] < 0.5  # thigh in metres (centimetre files)
    standing_top = h[0, 10, 1] - h[0, [3, 6], 1].min()
    assert 1.2 < standing_top < 1.8
    coco = bandai.take_joints(take, layout="coco17")
    np.testing.assert_allclose(coco[:, COCO17.index("right_wrist")], h[:, 16])
    clip = bandai.motion_clip(take, fps=15.0)
    assert clip.fps == 15.0 and abs(clip.joints.shape[0] - (take.frames + 1) // 2) <= 1


def test_bandai_take_plays_in_the_generator(bandai_root: Path) -> None:
    from hmore.data import bandai
    from hmore.synth.identity import sample_identity
    from hmore.synth.motion import motion_from_bvh

    take = bandai.takes(root=bandai_root, actions=["walk"], styles=["normal"], sets=[2])[0]
    require_file(bandai_root, "bvh", take.path.name)
    m = motion_from_bvh(take.path, sample_identity(0, 0), fps=30.0, num_frames=80)
    assert m.joints.shape == (80, 17, 3) and m.name == f"bvh:{take.name}"
    assert np.linalg.norm(m.joints[-1, 0, [0, 2]] - m.joints[0, 0, [0, 2]]) > 1.5  # it walks off (1.5 m in 2.7 s)


def test_layout_parents_follow_the_bones() -> None:
    # H36M-17: hips and belly hang from the root, arms and head from the neck (8)
    assert H36M17.parents == (-1, 0, 1, 2, 0, 4, 5, 0, 7, 8, 9, 8, 11, 12, 8, 14, 15)
    with pytest.raises(ValueError, match="not a tree"):
        _ = COCO17.parents  # the face triangle gives a joint two parents
