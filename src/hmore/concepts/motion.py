"""Skeleton sequences for motion concepts, and the canonical features the motion encoder reads.

**Sequences** (:class:`SkeletonSequence`): H36M-17 joints in hmore's world frame (metres, y up) resampled to
:data:`MODEL_FPS`, with the labels the benchmark needs (action, style, subject) and a split. Sources: Bandai-Namco
(held-out takes by :func:`hmore.data.bandai.is_held_out`), NW-UCLA (cross-view: view 3 held out), Human3.6M (S9, S11
held out) and the generator's procedural actions (identities split). Training never reads the labels.

**Features of a window** (:func:`window_features`): every window is turned so that the body faces +z at its middle
frame (the facing comes from the hips and shoulders), and measured in leg lengths (hip-knee-ankle, median over the
window), so the view and the body size drop out but turning, travelling and the limbs' motion stay. Per frame t:

* state (:data:`STATE_DIM` = 55): root-relative pose (51), the root's velocity from t-1 to t (3, leg lengths per
  second / :data:`VELOCITY_UNIT`; 0 when the input has no root trajectory, e.g. root-relative lifted 3D) and a
  has-root flag (1);
* velocity (:data:`VELOCITY_DIM` = 54), the target of the actionable loss: the joints' displacement from t to t+1
  (root-relative pose change and root displacement, per second / :data:`VELOCITY_UNIT`); with a ``horizon`` h > 1,
  the mean velocity from t to t+h (the displacement over h frames / h, so its units do not change and frame-to-frame
  jitter averages out).

The state holds only the present pose and the past root motion, so the velocity is not a copy of the input.
"""

from __future__ import annotations

import json
import logging
import math
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from hmore.errors import InputError, UsageError
from hmore.io.atomic import save_npz_atomic

log = logging.getLogger(__name__)

MODEL_FPS = 15.0
NUM_JOINTS = 17
POSE_DIM = NUM_JOINTS * 3
STATE_DIM = POSE_DIM + 3 + 1
VELOCITY_DIM = POSE_DIM + 3
VELOCITY_UNIT = 2.0  # leg lengths per second: brisk limb motion is about 1 in these units
ROOT, R_HIP, R_KNEE, R_ANKLE, L_HIP, L_KNEE, L_ANKLE = 0, 1, 2, 3, 4, 5, 6
L_SHOULDER, R_SHOULDER = 11, 14
FRAMES = ("y_up", "camera", "h36m_world")
SOURCES = ("bandai", "nw_ucla", "h36m", "procedural")


# ---- coordinate frames and canonical features ------------------------------------------------------------------
def to_y_up(joints: np.ndarray, frame: str) -> np.ndarray:
    """(..., 3) points -> hmore's world convention (metres, y up) by a proper rotation (left/right kept).

    ``frame``: ``"y_up"`` (already so: Bandai, NW-UCLA, generated motions), ``"camera"`` (OpenCV camera frame: x right,
    y down, z forward, e.g. lifted 3D; turned 180 degrees about x) or ``"h36m_world"`` (Human3.6M world, mm, z up).
    """
    p = np.asarray(joints, dtype=np.float64)
    if frame == "y_up":
        return p
    if frame == "camera":
        return p * np.array([1.0, -1.0, -1.0])
    if frame == "h36m_world":
        from hmore.data.h36m import world_to_hmore

        return world_to_hmore(p)
    raise UsageError(f"frame must be one of {FRAMES}, got {frame!r}")


def rot_y(angle: float) -> np.ndarray:
    """(3, 3) rotation by ``angle`` radians about +y (maps +z to (sin a, 0, cos a))."""
    c, s = math.cos(angle), math.sin(angle)
    return np.array([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]])


def facing_rotation(pose: np.ndarray) -> np.ndarray:
    """(3, 3) rotation about +y that turns a y-up (17, 3) pose to face +z (its left towards +x).

    The left direction is (left hip - right hip) + (left shoulder - right shoulder); forward = left x up.
    """
    p = np.asarray(pose, dtype=np.float64)
    left = (p[L_HIP] - p[R_HIP]) + (p[L_SHOULDER] - p[R_SHOULDER])
    fwd_x, fwd_z = -left[2], left[0]  # cross(left, +y) projected on the ground
    if not np.isfinite([fwd_x, fwd_z]).all() or math.hypot(fwd_x, fwd_z) < 1e-9:
        return np.eye(3)
    return rot_y(-math.atan2(fwd_x, fwd_z))


def leg_length(joints: np.ndarray) -> float:
    """Median over frames of the mean (hip-knee + knee-ankle) length of both legs, metres (at least 0.2)."""
    j = np.asarray(joints, dtype=np.float64)
    legs = []
    for hip, knee, ankle in ((R_HIP, R_KNEE, R_ANKLE), (L_HIP, L_KNEE, L_ANKLE)):
        legs.append(np.linalg.norm(j[:, knee] - j[:, hip], axis=-1) + np.linalg.norm(j[:, ankle] - j[:, knee], axis=-1))
    value = float(np.median(np.mean(legs, axis=0))) if j.shape[0] else 0.0
    return max(value, 0.2) if np.isfinite(value) else 0.2


@dataclass(frozen=True)
class WindowFeatures:
    """Canonical features of a window of T frames.

    Attributes:
        states: (T, STATE_DIM) float32.
        velocity: (T - h, VELOCITY_DIM) float32, the mean velocity from frame t to t+h (h: the horizon, 1 by default).
        scale: leg length (metres) the window was divided by.
        rotation: (3, 3) the turn about +y that was applied.
    """

    states: np.ndarray
    velocity: np.ndarray
    scale: float
    rotation: np.ndarray


def window_features(joints: np.ndarray, *, fps: float = MODEL_FPS, has_root: bool = True,
                    horizon: int = 1) -> WindowFeatures:
    """Features of a (T, 17, 3) y-up window (see the module docstring).

    Args:
        joints: (T >= 1, 17, 3) metres, y up.
        fps: frame rate of ``joints`` (velocities are per second).
        has_root: whether the root trajectory is meaningful; if not, root velocities are 0 and the flag is 0.
        horizon: frames h the velocity target spans (>= 1): the mean velocity from t to t+h.
    """
    j = np.asarray(joints, dtype=np.float64)
    if j.ndim != 3 or j.shape[1:] != (NUM_JOINTS, 3) or j.shape[0] < 1:
        raise ValueError(f"window_features expects (T>=1, 17, 3) joints, got {j.shape}")
    if int(horizon) != horizon or horizon < 1:
        raise ValueError(f"window_features: horizon must be a whole number of frames >= 1, got {horizon}")
    h = int(horizon)
    t = j.shape[0]
    rot = facing_rotation(j[t // 2])
    scale = leg_length(j)
    k = np.einsum("ij,tnj->tni", rot, j) / scale  # (T, 17, 3) turned, in leg lengths
    pose = k - k[:, ROOT : ROOT + 1]
    root = k[:, ROOT]  # (T, 3)
    unit = float(fps) / VELOCITY_UNIT
    root_step = np.diff(root, axis=0) * unit if has_root else np.zeros((t - 1, 3))  # (T-1, 3)
    back = np.concatenate([root_step[:1] if t > 1 else np.zeros((1, 3)), root_step], axis=0)  # (T, 3)
    states = np.concatenate([pose.reshape(t, POSE_DIM), back, np.full((t, 1), float(has_root))], axis=1)
    nv = max(t - h, 0)  # frames with a target: t + h inside the window
    step_pose = (pose[h:] - pose[:nv]).reshape(nv, POSE_DIM) * (unit / h)
    step_root = (root[h:] - root[:nv]) * (unit / h) if has_root else np.zeros((nv, 3))
    velocity = np.concatenate([step_pose, step_root], axis=1)
    return WindowFeatures(states=states.astype(np.float32), velocity=velocity.astype(np.float32), scale=scale,
                          rotation=rot)


def frame_pose_features(joints: np.ndarray) -> np.ndarray:
    """(T, 51) per-frame raw pose features for baselines: each frame turned to face +z on its own, root-relative,
    in the sequence's leg lengths."""
    j = np.asarray(joints, dtype=np.float64)
    scale = leg_length(j)
    left = (j[:, L_HIP] - j[:, R_HIP]) + (j[:, L_SHOULDER] - j[:, R_SHOULDER])  # (T, 3)
    yaw = np.arctan2(-left[:, 2], left[:, 0])  # facing angle of each frame (see facing_rotation)
    c, s = np.cos(-yaw)[:, None], np.sin(-yaw)[:, None]
    rel = j - j[:, ROOT : ROOT + 1]
    x = c * rel[..., 0] + s * rel[..., 2]  # rot_y(-yaw) applied to every joint
    z = -s * rel[..., 0] + c * rel[..., 2]
    return (np.stack([x, rel[..., 1], z], axis=-1) / scale).reshape(len(j), POSE_DIM).astype(np.float32)


def resample_joints(joints: np.ndarray, src_fps: float, dst_fps: float = MODEL_FPS) -> np.ndarray:
    """(T, ...) -> linearly resampled to ``dst_fps`` (the first frame kept; a 1-frame input stays 1 frame)."""
    j = np.asarray(joints, dtype=np.float64)
    if j.shape[0] < 2 or abs(src_fps - dst_fps) < 1e-9:
        return j
    from hmore.lift.data import resample

    return resample(j, float(src_fps), float(dst_fps))


# ---- windows (their starts: hmore.lift.infer.window_starts) ------------------------------------------------------
@dataclass(frozen=True)
class WindowBatch:
    """Padded windows for the motion encoder.

    Attributes:
        states: (B, W, STATE_DIM) float32 (zeros where padded).
        velocity: (B, W, VELOCITY_DIM) float32 (frames whose horizon runs past the piece have no target: zeros).
        valid: (B, W) bool, real frames.
        velocity_valid: (B, W) bool, frames with a velocity target.
    """

    states: np.ndarray
    velocity: np.ndarray
    valid: np.ndarray
    velocity_valid: np.ndarray


def make_windows(pieces: Sequence[np.ndarray], *, window: int, fps: float = MODEL_FPS,
                 has_root: Sequence[bool] | bool = True, horizon: int = 1) -> WindowBatch:
    """Pad (T_i <= window [+ horizon], 17, 3) joint windows into a :class:`WindowBatch`.

    A piece of ``window + horizon`` frames gives every window frame a velocity target (the mean velocity over the
    next ``horizon`` frames, :func:`window_features`) from the extra frames; frames beyond the window are not states.
    """
    b = len(pieces)
    roots = [has_root] * b if isinstance(has_root, bool) else list(has_root)
    states = np.zeros((b, window, STATE_DIM), np.float32)
    velocity = np.zeros((b, window, VELOCITY_DIM), np.float32)
    valid = np.zeros((b, window), bool)
    vvalid = np.zeros((b, window), bool)
    for i, piece in enumerate(pieces):
        n = min(len(piece), window + horizon)
        if n < 1:
            raise ValueError("empty window")
        f = window_features(np.asarray(piece)[:n], fps=fps, has_root=bool(roots[i]), horizon=horizon)
        m = min(n, window)
        states[i, :m] = f.states[:m]
        valid[i, :m] = True
        nv = min(max(n - horizon, 0), window)
        velocity[i, :nv] = f.velocity[:nv]
        vvalid[i, :nv] = True
    return WindowBatch(states=states, velocity=velocity, valid=valid, velocity_valid=vvalid)


# ---- sequences ---------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SkeletonSequence:
    """One labelled sequence at :data:`MODEL_FPS`.

    Attributes:
        name: unique name, ``"<source>:<id>"``.
        source: one of :data:`SOURCES` (or ``"real"``, ``"user"``).
        joints: (T, 17, 3) float32 metres, y up.
        action: action label ("" unknown).
        style: style label (Bandai; "" otherwise).
        subject: performer / identity label ("" unknown).
        split: ``"train"`` or ``"test"`` (held out).
        has_root: whether the root trajectory is meaningful.
    """

    name: str
    source: str
    joints: np.ndarray
    action: str = ""
    style: str = ""
    subject: str = ""
    split: str = "train"
    has_root: bool = True

    @property
    def num_frames(self) -> int:
        return int(self.joints.shape[0])


_META_FIELDS = ("name", "source", "action", "style", "subject", "split", "has_root")


def save_sequences(path: str | Path, seqs: Sequence[SkeletonSequence]) -> Path:
    """Write sequences as one npz (joints concatenated, ``offsets``, JSON ``meta``) atomically."""
    lengths = [s.num_frames for s in seqs]
    joints = np.concatenate([s.joints for s in seqs]).astype(np.float32) if seqs else np.zeros((0, 17, 3), np.float32)
    meta = [{k: getattr(s, k) for k in _META_FIELDS} for s in seqs]
    return save_npz_atomic(path, joints=joints, offsets=np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64),
                           meta=np.array(json.dumps(meta)), fps=np.array(MODEL_FPS))


def load_sequences(path: str | Path) -> list[SkeletonSequence]:
    """Read :func:`save_sequences` output; :class:`InputError` for a missing or malformed file."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"skeleton sequences not found: {path}")
    try:
        with np.load(path, allow_pickle=False) as z:
            joints, offsets, meta = z["joints"], z["offsets"], json.loads(str(z["meta"]))
    except (OSError, KeyError, ValueError) as exc:
        raise InputError(f"cannot read skeleton sequences {path}: {exc}") from None
    if len(offsets) != len(meta) + 1 or offsets[-1] != len(joints):
        raise InputError(f"{path}: offsets do not match the joints")
    return [SkeletonSequence(joints=joints[offsets[i] : offsets[i + 1]], **{k: m[k] for k in _META_FIELDS})
            for i, m in enumerate(meta)]


def bandai_sequences(*, root: str | Path | None = None, progress: bool = False,
                     takes: Iterable | None = None) -> list[SkeletonSequence]:
    """Bandai-Namco takes at :data:`MODEL_FPS` (held-out takes: :func:`hmore.data.bandai.is_held_out`)."""
    from hmore.data import bandai

    chosen = list(takes) if takes is not None else bandai.load_index(root)
    out = []
    for take in tqdm(chosen, desc="bandai", unit="take", disable=not progress):
        joints = resample_joints(bandai.take_joints(take), take.fps)
        out.append(SkeletonSequence(name=f"bandai:{take.name}", source="bandai", joints=joints.astype(np.float32),
                                    action=take.action, style=take.style, subject=f"set{take.set}",
                                    split="test" if bandai.is_held_out(take) else "train"))
    return out


def nw_ucla_sequences(*, root: str | Path | None = None, fps: float = 30.0) -> list[SkeletonSequence]:
    """NW-UCLA sequences (H36M-17, the sensor's y-up space) at :data:`MODEL_FPS`; view 3 is the test split.

    The dataset states no frame rate; Kinect v1's nominal ``fps`` = 30 is assumed.
    """
    from hmore.data.nw_ucla import load_nw_ucla

    out = []
    for s in load_nw_ucla(root).sequences:
        joints = resample_joints(s.h36m(), fps)
        out.append(SkeletonSequence(name=f"nw_ucla:{s.name}", source="nw_ucla", joints=joints.astype(np.float32),
                                    action=s.action, subject=f"s{s.subject:02d}", split=s.split))
    return out


def h36m_sequences(*, root: str | Path | None = None) -> list[SkeletonSequence]:
    """Human3.6M 3D sequences at :data:`MODEL_FPS` (hmore's world frame); S9 and S11 are the test split."""
    from hmore.data import h36m

    data = h36m.load_h36m(root)
    out = []
    for seq in data.sequences():
        clip = data.motion_clip(seq)
        subject = seq.split("/")[0]
        out.append(SkeletonSequence(name=f"h36m:{seq}", source="h36m",
                                    joints=resample_joints(clip.joints, clip.fps).astype(np.float32),
                                    action=h36m.action_of(seq), subject=subject,
                                    split="test" if subject in h36m.TEST_SUBJECTS else "train"))
    return out


def procedural_sequences(*, identities: Sequence[int], split: str, num_frames: int = 64, seed: int = 0,
                         actions: Sequence[str] | None = None) -> list[SkeletonSequence]:
    """The generator's procedural actions, one sequence per (identity, action), random heading, at MODEL_FPS."""
    from hmore.synth.identity import sample_identity
    from hmore.synth.motion import ACTIONS, generate_motion

    acts = list(actions) if actions is not None else list(ACTIONS)
    out = []
    for i in identities:
        ident = sample_identity(int(i), seed=None)
        for a, act in enumerate(acts):
            rng = np.random.default_rng([seed, int(i), a, 0xC0])
            m = generate_motion(act, ident, num_frames=num_frames, fps=MODEL_FPS, seed=int(rng.integers(2**31)),
                                heading=float(rng.uniform(0, 2 * np.pi)))
            out.append(SkeletonSequence(name=f"procedural:{act}/id{i}", source="procedural",
                                        joints=m.joints.astype(np.float32), action=act, subject=f"id{i}",
                                        split=split))
    return out


PROCEDURAL_TRAIN_IDS = tuple(range(0, 24))
PROCEDURAL_TEST_IDS = tuple(range(1000, 1008))


def build_skeleton_cache(cache_dir: str | Path, *, sources: Sequence[str] = SOURCES, progress: bool = False,
                         data_root: str | Path | None = None) -> dict[str, Path]:
    """Write ``<cache_dir>/skeleton_<source>.npz`` for every source not cached yet (resumable per source).

    Args:
        cache_dir: the concepts data folder.
        sources: which of :data:`SOURCES`.
        progress: progress bars.
        data_root: the shared data folder (default :func:`hmore.paths.shared_data_dir`).
    """
    bad = sorted(set(sources) - set(SOURCES))
    if bad:
        raise UsageError(f"unknown skeleton sources {bad}; known: {', '.join(SOURCES)}")
    cache = Path(cache_dir)
    cache.mkdir(parents=True, exist_ok=True)
    out = {}
    for src in sources:
        path = cache / f"skeleton_{src}.npz"
        if not path.is_file():
            sub = None if data_root is None else Path(data_root) / src
            if src == "bandai":
                seqs = bandai_sequences(root=sub, progress=progress)
            elif src == "nw_ucla":
                seqs = nw_ucla_sequences(root=sub)
            elif src == "h36m":
                seqs = h36m_sequences(root=sub)
            else:
                seqs = (procedural_sequences(identities=PROCEDURAL_TRAIN_IDS, split="train")
                        + procedural_sequences(identities=PROCEDURAL_TEST_IDS, split="test"))
            save_sequences(path, seqs)
            log.info("cached %d %s sequences in %s", len(seqs), src, path)
        out[src] = path
    return out


def is_validation(name: str, fraction: float) -> bool:
    """A fixed validation split inside a training split, for model selection without the reported held-out one: the
    sequence ``name`` (e.g. ``"bandai:dataset-1_bow_active_001"``) is a validation sequence when the CRC-32 of
    ``"val|" + name`` falls in the lowest ``fraction`` of the range (salted, so it is not the held-out takes' test)."""
    return zlib.crc32(f"val|{name}".encode()) < fraction * 2**32


def pair_sequence_name(meta: dict) -> str:
    """The skeleton sequence a cached pair was rendered from (``"bandai:<take>"``), or "" when none is."""
    take = str(meta.get("take", ""))
    if meta.get("source") != "bandai" or not take:
        return ""
    return "bandai:" + Path(take).name.removesuffix(".gz").removesuffix(".bvh")


def sequence_summary(seqs: Sequence[SkeletonSequence]) -> dict[str, int]:
    """Frames per (source, split), for logs and reports."""
    out: dict[str, int] = {}
    for s in seqs:
        key = f"{s.source}/{s.split}"
        out[key] = out.get(key, 0) + s.num_frames
    return out


def sequence_record(s: SkeletonSequence) -> dict:
    """The sequence's labels as a JSON-able dict (no joints)."""
    d = asdict(s)
    d.pop("joints")
    return d
