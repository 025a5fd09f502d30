"""The generator's camera-induced flow (the static scene's flow under the camera's motion alone), against
hand-computed values and the rendered flow of the static background."""

from __future__ import annotations

import numpy as np
import pytest

from hmore.errors import InputError
from hmore.synth.camera import CameraTrack, intrinsics
from hmore.synth.camera_flow import camera_induced_flow
from hmore.synth.clip import load_clip, render_clip


def _camera(R: np.ndarray, centres: np.ndarray, size: tuple[int, int] = (24, 32), fov: float = 90.0) -> CameraTrack:
    t = -np.einsum("tij,tj->ti", R, centres)
    return CameraTrack(K=intrinsics(size, fov), R=R, t=t, size=size)


def test_translating_camera_gives_parallax_over_depth() -> None:
    # camera looking along +z moves 0.1 m along +x: a still point at depth z moves by -f * 0.1 / z in x, 0 in y
    R = np.broadcast_to(np.eye(3), (2, 3, 3)).copy()
    cam = _camera(R, np.array([[0.0, 0.0, 0.0], [0.1, 0.0, 0.0]]))
    depth = np.full((2, 24, 32), 5.0)
    depth[0, :, :16] = 2.0  # the left half is nearer: larger flow
    flow = camera_induced_flow(cam, depth)[0]
    f = cam.K[0, 0]
    np.testing.assert_allclose(flow[:, 16:, 0], -f * 0.1 / 5.0, atol=1e-5)
    np.testing.assert_allclose(flow[:, :16, 0], -f * 0.1 / 2.0, atol=1e-5)
    np.testing.assert_allclose(flow[..., 1], 0.0, atol=1e-5)


def test_turning_camera_gives_the_rotation_homography_whatever_the_depth() -> None:
    a = np.deg2rad(2.0)  # turn about the camera's y axis
    rot = np.array([[np.cos(a), 0.0, -np.sin(a)], [0.0, 1.0, 0.0], [np.sin(a), 0.0, np.cos(a)]])
    cam = _camera(np.stack([np.eye(3), rot]), np.zeros((2, 3)))
    depth = np.random.default_rng(0).uniform(1.0, 20.0, size=(2, 24, 32))
    flow = camera_induced_flow(cam, depth)[0]
    hom = cam.K @ rot @ np.linalg.inv(cam.K)
    jj, ii = np.meshgrid(np.arange(32.0), np.arange(24.0))
    p = np.stack([jj, ii, np.ones_like(jj)], -1) @ hom.T
    np.testing.assert_allclose(flow[..., 0], p[..., 0] / p[..., 2] - jj, atol=1e-4)
    np.testing.assert_allclose(flow[..., 1], p[..., 1] / p[..., 2] - ii, atol=1e-4)
    assert np.abs(flow[..., 0]).mean() > 0.5


def test_static_camera_is_exactly_zero_and_bad_depth_is_refused() -> None:
    cam = _camera(np.broadcast_to(np.eye(3), (3, 3, 3)).copy(), np.zeros((3, 3)))
    assert not camera_induced_flow(cam, np.full((3, 24, 32), 4.0)).any()
    with pytest.raises(ValueError, match="depth must be"):
        camera_induced_flow(cam, np.ones((2, 24, 32)))


@pytest.mark.parametrize("motion", ["pan", "track"])
def test_rendered_background_moves_exactly_with_the_camera(motion: str) -> None:
    clip = render_clip(size=(48, 64), num_frames=3, subjects=1, seed=11, actions=["walk"], camera_motion=motion,
                       distractors=0)
    cam = clip.camera_flow
    assert cam is not None and cam.shape == clip.flow.shape and cam.dtype == np.float32
    background = clip.masks[:-1] == 0  # no distractors: everything outside the person is static scenery
    np.testing.assert_allclose(clip.flow[background], cam[background], atol=1e-4)
    assert np.abs(cam[background]).mean() > 0.05  # the camera does move
    person = ~background
    # on the walker the scene-relative flow is the walker's own motion, not the camera's
    assert np.abs(clip.scene_flow()[person]).mean() > 0.05


def test_camera_flow_is_saved_and_loaded(tmp_path) -> None:
    clip = render_clip(size=(32, 40), num_frames=2, subjects=1, seed=2, camera_motion="pan", distractors=0)
    path = clip.save(tmp_path / "c.npz")
    back = load_clip(path)
    np.testing.assert_array_equal(back.camera_flow, clip.camera_flow)
    # a clip written before camera_flow existed still loads, without it
    arrays = {k: v for k, v in clip.arrays().items() if k != "camera_flow"}
    np.savez(tmp_path / "old.npz", **arrays)
    old = load_clip(tmp_path / "old.npz")
    assert old.camera_flow is None and old.scene_flow() is None
    arrays["camera_flow"] = clip.camera_flow[:, :4]
    np.savez(tmp_path / "bad.npz", **arrays)
    with pytest.raises(InputError, match="camera_flow must have shape"):
        load_clip(tmp_path / "bad.npz")
