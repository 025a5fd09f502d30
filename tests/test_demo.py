"""`hmore demo`: clip previews (on a hand-made clip) and the whole report (on the generator, tiny size)."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import av
import numpy as np
import pytest

from hmore.cli import main
from hmore.commands.demo import (
    BUILTIN_PANELS,
    build_demo,
    clip_stats,
    parse_size,
    preview_frames,
    write_clip_preview,
)
from hmore.errors import UsageError
from hmore.io.atomic import save_npz_atomic
from hmore.report.draw import PALETTE
from hmore.report.flowviz import flow_to_color


@dataclass
class _FakeClip:
    """A 4-frame 24x32 clip: a 6x6 square (person 1) moving 2 px right per frame on grey; its flow is exact."""

    frames: np.ndarray = field(init=False)
    flow: np.ndarray = field(init=False)
    masks: np.ndarray = field(init=False)
    kp2d: np.ndarray = field(init=False)
    meta: dict = field(default_factory=lambda: {"labels": {"action": ["walk"], "view": 90}, "fps": 10})

    def __post_init__(self) -> None:
        t, h, w = 4, 24, 32
        self.frames = np.full((t, h, w, 3), 128, np.uint8)
        self.masks = np.zeros((t, h, w), np.uint8)
        self.flow = np.zeros((t - 1, h, w, 2), np.float32)
        self.kp2d = np.full((t, 1, 17, 3), np.nan, np.float32)
        for i in range(t):
            x0 = 4 + 2 * i
            self.frames[i, 8:14, x0 : x0 + 6] = (200, 40, 40)
            self.masks[i, 8:14, x0 : x0 + 6] = 1
            if i < t - 1:
                self.flow[i, 8:14, x0 : x0 + 6, 0] = 2.0
            self.kp2d[i, 0, 11] = (x0 + 1, 9, 1)  # left hip
            self.kp2d[i, 0, 13] = (x0 + 1, 13, 1)  # left knee

    def save(self, path: Path) -> Path:
        return save_npz_atomic(path, frames=self.frames, flow=self.flow, masks=self.masks, kp2d=self.kp2d,
                               meta=json.dumps(self.meta))


def test_parse_size():
    assert parse_size("48x64") == (48, 64)
    for bad in ("48", "0x64", "ax3", "4x-2"):
        with pytest.raises(UsageError):
            parse_size(bad)


def test_preview_panels_show_frame_flow_masks_skeleton_and_extras():
    clip = _FakeClip()
    extra = {"twice the flow": clip.flow * 2, "inverted": 255 - clip.frames}
    pics = list(preview_frames(clip, flow_scale=2.0, extra=extra))
    assert len(pics) == 3  # one per frame pair
    img = pics[1]
    h, w, gap = 24, 32, 2
    bar = max(12, round(h / 12))
    assert img.shape == (bar + h, 6 * w + 5 * gap, 3)  # 6 panels, even sizes already

    def panel(k: int) -> np.ndarray:
        return img[bar : bar + h, k * (w + gap) : k * (w + gap) + w]

    np.testing.assert_array_equal(panel(0), clip.frames[1])
    np.testing.assert_array_equal(panel(1), flow_to_color(clip.flow[1], max_mag=2.0))
    np.testing.assert_array_equal(panel(1)[10, 8], [255, 0, 0])  # +x at the scale: red
    np.testing.assert_array_equal(panel(1)[0, 0], [255, 255, 255])  # still background: white
    np.testing.assert_array_equal(panel(2)[10, 8], PALETTE[0])
    np.testing.assert_array_equal(panel(2)[0, 0], 0)
    sk = panel(3)
    assert (sk[0:6] == 57).all()  # the frame, dimmed to 45% so the skeleton stands out
    assert (sk[9:14, 7] == PALETTE[0]).all()  # the hip-knee bone at x = 4 + 2 + 1
    np.testing.assert_array_equal(panel(4)[10, 8], [255, 0, 0])  # twice the flow: clipped at the scale, still red
    np.testing.assert_array_equal(panel(5), 255 - clip.frames[1])


def test_write_clip_preview_writes_npz_mp4_poster_and_stats(tmp_path):
    clip = _FakeClip()
    res = write_clip_preview(clip, tmp_path, name="fake", title="Fake", extra={"hmore world flow": clip.flow})
    assert res.panels == (*BUILTIN_PANELS, "hmore world flow")
    with np.load(res.npz) as z:
        np.testing.assert_array_equal(z["flow"], clip.flow)
    with av.open(str(res.video)) as c:
        frames = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
    assert len(frames) == 3 and frames[0].shape[1] == 5 * 32 + 4 * 2
    assert res.poster.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    st = res.stats
    assert st["size"] == "24x32" and st["frames"] == 4 and st["people"] == 1
    assert st["|flow| mean on people"] == pytest.approx(2.0)
    assert st["|flow| mean"] == pytest.approx(2.0 * 36 / (24 * 32))
    assert st["|flow| max"] == pytest.approx(2.0)
    assert st["labels"] == "action walk, view 90"
    assert clip_stats(clip)["|flow| p99"] == pytest.approx(2.0)
    with pytest.raises(ValueError, match="extra panel 'bad'"):
        write_clip_preview(clip, tmp_path, name="x", title="x", extra={"bad": clip.flow[:, :10]})


def test_demo_command_writes_a_complete_report(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "-o", str(out), "--size", "48x64", "--frames", "6", "--seed", "3", "--video-frames", "6"]) == 0
    printed = capsys.readouterr().out.strip()
    assert Path(printed) == out / "index.html"
    text = (out / "index.html").read_text()
    links = re.findall(r'(?:src|poster)="([^"]+)"', text)
    assert links and all((out / link).is_file() for link in links)
    assert sorted(p.name for p in out.glob("*.npz")) == [
        "cmu_walk.npz", "real_video_pose3d.npz", "real_video_priors.npz", "two_people.npz"]
    for name, people in (("cmu_walk", 1), ("two_people", 2)):
        assert f'src="{name}.mp4"' in text and f'poster="{name}.png"' in text
        with np.load(out / f"{name}.npz") as z:
            assert z["frames"].shape == (6, 48, 64, 3) and z["flow"].shape == (5, 48, 64, 2)
            assert z["kp2d"].shape[1] == people
    assert "hmore demo -o" in text and "--size 48x64 --frames 6 --seed 3" in text
    assert "flow_wheel.png" in text
    assert not list(out.glob(".*tmp*"))  # no temporary files left
    from hmore.weights import list_weights

    # with shipped flow weights the report shows hmore's own flow beside the ground truth, else it says nothing of it
    assert ("hmore world flow" in text) == ("hmore_flow_cpu" in list_weights())
    # the real-video section comes first: its preview plays 5 frame pairs in two rows of panels
    assert "hmore on a real video" in text
    assert text.index("hmore on a real video") < text.index("cmu_walk.mp4")
    assert 'src="real_video.mp4"' in text and 'poster="real_video.png"' in text
    with av.open(str(out / "real_video.mp4")) as c:
        previews = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
    assert len(previews) == 5
    assert previews[0].shape[0] > 2 * 240 and previews[0].shape[1] >= 3 * 320  # 2 rows of 320x240 panels
    with np.load(out / "real_video_priors.npz") as z:
        assert z["kp2d"].shape[0] == 6 and z["kp2d"].shape[1] >= 1  # the juggler is found
        assert (z["masks"] > 0).any()
    with np.load(out / "real_video_pose3d.npz") as z:
        assert z["pose3d"].shape[1:] == (6, 17, 3) and np.isfinite(z["pose3d"]).all()
    for panel in ("frame + 2D pose", "person masks", "world flow", "local flow", "3D skeleton"):
        assert panel in text
    assert "frames/s" in text and "--video-frames 6" in text


def test_demo_without_real_video_says_so_in_the_command(tmp_path):
    index = build_demo(tmp_path, size=(32, 48), num_frames=2, seed=0)
    text = index.read_text()
    assert "hmore on a real video" not in text and "--video none" in text
    assert not (tmp_path / "real_video.mp4").exists()


def test_demo_command_rejects_bad_options(tmp_path, capsys):
    assert main(["demo", "-o", str(tmp_path), "--frames", "1"]) == 2
    assert "at least 2 frames" in capsys.readouterr().err
    assert main(["demo", "-o", str(tmp_path), "--size", "0x64"]) == 2
    assert not list(tmp_path.iterdir())
    (tmp_path / "file").write_text("x")
    assert main(["demo", "-o", str(tmp_path / "file"), "--frames", "2"]) == 2
    assert "not a folder" in capsys.readouterr().err


def test_build_demo_hook_adds_named_panels(tmp_path):
    seen = []

    def panels(name, clip):
        seen.append(name)
        return {"local flow": clip.local_flow()}

    index = build_demo(tmp_path, size=(32, 48), num_frames=3, seed=1, extra_panels=panels,
                       extra_panel_text={"local flow": "flow minus the subject's root motion <here>"})
    assert seen == ["cmu_walk", "two_people"]
    text = index.read_text()
    assert "frame | ground-truth flow | masks | skeleton | local flow" in text
    assert "root motion &lt;here&gt;" in text
    with av.open(str(tmp_path / "cmu_walk.mp4")) as c:
        first = next(c.decode(video=0)).to_ndarray(format="rgb24")
    assert first.shape[1] == 5 * 48 + 4 * 2  # five panels
