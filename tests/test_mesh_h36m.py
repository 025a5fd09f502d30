"""The mesh head on Human3.6M: fitting Anny to joints (known answer), the cached per-subject fit, the Human3.6M
windows of the mesh task, the joint-only loss, strict config keys, and a training step mixing both kinds."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from hmore.errors import ConfigError
from hmore.losses.mesh import MeshLossWeights, joint_loss
from hmore.mesh.h36m import H36MWindows, MeshH36MConfig, window_index


def test_joint_loss_by_hand() -> None:
    a = torch.zeros(2, 3, 17, 3)
    b = a.clone()
    b[..., 0] = 0.3
    b[..., 2] = 0.4  # every joint 0.5 away, not moving
    ph = torch.full((2, 6), 0.5)
    target = ph.clone()
    target[0] += 0.1
    target[1] += 0.3  # masked out below
    t = joint_loss(joints=a, joints_gt=b, phenotype=ph, phenotype_gt=target, has_phenotype=torch.tensor([True, False]),
                   weights=MeshLossWeights(joint=2.0, phenotype=10.0, velocity=1.0))
    assert float(t.joint) == pytest.approx(0.5) and float(t.velocity) == 0.0
    assert float(t.phenotype) == pytest.approx(0.01)  # only the first window's target counts
    assert float(t.total) == pytest.approx(2.0 * 0.5 + 10.0 * 0.01)
    none = joint_loss(joints=a, joints_gt=a, phenotype=ph, phenotype_gt=target, has_phenotype=torch.tensor([0, 0]))
    assert float(none.total) == 0.0
    with pytest.raises(ValueError, match="joint_loss"):
        joint_loss(joints=a, joints_gt=b[:, :2], phenotype=ph, phenotype_gt=ph, has_phenotype=torch.ones(2))


def test_h36m_config_is_strict_and_checked() -> None:
    from hmore.config import load_config
    from hmore.mesh.task import MeshRunConfig

    cfg = load_config(MeshRunConfig, None, overrides=["data.h36m.weight=0.25", "data.h36m.fit=runs/x"])
    assert cfg.data.h36m.weight == 0.25 and cfg.data.h36m.fit == "runs/x"
    with pytest.raises(ConfigError):
        load_config(MeshRunConfig, None, overrides=["data.h36m.wieght=0.25"])
    with pytest.raises(ConfigError):
        load_config(MeshRunConfig, None, overrides=["model.freeze_backbon=true"])
    with pytest.raises(ConfigError, match="weight"):
        MeshH36MConfig(weight=1.0)
    with pytest.raises(ConfigError, match="source_weights"):
        MeshH36MConfig(source_weights=(1.0, 0.0))


def _fake_arrays(frames: int = 60):
    """(train, val) LiftArrays: two S1 / S5 examples whose target's x is the global frame index."""
    from hmore.data.h36m import H36MExample
    from hmore.lift.h36m import LiftArrays

    def arrays(subjects):
        ex = tuple(H36MExample(subject=s, sequence=f"{s}/Walking 1", action="Walking", camera="54138969",
                               num_frames=frames) for s in subjects)
        n = frames * len(ex)
        y = np.zeros((n, 17, 3), np.float32)
        y[:, :, 0] = np.arange(n)[:, None]
        x = {k: np.full((n, 17, 3), i + 1, np.float16) for i, k in enumerate(("sh", "gt", "coco"))}
        return LiftArrays(examples=ex, offsets=np.arange(len(ex) + 1) * frames, x=x, y=y)

    return arrays(["S1", "S5"]), arrays(["S8"])


def test_h36m_windows_take_frames_at_the_task_rate_with_subject_phenotypes() -> None:
    np.testing.assert_array_equal(window_index(4, 25.0), [0, 2, 4, 6])
    np.testing.assert_array_equal(window_index(4, 30.0), [0, 2, 3, 5])  # 50/30 frames apart, nearest frame
    cfg = MeshH36MConfig(weight=0.5, mask_joint_max=0.0, mask_frame=0.0, flip_prob=0.0, source_weights=(0, 0, 1))
    win = H36MWindows(cfg, fps=25.0, arrays=_fake_arrays(), phenotypes={"S1": np.full(6, 0.2, np.float32)})
    out = win.sample(np.random.default_rng(0), 32, 5)
    assert out["x"].shape == (32, 5, 17, 3) and out["y"].shape == (32, 5, 17, 3)
    assert (out["x"] == 3).all()  # only the coco source
    frame = out["y"][:, :, 0, 0]
    np.testing.assert_array_equal(np.diff(frame, axis=1), 2)  # every other 50 fps frame
    start = frame[:, 0].astype(int)
    assert ((start % 60) <= 60 - 9).all()  # windows never cross into the next example
    s1 = start < 60
    assert s1.any() and (~s1).any()
    np.testing.assert_allclose(out["phenotype"][s1], 0.2)
    assert out["has_phenotype"][s1].all() and not out["has_phenotype"][~s1].any()  # S5 has no fit
    val = win.validation(4, 5)
    assert val["x"].shape == (4, 5, 17, 3) and (val["x"] == 3).all()
    assert val["y"][0, 0, 0, 0] == 0 and val["y"][-1, -1, 0, 0] == 59  # evenly spaced, first to last frame
    flipped = H36MWindows(MeshH36MConfig(weight=0.5, flip_prob=1.0, mask_joint_max=0.0, mask_frame=0.0),
                          fps=25.0, arrays=_fake_arrays(), phenotypes={}).sample(np.random.default_rng(0), 4, 5)
    assert (flipped["y"][..., 0] <= 0).all()  # mirrored: camera x negated


# ---- with Anny ---------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def decoder():
    pytest.importorskip("anny", reason="the body extra (anny) is not installed")
    from hmore.mesh.decoder import anny_decoder

    return anny_decoder()


def _known_pose(decoder, n: int = 3):
    """Rotations (n, G, 3, 3) a small random turn from a standing pose, phenotype (6,), and their joints."""
    from scipy.spatial.transform import Rotation

    rng = np.random.default_rng(5)
    rot = Rotation.from_rotvec(rng.normal(0, 0.25, (n * decoder.num_groups, 3))).as_matrix()
    rot = rot.reshape(n, decoder.num_groups, 3, 3).astype(np.float32)
    ph = np.array([0.3, 0.6, 0.4, 0.7, 0.65, 0.45], np.float32)
    with torch.no_grad():
        joints = decoder(torch.from_numpy(rot[None]), torch.from_numpy(ph[None]), torch.zeros(1, dtype=torch.long))
    return rot, ph, joints.joints[0].double().numpy()


def test_fit_recovers_known_joints(decoder) -> None:
    from hmore.mesh.fit import FitConfig, fit_joints

    rot, ph, joints = _known_pose(decoder)
    start = np.broadcast_to(np.eye(3, dtype=np.float32), rot.shape).copy()
    before = fit_joints(decoder, joints + 1.0, start, FitConfig(steps=0))  # the root offset does not matter
    after = fit_joints(decoder, joints + 1.0, start, FitConfig(steps=60, lr=0.05, prior=0.0))
    assert before.error.mean() > 0.05
    assert after.error.mean() < 0.006 and after.error.max() < 0.02  # millimetres from the known answer
    assert after.rot.shape == rot.shape and after.phenotype.shape == (6,)
    assert ((after.phenotype > 0) & (after.phenotype < 1)).all()
    with pytest.raises(ValueError, match="fit_joints"):
        fit_joints(decoder, joints[:, :5], start)
    with pytest.raises(ValueError, match="init_rot"):
        fit_joints(decoder, joints, start[:1])


def _fake_h36m(root: Path, joints_hmore: np.ndarray) -> Path:
    """A Human3.6M folder holding one S1 sequence: ``joints_hmore`` (T, 17, 3) metres y up, stored as the data's
    int16 mm, z up."""
    folder = root / "h36m"
    folder.mkdir()
    mm = np.stack([joints_hmore[..., 0], -joints_hmore[..., 2], joints_hmore[..., 1]], axis=-1) * 1000.0
    np.savez(folder / "poses_3d.npz", **{"S1/Walking 1": np.round(mm).astype(np.int16)})
    np.savez(folder / "detections_2d_sh.npz", none=np.zeros(1))
    (folder / "cameras.json").write_text(json.dumps({}))
    return folder


def test_fit_h36m_caches_one_file_per_subject_and_resumes(decoder, tmp_path: Path, monkeypatch) -> None:
    from hmore.mesh import fit as fit_mod

    rot, ph, joints = _known_pose(decoder, n=1)
    seq = np.repeat(joints, 11, axis=0) + np.array([0.0, 0.9, 0.0])  # 11 frames standing at one place
    root = _fake_h36m(tmp_path, seq)
    cfg = fit_mod.FitConfig(steps=40, lr=0.03)
    paths = fit_mod.fit_h36m(tmp_path / "fit", subjects=("S1",), every=5, root=root, config=cfg, decoder=decoder,
                             progress=False)
    got = fit_mod.load_fit(paths["S1"])
    np.testing.assert_array_equal(got["frame"], [0, 5, 10])
    np.testing.assert_array_equal(got["sequence"], [0, 0, 0])
    assert list(got["sequences"]) == ["S1/Walking 1"]
    assert got["rot"].shape == (3, decoder.num_groups, 3, 3) and got["error"].shape == (3, 17)
    assert got["error"].mean() < 0.01  # the closed-form start + 40 steps reach the body that made the joints

    def boom(*a, **k):
        raise AssertionError("a cached subject was fitted again")

    monkeypatch.setattr(fit_mod, "fit_joints", boom)
    again = fit_mod.fit_h36m(tmp_path / "fit", subjects=("S1",), every=5, root=root, config=cfg, decoder=decoder,
                             progress=False)
    assert again == paths
    with pytest.raises(ValueError, match="no Human3.6M 3D sequence"):
        fit_mod.fit_h36m(tmp_path / "fit", subjects=("S5",), root=root, decoder=decoder, progress=False)


@pytest.mark.slow
def test_mesh_task_mixes_h36m_windows(decoder, tmp_path: Path) -> None:
    from hmore.mesh.data import posed_clips
    from hmore.mesh.task import MeshDataConfig, MeshModelConfig, MeshRunConfig, MeshTask

    clip = posed_clips(identities=[2], actions=["kick"], num_frames=12, seed=0)[0]
    h = MeshH36MConfig(weight=0.5)
    cfg = MeshRunConfig(model=MeshModelConfig(name="dstformer_mesh_test", init_backbone="", freeze_backbone=True),
                        data=MeshDataConfig(clip_len=5, min_len=5, eval_clips=2, h36m=h))
    ph = {"S1": np.full(6, 0.3, np.float32)}
    task = MeshTask(config=cfg, clips=([clip], {"gen": [clip]}), decoder=decoder,
                    h36m=H36MWindows(h, fps=25.0, arrays=_fake_arrays(), phenotypes=ph))
    assert "Human3.6M" in task.weights_licence
    batch = task.batch(0, rank=0, world_size=1, batch_size=4)
    assert batch["x"].shape == (4, 5, 17, 3) and batch["rot"].shape[0] == 2 and batch["h36m_y"].shape == (2, 5, 17, 3)
    model = task.build_model()
    assert not any(p.requires_grad for p in model.backbone.parameters())
    loss, logs = task.loss(model, batch)
    loss.backward()
    assert torch.isfinite(loss) and logs["h36m_mpjpe_mm"] > 0
    assert all(p.grad is not None for p in model.head.parameters())
    metrics = task.evaluate(model.eval())
    assert np.isfinite(metrics["h36m_val_mpjpe_mm"]) and np.isfinite(metrics["gen_mpve_mm"])
