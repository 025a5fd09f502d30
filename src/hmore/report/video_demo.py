"""hmore's main job on a real video, for the demo report: priors (skeleton, masks), world / camera / local flow and
the lifted 3D skeleton of each person, shown as one preview of two rows of three panels, with the time each stage
took on this machine.

:func:`run_video_demo` runs the stages on any video (the demo uses the short clip shipped in
``hmore/assets/video/``, see its ``CREDITS.md``) and writes, beside the report:

- ``<name>.mp4`` (the preview) and ``<name>.png`` (its middle frame),
- ``<name>_priors.npz`` (``hmore priors`` format) and ``<name>_pose3d.npz`` (``hmore lift`` format).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from hmore.errors import InputError, UsageError
from hmore.paths import assets_dir

log = logging.getLogger(__name__)

DEMO_VIDEO_NAME = "juggling_sam2.mp4"
DEFAULT_MAX_SIDE = 320

PANEL_TEXT = {
    "frame + 2D pose": "the video frame with the COCO-17 skeletons from hmore's priors (MediaPipe), one colour per "
                       "tracked person.",
    "person masks": "the instance masks from the priors, tinted per person: the region each person's flow and "
                    "subject motion are computed in.",
    "camera flow": "the image motion caused by the camera alone, estimated from the background and removed from the "
                   "world flow (Middlebury colours, white = still).",
    "optical flow (DIS)": "plain optical flow of the whole frame (OpenCV DIS) for contrast: it moves wherever "
                          "the image moves, background and camera included.",
    "world flow": "hmore's world flow: the motion of the body points relative to the scene, white on the background.",
    "local flow": "hmore's local flow: the world flow minus each person's overall motion v_s, inside the person: "
                  "the limbs' motion relative to the body.",
    "3D skeleton": "the 3D skeletons lifted from the 2D tracks by hmore's DSTformer (root-relative, turned 35 "
                   "degrees so depth is visible).",
}


def demo_video() -> Path:
    """The real clip shipped with hmore for the demo (a man juggling a football; see ``assets/video/CREDITS.md``)."""
    return assets_dir() / "video" / DEMO_VIDEO_NAME


@dataclass(frozen=True)
class VideoDemoResult:
    """What :func:`run_video_demo` wrote and measured.

    Attributes:
        video: the preview mp4 (two rows of three panels).
        poster: a PNG of the middle preview frame.
        panels: the panel titles, row by row.
        timings: seconds per stage, in order (``decode``, ``pose + masks``, ``flow``, ``lift``, ``preview``).
        frames: frames processed.
        people: tracked people.
        size: (width, height) of the processed frames.
        flow_scale: flow magnitude (pixels/frame) shown fully saturated.
        files: other outputs by role (``priors``, ``pose3d``).
        notes: what was skipped and why.
    """

    video: Path
    poster: Path
    panels: tuple[str, ...]
    timings: dict[str, float]
    frames: int
    people: int
    size: tuple[int, int]
    flow_scale: float
    files: dict[str, Path] = field(default_factory=dict)
    notes: tuple[str, ...] = ()


class _Stopwatch:
    def __init__(self) -> None:
        self.timings: dict[str, float] = {}

    def __call__(self, name: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        t0 = time.perf_counter()
        out = fn(*args, **kwargs)
        self.timings[name] = self.timings.get(name, 0.0) + time.perf_counter() - t0
        return out


def run_video_demo(
    video: str | Path,
    out: str | Path,
    *,
    name: str = "real_video",
    flow_model: Any = None,
    lifter: Any = None,
    max_side: int = DEFAULT_MAX_SIDE,
    max_frames: int | None = None,
    progress: bool = False,
) -> VideoDemoResult:
    """Priors, flow and lifting of a real video, with a two-row preview.

    Args:
        video: a video file or image folder with people in it.
        out: output folder (created).
        name: file stem of the outputs.
        flow_model: a loaded H-MoRe flow model (``hmore.load_model("hmore_flow_cpu")``), or None to leave out the
            flow panels.
        lifter: a loaded lifting model (``hmore.load_model("dstformer_cpu")``), or None to leave out the 3D panel.
        max_side: frames are processed with their longer side scaled to at most this many pixels.
        max_frames: process only the first this many frames (None: all).
        progress: progress bars.

    Returns:
        :class:`VideoDemoResult`.

    Raises:
        InputError: the video cannot be read or no person is found in it.
    """
    from hmore.io.video import iter_frames, write_video
    from hmore.priors.pipeline import extract_priors, save_priors
    from hmore.priors.pose import create_estimator
    from hmore.report.draw import write_png

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    watch = _Stopwatch()
    notes: list[str] = []

    if max_frames is not None and max_frames < 2:
        raise UsageError(f"the video demo needs at least 2 frames (flow is between pairs), got {max_frames}")
    frames = watch("decode", lambda: list(iter_frames(video, max_side=max_side, end=max_frames)))
    if len(frames) < 2:
        raise InputError(f"{video}: the demo needs at least 2 frames, got {len(frames)}")
    frames = np.stack(frames)  # (T, H, W, 3)
    t, h, w = frames.shape[:3]
    priors = watch("pose + masks", extract_priors, video, estimator=create_estimator("mediapipe"),
                   max_side=max_side, end=max_frames, progress=progress)
    if priors.kp2d.shape[1] == 0:
        raise InputError(f"{video}: no person found")
    if priors.masks.shape[1:] != (h, w):
        raise InputError(f"{video}: priors masks are {priors.masks.shape[1:]}, frames {(h, w)}")
    files = {"priors": save_priors(out / f"{name}_priors.npz", priors)}

    panels: dict[str, Iterator[np.ndarray] | np.ndarray] = {}
    scale = 1.0
    if flow_model is not None:
        from hmore.flow.inference import flow

        rep = watch("flow", flow, frames, model=flow_model, masks=priors.masks, size=max(h, w), device="cpu",
                    progress=progress)
        world = rep.world.transpose(0, 2, 3, 1)  # (T-1, 2, H, W) -> (T-1, H, W, 2)
        inside = rep.masks > 0
        mags = np.hypot(world[..., 0], world[..., 1])[inside]
        scale = float(np.percentile(mags, 99)) if mags.size else 1.0
        camera = getattr(rep, "camera", None)
        if camera is not None:
            panels["camera flow"] = np.asarray(camera).transpose(0, 2, 3, 1)
        else:
            panels["optical flow (DIS)"] = watch("flow", _dis_flows, frames)
            notes.append("this hmore version estimates no camera flow: the panel shows plain optical flow (DIS)")
        panels["world flow"] = world
        panels["local flow"] = rep.local.transpose(0, 2, 3, 1)
    else:
        notes.append("no flow model: the flow panels are left out")
    lifted = None
    if lifter is not None:
        from hmore.lift.infer import lift_tracks
        from hmore.lift.pipeline import save_pose3d, tracks_from_priors

        tracks = tracks_from_priors(priors)
        lifted = watch("lift", lift_tracks, lifter, tracks.kp2d, width=tracks.width, height=tracks.height,
                       fps=tracks.fps)
        files["pose3d"] = save_pose3d(out / f"{name}_pose3d.npz", lifted, tracks,
                                      meta={"input": str(video), "source": "video", "units": "metres, camera frame, "
                                            "root-relative", "layout": "h36m17"})
    else:
        notes.append("no lifter: the 3D panel is left out")

    titles = ["frame + 2D pose", "person masks", *panels]
    if lifted is not None:
        titles.append("3D skeleton")

    def previews(start: int = 0, stop: int = t - 1) -> Iterator[np.ndarray]:
        from hmore.lift.pipeline import skeleton3d_panel
        from hmore.report.draw import draw_skeleton, hstack_panels, overlay_masks
        from hmore.report.flowviz import flow_to_color

        for k in range(start, stop):
            pics = [
                draw_skeleton(frames[k], priors.kp2d[k] * _to_panel(priors, w, h), threshold=0.3,
                              thickness=max(1, round(h / 120))),
                overlay_masks(frames[k], priors.masks[k]),
            ]
            for arr in panels.values():
                pics.append(flow_to_color(np.asarray(arr[k]), max_mag=scale))
            if lifted is not None:
                pics.append(skeleton3d_panel(lifted, k, size=(h, w)))
            yield _grid(pics, titles, hstack_panels, columns=3, frame=k)

    fps = float(priors.fps) or 24.0
    mp4 = watch("preview", write_video, out / f"{name}.mp4", previews(), fps)
    poster = write_png(out / f"{name}.png", next(previews((t - 1) // 2, (t - 1) // 2 + 1)))
    return VideoDemoResult(video=mp4, poster=poster, panels=tuple(titles), timings=dict(watch.timings), frames=t,
                           people=int(priors.kp2d.shape[1]), size=(w, h), flow_scale=scale, files=files,
                           notes=tuple(notes))


def _to_panel(priors: Any, w: int, h: int) -> np.ndarray:
    """Scale of priors keypoints (source pixels) to the processed frame, as a (3,) multiplier for x, y, score."""
    sw, sh = priors.size
    return np.array([w / sw, h / sh, 1.0], np.float32)


def _dis_flows(frames: np.ndarray) -> np.ndarray:
    """(T-1, H, W, 2) OpenCV DIS flow (medium preset) between consecutive frames."""
    import cv2

    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    grey = [cv2.cvtColor(np.ascontiguousarray(f), cv2.COLOR_RGB2GRAY) for f in frames]
    return np.stack([dis.calc(a, b, None) for a, b in zip(grey[:-1], grey[1:])]).astype(np.float32)


def _grid(pics: list[np.ndarray], titles: list[str], hstack: Any, *, columns: int, frame: int) -> np.ndarray:
    """Rows of ``columns`` titled panels stacked vertically (a short last row is padded with background)."""
    titles = [f"{titles[0]} t={frame}", *titles[1:]]
    rows = [hstack(pics[i : i + columns], titles[i : i + columns]) for i in range(0, len(pics), columns)]
    width = max(r.shape[1] for r in rows)
    padded = [np.pad(r, ((0, 0), (0, width - r.shape[1]), (0, 0)), constant_values=32) for r in rows]
    return np.concatenate(padded, axis=0)
