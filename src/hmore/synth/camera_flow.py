"""Camera-induced flow: the flow the static scene would have under the camera's motion alone, at every pixel.

For the surface point seen at pixel p of frame t (camera depth z), held still in the world while the camera moves
from pose t to pose t+1, the camera-induced flow is its projection in frame t+1 minus p. On the static background this
is the background's flow exactly; on a person it is the flow that person would have standing still, so
``flow - camera_flow`` is the motion relative to the scene (what hmore's world flow means under a moving camera).
A static camera gives exactly zero; a camera that only turns (``pan``) gives a homography, whatever the depths; a
camera that moves (``track``) gives a flow that depends on depth (parallax).
"""

from __future__ import annotations

import numpy as np

from hmore.synth.camera import CameraTrack


def camera_induced_flow(camera: CameraTrack, depth: np.ndarray) -> np.ndarray:
    """(T-1, H, W, 2) float32 camera-induced flow t -> t+1 of every pixel, from the camera depths ``depth``.

    Args:
        camera: the camera track (T frames).
        depth: (T, H, W) camera depth (metres, > 0) of the surface seen at each pixel (the rasteriser's depth; only
            frames 0..T-2 are used).

    Raises:
        ValueError: ``depth`` is not (T, H, W) for the camera's T and size.
    """
    T, (h, w) = camera.num_frames, camera.size
    if depth.shape != (T, h, w):
        raise ValueError(f"depth must be (T, H, W) = {(T, h, w)}, got {depth.shape}")
    K = camera.K
    xn = (np.arange(w, dtype=np.float64) - K[0, 2]) / K[0, 0]  # (W,) normalised x of pixel centres
    yn = (np.arange(h, dtype=np.float64) - K[1, 2]) / K[1, 1]  # (H,)
    rays = np.stack(np.broadcast_arrays(xn[None, :], yn[:, None], np.ones((h, w))), axis=-1)  # (H, W, 3), z = 1
    jj, ii = np.meshgrid(np.arange(w, dtype=np.float64), np.arange(h, dtype=np.float64))
    out = np.zeros((T - 1, h, w, 2), np.float32)
    for t in range(T - 1):
        if np.array_equal(camera.R[t], camera.R[t + 1]) and np.array_equal(camera.t[t], camera.t[t + 1]):
            continue  # the camera did not move: exactly zero
        rel_r = camera.R[t + 1] @ camera.R[t].T  # camera t -> camera t+1
        rel_t = camera.t[t + 1] - rel_r @ camera.t[t]
        q = (rays * depth[t][..., None].astype(np.float64)) @ rel_r.T + rel_t  # (H, W, 3) in camera t+1
        with np.errstate(divide="ignore", invalid="ignore"):
            out[t, ..., 0] = K[0, 0] * q[..., 0] / q[..., 2] + K[0, 2] - jj
            out[t, ..., 1] = K[1, 1] * q[..., 1] / q[..., 2] + K[1, 2] - ii
    return out


__all__ = ["camera_induced_flow"]
