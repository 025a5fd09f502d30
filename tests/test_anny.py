"""Anny bodies in the generator (needs the ``body`` extra; the first run in a fresh environment builds Anny's
blend-shape cache, about 3 minutes, once; no Warp kernel is ever compiled: hmore poses and skins in numpy)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("anny", reason="the body extra (anny) is not installed")

from hmore.cli import main as cli_main  # noqa: E402
from hmore.synth.anny_body import (  # noqa: E402
    ANNY_ROLES,
    REGIONS,
    Outfit,
    Phenotype,
    anny_body,
    anny_person,
    coco_regressor,
    h36m_regressor,
    pose_anny,
    sample_phenotype,
)
from hmore.synth.checks import warp_error as warp_ratio  # noqa: E402
from hmore.synth.clip import load_clip, render_clip  # noqa: E402
from hmore.synth.identity import sample_identity  # noqa: E402
from hmore.synth.motion import generate_motion  # noqa: E402
from hmore.synth.retarget import rest_joints, retarget_error, retarget_h36m  # noqa: E402

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def clip():
    return render_clip(size=(96, 128), num_frames=4, subjects=2, seed=3, actions=["run"], distractors=2,
                       conditions=["bag", "coat"], body="anny")


def test_anny_bodies_have_annys_mesh_and_proportions() -> None:
    body = anny_body(Phenotype())
    assert body.vertices.shape == (13718, 3) and body.faces.shape == (27420, 3) and body.num_bones == 104
    assert body.regions.shape == (13718, len(REGIONS))
    np.testing.assert_allclose(body.regions.sum(1), 1.0)
    tall, short = anny_body(Phenotype(height=0.9)), anny_body(Phenotype(height=0.1))
    stature = [float(np.ptp(b.vertices[:, 1])) for b in (short, body, tall)]
    assert 1.2 < stature[0] < stature[1] < stature[2] < 2.5
    adults = [float(np.ptp(anny_body(sample_phenotype(i)).vertices[:, 1])) for i in range(12)]
    assert 1.3 < min(adults) and max(adults) < 2.0  # teenagers to tall adults
    rest = rest_joints(body, h36m_regressor(body))
    assert rest[10, 1] > rest[9, 1] > rest[8, 1] > rest[7, 1] > rest[0, 1] > rest[2, 1] > rest[3, 1]  # upright
    assert rest[4, 0] > 0 > rest[1, 0] and rest[11, 0] > 0 > rest[14, 0]  # left is +x
    assert rest[9, 2] > rest[8, 2]  # the face looks along +z


def test_outfits_change_regions_not_shape() -> None:
    long = anny_body(Phenotype(), Outfit(sleeves="long", legs="long", hair="short"))
    short = anny_body(Phenotype(), Outfit(sleeves="short", legs="short", hair="none"))
    np.testing.assert_array_equal(long.vertices, short.vertices)
    skin, hair = REGIONS.index("skin"), REGIONS.index("hair")
    assert short.regions[:, skin].sum() > long.regions[:, skin].sum() + 1000
    assert short.regions[:, hair].max() == 0 and long.regions[:, hair].sum() > 300


def test_phenotypes_are_reproducible_and_varied() -> None:
    assert sample_phenotype(5) == sample_phenotype(5)
    ph = [sample_phenotype(i) for i in range(40)]
    assert len({p.height for p in ph}) == 40
    assert min(p.gender for p in ph) < 0.3 and max(p.gender for p in ph) > 0.7
    with pytest.raises(ValueError, match="Phenotype.weight"):
        Phenotype(weight=1.5)


def test_coco_keypoints_agree_with_the_mesh_and_skeleton() -> None:
    person = anny_person(sample_identity(11), "normal")
    posed = pose_anny(person, generate_motion("walk", person.identity, num_frames=6, seed=0), "normal")
    verts, coco, h36m = posed.vertices, posed.coco, posed.motion.joints
    # face points lie on the skin (within 2 cm of a vertex)
    for k in range(5):
        d = np.linalg.norm(verts - coco[:, k, None], axis=-1).min(axis=1)
        assert d.max() < 0.02, (k, d.max())
    # limb keypoints are the skeleton's joints (COCO hips sit a little lower and wider than the hip joints)
    pairs = {5: 11, 6: 14, 7: 12, 8: 15, 9: 13, 10: 16, 13: 5, 14: 2, 15: 6, 16: 3, 11: 4, 12: 1}
    for c, h in pairs.items():
        tol = 0.08 if c in (11, 12) else 0.04
        assert np.linalg.norm(coco[:, c] - h36m[:, h], axis=-1).max() < tol, (c, h)
    # keypoints are inside the body: the mesh surrounds each limb keypoint
    for c in (7, 8, 13, 14):
        near = verts[0][np.linalg.norm(verts[0] - coco[0, c], axis=-1) < 0.12]
        assert (near - coco[0, c]).mean(axis=0) @ (near - coco[0, c]).mean(axis=0) < 0.03**2


def test_generated_motion_retargets_onto_anny_within_millimetres() -> None:
    person = anny_person(sample_identity(4), "normal")
    body = anny_body(person.phenotype, person.outfit)
    reg = h36m_regressor(body)
    m = generate_motion("jump", sample_identity(9), num_frames=30, seed=2)  # another person's skeleton
    err = retarget_error(body, reg, retarget_h36m(body, ANNY_ROLES, reg, m.joints), m.joints)
    body_joints = [j for j in range(17) if j not in (9, 10)]  # the face points' definitions differ by source
    assert err[:, body_joints].max() < 1e-3
    assert err.mean() < 0.005


def test_anny_clip_is_a_valid_deterministic_clip(clip, tmp_path: Path) -> None:
    a = clip.save(tmp_path / "a.npz")
    b = render_clip(size=(96, 128), num_frames=4, subjects=2, seed=3, actions=["run"], distractors=2,
                    conditions=["bag", "coat"], body="anny").save(tmp_path / "b.npz")
    assert a.read_bytes() == b.read_bytes()
    loaded = load_clip(a)
    assert loaded.meta["params"]["body"] == "anny" and loaded.meta["bodies"][0]["model"] == "anny"
    assert {1, 2} <= set(np.unique(clip.masks))
    # accessories: the coat's hem and the bag belong to their subjects
    assert clip.meta["labels"][0]["condition"] == "bag"


def test_anny_flow_reproduces_the_next_frame_as_well_as_capsules_do(clip) -> None:
    err, zero = warp_ratio(clip, clip.masks[:-1] > 0)
    capsule = render_clip(size=(96, 128), num_frames=4, subjects=2, seed=3, actions=["run"], distractors=2,
                          conditions=["bag", "coat"])
    err_capsule, _ = warp_ratio(capsule, capsule.masks[:-1] > 0)
    assert zero > 5.0
    assert err < 0.4 * zero
    assert err < 1.3 * err_capsule  # the same textures; the mesh adds fine silhouettes (fingers, face, ears)


def test_anny_keypoints_visible_inside_their_mask_and_3d_is_rigid(clip) -> None:
    kp = clip.kp2d
    vis = kp[..., 2] == 1
    assert vis.mean() > 0.5
    t, p, j = np.nonzero(vis)
    x, y = np.rint(kp[t, p, j, 0]).astype(int), np.rint(kp[t, p, j, 1]).astype(int)
    assert (clip.masks[t, y, x] == p + 1).all()
    k3 = clip.kp3d.astype(np.float64)
    for a, b in ((1, 2), (2, 3), (11, 12), (12, 13)):
        bone = np.linalg.norm(k3[:, :, b] - k3[:, :, a], axis=-1)
        assert np.ptp(bone, axis=0).max() < 1e-5


def test_coco_regressor_has_the_coco_order() -> None:
    reg = coco_regressor(anny_body(Phenotype()))
    assert reg.names[0] == "nose" and reg.names[-1] == "right_ankle" and len(reg.names) == 17


def test_cli_renders_anny_bodies(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    argv = ["synth", "--out", str(tmp_path / "d"), "--frames", "2", "--size", "64x80", "--body", "anny",
            "--identities", "3", "--distractors", "0"]
    assert cli_main(argv) == 0
    clip = load_clip(tmp_path / "d" / "clip_00000.npz")
    assert clip.meta["params"]["body"] == "anny" and clip.meta["labels"][0]["identity"] == 3
