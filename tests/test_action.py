"""Action data in pyskl format (reader, writer, malformed files), the action task and ``hmore classify``."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch

from hmore.errors import InputError
from hmore.lift.actions import ActionClip, ActionDataset, read_action_pickle, write_action_pickle
from hmore.train.tasks.action import ActionDataConfig, ActionModelConfig, ActionRunConfig, ActionTask, windows


def _toy_set(n_per_class: int = 4, num_frames: int = 30) -> ActionDataset:
    """Two classes a classifier can tell apart: people whose wrists move up and down, or stay still."""
    rng = np.random.default_rng(0)
    clips, split = [], {"train": [], "test": []}
    for label in range(2):
        for k in range(n_per_class):
            base = rng.uniform(200, 300, size=(1, 1, 1, 2)) + rng.uniform(0, 100, size=(1, 1, 17, 2)) * 0.1 + \
                np.linspace(0, 100, 17)[None, None, :, None]
            kp = np.repeat(base, num_frames, axis=1)
            if label == 1:
                kp[:, :, 9:11, 1] += 40 * np.sin(np.arange(num_frames) / 3.0)[None, :, None]
            kp = np.concatenate([kp, np.ones(kp.shape[:3] + (1,))], axis=-1).astype(np.float32)
            name = f"c{label}_{k}"
            clips.append(ActionClip(name=name, label=label, kp2d=kp, width=640, height=480))
            split["train" if k < n_per_class - 1 else "test"].append(name)
    return ActionDataset(clips=clips, split=split, classes=["still", "wave"])


def test_pickle_round_trip(tmp_path) -> None:
    ds = _toy_set()
    path = write_action_pickle(tmp_path / "a.pkl", ds)
    back = read_action_pickle(path)
    assert back.classes == ["still", "wave"] and back.split == ds.split
    assert [c.name for c in back.clips] == [c.name for c in ds.clips]
    np.testing.assert_allclose(back.clips[3].kp2d, ds.clips[3].kp2d)
    assert (back.clips[0].width, back.clips[0].height) == (640, 480)
    with open(path, "rb") as fh:  # pyskl's layout: keypoint (M, T, V, 2) and keypoint_score (M, T, V)
        raw = pickle.load(fh)
    assert raw["annotations"][0]["keypoint"].shape == (1, 30, 17, 2)
    assert raw["annotations"][0]["keypoint_score"].shape == (1, 30, 17)
    assert raw["annotations"][0]["img_shape"] == (480, 640)
    assert len(back.subset("test")) == 2
    with pytest.raises(InputError, match="no split"):
        back.subset("val")


def test_malformed_pickles(tmp_path) -> None:
    cases = {
        "not_dict.pkl": [1, 2, 3],
        "no_label.pkl": {"split": {}, "annotations": [{"keypoint": np.zeros((1, 5, 17, 2))}]},
        "bad_shape.pkl": {"split": {}, "annotations": [{"keypoint": np.zeros((5, 17, 2)), "label": 0,
                                                        "img_shape": (10, 10)}]},
        "nan.pkl": {"split": {}, "annotations": [{"keypoint": np.full((1, 5, 17, 2), np.nan), "label": 0,
                                                  "img_shape": (10, 10)}]},
    }
    for name, obj in cases.items():
        (tmp_path / name).write_bytes(pickle.dumps(obj))
        with pytest.raises(InputError):
            read_action_pickle(tmp_path / name)
    (tmp_path / "junk.pkl").write_bytes(b"\x80\x04junk")
    with pytest.raises(InputError, match="not a readable"):
        read_action_pickle(tmp_path / "junk.pkl")

    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    (tmp_path / "evil.pkl").write_bytes(pickle.dumps({"annotations": [Evil()]}))
    with pytest.raises(InputError, match="refusing"):
        read_action_pickle(tmp_path / "evil.pkl")
    with pytest.raises(InputError, match="no such file"):
        read_action_pickle(tmp_path / "missing.pkl")


def test_windows_cover_and_stretch() -> None:
    x = np.arange(40, dtype=np.float32)[None, :, None, None] * np.ones((2, 1, 17, 3), np.float32)
    w = windows(x, clip_len=5, frame_step=2)
    assert w.shape == (4, 2, 5, 17, 3)
    np.testing.assert_array_equal(w[1, 0, :, 0, 0], [10, 12, 14, 16, 18])
    short = windows(x[:, :3], clip_len=5, frame_step=2)
    assert short.shape == (1, 2, 5, 17, 3)
    np.testing.assert_array_equal(short[0, 0, :, 0, 0], [0, 0, 1, 2, 2])


def _task(ds: ActionDataset, **model) -> ActionTask:
    cfg = ActionRunConfig(model=ActionModelConfig(**model),
                          data=ActionDataConfig(clip_len=9, frame_step=2, persons=2, jitter=0.0))
    return ActionTask(config=cfg, dataset=ds)


def test_action_task_batches_and_learns_a_separable_set() -> None:
    ds = _toy_set(n_per_class=6)
    task = _task(ds, name="pose_stats_action", kwargs={"hidden": 32, "dropout": 0.0})
    b = task.batch(0, rank=0, world_size=1, batch_size=8)
    assert b["x"].shape == (8, 2, 9, 17, 3) and b["y"].shape == (8,)
    assert float(b["x"][:, 1].abs().max()) == 0.0  # the second person slot is padding
    halves = [task.batch(0, rank=r, world_size=2, batch_size=4) for r in range(2)]
    torch.testing.assert_close(torch.cat([h["x"] for h in halves]), b["x"])
    torch.manual_seed(0)
    model = task.build_model()
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    for step in range(60):
        loss, logs = task.loss(model, task.batch(step, rank=0, world_size=1, batch_size=8))
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert task.evaluate(model)["top1"] == 1.0
    cfg = task.model_config()
    assert cfg["classes"] == ["still", "wave"] and cfg["kwargs"]["num_classes"] == 2


def test_dstformer_action_task_forward() -> None:
    task = _task(_toy_set(), name="dstformer_action", kwargs={"backbone": "dstformer_test", "hidden": 16})
    torch.manual_seed(0)
    model = task.build_model()
    loss, logs = task.loss(model, task.batch(1, rank=0, world_size=1, batch_size=2))
    assert torch.isfinite(loss) and 0.0 <= logs["acc"] <= 1.0
    prob = task.predict(model, task.dataset().subset("test"))
    assert prob.shape == (2, 2)
    np.testing.assert_allclose(prob.sum(axis=1), 1.0, rtol=1e-5)


def test_cli_classify(tmp_path, capsys) -> None:
    from hmore.cli import main
    from hmore.train.checkpoint import save_weights

    ds = _toy_set()
    pkl = write_action_pickle(tmp_path / "set.pkl", ds)
    task = _task(ds, name="pose_stats_action", kwargs={"hidden": 16})
    torch.manual_seed(0)
    ckpt = save_weights(tmp_path / "act.safetensors", task.build_model(),
                        metadata={"model_config": task.model_config()})
    assert main(["classify", str(pkl), "--checkpoint", str(ckpt), "--split", "test", "--top", "2"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 3 and out[0].startswith("c0_3: ") and "(true: still)" in out[0]
    assert out[-1].startswith("top-1 accuracy:") and "on 2 labelled clips" in out[-1]
    lifter = save_weights(tmp_path / "lift.safetensors", torch.nn.Linear(1, 1),
                          metadata={"model_config": {"name": "mlp_lifter_test"}})
    assert main(["classify", str(pkl), "--checkpoint", str(lifter)]) == 1
    assert "not an action model" in capsys.readouterr().err
    assert main(["classify", str(pkl), "--checkpoint", str(ckpt), "--top", "0"]) == 2
