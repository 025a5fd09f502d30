"""The world around the subjects: a textured ground and backdrop, and independently moving distractor objects.

Distractors are boxes and ellipsoids flying on straight lines while spinning at a constant rate; they belong to the
background (mask 0) but move on their own, so the background flow is not just the camera's (dynamic background).
"""

from __future__ import annotations

import numpy as np

from hmore.synth.body import PATTERN_CODES
from hmore.synth.camera import CameraTrack
from hmore.synth.raster import Background, PartSet


def make_background(
    rng: np.random.Generator, *, centre_xz: tuple[float, float], reach: float, detail_radius: float = 5.0
) -> Background:
    """A random ground and backdrop; the backdrop cylinder encloses everything within ``reach`` metres of
    ``centre_xz`` (cameras included) with room to spare; the ground's pattern fades beyond ``detail_radius``."""

    def colour(lo: int, hi: int) -> tuple[int, int, int]:
        return tuple(int(v) for v in rng.integers(lo, hi, size=3))  # type: ignore[return-value]

    return Background(
        centre_xz=(float(centre_xz[0]), float(centre_xz[1])),
        radius=float(max(25.0, 2.0 * reach + 10.0)),
        ground_colours=(colour(60, 150), colour(90, 190)),
        backdrop_colours=(colour(40, 200), colour(40, 220)),
        tile=float(rng.uniform(0.35, 0.8)),
        seed=int(rng.integers(0, 2**31 - 1)),
        detail_radius=float(detail_radius),
    )


def _rodrigues(axis: np.ndarray, angle: np.ndarray) -> np.ndarray:
    """(T, 3, 3) rotations by ``angle`` (T,) about the unit ``axis`` (3,)."""
    k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    s, c = np.sin(angle)[:, None, None], np.cos(angle)[:, None, None]
    return np.eye(3) + s * k + (1 - c) * (k @ k)


def make_distractors(
    rng: np.random.Generator,
    *,
    camera: CameraTrack,
    num: int,
    depth_range: tuple[float, float],
    fps: float,
) -> PartSet:
    """``num`` distractor objects that start inside the first frame's view at camera depths within ``depth_range``.

    Returns:
        A :class:`PartSet` with owner 0 for every object (T = the camera's frame count).
    """
    T = camera.num_frames
    h, w = camera.size
    kinv = np.linalg.inv(camera.K)
    time = np.arange(T) / fps
    kinds, halves, rots, centres, pats, c1s, c2s, scales, seeds = ([] for _ in range(9))
    for _ in range(num):
        kind = int(rng.integers(0, 2))
        size = float(rng.uniform(0.15, 0.45))
        half = size * rng.uniform(0.6, 1.4, size=3)
        px = np.array([rng.uniform(0, w - 1), rng.uniform(0, h - 1), 1.0])
        depth = float(rng.uniform(*depth_range))
        start = camera.R[0].T @ (depth * (kinv @ px) - camera.t[0])
        start[1] = max(start[1], float(half.max()) + 0.05)  # above the ground
        speed = float(rng.uniform(0.3, 1.5))
        ang = rng.uniform(0, 2 * np.pi)
        vel = speed * np.array([np.cos(ang), rng.uniform(-0.15, 0.15), np.sin(ang)])
        centre = start + time[:, None] * vel
        centre[:, 1] = np.maximum(centre[:, 1], float(half.max()) + 0.05)
        axis = rng.normal(size=3)
        axis /= np.linalg.norm(axis)
        spin = float(rng.uniform(-2.5, 2.5))  # rad/s
        axis0 = rng.normal(size=3)
        r0 = _rodrigues(axis0 / np.linalg.norm(axis0), np.array([rng.uniform(0, np.pi)]))[0]
        rot = _rodrigues(axis, spin * time) @ r0
        pattern = str(rng.choice(("checks", "stripes", "dots", "noise")))
        kinds.append(kind)
        halves.append(half)
        rots.append(rot)
        centres.append(centre)
        pats.append(PATTERN_CODES[pattern])
        c1s.append(rng.integers(20, 235, size=3))
        c2s.append(rng.integers(20, 235, size=3))
        scales.append(float(rng.uniform(0.12, 0.25)))
        seeds.append(int(rng.integers(0, 2**31 - 1)))
    if num == 0:
        return PartSet(kind=np.zeros(0, np.int8), half=np.zeros((0, 3)), rot=np.zeros((T, 0, 3, 3)),
                       centre=np.zeros((T, 0, 3)), owner=np.zeros(0, np.int32), pattern=np.zeros(0, np.int8),
                       colour=np.zeros((0, 3)), colour2=np.zeros((0, 3)), scale=np.zeros(0),
                       seed=np.zeros(0, np.int64))
    return PartSet(
        kind=np.array(kinds, dtype=np.int8), half=np.array(halves), rot=np.stack(rots, axis=1),
        centre=np.stack(centres, axis=1), owner=np.zeros(num, dtype=np.int32), pattern=np.array(pats, dtype=np.int8),
        colour=np.array(c1s, dtype=np.float64), colour2=np.array(c2s, dtype=np.float64), scale=np.array(scales),
        seed=np.array(seeds, dtype=np.int64),
    )
