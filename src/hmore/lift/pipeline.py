"""``hmore lift``'s library side: read 2D keypoints (a keypoint file, a generated clip or a video), lift every
person to 3D, write ``pose3d.npz``, a preview video and ``index.html``.

``pose3d.npz`` holds (P people, T frames):

- ``pose3d`` (P, T, 17, 3) float32: H36M-17 joints, root-relative, camera frame (x right, y down, z forward), metres;
- ``root`` (P, T, 3) float32: camera-frame root trajectory (NaN unless asked for);
- ``kp2d`` (P, T, 17, 3) float32: the H36M-17 2D input (pixels, score), gaps interpolated;
- ``interpolated`` (P, T) bool: no detection in that frame (3D inferred from the neighbouring frames);
- ``track_ids`` (P,), ``frame_index`` (T,), ``fps``, ``size`` (width, height), ``meta`` (JSON string).
"""

from __future__ import annotations

import json
import logging
import math
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch

from hmore.errors import InputError, UsageError
from hmore.io.atomic import save_npz_atomic
from hmore.lift import DEFAULT_LIFTER
from hmore.lift.infer import LiftResult, lift_tracks
from hmore.skeleton import H36M17, convert
from hmore.synth.meta import clip_fps

log = logging.getLogger(__name__)

DEFAULT_WEIGHTS = DEFAULT_LIFTER


@dataclass(frozen=True)
class Tracks2D:
    """People's H36M-17 2D tracks read from an input.

    Attributes:
        kp2d: (P, T, 17, 3) pixels + score (zeros where undetected).
        track_ids: (P,) ids.
        frame_index: (T,) source frame numbers.
        width, height: image size in pixels.
        fps: frame rate.
        source: what was read (format name).
        kp3d_true: (P, T, 17, 3) camera-frame ground truth in metres when the input is a generated clip, else None.
    """

    kp2d: np.ndarray
    track_ids: np.ndarray
    frame_index: np.ndarray
    width: int
    height: int
    fps: float
    source: str
    kp3d_true: np.ndarray | None = None


def load_lifter(*, weights: str | None = None, checkpoint: str | Path | None = None,
                device: str = "cpu", kinds: tuple[type, ...] | None = None, what: str | None = None) -> torch.nn.Module:
    """The lifter to use: shipped weights by name (default :data:`DEFAULT_WEIGHTS`), or a training run / checkpoint /
    weights file exported by ``hmore train --export``. The model's ``input_fps`` is the frame rate it was trained at
    (:func:`training_fps`), which :func:`hmore.lift.infer.lift_tracks` resamples tracks to.

    ``kinds`` are the accepted model classes (default: the 2D-to-3D lifters), ``what`` names them in the error.
    """
    if checkpoint is not None:
        from hmore.train.checkpoint import load_weights_into, read_metadata, resolve_checkpoint
        from hmore.weights import build_model_from_config

        path = resolve_checkpoint(checkpoint)
        meta = read_metadata(path)
        cfg = meta.get("model_config", meta.get("model"))  # a training checkpoint's, or exported weights'
        if not isinstance(cfg, dict):
            raise InputError(f"checkpoint {path} carries no model_config")
        model = build_model_from_config(cfg, source=str(path))
        _check_kind(model, f"checkpoint {path}", kinds, what)
        load_weights_into(model, path)
        model.input_fps = training_fps(meta)
        return model.to(device).eval()
    from hmore.weights import load_model, read_weights_metadata

    name = weights or DEFAULT_WEIGHTS
    model = load_model(name, device=device)
    _check_kind(model, f"weights {name!r}", kinds, what)
    model.input_fps = training_fps(read_weights_metadata(name))
    return model


def training_fps(meta: dict[str, Any]) -> float | None:
    """The frame rate of the tracks a model was trained on, from its weights' metadata: ``input_fps``, else
    ``training_data.fps`` (shipped / exported weights), else ``run_config.data.fps`` (a training checkpoint); None
    when it does not say. :func:`load_lifter` keeps it as the model's ``input_fps``, which
    :func:`hmore.lift.infer.lift_tracks` resamples tracks to."""
    candidates = [meta.get("input_fps")]
    for section, key in (("training_data", None), ("run_config", "data")):
        part = meta.get(section)
        if isinstance(part, str):
            try:
                part = json.loads(part)
            except json.JSONDecodeError:
                part = None
        if isinstance(part, dict) and key is not None:
            part = part.get(key)
        candidates.append(part.get("fps") if isinstance(part, dict) else None)
    for value in candidates:
        if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and value > 0:
            return float(value)
    return None


def _check_kind(model: torch.nn.Module, source: str, kinds: tuple[type, ...] | None, what: str | None) -> None:
    if kinds is None:
        from hmore.models.motion.baselines import MLPLifter, TCNLifter
        from hmore.models.motion.dstformer import DSTformer

        kinds, what = (DSTformer, MLPLifter, TCNLifter), "a 2D-to-3D lifter (DSTformer, MLP or TCN lifter)"
    if not isinstance(model, kinds):
        raise InputError(f"{source} hold a {type(model).__name__}, not {what or ' / '.join(k.__name__ for k in kinds)}")


def read_tracks(path: str | Path, *, size: tuple[int, int] | None = None, fps: float | None = None,
                clip: int | str | None = None, backend: str = "mediapipe") -> Tracks2D:
    """2D tracks from a keypoint file (COCO, AlphaPose, OpenPose, pyskl, hmore priors), a generated clip ``.npz``
    (``kp2d`` + ``kp3d``, ground truth kept for scoring) or a video (through ``hmore.priors``).

    Args:
        path: the input.
        size: (width, height) of the images when the file does not say (COCO/AlphaPose JSON).
        fps: frame rate when the file does not say (default 30).
        clip: which clip of a multi-clip pyskl pickle.
        backend: pose backend for video input.
    """
    from hmore.io.video import VIDEO_SUFFIXES

    path = Path(path)
    if not path.exists():
        raise InputError(f"no such file or folder: {path}")
    if fps is not None and not (math.isfinite(fps) and fps > 0):
        raise UsageError(f"fps must be a finite number > 0, got {fps}")
    if path.suffix.lower() in VIDEO_SUFFIXES:
        return _tracks_from_video(path, backend=backend)
    kp3d = None
    if path.suffix.lower() == ".npz":
        try:
            with np.load(path, allow_pickle=False) as z:
                if "kp3d" in z.files and "kp2d" in z.files:  # a generated clip (hmore.synth.clip)
                    kp3d = np.asarray(z["kp3d"], np.float32).transpose(1, 0, 2, 3)  # (T, P, 17, 3) -> (P, T, 17, 3)
                    if size is None and "frames" in z.files:
                        h, w = z["frames"].shape[1:3]
                        size = (int(w), int(h))
                    if fps is None and "meta" in z.files:
                        fps = clip_fps(str(z["meta"]))
        except (ValueError, OSError, EOFError, zipfile.BadZipFile) as exc:
            raise InputError(f"{path}: not a readable numpy file ({str(exc).splitlines()[0]})") from None
    from hmore.io.keypoints import read_keypoints

    seq = read_keypoints(path, clip=clip)
    img_size = seq.image_size or size
    if img_size is None:
        img_size = _guess_size(seq.kp2d)
        log.warning("%s does not give the image size; assuming %dx%d from the keypoints (pass --size WxH)", path,
                    *img_size)
    coco = seq.kp2d
    if kp3d is not None:
        # A generated clip's third channel is an occlusion flag, not a detection score: every joint's x, y is its
        # exact projection. Read as a score, the 0s of self-occluded joints masked them and, through the min rule
        # of derived joints, the root, belly and neck of any side view.
        coco = coco.copy()
        coco[..., 2] = 1.0
    kp = convert(coco, "coco17", "h36m17", has_score=True)  # (T, P, 17, 3)
    kp[~seq.valid] = 0.0
    if seq.fps is None and fps is None:
        log.warning("%s does not give the frame rate; assuming 30 fps (pass --fps)", path)
    return Tracks2D(kp2d=kp.transpose(1, 0, 2, 3).astype(np.float32), track_ids=seq.track_ids,
                    frame_index=seq.frame_index, width=int(img_size[0]), height=int(img_size[1]),
                    fps=float(seq.fps or fps or 30.0), source=seq.source if kp3d is None else "generated_clip",
                    kp3d_true=kp3d)


def _guess_size(kp: np.ndarray) -> tuple[int, int]:
    seen = kp[..., 2] > 0
    if not seen.any():
        raise InputError("no keypoint with a positive score in the input")
    xs, ys = kp[..., 0][seen], kp[..., 1][seen]
    return int(math.ceil(xs.max() * 1.05 + 1)), int(math.ceil(ys.max() * 1.05 + 1))


def _tracks_from_video(path: Path, *, backend: str) -> Tracks2D:
    try:
        from hmore.priors.pipeline import extract_priors
        from hmore.priors.pose import create_estimator
    except ImportError as exc:
        raise UsageError(f"video input needs hmore.priors, which is not available ({exc})") from None
    return tracks_from_priors(extract_priors(path, estimator=create_estimator(backend)))


def tracks_from_priors(pri: Any) -> Tracks2D:
    """The H36M-17 2D tracks of :class:`hmore.priors.pipeline.Priors` (COCO-17 converted, undetected frames 0)."""
    kp = convert(pri.kp2d, "coco17", "h36m17", has_score=True)  # (T, P, 17, 3)
    kp[~pri.valid] = 0.0
    return Tracks2D(kp2d=kp.transpose(1, 0, 2, 3).astype(np.float32), track_ids=pri.track_ids,
                    frame_index=pri.frame_index, width=int(pri.size[0]), height=int(pri.size[1]),
                    fps=float(pri.fps), source="video")


def save_pose3d(path: str | Path, result: LiftResult, tracks: Tracks2D, *, meta: dict) -> Path:
    """Write ``pose3d.npz`` (see the module docstring) atomically."""
    return save_npz_atomic(path, pose3d=result.pose3d, root=result.root, kp2d=result.kp2d,
                           interpolated=result.interpolated, track_ids=np.asarray(tracks.track_ids, np.int64),
                           frame_index=np.asarray(tracks.frame_index, np.int64),
                           fps=np.float32(result.fps), size=np.array([result.width, result.height], np.int32),
                           meta=json.dumps(meta, sort_keys=True))


def skeleton3d_panel(result: LiftResult, frame: int, *, size: tuple[int, int], yaw_deg: float = 35.0,
                     extent: float | None = None) -> np.ndarray:
    """The 3D skeletons of one frame, turned by ``yaw_deg`` about the vertical axis, drawn orthographically on white
    (people side by side, "interp" over people whose frame was interpolated).

    Args:
        result: the lifted tracks.
        frame: frame index.
        size: (height, width) of the panel in pixels.
        yaw_deg: turn about the vertical (camera y) axis.
        extent: half-size in metres that fills the panel (default: the largest |x|, |y| over the whole result, so
            the scale does not jump between frames).
    """
    from hmore.report.draw import draw_skeleton, person_color

    h, w = size
    p = result.pose3d.shape[0]
    turned = _turned(result, yaw_deg)  # (P, T, 17, 3)
    if extent is None:
        extent = max(float(np.nanmax(np.abs(turned[..., :2]))) if turned.size else 1.0, 0.5)
    cell = w / max(1, p)
    s3d = 0.45 * min(cell, h) / extent
    out = np.full((h, w, 3), 255, np.uint8)
    for i in range(p):
        cx = (i + 0.5) * cell
        xy = turned[i, frame, :, :2] * s3d + np.array([cx, h / 2])
        pts = np.concatenate([xy, np.ones((17, 1))], axis=-1)
        out = draw_skeleton(out, pts, layout=H36M17, colors=[person_color(i)], thickness=2)
        if result.interpolated[i, frame]:
            cv2.putText(out, "interp", (int(cx) - 20, 15), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (200, 0, 0), 1)
    return out


def _turned(result: LiftResult, yaw_deg: float) -> np.ndarray:
    yaw = math.radians(yaw_deg)
    rot = np.array([[math.cos(yaw), 0, math.sin(yaw)], [0, 1, 0], [-math.sin(yaw), 0, math.cos(yaw)]])
    return result.pose3d.astype(np.float64) @ rot.T  # (P, T, 17, 3)


def preview_frames(result: LiftResult, *, panel: int = 360, yaw_deg: float = 35.0) -> Iterator[np.ndarray]:
    """Frames of the preview video: left, the 2D input at its image position; right, the 3D skeletons turned by
    ``yaw_deg`` about the vertical axis, drawn with cv2 (orthographic, people side by side). Frames without a
    detection are drawn dashed-grey-free but labelled "interp"."""
    from hmore.report.draw import draw_skeleton

    t = result.pose3d.shape[1]
    scale2d = panel / max(result.width, result.height)
    w2d, h2d = int(round(result.width * scale2d)), int(round(result.height * scale2d))
    turned = _turned(result, yaw_deg)
    extent = max(float(np.nanmax(np.abs(turned[..., :2]))) if turned.size else 1.0, 0.5)
    for f in range(t):
        left = np.full((panel, panel, 3), 245, np.uint8)
        kp = result.kp2d[:, f].astype(np.float64).copy()
        kp[..., :2] *= scale2d
        kp[..., 0] += (panel - w2d) / 2
        kp[..., 1] += (panel - h2d) / 2
        cv2.rectangle(left, (int((panel - w2d) / 2), int((panel - h2d) / 2)),
                      (int((panel + w2d) / 2) - 1, int((panel + h2d) / 2) - 1), (200, 200, 200), 1)
        vis = kp.copy()
        vis[result.interpolated[:, f], :, 2] = 1.0  # draw interpolated 2D too (labelled below)
        left = draw_skeleton(left, vis, layout=H36M17, threshold=0.05, thickness=2)
        right = skeleton3d_panel(result, f, size=(panel, panel), yaw_deg=yaw_deg, extent=extent)
        frame = np.concatenate([left, right], axis=1)
        cv2.putText(frame, f"{f}", (5, panel - 8), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (90, 90, 90), 1)
        yield frame


@dataclass(frozen=True)
class LiftOutputs:
    """What ``lift_file`` wrote and measured."""

    pose3d: Path
    video: Path | None
    index: Path
    num_people: int
    num_frames: int
    interpolated_frames: int
    mpjpe_mm: float | None
    p_mpjpe_mm: float | None
    seconds: float


def lift_file(path: str | Path, out_dir: str | Path, *, model: torch.nn.Module, size: tuple[int, int] | None = None,
              fps: float | None = None, clip: int | str | None = None, window: int | None = None,
              stride: int | None = None, flip: bool = True, trajectory: bool = False, focal: float | None = None,
              video: bool = True, model_name: str = "", progress: bool = False) -> LiftOutputs:
    """Lift every person of ``path`` to 3D and write ``pose3d.npz``, ``preview.mp4`` and ``index.html``.

    See :func:`read_tracks` for inputs and :func:`hmore.lift.infer.lift_tracks` for the options.
    """
    import time

    from hmore.metrics.pose3d import mpjpe, p_mpjpe
    from hmore.report.html import Report

    out = Path(out_dir)
    tracks = read_tracks(path, size=size, fps=fps, clip=clip)
    if tracks.kp2d.shape[1] == 0:
        raise InputError(f"{path}: no frames")
    if tracks.kp2d.shape[0] == 0:
        raise InputError(f"{path}: no person found")
    t0 = time.perf_counter()
    res = lift_tracks(model, tracks.kp2d, width=tracks.width, height=tracks.height, fps=tracks.fps, window=window,
                      stride=stride, flip=flip, trajectory=trajectory, focal=focal, progress=progress)
    seconds = time.perf_counter() - t0
    e = pe = None
    if tracks.kp3d_true is not None and tracks.kp3d_true.shape == res.pose3d.shape:
        true = tracks.kp3d_true - tracks.kp3d_true[..., :1, :]
        ok = ~res.interpolated
        if ok.any():
            e = 1000 * float(mpjpe(res.pose3d[ok], true[ok]))
            pe = 1000 * float(p_mpjpe(res.pose3d[ok].astype(np.float64), true[ok].astype(np.float64)))
    meta = {"input": str(path), "source": tracks.source, "model": model_name, "flip": flip, "window": window,
            "stride": stride, "trajectory": trajectory, "units": "metres, camera frame, root-relative",
            "layout": "h36m17", "lift_fps": res.lift_fps}
    npz = save_pose3d(out / "pose3d.npz", res, tracks, meta=meta)
    mp4 = None
    if video:
        from hmore.io.video import write_video

        mp4 = write_video(out / "preview.mp4", preview_frames(res), fps=res.fps)
    rep = Report("hmore lift", intro=f"{path} ({tracks.source}): {res.pose3d.shape[0]} people, "
                                     f"{res.pose3d.shape[1]} frames, lifted with {model_name or 'a lifter'}.")
    if mp4 is not None:
        rep.add_figure(mp4, "left: 2D input (H36M-17); right: lifted 3D skeletons, turned 35 degrees")
    rows = [[int(tid), int((~res.interpolated[i]).sum()), int(res.interpolated[i].sum())]
            for i, tid in enumerate(tracks.track_ids)]
    rep.add_table(rows, header=["track", "detected frames", "interpolated frames"])
    if e is not None:
        rep.add_text(f"Against the clip's ground truth: MPJPE {e:.1f} mm, P-MPJPE {pe:.1f} mm.")
    rep.add_text("pose3d.npz: pose3d (P, T, 17, 3) root-relative camera-frame metres, root (P, T, 3), kp2d, "
                 "interpolated (P, T), track_ids, frame_index, fps, size, meta.")
    index = rep.save(out / "index.html")
    return LiftOutputs(pose3d=npz, video=mp4, index=Path(index) if index else out / "index.html",
                       num_people=res.pose3d.shape[0], num_frames=res.pose3d.shape[1],
                       interpolated_frames=int(res.interpolated.sum()), mpjpe_mm=e, p_mpjpe_mm=pe, seconds=seconds)
