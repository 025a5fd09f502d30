"""``hmore.flow`` / ``hmore flow``: streaming inference, mask sources and their fallback, npz and preview outputs."""

from __future__ import annotations

import logging
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

import hmore
from hmore.cli import main
from hmore.errors import InputError
from hmore.flow.inference import FlowRepresentation, iter_flow, load_flow_model, write_flow_npz
from hmore.registry import create_model


def _frames(t: int = 4, h: int = 40, w: int = 48) -> np.ndarray:
    rng = np.random.default_rng(0)
    base = (rng.random((h + 2 * t, w + 2 * t, 3)) * 255).astype(np.uint8)
    base = cv2.GaussianBlur(base, (5, 5), 1.0)
    return np.stack([base[k: k + h, 2 * k: 2 * k + w] for k in range(t)])  # the view pans by (2, 1) px per frame


@pytest.fixture(scope="module")
def tiny() -> torch.nn.Module:
    torch.manual_seed(0)
    return create_model("hmore_flow_test").eval()


def test_flow_whole_frame_fallback_shapes_and_invariants(tiny: torch.nn.Module) -> None:
    rep = hmore.flow(_frames(), model=tiny, masks="whole", device="cpu")
    assert isinstance(rep, FlowRepresentation)
    assert rep.world.shape == rep.local.shape == (3, 2, 40, 48)
    assert rep.subject_velocity.shape == (3, 1, 2) and rep.masks.shape == (3, 40, 48)
    assert rep.mask_source == "whole" and (rep.masks == 1).all()
    # one subject = the whole frame: local = world - v everywhere
    assert np.allclose(rep.local, rep.world - rep.subject_velocity[:, 0, :, None, None], atol=1e-5)
    assert rep.channels().shape == (3, 4, 40, 48)


def test_auto_masks_without_priors_fall_back_to_whole_frame(tiny: torch.nn.Module,
                                                           caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="hmore.flow.inference"):
        rep = hmore.flow(_frames(3), model=tiny, device="cpu")  # frames in memory: no priors can run
    assert rep.mask_source == "whole"
    assert "whole frame" in caplog.text


def test_label_masks_are_compacted_beyond_the_subject_queries(tiny: torch.nn.Module) -> None:
    frames = _frames(3)
    labels = np.zeros((3, 40, 48), np.uint8)
    labels[:, 5:20, 5:20] = 7
    labels[:, 22:38, 25:45] = 200  # ids above max_subjects (4) still work: each pair is relabelled
    rep = hmore.flow(frames, model=tiny, masks=labels, device="cpu")
    assert rep.subject_velocity.shape == (2, 200, 2)
    moving = np.flatnonzero(np.abs(rep.subject_velocity).sum(axis=(0, 2)) > 0)
    assert set(moving) <= {6, 199} and len(moving) >= 1
    inside = labels[:2] == 200
    v = rep.subject_velocity[:, 199][:, :, None, None]
    assert np.allclose((rep.local + v).transpose(0, 2, 3, 1)[inside], rep.world.transpose(0, 2, 3, 1)[inside],
                       atol=1e-5)
    assert (rep.local.transpose(0, 2, 3, 1)[labels[:2] == 0] == 0).all()


@pytest.mark.parametrize(("overlap", "ahead"), [(False, 2), (True, 4)])
def test_iter_flow_streams_frames_lazily(tiny: torch.nn.Module, overlap: bool, ahead: int) -> None:
    pulled = []

    def source():
        for k, f in enumerate(_frames(6)):
            pulled.append(k)
            yield f

    gen = iter_flow(source(), model=tiny, masks="whole", device="cpu", overlap=overlap)
    first = next(gen)
    # one pair needs two frames; overlapped, the next pair's are read while the network works, and a pair is
    # handed out once the network has moved on to the following one: a fixed lookahead, not the whole video
    assert first.index == 0 and len(pulled) == ahead
    assert [p.index for p in gen] == [1, 2, 3, 4]


def test_stride_and_size(tiny: torch.nn.Module) -> None:
    rep = hmore.flow(_frames(7), model=tiny, masks="whole", stride=2, size=24, device="cpu")
    assert rep.world.shape == (3, 2, 20, 24)  # 4 frames selected, longer side scaled to 24


def test_npz_streaming_matches_and_is_deterministic(tiny: torch.nn.Module, tmp_path: Path) -> None:
    frames = _frames(4)
    rep = hmore.flow(frames, model=tiny, masks="whole", device="cpu")
    paths = [tmp_path / "a" / "flow.npz", tmp_path / "b" / "flow.npz"]
    for p in paths:
        n = write_flow_npz(p, iter_flow(frames, model=tiny, masks="whole", device="cpu"), meta={"fps": 30.0})
        assert n == 3
    assert paths[0].read_bytes() == paths[1].read_bytes()
    with np.load(paths[0]) as z:
        assert np.array_equal(z["world"], rep.world) and np.array_equal(z["local"], rep.local)
        assert z["subject_velocity"].shape == (3, 1, 2) and z["masks"].dtype == np.uint8
        assert float(z["fps"]) == 30.0
    assert not list(paths[0].parent.glob(".*part"))  # temporary slices are gone
    with pytest.raises(InputError, match="fewer than 2 frames"):
        write_flow_npz(tmp_path / "c.npz", iter_flow(frames[:1], model=tiny, masks="whole", device="cpu"))


def test_load_flow_model_weights_file_and_random_fallback(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    from hmore.train.checkpoint import save_weights

    torch.manual_seed(3)
    src = create_model("hmore_flow_test")
    save_weights(tmp_path / "w.safetensors", src, metadata={"name": "test"})
    model, desc = load_flow_model("hmore_flow_test", weights=tmp_path / "w.safetensors")
    assert desc.endswith("w.safetensors")
    for (k, a), b in zip(src.state_dict().items(), model.state_dict().values()):
        assert torch.equal(a, b), k
    with pytest.raises(InputError, match="not found"):
        load_flow_model("hmore_flow_test", weights=tmp_path / "missing.safetensors")
    with caplog.at_level(logging.WARNING, logger="hmore.flow.inference"):
        _, desc = load_flow_model("hmore_flow_test")  # no weights ship for the test model
    assert desc == "random" and "RANDOMLY INITIALISED" in caplog.text


def test_load_flow_model_takes_the_name_of_shipped_weights() -> None:
    from hmore.weights import default_weights_dir, list_weights

    if "hmore_flow_cpu" not in list_weights():
        pytest.skip("no hmore_flow_cpu weights ship in this checkout")
    model, desc = load_flow_model("hmore_flow_cpu", weights="hmore_flow_cpu")
    assert Path(desc) == default_weights_dir() / "hmore_flow_cpu.safetensors"
    shipped, _ = load_flow_model("hmore_flow_cpu")
    for (k, a), b in zip(shipped.state_dict().items(), model.state_dict().values()):
        assert torch.equal(a, b), k
    with pytest.raises(InputError, match="nor shipped weights of that name"):
        load_flow_model("hmore_flow_cpu", weights="hmore_flow_cpu_nonexistent")


def test_load_flow_model_builds_the_variant_the_weights_were_trained_as(tmp_path: Path) -> None:
    from hmore.train.checkpoint import save_weights

    torch.manual_seed(4)
    src = create_model("hmore_flow_test", upsample="convex")  # convex adds the mask head's tensors
    config = {"name": "hmore_flow_test", "kwargs": {"upsample": "convex"}}
    save_weights(tmp_path / "ckpt.safetensors", src, metadata={"model_config": config})
    model, _ = load_flow_model("hmore_flow_test", weights=tmp_path / "ckpt.safetensors")
    assert model.config.upsample == "convex"
    save_weights(tmp_path / "exported.safetensors", src, metadata={"model": config})
    model, _ = load_flow_model("hmore_flow_test", weights=tmp_path / "exported.safetensors")
    assert model.config.upsample == "convex"
    save_weights(tmp_path / "bare.safetensors", src, metadata={})  # no config: the named default does not fit
    with pytest.raises(InputError):
        load_flow_model("hmore_flow_test", weights=tmp_path / "bare.safetensors")


def test_cli_flow_on_an_image_folder(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    folder = tmp_path / "clip"
    folder.mkdir()
    for k, f in enumerate(_frames(4)):
        cv2.imwrite(str(folder / f"f{k}.png"), f[:, :, ::-1])
    out = tmp_path / "out"
    code = main(["flow", str(folder), "-o", str(out), "--model", "hmore_flow_test", "--masks", "whole",
                 "--device", "cpu"])
    assert code == 0
    assert "3 pairs" in capsys.readouterr().out
    for name in ("flow.npz", "preview.mp4", "index.html", "meta.json"):
        assert (out / name).is_file(), name
    with np.load(out / "flow.npz") as z:
        assert z["world"].shape == (3, 2, 40, 48) and z["world"].dtype == np.float32
    assert "preview.mp4" in (out / "index.html").read_text()


def test_cli_flow_bad_arguments(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["flow", str(tmp_path / "none.mp4"), "-o", str(tmp_path / "o")]) == 1
    assert "error" in capsys.readouterr().err
    folder = tmp_path / "clip"
    folder.mkdir()
    cv2.imwrite(str(folder / "a.png"), _frames(1)[0])
    assert main(["flow", str(folder), "-o", str(tmp_path / "o"), "--stride", "0"]) == 2


def test_masks_from_a_priors_file_are_resized_and_aligned(tiny: torch.nn.Module, tmp_path: Path) -> None:
    from hmore.priors.pipeline import Priors, save_priors

    t = 4
    small = np.zeros((t, 20, 24), np.uint8)
    small[:, 2:10, 3:12] = 1
    small[2] = 0  # nobody in frame 2
    priors = Priors(
        kp2d=np.zeros((t, 1, 17, 3), np.float32), valid=np.ones((t, 1), bool), interpolated=np.zeros((t, 1), bool),
        track_ids=np.array([1]), masks=small, boundaries=np.zeros_like(small), fps=30.0, size=(48, 40),
        mask_size=(24, 20), frame_index=np.arange(t), backend="test", backend_version="0", source="clip",
    )
    path = save_priors(tmp_path / "priors.npz", priors)
    rep = hmore.flow(_frames(t), model=tiny, masks=path, device="cpu")
    assert rep.mask_source == "file"
    expected = cv2.resize(small[0], (48, 40), interpolation=cv2.INTER_NEAREST)
    assert np.array_equal(rep.masks[0], expected) and (rep.masks[2] == 0).all()
    assert (rep.subject_velocity[2] == 0).all() and (rep.local[2] == 0).all()  # no subject: local is 0


def test_cli_folder_of_videos_resumes(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from hmore.io.video import write_video

    for name in ("a", "b"):
        write_video(tmp_path / "in" / f"{name}.mp4", list(_frames(3)), 10.0)
    args = ["flow", str(tmp_path / "in"), "-o", str(tmp_path / "out"), "--model", "hmore_flow_test", "--masks",
            "whole", "--device", "cpu", "--no-preview"]
    assert main(args) == 0
    assert "2 videos processed, 0 skipped" in capsys.readouterr().out
    assert (tmp_path / "out" / "a" / "flow.npz").is_file() and (tmp_path / "out" / "b" / "flow.npz").is_file()
    assert main(args) == 0
    assert "0 videos processed, 2 skipped" in capsys.readouterr().out
    assert main([*args, "--force", "--shard", "1/2"]) == 0
    assert "1 videos processed, 0 skipped" in capsys.readouterr().out


def test_cli_flow_on_a_generated_clip_uses_its_masks(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["synth", "--out", str(tmp_path / "clips"), "--frames", "3", "--size", "48x64", "--subjects", "2",
                 "--seed", "5"]) == 0
    clip = next((tmp_path / "clips").glob("clip_*.npz"))
    out = tmp_path / "out"
    assert main(["flow", str(clip), "-o", str(out), "--model", "hmore_flow_test", "--device", "cpu",
                 "--no-preview", "--threads", "1"]) == 0
    assert "masks: clip" in capsys.readouterr().out
    with np.load(clip) as c, np.load(out / "flow.npz") as z:
        assert np.array_equal(z["masks"], c["masks"][:-1])
        assert z["world"].shape == (2, 2, 48, 64)
        assert z["subject_velocity"].shape == (2, int(c["masks"].max()), 2)


def _encoded_images(model: torch.nn.Module) -> tuple[list[int], torch.utils.hooks.RemovableHandle]:
    seen: list[int] = []
    handle = model.feature_encoder.register_forward_hook(lambda mod, inp, out: seen.append(int(inp[0].shape[0])))
    return seen, handle


@pytest.mark.parametrize("camera", ["off", "homography"])
def test_a_stream_encodes_each_unwarped_frame_once_with_the_same_flow(tiny: torch.nn.Module, camera: str) -> None:
    frames = np.repeat(_frames(1, 48, 64), 5, axis=0)  # a static camera: no stabilising warp, features reusable
    frames[:, 10:30, 20:40] = np.roll(frames[:, 10:30, 20:40], 1, axis=2)  # (the same for every frame)
    frames[2:, 12:20, 22:30] = 255  # something moves from frame 2 on
    seen, handle = _encoded_images(tiny)
    try:
        # refine="off": the network's flow is compared (the refinement after it would magnify float noise)
        rep = hmore.flow(frames, model=tiny, masks="whole", device="cpu", camera=camera, refine="off")
    finally:
        handle.remove()
    assert sum(seen) == 5  # 2 images for the first pair, then 1 new frame per pair (not 2 x 4 = 8)
    for t in range(4):  # the same as each pair on its own
        alone = hmore.flow(frames[t: t + 2], model=tiny, masks="whole", device="cpu", camera=camera, refine="off")
        assert np.allclose(rep.world[t], alone.world[0], atol=1e-4)


def test_a_moving_camera_stream_also_encodes_each_frame_once(tiny: torch.nn.Module,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    import hmore.flow.inference as inf
    from hmore.flow.camera import CameraMotion

    frames = _frames(4, 48, 64)
    moved = CameraMotion(homography=np.array([[1.0, 0, 2.0], [0, 1.0, 1.0], [0, 0, 1.0]]), model="homography")
    monkeypatch.setattr(inf, "estimate_camera", lambda *a, **k: moved)  # a pan: the lookup goes through it
    seen, handle = _encoded_images(tiny)
    try:
        rep = hmore.flow(frames, model=tiny, masks="whole", device="cpu", camera="homography", refine="off")
    finally:
        handle.remove()
    assert sum(seen) == 4  # 2 images for the first pair, then 1 new frame per pair: no frame is warped
    assert rep.camera_note == [""] * 3  # fitted (here: given) for every pair
    for t in range(3):  # the same as each pair on its own
        alone = hmore.flow(frames[t: t + 2], model=tiny, masks="whole", device="cpu", camera="homography",
                           refine="off")
        assert np.allclose(rep.world[t], alone.world[0], atol=1e-4)
    still = hmore.flow(frames[:2], model=tiny, masks="whole", device="cpu", camera="off", refine="off")
    assert not np.allclose(rep.world[0], still.world[0], atol=1e-2)  # the camera is compensated


def _two_people(t: int, h: int = 48, w: int = 64) -> np.ndarray:
    labels = np.zeros((t, h, w), np.int64)
    labels[:, 8:40, 6:24] = 1
    labels[:, 10:44, 36:58] = 2
    return labels


@pytest.mark.parametrize("moving", [False, True])
@pytest.mark.parametrize("refine", ["off", "variational"])
def test_the_overlapped_stream_gives_the_serial_streams_output(tiny: torch.nn.Module, monkeypatch: pytest.MonkeyPatch,
                                                               moving: bool, refine: str) -> None:
    import hmore.flow.inference as inf
    from hmore.flow.camera import CameraMotion

    if moving:  # a pan, given: the lookup goes through it and the refinement sees world + camera
        moved = CameraMotion(homography=np.array([[1.0, 0, 2.0], [0, 1.0, 1.0], [0, 0, 1.0]]), model="homography")
        monkeypatch.setattr(inf, "estimate_camera", lambda *a, **k: moved)
    frames = _frames(5, 48, 64)
    kw = dict(model=tiny, masks=_two_people(5), device="cpu", refine=refine, progress=False)
    serial = list(iter_flow(frames, overlap=False, **kw))
    overlapped = list(iter_flow(frames, overlap=True, **kw))
    assert [p.index for p in overlapped] == [p.index for p in serial] == [0, 1, 2, 3]
    for a, b in zip(serial, overlapped):
        # one frame encoded alone instead of in a batch of two: float noise only
        assert np.allclose(a.world, b.world, atol=1e-4) and np.allclose(a.local, b.local, atol=1e-4)
        assert np.allclose(a.subject_velocity, b.subject_velocity, atol=1e-4)
        assert np.array_equal(a.mask, b.mask) and np.array_equal(a.frame, b.frame)
        assert np.allclose(a.camera_field(), b.camera_field())
    assert not np.allclose(serial[0].world, serial[1].world)  # (the pairs differ: nothing trivially equal)


def test_an_error_in_the_overlapped_worker_reaches_the_caller(tiny: torch.nn.Module,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    import threading

    import hmore.flow.inference as inf

    calls = []
    real = inf.prepare_pair

    def failing(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise InputError("frame pair 2 is broken")
        return real(*args, **kwargs)

    monkeypatch.setattr(inf, "prepare_pair", failing)
    gen = iter_flow(_frames(6), model=tiny, masks="whole", device="cpu", overlap=True)
    with pytest.raises(InputError, match="pair 2 is broken"):
        list(gen)
    assert not [t for t in threading.enumerate() if t.name.startswith("hmore-flow")]  # the worker was shut down


def test_stream_threads_and_when_the_stages_overlap(monkeypatch: pytest.MonkeyPatch) -> None:
    import hmore.flow.inference as inf

    for cores, threads, want in [(1, 1, 1), (2, 1, 1), (3, 1, 1), (8, 4, 4)]:
        monkeypatch.setattr(inf.os, "cpu_count", lambda c=cores: c)
        assert inf.stream_threads() == want
        monkeypatch.setattr(inf.torch, "get_num_threads", lambda t=threads: t)
        assert inf.overlap_fits() == (2 * threads <= cores)
    monkeypatch.setattr(inf.os, "cpu_count", lambda: None)  # unknown: one core, no overlap
    assert inf.stream_threads() == 1 and not inf.overlap_fits()


def test_the_background_npz_writer_writes_the_same_bytes_and_reports_write_errors(tmp_path: Path) -> None:
    from hmore.flow.inference import StreamingNpzWriter

    rng = np.random.default_rng(0)
    slices = [rng.normal(size=(2, 6, 5)).astype(np.float32) for _ in range(7)]
    paths = []
    for background in (False, True):
        w = StreamingNpzWriter(tmp_path / f"bg{int(background)}.npz", background=background, queue=2)
        for k, x in enumerate(slices):
            w.append("world", x)
            w.append("index", np.array(k))
        paths.append(w.close(fps=np.array(30.0)))
    assert paths[0].read_bytes() == paths[1].read_bytes()
    with np.load(paths[1]) as z:
        assert np.array_equal(z["world"], np.stack(slices)) and z["index"].ravel().tolist() == list(range(7))

    class Broken:  # a disk that fails on the third write
        def __init__(self, fh):
            self.fh, self.n = fh, 0

        def write(self, data):
            self.n += 1
            if self.n == 3:
                raise OSError(28, "No space left on device")
            return self.fh.write(data)

        def close(self):
            self.fh.close()

    w = StreamingNpzWriter(tmp_path / "broken.npz", queue=1)
    w.append("world", slices[0])
    fh, raw, dtype, shape = w._files["world"]
    w._files["world"] = (Broken(fh), raw, dtype, shape)
    with pytest.raises(OSError, match="No space left"):
        for x in slices:
            w.append("world", x)
        w.close()
    w.discard()
    assert not (tmp_path / "broken.npz").exists() and not list(tmp_path.glob(".broken*"))
