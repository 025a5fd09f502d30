"""Exact ray-casting rasteriser: one ray per pixel centre, analytic intersections, nearest hit wins.

Rigid parts (ellipsoids, boxes) are intersected in their own normalised coordinates (the ellipsoid becomes the unit
sphere, the box the cube [-1, 1]^3); the static background is the ground plane y = 0 and a vertical backdrop cylinder
around the scene. Each part is tested only over the screen box of its projected oriented bounding box (that is where
the speed comes from), with whole-window numpy arithmetic; the static background (intersections, colours, flow) is
computed once per camera pose and reused while the camera stands still. There is no anti-aliasing: labels are exact.

Ground truth comes from the 3D motion of the surface point seen at each pixel: its part-local coordinates are
carried to frame t+1 with the part's pose there and projected with camera t+1; flow = that pixel - pixel centre.
Textures are functions of part-local coordinates (world coordinates for the static background), so with shading off
a surface point has the same colour in every frame (brightness constancy holds exactly).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from hmore.synth.camera import CameraTrack

NEAR = 0.05  # metres: hits closer to the camera are ignored
GROUND_PART, BACKDROP_PART = -1, -2
LIGHT = np.array([0.35, 0.85, -0.4]) / np.linalg.norm([0.35, 0.85, -0.4])  # towards the light, world
AMBIENT = 0.45


@dataclass(frozen=True)
class PartSet:
    """All rigid parts of a scene over T frames (subjects' body parts and distractor objects).

    Attributes:
        kind: (N,) 0 ellipsoid, 1 box.
        half: (N, 3) radii / half extents along local x, y, z (metres).
        rot: (T, N, 3, 3) part-local -> world rotations (columns are the local axes).
        centre: (T, N, 3) world position of each part's centre.
        owner: (N,) 0 for background objects, k (1-based) for subject k.
        pattern: (N,) texture pattern codes (:data:`hmore.synth.body.PATTERN_CODES`).
        colour: (N, 3) main colours (0-255). colour2: (N, 3) second colours.
        scale: (N,) pattern periods (metres). seed: (N,) noise seeds.
    """

    kind: np.ndarray
    half: np.ndarray
    rot: np.ndarray
    centre: np.ndarray
    owner: np.ndarray
    pattern: np.ndarray
    colour: np.ndarray
    colour2: np.ndarray
    scale: np.ndarray
    seed: np.ndarray

    @property
    def num_parts(self) -> int:
        return int(self.kind.shape[0])

    @staticmethod
    def concat(sets: list[PartSet]) -> PartSet:
        """All parts of several sets (same T)."""
        names = ("kind", "half", "rot", "centre", "owner", "pattern", "colour", "colour2", "scale", "seed")
        axis = {"rot": 1, "centre": 1}
        return PartSet(**{n: np.concatenate([getattr(s, n) for s in sets], axis=axis.get(n, 0)) for n in names})


@dataclass(frozen=True)
class Background:
    """The static background: textured ground y = 0 and a backdrop cylinder (axis vertical) around the scene.

    Attributes:
        centre_xz: (2,) cylinder axis position (metres). radius: cylinder radius (metres).
        ground_colours: (2, 3) ground tile colours. backdrop_colours: (2, 3) backdrop colours.
        tile: ground tile size (metres). seed: texture seed.
        detail_radius: the ground's pattern fades out between 1x and 2x this distance from ``centre_xz`` (where it
            would alias into noise at the usual image sizes).
    """

    centre_xz: tuple[float, float]
    radius: float
    ground_colours: tuple[tuple[int, int, int], tuple[int, int, int]]
    backdrop_colours: tuple[tuple[int, int, int], tuple[int, int, int]]
    tile: float
    seed: int
    detail_radius: float = 5.0


@dataclass(frozen=True)
class FrameRender:
    """One rendered frame.

    Attributes:
        image: (H, W, 3) uint8 RGB.
        owner: (H, W) int32, 0 background, k subject k.
        part: (H, W) int32 part index into the PartSet, -1 ground, -2 backdrop.
        depth: (H, W) float64 camera depth of the visible surface (metres).
        flow: (H, W, 2) float64 forward flow to the next frame, or None for the last frame.
        depth_next: (H, W) camera depth at t+1 of the surface point seen here, or None.
    """

    image: np.ndarray
    owner: np.ndarray
    part: np.ndarray
    depth: np.ndarray
    flow: np.ndarray | None
    depth_next: np.ndarray | None


# ---- textures ------------------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=4096)
def _waves(seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng([int(seed) & 0xFFFFFFFF, 0x3A7E])
    k = rng.normal(size=(3, 3))
    k *= (np.pi / np.linalg.norm(k, axis=1))[:, None] * rng.uniform(0.8, 1.6, size=(3, 1))
    return k.T.copy(), rng.uniform(0, 2 * np.pi, size=3)


def _wave_noise3(p: np.ndarray, seed: int) -> np.ndarray:
    """Smooth pseudo-random pattern in [0, 1] at points p (M, 3) (feature size about 1): three plane waves with
    directions and phases drawn from ``seed``, combined non-linearly. Cheap and free of lattice artefacts."""
    kt, phase = _waves(int(seed))
    a = np.sin(p @ kt + phase)  # (M, 3)
    return 0.5 + 0.25 * (a[:, 0] * a[:, 1] + a[:, 2] * np.abs(a[:, 0]))


def part_texture(pattern: int, c1: np.ndarray, c2: np.ndarray, scale: float, seed: int, local: np.ndarray,
                 half: np.ndarray) -> np.ndarray:
    """Colours (M, 3) of surface points of one part, given in its local coordinates ``local`` (M, 3), metres.

    Args:
        pattern: the part's pattern code (:data:`hmore.synth.body.PATTERN_CODES`).
        c1: (3,) main colour. c2: (3,) second colour.
        scale: pattern period (metres). seed: noise seed.
        local: (M, 3) points in part-local coordinates.
        half: (3,) the part's radii (the head pattern places the hair with them).
    """
    q = local / scale
    if pattern == 1:  # soft stripes across the part's long (y) axis
        w = np.clip(0.5 + 1.5 * np.sin(np.pi * q[:, 1]), 0.0, 1.0)
    elif pattern == 2:  # soft 3D checks
        w = np.clip(0.5 + 3.0 * np.sin(np.pi * q[:, 0]) * np.sin(np.pi * q[:, 1]) * np.sin(np.pi * q[:, 2]), 0, 1)
    elif pattern == 3:  # soft dots on a 3D lattice
        f = q - np.floor(q) - 0.5
        w = np.clip((0.09 - np.einsum("ij,ij->i", f, f)) * 25.0 + 0.5, 0.0, 1.0)
    elif pattern == 4:  # smooth noise
        w = _wave_noise3(q, int(seed))
    elif pattern == 5:  # head: skin face, hair on top and at the back
        u = local / half
        w = ((u[:, 1] > 0.35) | ((u[:, 1] > -0.3) & (u[:, 2] < -0.25))).astype(np.float64)
    else:
        w = np.zeros(local.shape[0])
    return c1 + (c2 - c1) * w[:, None]


class _BackgroundTextures:
    """The background's textures: smooth functions of the world point only (soft edges keep them from aliasing and
    let bilinear warping reproduce them), evaluated on whole image rows in float32."""

    def __init__(self, bg: Background):
        rng = np.random.default_rng([bg.seed, 0xB6])
        self.bg = bg
        # tint waves: (frequency x, frequency z or y, phase) pairs, in tile / bay units
        self.ground_waves = rng.uniform([0.25, 0.25, 0.0], [0.7, 0.7, 2 * np.pi], size=(2, 3)).astype(np.float32)
        self.wall_waves = rng.uniform([0.5, 0.5, 0.0], [1.5, 1.5, 2 * np.pi], size=(2, 3)).astype(np.float32)
        # palette rows: ground tile colour 0 / 1, backdrop wall / window
        self.palette = np.asarray(bg.ground_colours + bg.backdrop_colours, dtype=np.float32)

    def _ground(self, pts: np.ndarray) -> np.ndarray:
        """(h, W, 3) ground colours of world points (3, h, W): soft checker tiles, a smooth tint, a fine grid."""
        bg = self.bg
        x = (pts[0] * (1.0 / bg.tile)).astype(np.float32)
        z = (pts[2] * (1.0 / bg.tile)).astype(np.float32)
        check = np.clip(0.5 + 1.5 * np.sin(np.float32(np.pi) * x) * np.sin(np.float32(np.pi) * z), 0.0, 1.0)
        fine = np.abs(x * 3.0 % 1.0 - 0.5) + np.abs(z * 2.0 % 1.0 - 0.5)  # 0 .. 1, continuous
        (a1, b1, p1), (a2, b2, p2) = self.ground_waves
        tint = np.sin(a1 * x + b1 * z + p1) * np.sin(a2 * x - b2 * z + p2)
        k = (1.0 + 0.25 * tint) * (0.85 + 0.3 * fine)
        # fade the pattern out far from the scene centre, where it would alias (a function of the point only)
        dx = (pts[0] - bg.centre_xz[0]).astype(np.float32)
        dz = (pts[2] - bg.centre_xz[1]).astype(np.float32)
        fade = np.clip(2.0 - np.sqrt(dx * dx + dz * dz) * np.float32(1.0 / bg.detail_radius), 0.0, 1.0)
        check = 0.5 + fade * (check - 0.5)
        k = 1.0 + fade * (k - 1.0)
        c0, c1 = self.palette[0], self.palette[1]
        return (c0 + (c1 - c0) * check[..., None]) * k[..., None]

    def _wall(self, pts: np.ndarray) -> np.ndarray:
        """(h, W, 3) backdrop colours: facade-like bays with soft-edged windows. The visible wall runs along x,
        so x is its horizontal coordinate."""
        arc = ((pts[0] - self.bg.centre_xz[0]) * (1.0 / 1.7)).astype(np.float32)
        height = (pts[1] * (1.0 / 0.9)).astype(np.float32)
        wx = np.clip((0.28 - np.abs(arc % 1.0 - 0.5)) * 4.0 + 0.5, 0.0, 1.0)
        wy = np.clip((0.3 - np.abs(height % 1.0 - 0.5)) * 4.0 + 0.5, 0.0, 1.0)
        (a1, b1, p1), (a2, b2, p2) = self.wall_waves
        tint = 0.9 + 0.3 * np.sin(a1 * arc + p1) * np.sin(b1 * height + p2 + a2 * arc)
        c0, c1 = self.palette[2], self.palette[3]
        return (c0 + (c1 - c0) * (wx * wy)[..., None]) * tint[..., None]

    def colours(self, pts: np.ndarray, is_ground: np.ndarray) -> np.ndarray:
        """(H, W, 3) float32 colours of static background points ``pts`` (3, H, W) (world); ``is_ground`` (H, W)
        picks the ground's texture, else the backdrop's. Each texture is evaluated only on the rows where it shows
        (the cameras do not roll, so the horizon splits the image into row bands)."""
        h, w = is_ground.shape
        out = np.zeros((h, w, 3), dtype=np.float32)
        g_rows = np.flatnonzero(is_ground.any(axis=1))
        w_rows = np.flatnonzero((~is_ground).any(axis=1))
        if g_rows.size:
            r0, r1 = g_rows[0], g_rows[-1] + 1
            out[r0:r1] = self._ground(pts[:, r0:r1])
        if w_rows.size:
            r0, r1 = w_rows[0], w_rows[-1] + 1
            out[r0:r1] = np.where(is_ground[r0:r1, :, None], out[r0:r1], self._wall(pts[:, r0:r1]))
        return out


# ---- rasteriser ----------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class _BackgroundView:
    """The static background from one camera pose: ray directions (3, H, W), camera centre (3,), depth and part
    label (H, W), world points (3, H, W), colours (H, W, 3) float32, Lambert factors (H, W) or None."""

    dirs: np.ndarray
    origin: np.ndarray
    depth: np.ndarray
    part: np.ndarray
    pts: np.ndarray
    colours: np.ndarray
    shade: np.ndarray | None


_CORNERS = np.array([[sx, sy, sz] for sx in (-1, 1) for sy in (-1, 1) for sz in (-1, 1)], dtype=np.float64)


class Rasteriser:
    """Renders the frames of one scene (parts, background, camera) with ground truth.

    Whole-image quantities are kept as planes (3, H, W) (x, y, z components) so that the arithmetic runs on
    contiguous arrays.

    Args:
        parts: the rigid parts over T frames.
        background: the static background.
        camera: the camera track (T frames).
        shading: Lambert shading with a fixed light; off keeps brightness constancy exact.
    """

    def __init__(self, *, parts: PartSet, background: Background, camera: CameraTrack, shading: bool = False):
        self.parts = parts
        self.background = background
        self.camera = camera
        self.shading = bool(shading)
        self._bg_tex = _BackgroundTextures(background)
        h, w = camera.size
        k = camera.K
        self._xn = ((np.arange(w, dtype=np.float64) - k[0, 2]) / k[0, 0])[None, :]  # (1, W) normalised x
        self._yn = ((np.arange(h, dtype=np.float64) - k[1, 2]) / k[1, 1])[:, None]  # (H, 1) normalised y
        self._jj = np.broadcast_to(np.arange(w, dtype=np.float64)[None, :], (h, w))  # pixel centre x
        self._ii = np.broadcast_to(np.arange(h, dtype=np.float64)[:, None], (h, w))  # pixel centre y
        self._bg_cache: tuple[bytes, _BackgroundView] | None = None
        self._bg_flow_cache: tuple[bytes, tuple[np.ndarray, np.ndarray]] | None = None

    def ray_planes(self, t: int) -> np.ndarray:
        """(3, H, W) world directions of the pixel rays at frame t, scaled so the ray parameter is camera depth."""
        r = self.camera.R[t]  # world -> camera; the direction is R^T (xn, yn, 1)
        return np.stack([r[0, c] * self._xn + r[1, c] * self._yn + r[2, c] for c in range(3)])

    def _screen_boxes(self, t: int) -> np.ndarray:
        """(N, 4) int screen boxes x0, x1, y0, y1 (half-open, clipped; empty when off screen) of every part,
        from its projected oriented bounding box (the whole image when it crosses the near plane)."""
        cam, ps = self.camera, self.parts
        h, w = cam.size
        corners = ps.centre[t][:, None, :] + np.einsum("nij,nkj->nki", ps.rot[t], _CORNERS * ps.half[:, None, :])
        q = cam.to_camera(corners.reshape(-1, 3), t).reshape(-1, 8, 3)  # (N, 8, 3)
        safe = (q[..., 2] > NEAR).all(axis=1)
        behind = (q[..., 2] <= NEAR).all(axis=1)
        uv = cam.project(np.where(q[..., 2:3] > NEAR, q, 1.0))  # (N, 8, 2)
        lo = np.where(safe[:, None], uv.min(axis=1), -np.inf)
        hi = np.where(safe[:, None], uv.max(axis=1), np.inf)
        boxes = np.empty((q.shape[0], 4), dtype=np.int64)
        boxes[:, 0] = np.clip(np.floor(lo[:, 0]), 0, w)
        boxes[:, 1] = np.clip(np.ceil(hi[:, 0]) + 1, 0, w)
        boxes[:, 2] = np.clip(np.floor(lo[:, 1]), 0, h)
        boxes[:, 3] = np.clip(np.ceil(hi[:, 1]) + 1, 0, h)
        boxes[behind] = 0
        return boxes

    def _background(self, dirs: np.ndarray, origin: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Depth (H, W) and part label (-1 ground / -2 backdrop) of the static background; ``dirs`` (3, H, W)."""
        bg = self.background
        dx, dy, dz = dirs
        with np.errstate(divide="ignore", invalid="ignore"):
            t_ground = np.where(dy < -1e-9, -origin[1] / dy, np.inf)
        t_ground[t_ground <= NEAR] = np.inf
        ox, oz = origin[0] - bg.centre_xz[0], origin[2] - bg.centre_xz[1]
        a = dx * dx + dz * dz
        b = ox * dx + oz * dz
        c = ox * ox + oz * oz - bg.radius**2  # < 0: the camera is inside the cylinder
        t_wall = (-b + np.sqrt(np.maximum(b * b - a * c, 0.0))) / np.maximum(a, 1e-12)
        ground = t_ground < t_wall
        return np.where(ground, t_ground, t_wall), np.where(ground, GROUND_PART, BACKDROP_PART).astype(np.int32)

    def _pose_key(self, t: int) -> bytes:
        return self.camera.R[t].tobytes() + self.camera.t[t].tobytes()

    def _background_view(self, t: int) -> _BackgroundView:
        """The static background seen from camera t (cached: a static camera computes it once)."""
        key = self._pose_key(t)
        if self._bg_cache is None or self._bg_cache[0] != key:
            dirs = self.ray_planes(t)
            origin = self.camera.centres[t]
            depth, part = self._background(dirs, origin)
            pts = origin[:, None, None] + depth * dirs  # (3, H, W)
            ground = part == GROUND_PART
            colours = self._bg_tex.colours(pts, ground)
            shade = None
            if self.shading:
                shade = AMBIENT + (1 - AMBIENT) * np.maximum(self._background_normals(pts, part) @ LIGHT, 0.0)
            self._bg_cache = (key, _BackgroundView(dirs=dirs, origin=origin, depth=depth, part=part, pts=pts,
                                                   colours=colours, shade=shade))
        return self._bg_cache[1]

    def _background_flow(self, t: int, view: _BackgroundView) -> tuple[np.ndarray, np.ndarray]:
        """Flow (H, W, 2) and depth at t+1 (H, W) of the static background from camera t to t+1 (cached)."""
        key = self._pose_key(t) + self._pose_key(t + 1)
        if self._bg_flow_cache is None or self._bg_flow_cache[0] != key:
            self._bg_flow_cache = (key, self._project_flow(view.pts.reshape(3, -1), t + 1, self._jj.reshape(-1),
                                                          self._ii.reshape(-1), view.part.shape))
        return self._bg_flow_cache[1]

    def _project_flow(self, pts_next: np.ndarray, t_next: int, x: np.ndarray, y: np.ndarray,
                      shape: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
        """Flow (shape + (2,)) of world points ``pts_next`` (3, M) at frame ``t_next`` seen at pixels (x, y) at t,
        and their depth at t_next (shape)."""
        cam = self.camera
        q = cam.R[t_next] @ pts_next + cam.t[t_next][:, None]  # (3, M)
        flow = np.empty((q.shape[1], 2))
        with np.errstate(divide="ignore", invalid="ignore"):
            inv_z = 1.0 / q[2]
            flow[:, 0] = cam.K[0, 0] * q[0] * inv_z + cam.K[0, 2] - x
            flow[:, 1] = cam.K[1, 1] * q[1] * inv_z + cam.K[1, 2] - y
        return flow.reshape(*shape, 2), q[2].reshape(shape)

    def render(self, t: int, *, with_flow: bool = True) -> FrameRender:
        """Render frame ``t`` (and its forward flow to t+1 when ``with_flow`` and t+1 exists)."""
        cam, ps = self.camera, self.parts
        h, w = cam.size
        with_flow = with_flow and t + 1 < cam.num_frames
        view = self._background_view(t)
        dirs, origin = view.dirs, view.origin
        depth, part = view.depth.copy(), view.part.copy()

        # ---- pass 1: depth test of every part over its screen box, in normalised coordinates u = M (x - centre)
        boxes = self._screen_boxes(t)
        active = [n for n in range(ps.num_parts) if boxes[n, 1] > boxes[n, 0] and boxes[n, 3] > boxes[n, 2]]
        rot_t, centre_t = ps.rot[t], ps.centre[t]
        for n in active:
            x0, x1, y0, y1 = boxes[n]
            m = rot_t[n].T / ps.half[n][:, None]  # diag(1/half) R^T
            o = m @ (origin - centre_t[n])  # (3,)
            d = (m @ dirs[:, y0:y1, x0:x1].reshape(3, -1)).reshape(3, y1 - y0, x1 - x0)  # (3, h', w')
            if ps.kind[n] == 0:  # unit sphere
                a = d[0] * d[0] + d[1] * d[1] + d[2] * d[2]
                b = o[0] * d[0] + o[1] * d[1] + o[2] * d[2]
                disc = b * b - a * (o @ o - 1.0)
                tt = (-b - np.sqrt(np.maximum(disc, 0.0))) / a
                hit = (disc >= 0) & (tt > NEAR)
            else:  # cube [-1, 1]^3 (slabs)
                with np.errstate(divide="ignore", invalid="ignore"):
                    inv = 1.0 / d
                    t1, t2 = (-1.0 - o[:, None, None]) * inv, (1.0 - o[:, None, None]) * inv
                tt = np.nanmax(np.minimum(t1, t2), axis=0)
                hit = (np.nanmin(np.maximum(t1, t2), axis=0) >= tt) & (tt > NEAR)
            zwin = depth[y0:y1, x0:x1]
            closer = hit & (tt < zwin)
            zwin[closer] = tt[closer]
            part[y0:y1, x0:x1][closer] = n

        # ---- pass 2: colour (and motion) of the surface point seen at each pixel
        image = view.colours.copy()  # (H, W, 3) float32, parts drawn over it below
        shade = None if view.shade is None else view.shade.copy()
        flow = depth_next = None
        if with_flow:
            bg_flow, bg_depth_next = self._background_flow(t, view)
            flow, depth_next = bg_flow.copy(), bg_depth_next.copy()
        owner = np.zeros((h, w), dtype=np.int32)
        moved_idx, moved_pts = [], []  # flat pixel indices and (3, M) world points at t+1 of every part pixel
        for n in active:
            x0, x1, y0, y1 = boxes[n]
            sel = part[y0:y1, x0:x1] == n
            if not sel.any():
                continue
            world = origin[:, None] + dirs[:, y0:y1, x0:x1][:, sel] * depth[y0:y1, x0:x1][sel]  # (3, M)
            local = rot_t[n].T @ (world - centre_t[n][:, None])  # (3, M) part-local coordinates
            image[y0:y1, x0:x1][sel] = part_texture(int(ps.pattern[n]), ps.colour[n], ps.colour2[n],
                                                    float(ps.scale[n]), int(ps.seed[n]), local.T, ps.half[n])
            owner[y0:y1, x0:x1][sel] = ps.owner[n]
            if flow is not None:
                ys, xs = np.nonzero(sel)
                moved_idx.append((ys + y0) * w + (xs + x0))
                moved_pts.append(ps.centre[t + 1, n][:, None] + ps.rot[t + 1, n] @ local)  # same points at t+1
            if shade is not None:
                shade[y0:y1, x0:x1][sel] = self._part_shade(n, t, local)
        if flow is not None and moved_idx:
            idx = np.concatenate(moved_idx)
            f, z = self._project_flow(np.concatenate(moved_pts, axis=1), t + 1, self._jj.reshape(-1)[idx],
                                      self._ii.reshape(-1)[idx], (idx.size,))
            flow.reshape(-1, 2)[idx] = f
            depth_next.reshape(-1)[idx] = z
        if shade is not None:
            image *= shade[..., None]
        image = np.clip(np.rint(image), 0, 255).astype(np.uint8)
        return FrameRender(image=image, owner=owner, part=part, depth=depth, flow=flow, depth_next=depth_next)

    def _part_shade(self, n: int, t: int, local: np.ndarray) -> np.ndarray:
        """Lambert factors (M,) of surface points ``local`` (3, M) of part n at frame t."""
        ps = self.parts
        u = local.T / ps.half[n]  # (M, 3) normalised coordinates
        if ps.kind[n] == 0:
            n_loc = u / ps.half[n]  # ellipsoid gradient
        else:
            ax = np.argmax(np.abs(u), axis=1)
            n_loc = np.zeros_like(u)
            n_loc[np.arange(len(u)), ax] = np.sign(u[np.arange(len(u)), ax])
        n_w = n_loc @ ps.rot[t, n].T
        lam = np.maximum((n_w @ LIGHT) / np.linalg.norm(n_w, axis=1), 0.0)
        return AMBIENT + (1 - AMBIENT) * lam

    def _background_normals(self, pts: np.ndarray, part: np.ndarray) -> np.ndarray:
        """(H, W, 3) world normals of the static background (ground up, backdrop towards its axis)."""
        bg = self.background
        nx, nz = bg.centre_xz[0] - pts[0], bg.centre_xz[1] - pts[2]
        norm = np.sqrt(nx * nx + nz * nz) + 1e-12
        ground = part == GROUND_PART
        return np.stack([np.where(ground, 0.0, nx / norm), ground.astype(np.float64),
                         np.where(ground, 0.0, nz / norm)], axis=-1)
