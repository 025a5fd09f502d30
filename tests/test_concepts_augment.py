"""Style views of motion windows and the consistency term (issue 16): hand-computed small cases."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from hmore.concepts import augment as ca
from hmore.losses.concepts import consistency_loss
from hmore.skeleton import H36M17


def _ramp(frames: int = 30) -> np.ndarray:
    """(T, 17, 3) joints whose every coordinate of frame t is t + joint index / 100."""
    t = np.arange(frames, dtype=np.float64)[:, None, None]
    return np.broadcast_to(t + np.arange(17)[None, :, None] / 100, (frames, 17, 3)).copy()


def test_time_warp_of_a_linear_ramp():
    # window [10, 15): middle 12; speed 1.5 reads times 12 + (k - 2) * 1.5 = 9, 10.5, 12, 13.5, 15
    times = ca.warp_times(30, 10, 5, 1.5)
    assert np.allclose(times, [9, 10.5, 12, 13.5, 15])
    view = ca.sample_at(_ramp(), times)
    assert np.allclose(view[:, 3, 0], [9.03, 10.53, 12.03, 13.53, 15.03])  # interpolation is exact on a ramp
    assert np.allclose(ca.warp_times(30, 10, 5, 0.5), [11, 11.5, 12, 12.5, 13])
    # too fast for the sequence's end: window [24, 29) of 30 frames, middle 26, at most (29 - 26) / 2 = 1.5x
    assert np.allclose(ca.warp_times(30, 24, 5, 2.0), [23, 24.5, 26, 27.5, 29])
    assert np.allclose(ca.warp_times(30, 0, 1, 1.4), [0])
    with pytest.raises(ValueError, match="inside"):
        ca.warp_times(30, 28, 5, 1.0)


def test_token_map_follows_the_warp():
    # 8 frames in tokens of 4 (N = 2). At 1.5x about the middle 3.5: view frame k at 3.5 + (k - 3.5) * 1.5; view
    # token 0 (k = 0..3) has its middle at 3.5 - 2 * 1.5 = 0.5 -> original token 0; token 1 at 6.5 -> token 1
    times = 3.5 + (np.arange(8) - 3.5) * 1.5
    assert ca.token_map(times, np.array([True, True]), 4).tolist() == [0, 1]
    # 3x: middles 3.5 -/+ 6 = -2.5 and 9.5, outside the window
    assert ca.token_map(3.5 + (np.arange(8) - 3.5) * 3.0, np.array([True, True]), 4).tolist() == [-1, -1]
    # an invalid original token, and a view token without frames (NaN times)
    assert ca.token_map(np.arange(8.0), np.array([True, False]), 4).tolist() == [0, -1]
    assert ca.token_map(np.r_[np.arange(4.0), [np.nan] * 4], np.array([True, True]), 4).tolist() == [0, -1]
    with pytest.raises(ValueError, match="segment"):
        ca.token_map(np.arange(7.0), np.array([True, True]), 4)


def test_mirror_swaps_left_and_right_joints():
    pose = np.random.default_rng(0).normal(size=(2, 17, 3))
    m = ca.mirror(pose)
    # the right hip (1) takes the left hip's (4) place reflected, the left wrist (13) the right wrist's (16)
    assert np.allclose(m[:, 1], pose[:, 4] * [-1, 1, 1]) and np.allclose(m[:, 13], pose[:, 16] * [-1, 1, 1])
    assert np.allclose(m[:, 0], pose[:, 0] * [-1, 1, 1]) and np.allclose(m[:, 10], pose[:, 10] * [-1, 1, 1])
    assert np.allclose(ca.mirror(m), pose)


def test_scale_bones_and_amplitude_by_hand():
    pose = np.random.default_rng(1).normal(size=(3, 17, 3))
    f = np.linspace(0.9, 1.1, 17)
    out = ca.scale_bones(pose, f)
    assert np.allclose(out[:, 0], pose[:, 0])
    for child, parent in enumerate(H36M17.parents):
        if parent >= 0:  # each bone keeps its direction and gets f[child] times its length
            assert np.allclose(out[:, child] - out[:, parent], f[child] * (pose[:, child] - pose[:, parent]))
    assert np.allclose(ca.scale_bones(pose, np.ones(17)), pose)
    # amplitude: a joint at root-relative 0, 2, 4 (mean 2) scaled by 1.5 -> -1, 2, 5; the root stays
    j = np.zeros((3, 17, 3))
    j[:, 0, 0] = [1.0, 1.0, 2.0]
    j[:, 5, 1] = np.array([0.0, 2.0, 4.0])
    out = ca.scale_amplitude(j, 1.5)
    assert np.allclose(out[:, 0], j[:, 0]) and np.allclose(out[:, 5, 1], [-1.0, 2.0, 5.0])
    assert np.allclose(ca.scale_amplitude(pose, 1.0), pose)


def test_style_view_is_identity_with_neutral_ranges_and_keeps_left_right_bones_alike():
    seq = np.random.default_rng(2).normal(size=(20, 17, 3))
    rng = np.random.default_rng(0)
    v = ca.style_view(seq, 5, 8, rng, ca.ViewConfig(speed=(1.0, 1.0), amplitude=0.0, bone=0.0))
    assert np.allclose(v.joints, seq[5:13]) and np.allclose(v.times, np.arange(8))
    v = ca.style_view(seq, 5, 8, np.random.default_rng(3), ca.ViewConfig(speed=(1.0, 1.0), amplitude=0.0, bone=0.2))
    length = np.linalg.norm(v.joints[:, 2] - v.joints[:, 1], axis=-1) / np.linalg.norm(seq[5:13, 2] - seq[5:13, 1],
                                                                                       axis=-1)
    other = np.linalg.norm(v.joints[:, 5] - v.joints[:, 4], axis=-1) / np.linalg.norm(seq[5:13, 5] - seq[5:13, 4],
                                                                                      axis=-1)
    assert np.allclose(length, length[0]) and np.allclose(length, other) and 0.8 <= length[0] <= 1.2
    v = ca.style_view(seq, 5, 8, np.random.default_rng(4), ca.ViewConfig(speed=(1.0, 1.0), amplitude=0.0, bone=0.0,
                                                                         mirror=1.0))
    assert np.allclose(v.joints, ca.mirror(seq[5:13]))
    for bad in (dict(speed=(1.2, 0.8)), dict(speed=(0.0, 1.0)), dict(amplitude=1.0), dict(mirror=1.5)):
        with pytest.raises(ValueError):
            ca.ViewConfig(**bad)


def test_consistency_loss_by_hand():
    codebook = torch.eye(2)
    a = torch.tensor([[[1.0, 0.0], [3.0, 0.0]]])
    # identical views (also after scaling: cosine assignments): zero
    assert consistency_loss(a, a * 2, codebook, torch.ones(1, 2, dtype=torch.bool), tau=1.0).item() == pytest.approx(0)
    # tau 1: p = softmax([1, 0]) = (e, 1) / (1 + e) vs softmax([0, 1]): ln(p1 / p2) = 1, so each KL is p1 - p2 =
    # (e - 1) / (e + 1) = tanh(1/2), and so is their mean
    b = torch.tensor([[[0.0, 1.0], [3.0, 0.0]]])
    valid = torch.tensor([[True, False]])  # the second pair does not count
    got = consistency_loss(a, b, codebook, valid, tau=1.0)
    assert got.item() == pytest.approx(math.tanh(0.5), abs=1e-6)
    # both pairs: the mean of tanh(1/2) and 0
    got = consistency_loss(a, b, codebook, torch.ones(1, 2, dtype=torch.bool), tau=1.0)
    assert got.item() == pytest.approx(math.tanh(0.5) / 2, abs=1e-6)
    # float weights (loss.consistency_source_weights): weighted mean, (3 tanh(1/2) + 1 x 0) / (3 + 1)
    got = consistency_loss(a, b, codebook, torch.tensor([[3.0, 1.0]]), tau=1.0)
    assert got.item() == pytest.approx(0.75 * math.tanh(0.5), abs=1e-6)
    with pytest.raises(ValueError, match="disagree"):
        consistency_loss(a, b[:, :1], codebook, valid)
