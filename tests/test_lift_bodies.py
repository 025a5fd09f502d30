"""Lifting data on Anny bodies (issue 18 item 4) and the held-out-people benchmark (issue 17): the pool's own COCO
keypoints drive the 2D input, the Anny clips cache and resume, the lift_h36m task's strict ``virtual_body`` key,
fixed virtual views of held-out motions, per-group means, and ``hmore bench lift --data bandai`` on a tiny slice
(skipped without the shared data)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from hmore.errors import ConfigError
from hmore.lift.data import (
    MotionClip,
    MotionPool,
    NoiseConfig,
    SampleConfig,
    generated_clips,
    h36m_to_coco,
    virtual_batch,
)
from hmore.lift.h36m import evaluate
from hmore.lift.views import SOURCE, view_arrays
from hmore.skeleton import H36M17, bone_lengths

QUIET = SampleConfig(noise=NoiseConfig(noise_prob=0.0))


def _clips(n: int = 2, frames: int = 30) -> list[MotionClip]:
    return generated_clips(identities=range(n), actions=["walk"], num_frames=frames, headings=1, seed=0)


def test_pool_coco_drives_the_input_and_not_the_target() -> None:
    clips = _clips()
    plain = MotionPool.from_clips(clips)
    assert plain.coco is None
    # the skeleton's own COCO view given explicitly: the very same batch
    same = MotionPool.from_clips([MotionClip(joints=c.joints, fps=c.fps, name=c.name, coco=h36m_to_coco(c.joints))
                                  for c in clips])
    starts = np.array([0, 3, 31])
    x0, y0 = virtual_batch(plain, starts, 8, np.random.default_rng(1), QUIET)
    x1, y1 = virtual_batch(same, starts, 8, np.random.default_rng(1), QUIET)
    np.testing.assert_allclose(x1, x0, atol=1e-5)
    np.testing.assert_array_equal(y1, y0)
    # a body whose shoulders and hips sit 5 cm higher than the skeleton's: the input moves, the target does not
    coco = h36m_to_coco(clips[0].joints)
    coco[:, 5:, 1] += 0.05  # COCO shoulders onwards
    moved = MotionPool.from_clips([MotionClip(joints=clips[0].joints, fps=30.0, name="a", coco=coco), clips[1]])
    assert moved.coco.shape == moved.joints.shape
    np.testing.assert_allclose(moved.coco[30:], h36m_to_coco(clips[1].joints), atol=1e-6)  # built for the other
    x2, y2 = virtual_batch(moved, starts, 8, np.random.default_rng(1), QUIET)
    np.testing.assert_array_equal(y2, y0)
    assert np.abs(x2[:2, :, :, :2] - x0[:2, :, :, :2]).max() > 1e-3  # windows of the first motion
    np.testing.assert_allclose(x2[2], x0[2], atol=1e-5)  # the second motion's window is unchanged
    assert (x2[:2, :, :, 1] < x0[:2, :, :, 1]).mean() > 0.6  # higher in the world = up (smaller y) in the image


def test_generated_clips_checks_the_body() -> None:
    with pytest.raises(ValueError, match="body must be one of"):
        generated_clips(identities=[0], actions=["walk"], num_frames=10, body="robot")


def test_anny_clips_come_from_the_body_and_are_cached(tmp_path: Path) -> None:
    pytest.importorskip("anny", reason="the body extra (anny) is not installed")
    kw = {"identities": [5], "actions": ["wave_one"], "num_frames": 10, "headings": 1, "seed": 0}
    clips = generated_clips(body="anny", cache=tmp_path, **kw)
    assert len(clips) == 1 and clips[0].name == "wave_one/id5/h0"
    c = clips[0]
    assert c.joints.shape == c.coco.shape == (10, 17, 3)
    # an Anny body: COCO hips lie on its H36M hips, bones rigid over time
    np.testing.assert_allclose(c.coco[:, 11], c.joints[:, 4], atol=0.05)  # left hip
    bl = bone_lengths(c.joints, H36M17)
    assert (bl.std(axis=0) < 0.01).all()
    files = list(tmp_path.glob("*.npz"))
    assert len(files) == 1
    again = generated_clips(body="anny", cache=tmp_path, **kw)  # read back from the cache
    np.testing.assert_allclose(again[0].joints, c.joints, atol=1e-6)
    np.testing.assert_allclose(again[0].coco, c.coco, atol=1e-6)
    assert again[0].name == c.name


def test_lift_h36m_virtual_body_is_strict_and_reaches_the_pool(monkeypatch) -> None:
    from hmore.config import load_config
    from hmore.lift import data as lift_data
    from hmore.train.tasks.lift_h36m import H36MLiftRunConfig, H36MLiftTask

    def cfg(**data):
        return load_config(H36MLiftRunConfig, {"model": {"name": "mlp_lifter_test"},
                                               "data": {"clip_len": 1, "virtual_h36m": False, "virtual_bandai": False,
                                                        "virtual_generated": 1, "sh_weight": 0.0, "gt_weight": 0.0,
                                                        "virtual_weight": 1.0, **data}})

    with pytest.raises(ConfigError, match="virtual_body"):
        H36MLiftTask(config=cfg(virtual_body="robot"))
    seen = {}

    def fake(**kw):
        seen.update(kw)
        return _clips(1, 20)

    monkeypatch.setattr(lift_data, "generated_clips", fake)
    task = H36MLiftTask(config=cfg(virtual_body="anny", virtual_cache="/tmp/c"))
    b = task.batch(0, rank=0, world_size=1, batch_size=16)  # virtual windows only: no Human3.6M arrays needed
    assert b["x"].shape == (16, 1, 17, 3) and task._arrays is None
    assert seen["body"] == "anny" and seen["cache"] == "/tmp/c" and list(seen["identities"]) == [0]
    assert task.weights_licence is None  # generated data only: the default licence


def test_view_arrays_are_fixed_noisy_views() -> None:
    clips = _clips(2, 40)
    a = view_arrays(clips, labels=[("walk", "a"), ("walk", "b")], fps=30.0, seed=3)
    b = view_arrays(clips, labels=[("walk", "a"), ("walk", "b")], fps=30.0, seed=3)
    assert list(a.offsets) == [0, 40, 80] and a.x[SOURCE].shape == a.y.shape == (80, 17, 3)
    np.testing.assert_array_equal(a.x[SOURCE], b.x[SOURCE])  # the same set every run
    np.testing.assert_allclose(a.y[:, 0], 0, atol=1e-6)
    for k, c in enumerate(clips):  # one rigid camera per motion: bones keep their world lengths
        np.testing.assert_allclose(bone_lengths(a.y[40 * k : 40 * (k + 1)], H36M17), bone_lengths(c.joints, H36M17),
                                   atol=1e-4)
    conf = a.x[SOURCE][..., 2]
    assert (conf < 1).all() and (conf > 0).all()  # every motion noised, no joint dropped
    assert [e.style for e in a.examples] == ["a", "b"]
    with pytest.raises(ValueError, match="labels"):
        view_arrays(clips, labels=[("walk", "a")], fps=30.0)


class _Constant(torch.nn.Module):
    """Predicts the same pose everywhere."""

    def __init__(self, pose: np.ndarray) -> None:
        super().__init__()
        self.pose = torch.nn.Parameter(torch.as_tensor(pose, dtype=torch.float32))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pose.expand(*x.shape[:2], 17, 3)


def test_evaluate_groups_by_any_label_and_reports_frame_means() -> None:
    clips = _clips(2, 40) + _clips(1, 20)
    a = view_arrays(clips, labels=[("walk", "b"), ("walk", "b"), ("walk", "a")], fps=30.0)
    r = evaluate(_Constant(np.zeros((17, 3))), a, source=SOURCE, flip=False, group_by="style")
    assert list(r.per_action) == ["a", "b"] and r.per_action["b"]["frames"] == 80 and r.frames == 100
    # a zero pose: P1 is the mean distance of the joints from the root
    dist = 1000 * np.linalg.norm(a.y - a.y[:, :1], axis=-1).mean(axis=1)
    np.testing.assert_allclose(r.per_action["a"]["p1"], dist[80:].mean(), rtol=1e-5)
    np.testing.assert_allclose(r.p1_frames, dist.mean(), rtol=1e-5)
    np.testing.assert_allclose(r.p1, 0.5 * (dist[80:].mean() + dist[:80].mean()), rtol=1e-5)


def test_bench_lift_on_held_out_bandai_takes(shared_data: Path, tmp_path: Path) -> None:
    from hmore.bench.lift_bench import format_table, run_views
    from hmore.data import bandai
    from hmore.registry import create_model
    from hmore.train.checkpoint import save_weights

    if not (shared_data / "bandai" / "index.json").is_file():
        pytest.skip("no bandai/index.json in the shared data")
    path = save_weights(tmp_path / "m.safetensors", create_model("mlp_lifter_test"),
                        metadata={"name": "m", "model": {"name": "mlp_lifter_test"}})
    s = run_views(models=[f"tiny={path}", "nope"], data="bandai", out_dir=tmp_path / "out", limit=2, every=4,
                  pictures=1, progress=False)
    held = [t for t in bandai.load_index() if bandai.is_held_out(t)][:2]
    assert s["protocol"]["takes"] == [f"bandai:{t.name}" for t in held]
    r = s["models"]["tiny"]["bandai"]
    assert r["group_by"] == "style" and set(r["per_action"]) == {t.style for t in held}
    assert 0 < r["p2"] <= r["p1"] and r["missing"]["fraction"] == 0.2 and "nope" in s["unavailable"]
    assert json.loads((tmp_path / "out" / "results.json").read_text())["protocol"]["data"] == "bandai"
    assert "per_action_bandai.png" in (tmp_path / "out" / "report.html").read_text()
    assert "| tiny | Bandai-Namco held-out takes" in format_table(s)
