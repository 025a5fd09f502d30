"""Photometric refinement inside people (hmore.flow.refine): a known translation is recovered, the background keeps
the network's flow, bad settings and inputs fail clearly; the inference and benchmark paths that use it."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from hmore.errors import UsageError
from hmore.flow.inference import iter_flow
from hmore.flow.refine import RefineConfig, census_cost, fuse_flows, refine_in_people, refine_mode, resolve_refine
from hmore.registry import create_model
from hmore.synth.clip import render_clip

H, W = 64, 96


def _frames(shift: tuple[int, int] = (2, 1), seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A smooth random texture and the same texture moved by ``shift`` = (dx, dy) pixels: the flow is ``shift``."""
    rng = np.random.default_rng(seed)
    grey = cv2.GaussianBlur((rng.random((H + 20, W + 20)) * 255).astype(np.uint8), (0, 0), 1.5)
    a = grey[10:10 + H, 10:10 + W]
    b = grey[10 - shift[1]:10 - shift[1] + H, 10 - shift[0]:10 - shift[0] + W]  # b(p + shift) = a(p)
    return np.repeat(a[..., None], 3, -1), np.repeat(b[..., None], 3, -1)


def _person() -> np.ndarray:
    m = np.zeros((H, W), np.uint8)
    m[16:48, 36:60] = 1
    return m


def test_a_wrong_start_moves_towards_the_true_translation_inside_the_person() -> None:
    a, b = _frames((2, 1))
    start = np.zeros((H, W, 2), np.float32)
    start[...] = (1.5, 0.5)  # 0.71 px from the truth (2, 1) everywhere
    out = refine_in_people(a, b, start, _person())
    inside = _person() > 0
    err_before = np.linalg.norm(start[inside] - (2, 1), axis=-1).mean()
    err_after = np.linalg.norm(out[inside] - (2, 1), axis=-1).mean()
    assert err_before == pytest.approx(np.hypot(0.5, 0.5), rel=1e-6)
    assert err_after < 0.8 * err_before  # five fixed-point steps from a 0.7 px error: measured 0.55 px
    assert (out[inside].mean(0) > start[inside].mean(0) + 0.1).all()  # both components moved towards (2, 1)
    grown = cv2.dilate(_person(), np.ones((7, 7), np.uint8)) > 0  # dilation 3
    np.testing.assert_array_equal(out[~grown], start[~grown])  # the background keeps the given flow exactly
    assert not np.allclose(out[grown & ~inside], start[grown & ~inside])  # the 3-pixel band is refined too


def test_nobody_in_view_returns_the_flow_unchanged() -> None:
    a, b = _frames()
    start = np.full((H, W, 2), 0.3, np.float32)
    out = refine_in_people(a, b, start, np.zeros((H, W), np.uint8))
    np.testing.assert_array_equal(out, start)
    assert out is not start


def test_refining_the_people_box_matches_refining_the_whole_frame() -> None:
    """The box around the people (plus margin and the flow's reach) gives what the whole frame gives inside them."""
    a, b = _frames((3, -2), seed=4)
    start = np.zeros((H, W, 2), np.float32)
    start[...] = (2.0, -1.0)
    small = np.zeros((H, W), np.uint8)
    small[24:36, 40:50] = 1
    boxed = refine_in_people(a, b, start, small, RefineConfig(dilation=0))
    vr = cv2.VariationalRefinement_create()
    vr.setAlpha(5.0)
    vr.setDelta(5.0)
    vr.setGamma(10.0)
    whole = start.copy()
    vr.calc(cv2.cvtColor(a, cv2.COLOR_RGB2GRAY), cv2.cvtColor(b, cv2.COLOR_RGB2GRAY), whole)
    inside = small > 0
    assert np.abs(boxed[inside] - whole[inside]).max() < 0.05
    assert np.abs(whole[inside] - start[inside]).mean() > 0.1  # and refining did move the flow (0.15 px)


@pytest.mark.parametrize("kwargs, word", [({"alpha": -1.0}, "alpha"), ({"gamma": float("nan")}, "gamma"),
                                          ({"fixed_point_iterations": 0}, "fixed_point_iterations"),
                                          ({"sor_iterations": 2.5}, "sor_iterations"), ({"dilation": -1}, "dilation")])
def test_bad_settings_are_usage_errors_naming_the_setting(kwargs, word) -> None:
    with pytest.raises(UsageError, match=word):
        RefineConfig(**kwargs)


def test_modes_resolve_and_unknown_modes_fail() -> None:
    assert resolve_refine("variational") == RefineConfig()
    assert resolve_refine("off") is None and resolve_refine(None) is None
    cfg = RefineConfig(alpha=5.0)
    assert resolve_refine(cfg) is cfg
    with pytest.raises(UsageError, match="variational, search, off"):
        resolve_refine("smooth")
    assert resolve_refine("search") == RefineConfig(search="dis")
    modes = ["variational", "search", "off"]
    assert [refine_mode(resolve_refine(m)) for m in modes] == modes
    with pytest.raises(UsageError, match="search"):
        RefineConfig(search="pyramid")


def test_census_cost_is_zero_for_the_true_translation_and_fusion_picks_it() -> None:
    a, b = _frames((3, -2))
    ga, gb = a[..., 0], b[..., 0]
    true = np.broadcast_to(np.float32([3, -2]), (H, W, 2)).copy()
    wrong = np.zeros((H, W, 2), np.float32)
    interior = (slice(10, H - 10), slice(10, W - 10))  # samples and census windows inside both frames
    cost_true, cost_wrong = census_cost(ga, gb, true), census_cost(ga, gb, wrong)
    assert cost_true.shape == (H, W) and cost_true.dtype == np.float32
    np.testing.assert_allclose(cost_true[interior], 0.0, atol=1e-6)  # integer shift: the warp is exact
    assert cost_wrong[interior].min() > 0.1
    mixed = wrong.copy()
    mixed[:, : W // 2] = true[:, : W // 2]  # right on the left half only
    fused = fuse_flows(ga, gb, [mixed, wrong, true])
    np.testing.assert_allclose(fused[interior], true[interior])
    np.testing.assert_array_equal(fuse_flows(ga, gb, [wrong, wrong.copy()]), wrong)  # ties keep the first


def test_the_search_reaches_a_motion_the_variational_step_alone_cannot() -> None:
    a, b = _frames((7, 3))
    start = np.zeros((H, W, 2), np.float32)
    start[...] = (1.0, 0.0)  # the network far short of the truth (7, 3): 6.7 px
    person = _person()
    inside = person > 0
    core = cv2.erode(person, np.ones((9, 9), np.uint8)) > 0  # away from the box's borders
    plain = refine_in_people(a, b, start, person)
    searched = refine_in_people(a, b, start, person, RefineConfig(search="dis"))
    err = {k: np.linalg.norm(f[core] - (7, 3), axis=-1).mean() for k, f in (("plain", plain), ("search", searched))}
    assert err["plain"] > 3.0  # linearised about (1, 0), five fixed-point steps do not get there
    assert err["search"] < 0.5
    grown = cv2.dilate(person, np.ones((7, 7), np.uint8)) > 0
    np.testing.assert_array_equal(searched[~grown], start[~grown])  # the background keeps the given flow exactly
    assert np.isfinite(searched[inside]).all()


def test_mismatched_or_non_finite_inputs_are_rejected() -> None:
    a, b = _frames()
    flow = np.zeros((H, W, 2), np.float32)
    with pytest.raises(ValueError, match="labels"):
        refine_in_people(a, b, flow, np.zeros((H, W + 1), np.uint8))
    with pytest.raises(ValueError, match="frames"):
        refine_in_people(a[:-1], b, flow, _person())
    flow[0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        refine_in_people(a, b, flow, _person())


def test_inference_refines_inside_people_only_and_local_follows_the_refined_world() -> None:
    clip = render_clip(size=(72, 96), num_frames=3, subjects=1, seed=5, actions=["walk"], camera_motion="pan",
                       distractors=0, fov_deg=60.0)
    torch.manual_seed(0)
    net = create_model("hmore_flow_test").eval()
    kw = dict(model=net, masks=clip.masks, device="cpu", progress=False)
    info: dict = {}
    on = list(iter_flow(clip.frames, info=info, subject_motion="psi", **kw))
    off = list(iter_flow(clip.frames, refine="off", subject_motion="psi", **kw))
    assert info["refine"] == "variational"
    for t, (r, n) in enumerate(zip(on, off)):
        grown = cv2.dilate((clip.masks[t] > 0).astype(np.uint8), np.ones((7, 7), np.uint8)) > 0
        np.testing.assert_allclose(r.world[:, ~grown], n.world[:, ~grown], atol=1e-5)  # background untouched
        assert np.abs(r.world[:, grown] - n.world[:, grown]).mean() > 1e-3
        inside = clip.masks[t] > 0
        v = r.subject_velocity[0][:, None]  # (2, 1) Psi's v_s
        np.testing.assert_allclose(r.local[:, inside], r.world[:, inside] - v, atol=1e-5)
        np.testing.assert_allclose(r.local[:, ~inside], 0.0)


def test_inference_search_mode_is_named_and_keeps_the_background() -> None:
    clip = render_clip(size=(72, 96), num_frames=2, subjects=1, seed=5, actions=["walk"], camera_motion="pan",
                       distractors=0, fov_deg=60.0)
    torch.manual_seed(0)
    net = create_model("hmore_flow_test").eval()
    kw = dict(model=net, masks=clip.masks, device="cpu", progress=False)
    info: dict = {}
    (s,) = list(iter_flow(clip.frames, info=info, refine="search", **kw))
    (n,) = list(iter_flow(clip.frames, refine="off", **kw))
    assert info["refine"] == "search"
    grown = cv2.dilate((clip.masks[0] > 0).astype(np.uint8), np.ones((7, 7), np.uint8)) > 0
    np.testing.assert_allclose(s.world[:, ~grown], n.world[:, ~grown], atol=1e-5)


def test_bench_methods_name_the_unrefined_row_and_refuse_it_for_baselines(tmp_path) -> None:
    from hmore.bench.flow_methods import create_method
    from hmore.train.checkpoint import save_weights

    path = save_weights(tmp_path / "w.safetensors", create_model("hmore_flow_test"), metadata={"test": True})
    assert create_method(f"hmore_flow_test={path}+noref").name == "hmore_flow_test=w+noref"
    assert create_method(f"hmore_flow_test={path}+nocam+noref").name == "hmore_flow_test=w+nocam+noref"
    assert create_method(f"hmore_flow_test={path}+noref").info["refinement"] == "off"
    assert create_method(f"hmore_flow_test={path}").info["refinement"] == "variational inside people"
    searched = create_method(f"hmore_flow_test={path}+search")
    assert searched.name == "hmore_flow_test=w+search" and searched.info["refinement"].startswith("DIS search")
    with pytest.raises(UsageError, match=r"\+search applies to hmore models only"):
        create_method("dis+search")
    with pytest.raises(UsageError, match="hmore models only"):
        create_method("dis+noref")
