"""hmore.metrics.flow on hand-made cases whose answers are known exactly."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest

from hmore.metrics import flow as fm

H, W = 48, 64


def _texture(seed: int = 0) -> np.ndarray:
    """(H, W, 3) uint8 smooth random texture (every pixel distinct from its neighbours)."""
    rng = np.random.default_rng(seed)
    noise = rng.uniform(0, 255, (H, W, 3)).astype(np.float32)
    return np.clip(cv2.GaussianBlur(noise, (0, 0), 1.0) * 2.0 - 127, 0, 255).astype(np.uint8)


def _shift(img: np.ndarray, dx: int, dy: int) -> np.ndarray:
    """Frame t+1 of a scene translated by (dx, dy): I1(y, x) = I0(y - dy, x - dx) (wrapping at the borders)."""
    return np.roll(img, shift=(dy, dx), axis=(0, 1))


def _const(u: float, v: float) -> np.ndarray:
    return np.broadcast_to(np.array([u, v], np.float32), (H, W, 2)).copy()


def _box(i0: int, i1: int, j0: int, j1: int) -> np.ndarray:
    m = np.zeros((H, W), np.uint8)
    m[i0:i1, j0:j1] = 1
    return m


# ---- photometric error ------------------------------------------------------------------------------------------


def test_known_translation_has_zero_photometric_error_in_the_interior():
    f0 = _texture()
    f1 = _shift(f0, 3, -2)
    mask = _box(10, 38, 12, 52)  # interior: away from the wrapped borders and the census window
    pe = fm.photometric_error(f0, f1, _const(3, -2), mask, flow_backward=_const(-3, 2))
    assert pe.l1 == pytest.approx(0.0, abs=1e-6)
    assert pe.census == pytest.approx(0.0, abs=1e-9)
    assert pe.ssim == pytest.approx(0.0, abs=1e-4)
    assert pe.num_pixels == int(mask.sum()) and pe.valid_fraction == 1.0
    wrong = fm.photometric_error(f0, f1, _const(0, 0), mask)
    assert wrong.l1 > 0.05 and wrong.census > 0.2 and wrong.ssim > 0.1


def test_photometric_l1_by_hand():
    f0 = np.full((H, W, 3), 100, np.uint8)
    f1 = np.full((H, W, 3), 110, np.uint8)
    pe = fm.photometric_error(f0, f1, _const(0, 0), None)
    assert pe.l1 == pytest.approx(10 / 255, rel=1e-6)
    assert pe.census == 0.0  # flat images: no neighbour darker, the same signature


def test_warp_flags_samples_outside_the_image():
    warped, inside = fm.warp_backward(_texture(), _const(5, 0))
    assert warped.shape == (H, W, 3)
    assert not inside[:, W - 5:].any() and inside[:, : W - 5].all()


def test_forward_backward_check_flags_inconsistent_pixels():
    fw = _const(2, 0)
    bw = _const(-2, 0)
    assert fm.forward_backward_valid(fw, bw).all()
    bw[:, 30:] = 0.0  # where the forward flow lands at x >= 30 the backward flow does not come back
    ok = fm.forward_backward_valid(fw, bw)
    assert ok[:, :27].all() and not ok[:, 29:].any()
    f0 = _texture()
    pe = fm.photometric_error(f0, _shift(f0, 2, 0), fw, _box(5, 40, 5, 60), flow_backward=bw)
    assert pe.valid_fraction < 0.6 and pe.num_pixels == int(ok[5:40, 5:60].sum())
    shared = fm.photometric_error(f0, _shift(f0, 2, 0), fw, _box(5, 40, 5, 60), occluded=~ok)
    assert shared.num_pixels == pe.num_pixels and shared.l1 == pe.l1


def test_census_transform_counts_darker_neighbours():
    g = np.zeros((5, 5), np.float32)
    g[2, 2] = 10.0
    c = fm.census_transform(g, radius=1)
    assert c.shape == (5, 5, 8)
    assert c[2, 2].all() and not c[0, 0].any()


# ---- skeleton consistency ---------------------------------------------------------------------------------------


def _person() -> tuple[np.ndarray, np.ndarray]:
    """A standing COCO-17 skeleton (1, 17, 3) and a mask around it."""
    rng = np.random.default_rng(3)
    xy = np.stack([rng.uniform(22, 42, 17), rng.uniform(8, 40, 17)], axis=1)
    kp = np.concatenate([xy, np.ones((17, 1))], axis=1)[None].astype(np.float32)
    return kp, _box(6, 42, 18, 46)


def test_skeleton_consistency_is_one_for_the_skeletons_translation():
    kp, mask = _person()
    kp1 = kp.copy()
    kp1[..., 0] += 3.0
    kp1[..., 1] -= 1.5
    res = fm.skeleton_consistency(_const(3.0, -1.5), mask, kp, kp1)
    assert res.consistency == pytest.approx(1.0)
    assert res.angle_violation == 0.0 and res.intensity_violation == 0.0
    assert res.num_pixels == int(mask.sum())


def test_skeleton_consistency_catches_rotation_and_scaling():
    kp, mask = _person()
    kp1 = kp.copy()
    kp1[..., 0] += 4.0
    a = math.radians(30)
    rotated = fm.skeleton_consistency(_const(4 * math.cos(a), 4 * math.sin(a)), mask, kp, kp1)
    assert rotated.angle_violation == 1.0 and rotated.intensity_violation == 0.0 and rotated.consistency == 0.0
    small_turn = fm.skeleton_consistency(_const(4 * math.cos(0.2), 4 * math.sin(0.2)), mask, kp, kp1)  # 11.5 deg
    assert small_turn.consistency == 1.0
    doubled = fm.skeleton_consistency(_const(8.0, 0.0), mask, kp, kp1)
    assert doubled.intensity_violation == 1.0 and doubled.angle_violation == 0.0 and doubled.consistency == 0.0


def test_skeleton_matches_sorts_each_pixel_into_its_break():
    kp, mask = _person()
    kp1 = kp.copy()
    kp1[..., 0] += 4.0  # every bone point moves by k = (4, 0)
    flow = _const(4.0, 0.0)  # rows 6-14 ok
    flow[15:24] = (2.0, 0.0)  # |u| = 0.5 |k|: slow
    flow[24:33] = (6.0, 0.0)  # 1.5 |k|: fast
    a = math.radians(30)
    flow[33:42] = (4 * math.cos(a), 4 * math.sin(a))  # 30 degrees off, right length: angle only
    m = fm.skeleton_matches(flow, mask, kp, kp1)
    rows = m.pixels[:, 0]
    assert len(m.flow) == int(mask.sum()) and m.moving.all() and not m.rest_break.any()
    np.testing.assert_array_equal(m.slow, (rows >= 15) & (rows < 24))
    np.testing.assert_array_equal(m.fast, (rows >= 24) & (rows < 33))
    np.testing.assert_array_equal(m.angle_break, rows >= 33)
    np.testing.assert_array_equal(m.ok, rows < 15)
    np.testing.assert_allclose(m.bone_disp, np.tile([4.0, 0.0], (len(rows), 1)), atol=1e-5)
    np.testing.assert_array_equal(m.subject, 1)
    res = fm.skeleton_consistency(flow, mask, kp, kp1)  # the summary counts the same pixels
    assert res.consistency == pytest.approx(9 / 36) and res.angle_violation == pytest.approx(9 / 36)
    assert res.intensity_violation == pytest.approx(18 / 36)


def test_skeleton_matches_at_rest_and_bone_of_each_pixel():
    kp, mask = _person()
    flow = _const(0.5, 0.0)  # under 1.2 k0 = 0.6 px: a still point may move this much
    flow[6:12] = (0.0, 0.7)
    m = fm.skeleton_matches(flow, mask, kp, kp.copy())
    assert not m.moving.any() and not m.angle_break.any() and not (m.slow | m.fast).any()
    np.testing.assert_array_equal(m.rest_break, m.pixels[:, 0] < 12)
    # Two people: the pixel on a wrist (joint 9) matches bone 10 (left elbow -> left wrist), on an ankle (joint 15)
    # bone 0 (left ankle -> left knee); labels say whose points a pixel may match.
    xy = np.array([[32, 8], [31, 7], [33, 7], [30, 8], [34, 8], [28, 14], [36, 14], [24, 20], [40, 20], [20, 26],
                   [44, 26], [29, 26], [35, 26], [29, 33], [35, 33], [29, 40], [35, 40]], np.float32)
    two = np.stack([np.concatenate([xy, np.ones((17, 1), np.float32)], axis=1)] * 2)
    two[1, :, 0] += 2.0  # person 2's skeleton, 2 px to the right
    labels = np.zeros((H, W), np.uint8)
    labels[26, 20] = 1  # on person 1's left wrist
    labels[40, 31] = 2  # on person 2's left ankle (29 + 2, 40)
    m = fm.skeleton_matches(_const(0, 0), labels, two, two.copy())
    assert m.subject.tolist() == [1, 2] and m.bone.tolist() == [10, 0]
    assert fm.skeleton_matches(_const(0, 0), np.zeros((H, W), np.uint8), two, two) is None


def test_skeleton_consistency_without_people_is_nan():
    kp, _ = _person()
    res = fm.skeleton_consistency(_const(1, 0), np.zeros((H, W), np.uint8), kp, kp)
    assert math.isnan(res.consistency) and res.num_pixels == 0
    with pytest.raises(ValueError, match=r"\(P, 17, 3\)"):
        fm.skeleton_consistency(_const(1, 0), np.zeros((H, W), np.uint8), kp[0], kp[0])


# ---- boundary alignment -----------------------------------------------------------------------------------------


def test_chamfer_is_zero_on_the_boundary_and_the_shift_when_shifted():
    mask = np.zeros((H, W), np.uint8)
    mask[:, 20:] = 1  # a half plane: its boundary is the column x = 19
    flow = np.where(mask[..., None] > 0, np.float32([2.0, 1.0]), np.float32(0.0)).astype(np.float32)
    assert fm.boundary_chamfer(flow, mask).chamfer == 0.0
    for d in (1, 3, 7):
        shifted = np.zeros_like(mask)
        shifted[:, 20 + d:] = 1
        res = fm.boundary_chamfer(flow, shifted)
        assert res.chamfer == pytest.approx(d)
        assert res.flow_to_boundary == pytest.approx(d) and res.boundary_to_flow == pytest.approx(d)


def test_chamfer_of_a_shifted_disc_lies_between_zero_and_the_shift():
    yy, xx = np.mgrid[:H, :W]
    disc = ((xx - 30) ** 2 + (yy - 24) ** 2 < 12**2).astype(np.uint8)
    flow = disc[..., None] * np.float32([0.0, 3.0])
    assert fm.boundary_chamfer(flow, disc).chamfer == 0.0
    moved = np.roll(disc, 4, axis=1)
    c = fm.boundary_chamfer(flow, moved).chamfer
    assert 1.0 < c < 4.0


def test_chamfer_is_nan_without_flow_edges():
    assert math.isnan(fm.boundary_chamfer(_const(1, 1), _box(10, 20, 10, 20)).chamfer)


def test_label_edges_marks_each_change_once():
    lab = np.zeros((4, 6), np.uint8)
    lab[:, 3:] = 2
    e = fm.label_edges(lab)
    assert e[:, 2].all() and e.sum() == 4


# ---- background leakage -----------------------------------------------------------------------------------------


def test_zero_flow_does_not_leak():
    leak = fm.background_leakage(_const(0, 0), _box(10, 30, 10, 30))
    assert leak.ratio == 0.0 and leak.outside == 0.0 and leak.inside == 0.0


def test_leakage_by_hand():
    mask = _box(15, 30, 20, 40)
    flow = _const(0.6, 0.8)  # |u| = 1 on the background
    flow[10:35, 15:45] = 100.0  # the dilation ring (5 px) is ignored
    flow[15:30, 20:40] = (3.0, 4.0)  # |u| = 5 on the person
    leak = fm.background_leakage(flow, mask, dilate_px=5)
    assert leak.inside == pytest.approx(5.0) and leak.outside == pytest.approx(1.0)
    assert leak.ratio == pytest.approx(0.2)
    assert math.isnan(fm.background_leakage(flow, np.zeros((H, W), np.uint8)).ratio)


# ---- temporal stability -----------------------------------------------------------------------------------------


def test_temporal_stability_ignores_whole_subject_speed_changes():
    mask = _box(10, 30, 10, 30)
    assert fm.temporal_stability(_const(1, 0), _const(3, -2), mask) == pytest.approx(0.0, abs=1e-6)


def test_temporal_stability_by_hand():
    mask = _box(10, 30, 10, 30)
    b = _const(0, 0)
    b[:, 20:] = (2.0, 0.0)  # half of the subject speeds up: median 1, residuals -1 and +1
    assert fm.temporal_stability(_const(0, 0), b, mask) == pytest.approx(1.0)
    assert fm.temporal_stability(_const(0, 0), b, mask, how="mean") == pytest.approx(1.0)


# ---- with ground truth ------------------------------------------------------------------------------------------


def test_epe_and_local_epe_by_hand():
    mask = _box(5, 15, 5, 15)
    mask[30:40, 30:40] = 2
    gt = _const(0, 0)
    assert fm.epe(_const(3, 4), gt, mask) == pytest.approx(5.0)
    assert fm.epe(_const(3, 4), gt) == pytest.approx(5.0)
    v = np.array([[1.0, 0.0], [0.0, -2.0]], np.float32)
    gt = np.zeros((H, W, 2), np.float32)
    gt[mask == 1] = (1.5, 0.0)
    gt[mask == 2] = (0.0, -2.5)
    local = fm.local_from_world(gt, mask, v)
    assert np.allclose(local[mask == 1], (0.5, 0.0)) and np.allclose(local[mask == 2], (0.0, -0.5))
    assert np.all(local[mask == 0] == 0)
    assert fm.local_flow_epe(local, gt, mask, v) == pytest.approx(0.0)
    assert fm.local_flow_epe(np.zeros_like(local), gt, mask, v) == pytest.approx(0.5)
    assert np.allclose(fm.local_from_world(gt, mask)[mask > 0], 0.0)  # median compensation of a rigid motion


def test_shape_errors_name_the_shapes():
    with pytest.raises(ValueError, match=r"\(H, W, 2\)"):
        fm.epe(np.zeros((H, W)), np.zeros((H, W, 2)))
    with pytest.raises(ValueError, match="mask"):
        fm.background_leakage(_const(0, 0), np.zeros((H + 1, W)))


# ---- local flow at the joints -----------------------------------------------------------------------------------


def _pose(x0: float, y0: float) -> np.ndarray:
    """(1, 17, 3) joints on a 3-column grid from (x0, y0), confident; hips (11, 12) side by side."""
    kp = np.zeros((1, 17, 3), np.float32)
    kp[0, :, 0] = x0 + (np.arange(17) % 3) * 4.0
    kp[0, :, 1] = y0 + (np.arange(17) // 3) * 4.0
    kp[0, :, 2] = 0.9
    return kp


def test_joint_local_error_by_hand():
    mask = _box(4, 44, 10, 30)
    kp_t = _pose(12.0, 6.0)
    kp_t1 = kp_t.copy()
    kp_t1[0, :, :2] += [2.0, 1.0]  # the whole body moves by (2, 1)
    kp_t1[0, 9, :2] += [3.0, 0.0]  # and joint 9 (a wrist) moves 3 px more, relative to the pelvis
    zero = np.zeros((H, W, 2), np.float32)
    # zero local flow: the relative motion of the joints (3 px on one of 15 joints) is the error
    assert fm.joint_local_error(zero, mask, kp_t, kp_t1) == pytest.approx(3.0 / 15)
    right = zero.copy()
    x, y = int(kp_t[0, 9, 0]), int(kp_t[0, 9, 1])
    right[y, x] = [3.0, 0.0]  # local flow that carries exactly the wrist's motion relative to the pelvis
    assert fm.joint_local_error(right, mask, kp_t, kp_t1) == pytest.approx(0.0)
    # hips not confident: no pelvis, nothing to score; a joint far from the mask is skipped
    no_hips = kp_t.copy()
    no_hips[0, 11, 2] = 0.1
    assert math.isnan(fm.joint_local_error(zero, mask, no_hips, kp_t1))
    far = kp_t.copy()
    far[0, 9, :2] = [60.0, 40.0]  # outside the mask by far more than search_px
    assert fm.joint_local_error(zero, mask, far, kp_t1) == pytest.approx(0.0)
    with pytest.raises(ValueError, match="kp_t and kp_t1"):
        fm.joint_local_error(zero, mask, kp_t, kp_t1[:, :5])
