"""Lifting data (cameras, normalisation, noise, masking, flips), window blending, missing frames, the lift task."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from hmore.errors import UsageError
from hmore.lift.data import (
    Camera,
    MotionClip,
    NoiseConfig,
    SampleConfig,
    add_noise,
    apply_mask,
    denormalize_2d,
    flip_pair,
    look_at,
    make_sample,
    normalize_2d,
    resample,
    sample_camera,
)
from hmore.lift.infer import (
    blend_weights,
    fill_gaps,
    frames_at_rate,
    interp_frames,
    lift_tracks,
    resample_input,
    run_windows,
    window_starts,
)
from hmore.registry import create_model
from hmore.skeleton import H36M17
from hmore.synth.identity import sample_identity


def _clip(num_frames: int = 60, seed: int = 0) -> np.ndarray:
    """A person walking along +x with swinging limbs: (F, 17, 3) world metres, y up."""
    rest = sample_identity(seed, 0).rest_pose()
    t = np.arange(num_frames) / 30.0
    j = np.repeat(rest[None], num_frames, axis=0)
    j[:, :, 0] += 1.2 * t[:, None]
    swing = 0.2 * np.sin(2 * math.pi * 1.8 * t)
    for leg, s in (((2, 3), 1.0), ((5, 6), -1.0), ((15, 16), -1.0), ((12, 13), 1.0)):
        j[:, list(leg), 2] += s * swing[:, None]
    return j


# ---- cameras and normalisation -------------------------------------------------------------------------------
def test_look_at_axes_follow_opencv() -> None:
    rot = look_at(np.array([0.0, 1.0, 5.0]), np.array([0.0, 1.0, 0.0]))  # in front of a +z-facing person
    np.testing.assert_allclose(rot @ rot.T, np.eye(3), atol=1e-12)
    assert np.linalg.det(rot) == pytest.approx(1.0)
    np.testing.assert_allclose(rot[2], [0, 0, -1], atol=1e-12)  # looks along -z
    np.testing.assert_allclose(rot[1], [0, -1, 0], atol=1e-12)  # camera y is down
    np.testing.assert_allclose(rot[0], [1, 0, 0], atol=1e-12)  # facing us, the person's left (+x) is on our right


def test_projection_hand_computed() -> None:
    cam = Camera(rotation=np.eye(3), position=np.zeros(3), focal=1000.0, width=1920, height=1080, cx=960, cy=540)
    px = cam.project(np.array([[0.5, -0.2, 5.0]]))
    np.testing.assert_allclose(px, [[960 + 100, 540 - 40]])


def test_normalize_matches_motionbert_and_inverts() -> None:
    w, h = 1920, 1080
    px = np.array([[0.0, 0.0], [1920.0, 1080.0], [960.0, 540.0]])
    n = normalize_2d(px, w, h)
    np.testing.assert_allclose(n, [[-1, -h / w], [1, h / w], [0, 0]])
    np.testing.assert_allclose(denormalize_2d(n, w, h), px)


def test_sampled_camera_sees_the_person() -> None:
    rng = np.random.default_rng(0)
    clip = _clip()
    for _ in range(20):
        cam = sample_camera(rng, clip[:, 0].mean(axis=0))
        pc = cam.to_camera(clip)
        assert pc[..., 2].min() > 0.5
        px = cam.project(pc)
        centre = px.reshape(-1, 2).mean(axis=0)
        assert 0 <= centre[0] <= cam.width and 0 <= centre[1] <= cam.height


# ---- noise, masking, flips -----------------------------------------------------------------------------------
def test_noise_is_smooth_and_confidence_falls_with_error() -> None:
    rng = np.random.default_rng(1)
    clean = normalize_2d(np.random.default_rng(2).uniform(300, 700, size=(81, 17, 2)), 1000, 1000)
    cfg = NoiseConfig(noise_prob=1.0, uniform_prob=0.1, jitter=0.0)
    noisy = add_noise(clean, rng, cfg)
    err = np.linalg.norm(noisy[..., :2] - clean, axis=-1)  # (F, J)
    assert err.max() > 0
    assert np.all((noisy[..., 2] > 0) & (noisy[..., 2] <= 1))
    # confidence is a decreasing function of the error
    order = np.argsort(err.ravel())
    assert np.all(np.diff(noisy[..., 2].ravel()[order]) <= 1e-12)
    # keyframe-interpolated: frame-to-frame changes are small compared with the offsets themselves
    assert np.abs(np.diff(noisy[..., :2] - clean, axis=0)).mean() < 0.5 * err.mean()
    clean_out = add_noise(clean, rng, NoiseConfig(noise_prob=0.0))
    np.testing.assert_array_equal(clean_out[..., :2], clean)
    np.testing.assert_array_equal(clean_out[..., 2], 1.0)


def test_masking_rates() -> None:
    rng = np.random.default_rng(3)
    x = np.ones((2000, 17, 3))
    m = apply_mask(x, rng, joint_prob=0.05, frame_prob=0.1)
    frame_masked = (m == 0).all(axis=(1, 2))
    assert frame_masked.mean() == pytest.approx(0.1, abs=0.02)
    joint_masked = (m[~frame_masked] == 0).all(axis=-1)
    assert joint_masked.mean() == pytest.approx(0.05, abs=0.01)
    assert set(np.unique(m)) <= {0.0, 1.0}


def test_flip_twice_is_identity_and_swaps_sides() -> None:
    rng = np.random.default_rng(4)
    x, y = rng.normal(size=(5, 17, 3)), rng.normal(size=(5, 17, 3))
    xf, yf = flip_pair(x, y)
    x2, y2 = flip_pair(xf, yf)
    np.testing.assert_array_equal(x2, x)
    np.testing.assert_array_equal(y2, y)
    lh, rh = H36M17.index("left_hip"), H36M17.index("right_hip")
    assert xf[0, lh, 0] == -x[0, rh, 0] and xf[0, lh, 1] == x[0, rh, 1]
    assert yf[0, rh, 2] == y[0, lh, 2]
    np.testing.assert_array_equal(xf[..., 0, :2], x[..., 0, :2] * [-1, 1])  # the root is its own mirror


def test_make_sample_geometry() -> None:
    clip = _clip(40)
    s = make_sample(clip, np.random.default_rng(5), SampleConfig(noise=NoiseConfig(noise_prob=0.0, mask_joint=0.0,
                                                                                    mask_frame=0.0), flip_prob=0.0))
    assert s.x.shape == s.y.shape == (40, 17, 3) and s.x.dtype == np.float32
    np.testing.assert_allclose(s.y[:, 0], 0.0, atol=1e-6)  # root-relative
    # rigid camera: bone lengths in the camera frame equal the world's
    b = np.array(H36M17.bones)
    world = np.linalg.norm(clip[:, b[:, 1]] - clip[:, b[:, 0]], axis=-1)
    cam = np.linalg.norm(s.y[:, b[:, 1]] - s.y[:, b[:, 0]], axis=-1)
    np.testing.assert_allclose(cam, world, atol=1e-5)
    np.testing.assert_allclose(s.x, s.clean, atol=1e-6)  # no noise, no mask
    with pytest.raises(ValueError, match=r"\(F, 17, 3\)"):
        make_sample(clip[:, :16], np.random.default_rng(0))


def test_resample_halves_frames() -> None:
    x = np.arange(9, dtype=float)[:, None, None] * np.ones((1, 17, 3))
    y = resample(x, 120.0, 60.0)
    assert y.shape == (5, 17, 3)
    np.testing.assert_allclose(y[:, 0, 0], [0, 2, 4, 6, 8])


# ---- windows ------------------------------------------------------------------------------------------------
def test_window_starts_cover_and_end_at_last_frame() -> None:
    assert window_starts(10, 27, 13) == [0]
    assert window_starts(100, 27, 13) == [0, 13, 26, 39, 52, 65, 73]
    w = blend_weights(27)
    assert w.min() > 0 and w.argmax() == 13
    with pytest.raises(ValueError, match="positive"):
        window_starts(10, 0, 1)


def test_blending_is_exact_for_a_per_frame_model() -> None:
    torch.manual_seed(0)
    model = create_model("mlp_lifter_test").eval()
    x = np.random.default_rng(6).normal(size=(100, 17, 3)).astype(np.float32)
    whole = run_windows(model, x, window=27, stride=9)
    ref = model(torch.from_numpy(x)[None])[0].detach().numpy()
    np.testing.assert_allclose(whole, ref, atol=1e-5)


def _track(num_frames: int) -> np.ndarray:
    clip = _clip(num_frames)
    cam = sample_camera(np.random.default_rng(7), clip[:, 0].mean(axis=0))
    return np.concatenate([normalize_2d(cam.project(cam.to_camera(clip)), cam.width, cam.height),
                           np.ones((num_frames, 17, 1))], axis=-1).astype(np.float32)


def test_long_sequence_matches_single_pass_in_the_overlap() -> None:
    """A long track's blended output equals a single pass over a stretch of it, within tolerance.

    Exact agreement needs a model whose output at a frame depends on nearby frames only (the TCN, receptive field
    9): windows then differ only near their edges, where the blend weights are small.
    """
    torch.manual_seed(0)
    model = create_model("tcn_lifter_test").eval()
    x = _track(60)
    whole = run_windows(model, x, window=27, stride=9)
    for s in window_starts(60, 27, 9):
        single = model(torch.from_numpy(x[s : s + 27])[None])[0].detach().numpy()
        np.testing.assert_allclose(whole[s + 9 : s + 18], single[9:18], atol=1e-3)  # outputs are ~0.5
        # with hard cuts instead of blending the frames near window edges would be off by the edge error
    # short inputs are one single pass
    short = run_windows(model, x[:20], window=27)
    np.testing.assert_allclose(short, model(torch.from_numpy(x[:20])[None])[0].detach().numpy(), atol=1e-5)


def test_blending_of_a_transformer_is_smooth_and_favours_the_window_middle() -> None:
    torch.manual_seed(0)
    model = create_model("dstformer_test").eval()
    x = _track(60)
    whole = run_windows(model, x, window=27, stride=9)
    outs = {s: model(torch.from_numpy(x[s : s + 27])[None])[0].detach().numpy() for s in window_starts(60, 27, 9)}
    for s in (0, 9, 18):
        own = np.abs(whole[s + 9 : s + 18] - outs[s][9:18]).mean()
        neighbour = np.abs(outs[s + 9][0:9] - outs[s][9:18]).mean()  # what the next window says about them
        assert own < 0.6 * neighbour
    # no seam: frame-to-frame changes of the blend are no larger than inside single windows
    jump = np.abs(np.diff(whole, axis=0)).max()
    inner = max(np.abs(np.diff(o, axis=0)).max() for o in outs.values())
    assert jump <= 1.2 * inner


def test_fill_gaps_interpolates() -> None:
    kp = np.zeros((5, 17, 3))
    kp[:, :, 0] = np.arange(5)[:, None] * 10.0
    valid = np.array([True, False, False, True, True])
    kp[~valid] = 0
    out = fill_gaps(kp, valid)
    np.testing.assert_allclose(out[:, 0, 0], [0, 10, 20, 30, 40])


def test_lift_tracks_missing_frames_and_people() -> None:
    torch.manual_seed(0)
    model = create_model("dstformer_test").eval()
    rng = np.random.default_rng(8)
    kp = np.concatenate([rng.uniform(100, 500, size=(2, 50, 17, 2)), np.ones((2, 50, 17, 1))], axis=-1)
    kp[0, 10:15] = 0.0  # person 0 undetected for 5 frames
    kp[1, 30, :, 2] = np.nan
    res = lift_tracks(model, kp, width=640, height=480, trajectory=True)
    assert res.pose3d.shape == (2, 50, 17, 3) and np.isfinite(res.pose3d).all()
    assert res.interpolated.shape == (2, 50)
    assert res.interpolated[0].tolist() == [10 <= t < 15 for t in range(50)]
    assert res.interpolated[1].sum() == 1
    # the gap's 2D is interpolated between frames 9 and 15
    np.testing.assert_allclose(res.kp2d[0, 12, :, :2], 0.5 * (kp[0, 9, :, :2] + kp[0, 15, :, :2]), rtol=1e-5)
    assert res.root.shape == (2, 50, 3) and np.isfinite(res.root).all()
    with pytest.raises(ValueError, match=r"\(P, T, 17, 3\)"):
        lift_tracks(model, kp[0], width=640, height=480)


def test_frames_at_rate_and_interpolation_by_hand() -> None:
    assert frames_at_rate(31, 30.0, 50.0) == 51  # 1 s at 30 fps -> 1 s at 50 fps
    assert frames_at_rate(51, 50.0, 30.0) == 31
    assert frames_at_rate(31, 30.0, 30.5) == 31  # within 2%: left alone
    assert frames_at_rate(31, 30.0, None) == 31 and frames_at_rate(1, 30.0, 50.0) == 1
    a = np.array([0.0, 10.0, 40.0])
    np.testing.assert_allclose(interp_frames(a, 5), [0.0, 5.0, 10.0, 25.0, 40.0])
    np.testing.assert_allclose(interp_frames(interp_frames(a, 5), 3), a)  # the original frames are kept exactly


def test_resample_input_masks_a_joint_missing_in_either_neighbour() -> None:
    x = np.zeros((3, 17, 3), np.float32)
    x[:, :, 0] = np.array([0.0, 0.2, 0.4])[:, None]
    x[:, :, 2] = 1.0
    x[1, 5, 2] = 0.0  # joint 5 missing in the middle frame (its coordinate is still given, e.g. filled)
    x[:, 3, 2] = [0.9, 0.5, 0.7]
    out = resample_input(x, 5)
    np.testing.assert_allclose(out[:, 0, 0], [0.0, 0.1, 0.2, 0.3, 0.4], atol=1e-6)
    np.testing.assert_allclose(out[:, 3, 2], [0.9, 0.5, 0.5, 0.5, 0.7], atol=1e-6)  # the smaller of the two
    assert (out[1:4, 5] == 0).all()  # missing at or next to frame 1: masked, all zero as in training
    np.testing.assert_allclose(out[[0, 4], 5, 2], 1.0)


class _CountingLifter(torch.nn.Module):
    """A per-frame linear lifter (3D = 2D + a constant depth) that records the lengths of the tracks it is given."""

    def __init__(self, input_fps: float | None) -> None:
        super().__init__()
        self.input_fps, self.seen = input_fps, []
        self.config = type("Cfg", (), {"max_len": 1000})()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.seen.append(x.shape[1])
        return torch.cat([x[..., :2], torch.ones_like(x[..., :1])], dim=-1)


def test_lift_tracks_resamples_to_the_models_frame_rate() -> None:
    t = np.arange(31)
    kp = np.zeros((1, 31, 17, 3))
    kp[0, :, :, 0] = 100 + 4.0 * t[:, None] + np.arange(17)  # moving linearly: interpolation is exact
    kp[0, :, :, 1] = 200.0
    kp[0, :, :, 2] = 1.0
    native = lift_tracks(_CountingLifter(None), kp, width=640, height=480, fps=30.0, flip=False)
    model = _CountingLifter(50.0)
    res = lift_tracks(model, kp, width=640, height=480, fps=30.0, flip=False)
    assert model.seen == [51] and res.lift_fps == pytest.approx(50.0)  # 1 s at 50 fps
    assert native.lift_fps == 30.0 and res.pose3d.shape == native.pose3d.shape == (1, 31, 17, 3)
    np.testing.assert_allclose(res.pose3d, native.pose3d, atol=1e-5)
    off = _CountingLifter(50.0)
    lift_tracks(off, kp, width=640, height=480, fps=30.0, flip=False, model_fps=0)
    assert off.seen == [31]  # 0: no resampling
    with pytest.raises(UsageError, match="model_fps"):
        lift_tracks(model, kp, width=640, height=480, fps=30.0, model_fps=float("nan"))


def test_training_fps_from_weights_metadata() -> None:
    from hmore.lift.pipeline import load_lifter, training_fps

    assert training_fps({"training_data": {"fps": 50.0}}) == 50.0
    assert training_fps({"run_config": {"data": {"fps": 25}}}) == 25.0
    assert training_fps({"run_config": '{"data": {"fps": 60}}'}) == 60.0  # a checkpoint's header strings
    assert training_fps({"input_fps": 30.0, "training_data": "generated people at 30 fps"}) == 30.0
    assert training_fps({"training_data": "no rate given"}) is None and training_fps({}) is None
    assert training_fps({"training_data": {"fps": float("nan")}}) is None
    assert load_lifter(weights="dstformer_cpu_h36m_pose").input_fps == 50.0
    assert load_lifter(weights="dstformer_cpu").input_fps == 30.0


# ---- the training task ----------------------------------------------------------------------------------------
def _task(**data):
    from hmore.train.tasks.lift import LiftDataConfig, LiftModelConfig, LiftRunConfig, LiftTask

    clips = [MotionClip(joints=_clip(50, seed=i), fps=30.0, name=f"walk/{i}") for i in range(3)]
    held = {"gen": [MotionClip(joints=_clip(50, seed=9), fps=30.0, name="walk/9")]}
    cfg = LiftRunConfig(model=LiftModelConfig(name="dstformer_test"),
                        data=LiftDataConfig(clip_len=27, min_len=9, eval_clips=4, **data))
    return LiftTask(config=cfg, clips=(clips, held))


def test_task_batches_are_deterministic_and_split_over_ranks() -> None:
    task = _task()
    full = task.batch(3, rank=0, world_size=1, batch_size=4)
    halves = [task.batch(3, rank=r, world_size=2, batch_size=2) for r in range(2)]
    torch.testing.assert_close(torch.cat([h["x"] for h in halves]), full["x"])
    torch.testing.assert_close(task.batch(3, rank=0, world_size=1, batch_size=4)["y"], full["y"])
    assert full["x"].shape[1] == task.clip_length(3) and 9 <= full["x"].shape[1] <= 27
    assert not torch.equal(task.batch(4, rank=0, world_size=1, batch_size=4)["x"][:, :9], full["x"][:, :9])


def test_task_loss_and_eval() -> None:
    task = _task()
    torch.manual_seed(0)
    model = task.build_model()
    loss, logs = task.loss(model, task.batch(0, rank=0, world_size=1, batch_size=2))
    assert loss.ndim == 0 and torch.isfinite(loss) and logs["mpjpe_mm"] > 0
    metrics = task.evaluate(model.eval())
    assert set(metrics) == {"gen_mpjpe_mm", "gen_p_mpjpe_mm"}
    assert 0 < metrics["gen_p_mpjpe_mm"] < metrics["gen_mpjpe_mm"]
    assert task.model_config() == {"name": "dstformer_test", "kwargs": {}}


# ---- hmore lift ---------------------------------------------------------------------------------------------------
@pytest.fixture()
def tiny_checkpoint(tmp_path):
    from hmore.train.checkpoint import save_weights

    torch.manual_seed(0)
    model = create_model("dstformer_test")
    return save_weights(tmp_path / "tiny.safetensors", model,
                        metadata={"model_config": {"name": "dstformer_test", "kwargs": {}}, "step": 0})


def _generated_clip(path, num_frames: int = 40):
    """A generated-clip-like npz: two people, COCO-17 2D in pixels, H36M-17 3D ground truth."""
    from hmore.io.atomic import save_npz_atomic
    from hmore.skeleton import COCO17

    kp3d, kp2d = [], []
    for p in range(2):
        world = _clip(num_frames, seed=p)
        world[..., 0] += 1.5 * p
        cam = Camera(rotation=look_at(np.array([1.0, 1.5, 8.0]), np.array([1.0, 1.0, 0.0])),
                     position=np.array([1.0, 1.5, 8.0]), focal=300.0, width=320, height=240, cx=160, cy=120)
        pc = cam.to_camera(world)
        px = cam.project(pc)  # (T, 17, 2) in H36M order: put them in COCO order where both layouts have the joint
        coco = np.zeros((num_frames, 17, 3))
        for name in ("left_shoulder", "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist",
                     "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle", "nose"):
            coco[:, COCO17.index(name), :2] = px[:, H36M17.index(name)]
            coco[:, COCO17.index(name), 2] = 1.0
        for eye, ear in (("left_eye", "left_ear"), ("right_eye", "right_ear")):
            coco[:, COCO17.index(eye)] = coco[:, COCO17.index("nose")] + [0, -3, 0]
            coco[:, COCO17.index(ear)] = coco[:, COCO17.index("nose")] + [0, -2, 0]
        kp3d.append(pc)
        kp2d.append(coco)
    kp2d = np.stack(kp2d, axis=1).astype(np.float32)  # (T, P, 17, 3)
    kp2d[10:14, 1] = 0.0  # person 1 undetected for 4 frames
    save_npz_atomic(path, kp2d=kp2d, kp3d=np.stack(kp3d, axis=1).astype(np.float32),
                    size=np.array([320, 240]), fps=np.float32(30.0))
    return path


def test_cli_lift_generated_clip(tmp_path, tiny_checkpoint, capsys) -> None:
    from hmore.cli import main

    clip = _generated_clip(tmp_path / "clip.npz")
    out = tmp_path / "out"
    assert main(["lift", str(clip), "-o", str(out), "--checkpoint", str(tiny_checkpoint), "--trajectory"]) == 0
    text = capsys.readouterr().out
    assert "2 people x 40 frames (4 interpolated)" in text and "MPJPE" in text
    z = np.load(out / "pose3d.npz")
    assert z["pose3d"].shape == (2, 40, 17, 3) and np.isfinite(z["pose3d"]).all()
    assert z["interpolated"][1].tolist() == [10 <= t < 14 for t in range(40)]
    assert z["size"].tolist() == [320, 240]
    assert (out / "preview.mp4").stat().st_size > 1000
    assert "preview.mp4" in (out / "index.html").read_text()


def test_generated_clip_occlusion_flags_are_not_detection_scores(tmp_path) -> None:
    """A generated clip's visibility 0 marks a self-occluded joint whose x, y is still exact: read_tracks must not
    mask it (nor, through the min rule, the root, belly and neck), but frames without the person stay undetected."""
    from hmore.io.atomic import save_npz_atomic
    from hmore.lift.pipeline import read_tracks
    from hmore.skeleton import COCO17

    path = _generated_clip(tmp_path / "clip.npz", num_frames=16)
    z = dict(np.load(path))
    z["kp2d"][:, :, [COCO17.index("left_hip"), COCO17.index("left_shoulder")], 2] = 0.0  # a side view
    save_npz_atomic(path, **z)
    tr = read_tracks(path)
    seen = np.ones((2, 16), bool)
    seen[1, 10:14] = False
    assert (tr.kp2d[seen][..., 2] == 1.0).all()
    assert (tr.kp2d[~seen] == 0.0).all()
    hips = z["kp2d"].transpose(1, 0, 2, 3)[..., [COCO17.index("left_hip"), COCO17.index("right_hip")], :2].mean(-2)
    np.testing.assert_allclose(tr.kp2d[..., H36M17.index("root"), :2][seen], hips[seen], atol=1e-4)


def test_cli_lift_bad_inputs(tmp_path, tiny_checkpoint, capsys) -> None:
    from hmore.cli import main

    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    assert main(["lift", str(bad), "-o", str(tmp_path / "o"), "--checkpoint", str(tiny_checkpoint)]) == 1
    assert "hmore lift: error:" in capsys.readouterr().err
    clip = _generated_clip(tmp_path / "clip.npz", num_frames=12)
    assert main(["lift", str(clip), "-o", str(tmp_path / "o"), "--checkpoint", str(tiny_checkpoint),
                 "--window", "999"]) == 2
    assert "longer than the model's maximum" in capsys.readouterr().err
    assert main(["lift", str(tmp_path / "missing.json"), "-o", str(tmp_path / "o"),
                 "--checkpoint", str(tiny_checkpoint)]) == 1


def test_cli_lift_coco_file(shared_data, tmp_path, tiny_checkpoint, capsys) -> None:
    from conftest import require_file
    from hmore.cli import main

    path = require_file(shared_data, "keypoints", "coco", "test_coco.json")
    assert main(["lift", str(path), "-o", str(tmp_path / "o"), "--checkpoint", str(tiny_checkpoint),
                 "--no-video"]) == 0
    z = np.load(tmp_path / "o" / "pose3d.npz")
    assert z["pose3d"].shape[2:] == (17, 3) and z["pose3d"].shape[0] >= 1
    assert not (tmp_path / "o" / "preview.mp4").exists()


def test_coco_view_of_the_skeleton() -> None:
    from hmore.lift.data import coco_derived_h36m, h36m_to_coco
    from hmore.skeleton import COCO17

    rest = sample_identity(0, 0).rest_pose()  # faces +z, left = +x
    coco = h36m_to_coco(rest)
    for side, sign in (("left", 1), ("right", -1)):
        for part in ("eye", "ear"):
            assert sign * (coco[COCO17.index(f"{side}_{part}"), 0]) > 0.02
    assert coco[COCO17.index("left_ear"), 2] < coco[COCO17.index("nose"), 2]  # ears behind the nose
    derived = coco_derived_h36m(rest)
    limbs = [i for i, n in enumerate(H36M17.joints) if n not in ("belly", "neck", "head")]
    np.testing.assert_allclose(derived[limbs], rest[limbs], atol=1e-12)
    np.testing.assert_allclose(derived[H36M17.index("neck")],
                               0.5 * (rest[H36M17.index("left_shoulder")] + rest[H36M17.index("right_shoulder")]))


def test_lift_task_resumes_exactly(tmp_path) -> None:
    from hmore.train.engine import OptimConfig, TrainConfig, train

    cfg = TrainConfig(steps=4, batch_size=2, device="cpu", log_every=1, ckpt_every=2, tensorboard=False,
                      optim=OptimConfig(lr=1e-3))
    full = train(_task(), cfg, tmp_path / "a", resume=False)
    half = train(_task(), TrainConfig(**{**vars(cfg), "steps": 2}), tmp_path / "b", resume=False)
    rest = train(_task(), cfg, tmp_path / "b", resume=True)
    assert rest.start_step == 2
    np.testing.assert_allclose(half.losses + rest.losses, full.losses, rtol=1e-5)


def test_shipped_dstformer_cpu_lifts_held_out_motion() -> None:
    """The shipped weights beat the mean pose (205 mm MPJPE / 166 mm P-MPJPE on held-out windows) by far (75 / 52)."""
    import hmore
    from hmore.metrics.pose3d import mpjpe, p_mpjpe
    from hmore.train.tasks.lift import LiftDataConfig, LiftRunConfig, LiftTask

    model = hmore.load_model("dstformer_cpu")
    cfg = LiftRunConfig(data=LiftDataConfig(train_identities=1, test_identities=3, eval_clips=24, bvh_train=(),
                                            bvh_test=(), clip_len=27))
    held = LiftTask(config=cfg).eval_set()["gen"]
    pred = torch.from_numpy(np.stack([run_windows(model, x, window=27, flip=True) for x in held["x"]]))
    y = torch.from_numpy(held["y"])
    e, pe = 1000 * float(mpjpe(pred, y)), 1000 * float(p_mpjpe(pred.double(), y.double()))
    print(f"shipped dstformer_cpu on 24 held-out windows: MPJPE {e:.1f} mm, P-MPJPE {pe:.1f} mm")
    assert e < 110 and pe < 75


def test_generated_clip_frame_rate_is_read_from_its_meta(tmp_path, caplog) -> None:
    """hmore.synth records the frame rate in meta["params"]["fps"]; read_tracks must use it, not assume 30 fps."""
    import json

    from hmore.io.atomic import save_npz_atomic
    from hmore.lift.pipeline import read_tracks

    path = _generated_clip(tmp_path / "clip.npz", num_frames=12)
    z = {k: v for k, v in np.load(path).items() if k != "fps"}
    z["frames"] = np.zeros((12, 240, 320, 3), np.uint8)
    save_npz_atomic(path, **z, meta=np.array(json.dumps({"generator": "hmore.synth/1", "params": {"fps": 12.5}})))
    with caplog.at_level("WARNING"):
        tr = read_tracks(path)
    assert tr.fps == 12.5 and (tr.width, tr.height) == (320, 240)
    assert "frame rate" not in caplog.text
    save_npz_atomic(path, **z, meta=np.array(json.dumps({"params": {"fps": -1}})))
    with caplog.at_level("WARNING"):
        assert read_tracks(path).fps == 30.0
    assert "assuming 30 fps" in caplog.text
