"""Pictures and HTML reports: the flow colour wheel, skeleton/mask drawing, panels, the report builder."""

from __future__ import annotations

import colorsys
import re

import numpy as np
import pytest

from hmore.report.draw import (
    PALETTE,
    draw_skeleton,
    hstack_panels,
    label,
    mask_outline,
    mask_to_color,
    overlay_masks,
)
from hmore.report.flowviz import NUM_HUES, color_wheel, flow_to_color, robust_max_magnitude, wheel_colors
from hmore.report.html import Report
from hmore.skeleton import COCO17, H36M17


def _hsv(rgb: np.ndarray) -> tuple[float, float, float]:
    return colorsys.rgb_to_hsv(*(np.asarray(rgb, dtype=float) / 255.0))


def _field(*vectors: tuple[float, float]) -> np.ndarray:
    return np.asarray(vectors, dtype=np.float64).reshape(1, len(vectors), 2)  # (1, N, 2)


# -- flow colours ------------------------------------------------------------------------------------------------


def test_wheel_has_the_middlebury_hue_counts():
    w = wheel_colors()
    assert NUM_HUES == 55 and w.shape == (55, 3)
    # Segment starts: red, yellow, green, cyan, blue, magenta at 0, 15, 21, 25, 36, 49.
    np.testing.assert_array_equal(w[[0, 15, 21, 25, 36, 49]], [[255, 0, 0], [255, 255, 0], [0, 255, 0],
                                                              [0, 255, 255], [0, 0, 255], [255, 0, 255]])
    # Inside red->yellow only green ramps: index 5 of 15 has G = floor(255 * 5 / 15) = 85.
    np.testing.assert_array_equal(w[5], [255, 85, 0])


def test_zero_flow_is_white_and_full_magnitude_is_the_pure_wheel_colour():
    img = flow_to_color(_field((0, 0), (2, 0), (-2, 0)), max_mag=2.0)
    assert img.dtype == np.uint8 and img.shape == (1, 3, 3)
    np.testing.assert_array_equal(img[0, 0], [255, 255, 255])
    np.testing.assert_array_equal(img[0, 1], [255, 0, 0])  # +x at full magnitude: wheel index 0, pure red
    # -x: half way round, index 27.5 between cyan-blue entries 27 and 28 (G = 255 - floor(255 * k / 11)).
    expect = 0.5 * (wheel_colors()[27] + wheel_colors()[28])
    np.testing.assert_allclose(img[0, 2], expect, atol=1)


def test_opposite_flows_have_opposite_hues():
    for ang in np.linspace(0, 2 * np.pi, 12, endpoint=False):
        v = (np.cos(ang), np.sin(ang))
        img = flow_to_color(_field(v, (-v[0], -v[1])), max_mag=1.0)
        h1, h2 = _hsv(img[0, 0])[0], _hsv(img[0, 1])[0]
        d = abs(h1 - h2) % 1.0
        d = min(d, 1 - d)
        # The Middlebury hues are not evenly spaced in HSV, but opposite vectors are always far apart on the hue circle.
        assert d > 0.3, (ang, img[0], h1, h2)


def test_direction_matches_the_legend_wheel():
    size = 101
    wheel = color_wheel(size)
    c = (size - 1) / 2
    r = c - 0.5
    for ang in np.linspace(0, 2 * np.pi, 16, endpoint=False):
        dx, dy = np.cos(ang), np.sin(ang)
        # A point at 90% of the radius on the legend in direction (dx, dy) (image y down) ...
        j, i = int(round(c + 0.9 * r * dx)), int(round(c + 0.9 * r * dy))
        legend = wheel[i, j].astype(int)
        # ... shows the colour of a flow vector pointing the same way, at (about) 90% of max_mag.
        vec = ((j - c) / r, (i - c) / r)
        np.testing.assert_array_equal(legend, flow_to_color(_field(vec), max_mag=1.0)[0, 0])
    # Known directions on screen: right is red, down is orange-yellow, left is cyan-blue, up is blue-violet.
    assert tuple(wheel[int(c), size - 2]) == (255, 0, 0) or wheel[int(c), size - 2, 0] > 240
    down, left, up = wheel[size - 3, int(c)], wheel[int(c), 2], wheel[2, int(c)]
    assert down[0] > 200 and down[1] > 150 and down[2] < 60
    assert left[0] < 60 and left[2] > 200
    assert up[2] > 200 and up[1] < 60
    assert tuple(wheel[0, 0]) == (255, 255, 255)  # outside the disc: background


def test_saturation_grows_with_magnitude():
    mags = [0.0, 0.5, 1.0, 2.0, 4.0]
    img = flow_to_color(_field(*[(m * 0.6, m * 0.8) for m in mags]), max_mag=4.0)
    sat = [_hsv(px)[1] for px in img[0]]
    assert sat[0] == 0.0
    assert all(a < b for a, b in zip(sat, sat[1:])), sat
    # Beyond max_mag the colour saturates (clipped), it does not wrap or darken.
    big = flow_to_color(_field((0.6 * 40, 0.8 * 40)), max_mag=4.0)
    np.testing.assert_array_equal(big[0, 0], img[0, -1])


def test_nan_and_inf_flow_are_black_without_crashing():
    f = _field((np.nan, 0), (1, np.inf), (1, 0), (0, 0))
    img = flow_to_color(f)
    np.testing.assert_array_equal(img[0, :2], 0)
    np.testing.assert_array_equal(img[0, 2], [255, 0, 0])  # the robust scale ignores the bad vectors
    np.testing.assert_array_equal(flow_to_color(np.full((2, 2, 2), np.nan)), 0)


def test_robust_scale_is_a_percentile_and_a_clip_shares_it(rng):
    mags = np.arange(1, 101, dtype=float)  # magnitudes 1..100 along +x
    f = np.stack([mags, np.zeros_like(mags)], -1).reshape(10, 10, 2)
    assert robust_max_magnitude(f, percentile=50) == pytest.approx(50.5)
    assert robust_max_magnitude(np.zeros((4, 4, 2))) > 0
    clip = rng.normal(size=(3, 8, 8, 2))
    clip[2] *= 10  # a fast last frame
    together = flow_to_color(clip)
    alone = flow_to_color(clip[0])
    s = robust_max_magnitude(clip)
    np.testing.assert_array_equal(together[0], flow_to_color(clip[0], max_mag=s))
    assert not np.array_equal(together[0], alone)  # frame 0 alone would be scaled up


def test_flow_to_color_is_within_one_level_of_the_wheel_formula():
    # the formula of the module docstring, in float64 per pixel: hue interpolated between the 55 wheel colours,
    # white blended in by 1 - |flow| / max_mag
    rng = np.random.default_rng(3)
    flow = rng.normal(size=(2, 40, 50, 2)) * 2.0
    wheel = wheel_colors() / 255.0
    frac = np.mod(np.arctan2(flow[..., 1], flow[..., 0]), 2 * np.pi) / (2 * np.pi) * NUM_HUES
    k0 = np.floor(frac).astype(int) % NUM_HUES
    f = (frac - np.floor(frac))[..., None]
    hue = (1 - f) * wheel[k0] + f * wheel[(k0 + 1) % NUM_HUES]
    rad = np.minimum(np.hypot(flow[..., 0], flow[..., 1]) / 3.0, 1.0)[..., None]
    exact = np.floor(255.0 * (1 - rad * (1 - hue)) + 0.5)
    got = flow_to_color(flow, max_mag=3.0).astype(float)
    assert got.shape == (2, 40, 50, 3) and np.abs(got - exact).max() <= 1.0


def test_flow_to_color_rejects_bad_shapes():
    with pytest.raises(ValueError, match=r"\(H, W, 2\)"):
        flow_to_color(np.zeros((4, 4, 3)))
    with pytest.raises(ValueError, match="max_mag"):
        flow_to_color(np.zeros((4, 4, 2)), max_mag=0)


# -- drawing -----------------------------------------------------------------------------------------------------


def test_draw_skeleton_draws_bones_of_visible_joints_only():
    img = np.zeros((64, 64, 3), np.uint8)
    kp = np.zeros((17, 3))
    kp[:, :2] = np.nan
    li, lk = COCO17.index("left_hip"), COCO17.index("left_knee")
    kp[li] = (10, 10, 1.0)
    kp[lk] = (10, 50, 1.0)
    out = draw_skeleton(img, kp, thickness=1, radius=1, antialias=False)
    assert not img.any()  # input untouched
    col = np.asarray(PALETTE[0])
    np.testing.assert_array_equal(out[30, 10], col)  # on the hip-knee bone
    assert out[30, 30].sum() == 0 and out[5:, 14:].sum() == 0  # nothing away from the bone
    # Below the threshold the knee (and the bone) disappear.
    kp[lk, 2] = 0.3
    out2 = draw_skeleton(img, kp, thickness=1, radius=1, antialias=False, threshold=0.5)
    assert out2[30, 10].sum() == 0 and out2[10, 10].sum() > 0
    # C = 2: no scores, everything finite is drawn.
    out3 = draw_skeleton(img, kp[:, :2], thickness=1, radius=1, antialias=False)
    np.testing.assert_array_equal(out3[30, 10], col)


def test_draw_skeleton_colours_people_and_checks_layout():
    img = np.full((40, 80), 7, np.uint8)  # grey input becomes RGB
    kp = np.full((2, 17, 3), np.nan)
    for p, x in enumerate((20, 60)):
        kp[p, H36M17.index("root")] = (x, 5, 1)
        kp[p, H36M17.index("right_hip")] = (x, 35, 1)
    out = draw_skeleton(img, kp, layout=H36M17, thickness=1, radius=1, antialias=False)
    assert out.shape == (40, 80, 3)
    np.testing.assert_array_equal(out[20, 20], PALETTE[0])
    np.testing.assert_array_equal(out[20, 60], PALETTE[1])
    np.testing.assert_array_equal(out[20, 40], (7, 7, 7))
    with pytest.raises(ValueError, match="17"):
        draw_skeleton(img, np.zeros((33, 3)))


def test_overlay_masks_tints_inside_outlines_and_leaves_background():
    img = np.full((10, 12, 3), 100, np.uint8)
    m = np.zeros((10, 12), np.uint8)
    m[2:8, 2:6] = 1
    m[2:8, 6:10] = 2
    out = overlay_masks(img, m, alpha=0.5)
    np.testing.assert_array_equal(out[m == 0], 100)
    # Interior pixel of id 1: half image, half colour; boundary pixel: the pure colour.
    np.testing.assert_array_equal(out[4, 3], np.floor(0.5 * 100 + 0.5 * np.asarray(PALETTE[0]) + 0.5))
    np.testing.assert_array_equal(out[2, 3], PALETTE[0])
    np.testing.assert_array_equal(out[4, 5], PALETTE[0])  # touches id 2
    np.testing.assert_array_equal(out[4, 7], np.floor(0.5 * 100 + 0.5 * np.asarray(PALETTE[1]) + 0.5))
    edge = mask_outline(m)
    assert edge.sum() == 2 * (2 * 6 + 2 * 4 - 4) and not edge[m == 0].any()
    np.testing.assert_array_equal(overlay_masks(img, m, alpha=0.0, outline=False), img)
    with pytest.raises(ValueError, match="does not match"):
        overlay_masks(img, m[:5])


def test_mask_to_color_paints_ids():
    m = np.array([[0, 1], [2, 1 + len(PALETTE)]])
    c = mask_to_color(m)
    np.testing.assert_array_equal(c[0, 0], 0)
    np.testing.assert_array_equal(c[0, 1], PALETTE[0])
    np.testing.assert_array_equal(c[1, 0], PALETTE[1])
    np.testing.assert_array_equal(c[1, 1], PALETTE[0])  # ids wrap around the palette


def test_label_writes_in_its_box_only():
    img = np.full((40, 120, 3), 50, np.uint8)
    out = label(img, "hello <world>")
    assert (out[:20, :100] != 50).any()
    np.testing.assert_array_equal(out[25:], 50)


def test_hstack_panels_equal_heights_titles_and_even_size():
    a = np.zeros((20, 30, 3), np.uint8)
    b = np.full((10, 15), 255, np.uint8)  # half height: enlarged 2x (nearest), grey -> RGB
    out = hstack_panels([a, b], ["a", "b"], gap=3, title_height=12)
    assert out.shape == (12 + 20, 30 + 3 + 30 + 1, 3)  # padded to an even width
    np.testing.assert_array_equal(out[12:, :30], 0)
    np.testing.assert_array_equal(out[12:, 33:63], 255)
    np.testing.assert_array_equal(out[12:, 30:33], 32)  # the gap
    odd = hstack_panels([np.zeros((9, 9, 3), np.uint8)], gap=0)
    assert odd.shape == (10, 10, 3)
    with pytest.raises(ValueError, match="titles"):
        hstack_panels([a], ["x", "y"])


# -- HTML --------------------------------------------------------------------------------------------------------


def test_report_escapes_text_and_links_relative_files(tmp_path):
    out = tmp_path / "rep"
    (out / "media").mkdir(parents=True)
    img = out / "media" / "a b.png"
    img.write_bytes(b"x")
    vid, poster = out / "clip.mp4", out / "clip.png"
    vid.write_bytes(b"x")
    poster.write_bytes(b"x")
    rep = Report("<Demo> & co")
    rep.add_section("Flow <b>", "one <script>alert(1)</script>\n\nsecond para")
    rep.add_figure(img, 'caption "q"')
    rep.add_figure(vid, "video", poster=poster)
    rep.add_table([["walk", 1.23456789, 48], ["<x>", 2, True]], header=["name", "val", "n"])
    rep.add_code("hmore demo -o 'out dir' && echo <ok>")
    path = rep.save(out / "index.html")
    text = path.read_text()
    assert "<script>" not in text and "&lt;script&gt;" in text
    assert "<title>&lt;Demo&gt; &amp; co</title>" in text
    assert "<h2>Flow &lt;b&gt;</h2>" in text and text.count("<p>") == 2
    assert 'src="media/a%20b.png"' in text and "caption &quot;q&quot;" in text
    assert re.search(r'<video controls loop muted autoplay playsinline poster="clip.png"', text)
    assert '<source src="clip.mp4" type="video/mp4">' in text
    assert "1.235" in text and "&lt;x&gt;" in text
    assert "echo &lt;ok&gt;" in text
    assert "http" not in text and "<link" not in text and "<script" not in text  # self-contained
    for src in re.findall(r'(?:src|poster)="([^"]+)"', text):
        assert (out / src.replace("%20", " ")).exists()


def test_report_links_work_from_another_folder_and_missing_files_raise(tmp_path):
    (tmp_path / "media").mkdir()
    fig = tmp_path / "media" / "f.gif"
    fig.write_bytes(b"x")
    rep = Report("t").add_figure(fig, "")
    text = rep.save(tmp_path / "sub" / "index.html").read_text()
    assert 'src="../media/f.gif"' in text
    rep.add_figure(tmp_path / "gone.png", "")
    with pytest.raises(FileNotFoundError, match="gone.png"):
        rep.save(tmp_path / "index2.html")
    assert not (tmp_path / "index2.html").exists()
    with pytest.raises(ValueError, match="cannot show"):
        rep.add_figure(tmp_path / "x.txt")
    with pytest.raises(ValueError, match="row 1"):
        rep.add_table([[1, 2], [3]], header=["a", "b"])
