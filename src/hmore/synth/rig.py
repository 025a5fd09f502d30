"""Rigged triangle meshes: rest data, forward kinematics and linear blend skinning in numpy.

A :class:`SkinnedBody` is a mesh in its rest pose (hmore's world axes: metres, y up, facing +z, left = +x) with a
bone tree. A pose is given per bone as the rotation ``G`` that turns the bone from its rest orientation to its posed
one, in world axes (identity everywhere = the rest pose), plus the posed position of the root bone's head; every
other bone's head follows its parent rigidly. Bones a pose does not drive take their parent's ``G`` (they keep
their rest angle to it), see :func:`fill_rotations`.

Forward kinematics gives each bone the rigid transform ``A_c = [G_c | t_c]`` from rest to posed space:
``t_root = root - G_root h_root`` and ``t_c = A_parent(h_c) - G_c h_c`` (h: rest heads). Skinning blends them with
the mesh's bone weights. Everything is float64 and deterministic (the same pose gives the same bytes).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import scipy.sparse

from hmore.skeleton import H36M17


@dataclass(frozen=True)
class JointRegressor:
    """Joints as fixed linear blends of posed bone heads and posed vertices.

    Attributes:
        names: joint names (K).
        head_weights: (K, J) weights of the bones' posed heads.
        vertex_index: (K, S) vertex indices (padded with weight 0).
        vertex_weight: (K, S) weights of those vertices. Each joint's head and vertex weights sum to 1.
    """

    names: tuple[str, ...]
    head_weights: np.ndarray
    vertex_index: np.ndarray
    vertex_weight: np.ndarray

    def __post_init__(self) -> None:
        k = len(self.names)
        if self.head_weights.shape[0] != k or self.vertex_index.shape != self.vertex_weight.shape or \
                self.vertex_index.shape[0] != k:
            raise ValueError(f"JointRegressor: {k} names, head_weights {self.head_weights.shape}, vertex_index "
                             f"{self.vertex_index.shape}, vertex_weight {self.vertex_weight.shape}")
        total = self.head_weights.sum(1) + self.vertex_weight.sum(1)
        if not np.allclose(total, 1.0, atol=1e-6):
            raise ValueError(f"JointRegressor: weights must sum to 1 per joint, got {np.round(total, 4).tolist()}")

    @property
    def used_vertices(self) -> np.ndarray:
        """Sorted unique vertex indices with a non-zero weight."""
        return np.unique(self.vertex_index[self.vertex_weight != 0])


@dataclass(frozen=True)
class SkinnedBody:
    """A rigged mesh in its rest pose.

    Attributes:
        bone_names: (J) bone names; bone 0 is the root.
        parents: (J,) parent index of each bone (-1 for the root), parents before children.
        heads: (J, 3) rest positions of the bones' heads (their pivots).
        vertices: (V, 3) rest vertices.
        faces: (F, 3) int32 triangles, counter-clockwise seen from outside (outward normals).
        skin_index: (V, K) bone indices of each vertex's influences.
        skin_weight: (V, K) their weights (rows sum to 1; unused slots 0).
        regions: (V, R) soft region weights of every vertex (clothing, skin, hair ...; meaning set by the builder),
            rows summing to 1.
        info: free-form JSON-able description (model, version, parameters).
    """

    bone_names: tuple[str, ...]
    parents: np.ndarray
    heads: np.ndarray
    vertices: np.ndarray
    faces: np.ndarray
    skin_index: np.ndarray
    skin_weight: np.ndarray
    regions: np.ndarray
    info: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        j, v = len(self.bone_names), self.vertices.shape[0]
        if self.parents.shape != (j,) or self.heads.shape != (j, 3):
            raise ValueError(f"SkinnedBody: {j} bones but parents {self.parents.shape}, heads {self.heads.shape}")
        if self.parents[0] != -1 or np.any(self.parents[1:] >= np.arange(1, j)) or np.any(self.parents[1:] < 0):
            raise ValueError("SkinnedBody: bone 0 must be the only root and parents must come before children")
        if self.vertices.shape != (v, 3) or self.skin_index.shape != self.skin_weight.shape or \
                self.skin_index.shape[0] != v:
            raise ValueError(f"SkinnedBody: vertices {self.vertices.shape}, skin_index {self.skin_index.shape}, "
                             f"skin_weight {self.skin_weight.shape}")
        if self.faces.ndim != 2 or self.faces.shape[1] != 3 or self.regions.ndim != 2 or \
                self.regions.shape[0] != v:
            raise ValueError(f"SkinnedBody: faces (F, 3) and regions (V, R) expected, got {self.faces.shape}, "
                             f"{self.regions.shape}")

    @property
    def num_bones(self) -> int:
        return len(self.bone_names)

    def bone(self, name: str) -> int:
        try:
            return self.bone_names.index(name)
        except ValueError:
            raise KeyError(f"no bone named {name!r}") from None

    def skin_matrix(self) -> scipy.sparse.csr_matrix:
        """(V, J) sparse bone weights."""
        v, k = self.skin_index.shape
        rows = np.repeat(np.arange(v), k)
        return scipy.sparse.csr_matrix((self.skin_weight.reshape(-1), (rows, self.skin_index.reshape(-1))),
                                       shape=(v, self.num_bones))


@dataclass(frozen=True)
class RigPose:
    """A pose sequence of a :class:`SkinnedBody`.

    Attributes:
        rot: (T, J, 3, 3) rest -> posed rotation of every bone, world axes.
        root: (T, 3) posed position of the root bone's head.
    """

    rot: np.ndarray
    root: np.ndarray

    def __post_init__(self) -> None:
        if self.rot.ndim != 4 or self.rot.shape[2:] != (3, 3) or self.root.shape != (self.rot.shape[0], 3):
            raise ValueError(f"RigPose: rot (T, J, 3, 3) and root (T, 3) expected, got {self.rot.shape}, "
                             f"{self.root.shape}")

    @property
    def num_frames(self) -> int:
        return int(self.rot.shape[0])


def fill_rotations(parents: np.ndarray, rot: np.ndarray, driven: np.ndarray) -> np.ndarray:
    """Bones not ``driven`` (J,) bool take their parent's rotation (T, J, 3, 3), in place; returns ``rot``."""
    for c in range(1, len(parents)):
        if not driven[c]:
            rot[:, c] = rot[:, parents[c]]
    return rot


def forward_kinematics(body: SkinnedBody, pose: RigPose) -> np.ndarray:
    """(T, J, 3, 4) rest -> posed rigid transforms ``[G | t]`` of every bone."""
    g = pose.rot
    T, J = g.shape[:2]
    if J != body.num_bones:
        raise ValueError(f"forward_kinematics: pose has {J} bones, the body {body.num_bones}")
    h = body.heads
    out = np.empty((T, J, 3, 4))
    out[..., :3] = g
    out[:, 0, :, 3] = pose.root - g[:, 0] @ h[0]
    for c in range(1, J):
        p = body.parents[c]
        posed_head = out[:, p, :, :3] @ h[c] + out[:, p, :, 3]  # (T, 3)
        out[:, c, :, 3] = posed_head - g[:, c] @ h[c]
    return out


def posed_heads(body: SkinnedBody, transforms: np.ndarray) -> np.ndarray:
    """(T, J, 3) posed bone heads from :func:`forward_kinematics` transforms."""
    return np.einsum("tjik,jk->tji", transforms[..., :3], body.heads) + transforms[..., 3]


def skin(body: SkinnedBody, transforms: np.ndarray, vertex_index: np.ndarray | None = None,
         matrix: scipy.sparse.csr_matrix | None = None) -> np.ndarray:
    """Linear blend skinning: (T, V', 3) posed vertices (all, or those of ``vertex_index``).

    Args:
        body: the body.
        transforms: (T, J, 3, 4) from :func:`forward_kinematics`.
        vertex_index: optional subset of vertices.
        matrix: the body's :meth:`SkinnedBody.skin_matrix` (pass it when skinning many times).
    """
    m = body.skin_matrix() if matrix is None else matrix
    rest = body.vertices
    if vertex_index is not None:
        m = m[vertex_index]
        rest = rest[vertex_index]
    T, J = transforms.shape[:2]
    blend = m @ transforms.transpose(1, 0, 2, 3).reshape(J, T * 12)  # (V', T*12): per-vertex blended [R | t]
    blend = blend.reshape(-1, T, 3, 4)
    return (np.einsum("vtik,vk->tvi", blend[..., :3], rest) + blend[..., 3].transpose(1, 0, 2))


def regress(body: SkinnedBody, reg: JointRegressor, transforms: np.ndarray) -> np.ndarray:
    """(T, K, 3) joints of ``reg`` for poses given by their FK ``transforms`` (T, J, 3, 4).

    Exact without skinning a vertex: a blend of skinned vertices is ``sum_j A_j m_kj`` with the bone moments
    ``m_kj = sum_v w_kv W_vj (x_v, 1)`` (regressor weights w, skin weights W, rest vertices x), which are computed once
    per call from the rest mesh.
    """
    heads = posed_heads(body, transforms)  # (T, J, 3)
    out = np.einsum("kj,tjc->tkc", reg.head_weights, heads)
    if reg.used_vertices.size:
        k, s = reg.vertex_index.shape
        w = scipy.sparse.csr_matrix((reg.vertex_weight.reshape(-1), (np.repeat(np.arange(k), s),
                                     reg.vertex_index.reshape(-1))), shape=(k, len(body.vertices)))
        skin_w = body.skin_matrix()
        rest_h = np.concatenate([body.vertices, np.ones((len(body.vertices), 1))], axis=1)  # (V, 4)
        moments = np.stack([(w.multiply(rest_h[:, c][None]) @ skin_w).toarray() for c in range(4)], axis=-1)
        out += np.einsum("tjab,kjb->tka", transforms, moments)  # (K, J, 4) moments
    return out


def h36m_bone_lengths(joints: np.ndarray) -> np.ndarray:
    """(16,) lengths of the H36M-17 bones (in :data:`hmore.skeleton.H36M17` bone order) of joints (17, 3)."""
    return np.array([np.linalg.norm(joints[b] - joints[a]) for a, b in H36M17.bones])
