"""hmore.priors.tracking: ids stay with people, gaps are interpolated and flagged, frames are never dropped."""

from __future__ import annotations

import numpy as np
import pytest

from hmore.errors import InputError
from hmore.priors.tracking import (
    Tracker,
    TrackerConfig,
    box_iou,
    keypoint_box,
    keypoint_distance,
    track,
)

# A standing person template: 17 COCO joints (x, y) around the origin, 170 px tall.
_TEMPLATE = np.array([
    [0, -80], [-4, -84], [4, -84], [-9, -82], [9, -82], [-20, -60], [20, -60], [-25, -30], [25, -30], [-27, 0],
    [27, 0], [-12, 0], [12, 0], [-12, 40], [12, 40], [-12, 85], [12, 85],
], np.float64)


def _person(cx: float, cy: float, score: float = 0.9) -> np.ndarray:
    kp = np.zeros((17, 3))
    kp[:, :2] = _TEMPLATE + [cx, cy]
    kp[:, 2] = score
    return kp


def _two_walkers(T: int = 20) -> np.ndarray:
    """(T, 2, 17, 3): one walks right from x=100, one walks left from x=400, 6 px per frame (they never meet)."""
    t = np.arange(T)
    return np.stack([
        np.stack([_person(100 + 6 * k, 200) for k in t]),
        np.stack([_person(400 - 6 * k, 210) for k in t]),
    ], axis=1)


def test_box_iou_hand_values() -> None:
    a = np.array([[0, 0, 10, 10]])
    b = np.array([[0, 0, 10, 10], [5, 0, 15, 10], [20, 20, 30, 30], [0, 0, 5, 5]])
    np.testing.assert_allclose(box_iou(a, b), [[1.0, 50 / 150, 0.0, 25 / 100]])


def test_keypoint_box_and_distance() -> None:
    kp = _person(50, 100)
    kp[0, 2] = 0.0  # nose unseen: not in the box
    np.testing.assert_allclose(keypoint_box(kp), [50 - 27, 100 - 84, 50 + 27, 100 + 85])
    assert keypoint_box(np.zeros((17, 3))) is None
    moved = _person(53, 104)
    assert keypoint_distance(_person(50, 100), moved, min_score=0.2) == pytest.approx(5.0)
    swapped = _person(50, 100)[[0, 2, 1, 4, 3, 6, 5, 8, 7, 10, 9, 12, 11, 14, 13, 16, 15]]
    assert keypoint_distance(_person(50, 100), swapped, min_score=0.2) == pytest.approx(0.0)  # left/right swap
    assert keypoint_distance(_person(0, 0, score=0.1), moved, min_score=0.2) is None


def test_shuffled_detections_keep_their_ids() -> None:
    gt = _two_walkers(20)
    rng = np.random.default_rng(0)
    detections, orders = [], []
    for t in range(20):
        order = rng.permutation(2)
        detections.append([gt[t, p] for p in order])
        orders.append(order)
    tr = track(detections)
    assert tr.kp2d.shape == (20, 2, 17, 3) and tr.num_people == 2
    np.testing.assert_array_equal(tr.track_ids, [1, 2])
    assert tr.valid.all() and not tr.interpolated.any()
    # the person seen first in frame 0 is track 1; each track follows one walker throughout
    for p in range(2):
        walker = np.argmin([np.abs(tr.kp2d[0, p, :, 0] - gt[0, q, :, 0]).max() for q in range(2)])
        np.testing.assert_allclose(tr.kp2d[:, p], gt[:, walker], atol=1e-4)
        # det_index points back at the right detection in each shuffled frame
        for t in range(20):
            assert orders[t][tr.det_index[t, p]] == walker


def test_gaps_are_interpolated_and_flagged_and_empty_frames_kept() -> None:
    gt = _two_walkers(20)
    detections = [[gt[t, 0], gt[t, 1]] for t in range(20)]
    detections[5] = [gt[5, 1]]  # walker 0 missing in frames 5-7
    detections[6] = []  # nobody in frame 6
    detections[7] = [gt[7, 1]]
    detections[19] = []  # nobody in the last frame
    tr = track(detections, config=TrackerConfig(max_interp_gap=5))
    assert tr.num_frames == 20 and tr.num_people == 2
    p0 = int(np.argmin(tr.kp2d[0, :, 0, 0]))  # walker 0 starts on the left
    p1 = 1 - p0
    assert tr.interpolated[:, p0].tolist() == [t in (5, 6, 7) for t in range(20)]
    assert tr.interpolated[:, p1].tolist() == [t == 6 for t in range(20)]
    np.testing.assert_allclose(tr.kp2d[5:8, p0, :, :2], gt[5:8, 0, :, :2], atol=1e-3)  # linear motion: exact
    assert not tr.valid[19].any()  # trailing empty frame kept, nobody in it
    np.testing.assert_array_equal(tr.det_index[6], [-1, -1])
    np.testing.assert_array_equal(tr.kp2d[19], 0)


def test_long_gap_not_interpolated_and_late_return_gets_a_new_id() -> None:
    gt = _two_walkers(40)
    cfg = TrackerConfig(max_interp_gap=2, max_age=6)
    dets = [[gt[t, 0]] for t in range(40)]
    for t in range(10, 15):  # a 5-frame gap: too long to fill, short enough to keep the id
        dets[t] = []
    for t in range(25, 35):  # a 10-frame gap: longer than max_age, the person comes back with a new id
        dets[t] = []
    tr = track(dets, config=cfg)
    assert tr.num_people == 2
    assert tr.valid[:, 0].tolist() == [t < 25 and not 10 <= t < 15 for t in range(40)]
    assert tr.valid[:, 1].tolist() == [t >= 35 for t in range(40)]
    assert not tr.interpolated.any()


def test_min_track_len_drops_flickers() -> None:
    gt = _two_walkers(10)
    dets = [[gt[t, 0]] for t in range(10)]
    dets[4] = dets[4] + [_person(700, 100)]  # a one-frame false detection far away
    tr = track(dets, config=TrackerConfig(min_track_len=3))
    assert tr.num_people == 1 and tr.valid[:, 0].all()
    assert tr.det_index[4, 0] == 0


def test_online_tracker_predicts_boxes() -> None:
    tracker = Tracker(config=TrackerConfig(use_velocity=True))
    tracker.update([_person(100, 200)])
    tracker.update([_person(110, 200)])
    ((idx, box),) = tracker.predicted_boxes()
    assert idx == 0
    np.testing.assert_allclose(box, [120 - 27, 200 - 84, 120 + 27, 200 + 85])  # moved on by the velocity


def test_bad_detections() -> None:
    with pytest.raises(InputError, match=r"\(17, 3\)"):
        track([[np.zeros((18, 3))]])
    bad = _person(0, 0)
    bad[3, 0] = np.nan
    with pytest.raises(InputError, match="NaN"):
        track([[bad]])
    with pytest.raises(ValueError, match="boxes"):
        Tracker().update([_person(0, 0)], [None, None])
    with pytest.raises(ValueError):
        TrackerConfig(min_track_len=0)


def test_generated_clip_shuffled_with_frames_removed() -> None:
    clip_mod = pytest.importorskip("hmore.synth.clip", reason="the clip generator is not there yet")
    clip = clip_mod.render_clip(size=(96, 128), num_frames=20, subjects=2, seed=3, distractors=0)
    gt = clip.kp2d.astype(np.float64)  # (T, P, 17, 3) x, y, visibility
    T, P = gt.shape[:2]
    rng = np.random.default_rng(1)
    removed = {(4, 0), (5, 0), (11, 1), (12, 1), (13, 1)}
    detections, truth = [], []
    for t in range(T):
        people = [p for p in rng.permutation(P) if (t, p) not in removed]
        detections.append([gt[t, p] for p in people])
        truth.append(people)
    tr = track(detections, config=TrackerConfig(max_interp_gap=5))
    assert tr.num_frames == T and tr.num_people == P
    # the mapping track -> subject is the same in every frame where the track was detected
    mapping: dict[int, int] = {}
    for t in range(T):
        for p in range(P):
            d = tr.det_index[t, p]
            if d >= 0:
                assert mapping.setdefault(p, truth[t][d]) == truth[t][d]
    assert sorted(mapping.values()) == list(range(P))
    for (t, subject) in removed:
        p = next(k for k, s in mapping.items() if s == subject)
        assert tr.interpolated[t, p] and tr.valid[t, p]
    assert tr.interpolated.sum() == len(removed)
