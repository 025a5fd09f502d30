"""Video and image-folder reading (streaming, RGB uint8) and H.264 mp4 writing, through PyAV.

Frames are ``(H, W, 3)`` uint8 RGB arrays. Readers stream: one decoded frame is held at a time, so a long video never
sits in memory unless :func:`read_frames` is asked for it. Sources are

- a video file (anything FFmpeg decodes: mp4, avi, mov, mkv, ...),
- a folder of images (png, jpg, bmp, tif, webp), read in natural order (``f2.png`` before ``f10.png``),
- a single image file (one frame).

Errors of the input (missing, empty, unreadable or corrupt files) raise :class:`hmore.errors.InputError` with one
line naming the file. A video that breaks midway yields the frames decoded before the break and logs a warning.
"""

from __future__ import annotations

import logging
import math
import queue
import re
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import TypeVar

import av
import cv2
import numpy as np

from hmore.errors import InputError, UsageError
from hmore.io.atomic import atomic_path

logger = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")
VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv", ".flv")
DEFAULT_IMAGE_FPS = 30.0  # an image folder carries no frame rate; this is what callers get unless they pass one
T = TypeVar("T")


@dataclass(frozen=True)
class VideoInfo:
    """What is known about a frame source before decoding it.

    Attributes:
        path: the file or folder.
        kind: ``"video"`` for a video file, ``"images"`` for an image folder or a single image.
        frames: number of frames, or None when the container does not say.
        fps: frames per second (``DEFAULT_IMAGE_FPS`` for images, 30 when a video does not say).
        width: frame width in pixels.
        height: frame height in pixels.
        codec: the video codec's name, or ``"image"``.
    """

    path: Path
    kind: str
    frames: int | None
    fps: float
    width: int
    height: int
    codec: str

    @property
    def duration(self) -> float | None:
        """Length in seconds, when the frame count is known."""
        return None if self.frames is None else self.frames / self.fps


def natural_key(name: str) -> tuple:
    """Sort key that orders embedded numbers by value: ``img2`` < ``img10``."""
    return tuple(int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", name))


def list_images(folder: str | Path) -> list[Path]:
    """Image files directly inside ``folder``, naturally sorted."""
    folder = Path(folder)
    files = [p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES]
    return sorted(files, key=lambda p: natural_key(p.name))


def find_videos(folder: str | Path, *, recursive: bool = True) -> list[Path]:
    """Video files inside ``folder`` (recursively by default), naturally sorted by relative path."""
    folder = Path(folder)
    it = folder.rglob("*") if recursive else folder.iterdir()
    files = [p for p in it if p.is_file() and p.suffix.lower() in VIDEO_SUFFIXES]
    return sorted(files, key=lambda p: natural_key(str(p.relative_to(folder))))


def _check_exists(path: Path) -> None:
    if not path.exists():
        raise InputError(f"no such file or folder: {path}")


def _open_container(path: Path) -> av.container.InputContainer:
    if path.is_file() and path.stat().st_size == 0:
        raise InputError(f"empty video file: {path}")
    try:
        container = av.open(str(path), mode="r")
    except (av.FFmpegError, OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot open video {path}: {_short(exc)}") from None
    if not container.streams.video:
        container.close()
        raise InputError(f"no video stream in {path}")
    return container


def _short(exc: BaseException) -> str:
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


def _read_image(path: Path) -> np.ndarray:
    img = cv2.imread(str(path), cv2.IMREAD_COLOR)  # (H, W, 3) BGR; grey and RGBA images are converted
    if img is None:
        raise InputError(f"cannot read image {path} (corrupt or unsupported)")
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def probe_video(path: str | Path) -> VideoInfo:
    """Describe a video file, an image folder or a single image without decoding it all.

    Args:
        path: video file, folder of images, or one image file.

    Returns:
        A :class:`VideoInfo`.

    Raises:
        InputError: the path is missing, empty, holds no images, or is not a readable video.
    """
    path = Path(path)
    _check_exists(path)
    if path.is_dir() or path.suffix.lower() in IMAGE_SUFFIXES:
        files = _image_files(path)
        h, w = _read_image(files[0]).shape[:2]
        return VideoInfo(path=path, kind="images", frames=len(files), fps=DEFAULT_IMAGE_FPS, width=w, height=h,
                         codec="image")
    with _open_container(path) as container:
        stream = container.streams.video[0]
        rate = stream.average_rate or stream.guessed_rate or stream.base_rate
        fps = float(rate) if rate else 30.0
        frames = int(stream.frames) if stream.frames else None
        if frames is None and stream.duration and stream.time_base:
            frames = int(round(float(stream.duration * stream.time_base) * fps)) or None
        w, h = stream.codec_context.width, stream.codec_context.height
        if not w or not h:
            raise InputError(f"video {path} has no frame size (corrupt header)")
        if _first_frame_rotation(container, stream) % 180 == 90:
            w, h = h, w  # shown turned a quarter: frames come out (w, h) swapped
        return VideoInfo(path=path, kind="video", frames=frames, fps=fps, width=int(w), height=int(h),
                         codec=stream.codec_context.name)


def _first_frame_rotation(container: av.container.InputContainer, stream: av.video.stream.VideoStream) -> int:
    """Display rotation (degrees) of the first frame; 0 when it cannot be decoded (reading reports that)."""
    try:
        for frame in container.decode(stream):
            return int(round(_rotation(frame))) % 360
    except (av.FFmpegError, OSError):
        pass
    return 0


def _image_files(path: Path) -> list[Path]:
    if path.is_file():
        return [path]
    files = list_images(path)
    if not files:
        videos = find_videos(path, recursive=False)
        hint = f" (it holds {len(videos)} video file(s): pass one of them)" if videos else ""
        raise InputError(f"no images in folder {path}{hint}")
    return files


def resized_size(width: int, height: int, max_side: int | None) -> tuple[int, int]:
    """(width, height) scaled down so that the longer side is at most ``max_side`` (aspect kept; never enlarged)."""
    if max_side is None or max(width, height) <= max_side:
        return width, height
    s = max_side / max(width, height)
    return max(1, int(round(width * s))), max(1, int(round(height * s)))


def _select(indices: Iterator[tuple[int, np.ndarray]], *, stride: int, src_fps: float, fps: float | None,
            start: int, end: int | None) -> Iterator[np.ndarray]:
    """Pick frames from ``(source index, frame)`` pairs: range ``[start, end)``, then stride or fps resampling.

    With ``fps``, output frame k shows the source frame on screen at time ``k / fps`` after ``start``: frames are
    dropped when ``fps`` is below the source rate and repeated when above.
    """
    next_k = 0  # next output frame number (fps resampling)
    for i, frame in indices:
        if i < start:
            continue
        if end is not None and i >= end:
            return
        rel = i - start
        if fps is None:
            if rel % stride == 0:
                yield frame
            continue
        # output k shows the source frame on screen at time k / fps: index floor(k * src_fps / fps)
        while (src := int(math.floor(next_k * src_fps / fps + 1e-9))) <= rel:
            if src == rel:
                yield frame
            next_k += 1


def prefetch(items: Iterable[T], *, depth: int = 2) -> Iterator[T]:
    """``items`` produced by a background thread up to ``depth`` ahead of the consumer, in order.

    Decoding (PyAV, colour conversion, resizing) releases the GIL, so a video's next frames decode on another core
    while the caller works on this one. An exception of ``items`` is raised here, after the items before it; closing
    this generator early stops the thread (it finishes the item it is producing) and closes ``items``.
    """
    if depth < 1:
        raise UsageError(f"prefetch depth must be >= 1, got {depth}")
    slots: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()
    end = object()

    def put(entry: tuple) -> bool:
        while not stop.is_set():
            try:
                slots.put(entry, timeout=0.05)
                return True
            except queue.Full:
                continue
        return False

    def work() -> None:
        source = iter(items)
        try:
            for item in source:
                if not put((item, None)):
                    return
            put((end, None))
        except BaseException as exc:  # handed to the consumer, raised there
            put((end, exc))
        finally:
            close = getattr(source, "close", None)
            if close is not None:
                close()

    worker = threading.Thread(target=work, name="hmore-prefetch", daemon=True)
    worker.start()
    try:
        while True:
            item, exc = slots.get()
            if item is end:
                if exc is not None:
                    raise exc
                return
            yield item
    finally:
        stop.set()
        worker.join()


def iter_frames(path: str | Path, *, stride: int = 1, fps: float | None = None, start: int = 0,
                end: int | None = None, max_side: int | None = None) -> Iterator[np.ndarray]:
    """Stream the frames of a video, image folder or image as RGB uint8 ``(H, W, 3)`` arrays.

    Args:
        path: video file, image folder (natural order) or one image.
        stride: keep every ``stride``-th frame of the range (cannot be combined with ``fps``).
        fps: resample to this frame rate (the source frame on screen at each output time); None keeps the source rate.
        start: first source frame index.
        end: source frame index to stop before (None: to the end).
        max_side: scale frames down (aspect kept) so the longer side is at most this many pixels.

    Yields:
        ``(H, W, 3)`` uint8 RGB frames.

    Raises:
        UsageError: bad stride, fps, range or size.
        InputError: missing, empty, unreadable or corrupt input (a video that breaks midway instead stops with a
            logged warning after the frames decoded before the break).
    """
    if stride < 1:
        raise UsageError(f"stride must be >= 1, got {stride}")
    if fps is not None and not fps > 0:
        raise UsageError(f"fps must be > 0, got {fps}")
    if fps is not None and stride != 1:
        raise UsageError("give either stride or fps, not both")
    if start < 0 or (end is not None and end < start):
        raise UsageError(f"bad frame range start={start} end={end}")
    if max_side is not None and max_side < 2:
        raise UsageError(f"max_side must be >= 2, got {max_side}")
    path = Path(path)
    _check_exists(path)
    if path.is_dir() or path.suffix.lower() in IMAGE_SUFFIXES:
        source = _iter_images(path, max_side)
        src_fps = DEFAULT_IMAGE_FPS
    else:
        info = probe_video(path)
        src_fps = info.fps
        source = _iter_video(path, max_side, end)
    yield from _select(enumerate(source), stride=stride, src_fps=src_fps, fps=fps, start=start, end=end)


def _iter_images(path: Path, max_side: int | None) -> Iterator[np.ndarray]:
    files = _image_files(path)
    size = None
    for f in files:
        img = _read_image(f)
        h, w = img.shape[:2]
        if size is None:
            size = (w, h)
        elif (w, h) != size:
            raise InputError(f"image {f} is {w}x{h}, but the folder's first image is {size[0]}x{size[1]}")
        tw, th = resized_size(w, h, max_side)
        if (tw, th) != (w, h):
            img = cv2.resize(img, (tw, th), interpolation=cv2.INTER_AREA)
        yield img


def _iter_video(path: Path, max_side: int | None, end: int | None) -> Iterator[np.ndarray]:
    container = _open_container(path)
    try:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        rate = stream.average_rate or stream.guessed_rate
        n = 0
        first_pts = None
        broken: str | None = None
        try:
            for packet in container.demux(stream):
                if packet.is_corrupt:  # a packet cut short by truncation: stop before it decodes into garbage
                    broken = "corrupt or truncated packet"
                    break
                for frame in packet.decode():  # the final empty packet flushes the decoder
                    if first_pts is None:
                        first_pts = frame.pts
                    yield _to_rgb(frame, max_side)
                    n += 1
                    if end is not None and n >= end:
                        return
        except (av.FFmpegError, OSError) as exc:
            broken = _short(exc)
        if broken is not None:
            # Frames still buffered in the decoder came from whole packets, but the lost packet leaves a hole in
            # display order: keep only the run that continues without a gap, so frame k stays frame k.
            try:
                for frame in stream.codec_context.decode(None):
                    tb = frame.time_base or stream.time_base  # flushed frames may carry no time base
                    if rate and tb and frame.pts is not None and first_pts is not None:
                        idx = round(float((frame.pts - first_pts) * tb * rate))
                        if idx != n:
                            break
                    yield _to_rgb(frame, max_side)
                    n += 1
            except (av.FFmpegError, OSError):
                pass
        if n == 0:
            raise InputError(f"cannot decode video {path}: {broken or 'no frames'}")
        if broken is not None:
            logger.warning("video %s breaks after frame %d (%s); keeping the frames before it", path, n, broken)
        elif stream.frames and n < stream.frames:
            logger.warning("video %s ends after %d of its %d frames (truncated?)", path, n, stream.frames)
    finally:
        container.close()


def _to_rgb(frame: av.VideoFrame, max_side: int | None) -> np.ndarray:
    """The frame as shown: RGB ``(H, W, 3)``, scaled down, turned by its display rotation (phone videos)."""
    tw, th = resized_size(frame.width, frame.height, max_side)
    if (tw, th) != (frame.width, frame.height):
        arr = frame.to_ndarray(width=tw, height=th, format="rgb24", interpolation="AREA")  # (H, W, 3)
    else:
        arr = frame.to_ndarray(format="rgb24")  # (H, W, 3)
    quarter_turns = int(round(_rotation(frame) / 90)) % 4  # counter-clockwise, as the display matrix says
    return np.ascontiguousarray(np.rot90(arr, k=quarter_turns)) if quarter_turns else arr


def _rotation(frame: av.VideoFrame) -> float:
    try:
        return float(frame.rotation or 0)
    except (AttributeError, ValueError, TypeError):  # older PyAV, or no display matrix
        return 0.0


def read_frames(path: str | Path, *, stride: int = 1, fps: float | None = None, start: int = 0,
                end: int | None = None, max_side: int | None = None) -> np.ndarray:
    """All selected frames at once: ``(T, H, W, 3)`` uint8 RGB. Same arguments as :func:`iter_frames`.

    An empty selection (e.g. ``start`` past the end) gives ``(0, H, W, 3)``.
    """
    frames = list(iter_frames(path, stride=stride, fps=fps, start=start, end=end, max_side=max_side))
    if frames:
        return np.stack(frames)  # (T, H, W, 3)
    info = probe_video(path)
    w, h = resized_size(info.width, info.height, max_side)
    return np.zeros((0, h, w, 3), np.uint8)


def _as_rgb(frame: np.ndarray) -> np.ndarray:
    frame = np.asarray(frame)
    if frame.ndim == 2:
        frame = np.repeat(frame[:, :, None], 3, axis=2)
    if frame.ndim != 3 or frame.shape[2] not in (3, 4):
        raise ValueError(f"frames must be (H, W, 3) RGB or (H, W) grey, got shape {frame.shape}")
    if frame.dtype != np.uint8:
        raise ValueError(f"frames must be uint8, got {frame.dtype}")
    return frame[:, :, :3]


X264_PRESETS = ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow")


def write_video(path: str | Path, frames: Iterable[np.ndarray], fps: float, *, crf: int = 23,
                preset: str = "veryfast") -> Path:
    """Encode RGB uint8 frames as an H.264 mp4 (yuv420p, faststart), atomically.

    Frames are encoded as they come, so a generator keeps memory flat. Odd sizes are padded to even by repeating
    the last row/column (yuv420p needs even sizes).

    Args:
        path: output ``.mp4`` path (parent folders are made).
        frames: ``(H, W, 3)`` (or grey ``(H, W)``) uint8 frames, all the same size.
        fps: frame rate.
        crf: x264 quality (lower is better; 23 is the default).
        preset: x264 speed preset (``ultrafast`` ... ``veryslow``): faster presets give larger files at the same
            quality (``hmore flow``'s preview uses ``ultrafast``: ~2 ms a 1024x192 frame against ~8 for
            ``veryfast``, beside a network that takes ~60).

    Returns:
        ``path``.

    Raises:
        ValueError: no frames, frames of different sizes, wrong dtype or shape, fps not positive.
    """
    if not fps > 0:
        raise ValueError(f"fps must be > 0, got {fps}")
    if preset not in X264_PRESETS:
        raise ValueError(f"preset must be one of {', '.join(X264_PRESETS)}, got {preset!r}")
    path = Path(path)
    rate = Fraction(fps).limit_denominator(1001)
    with atomic_path(path, suffix=".mp4") as tmp:
        with av.open(str(tmp), mode="w", format="mp4", options={"movflags": "+faststart"}) as container:
            stream = None
            size = None
            n = 0
            for frame in frames:
                rgb = _as_rgb(frame)
                h, w = rgb.shape[:2]
                if stream is None:
                    size = (h, w)
                    stream = container.add_stream("libx264", rate=rate)
                    stream.width, stream.height = w + w % 2, h + h % 2
                    stream.pix_fmt = "yuv420p"
                    stream.options = {"crf": str(crf), "preset": preset}
                elif (h, w) != size:
                    raise ValueError(f"frame {n} is {w}x{h}, but the first frame is {size[1]}x{size[0]}")
                if h % 2 or w % 2:
                    rgb = np.pad(rgb, ((0, h % 2), (0, w % 2), (0, 0)), mode="edge")
                vf = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
                vf.pts = n
                for packet in stream.encode(vf):
                    container.mux(packet)
                n += 1
            if stream is None:
                raise ValueError(f"no frames to write to {path}")
            for packet in stream.encode():
                container.mux(packet)
    logger.debug("wrote %d frames to %s", n, path)
    return path
