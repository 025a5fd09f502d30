"""Anny bodies for the generator: people sampled from Anny's phenotype space, dressed by region, posed by motion.

`Anny <https://pypi.org/project/anny/>`_ (NAVER Labs, Apache-2.0; its mesh, rig and blend shapes are MakeHuman
assets under CC0 1.0, its COCO keypoint regressor ships in the wheel) is a parametric body model: a mesh of 13,718
vertices and 27,420 triangles on a 104-bone rig, shaped by six phenotype parameters in [0, 1] (gender, age, muscle,
weight, height, proportions). hmore uses it only to build each person's rest mesh and skeleton
(:func:`anny_body`); posing and skinning are hmore's own numpy code (:mod:`hmore.synth.rig`), so Anny's Warp kernels
are never compiled. Anny's first use in a fresh environment builds its blend-shape cache (about 3 minutes, about
800 MB under ``~/.cache/anny``); later processes load it in a fraction of a second. Anny's optional SMPL
conversion data (a non-commercial download) is never used.

Axes: Anny is z up, facing -y; hmore is y up, facing +z (left = +x in both), so ``hmore = M @ anny`` with
``M = [[1, 0, 0], [0, 0, 1], [0, -1, 0]]``.

A person keeps everything the capsule generator gives an identity (colours, patterns, gait style:
:func:`hmore.synth.identity.sample_identity`) and adds a phenotype and an outfit drawn from the same identity id;
the identity's body measures (height, leg and arm ratios, shoulder and hip widths) are measured on the Anny body, so
the procedural motions are built for its proportions.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
from dataclasses import dataclass

import numpy as np
import scipy.sparse

from hmore.errors import UsageError
from hmore.synth.body import Body, Material, PartSpec, build_body, measure_bones
from hmore.synth.identity import Identity
from hmore.synth.mesh_raster import MeshTrack
from hmore.synth.motion_types import Motion
from hmore.synth.retarget import RigRoles, relength, rest_joints, retarget_h36m
from hmore.synth.rig import JointRegressor, RigPose, SkinnedBody, forward_kinematics, h36m_bone_lengths, regress, skin

log = logging.getLogger(__name__)

PHENOTYPES = ("gender", "age", "muscle", "weight", "height", "proportions")
AXES = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, -1.0, 0.0]])  # Anny (z up, facing -y) -> hmore (y up, +z)

# Regions of a dressed body (SkinnedBody.regions), softened over REGION_BLUR rings of neighbours (about 1 cm each).
SKIN, HAIR, TOP, BOTTOM, SHOES, EYES = range(6)
REGIONS = ("skin", "hair", "top", "bottom", "shoes", "eyes")
REGION_BLUR = 3

ANNY_ROLES = RigRoles(
    root="root",
    pelvis=("pelvis.L", "pelvis.R"),
    spine=("spine05", "spine04", "spine03", "spine02", "spine01"),
    belly="spine02",
    neck=("neck01", "neck02", "neck03"),
    head="head",
    clavicle=(("clavicle.L", "shoulder01.L"), ("clavicle.R", "shoulder01.R")),
    upper_arm=(("upperarm01.L", "upperarm02.L"), ("upperarm01.R", "upperarm02.R")),
    forearm=(("lowerarm01.L", "lowerarm02.L"), ("lowerarm01.R", "lowerarm02.R")),
    hand=(("wrist.L",), ("wrist.R",)),
    thigh=(("upperleg01.L", "upperleg02.L"), ("upperleg01.R", "upperleg02.R")),
    shin=(("lowerleg01.L", "lowerleg02.L"), ("lowerleg01.R", "lowerleg02.R")),
    foot=(("foot.L",), ("foot.R",)),
)


@dataclass(frozen=True)
class Phenotype:
    """Anny's six phenotype parameters, each in [0, 1] (gender 0 male, 1 female; age 0.67 a young adult, 1 old;
    0.5 is Anny's average elsewhere)."""

    gender: float = 0.5
    age: float = 0.67
    muscle: float = 0.5
    weight: float = 0.5
    height: float = 0.5
    proportions: float = 0.5

    def __post_init__(self) -> None:
        for name in PHENOTYPES:
            v = getattr(self, name)
            if not 0.0 <= v <= 1.0:
                raise ValueError(f"Phenotype.{name} must be within [0, 1], got {v}")

    def values(self) -> np.ndarray:
        return np.array([getattr(self, n) for n in PHENOTYPES], dtype=np.float64)


@dataclass(frozen=True)
class Outfit:
    """What a person wears besides colours: ``sleeves`` and ``legs`` ``"long"`` or ``"short"``, ``hair``
    ``"short"``, ``"long"`` or ``"none"``."""

    sleeves: str = "long"
    legs: str = "long"
    hair: str = "short"


@dataclass(frozen=True)
class AnnyPerson:
    """An identity (appearance, gait style, body measures taken on the Anny body), its phenotype and outfit."""

    identity: Identity
    phenotype: Phenotype
    outfit: Outfit


def sample_phenotype(identity_id: int, seed: int | None = None) -> Phenotype:
    """A reproducible phenotype for an identity id: adults and teenagers of both sexes, all builds, heights of
    real adults (Anny's height 0.5 makes a 1.91 m young man)."""
    rng = np.random.default_rng([int(identity_id), 0 if seed is None else int(seed), 0xA77])
    male = rng.uniform() < 0.5
    return Phenotype(
        gender=float(rng.uniform(0.0, 0.3) if male else rng.uniform(0.7, 1.0)),
        age=float(rng.uniform(0.55, 1.0)),
        muscle=float(rng.uniform(0.15, 0.85)),
        weight=float(rng.uniform(0.1, 0.9)),
        height=float(rng.uniform(0.22, 0.52)),  # adults: men about 1.60-1.93 m, women 1.46-1.79 m
        proportions=float(rng.uniform(0.2, 0.8)),
    )


def sample_outfit(identity_id: int, condition: str, seed: int | None = None) -> Outfit:
    """A reproducible outfit; a coat always has long sleeves."""
    rng = np.random.default_rng([int(identity_id), 0 if seed is None else int(seed), 0x0F1])
    sleeves = "long" if condition == "coat" or rng.uniform() < 0.5 else "short"
    legs = "long" if rng.uniform() < 0.75 else "short"
    hair = ("short", "long", "none")[int(rng.choice(3, p=[0.55, 0.35, 0.1]))]
    return Outfit(sleeves=sleeves, legs=legs, hair=hair)


# ---- the Anny model ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _AnnyStatic:
    """What does not depend on the phenotype: topology, rig, skin weights, the COCO keypoint weights."""

    model: object  # anny.Anny
    version: str
    bone_names: tuple[str, ...]
    parents: np.ndarray
    faces: np.ndarray
    skin_index: np.ndarray
    skin_weight: np.ndarray
    coco: np.ndarray  # (17, V) vertex weights (COCO-17 order)


@functools.lru_cache(maxsize=1)
def _anny() -> _AnnyStatic:
    try:
        import anny
        import torch
    except ImportError:
        raise UsageError("Anny bodies need the anny package: pip install 'hmore[body]'") from None
    from anny.paths import get_anny_cache_path

    if not any(get_anny_cache_path().glob("*/build_compact_model_data_*")):
        log.warning("building Anny's blend-shape cache in %s (first use only: about 3 minutes, 800 MB)",
                    get_anny_cache_path())
    with torch.no_grad():
        model = anny.Anny(skinning_method="lbs")  # pure torch (no Warp kernels); hmore skins on its own anyway
        coco = anny.KeypointsRegressor.coco(model)
    from hmore.skeleton import COCO17

    rows = [coco.labels.index(n) for n in COCO17.joints]
    w = coco.regression_weights.numpy()[rows].astype(np.float64)
    return _AnnyStatic(
        model=model,
        version=str(anny.__version__),
        bone_names=tuple(model.bone_labels),
        parents=np.array(model.bone_parents, dtype=np.int64),
        faces=model.faces.numpy().astype(np.int32),
        skin_index=model.vertex_bone_indices.numpy().astype(np.int64),
        skin_weight=model.vertex_bone_weights.numpy().astype(np.float64),
        coco=w,
    )


@functools.lru_cache(maxsize=64)
def _rest(phenotype: Phenotype) -> tuple[np.ndarray, np.ndarray]:
    """Rest vertices (V, 3) and bone heads (J, 3) of a phenotype, hmore axes, rounded to 0.1 micrometre (so that the
    bytes do not depend on how many threads the blend-shape product used)."""
    import torch

    m = _anny().model
    with torch.no_grad():
        rest = m(phenotype_kwargs=torch.as_tensor(phenotype.values()[None], dtype=m.dtype))  # rest pose, public API
    verts = rest["rest_vertices"][0].numpy() @ AXES.T
    heads = rest["rest_bone_poses"][0, :, :3, 3].numpy() @ AXES.T
    return np.round(verts, 7), np.round(heads, 7)


def _dominant_bones(st: _AnnyStatic) -> np.ndarray:
    return st.skin_index[np.arange(st.skin_index.shape[0]), np.argmax(st.skin_weight, axis=1)]


def _regions(st: _AnnyStatic, verts: np.ndarray, heads: np.ndarray, outfit: Outfit) -> np.ndarray:
    """(V, R) soft region weights: every vertex's region from its dominant bone and rest position, then blurred
    over the mesh (:data:`REGION_BLUR` rounds of averaging with the neighbours) so that borders are soft, as the
    procedural textures are (bilinear warping reproduces them)."""
    names = st.bone_names
    dom = _dominant_bones(st)
    label = np.array([n.split(".")[0].rstrip("0123456789-") for n in names])[dom]  # e.g. "upperarm", "toe"
    hb = {n: heads[names.index(n)] for n in ("upperleg01.L", "foot.L", "eye.L", "head", "upperarm01.L",
                                              "lowerarm01.L", "wrist.L", "lowerleg01.L")}
    y, z = verts[:, 1], verts[:, 2]
    sole = float(y.min())
    height = float(y.max()) - sole
    region = np.full(len(verts), SKIN, dtype=np.int8)
    # trunk: top above the waist, bottom below it
    waist = hb["upperleg01.L"][1] + 0.055 * height
    trunk = np.isin(label, ("root", "pelvis", "spine", "clavicle", "shoulder"))
    region[trunk] = np.where(y[trunk] > waist, TOP, BOTTOM)
    # limbs: position along the bone from its upper joint, on the mirrored rest pose (it is symmetric)
    upper = label == "upperarm"
    fore = label == "lowerarm"
    ax = np.abs(verts[:, 0])
    sym = verts.copy()
    sym[:, 0] = ax
    if outfit.sleeves == "long":
        region[upper] = TOP
        d = hb["wrist.L"] - hb["lowerarm01.L"]
        t = (sym - hb["lowerarm01.L"]) @ d / float(d @ d)
        region[fore] = np.where(t[fore] < 0.93, TOP, SKIN)
    else:
        d = hb["lowerarm01.L"] - hb["upperarm01.L"]
        t = (sym - hb["upperarm01.L"]) @ d / float(d @ d)
        region[upper] = np.where(t[upper] < 0.45, TOP, SKIN)
    # legs
    legs = np.isin(label, ("upperleg", "lowerleg"))
    if outfit.legs == "long":
        region[legs] = BOTTOM
    else:
        d = hb["lowerleg01.L"] - hb["upperleg01.L"]
        t = (sym - hb["upperleg01.L"]) @ d / float(d @ d)
        region[legs] = np.where(t[legs] < 0.62, BOTTOM, SKIN)
    # shoes: feet, toes and the ankle
    ankle_top = hb["foot.L"][1] + 0.035 * height / 1.7
    region[np.isin(label, ("foot", "toe")) | (legs & (y < ankle_top))] = SHOES
    # head: eyes, hair
    region[label == "eye"] = EYES
    headish = np.isin(label, ("head", "neck"))
    eye_y, eye_z = hb["eye.L"][1], hb["eye.L"][2]
    if outfit.hair != "none":
        hairline = eye_y + 0.04 * height / 1.7
        nape = eye_y - (0.17 if outfit.hair == "long" else 0.075) * height / 1.7
        back = z < eye_z - 0.085 * height / 1.7
        hair = headish & ((y > hairline) | (back & (y > nape)))
        if outfit.hair == "long":  # falls over the sides down to the jaw
            hair |= headish & (z < eye_z - 0.04) & (y > eye_y - 0.1 * height / 1.7) & (ax > 0.05)
        region[hair] = HAIR
    w = np.eye(len(REGIONS))[region]  # (V, R) one-hot
    adj = _adjacency(st.faces, len(verts))
    for _ in range(REGION_BLUR):
        w = adj @ w
    return w


@functools.lru_cache(maxsize=1)
def _adjacency_cached(faces_bytes: bytes, n: int) -> scipy.sparse.csr_matrix:
    faces = np.frombuffer(faces_bytes, dtype=np.int32).reshape(-1, 3)
    i = np.concatenate([faces[:, 0], faces[:, 1], faces[:, 2], faces[:, 1], faces[:, 2], faces[:, 0], np.arange(n)])
    j = np.concatenate([faces[:, 1], faces[:, 2], faces[:, 0], faces[:, 0], faces[:, 1], faces[:, 2], np.arange(n)])
    a = scipy.sparse.csr_matrix((np.ones(i.size), (i, j)), shape=(n, n))
    a.data[:] = 1.0  # duplicates summed: count each neighbour once
    return scipy.sparse.diags(1.0 / np.asarray(a.sum(axis=1)).ravel()) @ a


def _adjacency(faces: np.ndarray, n: int) -> scipy.sparse.csr_matrix:
    """(n, n) row-normalised vertex adjacency (self included) of a triangle mesh."""
    return _adjacency_cached(np.ascontiguousarray(faces, dtype=np.int32).tobytes(), n)


@functools.lru_cache(maxsize=64)
def anny_body(phenotype: Phenotype, outfit: Outfit = Outfit()) -> SkinnedBody:
    """The rest mesh and skeleton of a phenotype, dressed by region (:data:`REGIONS`), hmore axes, metres.

    The rest pose stands with the root bone's head at its Anny position (pelvis near the origin, soles about 0.8 m
    below it), facing +z, arms in an A pose.
    """
    st = _anny()
    verts, heads = _rest(phenotype)
    return SkinnedBody(
        bone_names=st.bone_names, parents=st.parents, heads=heads, vertices=verts, faces=st.faces,
        skin_index=st.skin_index, skin_weight=st.skin_weight, regions=_regions(st, verts, heads, outfit),
        info={"model": "anny", "version": st.version, "phenotype": dataclasses.asdict(phenotype),
              "outfit": dataclasses.asdict(outfit)},
    )


def _crown(body: SkinnedBody, depth: float = 0.02) -> np.ndarray:
    """Vertices of the top of the head (within ``depth`` metres of the highest point)."""
    top = body.vertices[:, 1].max()
    return np.flatnonzero(body.vertices[:, 1] >= top - depth)


def h36m_regressor(body: SkinnedBody) -> JointRegressor:
    """H36M-17 joints on an Anny body.

    Bone heads for the hips, knees, ankles, shoulders, elbows, wrists; root the middle of the hips; neck (H36M's
    thorax) the middle of the clavicles' heads (the top of the sternum); belly the head of spine02 (about halfway
    from the root to the neck); "nose" the centre of the head at nose height (H36M's joint 9 is its "Head" marker,
    not the tip of the nose: 0.35 of Anny's COCO nose and 0.65 of the middle of its ears); head the top of the
    skull (H36M's head top).
    """
    st = _anny()
    b = body.bone
    k = 17
    hw = np.zeros((k, body.num_bones))
    pairs = {1: "upperleg01.R", 2: "lowerleg01.R", 3: "foot.R", 4: "upperleg01.L", 5: "lowerleg01.L", 6: "foot.L",
             11: "upperarm01.L", 12: "lowerarm01.L", 13: "wrist.L", 14: "upperarm01.R", 15: "lowerarm01.R",
             16: "wrist.R"}
    for j, name in pairs.items():
        hw[j, b(name)] = 1.0
    hw[0, [b("upperleg01.L"), b("upperleg01.R")]] = 0.5
    hw[7, b("spine02")] = 1.0
    hw[8, [b("clavicle.L"), b("clavicle.R")]] = 0.5
    unit = st.coco / st.coco.sum(axis=1, keepdims=True)
    face = 0.35 * unit[0] + 0.325 * (unit[3] + unit[4])  # nose, left ear, right ear
    face_idx = np.flatnonzero(face)
    crown = _crown(body)
    s = max(face_idx.size, crown.size)
    vi, vw = np.zeros((k, s), dtype=np.int64), np.zeros((k, s))
    vi[9, :face_idx.size], vw[9, :face_idx.size] = face_idx, face[face_idx]
    vi[10, :crown.size], vw[10, :crown.size] = crown, 1.0 / crown.size
    from hmore.skeleton import H36M17

    return JointRegressor(names=H36M17.joints, head_weights=hw, vertex_index=vi, vertex_weight=vw)


def coco_regressor(body: SkinnedBody) -> JointRegressor:
    """COCO-17 keypoints from Anny's own keypoint regressor (vertex blends)."""
    return _coco_regressor(body.num_bones)


@functools.lru_cache(maxsize=1)
def _coco_regressor(num_bones: int) -> JointRegressor:
    from hmore.skeleton import COCO17

    w = _anny().coco
    s = int((w != 0).sum(1).max())
    vi, vw = np.zeros((17, s), dtype=np.int64), np.zeros((17, s))
    for k in range(17):
        nz = np.flatnonzero(w[k])
        vi[k, :nz.size], vw[k, :nz.size] = nz, w[k, nz] / w[k, nz].sum()
    return JointRegressor(names=COCO17.joints, head_weights=np.zeros((17, num_bones)), vertex_index=vi,
                          vertex_weight=vw)


def measured_identity(identity: Identity, body: SkinnedBody, phenotype: Phenotype) -> Identity:
    """``identity`` with its body measures taken on ``body`` (height, leg/arm ratios, shoulder/hip widths) and its
    limb thickness and girth from the phenotype's weight and muscle; appearance and gait style are kept."""
    rest = _h36m(phenotype)[1]
    sole = float(body.vertices[:, 1].min())
    height = float(body.vertices[:, 1].max()) - sole
    arm = float(np.linalg.norm(rest[12] - rest[11]) + np.linalg.norm(rest[13] - rest[12]))
    bulk = 0.6 * phenotype.weight + 0.4 * phenotype.muscle
    return dataclasses.replace(
        identity,
        height=height,
        leg_ratio=(float(rest[4, 1]) - sole) / height,
        arm_ratio=arm / height,
        shoulder_width=float(np.linalg.norm(rest[11] - rest[14])) / height,
        hip_width=float(np.linalg.norm(rest[4] - rest[1])) / height,
        thickness=0.85 + 0.4 * bulk,
        girth=0.85 + 0.45 * bulk,
    )


@functools.lru_cache(maxsize=64)
def _h36m(phenotype: Phenotype) -> tuple[JointRegressor, np.ndarray]:
    """The H36M regressor of a phenotype's body and its rest joints (17, 3) (the outfit changes neither)."""
    body = anny_body(phenotype)
    reg = h36m_regressor(body)
    return reg, rest_joints(body, reg)


def anny_person(identity: Identity, condition: str) -> AnnyPerson:
    """The Anny version of ``identity`` wearing ``condition``: phenotype and outfit from its id, measures from the
    body."""
    phenotype = sample_phenotype(identity.identity_id)
    outfit = sample_outfit(identity.identity_id, condition)
    body = anny_body(phenotype, outfit)
    return AnnyPerson(identity=measured_identity(identity, body, phenotype), phenotype=phenotype, outfit=outfit)


# ---- posing ------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PosedAnny:
    """An Anny body playing a motion.

    Attributes:
        body: the dressed body. pose: its :class:`RigPose`.
        vertices: (T, V, 3) posed vertices (world), or None when not asked for.
        motion: the motion of the body's own H36M-17 joints (same name and facing as the source).
        coco: (T, 17, 3) world COCO-17 keypoints from Anny's regressor.
        materials: one :class:`Material` per region (:data:`REGIONS`).
        accessories: the bag / coat hem parts of the capsule body of the same identity and condition.
        body_parts: that capsule :class:`Body` (its accessories hang on frames of ``motion``).
    """

    body: SkinnedBody
    pose: RigPose
    vertices: np.ndarray | None
    motion: Motion
    coco: np.ndarray
    materials: tuple[Material, ...]
    accessories: tuple[PartSpec, ...]
    body_parts: Body


def _materials(capsule: Body, identity: Identity) -> tuple[Material, ...]:
    """Region materials from the capsule body of the same identity and condition (so both bodies wear the same)."""
    by_name = {p.name: p.material for p in capsule.parts}
    skin = by_name["neck"]
    hair = Material(pattern="noise", colour=identity.hair, colour2=tuple(int(v * 0.7) for v in identity.hair),
                    scale=0.03, seed=skin.seed + 7)
    eyes = Material(pattern="plain", colour=(35, 30, 30), colour2=(35, 30, 30))
    by_region = {SKIN: skin, HAIR: hair, TOP: by_name["chest"], BOTTOM: by_name["hips"], SHOES: by_name["l_foot"],
                 EYES: eyes}
    return tuple(by_region[r] for r in range(len(REGIONS)))


def pose_anny(person: AnnyPerson, motion: Motion, condition: str, *, with_vertices: bool = True) -> PosedAnny:
    """Retarget ``motion`` (H36M joints of the identity's skeleton) onto the person's Anny body and skin it
    (``with_vertices=False``: joints and keypoints only, ``vertices`` is None)."""
    body = anny_body(person.phenotype, person.outfit)
    reg, rest = _h36m(person.phenotype)
    pose = retarget_h36m(body, ANNY_ROLES, reg, motion.joints, rest=rest)
    transforms = forward_kinematics(body, pose)
    verts = skin(body, transforms) if with_vertices else None
    joints = regress(body, reg, transforms)
    coco = regress(body, coco_regressor(body), transforms)
    posed = Motion(joints=joints, fps=motion.fps, name=motion.name, face=motion.face)
    capsule = build_body(person.identity, condition, measure_bones(joints))
    accessories = tuple(p for p in capsule.parts if p.name in ("bag", "coat_hem"))
    return PosedAnny(body=body, pose=pose, vertices=verts, motion=posed, coco=coco,
                     materials=_materials(capsule, person.identity), accessories=accessories, body_parts=capsule)


def mesh_tracks(posed: list[PosedAnny]) -> list[MeshTrack]:
    """The rasteriser's meshes of posed subjects (subject k + 1 owns mesh k); textures live on the rest pose."""
    return [MeshTrack(vertices=p.vertices, faces=p.body.faces, texcoords=p.body.vertices,
                      material_weights=p.body.regions, materials=p.materials, owner=k + 1)
            for k, p in enumerate(posed)]


def relengthed_target(person: AnnyPerson, joints: np.ndarray) -> np.ndarray:
    """``joints`` (T, 17, 3) given the person's Anny bone lengths (what :func:`pose_anny` aims at)."""
    return relength(joints, h36m_bone_lengths(_h36m(person.phenotype)[1]))
