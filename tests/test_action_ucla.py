"""NW-UCLA actions: the ST-GCN-style baseline, 3D inputs and their augmentation in the action task, classify on
NW-UCLA files and 2D keypoints (lifted), and the action bench's outputs. Synthetic data except where a test says it
reads the shared data (skipped when absent)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import require_file
from hmore.models.motion.stgcn import partition_adjacency
from hmore.registry import create_model
from hmore.skeleton import H36M17
from hmore.train.tasks.action import (
    ActionDataConfig,
    ActionInput,
    ActionModelConfig,
    ActionRunConfig,
    ActionTask,
    resample_frames,
    rotate_3d,
    sample_frames,
)


def test_partition_adjacency_spatial_configuration() -> None:
    a = partition_adjacency(H36M17)
    assert a.shape == (3, 17, 17)
    np.testing.assert_array_equal(a[0], np.eye(17))
    # the right knee (2) is updated by itself, its parent the right hip (1, nearer the root) and its child (3)
    assert a[1, 1, 2] == 1.0 and a[2, 3, 2] == 1.0 and a[1:, :, 2].sum() == 2.0
    # the root's three children all count as "farther", each with weight 1/3
    np.testing.assert_allclose(a[2, [1, 4, 7], 0], 1 / 3)
    assert a[1, :, 0].sum() == 0.0
    np.testing.assert_allclose(a.sum(axis=1)[a.sum(axis=1) > 0], 1.0)


def test_stgcn_action_forward_and_contracts() -> None:
    m = create_model("stgcn_action_test", num_classes=5).eval()
    x = torch.randn(3, 2, 12, 17, 3)  # (N, M persons, T, J, C)
    assert m(x).shape == (3, 5) and torch.isfinite(m(x)).all()
    assert m.forward_features(x).shape == (3, 2, 6, 17, 16)  # one strided block halves the frames
    with pytest.raises(ValueError, match="STGCN expects"):
        m.backbone.forward_features(torch.randn(1, 8, 16, 3))
    with pytest.raises(ValueError, match="odd"):
        create_model("stgcn_action_test", temporal_kernel=4)


def test_resample_rotate_and_sample_frames() -> None:
    x = np.arange(10, dtype=np.float32)[None, :, None, None] * np.ones((1, 1, 17, 3), np.float32)
    np.testing.assert_array_equal(resample_frames(x, 4)[0, :, 0, 0], [0, 3, 6, 9])
    np.testing.assert_array_equal(resample_frames(x, 3, 2, 6)[0, :, 0, 0], [2, 4, 6])
    rng = np.random.default_rng(0)
    w = sample_frames(x, rng, clip_len=5, frame_step=1, sampling="whole", crop_min=0.5)
    assert w.shape == (1, 5, 17, 3) and np.all(np.diff(w[0, :, 0, 0]) >= 0) and w[0, -1, 0, 0] - w[0, 0, 0, 0] >= 4
    p = np.array([[1.0, 0.0, 0.0], [0.0, -1.0, 0.0]])
    np.testing.assert_allclose(rotate_3d(p, 90, 0, 1.0), [[0, 0, -1], [0, -1, 0]], atol=1e-12)
    np.testing.assert_allclose(np.linalg.norm(rotate_3d(p, 33, 12, 2.0), axis=-1), [2, 2])


def _ucla_like(n: int = 8, seed: int = 0) -> list[ActionInput]:
    """Two classes of 3D clips: wrists raised above the head and swinging, or hanging still."""
    rng = np.random.default_rng(seed)
    pose = np.random.default_rng(7).normal(0, 0.2, (1, 1, 17, 3))
    out = []
    for i in range(n):
        t = int(rng.integers(20, 40))
        base = (pose + rng.normal(0, 0.02, pose.shape)).astype(np.float32)
        x = np.repeat(base, t, axis=1)
        label = i % 2
        if label:
            x[:, :, [13, 16], 1] -= 0.8
            x[:, :, [13, 16], 0] += 0.3 * np.sin(np.arange(t) / 3.0)[None, :, None]
        out.append(ActionInput(name=f"s{i}", label=label, x=x - x[:, :, :1]))
    return out


def _task(name: str = "stgcn_action_test", **kw) -> ActionTask:
    cfg = ActionRunConfig(model=ActionModelConfig(name=name, kwargs=kw),
                          data=ActionDataConfig(dataset="nw_ucla", input="3d", sampling="whole", clip_len=8,
                                                rotate_deg=30, tilt_deg=5, scale=0.1, jitter=0.0))
    task = ActionTask(config=cfg)
    task._inputs = {"train": _ucla_like(), "test": _ucla_like(4, seed=1)}
    return task


def test_nw_ucla_task_batches_learn_and_predict() -> None:
    task = _task(num_classes=10)
    b = task.batch(0, rank=0, world_size=1, batch_size=6)
    assert b["x"].shape == (6, 1, 8, 17, 3)
    assert "NW-UCLA" in task.weights_licence  # hmore train --export writes it in the weights' metadata
    np.testing.assert_allclose(b["x"][..., 0, :], 0, atol=1e-6)  # root-relative stays root-relative when turned
    torch.manual_seed(0)
    model = task.build_model()
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    for step in range(40):
        loss, _ = task.loss(model, task.batch(step, rank=0, world_size=1, batch_size=8))
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert task.evaluate(model)["top1"] == 1.0
    cfg = task.model_config()
    assert cfg["input"] == "3d" and cfg["sampling"] == "whole" and cfg["layout"] == "nw_ucla_h36m17"
    assert len(cfg["classes"]) == 10


def test_action_config_contracts() -> None:
    from hmore.errors import ConfigError

    with pytest.raises(ConfigError, match="nw_ucla needs"):
        ActionTask(config=ActionRunConfig(data=ActionDataConfig(dataset="nw_ucla", input="2d")))
    with pytest.raises(ConfigError, match="data.input must be 2d"):
        ActionTask(config=ActionRunConfig(data=ActionDataConfig(input="3d")))
    with pytest.raises(ConfigError, match="data.dataset must be one of"):
        ActionTask(config=ActionRunConfig(data=ActionDataConfig(dataset="ntu")))


def _checkpoint(tmp_path: Path) -> Path:
    from hmore.train.checkpoint import save_weights

    task = _task(num_classes=10)
    torch.manual_seed(0)
    return save_weights(tmp_path / "ucla.safetensors", task.build_model(),
                        metadata={"model_config": task.model_config()})


def test_classify_nw_ucla_files(tmp_path: Path, capsys) -> None:
    from hmore.cli import main

    ckpt = _checkpoint(tmp_path)
    rng = np.random.default_rng(0)
    joints = (rng.normal(0, 0.3, (25, 20, 3)) + [0, 0, 3]).astype(np.float32)
    np.save(tmp_path / "seq.npy", joints)
    (tmp_path / "seq.json").write_text(json.dumps({"file_name": "a05", "skeletons": joints.tolist(), "label": 5}))
    assert main(["classify", str(tmp_path / "seq.npy"), "--checkpoint", str(ckpt), "--top", "2"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 1 and out[0].startswith("seq: ")
    assert main(["classify", str(tmp_path / "seq.json"), "--checkpoint", str(ckpt)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert "(true: sit down)" in out[0] and out[-1].startswith("top-1 accuracy:")  # all_sqe labels count from 1
    np.save(tmp_path / "bad.npy", joints[:, :15])
    assert main(["classify", str(tmp_path / "bad.npy"), "--checkpoint", str(ckpt)]) == 1


def test_classify_2d_keypoints_lifts_them_and_says_layouts_differ(tmp_path: Path, capsys) -> None:
    from hmore.cli import main

    ckpt = _checkpoint(tmp_path)
    rng = np.random.default_rng(0)
    kp = np.zeros((30, 1, 17, 3), np.float32)
    kp[..., :2] = rng.uniform(200, 400, (1, 1, 17, 2)) + rng.normal(0, 2, (30, 1, 17, 2))
    kp[..., 2] = 1.0
    np.save(tmp_path / "walker.npy", kp)  # (T, P, 17, 3) COCO-17 pixels + score
    assert main(["classify", str(tmp_path / "walker.npy"), "--checkpoint", str(ckpt), "--size", "640x480"]) == 0
    out = capsys.readouterr().out
    assert "lifted to 3D by dstformer_cpu" in out and "layouts differ" in out and "walker/person" in out


def test_action_bench_outputs(tmp_path: Path) -> None:
    from hmore.bench.action_bench import ANCHORS, format_table, write_outputs

    classes = [f"c{i}" for i in range(3)]
    conf = np.array([[5, 1, 0], [0, 6, 0], [2, 0, 4]])
    summary = {"benchmark": "NW-UCLA cross-view", "test_sequences": 18, "classes": classes,
               "models": {"m": {"origin": "x", "top1": 15 / 18, "per_class": dict(zip(classes, [5 / 6, 1, 4 / 6])),
                                "confusion": conf.tolist(), "params": 1000}},
               "unavailable": {}, "anchors": list(ANCHORS), "command": "hmore bench action"}
    write_outputs(tmp_path, summary)
    assert json.loads((tmp_path / "results.json").read_text())["models"]["m"]["confusion"][2] == [2, 0, 4]
    assert "confusion_m.png" in (tmp_path / "report.html").read_text()
    assert "| m | 83.3 |" in format_table(summary) and "96.5" in format_table(summary)


def test_nw_ucla_inputs_on_shared_data(shared_data: Path) -> None:
    from hmore.train.tasks.action import nw_ucla_inputs

    require_file(shared_data, "nw_ucla", "nw_ucla_skeletons.npz")
    test = nw_ucla_inputs("test", str(shared_data / "nw_ucla"))
    assert len(test) == 464 and test[0].x.shape[0] == 1 and test[0].x.shape[2:] == (17, 3)
    x = np.concatenate([t.x[0] for t in test[:50]])
    np.testing.assert_allclose(x[:, 0], 0)
    assert np.median(x[:, 10, 1]) < -0.4  # camera axes, y down: the head well above the root
