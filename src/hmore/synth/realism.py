"""Making generated clips look more like real footage (issue 13): real-photo backgrounds, camera shake, and the
degradations of real cameras and codecs (sensor noise, defocus/motion blur, JPEG compression, lighting changes).

* :func:`shake_camera` jitters a camera track's rotation (a hand-held camera); the renderer then gives the exact
  flow and camera-induced flow of the shaken camera (``render_clip(camera_shake=...)``).
* :class:`PhotoBank` holds background photos cut from real videos with their people painted out (person masks from
  ``hmore priors``), and :func:`composite_background` puts one behind a rendered clip's people, moving it with the
  camera (a homography fitted to the clip's camera-induced flow, exact for a turning camera).
* :func:`degrade_pair` applies noise, blur, JPEG and a lighting change to a frame pair, independently per frame
  where a real camera would (noise, compression) and alike where it would not (blur strength).

Only the pixels change: the ground-truth flow, masks and keypoints of the clip stay exact for the people (a replaced
background moves by the fitted homography; its exact flow is not needed when training targets are human-centric).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from hmore.synth.camera import CameraTrack


@dataclass(frozen=True)
class RealismConfig:
    """Probabilities and ranges of the realism steps (ours; each drawn per clip or pair).

    Attributes:
        background_prob: a clip's static background is replaced by a real photo (needs a :class:`PhotoBank`).
        noise_prob: Gaussian sensor noise is added; ``noise_sigma`` its (min, max) standard deviation (0-255).
        blur_prob: Gaussian blur; ``blur_sigma`` its (min, max) sigma in pixels (the same for both frames).
        jpeg_prob: JPEG compression; ``jpeg_quality`` its (min, max) quality, drawn per frame.
        light_prob: frame t+1 gets a global gain and offset, ``light_gain`` and ``light_offset`` ranges (a lighting
            change between frames: brightness constancy does not hold on real video).
    """

    background_prob: float = 0.0
    noise_prob: float = 0.0
    noise_sigma: tuple[float, float] = (1.0, 6.0)
    blur_prob: float = 0.0
    blur_sigma: tuple[float, float] = (0.3, 1.2)
    jpeg_prob: float = 0.0
    jpeg_quality: tuple[int, int] = (35, 90)
    light_prob: float = 0.0
    light_gain: tuple[float, float] = (0.92, 1.08)
    light_offset: tuple[float, float] = (-8.0, 8.0)

    def __post_init__(self) -> None:
        for name in ("background_prob", "noise_prob", "blur_prob", "jpeg_prob", "light_prob"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"RealismConfig.{name} must be in [0, 1], got {getattr(self, name)}")
        for name in ("noise_sigma", "blur_sigma", "jpeg_quality", "light_gain", "light_offset"):
            lo, hi = getattr(self, name)
            if lo > hi:
                raise ValueError(f"RealismConfig.{name} must be (min, max) with min <= max, got {(lo, hi)}")
        if not 1 <= self.jpeg_quality[0] <= self.jpeg_quality[1] <= 100:
            raise ValueError(f"RealismConfig.jpeg_quality must lie in 1-100, got {self.jpeg_quality}")


# ---- camera shake -----------------------------------------------------------------------------------------------


def shake_camera(camera: CameraTrack, rng: np.random.Generator, degrees: float) -> CameraTrack:
    """The camera with a hand-held wobble: a random walk of small turns about its x and y axes (and a third of it
    about z), ``degrees`` standard deviation per frame, added to every frame's rotation about the camera centre."""
    if degrees <= 0:
        return camera
    T = camera.num_frames
    steps = rng.normal(0.0, np.deg2rad(degrees), size=(T, 3)) * np.array([1.0, 1.0, 1.0 / 3.0])
    angles = np.cumsum(steps, axis=0)
    angles -= angles.mean(axis=0)  # wobble about the planned path, not a drift away from it
    centres = camera.centres
    rots = []
    for t in range(T):
        jitter, _ = cv2.Rodrigues(angles[t].reshape(3, 1))
        rots.append(jitter @ camera.R[t])  # a turn of the camera frame about its own centre
    R = np.stack(rots)
    t_vec = -np.einsum("tij,tj->ti", R, centres)
    return CameraTrack(K=camera.K, R=np.ascontiguousarray(R), t=np.ascontiguousarray(t_vec), size=camera.size)


# ---- real-photo backgrounds -------------------------------------------------------------------------------------


class PhotoBank:
    """Background photos from real videos, people painted out.

    Args:
        sources: ``(video, priors.npz or None)`` pairs; frames come from the video, person masks from the priors
            (without priors the whole frame is used as it is: only give videos without people then).
        per_video: frames taken from each video (evenly spaced over what the priors cover).
        max_side: photos are stored with this longer side.
    """

    def __init__(self, sources: list[tuple[Path, Path | None]], *, per_video: int = 4, max_side: int = 384) -> None:
        from hmore.io.video import iter_frames, probe_video

        self.photos: list[np.ndarray] = []
        for video, priors_path in sources:
            masks, frame_index = None, None
            if priors_path is not None:
                from hmore.priors.pipeline import load_priors

                pri = load_priors(priors_path)
                masks, frame_index = pri.masks, pri.frame_index
            total = len(frame_index) if frame_index is not None else (probe_video(video).frames or per_video)
            picks = np.unique(np.linspace(0, max(total - 1, 0), per_video).round().astype(int))
            for k in picks:
                f = int(frame_index[k]) if frame_index is not None else int(k)
                frame = next(iter(iter_frames(video, start=f, end=f + 1, max_side=max_side)), None)
                if frame is None:
                    continue
                if masks is not None:
                    frame = paint_out(frame, masks[k])
                self.photos.append(frame)
        if not self.photos:
            raise ValueError("PhotoBank: no photo could be read from the sources")

    def __len__(self) -> int:
        return len(self.photos)

    def crop(self, rng: np.random.Generator, size: tuple[int, int]) -> np.ndarray:
        """A random photo, randomly flipped, scaled to cover (H, W) with a random crop: (H, W, 3) uint8."""
        photo = self.photos[int(rng.integers(len(self.photos)))]
        if rng.random() < 0.5:
            photo = photo[:, ::-1]
        h, w = size
        scale = max(h / photo.shape[0], w / photo.shape[1]) * float(rng.uniform(1.0, 1.4))
        big = cv2.resize(np.ascontiguousarray(photo), (max(w, round(photo.shape[1] * scale)),
                                                       max(h, round(photo.shape[0] * scale))),
                         interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
        y0 = int(rng.integers(0, big.shape[0] - h + 1))
        x0 = int(rng.integers(0, big.shape[1] - w + 1))
        return np.ascontiguousarray(big[y0:y0 + h, x0:x0 + w])


def paint_out(frame: np.ndarray, labels: np.ndarray, margin: float = 0.02) -> np.ndarray:
    """``frame`` (H, W, 3) with every person of ``labels`` (any size; > 0 is a person, dilated by ``margin`` of the
    diagonal) filled in from the surroundings (OpenCV Telea inpainting)."""
    h, w = frame.shape[:2]
    person = cv2.resize((labels > 0).astype(np.uint8), (w, h), interpolation=cv2.INTER_NEAREST)
    if not person.any():
        return frame
    r = max(1, int(round(margin * np.hypot(h, w))))
    person = cv2.dilate(person, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1)))
    return cv2.inpaint(np.ascontiguousarray(frame), person, 5, cv2.INPAINT_TELEA)


def background_homographies(camera_flow: np.ndarray, static: np.ndarray) -> np.ndarray:
    """(T, 3, 3) homographies from frame 0 to each frame t, chained from per-pair fits of the camera-induced flow
    (T-1, H, W, 2) on the static background pixels ``static`` (T, H, W) (all pixels where too few are static)."""
    T = camera_flow.shape[0] + 1
    h, w = camera_flow.shape[1:3]
    out = np.tile(np.eye(3), (T, 1, 1))
    ys, xs = np.mgrid[2:h - 2:4, 2:w - 2:4]
    for t in range(T - 1):
        sel = static[t, ys, xs]
        if sel.sum() < 16:
            sel = np.ones_like(sel)
        src = np.stack([xs[sel], ys[sel]], -1).astype(np.float32)
        dst = src + camera_flow[t, ys[sel], xs[sel]]
        hom = np.eye(3)
        if np.abs(dst - src).max() > 1e-6:
            fit, _ = cv2.findHomography(src, dst, 0)
            if fit is not None and np.isfinite(fit).all():
                hom = fit
        out[t + 1] = hom @ out[t]
    return out


def composite_background(frames: np.ndarray, static: np.ndarray, camera_flow: np.ndarray,
                         photo: np.ndarray) -> np.ndarray:
    """The clip's frames (T, H, W, 3) with the static background (``static`` (T, H, W) bool) replaced by ``photo``
    (H, W, 3), moved from frame to frame by the homography of the camera-induced flow (T-1, H, W, 2)."""
    h, w = frames.shape[1:3]
    homs = background_homographies(camera_flow, static)
    out = frames.copy()
    for t in range(frames.shape[0]):
        seen = photo if np.allclose(homs[t], np.eye(3)) else cv2.warpPerspective(
            photo, homs[t], (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
        out[t][static[t]] = seen[static[t]]
    return out


# ---- camera and codec degradations ------------------------------------------------------------------------------


def degrade_pair(image1: np.ndarray, image2: np.ndarray, rng: np.random.Generator,
                 config: RealismConfig) -> tuple[np.ndarray, np.ndarray]:
    """(H, W, 3) uint8 frames t and t+1 after blur, lighting change, sensor noise and JPEG (each with its
    probability in ``config``). The geometry is unchanged, so the flow ground truth stays valid."""
    a, b = image1.astype(np.float32), image2.astype(np.float32)
    if rng.random() < config.blur_prob:
        s = float(rng.uniform(*config.blur_sigma))
        a, b = cv2.GaussianBlur(a, (0, 0), s), cv2.GaussianBlur(b, (0, 0), s * float(rng.uniform(0.8, 1.25)))
    if rng.random() < config.light_prob:
        b = b * float(rng.uniform(*config.light_gain)) + float(rng.uniform(*config.light_offset))
    if rng.random() < config.noise_prob:
        s = float(rng.uniform(*config.noise_sigma))
        a = a + rng.normal(0.0, s, a.shape).astype(np.float32)
        b = b + rng.normal(0.0, s, b.shape).astype(np.float32)
    a, b = np.clip(np.rint(a), 0, 255).astype(np.uint8), np.clip(np.rint(b), 0, 255).astype(np.uint8)
    if rng.random() < config.jpeg_prob:
        a, b = (_jpeg(x, int(rng.integers(config.jpeg_quality[0], config.jpeg_quality[1] + 1))) for x in (a, b))
    return a, b


def _jpeg(image: np.ndarray, quality: int) -> np.ndarray:
    ok, buf = cv2.imencode(".jpg", np.ascontiguousarray(image[..., ::-1]), [cv2.IMWRITE_JPEG_QUALITY, quality])
    return cv2.imdecode(buf, cv2.IMREAD_COLOR)[..., ::-1].copy() if ok else image


__all__ = ["PhotoBank", "RealismConfig", "background_homographies", "composite_background", "degrade_pair",
           "paint_out", "shake_camera"]
