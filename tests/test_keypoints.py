"""hmore.io.keypoints: every supported file format, written here by hand, read into COCO-17; malformed files fail."""

from __future__ import annotations

import json
import os
import pickle
from pathlib import Path

import numpy as np
import pytest

from conftest import require_file
from hmore.errors import InputError
from hmore.io.keypoints import LAYOUT_TO_COCO17, read_keypoints, read_pyskl, to_coco17


def _coco_person(cx: float, cy: float, score: float = 0.8) -> np.ndarray:
    """(17, 3) with joint j at (cx + j, cy + 2 j): positions identify joints."""
    j = np.arange(17, dtype=np.float64)
    return np.stack([cx + j, cy + 2 * j, np.full(17, score)], axis=1)


def test_coco_results_frames_kept_and_people_tracked(tmp_path: Path) -> None:
    entries = []
    for t in range(6):
        if t == 2:
            continue  # nobody detected in frame 2: it must stay as an empty frame
        people = [(100 + 3 * t, 50), (300 - 3 * t, 60)]
        if t % 2:
            people.reverse()  # detections come in any order
        for cx, cy in people:
            entries.append({"image_id": t, "category_id": 1, "keypoints": _coco_person(cx, cy).ravel().tolist(),
                            "score": 0.9})
    path = tmp_path / "results.json"
    path.write_text(json.dumps(entries))
    seq = read_keypoints(path)
    assert seq.source == "coco_results" and seq.tracked
    assert seq.kp2d.shape == (6, 2, 17, 3)
    assert seq.valid.tolist() == [[True, True], [True, True], [False, False], [True, True], [True, True],
                                  [True, True]]
    np.testing.assert_array_equal(seq.frame_index, np.arange(6))
    left = int(np.argmin(seq.kp2d[0, :, 0, 0]))
    np.testing.assert_allclose(seq.kp2d[:, left, 0, 0][seq.valid[:, left]], [100, 103, 109, 112, 115])
    untracked = read_keypoints(path, track=False)
    assert not untracked.tracked and untracked.kp2d[1, 0, 0, 0] == pytest.approx(297)  # file order kept


def test_coco_ground_truth_annotations(tmp_path: Path) -> None:
    kp = _coco_person(10, 20)
    kp[:, 2] = 2
    kp[3] = [0, 0, 0]  # unlabelled joint
    kp[4, 2] = 1  # labelled but occluded: still a known position
    data = {
        "images": [{"id": 7, "file_name": "b.jpg", "width": 640, "height": 480},
                   {"id": 3, "file_name": "a.jpg", "width": 640, "height": 480}],
        "annotations": [
            {"id": 1, "image_id": 7, "keypoints": kp.ravel().tolist(), "num_keypoints": 16},
            {"id": 2, "image_id": 7, "keypoints": [0] * 51, "num_keypoints": 0},  # crowd-like: skipped
        ],
        "categories": [{"id": 1, "name": "person"}],
    }
    path = tmp_path / "gt.json"
    path.write_text(json.dumps(data))
    seq = read_keypoints(path, track=False)
    assert seq.source == "coco_annotations" and seq.image_size == (640, 480)
    assert seq.kp2d.shape == (2, 1, 17, 3)
    assert seq.valid.tolist() == [[False], [True]]  # a.jpg (no person) first, by file name
    scores = seq.kp2d[1, 0, :, 2]
    assert scores[3] == 0 and scores[4] == 1 and scores.sum() == 16


def test_alphapose_halpe26_with_track_ids(tmp_path: Path) -> None:
    entries = []
    for t in (0, 1, 3):  # frame 2 has no detection
        for idx, cx in ((7, 100), (3, 300)):
            halpe = np.concatenate([_coco_person(cx, 40), np.full((9, 3), 5.0)])  # 26 joints, COCO first
            entries.append({"image_id": f"{t}.jpg", "category_id": 1, "keypoints": halpe.ravel().tolist(),
                            "score": 2.5, "box": [0, 0, 10, 10], "idx": idx})
    path = tmp_path / "alphapose-results.json"
    path.write_text(json.dumps(entries))
    seq = read_keypoints(path)
    assert seq.source == "alphapose" and not seq.tracked
    np.testing.assert_array_equal(seq.track_ids, [3, 7])
    assert seq.kp2d.shape == (4, 2, 17, 3)
    assert seq.valid[:, 0].tolist() == [True, True, False, True]
    np.testing.assert_allclose(seq.kp2d[0, 0], _coco_person(300, 40), rtol=1e-6)
    np.testing.assert_allclose(seq.kp2d[3, 1], _coco_person(100, 40), rtol=1e-6)


def _openpose_file(path: Path, people: list[np.ndarray]) -> None:
    data = {"version": 1.3, "people": [{"person_id": [-1], "pose_keypoints_2d": p.ravel().tolist()} for p in people]}
    path.write_text(json.dumps(data))


def test_openpose_body25_and_coco18_mapping(tmp_path: Path) -> None:
    for layout, n in (("body25", 25), ("coco18", 18)):
        folder = tmp_path / layout
        folder.mkdir()
        person = np.stack([np.arange(n, dtype=float), np.arange(n, dtype=float) * 10, np.ones(n)], axis=1)
        _openpose_file(folder / "clip_000000000000_keypoints.json", [person])
        _openpose_file(folder / "clip_000000000002_keypoints.json", [person + [1, 0, 0]])  # file 1 missing
        seq = read_keypoints(folder)
        assert seq.source == "openpose" and seq.kp2d.shape == (3, 1, 17, 3)
        assert seq.valid[:, 0].tolist() == [True, False, True]
        expected = [0, 16, 15, 18, 17, 5, 2, 6, 3, 7, 4, 12, 9, 13, 10, 14, 11] if n == 25 else \
            [0, 15, 14, 17, 16, 5, 2, 6, 3, 7, 4, 11, 8, 12, 9, 13, 10]
        np.testing.assert_array_equal(seq.kp2d[0, 0, :, 0], expected)
        # COCO order: left_shoulder (5) is OpenPose's LShoulder (5), right_shoulder (6) its RShoulder (2)
        assert seq.kp2d[0, 0, 5, 0] == 5 and seq.kp2d[0, 0, 6, 0] == 2
    single = read_keypoints(tmp_path / "body25" / "clip_000000000000_keypoints.json")
    assert single.kp2d.shape == (1, 1, 17, 3)


def _pyskl_ann(name: str, M: int = 2, T: int = 5, V: int = 17) -> dict:
    rng = np.random.default_rng(0)
    kp = rng.uniform(0, 100, (M, T, V, 2)).astype(np.float32)
    score = rng.uniform(0.1, 1, (M, T, V)).astype(np.float32)
    kp[1, 2] = 0  # person 2 absent in frame 2
    score[1, 2] = 0
    return {"frame_dir": name, "label": 3, "img_shape": (480, 640), "total_frames": T, "keypoint": kp,
            "keypoint_score": score}


def test_pyskl_pickles(tmp_path: Path) -> None:
    one = tmp_path / "one.pkl"
    ann = _pyskl_ann("S001")
    one.write_bytes(pickle.dumps(ann))
    seq = read_keypoints(one)
    assert seq.source == "pyskl" and seq.image_size == (640, 480)
    assert seq.kp2d.shape == (5, 2, 17, 3)
    np.testing.assert_allclose(seq.kp2d[3, 1, :, :2], ann["keypoint"][1, 3])
    np.testing.assert_allclose(seq.kp2d[3, 1, :, 2], ann["keypoint_score"][1, 3])
    assert seq.valid[:, 1].tolist() == [True, True, False, True, True]
    many = tmp_path / "many.pkl"
    many.write_bytes(pickle.dumps({"split": {"train": ["a", "b"]}, "annotations": [_pyskl_ann("a"), _pyskl_ann("b")]}))
    assert len(read_pyskl(many)) == 2
    with pytest.raises(InputError, match="2 clips"):
        read_keypoints(many)
    assert read_keypoints(many, clip="b").num_frames == 5
    assert read_keypoints(many, clip=1).num_frames == 5


class _Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


def test_pyskl_refuses_code_and_bad_shapes(tmp_path: Path) -> None:
    evil = tmp_path / "evil.pkl"
    evil.write_bytes(pickle.dumps({"annotations": [_Evil()]}))
    with pytest.raises(InputError, match="refusing"):
        read_keypoints(evil)
    bad = tmp_path / "bad.pkl"
    ann = _pyskl_ann("x", V=14)
    bad.write_bytes(pickle.dumps(ann))
    with pytest.raises(InputError, match="found 14 joints"):
        read_keypoints(bad)


def test_npz_and_priors_roundtrip(tmp_path: Path) -> None:
    kp = np.random.default_rng(0).uniform(0, 50, (4, 2, 17, 3)).astype(np.float32)
    np.savez(tmp_path / "kp.npz", kp2d=kp, track_ids=np.array([5, 9]), fps=np.float64(25), size=np.array([64, 48]))
    seq = read_keypoints(tmp_path / "kp.npz")
    np.testing.assert_array_equal(seq.kp2d, kp)
    np.testing.assert_array_equal(seq.track_ids, [5, 9])
    assert seq.fps == 25 and seq.image_size == (64, 48)
    np.save(tmp_path / "single.npy", kp[:, 0])
    assert read_keypoints(tmp_path / "single.npy").kp2d.shape == (4, 1, 17, 3)


def test_priors_file_is_readable(tmp_path: Path) -> None:
    from hmore.priors.pipeline import Priors, save_priors

    T, P = 3, 2
    kp = np.ones((T, P, 17, 3), np.float32)
    pr = Priors(kp2d=kp, valid=np.ones((T, P), bool), interpolated=np.eye(T, P, dtype=bool),
                track_ids=np.array([1, 2]), masks=np.zeros((T, 4, 6), np.uint8),
                boundaries=np.zeros((T, 4, 6), np.uint8), fps=10.0, size=(12, 8), mask_size=(6, 4),
                frame_index=np.arange(T), backend="x", backend_version="x-1", source="v.mp4")
    seq = read_keypoints(save_priors(tmp_path / "priors.npz", pr))
    assert seq.source == "hmore_priors" and seq.image_size == (12, 8) and seq.fps == 10
    np.testing.assert_array_equal(seq.interpolated, pr.interpolated)


def test_layouts_and_errors(tmp_path: Path) -> None:
    assert to_coco17(np.zeros((2, 33, 3))).shape == (2, 17, 3)
    with pytest.raises(InputError, match="found 20 joints"):
        to_coco17(np.zeros((20, 3)))
    with pytest.raises(InputError, match="found 17 joints per person, expected 25 for layout body25"):
        to_coco17(np.zeros((17, 3)), layout="body25")
    with pytest.raises(InputError, match="unknown keypoint layout"):
        to_coco17(np.zeros((17, 3)), layout="smpl24")
    assert set(LAYOUT_TO_COCO17) >= {"coco17", "coco18", "body25", "halpe26"}

    def bad(name: str, text: str) -> Path:
        p = tmp_path / name
        p.write_text(text)
        return p

    cases = {
        "notjson.json": ("{oops", "not valid JSON"),
        "emptylist.json": ("[]", "no detections"),
        "empty.json": ("", "empty file"),
        "wrongkeys.json": (json.dumps([{"image": 1}]), "image_id"),
        "odd.json": (json.dumps([{"image_id": 0, "keypoints": [1, 2]}]), "multiple of 3"),
        "joints20.json": (json.dumps([{"image_id": 0, "keypoints": [1.0] * 60}]), "found 20 joints"),
        "other.json": (json.dumps({"hello": 1}), "not a COCO"),
        "mixed.json": (json.dumps([{"image_id": 0, "keypoints": [1.0] * 51},
                                   {"image_id": 1, "keypoints": [1.0] * 54}]), "different joint counts"),
        "nan.json": ("[{\"image_id\": 0, \"keypoints\": [NaN" + ", 1.0" * 50 + "]}]", "NaN"),
        "keypoints.txt": ("x", "unknown keypoint file type"),
    }
    for name, (text, msg) in cases.items():
        with pytest.raises(InputError, match=msg) as err:
            read_keypoints(bad(name, text))
        assert "\n" not in str(err.value)
    with pytest.raises(InputError, match="no such file"):
        read_keypoints(tmp_path / "missing.json")
    (tmp_path / "emptydir").mkdir()
    with pytest.raises(InputError, match="no OpenPose"):
        read_keypoints(tmp_path / "emptydir")
    with pytest.raises(InputError, match="no 'kp2d'"):
        np.savez(tmp_path / "nokp.npz", other=np.zeros(3))
        read_keypoints(tmp_path / "nokp.npz")
    (tmp_path / "broken.npz").write_bytes(b"PK\x03\x04garbage")
    with pytest.raises(InputError, match="broken.npz"):
        read_keypoints(tmp_path / "broken.npz")


@pytest.mark.shared_data
def test_shared_coco_annotations(shared_data: Path) -> None:
    path = require_file(shared_data, "keypoints", "coco", "test_coco.json")
    seq = read_keypoints(path, track=False)
    assert seq.num_frames == 4
    assert seq.valid.sum() == 12  # 14 annotations, 2 of them without keypoints
    assert seq.image_size == (640, 425)
