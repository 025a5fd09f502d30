"""Training on real video (issue 13): the photometric loss, stabilised samples, the mixed real + generated stream
with realism steps, and the real-video frames enlarged to cover the crop."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from hmore.config import to_dict
from hmore.flow.data import stabilise_sample
from hmore.losses.photometric import census_loss
from hmore.synth.clip import render_clip
from hmore.train.engine import train
from hmore.train.tasks import build_task, load_task_config

TINY = {
    "model": {"name": "hmore_flow_test"},
    "data": {"size": [56, 72], "crop": [48, 64], "frames_per_clip": 3, "clip_cache": 2, "subjects": [1, 1],
             "eval_clips": 0, "distractors": [0, 1], "body": "capsule"},  # fast, no Warp compile
    "train": {"steps": 2, "batch_size": 4, "log_every": 1, "device": "cpu", "tensorboard": False,
              "optim": {"lr": 1e-3}},
}


def test_census_loss_is_zero_for_the_true_motion_and_has_a_gradient() -> None:
    rng = np.random.default_rng(0)
    import cv2

    tex = cv2.GaussianBlur((rng.random((40, 52, 3)) * 255).astype(np.float32), (0, 0), 1.5)
    img1 = torch.from_numpy(tex[4:36, 4:48]).permute(2, 0, 1)[None]  # (1, 3, 32, 44)
    img2 = torch.from_numpy(tex[4:36, 2:46]).permute(2, 0, 1)[None]  # the scene moved 2 px right
    weight = torch.ones(1, 32, 44)
    right = torch.zeros(1, 2, 32, 44)
    right[:, 0] = 2.0
    good = float(census_loss(img1, img2, right, weight))  # not exactly 0: census windows at the image border
    wrong = torch.zeros(1, 2, 32, 44, requires_grad=True)
    loss = census_loss(img1, img2, wrong, weight)
    assert good < 0.02 and float(loss.detach()) > 10 * good
    loss.backward()
    assert wrong.grad is not None and float(wrong.grad.abs().sum()) > 0
    assert float(census_loss(img1, img2, right, torch.zeros(1, 32, 44))) == 0.0
    # uint8 frames (as batches hold them) give the same loss as float ones
    as_u8 = census_loss(img1.round().to(torch.uint8), img2.round().to(torch.uint8), wrong.detach(), weight)
    assert float(as_u8) == pytest.approx(float(loss.detach()), rel=0.05)
    with pytest.raises(ValueError, match="weight"):
        census_loss(img1, img2, right, torch.ones(1, 32, 40))


def test_a_stabilised_sample_has_a_still_background_and_moved_ground_truth() -> None:
    from hmore.flow.data import clip_pair

    clip = render_clip(size=(72, 96), num_frames=2, subjects=1, seed=21, actions=["walk"], camera_motion="pan",
                       distractors=0, fov_deg=60.0)
    raw = clip_pair(clip, 0, 1)
    out = stabilise_sample(raw)
    assert not np.allclose(out["camera_homography"], np.eye(3))
    bg = (raw["masks"] == 0) & clip.static_background[0]
    assert np.abs(raw["flow"][bg]).mean() > 1.0  # the pan moves the background...
    assert np.abs(out["flow"][bg]).mean() < 0.2 * np.abs(raw["flow"][bg]).mean()  # ...and stabilising stops it
    person = raw["masks"] > 0
    scene = clip.scene_flow()[0]
    # on the person the stabilised target is (close to) the motion relative to the scene
    assert np.abs(out["flow"][person] - scene[person]).mean() < 0.5 * np.abs(raw["flow"][person] - scene[person]).mean()
    assert out["kp_t1"].shape == raw["kp_t1"].shape and not np.allclose(out["kp_t1"], raw["kp_t1"])


def _priors_folder(tmp_path: Path) -> Path:
    from hmore.io.video import write_video
    from hmore.priors.pipeline import Priors, save_priors

    clip = render_clip(size=(36, 64), num_frames=4, subjects=1, seed=5, distractors=0)  # landscape, short
    folder = tmp_path / "priors" / "walk"
    write_video(folder / "walk.mp4", list(clip.frames), fps=25.0)
    save_priors(folder / "priors.npz", Priors(
        kp2d=clip.kp2d, valid=np.ones((4, 1), bool), interpolated=np.zeros((4, 1), bool), track_ids=np.array([1]),
        masks=clip.masks, boundaries=np.zeros_like(clip.masks), fps=25.0, size=(64, 36), mask_size=(64, 36),
        frame_index=np.arange(4), backend="test", backend_version="0", source="walk.mp4"))
    return tmp_path / "priors"


def test_mixed_stream_trains_real_and_generated_samples_together(tmp_path: Path) -> None:
    folder = _priors_folder(tmp_path)
    cfg = load_task_config("flow", {
        **TINY,
        "data": {**TINY["data"], "priors": "files", "priors_folder": str(folder), "real_fraction": 0.5,
                 "stabilise": 1.0, "shake_prob": 1.0, "crop_on_people": True, "real_max_side": 40,
                 "realism": {"background_prob": 1.0, "noise_prob": 1.0, "jpeg_prob": 1.0}},
        "loss": {"stage": "hmore", "supervised_weight": 1.0, "photometric_weight": 1.0, "background_l1": 0.1},
    })
    task = build_task("flow", cfg)
    batches = [task.batch(s, rank=0, world_size=1, batch_size=4) for s in range(3)]
    has = torch.cat([b.has_flow for b in batches])
    assert has.any() and (~has).any()  # both kinds of samples in the stream
    for b in batches:
        assert b.image1.shape == (4, 3, 48, 64)  # the real frames (40 px long side) were enlarged to cover the crop
        assert bool((b.masks > 0).flatten(1).any(1).all())  # every crop holds a person
        assert not b.occluded[b.has_flow].any()  # the occlusion check runs for real samples only
    again = task.batch(1, rank=0, world_size=1, batch_size=4)
    assert torch.equal(again.image1, batches[1].image1)  # still a pure function of the step
    s = train(task, cfg.train, tmp_path / "run", run_config=to_dict(cfg))
    assert {"photometric", "skeleton", "boundary", "sequence", "background_l1"} <= set(s.last_log)
    assert all(np.isfinite(s.losses))


def test_photo_backgrounds_need_a_priors_folder() -> None:
    from hmore.errors import ConfigError

    with pytest.raises(ConfigError, match="priors_folder"):
        build_task("flow", load_task_config("flow", {**TINY, "data": {**TINY["data"],
                                                                       "realism": {"background_prob": 0.5}}}))
