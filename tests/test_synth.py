"""The ground-truth renderer (hmore.synth): clip format, determinism, exactness of flow, keypoints and errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from hmore.cli import main as cli_main
from hmore.errors import InputError, UsageError
from hmore.synth.body import CONDITIONS, body_frames, build_body, measure_bones, part_poses
from hmore.synth.camera import CameraTrack, intrinsics, look_rotation
from hmore.synth.checks import warp_error
from hmore.synth.clip import CLIP_KEYS, Clip, load_clip, local_flow, render_clip
from hmore.synth.dataset import MANIFEST, clip_seed, write_dataset
from hmore.synth.identity import sample_identity
from hmore.synth.motion import generate_motion
from hmore.synth.raster import Background, PartSet, Rasteriser

SMALL = {"size": (64, 80), "num_frames": 4, "subjects": 2}


# ---- helpers -----------------------------------------------------------------------------------------------------


def warp_ratio(clip: Clip, region: np.ndarray) -> tuple[float, float]:
    """Warp error of the flow and of zero flow over ``region`` (see :func:`hmore.synth.checks.warp_error`)."""
    return warp_error(clip, region)


def one_sphere_scene(shift_x: float = 0.1, spin: float = 0.0, pattern: int = 0) -> Rasteriser:
    """A sphere of radius 0.5 m, 5 m in front of a camera (90 deg fov, 64x80) at height 1 m, on the optical axis;
    between the two frames it moves +x by ``shift_x`` and turns by ``spin`` radians about world +z."""
    T = 2
    centre = np.array([[[0.0, 1.0, 5.0]], [[shift_x, 1.0, 5.0]]])  # (T, 1, 3)
    c, s = np.cos(spin), np.sin(spin)
    rot = np.stack([np.eye(3), np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])])[:, None]  # (T, 1, 3, 3)
    parts = PartSet(kind=np.zeros(1, np.int8), half=np.full((1, 3), 0.5), rot=rot,
                    centre=centre, owner=np.ones(1, np.int32), pattern=np.full(1, pattern, np.int8),
                    colour=np.array([[200.0, 50.0, 50.0]]), colour2=np.zeros((1, 3)), scale=np.full(1, 0.2),
                    seed=np.zeros(1, np.int64))
    R = np.broadcast_to(look_rotation(np.array([0.0, 0.0, 1.0])), (T, 3, 3)).copy()
    t = -np.einsum("tij,j->ti", R, np.array([0.0, 1.0, 0.0]))
    cam = CameraTrack(K=intrinsics((64, 80), 90.0), R=R, t=t, size=(64, 80))
    bg = Background(centre_xz=(0.0, 5.0), radius=40.0, ground_colours=((90, 90, 90), (120, 120, 120)),
                    backdrop_colours=((60, 80, 100), (150, 160, 170)), tile=0.5, seed=1)
    return Rasteriser(parts=parts, background=bg, camera=cam)


@pytest.fixture(scope="module")
def static_clip() -> Clip:
    return render_clip(size=(96, 128), num_frames=4, subjects=2, seed=3, actions=["run"], camera_motion="static",
                       distractors=2)


@pytest.fixture(scope="module")
def pan_clip() -> Clip:
    return render_clip(size=(96, 128), num_frames=4, subjects=2, seed=3, actions=["run"], camera_motion="pan",
                       distractors=0)


# ---- camera and rasteriser against hand-computed values -------------------------------------------------------


def test_intrinsics_from_fov() -> None:
    K = intrinsics((64, 80), 90.0)  # f = (W / 2) / tan(45 deg) = 40; principal point at the image centre
    np.testing.assert_allclose(K, [[40.0, 0.0, 39.5], [0.0, 40.0, 31.5], [0.0, 0.0, 1.0]])
    R = look_rotation(np.array([0.0, 0.0, 1.0]))  # looking along +z with y up: image right is world -x
    np.testing.assert_allclose(R, [[-1, 0, 0], [0, -1, 0], [0, 0, 1]], atol=1e-12)


def test_sphere_depth_area_and_flow() -> None:
    fr = one_sphere_scene(0.1).render(0)
    # ray through pixel (i=31, j=39): d = ((39 - 39.5) / 40, (31 - 31.5) / 40, 1); sphere centre c = (0, 0, 5), r 0.5
    d = np.array([-0.0125, -0.0125, 1.0])
    a, b, c = d @ d, d @ np.array([0.0, 0.0, 5.0]), 25.0 - 0.25
    depth = (b - np.sqrt(b * b - a * c)) / a
    assert fr.depth[31, 39] == pytest.approx(depth, abs=1e-9)
    # silhouette: radius f * tan(asin(0.1)) = 4.02 px -> about 50.8 pixels
    area = int((fr.owner == 1).sum())
    assert 44 <= area <= 58
    assert set(np.unique(fr.part)) <= {-2, -1, 0}
    # the sphere moves 0.1 m along world +x = camera -x: flow_x = -f * 0.1 / z, flow_y = 0 on the sphere
    on = fr.owner == 1
    np.testing.assert_allclose(fr.flow[on, 0], -40.0 * 0.1 / fr.depth[on], rtol=1e-9)
    np.testing.assert_allclose(fr.flow[on, 1], 0.0, atol=1e-9)
    np.testing.assert_allclose(fr.flow[~on], 0.0, atol=1e-9)  # static camera, static background
    # plain red without shading: every sphere pixel has exactly its colour (brightness constancy holds trivially)
    assert (fr.image[on] == (200, 50, 50)).all()


def test_spin_about_the_optical_axis_rotates_the_flow() -> None:
    # turning the scene about the camera's optical axis turns the image about the principal point, exactly
    theta = 0.1
    fr = one_sphere_scene(shift_x=0.0, spin=theta, pattern=2).render(0)
    on = fr.owner == 1
    ii, jj = np.nonzero(on)
    rel = np.stack([jj - 39.5, ii - 31.5], axis=-1)  # pixel centres relative to the principal point
    c, s = np.cos(theta), np.sin(theta)
    want = rel @ np.array([[c, s], [-s, c]]) - rel  # (R - I) rel, R the 2D rotation by theta
    np.testing.assert_allclose(fr.flow[on], want, atol=1e-9)
    assert len(np.unique(fr.image[on], axis=0)) > 5  # textured, so the spin is visible in the frames too


# ---- bodies ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("condition", CONDITIONS)
def test_body_parts_are_rigid(condition: str) -> None:
    person = sample_identity(4)
    m = generate_motion("walk", person, num_frames=12, seed=1, heading=0.7)
    body = build_body(person, condition, measure_bones(m.joints))
    frames = body_frames(m.joints, m.face)
    rot, centre = part_poses(body, frames)  # (T, N, 3, 3), (T, N, 3)
    eye = np.einsum("tnji,tnjk->tnik", rot, rot)
    np.testing.assert_allclose(eye, np.broadcast_to(np.eye(3), eye.shape), atol=1e-9)
    np.testing.assert_allclose(np.linalg.det(rot), 1.0, atol=1e-9)
    names = [p.name for p in body.parts]
    assert ("bag" in names) == (condition == "bag")
    assert ("coat_hem" in names) == (condition == "coat")
    # each bone part keeps its distance to both of its bone's joints (it moves rigidly with the bone)
    for k, p in enumerate(body.parts):
        if p.frame.startswith("bone:"):
            a, b = (int(v) for v in p.frame[5:].split("-"))
            for j in (a, b):
                dist = np.linalg.norm(centre[:, k] - m.joints[:, j], axis=-1)
                np.testing.assert_allclose(dist, dist[0], atol=1e-6)


# ---- clips ------------------------------------------------------------------------------------------------------


def test_clip_format_and_roundtrip(tmp_path: Path) -> None:
    clip = render_clip(**SMALL, seed=1, conditions=["bag", "coat"], views=[0, 90])
    T, P, (H, W) = 4, 2, SMALL["size"]
    want = {"frames": ((T, H, W, 3), np.uint8), "flow": ((T - 1, H, W, 2), np.float32), "masks": ((T, H, W), np.uint8),
            "kp2d": ((T, P, 17, 3), np.float32), "kp3d": ((T, P, 17, 3), np.float32),
            "subject_velocity": ((T - 1, P, 2), np.float32), "K": ((3, 3), np.float32)}
    for key, (shape, dtype) in want.items():
        arr = getattr(clip, key)
        assert arr.shape == shape and arr.dtype == dtype, key
        assert np.isfinite(arr).all(), key
    assert set(np.unique(clip.masks)) <= {0, 1, 2}
    labels = clip.meta["labels"]
    assert [lab["condition"] for lab in labels] == ["bag", "coat"]
    assert [lab["view"] for lab in labels] == [0.0, 90.0]
    assert clip.meta["seed"] == 1 and clip.meta["generator"].startswith("hmore.synth")
    path = clip.save(tmp_path / "c.npz")
    with np.load(path) as z:
        assert set(z.files) == {*CLIP_KEYS, "camera_flow"}
        assert json.loads(str(z["meta"])) == clip.meta
    back = load_clip(path)
    for key in want:
        np.testing.assert_array_equal(getattr(back, key), getattr(clip, key))
    assert back.meta == clip.meta and back.flow_valid is None


def test_same_seed_same_bytes(tmp_path: Path) -> None:
    a = render_clip(**SMALL, seed=5).save(tmp_path / "a.npz")
    b = render_clip(**SMALL, seed=5).save(tmp_path / "b.npz")
    c = render_clip(**SMALL, seed=6)
    assert a.read_bytes() == b.read_bytes()
    assert not np.array_equal(c.frames, load_clip(a).frames)


def test_flow_reproduces_next_frame_on_subjects(static_clip: Clip) -> None:
    moving = static_clip.masks[:-1] > 0
    err, zero = warp_ratio(static_clip, moving)
    assert zero > 5.0  # the people really move
    assert err < 0.25 * zero


def test_pan_background_flow(pan_clip: Clip) -> None:
    bg = pan_clip.masks[:-1] == 0
    mag = np.linalg.norm(pan_clip.flow, axis=-1)
    assert np.median(mag[bg]) > 0.3  # the camera turns: the static background moves in the image
    err, zero = warp_ratio(pan_clip, bg)
    assert err < 0.25 * zero


def test_static_background_is_still_but_distractors_move(static_clip: Clip) -> None:
    bg = static_clip.masks[:-1] == 0
    mag = np.linalg.norm(static_clip.flow, axis=-1)[bg]
    assert (mag < 1e-6).mean() > 0.5  # ground and backdrop do not move under a static camera
    assert (mag > 0.05).any()  # distractors do


def test_shading_changes_colours_not_flow() -> None:
    flat = render_clip(**SMALL, seed=2, shading=False)
    lit = render_clip(**SMALL, seed=2, shading=True)
    np.testing.assert_array_equal(flat.flow, lit.flow)
    np.testing.assert_array_equal(flat.masks, lit.masks)
    assert not np.array_equal(flat.frames, lit.frames)


def test_visible_keypoints_fall_inside_their_mask(static_clip: Clip) -> None:
    kp = static_clip.kp2d
    T, P = kp.shape[:2]
    vis = kp[..., 2] == 1
    assert vis.mean() > 0.5
    t_idx, p_idx, j_idx = np.nonzero(vis)
    x = np.rint(kp[t_idx, p_idx, j_idx, 0]).astype(int)
    y = np.rint(kp[t_idx, p_idx, j_idx, 1]).astype(int)
    assert (static_clip.masks[t_idx, y, x] == p_idx + 1).all()
    assert set(np.unique(kp[..., 2])) <= {0.0, 1.0}


def test_subject_velocity_is_projected_root_displacement(static_clip: Clip) -> None:
    K = static_clip.K.astype(np.float64)
    root = static_clip.kp3d[:, :, 0].astype(np.float64)  # (T, P, 3) camera metres
    uv = root[..., :2] / root[..., 2:] * K[[0, 1], [0, 1]] + K[:2, 2]
    np.testing.assert_allclose(static_clip.subject_velocity, uv[1:] - uv[:-1], atol=1e-3)
    # the root is the mid-hip: the 2D hips straddle its projection (up to perspective, a fraction of a pixel)
    hips = static_clip.kp2d[:, :, 11:13, :2].mean(axis=2)
    np.testing.assert_allclose(hips, uv, atol=0.2)


def test_world_is_local_plus_subject_velocity(static_clip: Clip) -> None:
    loc = static_clip.local_flow()
    m = static_clip.masks[:-1]
    v = static_clip.subject_velocity
    for k in range(1, static_clip.num_subjects + 1):
        inside = m == k
        t_idx = np.nonzero(inside)[0]
        np.testing.assert_allclose(static_clip.flow[inside], loc[inside] + v[t_idx, k - 1], atol=1e-4)
    assert (loc[m == 0] == 0).all()


def test_local_flow_by_hand() -> None:
    flow = np.ones((1, 2, 2, 2), np.float32)
    masks = np.array([[[0, 1], [2, 2]], [[0, 0], [0, 0]]], np.uint8)
    vel = np.array([[[0.5, 0.0], [1.0, 2.0]]], np.float32)
    out = local_flow(flow, masks, vel)
    np.testing.assert_allclose(out[0, 0, 0], [0, 0])
    np.testing.assert_allclose(out[0, 0, 1], [0.5, 1.0])
    np.testing.assert_allclose(out[0, 1, 0], [0.0, -1.0])
    with pytest.raises(ValueError, match="local_flow"):
        local_flow(flow[0], masks, vel)


def test_views_turn_the_walker() -> None:
    clip = render_clip(size=(64, 80), num_frames=10, subjects=3, seed=0, actions=["walk"], views=[0, 90, 180],
                       distractors=0)
    depth = clip.kp3d[:, :, 0, 2]  # root depth per subject
    step_x = np.abs(clip.subject_velocity[..., 0]).mean(axis=0)
    assert depth[-1, 0] < depth[0, 0] - 0.2  # view 0: walks towards the camera
    assert depth[-1, 2] > depth[0, 2] + 0.2  # view 180: walks away
    assert abs(depth[-1, 1] - depth[0, 1]) < 0.15 and step_x[1] > 2 * max(step_x[0], step_x[2])  # side view


def test_overlap_brings_subjects_together() -> None:
    def gap(overlap: float) -> float:
        c = render_clip(size=(64, 80), num_frames=2, subjects=2, seed=4, actions=["stand"], views=[90, 90],
                        overlap=overlap, distractors=0)
        return float(abs(c.kp2d[0, 0, 11:13, 0].mean() - c.kp2d[0, 1, 11:13, 0].mean()))

    assert gap(0.8) < 0.5 * gap(0.0)


# ---- errors -------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"actions": ["fly"]}, "unknown action"),
        ({"conditions": ["kilt"]}, "unknown condition"),
        ({"size": (0, 80)}, "positive"),
        ({"size": (64, -1)}, "positive"),
        ({"num_frames": 1}, "num_frames"),
        ({"subjects": 0}, "subjects"),
        ({"subjects": 40}, "do not fit"),
        ({"views": [200]}, "0-180"),
        ({"camera_motion": "zoom"}, "camera motion"),
        ({"overlap": 1.0}, "overlap"),
        ({"fov_deg": 0.0}, "field of view"),
        ({"elevation_deg": 90.0}, "elevation"),
        ({"distractors": -1}, "distractors"),
    ],
)
def test_bad_arguments_are_usage_errors(kwargs: dict, message: str) -> None:
    args = {**SMALL, "seed": 0, **kwargs}
    with pytest.raises(UsageError, match=message):
        render_clip(**args)


def test_unreadable_inputs_are_input_errors(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="not found"):
        render_clip(**SMALL, bvh=tmp_path / "missing.bvh")
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not a zip")
    with pytest.raises(InputError, match="cannot read"):
        load_clip(bad)
    np.savez(tmp_path / "partial.npz", frames=np.zeros((2, 4, 4, 3), np.uint8))
    with pytest.raises(InputError, match="missing"):
        load_clip(tmp_path / "partial.npz")


def test_garbage_bvh_is_an_input_error(tmp_path: Path) -> None:
    from hmore.synth import motion

    if not hasattr(motion, "motion_from_bvh"):
        pytest.skip("BVH playback (hmore.synth.motion.motion_from_bvh) not available yet")
    bad = tmp_path / "bad.bvh"
    bad.write_text("HIERARCHY\nROOT Hips\n{\n  OFFSET 0 zero 0\n")
    with pytest.raises(InputError):
        render_clip(**SMALL, bvh=bad)


# ---- datasets and the CLI ---------------------------------------------------------------------------------------


def test_dataset_manifest_and_resume(tmp_path: Path) -> None:
    out = tmp_path / "ds"
    entries = write_dataset(out, clips=2, seed=9, size=(64, 80), num_frames=3, subjects=1, progress=False)
    files = sorted(p.name for p in out.iterdir())
    assert files == ["clip_00000.npz", "clip_00001.npz", MANIFEST]
    lines = [json.loads(s) for s in (out / MANIFEST).read_text().splitlines()]
    assert lines == entries
    assert [e["seed"] for e in lines] == [clip_seed(9, 0), clip_seed(9, 1)]
    assert lines[0]["labels"] == load_clip(out / "clip_00000.npz").meta["labels"]
    stamp = (out / "clip_00000.npz").stat().st_mtime_ns
    write_dataset(out, clips=3, seed=9, size=(64, 80), num_frames=3, subjects=1, progress=False)
    assert (out / "clip_00000.npz").stat().st_mtime_ns == stamp  # kept, not rendered again
    assert len((out / MANIFEST).read_text().splitlines()) == 3


def test_dataset_workers_do_not_change_bytes(tmp_path: Path) -> None:
    kw = {"clips": 2, "seed": 4, "size": (48, 64), "num_frames": 2, "subjects": 1, "progress": False}
    write_dataset(tmp_path / "one", workers=1, **kw)
    write_dataset(tmp_path / "two", workers=2, **kw)
    for name in ("clip_00000.npz", "clip_00001.npz", MANIFEST):
        assert (tmp_path / "one" / name).read_bytes() == (tmp_path / "two" / name).read_bytes()
    with pytest.raises(UsageError, match="workers"):
        write_dataset(tmp_path / "three", workers=0, **kw)


def test_cli_writes_clips_deterministically(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    argv = ["synth", "--clips", "2", "--frames", "3", "--size", "64x80", "--subjects", "2", "--seed", "7",
            "--conditions", "normal,bag", "--camera", "pan", "--distractors", "1", "--identities", "3,5"]
    assert cli_main([*argv, "--out", str(tmp_path / "a")]) == 0
    assert cli_main([*argv, "--out", str(tmp_path / "b")]) == 0
    assert "wrote 2 clips" in capsys.readouterr().out
    for name in ("clip_00000.npz", "clip_00001.npz", MANIFEST):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    clip = load_clip(tmp_path / "a" / "clip_00001.npz")
    assert clip.frames.shape == (3, 64, 80, 3) and clip.meta["params"]["camera_motion"] == "pan"
    assert [lab["identity"] for lab in clip.meta["labels"]] == [3, 5]  # as many ids as subjects: taken in order


@pytest.mark.parametrize(
    ("extra", "code", "message"),
    [
        (["--size", "0x80"], 2, "positive"),
        (["--size", "big"], 2, "HxW"),
        (["--actions", "fly"], 2, "unknown action"),
        (["--conditions", "kilt"], 2, "unknown condition"),
        (["--subjects", "40"], 2, "do not fit"),
        (["--views", "north"], 2, "views"),
        (["--identities", "x"], 2, "identities"),
        (["--bvh", "/nonexistent/walk.bvh"], 1, "not found"),
        (["--bvh", "{garbage}"], 1, "bad.bvh"),
        (["--clips", "0"], 2, "clips"),
        (["--distractors", "-1"], 2, "distractors"),
    ],
)
def test_cli_errors(tmp_path: Path, capsys: pytest.CaptureFixture, extra: list[str], code: int, message: str) -> None:
    garbage = tmp_path / "bad.bvh"
    garbage.write_text("HIERARCHY\nROOT Hips\n{\n  OFFSET 0 zero 0\n")
    extra = [e.replace("{garbage}", str(garbage)) for e in extra]
    out = tmp_path / "out"
    argv = ["synth", "--out", str(out), "--frames", "2", "--size", "64x80", *extra]
    assert cli_main(argv) == code
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("hmore synth: error:") and message in err[0]
    assert not out.exists() or not any(out.iterdir())  # no partial clip left behind


def test_every_action_renders() -> None:
    from hmore.synth.motion import ACTIONS

    for action in ACTIONS:
        clip = render_clip(size=(48, 40), num_frames=2, subjects=1, seed=0, actions=[action], distractors=0)
        assert clip.meta["labels"][0]["action"] == action
        assert (clip.masks == 1).sum() > 30, action  # the person is in the picture
        assert np.isfinite(clip.flow).all(), action


def test_given_motions_are_rendered_where_they_are() -> None:
    person = sample_identity(11)
    m = generate_motion("stand", person, num_frames=3, seed=0, start=(1.0, 2.0))
    clip = render_clip(size=(64, 80), num_frames=3, subjects=1, seed=0, motions=[m], identities=[person],
                       distractors=0)
    label = clip.meta["labels"][0]
    assert (label["action"], label["identity"]) == ("stand", 11)
    assert label["view"] == pytest.approx(180.0, abs=5)  # it faces +z, away from the camera
    # a standing person barely moves: the root keeps its camera position, and the camera centres on them
    np.testing.assert_allclose(clip.kp3d[:, 0, 0], clip.kp3d[0:1, 0, 0].repeat(3, axis=0), atol=0.05)
    assert abs(clip.kp2d[0, 0, 11:13, 0].mean() - 39.5) < 8


def test_people_never_walk_into_a_panning_camera() -> None:
    clip = render_clip(size=(48, 64), num_frames=120, subjects=1, seed=0, actions=["walk"], views=[0],
                       camera_motion="pan", distractors=0)
    depth = clip.kp3d[:, 0, :, 2]  # (T, 17) camera depth of every joint
    assert depth.min() > 1.5
    assert depth[0, 0] > depth[-1, 0] + 3.0  # it does come closer
    # the camera turns to follow: the root stays near the image centre column
    assert np.abs(clip.kp2d[:, 0, 11:13, 0].mean(axis=1) - 31.5).max() < 12


def test_camera_distance_shrinks_people_and_keeps_the_image_size() -> None:
    near = render_clip(size=(96, 128), num_frames=2, subjects=1, seed=5, distractors=0)
    far = render_clip(size=(96, 128), num_frames=2, subjects=1, seed=5, distractors=0, camera_distance=2.0)
    assert far.frames.shape == near.frames.shape
    height = [np.ptp(np.nonzero((c.masks[0] > 0).any(axis=1))[0]) for c in (near, far)]
    assert 0.4 < height[1] / height[0] < 0.6  # twice as far: about half as tall
    assert far.meta["params"]["camera_distance"] == 2.0
    assert far.meta["camera"]["person_px"] == pytest.approx(near.meta["camera"]["person_px"] / 2, rel=0.1)
    with pytest.raises(UsageError, match="camera_distance"):
        render_clip(size=(96, 128), num_frames=2, seed=5, camera_distance=0.5)
