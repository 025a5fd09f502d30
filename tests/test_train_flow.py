"""The flow training task: data stream (determinism, rank slices, crop/flip semantics), both stages running through
the engine with a checkpoint, the overfit check, the evaluation hook and the shipped configs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from hmore.config import to_dict
from hmore.errors import ConfigError, InputError
from hmore.flow.task import (
    HELD_OUT_SEED_BASE,
    FlowTask,
    augment,
    held_out_clip_seed,
    make_sample,
    train_clip_seed,
)
from hmore.train import checkpoint as ckpt
from hmore.train.engine import train
from hmore.train.tasks import build_task, load_task_config

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
TINY = {
    "model": {"name": "hmore_flow_test"},
    "data": {"size": [56, 72], "crop": [48, 64], "frames_per_clip": 3, "clip_cache": 2, "subjects": [1, 2],
             "eval_clips": 1, "eval_size": [48, 64], "distractors": [0, 1], "body": "capsule"},  # fast, no Warp compile
    "train": {"steps": 2, "batch_size": 2, "log_every": 1, "device": "cpu", "tensorboard": False,
              "optim": {"lr": 1e-3}},
}


def _cfg(**sections):
    data = {k: dict(v) if isinstance(v, dict) else v for k, v in TINY.items()}
    for k, v in sections.items():
        data[k] = {**data.get(k, {}), **v} if isinstance(v, dict) else v
    return load_task_config("flow", data)


@pytest.fixture(scope="module")
def task() -> FlowTask:
    return build_task("flow", _cfg())


def test_batch_shapes_and_types(task):
    b = task.batch(0, rank=0, world_size=1, batch_size=2)
    assert b.image1.shape == (2, 3, 48, 64) and b.image1.dtype == torch.uint8
    assert b.flow.shape == (2, 2, 48, 64) and b.flow.dtype == torch.float32
    assert b.masks.shape == (2, 48, 64) and b.masks.dtype == torch.int64 and int(b.masks.max()) <= 2
    assert b.kp_t.shape == (2, 2, 17, 3) and b.subject_velocity.shape == (2, 2, 2) and b.subject_weight.shape == (2, 2)
    assert bool(b.has_flow.all()) and b.valid.dtype == torch.bool
    assert float(b.subject_weight.sum()) >= 1  # somebody is in every crop of this stream's first batch


def test_data_is_a_function_of_step_and_ranks_split_the_global_batch(task):
    fresh = build_task("flow", _cfg())  # no cache shared with ``task``
    a = task.batch(3, rank=0, world_size=1, batch_size=2)
    b = fresh.batch(3, rank=0, world_size=1, batch_size=2)
    torch.testing.assert_close(a.flow, b.flow, rtol=0, atol=0)
    assert torch.equal(a.image1, b.image1)
    halves = [fresh.batch(3, rank=r, world_size=2, batch_size=1) for r in range(2)]
    assert torch.equal(torch.cat([h.image2 for h in halves]), a.image2)
    assert not torch.equal(task.batch(4, rank=0, world_size=1, batch_size=2).image1, a.image1)


def test_training_and_held_out_seeds_are_disjoint():
    train_seeds = {train_clip_seed(s, i) for s in range(3) for i in range(0, 10**6, 997)}
    held = {held_out_clip_seed(s, i) for s in range(3) for i in range(50)}
    assert max(train_seeds) < HELD_OUT_SEED_BASE <= min(held)
    assert max(held) < 2**32  # render_clip keeps 32 bits of the seed


def _hand_sample(h=6, w=8, slots=2):
    img1 = np.arange(h * w * 3, dtype=np.uint8).reshape(h, w, 3)
    flow = np.zeros((h, w, 2), np.float32)
    flow[..., 0], flow[..., 1] = 2.0, -1.0
    masks = np.zeros((h, w), np.uint8)
    masks[1:4, 1:3] = 1
    kp = np.zeros((1, 17, 3), np.float32)
    kp[0, :, 0], kp[0, :, 1], kp[0, :, 2] = 1.0, 2.0, 1.0
    return make_sample(image1=img1, image2=img1, masks=masks, kp_t=kp, kp_t1=kp + [[[3.0, 0.0, 0.0]]], flow=flow,
                       valid=None, subject_velocity=np.array([[2.0, -1.0]], np.float32), slots=slots)


def test_flip_mirrors_images_negates_flow_x_and_keeps_labels():
    s = _hand_sample()
    out = augment(s, np.random.default_rng(0), crop=(6, 8), flip_prob=1.0)
    np.testing.assert_array_equal(out["image1"], s["image1"][:, ::-1])
    np.testing.assert_array_equal(out["masks"], s["masks"][:, ::-1])
    assert set(np.unique(out["masks"])) == {0, 1}  # labels stay
    np.testing.assert_allclose(out["flow"][..., 0], -2.0)
    np.testing.assert_allclose(out["flow"][..., 1], -1.0)
    np.testing.assert_allclose(out["kp_t"][0, :, 0], 8 - 1 - 1.0)  # x -> W - 1 - x
    np.testing.assert_allclose(out["kp_t1"][0, :, 0] - out["kp_t"][0, :, 0], -3.0)  # displacement mirrored
    np.testing.assert_allclose(out["kp_t"][0, :, 1], 2.0)
    np.testing.assert_allclose(out["subject_velocity"][0], [-2.0, -1.0])
    np.testing.assert_array_equal(out["subject_weight"], [0.0, 0.0])  # 6 mask pixels < the minimum of 20
    # flipping the mask twice gives it back
    twice = augment(out, np.random.default_rng(0), crop=(6, 8), flip_prob=1.0)
    np.testing.assert_array_equal(twice["masks"], s["masks"])


def test_crop_shifts_keypoints_and_keeps_flow():
    s = _hand_sample(h=10, w=12)
    out = augment(s, np.random.default_rng(1), crop=(6, 8), flip_prob=0.0)
    assert out["image1"].shape == (6, 8, 3) and out["flow"].shape == (6, 8, 2)
    # the crop offset (x0, y0) is recoverable from the image values: pixel (0, 0) came from (y0, x0)
    flat = int(out["image1"][0, 0, 0]) // 3
    y0, x0 = divmod(flat, 12)
    np.testing.assert_allclose(out["kp_t"][0, :, 0], 1.0 - x0)
    np.testing.assert_allclose(out["kp_t"][0, :, 1], 2.0 - y0)
    np.testing.assert_allclose(out["flow"][..., 0], 2.0)


def _run(tmp_path, name, **sections):
    cfg = _cfg(**sections)
    return train(build_task("flow", cfg), cfg.train, tmp_path / name, run_config=to_dict(cfg)), cfg


def test_stage1_trains_checkpoints_and_evaluates(tmp_path):
    s, cfg = _run(tmp_path, "s1")
    assert len(s.losses) == 2 and all(np.isfinite(s.losses))
    assert {"sequence", "subject", "epe_mask"} <= set(s.last_log)
    expected = {"epe_mask", "leakage", "local_epe_mask", "subject_velocity_error", "zero_flow_epe_mask"}
    assert expected <= set(s.eval_metrics)
    assert all(np.isfinite(v) and v >= 0 for v in s.eval_metrics.values())
    meta = ckpt.read_metadata(s.checkpoint)
    assert meta["model_config"] == {"name": "hmore_flow_test", "kwargs": {}} and meta["step"] == 2
    assert meta["run_config"]["loss"]["stage"] == "supervised"


def test_images_panel(task):
    from hmore.registry import create_model

    torch.manual_seed(0)
    model = create_model("hmore_flow_test").eval()
    with torch.no_grad():
        pics = task.images(model, None)
    img = pics["frame_gt_world_local"]
    assert img.dtype == np.uint8 and img.shape == (48, 4 * 64, 3)


def test_stage2_from_stage1_checkpoint(tmp_path):
    s1, _ = _run(tmp_path, "s1")
    s2, _ = _run(tmp_path, "s2", loss={"stage": "hmore"}, init_from=str(tmp_path / "s1"))
    assert {"skeleton", "boundary", "subject"} <= set(s2.last_log) and "sequence" not in s2.last_log
    assert all(np.isfinite(s2.losses))
    # stage 2 started from stage 1's weights: rebuilding its task model gives exactly them
    task2 = build_task("flow", _cfg(loss={"stage": "hmore"}, init_from=str(s1.checkpoint)))
    from safetensors.torch import load_file

    w1 = load_file(str(s1.checkpoint))
    w_init = task2.build_model().state_dict()
    for k, v in w1.items():
        torch.testing.assert_close(w_init[k], v, rtol=0, atol=0)


def test_stage1_overfits_one_repeated_batch(tmp_path):
    class OneBatch(FlowTask):
        def batch(self, step, *, rank, world_size, batch_size):
            return super().batch(0, rank=rank, world_size=world_size, batch_size=batch_size)

    cfg = _cfg(train={"steps": 20, "log_every": 5, "optim": {"lr": 2e-3, "grad_clip": 0.0}},
               data={"eval_clips": 0, "flip_prob": 0.0})
    s = train(OneBatch(config=cfg), cfg.train, tmp_path, run_config=to_dict(cfg))
    assert np.mean(s.losses[-3:]) < 0.4 * np.mean(s.losses[:3]), s.losses


def test_bad_flow_configs_raise():
    with pytest.raises(ConfigError, match="crop"):
        build_task("flow", _cfg(data={"crop": [80, 64]}))
    with pytest.raises(ConfigError, match="subjects"):
        build_task("flow", _cfg(data={"subjects": [2, 1]}))
    with pytest.raises(ConfigError, match="priors_folder"):
        build_task("flow", _cfg(data={"priors": "files"}, loss={"stage": "hmore"}))
    with pytest.raises(ConfigError, match="stage"):
        load_task_config("flow", {"loss": {"stage": "both"}})
    with pytest.raises(ConfigError, match="max_subjects"):
        build_task("flow", _cfg(data={"subjects": [1, 5]})).build_model()
    with pytest.raises(ConfigError, match="data.folder"):
        build_task("flow", _cfg(data={"source": "folder"}))


def test_weights_licence_follows_real_frames(tmp_path):
    """Weights trained on real video frames must not be exported under the generated-data MIT licence."""
    assert build_task("flow", _cfg()).weights_licence is None  # generated data only: the exporter's default
    real = build_task("flow", _cfg(loss={"stage": "hmore"}, data={"priors": "files", "priors_folder": str(tmp_path),
                                                                  "real_fraction": 0.5}))
    assert "real videos" in real.weights_licence and str(tmp_path) in real.weights_licence
    none = build_task("flow", _cfg(loss={"stage": "hmore"}, data={"priors": "files", "priors_folder": str(tmp_path),
                                                                  "real_fraction": 0.0}))
    assert none.weights_licence is None
    photos = build_task("flow", _cfg(data={"priors_folder": str(tmp_path), "realism": {"background_prob": 0.5}}))
    assert "research use only" in photos.weights_licence


def test_shipped_configs_load():
    s1 = load_task_config("flow", CONFIGS / "flow_synth.yaml")
    s2 = load_task_config("flow", CONFIGS / "flow_hmore.yaml")
    assert s1.model.name == "hmore_flow_cpu" and s1.loss.stage == "supervised" and s1.train.batch_size == 4
    assert s2.loss.stage == "hmore" and s2.loss.boundary_weight == 0.1 and s2.init_from
    assert s2.data.crop == s1.data.crop  # inherited through base:
    assert json.dumps(to_dict(s2))  # JSON-able for config.json


def test_stage2_with_priors_files(tmp_path):
    """``data.priors: files`` reads priors.npz + its video (here made from a generated clip)."""
    from hmore.io.video import write_video
    from hmore.priors.pipeline import Priors, save_priors
    from hmore.synth.clip import render_clip

    clip = render_clip(size=(48, 64), num_frames=4, subjects=1, seed=5, distractors=0)
    folder = tmp_path / "priors" / "walk"
    write_video(folder / "walk.mp4", list(clip.frames), fps=25.0)
    kp = clip.kp2d * np.array([2.0, 2.0, 1.0], np.float32)  # the "source video" is twice the mask size
    pri = Priors(kp2d=kp, valid=np.ones((4, 1), bool), interpolated=np.zeros((4, 1), bool),
                 track_ids=np.array([7]), masks=clip.masks * 7, boundaries=np.zeros_like(clip.masks), fps=25.0,
                 size=(128, 96), mask_size=(64, 48), frame_index=np.arange(4), backend="test",
                 backend_version="0", source="walk.mp4")
    save_priors(folder / "priors.npz", pri)
    cfg = _cfg(loss={"stage": "hmore"}, data={"priors": "files", "priors_folder": str(tmp_path / "priors"),
                                              "subjects": [1, 1], "crop": [40, 56]})
    task = build_task("flow", cfg)
    b = task.batch(0, rank=0, world_size=1, batch_size=2)
    assert b.image1.shape == (2, 3, 40, 56) and not bool(b.has_flow.any())
    assert int(b.masks.max()) == 1  # track id 7 relabelled to subject slot 1
    assert float(b.kp_t[..., 2].max()) == 1.0 and float(b.kp_t[..., 0].max()) < 64  # scaled to the mask size
    s = train(task, cfg.train, tmp_path / "run", run_config=to_dict(cfg))
    assert {"skeleton", "boundary"} <= set(s.last_log) and all(np.isfinite(s.losses))


def test_folder_source_reads_saved_clips(tmp_path):
    from hmore.synth.clip import render_clip

    for i in range(2):
        render_clip(size=(56, 72), num_frames=3, subjects=1, seed=100 + i, distractors=0).save(tmp_path / f"c{i}.npz")
    cfg = _cfg(data={"source": "folder", "folder": str(tmp_path)})
    task = build_task("flow", cfg)
    b = task.batch(0, rank=0, world_size=1, batch_size=2)
    assert b.flow.shape == (2, 2, 48, 64) and bool(b.has_flow.all()) and bool(b.valid.all())
    again = build_task("flow", cfg).batch(0, rank=0, world_size=1, batch_size=2)
    assert torch.equal(again.image1, b.image1)
    small = build_task("flow", _cfg(data={"source": "folder", "folder": str(tmp_path), "crop": [60, 64]}))
    with pytest.raises(InputError, match="smaller than data.crop"):
        small.batch(0, rank=0, world_size=1, batch_size=1)


def test_stage1_resume_is_exact(tmp_path):
    full, _ = _run(tmp_path, "full", train={"steps": 4}, data={"eval_clips": 0})
    _run(tmp_path, "split", train={"steps": 2}, data={"eval_clips": 0})
    rest, _ = _run(tmp_path, "split", train={"steps": 4}, data={"eval_clips": 0})
    assert rest.start_step == 2
    np.testing.assert_allclose(rest.losses, full.losses[2:], rtol=0, atol=1e-5)


def test_evaluate_against_a_zero_flow_model(task):
    """A model that predicts no motion: its EPE is the zero-flow reference and it leaks nothing."""
    from hmore.models.flow import FlowOutput

    class Still(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.zeros(()))

        def forward(self, image1, image2, *, masks=None, num_subjects=None, iters=None):
            b, _, h, w = image1.shape
            z = torch.zeros(b, 2, h, w) * self.w
            return FlowOutput(world=z, local=z, subject_velocity=torch.zeros(b, num_subjects, 2), iterations=z[None])

    m = task.evaluate(Still())
    assert m["epe_mask"] == pytest.approx(m["zero_flow_epe_mask"], rel=1e-6)
    assert m["leakage"] == 0.0 and m["zero_flow_epe_mask"] > 0
    # the DIS reference: OpenCV's DIS on the same pairs, pooled over the same pixels
    import cv2

    err = n = 0.0
    for s in task._eval_set():
        grey = [cv2.cvtColor(s[k], cv2.COLOR_RGB2GRAY) for k in ("image1", "image2")]
        flow = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM).calc(grey[0], grey[1], None)
        inside = (s["masks"] > 0) & s["valid"]
        err += float(np.linalg.norm(flow - s["flow"], axis=-1)[inside].sum())
        n += float(inside.sum())
    assert m["dis_epe_mask"] == pytest.approx(err / n, rel=1e-3)
    s = task._eval_set()[0]
    inside = (s["masks"] > 0) & s["valid"]
    assert m["local_epe_mask"] == pytest.approx(float(np.linalg.norm(s["local"], axis=-1)[inside].mean()), rel=1e-5)


def test_balanced_weights_give_people_and_background_half_each():
    from hmore.flow.task import balance_weights

    person = torch.zeros(2, 4, 5)
    person[0, :1, :2] = 1  # 2 of 20 pixels are a person
    weight = torch.ones(2, 4, 5)
    weight[0, 3, 4] = 0.0  # an invalid background pixel stays invalid
    out = balance_weights(weight, person)
    assert float((out[0] * person[0]).sum()) == pytest.approx(10.0)
    assert float((out[0] * (1 - person[0])).sum()) == pytest.approx(10.0)
    assert float(out[0, 3, 4]) == 0.0
    assert float(out[0, 0, 0]) == pytest.approx(5.0)  # 10 / 2 person pixels
    # no person in sample 1: background keeps half, people's half is empty
    assert float(out[1].sum()) == pytest.approx(10.0)


def test_zero_flow_head_with_init_residual_starts_at_dis_flow():
    """A residual model whose flow head is zeroed predicts exactly DIS flow: its eval equals the DIS reference."""
    cfg = _cfg(model={"name": "hmore_flow_test", "zero_flow_head": True,
                      "overrides": {"init": "dis", "init_residual": True, "upsample": "convex"}})
    zeroed = build_task("flow", cfg)
    model = zeroed.build_model()
    assert float(model.update_block.head.conv2.weight.detach().abs().sum()) == 0.0
    with torch.no_grad():
        m = zeroed.evaluate(model.eval())
    assert m["epe_mask"] == pytest.approx(m["dis_epe_mask"], rel=1e-4)
    plain = build_task("flow", _cfg(model={"name": "hmore_flow_test",
                                           "overrides": {"init": "dis", "init_residual": True}}))
    assert float(plain.build_model().update_block.head.conv2.weight.detach().abs().sum()) > 0.0


def test_cpu_recipes_load():
    for name in "abcde":
        cfg = load_task_config("flow", CONFIGS / f"flow_synth_cpu_{name}.yaml")
        assert cfg.model.name == "hmore_flow_cpu" and cfg.model.overrides["init" if name != "a" else "upsample"]
    d = load_task_config("flow", CONFIGS / "flow_synth_cpu_d.yaml")
    assert d.model.zero_flow_head and d.model.overrides["init_residual"] and d.train.best_metric == "epe_mask"
    assert load_task_config("flow", CONFIGS / "flow_synth_cpu_e.yaml").train.optim.lr == 5e-5


@pytest.mark.parametrize("design", ["ft", "d", "c"])
def test_body_comparison_arms_differ_only_in_body(design):
    """Issue 18's Anny-vs-capsule flow arms: the two configs of each design resolve to the same recipe but data.body,
    and each design keeps the recipe it claims (d: recipe d from DIS flow; c: recipe c from scratch)."""
    anny = to_dict(load_task_config("flow", CONFIGS / f"flow_anny_{design}.yaml"))
    capsule = to_dict(load_task_config("flow", CONFIGS / f"flow_capsule_{design}.yaml"))
    assert (anny["data"].pop("body"), capsule["data"].pop("body")) == ("anny", "capsule")
    assert anny == capsule
    assert anny["train"]["best_metric"] == ""  # both arms export the same (last) step
    if design == "d":
        recipe_d = to_dict(load_task_config("flow", CONFIGS / "flow_synth_cpu_d.yaml"))
        assert anny["model"]["zero_flow_head"] and anny["model"]["overrides"] == recipe_d["model"]["overrides"]
        assert anny["train"]["optim"] == recipe_d["train"]["optim"] and anny["train"]["steps"] == 500
    if design == "c":
        recipe_c = to_dict(load_task_config("flow", CONFIGS / "flow_synth_cpu_c.yaml"))
        assert not anny["init_from"] and anny["model"] == recipe_c["model"] and anny["loss"] == recipe_c["loss"]
        assert anny["train"]["optim"] == recipe_c["train"]["optim"] and anny["train"]["steps"] == 5000


def test_training_clips_that_do_not_fit_fall_back_to_fewer_people_then_a_tracking_camera(monkeypatch):
    import hmore.synth.clip as synth_clip
    from hmore.errors import UsageError
    from hmore.flow.data import render_params, render_training_clip, train_clip_seed

    tried = []

    def fake(*, subjects, camera_motion, **kw):  # only one person with a tracking camera fits
        tried.append((subjects, camera_motion))
        if subjects > 1 or camera_motion != "track":
            raise UsageError("do not fit")
        return "clip"

    monkeypatch.setattr(synth_clip, "render_clip", fake)
    params = {"subjects": 3, "camera_motion": "static", "overlap": 0.3}
    assert render_training_clip(7, params, size=(64, 64), num_frames=4) == "clip"
    assert tried == [(3, "static"), (2, "static"), (1, "static"), (1, "track")]
    assert params == {"subjects": 3, "camera_motion": "static", "overlap": 0.3}  # the caller's draw is untouched
    tried.clear()

    def never(*, subjects, camera_motion, **kw):
        tried.append((subjects, camera_motion))
        raise UsageError("do not fit")

    monkeypatch.setattr(synth_clip, "render_clip", never)
    with pytest.raises(UsageError, match="do not fit"):  # nothing left to try: the generator's reason
        render_training_clip(7, {"subjects": 2, "camera_motion": "pan", "overlap": 0.2}, size=(64, 64),
                             num_frames=4)
    assert tried == [(2, "pan"), (1, "pan"), (1, "track")]
    monkeypatch.undo()
    # the draw that stopped recipe c at seed 2 (clip 2238: one person at 4.3 fps over 8 frames, static camera)
    data = load_task_config("flow", CONFIGS / "flow_capsule_c.yaml", ["data.seed=2"]).data
    params = render_params(data, np.random.default_rng([data.seed, 5, 2238]))
    clip = render_training_clip(train_clip_seed(data.seed, 2238), params, size=data.size,
                                num_frames=data.frames_per_clip)
    assert clip.frames.shape == (data.frames_per_clip, *data.size, 3) and clip.masks.max() >= 1


def test_flow_training_defaults_to_anny_bodies_and_published_configs_keep_capsules():
    from hmore.flow.config import FlowDataConfig

    assert FlowDataConfig().body == "anny"  # what issue 18's comparison kept (README)
    for path in sorted(CONFIGS.glob("flow*.yaml")):
        body = load_task_config("flow", path).data.body
        assert body == ("anny" if path.stem.startswith("flow_anny") else "capsule"), path.name
