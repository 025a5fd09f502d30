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
from hmore.models.motion.stgcn import input_streams, partition_adjacency
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
    skeleton3d_input,
    view_normalize,
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


def _facing_camera() -> np.ndarray:
    """(2, 17, 3) camera-frame H36M-17: a person 3 m away facing the camera (their right at the image's left, -x),
    torso 0.5 m, right wrist 0.3 m in front of them (towards the camera, -z); the second frame moved by 0.2 m."""
    j = np.zeros((17, 3))
    j[1], j[4] = [-0.1, 0, 0], [0.1, 0, 0]  # right, left hip
    j[8] = [0, -0.5, 0]  # neck
    j[14], j[11] = [-0.2, -0.5, 0], [0.2, -0.5, 0]  # right, left shoulder
    j[16] = [-0.2, -0.5, -0.3]  # right wrist
    j[10] = [0, -0.7, 0]  # head
    return np.stack([j, j + [0.2, 0, 0]]) + [0.5, 0.1, 3.0]


def test_view_normalize_hand_computed_and_view_invariant() -> None:
    seq = _facing_camera()
    out = view_normalize(seq)
    # body axes: x to the subject's right (camera -x), y down, z forward (camera -z); torso 0.5 m -> 1
    assert out.shape == (2, 17, 3) and out.dtype == np.float32
    np.testing.assert_allclose(out[0, 1], [0.2, 0, 0], atol=1e-6)  # right hip
    np.testing.assert_allclose(out[0, 8], [0, -1, 0], atol=1e-6)  # neck
    np.testing.assert_allclose(out[0, 16], [0.4, -1, 0.6], atol=1e-6)  # right wrist, in front
    np.testing.assert_allclose(out[0, 0], 0, atol=1e-7)
    np.testing.assert_allclose(out[1], out[0], atol=1e-6)  # per-frame root-relative
    # the same person seen from a camera turned 90 deg (and tilted 10 deg, nearer): the same array
    turned = rotate_3d(seq - seq[0, 0], 90.0, 10.0, 0.8) + [-1.0, 0.3, 2.0]
    assert not np.allclose(turned - turned[:, :1], seq - seq[:, :1], atol=0.05)
    np.testing.assert_allclose(view_normalize(turned), out, atol=1e-6)
    rng = np.random.default_rng(0)
    noisy = seq[[0] * 8 + [1] * 8] + rng.normal(0, 0.01, (16, 17, 3))
    yaw = rng.uniform(-180, 180)
    np.testing.assert_allclose(view_normalize(rotate_3d(noisy, yaw, 0.0, 1.0)), view_normalize(noisy), atol=1e-5)
    # view_track keeps the root's path: the second frame moved 0.2 m to the camera's right = the subject's left
    tr = view_normalize(seq, track=True)
    np.testing.assert_allclose(tr[1, 0], [-0.4, 0, 0], atol=1e-6)
    np.testing.assert_allclose(tr[1] - tr[1, :1], out[1], atol=1e-6)
    np.testing.assert_allclose(view_normalize(turned, track=True), tr, atol=1e-6)
    np.testing.assert_allclose(skeleton3d_input(seq, "view_track")[0], tr)
    np.testing.assert_allclose(skeleton3d_input(seq, "view")[0], out)
    np.testing.assert_allclose(skeleton3d_input(seq)[0], seq - seq[:, :1], atol=1e-6)
    np.testing.assert_array_equal(view_normalize(np.zeros((3, 17, 3))), 0)  # degenerate: root-relative only
    with pytest.raises(ValueError, match="normalize must be"):
        skeleton3d_input(seq, "body")
    with pytest.raises(ValueError, match=r"\(T, 17, 3\)"):
        view_normalize(seq[0])


def test_stgcn_input_streams() -> None:
    x = torch.zeros(1, 3, 17, 3)  # (B, F, J, C)
    x[0, :, 2] = torch.tensor([[0.0, 1, 0], [0, 2, 0], [0, 4, 0]])  # right knee moves down; its parent stays put
    x[0, :, 1] = torch.tensor([0.0, 0.5, 0])
    s = input_streams(x, ("joint", "bone", "velocity"), create_model("stgcn_action_test").backbone.parents)
    assert s.shape == (1, 3, 17, 9)
    np.testing.assert_allclose(s[0, :, 2, 4], [0.5, 1.5, 3.5])  # bone y: knee - hip
    np.testing.assert_allclose(s[0, :, 2, 7], [1, 2, 0])  # velocity y, 0 at the last frame
    np.testing.assert_allclose(s[0, :, 0, 3:6], 0)  # the root has no bone
    m = create_model("stgcn_action_test", streams=["joint", "bone", "velocity"]).eval()
    assert m(torch.randn(2, 1, 8, 17, 3)).shape == (2, 4)
    with pytest.raises(ValueError, match="streams must be"):
        create_model("stgcn_action_test", streams=("joint", "angle"))


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


def _task(name: str = "stgcn_action_test", normalize: str = "none", **kw) -> ActionTask:
    cfg = ActionRunConfig(model=ActionModelConfig(name=name, kwargs=kw),
                          data=ActionDataConfig(dataset="nw_ucla", input="3d", sampling="whole", clip_len=8,
                                                rotate_deg=30, tilt_deg=5, scale=0.1, jitter=0.0,
                                                normalize=normalize))
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
    ucla = {"dataset": "nw_ucla", "input": "3d"}
    with pytest.raises(ConfigError, match="data.normalize must be one of"):
        ActionTask(config=ActionRunConfig(data=ActionDataConfig(**ucla, normalize="body")))
    with pytest.raises(ConfigError, match="needs data.input 3d"):
        ActionTask(config=ActionRunConfig(data=ActionDataConfig(normalize="view")))
    with pytest.raises(ConfigError, match="data.validate_on must be one of"):
        ActionTask(config=ActionRunConfig(data=ActionDataConfig(validate_on="view2")))
    with pytest.raises(ConfigError, match="label_smoothing"):
        ActionTask(config=ActionRunConfig(data=ActionDataConfig(**ucla, label_smoothing=1.0)))
    from hmore.config import load_config

    with pytest.raises(ConfigError, match="unknown config key.*data.normalise"):  # strict: a misspelt key fails
        load_config(ActionRunConfig, {"data": {**ucla, "normalise": "view"}})
    cfg = load_config(ActionRunConfig, Path(__file__).parents[1] / "configs" / "action_ucla_stgcn.yaml")
    assert ActionDataConfig().normalize == "none" and cfg.data.normalize == "view"


def _checkpoint(tmp_path: Path, normalize: str = "none") -> Path:
    from hmore.train.checkpoint import save_weights

    task = _task(num_classes=10, normalize=normalize)
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


def test_classify_applies_the_models_normalisation(tmp_path: Path) -> None:
    from hmore.data.nw_ucla import camera_frame, to_h36m17
    from hmore.lift.classify import load_action_model, prepare_inputs

    joints = (np.random.default_rng(0).normal(0, 0.3, (25, 20, 3)) + [0, 0, 3]).astype(np.float32)
    np.save(tmp_path / "seq.npy", joints)
    am = load_action_model(checkpoint=_checkpoint(tmp_path, normalize="view"))
    assert am.normalize == "view"
    x = prepare_inputs(am, tmp_path / "seq.npy").xs[0]
    np.testing.assert_allclose(x[0], view_normalize(camera_frame(to_h36m17(joints))), atol=1e-6)
    (tmp_path / "none").mkdir()
    assert load_action_model(checkpoint=_checkpoint(tmp_path / "none")).normalize == "none"


@pytest.mark.parametrize("normalize", ["none", "view_track"])  # view_track lifts with the root's path
def test_classify_2d_keypoints_lifts_them_and_says_layouts_differ(tmp_path: Path, capsys, normalize: str) -> None:
    from hmore.cli import main

    ckpt = _checkpoint(tmp_path, normalize=normalize)
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
    summary["copies_of_training"] = ["s1", "s2"]  # two evaluated sequences copy training ones
    summary["models"]["m"]["top1_without_copies"] = 13 / 16
    assert "| m | 83.3 | 81.2 | 0.00 M |" in format_table(summary) and "without the 2 copies" in format_table(summary)
    write_outputs(tmp_path, summary)
    assert "byte-identical copies of training ones" in (tmp_path / "report.html").read_text()


def test_nw_ucla_inputs_on_shared_data(shared_data: Path) -> None:
    from hmore.train.tasks.action import nw_ucla_inputs

    require_file(shared_data, "nw_ucla", "nw_ucla_skeletons.npz")
    test = nw_ucla_inputs("test", str(shared_data / "nw_ucla"))
    assert len(test) == 464 and test[0].x.shape[0] == 1 and test[0].x.shape[2:] == (17, 3)
    x = np.concatenate([t.x[0] for t in test[:50]])
    np.testing.assert_allclose(x[:, 0], 0)
    assert np.median(x[:, 10, 1]) < -0.4  # camera axes, y down: the head well above the root


def test_action_bench_normalises_per_model_on_shared_data(shared_data: Path, tmp_path: Path) -> None:
    from hmore.bench.action_bench import run

    require_file(shared_data, "nw_ucla", "nw_ucla_skeletons.npz")
    (tmp_path / "a").mkdir()
    plain, view = _checkpoint(tmp_path / "a"), _checkpoint(tmp_path, normalize="view")
    s = run(models=[f"plain={plain}", f"view={view}", "no_such_weights"], out_dir=tmp_path / "bench",
            root=str(shared_data / "nw_ucla"))
    assert s["test_sequences"] == 464 and set(s["models"]) == {"plain", "view"}
    assert "no_such_weights" in s["unavailable"]
    assert s["models"]["view"]["normalize"] == "view" and s["models"]["plain"]["normalize"] == "none"
    assert sum(map(sum, s["models"]["view"]["confusion"])) == 464
    assert len(s["copies_of_training"]) == 95  # view 3 of "pick up with two hands" and "drop trash" = view 2's files
    conf = np.array(s["models"]["view"]["confusion"])
    # all 95 copies are the view-3 sequences of classes 1 and 2, so the other classes' diagonal over 369 sequences
    assert s["models"]["view"]["top1_without_copies"] == pytest.approx((conf.trace() - conf[1, 1] - conf[2, 2]) / 369)
    assert (tmp_path / "bench" / "report.html").is_file()


def test_classify_without_a_model_option_uses_the_shipped_nw_ucla_models(tmp_path: Path, capsys) -> None:
    from hmore.cli import main
    from hmore.commands.classify import default_action_weights

    joints = (np.random.default_rng(0).normal(0, 0.3, (25, 20, 3)) + [0, 0, 3]).astype(np.float32)
    np.save(tmp_path / "seq.npy", joints)
    kp = np.random.default_rng(1).uniform(100, 300, (30, 1, 17, 3)).astype(np.float32)
    kp[..., 2] = 1.0
    np.save(tmp_path / "kp.npy", kp)
    assert default_action_weights(tmp_path / "seq.npy") == "action_ucla_stgcn_k20"
    assert default_action_weights(tmp_path / "kp.npy") == "action_ucla_stgcn"
    assert main(["classify", str(tmp_path / "seq.npy"), "--top", "1"]) == 0
    out = capsys.readouterr()
    assert "model: action_ucla_stgcn_k20" in out.err and out.out.startswith("seq: ")
    assert main(["classify", str(tmp_path / "kp.npy"), "--size", "400x400", "--top", "1"]) == 0
    out = capsys.readouterr()
    assert "model: action_ucla_stgcn " in out.err and len(out.out.strip().splitlines()) >= 1
