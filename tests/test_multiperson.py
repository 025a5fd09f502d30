"""Multi-person priors logic without models: ROI geometry, per-joint visibility, implausible-skeleton rules, the
pose-seeded mask split, tiles, duplicate and part tests, and short-input confirmation in the tracker."""

from __future__ import annotations

import math

import numpy as np
import pytest

from hmore.priors.blazepose import ROI_SCALE, Landmarks, Roi, roi_from_alignment
from hmore.priors.masks import split_person_masks
from hmore.priors.plausibility import clipped_face, implausible, landmarks_to_coco
from hmore.priors.pose import component_roi, on_body_of, same_person, tile_regions
from hmore.priors.tracking import track


def _standing(cx: float = 100.0, top: float = 20.0, height: float = 170.0, score: float = 0.9) -> np.ndarray:
    """A COCO-17 upright person ``height`` px tall (head at ``top``), proportions of an adult."""
    h = height
    x = np.array([0, -0.02, 0.02, -0.05, 0.05, -0.13, 0.13, -0.16, 0.16, -0.17, 0.17, -0.09, 0.09, -0.09, 0.09,
                  -0.09, 0.09]) * h + cx
    y = np.array([0.06, 0.05, 0.05, 0.06, 0.06, 0.18, 0.18, 0.37, 0.37, 0.52, 0.52, 0.47, 0.47, 0.72, 0.72, 0.96,
                  0.96]) * h + top
    return np.stack([x, y, np.full(17, score)], axis=1).astype(np.float32)


def test_roi_from_alignment_and_geometry() -> None:
    roi = roi_from_alignment(np.array([100.0, 200.0]), np.array([100.0, 120.0]))  # scale point straight above
    assert roi.angle == pytest.approx(0.0) and roi.size == pytest.approx(2 * ROI_SCALE * 80)
    assert (roi.cx, roi.cy) == (100.0, 200.0)
    np.testing.assert_allclose(roi.box(), [0, 100, 200, 300])
    assert roi.contains(np.array([[150, 250], [201, 200]])).tolist() == [True, False]
    lying = roi_from_alignment(np.array([0.0, 0.0]), np.array([10.0, 0.0]))  # head to the right: turned 90 degrees
    assert abs(lying.angle) == pytest.approx(math.pi / 2)
    np.testing.assert_allclose(np.abs(lying.box()), [12.5, 12.5, 12.5, 12.5], atol=1e-9)
    upside = roi_from_alignment(np.array([0.0, 0.0]), np.array([0.0, 10.0]))
    assert abs(upside.angle) == pytest.approx(math.pi)
    sq = Roi.from_box(np.array([10, 20, 30, 60]), scale=1.5)
    assert (sq.cx, sq.cy, sq.size, sq.angle) == (20.0, 40.0, 60.0, 0.0)


def _landmarks(xy: np.ndarray, roi: Roi, presence: float = 0.99) -> Landmarks:
    return Landmarks(xy=xy, visibility=np.full(33, 0.9), presence=np.full(33, presence), roi=roi, next_roi=roi,
                     mask=None)


def test_joints_outside_the_frame_or_crop_or_absent_are_missing() -> None:
    xy = np.zeros((33, 2))
    xy[:, 0] = 50
    xy[:, 1] = np.linspace(-60, 140, 33)  # head above the frame's top edge, feet inside
    roi = Roi(50, 60, 300)
    kp = landmarks_to_coco(_landmarks(xy, roi), (100, 120))
    above = xy[[0, 2, 5, 7, 8, 11, 12, 13, 14, 15, 16, 23, 24, 25, 26, 27, 28], 1] < 0
    assert (kp[above] == 0).all()  # missing joints are (0, 0, 0), never placed
    assert (kp[~above, 2] > 0).all() and kp[~above, 2].max() <= 1
    small = Roi(50, 100, 40)  # a crop around the feet only
    kp2 = landmarks_to_coco(_landmarks(xy, small), (100, 120))
    assert (kp2[:, 2] > 0).sum() < (kp[:, 2] > 0).sum() and (kp2[:11] == 0).all()
    assert (landmarks_to_coco(_landmarks(xy, roi, presence=0.2), (100, 120)) == 0).all()


def test_implausible_rules() -> None:
    p = _standing()
    assert implausible(p, 1.25 * 170) is None
    few = p.copy()
    few[3:, 2] = 0  # 3 joints seen
    assert implausible(few, 212) == "evidence"
    legs = p.copy()
    legs[:11] = 0  # hips, knees, ankles only: a legs-only person is fine
    assert implausible(legs, 212) is None
    assert implausible(p, 1.25 * 170 * 10) == "collapsed"  # a skeleton folded into 10% of its crop
    long = p.copy()
    long[15, 1] += 200  # a shin 2.3x the height share
    assert implausible(long, 212) == "proportions"
    flipped = p.copy()
    flipped[:, 1] = 400 - flipped[:, 1]  # upside down
    assert implausible(flipped, 212) is None  # a handstand is a person
    assert implausible(flipped, 212, previous=p) == "flipped"  # but not right after standing
    head = p.copy()
    head[0, 1] = p[11, 1] + 10  # nose below the hips on an upright torso
    assert implausible(head, 212) == "head"


def test_face_of_a_head_out_of_view_is_missing() -> None:
    frame = (200, 240)  # (W, H)
    p = _standing()  # nose 0.41 torso lengths above the shoulders, head in view
    assert not clipped_face(p, frame)
    no_shoulders = p.copy()
    no_shoulders[[5, 6], 2] = 0  # face and hips seen, the shoulders between them not
    assert clipped_face(no_shoulders, frame)
    cut = _standing(top=-25.0)  # chest down in view: shoulders at y 5.6, the head above the frame
    cut[:5, 1] = [3.0, 1.0, 1.0, 2.0, 2.0]  # the model squeezes the face onto the top edge
    assert cut[5, 1] > 0 and clipped_face(cut, frame)
    bow = p.copy()
    bow[:5, 1] = p[5, 1] + 2  # a person bowing to the camera: face at shoulder height, the whole head in view
    assert not clipped_face(bow, frame)
    no_face = cut.copy()
    no_face[:5] = 0
    assert not clipped_face(no_face, frame)
    xy = np.tile([50.0, 90.0], (33, 1))  # BlazePose-33 through landmarks_to_coco: chest down in a 100x120 frame
    xy[:11, 1] = 2.0  # face landmarks on the top edge
    xy[[11, 12]] = [[35.0, 4.0], [65.0, 4.0]]  # shoulders
    xy[[23, 24]] = [[40.0, 60.0], [60.0, 60.0]]  # hips
    kp = landmarks_to_coco(_landmarks(xy, Roi(50, 60, 300)), (100, 120))
    assert (kp[:5] == 0).all() and (kp[5:, 2] > 0).all()


def test_split_person_masks_seeds_and_depth_order() -> None:
    H, W = 60, 80
    a = _standing(cx=25, top=5, height=50)
    b = _standing(cx=45, top=5, height=50)
    both = np.zeros((H, W), np.float32)
    both[5:55, 15:57] = 0.9  # each crop's segmentation covers both people
    banner = both.copy()
    banner[0:4, :] = 0.9  # a banner connected along the top
    b_hidden = b.copy()
    b_hidden[[5, 7, 9, 11, 13, 15], 2] = 0  # b's left side, towards a, is hidden: a is in front there
    own = split_person_masks([banner, both], [a, b_hidden])
    assert own[0].shape == (H, W) and own[0].dtype == np.float32
    assert not ((own[0] > 0) & (own[1] > 0)).any()  # disjoint
    assert own[0][30, 20] > 0 and own[1][30, 52] > 0  # each keeps their own side
    assert own[0][30, 36] > 0  # the overlap next to a's seen right side and b's hidden left side goes to a
    assert own[0][1, 75] == 0  # the banner corner is too far from a's seeds
    nobody = np.zeros((H, W), np.float32)
    nobody[50:58, 70:78] = 0.9  # a blob not touching any seed
    assert split_person_masks([nobody], [a])[0].sum() == 0
    with pytest.raises(ValueError, match="keypoint sets"):
        split_person_masks([both], [a, b])


def test_tiles_cover_the_frame_with_overlap() -> None:
    tiles = tile_regions(960, 540, (0.6,))
    side = round(0.6 * 540)
    assert all(x1 - x0 == side == y1 - y0 for x0, y0, x1, y1 in tiles)
    assert len(tiles) == 5 * 3  # ceil((960 - 324) / 162) + 1 columns, ceil((540 - 324) / 162) + 1 rows
    cover = np.zeros((540, 960), bool)
    for x0, y0, x1, y1 in tiles:
        cover[y0:y1, x0:x1] = True
    assert cover.all()
    assert tile_regions(150, 150, (0.6,)) == [] and tile_regions(300, 300, (1.0,)) == []  # too small / the frame


def test_duplicates_parts_and_frame_edge_rois() -> None:
    p = _standing()
    assert same_person(p + [2, 1, 0], p) and not same_person(p + [60, 0, 0], p)
    foot = _standing(cx=p[15, 0], top=p[15, 1] - 10, height=15)
    assert on_body_of(foot, p) and not on_body_of(p, foot) and not on_body_of(_standing(cx=300), p)
    top_cut = component_roi(np.array([100, 0, 140, 80]), 640, 480, scale=1.0)  # legs hanging from the top edge
    assert top_cut.cy == pytest.approx(0.0) and top_cut.size == pytest.approx(160)
    inside = component_roi(np.array([100, 50, 140, 130]), 640, 480, scale=1.0)
    assert (inside.cx, inside.cy, inside.size) == (120, 90, 80)


def test_short_inputs_keep_everybody_longer_ones_confirm() -> None:
    from hmore.priors.tracking import TrackerConfig

    cfg = TrackerConfig(min_track_len=3)
    one = track([[_standing()]], config=cfg)
    assert one.num_people == 1 and one.valid.all()
    two = track([[_standing(), _standing(cx=300)], [_standing()]], config=cfg)
    assert two.num_people == 2  # 2 frames: nobody can be confirmed over 3, everybody found is kept
    flicker = track([[_standing(), _standing(cx=300)], [_standing()], [_standing()]], config=cfg)
    assert flicker.num_people == 1  # 3 frames: a person seen once is dropped
