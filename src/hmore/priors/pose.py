"""2D pose estimators: an interface, the MediaPipe BlazePose backend (offline), and a file backend.

Every estimator returns, per frame, a list of people as COCO-17 keypoints ``(17, 3)``: x, y in pixels of the frame it
was given and a per-joint confidence in [0, 1].

MediaPipe's legacy ``Pose`` finds one person per image. :class:`MediaPipePose` finds several this way:

1. crops around the boxes it is given (from the tracks of the previous frame, or the user) are searched first, each
   person found is blanked out (its segmentation mask painted grey) before the next search;
2. when searching for new people, crops around the boxes of OpenCV's HOG people detector (built in, offline) are
   searched next (``detector="hog"``, the default): this finds small, distant pedestrians that BlazePose's own
   detector, made for people near the camera, misses;
3. then the whole frame is searched again and again, blanking each new person, until nobody more is found or
   ``max_people`` is reached.

It handles well 1-3 people who do not occlude each other much and are at least ~100 px tall: both people of the NTU
two-person clip are found while apart; while they hug, the one behind is often lost for a few frames (the tracker
interpolates short gaps). Upright pedestrians down to ~100 px tall are found through the HOG boxes; people smaller,
sitting, or beyond ``max_people`` (default 6) are missed: give boxes or use a keypoint file (:class:`FilePose`).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

import cv2
import numpy as np

from hmore.errors import UsageError
from hmore.priors.tracking import box_iou
from hmore.skeleton import BLAZEPOSE33, COCO17, convert

logger = logging.getLogger(__name__)

HOG_MAX_UPSCALE = 4.0  # frames needing more enlargement than this to fit the HOG window skip the detector


@dataclass(frozen=True)
class PersonEstimate:
    """One person found in a frame.

    Attributes:
        kp: ``(17, 3)`` float32 COCO-17 x, y (pixels of the input frame), confidence.
        box: ``(4,)`` float32 x0, y0, x1, y1 of the confident keypoints (input pixels).
        mask: ``(H, W)`` float32 person probability at the input frame's size, or None (no segmentation).
        score: mean joint confidence.
    """

    kp: np.ndarray
    box: np.ndarray
    mask: np.ndarray | None
    score: float


@runtime_checkable
class PoseEstimator(Protocol):
    """What hmore needs from a 2D pose backend."""

    name: str
    version: str

    def estimate(self, frame_rgb: np.ndarray, boxes: Sequence[np.ndarray] | None = None) -> list[np.ndarray]:
        """COCO-17 ``(17, 3)`` keypoints (x, y pixels, confidence) of each person in ``frame_rgb (H, W, 3)``.

        ``boxes`` (x0, y0, x1, y1), when given, say where people are expected.
        """
        ...


def blazepose_to_coco17(landmarks: np.ndarray) -> np.ndarray:
    """BlazePose-33 ``(..., 33, 3)`` (x, y, visibility) -> COCO-17 ``(..., 17, 3)`` (x, y, confidence)."""
    return convert(np.asarray(landmarks, np.float32), BLAZEPOSE33, COCO17, has_score=True).astype(np.float32)


def _contains(outer: np.ndarray, inner: np.ndarray) -> bool:
    """Whether the centre of box ``inner`` lies inside box ``outer``."""
    cx, cy = 0.5 * (inner[0] + inner[2]), 0.5 * (inner[1] + inner[3])
    return bool(outer[0] <= cx <= outer[2] and outer[1] <= cy <= outer[3])


def _expand_box(box: np.ndarray, margin: float, width: int, height: int, min_size: int = 32) -> tuple[int, ...]:
    """Integer crop x0, y0, x1, y1 around ``box`` grown by ``margin`` of its size per side, clipped to the image."""
    x0, y0, x1, y1 = (float(v) for v in box)
    w, h = max(x1 - x0, min_size), max(y1 - y0, min_size)
    cx, cy = 0.5 * (x0 + x1), 0.5 * (y0 + y1)
    half_w, half_h = 0.5 * w * (1 + 2 * margin), 0.5 * h * (1 + 2 * margin)
    half_w = max(half_w, 0.5 * half_h)  # people are tall: keep the crop at least half as wide as high
    return (max(0, int(cx - half_w)), max(0, int(cy - half_h)), min(width, int(np.ceil(cx + half_w))),
            min(height, int(np.ceil(cy + half_h))))


class MediaPipePose:
    """MediaPipe BlazePose (``mediapipe==0.10.21``, ``model_complexity=1``, the only model shipped offline) with
    person segmentation, several people by crops and blanking (see the module docstring).

    Args:
        max_people: most people searched for per frame.
        min_detection_confidence: MediaPipe's person-detector threshold.
        min_score: people whose mean joint confidence is below this are discarded.
        crop_margin: crops around given boxes grow by this fraction of the box size per side.
        segmentation: also return person masks (``PersonEstimate.mask``).
        mask_threshold: mask probability above which a pixel is blanked before the next search.
        max_overlap: a new person whose box overlaps an earlier one by more IoU than this is a duplicate.
        detector: ``"hog"`` (OpenCV's HOG + linear SVM people detector) proposes boxes when searching for new
            people; ``"none"`` relies on BlazePose's own detector on the whole frame.
        detector_max_side: the HOG detector runs on the frame scaled down to this longer side (speed).
    """

    name = "mediapipe_pose"

    def __init__(
        self,
        *,
        max_people: int = 6,
        min_detection_confidence: float = 0.5,
        min_score: float = 0.3,
        crop_margin: float = 0.3,
        segmentation: bool = True,
        mask_threshold: float = 0.3,
        max_overlap: float = 0.5,
        detector: str = "hog",
        detector_max_side: int = 768,
    ) -> None:
        if max_people < 1:
            raise UsageError(f"max_people must be >= 1, got {max_people}")
        if detector not in ("hog", "none"):
            raise UsageError(f"unknown person detector {detector!r}; known: hog, none")
        try:
            import mediapipe as mp
        except ImportError as exc:  # pragma: no cover - depends on the environment
            raise UsageError("the MediaPipe backend needs `pip install mediapipe==0.10.21` (hmore[priors])") from exc
        self.version = f"mediapipe-{mp.__version__}-pose-full" + ("+hog" if detector == "hog" else "")
        self.max_people = max_people
        self.min_score = min_score
        self.crop_margin = crop_margin
        self.segmentation = segmentation
        self.mask_threshold = mask_threshold
        self.max_overlap = max_overlap
        self.detector = detector
        self.detector_max_side = detector_max_side
        self._hog = None
        self._warned_small = False
        if detector == "hog":
            self._hog = cv2.HOGDescriptor()
            self._hog.setSVMDetector(cv2.HOGDescriptor_getDefaultPeopleDetector())
        # static_image_mode: every call is an independent image. Crops change size from call to call, and the
        # tracking mode's segmentation smoothing fails on a size change (RET_CHECK rows == previous rows).
        self._pose = mp.solutions.pose.Pose(
            static_image_mode=True, model_complexity=1, enable_segmentation=segmentation,
            min_detection_confidence=min_detection_confidence,
        )

    def close(self) -> None:
        self._pose.close()

    def __enter__(self) -> MediaPipePose:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _run(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray | None] | None:
        """One BlazePose pass on an RGB image: ``(landmarks (33, 3) pixels + visibility, mask (H, W) or None)``."""
        result = self._pose.process(np.ascontiguousarray(image))
        if result.pose_landmarks is None:
            return None
        h, w = image.shape[:2]
        lm = np.array([[p.x * w, p.y * h, p.visibility] for p in result.pose_landmarks.landmark], np.float32)
        mask = result.segmentation_mask if self.segmentation else None
        return lm, (None if mask is None else np.asarray(mask, np.float32))

    def estimate_people(
        self, frame_rgb: np.ndarray, boxes: Sequence[np.ndarray] | None = None, *, search: bool = True
    ) -> list[PersonEstimate]:
        """Find people in ``frame_rgb (H, W, 3)`` uint8.

        Args:
            frame_rgb: the frame.
            boxes: x0, y0, x1, y1 boxes searched first, in order (see the module docstring).
            search: then search the whole frame for more people (False: only the boxes; a video pipeline can
                search every few frames to save time).
        """
        frame = np.asarray(frame_rgb)
        if frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
            raise ValueError(f"frame must be (H, W, 3) uint8 RGB, got {frame.shape} {frame.dtype}")
        H, W = frame.shape[:2]
        work = frame.copy()  # people found are blanked in it
        blanked = np.zeros((H, W), bool)
        people: list[PersonEstimate] = []

        def accept(lm: np.ndarray, mask: np.ndarray | None, x0: int, y0: int, expect: np.ndarray | None) -> bool:
            lm = lm.copy()
            lm[:, 0] += x0
            lm[:, 1] += y0
            kp = blazepose_to_coco17(lm)
            score = float(kp[:, 2].mean())
            ok = kp[:, 2] >= 0.3
            if score < self.min_score or ok.sum() < 3:
                return False
            xy = kp[ok, :2]
            box = np.array([xy[:, 0].min(), xy[:, 1].min(), xy[:, 0].max(), xy[:, 1].max()], np.float32)
            if people and box_iou(box[None], np.stack([p.box for p in people])).max() > self.max_overlap:
                return False
            if expect is not None and box_iou(box[None], np.asarray(expect)[None]).max() < 0.1:
                return False  # the crop found somebody else than the person expected there
            xi = np.clip(np.round(xy[:, 0]).astype(int), 0, W - 1)
            yi = np.clip(np.round(xy[:, 1]).astype(int), 0, H - 1)
            if blanked[yi, xi].mean() > self.max_overlap:
                return False  # mostly on people already found: a mix of them, not a new person
            full = None
            if mask is not None:
                full = np.zeros((H, W), np.float32)
                full[y0 : y0 + mask.shape[0], x0 : x0 + mask.shape[1]] = mask
            people.append(PersonEstimate(kp=kp, box=box, mask=full, score=score))
            self._blank(work, blanked, full, box)
            return True

        given = list(boxes or ())
        n_given = len(given)
        if search and self._hog is not None:
            given += self.detect_boxes(frame)
        for k, b in enumerate(given):
            if len(people) >= self.max_people:
                break
            b = np.asarray(b, np.float32)
            if k >= n_given and any(_contains(b, p.box) for p in people):
                continue  # a detector box around somebody already found
            x0, y0, x1, y1 = _expand_box(b, self.crop_margin, W, H)
            if x1 - x0 < 16 or y1 - y0 < 16:
                continue
            found = self._run(work[y0:y1, x0:x1])
            if found is not None:
                accept(found[0], found[1], x0, y0, b)
        while search and len(people) < self.max_people:
            found = self._run(work)
            if found is None or not accept(found[0], found[1], 0, 0, None):
                break
        return people

    def detect_boxes(self, frame_rgb: np.ndarray) -> list[np.ndarray]:
        """Person boxes x0, y0, x1, y1 from the HOG detector (empty without one), most confident first."""
        if self._hog is None:
            return []
        H, W = frame_rgb.shape[:2]
        s = min(1.0, self.detector_max_side / max(H, W))
        win_w, win_h = self._hog.winSize  # 64 x 128
        # OpenCV's detectMultiScale corrupts the heap (SIGSEGV/SIGABRT) or raises on images smaller than its window:
        # small frames are enlarged to the window (at most HOG_MAX_UPSCALE times), the rest skip the detector.
        up = max(win_w / (W * s), win_h / (H * s))
        if up > 1.0:
            if up > HOG_MAX_UPSCALE:
                if not self._warned_small:
                    logger.warning("frames of %dx%d px are too small for the HOG person detector (%dx%d window): "
                                   "searching the whole frame with BlazePose only", W, H, win_w, win_h)
                    self._warned_small = True
                return []
            s *= up
        img = frame_rgb
        if s != 1.0:
            size = (max(win_w, math.ceil(W * s)), max(win_h, math.ceil(H * s)))
            img = cv2.resize(frame_rgb, size, interpolation=cv2.INTER_AREA if s < 1.0 else cv2.INTER_LINEAR)
        sx, sy = img.shape[1] / W, img.shape[0] / H  # the scales actually used
        rects, weights = self._hog.detectMultiScale(img, winStride=(8, 8), padding=(8, 8), scale=1.1)
        if len(rects) == 0:
            return []
        weights = np.asarray(weights, np.float64).ravel()
        keep = cv2.dnn.NMSBoxes([list(map(int, r)) for r in rects], weights.tolist(), 0.3, 0.4)
        out = []
        for i in sorted(np.asarray(keep).ravel().tolist(), key=lambda i: -weights[i]):
            x, y, w, h = (float(v) for v in rects[i])
            out.append(np.array([x / sx, y / sy, (x + w) / sx, (y + h) / sy], np.float32))
        return out

    def _blank(self, work: np.ndarray, blanked: np.ndarray, mask: np.ndarray | None, box: np.ndarray) -> None:
        """Paint a found person grey so the next search finds somebody else."""
        if mask is not None:
            region = cv2.dilate((mask > self.mask_threshold).astype(np.uint8), np.ones((9, 9), np.uint8)) > 0
        else:
            region = np.zeros(work.shape[:2], bool)
        if region.sum() < 0.3 * max((box[2] - box[0]) * (box[3] - box[1]), 1.0):  # weak mask: blank the box too
            x0, y0, x1, y1 = _expand_box(box, 0.1, work.shape[1], work.shape[0], min_size=4)
            region[y0:y1, x0:x1] = True
        work[region] = 127
        blanked |= region

    def estimate(self, frame_rgb: np.ndarray, boxes: Sequence[np.ndarray] | None = None) -> list[np.ndarray]:
        """COCO-17 ``(17, 3)`` keypoints of each person found (see :class:`PoseEstimator`)."""
        return [p.kp for p in self.estimate_people(frame_rgb, boxes)]


class FilePose:
    """Keypoints read from a file (COCO results, AlphaPose, OpenPose, pyskl, hmore priors) served frame by frame.

    Args:
        path: the keypoint file or OpenPose folder (see :func:`hmore.io.keypoints.read_keypoints`).
        layout: the file's joint layout, None to guess from the joint count.
    """

    name = "file"

    def __init__(self, path: str | Path, *, layout: str | None = None) -> None:
        from hmore.io.keypoints import read_keypoints

        self.sequence = read_keypoints(path, layout=layout, track=False)
        self.version = f"file-{self.sequence.source}"
        self._t = 0

    def estimate(self, frame_rgb: np.ndarray, boxes: Sequence[np.ndarray] | None = None) -> list[np.ndarray]:
        """The next frame's people from the file (frames are served in order; past the end: nobody)."""
        t = self._t
        self._t += 1
        if t >= self.sequence.num_frames:
            return []
        return [self.sequence.kp2d[t, p] for p in np.flatnonzero(self.sequence.valid[t])]


def create_estimator(name: str, **kwargs: object) -> PoseEstimator:
    """Build a pose backend by name: ``"mediapipe"`` or ``"file"`` (``path=...``)."""
    if name in ("mediapipe", "mediapipe_pose"):
        return MediaPipePose(**kwargs)  # type: ignore[arg-type]
    if name == "file":
        if "path" not in kwargs:
            raise UsageError("the file pose backend needs a keypoint file (path=...)")
        return FilePose(**kwargs)  # type: ignore[arg-type]
    raise UsageError(f"unknown pose backend {name!r}; known: mediapipe, file")

