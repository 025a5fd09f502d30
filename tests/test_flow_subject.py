"""The subject motion v_s of local flow (hmore.flow.subject) and its use in inference."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hmore.errors import UsageError
from hmore.flow.inference import iter_flow
from hmore.flow.subject import subject_motion
from hmore.registry import create_model


def _scene() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    world = np.zeros((20, 30, 2), np.float32)
    labels = np.zeros((20, 30), np.int64)
    labels[2:18, 3:12], labels[2:18, 15:28] = 1, 2
    world[labels == 1] = (1.0, 0.5)
    world[labels == 2] = (-2.0, 0.0)
    world[2:6, 15:28] = (5.0, 5.0)  # subject 2's arms move a lot; its median stays (-2, 0)
    kp_t = np.zeros((2, 17, 3), np.float32)
    kp_t[:, :, 2] = 0.9
    kp_t[0, 11:13, :2] = [[5.0, 10.0], [9.0, 10.0]]
    kp_t[1, 11:13, :2] = [[18.0, 10.0], [24.0, 10.0]]
    kp_t1 = kp_t.copy()
    kp_t1[0, 11:13, :2] += (3.0, 1.0)  # subject 1's pelvis moves (3, 1)
    kp_t1[1, 11:13, 2] = 0.1  # subject 2's hips are lost at t+1
    psi = np.array([[7.0, 7.0], [8.0, 8.0]], np.float32)
    return world, labels, kp_t, kp_t1, psi


def test_pose_uses_the_pelvis_and_falls_back_to_the_median() -> None:
    world, labels, kp_t, kp_t1, psi = _scene()
    v = subject_motion("pose", world, labels, psi, kp_t, kp_t1)
    np.testing.assert_allclose(v, [[3.0, 1.0], [-2.0, 0.0]])
    np.testing.assert_allclose(subject_motion("pose", world, labels, psi), [[1.0, 0.5], [-2.0, 0.0]])  # no pose
    np.testing.assert_allclose(subject_motion("median", world, labels, psi, kp_t, kp_t1), [[1.0, 0.5], [-2.0, 0.0]])
    np.testing.assert_array_equal(subject_motion("psi", world, labels, psi, kp_t, kp_t1), psi)
    # with a camera that moved everything by (2, 0): the pelvis moved (1, 1) relative to the scene
    shift = np.array([[1.0, 0.0, 2.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    np.testing.assert_allclose(subject_motion("pose", world, labels, psi, kp_t, kp_t1, shift)[0], [1.0, 1.0])
    with pytest.raises(ValueError, match="subject motion"):
        subject_motion("hips", world, labels, psi)


def test_inference_takes_the_pose_of_a_generated_clip(tmp_path) -> None:
    from hmore.synth.clip import render_clip

    clip = render_clip(size=(48, 64), num_frames=3, subjects=1, seed=9, actions=["walk"], distractors=0, views=[0.0])
    assert (clip.kp2d[:, 0, 11:13, 2] > 0.5).all()  # both hips seen: the pelvis track is used
    path = clip.save(tmp_path / "c.npz")
    torch.manual_seed(0)
    net = create_model("hmore_flow_test").eval()
    info: dict = {}
    pairs = list(iter_flow(path, model=net, device="cpu", progress=False, info=info))
    assert info["subject_motion"] == "pose"
    hips = clip.kp2d[:, 0, 11:13, :2].mean(axis=1)  # (T, 2)
    for t, pair in enumerate(pairs):
        np.testing.assert_allclose(pair.subject_velocity[0], hips[t + 1] - hips[t], atol=1e-4)
        inside = clip.masks[t] > 0
        np.testing.assert_allclose(pair.local[:, inside], pair.world[:, inside] - pair.subject_velocity[0][:, None],
                                   atol=1e-4)
    psi = list(iter_flow(path, model=net, device="cpu", progress=False, subject_motion="psi"))
    assert not np.allclose(psi[0].subject_velocity, pairs[0].subject_velocity)
    with pytest.raises(UsageError, match="subject_motion"):
        next(iter_flow(path, model=net, device="cpu", subject_motion="hips"))
    with pytest.raises(UsageError, match="keypoints must be"):
        next(iter_flow(clip.frames, model=net, device="cpu", masks=clip.masks, keypoints=clip.kp2d[..., :2]))
