"""Realism steps for generated clips (hmore.synth.realism): camera shake keeps the ground truth exact, real-photo
backgrounds move with the camera, degradations leave the geometry alone."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from hmore.errors import UsageError
from hmore.synth.clip import render_clip
from hmore.synth.realism import (
    PhotoBank,
    RealismConfig,
    background_homographies,
    composite_background,
    degrade_pair,
    paint_out,
)


def test_camera_shake_moves_the_background_and_keeps_flow_exact() -> None:
    still = render_clip(size=(48, 64), num_frames=3, subjects=1, seed=4, distractors=0)
    shaky = render_clip(size=(48, 64), num_frames=3, subjects=1, seed=4, distractors=0, camera_shake=0.5)
    assert not still.camera_flow.any()
    bg = shaky.masks[:-1] == 0
    assert np.abs(shaky.camera_flow[bg]).mean() > 0.1  # the hand-held camera moves the background
    np.testing.assert_allclose(shaky.flow[bg], shaky.camera_flow[bg], atol=1e-4)  # and the flow stays exact
    assert shaky.meta["params"]["camera_shake"] == 0.5 and "camera_shake" not in still.meta["params"]
    with pytest.raises(UsageError, match="camera_shake"):
        render_clip(size=(48, 64), num_frames=2, seed=4, camera_shake=-1.0)


def test_a_photo_background_moves_with_a_panning_camera() -> None:
    clip = render_clip(size=(60, 80), num_frames=3, subjects=1, seed=8, camera_motion="pan", distractors=0,
                       fov_deg=70.0)
    rng = np.random.default_rng(0)
    photo = cv2.GaussianBlur((rng.random((60, 80, 3)) * 255).astype(np.uint8), (0, 0), 2.0)
    frames = composite_background(clip.frames, clip.static_background, clip.camera_flow, photo)
    assert frames.shape == clip.frames.shape and frames.dtype == np.uint8
    np.testing.assert_array_equal(frames[clip.masks > 0], clip.frames[clip.masks > 0])  # people untouched
    np.testing.assert_array_equal(frames[0][clip.static_background[0]], photo[clip.static_background[0]])
    # frame 1 warped back along the exact flow matches frame 0 on the background (a turning camera: exact)
    h, w = 60, 80
    jj, ii = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    flow = clip.flow[0]
    back = cv2.remap(frames[1], jj + flow[..., 0], ii + flow[..., 1], cv2.INTER_LINEAR)
    inner = np.zeros((h, w), bool)
    inner[6:-6, 6:-6] = True
    sel = clip.static_background[0] & inner & (clip.masks[1] == 0)
    assert np.abs(back[sel].astype(float) - frames[0][sel]).mean() < 6.0
    homs = background_homographies(clip.camera_flow, clip.static_background)
    assert homs.shape == (3, 3, 3) and np.allclose(homs[0], np.eye(3)) and not np.allclose(homs[1], np.eye(3))


def test_degradations_keep_shape_and_are_off_at_probability_zero() -> None:
    rng = np.random.default_rng(1)
    a = (rng.random((32, 40, 3)) * 255).astype(np.uint8)
    b = np.roll(a, 1, axis=1)
    same = degrade_pair(a, b, np.random.default_rng(0), RealismConfig())
    assert all(np.array_equal(x, y) for x, y in zip(same, (a, b)))
    full = RealismConfig(noise_prob=1.0, blur_prob=1.0, jpeg_prob=1.0, light_prob=1.0)
    a2, b2 = degrade_pair(a, b, np.random.default_rng(0), full)
    assert a2.shape == a.shape and a2.dtype == np.uint8 and not np.array_equal(a2, a)
    again = degrade_pair(a, b, np.random.default_rng(0), full)
    assert np.array_equal(again[0], a2) and np.array_equal(again[1], b2)  # a pure function of the generator
    with pytest.raises(ValueError, match="noise_prob"):
        RealismConfig(noise_prob=2.0)


def test_photo_bank_paints_people_out(tmp_path: Path) -> None:
    from hmore.priors.pipeline import Priors, save_priors

    frames = np.full((3, 40, 50, 3), 90, np.uint8)
    frames[:, 10:30, 20:30] = (250, 20, 20)  # a red "person"
    folder = tmp_path / "seq"
    folder.mkdir()
    for k, f in enumerate(frames):
        cv2.imwrite(str(folder / f"{k:03d}.png"), f[..., ::-1])
    masks = np.zeros((3, 40, 50), np.uint8)
    masks[:, 10:30, 20:30] = 1
    save_priors(folder / "priors.npz", Priors(
        kp2d=np.zeros((3, 1, 17, 3), np.float32), valid=np.ones((3, 1), bool), interpolated=np.zeros((3, 1), bool),
        track_ids=np.array([1]), masks=masks, boundaries=np.zeros_like(masks), fps=30.0, size=(50, 40),
        mask_size=(50, 40), frame_index=np.arange(3), backend="test", backend_version="0", source="seq"))
    bank = PhotoBank([(folder, folder / "priors.npz")], per_video=2, max_side=50)
    assert len(bank) == 2
    for photo in bank.photos:
        assert np.abs(photo.astype(int) - 90).max() < 10  # the red person is gone
    crop = bank.crop(np.random.default_rng(0), (24, 32))
    assert crop.shape == (24, 32, 3)
    first = frames[0]
    assert paint_out(first, np.zeros((40, 50), np.uint8)) is first  # nobody to paint out: untouched
