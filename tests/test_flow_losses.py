"""H-MoRe losses on hand-made cases: sequence loss, skeleton constraint F, boundary constraint G, Psi's loss."""

from __future__ import annotations

import math

import pytest
import torch

from hmore.losses.boundary_constraint import boundary_constraint, mask_boundary
from hmore.losses.flow_sequence import endpoint_error, sequence_loss
from hmore.losses.skeleton_constraint import (
    match_skeleton_points,
    skeleton_constraint,
    skeleton_constraint_terms,
    skeleton_points,
)
from hmore.losses.subject_velocity import hip_centre_displacement, subject_velocity_loss

# ---------------------------------------------------------------------------------------------------------- sequence


def test_sequence_loss_hand_values() -> None:
    target = torch.zeros(1, 2, 4, 4)
    iterations = torch.stack([torch.full((1, 2, 4, 4), 1.0), torch.full((1, 2, 4, 4), -2.0)])  # N = 2
    assert sequence_loss(iterations, target).item() == pytest.approx(0.8 * 1 + 2.0)
    assert sequence_loss(iterations, target, gamma=0.5).item() == pytest.approx(0.5 * 1 + 2.0)


def test_sequence_loss_ignores_invalid_and_too_long_pixels() -> None:
    target = torch.zeros(1, 2, 2, 2)
    target[0, 0, 1, 1] = 1000.0  # longer than max_flow: ignored
    pred = torch.zeros(1, 1, 2, 2, 2)
    pred[0, 0, 0, 0, 0] = 4.0  # error 4 on one channel of pixel (0, 0)
    pred[0, 0, :, 0, 1] = 100.0  # pixel (0, 1) is marked invalid
    valid = torch.tensor([[[1, 0], [1, 1]]])
    # valid pixels (0,0), (1,0): channel-mean of |err| = (4 + 0 + 0 + 0) / 4
    assert sequence_loss(pred, target, valid).item() == pytest.approx(1.0)


def test_sequence_loss_empty_valid_is_zero_with_grad() -> None:
    pred = torch.ones(3, 1, 2, 4, 4, requires_grad=True)
    loss = sequence_loss(pred, torch.zeros(1, 2, 4, 4), torch.zeros(1, 4, 4))
    loss.backward()
    assert loss.item() == 0.0 and torch.isfinite(pred.grad).all()


def test_endpoint_error_hand_value_and_shape_errors() -> None:
    flow = torch.zeros(2, 2, 3, 3)
    flow[:, 0], flow[:, 1] = 3.0, 4.0
    assert endpoint_error(flow, torch.zeros_like(flow)).item() == pytest.approx(5.0)
    with pytest.raises(ValueError, match=r"\(2, 2, 3, 3\) and \(2, 2, 3, 4\)"):
        endpoint_error(flow, torch.zeros(2, 2, 3, 4))
    with pytest.raises(ValueError, match=r"\(N, B, 2, H, W\)"):
        sequence_loss(flow, flow)
    with pytest.raises(ValueError, match=r"valid must be"):
        sequence_loss(flow[None], flow, torch.ones(2, 3, 4))


# ---------------------------------------------------------------------------------------------------------- skeleton
# A standing person, COCO-17 (x, y) in pixels, inside a 72x64 image; the mask is the box around it.
_POSE = torch.tensor([
    [32, 10], [34, 8], [30, 8], [36, 9], [28, 9], [38, 18], [26, 18], [40, 28], [24, 28], [41, 37], [23, 37],
    [36, 40], [28, 40], [37, 52], [27, 52], [37, 62], [27, 62],
], dtype=torch.float32)
_H, _W = 72, 64
_MASK_AREA = 58 * 24


def _person(conf: float = 1.0) -> torch.Tensor:
    return torch.cat([_POSE, torch.full((17, 1), conf)], dim=1)[None, None]  # (1, 1, 17, 3)


def _mask() -> torch.Tensor:
    m = torch.zeros(1, _H, _W, dtype=torch.long)
    m[0, 6:64, 20:44] = 1
    return m


def _uniform_flow(v: torch.Tensor) -> torch.Tensor:
    return v.view(1, 2, 1, 1).expand(1, 2, _H, _W).clone()


def _rotate(v: torch.Tensor, deg: float) -> torch.Tensor:
    a = math.radians(deg)
    rot = torch.tensor([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])
    return rot @ v


_D = torch.tensor([3.0, 1.0])


def _terms(flow: torch.Tensor, shift: torch.Tensor = _D) -> tuple[float, float]:
    kp1 = _person().clone()
    kp1[..., :2] += shift
    fa, fi = skeleton_constraint_terms(flow, _person(), kp1, _mask())
    return fa.item(), fi.item()


def test_skeleton_constraint_is_zero_for_the_bone_displacement() -> None:
    assert _terms(_uniform_flow(_D)) == (0.0, 0.0)
    kp1 = _person().clone()
    kp1[..., :2] += _D
    assert skeleton_constraint(_uniform_flow(_D), _person(), kp1, _mask()).item() == 0.0


def test_skeleton_angle_term_fires_beyond_15_degrees_only() -> None:
    assert _terms(_uniform_flow(_rotate(_D, 10.0))) == (0.0, 0.0)
    fa, fi = _terms(_uniform_flow(_rotate(_D, 30.0)))
    expected = (math.cos(math.radians(15)) - math.cos(math.radians(30))) * _MASK_AREA / (_H * _W)
    assert fa == pytest.approx(expected, rel=1e-4)
    assert fi == 0.0


def test_skeleton_intensity_term_fires_outside_0_8_to_1_2() -> None:
    assert _terms(_uniform_flow(1.1 * _D)) == (0.0, 0.0)
    assert _terms(_uniform_flow(0.85 * _D)) == (0.0, 0.0)
    fa, fi = _terms(_uniform_flow(2.0 * _D))
    assert fa == 0.0
    assert fi == pytest.approx((2.0 - 1.2) * _MASK_AREA / (_H * _W), rel=1e-4)
    _, fi_half = _terms(_uniform_flow(0.5 * _D))
    assert fi_half == pytest.approx((0.8 - 0.5) * _MASK_AREA / (_H * _W), rel=1e-4)


def test_skeleton_at_rest_penalises_only_flow_length() -> None:
    still = torch.zeros(2)
    assert _terms(_uniform_flow(torch.zeros(2)), shift=still) == (0.0, 0.0)
    fa, fi = _terms(_uniform_flow(torch.tensor([2.0, 0.0])), shift=still)
    assert fa == 0.0
    assert fi == pytest.approx((2.0 - 0.6) / 0.5 * _MASK_AREA / (_H * _W), rel=1e-4)  # relu(|u| - 1.2 k0) / k0


def test_low_confidence_points_lose_the_match() -> None:
    # One pixel at (18, 10); a confident point 8 px away and an unsure one 2 px away.
    masks = torch.zeros(1, 11, 21, dtype=torch.long)
    masks[0, 10, 18] = 1
    pos = torch.tensor([[[[10.0, 10.0], [20.0, 10.0], [18.0, 10.0]]]])  # (B=1, P=1, Q=3, 2)
    flat = 10 * 21 + 18
    index, matched = match_skeleton_points(masks, pos, torch.tensor([[[0.99, 0.1, 0.0]]]))
    assert matched[0, flat] and index[0, flat] == 0  # the missing point (conf 0) at distance 0 never matches
    index, _ = match_skeleton_points(masks, pos, torch.tensor([[[0.99, 0.99, 0.0]]]))
    assert index[0, flat] == 1  # equally sure: the nearer one wins
    assert matched.sum() == 1  # background pixels are not matched


def test_unsure_limb_moving_differently_costs_less_than_a_sure_one() -> None:
    kp1 = _person().clone()
    kp1[..., :2] += _D
    arm = [6, 8, 10]
    kp1[0, 0, arm, :2] += torch.tensor([0.0, 6.0])  # the right arm moves down as well
    flow = _uniform_flow(_D)
    sure = skeleton_constraint(flow, _person(), kp1, _mask()).item()
    kp_unsure, kp1_unsure = _person().clone(), kp1.clone()
    kp_unsure[0, 0, arm, 2] = 0.05
    kp1_unsure[0, 0, arm, 2] = 0.05
    unsure = skeleton_constraint(flow, kp_unsure, kp1_unsure, _mask()).item()
    assert sure > 0 and unsure < 0.5 * sure


def test_skeleton_points_layout() -> None:
    pos, disp, conf = skeleton_points(_person(), _person(0.5), points_per_bone=5)
    assert pos.shape == (1, 1, 19 * 5, 2) and disp.shape == pos.shape and conf.shape == (1, 1, 95)
    assert torch.allclose(pos[0, 0, 0], _POSE[15]) and torch.allclose(pos[0, 0, 4], _POSE[13])  # bone (15, 13)
    assert torch.allclose(pos[0, 0, 2], (_POSE[15] + _POSE[13]) / 2)
    assert torch.all(conf == 0.5)


def test_skeleton_constraint_batches_empty_masks_and_grad() -> None:
    kp1 = _person().clone()
    kp1[..., :2] += _D
    flow = torch.cat([_uniform_flow(2 * _D), _uniform_flow(2 * _D)]).requires_grad_(True)
    masks = torch.cat([_mask(), torch.zeros(1, _H, _W, dtype=torch.long)])
    both = skeleton_constraint(flow, torch.cat([_person()] * 2), torch.cat([kp1] * 2), masks)
    one = skeleton_constraint(flow[:1], _person(), kp1, _mask())
    assert both.item() == pytest.approx(one.item() / 2)  # the empty image adds 0 to the batch mean
    both.backward()
    assert torch.isfinite(flow.grad).all() and flow.grad[1].abs().sum() == 0
    empty = skeleton_constraint(flow, torch.cat([_person()] * 2), torch.cat([kp1] * 2), torch.zeros_like(masks))
    assert empty.item() == 0.0 and empty.requires_grad
    none = skeleton_constraint(flow, torch.zeros(2, 0, 17, 3), torch.zeros(2, 0, 17, 3), masks)
    assert none.item() == 0.0


def test_skeleton_constraint_shape_errors() -> None:
    with pytest.raises(ValueError, match=r"\(B, P, 17, 3\).*got \(1, 1, 18, 3\)"):
        skeleton_constraint(_uniform_flow(_D), torch.zeros(1, 1, 18, 3), torch.zeros(1, 1, 18, 3), _mask())
    with pytest.raises(ValueError, match=r"masks must be \(B, H, W\) = \(1, 72, 64\)"):
        skeleton_constraint(_uniform_flow(_D), _person(), _person(), torch.zeros(1, 72, 63))


def test_skeleton_constraint_gradient_reduces_it() -> None:
    kp1 = _person().clone()
    kp1[..., :2] += _D
    flow = _uniform_flow(_rotate(2.0 * _D, 40.0)).requires_grad_(True)
    before = skeleton_constraint(flow, _person(), kp1, _mask(), beta=1.0)
    before.backward()
    with torch.no_grad():
        after = skeleton_constraint(flow - 50.0 * flow.grad, _person(), kp1, _mask(), beta=1.0)
    assert after.item() < before.item()


# ---------------------------------------------------------------------------------------------------------- boundary


def _box_mask(h: int = 96, w: int = 128) -> torch.Tensor:
    m = torch.zeros(1, h, w, dtype=torch.long)
    m[0, 30:70, 40:90] = 1
    return m


def _box_flow(shift: int, h: int = 96, w: int = 128, value: float = 5.0) -> torch.Tensor:
    f = torch.zeros(1, 2, h, w)
    f[0, :, 30 + shift: 70 + shift, 40 + shift: 90 + shift] = value
    return f


def test_boundary_zero_when_flow_edges_lie_on_the_mask_boundary() -> None:
    assert boundary_constraint(_box_flow(0), _box_mask()).item() < 0.01


def test_boundary_grows_as_the_flow_region_shifts() -> None:
    values = [boundary_constraint(_box_flow(s), _box_mask()).item() for s in (0, 1, 2, 4)]
    assert values == sorted(values) and values[1] > 0.5 and values[3] > 2 * values[1]


def test_boundary_hand_value_without_flow_edges() -> None:
    # Mask columns >= 2 of an 8x8 image: the boundary band is columns 1 and 2, centroid (1.5, 3.5); a flow without
    # edges has its centroid at the patch centre (3.5, 3.5): G = 2 px at the single scale 8.
    masks = torch.zeros(1, 8, 8, dtype=torch.long)
    masks[0, :, 2:] = 1
    band = mask_boundary(masks)[0, 0]
    assert band[:, 1:3].all() and band.sum() == 16
    assert boundary_constraint(torch.ones(1, 2, 8, 8), masks, scales=(8,)).item() == pytest.approx(2.0, abs=1e-3)
    step = torch.zeros(1, 2, 8, 8)
    step[0, 0, :, 2:] = 3.0
    # edges on the band: only the centre prior (eps = 0.01 against 16 edge pixels) pulls, by 0.01 * 2 / 16 px
    assert boundary_constraint(step, masks, scales=(8,)).item() == pytest.approx(0.01 * 2 / 16, rel=0.1)


def test_boundary_empty_mask_is_zero_with_grad_and_errors() -> None:
    flow = _box_flow(2).requires_grad_(True)
    g = boundary_constraint(flow, torch.zeros(1, 96, 128, dtype=torch.long))
    g.backward()
    assert g.item() == 0.0 and torch.isfinite(flow.grad).all()
    flow.grad = None
    g = boundary_constraint(flow, _box_mask())
    g.backward()
    assert torch.isfinite(flow.grad).all() and flow.grad.abs().sum() > 0
    with pytest.raises(ValueError, match=r"\(1, 96, 128\), got \(1, 96, 127\)"):
        boundary_constraint(flow, torch.zeros(1, 96, 127))
    with pytest.raises(ValueError, match="scales"):
        boundary_constraint(flow, _box_mask(), scales=())


# ---------------------------------------------------------------------------------------------------------- subject


def test_hip_centre_displacement_confidence_weighted() -> None:
    kp_t = torch.zeros(1, 2, 17, 3)
    kp_t[0, 0, 11] = torch.tensor([10.0, 20.0, 1.0])
    kp_t[0, 0, 12] = torch.tensor([20.0, 20.0, 1.0])
    kp_t1 = kp_t.clone()
    kp_t1[0, 0, 11, :2] += torch.tensor([2.0, 1.0])
    kp_t1[0, 0, 12, :2] += torch.tensor([2.0, 1.0])
    kp_t[0, 1, 11] = torch.tensor([10.0, 20.0, 1.0])
    kp_t[0, 1, 12] = torch.tensor([100.0, 100.0, 0.0])  # an unseen right hip does not pull the centre
    kp_t1[0, 1, 11] = torch.tensor([13.0, 20.0, 1.0])
    target, weight = hip_centre_displacement(kp_t, kp_t1)
    assert torch.allclose(target, torch.tensor([[[2.0, 1.0], [3.0, 0.0]]]))
    assert torch.allclose(weight, torch.tensor([[1.0, 0.5]]))


def test_subject_velocity_loss_masks_absent_subjects() -> None:
    pred = torch.tensor([[[1.0, 1.0], [50.0, 50.0], [0.0, 0.0]]], requires_grad=True)
    target = torch.tensor([[[0.0, 0.0], [0.0, 0.0], [float("nan"), 0.0]]])
    loss = subject_velocity_loss(pred, target, torch.tensor([[1.0, 0.0, 1.0]]))
    assert loss.item() == pytest.approx(2.0)
    loss.backward()
    assert pred.grad[0, 1].abs().sum() == 0 and torch.isfinite(pred.grad).all()
    empty = subject_velocity_loss(torch.zeros(2, 0, 2, requires_grad=True), torch.zeros(2, 0, 2))
    assert empty.item() == 0.0 and empty.requires_grad
    with pytest.raises(ValueError, match=r"\(1, 3, 2\), got \(1, 2, 2\)"):
        subject_velocity_loss(pred, torch.zeros(1, 2, 2))
