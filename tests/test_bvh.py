"""BVH reader: parsing, forward kinematics against hand-computed poses, units, CMU mapping, malformed files."""

from __future__ import annotations

import filecmp
from pathlib import Path

import numpy as np
import pytest

from conftest import require_file
from hmore.errors import InputError
from hmore.io.bvh import UNITS, parse_bvh, read_bvh, to_coco, to_h36m
from hmore.skeleton import COCO17, H36M17
from hmore.synth.motion import embedded_bvh

# A 3-joint chain A -> B -> C (+ End Site) whose positions are computed by hand below.
TINY = """HIERARCHY
ROOT A
{
  OFFSET 0 0 0
  CHANNELS 6 Xposition Yposition Zposition Zrotation Xrotation Yrotation
  JOINT B
  {
    OFFSET 0 2 0
    CHANNELS 3 Yrotation Xrotation Zrotation
    JOINT C
    {
      OFFSET 1 0 0
      CHANNELS 3 Zrotation Yrotation Xrotation
      End Site
      {
        OFFSET 0 0 2
      }
    }
  }
}
MOTION
Frames: 2
Frame Time: 0.04
1 2 3 90 0 0 90 90 0 0 0 0
0 0 0 0 0 0 0 0 0 0 0 0
"""


def test_parse_structure() -> None:
    b = parse_bvh(TINY, name="tiny")
    assert b.names == ("A", "B", "C", "C_End")
    assert b.parents == (-1, 0, 1, 2)
    assert b.is_end_site == (False, False, False, True)
    assert b.channels[1] == ("Yrotation", "Xrotation", "Zrotation")
    assert b.channels[3] == ()
    assert b.channel_starts == (0, 6, 9, 12)
    assert b.motion.shape == (2, 12) and b.motion.dtype == np.float64
    assert b.frame_time == pytest.approx(0.04) and b.fps == pytest.approx(25.0)
    np.testing.assert_array_equal(b.offsets[3], [0, 0, 2])


def test_forward_kinematics_by_hand() -> None:
    b = parse_bvh(TINY)
    p = b.forward_kinematics(scale=1.0)
    assert p.shape == (2, 4, 3)
    # Frame 0: root at (1, 2, 3) turned Rz(90). B = root + Rz(90) (0, 2, 0) = (-1, 2, 3).
    # B's frame is Rz(90) Ry(90) Rx(90) (file order Y X Z with X = 90, Y = 90, Z = 0: Ry(90) Rx(90) locally).
    # C = B + Rz(90) Ry(90) Rx(90) (1, 0, 0) = B + (0, 0, -1); C_End = C + same rotation (0, 0, 2) = C + (2, 0, 0).
    np.testing.assert_allclose(p[0], [[1, 2, 3], [-1, 2, 3], [-1, 2, 2], [1, 2, 2]], atol=1e-12)
    # Frame 1: rest pose.
    np.testing.assert_allclose(p[1], [[0, 0, 0], [0, 2, 0], [1, 2, 0], [1, 2, 2]], atol=1e-12)
    # The reversed rotation order (Rx Ry) would put C at (-2, 2, 3): the order in the file matters.
    assert np.linalg.norm(p[0, 2] - [-2, 2, 3]) > 1.0


def test_scale_options() -> None:
    b = parse_bvh(TINY)
    ref = b.forward_kinematics(scale=1.0)
    np.testing.assert_allclose(b.forward_kinematics(scale=0.5), 0.5 * ref)
    np.testing.assert_allclose(b.forward_kinematics(scale="cm"), 0.01 * ref)
    np.testing.assert_allclose(b.forward_kinematics(scale=1.0, frames=[1]), ref[1:])
    # rest span 2 units: metres (2 m) is closest to the typical 1.45 m span
    assert b.auto_scale() == ("m", 1.0)
    with pytest.raises(ValueError, match="unknown BVH unit"):
        b.forward_kinematics(scale="furlong")
    with pytest.raises(ValueError, match="positive"):
        b.forward_kinematics(scale=-1.0)


def test_unknown_hierarchy_names_missing_joints() -> None:
    b = parse_bvh(TINY)
    p = b.forward_kinematics(scale=1.0)
    with pytest.raises(InputError, match="left_hip.*LeftUpLeg"):
        to_h36m(p, b)
    with pytest.raises(InputError, match="unknown BVH hierarchy"):
        to_coco(p, b)


def _lines(text: str) -> list[str]:
    return text.splitlines()


def _replace_line(text: str, lineno: int, new: str) -> str:
    lines = _lines(text)
    lines[lineno - 1] = new
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize(
    ("mutate", "line", "what"),
    [
        (lambda t: t.replace("HIERARCHY\n", "", 1), 1, "HIERARCHY"),
        (lambda t: t[: t.index("MOTION")], None, "MOTION"),
        (lambda t: _replace_line(t, 9, "    CHANNELS 4 Yrotation Xrotation Zrotation"), 9, "channel count"),
        (lambda t: _replace_line(t, 9, "    CHANNELS 3 Yrotation Wrotation Zrotation"), 9, "Wrotation"),
        (lambda t: _replace_line(t, 8, "    OFFSET 0 two 0"), 8, "expected a number"),
        (lambda t: _replace_line(t, 24, "1 2 3 90 0 0 90 x 0 0 0 0"), 24, "non-numeric"),
        (lambda t: _replace_line(t, 25, "0 0 0 0 0 0 0 0 0 0 0"), 25, "11 values"),
        (lambda t: t.replace("Frames: 2", "Frames: 3"), 25, "only 2 frame rows"),
        (lambda t: t.replace("Frames: 2", "Frames: two"), 22, "whole number"),
        (lambda t: t.replace("Frame Time: 0.04", "Frame Time: 0"), 23, "positive"),
        (lambda t: t.replace("  JOINT B", "  JIONT B"), 6, "JIONT"),
    ],
)
def test_malformed_files_report_the_line(tmp_path: Path, mutate, line: int | None, what: str) -> None:
    assert _lines(TINY)[23].startswith("1 2 3")  # line 24 is the first frame row
    path = tmp_path / "bad.bvh"
    path.write_text(mutate(TINY))
    with pytest.raises(InputError) as info:
        read_bvh(path)
    msg = str(info.value)
    assert msg.startswith(f"{path}:"), msg
    if line is not None:
        assert msg.startswith(f"{path}:{line}:"), msg
    assert what in msg, msg


def test_missing_file_is_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="cannot read BVH"):
        read_bvh(tmp_path / "nope.bvh")


def test_extra_rows_are_ignored() -> None:
    b = parse_bvh(TINY + "0 0 0 0 0 0 0 0 0 0 0 0\n")
    assert b.num_frames == 2


# ---- the CMU mocap ------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module", params=["embedded_131_01", "shared_131_02"])
def cmu(request: pytest.FixtureRequest):
    if request.param == "embedded_131_01":
        path = embedded_bvh()
    else:
        shared = request.getfixturevalue("shared_data")
        path = require_file(shared, "mocap", "cmu_131_02_walk.bvh")
    b = read_bvh(path)
    return b, b.forward_kinematics()


def test_embedded_copy_matches_shared(shared_data: Path) -> None:
    src = require_file(shared_data, "mocap", "cmu_131_01_walk.bvh")
    assert filecmp.cmp(src, embedded_bvh(), shallow=False)
    assert (embedded_bvh().parent / "CREDITS.md").is_file()


def test_cmu_units_and_standing_height(cmu) -> None:
    b, p = cmu
    assert b.num_joints == 38 and b.fps == pytest.approx(120.0, rel=1e-3)
    assert b.auto_scale() == ("cmu", UNITS["cmu"])
    h = to_h36m(p, b)
    head_top = h[0, 10, 1] - min(h[0, 3, 1], h[0, 6, 1]) + 0.08  # ankle joints stand ~8 cm above the floor
    assert 1.3 < head_top < 2.0
    leg = np.linalg.norm(h[0, 5] - h[0, 4]) + np.linalg.norm(h[0, 6] - h[0, 5])
    assert 1.5 < leg / 0.49 < 1.9  # stature from the legs (hip-to-ankle is ~49 % of stature)


def test_cmu_bone_lengths_constant(cmu) -> None:
    b, p = cmu
    par = np.array(b.parents[1:])
    lengths = np.linalg.norm(p[:, 1:] - p[:, par], axis=-1)  # (F, J-1)
    np.testing.assert_allclose(lengths, np.broadcast_to(lengths[0], lengths.shape), atol=1e-9)
    h = to_h36m(p, b)
    limbs = [i for i, (a, c) in enumerate(H36M17.bones) if (a, c) in {(1, 2), (2, 3), (4, 5), (5, 6), (11, 12),
                                                                          (12, 13), (14, 15), (15, 16), (9, 10)}]
    hb = np.linalg.norm(h[:, [H36M17.bones[i][1] for i in limbs]] - h[:, [H36M17.bones[i][0] for i in limbs]], axis=-1)
    np.testing.assert_allclose(hb, np.broadcast_to(hb[0], hb.shape), atol=1e-9)


def test_cmu_root_travels_forward_at_walking_speed(cmu) -> None:
    b, p = cmu
    root = to_h36m(p, b)[:, 0]
    xz = root[:, [0, 2]]
    assert np.linalg.norm(xz[-1] - xz[0]) > 1.5  # metres travelled
    win = int(round(1.5 * b.fps))  # best 1.5 s stretch
    speed = np.linalg.norm(xz[win:] - xz[:-win], axis=-1) / 1.5
    # m/s: a walk, not a run nor a drift (trial 01 walks briskly, trial 02 slowly)
    slowest = 0.8 if b.source.endswith("131_01_walk.bvh") else 0.25
    assert slowest < speed.max() < 1.8
    assert np.abs(np.diff(root[:, 1])).max() * b.fps < 3.0  # no vertical jumps


def _contacts(height: np.ndarray, down: float = 0.06, up: float = 0.10) -> int:
    """Number of touch-downs: the signal falls below ``down`` after having been above ``up``."""
    count, lifted = 0, False
    for v in height:
        if v > up:
            lifted = True
        elif v < down and lifted:
            count, lifted = count + 1, False
    return count


def test_cmu_feet_touch_the_ground_periodically(cmu) -> None:
    b, p = cmu
    touches = 0
    for side in ("Left", "Right"):
        idx = [b.index(n) for n in (f"{side}Ankle", f"{side}Toe", f"{side}Toe_End")]
        foot = p[:, idx, 1].min(axis=1)  # lowest point of the foot, metres
        assert foot.min() < 0.03 and foot.min() > -0.08  # reaches the floor, not far through it
        touches += _contacts(foot)
    assert touches >= 3


def test_cmu_mapping_shapes_and_face(cmu) -> None:
    b, p = cmu
    h, c = to_h36m(p, b), to_coco(p, b)
    assert h.shape == (b.num_frames, 17, 3) and c.shape == (b.num_frames, 17, 3)
    np.testing.assert_allclose(h[:, 0], 0.5 * (h[:, 1] + h[:, 4]))
    np.testing.assert_allclose(c[:, COCO17.index("left_wrist")], h[:, 13])
    np.testing.assert_allclose(c[:, COCO17.index("right_ankle")], h[:, 3])
    eyes = np.linalg.norm(c[:, 1] - c[:, 2], axis=-1)
    ears = np.linalg.norm(c[:, 3] - c[:, 4], axis=-1)
    assert np.all((eyes > 0.04) & (eyes < 0.09)) and np.all(ears > eyes)
    # the nose is in front of the head: same side as the direction the hips face
    hip_line = h[:, 4] - h[:, 1]
    face = np.cross(hip_line, [0.0, 1.0, 0.0])
    nose_fwd = np.sum((c[:, 0] - 0.5 * (c[:, 3] + c[:, 4])) * face, axis=-1)
    assert np.mean(nose_fwd > 0) > 0.95
    with pytest.raises(ValueError, match="positions must be"):
        to_h36m(p[:, :5], b)


# Position channels on a child joint with a non-zero OFFSET (as Bandai-Namco writes them): B's channels hold its
# translation (here 0 3 0, while its OFFSET says 0 2 0).
POSITIONED = TINY.replace("""    OFFSET 0 2 0
    CHANNELS 3 Yrotation Xrotation Zrotation""", """    OFFSET 0 2 0
    CHANNELS 6 Xposition Yposition Zposition Yrotation Xrotation Zrotation""").replace(
    "1 2 3 90 0 0 90 90 0 0 0 0\n0 0 0 0 0 0 0 0 0 0 0 0",
    "0 0 0 0 0 0 0 3 0 0 0 0 0 0 0\n0 0 0 0 0 0 0 3 0 0 0 0 0 0 0")


def test_position_channels_replace_the_offset() -> None:
    b = parse_bvh(POSITIONED)
    rep = b.forward_kinematics(scale=1.0)
    add = b.forward_kinematics(scale=1.0, positions="add")
    np.testing.assert_allclose(rep[0, 1], [0, 3, 0])  # the channels, not OFFSET + channels
    np.testing.assert_allclose(add[0, 1], [0, 5, 0])
    np.testing.assert_allclose(rep[0, 2], [1, 3, 0])
    # Without position channels on B both readings agree (the CMU case: only the root has them, OFFSET 0).
    tiny = parse_bvh(TINY)
    np.testing.assert_allclose(tiny.forward_kinematics(scale=1.0), tiny.forward_kinematics(scale=1.0, positions="add"))
    with pytest.raises(ValueError, match="positions"):
        b.forward_kinematics(scale=1.0, positions="sum")


def test_gzipped_bvh_reads_like_the_plain_file(tmp_path: Path) -> None:
    import gzip

    from hmore.io.bvh import bvh_stem

    plain = tmp_path / "tiny.bvh"
    plain.write_text(TINY)
    packed = tmp_path / "tiny.bvh.gz"
    packed.write_bytes(gzip.compress(TINY.encode()))
    a, b = read_bvh(plain), read_bvh(packed)
    np.testing.assert_array_equal(a.motion, b.motion)
    assert a.names == b.names and bvh_stem(packed) == bvh_stem(plain) == "tiny"
    (tmp_path / "broken.bvh.gz").write_bytes(b"not gzip")
    with pytest.raises(InputError, match="broken.bvh.gz"):
        read_bvh(tmp_path / "broken.bvh.gz")


def test_auto_scale_uses_the_first_frame_when_the_rest_pose_lies_flat() -> None:
    # A 170 cm chain resting along x (3 units of height), stood up by the root's rotation: centimetres. The rest
    # pose alone would say metres (3 m is the closest to an adult's 1.45 m span).
    text = TINY.replace("OFFSET 0 2 0", "OFFSET 120 3 0").replace("OFFSET 0 0 2", "OFFSET 50 0 0").replace(
        "1 2 3 90 0 0 90 90 0 0 0 0", "0 0 0 90 0 0 0 0 0 0 0 0")
    b = parse_bvh(text)
    assert np.ptp(b.rest_positions()[:, 1]) == pytest.approx(3.0)
    assert b.auto_scale() == ("cm", 0.01)
