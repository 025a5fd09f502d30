"""hmore.io.video: reading videos and image folders, writing mp4, and clear errors on bad files."""

from __future__ import annotations

import logging
from pathlib import Path

import cv2
import numpy as np
import pytest

from conftest import require_file
from hmore.errors import InputError, UsageError
from hmore.io.video import iter_frames, natural_key, probe_video, read_frames, resized_size, write_video


def _noise_frames(n: int, h: int, w: int, seed: int = 0):
    """A generator of frames: a fixed noise image scrolled one pixel per frame (distinct, codec-unfriendly)."""
    base = np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)
    for i in range(n):
        yield np.roll(base, i, axis=1)


def _flat_frames(n: int, h: int, w: int):
    """Flat grey frames whose level encodes the frame number (survives lossy coding)."""
    for i in range(n):
        yield np.full((h, w, 3), 10 + 8 * i, np.uint8)


def _levels(frames: np.ndarray) -> list[int]:
    return [int(round((f.mean() - 10) / 8)) for f in frames]


@pytest.fixture()
def clip(tmp_path: Path) -> Path:
    return write_video(tmp_path / "clip.mp4", _flat_frames(20, 48, 64), fps=20)


def test_write_then_probe_and_read(clip: Path) -> None:
    info = probe_video(clip)
    assert (info.kind, info.frames, info.width, info.height, info.codec) == ("video", 20, 64, 48, "h264")
    assert info.fps == pytest.approx(20)
    assert info.duration == pytest.approx(1.0)
    frames = read_frames(clip)
    assert frames.shape == (20, 48, 64, 3) and frames.dtype == np.uint8
    assert _levels(frames) == list(range(20))


def test_stride_range_fps_and_resize(clip: Path) -> None:
    assert _levels(read_frames(clip, stride=3)) == [0, 3, 6, 9, 12, 15, 18]
    assert _levels(read_frames(clip, start=5, end=9)) == [5, 6, 7, 8]
    assert _levels(read_frames(clip, start=4, end=12, stride=4)) == [4, 8]
    assert _levels(read_frames(clip, fps=5)) == [0, 4, 8, 12, 16]  # 20 -> 5 fps keeps every 4th frame
    assert _levels(read_frames(clip, fps=40, end=3)) == [0, 0, 1, 1, 2, 2]  # upsampling repeats frames
    small = read_frames(clip, max_side=32)
    assert small.shape == (20, 24, 32, 3)
    assert read_frames(clip, start=50).shape == (0, 48, 64, 3)


def test_iter_frames_streams(clip: Path) -> None:
    it = iter_frames(clip)
    first = next(it)
    assert first.shape == (48, 64, 3)
    assert sum(1 for _ in it) == 19


def test_bad_arguments(clip: Path) -> None:
    for kwargs in ({"stride": 0}, {"fps": 0}, {"fps": 10, "stride": 2}, {"start": 5, "end": 2}, {"max_side": 1}):
        with pytest.raises(UsageError):
            read_frames(clip, **kwargs)


def test_resized_size() -> None:
    assert resized_size(1920, 1080, 960) == (960, 540)
    assert resized_size(100, 300, 150) == (50, 150)
    assert resized_size(100, 50, 500) == (100, 50)  # never enlarged
    assert resized_size(100, 50, None) == (100, 50)


def test_odd_size_is_padded_to_even_by_repeating_edges(tmp_path: Path) -> None:
    frame = np.zeros((33, 45, 3), np.uint8)
    frame[:, -1] = 200  # last column bright: the padding column must repeat it
    path = write_video(tmp_path / "odd.mp4", (frame for _ in range(3)), fps=10, preset="ultrafast")
    out = read_frames(path)
    assert out.shape == (3, 34, 46, 3)
    assert out[0, :, -1].mean() > 150 and out[0, :, 0].mean() < 30


def test_write_video_rejects_bad_frames(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no frames"):
        write_video(tmp_path / "e.mp4", iter([]), fps=10)
    with pytest.raises(ValueError, match="uint8"):
        write_video(tmp_path / "f.mp4", [np.zeros((8, 8, 3), np.float32)], fps=10)
    with pytest.raises(ValueError, match="first frame"):
        write_video(tmp_path / "g.mp4", [np.zeros((8, 8, 3), np.uint8), np.zeros((10, 8, 3), np.uint8)], fps=10)
    with pytest.raises(ValueError, match="fps"):
        write_video(tmp_path / "h.mp4", [np.zeros((8, 8, 3), np.uint8)], fps=0)
    with pytest.raises(ValueError, match="preset must be one of"):
        write_video(tmp_path / "i.mp4", [np.zeros((8, 8, 3), np.uint8)], fps=10, preset="warp9")
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # atomic: nothing half-written left behind


def test_truncated_video_keeps_exact_frames_before_the_break(tmp_path: Path, caplog) -> None:
    full_path = write_video(tmp_path / "full.mp4", _noise_frames(30, 64, 80), fps=25)
    full = read_frames(full_path)
    data = full_path.read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: int(len(data) * 0.85)])
    with caplog.at_level(logging.WARNING, logger="hmore.io.video"):
        part = read_frames(cut)
    assert 0 < len(part) < 30
    np.testing.assert_array_equal(part, full[: len(part)])  # no garbage, no skipped frame
    assert any("cut.mp4" in r.getMessage() for r in caplog.records)


def test_corrupt_empty_and_missing_files(tmp_path: Path) -> None:
    rnd = tmp_path / "x.mp4"
    rnd.write_bytes(np.random.default_rng(1).bytes(4000))
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    head_only = tmp_path / "head.mp4"
    head_only.write_bytes(write_video(tmp_path / "ok.mp4", _noise_frames(5, 32, 32), fps=5).read_bytes()[:200])
    (tmp_path / "nothing").mkdir()
    for bad in (rnd, empty, head_only, tmp_path / "missing.mp4", tmp_path / "nothing"):
        with pytest.raises(InputError, match=bad.name) as err:
            read_frames(bad)
        assert "\n" not in str(err.value)
    with pytest.raises(InputError, match="x.mp4"):
        probe_video(rnd)


def test_image_folder_natural_order(tmp_path: Path) -> None:
    folder = tmp_path / "frames"
    folder.mkdir()
    for i in (1, 2, 10, 3):
        img = np.full((20, 30, 3), 10 * i, np.uint8)
        cv2.imwrite(str(folder / f"f{i}.png"), img)
    (folder / "notes.txt").write_text("ignored")
    info = probe_video(folder)
    assert (info.kind, info.frames, info.width, info.height) == ("images", 4, 30, 20)
    frames = read_frames(folder)
    assert [int(f[0, 0, 0]) for f in frames] == [10, 20, 30, 100]
    assert read_frames(folder, stride=2, max_side=15).shape == (2, 10, 15, 3)
    cv2.imwrite(str(folder / "f11.png"), np.zeros((5, 5, 3), np.uint8))
    with pytest.raises(InputError, match="f11.png"):
        read_frames(folder)


def test_corrupt_image_in_folder(tmp_path: Path) -> None:
    cv2.imwrite(str(tmp_path / "a1.png"), np.zeros((5, 5, 3), np.uint8))
    (tmp_path / "a2.png").write_bytes(b"not a png")
    with pytest.raises(InputError, match="a2.png"):
        read_frames(tmp_path)


def test_display_rotation_is_applied(tmp_path: Path) -> None:
    import av

    path = tmp_path / "phone.mp4"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=10)
        stream.width, stream.height, stream.pix_fmt = 64, 32, "yuv420p"
        stream.set_display_rotation(90)  # as phones record portrait video
        for _ in range(3):
            img = np.zeros((32, 64, 3), np.uint8)
            img[:, :8] = 255  # a white stripe on the left of the stored frame
            for packet in stream.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    info = probe_video(path)
    assert (info.width, info.height) == (32, 64)
    frames = read_frames(path)
    assert frames.shape == (3, 64, 32, 3)
    assert frames[0, -6:].mean() > 200 and frames[0, :50].mean() < 30  # turned 90 deg counter-clockwise


def test_natural_key() -> None:
    assert sorted(["f10.png", "f2.png", "F1.png"], key=natural_key) == ["F1.png", "f2.png", "f10.png"]


@pytest.mark.shared_data
def test_real_videos(shared_data: Path) -> None:
    ntu = require_file(shared_data, "video", "ntu_two_person_sample.avi")
    info = probe_video(ntu)
    assert (info.width, info.height, info.frames) == (1920, 1080, 72)
    frames = read_frames(ntu, end=6, stride=2, max_side=480)
    assert frames.shape == (3, 270, 480, 3)
    vtest = require_file(shared_data, "video", "vtest.avi")
    assert read_frames(vtest, start=100, end=103).shape == (3, 576, 768, 3)


def test_prefetch_keeps_order_raises_in_place_and_stops_when_closed() -> None:
    import threading

    from hmore.io.video import prefetch

    assert list(prefetch(iter(range(7)), depth=2)) == list(range(7))

    def broken():
        yield 1
        yield 2
        raise InputError("frame 3 is corrupt")

    got = []
    with pytest.raises(InputError, match="frame 3"):
        for item in prefetch(broken()):
            got.append(item)
    assert got == [1, 2]  # the items before the error all arrive first

    closed = threading.Event()
    produced = []

    def endless():
        try:
            k = 0
            while True:
                produced.append(k)
                yield k
                k += 1
        finally:
            closed.set()

    it = prefetch(endless(), depth=3)
    assert [next(it) for _ in range(2)] == [0, 1]
    it.close()  # the consumer stops early: the worker stops and closes the source
    assert closed.wait(5)
    assert not any(t.name == "hmore-prefetch" and t.is_alive() for t in threading.enumerate())
    assert len(produced) <= 2 + 3 + 1  # never more than depth ahead (plus the item in hand)
    with pytest.raises(UsageError, match="depth"):
        next(prefetch([1], depth=0))
