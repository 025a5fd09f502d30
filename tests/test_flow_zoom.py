"""The second, enlarged pass of the network for small people (hmore.flow.zoom)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from hmore.errors import UsageError
from hmore.flow.inference import iter_flow
from hmore.flow.zoom import ZoomConfig, resolve_zoom, zoom_people
from hmore.registry import create_model

H, W = 120, 160


def _frames() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    a = rng.integers(0, 255, (H, W, 3), dtype=np.uint8)
    return a, np.roll(a, 1, axis=1)


def _box(labels: np.ndarray, label: int, y0: int, y1: int, x0: int, x1: int) -> None:
    labels[y0:y1, x0:x1] = label


class _Constant:
    """A crop flow of (u, v) everywhere at the enlarged size; records what it was given."""

    def __init__(self, u: float, v: float) -> None:
        self.u, self.v, self.calls = u, v, []

    def __call__(self, a: np.ndarray, b: np.ndarray, labels: np.ndarray, box: tuple, scale: tuple) -> np.ndarray:
        self.calls.append((a.shape, b.shape, labels.shape, set(np.unique(labels).tolist()), box, scale))
        out = np.empty((*a.shape[:2], 2), np.float32)
        out[..., 0], out[..., 1] = self.u, self.v
        return out


def test_resolve_and_config_checks() -> None:
    assert resolve_zoom("auto") == ZoomConfig()
    assert resolve_zoom("off") is None and resolve_zoom(None) is None
    cfg = ZoomConfig(below=64)
    assert resolve_zoom(cfg) is cfg
    with pytest.raises(UsageError, match="zoom must be one of"):
        resolve_zoom("on")
    with pytest.raises(UsageError, match="max_zoom"):
        ZoomConfig(min_zoom=3.0, max_zoom=2.0)
    with pytest.raises(UsageError, match="below"):
        ZoomConfig(below=-1)
    with pytest.raises(UsageError, match="max_cover"):
        ZoomConfig(max_cover=0.0)
    with pytest.raises(UsageError, match="min_zoom"):
        ZoomConfig(min_zoom=0.5)
    with pytest.raises(UsageError, match="max_motion"):
        ZoomConfig(max_motion=float("nan"))


def test_small_person_takes_the_enlarged_flow_scaled_back_inside_its_dilated_mask_only() -> None:
    a, b = _frames()
    labels = np.zeros((H, W), np.uint8)
    _box(labels, 1, 40, 80, 20, 36)  # 40 px tall: z = min(3, max(2, 128 / 40)) = 3
    _box(labels, 2, 10, 50, 100, 116)  # 40 px tall too
    optical = np.full((H, W, 2), 0.5, np.float32)
    crop = _Constant(6.0, -3.0)
    out, done = zoom_people(a, b, optical, labels, crop, ZoomConfig(max_people=2, dilation=1, margin=4))
    assert [d.label for d in done] == [1, 2] and all(d.zoom == 3.0 and d.height == 40 for d in done)
    # crop of label 1: rows 40-4-0.5 .. (flow reach ceil(0.5) = 1): y 35..85, x 15..41 -> 50 x 26, enlarged 3x to
    # multiples of 8: 150 -> 152, 78 -> 80
    assert done[0].box == (35, 85, 15, 41)
    assert crop.calls[0][0] == (152, 80, 3) and crop.calls[0][2] == (152, 80) and crop.calls[0][3] == {0, 1}
    assert crop.calls[0][4] == (35, 85, 15, 41) and crop.calls[0][5] == pytest.approx((26 / 80, 50 / 152))
    grown = cv2.dilate(((labels == 1) | (labels == 2)).astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
    np.testing.assert_allclose(out[~grown], 0.5)  # everything else keeps the first pass
    inside1 = cv2.dilate((labels == 1).astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
    np.testing.assert_allclose(out[inside1][:, 0], 6.0 * 26 / 80, rtol=1e-5)  # back by the exact crop scale
    np.testing.assert_allclose(out[inside1][:, 1], -3.0 * 50 / 152, rtol=1e-5)


def test_large_people_whole_frames_and_the_people_limit() -> None:
    a, b = _frames()
    optical = np.zeros((H, W, 2), np.float32)
    big = np.zeros((H, W), np.uint8)
    _box(big, 1, 0, 110, 60, 90)  # 110 px: not small at below 100
    out, done = zoom_people(a, b, optical, big, _Constant(1, 1), ZoomConfig(below=100))
    assert done == [] and np.array_equal(out, optical)
    whole = np.ones((H, W), np.uint8)  # small frame, one "person" filling it: a larger size, not a zoom, helps
    out, done = zoom_people(a, b, optical, whole, _Constant(1, 1), ZoomConfig(below=200))
    assert done == [] and np.array_equal(out, optical)
    three = np.zeros((H, W), np.uint8)
    _box(three, 1, 10, 40, 10, 20)  # 30 px
    _box(three, 2, 60, 80, 60, 70)  # 20 px: the smallest
    _box(three, 3, 70, 110, 120, 130)  # 40 px
    _, done = zoom_people(a, b, optical, three, _Constant(1, 1), ZoomConfig(max_people=2))
    assert [d.label for d in done] == [2, 1]
    _, done = zoom_people(a, b, optical, three, _Constant(1, 1), ZoomConfig(max_people=0))
    assert done == []


def test_bad_inputs_are_rejected() -> None:
    a, b = _frames()
    labels = np.zeros((H, W), np.uint8)
    _box(labels, 1, 40, 80, 20, 36)
    optical = np.zeros((H, W, 2), np.float32)
    with pytest.raises(ValueError, match="crop flow must be"):
        zoom_people(a, b, optical, labels, lambda x, y, m, box, sc: np.zeros((8, 8, 2), np.float32))
    with pytest.raises(ValueError, match="labels"):
        zoom_people(a, b, optical, labels[:-1], _Constant(0, 0))
    bad = optical.copy()
    bad[0, 0, 1] = np.inf
    with pytest.raises(ValueError, match="NaN"):
        zoom_people(a, b, bad, labels, _Constant(0, 0))


def test_inference_zooms_small_people_only_and_reports_it() -> None:
    from hmore.synth.clip import render_clip

    clip = render_clip(size=(96, 128), num_frames=3, subjects=1, seed=3, actions=["walk"], camera_motion="pan",
                       distractors=0, fov_deg=60.0)
    height = int(np.ptp(np.nonzero((clip.masks[0] > 0).any(axis=1))[0])) + 1
    assert height < 128  # the person is small in these frames
    torch.manual_seed(0)
    net = create_model("hmore_flow_test").eval()
    kw = dict(model=net, masks=clip.masks, device="cpu", progress=False, subject_motion="median", refine="off")
    info: dict = {}
    on = list(iter_flow(clip.frames, info=info, zoom="auto", **kw))
    off = list(iter_flow(clip.frames, **kw))  # the default: one pass
    assert info["zoom"] == "people under 128 px"
    for t, (z, n) in enumerate(zip(on, off)):
        grown = cv2.dilate((clip.masks[t] > 0).astype(np.uint8), np.ones((7, 7), np.uint8)) > 0
        np.testing.assert_allclose(z.world[:, ~grown], n.world[:, ~grown], atol=1e-5)  # background untouched
        assert np.abs(z.world[:, grown] - n.world[:, grown]).mean() > 1e-4
    with pytest.raises(UsageError, match="zoom must be one of"):
        next(iter_flow(clip.frames, zoom="maybe", **kw))


def test_enlargement_is_capped_by_the_motion_and_fast_people_keep_one_pass() -> None:
    a, b = _frames()
    labels = np.zeros((H, W), np.uint8)
    _box(labels, 1, 40, 80, 20, 36)  # 40 px: z = 3 without a cap
    optical = np.zeros((H, W, 2), np.float32)
    optical[labels == 1] = (5.0, 0.0)  # 5 px: cap 24 / 5 = 4.8, z stays 3
    _, done = zoom_people(a, b, optical, labels, _Constant(0, 0))
    assert [d.zoom for d in done] == [3.0]
    optical[labels == 1] = (0.0, 10.0)  # 10 px: z = 24 / 10 = 2.4
    _, done = zoom_people(a, b, optical, labels, _Constant(0, 0))
    assert [d.zoom for d in done] == [2.4]
    optical[labels == 1] = (16.0, 0.0)  # 16 px: 24 / 16 = 1.5 < min_zoom 2: one pass
    out, done = zoom_people(a, b, optical, labels, _Constant(0, 0))
    assert done == [] and np.array_equal(out, optical)
    _, done = zoom_people(a, b, optical, labels, _Constant(0, 0), ZoomConfig(max_motion=0.0))  # no cap
    assert [d.zoom for d in done] == [3.0]


def test_cli_flow_zoom_option_reaches_the_output(tmp_path) -> None:
    import json

    from hmore.cli import main

    assert main(["synth", "--out", str(tmp_path / "clips"), "--frames", "3", "--size", "72x96", "--subjects", "1",
                 "--seed", "3"]) == 0
    clip = next((tmp_path / "clips").glob("clip_*.npz"))
    metas = {}
    for mode in ("auto", "off"):
        out = tmp_path / mode
        assert main(["flow", str(clip), "-o", str(out), "--model", "hmore_flow_test", "--device", "cpu",
                     "--no-preview", "--threads", "1", "--zoom", mode]) == 0
        metas[mode] = json.loads((out / "meta.json").read_text())
    assert metas["auto"]["zoom"] == "people under 128 px" and metas["off"]["zoom"] == "off"


def test_reach_sets_the_crop_margin_and_the_replaced_flow_sets_the_cap() -> None:
    a, b = _frames()
    labels = np.zeros((H, W), np.uint8)
    _box(labels, 1, 40, 80, 60, 76)
    world = np.zeros((H, W, 2), np.float32)
    optical = np.zeros((H, W, 2), np.float32)
    optical[..., 0] = 10.0  # a pan of 10 px: the crop must reach 10 px further, the enlargement is not capped by it
    _, done = zoom_people(a, b, world, labels, _Constant(0, 0), ZoomConfig(margin=4, max_motion=12.0), reach=optical)
    assert done[0].box == (40 - 14, 79 + 15, 60 - 14, 75 + 15) and done[0].zoom == 3.0
    _, done = zoom_people(a, b, optical, labels, _Constant(0, 0), ZoomConfig(margin=4, max_motion=12.0))
    assert done == []  # 10 px x 2 > 12: one pass
    with pytest.raises(ValueError, match="reach"):
        zoom_people(a, b, world, labels, _Constant(0, 0), reach=optical[:-1])
