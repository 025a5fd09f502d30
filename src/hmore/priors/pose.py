"""2D pose estimators: an interface, the multi-person MediaPipe BlazePose backend (offline), and a file backend.

Every estimator returns, per frame, a list of people as COCO-17 keypoints ``(17, 3)``: x, y in pixels of the frame it
was given and a per-joint confidence in [0, 1]; a joint the backend does not see is ``(0, 0, 0)``.

:class:`MediaPipePose` runs MediaPipe's person detector and landmark model as two graphs
(:mod:`hmore.priors.blazepose`), so it finds every person the detector proposes instead of MediaPipe's one: people
tracked from the previous frame first, then detections on the whole frame and on tiles (small people), then what the
person segmentation covers but nobody found explains (see the class). Joints are reported only where the landmark
model sees them, and implausible fits are rejected (:mod:`hmore.priors.plausibility`).

Limits: people the detector cannot see at any tile size (much smaller than ~40 px, or seen only from far behind an
occluder) are missed; two people hugging can merge into one fit for a few frames (the tracker interpolates short
gaps); more than ``max_people`` (default 20) people per frame are cut. Give boxes or use a keypoint file
(:class:`FilePose`) for crowds.
"""

from __future__ import annotations

import logging
import math
import queue
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Protocol, runtime_checkable

import cv2
import numpy as np

from hmore.errors import UsageError
from hmore.priors.blazepose import BlazePoseDetector, BlazePoseLandmarker, Detection, Landmarks, Roi, settle
from hmore.priors.masks import split_person_masks
from hmore.priors.native_log import filter_native_stderr
from hmore.priors.plausibility import CONFIDENT, implausible, landmarks_to_coco, torso_axis
from hmore.priors.tracking import box_iou, keypoint_box
from hmore.skeleton import BLAZEPOSE33, COCO17, convert

logger = logging.getLogger(__name__)

DETECTORS = ("blazepose", "hog", "none")
MIN_SIDE = 16  # frames (and ROIs) with a shorter side than this have nobody in them that the models could see
MIN_TILE = 96  # smallest tile side (pixels)
HOG_MIN_SIDE = 128  # OpenCV's HOG people detector needs at least its 64x128 window (it crashes on smaller frames)
RESIDUAL_MIN_AREA = 0.002  # mask components smaller than this fraction of the frame propose nobody
TURNS = (0.0, np.pi, np.pi / 2, -np.pi / 2)  # body directions tried on regions without one: upright, upside down, lying
MAX_NEW_TILT = np.radians(60)  # people first seen in a tile must be this close to upright (see MediaPipePose)
PART_OF_COMPONENT = 4.0  # a lone fit whose box is this many times smaller than its segment's box is a part fit


def component_roi(box: np.ndarray, width: int, height: int, *, scale: float) -> Roi:
    """The ROI for a person segment with box x0, y0, x1, y1. A segment cut by the frame's edge is a person who goes
    on beyond it: the box is extended past that edge (by its height above or below, by half its width left or
    right), so that the landmark model sees the visible part where a whole person's would be and reports the rest
    outside the frame (missing) instead of squeezing a whole skeleton into the visible part."""
    x0, y0, x1, y1 = (float(v) for v in box)
    w, h = x1 - x0, y1 - y0
    top, bottom = y0 <= 1, y1 >= height - 1
    if top and not bottom:
        y0 -= h
    elif bottom and not top:
        y1 += h
    if x0 <= 1 and x1 < width - 1:
        x0 -= 0.5 * w
    elif x1 >= width - 1 and x0 > 1:
        x1 += 0.5 * w
    return Roi.from_box(np.array([x0, y0, x1, y1]), scale=scale)
HOG_MAX_UPSCALE = 4.0  # frames needing more enlargement than this to fit the HOG window skip the detector


@dataclass(frozen=True)
class PersonEstimate:
    """One person found in a frame.

    Attributes:
        kp: ``(17, 3)`` float32 COCO-17 x, y (pixels of the input frame), confidence.
        box: ``(4,)`` float32 x0, y0, x1, y1 of the confident keypoints (input pixels).
        mask: ``(H, W)`` float32 probability that a pixel is this person (zero on other people), at the input
            frame's size, or None (no segmentation).
        score: mean confidence of the joints seen.
        roi: the region the landmark model was run on (None for backends without one).
        next_roi: where to look for this person in the next frame.
        source: what proposed the region: ``"track"``, ``"box"``, ``"detector"``, ``"hog"`` or ``"residual"``.
        raw_mask: the segmentation of the whole region (everybody in it), before the split between people.
        parent: index, in the ``previous`` people given, of the person whose ROI this fit came from (-1: none):
            the same person, which the tracker takes as a link.
    """

    kp: np.ndarray
    box: np.ndarray
    mask: np.ndarray | None
    score: float
    roi: Roi | None = None
    next_roi: Roi | None = None
    source: str = ""
    raw_mask: np.ndarray | None = None
    parent: int = -1


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


def tile_regions(width: int, height: int, fractions: Sequence[float], *, overlap: float = 0.5) -> list[tuple[int, ...]]:
    """Square tiles x0, y0, x1, y1 covering a ``width x height`` frame, for each fraction of its shorter side, with
    neighbours overlapping by ``overlap`` of a tile (so anybody smaller than that lies whole inside some tile).
    Tiles smaller than ``MIN_TILE`` pixels are not made (the detector's 224-pixel input would only magnify them)."""
    out = []
    for f in fractions:
        side = int(round(f * min(width, height)))
        if side < MIN_TILE or (side >= width and side >= height):
            continue
        step = max(1.0, side * (1.0 - overlap))
        nx = 1 + max(0, int(np.ceil((width - side) / step)))
        ny = 1 + max(0, int(np.ceil((height - side) / step)))
        for y in np.linspace(0, max(height - side, 0), ny).round().astype(int):
            for x in np.linspace(0, max(width - side, 0), nx).round().astype(int):
                out.append((int(x), int(y), int(min(x + side, width)), int(min(y + side, height))))
    return out


def _roi_nms(dets: list[Detection], iou: float) -> list[Detection]:
    """Detections most confident first, dropping those whose ROI box overlaps a kept one by more than ``iou``."""
    kept: list[Detection] = []
    for d in sorted(dets, key=lambda d: -d.score):
        if kept and box_iou(d.roi.box()[None], np.stack([k.roi.box() for k in kept])).max() > iou:
            continue
        kept.append(d)
    return kept


def same_person(a: np.ndarray, b: np.ndarray, *, tol: float = 0.15) -> bool:
    """Whether two COCO-17 fits ``(17, 3)`` are the same person: at least 3 joints seen in both and their mean
    distance below ``tol`` x the size (geometric mean side) of ``b``'s box, or, with fewer common joints, boxes that
    overlap by more than 0.7 IoU."""
    both = (a[:, 2] >= CONFIDENT) & (b[:, 2] >= CONFIDENT)
    bb = keypoint_box(b, min_score=CONFIDENT)
    if bb is None:
        return False
    size = max(float(np.sqrt(max((bb[2] - bb[0]) * (bb[3] - bb[1]), 1.0))), 1.0)
    if both.sum() >= 3:
        return float(np.linalg.norm(a[both, :2] - b[both, :2], axis=1).mean()) < tol * size
    ab = keypoint_box(a, min_score=CONFIDENT)
    return ab is not None and float(box_iou(ab[None], bb[None])[0, 0]) > 0.7


def _tilt(kp: np.ndarray, roi: Roi) -> float:
    """Angle (radians) between a fit's body direction (mid-hip to mid-shoulder, else its ROI's) and straight up."""
    axis = torso_axis(kp)
    if axis is None:
        return abs(roi.angle)
    return float(np.arccos(np.clip(-axis[1], -1.0, 1.0)))  # image y points down: up is (0, -1)


def _sureness(lm, frame_size: tuple[int, int]) -> float:
    """Mean score of the COCO joints a fit reports (0 for none)."""
    kp = landmarks_to_coco(lm, frame_size)
    seen = kp[:, 2] > 0
    return float(kp[seen, 2].mean()) if seen.any() else 0.0


def _extent(kp: np.ndarray) -> float:
    """Longer side of the box around joints ``kp (N, >=2)``."""
    return float((kp[:, :2].max(0) - kp[:, :2].min(0)).max())


def _segment_distance(p: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Distance of points ``p (N, 2)`` to the segment ``a``-``b``."""
    ab = b - a
    t = np.clip(((p - a) @ ab) / max(float(ab @ ab), 1e-9), 0.0, 1.0)
    return np.linalg.norm(p - (a + t[:, None] * ab), axis=1)


def on_body_of(small: np.ndarray, big: np.ndarray, *, tol: float = 0.08, share: float = 0.6) -> bool:
    """Whether fit ``small (17, 3)`` lies on the body of fit ``big``: it is less than 0.6 x as large and at least
    ``share`` of its seen joints are within ``tol`` x ``big``'s size of ``big``'s seen bones (a skeleton fitted on a
    hand or a leg of somebody already found)."""
    s_seen, b_seen = small[:, 2] >= CONFIDENT, big[:, 2] >= CONFIDENT
    if s_seen.sum() == 0 or b_seen.sum() < 2:
        return False
    s_size, b_size = _extent(small[s_seen]), _extent(big[b_seen])
    if s_size >= 0.6 * b_size:
        return False
    pts = small[s_seen, :2].astype(np.float64)
    d = np.full(len(pts), np.inf)
    for a, b in COCO17.bones:
        if b_seen[a] and b_seen[b]:
            d = np.minimum(d, _segment_distance(pts, big[a, :2].astype(np.float64), big[b, :2].astype(np.float64)))
    return float((d <= tol * b_size).mean()) >= share


def _drop_nested(people: list[PersonEstimate]) -> list[PersonEstimate]:
    """People minus those whose skeleton lies on the body of a larger one (:func:`on_body_of`)."""
    return [p for p in people if not any(q is not p and on_body_of(p.kp, q.kp) for q in people)]


class _Graphs:
    """MediaPipe graphs of one kind (each used by one thread at a time) over a shared thread pool (None: in turn)."""

    def __init__(self, graphs: list, pool: ThreadPoolExecutor | None) -> None:
        self._graphs = graphs
        self._pool = pool
        self._free: queue.SimpleQueue = queue.SimpleQueue()
        for g in graphs:
            self._free.put(g)

    def map(self, fn: Callable, items: Sequence) -> list:
        """``[fn(graph, item) for item in items]``, in order, each call on a graph no other thread is using."""
        if self._pool is None or len(items) < 2:
            return [fn(self._graphs[0], item) for item in items]

        def one(item: object) -> object:
            graph = self._free.get()
            try:
                return fn(graph, item)
            finally:
                self._free.put(graph)

        return list(self._pool.map(one, items))

    def close(self) -> None:
        for g in self._graphs:
            g.close()


class MediaPipePose:
    """Several people per frame with MediaPipe BlazePose (``mediapipe==0.10.21``, full landmark model, offline).

    Each frame goes through these steps (see :mod:`hmore.priors.blazepose` for the two models):

    1. **Tracked people**: the ROI each person of the previous frame predicts for this one (``previous``), then ROIs
       around given ``boxes`` (tracks lost for a while, user boxes), run through the landmark model.
    2. **Search** (``search=True``): the BlazePose person detector on the whole frame and on square tiles
       (``tiles``, fractions of the shorter side, half-overlapping: small people fill a tile as a big one fills the
       frame); its detections, merged across tiles, propose ROIs for people not found yet (``detector="hog"``: OpenCV's
       HOG boxes instead, the previous default; ``"none"``: no detector).
    3. **Residual pass** (``residual=True``, with segmentation): each ROI's segmentation covers whoever is in it;
       what is left once the found people's own pixels are removed is split into connected components, and a large
       enough one proposes one more ROI.

    Every fit keeps only the joints it sees and is checked for plausibility (:mod:`hmore.priors.plausibility`);
    a fit that repeats somebody already found (:func:`same_person`) or lies on a larger person's body
    (:func:`on_body_of`: a skeleton fitted on a hand or a leg) is dropped. A new person whose detection is upside
    down is also fitted upright, and the fit the model is surer of is kept (the detector guesses a body's direction
    from the head, and guesses it upside down on people whose head is out of view). People first found in a *tile*
    (small in the frame) must be within 60 degrees of upright (``tilted``): small upside-down or lying "people" are
    mostly objects (a loudspeaker, things on a table); a person in such a pose is still found when large, from the
    segmentation (tried upright, upside down and lying), or by tracking once seen. Masks are split between people by
    :func:`hmore.priors.masks.split_person_masks` (pose-seeded, overlaps to the person whose joints are seen there).

    Args:
        max_people: most people per frame.
        min_detection_confidence: detector score threshold.
        min_presence: landmark presence below which a joint is missing, and the landmark model's own person-presence
            threshold.
        segmentation: return person masks.
        mask_threshold: person probability above which a pixel is in a mask.
        detector: ``"blazepose"`` (default), ``"hog"`` or ``"none"``.
        tiles: tile sizes as fractions of the frame's shorter side (empty: whole frame only).
        tiles_per_search: tiles run per search (None: all); the rest follow in later searches, round robin, so a
            video pays for a few tiles per search and still covers the frame every few searches.
        residual: run the residual pass.
        components: split the whole-frame person segmentation (MediaPipe's selfie segmentation, landscape model)
            into connected components, check the people found against them and propose a fit for those nobody
            explains (see :meth:`_segment_components`).
        box_scale: a box (x0, y0, x1, y1) becomes a square ROI this many times its longer side.
        detector_max_side: the HOG detector runs on the frame scaled to this longer side (``detector="hog"``).
        workers: landmark models run at once (one graph and thread each; MediaPipe's models use one core each). The
            tracked people of a frame are fitted in parallel before the steps above, which then take those fits
            instead of running the model again: the same results as ``workers=1``, in less wall-clock time on a
            machine with as many free cores.
    """

    name = "mediapipe_pose"

    def __init__(
        self,
        *,
        max_people: int = 20,
        min_detection_confidence: float = 0.5,
        min_presence: float = 0.5,
        segmentation: bool = True,
        mask_threshold: float = 0.5,
        detector: str = "blazepose",
        tiles: Sequence[float] = (0.6,),
        tiles_per_search: int | None = 3,
        residual: bool = True,
        components: bool = True,
        box_scale: float = 1.4,
        detector_max_side: int = 768,
        workers: int = 2,
    ) -> None:
        if max_people < 1:
            raise UsageError(f"max_people must be >= 1, got {max_people}")
        if workers < 1:
            raise UsageError(f"workers must be >= 1, got {workers}")
        if detector not in DETECTORS:
            raise UsageError(f"unknown person detector {detector!r}; known: {', '.join(DETECTORS)}")
        if any(not 0.0 < f <= 1.0 for f in tiles) or (tiles_per_search is not None and tiles_per_search < 0):
            raise UsageError(f"tiles must be fractions in (0, 1] and tiles_per_search >= 0, got {tiles}, "
                             f"{tiles_per_search}")
        import mediapipe as mp

        self.version = (f"mediapipe-{mp.__version__}-pose-full-multi-{detector}"
                        f"-t{'_'.join(f'{f:g}' for f in tiles)}{'-r' if residual else ''}{'-c' if components else ''}")
        self.max_people = max_people
        self.min_presence = min_presence
        self.segmentation = segmentation
        self.mask_threshold = mask_threshold
        self.detector = detector
        self.tiles = tuple(float(f) for f in tiles)
        self.tiles_per_search = tiles_per_search
        self.residual = residual and segmentation
        self.box_scale = box_scale
        self.detector_max_side = detector_max_side
        self.rejected: dict[str, int] = {}  # implausible fits by rule, for reports
        self._tile_cursor = 0
        self._hog = None
        self._warned_small = False
        if detector == "hog":
            self._hog = cv2.HOGDescriptor()
            self._hog.setSVMDetector(cv2.HOGDescriptor_getDefaultPeopleDetector())
        self.workers = workers
        self._fitted: dict[tuple[float, float, float, float], Landmarks | None] = {}  # this frame's parallel fits
        self._selfie = None
        with filter_native_stderr():  # building the graphs prints benign native INFO / WARNING lines
            self._detector = BlazePoseDetector(min_score=min_detection_confidence) if detector == "blazepose" \
                else None
            self._landmarker = BlazePoseLandmarker(segmentation=segmentation, min_presence=min_presence)
            pool = ThreadPoolExecutor(workers, thread_name_prefix="hmore-priors") if workers > 1 else None
            self._landmarkers = _Graphs([self._landmarker] + [
                BlazePoseLandmarker(segmentation=segmentation, min_presence=min_presence)
                for _ in range(workers - 1)], pool)
            self._detectors = _Graphs([self._detector] + [
                BlazePoseDetector(min_score=min_detection_confidence) for _ in range(workers - 1)], pool) \
                if self._detector is not None else None
            self._pool = pool
            if components:
                self._selfie = mp.solutions.selfie_segmentation.SelfieSegmentation(model_selection=1)
                settle(self._selfie)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown()
        for graphs in (self._landmarkers, self._detectors):
            if graphs is not None:
                graphs.close()
        if self._selfie is not None:
            self._selfie.close()

    def __enter__(self) -> MediaPipePose:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def detections(self, frame_rgb: np.ndarray, *, all_tiles: bool = True) -> list[Detection]:
        """BlazePose detections on the whole frame and its tiles (``all_tiles=False``: the next
        ``tiles_per_search`` tiles only), merged across tiles, most confident first."""
        if self._detector is None:
            return []
        H, W = frame_rgb.shape[:2]
        regions = tile_regions(W, H, self.tiles)
        if regions and not all_tiles and self.tiles_per_search is not None:
            k = min(self.tiles_per_search, len(regions))
            order = [(self._tile_cursor + i) % len(regions) for i in range(k)]
            self._tile_cursor = (self._tile_cursor + k) % len(regions)
            regions = [regions[i] for i in order]

        def detect(graph: BlazePoseDetector, region: tuple[int, ...] | None) -> list[Detection]:
            if region is None:
                return graph.detect(frame_rgb)
            x0, y0, x1, y1 = region
            return [replace(d, tile=True) for d in graph.detect(frame_rgb[y0:y1, x0:x1], offset=(x0, y0))]

        dets = [d for found in self._detectors.map(detect, [None, *regions]) for d in found]  # frame, then tiles
        return _roi_nms(dets, 0.5)

    def estimate_people(
        self,
        frame_rgb: np.ndarray,
        boxes: Sequence[np.ndarray] | None = None,
        *,
        previous: Sequence[PersonEstimate] = (),
        search: bool = True,
        all_tiles: bool = True,
    ) -> list[PersonEstimate]:
        """Find people in ``frame_rgb (H, W, 3)`` uint8 (see the class docstring for the steps).

        Args:
            frame_rgb: the frame.
            boxes: x0, y0, x1, y1 boxes where people are expected (user boxes, tracks lost for a few frames).
            previous: the people of the previous frame (their ``next_roi`` is searched first).
            search: run the detector (and the residual pass) for people not found yet.
            all_tiles: run every tile (False: ``tiles_per_search`` of them, round robin).
        """
        with filter_native_stderr():  # a graph's first run prints benign native warnings
            return self._estimate_people(frame_rgb, boxes, previous=previous, search=search, all_tiles=all_tiles)

    def _estimate_people(
        self,
        frame_rgb: np.ndarray,
        boxes: Sequence[np.ndarray] | None,
        *,
        previous: Sequence[PersonEstimate],
        search: bool,
        all_tiles: bool,
    ) -> list[PersonEstimate]:
        frame = np.asarray(frame_rgb)
        if frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
            raise ValueError(f"frame must be (H, W, 3) uint8 RGB, got {frame.shape} {frame.dtype}")
        H, W = frame.shape[:2]
        people: list[PersonEstimate] = []
        if min(H, W) < MIN_SIDE:
            return people  # nobody can be seen in so few pixels
        self._fit_parallel(frame, [p.next_roi for p in previous if p.next_roi is not None])

        def fit(roi: Roi, source: str, prev_kp: np.ndarray | None = None, expect: np.ndarray | None = None,
                turns: Sequence[float] = (0.0,), parent: int = -1, upright: bool = False) -> bool:
            if len(people) >= self.max_people:
                return False
            p = self._fit(frame, roi, source, prev_kp=prev_kp, expect=expect, turns=turns, upright=upright)
            if p is not None and parent < 0 and p.next_roi is not None:
                # A new person: refit once on the ROI the fit's own landmarks give (MediaPipe's detection-then-
                # landmark-ROI step, done in the same frame). A detector's ROI is rough; the refit is what the person
                # would get when tracked, e.g. without a face squeezed into a crop that has none.
                again = self._fit_one(frame, p.next_roi, source, prev_kp=p.kp)
                p = p if again is None else again
            if p is None or any(same_person(p.kp, q.kp) for q in people):
                return False
            people.append(replace(p, parent=parent))
            return True

        for k, p in enumerate(previous):
            if p.next_roi is not None:  # a body that turned fast may no longer fit its ROI's direction: try turns
                fit(p.next_roi, "track", prev_kp=p.kp, turns=(0.0, np.pi / 2, -np.pi / 2), parent=k)
        for b in boxes or ():
            b = np.asarray(b, np.float64)
            if not any(_contains(b, p.box) for p in people):
                d = self._detect_in_box(frame, b)
                if d is None or not fit(d.roi, "box", expect=b):
                    fit(Roi.from_box(b, scale=self.box_scale), "box", expect=b, turns=TURNS)
        if search:
            if self._detector is not None:
                for d in self.detections(frame, all_tiles=all_tiles):
                    if len(people) >= self.max_people:
                        break
                    if not any(self._explains(p, d) for p in people):
                        fit(d.roi, "detector", upright=d.tile)
            elif self._hog is not None and min(H, W) * min(1.0, self.detector_max_side / max(H, W)) >= HOG_MIN_SIDE:
                for b in self.detect_boxes(frame):
                    if not any(_contains(b, p.box) for p in people):
                        fit(Roi.from_box(b, scale=self.box_scale), "hog", expect=b)
            if self._selfie is not None:
                people = self._segment_components(frame, people, fit)
        people = _drop_nested(people)
        people = self._split_masks(people, (H, W))
        if search and self.residual and people:
            for roi in self._residual_rois(people, (H, W)):
                fit(roi, "residual", turns=TURNS)
            people = self._split_masks(_drop_nested(people), (H, W))
        return people

    def _fit(
        self, frame: np.ndarray, roi: Roi, source: str, *, prev_kp: np.ndarray | None = None,
        expect: np.ndarray | None = None, turns: Sequence[float] = (0.0,), upright: bool = False,
    ) -> PersonEstimate | None:
        """One landmark fit on ``roi``, its joints reduced to those seen, or None when the model sees nobody or the
        fit is implausible (counted in ``rejected``). ``turns``: rotations (radians) of ``roi`` tried in order until
        one fits (a region without a known body direction: upright, upside down, lying)."""
        for turn in turns:
            turned = replace(roi, angle=float(roi.angle + turn)) if turn else roi
            found = self._fit_one(frame, turned, source, prev_kp=prev_kp, expect=expect, upright=upright)
            if found is not None:
                return found
        return None

    def _fit_one(
        self, frame: np.ndarray, roi: Roi, source: str, *, prev_kp: np.ndarray | None = None,
        expect: np.ndarray | None = None, upright: bool = False,
    ) -> PersonEstimate | None:
        H, W = frame.shape[:2]
        if roi.size < MIN_SIDE:
            return None
        lm = self._landmarks(frame, roi)
        if lm is not None and prev_kp is None and abs(roi.angle) > np.pi / 2:
            # A new person upside down: the detector guesses the body's direction from the head, and without a head
            # in view (a partial person) it often guesses it upside down. Fit the upright hypothesis too and keep
            # the one whose seen joints the model is surer of (upright on a tie).
            turned = replace(roi, angle=float(roi.angle - np.sign(roi.angle) * np.pi))
            other = self._landmarks(frame, turned)
            if other is not None and _sureness(other, (W, H)) >= _sureness(lm, (W, H)):
                lm, roi = other, turned
        if lm is None:
            return None
        kp = landmarks_to_coco(lm, (W, H), min_presence=self.min_presence)
        reason = implausible(kp, roi.size, previous=prev_kp)
        if reason is None and upright and _tilt(kp, roi) > MAX_NEW_TILT:
            reason = "tilted"
        if reason is not None:
            self.rejected[reason] = self.rejected.get(reason, 0) + 1
            return None
        box = keypoint_box(kp, min_score=CONFIDENT)
        if expect is not None and box_iou(box[None], np.asarray(expect, np.float64)[None]).max() < 0.1:
            return None  # the crop found somebody else than the person expected there
        seen = kp[:, 2] >= CONFIDENT
        return PersonEstimate(kp=kp, box=box.astype(np.float32), mask=lm.mask, score=float(kp[seen, 2].mean()),
                              roi=roi, next_roi=lm.next_roi, source=source)

    def _landmarks(self, frame: np.ndarray, roi: Roi) -> Landmarks | None:
        """The landmark model on ``roi`` of ``frame``: the parallel fit of this frame when there is one."""
        key = (roi.cx, roi.cy, roi.size, roi.angle)
        if key in self._fitted:
            return self._fitted[key]
        return self._landmarker.run(frame, roi)

    def _fit_parallel(self, frame: np.ndarray, rois: Sequence[Roi]) -> None:
        """Run the landmark model on ``rois`` (at least ``MIN_SIDE`` pixels) of ``frame`` in the worker threads and
        keep the results for :meth:`_landmarks` until the next frame."""
        self._fitted = {}
        rois = [r for r in rois if r.size >= MIN_SIDE]
        if self._pool is None or len(rois) < 2:
            return
        for roi, lm in zip(rois, self._landmarkers.map(lambda graph, roi: graph.run(frame, roi), rois)):
            self._fitted[(roi.cx, roi.cy, roi.size, roi.angle)] = lm

    def _segment_components(
        self, frame: np.ndarray, people: list[PersonEstimate], fit: Callable[..., bool]
    ) -> list[PersonEstimate]:
        """Connected components of the whole-frame person segmentation, split by the people found: a component
        whose people together cover a small part of it (``PART_OF_COMPONENT``: skeletons fitted on a foot?) is
        fitted again as a whole, and that fit replaces them when it is plausible and its box at least 1.5 times
        theirs; a component nobody explains proposes a fit."""
        H, W = frame.shape[:2]
        seg = np.asarray(self._selfie.process(np.ascontiguousarray(frame)).segmentation_mask, np.float32)
        n, labels, stats, _ = cv2.connectedComponentsWithStats((seg > self.mask_threshold).astype(np.uint8), 8)
        min_area = max(RESIDUAL_MIN_AREA * H * W, 64)
        owners: dict[int, list[int]] = {}
        for k, p in enumerate(people):
            seen = p.kp[:, 2] >= CONFIDENT
            xy = np.round(p.kp[seen, :2]).astype(int)
            lab = labels[np.clip(xy[:, 1], 0, H - 1), np.clip(xy[:, 0], 0, W - 1)]
            lab = lab[lab > 0]
            if len(lab):
                owners.setdefault(int(np.bincount(lab).argmax()), []).append(k)
        drop: set[int] = set()
        for c in range(1, n):
            x, y, w, h, area = (int(v) for v in stats[c])
            if area < min_area or h < MIN_SIDE:
                continue
            roi = component_roi(np.array([x, y, x + w, y + h], np.float64), W, H, scale=self.box_scale)
            mine = owners.get(c, [])
            if not mine:
                fit(roi, "segmentation", turns=TURNS)
                continue
            union = np.stack([people[k].box for k in mine])
            uw, uh = union[:, 2].max() - union[:, 0].min(), union[:, 3].max() - union[:, 1].min()
            if max(uw, 1.0) * max(uh, 1.0) * PART_OF_COMPONENT < w * h:
                # the people in this segment cover a small part of it: fits on parts of somebody (a foot, a hand)?
                whole = self._fit(frame, roi, "segmentation")
                if whole is not None and (whole.box[2] - whole.box[0]) * (whole.box[3] - whole.box[1]) > 1.5 * uw * uh:
                    drop.update(mine)
                    people.append(whole)
                    self.rejected["part"] = self.rejected.get("part", 0) + len(mine)
        return [p for k, p in enumerate(people) if k not in drop]

    def _detect_in_box(self, frame: np.ndarray, box: np.ndarray) -> Detection | None:
        """The most confident detection whose hip centre lies in ``box``, searched in the box grown by a quarter of
        its size per side (the detector's ROI is aligned with the body, a box's is not)."""
        if self._detector is None:
            return None
        H, W = frame.shape[:2]
        x0, y0, x1, y1 = (float(v) for v in box)
        gx, gy = 0.25 * (x1 - x0), 0.25 * (y1 - y0)
        cx0, cy0 = max(0, int(x0 - gx)), max(0, int(y0 - gy))
        cx1, cy1 = min(W, int(np.ceil(x1 + gx))), min(H, int(np.ceil(y1 + gy)))
        if min(cx1 - cx0, cy1 - cy0) < MIN_SIDE:
            return None
        dets = self._detector.detect(frame[cy0:cy1, cx0:cx1], offset=(cx0, cy0))
        inside = [d for d in dets if _contains(box, np.r_[d.keypoints[0], d.keypoints[0]])]
        return max(inside, key=lambda d: d.score) if inside else None

    @staticmethod
    def _explains(p: PersonEstimate, d: Detection) -> bool:
        """Whether person ``p`` already accounts for detection ``d``: their sizes are within a factor 2 and the
        detection's hip centre is within 0.15 x ``p``'s ROI side of ``p``'s mid-hip (inside ``p``'s box when ``p``
        has no hips in view). Two people overlapping in the image have different hips."""
        size = p.roi.size if p.roi is not None else float(max(p.box[2] - p.box[0], p.box[3] - p.box[1]))
        if not 0.5 < d.roi.size / max(size, 1.0) < 2.0:
            return False
        hips = p.kp[[11, 12]]
        if (hips[:, 2] >= CONFIDENT).all():
            return float(np.linalg.norm(hips[:, :2].mean(0) - d.keypoints[0])) < 0.15 * size
        return _contains(p.box, np.r_[d.keypoints[0], d.keypoints[0]])

    def _split_masks(self, people: list[PersonEstimate], shape: tuple[int, int]) -> list[PersonEstimate]:
        """Each person's mask reduced to their own pixels (see :func:`split_person_masks`)."""
        raw = [p.raw_mask if p.raw_mask is not None else p.mask for p in people]
        if not people or any(m is None for m in raw):
            return people
        own = split_person_masks(raw, [p.kp for p in people], threshold=self.mask_threshold)
        return [replace(p, mask=m, raw_mask=r) for p, m, r in zip(people, own, raw)]

    def _residual_rois(self, people: list[PersonEstimate], shape: tuple[int, int], *, most: int = 3) -> list[Roi]:
        """ROIs around the largest person-like regions that the found people's masks cover but do not own."""
        H, W = shape
        covered = np.zeros(shape, bool)
        owned = np.zeros(shape, bool)
        for p in people:
            covered |= p.raw_mask > self.mask_threshold
            owned |= p.mask > self.mask_threshold
        owned = cv2.dilate(owned.astype(np.uint8), np.ones((15, 15), np.uint8)) > 0
        left = (covered & ~owned).astype(np.uint8)
        n, _, stats, _ = cv2.connectedComponentsWithStats(left, connectivity=8)
        min_area = max(RESIDUAL_MIN_AREA * H * W, 64)
        out = []
        for i in np.argsort(-stats[1:, cv2.CC_STAT_AREA])[:most] + 1:
            x, y, w, h, area = (int(v) for v in stats[i])
            if area >= min_area and h >= MIN_SIDE and w >= MIN_SIDE // 2:
                out.append(Roi.from_box(np.array([x, y, x + w, y + h]), scale=self.box_scale))
        return out

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

