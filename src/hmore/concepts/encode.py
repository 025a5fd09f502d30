"""Concept ids per frame: the trained motion encoder over windows of a sequence, and the inputs it reads.

A sequence at :data:`~hmore.concepts.motion.MODEL_FPS` is cut into windows of the model's length every half window
(:func:`hmore.lift.infer.window_starts`); each window gives one concept per segment, and a frame takes the
concept of the window whose middle is nearest, so every frame's concept saw context on both sides where there is
any. Inputs (:func:`read_motion`): a BVH file (``.bvh`` / ``.bvh.gz``), a generated clip (``.npz`` with ``kp3d``), a
``pose3d.npz`` from ``hmore lift``, a 2D keypoint file (COCO / AlphaPose / OpenPose / pyskl / priors, lifted with
the shipped ``dstformer_cpu``) or a video (MediaPipe priors, then lifted).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from hmore.concepts.motion import MODEL_FPS, make_windows, resample_joints, to_y_up
from hmore.errors import InputError, UsageError
from hmore.lift.infer import window_starts
from hmore.synth.meta import clip_fps

log = logging.getLogger(__name__)

DEFAULT_WEIGHTS = "concepts_cpu"


# ---- the model ---------------------------------------------------------------------------------------------------
def load_concept_model(*, weights: str | None = None, checkpoint: str | Path | None = None,
                       device: str = "cpu", answerer: bool = False) -> torch.nn.Module:
    """The concept model: shipped weights by name (default ``concepts_cpu``) or a training run / checkpoint.

    With ``answerer`` a motion question answerer is accepted too; any other kind of model is an ``InputError``.
    """
    from hmore.lift.pipeline import load_lifter
    from hmore.models.concepts.model import ConceptModel
    from hmore.models.concepts.qa import ConceptQA

    if checkpoint is None and weights is None:
        weights = DEFAULT_WEIGHTS
    kinds, what = ((ConceptModel, ConceptQA), "a concept model or question answerer") if answerer else \
        ((ConceptModel,), "a concept model")
    return load_lifter(weights=weights, checkpoint=checkpoint, device=device, kinds=kinds, what=what)


# ---- encoding ----------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class EncodedSequence:
    """Concepts of one sequence at the model's frame rate.

    Attributes:
        ids: (T,) int64 concept id per frame.
        latent: (T, dim) float32 the encoder's (pre-quantisation) token of each frame's segment.
        embedding: (T, align_dim) float32: the shared video-motion space embedding of each frame's window.
    """

    ids: np.ndarray
    latent: np.ndarray
    embedding: np.ndarray


def _window_plan(num_frames: int, window: int) -> list[tuple[int, int]]:
    """(start, length) of the windows of a sequence (stride window / 2, short sequences: one padded window)."""
    starts = window_starts(num_frames, window, max(1, window // 2))
    return [(s, min(window, num_frames - s)) for s in starts]


@torch.no_grad()
def encode_sequences(model: torch.nn.Module, sequences: Sequence[np.ndarray], *, has_root: Sequence[bool] | bool = True,
                     batch_size: int = 512) -> list[EncodedSequence]:
    """Concepts of y-up (T_i, 17, 3) sequences at MODEL_FPS (windows of all sequences are batched together).

    Args:
        model: a :class:`hmore.models.concepts.ConceptModel` (any mode: it is run in eval mode).
        sequences: the joints.
        has_root: whether each sequence's root trajectory is meaningful.
        batch_size: windows per forward pass.
    """
    c = model.config
    w, seg = c.window, c.segment
    roots = [has_root] * len(sequences) if isinstance(has_root, bool) else list(has_root)
    pieces: list[np.ndarray] = []
    owners: list[tuple[int, int, int]] = []  # (sequence, start, length)
    for i, seq in enumerate(sequences):
        seq = np.asarray(seq)
        if seq.ndim != 3 or seq.shape[1:] != (17, 3) or len(seq) < 1:
            raise InputError(f"sequence {i}: expected (T>=1, 17, 3) joints, got {seq.shape}")
        for s, n in _window_plan(len(seq), w):
            pieces.append(seq[s : s + n])
            owners.append((i, s, n))
    was = model.training
    model.eval()
    dev = next(model.parameters()).device
    ids_w, lat_w, emb_w = [], [], []
    try:
        for b0 in range(0, len(pieces), batch_size):
            chunk = pieces[b0 : b0 + batch_size]
            batch = make_windows(chunk, window=w, has_root=[roots[o[0]] for o in owners[b0 : b0 + batch_size]])
            states = torch.from_numpy(batch.states).to(dev)
            valid = torch.from_numpy(batch.valid).to(dev)
            out = model.motion(states, valid)
            ids_w.append(out.ids.cpu().numpy())
            lat_w.append(out.latent.float().cpu().numpy())
            emb_w.append(model.embed(out, "motion").float().cpu().numpy())
    finally:
        model.train(was)
    ids_all, lat_all, emb_all = np.concatenate(ids_w), np.concatenate(lat_w), np.concatenate(emb_w)
    results = []
    for i, seq in enumerate(sequences):
        t = len(seq)
        ids = np.zeros(t, np.int64)
        lat = np.zeros((t, c.dim), np.float32)
        emb = np.zeros((t, emb_all.shape[1]), np.float32)
        best = np.full(t, np.inf)
        for k, (owner, s, n) in enumerate(owners):
            if owner != i:
                continue
            frames = np.arange(s, s + n)
            dist = np.abs(frames - (s + (n - 1) / 2))
            take = dist < best[frames]
            f = frames[take]
            tok = (f - s) // seg
            ids[f] = ids_all[k, tok]
            lat[f] = lat_all[k, tok]
            emb[f] = emb_all[k]
            best[f] = dist[take]
        results.append(EncodedSequence(ids=ids, latent=lat, embedding=emb))
    return results


# ---- inputs ------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class MotionInput:
    """A motion read from a file, ready for :func:`encode_sequences`.

    Attributes:
        joints: (T, 17, 3) metres, y up, at MODEL_FPS.
        source_fps: the input's frame rate.
        source_frames: number of frames of the input.
        has_root: whether the root trajectory is meaningful (BVH, generated clips) or not (lifted, root-relative).
        kind: ``"bvh"``, ``"clip"``, ``"pose3d"``, ``"keypoints"`` or ``"video"``.
        video: the video file when the input is one (for the report).
        kp2d: (T_src, 17, 3) H36M-17 2D keypoints in source pixels when known (for the report), else None.
        size: (width, height) of the source images when known.
        info: anything else worth recording.
    """

    joints: np.ndarray
    source_fps: float
    source_frames: int
    has_root: bool
    kind: str
    video: Path | None = None
    kp2d: np.ndarray | None = None
    size: tuple[int, int] | None = None
    info: dict[str, Any] = field(default_factory=dict)

    def source_to_model(self) -> np.ndarray:
        """(source_frames,) index of the model frame nearest in time to each input frame."""
        t = np.arange(self.source_frames) / self.source_fps
        return np.clip(np.round(t * MODEL_FPS).astype(np.int64), 0, len(self.joints) - 1)


def _is_bvh(path: Path) -> bool:
    name = path.name.lower()
    return name.endswith(".bvh") or name.endswith(".bvh.gz")


def read_motion(path: str | Path, *, person: int = 0, lifter: Any = None, size: tuple[int, int] | None = None,
                fps: float | None = None) -> MotionInput:
    """Read a motion input (see the module docstring).

    Args:
        path: the file.
        person: which person (track) of a multi-person input (0 = the one with the most detections).
        lifter: a loaded 2D->3D lifter for keypoint and video inputs (default: the shipped
            :data:`hmore.concepts.pairs.CONCEPT_LIFTER`).
        size: (width, height) for keypoint files that do not give it.
        fps: frame rate for keypoint files that do not give it.

    Raises:
        InputError: missing or unreadable file, no person, an unknown file type.
    """
    from hmore.io.video import VIDEO_SUFFIXES

    path = Path(path)
    if not path.exists():
        raise InputError(f"no such file or folder: {path}")
    if _is_bvh(path):
        from hmore.io.bvh import read_bvh, to_h36m

        bvh = read_bvh(path)
        joints = np.asarray(to_h36m(bvh.forward_kinematics(), bvh), np.float64)
        src_fps = 1.0 / bvh.frame_time
        return MotionInput(joints=resample_joints(joints, src_fps), source_fps=src_fps, source_frames=len(joints),
                           has_root=True, kind="bvh")
    if path.suffix.lower() == ".npz":
        with np.load(path, allow_pickle=False) as z:
            files = set(z.files)
            if {"kp3d", "kp2d", "frames"} <= files:  # a generated clip: camera-frame 3D ground truth
                kp3d = np.asarray(z["kp3d"], np.float64)[:, person]
                kp2d = np.asarray(z["kp2d"], np.float32)[:, person]
                src_fps = (clip_fps(str(z["meta"])) if "meta" in files else None) or 30.0
                h, w = z["frames"].shape[1:3]
                from hmore.skeleton import convert

                return MotionInput(joints=resample_joints(to_y_up(kp3d, "camera"), float(src_fps)),
                                   source_fps=float(src_fps), source_frames=len(kp3d), has_root=True, kind="clip",
                                   kp2d=convert(kp2d, "coco17", "h36m17", has_score=True), size=(int(w), int(h)))
            if "pose3d" in files:  # hmore lift output
                pose = np.asarray(z["pose3d"], np.float64)
                if pose.ndim != 4 or pose.shape[0] == 0:
                    raise InputError(f"{path}: pose3d must be (P>=1, T, 17, 3), got {pose.shape}")
                p = _pick_person(~np.asarray(z["interpolated"]) if "interpolated" in files else None, person,
                                 pose.shape[0])
                src_fps = float(z["fps"]) if "fps" in files else (fps or 30.0)
                kp2d = np.asarray(z["kp2d"][p], np.float32) if "kp2d" in files else None
                wh = tuple(int(v) for v in z["size"]) if "size" in files else None
                return MotionInput(joints=resample_joints(to_y_up(pose[p], "camera"), src_fps), source_fps=src_fps,
                                   source_frames=pose.shape[1], has_root=False, kind="pose3d", kp2d=kp2d,
                                   size=wh)  # type: ignore[arg-type]
    is_video = path.suffix.lower() in VIDEO_SUFFIXES
    from hmore.concepts.pairs import concept_lifter
    from hmore.lift.infer import lift_tracks
    from hmore.lift.pipeline import read_tracks

    try:
        tracks = read_tracks(path, size=size, fps=fps)
    except ImportError as exc:
        raise UsageError(f"cannot read {path}: {exc}") from None
    if tracks.kp2d.shape[0] == 0:
        raise InputError(f"{path}: no person found")
    p = _pick_person(tracks.kp2d[..., 2].max(axis=-1) > 0, person, tracks.kp2d.shape[0])
    lifter = lifter if lifter is not None else concept_lifter()
    lifted = lift_tracks(lifter, tracks.kp2d[p : p + 1], width=tracks.width, height=tracks.height, fps=tracks.fps,
                         model_fps=0)  # as the concept models' real clips were lifted (hmore.concepts.pairs)
    joints = to_y_up(lifted.pose3d[0].astype(np.float64), "camera")
    return MotionInput(joints=resample_joints(joints, tracks.fps), source_fps=float(tracks.fps),
                       source_frames=joints.shape[0], has_root=False, kind="video" if is_video else "keypoints",
                       video=path if is_video else None, kp2d=lifted.kp2d[0], size=(tracks.width, tracks.height),
                       info={"person": int(tracks.track_ids[p]) if len(tracks.track_ids) > p else p})


def _pick_person(seen: np.ndarray | None, person: int, count: int) -> int:
    """The index of the ``person``-th most detected person (0 = most frames with a detection); ``seen`` (P, T)."""
    if not 0 <= person < count:
        raise UsageError(f"person {person} out of range: the input has {count}")
    if seen is None:
        return person
    frames = seen.sum(axis=1)
    return int(np.argsort(-frames, kind="stable")[person])


def encode_file(model: torch.nn.Module, path: str | Path, **read_kwargs: Any) -> tuple[MotionInput, EncodedSequence]:
    """:func:`read_motion` then :func:`encode_sequences` of one input."""
    motion = read_motion(path, **read_kwargs)
    return motion, encode_sequences(model, [motion.joints], has_root=motion.has_root)[0]


def concept_segments(ids: np.ndarray) -> list[tuple[int, int, int]]:
    """Runs of equal ids: [(concept, first frame, last frame + 1), ...]."""
    ids = np.asarray(ids)
    if ids.size == 0:
        return []
    cuts = np.flatnonzero(np.diff(ids)) + 1
    starts = np.concatenate([[0], cuts])
    ends = np.concatenate([cuts, [len(ids)]])
    return [(int(ids[s]), int(s), int(e)) for s, e in zip(starts, ends)]
