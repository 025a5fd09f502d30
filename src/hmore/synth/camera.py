"""Pinhole cameras that follow (or not) the subjects: intrinsics from a field of view, a pose per frame.

Conventions (see :mod:`hmore.synth.motion_types`): world y up; camera frame OpenCV (x right, y down, z forward);
pixel centre (i, j) at x = j, y = i, so the principal point of a W x H image is ((W - 1) / 2, (H - 1) / 2).
The renderer's cameras look along world +z (tilted down by the elevation); a subject's *view* (CASIA-B style:
0 = walking towards the camera, 90 = side view, 180 = walking away) is set by turning the subject, not the camera.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from hmore.errors import UsageError

CAMERA_MOTIONS = ("static", "pan", "track")


@dataclass(frozen=True)
class CameraTrack:
    """A camera over T frames.

    Attributes:
        K: (3, 3) intrinsics.
        R: (T, 3, 3) world -> camera rotations.
        t: (T, 3) world -> camera translations: ``X_cam = R @ X_world + t``.
        size: (H, W) image size.
    """

    K: np.ndarray
    R: np.ndarray
    t: np.ndarray
    size: tuple[int, int]

    @property
    def num_frames(self) -> int:
        return int(self.R.shape[0])

    @property
    def centres(self) -> np.ndarray:
        """(T, 3) camera centres in the world."""
        return -np.einsum("tji,tj->ti", self.R, self.t)

    def to_camera(self, points: np.ndarray, frame: int | np.ndarray) -> np.ndarray:
        """World points (..., 3) at ``frame`` (an int, or an index array broadcastable to ``points[..., 0]``)."""
        r, t = self.R[frame], self.t[frame]
        if np.ndim(frame) == 0:
            return points @ r.T + t
        return np.einsum("...ij,...j->...i", r, points) + t

    def project(self, points_cam: np.ndarray) -> np.ndarray:
        """Camera points (..., 3) -> pixels (..., 2) (x, y). Depths must be positive."""
        z = points_cam[..., 2:3]
        uv = points_cam[..., :2] / z
        return uv * self.K[[0, 1], [0, 1]] + self.K[:2, 2]

    def ray_directions(self, frame: int) -> np.ndarray:
        """(H, W, 3) world directions of the rays through every pixel centre, scaled so that camera depth = t."""
        h, w = self.size
        kinv = np.linalg.inv(self.K)
        jj, ii = np.meshgrid(np.arange(w, dtype=np.float64), np.arange(h, dtype=np.float64))
        pix = np.stack([jj, ii, np.ones_like(jj)], axis=-1)  # (H, W, 3)
        d_cam = pix @ kinv.T  # z component 1
        return d_cam @ self.R[frame]  # R^T d for each pixel


class CameraPlacement(NamedTuple):
    """Result of :func:`place_camera`.

    Attributes:
        camera: the camera track.
        distance: distance from the camera to the look-at point (metres; for ``pan``, at the middle frame).
        fit_distance: the distance that just fits the points in the image (``distance`` can be larger: a panning
            camera stands back so that people walking towards it never reach it).
    """

    camera: CameraTrack
    distance: float
    fit_distance: float


def intrinsics(size: tuple[int, int], fov_deg: float) -> np.ndarray:
    """(3, 3) pinhole intrinsics with square pixels, horizontal field of view ``fov_deg``."""
    h, w = size
    if not 1.0 <= fov_deg <= 170.0:
        raise UsageError(f"field of view must be within 1-170 degrees, got {fov_deg}")
    f = 0.5 * w / np.tan(np.deg2rad(fov_deg) / 2)
    return np.array([[f, 0.0, (w - 1) / 2], [0.0, f, (h - 1) / 2], [0.0, 0.0, 1.0]])


def look_rotation(forward: np.ndarray) -> np.ndarray:
    """(..., 3, 3) world -> camera rotations for cameras looking along ``forward`` (..., 3) with world y up."""
    z = forward / np.linalg.norm(forward, axis=-1, keepdims=True)
    up = np.broadcast_to(np.array([0.0, 1.0, 0.0]), z.shape)
    x = np.cross(z, up)
    x = x / np.linalg.norm(x, axis=-1, keepdims=True)
    y = np.cross(z, x)  # points down
    return np.stack([x, y, z], axis=-2)  # rows are the camera axes


def place_camera(
    points: np.ndarray,
    *,
    size: tuple[int, int],
    fov_deg: float = 50.0,
    elevation_deg: float = 8.0,
    motion: str = "static",
    margin: float = 0.08,
    min_distance: float = 2.0,
    distance_scale: float = 1.0,
) -> CameraPlacement:
    """A camera looking along world +z that keeps ``points`` in the image.

    Args:
        points: (T, N, 3) world points that must stay visible (e.g. joints padded by the body's radius).
        size: (H, W) image size.
        fov_deg: horizontal field of view.
        elevation_deg: the camera looks down by this angle.
        motion: ``static`` (fixed pose, everything in view over the whole clip), ``pan`` (fixed position, turns
            to look at the points' centre each frame) or ``track`` (moves with the points' centre, fixed rotation).
        margin: fraction of the half image kept free at the borders.
        min_distance: closest distance to the look-at point (metres).
        distance_scale: stand this many times farther than the fitted distance (>= 1; far camera).

    Returns:
        The :class:`CameraPlacement`.
    """
    if motion not in CAMERA_MOTIONS:
        raise UsageError(f"unknown camera motion {motion!r}; known: {', '.join(CAMERA_MOTIONS)}")
    if not -80.0 <= elevation_deg <= 80.0:
        raise UsageError(f"camera elevation must be within -80..80 degrees, got {elevation_deg}")
    h, w = size
    T = points.shape[0]
    K = intrinsics(size, fov_deg)
    e = np.deg2rad(elevation_deg)
    forward = np.array([0.0, -np.sin(e), np.cos(e)])
    R0 = look_rotation(forward)
    lo, hi = points.min(axis=(0, 1)), points.max(axis=(0, 1))
    if motion == "static":
        centre = np.broadcast_to(0.5 * (lo + hi), (T, 3))
    else:  # follow the horizontal centre of the points, at a constant height
        c = points.mean(axis=1)  # (T, 3)
        c[:, 1] = 0.5 * (lo[1] + hi[1])
        centre = c
    q = np.einsum("ij,tnj->tni", R0, points - centre[:, None])  # (T, N, 3) in the camera's axes
    half_w, half_h = 0.5 * w * (1 - margin), 0.5 * h * (1 - margin)
    need_x = K[0, 0] * np.abs(q[..., 0]) / half_w - q[..., 2]
    need_y = K[1, 1] * np.abs(q[..., 1]) / half_h - q[..., 2]
    fit = float(max(min_distance, need_x.max(), need_y.max()))
    dist = fit * float(distance_scale)
    if motion == "static":
        pos = np.broadcast_to(centre[0] - dist * forward, (T, 3))
        R = np.broadcast_to(R0, (T, 3, 3)).copy()
    elif motion == "track":
        pos = centre - dist * forward
        R = np.broadcast_to(R0, (T, 3, 3)).copy()
    else:  # pan: stand where the middle frame's tracking camera would, turn towards the centre
        mid = T // 2
        # never let the subjects walk into the camera: keep every frame's centre min_distance in front of it
        approach = float(np.max(-(centre - centre[mid]) @ forward))
        dist = max(dist, approach + min_distance)
        pos = np.broadcast_to(centre[mid] - dist * forward, (T, 3))
        R = look_rotation(centre - pos)
    t = -np.einsum("tij,tj->ti", R, pos)
    camera = CameraTrack(K=K, R=np.ascontiguousarray(R), t=np.ascontiguousarray(t), size=(int(h), int(w)))
    return CameraPlacement(camera=camera, distance=dist, fit_distance=fit)
