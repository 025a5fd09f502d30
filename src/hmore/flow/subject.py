"""The subject motion v_s that local flow is taken relative to (issue 13, item 3): ``local = world - v_s``.

Modes:

* ``pose`` (default): each person's pelvis (mid-hip) displacement from the pose track, relative to the scene (the
  camera-induced motion at the pelvis removed); persons whose hips are not confident at t and t+1 (or without a pose
  prior) use ``median``.
* ``median``: the median world flow inside the person's mask.
* ``psi``: the subject network Psi's v_s (the paper's learned subject motion).

``benchmarks/flow_local.py`` decided the default: with the pelvis track, local flow at the joints errs 27% less than
predicting zero and 14% less than DIS minus its median on generated clips (local-flow EPE 0.556 against 0.567 for DIS
and 0.620 for Psi), 15-29% / 12-20% less on the real clips; Psi and the median did not beat DIS minus its median.
"""

from __future__ import annotations

import numpy as np

SUBJECT_MODES = ("pose", "median", "psi")
COCO_HIPS = [11, 12]
MIN_HIP_CONFIDENCE = 0.5


def subject_motion(mode: str, world: np.ndarray, labels: np.ndarray, psi: np.ndarray, kp_t: np.ndarray | None = None,
                   kp_t1: np.ndarray | None = None, homography: np.ndarray | None = None) -> np.ndarray:
    """v_s (k, 2) float32 for labels 1..k.

    Args:
        mode: ``pose``, ``median`` or ``psi`` (see the module docstring).
        world: (H, W, 2) world flow (relative to the scene).
        labels: (H, W) int labels 0..k.
        psi: (k, 2) Psi's v_s.
        kp_t, kp_t1: (k, 17, 3) COCO-17 keypoints (x, y, confidence) of labels 1..k at t and t+1 in the flow's
            pixels, or None.
        homography: (3, 3) camera motion t -> t+1 that was removed from the world flow (None: none).
    """
    if mode not in SUBJECT_MODES:
        raise ValueError(f"subject motion must be one of {', '.join(SUBJECT_MODES)}, got {mode!r}")
    k = psi.shape[0]
    if mode == "psi":
        return psi.astype(np.float32)
    out = np.zeros((k, 2), np.float32)
    for s in range(1, k + 1):
        own = labels == s
        if not own.any():
            continue
        out[s - 1] = np.median(world[own], axis=0)
        if mode != "pose" or kp_t is None or kp_t1 is None or kp_t.shape[0] < s:
            continue
        a, b = kp_t[s - 1, COCO_HIPS], kp_t1[s - 1, COCO_HIPS]
        if (a[:, 2] > MIN_HIP_CONFIDENCE).all() and (b[:, 2] > MIN_HIP_CONFIDENCE).all():
            p0, p1 = a[:, :2].mean(0).astype(np.float64), b[:, :2].mean(0).astype(np.float64)
            if homography is not None:  # where the camera alone would have carried the pelvis
                q = homography @ np.array([p0[0], p0[1], 1.0])
                p0 = q[:2] / q[2]
            out[s - 1] = p1 - p0
    return out


__all__ = ["SUBJECT_MODES", "subject_motion"]
