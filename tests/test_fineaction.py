"""Fine-grained actions: the gesture family, the generated set, the (2+1)D classifier, the task and the metrics."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hmore.cli import main
from hmore.errors import InputError
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
    # full24 is the first 24 / 12 clips per class of full: the same items (its files are the full set's)
    from hmore.fineaction.data import PRESETS

    full, sub = items(PRESETS["full"]), items(PRESETS["full24"])
    assert len(sub) == (24 + 12) * 12 and set(sub) <= set(full)


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
    # the person mask: the generator's masks cropped with the frames (not the exact flow's support)
    mask = prep.arrays["mask"]
    assert mask.shape == (cfg.frames, cfg.crop, cfg.crop) and mask.dtype == np.uint8
    assert mask.max() == 255 and (mask == 0).mean() > 0.2  # the crop has a 15 % margin around the person
    box = square_box(clip.masks)
    np.testing.assert_allclose(mask[2] / 255.0, crop_square((clip.masks[2] > 0).astype(np.float32), box, cfg.crop),
                               atol=1 / 255)


def test_r2plus1d_flow_weights_start_at_zero():
    from hmore.models.fusion import scale_extra_inputs

    torch.manual_seed(0)
    ref = create_model("r2plus1d_test", in_channels=7)
    torch.manual_seed(0)
    m = create_model("r2plus1d_test", in_channels=7, extra_init_scale=0.0).eval()
    w, w_ref = m.stem[0].weight, ref.stem[0].weight  # (out, in, 1, 5, 5)
    assert not w[:, 3:].any() and torch.equal(w[:, :3], w_ref[:, :3]) and w_ref[:, 3:].abs().sum() > 0
    x = torch.randn(2, 7, 4, 16, 16)
    y = x.clone()
    y[:, 3:] = 100 * torch.randn_like(y[:, 3:])  # other flow: the same output (the net starts as an RGB-only one)
    torch.testing.assert_close(m(x), m(y))
    torch.manual_seed(0)
    half = create_model("r2plus1d_test", in_channels=7, extra_init_scale=0.5)
    torch.testing.assert_close(half.stem[0].weight[:, 3:], 0.5 * w_ref[:, 3:])
    with pytest.raises(ValueError, match="input channels"):
        scale_extra_inputs(torch.nn.ReLU(), base_channels=3, scale=0.0)


def test_action_input_masks_flow_to_the_person_by_hand():
    from hmore.fineaction.task import action_input

    # 1 item, 4 frames of a 1 x 2 crop; dis x-flow 4, 8, 12 units of 0.25 px (1, 2, 3 px) in the left pixel
    flow = np.zeros((3, 2, 1, 2), np.int8)
    flow[:, 0, 0, 0] = [4, 8, 12]
    flow[:, 1, 0, 1] = -8  # y-flow -2 px in the right pixel, off the person
    mask = np.zeros((4, 1, 2), np.uint8)
    mask[:, 0, 0] = [255, 0, 51, 255]  # frame 1 off the person, frame 2 a fifth on it
    it = ActionItem(split="train", index=0, label=0, identity=1, seed=0)
    arr = ActionArrays(items=[it], rgb=[np.full((4, 1, 2, 3), 255, np.uint8)], flows={"dis": [flow]}, flow_step=0.25,
                       mask=[mask])
    kw = dict(frames=3, step=1, channels=("dis",), flow_scale=2.0)
    plain = action_input(arr, 0, 0, **kw)
    assert plain.shape == (5, 3, 1, 2)
    np.testing.assert_allclose(plain[:3], 1.0)  # RGB 255 -> 1
    np.testing.assert_allclose(plain[3, :, 0, 0], [0.5, 1.0, 1.5])  # pixels / flow_scale
    np.testing.assert_allclose(plain[4, :, 0, 1], [-1.0, -1.0, -1.0])
    masked = action_input(arr, 0, 0, flow_mask=True, **kw)
    np.testing.assert_allclose(masked[3, :, 0, 0], [0.5, 0.0, 0.3], rtol=1e-6)  # pair t x frame t's mask
    assert not masked[4].any()
    np.testing.assert_array_equal(masked[:3], plain[:3])
    with pytest.raises(InputError, match="person masks"):
        action_input(ActionArrays(items=[it], rgb=arr.rgb, flows=arr.flows, flow_step=0.25), 0, 0, flow_mask=True,
                     **kw)


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
    mask = [rng.integers(0, 2, (frames, 16, 16)).astype(np.uint8) * 255 for _ in its]
    return ActionArrays(items=its, rgb=rgb, flows=flows, flow_step=0.25, mask=mask)


def test_action_task_batches_trains_and_tests(tmp_path):
    from dataclasses import replace

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
    assert res["train_n"] == 12 and 0 <= res["train_top1"] <= 1  # 16 clips less the held-out identity's 4
    masked = ActionFlowTask(config=replace(cfg, data=replace(cfg.data, flow_mask=True)),
                            train_arrays=_arrays("train", 16), test_arrays=_arrays("test", 6))
    bm = masked.batch(0, rank=0, world_size=1, batch_size=3)
    torch.testing.assert_close(bm["x"][:, :3], b["x"][:, :3])  # the same samples; flow only where the mask is
    flow, flow_masked = b["x"][:, 3:], bm["x"][:, 3:]
    assert (flow_masked.abs() <= flow.abs()).all() and (flow_masked == 0).sum() > (flow == 0).sum()
    with pytest.raises(ConfigError, match="rgb and/or flow"):
        ActionFlowTask(config=ActionFlowRunConfig(data=ActionFlowDataConfig(channels="sil+dis")))
    with pytest.raises(ConfigError, match="flow-only"):
        ActionFlowTask(config=ActionFlowRunConfig(model=ActionFlowModelConfig(kwargs={"extra_init_scale": 0.0}),
                                                  data=ActionFlowDataConfig(channels="world+local")))


def test_action_summary_and_checks():
    from hmore.fineaction.bench import RECIPES, difference_se, format_tables, summarise

    def res(top1, seed=0, train=0.9):
        conf = np.eye(12, dtype=int).tolist()
        return {seed: {"top1": top1, "top5": 1.0, "confusion": conf, "run": "r", "flow_key": None, "n": 100,
                       "train_top1": train}}

    s = summarise({"rgb": res(0.5), "rgb+dis": res(0.6), "rgb+world+local": res(0.7)},
                  config=ActionSetConfig(), recipe=RECIPES["full"], preset="full", seeds=[0], fm=None, timing={},
                  command="")
    checks = {c["claim"]: c for c in s["checks"]}
    c = checks["top-1: RGB + hmore world+local > RGB + DIS flow"]
    assert c["holds"] is True and s["rows"]["rgb"]["per_class"] == [100.0] * 12
    # binomial s.e. of 70 % vs 60 % on 100 clips: 100 sqrt((.21 + .24) / 100) = 6.71 points; 10 < 2 s.e.
    assert c["se"] == pytest.approx(100 * np.sqrt(0.45 / 100)) and c["beyond_noise"] is False
    assert checks["top-1: RGB + hmore world+local > RGB"]["beyond_noise"] is True  # 20 > 2 x 6.78
    assert difference_se(50.0, 50.0, 25) == pytest.approx(100 * np.sqrt(0.5 / 25))
    text = format_tables(s)
    assert "| RGB + DIS flow | 60.00 | 100.00 | - | - | 90.00 | + VideoFlow flow | 71.45 | 96.72 |" in text
    assert "binomial s.e. 6.71: within noise" in text
    # two seeds: mean ± sample std; a difference must also exceed twice the seeds' spread
    two = {"rgb": {**res(0.3), **res(0.5, seed=1)}, "rgb+world+local": {**res(0.6), **res(0.7, seed=1)}}
    s2 = summarise(two, config=ActionSetConfig(), recipe=RECIPES["full"], preset="full", seeds=[0, 1], fm=None,
                   timing={}, command="")
    e = s2["rows"]["rgb"]
    assert e["top1"] == pytest.approx(40.0) and e["top1_std"] == pytest.approx(np.sqrt(200.0)) and e["n"] == 100
    c2 = s2["checks"][0]
    assert c2["difference"] == pytest.approx(25.0) and c2["beyond_noise"] is False  # 25 > 2 s.e. but not 2 x 14.1
    assert "| RGB | 40.00 ± 14.14 |" in format_tables(s2)


def test_action_recipe_states_the_flow_representation_for_every_row(tmp_path):
    from dataclasses import replace

    from hmore.fineaction.bench import RECIPES, row_config

    for preset in ("full", "full24", "mid", "quick"):
        for row in ("rgb+dis", "rgb+exact_world+exact_local", "rgb+world+local"):
            cfg = row_config(row, set_root=tmp_path, recipe=RECIPES.get(preset, RECIPES["full"]), seed=1,
                             flow_key="k", threads=1)
            assert cfg.data.flow_mask is True and cfg.model.kwargs == {"extra_init_scale": 0.0}
            assert cfg.data.flow_scale == 0.5
    old = row_config("rgb+dis", set_root=tmp_path, recipe=replace(RECIPES["mid"], flow_mask=False, flow_init=1.0),
                     seed=1, flow_key=None, threads=1)
    assert old.data.flow_mask is False and old.model.kwargs == {}
    assert row_config("rgb+dis", set_root=tmp_path, recipe=replace(RECIPES["mid"], flow_scale=4.0), seed=1,
                      flow_key=None, threads=1).data.flow_scale == 4.0
    r24 = RECIPES["full24"]
    assert (r24.frames - 1) * r24.frame_step + 1 <= ActionSetConfig().frames - 1  # the window fits the pairs
    assert main(["bench", "action-flow", "-o", str(tmp_path), "--preset", "test", "--recipe", "flow_maks=1"]) == 2


def test_late_fusion_and_weight_choice_by_hand():
    from hmore.models.fusion import FUSION_WEIGHTS, choose_fusion_weight, late_fusion

    rgb = np.array([[0.6, 0.4], [0.6, 0.4], [0.2, 0.8]])
    flow = np.array([[0.0, 1.0], [1.0, 0.0], [1.0, 0.0]])
    np.testing.assert_allclose(late_fusion(rgb, flow, 0.25), [[0.45, 0.55], [0.7, 0.3], [0.4, 0.6]])
    np.testing.assert_array_equal(late_fusion(rgb, flow, 0.0), rgb)
    # labels 1, 0, 1: RGB alone 2/3 right (clip 0 wrong); flow alone 1/3; at w 0.2 clip 0 turns (0.52 / 0.48 for
    # class 0 -> 0.48 / 0.52) while clip 2 holds (0.36 / 0.64) until w 0.375: 3/3 for 0.2 <= w <= 0.3 (0.1 and 0.375+
    # are below); the tie among 0.2 and 0.3 goes to the higher mean log-probability of the true class
    labels = np.array([1, 0, 1])
    w, top1 = choose_fusion_weight(rgb, flow, labels)
    assert top1 == 1.0 and w in (0.2, 0.3)
    ll = {v: np.mean(np.log(late_fusion(rgb, flow, v)[np.arange(3), labels])) for v in (0.2, 0.3)}
    assert w == max(ll, key=ll.get)
    assert FUSION_WEIGHTS[0] == 0.0 and FUSION_WEIGHTS[-1] == 1.0 and len(FUSION_WEIGHTS) == 11
    # equal streams: every weight ties, the lowest (RGB alone) wins
    assert choose_fusion_weight(rgb, rgb, labels) == (0.0, pytest.approx(2 / 3))
    with pytest.raises(ValueError, match="weight"):
        late_fusion(rgb, flow, 1.5)
    with pytest.raises(ValueError, match="N, classes"):
        late_fusion(rgb, flow[:2], 0.5)
    with pytest.raises(ValueError, match="labels"):
        choose_fusion_weight(rgb, flow, labels[:2])


def test_flip_mirrors_the_image_negates_flow_x_and_mirrors_the_label():
    from dataclasses import replace

    from hmore.fineaction.motions import MIRRORED
    from hmore.fineaction.task import (
        ActionFlowDataConfig,
        ActionFlowModelConfig,
        ActionFlowRunConfig,
        ActionFlowTask,
        flip_input,
    )
    from hmore.train.engine import TrainConfig

    by = {c: i for i, c in enumerate(CLASSES)}
    assert MIRRORED[by["left_forward_slow"]] == by["right_forward_slow"]
    assert MIRRORED[by["left_then_right_side"]] == by["right_then_left_side"]
    assert all(MIRRORED[MIRRORED[i]] == i != MIRRORED[i] for i in range(12))  # an involution without fixed points
    # 3 RGB + 1 flow (x, y), 1 frame of 1 x 3: a pixel moving right by 2 px at the left edge
    x = np.zeros((5, 1, 1, 3), np.float32)
    x[0, 0, 0] = [1.0, 2.0, 3.0]  # red ramp
    x[3, 0, 0, 0] = 2.0  # flow x
    x[4, 0, 0, 0] = -1.0  # flow y (up)
    f = flip_input(x, rgb=True)
    np.testing.assert_array_equal(f[0, 0, 0], [3.0, 2.0, 1.0])
    np.testing.assert_array_equal(f[3, 0, 0], [0.0, 0.0, -2.0])  # now at the right edge, moving left
    np.testing.assert_array_equal(f[4, 0, 0], [0.0, 0.0, -1.0])  # y unchanged
    np.testing.assert_array_equal(flip_input(f, rgb=True), x)
    np.testing.assert_array_equal(flip_input(x[3:], rgb=False), f[3:])  # a flow stream: channel 0 is x
    with pytest.raises(ValueError, match="pairs"):
        flip_input(x[:4], rgb=True)
    # a flow-only task with flip: every sample is either the plain window or its mirror with the mirrored label
    cfg = ActionFlowRunConfig(model=ActionFlowModelConfig(name="r2plus1d_test"),
                              data=ActionFlowDataConfig(channels="dis", frames=2, frame_step=2, shift=0, flip=True,
                                                        val_identities=0),
                              train=TrainConfig(steps=1, batch_size=8, tensorboard=False, device="cpu", threads=1))
    task = ActionFlowTask(config=cfg, train_arrays=_arrays("train", 16), test_arrays=_arrays("test", 6))
    plain = ActionFlowTask(config=replace(cfg, data=replace(cfg.data, flip=False)), train_arrays=_arrays("train", 16),
                           test_arrays=_arrays("test", 6))
    assert task.in_channels == 2 and task.build_model().stem[0].weight.shape[1] == 2
    b, p = task.batch(3, rank=0, world_size=1, batch_size=8), plain.batch(3, rank=0, world_size=1, batch_size=8)
    flipped = [i for i in range(8) if not torch.equal(b["x"][i], p["x"][i])]
    assert 0 < len(flipped) < 8  # about half
    for i in range(8):
        mirrored = i in flipped
        want = flip_input(p["x"][i].numpy(), rgb=False) if mirrored else p["x"][i].numpy()
        np.testing.assert_array_equal(b["x"][i].numpy(), want)
        assert int(b["y"][i]) == (MIRRORED[int(p["y"][i])] if mirrored else int(p["y"][i]))


def test_flow_stream_model_and_recipe_keys(tmp_path):
    from dataclasses import replace

    from hmore.config import from_dict
    from hmore.errors import ConfigError, UsageError
    from hmore.fineaction.bench import RECIPES, ActionRecipe, row_config, streams_of
    from hmore.fineaction.task import ActionFlowDataConfig
    from hmore.registry import list_models

    assert "r2plus1d_flow" in list_models("r2plus1d*")
    m = create_model("r2plus1d_flow", in_channels=2, num_classes=12).eval()
    assert m.config.widths == (8, 16, 32, 64) and m.config.dropout == 0.5
    out = m(torch.randn(1, 2, 2, 16, 16))
    assert out.shape == (1, 12) and torch.isfinite(out).all()
    r = RECIPES["full24"]
    stream = row_config("world+local", set_root=tmp_path, recipe=r, seed=2, flow_key="k", threads=1)
    assert stream.model.name == "r2plus1d_flow" and stream.model.kwargs == {}  # no flow_init: flow is all it sees
    assert stream.data.flip is False and stream.train.optim.weight_decay == r.stream_weight_decay == 0.05
    rgb = row_config("rgb", set_root=tmp_path, recipe=r, seed=2, flow_key=None, threads=1)
    assert rgb.model.name == "r2plus1d_cpu" and rgb.data.flip is False and rgb.train.optim.weight_decay == 1e-3
    assert row_config("dis", set_root=tmp_path, recipe=from_dict(ActionRecipe, {"stream_flip": True}), seed=0,
                      flow_key=None, threads=1).data.flip is True
    assert rgb.train.steps == 500 and rgb.train.optim.decay_every == 200
    assert stream.train.steps == 1500 and stream.train.optim.decay_every == 600  # the decay stretched alike
    same = row_config("dis", set_root=tmp_path, recipe=replace(r, stream_steps=0), seed=0, flow_key=None, threads=1)
    assert same.train.steps == 500 and same.train.optim.decay_every == 200  # 0: the recipe's steps
    assert streams_of("rgb|world+local") == ("rgb", "world+local") and streams_of("rgb+dis") == ("rgb+dis",)
    for bad in ("dis|rgb", "rgb|rgb+dis", "rgb|dis|world"):
        with pytest.raises(UsageError, match="two-stream"):
            streams_of(bad)
    with pytest.raises(ConfigError, match="stream_flp"):
        from_dict(ActionRecipe, {"stream_flp": True})
    with pytest.raises(ConfigError, match="flipp"):
        from_dict(ActionFlowDataConfig, {"flipp": True})
    with pytest.raises(SystemExit):
        main(["bench", "action-flow", "-o", str(tmp_path), "--preset", "test", "--split", "train"])
    from hmore.bench import gait_bench

    with pytest.raises(UsageError, match="scores split test"):  # gait has no validation scorer
        gait_bench.run(tmp_path, preset="test", split="val")


def _scores(probs, labels, val_probs, val_labels, run):
    return {"probs": probs, "labels": labels, "val_probs": val_probs, "val_labels": val_labels, "run": run,
            "flow_key": None, "top1": 0.0, "top5": 0.0, "confusion": np.zeros((12, 12), int).tolist(), "n": 2}


def test_two_stream_rows_fuse_streams_with_the_weight_chosen_on_validation():
    from hmore.errors import InputError
    from hmore.fineaction.bench import RECIPES, add_two_stream_rows, format_tables, summarise, two_stream

    eye = np.eye(12)
    # validation: RGB right on 1 of 2 clips, flow on both -> flow weight 1 is the only 2/2; test: RGB right on both,
    # flow on neither -> fused at weight 1: 0/2 (the choice is made on validation, not on test)
    rgb = _scores([eye[0], eye[1]], [0, 1], [eye[2], eye[5]], [2, 3], "rgb-s0")
    flow = _scores([eye[4], eye[4]], [0, 1], [eye[2], eye[3]], [2, 3], "dis-s0")
    got = two_stream(rgb, flow)
    assert got["weight"] == 1.0 and got["val_top1"] == 1.0 and got["top1"] == 0.0 and got["n"] == 2
    assert np.array(got["confusion"])[[0, 1], [4, 4]].tolist() == [1, 1] and got["run"] == "rgb-s0 | dis-s0"
    assert got["pred"] == [4, 4]  # the fused class per clip (paired comparisons of rows)
    res = add_two_stream_rows({"rgb": {0: rgb, 1: rgb}, "dis": {0: flow}}, ["rgb|dis", "rgb", "dis"])
    assert list(res) == ["rgb|dis", "rgb", "dis"] and list(res["rgb|dis"]) == [0]  # seeds both streams have
    s = summarise(res, config=ActionSetConfig(), recipe=RECIPES["full24"], preset="full24", seeds=[0], fm=None,
                  timing={}, command="", split="val")
    assert s["split"] == "val" and s["rows"]["rgb|dis"]["weights"] == {0: 1.0}
    assert s["rows"]["rgb|dis"]["val_top1"] == 100.0 and s["rows"]["rgb"]["weights"] is None
    text = format_tables(s)
    assert "VALIDATION split" in text and "| two streams: RGB & DIS flow | 0.00 | 100.00 | 100.00 | 1.0 | - |" in text
    with pytest.raises(InputError, match="different clips"):
        two_stream(rgb, {**flow, "labels": [1, 1]})
    with pytest.raises(InputError, match="val_identities"):
        two_stream(rgb, {**flow, "val_probs": None})
