"""hmore bench flow: methods, flow files, robustness sets, a tiny run end to end, the command."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from hmore.bench import flow_bench
from hmore.bench.flow_methods import FLO_MAGIC, MethodUnavailable, create_method, read_flo, read_flow_file, write_flo
from hmore.bench.robustness import BENCH_SEED_BASE, OVERLAP_LEVELS, set_specs
from hmore.cli import main
from hmore.errors import InputError, UsageError

TINY = (48, 64)


def _no_nan(text: str) -> dict:
    def bad(const: str) -> None:
        raise AssertionError(f"results.json holds {const}")

    return json.loads(text, parse_constant=bad)


# ---- flow files -------------------------------------------------------------------------------------------------


def test_flo_round_trip(tmp_path: Path):
    flow = np.random.default_rng(0).normal(size=(7, 11, 2)).astype(np.float32)
    path = write_flo(tmp_path / "a.flo", flow)
    raw = path.read_bytes()
    assert np.frombuffer(raw[:4], "<f4")[0] == np.float32(FLO_MAGIC) and len(raw) == 12 + 8 * 7 * 11
    assert np.frombuffer(raw[4:12], "<i4").tolist() == [11, 7]  # width first
    assert np.array_equal(read_flo(path), flow)
    np.save(tmp_path / "b.npy", flow)
    assert np.array_equal(read_flow_file(tmp_path / "b.npy"), flow)


def test_flo_reader_rejects_bad_files(tmp_path: Path):
    good = write_flo(tmp_path / "a.flo", np.zeros((4, 5, 2), np.float32)).read_bytes()
    (tmp_path / "magic.flo").write_bytes(b"PIEX" + good[4:])
    with pytest.raises(InputError, match="magic"):
        read_flo(tmp_path / "magic.flo")
    (tmp_path / "short.flo").write_bytes(good[:-8])
    with pytest.raises(InputError, match="truncated"):
        read_flo(tmp_path / "short.flo")
    with pytest.raises(InputError, match="not found"):
        read_flo(tmp_path / "missing.flo")
    np.save(tmp_path / "bad.npy", np.zeros((4, 5, 3)))
    with pytest.raises(InputError, match=r"\(H, W, 2\)"):
        read_flow_file(tmp_path / "bad.npy")


# ---- methods ----------------------------------------------------------------------------------------------------


def test_baselines_recover_a_translation_and_mask_the_background():
    rng = np.random.default_rng(1)
    import cv2

    base = cv2.GaussianBlur(rng.uniform(0, 255, (80, 96, 3)).astype(np.float32), (0, 0), 2.0)
    f0 = np.clip((base - 127) * 3 + 127, 0, 255).astype(np.uint8)
    f1 = np.roll(f0, 2, axis=1)  # everything moves 2 px right
    mask = np.zeros((80, 96), np.uint8)
    mask[20:60, 30:70] = 1
    for name in ("dis", "farneback"):
        out = create_method(name)(f0, f1, mask)
        assert out.world.shape == (80, 96, 2) and out.local is None
        assert np.median(out.world[20:60, 30:70, 0]) == pytest.approx(2.0, abs=0.25)
    masked = create_method("dis_mask")(f0, f1, mask).world
    assert np.all(masked[mask == 0] == 0) and np.median(masked[mask > 0, 0]) == pytest.approx(2.0, abs=0.25)


def test_hmore_model_without_weights_is_unavailable_not_random(tmp_path: Path):
    with pytest.raises(MethodUnavailable, match="no trained weights"):
        create_method("hmore_flow_test")
    with pytest.raises(UsageError, match="unknown flow method"):
        create_method("raft_large")
    with pytest.raises(InputError, match="not found"):
        create_method(f"hmore_flow_test={tmp_path / 'none.safetensors'}")


def test_hmore_model_with_given_weights_gives_world_and_local(tmp_path: Path):
    import torch

    from hmore.registry import create_model
    from hmore.train.checkpoint import save_weights

    torch.manual_seed(0)
    path = save_weights(tmp_path / "w.safetensors", create_model("hmore_flow_test"), metadata={"test": True})
    method = create_method(f"hmore_flow_test={path}")
    assert method.name == "hmore_flow_test=w"  # labelled with the weights' file stem
    assert create_method(f"hmore_flow_test={path}+nocam").name == "hmore_flow_test=w+nocam"
    frames = np.random.default_rng(0).integers(0, 255, (2, 40, 52, 3), dtype=np.uint8)
    mask = np.zeros((40, 52), np.uint8)
    mask[10:30, 10:30] = 1
    out = method(frames[0], frames[1], mask)
    assert out.world.shape == out.local.shape == (40, 52, 2) and out.subject_velocity.shape == (1, 2)
    inside = mask > 0
    assert np.allclose(out.local[inside], out.world[inside] - out.subject_velocity[0], atol=1e-4)
    assert np.all(out.local[~inside] == 0)


# ---- robustness sets --------------------------------------------------------------------------------------------


def test_robustness_levels_share_held_out_seeds():
    specs = set_specs("overlap", clips=2, size=TINY)
    assert len(specs) == 2 * len(OVERLAP_LEVELS)
    assert sorted({s.level_value for s in specs}) == list(OVERLAP_LEVELS)
    assert {s.seed for s in specs} == {BENCH_SEED_BASE + 10_000, BENCH_SEED_BASE + 10_001}
    assert all(2**31 <= s.seed < 2**32 for s in specs)  # above every training seed, inside render_clip's range
    assert {s.kwargs["overlap"] for s in specs if s.level == "30%"} == {0.3}
    small = set_specs("small", clips=1, size=(192, 256))
    assert [s.kwargs["camera_distance"] for s in small] == [1.0, 1.5, 2.0, 3.0]
    assert {s.kwargs["size"] for s in small} == {(192, 256)}
    with pytest.raises(UsageError, match="unknown generated set"):
        set_specs("fog")


def test_motion_set_and_fps_override():
    motion = set_specs("motion", clips=1, size=TINY)
    assert [s.kwargs["fps"] for s in motion] == [30.0, 15.0, 10.0, 6.0]
    assert [s.level_value for s in motion] == [1.0, 2.0, 3.0, 5.0]  # displacement per pair relative to 30 fps
    assert len({s.seed for s in motion}) == 1
    held = set_specs("synth-heldout", clips=2, size=TINY)
    assert all("fps" not in s.kwargs for s in held)  # render_clip's default, 30 fps
    slow = set_specs("synth-heldout", clips=2, size=TINY, fps=10)
    assert [s.kwargs["fps"] for s in slow] == [10.0, 10.0] and [s.seed for s in slow] == [s.seed for s in held]
    with pytest.raises(UsageError, match="fps must be > 0"):
        set_specs("motion", fps=0)


# ---- the benchmark ----------------------------------------------------------------------------------------------


def test_tiny_bench_writes_every_method_and_metric_without_nan(tmp_path: Path):
    summary = flow_bench.run("synth-heldout", methods=["dis", "farneback", "hmore_flow_test"], out_dir=tmp_path,
                             pairs=2, clips=1, size=TINY, cost_sizes=((32, 48),), cost_pairs=1, progress=False)
    assert (tmp_path / "report.html").is_file() and (tmp_path / "figures" / "bars.png").is_file()
    data = _no_nan((tmp_path / "results.json").read_text())
    assert data == json.loads(json.dumps(summary))
    assert set(data["methods"]) == {"dis", "farneback", "hmore_flow_test"}
    for name in ("dis", "farneback"):
        entry = data["methods"][name]
        assert set(entry["metrics"]) == set(flow_bench.METRIC_NAMES)
        for metric in ("epe_mask", "local_epe", "leakage", "photo_l1", "photo_census", "skeleton", "stability"):
            assert entry["metrics"][metric]["value"] is not None, (name, metric, entry["metrics"][metric])
        assert entry["cost"][0]["size"] == "48x32" and entry["cost"][0]["pairs_per_s"] > 0
    hm = data["methods"]["hmore_flow_test"]
    assert not hm["available"] and "no trained weights" in hm["reason"]
    assert all(v["value"] is None and v["reason"].startswith("method unavailable") for v in hm["metrics"].values())
    html = (tmp_path / "report.html").read_text()
    assert "farneback" in html and "clip_000" in html
    table = flow_bench.format_table(summary)
    assert "dis" in table and "EPE in masks" in table


def test_ground_truth_flow_files_score_zero_error(tmp_path: Path):
    clips = flow_bench.generated_clips("synth-heldout", clips=1, pairs=2, size=TINY, progress=False)
    for t in range(clips[0].num_pairs):
        write_flo(tmp_path / "gt" / f"pair_{t}.flo", clips[0].flow[t])
    methods = flow_bench.build_methods([f"file:{tmp_path / 'gt'}", "dis"])
    res = flow_bench.run_flow_bench(clips, methods, occlusion="own", progress=False)
    summary = flow_bench.summarise(res)
    gt = summary["methods"]["file:gt"]["metrics"]
    assert gt["epe_mask"]["value"] == 0.0 and gt["epe_mask"]["n"] == 2
    assert summary["methods"]["dis"]["metrics"]["epe_mask"]["value"] > 0.0


def _image_folder(root: Path, n: int = 3) -> Path:
    import cv2

    root.mkdir(parents=True, exist_ok=True)
    base = np.random.default_rng(0).integers(0, 255, (40, 50, 3), dtype=np.uint8)
    for i in range(n):
        cv2.imwrite(str(root / f"f{i}.png"), np.roll(base, i, axis=1))
    return root


def test_real_clips_without_priors_have_null_metrics_with_reasons(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    import hmore.priors.pose

    def no_backend(name: str, **kw: object) -> None:
        raise ImportError("no pose backend in this test")

    monkeypatch.setattr(hmore.priors.pose, "create_estimator", no_backend)
    clips = flow_bench.real_clips(_image_folder(tmp_path / "seq"), pairs=2, max_side=50)
    assert len(clips) == 1 and clips[0].num_pairs == 2 and clips[0].flow is None
    assert not clips[0].masks.any() and "no priors" in clips[0].notes[0]
    res = flow_bench.run_flow_bench(clips, flow_bench.build_methods(["dis"]), progress=False)
    m = flow_bench.summarise(res)["methods"]["dis"]["metrics"]
    assert m["epe_mask"]["value"] is None and "no ground-truth" in m["epe_mask"]["reason"]
    assert m["photo_l1"]["value"] is None and "no person masks" in m["photo_l1"]["reason"]


def test_real_clips_take_masks_and_pose_from_a_priors_file(tmp_path: Path):
    from hmore.priors.pipeline import Priors, save_priors

    seq = _image_folder(tmp_path / "seq")
    masks = np.zeros((3, 20, 25), np.uint8)  # priors at half the frame size
    masks[:, 5:15, 5:15] = 1
    kp = np.zeros((3, 1, 17, 3), np.float32)
    kp[..., 0], kp[..., 1], kp[..., 2] = 20.0, 20.0, 0.9
    kp[:, 0, ::2, 1] = 10.0  # two rows of joints: bones with length
    kp[:, 0, :, 0] += np.arange(3, dtype=np.float32)[:, None]  # moving 1 px right per frame
    save_priors(seq / "priors.npz", Priors(
        kp2d=kp, valid=np.ones((3, 1), bool), interpolated=np.zeros((3, 1), bool), track_ids=np.array([1]),
        masks=masks, boundaries=np.zeros_like(masks), fps=30.0, size=(50, 40), mask_size=(25, 20),
        frame_index=np.arange(3), backend="test", backend_version="0", source="seq"))
    clips = flow_bench.real_clips(seq, pairs=2, max_side=50)
    c = clips[0]
    assert c.masks.shape == (3, 40, 50) and c.masks[0, 10:30, 10:30].all() and c.masks.sum() == 3 * 400
    assert np.allclose(c.kp2d, kp) and "priors.npz" in c.notes[0]
    res = flow_bench.run_flow_bench(clips, flow_bench.build_methods(["dis_mask"]), progress=False)
    m = flow_bench.summarise(res)["methods"]["dis_mask"]["metrics"]
    assert m["photo_l1"]["value"] is not None and m["skeleton"]["value"] is not None
    assert m["leakage"]["value"] == 0.0


def test_command_robustness_run_and_bad_arguments(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    out = tmp_path / "out"
    code = main(["bench", "flow", "--data", "robustness:clothing", "--methods", "dis", "dis_mask", "--pairs", "1",
                 "--clips", "1", "--size", "64x48", "--cost-sizes", "-o", str(out)])
    assert code == 0
    printed = capsys.readouterr().out
    assert "dis_mask" in printed and "results.json" in printed
    data = _no_nan((out / "results.json").read_text())
    assert set(data["methods"]["dis"]["by_level"]["clothing"]) == {"normal", "bag", "coat"}
    assert data["methods"]["dis_mask"]["metrics"]["leakage"]["value"] == 0.0
    best = {row[0]: row[1] for row in flow_bench.winners(data)}
    assert list(best) == list(flow_bench.METRIC_NAMES)
    assert best["leakage"] == "dis_mask" and best["epe_mask"] == "dis, dis_mask"  # equal inside the masks
    assert (out / "figures" / "curves_clothing.png").is_file()
    assert main(["bench", "flow", "--pairs", "0", "-o", str(out)]) == 2
    assert main(["bench", "flow", "--methods", "nope", "-o", str(out)]) == 2
    with pytest.raises(SystemExit) as exc:
        main(["bench", "flow", "--size", "big", "-o", str(out)])
    assert exc.value.code == 2


# ---- several data sources ---------------------------------------------------------------------------------------


def _square_video(folder: Path, name: str = "square.avi", frames: int = 6) -> Path:
    """A 64x48 MJPG video of a textured square moving 2 px right per frame, with a ``<stem>.priors.npz`` beside it."""
    import cv2

    from hmore.priors.pipeline import Priors, save_priors

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(3)
    background = cv2.GaussianBlur(rng.uniform(0, 255, (48, 64, 3)).astype(np.float32), (0, 0), 1.5).astype(np.uint8)
    texture = rng.integers(0, 255, (16, 16, 3), dtype=np.uint8)
    path = folder / name
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 30.0, (64, 48))
    assert writer.isOpened()
    masks = np.zeros((frames, 48, 64), np.uint8)
    kp = np.zeros((frames, 1, 17, 3), np.float32)
    for t in range(frames):
        x0 = 10 + 2 * t
        img = background.copy()
        img[16:32, x0:x0 + 16] = texture
        masks[t, 16:32, x0:x0 + 16] = 1
        kp[t, 0, :, 0] = x0 + 2 + np.arange(17) % 9 * 1.5
        kp[t, 0, :, 1] = np.where(np.arange(17) % 2 == 0, 18.0, 29.0)
        kp[t, 0, :, 2] = 0.9
        writer.write(cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
    writer.release()
    save_priors(folder / f"{path.stem}.priors.npz", Priors(
        kp2d=kp, valid=np.ones((frames, 1), bool), interpolated=np.zeros((frames, 1), bool), track_ids=np.array([1]),
        masks=masks, boundaries=np.zeros_like(masks), fps=30.0, size=(64, 48), mask_size=(64, 48),
        frame_index=np.arange(frames), backend="test", backend_version="0", source=name))
    return path


def test_command_over_a_generated_set_and_a_real_video_reports_each_set(tmp_path: Path,
                                                                        capsys: pytest.CaptureFixture[str]):
    video = _square_video(tmp_path / "videos")
    out = tmp_path / "out"
    code = main(["bench", "flow", "--data", "synth-heldout", str(video), "--methods", "dis", "dis_mask", "--pairs", "2",
                 "--clips", "1", "--size", "64x48", "--cost-sizes", "-o", str(out)])
    assert code == 0
    printed = capsys.readouterr().out
    data = _no_nan((out / "results.json").read_text())
    real_set = "real (static camera)"  # a square sliding over a still background: the camera does not move
    assert [c["set"] for c in data["clips"]] == ["synth-heldout", real_set]
    assert data["sets"] == {"synth-heldout": {"clips": 1, "pairs": 2}, real_set: {"clips": 1, "pairs": 2}}
    for name, entry in data["methods"].items():
        assert set(entry["metrics"]) == set(flow_bench.METRIC_NAMES)  # the pooled means stay
        assert list(entry["by_set"]) == ["synth-heldout", real_set]
        for set_name, vals in entry["by_set"].items():
            assert set(vals) == set(flow_bench.METRIC_NAMES), (name, set_name)
        assert entry["by_set"]["synth-heldout"]["epe_mask"] is not None
        assert entry["by_set"][real_set]["epe_mask"] is None
        for metric in ("leakage", "photo_l1", "skeleton", "chamfer", "stability"):
            assert entry["by_set"][real_set][metric] is not None, (name, metric)
    assert data["methods"]["dis_mask"]["by_set"][real_set]["leakage"] == 0.0

    synth = flow_bench.format_table(data, set_name="synth-heldout")
    real = flow_bench.format_table(data, set_name=real_set)
    l1 = {s: data["methods"]["dis"]["by_set"][s]["photo_l1"] for s in ("synth-heldout", real_set)}
    assert l1["synth-heldout"] != l1[real_set] and synth != real
    assert f"{l1['synth-heldout']:.4g}" in synth and f"{l1[real_set]:.4g}" in real
    assert f"{l1[real_set]:.4g}" not in synth
    real_rows = {line.split()[0]: line for line in real.splitlines()[2:]}
    assert real_rows["dis"].split()[1] == "-"  # no ground truth on the real video
    with pytest.raises(UsageError, match="no set 'overlap'"):
        flow_bench.format_table(data, set_name="overlap")
    # the real set's bar chart has no panels for the ground-truth metrics; the generated set's has every one
    shown = {s: flow_bench._chart_metrics(data, s) for s in ("synth-heldout", real_set)}
    assert {"epe_mask", "local_epe", "leakage", "photo_l1"} <= set(shown["synth-heldout"])
    assert "epe_mask" not in shown[real_set] and "local_epe" not in shown[real_set]
    assert {"leakage", "photo_l1", "skeleton", "chamfer", "stability"} <= set(shown[real_set])

    # one table per set, each headed by its name and counts; no pooled table
    assert "synth-heldout: 1 clip, 2 pairs" in printed and f"{real_set}: 1 clip, 2 pairs" in printed
    assert printed.count("EPE in masks") == 2 and flow_bench.format_table(data) not in printed
    assert synth in printed and real in printed
    figs = out / "figures"
    assert (figs / "bars_synth-heldout.png").is_file() and (figs / "bars_real__static_camera_.png").is_file()
    assert not (figs / "bars.png").exists()
    html = (out / "report.html").read_text()
    assert f"Results: {real_set}: 1 clip, 2 pairs" in html and "square.avi" in html


def test_one_set_keeps_the_single_pooled_table():
    summary = {"metrics": {"epe_mask": {"label": "EPE in masks", "better": "lower"}},
               "clips": [{"set": "synth-heldout", "pairs": 2}],
               "methods": {n: {"available": True, "metrics": {"epe_mask": {"value": v}},
                               "by_set": {"synth-heldout": {"epe_mask": v}}} for n, v in (("a", 1.0), ("b", 2.0))}}
    assert flow_bench.format_tables(summary) == flow_bench.format_table(summary)
    assert flow_bench.format_table(summary, set_name="synth-heldout") == flow_bench.format_table(summary)
    assert "1*" in flow_bench.format_table(summary)


def test_real_clips_with_the_same_name_from_two_folders_get_unique_names(tmp_path: Path):
    a = _square_video(tmp_path / "a", frames=3).parent
    b = _square_video(tmp_path / "b", frames=3).parent
    clips = flow_bench.bench_clips([str(a), str(b)], pairs=1, size=TINY)
    assert clips[0].name == "square.avi" and clips[1].name == f"{b.as_posix()}/square.avi"
    assert clips[1].level == clips[1].name and "renamed from 'square.avi'" in clips[1].notes[-1]
    assert {c.set_name for c in clips} == {"real (static camera)"}
    with pytest.raises(UsageError, match="given twice"):
        flow_bench.bench_clips([str(a), str(a)], pairs=1, size=TINY)
    with pytest.raises(UsageError, match="no data source"):
        flow_bench.bench_clips([], pairs=1, size=TINY)


def test_command_fps_reaches_the_generated_clips_and_bad_fps_fails(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                   capsys: pytest.CaptureFixture[str]):
    seen: list[tuple[float | None, list[flow_bench.BenchClip]]] = []
    original = flow_bench.generated_clips

    def recording(name: str, **kw: object) -> list[flow_bench.BenchClip]:
        got = original(name, **kw)
        seen.append((kw.get("fps"), got))
        return got

    monkeypatch.setattr(flow_bench, "generated_clips", recording)
    out = tmp_path / "out"
    args = ["bench", "flow", "--data", "synth-heldout", "--methods", "dis", "--pairs", "2", "--clips", "1",
            "--size", "64x48", "--cost-sizes", "-o", str(out)]
    assert main([*args, "--fps", "10"]) == 0
    assert len(seen) == 1 and seen[0][0] == 10.0
    at_10 = seen[0][1][0].flow
    at_30 = original("synth-heldout", clips=1, pairs=2, size=TINY, progress=False)[0].flow
    assert np.abs(at_10).mean() > 2.0 * np.abs(at_30).mean()  # 3x the displacement per pair
    assert any("10 frames per second" in n for n in _no_nan((out / "results.json").read_text())["notes"])
    capsys.readouterr()
    for bad in ("0", "-5", "nan"):
        assert main([*args, "--fps", bad]) == 2
        assert "--fps" in capsys.readouterr().err
    assert len(seen) == 1  # refused before rendering
    assert main(["bench", "flow", "--data", "synth-heldout", "synth-heldout", "-o", str(out)]) == 2
    assert "--data" in capsys.readouterr().err


def test_ground_truth_masks_beside_a_video_replace_the_priors_masks(tmp_path: Path):
    video = _square_video(tmp_path / "videos", frames=4)
    gt = np.zeros((4, 96, 128), np.uint8)  # at twice the video's size: resized with nearest neighbours
    gt[:, 20:80, 10:70] = 1
    np.savez_compressed(video.with_name("square_masks.npz"), masks=gt)
    (clip,) = flow_bench.real_clips(video, pairs=2, max_side=64)
    assert clip.masks.shape == (3, 48, 64) and (clip.masks[0, 10:40, 5:35] == 1).all() and clip.masks.sum() == 3 * 900
    assert clip.mask_source == "ground truth (square_masks.npz)" and clip.set_name.endswith("ground-truth masks)")
    assert clip.kp2d.shape == (3, 1, 17, 3) and clip.kp2d[..., 2].max() == pytest.approx(0.9)  # matched to label 1
    res = flow_bench.run_flow_bench([clip], flow_bench.build_methods(["dis"]), progress=False)
    summary = flow_bench.summarise(res)
    assert summary["clips"][0]["masks"] == "ground truth (square_masks.npz)"
    np.savez_compressed(video.with_name("square_masks.npz"), masks=gt[:2])
    with pytest.raises(InputError, match="2 masks but frames up to 2"):
        flow_bench.real_clips(video, pairs=2, max_side=64)


def test_prior_people_are_matched_to_mask_labels_by_their_joints():
    masks = np.zeros((2, 20, 30), np.uint8)
    masks[:, :, :15], masks[:, :, 15:] = 1, 2
    kp = np.zeros((2, 3, 17, 3), np.float32)
    kp[:, 0, :, :2], kp[:, 0, :, 2] = (25.0, 10.0), 0.9  # person 0 stands in label 2
    kp[:, 1, :, :2], kp[:, 1, :, 2] = (5.0, 10.0), 0.9  # person 1 in label 1
    kp[:, 2, :, :2], kp[:, 2, :, 2] = (6.0, 10.0), 0.1  # person 2 is not confident
    out = flow_bench._match_people(kp, masks)
    assert out.shape == (2, 2, 17, 3)
    np.testing.assert_array_equal(out[:, 0], kp[:, 1])
    np.testing.assert_array_equal(out[:, 1], kp[:, 0])
