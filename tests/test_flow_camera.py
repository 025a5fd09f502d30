"""Camera compensation (hmore.flow.camera) against known homographies and its fallbacks; the inference and benchmark
paths that use it, on generated panning clips whose exact camera-induced flow the generator gives."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from hmore.flow.camera import CameraConfig, CameraMotion, estimate_camera, scene_flow, stabilise, to_stabilised
from hmore.flow.inference import iter_flow, write_flow_npz
from hmore.registry import create_model
from hmore.synth.clip import render_clip

H, W = 60, 80
# a small pan (turn) and zoom: a homography close to the identity
HOM = np.array([[1.01, 0.004, 2.0], [-0.003, 1.008, -1.0], [1e-5, -2e-5, 1.0]])


def _field(hom: np.ndarray) -> np.ndarray:
    jj, ii = np.meshgrid(np.arange(W, dtype=np.float64), np.arange(H, dtype=np.float64))
    p = np.stack([jj, ii, np.ones_like(jj)], -1) @ hom.T
    return np.stack([p[..., 0] / p[..., 2] - jj, p[..., 1] / p[..., 2] - ii], -1).astype(np.float32)


def _texture(seed: int = 0, sigma: float = 0.8) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return cv2.GaussianBlur((rng.random((H, W)) * 255).astype(np.uint8), (0, 0), sigma)


def _person() -> np.ndarray:
    m = np.zeros((H, W), np.uint8)
    m[15:50, 30:45] = 1
    return m


def test_a_known_homography_is_recovered_and_the_person_is_left_out() -> None:
    flow = _field(HOM)
    person = _person()
    flow[person > 0] += np.array([6.0, -3.0], np.float32)  # the person moves on its own
    motion = estimate_camera(flow, person, _texture())
    assert motion.model == "homography" and motion.reason == "" and motion.inliers > 0.95
    np.testing.assert_allclose(motion.flow((H, W)), _field(HOM), atol=0.02)  # everywhere, the person included
    affine = estimate_camera(_field(np.array([[1.0, 0.01, 1.5], [0.0, 1.0, -0.5], [0, 0, 1]])), person, _texture(),
                             CameraConfig(model="affine"))
    assert affine.model == "affine"
    np.testing.assert_allclose(affine.homography[2], [0.0, 0.0, 1.0])


@pytest.mark.parametrize(("flow", "person", "grey", "reason"), [
    (np.zeros((H, W, 2), np.float32), _person(), _texture(), "static camera"),
    (_field(HOM), np.ones((H, W), np.uint8), _texture(), "people fill the frame"),
    (_field(HOM), _person(), np.full((H, W), 128, np.uint8), "too plain"),
    (np.random.default_rng(1).normal(0, 4, (H, W, 2)).astype(np.float32), _person(), _texture(), "no single camera"),
])
def test_untrustworthy_fits_fall_back_to_no_camera_motion_with_a_reason(flow, person, grey, reason) -> None:
    motion = estimate_camera(flow, person, grey)
    assert motion.is_identity and reason in motion.reason
    assert not motion.flow((H, W)).any()


def test_stabilising_and_back_is_optical_flow_minus_camera_flow() -> None:
    motion = CameraMotion(homography=HOM, model="homography")
    flow = np.random.default_rng(2).normal(0, 2, (H, W, 2)).astype(np.float32)
    np.testing.assert_allclose(scene_flow(to_stabilised(flow, motion), motion), flow - _field(HOM), atol=1e-3)
    # the stabilised frame t+1 puts each background point where it was at t
    frame0 = np.repeat(_texture(sigma=2.0)[..., None], 3, axis=2)
    grid = np.stack(np.meshgrid(np.arange(W, dtype=np.float32), np.arange(H, dtype=np.float32)), -1)
    inv = np.linalg.inv(HOM)
    back = grid + _field(inv)  # where each pixel of frame t+1 came from
    frame1 = cv2.remap(frame0, back[..., 0], back[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    stab = stabilise(frame1, motion).astype(np.float32)
    inner = (slice(8, H - 8), slice(8, W - 8))
    assert np.abs(stab[inner] - frame0[inner]).mean() < 1.0 < np.abs(frame1[inner] - frame0[inner].astype(float)).mean()
    with pytest.raises(ValueError, match="person mask"):
        estimate_camera(flow, np.zeros((H, W + 1)))


@pytest.fixture(scope="module")
def pan_clip():
    return render_clip(size=(72, 96), num_frames=3, subjects=1, seed=21, actions=["walk"], camera_motion="pan",
                       distractors=0, fov_deg=60.0)


def test_inference_removes_the_camera_flow_of_a_panning_clip(pan_clip, tmp_path: Path) -> None:
    torch.manual_seed(0)
    net = create_model("hmore_flow_test").eval()
    on = list(iter_flow(pan_clip.frames, model=net, masks=pan_clip.masks, device="cpu", progress=False))
    off = list(iter_flow(pan_clip.frames, model=net, masks=pan_clip.masks, device="cpu", progress=False,
                         camera="off"))
    for t, (a, b) in enumerate(zip(on, off)):
        assert b.camera is None and b.camera_motion.is_identity
        assert a.camera_motion.model == "homography" and a.camera.shape == (2, 72, 96)
        exact = pan_clip.camera_flow[t].transpose(2, 0, 1)
        zero_err = np.abs(exact).mean()
        assert np.abs(a.camera - exact).mean() < 0.25 * zero_err  # the fit on DIS flow finds the pan
        inside = pan_clip.masks[t] > 0
        np.testing.assert_allclose(a.local[:, ~inside], 0.0)
    assert write_flow_npz(tmp_path / "flow.npz", iter(on)) == 2
    with np.load(tmp_path / "flow.npz") as z:
        assert z["camera"].shape == (2, 2, 72, 96) and z["camera_homography"].shape == (2, 3, 3)
        assert list(z["camera_note"]) == ["", ""]
    static = render_clip(size=(48, 64), num_frames=2, subjects=1, seed=3, camera_motion="static", distractors=0)
    pair = next(iter_flow(static.frames, model=net, masks=static.masks, device="cpu", progress=False))
    assert pair.camera is None and "static camera" in pair.camera_motion.reason


def test_bench_compensated_baseline_scores_against_the_exact_camera_flow(pan_clip) -> None:
    from hmore.bench import flow_bench

    clip = flow_bench.BenchClip(name="pan", set_name="synth-heldout", level="all", level_value=0.0,
                                frames=pan_clip.frames, masks=pan_clip.masks, kp2d=pan_clip.kp2d, flow=pan_clip.flow,
                                subject_velocity=pan_clip.subject_velocity, camera_flow=pan_clip.camera_flow)
    methods = flow_bench.build_methods(["dis", "dis+cam", "zero"])
    res = flow_bench.run_flow_bench([clip], methods, progress=False)
    summary = flow_bench.summarise(res)
    val = {n: {m: e["metrics"][m]["value"] for m in e["metrics"]} for n, e in summary["methods"].items()}
    zero_cam = float(np.linalg.norm(pan_clip.camera_flow, axis=-1).mean())
    assert val["dis"]["camera_epe"] == pytest.approx(zero_cam, rel=1e-5)  # no compensation: it removes nothing
    assert val["dis+cam"]["camera_epe"] < 0.25 * zero_cam
    assert val["dis+cam"]["epe_scene"] < val["dis"]["epe_scene"]
    assert val["dis+cam"]["leakage_px"] < val["dis"]["leakage_px"]
    # image-motion metrics judge world + the removed camera flow: DIS's optical flow either way
    assert val["dis+cam"]["epe_mask"] == pytest.approx(val["dis"]["epe_mask"], rel=1e-4)
    assert val["dis+cam"]["photo_census"] == pytest.approx(val["dis"]["photo_census"], rel=1e-3)
    assert val["zero"]["local_epe"] is not None and summary["methods"]["dis+cam"]["info"]["camera compensation"]
    with pytest.raises(Exception, match="no camera"):
        flow_bench.create_method("zero+cam")


def test_homography_maps_points_as_computed_by_hand() -> None:
    from hmore.flow.camera import _apply, _depths_positive

    hom = np.array([[2.0, 0.0, 1.0], [0.0, 1.0, -3.0], [0.5, 0.0, 1.0]])
    pts = np.array([[[0.0, 0.0], [2.0, 4.0]]])  # (1, 2, 2): any leading shape
    # (0, 0) -> (1, -3) / 1; (2, 4) -> (5, 1) / 2
    assert np.allclose(_apply(hom, pts), [[[1.0, -3.0], [2.5, 0.5]]])
    assert _depths_positive(hom, pts[0])
    assert not _depths_positive(hom, np.array([[-2.0, 0.0]]))  # depth 0.5 * -2 + 1 = 0: on the line at infinity


def test_a_fit_that_flips_a_corner_behind_the_camera_is_rejected() -> None:
    h, w = 96, 128
    hom = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [-0.01, 0.0, 1.0]])  # depth < 0 for x > 100
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float64)
    z = hom[2, 0] * xs + 1.0
    z = np.where(np.abs(z) < 1e-3, 1e-3, z)
    flow = np.stack([xs / z - xs, ys / z - ys], axis=-1).astype(np.float32)
    person = np.zeros((h, w), bool)
    grey = (np.indices((h, w)).sum(axis=0) % 7 * 30).astype(np.uint8)  # textured
    motion = estimate_camera(flow, person, grey)
    assert motion.is_identity and motion.reason  # never a camera motion that folds the image
