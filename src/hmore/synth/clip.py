"""Clips of people in motion with exact ground truth, and their on-disk format.

One compressed ``.npz`` per clip (issue 2; other parts of hmore and external checks rely on these keys):

===================  =========  ================  ============================================================
key                  dtype      shape             meaning
===================  =========  ================  ============================================================
``frames``           uint8      (T, H, W, 3)      RGB frames
``flow``             float32    (T-1, H, W, 2)    forward flow t -> t+1 in pixels (x, y), every visible pixel
``masks``            uint8      (T, H, W)         0 background, k for subject k (1-based)
``kp2d``             float32    (T, P, 17, 3)     COCO-17 x, y (pixels), visibility (1 visible, 0 hidden/outside)
``kp3d``             float32    (T, P, 17, 3)     H36M-17 joints in camera coordinates (metres)
``subject_velocity`` float32    (T-1, P, 2)       displacement of each subject's projected root joint (pixels)
``K``                float32    (3, 3)            camera intrinsics (constant over the clip)
``meta``             str (0-d)                    JSON: labels per subject, generator version, seed, parameters
``camera_flow``      float32    (T-1, H, W, 2)    optional: flow of the static scene under the camera's motion
                                                  alone (:mod:`hmore.synth.camera_flow`); 0 for a static camera
===================  =========  ================  ============================================================

The *local* flow of hmore (motion of each subject relative to its own root) is not stored: derive it with
:func:`local_flow`. The motion relative to the scene is ``flow - camera_flow`` (:meth:`Clip.scene_flow`); clips
written before ``camera_flow`` existed lack it.
"""

from __future__ import annotations

import json
import logging
import zipfile
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from hmore.errors import InputError, UsageError
from hmore.io.atomic import save_npz_atomic
from hmore.synth.body import (
    CONDITIONS,
    KIND_CODES,
    PATTERN_CODES,
    Body,
    body_frames,
    build_body,
    head_points,
    measure_bones,
    part_poses,
)
from hmore.synth.camera import CAMERA_MOTIONS, CameraTrack, place_camera
from hmore.synth.camera_flow import camera_induced_flow
from hmore.synth.identity import Identity, sample_identity
from hmore.synth.mesh_raster import MeshRasteriser
from hmore.synth.motion_types import Motion
from hmore.synth.raster import PartSet, Rasteriser
from hmore.synth.scene import make_background, make_distractors

log = logging.getLogger(__name__)

GENERATOR_VERSION = "hmore.synth/1"
BODIES = ("capsule", "anny")  # body models: articulated capsules (default), Anny meshes (hmore.synth.anny_body)
CLIP_KEYS = ("frames", "flow", "masks", "kp2d", "kp3d", "subject_velocity", "K", "meta")
OPTIONAL_KEYS = ("camera_flow",)
CASIA_VIEWS = tuple(float(v) for v in range(0, 181, 18))
MIN_PERSON_FRACTION = 0.3  # a subject must be at least this fraction of the image height (and >= MIN_PERSON_PX)
MIN_PERSON_PX = 16
KP_DEPTH_TOLERANCE = 0.2  # metres: a joint is visible when the surface seen there is at most this far in front

# COCO-17 joint -> H36M-17 joint (None: eyes and ears come from the head part)
_COCO_FROM_H36M = (9, None, None, None, None, 11, 14, 12, 15, 13, 16, 4, 1, 5, 2, 6, 3)
_COCO_HEAD = {1: "left_eye", 2: "right_eye", 3: "left_ear", 4: "right_ear"}


@dataclass(frozen=True)
class Clip:
    """A rendered clip: the arrays of the on-disk format (see the module docstring) and its ``meta`` dict.

    ``flow_valid`` (T-1, H, W) bool marks pixels whose surface point is still visible at t+1 (not occluded, inside
    the image); it is a by-product of rendering and is not saved (``None`` after :func:`load_clip`).
    ``camera_flow`` (T-1, H, W, 2) is the camera-induced flow (saved; ``None`` for clips written without it).
    ``static_background`` (T, H, W) bool marks the static scenery (ground and backdrop, not the people or the moving
    distractors); a by-product of rendering, not saved (:mod:`hmore.synth.realism` replaces it with photos).
    """

    frames: np.ndarray
    flow: np.ndarray
    masks: np.ndarray
    kp2d: np.ndarray
    kp3d: np.ndarray
    subject_velocity: np.ndarray
    K: np.ndarray
    meta: dict[str, Any]
    flow_valid: np.ndarray | None = None
    camera_flow: np.ndarray | None = None
    static_background: np.ndarray | None = None

    @property
    def num_frames(self) -> int:
        return int(self.frames.shape[0])

    @property
    def num_subjects(self) -> int:
        return int(self.kp2d.shape[1])

    @property
    def size(self) -> tuple[int, int]:
        return int(self.frames.shape[1]), int(self.frames.shape[2])

    def local_flow(self) -> np.ndarray:
        """(T-1, H, W, 2) flow relative to each subject's root motion inside its mask, 0 elsewhere."""
        return local_flow(self.flow, self.masks, self.subject_velocity)

    def scene_flow(self) -> np.ndarray | None:
        """(T-1, H, W, 2) motion relative to the scene, ``flow - camera_flow`` (None without ``camera_flow``)."""
        return None if self.camera_flow is None else self.flow - self.camera_flow

    def arrays(self) -> dict[str, np.ndarray]:
        """The npz entries (``meta`` as a JSON string; ``camera_flow`` when the clip has it)."""
        out = {k: getattr(self, k) for k in CLIP_KEYS[:-1]}
        out["meta"] = np.array(json.dumps(self.meta, sort_keys=True))
        if self.camera_flow is not None:
            out["camera_flow"] = self.camera_flow
        return out

    def save(self, path: str | Path) -> Path:
        """Write the clip to ``path`` (.npz) atomically; the same clip always gives the same bytes."""
        check_clip_arrays({k: v for k, v in self.arrays().items() if k != "meta"}, where=str(path))
        return save_npz_atomic(path, **self.arrays())


def local_flow(flow: np.ndarray, masks: np.ndarray, subject_velocity: np.ndarray) -> np.ndarray:
    """hmore's local flow: ``flow - v_k`` inside subject k's mask at frame t, 0 outside every mask.

    Args:
        flow: (T-1, H, W, 2) world (full) flow.
        masks: (T, H, W) subject labels (0 background, k subject k).
        subject_velocity: (T-1, P, 2) projected root displacements.

    Returns:
        (T-1, H, W, 2) float32.
    """
    if flow.ndim != 4 or masks.ndim != 3 or subject_velocity.ndim != 3 or flow.shape[:3] != (
        masks.shape[0] - 1, *masks.shape[1:]
    ) or subject_velocity.shape[0] != flow.shape[0]:
        raise ValueError(f"local_flow: flow (T-1, H, W, 2), masks (T, H, W), subject_velocity (T-1, P, 2) "
                         f"expected, got {flow.shape}, {masks.shape}, {subject_velocity.shape}")
    m = masks[:-1].astype(np.int64)  # (T-1, H, W)
    # v[t, 0] = 0 for the background, v[t, k] = subject k's velocity
    v = np.concatenate([np.zeros_like(subject_velocity[:, :1]), subject_velocity], axis=1)  # (T-1, P+1, 2)
    per_pixel = np.take_along_axis(v[:, None, :, :], m.reshape(m.shape[0], -1)[..., None, None], axis=2)
    per_pixel = per_pixel.reshape(*m.shape, 2)
    return np.where((m > 0)[..., None], flow - per_pixel, 0.0).astype(np.float32)


def check_clip_arrays(arrays: dict[str, np.ndarray], where: str = "clip") -> None:
    """Raise :class:`InputError` unless ``arrays`` follow the clip format (keys, dtypes, consistent shapes)."""
    missing = [k for k in CLIP_KEYS if k != "meta" and k not in arrays]
    if missing:
        raise InputError(f"{where}: not a hmore clip, missing {', '.join(missing)}")
    dtypes = {"frames": np.uint8, "flow": np.float32, "masks": np.uint8, "kp2d": np.float32, "kp3d": np.float32,
              "subject_velocity": np.float32, "K": np.float32}
    for k, dt in dtypes.items():
        if arrays[k].dtype != dt:
            raise InputError(f"{where}: {k} must be {np.dtype(dt).name}, got {arrays[k].dtype}")
    f = arrays["frames"]
    if f.ndim != 4 or f.shape[-1] != 3 or f.shape[0] < 2:
        raise InputError(f"{where}: frames must be (T>=2, H, W, 3), got {f.shape}")
    T, H, W = f.shape[:3]
    P = arrays["kp2d"].shape[1] if arrays["kp2d"].ndim == 4 else -1
    want = {"flow": (T - 1, H, W, 2), "masks": (T, H, W), "kp2d": (T, P, 17, 3), "kp3d": (T, P, 17, 3),
            "subject_velocity": (T - 1, P, 2), "K": (3, 3)}
    if "camera_flow" in arrays:
        want["camera_flow"] = (T - 1, H, W, 2)
        if arrays["camera_flow"].dtype != np.float32:
            raise InputError(f"{where}: camera_flow must be float32, got {arrays['camera_flow'].dtype}")
    for k, shape in want.items():
        if arrays[k].shape != shape:
            raise InputError(f"{where}: {k} must have shape {shape}, got {arrays[k].shape}")


def load_clip(path: str | Path) -> Clip:
    """Read a clip written by :meth:`Clip.save`, checking the format.

    Raises:
        InputError: missing or unreadable file, missing keys, wrong dtypes or shapes, bad ``meta``.
    """
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except FileNotFoundError:
        raise InputError(f"clip not found: {path}") from None
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        raise InputError(f"cannot read clip {path}: {exc}") from None
    check_clip_arrays(arrays, where=str(path))
    if "meta" not in arrays:
        raise InputError(f"{path}: not a hmore clip, missing meta")
    try:
        meta = json.loads(str(arrays["meta"]))
    except json.JSONDecodeError as exc:
        raise InputError(f"{path}: meta is not valid JSON: {exc}") from None
    return Clip(**{k: arrays[k] for k in CLIP_KEYS[:-1]}, meta=meta, camera_flow=arrays.get("camera_flow"))


# ---- rendering -------------------------------------------------------------------------------------------------


def _pick(rng: np.random.Generator, given: Sequence[Any] | None, default: Sequence[Any], n: int) -> list[Any]:
    """One value per subject: ``given`` of length n is taken as is, else each subject draws from it (or default)."""
    pool = list(default if given is None else given)
    if given is not None and len(pool) == n:
        return pool
    return [pool[int(i)] for i in rng.integers(0, len(pool), size=n)]


def _check_size(size: tuple[int, int]) -> tuple[int, int]:
    try:
        h, w = (int(v) for v in size)
    except (TypeError, ValueError):
        raise UsageError(f"size must be (H, W), got {size!r}") from None
    if h <= 0 or w <= 0:
        raise UsageError(f"size must be positive, got {h}x{w}")
    if h < 8 or w < 8:
        raise UsageError(f"size must be at least 8x8, got {h}x{w}")
    return h, w


def _translate(m: Motion, offset: np.ndarray) -> Motion:
    return Motion(joints=m.joints + offset, fps=m.fps, name=m.name, face=m.face,
                  extra={k: v + offset for k, v in m.extra.items()})


def _body_partset(body: Body, rot: np.ndarray, centre: np.ndarray, owner: int) -> PartSet:
    n = body.num_parts
    return PartSet(
        kind=np.array([KIND_CODES[p.kind] for p in body.parts], dtype=np.int8),
        half=np.array([p.half for p in body.parts], dtype=np.float64).reshape(n, 3),
        rot=rot,
        centre=centre,
        owner=np.full(n, owner, dtype=np.int32),
        pattern=np.array([PATTERN_CODES[p.material.pattern] for p in body.parts], dtype=np.int8),
        colour=np.array([p.material.colour for p in body.parts], dtype=np.float64).reshape(n, 3),
        colour2=np.array([p.material.colour2 for p in body.parts], dtype=np.float64).reshape(n, 3),
        scale=np.array([p.material.scale for p in body.parts], dtype=np.float64),
        seed=np.array([p.material.seed for p in body.parts], dtype=np.int64),
    )


def _motion_for(
    *, action: str, identity: Identity, bvh: str | Path | None, num_frames: int, fps: float, seed: int,
    heading: float,
) -> Motion:
    from hmore.synth import motion as motion_lib

    if bvh is not None:
        if not hasattr(motion_lib, "motion_from_bvh"):  # pragma: no cover - until BVH playback lands
            raise UsageError("BVH playback is not available in this build")
        try:
            return motion_lib.motion_from_bvh(bvh, identity, fps=fps, num_frames=num_frames, heading=heading)
        except OSError as exc:
            raise InputError(f"cannot read BVH {bvh}: {exc}") from None
    return motion_lib.generate_motion(action, identity, num_frames=num_frames, fps=fps, seed=seed, heading=heading)


def render_clip(
    *,
    size: tuple[int, int] = (192, 256),
    num_frames: int = 16,
    subjects: int = 1,
    seed: int = 0,
    actions: Sequence[str] | None = None,
    conditions: Sequence[str] | None = None,
    views: Sequence[float] | None = None,
    identities: Sequence[int | Identity] | None = None,
    camera_motion: str = "static",
    shading: bool = False,
    distractors: int = 2,
    bvh: str | Path | None = None,
    fps: float = 30.0,
    overlap: float = 0.0,
    fov_deg: float = 50.0,
    elevation_deg: float = 8.0,
    motions: Sequence[Motion] | None = None,
    progress: bool = False,
    camera_distance: float = 1.0,
    camera_shake: float = 0.0,
    body: str = "capsule",
) -> Clip:
    """Render one clip of ``subjects`` people with exact ground truth.

    Args:
        size: (H, W) image size.
        num_frames: T >= 2.
        subjects: P >= 1 people.
        seed: everything random (identities, placement, scene, phases) derives from it.
        actions: action names (from :data:`hmore.synth.motion.ACTIONS`); P of them are used in order, otherwise
            each subject draws one (default: any action).
        conditions: clothing conditions (:data:`hmore.synth.body.CONDITIONS`), chosen the same way (default: any).
        views: view angles in degrees, 0-180 (0 walks towards the camera, 90 side view, 180 walks away), chosen the
            same way (default: CASIA-B's 0, 18, ..., 180).
        identities: identity ids (the same id is always the same person: :func:`sample_identity`) or
            :class:`Identity` objects, chosen the same way (default: fresh random ids drawn from ``seed``).
        camera_motion: ``static``, ``pan`` or ``track``.
        shading: Lambert shading; off keeps brightness constancy exact.
        distractors: number of independently moving background objects.
        bvh: play this BVH file on every subject instead of procedural actions.
        fps: frames per second.
        overlap: in [0, 1): the fraction of a body width (shoulders plus arms) by which neighbouring subjects'
            places overlap, side to side: 0 puts them shoulder to shoulder, 0.3 overlaps 30 % of a body width
            (they then stand at staggered depths, so the nearer one occludes the other).
        fov_deg: horizontal field of view. elevation_deg: camera tilt down.
        motions: ready-made motions (one per subject) instead of ``actions``/``bvh`` (their placement is kept).
        progress: show a progress bar over frames.
        camera_distance: the camera stands this many times farther than the closest distance that keeps everyone
            in view (>= 1): people shrink by about that factor while the image keeps its size (far camera, small
            people). The smallest-person check is relaxed by the same factor.
        body: ``capsule`` (rigid ellipsoids and boxes) or ``anny`` (skinned Anny meshes: each identity gets a
            phenotype and an outfit, its motion is retargeted onto the mesh; needs the ``body`` extra, see
            :mod:`hmore.synth.anny_body`).

    Returns:
        The :class:`Clip`.

    Raises:
        UsageError: unknown names, sizes or counts that are not positive, views outside 0-180, more subjects than
            fit in the image.
        InputError: an unreadable BVH file.
    """
    from hmore.synth.motion import ACTIONS

    h, w = _check_size(size)
    if int(num_frames) < 2:
        raise UsageError(f"num_frames must be >= 2, got {num_frames}")
    if int(subjects) < 1:
        raise UsageError(f"subjects must be >= 1, got {subjects}")
    if int(subjects) > 254:
        raise UsageError(f"at most 254 subjects fit in a uint8 mask, got {subjects}")
    if body not in BODIES:
        raise UsageError(f"unknown body model {body!r}; known: {', '.join(BODIES)}")
    if camera_motion not in CAMERA_MOTIONS:
        raise UsageError(f"unknown camera motion {camera_motion!r}; known: {', '.join(CAMERA_MOTIONS)}")
    if not 0.0 <= float(overlap) < 1.0:
        raise UsageError(f"overlap must be in [0, 1), got {overlap}")
    if int(distractors) < 0:
        raise UsageError(f"distractors must be >= 0, got {distractors}")
    if not np.isfinite(fps) or fps <= 0:
        raise UsageError(f"fps must be positive, got {fps}")
    if not (np.isfinite(camera_distance) and camera_distance >= 1.0):
        raise UsageError(f"camera_distance must be >= 1, got {camera_distance}")
    from hmore.resources import require_memory

    # the clip's arrays (RGB, masks, float32 flow: 12 bytes per pixel and frame) and the rasteriser's per-frame
    # float64 buffers (about 40 per pixel)
    require_memory(int(num_frames) * h * w * 12 + h * w * 40 * 8, f"a clip of {int(num_frames)} frames of {h}x{w}")
    if not (np.isfinite(camera_shake) and 0.0 <= camera_shake <= 10.0):
        raise UsageError(f"camera_shake must be within 0-10 degrees, got {camera_shake}")
    for a in actions or ():
        if a not in ACTIONS:
            raise UsageError(f"unknown action {a!r}; known: {', '.join(ACTIONS)}")
    for c in conditions or ():
        if c not in CONDITIONS:
            raise UsageError(f"unknown condition {c!r}; known: {', '.join(CONDITIONS)}")
    for v in views or ():
        if not 0.0 <= float(v) <= 180.0:
            raise UsageError(f"views must be within 0-180 degrees, got {v}")
    if bvh is not None and not Path(bvh).is_file():
        raise InputError(f"BVH file not found: {bvh}")
    if motions is not None and len(motions) != int(subjects):
        raise UsageError(f"motions: one per subject expected ({subjects}), got {len(motions)}")
    T, P = int(num_frames), int(subjects)
    rng = np.random.default_rng([int(seed) & 0xFFFFFFFF, 0x5C1E])

    # ---- who does what
    acts = _pick(rng, actions, ACTIONS, P)
    conds = _pick(rng, conditions, CONDITIONS, P)
    view_list = [float(v) for v in _pick(rng, views, CASIA_VIEWS, P)]
    fresh = [int(i) for i in rng.integers(0, 100_000, size=P)]
    ids = fresh if identities is None else _pick(rng, identities, identities, P)
    people = [i if isinstance(i, Identity) else sample_identity(int(i), seed=None) for i in ids]
    anny_people = None
    if body == "anny":  # phenotype and outfit from the identity id; body measures taken on the mesh
        from hmore.synth.anny_body import anny_person

        anny_people = [anny_person(p, c) for p, c in zip(people, conds)]
        people = [a.identity for a in anny_people]

    # ---- motions, placed side by side (or behind each other with overlap) around the origin
    body_width = float(np.mean([p.shoulder_width * p.height + 0.15 * p.thickness for p in people]))
    spacing = body_width * (1.0 - float(overlap))
    placed: list[Motion] = []
    for k in range(P):
        if motions is not None:
            placed.append(motions[k])
            continue
        heading = np.pi + np.deg2rad(view_list[k])  # camera looks along +z: view 0 walks towards it (-z)
        m = _motion_for(action=acts[k], identity=people[k], bvh=bvh, num_frames=T, fps=fps,
                        seed=int(rng.integers(0, 2**31 - 1)), heading=float(heading))
        if m.num_frames != T:
            raise InputError(f"motion of subject {k + 1} has {m.num_frames} frames, {T} requested")
        mid = m.joints[T // 2, 0]
        slot_x = -(k - (P - 1) / 2) * spacing  # camera right is world -x: subject 1 on the left of the image
        slot_z = (0.9 * float(overlap) * (k - (P - 1) / 2)) + float(rng.uniform(-0.15, 0.15))
        placed.append(_translate(m, np.array([slot_x - mid[0], 0.0, slot_z - mid[2]])))
    if bvh is not None:
        acts = [placed[k].name for k in range(P)]
    elif motions is not None:  # labels from the motions themselves: the name, and the view of their facing
        acts = [m.name for m in motions]
        view_list = [_view_of(m) for m in motions]
    posed = None
    if anny_people is not None:  # the meshes play the motions; from here on the joints are the meshes'
        from hmore.synth.anny_body import pose_anny

        posed = [pose_anny(a, m, c) for a, m, c in zip(anny_people, placed, conds)]
        placed = [p.motion for p in posed]

    # ---- camera: keep every subject (padded by its body's reach) in view
    joints = np.stack([m.joints for m in placed], axis=1)  # (T, P, 17, 3)
    pad = np.array([[0, 0, 0], [0.2, 0, 0], [-0.2, 0, 0], [0, 0.15, 0], [0, -0.1, 0], [0, 0, 0.2], [0, 0, -0.2]])
    fit_pts = (joints[:, :, :, None, :] + pad).reshape(T, -1, 3)  # (T, P*17*7, 3)
    camera, dist, fit_dist = place_camera(fit_pts, size=(h, w), fov_deg=fov_deg, elevation_deg=elevation_deg,
                                          motion=camera_motion, distance_scale=float(camera_distance))
    if camera_shake > 0:
        from hmore.synth.realism import shake_camera

        camera = shake_camera(camera, np.random.default_rng([int(seed) & 0xFFFFFFFF, 0x5A4E]), float(camera_shake))
    tallest = max(p.height for p in people)
    person_px = camera.K[1, 1] * tallest / (fit_dist * float(camera_distance) + 0.5)
    need_px = max(MIN_PERSON_PX, MIN_PERSON_FRACTION * h / float(camera_distance))
    if person_px < need_px:
        raise UsageError(f"{P} subject(s) over {T} frames do not fit in {h}x{w} with a {camera_motion} camera: "
                         f"each would be about {person_px:.0f} px tall, at least {need_px:.0f} px needed (try fewer "
                         f"subjects or frames, a larger size, more overlap or a pan/track camera)")

    # ---- bodies and scene
    bodies, frame_sets, sets = [], [], []
    for k, (m, person) in enumerate(zip(placed, people)):
        body_k = build_body(person, conds[k], measure_bones(m.joints)) if posed is None else posed[k].body_parts
        frames_k = body_frames(m.joints, m.face)
        if posed is not None:  # the mesh is the body: only the accessories (bag, coat hem) are rigid parts
            body_k = Body(identity=body_k.identity, condition=body_k.condition, parts=posed[k].accessories)
        if body_k.parts:
            rot, centre = part_poses(body_k, frames_k)
        else:  # a mesh body without accessories
            rot, centre = np.zeros((T, 0, 3, 3)), np.zeros((T, 0, 3))
        bodies.append(body_k)
        frame_sets.append(frames_k)
        sets.append(_body_partset(body_k, rot, centre, owner=k + 1))
    look = camera.centres.mean(axis=0)
    reach = float(np.max(np.linalg.norm((camera.centres - look)[:, [0, 2]], axis=1))) + dist + 10.0
    scene_rng = np.random.default_rng([int(seed) & 0xFFFFFFFF, 0x5CE7E])
    centre_xz = (float(joints[:, :, 0, 0].mean()), float(joints[:, :, 0, 2].mean()))
    background = make_background(scene_rng, centre_xz=centre_xz, reach=reach,
                                 detail_radius=max(3.0, 0.6 * dist + 2.0))
    sets.append(make_distractors(scene_rng, camera=camera, num=int(distractors), depth_range=(dist + 1.5, dist + 6.0),
                                 fps=fps))
    parts = PartSet.concat(sets)

    # ---- render
    if posed is None:
        ras = Rasteriser(parts=parts, background=background, camera=camera, shading=shading)
    else:
        from hmore.synth.anny_body import mesh_tracks

        ras = MeshRasteriser(parts=parts, background=background, camera=camera, shading=shading,
                             meshes=mesh_tracks(posed))
    frames, masks, depth, flow, valid, static = _render_frames(ras, progress=progress)
    coco_world = None if posed is None else np.stack([p.coco for p in posed], axis=1)
    kp3d, kp2d, vel = _keypoints(camera, joints, bodies, frame_sets, masks, depth, coco_world=coco_world)
    meta = {
        "generator": GENERATOR_VERSION,
        "seed": int(seed),
        "labels": [
            {"action": acts[k], "identity": int(people[k].identity_id), "condition": conds[k], "view": view_list[k]}
            for k in range(P)
        ],
        "params": clip_params(size=(h, w), num_frames=T, subjects=P, actions=actions, conditions=conditions,
                              views=views, identities=identities, camera_motion=camera_motion, shading=shading,
                              distractors=distractors, bvh=bvh, fps=fps, overlap=overlap, fov_deg=fov_deg,
                              elevation_deg=elevation_deg, camera_distance=camera_distance,
                              camera_shake=camera_shake, body=body),
        "identities": [_jsonable(asdict(p)) for p in people],
        "camera": {"distance": dist, "person_px": float(person_px)},
    }
    if posed is not None:
        meta["bodies"] = [p.body.info for p in posed]
    return Clip(frames=frames, flow=flow, masks=masks, kp2d=kp2d, kp3d=kp3d, subject_velocity=vel,
                K=camera.K.astype(np.float32), meta=meta, flow_valid=valid,
                camera_flow=camera_induced_flow(camera, depth), static_background=static)


def clip_params(
    *, size: Sequence[int], num_frames: int, subjects: int, actions: Sequence[str] | None,
    conditions: Sequence[str] | None, views: Sequence[float] | None, camera_motion: str, shading: bool,
    identities: Sequence[int | Identity] | None = None,
    distractors: int, bvh: str | Path | None, fps: float, overlap: float, fov_deg: float, elevation_deg: float,
    camera_distance: float = 1.0, camera_shake: float = 0.0, body: str = "capsule", **_: Any,
) -> dict[str, Any]:
    """The ``params`` entry of a clip's meta (JSON types) for these :func:`render_clip` arguments (``body`` only
    when it is not the default, so capsule clips keep their bytes)."""
    extra = {} if body == "capsule" else {"body": body}
    return extra | {
        "size": [int(v) for v in size], "num_frames": int(num_frames), "subjects": int(subjects),
        "actions": None if actions is None else list(actions),
        "conditions": None if conditions is None else list(conditions),
        "views": None if views is None else [float(v) for v in views],
        "identities": None if identities is None else [i.identity_id if isinstance(i, Identity) else int(i)
                                                       for i in identities],
        "camera_motion": camera_motion,
        "shading": bool(shading), "distractors": int(distractors), "bvh": None if bvh is None else Path(bvh).name,
        "fps": float(fps), "overlap": float(overlap), "fov_deg": float(fov_deg), "elevation_deg": float(elevation_deg),
        "camera_distance": float(camera_distance),
        **({"camera_shake": float(camera_shake)} if camera_shake else {}),
    }


def _view_of(m: Motion) -> float:
    """The view (degrees, 0-180) of a motion under the renderer's cameras (which look along +z): the angle between
    its mid-clip facing direction and the direction towards the camera (-z)."""
    f = np.asarray(m.face[m.num_frames // 2], dtype=np.float64)
    f = f[[0, 2]] / max(float(np.hypot(f[0], f[2])), 1e-9)
    return float(np.round(np.degrees(np.arccos(np.clip(-f[1], -1.0, 1.0))), 3))


def _jsonable(d: dict[str, Any]) -> dict[str, Any]:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in d.items()}


def _render_frames(
    ras: Rasteriser, *, progress: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Every frame of a scene: frames (T, H, W, 3) uint8, masks (T, H, W) uint8, depth (T, H, W) float32,
    flow (T-1, H, W, 2) float32, its visibility at t+1 (T-1, H, W) bool, and the static scenery (T, H, W) bool."""
    T = ras.camera.num_frames
    h, w = ras.camera.size
    frames = np.empty((T, h, w, 3), dtype=np.uint8)
    masks = np.empty((T, h, w), dtype=np.uint8)
    depth = np.empty((T, h, w), dtype=np.float32)
    flow = np.empty((T - 1, h, w, 2), dtype=np.float32)
    valid = np.zeros((T - 1, h, w), dtype=bool)
    static = np.zeros((T, h, w), dtype=bool)
    depth_next_prev = None  # depth at t of the points seen at t-1
    for t in tqdm(range(T), desc="render", unit="frame", disable=not progress, leave=False):
        fr = ras.render(t, with_flow=t + 1 < T)
        frames[t], masks[t], depth[t] = fr.image, fr.owner, fr.depth
        static[t] = (fr.part == -1) | (fr.part == -2)  # ground or backdrop (meshes are -3 - k)
        if depth_next_prev is not None:
            valid[t - 1] = _still_visible(flow[t - 1], depth_next_prev, fr.depth)
        if fr.flow is not None:
            flow[t] = fr.flow
            depth_next_prev = fr.depth_next
    return frames, masks, depth, flow, valid, static


def _still_visible(flow: np.ndarray, z_next: np.ndarray, depth_next: np.ndarray, tol: float = 0.03) -> np.ndarray:
    """Pixels whose surface point lands inside frame t+1 and is the surface seen there (depth check at the nearest
    pixel, relative tolerance ``tol``)."""
    h, w = depth_next.shape
    x = flow[..., 0] + np.arange(w, dtype=np.float32)[None, :]
    y = flow[..., 1] + np.arange(h, dtype=np.float32)[:, None]
    with np.errstate(invalid="ignore"):
        inside = (x > -0.5) & (x < w - 0.5) & (y > -0.5) & (y < h - 0.5)
    xi = np.rint(np.where(inside, x, 0)).astype(np.int64)
    yi = np.rint(np.where(inside, y, 0)).astype(np.int64)
    seen = depth_next.reshape(-1)[(yi * w + xi).reshape(-1)].reshape(h, w)
    return inside & (np.abs(seen - z_next) <= tol * np.maximum(z_next, 1.0))


def _keypoints(
    camera: CameraTrack, joints: np.ndarray, bodies: list[Body], frame_sets: list[dict], masks: np.ndarray,
    depth: np.ndarray, coco_world: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """kp3d (T, P, 17, 3) camera H36M, kp2d (T, P, 17, 3) COCO with visibility, velocity (T-1, P, 2).
    ``coco_world`` (T, P, 17, 3) gives the COCO points (mesh bodies); by default they come from the H36M joints and
    the capsule head."""
    T, P = joints.shape[:2]
    h, w = camera.size
    kp3d = np.einsum("tij,tpkj->tpki", camera.R, joints) + camera.t[:, None, None, :]  # (T, P, 17, 3)
    if coco_world is not None:
        coco_w = coco_world
    else:
        coco_w = np.empty((T, P, 17, 3))  # COCO-17 world points
        for c, j in enumerate(_COCO_FROM_H36M):
            if j is not None:
                coco_w[:, :, c] = joints[:, :, j]
        for k in range(P):
            heads = head_points(frame_sets[k], bodies[k])
            for c, name in _COCO_HEAD.items():
                coco_w[:, k, c] = heads[name]
    coco_c = np.einsum("tij,tpkj->tpki", camera.R, coco_w) + camera.t[:, None, None, :]
    in_front = coco_c[..., 2] > 1e-3
    uv = camera.project(np.where(in_front[..., None], coco_c, 1.0))
    xi, yi = np.rint(uv[..., 0]), np.rint(uv[..., 1])
    inside = in_front & (xi >= 0) & (xi <= w - 1) & (yi >= 0) & (yi <= h - 1)
    xi = np.clip(np.where(inside, xi, 0), 0, w - 1).astype(np.int64)
    yi = np.clip(np.where(inside, yi, 0), 0, h - 1).astype(np.int64)
    t_idx = np.arange(T)[:, None, None]
    own = masks[t_idx, yi, xi] == (np.arange(P) + 1)[None, :, None]
    front = depth[t_idx, yi, xi] >= coco_c[..., 2] - KP_DEPTH_TOLERANCE
    vis = inside & own & front
    kp2d = np.concatenate([uv, vis[..., None].astype(np.float64)], axis=-1)
    root_uv = camera.project(kp3d[:, :, 0])  # (T, P, 2)
    vel = root_uv[1:] - root_uv[:-1]
    return kp3d.astype(np.float32), kp2d.astype(np.float32), vel.astype(np.float32)
