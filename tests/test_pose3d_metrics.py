"""3D pose metrics and the lifting loss on hand-made cases."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from hmore.losses.pose3d import LiftLossWeights, confidence_weighted_2d_loss, lift_loss
from hmore.metrics.pose3d import mpjpe, n_mpjpe, p_mpjpe, procrustes_align, velocity_error


def _rot(axis: np.ndarray, angle: float) -> np.ndarray:
    axis = axis / np.linalg.norm(axis)
    k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    return np.eye(3) + math.sin(angle) * k + (1 - math.cos(angle)) * k @ k


def test_mpjpe_of_known_offset() -> None:
    rng = np.random.default_rng(0)
    t = rng.normal(size=(4, 17, 3))
    p = t + np.array([0.03, 0.0, 0.04])  # every joint 5 cm off
    assert float(mpjpe(p, t)) == pytest.approx(0.05)
    # per-pose values, hand-computed: one joint off by 1.7 in a 17-joint pose -> 0.1
    t2 = np.zeros((1, 17, 3))
    p2 = t2.copy()
    p2[0, 3, 1] = 1.7
    assert float(mpjpe(p2, t2)) == pytest.approx(0.1)
    assert mpjpe(p2, t2, reduce=False).shape == (1,)


def test_p_mpjpe_zero_for_similarity_transform() -> None:
    rng = np.random.default_rng(1)
    t = rng.normal(size=(5, 17, 3))
    r = _rot(np.array([0.3, 1.0, -0.2]), 1.1)
    p = 2.5 * t @ r.T + np.array([1.0, -2.0, 3.0])
    assert float(p_mpjpe(p, t)) < 1e-9
    assert float(mpjpe(p, t)) > 0.5
    torch.testing.assert_close(procrustes_align(p, t), torch.as_tensor(t))


def test_p_mpjpe_no_reflection_and_not_above_mpjpe() -> None:
    rng = np.random.default_rng(2)
    t = rng.normal(size=(8, 17, 3))
    mirrored = t * np.array([-1.0, 1.0, 1.0])  # a reflection is not a rotation: must not align to 0
    assert float(p_mpjpe(mirrored, t)) > 0.1
    p = t + rng.normal(scale=0.1, size=t.shape)
    assert float(p_mpjpe(p, t)) <= float(mpjpe(p, t)) + 1e-12


def test_n_mpjpe_removes_scale_only() -> None:
    rng = np.random.default_rng(3)
    t = rng.normal(size=(3, 17, 3))
    assert float(n_mpjpe(0.7 * t, t)) < 1e-9
    assert float(n_mpjpe(t + 1.0, t)) > 0.1  # a translation is not undone


def test_velocity_error_hand_computed() -> None:
    t = np.zeros((2, 4, 17, 3))  # (B, F, J, 3) at rest
    p = t.copy()
    p[:, :, :, 0] = np.arange(4)[None, :, None] * 0.01  # moves 1 cm per frame along x
    assert float(velocity_error(p, t)) == pytest.approx(0.01)
    assert float(velocity_error(p + 5.0, t + 5.0)) == pytest.approx(0.01)
    with pytest.raises(ValueError, match="F >= 2"):
        velocity_error(p[:, :1], t[:, :1])


def test_shape_mismatch_raises() -> None:
    with pytest.raises(ValueError, match="same shape"):
        mpjpe(np.zeros((2, 17, 3)), np.zeros((2, 16, 3)))


def test_lift_loss_weights() -> None:
    t = torch.zeros(1, 3, 17, 3)
    p = t.clone()
    p[..., 0] = torch.arange(3.0)[None, :, None] * 0.1 + 0.2  # offset 0.2, then 0.3, 0.4; velocity error 0.1
    terms = lift_loss(p, t)
    assert float(terms.mpjpe) == pytest.approx(0.3)
    assert float(terms.velocity) == pytest.approx(0.1)
    assert float(terms.total) == pytest.approx(0.3 + 0.5 * float(terms.n_mpjpe) + 20 * 0.1)
    only = lift_loss(p, t, weights=LiftLossWeights(mpjpe=1.0, n_mpjpe=0.0, velocity=0.0))
    assert float(only.total) == pytest.approx(0.3)
    p.requires_grad_(True)
    lift_loss(p, t).total.backward()
    assert torch.isfinite(p.grad).all()


def test_confidence_weighted_2d_loss() -> None:
    t = torch.zeros(2, 17, 2)
    p = torch.zeros(2, 17, 2)
    p[0, 0] = torch.tensor([3.0, 4.0])  # 5 px off, confidence 1
    p[1, 1] = torch.tensor([100.0, 0.0])  # far off, but confidence 0: ignored
    c = torch.ones(2, 17)
    c[1, 1] = 0.0
    assert float(confidence_weighted_2d_loss(p, t, c)) == pytest.approx(5.0 / 33.0)
