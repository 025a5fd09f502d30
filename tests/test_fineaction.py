"""Fine-grained actions: the gesture family, the generated set, the (2+1)D classifier, the task and the metrics."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hmore.fineaction.data import ActionArrays, ActionItem, ActionSetConfig, crop_square, items, square_box
from hmore.fineaction.motions import CLASSES, GESTURES, gesture_angles, overlay_gesture
from hmore.metrics.classification import confusion_matrix, topk_accuracy
from hmore.registry import create_model


def test_the_family_has_12_distinct_variants():
    assert len(CLASSES) == 12 == len(set(CLASSES))
    assert {(g.arms, g.direction, g.speed) for g in GESTURES}.__len__() == 12


def _peaks(theta: np.ndarray) -> int:
    return int(np.sum((theta[1:-1] > theta[:-2]) & (theta[1:-1] >= theta[2:]) & (theta[1:-1] > 0.5 * theta.max())))


def test_gesture_timing_separates_speed_and_order():
    by = {g.name: g for g in GESTURES}
    rng = np.random.default_rng(0)
    slow = gesture_angles(by["left_forward_slow"], num_frames=48, fps=30.0, rng=rng)["left"]
    fast = gesture_angles(by["left_forward_fast"], num_frames=48, fps=30.0, rng=rng)["left"]
    assert _peaks(slow) == 1 and _peaks(fast) == 2
    order = gesture_angles(by["right_then_left_side"], num_frames=48, fps=30.0, rng=rng)
    assert np.argmax(order["right"]) < np.argmax(order["left"])
    assert order["right"].max() <= 1.75 + 1e-9 and slow.max() >= 1.9 * 0.99  # side below forward


def test_overlay_keeps_bone_lengths_and_the_other_arm():
    from hmore.synth.identity import sample_identity
    from hmore.synth.motion import generate_motion

    base = generate_motion("walk", sample_identity(3), num_frames=30, fps=15.0, seed=1)
    g = next(g for g in GESTURES if g.name == "left_forward_slow")
    m = overlay_gesture(base, g, rng=np.random.default_rng(0))
    assert m.name == "left_forward_slow" and m.joints.shape == base.joints.shape
    np.testing.assert_array_equal(m.joints[:, 14:17], base.joints[:, 14:17])  # right arm untouched
    for a, b in ((11, 12), (12, 13)):
        length = np.linalg.norm(m.joints[:, b] - m.joints[:, a], axis=-1)
        np.testing.assert_allclose(length, np.linalg.norm(base.joints[0, b] - base.joints[0, a]), rtol=1e-9)
    # at the top of the raise the left wrist is above the left shoulder
    theta = gesture_angles(g, num_frames=30, fps=15.0, rng=np.random.default_rng(0))["left"]
    t = int(np.argmax(theta))
    assert m.joints[t, 13, 1] > m.joints[t, 11, 1]


def test_items_split_identities_and_cycle_classes():
    cfg = ActionSetConfig(train_identities=3, test_identities=2, train_per_class=2, test_per_class=1)
    tr, te = items(cfg, "train"), items(cfg, "test")
    assert len(tr) == 24 and len(te) == 12 and len(items(cfg)) == 36
    assert [it.label for it in tr[:13]] == [*range(12), 0]
    assert {it.identity for it in tr} <= {1, 2, 3} and {it.identity for it in te} <= {4, 5}
    assert tr[5].key == "train-00005" and items(cfg, "train")[5] == tr[5]  # deterministic


def test_square_crop_geometry():
    img = np.zeros((20, 40), np.float32)
    img[5:15, 10:20] = 1.0  # a 10 x 10 square
    masks = (img > 0)[None].astype(np.uint8)
    box = square_box(masks, margin=0.0)
    assert box == (10.0, 5.0, 10.0)
    np.testing.assert_allclose(crop_square(img, box, 10), np.ones((10, 10)), atol=1e-6)
    big = crop_square(img, (-10.0, -10.0, 40.0), 8)  # mostly outside the image: zeros there
    assert big.shape == (8, 8) and big[0, 0] == 0.0


def test_render_and_prepare_one_item():
    from hmore.fineaction.data import PRESETS, prepare_item, render_item

    cfg = PRESETS["test"]
    it = items(cfg, "train")[4]
    clip = render_item(cfg, it)
    prep = prepare_item(cfg, it, clip)
    assert prep.arrays["rgb"].shape == (cfg.frames, cfg.crop, cfg.crop, 3)
    assert int(prep.arrays["label"]) == it.label and prep.meta["class"] == CLASSES[it.label]
    q = prep.crop_flow(np.ascontiguousarray(clip.flow.transpose(0, 3, 1, 2)))
    assert q.shape == (cfg.frames - 1, 2, cfg.crop, cfg.crop) and q.dtype == np.int8


def test_r2plus1d_shapes_and_errors():
    m = create_model("r2plus1d_test", in_channels=7, num_classes=12).eval()
    out = m(torch.randn(2, 7, 4, 16, 16))
    assert out.shape == (2, 12) and torch.isfinite(out).all()
    with pytest.raises(ValueError, match="expects"):
        m(torch.randn(2, 3, 4, 16, 16))
    assert create_model("r2plus1d_cpu", in_channels=3).config.widths == (16, 32, 64, 128)


def test_classification_metrics_by_hand():
    prob = np.array([[0.1, 0.7, 0.2], [0.5, 0.3, 0.2], [0.2, 0.3, 0.5]])
    labels = np.array([1, 1, 0])
    assert topk_accuracy(prob, labels, 1) == pytest.approx(1 / 3)
    assert topk_accuracy(prob, labels, 2) == pytest.approx(2 / 3)
    np.testing.assert_array_equal(confusion_matrix(labels, prob.argmax(1), 3), [[0, 0, 1], [1, 1, 0], [0, 0, 0]])
    with pytest.raises(ValueError, match="0..2"):
        confusion_matrix(np.array([3]), np.array([0]), 3)


def _arrays(split: str, n: int, frames: int = 6) -> ActionArrays:
    rng = np.random.default_rng(1)
    its = [ActionItem(split=split, index=i, label=i % 12, identity=1 + i % 4, seed=i) for i in range(n)]
    rgb = [rng.integers(0, 255, (frames, 16, 16, 3)).astype(np.uint8) for _ in its]
    flows = {"dis": [rng.integers(-8, 8, (frames - 1, 2, 16, 16)).astype(np.int8) for _ in its]}
    return ActionArrays(items=its, rgb=rgb, flows=flows, flow_step=0.25)


def test_action_task_batches_trains_and_tests(tmp_path):
    from hmore.errors import ConfigError
    from hmore.fineaction.task import ActionFlowDataConfig, ActionFlowModelConfig, ActionFlowRunConfig, ActionFlowTask
    from hmore.train.engine import TrainConfig, train

    cfg = ActionFlowRunConfig(model=ActionFlowModelConfig(name="r2plus1d_test"),
                              data=ActionFlowDataConfig(channels="rgb+dis", frames=2, frame_step=2, shift=1,
                                                        val_identities=1),
                              train=TrainConfig(steps=2, batch_size=3, tensorboard=False, device="cpu", threads=1))
    task = ActionFlowTask(config=cfg, train_arrays=_arrays("train", 16), test_arrays=_arrays("test", 6))
    b = task.batch(0, rank=0, world_size=1, batch_size=3)
    assert b["x"].shape == (3, 5, 2, 16, 16) and b["y"].shape == (3,)
    assert b["x"][:, :3].abs().max() <= 1.0  # RGB in [-1, 1]
    assert all(it.identity != 4 for it in task.train_arrays.items)  # the last identity is held out
    summary = train(task, cfg.train, tmp_path, resume=False)
    assert summary.step == 2 and "val_top1" in summary.eval_metrics
    res = task.test(task.build_model())
    assert res["n"] == 6 and np.array(res["confusion"]).sum() == 6 and 0 <= res["top1"] <= res["top5"] <= 1
    with pytest.raises(ConfigError, match="rgb"):
        ActionFlowTask(config=ActionFlowRunConfig(data=ActionFlowDataConfig(channels="dis")))


def test_action_summary_and_checks():
    from hmore.fineaction.bench import RECIPES, format_tables, summarise

    def res(top1):
        conf = np.eye(12, dtype=int).tolist()
        return {0: {"top1": top1, "top5": 1.0, "confusion": conf, "run": "r", "flow_key": None}}

    s = summarise({"rgb": res(0.5), "rgb+dis": res(0.6), "rgb+world+local": res(0.7)},
                  config=ActionSetConfig(), recipe=RECIPES["full"], preset="full", seeds=[0], fm=None, timing={},
                  command="")
    checks = {c["claim"]: c["holds"] for c in s["checks"]}
    assert checks["top-1: RGB + hmore world+local > RGB + DIS flow"] is True
    assert s["rows"]["rgb"]["per_class"] == [100.0] * 12
    assert "| RGB + DIS flow | 60.00 | 100.00 | + VideoFlow flow | 71.45 | 96.72 |" in format_tables(s)
