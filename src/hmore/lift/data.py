"""Training data for 2D-to-3D lifting: 3D motions seen through random virtual cameras, noised and masked as in
MotionBERT's pretraining (docs/motionbert.md).

Conventions (the model's input and output; ``hmore lift`` undoes them):

* **Input** (F, 17, 3): H36M-17 2D keypoints in pixels normalised by the image size as MotionBERT does,
  ``x' = 2 x / W - 1``, ``y' = 2 y / W - H / W`` (one scale for both axes, so the aspect ratio is kept and x' lies
  in [-1, 1]), and a confidence in [0, 1]. A masked joint or frame is all zeros (x', y' and confidence).
* **Target** (F, 17, 3): 3D joints in the camera frame (OpenCV: x right, y down, z forward), **metres**, relative to
  the root joint (pelvis) of the same frame. Metric rather than MotionBERT's pixel-scaled depth, so that outputs are
  in metres; the N-MPJPE term of the loss takes care of the scale ambiguity of monocular input.

Every random draw comes from a ``numpy.random.Generator`` passed in, so a sample is a pure function of its seed.
"""

from __future__ import annotations

import json
import logging
import math
import os
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hmore.skeleton import COCO17, H36M17, convert

log = logging.getLogger(__name__)

NUM_JOINTS = 17
ROOT = 0
IMAGE_SIZES: tuple[tuple[int, int], ...] = ((1920, 1080), (1280, 720), (1000, 1000), (768, 576), (640, 480),
                                            (1080, 1920))


# ---- cameras ---------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Camera:
    """A pinhole camera. ``x_cam = R @ (x_world - position)``; pixels ``u = f x/z + cx``, ``v = f y/z + cy``.

    Attributes:
        rotation: (3, 3) world -> camera rotation (rows: camera x right, y down, z forward, in world axes).
        position: (3,) camera centre in the world, metres.
        focal: focal length in pixels (square pixels).
        width, height: image size in pixels.
        cx, cy: principal point in pixels.
    """

    rotation: np.ndarray
    position: np.ndarray
    focal: float
    width: int
    height: int
    cx: float
    cy: float

    def to_camera(self, points: np.ndarray) -> np.ndarray:
        """World points (..., 3) -> camera frame (..., 3)."""
        return (np.asarray(points, dtype=np.float64) - self.position) @ self.rotation.T

    def project(self, points_cam: np.ndarray) -> np.ndarray:
        """Camera-frame points (..., 3) -> pixels (..., 2). Points must lie in front of the camera (z > 0)."""
        z = np.maximum(points_cam[..., 2:3], 1e-6)
        return points_cam[..., :2] / z * self.focal + np.array([self.cx, self.cy])


def look_at(position: np.ndarray, target: np.ndarray) -> np.ndarray:
    """World -> camera rotation of a camera at ``position`` looking at ``target`` with the world's y up."""
    fwd = np.asarray(target, float) - np.asarray(position, float)
    fwd /= np.linalg.norm(fwd)
    right = np.cross(fwd, [0.0, 1.0, 0.0])  # world y up: right = forward x up
    if np.linalg.norm(right) < 1e-6:
        raise ValueError("camera looks straight up or down; its roll is undefined")
    right /= np.linalg.norm(right)
    down = np.cross(fwd, right)
    return np.stack([right, down, fwd])


@dataclass(frozen=True)
class CameraConfig:
    """Ranges of the random virtual cameras (angles in degrees, distances in metres)."""

    elevation: tuple[float, float] = (-5.0, 35.0)
    distance: tuple[float, float] = (3.0, 12.0)
    fov: tuple[float, float] = (40.0, 80.0)
    offset: float = 0.5  # lateral shift of the look-at point, as a fraction of the half field of view
    image_sizes: tuple[tuple[int, int], ...] = IMAGE_SIZES


def sample_camera(rng: np.random.Generator, target: np.ndarray, cfg: CameraConfig = CameraConfig()) -> Camera:  # noqa: B008
    """A camera at a random azimuth, elevation and distance looking near ``target`` (world, y up)."""
    az = rng.uniform(0, 2 * math.pi)
    el = math.radians(rng.uniform(*cfg.elevation))
    dist = rng.uniform(*cfg.distance)
    width, height = cfg.image_sizes[int(rng.integers(len(cfg.image_sizes)))]
    fov = math.radians(rng.uniform(*cfg.fov))
    focal = 0.5 * max(width, height) / math.tan(0.5 * fov)
    target = np.asarray(target, float)
    position = target + dist * np.array([math.cos(el) * math.sin(az), math.sin(el), math.cos(el) * math.cos(az)])
    position[1] = max(position[1], 0.2)  # never below the floor
    rot = look_at(position, target)
    # Shift the person off the image centre by moving the principal point (a crop of a wider view).
    half = 0.5 * np.array([width, height]) * cfg.offset
    cx, cy = np.array([width, height]) / 2 + rng.uniform(-half, half)
    return Camera(rotation=rot, position=position, focal=float(focal), width=int(width), height=int(height),
                  cx=float(cx), cy=float(cy))


# ---- normalisation ---------------------------------------------------------------------------------------------
def normalize_2d(pixels: np.ndarray, width: float, height: float) -> np.ndarray:
    """Pixels (..., 2) -> MotionBERT's normalised coordinates (x in [-1, 1], one scale for both axes)."""
    out = np.asarray(pixels, dtype=np.float64) / width * 2.0
    out[..., 0] -= 1.0
    out[..., 1] -= height / width
    return out


def denormalize_2d(norm: np.ndarray, width: float, height: float) -> np.ndarray:
    """Inverse of :func:`normalize_2d`."""
    out = np.array(norm, dtype=np.float64)
    out[..., 0] += 1.0
    out[..., 1] += height / width
    return out * width / 2.0


def root_relative(points: np.ndarray) -> np.ndarray:
    """(..., J, 3) -> the same with the root joint of each pose at the origin."""
    return points - points[..., ROOT : ROOT + 1, :]


# ---- noise and masking -----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class NoiseConfig:
    """MotionBERT's 2D noise and masking (docs/motionbert.md); sizes in normalised units unless noted.

    Keyframe noise: at ``keyframes`` times spread over the clip, each joint gets a Gaussian offset (std
    ``gauss_std`` x the person's 2D height, the std itself drawn per clip in [0, 1] x that) or, with probability
    ``uniform_prob``, a uniform outlier up to ``uniform_max`` x the person's height; the offsets are interpolated
    linearly between keyframes, then N(0, ``jitter``) is added per frame. The confidence of a joint is
    ``exp(-|offset| / (conf_scale x height))``.
    """

    keyframes: int = 27
    gauss_std: float = 0.04
    uniform_prob: float = 0.02
    uniform_max: float = 0.3
    jitter: float = 0.002
    conf_scale: float = 0.05
    mask_joint: float = 0.05
    mask_frame: float = 0.1
    noise_prob: float = 0.9  # the rest of the clips are clean (confidence 1)


def add_noise(kp2d: np.ndarray, rng: np.random.Generator, cfg: NoiseConfig = NoiseConfig()) -> np.ndarray:  # noqa: B008
    """Noisy 2D with confidence: (F, J, 2) normalised clean keypoints -> (F, J, 3) x, y, confidence."""
    f, j = kp2d.shape[:2]
    out = np.concatenate([kp2d, np.ones((f, j, 1))], axis=-1)
    if rng.random() >= cfg.noise_prob:
        return out
    size = float(np.ptp(kp2d[..., 1]) + 1e-3)  # the person's 2D height over the clip
    k = min(cfg.keyframes, f)
    key_t = np.linspace(0, f - 1, k)
    std = rng.uniform(0, 1) * cfg.gauss_std * size
    offs = rng.normal(0, std, size=(k, j, 2))  # (K, J, 2)
    outlier = rng.random((k, j)) < cfg.uniform_prob
    offs[outlier] = rng.uniform(-cfg.uniform_max, cfg.uniform_max, size=(int(outlier.sum()), 2)) * size
    if k > 1:
        t = np.arange(f)
        flat = offs.reshape(k, -1)  # (K, J*2)
        dense = np.stack([np.interp(t, key_t, flat[:, c]) for c in range(flat.shape[1])], axis=1)
        dense = dense.reshape(f, j, 2)
    else:
        dense = np.broadcast_to(offs, (f, j, 2)).copy()
    dense += rng.normal(0, cfg.jitter, size=dense.shape)
    out[..., :2] += dense
    out[..., 2] = np.exp(-np.linalg.norm(dense, axis=-1) / (cfg.conf_scale * size))
    return out


def apply_mask(x: np.ndarray, rng: np.random.Generator, *, joint_prob: float, frame_prob: float) -> np.ndarray:
    """Zero (x, y and confidence of) each joint with ``joint_prob`` and each whole frame with ``frame_prob``."""
    keep = (rng.random(x.shape[:2]) >= joint_prob) & (rng.random(x.shape[:1]) >= frame_prob)[:, None]  # (F, J)
    return x * keep[..., None]


def flip_pair(x: np.ndarray, y: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray | None]:
    """Mirror an input (F, J, 3: normalised x, y, conf) and optionally its 3D target (camera frame, root-relative).

    Normalised x is centred on the image, so a mirror negates it (and camera-frame 3D x) and swaps left and right
    joints with ``H36M17.flip_index``. Flipping twice gives the input back.
    """
    idx = H36M17.flip_index
    xf = x[..., idx, :].copy()
    xf[..., 0] *= -1
    if y is None:
        return xf, None
    yf = y[..., idx, :].copy()
    yf[..., 0] *= -1
    return xf, yf


# ---- COCO-17 view of an H36M-17 skeleton --------------------------------------------------------------------------
def h36m_to_coco(joints: np.ndarray) -> np.ndarray:
    """COCO-17 3D points (..., 17, 3) of an H36M-17 skeleton (..., 17, 3), world frame y up or any right-handed
    frame: limbs copied, eyes and ears placed on the head from the shoulder line (left) and the neck-to-head (up)
    directions. Used so that training input goes through the same COCO -> H36M conversion as real detections."""
    j = np.asarray(joints, dtype=np.float64)
    h = H36M17.index
    left = j[..., h("left_shoulder"), :] - j[..., h("right_shoulder"), :]
    left /= np.linalg.norm(left, axis=-1, keepdims=True) + 1e-9
    up = j[..., h("head"), :] - j[..., h("neck"), :]
    up -= (up * left).sum(-1, keepdims=True) * left
    up /= np.linalg.norm(up, axis=-1, keepdims=True) + 1e-9
    fwd = np.cross(left, up)
    nose = j[..., h("nose"), :]
    out = np.zeros(j.shape[:-2] + (17, 3))
    for name in COCO17.joints:
        if name in H36M17.joints:
            out[..., COCO17.index(name), :] = j[..., h(name), :]
    for side, sign in (("left", 1.0), ("right", -1.0)):
        out[..., COCO17.index(f"{side}_eye"), :] = nose + 0.035 * up + sign * 0.032 * left - 0.015 * fwd
        out[..., COCO17.index(f"{side}_ear"), :] = nose + 0.02 * up + sign * 0.075 * left - 0.09 * fwd
    return out


def coco_derived_h36m(joints: np.ndarray) -> np.ndarray:
    """The H36M-17 joints a COCO-17 detector would give for this skeleton after ``hmore.skeleton.convert``
    (root = mid-hip, neck = mid-shoulder, belly = their mean, head = mid-eyes)."""
    return convert(h36m_to_coco(joints), COCO17, H36M17, has_score=False)


# ---- samples ---------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class LiftSample:
    """One training clip.

    Attributes:
        x: (F, J, 3) model input (normalised 2D + confidence, masked).
        y: (F, J, 3) target, root-relative camera-frame metres.
        clean: (F, J, 3) the input before noise and masking (normalised 2D, confidence 1).
    """

    x: np.ndarray
    y: np.ndarray
    clean: np.ndarray


@dataclass(frozen=True)
class SampleConfig:
    """How clips are made from 3D motions."""

    camera: CameraConfig = CameraConfig()
    noise: NoiseConfig = NoiseConfig()
    flip_prob: float = 0.5
    input_from_coco: bool = True  # 2D input = COCO-derived H36M joints (as for real detections), target = true H36M


def make_sample(joints_world: np.ndarray, rng: np.random.Generator,
                cfg: SampleConfig = SampleConfig()) -> LiftSample:  # noqa: B008
    """Look at a world-frame clip (F, 17, 3) through a random camera and return the noised, masked sample."""
    joints_world = np.asarray(joints_world, dtype=np.float64)
    if joints_world.ndim != 3 or joints_world.shape[1:] != (NUM_JOINTS, 3):
        raise ValueError(f"joints_world must be (F, 17, 3), got {joints_world.shape}")
    target = joints_world[:, ROOT].mean(axis=0)
    target[1] = rng.uniform(0.7, 1.1) * max(target[1], 0.5)
    for _ in range(10):
        cam = sample_camera(rng, target, cfg.camera)
        pc = cam.to_camera(joints_world)  # (F, J, 3)
        if pc[..., 2].min() > 0.5:
            break
    else:  # pragma: no cover - only for clips that wander far from their mean
        raise ValueError("could not place a camera in front of the clip")
    seen = cam.to_camera(coco_derived_h36m(joints_world)) if cfg.input_from_coco else pc
    clean2d = normalize_2d(cam.project(seen), cam.width, cam.height)
    x = add_noise(clean2d, rng, cfg.noise)
    x = apply_mask(x, rng, joint_prob=cfg.noise.mask_joint, frame_prob=cfg.noise.mask_frame)
    y = root_relative(pc)
    clean = np.concatenate([clean2d, np.ones(clean2d.shape[:2] + (1,))], axis=-1)
    if rng.random() < cfg.flip_prob:
        x, y = flip_pair(x, y)
        clean, _ = flip_pair(clean)
    return LiftSample(x=x.astype(np.float32), y=y.astype(np.float32), clean=clean.astype(np.float32))


def sample_window(num_frames: int, length: int, rng: np.random.Generator) -> slice:
    """A random window of ``length`` frames of a sequence of ``num_frames`` (>= length)."""
    if num_frames < length:
        raise ValueError(f"sequence of {num_frames} frames is shorter than the window {length}")
    start = int(rng.integers(0, num_frames - length + 1))
    return slice(start, start + length)


def resample(joints: np.ndarray, src_fps: float, dst_fps: float) -> np.ndarray:
    """Resample a (T, ...) sequence from ``src_fps`` to ``dst_fps`` by linear interpolation in time."""
    t_src = np.arange(joints.shape[0]) / src_fps
    n = int(math.floor(t_src[-1] * dst_fps)) + 1
    t_dst = np.arange(n) / dst_fps
    flat = joints.reshape(joints.shape[0], -1)
    out = np.stack([np.interp(t_dst, t_src, flat[:, c]) for c in range(flat.shape[1])], axis=1)
    return out.reshape((n,) + joints.shape[1:])


# ---- motion pools ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class MotionClip:
    """A world-frame 3D motion (T, 17, 3) in metres, y up, at ``fps``, with its source name.

    ``coco`` (T, 17, 3): the body's own COCO-17 keypoints when it has them (an Anny body's keypoint regressor);
    None: they are built from the H36M-17 skeleton (:func:`h36m_to_coco`).
    """

    joints: np.ndarray
    fps: float
    name: str
    coco: np.ndarray | None = None


BODIES = ("capsule", "anny")


def generated_clips(*, identities: Sequence[int], actions: Sequence[str] | None = None, num_frames: int = 150,
                    headings: int = 2, seed: int = 0, fps: float = 30.0, body: str = "capsule",
                    cache: str | Path | None = None, progress: bool = False) -> list[MotionClip]:
    """Motions from ``hmore.synth.motion``: every identity x action x heading.

    Args:
        identities: identity indices (drawn with ``sample_identity(i, seed)``).
        actions: action names (default: all of ``hmore.synth.motion.ACTIONS``).
        num_frames: frames per motion.
        headings: headings per (identity, action), spread over the circle with a seeded random phase.
        seed: seed of identities and motions.
        fps: frame rate.
        body: ``"capsule"``, the generator's skeleton (COCO keypoints built from it); ``"anny"``, each identity's
            Anny body (phenotype drawn from its id) playing the motions: H36M-17 joints and COCO-17 keypoints from
            the body's regressors (:func:`anny_clips`, ~6 s an identity, cached in ``cache``).
        cache: folder of the Anny clips (None: :func:`default_cache_dir`).
        progress: progress bar (Anny bodies).
    """
    if body not in BODIES:
        raise ValueError(f"body must be one of {BODIES}, got {body!r}")
    if body == "anny":
        return anny_clips(identities=identities, actions=actions, num_frames=num_frames, headings=headings, seed=seed,
                          fps=fps, cache=cache, progress=progress)
    from hmore.synth.identity import sample_identity
    from hmore.synth.motion import ACTIONS, generate_motion

    acts = list(actions) if actions is not None else list(ACTIONS)
    rng = np.random.default_rng([seed, 7])
    out = []
    for i in identities:
        ident = sample_identity(i, seed)
        for a_i, act in enumerate(acts):
            for h in range(headings):
                heading = 2 * math.pi * (h + rng.random()) / headings
                m = generate_motion(act, ident, num_frames=num_frames, fps=fps, seed=seed * 100003 + i * 101 + a_i,
                                    heading=heading)
                out.append(MotionClip(joints=np.asarray(m.joints, np.float64), fps=float(m.fps),
                                      name=f"{act}/id{i}/h{h}"))
    return out


def default_cache_dir() -> Path:
    """``$HMORE_CACHE/lift_anny`` (default ``~/.cache/hmore/lift_anny``): Anny clips of :func:`anny_clips`."""
    return Path(os.environ.get("HMORE_CACHE", Path.home() / ".cache" / "hmore")) / "lift_anny"


def _anny_identity(i: int, *, actions: Sequence[str] | None, num_frames: int, headings: int, seed: int,
                   fps: float, cache: Path | None) -> list[MotionClip]:
    """One identity's Anny clips, read from / written to ``cache`` (one ``.npz`` per identity and settings)."""
    from hmore.mesh.data import posed_clips

    path = None
    if cache is not None:
        from hmore.synth.anny_body import _anny

        key = json.dumps([_anny().version, i, list(actions) if actions is not None else None, num_frames, headings,
                          seed, fps, ANNY_CLIPS_VERSION])
        path = cache / f"id{i}_s{seed}_{zlib.crc32(key.encode()):08x}.npz"
        if path.is_file():
            with np.load(path) as z:
                names, joints, coco, offsets = list(z["names"]), z["joints"], z["coco"], z["offsets"]
            return [MotionClip(joints=joints[a:b].astype(np.float64), coco=coco[a:b].astype(np.float64), fps=fps,
                               name=str(n)) for n, a, b in zip(names, offsets[:-1], offsets[1:])]
    posed = posed_clips(identities=[i], actions=actions, num_frames=num_frames, headings=headings, seed=seed, fps=fps)
    clips = [MotionClip(joints=p.joints.astype(np.float64), coco=p.coco.astype(np.float64), fps=fps, name=p.name)
             for p in posed]
    if path is not None:
        from hmore.io.atomic import save_npz_atomic

        path.parent.mkdir(parents=True, exist_ok=True)
        offsets = np.concatenate([[0], np.cumsum([c.joints.shape[0] for c in clips])])
        save_npz_atomic(path, compressed=False, names=np.array([c.name for c in clips]), offsets=offsets,
                        joints=np.concatenate([c.joints for c in clips]).astype(np.float32),
                        coco=np.concatenate([c.coco for c in clips]).astype(np.float32))
    return clips


#: bump when the Anny clips change (invalidates the cache).
ANNY_CLIPS_VERSION = 1


def anny_clips(*, identities: Sequence[int], actions: Sequence[str] | None = None, num_frames: int = 150,
               headings: int = 2, seed: int = 0, fps: float = 30.0, cache: str | Path | None = None,
               progress: bool = False) -> list[MotionClip]:
    """:func:`generated_clips` on Anny bodies: identity ``i`` (``sample_identity(i, seed)``, its phenotype drawn
    from ``i``: :func:`hmore.synth.anny_body.anny_person`) plays every action x heading, the motion built for its
    body's measures and retargeted onto its rig (:func:`hmore.mesh.data.posed_clips`); ``joints`` are the body's
    H36M-17 joints and ``coco`` Anny's COCO-17 keypoints. Each identity is cached as one ``.npz`` in ``cache``
    (None: :func:`default_cache_dir`), so an interrupted build resumes."""
    from tqdm.auto import tqdm

    folder = Path(cache) if cache is not None else default_cache_dir()
    out = []
    for i in tqdm(list(identities), disable=not progress, desc="anny clips", unit="identity"):
        out += _anny_identity(int(i), actions=actions, num_frames=num_frames, headings=headings, seed=seed, fps=fps,
                              cache=folder)
    return out


def bvh_clip(path, *, fps: float = 30.0) -> MotionClip:
    """A BVH file's motion as H36M-17 metres resampled to ``fps`` (through ``hmore.io.bvh``)."""
    from hmore.io.bvh import bvh_stem, read_bvh, to_h36m

    bvh = read_bvh(path)
    joints = np.asarray(to_h36m(bvh.forward_kinematics(), bvh), np.float64)
    src_fps = 1.0 / bvh.frame_time if hasattr(bvh, "frame_time") else float(bvh.fps)
    return MotionClip(joints=resample(joints, src_fps, fps), fps=fps, name=f"bvh:{bvh_stem(path)}")


# ---- vectorised batches (fast training data) -----------------------------------------------------------------------
@dataclass(frozen=True)
class MotionPool:
    """World-frame motions (metres, y up) concatenated, for drawing many windows at once.

    Attributes:
        joints: (N, 17, 3) float32 frames of every motion.
        offsets: (M + 1,) motion ``m`` is ``joints[offsets[m]:offsets[m + 1]]``.
        names: the motions' names.
        coco: (N, 17, 3) float32 COCO-17 keypoints of the frames when some motion has its body's own
            (:attr:`MotionClip.coco`; the others' are built with :func:`h36m_to_coco`), else None.
    """

    joints: np.ndarray
    offsets: np.ndarray
    names: tuple[str, ...]
    coco: np.ndarray | None = None

    @classmethod
    def from_clips(cls, clips: Sequence[MotionClip], *, fps: float | None = None) -> MotionPool:
        """Concatenate ``clips`` (resampled to ``fps`` when given)."""
        def rate(a: np.ndarray, c: MotionClip) -> np.ndarray:
            return resample(a, c.fps, fps) if fps and abs(c.fps - fps) > 1e-6 else a

        arrs = [rate(c.joints, c) for c in clips]
        coco = None
        if any(c.coco is not None for c in clips):
            coco = np.concatenate([rate(c.coco, c) if c.coco is not None else h36m_to_coco(a)
                                   for c, a in zip(clips, arrs)]).astype(np.float32)
        lengths = [a.shape[0] for a in arrs]
        return cls(joints=np.concatenate(arrs).astype(np.float32) if arrs else np.zeros((0, 17, 3), np.float32),
                   offsets=np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64),
                   names=tuple(c.name for c in clips), coco=coco)

    def window_starts(self, length: int, step: int = 1) -> np.ndarray:
        """Every frame index where a window of ``length`` frames ``step`` apart starts inside one motion."""
        return starts_within(self.offsets, length, step)


def starts_within(offsets: np.ndarray, length: int, step: int = 1) -> np.ndarray:
    """(W,) every global frame index where a window of ``length`` frames ``step`` apart starts inside one of the
    sequences ``offsets[i]:offsets[i + 1]`` laid end to end."""
    span = (length - 1) * step + 1
    out = [np.arange(a, b - span + 1) for a, b in zip(offsets[:-1], offsets[1:]) if b - a >= span]
    return np.concatenate(out) if out else np.zeros(0, np.int64)


def look_at_batch(position: np.ndarray, target: np.ndarray) -> np.ndarray:
    """:func:`look_at` for (B, 3) positions and targets -> (B, 3, 3) world -> camera rotations (y up)."""
    fwd = target - position
    fwd /= np.linalg.norm(fwd, axis=-1, keepdims=True)
    right = np.cross(fwd, np.array([0.0, 1.0, 0.0]))
    right /= np.maximum(np.linalg.norm(right, axis=-1, keepdims=True), 1e-9)
    down = np.cross(fwd, right)
    return np.stack([right, down, fwd], axis=1)


def _interp_matrix(length: int, keys: int) -> np.ndarray:
    """(length, keys) linear interpolation weights from ``keys`` keyframes spread over ``length`` frames."""
    if keys == 1:
        return np.ones((length, 1))
    pos = np.linspace(0, keys - 1, length)
    lo = np.minimum(np.floor(pos).astype(int), keys - 2)
    frac = pos - lo
    m = np.zeros((length, keys))
    m[np.arange(length), lo] = 1 - frac
    m[np.arange(length), lo + 1] = frac
    return m


def noise_batch(clean: np.ndarray, rng: np.random.Generator, cfg: NoiseConfig = NoiseConfig()  # noqa: B008
                ) -> np.ndarray:
    """:func:`add_noise` for a batch: (B, F, J, 2) normalised clean 2D -> (B, F, J, 3) with confidence."""
    b, f, j = clean.shape[:3]
    out = np.concatenate([clean, np.ones((b, f, j, 1))], axis=-1)
    noisy = rng.random(b) < cfg.noise_prob
    size = np.ptp(clean[..., 1], axis=(1, 2)) + 1e-3  # (B,) the person's 2D height over the clip
    k = min(cfg.keyframes, f)
    std = rng.uniform(0, 1, b) * cfg.gauss_std * size
    offs = rng.normal(0, 1, (b, k, j, 2)) * std[:, None, None, None]
    outlier = rng.random((b, k, j)) < cfg.uniform_prob
    uni = rng.uniform(-cfg.uniform_max, cfg.uniform_max, (b, k, j, 2)) * size[:, None, None, None]
    offs = np.where(outlier[..., None], uni, offs)
    dense = np.einsum("lk,bkjc->bljc", _interp_matrix(f, k), offs)  # (B, F, J, 2)
    dense += rng.normal(0, cfg.jitter, dense.shape)
    dense *= noisy[:, None, None, None]
    out[..., :2] += dense
    conf = np.exp(-np.linalg.norm(dense, axis=-1) / (cfg.conf_scale * size[:, None, None]))
    out[..., 2] = np.where(noisy[:, None, None], conf, 1.0)
    return out


def mask_batch(x: np.ndarray, rng: np.random.Generator, *, joint_prob: np.ndarray | float,
               frame_prob: float) -> np.ndarray:
    """Zero (x, y, confidence of) joints of a batch (B, F, J, C): each joint of sample b with ``joint_prob[b]`` (or
    one probability for all), each frame with ``frame_prob``."""
    b, f, j = x.shape[:3]
    jp = np.broadcast_to(np.asarray(joint_prob, np.float64), (b,))
    keep = (rng.random((b, f, j)) >= jp[:, None, None]) & (rng.random((b, f)) >= frame_prob)[..., None]
    return x * keep[..., None].astype(x.dtype)


def flip_batch(x: np.ndarray, y: np.ndarray, which: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mirror the samples ``which`` (B,) bool of inputs and targets (B, F, 17, 3) (see :func:`flip_pair`)."""
    if which.any():
        x, y = x.copy(), y.copy()
        x[which], y[which] = flip_pair(x[which], y[which])
    return x, y


def virtual_batch(pool: MotionPool, starts: np.ndarray, length: int, rng: np.random.Generator,
                  cfg: SampleConfig = SampleConfig(),  # noqa: B008
                  step: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """:func:`make_sample` for many windows at once, without the masking and flipping (see :func:`mask_batch`,
    :func:`flip_batch`): windows ``pool.joints[s : s + length]`` seen by random cameras (``cfg.camera``), 2D
    noised by ``cfg.noise``. The 2D input is the COCO-17 view converted to H36M-17 (``cfg.input_from_coco``): the
    pool's own COCO keypoints when it has them (Anny bodies), else those built from the skeleton. ``step`` > 1 takes
    every ``step``-th frame (windows ``s : s + length * step : step``).

    Returns:
        ``(x (B, F, 17, 3) input, y (B, F, 17, 3) camera-frame root-relative metres)``, float32.
    """
    frames = starts[:, None] + step * np.arange(length)  # (B, F)
    world = pool.joints[frames].astype(np.float64)  # (B, F, 17, 3)
    b = world.shape[0]
    cam = cfg.camera
    target = world[:, :, ROOT].mean(axis=1)  # (B, 3)
    target[:, 1] = rng.uniform(0.7, 1.1, b) * np.maximum(target[:, 1], 0.5)
    if not cfg.input_from_coco:
        seen = world
    elif pool.coco is not None:  # the body's own keypoints, as a COCO detector sees it
        seen = convert(pool.coco[frames].astype(np.float64), COCO17, H36M17, has_score=False)
    else:
        seen = coco_derived_h36m(world)
    todo = np.ones(b, bool)
    pc = np.zeros_like(world)
    pix = np.zeros(world.shape[:-1] + (2,))
    sizes = np.zeros((b, 2))
    for _ in range(10):
        n = int(todo.sum())
        az = rng.uniform(0, 2 * math.pi, n)
        el = np.radians(rng.uniform(*cam.elevation, n))
        dist = rng.uniform(*cam.distance, n)
        wh = np.asarray(cam.image_sizes, np.float64)[rng.integers(len(cam.image_sizes), size=n)]  # (n, 2)
        focal = 0.5 * wh.max(axis=1) / np.tan(0.5 * np.radians(rng.uniform(*cam.fov, n)))
        pos = target[todo] + dist[:, None] * np.stack([np.cos(el) * np.sin(az), np.sin(el), np.cos(el) * np.cos(az)],
                                                      axis=1)
        pos[:, 1] = np.maximum(pos[:, 1], 0.2)
        rot = look_at_batch(pos, target[todo])  # (n, 3, 3)
        centre = wh / 2 + rng.uniform(-1, 1, (n, 2)) * 0.5 * wh * cam.offset
        pc_n = np.einsum("bij,bfkj->bfki", rot, world[todo] - pos[:, None, None])  # (n, F, 17, 3)
        seen_n = np.einsum("bij,bfkj->bfki", rot, seen[todo] - pos[:, None, None])
        ok = pc_n[..., 2].min(axis=(1, 2)) > 0.5
        idx = np.flatnonzero(todo)[ok]
        pc[idx] = pc_n[ok]
        z = np.maximum(seen_n[ok][..., 2:3], 1e-6)
        pix[idx] = seen_n[ok][..., :2] / z * focal[ok, None, None, None] + centre[ok, None, None]
        sizes[idx] = wh[ok]
        todo[idx] = False
        if not todo.any():
            break
    else:  # pragma: no cover - only for motions that wander far from their mean
        raise ValueError("could not place a camera in front of some windows")
    w, h = sizes[:, 0, None, None], sizes[:, 1, None, None]  # (B, 1, 1) each
    clean = pix / w[..., None] * 2.0  # normalize_2d per sample
    clean[..., 0] -= 1.0
    clean[..., 1] -= h / w
    x = noise_batch(clean, rng, cfg.noise)
    return x.astype(np.float32), root_relative(pc).astype(np.float32)
