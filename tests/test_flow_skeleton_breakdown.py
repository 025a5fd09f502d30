"""benchmarks/flow_skeleton_breakdown.py: the pose track's jitter, its smoothing and the metric variants, by hand."""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import numpy as np
import pytest

_PATH = Path(__file__).resolve().parents[1] / "benchmarks" / "flow_skeleton_breakdown.py"


@pytest.fixture(scope="module")
def fsb():
    spec = importlib.util.spec_from_file_location("flow_skeleton_breakdown", _PATH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _track(t: int = 7, conf: float = 0.9) -> np.ndarray:
    """(T, 1, 17, 3): joint j at x = j + 2 t, y = 0.5 t^2 (constant velocity in x, constant acceleration in y)."""
    kp = np.zeros((t, 1, 17, 3), np.float32)
    tt = np.arange(t, dtype=np.float32)[:, None]
    kp[:, 0, :, 0] = np.arange(17)[None] + 2 * tt
    kp[:, 0, :, 1] = 0.5 * tt ** 2
    kp[..., 2] = conf
    return kp


def test_track_jitter_by_hand(fsb):
    kp = _track()
    kp[..., 1] = 0.0  # constant velocity: every second difference is zero
    assert fsb.track_jitter(kp) == pytest.approx(0.0)
    kp[3, ..., 0] += 1.0  # one frame off by 1 px in x: second differences 1, -2, 1 at t = 2, 3, 4 (of 5)
    # mean over 5 x 17 joint-steps of (dx^2 + dy^2) / 2 = (1 + 4 + 1) / (5 * 2), then over sqrt(6)
    assert fsb.track_jitter(kp) == pytest.approx(math.sqrt(6 / 10) / math.sqrt(6))
    kp[..., 2] = 0.3  # no confident joint
    assert math.isnan(fsb.track_jitter(kp))
    assert math.isnan(fsb.track_jitter(kp[:2]))


def test_smoothing_keeps_a_quadratic_path_and_unsteady_joints(fsb):
    kp = _track()
    kp[2, 0, 5, 2] = 0.2  # joint 5 is unsure once: left as it is
    noisy = kp.copy()
    noisy[3, 0, 5, :2] += 4.0
    out = fsb.smooth_track(noisy)
    np.testing.assert_allclose(out[:, :, :5], kp[:, :, :5], atol=1e-4)  # Savitzky-Golay order 2: exact on t^2
    np.testing.assert_array_equal(out[:, :, 5], noisy[:, :, 5])
    np.testing.assert_array_equal(fsb.smooth_track(noisy[:4]), noisy[:4])  # fewer frames than the window


def test_variants(fsb):
    kp = _track()
    kp[0, 0, 3, 2] = 0.4
    rng = np.random.default_rng(0)
    track, k0 = fsb.variant_track("paper", kp, None, rng)
    np.testing.assert_array_equal(track, kp)
    assert k0 == 0.5
    track, k0 = fsb.variant_track("nearest+k0=2", kp, None, rng)
    assert k0 == 2.0 and track[0, 0, 3, 2] == 0.0 and track[1, 0, 3, 2] == pytest.approx(0.9)
    true = kp + 1.0
    np.testing.assert_array_equal(fsb.variant_track("generator", kp, true, rng)[0], true.astype(np.float32))
    noisy, _ = fsb.variant_track("noise=1", kp, None, np.random.default_rng(1))
    assert 0.5 < np.std(noisy[..., :2] - kp[..., :2]) < 1.5
    np.testing.assert_array_equal(noisy[..., 2], kp[..., 2])
    with pytest.raises(SystemExit, match="unknown variant"):
        fsb.variant_track("blur", kp, None, rng)
    with pytest.raises(SystemExit, match="generator"):
        fsb.variant_track("generator", kp, None, rng)
