"""Rigged meshes without Anny: forward kinematics and skinning, H36M retargeting, the triangle rasteriser and the
exactness of its flow (a toy rig with Anny's bone names, so these tests need neither anny nor its cache)."""

from __future__ import annotations

import numpy as np
import pytest

from hmore.skeleton import H36M17
from hmore.synth.camera import CameraTrack, intrinsics, look_rotation
from hmore.synth.identity import Identity, sample_identity
from hmore.synth.mesh_raster import MeshRasteriser, MeshTrack, rasterise_triangles
from hmore.synth.motion import generate_motion
from hmore.synth.raster import Background, PartSet
from hmore.synth.retarget import RigRoles, relength, rest_joints, retarget_error, retarget_h36m
from hmore.synth.rig import JointRegressor, RigPose, SkinnedBody, forward_kinematics, posed_heads, regress, skin

ROLES = RigRoles(
    root="root", pelvis=("pelvis.L", "pelvis.R"), spine=("spine05", "spine04", "spine03", "spine02", "spine01"),
    belly="spine03", neck=("neck01", "neck02"), head="head",
    clavicle=(("clavicle.L",), ("clavicle.R",)), upper_arm=(("upperarm01.L",), ("upperarm01.R",)),
    forearm=(("lowerarm01.L",), ("lowerarm01.R",)), hand=(("wrist.L",), ("wrist.R",)),
    thigh=(("upperleg01.L",), ("upperleg01.R",)), shin=(("lowerleg01.L",), ("lowerleg01.R",)),
    foot=(("foot.L",), ("foot.R",)),
)

CUBE_FACES = np.array([[0, 2, 1], [0, 3, 2], [4, 5, 6], [4, 6, 7], [0, 1, 5], [0, 5, 4], [1, 2, 6], [1, 6, 5],
                       [2, 3, 7], [2, 7, 6], [3, 0, 4], [3, 4, 7]], dtype=np.int32)


def cube(centre: np.ndarray, half: float) -> np.ndarray:
    """(8, 3) corners of an axis-aligned cube; CUBE_FACES are counter-clockwise seen from outside."""
    c = np.array([[-1, -1, -1], [1, -1, -1], [1, 1, -1], [-1, 1, -1], [-1, -1, 1], [1, -1, 1], [1, 1, 1], [-1, 1, 1]])
    return np.asarray(centre, float) + half * c


def test_cube_faces_point_outwards() -> None:
    v = cube(np.zeros(3), 1.0)
    tri = v[CUBE_FACES]
    n = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    assert (np.einsum("ij,ij->i", n, tri.mean(1)) > 0).all()


def toy_body() -> tuple[SkinnedBody, JointRegressor]:
    """A stick figure with Anny's bone names on the default identity's rest skeleton: one small cube per bone
    (rigidly skinned), and the nose and head top as two vertices of the head bone."""
    j = Identity(identity_id=0).rest_pose()
    mid = lambda a, b, w=0.5: (1 - w) * j[a] + w * j[b]  # noqa: E731
    bones: list[tuple[str, str | None, np.ndarray]] = [("root", None, j[0]), ("pelvis.L", "root", j[0]),
                                                       ("pelvis.R", "root", j[0])]
    for s, (hip, knee, ankle) in (("L", (4, 5, 6)), ("R", (1, 2, 3))):
        bones += [(f"upperleg01.{s}", f"pelvis.{s}", j[hip]), (f"lowerleg01.{s}", f"upperleg01.{s}", j[knee]),
                  (f"foot.{s}", f"lowerleg01.{s}", j[ankle])]
    spine = ["spine05", "spine04", "spine03", "spine02", "spine01"]
    spine_heads = [j[0], mid(0, 7), j[7], mid(7, 8, 0.4), mid(7, 8, 0.75)]  # spine03 is the belly joint
    for k, name in enumerate(spine):
        bones.append((name, "root" if k == 0 else spine[k - 1], spine_heads[k]))
    bones += [("neck01", "spine01", j[8]), ("neck02", "neck01", mid(8, 9, 0.4)), ("head", "neck02", mid(8, 9, 0.8))]
    for s, (sho, elb, wri) in (("L", (11, 12, 13)), ("R", (14, 15, 16))):
        bones += [(f"clavicle.{s}", "spine01", mid(8, sho, 0.2)), (f"upperarm01.{s}", f"clavicle.{s}", j[sho]),
                  (f"lowerarm01.{s}", f"upperarm01.{s}", j[elb]), (f"wrist.{s}", f"lowerarm01.{s}", j[wri])]
    names = tuple(b[0] for b in bones)
    parents = np.array([-1 if b[1] is None else names.index(b[1]) for b in bones])
    heads = np.array([b[2] for b in bones])
    verts, faces, index = [], [], []
    for k in range(len(bones)):
        faces.append(CUBE_FACES + 8 * k)
        verts.append(cube(heads[k], 0.02))
        index += [k] * 8
    head = names.index("head")
    verts.append(np.stack([j[9], j[10]]))  # nose, head top: vertices of the head bone
    index += [head, head]
    verts = np.concatenate(verts)
    v = len(verts)
    body = SkinnedBody(bone_names=names, parents=parents, heads=heads, vertices=verts, faces=np.concatenate(faces),
                       skin_index=np.array(index)[:, None], skin_weight=np.ones((v, 1)), regions=np.ones((v, 1)))
    hw = np.zeros((17, len(names)))
    for h36m, name in ((1, "upperleg01.R"), (2, "lowerleg01.R"), (3, "foot.R"), (4, "upperleg01.L"),
                       (5, "lowerleg01.L"), (6, "foot.L"), (11, "upperarm01.L"), (12, "lowerarm01.L"),
                       (13, "wrist.L"), (14, "upperarm01.R"), (15, "lowerarm01.R"), (16, "wrist.R")):
        hw[h36m, names.index(name)] = 1.0
    hw[0, [names.index("upperleg01.L"), names.index("upperleg01.R")]] = 0.5
    hw[7, names.index("spine03")] = 1.0
    hw[8, names.index("neck01")] = 1.0
    vi = np.zeros((17, 1), dtype=np.int64)
    vw = np.zeros((17, 1))
    vi[9, 0], vi[10, 0] = v - 2, v - 1
    vw[9, 0] = vw[10, 0] = 1.0
    return body, JointRegressor(names=H36M17.joints, head_weights=hw, vertex_index=vi, vertex_weight=vw)


def identity_pose(body: SkinnedBody, t: int = 1) -> RigPose:
    return RigPose(rot=np.broadcast_to(np.eye(3), (t, body.num_bones, 3, 3)).copy(),
                   root=np.broadcast_to(body.heads[0], (t, 3)).copy())


# ---- forward kinematics and skinning -----------------------------------------------------------------------------


def test_rest_pose_gives_the_rest_mesh_and_joints() -> None:
    body, reg = toy_body()
    tr = forward_kinematics(body, identity_pose(body))
    np.testing.assert_allclose(skin(body, tr)[0], body.vertices, atol=1e-12)
    np.testing.assert_allclose(rest_joints(body, reg), Identity(identity_id=0).rest_pose(), atol=1e-12)


def test_turning_the_root_turns_and_moves_everything_rigidly() -> None:
    body, _ = toy_body()
    pose = identity_pose(body)
    c, s = np.cos(0.7), np.sin(0.7)
    r = np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]])
    pose.rot[:] = r
    pose.root[0] += (1.0, 0.0, 2.0)
    verts = skin(body, forward_kinematics(body, pose))[0]
    want = (body.vertices - body.heads[0]) @ r.T + body.heads[0] + (1.0, 0.0, 2.0)
    np.testing.assert_allclose(verts, want, atol=1e-12)


def test_a_child_head_follows_its_parent_bone() -> None:
    body, _ = toy_body()
    pose = identity_pose(body)
    knee = body.bone("upperleg01.L")
    c, s = np.cos(0.5), np.sin(0.5)
    pose.rot[0, knee] = np.array([[1, 0, 0], [0, c, -s], [0, s, c]])  # thigh forward (about x)
    heads = posed_heads(body, forward_kinematics(body, pose))[0]
    shin = body.bone("lowerleg01.L")
    np.testing.assert_allclose(heads[shin], body.heads[knee] + pose.rot[0, knee] @ (body.heads[shin] -
                                                                                       body.heads[knee]))
    assert np.linalg.norm(heads[shin] - heads[knee]) == pytest.approx(np.linalg.norm(body.heads[shin] -
                                                                                      body.heads[knee]))


def test_bad_shapes_are_rejected() -> None:
    body, reg = toy_body()
    with pytest.raises(ValueError, match="forward_kinematics"):
        forward_kinematics(body, RigPose(rot=np.zeros((1, 3, 3, 3)), root=np.zeros((1, 3))))
    with pytest.raises(ValueError, match="sum to 1"):
        JointRegressor(names=("a",), head_weights=np.zeros((1, 2)), vertex_index=np.zeros((1, 1), int),
                       vertex_weight=np.full((1, 1), 0.5))
    with pytest.raises(ValueError, match="retarget_h36m"):
        retarget_h36m(body, ROLES, reg, np.zeros((4, 16, 3)))


# ---- retargeting ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("action", ["walk", "jump", "kick", "sit_down"])
def test_retargeting_puts_limbs_exactly_and_the_rest_close(action: str) -> None:
    body, reg = toy_body()
    other = sample_identity(7)  # a different skeleton: the motion is given the toy's bone lengths first
    m = generate_motion(action, other, num_frames=24, fps=30.0, seed=1)
    pose = retarget_h36m(body, ROLES, reg, m.joints)
    err = retarget_error(body, reg, pose, m.joints)  # (T, 17) metres
    assert err[:, :7].max() < 1e-9  # root and legs are exact
    assert err[:, 11:].max() < 1e-3  # arms: the shoulders are placed by turning the clavicles (about their head)
    assert err[:, 8:11].max() < 5e-3  # neck, nose, head: the neck chain bends
    assert err.mean() < 2e-3
    # the posed skeleton keeps the body's bone lengths
    got = regress(body, reg, forward_kinematics(body, pose))
    rest = rest_joints(body, reg)
    for a, b in H36M17.bones:
        tol = 1e-3 if {a, b} & {7, 8, 9, 10} else 1e-9  # the trunk and head bend (spine and neck chains)
        np.testing.assert_allclose(np.linalg.norm(got[:, b] - got[:, a], axis=-1), np.linalg.norm(rest[b] - rest[a]),
                                   atol=tol)


def test_relength_keeps_directions_and_the_root() -> None:
    m = generate_motion("walk", sample_identity(3), num_frames=5, fps=30.0, seed=0)
    lengths = np.full(16, 0.3)
    out = relength(m.joints, lengths)
    np.testing.assert_allclose(out[:, 0], m.joints[:, 0])
    for a, b in H36M17.bones:
        d_src = m.joints[:, b] - m.joints[:, a]
        d_out = out[:, b] - out[:, a]
        np.testing.assert_allclose(np.linalg.norm(d_out, axis=-1), 0.3)
        np.testing.assert_allclose(d_out / 0.3, d_src / np.linalg.norm(d_src, axis=-1, keepdims=True), atol=1e-12)


def test_retargeting_is_deterministic_and_smooth() -> None:
    body, reg = toy_body()
    m = generate_motion("walk", Identity(identity_id=0), num_frames=30, fps=30.0, seed=2)
    a = retarget_h36m(body, ROLES, reg, m.joints)
    b = retarget_h36m(body, ROLES, reg, m.joints)
    assert a.rot.tobytes() == b.rot.tobytes()
    # no flips: consecutive frames' bone rotations differ by small angles
    rel = np.einsum("tjik,tjil->tjkl", a.rot[:-1], a.rot[1:])
    angle = np.arccos(np.clip((np.trace(rel, axis1=-2, axis2=-1) - 1) / 2, -1, 1))
    assert angle.max() < 0.35


# ---- the triangle rasteriser -------------------------------------------------------------------------------------


def test_a_square_covers_exactly_the_pixel_centres_inside_it() -> None:
    # a square facing the camera at depth 2: x in [-0.5, 0.5] m, y in [-0.25, 0.25] m; f = 10 px/m at depth 1
    v = np.array([[-0.5, -0.25, 2.0], [0.5, -0.25, 2.0], [0.5, 0.25, 2.0], [-0.5, 0.25, 2.0]])
    faces = np.array([[0, 3, 2], [0, 2, 1]])  # outward normal towards the camera (-z)
    f, cx, cy = 10.0, 7.7, 5.5
    uv = v[:, :2] / v[:, 2:] * f + (cx, cy)  # x from 5.2 to 10.2, y from 4.25 to 6.75
    zbuf = np.full(12 * 16, np.inf)
    hits = rasterise_triangles(uv, 1.0 / v[:, 2], faces, (12, 16), zbuf)
    covered = np.zeros(12 * 16, bool)
    covered[hits.pixel] = True
    want = np.zeros((12, 16), bool)
    want[5:7, 6:11] = True  # rows 5, 6 (y in [4.25, 6.75]); columns 6..10
    np.testing.assert_array_equal(covered.reshape(12, 16), want)
    np.testing.assert_allclose(hits.depth, 2.0)
    np.testing.assert_allclose(hits.bary.sum(1), 1.0)
    # the back side is culled
    back = rasterise_triangles(uv, 1.0 / v[:, 2], faces[:, ::-1], (12, 16), np.full(12 * 16, np.inf))
    assert back.pixel.size == 0


def test_nearer_triangles_win_and_the_depth_buffer_is_respected() -> None:
    far = np.array([[-1.0, -1.0, 4.0], [1.0, -1.0, 4.0], [1.0, 1.0, 4.0], [-1.0, 1.0, 4.0]])
    near = far * (1, 1, 0.5)  # the same square at depth 2
    v = np.concatenate([far, near])
    faces = np.array([[0, 3, 2], [0, 2, 1], [4, 7, 6], [4, 6, 5]])
    uv = v[:, :2] / v[:, 2:] * 4.0 + (7.5, 7.5)
    hits = rasterise_triangles(uv, 1.0 / v[:, 2], faces, (16, 16), np.full(256, np.inf))
    assert set(np.unique(hits.face)) == {2, 3} and np.allclose(hits.depth, 2.0)
    wall = np.full(256, 1.5)  # something nearer is already drawn everywhere
    assert rasterise_triangles(uv, 1.0 / v[:, 2], faces, (16, 16), wall).pixel.size == 0


def _cube_scene(spin: float, shift: np.ndarray, texture: str = "noise", shading: bool = False) -> MeshRasteriser:
    """A 1.2 m cube 3.5 m in front of a 64x80 camera that moves by ``shift`` and turns by ``spin`` about +y."""
    from hmore.synth.body import Material

    rest = cube(np.zeros(3), 0.6)
    c, s = np.cos(spin), np.sin(spin)
    r = np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]])
    centre = np.array([0.0, 1.0, 3.5])
    verts = np.stack([rest + centre, rest @ r.T + centre + shift])
    mat = Material(pattern=texture, colour=(200, 60, 40), colour2=(40, 90, 220), scale=0.4, seed=3)
    track = MeshTrack(vertices=verts, faces=CUBE_FACES, texcoords=rest, material_weights=np.ones((8, 1)),
                      materials=(mat,), owner=1)
    R = np.broadcast_to(look_rotation(np.array([0.0, 0.0, 1.0])), (2, 3, 3)).copy()
    t = -np.einsum("tij,j->ti", R, np.array([0.0, 1.0, 0.0]))
    cam = CameraTrack(K=intrinsics((64, 80), 60.0), R=R, t=t, size=(64, 80))
    bg = Background(centre_xz=(0.0, 4.0), radius=40.0, ground_colours=((90, 90, 90), (120, 120, 120)),
                    backdrop_colours=((60, 80, 100), (150, 160, 170)), tile=0.5, seed=1)
    empty = PartSet(kind=np.zeros(0, np.int8), half=np.zeros((0, 3)), rot=np.zeros((2, 0, 3, 3)),
                    centre=np.zeros((2, 0, 3)), owner=np.zeros(0, np.int32), pattern=np.zeros(0, np.int8),
                    colour=np.zeros((0, 3)), colour2=np.zeros((0, 3)), scale=np.zeros(0), seed=np.zeros(0, np.int64))
    return MeshRasteriser(parts=empty, background=bg, camera=cam, meshes=[track], shading=shading)


def test_mesh_flow_is_the_exact_motion_of_the_surface_point() -> None:
    shift = np.array([0.08, 0.02, -0.1])
    ras = _cube_scene(0.3, shift)
    fr = ras.render(0)
    on = fr.owner == 1
    assert on.sum() > 200 and (fr.part[on] == -3).all()
    # the surface point seen at each pixel: depth along the pixel's ray, moved with the cube, projected
    cam = ras.camera
    ii, jj = np.nonzero(on)
    ray = np.linalg.inv(cam.K) @ np.stack([jj, ii, np.ones_like(jj)]).astype(float)  # camera coordinates, z = 1
    p = ray * fr.depth[on]
    world = cam.R[0].T @ (p - cam.t[0][:, None])
    c, s = np.cos(0.3), np.sin(0.3)
    r = np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]])
    centre = np.array([0.0, 1.0, 3.5])
    moved = r @ (world - centre[:, None]) + (centre + shift)[:, None]
    q = cam.R[1] @ moved + cam.t[1][:, None]
    uv = (cam.K @ (q / q[2]))[:2]
    np.testing.assert_allclose(fr.flow[on], (uv - np.stack([jj, ii])).T, atol=1e-6)
    np.testing.assert_allclose(fr.depth_next[on], q[2], atol=1e-9)


def test_mesh_colours_stay_on_the_surface() -> None:
    import cv2

    ras = _cube_scene(0.15, np.array([0.05, 0.0, 0.0]), texture="noise")
    f0, f1 = ras.render(0), ras.render(1)
    h, w = f0.owner.shape
    jj, ii = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    mx, my = jj + f0.flow[..., 0].astype(np.float32), ii + f0.flow[..., 1].astype(np.float32)
    warped = cv2.remap(f1.image.astype(np.float32), mx, my, cv2.INTER_LINEAR)
    inner = (f0.owner == 1) & (cv2.erode((f0.owner == 1).astype(np.uint8), np.ones((5, 5))) > 0)
    inner &= cv2.remap((f1.owner == 1).astype(np.float32), mx, my, cv2.INTER_NEAREST) > 0
    err = np.abs(warped - f0.image).mean(-1)[inner]
    still = np.abs(f1.image.astype(float) - f0.image).mean(-1)[inner]
    assert inner.sum() > 100 and still.mean() > 3.0
    assert err.mean() < 0.15 * still.mean()


def test_mesh_shading_changes_colours_not_flow() -> None:
    a = _cube_scene(0.2, np.zeros(3), shading=False).render(0)
    b = _cube_scene(0.2, np.zeros(3), shading=True).render(0)
    on = a.owner == 1
    assert not np.array_equal(a.image[on], b.image[on])
    np.testing.assert_array_equal(a.flow, b.flow)


def test_mesh_track_contracts() -> None:
    with pytest.raises(ValueError, match="material_weights"):
        MeshTrack(vertices=np.zeros((2, 8, 3)), faces=CUBE_FACES, texcoords=np.zeros((8, 3)),
                  material_weights=np.ones((8, 2)), materials=(), owner=1)


def test_unknown_body_model_is_a_usage_error() -> None:
    from hmore.errors import UsageError
    from hmore.synth.clip import render_clip

    with pytest.raises(UsageError, match="unknown body model"):
        render_clip(size=(64, 80), num_frames=2, body="clay")
