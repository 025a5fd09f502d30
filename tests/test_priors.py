"""hmore.priors: BlazePose -> COCO mapping, masks and boundaries, the priors pipeline and `hmore priors`
(with a fake pose backend on generated videos), and MediaPipe on a few real frames."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from conftest import require_file
from hmore.cli import main
from hmore.errors import InputError, UsageError
from hmore.io.video import read_frames, write_video
from hmore.priors.masks import boundaries, instance_mask, resize_mask
from hmore.priors.pipeline import extract_priors, load_priors, save_priors
from hmore.priors.pose import PersonEstimate, PoseEstimator, blazepose_to_coco17, create_estimator
from hmore.skeleton import BLAZEPOSE33, COCO17

COLORS = ((220, 30, 30), (30, 30, 220))  # person 0 red, person 1 blue
H, W = 60, 80


def _rects(t: int) -> list[tuple[int, int, int, int]]:
    """Boxes (x0, y0, x1, y1) of the two people in frame t: red walks right, blue walks left."""
    return [(5 + 2 * t, 10, 17 + 2 * t, 50), (60 - 2 * t, 12, 72 - 2 * t, 52)]


def _frames(T: int):
    for t in range(T):
        img = np.full((H, W, 3), 200, np.uint8)
        for (x0, y0, x1, y1), c in zip(_rects(t), COLORS):
            img[y0:y1, x0:x1] = c
        yield img


class FakePose:
    """Finds the red and blue rectangles; keypoints spread over each box, mask = its pixels; misses blue in the
    frames listed in ``miss``."""

    name = "fake"
    version = "fake-1"

    def __init__(self, miss: tuple[int, ...] = ()) -> None:
        self.miss = miss
        self.t = 0

    def estimate_people(self, frame, boxes=None, *, search=True):
        out = []
        for k, c in enumerate(COLORS):
            if k == 1 and self.t in self.miss:
                continue
            m = (np.abs(frame.astype(int) - c).sum(-1) < 60)
            if m.sum() < 20:
                continue
            ys, xs = np.nonzero(m)
            j = np.arange(17)
            kp = np.stack([xs.min() + (xs.max() - xs.min()) * (j % 3) / 2, ys.min() + (ys.max() - ys.min()) * j / 16,
                           np.full(17, 0.9)], axis=1).astype(np.float32)
            box = np.array([xs.min(), ys.min(), xs.max(), ys.max()], np.float32)
            out.append(PersonEstimate(kp=kp, box=box, mask=m.astype(np.float32), score=0.9))
        self.t += 1
        return out[::-1] if self.t % 2 else out  # any order

    def estimate(self, frame, boxes=None):
        return [p.kp for p in self.estimate_people(frame, boxes)]


def test_blazepose_to_coco17_mapping() -> None:
    lm = np.zeros((33, 3), np.float32)
    lm[:, 0] = np.arange(33)
    lm[:, 2] = np.linspace(0.1, 0.9, 33)
    coco = blazepose_to_coco17(lm)
    expected = [0, 2, 5, 7, 8, 11, 12, 13, 14, 15, 16, 23, 24, 25, 26, 27, 28]
    np.testing.assert_array_equal(coco[:, 0], expected)
    np.testing.assert_allclose(coco[:, 2], lm[expected, 2])  # the joint's own visibility, not a constant
    names = [BLAZEPOSE33.joints[i] for i in expected]
    assert names == list(COCO17.joints)


def test_instance_mask_and_boundaries() -> None:
    a = np.zeros((8, 10), np.float32)
    b = np.zeros((8, 10), np.float32)
    a[1:6, 1:5] = 0.9
    b[1:6, 4:9] = 0.7  # overlaps a in column 4, where a is more probable
    b[7, 0] = 0.4  # below the threshold
    m = instance_mask([a, b], [3, 5])
    assert m.dtype == np.uint8
    assert (m[1:6, 1:5] == 3).all() and (m[1:6, 5:9] == 5).all()
    assert m[7, 0] == 0 and m.sum() == 3 * 20 + 5 * 20
    edges = boundaries(m)
    assert edges.dtype == np.uint8 and set(np.unique(edges)) <= {0, 1}
    assert edges[3, 4:6].any()  # the id change between the two people
    assert edges[3, 0:2].any() and edges[3, 8:10].any()  # person / background on both sides
    assert edges[7].sum() == 0 and edges[3, 2:4].sum() == 0  # background far away and the inside of a person
    assert boundaries(np.zeros((5, 5), np.uint8)).sum() == 0
    assert instance_mask([], [], shape=(4, 4)).shape == (4, 4)
    with pytest.raises(ValueError, match="1..255"):
        instance_mask([a], [0])
    np.testing.assert_array_equal(resize_mask(m, (20, 16))[::2, ::2], m)


def test_fake_backend_fits_the_protocol() -> None:
    assert isinstance(FakePose(), PoseEstimator)
    with pytest.raises(UsageError, match="unknown pose backend"):
        create_estimator("openpose")


def test_pipeline_tracks_masks_and_gaps(tmp_path: Path) -> None:
    video = write_video(tmp_path / "two.mp4", _frames(12), fps=10)
    pr = extract_priors(video, estimator=FakePose(miss=(5, 6)), max_side=None, progress=False)
    assert pr.kp2d.shape == (12, 2, 17, 3) and pr.masks.shape == (12, H, W) == pr.boundaries.shape
    np.testing.assert_array_equal(pr.track_ids, [1, 2])
    assert pr.size == (W, H) and pr.mask_size == (W, H) and pr.fps == pytest.approx(10)
    red = int(np.argmin(pr.kp2d[0, :, 0, 0]))  # red starts on the left
    blue = 1 - red
    assert pr.interpolated[:, blue].tolist() == [t in (5, 6) for t in range(12)]
    assert pr.valid.all()
    for t in range(12):
        for p, rect in ((red, _rects(t)[0]), (blue, _rects(t)[1])):
            x0, y0, x1, y1 = rect
            cx, cy = (x0 + x1) // 2, (y0 + y1) // 2
            if not pr.interpolated[t, p]:
                assert pr.masks[t, cy, cx] == pr.track_ids[p]  # mask id == track id of the person there
                assert abs(pr.kp2d[t, p, 0, 0] - x0) <= 2
            else:
                assert pr.masks[t, cy, cx] == 0  # no mask for an interpolated person
        assert pr.boundaries[t].any()
    # interpolation lands between the neighbours
    assert pr.kp2d[4, blue, 0, 0] > pr.kp2d[5, blue, 0, 0] > pr.kp2d[7, blue, 0, 0]
    loaded = load_priors(save_priors(tmp_path / "priors.npz", pr))
    np.testing.assert_array_equal(loaded.masks, pr.masks)
    np.testing.assert_array_equal(loaded.kp2d, pr.kp2d)
    assert loaded.backend_version == "fake-1" and loaded.size == (W, H)


def test_pipeline_scales_keypoints_to_source_pixels(tmp_path: Path) -> None:
    video = write_video(tmp_path / "two.mp4", _frames(4), fps=10)
    full = extract_priors(video, estimator=FakePose(), max_side=None, progress=False)
    half = extract_priors(video, estimator=FakePose(), max_side=40, progress=False)
    assert half.mask_size == (40, 30) and half.masks.shape == (4, 30, 40)
    np.testing.assert_allclose(half.kp2d[..., :2], full.kp2d[..., :2], atol=3.5)  # source pixels (1 px = 2 there)


def test_cli_single_video_and_resume(tmp_path: Path, monkeypatch, capsys) -> None:
    import hmore.priors.pose as pose_mod

    made = []
    monkeypatch.setattr(pose_mod, "create_estimator", lambda name, **kw: made.append(kw) or FakePose())
    video = write_video(tmp_path / "two.mp4", _frames(8), fps=10)
    out = tmp_path / "out"
    assert main(["priors", str(video), "-o", str(out), "--max-side", "0", "--workers", "1"]) == 0
    assert "done, 8 frames, 2 people" in capsys.readouterr().out
    assert made[-1]["workers"] == 1
    for name in ("priors.npz", "preview.mp4", "index.html", "meta.json"):
        assert (out / name).is_file(), name
    assert read_frames(out / "preview.mp4").shape[0] == 8
    assert "preview.mp4" in (out / "index.html").read_text()
    assert main(["priors", str(video), "-o", str(out), "--max-side", "0"]) == 0
    assert "skipped" in capsys.readouterr().out
    # the same content under another name comes from the cache
    copy = tmp_path / "copy.mp4"
    copy.write_bytes(video.read_bytes())
    assert main(["priors", str(copy), "-o", str(tmp_path / "out2"), "--cache-dir", str(out / ".cache"),
                 "--max-side", "0"]) == 0
    assert "cached" in capsys.readouterr().out
    meta = json.loads((out / "meta.json").read_text())
    assert meta["backend_version"] == "fake-1" and set(meta["timings_s"]) >= {"decode", "pose", "track", "masks"}
    cached = list((out / ".cache").glob("*.npz"))
    assert len(cached) == 1 and cached[0].read_bytes() == (out / "priors.npz").read_bytes()  # written once, copied


def test_priors_command_builds_only_its_parser() -> None:
    import subprocess
    import sys

    from hmore.cli import COMMANDS, build_parser, command_of

    assert command_of(["-v", "priors", "clip.mp4", "-o", "out"]) == "priors"
    assert command_of(["--version"]) is None and command_of(["nonsense", "x"]) is None
    only = build_parser(only="priors")
    assert only.parse_args(["priors", "a.mp4", "-o", "o"]).input == Path("a.mp4")
    with pytest.raises(SystemExit):
        only.parse_args(["flow", "a.mp4", "-o", "o"])  # the other subcommands are not there
    full = build_parser()
    assert set(full._subparsers._group_actions[0].choices) == set(COMMANDS)
    # torch (seconds to import) is not loaded to run `hmore priors` (it needs MediaPipe only)
    code = ("import sys; from hmore.cli import build_parser, command_of; "
            "build_parser(only=command_of(['priors', 'x.mp4'])); print('torch' in sys.modules)")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0 and p.stdout.strip() == "False", p.stderr[-2000:]
    # nor for the list of commands (`hmore --help`), which builds no subcommand's arguments
    code = ("import sys; from hmore.cli import main\ntry: main(['--help'])\nexcept SystemExit: pass\n"
            "print('torch' in sys.modules)")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0 and p.stdout.strip().splitlines()[-1] == "False", p.stderr[-2000:]
    assert all(name in p.stdout for name in COMMANDS)  # every command is listed


def test_cli_folder_shards_and_bad_video(tmp_path: Path, monkeypatch, capsys) -> None:
    import hmore.priors.pose as pose_mod

    monkeypatch.setattr(pose_mod, "create_estimator", lambda name, **kw: FakePose())
    folder = tmp_path / "videos"
    for name in ("a.mp4", "b.mp4", "sub/c.mp4"):
        write_video(folder / name, _frames(4), fps=10)
    out = tmp_path / "out"
    assert main(["priors", str(folder), "-o", str(out), "--shard", "1/2", "--no-preview"]) == 0
    assert sorted(p.parent.relative_to(out).as_posix() for p in out.rglob("priors.npz")) == ["b"]
    assert main(["priors", str(folder), "-o", str(out), "--shard", "0/2", "--no-preview"]) == 0
    assert sorted(p.parent.relative_to(out).as_posix() for p in out.rglob("priors.npz")) == ["a", "b", "sub/c"]
    (folder / "broken.mp4").write_bytes(b"\x00" * 100)
    capsys.readouterr()
    assert main(["priors", str(folder), "-o", str(out), "--no-preview"]) == 1  # the others still done
    text = capsys.readouterr().out
    assert "broken.mp4: failed" in text and text.count("skipped") == 3


def test_cli_image_folder_is_one_video(tmp_path: Path, monkeypatch, capsys) -> None:
    import cv2

    import hmore.priors.pose as pose_mod

    monkeypatch.setattr(pose_mod, "create_estimator", lambda name, **kw: FakePose())
    folder = tmp_path / "frames"
    folder.mkdir()
    for t, img in enumerate(_frames(5)):
        cv2.imwrite(str(folder / f"f{t}.png"), cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
    out = tmp_path / "out"
    assert main(["priors", str(folder), "-o", str(out), "--no-preview", "--stride", "2"]) == 0
    pr = load_priors(out / "priors.npz")
    assert pr.num_frames == 3 and pr.num_people == 2
    np.testing.assert_array_equal(pr.frame_index, [0, 2, 4])
    assert pr.fps == pytest.approx(15)  # image folders are taken as 30 fps


def test_cli_errors(tmp_path: Path, capsys) -> None:
    assert main(["priors", str(tmp_path / "nope.mp4"), "-o", str(tmp_path / "o")]) == 1
    assert "no such file" in capsys.readouterr().err
    assert main(["priors", str(tmp_path), "-o", str(tmp_path / "o"), "--shard", "2/2"]) == 2
    assert main(["priors", str(tmp_path), "-o", str(tmp_path / "o"), "--backend", "file"]) == 2
    assert main(["priors", str(tmp_path), "-o", str(tmp_path / "o"), "--workers", "0"]) == 2
    assert "--workers must be >= 1" in capsys.readouterr().err
    bad = tmp_path / "x.mp4"
    bad.write_bytes(np.random.default_rng(0).bytes(3000))
    assert main(["priors", str(bad), "-o", str(tmp_path / "o"), "--backend", "file", "--keypoints",
                 str(tmp_path / "k.json")]) == 1
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("hmore priors: error:")


def test_file_backend_through_cli(tmp_path: Path, capsys) -> None:
    video = write_video(tmp_path / "two.mp4", _frames(4), fps=10)
    joints = np.stack([np.arange(17) * 2.0, np.arange(17) * 3.0, np.full(17, 0.9)], axis=1)  # (17, 3)
    entries = [{"image_id": t, "keypoints": (joints + [10.0 + t, 20.0, 0]).ravel().tolist(), "score": 1.0}
               for t in (0, 2, 3)]  # frame 1 missing from the file
    (tmp_path / "k.json").write_text(json.dumps(entries))
    out = tmp_path / "o"
    assert main(["priors", str(video), "-o", str(out), "--backend", "file", "--keypoints", str(tmp_path / "k.json"),
                 "--max-side", "0", "--no-preview"]) == 0
    pr = load_priors(out / "priors.npz")
    assert pr.kp2d.shape == (4, 1, 17, 3) and pr.masks.max() == 0  # no masks from a keypoint file
    assert pr.interpolated[:, 0].tolist() == [False, True, False, False]
    assert pr.kp2d[1, 0, 0, 0] == pytest.approx(11.0)


def test_load_priors_errors(tmp_path: Path) -> None:
    np.savez(tmp_path / "other.npz", kp2d=np.zeros((2, 1, 17, 3)))
    with pytest.raises(InputError, match="missing"):
        load_priors(tmp_path / "other.npz")
    with pytest.raises(InputError, match="no such file"):
        load_priors(tmp_path / "none.npz")


@pytest.mark.shared_data
def test_mediapipe_finds_both_people_on_ntu(shared_data: Path) -> None:
    pytest.importorskip("mediapipe", reason="MediaPipe backend not installed (pip install hmore[priors])")
    from hmore.priors.pose import MediaPipePose

    video = require_file(shared_data, "video", "ntu_two_person_sample.avi")
    with MediaPipePose() as est:
        pr = extract_priors(video, estimator=est, end=4, progress=False)  # 4 frames: the two are apart there
    assert pr.num_people == 2 and pr.valid.all() and not pr.interpolated.any()
    assert pr.size == (1920, 1080) and pr.mask_size == (960, 540)
    hips = pr.kp2d[:, :, 11:13, 0].mean(-1)  # (T, P) mid-hip x, source pixels
    assert np.abs(hips[:, 0] - hips[:, 1]).min() > 100  # two different people, side by side
    assert (np.abs(np.diff(hips, axis=0)) < 40).all()  # each id stays on its person
    conf = pr.kp2d[..., 2]
    assert conf.min() >= 0 and conf.max() <= 1 and conf.std() > 0.01  # real per-joint confidences
    for t in range(4):
        assert set(np.unique(pr.masks[t])) == {0, 1, 2}
        for p in range(2):
            x, y = (pr.kp2d[t, p, 11:13, :2].mean(0) / 2).astype(int)  # mid-hip in mask pixels
            assert pr.masks[t, y, x] == pr.track_ids[p]


@pytest.mark.shared_data
def test_mediapipe_parallel_workers_give_the_same_priors(shared_data: Path) -> None:
    pytest.importorskip("mediapipe", reason="MediaPipe backend not installed (pip install hmore[priors])")
    from hmore.priors.pose import MediaPipePose

    video = require_file(shared_data, "video", "ntu_two_person_sample.avi")
    runs = []
    for workers in (1, 2):
        with MediaPipePose(workers=workers) as est:
            runs.append(extract_priors(video, estimator=est, end=3, max_side=480, progress=False))
            assert len(est._fitted) == (2 if workers == 2 else 0)  # the last frame's two fits ran in parallel
    one, two = runs
    assert one.num_people == 2  # two tracked people: their fits run in parallel from the second frame on
    for name in ("kp2d", "valid", "track_ids", "masks", "boundaries"):
        np.testing.assert_array_equal(getattr(one, name), getattr(two, name), err_msg=name)
    with pytest.raises(UsageError, match="workers"):
        MediaPipePose(workers=0)


def test_parallel_graphs_keep_order_and_never_share_a_graph() -> None:
    import threading
    import time
    from concurrent.futures import ThreadPoolExecutor

    from hmore.priors.pose import _Graphs

    class Graph:
        def __init__(self) -> None:
            self.busy = False
            self.calls = 0
            self.overlap = False
            self.closed = False

        def close(self) -> None:
            self.closed = True

    lock = threading.Lock()
    running = [0, 0]  # now, most at once

    def work(graph: Graph, item: int) -> int:
        if graph.busy:
            graph.overlap = True
        graph.busy = True
        with lock:
            running[0] += 1
            running[1] = max(running[1], running[0])
        time.sleep(0.01 * (item % 3))
        graph.calls += 1
        with lock:
            running[0] -= 1
        graph.busy = False
        return item * item

    graphs = [Graph(), Graph()]
    with ThreadPoolExecutor(3) as pool:  # more threads than graphs: the graphs are what limits
        par = _Graphs(graphs, pool)
        assert par.map(work, list(range(9))) == [k * k for k in range(9)]
    assert not any(g.overlap for g in graphs) and sum(g.calls for g in graphs) == 9 and running[1] <= 2
    seq = _Graphs([Graph(), Graph()], None)
    assert seq.map(work, [1, 2, 3]) == [1, 4, 9] and seq._graphs[1].calls == 0  # no pool: the first graph, in turn
    par.close()
    assert all(g.closed for g in graphs)


@pytest.mark.shared_data
def test_mediapipe_tiles_find_small_pedestrians(shared_data: Path) -> None:
    pytest.importorskip("mediapipe", reason="MediaPipe backend not installed (pip install hmore[priors])")
    from hmore.priors.pose import MediaPipePose

    frame = read_frames(require_file(shared_data, "video", "vtest.avi"), end=1)[0]  # 768x576, people ~100 px
    with MediaPipePose() as est:
        people = est.estimate_people(frame)
    with MediaPipePose(tiles=()) as est:
        whole = est.estimate_people(frame)
    assert len(people) >= 3 and len(people) > len(whole)
    for p in people:
        height = p.box[3] - p.box[1]
        assert 30 < height < 250  # pedestrians, not a whole-frame hallucination
        assert p.mask is not None and p.mask.shape == frame.shape[:2]


def _coco_person(shared_data: Path, image_id: int) -> tuple[Path, np.ndarray]:
    root = shared_data / "keypoints" / "coco"
    data = json.loads(require_file(root, "test_coco.json").read_text())
    name = next(i["file_name"] for i in data["images"] if i["id"] == image_id)
    gt = [a for a in data["annotations"] if a["image_id"] == image_id and a["num_keypoints"] > 0]
    assert len(gt) == 1
    return require_file(root, name), np.asarray(gt[0]["keypoints"], np.float64).reshape(17, 3)


@pytest.mark.shared_data
def test_single_image_with_one_person_returns_that_person(shared_data: Path, tmp_path: Path, capsys) -> None:
    pytest.importorskip("mediapipe", reason="MediaPipe backend not installed (pip install hmore[priors])")
    image, gt = _coco_person(shared_data, 785)  # one skier, all 17 joints annotated
    out = tmp_path / "out"
    assert main(["priors", str(image), "-o", str(out), "--no-preview"]) == 0
    assert "1 frames, 1 people" in capsys.readouterr().out
    pr = load_priors(out / "priors.npz")
    assert pr.kp2d.shape == (1, 1, 17, 3) and pr.valid.all()
    kp = pr.kp2d[0, 0]
    torso = np.linalg.norm(gt[5, :2] - gt[12, :2])
    err = np.linalg.norm(kp[:, :2] - gt[:, :2], axis=1)
    assert ((err < 0.2 * torso) & (kp[:, 2] > 0)).mean() >= 0.8  # PCK@0.2 of that person
    ys, xs = np.nonzero(pr.masks[0] == pr.track_ids[0])
    assert xs.min() < gt[:, 0].min() + 20 and xs.max() > gt[:, 0].max() - 20  # the mask covers the person


@pytest.mark.shared_data
def test_legs_only_crop_gives_legs_only(shared_data: Path) -> None:
    pytest.importorskip("mediapipe", reason="MediaPipe backend not installed (pip install hmore[priors])")
    import cv2

    from hmore.priors.pose import MediaPipePose

    image, gt = _coco_person(shared_data, 785)
    frame = cv2.cvtColor(cv2.imread(str(image)), cv2.COLOR_BGR2RGB)
    top = int(gt[11:13, 1].max()) + 10  # just below the hips: knees, ankles and skis only
    legs = np.ascontiguousarray(frame[top:])
    with MediaPipePose() as est:
        people = est.estimate_people(legs)
    assert len(people) <= 1
    for p in people:
        assert (p.kp[:13] == 0).all()  # no face, arms or hips placed on the legs
        shift = gt[13:, :2] - [0, top]
        assert (np.linalg.norm(p.kp[13:, :2] - shift, axis=1)[p.kp[13:, 2] > 0] < 40).all()


def test_tiny_and_thin_frames_never_crash_the_proposals() -> None:
    pytest.importorskip("mediapipe", reason="MediaPipe backend not installed (pip install hmore[priors])")
    from hmore.priors.pose import MediaPipePose

    rng = np.random.default_rng(0)
    for detector in ("blazepose", "hog"):
        with MediaPipePose(detector=detector) as est:
            for shape in ((1, 1), (16, 2000), (2000, 16), (33, 17), (17, 33), (130, 4000)):
                people = est.estimate_people(rng.integers(0, 255, (*shape, 3), dtype=np.uint8))
                assert isinstance(people, list)
                for p in people:
                    assert p.kp.shape == (17, 3) and np.isfinite(p.kp).all()
