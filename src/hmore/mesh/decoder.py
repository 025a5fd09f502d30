"""A differentiable Anny body in torch: bone-group rotations and a phenotype -> posed vertices and H36M-17 joints.

The pose is what :func:`hmore.synth.retarget.retarget_h36m` solves for: one rest -> posed rotation per bone group
(:func:`hmore.synth.retarget.rig_groups`, 24 for Anny), every other bone keeping its rest angle to its parent. The
shape is Anny's phenotype (six values in [0, 1]). Rotations may be in any frame (world or camera): the rest pose is
in hmore's world axes and the output lives in the rotations' frame, translated so that the H36M root (the middle of
the hips) is at the origin (root-relative, as MotionBERT's mesh metrics are).

Forward kinematics runs over the depth levels of the bone tree; skinning is a sparse (vertices x bones) product.
Only the vertices asked for are skinned (training uses a fixed subset, evaluation all 13,718).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import torch
from torch import nn

from hmore.synth.rig import SkinnedBody


class Decoded(NamedTuple):
    """vertices (..., V', 3) and joints (..., 17, 3), root-relative, in the rotations' frame (metres)."""

    vertices: torch.Tensor
    joints: torch.Tensor


@dataclass(frozen=True)
class ShapeSpace:
    """Phenotype -> rest shape: ``coefficients(phenotype)`` (B, K) blend ``blendshapes`` (K, V, 3) and
    ``head_blendshapes`` (K, J, 3) onto ``template`` (V, 3) and ``template_heads`` (J, 3) (hmore axes)."""

    coefficients: object  # callable (B, 6) tensor -> (B, K) tensor
    template: np.ndarray
    blendshapes: np.ndarray
    template_heads: np.ndarray
    head_blendshapes: np.ndarray


def anny_shape_space() -> ShapeSpace:
    """Anny's phenotype blend shapes (loads the model; see :mod:`hmore.synth.anny_body`)."""
    from hmore.synth.anny_body import AXES, _anny

    m = _anny().model
    ax = torch.as_tensor(AXES, dtype=m.dtype)

    def coefficients(phenotype: torch.Tensor) -> torch.Tensor:
        ph = phenotype.to(m.dtype)
        empty = ph.new_zeros((ph.shape[0], 0))
        return m._get_phenotype_blendshape_coefficients(ph, empty, empty)  # anny 0.6: (B, K)

    with torch.no_grad():
        return ShapeSpace(
            coefficients=coefficients,
            template=(m.template_vertices @ ax.T).numpy(),
            blendshapes=(m.blendshapes @ ax.T).numpy(),
            template_heads=(m.template_bone_heads @ ax.T).numpy(),
            head_blendshapes=(m.bone_heads_blendshapes @ ax.T).numpy(),
        )


class BodyDecoder(nn.Module):
    """Group rotations + phenotype -> vertices and H36M joints (not learned; buffers only, float32).

    Args:
        body: a rest body of the model (topology, rig, skin weights; its own shape is not used).
        shape: the phenotype shape space.
        group_of_bone: (J,) group index of every bone (:func:`hmore.synth.retarget.bone_groups`).
        head_weights: (17, J) H36M joints as blends of bone heads.
        face_weight: (17, V) vertex blends of the joints that need vertices (nose, head top): their rest position,
            carried rigidly by ``face_bone`` (17,) (the head; -1 for the other joints).
        train_vertices: indices of the vertex subset used when ``vertices="train"``.
    """

    def __init__(self, *, body: SkinnedBody, shape: ShapeSpace, group_of_bone: np.ndarray, head_weights: np.ndarray,
                 face_weight: np.ndarray, face_bone: np.ndarray, train_vertices: np.ndarray) -> None:
        super().__init__()
        self._coefficients = shape.coefficients
        f32 = torch.float32
        self.register_buffer("template", torch.as_tensor(shape.template, dtype=f32), persistent=False)
        self.register_buffer("blendshapes", torch.as_tensor(shape.blendshapes, dtype=f32), persistent=False)
        self.register_buffer("template_heads", torch.as_tensor(shape.template_heads, dtype=f32), persistent=False)
        self.register_buffer("head_blendshapes", torch.as_tensor(shape.head_blendshapes, dtype=f32),
                             persistent=False)
        self.register_buffer("group_of_bone", torch.as_tensor(group_of_bone, dtype=torch.long), persistent=False)
        self.register_buffer("head_weights", torch.as_tensor(head_weights, dtype=f32), persistent=False)
        self.face_joints = [int(j) for j in np.flatnonzero(np.asarray(face_bone) >= 0)]
        self.face_bones = [int(face_bone[j]) for j in self.face_joints]
        self.register_buffer("face_weight", torch.as_tensor(face_weight[self.face_joints], dtype=f32),
                             persistent=False)
        self.register_buffer("train_vertices", torch.as_tensor(train_vertices, dtype=torch.long), persistent=False)
        self.num_vertices = int(shape.template.shape[0])
        self.faces = np.asarray(body.faces, dtype=np.int32)  # (F, 3) the topology
        self.register_buffer("vertex_area", torch.as_tensor(_vertex_areas(body), dtype=f32), persistent=False)
        self.num_groups = int(group_of_bone.max()) + 1
        parents = np.asarray(body.parents)
        self.register_buffer("parents", torch.as_tensor(parents, dtype=torch.long), persistent=False)
        depth = np.zeros(len(parents), dtype=np.int64)
        for c in range(1, len(parents)):
            depth[c] = depth[parents[c]] + 1
        self._levels = [torch.as_tensor(np.flatnonzero(depth == d)) for d in range(1, int(depth.max()) + 1)]
        self._skin = body.skin_matrix().tocsr()  # scipy (V, J)

    def rest(self, phenotype: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Rest vertices (B, V, 3) and bone heads (B, J, 3) of phenotypes (B, 6)."""
        c = self._coefficients(phenotype).to(self.template.dtype)  # (B, K)
        verts = self.template + torch.einsum("bk,kvc->bvc", c, self.blendshapes)
        heads = self.template_heads + torch.einsum("bk,kjc->bjc", c, self.head_blendshapes)
        return verts, heads

    def _skin_matrix(self, index: torch.Tensor) -> torch.Tensor:
        sub = self._skin[index.cpu().numpy()].tocoo()
        return torch.sparse_coo_tensor(np.stack([sub.row, sub.col]), sub.data.astype(np.float32), sub.shape,
                                       device=self.template.device, check_invariants=False).coalesce()

    def forward(self, rot: torch.Tensor, phenotype: torch.Tensor, vertices: str | torch.Tensor = "train") -> Decoded:
        """Decode poses.

        Args:
            rot: (B, F, G, 3, 3) group rotations.
            phenotype: (B, 6) in [0, 1].
            vertices: ``"train"`` (the training subset), ``"all"``, ``"joints"`` (no vertex: the joints only, no
                skinning) or a tensor of vertex indices.

        Returns:
            :class:`Decoded` with vertices (B, F, V', 3) (V' = 0 for ``"joints"``) and joints (B, F, 17, 3).
        """
        if rot.ndim != 5 or rot.shape[2:] != (self.num_groups, 3, 3):
            raise ValueError(f"BodyDecoder: rot must be (B, F, {self.num_groups}, 3, 3), got {tuple(rot.shape)}")
        if phenotype.shape != (rot.shape[0], 6):
            raise ValueError(f"BodyDecoder: phenotype must be ({rot.shape[0]}, 6), got {tuple(phenotype.shape)}")
        b, f = rot.shape[:2]
        rest_v, heads = self.rest(phenotype)  # (B, V, 3), (B, J, 3)
        g = rot[:, :, self.group_of_bone]  # (B, F, J, 3, 3)
        h = heads[:, None].expand(b, f, -1, -1)  # (B, F, J, 3)
        # forward kinematics: translation t_c = A_parent(h_c) - G_c h_c, the root's head at the origin
        t_root = -torch.einsum("bfij,bfj->bfi", g[:, :, 0], h[:, :, 0])
        t_all = torch.cat([t_root[:, :, None], t_root.new_zeros(b, f, g.shape[2] - 1, 3)], dim=2)
        for lev in self._levels:
            lev = lev.to(g.device)
            p = self.parents[lev]
            hc = h[:, :, lev]  # (B, F, n, 3)
            posed_head = torch.einsum("bfnij,bfnj->bfni", g[:, :, p], hc) + t_all[:, :, p]
            t_all = t_all.index_copy(2, lev, posed_head - torch.einsum("bfnij,bfnj->bfni", g[:, :, lev], hc))
        heads_posed = torch.einsum("bfjik,bfjk->bfji", g, h) + t_all  # (B, F, J, 3)
        # vertices: the subset asked for
        if isinstance(vertices, str) and vertices not in ("train", "all", "joints"):
            raise ValueError(f"vertices must be 'train', 'all', 'joints' or indices, got {vertices!r}")
        transforms = torch.cat([g, t_all[..., None]], dim=-1)  # (B, F, J, 3, 4)
        if isinstance(vertices, str) and vertices == "joints":
            posed = rest_v.new_zeros(b, f, 0, 3)
        else:
            if isinstance(vertices, str):
                index = self.train_vertices if vertices == "train" else torch.arange(self.num_vertices,
                                                                                     device=g.device)
            else:
                index = vertices.to(g.device)
            w = self._skin_matrix(index)  # (V', J)
            flat = transforms.permute(2, 0, 1, 3, 4).reshape(g.shape[2], -1)  # (J, B*F*12)
            blend = torch.sparse.mm(w, flat).reshape(index.numel(), b, f, 3, 4)  # (V', B, F, 3, 4)
            posed = (torch.einsum("vbfik,bvk->bfvi", blend[..., :3], rest_v[:, index])
                     + blend[..., 3].permute(1, 2, 0, 3))
        joints = torch.einsum("kj,bfjc->bfkc", self.head_weights, heads_posed)
        if self.face_joints:  # rest points carried by their bone
            rest_pts = torch.einsum("kv,bvc->bkc", self.face_weight, rest_v)  # (B, k, 3)
            a = transforms[:, :, self.face_bones]  # (B, F, k, 3, 4)
            pts = torch.einsum("bfkij,bkj->bfki", a[..., :3], rest_pts) + a[..., 3]
            joints = joints.index_add(2, torch.as_tensor(self.face_joints, device=g.device), pts)
        root = joints[:, :, :1]
        return Decoded(vertices=posed - root, joints=joints - root)


def _vertex_areas(body: SkinnedBody) -> np.ndarray:
    """(V,) each vertex's share of the rest surface (a third of each adjacent triangle), m^2."""
    tri = body.vertices[body.faces]
    area = 0.5 * np.linalg.norm(np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]), axis=1)
    return np.bincount(body.faces.reshape(-1), weights=np.repeat(area / 3, 3), minlength=len(body.vertices))


@functools.lru_cache(maxsize=2)
def anny_decoder(*, train_vertices: int = 1000, seed: int = 0) -> BodyDecoder:
    """The :class:`BodyDecoder` of Anny with :data:`hmore.synth.anny_body.ANNY_ROLES` groups.

    Args:
        train_vertices: size of the training vertex subset, drawn with probability proportional to each vertex's
            share of the surface (Anny's face is far denser than its body).
        (The nose and head-top joints move rigidly with the head bone: exact up to the few face vertices whose skin
        weights also follow the neck.)
        seed: seed of the subset.

    Built once per process and arguments (cached: do not modify it).
    """
    from hmore.synth.anny_body import ANNY_ROLES, Phenotype, anny_body, h36m_regressor
    from hmore.synth.retarget import bone_groups, rig_groups

    body = anny_body(Phenotype())
    reg = h36m_regressor(body)
    k, v = reg.vertex_weight.shape[0], len(body.vertices)
    face_weight, face_bone = np.zeros((k, v)), np.full(k, -1, dtype=np.int64)
    for j in range(k):
        if reg.vertex_weight[j].sum() > 0:
            np.add.at(face_weight[j], reg.vertex_index[j], reg.vertex_weight[j])
            face_bone[j] = body.bone("head")
    per_vertex = _vertex_areas(body)
    rng = np.random.default_rng([seed, 0x5EB])
    subset = np.sort(rng.choice(len(body.vertices), size=train_vertices, replace=False,
                                p=per_vertex / per_vertex.sum()))
    return BodyDecoder(body=body, shape=anny_shape_space(), group_of_bone=bone_groups(body, rig_groups(ANNY_ROLES)),
                       head_weights=reg.head_weights, face_weight=face_weight, face_bone=face_bone,
                       train_vertices=subset)
