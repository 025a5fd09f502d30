"""Human3.6M lifting: window assembly, the protocol's errors and per-action means, the fast training batches
(virtual cameras, noise, masks), the lift_h36m task, and the bench's outputs. Synthetic arrays except where a test
says it reads the shared data (skipped when absent)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import require_file
from hmore.data.h36m import H36MExample
from hmore.lift.data import (
    MotionClip,
    MotionPool,
    NoiseConfig,
    SampleConfig,
    flip_batch,
    mask_batch,
    noise_batch,
    virtual_batch,
)
from hmore.lift.h36m import LiftArrays, evaluate, frame_errors, predict, sample_offset, split_validation
from hmore.lift.infer import smooth_phases
from hmore.skeleton import H36M17, bone_lengths


class CopyModel(torch.nn.Module):
    """Returns its input: predictions then equal the input wherever the windows put them."""

    def __init__(self, max_len: int | None = None, frame_stride: int = 1) -> None:
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(()))
        if max_len is not None:
            self.config = type("Cfg", (), {"max_len": max_len, "frame_stride": frame_stride})()
        self.seen: list[torch.Tensor] = []  # channel 1 of joint 0 of every window it was given (B, L)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.seen.append(x[..., 0, 1].clone())
        return x + 0 * self.w


def _arrays(lengths=(23, 9), actions=("Walking", "Eating"), seed=0) -> LiftArrays:
    rng = np.random.default_rng(seed)
    ex = tuple(H36MExample(subject="S9", sequence=f"S9/{a}", action=a, camera="54138969", num_frames=n)
               for a, n in zip(actions, lengths))
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    y = rng.normal(0, 0.3, (offsets[-1], 17, 3)).astype(np.float32)
    y -= y[:, :1]
    return LiftArrays(examples=ex, offsets=offsets, x={"sh": y.copy(), "gt": y.copy()}, y=y)


@pytest.mark.parametrize("window", [5, 8, 30, None])
@pytest.mark.parametrize("flip", [False, True])
def test_predict_puts_every_window_back_in_place(window, flip) -> None:
    a = _arrays()
    pred, covered = predict(CopyModel(), a.x["sh"], a.offsets, window=window, flip=flip)
    assert covered.all()
    np.testing.assert_allclose(pred, a.x["sh"], atol=1e-6)


def test_predict_every_nth_window_scores_a_subset() -> None:
    a = _arrays(lengths=(40,), actions=("Walking",))
    _, covered = predict(CopyModel(), a.x["sh"], a.offsets, window=5, every=3)
    # windows start at 0, 5, ..., 35; every third from the example's offset o: windows o, o + 3, ...
    o = sample_offset(0, 3)
    starts = np.arange(0, 40, 5)[o::3]
    np.testing.assert_array_equal(np.flatnonzero(covered), (starts[:, None] + np.arange(5)).ravel())
    _, whole = predict(CopyModel(), a.x["sh"], a.offsets, window=None, every=4)
    np.testing.assert_array_equal(np.flatnonzero(whole), np.arange(sample_offset(0, 4), 40, 4))


def test_evaluate_refuses_a_sample_with_no_frame() -> None:
    from hmore.errors import UsageError

    a = _arrays(lengths=(10,), actions=("Walking",))
    # two windows of 5 frames: an offset >= 2 keeps none
    every = next(n for n in range(2, 200) if sample_offset(0, n) >= 2)
    with pytest.raises(UsageError, match="no frame to score"):
        evaluate(CopyModel(max_len=5), a, source="sh", flip=False, every=every)


def test_sample_offset_is_fixed_and_spread_over_its_range() -> None:
    assert sample_offset(5, 1) == 0
    assert sample_offset(7, 20) == sample_offset(7, 20)  # the same on every call
    offs = np.array([sample_offset(e, 20) for e in range(2000)])
    assert offs.min() == 0 and offs.max() == 19
    counts = np.bincount(offs, minlength=20)
    assert counts.min() > 60 and counts.max() < 140  # 100 expected each


def test_quick_sample_is_uniform_over_each_sequence() -> None:
    # 300 sequences of 20 windows, every 20th window: exactly one window of each; before the offsets it was always
    # the first, so the scored frames sat at the sequences' starts (mean relative position 0.025, not 0.5)
    lengths = (100,) * 300
    a = _arrays(lengths=lengths, actions=("Walking",) * 300)
    _, covered = predict(CopyModel(), a.x["sh"], a.offsets, window=5, every=20)
    assert covered.sum() == 300 * 5
    rel = (np.flatnonzero(covered) % 100 + 0.5) / 100
    assert abs(rel.mean() - 0.5) < 0.06
    _, whole = predict(CopyModel(), a.x["sh"], a.offsets, window=None, every=20)
    assert whole.sum() == 300 * 5 and abs(((np.flatnonzero(whole) % 100 + 0.5) / 100).mean() - 0.5) < 0.06


def test_frame_errors_align_root_and_procrustes() -> None:
    rng = np.random.default_rng(1)
    t = rng.normal(0, 0.3, (6, 17, 3))
    e1, e2 = frame_errors(t + np.array([0.1, -0.2, 0.3]), t)  # a shifted pose: 0 after root alignment
    np.testing.assert_allclose(e1, 0, atol=1e-9)
    c, s = np.cos(0.4), np.sin(0.4)
    rot = np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])
    e1, e2 = frame_errors(1.3 * t @ rot.T, t)
    assert (e1 > 10).all()
    np.testing.assert_allclose(e2, 0, atol=1e-6)
    off = t.copy()
    off[:, 5] += [0.017, 0, 0]  # one joint 17 mm off: P1 = 17 / 17 joints = 1 mm
    np.testing.assert_allclose(frame_errors(off, t)[0], 1.0, atol=1e-9)


def test_evaluate_means_per_action_then_over_actions() -> None:
    a = _arrays(lengths=(30, 10), actions=("Walking", "Eating"))
    a.x["sh"][:30, 3] += [0.017, 0, 0]  # Walking: 1 mm P1 on every frame, Eating: exact
    r = evaluate(CopyModel(max_len=8), a, source="sh", flip=False)
    assert r.per_action["Walking"]["p1"] == pytest.approx(1.0, abs=1e-4)
    assert r.per_action["Eating"]["p1"] == pytest.approx(0.0, abs=1e-4)
    assert r.p1 == pytest.approx(0.5, abs=1e-4)  # not the frame mean (0.75)
    assert r.frames == 40 and r.bone_cv > 0
    miss = evaluate(CopyModel(max_len=8), a, source="sh", flip=False, missing=0.2)
    assert miss.p1 > r.p1  # dropped joints (all zero) are far from the truth
    with pytest.raises(ValueError, match="no 'virtual' input"):
        evaluate(CopyModel(), a, source="virtual")


def test_split_validation_holds_out_the_last_trial_of_each_action() -> None:
    ex = [H36MExample(subject=s, sequence=f"{s}/{q}", action=q.split()[0], camera=c, num_frames=5)
          for s in ("S1", "S8") for q in ("Eating", "Eating 2", "Walking 1", "Walking") for c in ("a", "b")]
    train, val = split_validation(ex, ["S8"])
    assert sorted({e.sequence for e in val}) == ["S8/Eating 2", "S8/Walking 1"]
    assert len(val) == 4 and len(train) == 12 and not {e.sequence for e in train} & {e.sequence for e in val}


def _pool(n: int = 3, frames: int = 40) -> MotionPool:
    from hmore.lift.data import generated_clips

    clips = generated_clips(identities=range(1), actions=["walk", "wave_one"][: max(1, n - 1)], num_frames=frames,
                            headings=1, seed=0)
    return MotionPool.from_clips(clips)


def test_virtual_batch_targets_are_rigid_views_of_the_motion() -> None:
    pool = _pool()
    starts = pool.window_starts(9)[:5]
    x, y = virtual_batch(pool, starts, 9, np.random.default_rng(0), SampleConfig(noise=NoiseConfig(noise_prob=0)))
    assert x.shape == y.shape == (5, 9, 17, 3) and x.dtype == np.float32
    np.testing.assert_allclose(y[:, :, 0], 0, atol=1e-6)
    world = pool.joints[starts[:, None] + np.arange(9)]
    np.testing.assert_allclose(bone_lengths(y, H36M17), bone_lengths(world, H36M17), atol=1e-4)
    assert (y[..., 10, 1] < 0).all()  # upright cameras (y down): the head above the root
    assert (x[..., 2] == 1).all() and np.abs(x[..., :2]).max() < 3
    x2, y2 = virtual_batch(pool, starts, 9, np.random.default_rng(0), SampleConfig(noise=NoiseConfig(noise_prob=0)))
    np.testing.assert_array_equal(x, x2)  # a pure function of the seed


def test_noise_mask_and_flip_batches() -> None:
    rng = np.random.default_rng(0)
    clean = rng.uniform(-0.5, 0.5, (64, 9, 17, 2))
    quiet = noise_batch(clean, rng, NoiseConfig(noise_prob=0.0))
    np.testing.assert_array_equal(quiet[..., :2], clean)
    assert (quiet[..., 2] == 1).all()
    noisy = noise_batch(clean, rng, NoiseConfig(noise_prob=1.0))
    assert (noisy[..., 2] <= 1).all() and (noisy[..., 2] > 0).all() and np.abs(noisy[..., :2] - clean).max() > 0
    x = np.ones((200, 9, 17, 3))
    m = mask_batch(x, rng, joint_prob=np.r_[np.zeros(100), np.full(100, 0.5)], frame_prob=0.0)
    assert (m[:100] == 1).all() and 0.45 < 1 - m[100:].mean() < 0.55
    assert ((m == 0).all(-1) | (m == 1).all(-1)).all()  # a masked joint loses x, y and score together
    y = rng.normal(size=(4, 9, 17, 3))
    xf, yf = flip_batch(x[:4], y, np.array([True, False, True, False]))
    np.testing.assert_array_equal(yf[1], y[1])
    np.testing.assert_allclose(yf[0, :, 4, 0], -y[0, :, 1, 0])  # left hip <- mirrored right hip


def _task(tmp_cfg: dict | None = None):
    from hmore.config import load_config
    from hmore.train.tasks.lift_h36m import H36MLiftRunConfig, H36MLiftTask

    cfg = load_config(H36MLiftRunConfig, {"model": {"name": "dstformer_test"}, "data": {"clip_len": 8, "val_every": 1},
                                          "train": {"steps": 3, "batch_size": 6, "device": "cpu", "eval_every": 3,
                                                    "tensorboard": False, "log_every": 1},
                                          **(tmp_cfg or {})})
    a = _arrays(lengths=(30, 20))
    return H36MLiftTask(config=cfg, arrays=(a, _arrays(lengths=(16, 12), seed=1)), pool=_pool())


def test_lift_h36m_task_batches_train_and_evaluate(tmp_path: Path) -> None:
    from hmore.train.engine import train

    task = _task()
    b = task.batch(5, rank=0, world_size=1, batch_size=6)
    assert b["x"].shape == b["y"].shape == (6, 8, 17, 3)
    np.testing.assert_array_equal(b["x"], task.batch(5, rank=0, world_size=1, batch_size=6)["x"])
    s = train(task, task.config.train, tmp_path / "run", resume=False)
    assert s.step == 3 and {"val_sh_p1", "val_gt_p1", "val_p1", "val_sh_p2"} <= set(s.eval_metrics)
    assert all(np.isfinite(v) for v in s.eval_metrics.values())
    assert "Human3.6M" in task.weights_licence and "non-commercial" in task.weights_licence  # exported weights say so
    assert "Bandai" not in _task({"data": {"clip_len": 8, "virtual_bandai": False}}).weights_licence


def test_lift_h36m_task_starts_from_exported_weights(tmp_path: Path) -> None:
    from hmore.train.checkpoint import save_weights

    task = _task()
    model = task.build_model()
    with torch.no_grad():
        for p in model.parameters():
            p.fill_(0.01)
    save_weights(tmp_path / "w.safetensors", model, metadata={"name": "w"})
    again = _task({"init_from": str(tmp_path / "w.safetensors")}).build_model()
    assert all(torch.equal(p, torch.full_like(p, 0.01)) for p in again.parameters())


def test_lift_bench_outputs(tmp_path: Path) -> None:
    from hmore.bench.lift_bench import ANCHORS, format_table, write_outputs

    a = _arrays(lengths=(30, 10))
    r = evaluate(CopyModel(max_len=8), a, source="sh", flip=False)
    summary = {"protocol": {"sources": {"sh": "SH detections"}, "missing_fraction": 0.2, "frames": "all"},
               "models": {"copy": {"sh": {"p1": r.p1, "p2": r.p2, "per_action": r.per_action, "frames": r.frames,
                                          "bone_cv": r.bone_cv, "missing": {"p1": 2.0, "p2": 1.0, "ratio": 1.1}}}},
               "anchors": list(ANCHORS), "command": "hmore bench lift"}
    write_outputs(tmp_path, summary, arrays=a, preds={("copy", "sh"): r}, pictures=2)
    assert json.loads((tmp_path / "results.json").read_text())["models"]["copy"]["sh"]["frames"] == 40
    html = (tmp_path / "report.html").read_text()
    assert "per_action_sh.png" in html and "skeletons_copy.png" in html and "67.5" in html
    assert (tmp_path / "skeletons_copy.png").stat().st_size > 1000
    assert "| copy | SH detections |" in format_table(summary)


def test_build_arrays_on_human36m(shared_data: Path) -> None:
    from hmore.data.h36m import load_h36m
    from hmore.lift.h36m import build_arrays

    require_file(shared_data, "h36m", "detections_2d_sh.npz")
    data = load_h36m(shared_data / "h36m")
    ex = [e for e in data.examples(["S9"]) if e.sequence == "S9/Walking"][:1]
    a = build_arrays(data, ex)
    assert a.num_frames == ex[0].num_frames and a.x["sh"].shape == a.y.shape == (a.num_frames, 17, 3)
    assert (a.x["sh"][:, 7] == 0).all()  # Spine: no SH detection (nearest mapping)
    assert (a.x["gt"][..., 2] == 1).all() and np.abs(a.x["gt"][..., 0]).max() <= 1.0
    np.testing.assert_allclose(a.y[:, 0], 0)
    assert 0.8 < np.linalg.norm(a.y[:, 10] - a.y[:, 3], axis=-1).mean() < 1.9  # metres, head to foot
    # the two inputs agree up to the detector's error (normalised units; 0.04 = 20 px of 1000)
    joints = [j for j in range(17) if j not in (7, 9, 10)]
    assert np.median(np.abs(a.x["sh"][:, joints, :2] - a.x["gt"][:, joints, :2])) < 0.02


def test_motion_clip_pool_resamples() -> None:
    clip = MotionClip(joints=np.zeros((31, 17, 3)), fps=30.0, name="z")
    pool = MotionPool.from_clips([clip, clip], fps=50.0)
    assert pool.joints.shape[0] == 2 * 51 and list(pool.offsets) == [0, 51, 102]
    assert len(pool.window_starts(51)) == 2 and len(pool.window_starts(52)) == 0


def test_load_lifter_reads_exported_weights(tmp_path: Path) -> None:
    from hmore.lift.pipeline import load_lifter
    from hmore.registry import create_model
    from hmore.train.checkpoint import save_weights

    model = create_model("mlp_lifter_test")
    # what hmore train --export writes: the model under "model", not "model_config"
    path = save_weights(tmp_path / "w.safetensors", model, metadata={"name": "w", "model": {"name": "mlp_lifter_test"}})
    back = load_lifter(checkpoint=path)
    x = torch.randn(1, 5, 17, 3)
    torch.testing.assert_close(back(x), model.eval()(x))


def test_shipped_h36m_lifter_on_a_held_out_slice(shared_data: Path) -> None:
    """dstformer_cpu_h36m (trained on S1, S5-S8) on 270 frames of S11 it never saw: far better than the training mean
    pose, better than the generated-data lifter, and its metadata states the data's research-only terms."""
    from hmore.data.h36m import load_h36m
    from hmore.lift.h36m import build_arrays, model_window
    from hmore.lift.pipeline import load_lifter
    from hmore.weights import read_weights_metadata

    require_file(shared_data, "h36m", "detections_2d_sh.npz")
    meta = read_weights_metadata("dstformer_cpu_h36m")
    assert meta["task"] == "lift_h36m" and "non-commercial" in meta["licence"]
    data = load_h36m(shared_data / "h36m")
    ex = [e for e in data.examples(["S11"]) if e.sequence == "S11/Walking"][:1]
    a = build_arrays(data, ex)
    n = 270
    y = a.y[:n]
    mean_pose = np.broadcast_to(y.mean(0), y.shape)
    errors = {}
    for name in ("dstformer_cpu_h36m_pose", "dstformer_cpu_h36m", "dstformer_cpu"):
        model = load_lifter(weights=name).float().eval()
        pred, _ = predict(model, a.x["gt"][:n], np.array([0, n]), window=model_window(model), flip=True)
        errors[name] = float(frame_errors(pred, y)[0].mean())  # P1, mm
    base = float(frame_errors(np.ascontiguousarray(mean_pose), y)[0].mean())
    assert errors["dstformer_cpu_h36m"] < 0.6 * base and errors["dstformer_cpu_h36m"] < errors["dstformer_cpu"], (
        errors, base)
    # the whole-pose-embedding lifter (every 3rd frame, its stride applied by predict) beats the plain one
    assert errors["dstformer_cpu_h36m_pose"] < errors["dstformer_cpu_h36m"], errors


def test_predict_runs_a_per_frame_model_on_the_scored_frames_only() -> None:
    from hmore.registry import create_model

    a = _arrays(lengths=(23, 9))
    model = create_model("mlp_lifter_test").eval()
    assert model.per_frame
    full, _ = predict(model, a.x["sh"], a.offsets, window=None, every=1)
    sub, covered = predict(model, a.x["sh"], a.offsets, window=None, every=4)
    np.testing.assert_array_equal(np.flatnonzero(covered),
                                  np.r_[sample_offset(0, 4):23:4, 23 + np.arange(sample_offset(1, 4), 9, 4)])
    np.testing.assert_allclose(sub[covered], full[covered], atol=1e-5)  # BatchNorm in eval mode: frame by frame


def test_every_lift_h36m_recipe_loads_and_a_single_frame_recipe_trains() -> None:
    from hmore.config import load_config
    from hmore.train.tasks.lift_h36m import H36MLiftRunConfig

    configs = sorted((Path(__file__).parents[1] / "configs").glob("lift_h36m_*.yaml"))
    assert len(configs) >= 5
    loaded = {p.stem: load_config(H36MLiftRunConfig, p) for p in configs}  # strict: unknown keys would raise
    assert loaded["lift_h36m_mlp"].data.clip_len == 1  # the per-frame baseline is fed single frames
    task = _task({"model": {"name": "mlp_lifter_test"}, "data": {"clip_len": 1, "val_every": 1}})
    b = task.batch(0, rank=0, world_size=1, batch_size=32)
    assert b["x"].shape == (32, 1, 17, 3)
    loss, logs = task.loss(task.build_model(), b)
    assert torch.isfinite(loss) and logs["vel_mm"] == 0.0  # no velocity term on single frames


def _frame_ids(a: LiftArrays) -> np.ndarray:
    x = a.x["sh"].copy()
    x[:, 0, 1] = np.arange(len(x))  # the root's y is the global frame index (flip keeps it)
    return x


@pytest.mark.parametrize("k", [2, 3])
@pytest.mark.parametrize("flip", [False, True])
def test_predict_with_a_frame_stride_feeds_every_kth_frame_and_covers_every_frame(k, flip) -> None:
    a = _arrays(lengths=(23, 9))
    x = _frame_ids(a)
    model = CopyModel(max_len=4, frame_stride=k)
    pred, covered = predict(model, x, a.offsets, window=4, flip=flip)
    assert covered.all()
    merged = np.concatenate([smooth_phases(x[s:e], k) for s, e in zip(a.offsets[:-1], a.offsets[1:])])
    np.testing.assert_allclose(pred, merged, atol=1e-5)  # every frame back in place, then the phases merged
    ids = torch.cat([s.reshape(-1, s.shape[-1]) for s in model.seen]).numpy()
    d = np.diff(ids, axis=1)
    assert ((d == k) | ((d == 0) & (ids[:, 1:] == ids[:, -1:]))).all()  # frames k apart (a short tail repeats its end)
    assert (np.searchsorted(a.offsets, ids[:, 0], "right") == np.searchsorted(a.offsets, ids[:, -1], "right")).all()
    _, some = predict(model, x, a.offsets, window=4, every=3, flip=False)
    assert 0 < some.sum() < len(x)


def test_run_windows_applies_the_models_frame_stride() -> None:
    from hmore.lift.infer import run_windows

    x = _frame_ids(_arrays(lengths=(11,), actions=("Walking",)))
    model = CopyModel(max_len=4, frame_stride=2)
    np.testing.assert_allclose(run_windows(model, x, window=4), smooth_phases(x, 2), atol=1e-5)
    assert all((np.diff(s.numpy(), axis=1) == 2).all() for s in model.seen)


def test_phase_kernel_and_smoothing_by_hand() -> None:
    from hmore.lift.infer import phase_kernel

    np.testing.assert_allclose(phase_kernel(3), [1 / 3] * 3)
    np.testing.assert_allclose(phase_kernel(2), [0.25, 0.5, 0.25])
    np.testing.assert_allclose(phase_kernel(1), [1.0])
    with pytest.raises(ValueError, match="k must be"):
        phase_kernel(0)
    t = np.arange(12, dtype=np.float64)
    comb = np.tile([1.0, -0.5, -0.5], 4)  # what three disagreeing phases leave: period 3, zero mean
    y = (0.1 * t + comb)[:, None]
    out = smooth_phases(y, 3)
    np.testing.assert_allclose(out[1:-1, 0], 0.1 * t[1:-1])  # the comb is gone, the motion kept
    np.testing.assert_allclose(out[0, 0], (y[0, 0] + y[1, 0]) / 2)  # the ends average the frames there are
    y2 = (0.1 * t + np.tile([1.0, -1.0], 6))[:, None]
    np.testing.assert_allclose(smooth_phases(y2, 2)[1:-1, 0], 0.1 * t[1:-1])
    covered = np.ones(12, bool)
    covered[5] = False
    y3 = y.copy()
    y3[5] = 1e6  # not evaluated: must not leak into its neighbours
    out3 = smooth_phases(y3, 3, covered)
    np.testing.assert_allclose(out3[4, 0], (y[3, 0] + y[4, 0]) / 2)
    np.testing.assert_allclose(smooth_phases(y, 1), y)


def test_frame_stride_is_wired_through_training_batches_config_checks_and_exported_weights(tmp_path: Path) -> None:
    from hmore.errors import ConfigError
    from hmore.lift.h36m import phase_split
    from hmore.lift.infer import frame_stride_of
    from hmore.lift.pipeline import load_lifter
    from hmore.train.checkpoint import save_weights

    order, sub = phase_split(np.array([0, 5, 7]), 2)
    np.testing.assert_array_equal(order, [0, 2, 4, 1, 3, 5, 6])
    np.testing.assert_array_equal(sub, [0, 3, 5, 6, 7])
    strided = {"model": {"name": "dstformer_test", "kwargs": {"frame_stride": 2}},
               "data": {"clip_len": 8, "frame_stride": 2, "val_every": 1, "flip_prob": 0.0, "virtual_weight": 0.0}}
    task = _task(strided)
    train_y = task.arrays()[0].y
    y = task.batch(0, rank=0, world_size=1, batch_size=6)["y"].numpy()
    for w in y:  # every window is frames s, s + 2, ..., s + 14 of one training example
        s = int(np.flatnonzero((train_y == w[0]).all(axis=(1, 2)))[0])
        np.testing.assert_array_equal(w, train_y[s : s + 16 : 2])
    model = task.build_model()
    assert frame_stride_of(model) == 2
    with pytest.raises(ConfigError, match="frame_stride"):
        _task({**strided, "model": {"name": "dstformer_test"}}).build_model()  # the model would see every frame
    with pytest.raises(ConfigError, match="frame_stride"):
        _task({"data": {"clip_len": 8, "frame_stride": 0}})
    with pytest.raises(ValueError, match="frame_stride"):
        task.build_model().__class__(config=dataclasses.replace(model.config, frame_stride=0))
    path = save_weights(tmp_path / "w.safetensors", model,
                        metadata={"name": "w", "model": {"name": "dstformer_test", "kwargs": {"frame_stride": 2}}})
    assert frame_stride_of(load_lifter(checkpoint=path)) == 2  # hmore lift / bench lift apply the stride
    pool = MotionPool.from_clips([MotionClip(joints=np.zeros((51, 17, 3)), fps=50.0, name="z")])
    assert len(pool.window_starts(26, 2)) == 1 and len(pool.window_starts(27, 2)) == 0


def test_target_norm_heads_predict_standardised_3d_with_the_training_targets_statistics(tmp_path: Path) -> None:
    from hmore.registry import create_model
    from hmore.skeleton import H36M17

    assert "out_mean" not in create_model("dstformer_test").state_dict()  # the default: old weights load as before
    task = _task({"model": {"name": "dstformer_test", "kwargs": {"target_norm": True}}})
    model = task.build_model()
    mean, std = task.target_stats()
    m = task.arrays()[0].y[::10].mean(0)  # (J, 3); the mirror swaps left and right and keeps the height
    np.testing.assert_allclose(mean[:, 1], 0.5 * (m[:, 1] + m[H36M17.flip_index, 1]), atol=1e-5)
    np.testing.assert_allclose(mean[H36M17.flip_index, 0], -mean[:, 0], atol=1e-6)  # left/right symmetric
    torch.testing.assert_close(model.out_mean, torch.from_numpy(mean))
    torch.testing.assert_close(model.out_std, torch.from_numpy(std).clamp_min(1e-3))  # the root: std 0
    rep = torch.randn(2, 3, 17, model.config.rep_dim)
    torch.testing.assert_close(model.forward_head(rep), model.head(rep) * model.out_std + model.out_mean)
    with pytest.raises(ValueError, match="target stats must be"):
        model.set_target_stats(torch.zeros(3), torch.ones(3))
    with pytest.raises(ValueError, match="target_norm=True"):
        create_model("dstformer_test").set_target_stats(torch.zeros(17, 3), torch.ones(17, 3))
