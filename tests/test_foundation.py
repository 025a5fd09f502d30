"""The package's shared machinery: registry, strict configs, atomic writes, CLI error handling, layouts."""

from __future__ import annotations

import dataclasses
import hashlib

import numpy as np
import pytest

from hmore import skeleton as S
from hmore.cli import main
from hmore.config import ConfigError, from_dict, load_config, to_dict
from hmore.errors import UsageError
from hmore.io.atomic import atomic_path, save_npz_atomic
from hmore.registry import create_model


@dataclasses.dataclass(frozen=True)
class _Inner:
    width: int = 4
    rate: float = 0.5


@dataclasses.dataclass(frozen=True)
class _Outer:
    name: str = "x"
    inner: _Inner = dataclasses.field(default_factory=_Inner)
    sizes: tuple[int, ...] = (1, 2)


def test_config_strict_unknown_key_names_its_path():
    with pytest.raises(ConfigError, match="inner.depth"):
        from_dict(_Outer, {"inner": {"depth": 3}})


def test_config_types_checked_and_coerced():
    cfg = from_dict(_Outer, {"inner": {"rate": 1}, "sizes": [3, 4, 5]})
    assert cfg.inner.rate == 1.0 and isinstance(cfg.inner.rate, float)
    assert cfg.sizes == (3, 4, 5)
    with pytest.raises(ConfigError, match="inner.width"):
        from_dict(_Outer, {"inner": {"width": "wide"}})


def test_config_base_inheritance_and_overrides(tmp_path):
    (tmp_path / "base.yaml").write_text("name: base\ninner:\n  width: 8\n")
    (tmp_path / "child.yaml").write_text("base: base.yaml\ninner:\n  rate: 0.25\n")
    cfg = load_config(_Outer, tmp_path / "child.yaml", overrides=["name=over"])
    assert (cfg.name, cfg.inner.width, cfg.inner.rate) == ("over", 8, 0.25)
    assert to_dict(cfg)["sizes"] == [1, 2]


def test_unknown_model_is_a_usage_error():
    with pytest.raises(UsageError, match="unknown model"):
        create_model("no_such_model")


def test_atomic_path_leaves_nothing_on_error(tmp_path):
    target = tmp_path / "out.txt"
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("crash")
    assert list(tmp_path.iterdir()) == []


def test_npz_same_arrays_same_bytes(tmp_path):
    a = np.arange(12, dtype=np.float32).reshape(3, 4)
    p1 = save_npz_atomic(tmp_path / "a.npz", x=a, meta='{"k": 1}')
    h1 = hashlib.sha256(p1.read_bytes()).hexdigest()
    p2 = save_npz_atomic(tmp_path / "b.npz", x=a, meta='{"k": 1}')
    assert hashlib.sha256(p2.read_bytes()).hexdigest() == h1
    with np.load(p1) as d:
        np.testing.assert_array_equal(d["x"], a)
        assert str(d["meta"]) == '{"k": 1}'


def test_cli_without_command_exits_2(capsys):
    assert main([]) == 2


# ---- layouts ---------------------------------------------------------------------------------------------------
def _coco_pose() -> np.ndarray:
    """A hand-made standing COCO-17 pose in pixels with scores."""
    xy = {
        "nose": (50, 10), "left_eye": (52, 8), "right_eye": (48, 8), "left_ear": (55, 9), "right_ear": (45, 9),
        "left_shoulder": (60, 20), "right_shoulder": (40, 20), "left_elbow": (62, 35), "right_elbow": (38, 35),
        "left_wrist": (63, 50), "right_wrist": (37, 50), "left_hip": (56, 50), "right_hip": (44, 50),
        "left_knee": (56, 70), "right_knee": (44, 70), "left_ankle": (56, 90), "right_ankle": (44, 90),
    }
    kp = np.array([[*xy[n], 0.9] for n in S.COCO17.joints], dtype=np.float32)
    kp[S.COCO17.index("left_eye"), 2] = 0.4
    return kp


def test_coco_to_h36m_derived_joints():
    h = S.convert(_coco_pose(), "coco17", "h36m17")
    assert h.shape == (17, 3)
    np.testing.assert_allclose(h[0, :2], (50, 50))  # root = mid-hip
    np.testing.assert_allclose(h[8, :2], (50, 20))  # neck = mid-shoulder
    np.testing.assert_allclose(h[7, :2], (50, 35))  # belly = mid(root, neck)
    np.testing.assert_allclose(h[10, :2], (50, 8))  # head = mid-eyes
    np.testing.assert_allclose(h[3, :2], (44, 90))  # right ankle
    np.testing.assert_allclose(h[13, :2], (63, 50))  # left wrist
    assert h[10, 2] == pytest.approx(0.4)  # derived joint as sure as its least sure source
    assert h[0, 2] == pytest.approx(0.9)


def test_blazepose_to_coco_picks_named_points():
    bp = np.zeros((33, 3), dtype=np.float32)
    bp[:, 0] = np.arange(33)
    bp[:, 2] = 1.0
    coco = S.convert(bp, "blazepose33", "coco17")
    assert coco[:, 0].tolist() == [0, 2, 5, 7, 8, 11, 12, 13, 14, 15, 16, 23, 24, 25, 26, 27, 28]


def test_wrong_joint_count_is_an_input_error():
    with pytest.raises(ValueError, match="coco17"):
        S.convert(np.zeros((18, 3)), "coco17", "h36m17")


def test_flip_twice_is_identity_and_swaps_sides():
    kp = _coco_pose()
    once = S.flip(kp, "coco17", width=100)
    np.testing.assert_allclose(S.flip(once, "coco17", width=100), kp, atol=1e-4)
    # the left shoulder of the flipped pose is the mirrored right shoulder
    np.testing.assert_allclose(once[5, :2], (99 - 40, 20))
    h = S.H36M17.flip_index
    assert h[1] == 4 and h[14] == 11 and h[0] == 0


def test_as_disk_full_names_a_file_size_limit(tmp_path):
    import errno
    import resource

    from hmore.io.atomic import as_disk_full

    target = tmp_path / "ckpt.pt"
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    assert as_disk_full(target, RuntimeError("unexpected pos")) is None  # room enough, no limit: not a disk error
    resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 30, hard))
    try:
        err = as_disk_full(target, RuntimeError("unexpected pos"))
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
    assert isinstance(err, OSError) and err.errno == errno.EFBIG and err.filename == str(target)
