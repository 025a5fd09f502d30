"""hmore.flowfeed's flow pipelines: ``raw`` (the network's output) and ``command`` (what ``hmore flow`` writes)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from hmore.cli import main
from hmore.errors import UsageError
from hmore.flowfeed import (
    FlowModel,
    Prepared,
    build_clip_cache,
    clip_flows,
    flow_model_key,
    flow_path,
    load_flow_model,
    pipeline_settings,
)
from hmore.registry import create_model
from hmore.synth.clip import render_clip

SHA = "ab" * 32


@pytest.fixture(scope="module")
def models():
    torch.manual_seed(0)
    net = create_model("hmore_flow_test").eval()
    return {p: FlowModel(name="hmore_flow_test", weights="test", sha256=SHA, net=net, pipeline=p)
            for p in ("raw", "command")}


@pytest.fixture(scope="module")
def pan_clip():
    """Two walkers under a panning camera: the camera fit, the refinement and per-person v_s all have work."""
    return render_clip(size=(72, 96), num_frames=3, subjects=2, seed=21, actions=["walk"], camera_motion="pan",
                       distractors=0, fov_deg=60.0)


def test_command_pipeline_is_what_hmore_flow_writes(models, pan_clip, tmp_path):
    from hmore.flow.inference import flow

    path = pan_clip.save(tmp_path / "clip.npz")
    rep = flow(path, model=models["command"].net, device="cpu", progress=False)  # hmore flow's defaults
    assert rep.mask_source == "clip" and not all(rep.camera_note)  # the pan was fitted on some pair
    union = (pan_clip.masks > 0).astype(np.uint8)
    got = clip_flows(pan_clip.frames, union, sources=("hmore",), model=models["command"], labels=pan_clip.masks,
                     keypoints=pan_clip.kp2d)
    assert got["world"].shape == (2, 2, 72, 96) and got["world"].dtype == np.float32
    # hmore.flow overlaps its stages (frame t+1 encoded alone: ~1e-5 px of float rounding, which the refinement
    # carries to ~1e-3 px on a few pixels); the source runs them in turn. Both far below the caches' 1/8 px step.
    np.testing.assert_allclose(got["world"], rep.world, atol=2e-3)
    np.testing.assert_allclose(got["local"], rep.local, atol=2e-3)
    assert np.abs(got["world"] - rep.world).mean() < 1e-5
    # local = world - v_s inside each person, 0 outside everyone
    outside = pan_clip.masks[:-1] == 0
    assert np.abs(got["local"].transpose(0, 2, 3, 1)[outside]).max() == 0.0
    for t in range(2):
        for s in (1, 2):
            inside = pan_clip.masks[t] == s
            v = rep.subject_velocity[t, s - 1]
            np.testing.assert_allclose(got["world"][t][:, inside] - got["local"][t][:, inside],
                                       np.broadcast_to(v[:, None], (2, int(inside.sum()))), atol=1e-4)
    raw = clip_flows(pan_clip.frames, union, sources=("hmore",), model=models["raw"])
    assert np.abs(raw["world"] - got["world"]).mean() > 0.05  # the camera's flow is gone from the command's


def test_pipelines_are_cached_under_their_own_keys(models, tmp_path):
    raw, cmd = models["raw"].key, models["command"].key
    assert raw == flow_model_key("hmore_flow_test", SHA) == "hmore_flow_test-" + SHA[:12]  # old caches stay valid
    assert cmd.startswith(raw + "-command-") and len(cmd) == len(raw) + len("-command-") + 8
    assert flow_model_key("hmore_flow_test", SHA, "command") == cmd  # deterministic
    settings = pipeline_settings("command")
    assert settings["camera"]["model"] == "homography" and settings["refine"]["alpha"] == 5.0
    assert settings["subject_motion"] == "pose" and pipeline_settings("raw") == {}
    clip = render_clip(size=(32, 40), num_frames=2, subjects=1, seed=2, camera_motion="static", distractors=0)

    def prepare(key, c):
        return Prepared(arrays={"label": np.array(0)}, crop_flow=lambda f: np.rint(f * 8).astype(np.int8),
                        meta={"key": key})

    for fm in models.values():
        done = build_clip_cache(tmp_path, ["a"], render=lambda k: clip, prepare=prepare, flow_model=fm,
                                progress=False)
        assert done.flows_written == 1
        with np.load(flow_path(tmp_path, fm.key, "a")) as z:
            meta = json.loads(str(z["meta"]))
        assert meta["pipeline"] == fm.pipeline and meta["pipeline_settings"] == pipeline_settings(fm.pipeline)
    assert sorted(p.name for p in (tmp_path / "flows").iterdir()) == sorted([raw, cmd])


def test_bad_flow_pipeline_is_refused(models, capsys, tmp_path):
    with pytest.raises(UsageError, match="flow pipeline must be one of raw, command, got 'cmd'"):
        FlowModel(name="x", weights="w", sha256=SHA, net=models["raw"].net, pipeline="cmd")
    with pytest.raises(UsageError, match="flow pipeline"):
        load_flow_model("hmore_flow_test", tmp_path / "missing.safetensors", pipeline="Command")
    with pytest.raises(UsageError, match="flow pipeline"):
        flow_model_key("x", SHA, "refined")
    with pytest.raises(SystemExit) as exit_info:
        main(["bench", "action-flow", "-o", str(tmp_path), "--preset", "test", "--flow-pipeline", "cmd"])
    assert exit_info.value.code == 2
    assert "--flow-pipeline" in capsys.readouterr().err
