"""Exact rasterisation of moving triangle meshes (people), drawn over the analytic scene of
:class:`hmore.synth.raster.Rasteriser`.

Every pixel centre is tested against every front-facing triangle whose screen box holds it (whole-array numpy
arithmetic over all (triangle, pixel) candidates, no anti-aliasing); the nearest hit wins, against the other meshes
and against the depth of the analytic scene (background, distractors, accessories). The hit's *perspective-correct*
barycentric coordinates name one point of the triangle, which lies exactly on the pixel's ray. That point is the
same surface point in every frame: its colour is a function of its barycentric blend of the vertices' *texture
coordinates* (rest-pose positions, metres), so with shading off its colour never changes; at t+1 it is the same
blend of the triangle's vertices at t+1, projected with camera t+1: that is the ground-truth flow (and depth at t+1).

Mesh pixels get ``part = -3 - k`` for mesh k in the :class:`~hmore.synth.raster.FrameRender`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from hmore.synth.body import PATTERN_CODES, Material
from hmore.synth.camera import CameraTrack
from hmore.synth.raster import AMBIENT, LIGHT, NEAR, Background, FrameRender, PartSet, Rasteriser, part_texture


@dataclass(frozen=True)
class MeshTrack:
    """One subject's triangle mesh over T frames.

    Attributes:
        vertices: (T, V, 3) world positions.
        faces: (F, 3) vertex indices, counter-clockwise seen from outside.
        texcoords: (V, 3) texture coordinates of the vertices (their rest-pose positions, metres).
        material_weights: (V, M) weights of the ``materials`` at every vertex (rows sum to 1); a surface point
            blends the materials with its barycentric blend of its triangle's weights (soft region borders).
        materials: the M surface materials (textures as in :func:`hmore.synth.raster.part_texture`).
        owner: subject label (1-based) of the mesh's pixels.
    """

    vertices: np.ndarray
    faces: np.ndarray
    texcoords: np.ndarray
    material_weights: np.ndarray
    materials: tuple[Material, ...]
    owner: int

    def __post_init__(self) -> None:
        v = self.vertices
        if v.ndim != 3 or v.shape[2] != 3 or self.texcoords.shape != v.shape[1:]:
            raise ValueError(f"MeshTrack: vertices (T, V, 3) and texcoords (V, 3) expected, got {v.shape}, "
                             f"{self.texcoords.shape}")
        if self.faces.ndim != 2 or self.faces.shape[1] != 3:
            raise ValueError(f"MeshTrack: faces must be (F, 3), got {self.faces.shape}")
        if self.material_weights.shape != (v.shape[1], len(self.materials)):
            raise ValueError(f"MeshTrack: material_weights must be (V, M) = ({v.shape[1]}, {len(self.materials)}), "
                             f"got {self.material_weights.shape}")


class Hits(NamedTuple):
    """Visible triangle hits: flat pixel index (M,), face index (M,), perspective-correct barycentric coordinates
    (M, 3) and camera depth (M,)."""

    pixel: np.ndarray
    face: np.ndarray
    bary: np.ndarray
    depth: np.ndarray


def rasterise_triangles(uv: np.ndarray, inv_z: np.ndarray, faces: np.ndarray, size: tuple[int, int],
                        zbuf: np.ndarray) -> Hits:
    """Z-buffered rasterisation of front-facing triangles at pixel centres.

    Args:
        uv: (N, 2) projected vertices (pixels; pixel (i, j) has its centre at x = j, y = i).
        inv_z: (N,) inverse camera depths of the vertices (> 0).
        faces: (F, 3) triangles; front-facing ones are clockwise on the screen (counter-clockwise from outside).
        size: (H, W).
        zbuf: (H * W,) depths already drawn; updated in place with the nearer hits.

    Returns:
        The :class:`Hits` that won the depth test (one per pixel).
    """
    h, w = size
    f0, f1, f2 = faces[:, 0], faces[:, 1], faces[:, 2]
    x0, x1, x2 = uv[f0, 0], uv[f1, 0], uv[f2, 0]
    y0, y1, y2 = uv[f0, 1], uv[f1, 1], uv[f2, 1]
    area = (x1 - x0) * (y2 - y0) - (x2 - x0) * (y1 - y0)  # < 0: front facing (y points down)
    xmin = np.maximum(np.ceil(np.minimum(np.minimum(x0, x1), x2)), 0)
    xmax = np.minimum(np.floor(np.maximum(np.maximum(x0, x1), x2)), w - 1)
    ymin = np.maximum(np.ceil(np.minimum(np.minimum(y0, y1), y2)), 0)
    ymax = np.minimum(np.floor(np.maximum(np.maximum(y0, y1), y2)), h - 1)
    keep = np.flatnonzero((area < 0) & (xmax >= xmin) & (ymax >= ymin))
    nx = (xmax[keep] - xmin[keep]).astype(np.int64) + 1
    ny = (ymax[keep] - ymin[keep]).astype(np.int64) + 1
    count = nx * ny
    total = int(count.sum())
    empty = Hits(np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros((0, 3)), np.zeros(0))
    if total == 0:
        return empty
    # one candidate per (triangle, pixel of its screen box)
    rep = np.repeat(np.arange(keep.size), count)
    offset = np.arange(total) - np.repeat(np.cumsum(count) - count, count)
    nxr = nx[rep]
    px = xmin[keep][rep] + offset % nxr
    py = ymin[keep][rep] + offset // nxr
    tri = keep[rep]
    inv_area = 1.0 / area[tri]
    ax, ay, bx, by, cx, cy = x0[tri] - px, y0[tri] - py, x1[tri] - px, y1[tri] - py, x2[tri] - px, y2[tri] - py
    b0 = (bx * cy - cx * by) * inv_area
    b1 = (cx * ay - ax * cy) * inv_area
    b2 = 1.0 - b0 - b1
    inside = (b0 >= 0) & (b1 >= 0) & (b2 >= 0)
    tri, px, py, b0, b1, b2 = tri[inside], px[inside], py[inside], b0[inside], b1[inside], b2[inside]
    fz = faces[tri]
    w0, w1, w2 = b0 * inv_z[fz[:, 0]], b1 * inv_z[fz[:, 1]], b2 * inv_z[fz[:, 2]]
    iz = w0 + w1 + w2
    depth = 1.0 / iz
    pix = py.astype(np.int64) * w + px.astype(np.int64)
    closer = depth < zbuf[pix]
    if not closer.any():
        return empty
    tri, pix, depth, w0, w1, w2, iz = (a[closer] for a in (tri, pix, depth, w0, w1, w2, iz))
    np.minimum.at(zbuf, pix, depth)
    win = np.flatnonzero(depth == zbuf[pix])
    _, first = np.unique(pix[win], return_index=True)  # exact ties: the first candidate (lowest face) wins
    win = win[first]
    bary = np.stack([w0[win], w1[win], w2[win]], axis=1) / iz[win, None]
    return Hits(pixel=pix[win], face=tri[win], bary=bary, depth=depth[win])


class MeshRasteriser(Rasteriser):
    """A :class:`~hmore.synth.raster.Rasteriser` that also draws triangle meshes (people).

    Args:
        parts: rigid parts over T frames (distractors, accessories).
        background: the static background.
        camera: the camera track.
        meshes: the meshes (T frames each).
        shading: Lambert shading (flat, per triangle) as for the parts; off keeps brightness constancy exact.
    """

    def __init__(self, *, parts: PartSet, background: Background, camera: CameraTrack, meshes: Sequence[MeshTrack],
                 shading: bool = False):
        super().__init__(parts=parts, background=background, camera=camera, shading=shading)
        self.meshes = tuple(meshes)
        for m in self.meshes:
            if m.vertices.shape[0] != camera.num_frames:
                raise ValueError(f"MeshRasteriser: mesh has {m.vertices.shape[0]} frames, camera "
                                 f"{camera.num_frames}")
        vstart = np.cumsum([0] + [m.vertices.shape[1] for m in self.meshes])
        mstart = np.cumsum([0] + [len(m.materials) for m in self.meshes])
        if self.meshes:
            self._verts = np.concatenate([m.vertices for m in self.meshes], axis=1)  # (T, N, 3) all meshes
            self._faces = np.concatenate([m.faces.astype(np.int64) + vstart[k] for k, m in enumerate(self.meshes)])
            self._tex = np.concatenate([m.texcoords for m in self.meshes])
            nmat = int(mstart[-1])
            self._mat_w = np.zeros((int(vstart[-1]), nmat))  # (N, all materials)
            for k, m in enumerate(self.meshes):
                self._mat_w[vstart[k]:vstart[k + 1], mstart[k]:mstart[k + 1]] = m.material_weights
            self._face_owner = np.concatenate([np.full(m.faces.shape[0], m.owner, np.int32) for m in self.meshes])
            self._face_mesh = np.concatenate([np.full(m.faces.shape[0], k, np.int32)
                                              for k, m in enumerate(self.meshes)])
            self._materials = [mat for m in self.meshes for mat in m.materials]

    def render(self, t: int, *, with_flow: bool = True) -> FrameRender:
        fr = super().render(t, with_flow=with_flow)
        if not self.meshes:
            return fr
        cam = self.camera
        h, w = cam.size
        q = cam.to_camera(self._verts[t], t)  # (N, 3)
        front = q[:, 2] > NEAR
        faces, face_id = self._faces, None
        if not front.all():  # drop triangles that reach behind the near plane (people never come that close)
            face_id = np.flatnonzero(front[self._faces].all(axis=1))
            faces = self._faces[face_id]
        inv_z = 1.0 / np.where(front, q[:, 2], 1.0)
        uv = q[:, :2] * inv_z[:, None] * cam.K[[0, 1], [0, 1]] + cam.K[:2, 2]
        zbuf = fr.depth.reshape(-1)  # drawn in place
        hits = rasterise_triangles(uv, inv_z, faces, (h, w), zbuf)
        if hits.pixel.size == 0:
            return fr
        face = hits.face if face_id is None else face_id[hits.face]
        corners = self._faces[face]  # (M, 3)
        b = hits.bary
        # colours from texture coordinates (rest positions) of the surface points
        tex = np.einsum("mk,mkc->mc", b, self._tex[corners])
        mat_w = np.einsum("mk,mkr->mr", b, self._mat_w[corners])  # (M, materials)
        colours = np.zeros((face.size, 3))
        for mi in np.flatnonzero(mat_w.max(axis=0) > 0):
            sel = np.flatnonzero(mat_w[:, mi] > 0)
            m = self._materials[mi]
            colours[sel] += mat_w[sel, mi, None] * part_texture(
                PATTERN_CODES[m.pattern], np.asarray(m.colour, float), np.asarray(m.colour2, float), float(m.scale),
                int(m.seed), tex[sel], np.ones(3))
        if self.shading:
            v = self._verts[t][corners]  # (M, 3, 3)
            n = np.cross(v[:, 1] - v[:, 0], v[:, 2] - v[:, 0])
            lam = np.maximum((n @ LIGHT) / np.maximum(np.linalg.norm(n, axis=1), 1e-12), 0.0)
            colours *= (AMBIENT + (1 - AMBIENT) * lam)[:, None]
        pix = hits.pixel
        fr.image.reshape(-1, 3)[pix] = np.clip(np.rint(colours), 0, 255).astype(np.uint8)
        fr.owner.reshape(-1)[pix] = self._face_owner[face]
        fr.part.reshape(-1)[pix] = -3 - self._face_mesh[face]
        if fr.flow is not None:
            nxt = np.einsum("mk,mkc->cm", b, self._verts[t + 1][corners])  # (3, M) the same points at t+1
            f, z = self._project_flow(nxt, t + 1, (pix % w).astype(np.float64), (pix // w).astype(np.float64),
                                      (pix.size,))
            fr.flow.reshape(-1, 2)[pix] = f
            fr.depth_next.reshape(-1)[pix] = z
        return fr
