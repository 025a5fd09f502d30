"""Run hmore's main job on a short real video shipped with the package (a man juggling a football): pose and person
masks from the priors, world / camera / local flow and the lifted 3D skeleton, with the time each stage took here.
Then render the embedded generated demo: a CMU walk played on a generated person and a procedural action clip with
two people, with exact ground truth, shown as frame | ground-truth flow | masks | skeleton previews (hmore's own
flow beside them). Everything goes into one report (OUT/index.html); the clips and results are saved beside it.

(For developers: the library function build_demo takes extra_panels, a function adding named panels per clip,
e.g. hmore's own world and local flow beside the ground truth.)
"""

from __future__ import annotations

import argparse
import json
import logging
import shlex
import sys
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from hmore.errors import UsageError
from hmore.synth.meta import clip_fps

if TYPE_CHECKING:  # the generator is imported when the demo runs, not when the CLI builds its parser
    from hmore.synth.clip import Clip

HELP = "hmore on a real video (priors, flow, 3D) and on generated clips with ground truth, in one HTML report"

log = logging.getLogger(__name__)

DEFAULT_SIZE = (192, 256)
DEFAULT_FRAMES = 48
DEFAULT_FPS = 25.0

# A function (clip name, clip) -> {panel title: array}. Arrays are (T-1, H, W, 2) float flow in pixels (colour-coded
# on the clip's ground-truth scale, so they compare with it), or (T-1, H, W, 3) / (T, H, W, 3) uint8 RGB pictures.
# Panels appear right of the built-in ones, in the mapping's order.
PanelFn = Callable[[str, "Clip"], Mapping[str, np.ndarray]]

BUILTIN_PANELS = ("frame", "ground-truth flow", "masks", "skeleton")
PANEL_TEXT = {
    "frame": "the rendered RGB frame t.",
    "ground-truth flow": (
        "the exact forward optical flow from frame t to t+1, computed from the 3D motion of the surface point seen "
        "at each pixel (not by matching images), colour-coded with the Middlebury wheel (legend below): hue is the "
        "direction, saturation the length; white means no motion. All frames of a clip share one scale."
    ),
    "masks": "the instance masks: one colour per person (black is background).",
    "skeleton": "the COCO-17 keypoints projected from the body, one colour per person; occluded joints are not drawn.",
}


@dataclass(frozen=True)
class DemoClipResult:
    """What the demo wrote for one clip.

    Attributes:
        name: file stem, e.g. ``"cmu_walk"``.
        title: a human title.
        npz: the clip in hmore's on-disk format.
        video: the preview mp4 (panels side by side).
        poster: a PNG of the middle preview frame.
        flow_scale: flow magnitude (pixels) shown fully saturated.
        panels: the panel titles, left to right.
        stats: the row of the metadata table, by column.
    """

    name: str
    title: str
    npz: Path
    video: Path
    poster: Path
    flow_scale: float
    panels: tuple[str, ...]
    stats: dict[str, Any]


def parse_size(text: str) -> tuple[int, int]:
    """``"192x256"`` -> ``(192, 256)`` (height, width); raises :class:`UsageError` otherwise."""
    parts = text.lower().split("x")
    try:
        h, w = (int(p) for p in parts)
    except ValueError:
        raise UsageError(f"--size must look like HxW, e.g. 192x256, got {text!r}") from None
    if h <= 0 or w <= 0:
        raise UsageError(f"--size must be positive, got {text!r}")
    return h, w


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("-o", "--out", type=Path, default=Path("out/demo"), help="output folder (default: out/demo)")
    default_size = f"{DEFAULT_SIZE[0]}x{DEFAULT_SIZE[1]}"
    p.add_argument("--size", default=default_size, help="frame size HxW (default: %(default)s)")
    p.add_argument("--frames", type=int, default=DEFAULT_FRAMES, help="frames per clip (default: %(default)s)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default: %(default)s)")
    p.add_argument("--flow-model", default=None,
                   help=f"shipped flow model whose world/local flow is shown (default: {FLOW_MODEL} when its weights "
                        f"ship; 'none' to skip)")
    p.add_argument("--video", default=None,
                   help="real video for the first section (default: the clip shipped with hmore; 'none' to skip)")
    p.add_argument("--video-frames", type=int, default=None,
                   help="process only the first N frames of that video (default: all)")


def run(args: argparse.Namespace) -> int:
    import sys

    from hmore.io.atomic import check_output_dir

    check_output_dir(args.out)
    parse_size(args.size)
    if args.frames < 2:
        raise UsageError(f"the demo needs at least 2 frames (flow is between pairs), got {args.frames}")
    video = None if args.video == "none" else (args.video or "default")
    if video not in (None, "default") and not Path(video).exists():
        raise UsageError(f"--video {video}: no such file or folder")
    if args.video_frames is not None and args.video_frames < 2:
        raise UsageError(f"--video-frames must be at least 2 (flow is between pairs), got {args.video_frames}")
    from hmore.bench.flow_bench import set_threads
    from hmore.flow.inference import stream_threads

    set_threads(stream_threads())  # as `hmore flow`: torch on half the cores, its flow stream's worker on the rest
    net = load_shipped_flow(args.flow_model or FLOW_MODEL, required=args.flow_model is not None)
    panels, text = hmore_flow_panels(net, args.flow_model or FLOW_MODEL) if net is not None else (None, {})
    index = build_demo(args.out, size=parse_size(args.size), num_frames=args.frames, seed=args.seed,
                       extra_panels=panels, extra_panel_text=text, video=video, video_frames=args.video_frames,
                       flow_model=net, progress=sys.stderr.isatty())
    print(index)
    return 0


FLOW_MODEL = "hmore_flow_cpu"
LIFTER = "dstformer_cpu"


def load_shipped_flow(model: str, *, required: bool = False) -> Any:
    """The flow model with the weights shipped as ``model``, or None when ``model`` is ``"none"``, or, with a warning,
    when no weights ship for it and it was not ``required``: the demo then shows no hmore flow rather than the flow
    of an untrained network.

    Raises:
        UsageError: ``model`` is not a registered flow model, or is ``required`` and no weights ship for it.
    """
    from hmore.flow.inference import check_flow_model_name, load_flow_model
    from hmore.weights import list_weights

    if model == "none":
        return None
    check_flow_model_name(model)
    if model not in list_weights():
        if required:
            raise UsageError(f"no shipped weights for the flow model {model!r} (shipped: "
                             f"{', '.join(list_weights()) or 'none'}); use --flow-model none for no hmore flow")
        log.warning("no shipped weights for %s: the demo shows no hmore flow", model)
        return None
    net, _ = load_flow_model(model)
    return net


def hmore_flow_panels(net: Any, model: str) -> tuple[PanelFn, dict[str, str]]:
    """Panels of hmore's own world and local flow on the generated clips, from ``net`` (the shipped ``model``)."""
    from hmore.flow.inference import flow

    def panels(name: str, clip: Clip) -> dict[str, np.ndarray]:
        rep = flow(clip.frames, model=net, masks=clip.masks, keypoints=clip.kp2d, device="cpu", progress=False)
        # (T-1, 2, H, W) -> (T-1, H, W, 2), the panel layout
        return {
            "hmore world flow": rep.world.transpose(0, 2, 3, 1),
            "hmore local flow": rep.local.transpose(0, 2, 3, 1),
        }

    text = {
        "hmore world flow": (
            f"hmore's own world flow ({model}, the weights shipped with the package), computed from the two frames "
            "and the people's masks alone, on the ground truth's colour scale: it should match the ground-truth "
            "panel on the people and stay white on the background."
        ),
        "hmore local flow": (
            "hmore's local flow: the world flow minus each person's overall motion (v_s: the pelvis motion of the "
            "pose) inside that person, zero elsewhere: the motion of the limbs relative to the body."
        ),
    }
    return panels, text


def build_demo(
    out: str | Path,
    *,
    size: tuple[int, int] = DEFAULT_SIZE,
    num_frames: int = DEFAULT_FRAMES,
    seed: int = 0,
    extra_panels: PanelFn | None = None,
    extra_panel_text: Mapping[str, str] | None = None,
    command: str | None = None,
    video: str | Path | None = None,
    video_frames: int | None = None,
    flow_model: Any = None,
    progress: bool = False,
) -> Path:
    """Run the real-video section (if ``video``), render the two demo clips, save them with previews, and write
    ``out/index.html``.

    Args:
        out: output folder (created).
        size: (H, W) of the frames.
        num_frames: frames per clip (at least 2: flow needs a pair).
        seed: random seed; clip 1 uses ``seed``, clip 2 ``seed + 1``.
        extra_panels: hook adding named panels per clip (see :data:`PanelFn`), e.g. ``"hmore world flow"`` and
            ``"local flow"`` from the flow model.
        extra_panel_text: a sentence per extra panel title for the report's explanation.
        command: the command line that reproduces the report (shown in it); default the equivalent ``hmore demo``.
        video: a real video for the first section, ``"default"`` for the clip shipped with hmore, or None to skip.
        video_frames: process only the first this many frames of ``video``.
        flow_model: the loaded flow model for the real video's flow panels (None: no flow panels there).
        progress: progress bars.

    Returns:
        The path of ``index.html``.
    """
    h, w = size
    if h <= 0 or w <= 0:
        raise UsageError(f"size must be positive, got {h}x{w}")
    if num_frames < 2:
        raise UsageError(f"the demo needs at least 2 frames (flow is between pairs), got {num_frames}")
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise UsageError(f"output {out} exists and is not a folder")
    from hmore.synth.clip import render_clip
    from hmore.synth.motion import embedded_bvh

    out.mkdir(parents=True, exist_ok=True)
    if command is None:
        command = f"hmore demo -o {shlex.quote(str(out))} --size {h}x{w} --frames {num_frames} --seed {seed}"
        if video is None:
            command += " --video none"
        elif video != "default":
            command += f" --video {shlex.quote(str(video))}"
        if video is not None and video_frames is not None:
            command += f" --video-frames {video_frames}"

    real = None
    if video is not None:
        real = _real_video_section(out, video, video_frames=video_frames, flow_model=flow_model, progress=progress)

    jobs = [
        (
            "cmu_walk",
            "A CMU motion-capture walk on a generated person",
            "A walk from the CMU motion-capture database (packaged with hmore) played on a body with sampled "
            "proportions, clothes and colours.",
            dict(subjects=1, seed=seed, bvh=embedded_bvh()),
        ),
        (
            "two_people",
            "Two generated people, procedural actions",
            "Two people with sampled identities performing actions from hmore's procedural library; they may "
            "overlap and occlude each other.",
            dict(subjects=2, seed=seed + 1),
        ),
    ]
    results = []
    for name, title, text, kwargs in jobs:
        log.info("rendering %s (%dx%d, %d frames)", name, h, w, num_frames)
        clip = render_clip(size=(h, w), num_frames=num_frames, progress=sys.stderr.isatty(), **kwargs)
        extra = dict(extra_panels(name, clip)) if extra_panels is not None else {}
        results.append((write_clip_preview(clip, out, name=name, title=title, extra=extra), text))

    from hmore.report.draw import write_png

    legend = write_png(out / "flow_wheel.png", _wheel_legend())
    index = _write_report(out, results, legend, command, extra_panel_text or {}, real=real)
    return index


def _real_video_section(out: Path, video: str | Path, *, video_frames: int | None, flow_model: Any,
                        progress: bool) -> Any:
    """Run :func:`hmore.report.video_demo.run_video_demo`; a str (why) instead when the priors cannot run here."""
    from hmore.report.video_demo import demo_video, run_video_demo
    from hmore.weights import list_weights, load_model

    try:
        import mediapipe  # noqa: F401
    except ImportError:
        why = "the real-video section needs the pose priors (pip install 'hmore[priors]'); it was skipped"
        log.warning(why)
        return why
    path = demo_video() if video == "default" else Path(video)
    lifter = load_model(LIFTER) if LIFTER in list_weights() else None
    log.info("real video %s: priors, flow and lifting", path)
    return run_video_demo(path, out, name="real_video", flow_model=flow_model, lifter=lifter,
                          max_frames=video_frames, progress=progress)


def write_clip_preview(
    clip: Clip, out: Path, *, name: str, title: str, extra: Mapping[str, np.ndarray] | None = None
) -> DemoClipResult:
    """Save ``clip`` as ``out/<name>.npz`` with a preview ``out/<name>.mp4`` and poster ``out/<name>.png``.

    Args:
        clip: a generated clip (``frames``, ``flow``, ``masks``, ``kp2d``, ``meta``, ``save``).
        out: output folder.
        name: file stem.
        title: human title for the table.
        extra: more panels by title (see :data:`PanelFn`).

    Returns:
        What was written, with the clip's statistics.
    """
    from hmore.io.video import write_video
    from hmore.report.draw import write_png
    from hmore.report.flowviz import robust_max_magnitude

    extra = dict(extra or {})
    t = clip.frames.shape[0]
    for key, arr in extra.items():
        arr = np.asarray(arr)
        fits = arr.ndim == 4 and arr.shape[0] in (t - 1, t) and arr.shape[3] in (2, 3)
        if not fits or arr.shape[1:3] != clip.frames.shape[1:3]:
            raise ValueError(
                f"extra panel {key!r} must be (T-1, H, W, 2) flow or (T-1 or T, H, W, 3) pictures with "
                f"T, H, W = {t}, {clip.frames.shape[1]}, {clip.frames.shape[2]}; got {arr.shape}"
            )
    npz = Path(clip.save(out / f"{name}.npz") or out / f"{name}.npz")
    scale = robust_max_magnitude(clip.flow)
    meta = _meta(clip)
    fps = clip_fps(meta) or float(DEFAULT_FPS)
    frames = preview_frames(clip, flow_scale=scale, extra=extra)
    video = write_video(out / f"{name}.mp4", _progress(frames, t - 1, name), fps)
    mid = (t - 1) // 2
    poster = write_png(out / f"{name}.png", next(preview_frames(clip, flow_scale=scale, extra=extra, start=mid)))
    return DemoClipResult(name=name, title=title, npz=npz, video=video, poster=poster, flow_scale=scale,
                          panels=(*BUILTIN_PANELS, *extra), stats=clip_stats(clip, flow_scale=scale))


def preview_frames(
    clip: Clip,
    *,
    flow_scale: float,
    extra: Mapping[str, np.ndarray] | None = None,
    start: int = 0,
    stop: int | None = None,
) -> Iterator[np.ndarray]:
    """Yield one preview picture per frame pair t -> t+1: frame | ground-truth flow | masks | skeleton | extras.

    Args:
        clip: a generated clip (``frames`` (T,H,W,3), ``flow`` (T-1,H,W,2), ``masks`` (T,H,W), ``kp2d`` (T,P,17,3)).
        flow_scale: magnitude in pixels shown fully saturated (one value for the whole clip).
        extra: more panels by title: (T-1,H,W,2) flow or (T-1 or T,H,W,3) uint8 pictures.
        start, stop: the range of pairs t to show (default all T-1).
    """
    from hmore.report.draw import draw_skeleton, hstack_panels, mask_to_color
    from hmore.report.flowviz import flow_to_color

    extra = dict(extra or {})
    titles = [*BUILTIN_PANELS, *extra]
    n_pairs = clip.flow.shape[0]
    stop = n_pairs if stop is None else min(stop, n_pairs)
    for t in range(start, stop):
        frame = clip.frames[t]
        panels = [
            frame,
            flow_to_color(clip.flow[t], max_mag=flow_scale),
            mask_to_color(clip.masks[t]),
            draw_skeleton(_dim(frame), clip.kp2d[t], threshold=0.5, thickness=max(1, round(frame.shape[0] / 100))),
        ]
        for arr in extra.values():
            a = np.asarray(arr[t])
            panels.append(flow_to_color(a, max_mag=flow_scale) if a.shape[-1] == 2 else a)
        yield hstack_panels(panels, [f"{s} t={t}" if s == "frame" else s for s in titles])


def clip_stats(clip: Clip, *, flow_scale: float | None = None) -> dict[str, Any]:
    """The metadata-table row of a clip: labels, size, frames, people, flow magnitude statistics (pixels/frame)."""
    meta = _meta(clip)
    t, h, w = clip.frames.shape[:3]
    mag = np.hypot(clip.flow[..., 0], clip.flow[..., 1])  # (T-1, H, W)
    inside = clip.masks[:-1] > 0  # pixels of people in the first frame of each pair
    row: dict[str, Any] = {
        "labels": _labels_text(meta),
        "size": f"{h}x{w}",
        "frames": int(t),
        "people": int(clip.kp2d.shape[1]),
        "|flow| mean": float(mag.mean()),
        "|flow| mean on people": float(mag[inside].mean()) if inside.any() else float("nan"),
        "|flow| p99": float(np.percentile(mag, 99)),
        "|flow| max": float(mag.max()),
    }
    if flow_scale is not None:
        row["colour scale"] = float(flow_scale)
    return row


# -- helpers -------------------------------------------------------------------------------------------------------


def _meta(clip: Clip) -> dict[str, Any]:
    meta = getattr(clip, "meta", {}) or {}
    if isinstance(meta, str | bytes):
        meta = json.loads(meta)
    return dict(meta)


def _labels_text(meta: Mapping[str, Any]) -> str:
    labels = meta.get("labels", {})
    if isinstance(labels, Mapping):
        items = labels.items()
    elif isinstance(labels, list | tuple):  # one mapping per person
        return "; ".join(f"person {k + 1}: {_labels_text({'labels': lab})}" for k, lab in enumerate(labels))
    else:
        return str(labels)
    parts = []
    for k, v in items:
        if isinstance(v, list | tuple):
            v = ", ".join(str(x) for x in v)
        parts.append(f"{k} {v}")
    return ", ".join(parts)


def _dim(frame: np.ndarray, keep: float = 0.45) -> np.ndarray:
    """The frame faded towards black, so that coloured drawings on it stand out."""
    return (frame.astype(np.float32) * keep).astype(np.uint8)


def _progress(frames: Iterator[np.ndarray], total: int, name: str) -> Iterator[np.ndarray]:
    from tqdm import tqdm

    yield from tqdm(frames, total=total, desc=f"preview {name}", unit="frame", leave=False,
                    disable=not sys.stderr.isatty())


def _wheel_legend() -> np.ndarray:
    from hmore.report.draw import label
    from hmore.report.flowviz import color_wheel

    img = color_wheel(160)
    img = label(img, "+x", org=(136, 72), scale=0.4, color=(0, 0, 0), box=None)
    img = label(img, "+y", org=(70, 144), scale=0.4, color=(0, 0, 0), box=None)
    return img



def _write_report(
    out: Path, results: list[tuple[DemoClipResult, str]], legend: Path, command: str, extra_text: Mapping[str, str],
    *, real: Any = None,
) -> Path:
    from hmore.report.html import Report

    rep = Report(
        "hmore demo: a real video, and generated people with exact motion ground truth",
        intro=(
            "hmore turns videos of people into motion representations: pose and person masks, world flow (the "
            "motion of the body relative to the scene), local flow (the limbs' motion relative to the body) and 3D "
            "skeletons. The first section runs all of it on a short real video shipped with hmore. hmore also "
            "renders people in motion with exact ground truth (forward optical flow, instance masks, 2D/3D joints); "
            "the sections after it show two generated clips with hmore's flow beside the truth. Each preview plays "
            "the frame pairs t -> t+1; the clips and results are saved next to this page."
        ),
    )
    if real is not None:
        _add_real_section(rep, real)
    panels = dict(PANEL_TEXT)
    for res, _ in results:
        for key in res.panels:
            panels.setdefault(key, extra_text.get(key, ""))
    rep.add_section("Generated people: what the panels show")
    rep.add_table([[k, v] for k, v in panels.items()], header=["panel", "what it shows"])
    rep.add_figure(legend, "Flow colour wheel (Baker et al., ICCV 2007): the colour at offset (dx, dy) from the centre "
                   "is the colour of flow (dx, dy); the rim is the clip's colour scale (see the table), x to the "
                   "right, y down.")

    for res, text in results:
        rep.add_section(res.title, text)
        rep.add_figure(res.video, f"{res.name}: {' | '.join(res.panels)} (flow colour scale "
                       f"{res.flow_scale:.2f} px/frame)", poster=res.poster)
        rep.add_text(f"Clip file: {res.npz.name} (np.load it: frames, flow, masks, kp2d, kp3d, subject_velocity, K, "
                     f"meta).")

    rep.add_section("Clip metadata", "Flow magnitudes are in pixels per frame.")
    header = ["clip", *results[0][0].stats.keys()]
    rep.add_table([[res.name, *(_cell(v) for v in res.stats.values())] for res, _ in results], header=header)

    rep.add_section("Reproduce", "This command writes this page and every file it shows:")
    rep.add_code(command)
    rep.add_code(
        "import numpy as np, json\n"
        f"clip = np.load('{results[0][0].npz.name}')\n"
        "print(clip['flow'].shape, json.loads(str(clip['meta']))['labels'])"
    )
    return rep.save(out / "index.html")


def _add_real_section(rep: Any, real: Any) -> None:
    """The real-video section: the two-row preview, what each panel shows, the timings, the files."""
    from hmore.report.video_demo import PANEL_TEXT, VideoDemoResult

    rep.add_section("hmore on a real video")
    if not isinstance(real, VideoDemoResult):
        rep.add_text(str(real))
        return
    w, h = real.size
    rep.add_text(f"A man juggling a football (a clip from the SAM 2 repository, Apache-2.0; see the package's "
                 f"assets/video/CREDITS.md): {real.frames} frames at {w}x{h}, {real.people} tracked "
                 f"{'person' if real.people == 1 else 'people'}. Flow colours share one scale, "
                 f"{real.flow_scale:.1f} px/frame at full saturation (wheel below).")
    rep.add_figure(real.video, " | ".join(real.panels), poster=real.poster)
    rep.add_table([[k, PANEL_TEXT.get(k, "")] for k in real.panels], header=["panel", "what it shows"])
    total = sum(real.timings.values())
    rows = [[stage, round(sec, 2), round(real.frames / sec, 1) if sec > 0 else ""]
            for stage, sec in real.timings.items()]
    rows.append(["total", round(total, 2), round(real.frames / total, 1) if total > 0 else ""])
    rep.add_text("Time per stage on this machine (seconds, frames per second):")
    rep.add_table(rows, header=["stage", "seconds", "frames/s"])
    for note in real.notes:
        rep.add_text(f"Note: {note}.")
    files = ", ".join(p.name for p in real.files.values())
    rep.add_text(f"Saved beside this page: {files} (the formats of hmore priors and hmore lift). The same steps on "
                 f"any video: hmore priors VIDEO -o OUT, hmore flow VIDEO -o OUT, hmore lift VIDEO -o OUT.")


def _cell(v: Any) -> Any:
    if isinstance(v, float):
        return round(v, 3)
    return v
