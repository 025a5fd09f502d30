"""MediaPipe's BlazePose models run as two separate graphs: a person detector that returns *every* person it finds,
and a landmark model run on one region of interest (ROI) at a time.

MediaPipe's legacy ``Pose`` solution chains the two and keeps only the first detection (one person per image). The
two parts are registered subgraphs inside the ``mediapipe==0.10.21`` wheel (``PoseDetectionCpu``,
``PoseLandmarkByRoiCpu``) with their models (``pose_detection.tflite``, ``pose_landmark_full.tflite``), so they run
offline, and a multi-person pipeline can be built from them:

- :class:`BlazePoseDetector` returns all detections of an image (or of a tile of it) above a score; each carries
  the four alignment keypoints of the BlazePose detector (hip centre, a point that fixes the full-body size and
  rotation, shoulder centre, an upper-body point) from which :func:`roi_from_alignment` builds the landmark ROI the
  same way MediaPipe does (centre at the hips, side ``2 x 1.25 x |hip - scale point|``, rotated so the body is
  upright in the crop).
- :class:`BlazePoseLandmarker` returns, for one ROI, the 33 landmarks with per-landmark *visibility* (not occluded)
  and *presence* (inside the crop), the two auxiliary landmarks from which the next frame's ROI follows
  (:func:`roi_from_alignment` again), and the person segmentation of the ROI's content, at the image's size.

ROIs are :class:`Roi` (centre, side, rotation in pixels/radians) and become MediaPipe ``NormalizedRect``s only at the
graph boundary.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from hmore.errors import UsageError

ROI_SCALE = 1.25  # MediaPipe's RectTransformation scale for pose ROIs (pose_detection_to_roi, pose_landmarks_to_roi)

_LANDMARK_PORTS = ('input_stream: "IMAGE:image"', 'input_stream: "ROI:roi"',
                   'input_side_packet: "MODEL_COMPLEXITY:model_complexity"',
                   'input_side_packet: "ENABLE_SEGMENTATION:enable_segmentation"',
                   'output_stream: "LANDMARKS:landmarks"', 'output_stream: "AUXILIARY_LANDMARKS:aux"')
# The graph has the subgraph's ports, plus its mask converted from mediapipe::Image to an ImageFrame for Python.
_LANDMARK_GRAPH = "\n".join([
    *_LANDMARK_PORTS, 'output_stream: "SEGMENTATION_MASK:mask"',
    'node { calculator: "PoseLandmarkByRoiCpu"', *_LANDMARK_PORTS, 'output_stream: "SEGMENTATION_MASK:mask_image" }',
    'node { calculator: "FromImageCalculator" input_stream: "IMAGE:mask_image" output_stream: "IMAGE_CPU:mask" }',
])

_DETECTION_GRAPH = """
input_stream: "IMAGE:image"
output_stream: "DETECTIONS:detections"
node { calculator: "PoseDetectionCpu" input_stream: "IMAGE:image" output_stream: "DETECTIONS:detections" }
"""

_MIN_SCORE_PARAM = "posedetectioncpu__TensorsToDetectionsCalculator.min_score_thresh"
_PRESENCE_PARAM = "poselandmarkbyroicpu__tensorstoposelandmarksandsegmentation__ThresholdingCalculator.threshold"


def _import_mediapipe():
    try:
        import mediapipe as mp
        from mediapipe.python.solution_base import SolutionBase
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise UsageError("the MediaPipe backend needs `pip install mediapipe==0.10.21` (hmore[priors])") from exc
    return mp, SolutionBase


def settle(solution: object) -> None:
    """Wait until a MediaPipe solution's graph has opened its calculators, which they do (and log from) in the graph's
    own threads after the constructor returns (``mediapipe==0.10.21``'s ``SolutionBase._graph``; a no-op if absent)."""
    wait = getattr(getattr(solution, "_graph", None), "wait_until_idle", None)
    if callable(wait):
        wait()


@dataclass(frozen=True)
class Roi:
    """A square region of interest in image pixels, rotated by ``angle`` radians around its centre (clockwise on
    screen, as MediaPipe's ``NormalizedRect.rotation``)."""

    cx: float
    cy: float
    size: float
    angle: float = 0.0

    @classmethod
    def from_box(cls, box: np.ndarray, *, scale: float = 1.0) -> Roi:
        """An upright square ROI around box ``x0, y0, x1, y1``, side ``scale x`` its longer side."""
        x0, y0, x1, y1 = (float(v) for v in box)
        return cls(0.5 * (x0 + x1), 0.5 * (y0 + y1), scale * max(x1 - x0, y1 - y0, 1.0), 0.0)

    def corners(self) -> np.ndarray:
        """``(4, 2)`` corner pixels (top-left, top-right, bottom-right, bottom-left of the upright crop)."""
        h = 0.5 * self.size
        local = np.array([[-h, -h], [h, -h], [h, h], [-h, h]])
        c, s = math.cos(self.angle), math.sin(self.angle)
        rot = np.array([[c, -s], [s, c]])  # image y points down: a positive angle turns the crop clockwise on screen
        return local @ rot.T + [self.cx, self.cy]

    def box(self) -> np.ndarray:
        """Axis-aligned ``(4,)`` box x0, y0, x1, y1 around the rotated square."""
        c = self.corners()
        return np.array([c[:, 0].min(), c[:, 1].min(), c[:, 0].max(), c[:, 1].max()], np.float64)

    def contains(self, xy: np.ndarray, *, margin: float = 0.0) -> np.ndarray:
        """Whether points ``xy (N, 2)`` lie inside the rotated square shrunk by ``margin`` x its side per side."""
        d = np.asarray(xy, np.float64).reshape(-1, 2) - [self.cx, self.cy]
        c, s = math.cos(self.angle), math.sin(self.angle)
        u = d[:, 0] * c + d[:, 1] * s  # into the crop's axes
        v = -d[:, 0] * s + d[:, 1] * c
        lim = (0.5 - margin) * self.size
        return (np.abs(u) <= lim) & (np.abs(v) <= lim)


def roi_from_alignment(centre: np.ndarray, scale_point: np.ndarray) -> Roi:
    """The landmark ROI from two alignment points in pixels (MediaPipe's AlignmentPointsRects + RectTransformation):
    centred on ``centre``, side ``2 x ROI_SCALE x |scale_point - centre|``, rotated so that ``scale_point`` is
    straight above ``centre`` in the crop."""
    dx, dy = float(scale_point[0] - centre[0]), float(scale_point[1] - centre[1])
    angle = math.pi / 2 - math.atan2(-dy, dx)
    angle = angle - 2 * math.pi * math.floor((angle + math.pi) / (2 * math.pi))  # into [-pi, pi)
    return Roi(float(centre[0]), float(centre[1]), 2.0 * ROI_SCALE * math.hypot(dx, dy), angle)


@dataclass(frozen=True)
class Detection:
    """One BlazePose detection in image pixels.

    Attributes:
        score: detector confidence in [0, 1].
        keypoints: ``(4, 2)`` alignment points: hip centre, full-body scale point, shoulder centre, upper-body point.
        roi: the landmark ROI built from the first two points.
        tile: found in a tile of the frame rather than in the whole frame.
    """

    score: float
    keypoints: np.ndarray
    roi: Roi
    tile: bool = False


@dataclass(frozen=True)
class Landmarks:
    """The landmark model's output for one ROI.

    Attributes:
        xy: ``(33, 2)`` pixels of the image.
        visibility: ``(33,)`` likelihood that each landmark is visible (not occluded).
        presence: ``(33,)`` likelihood that each landmark is inside the crop.
        roi: the ROI it was run on.
        next_roi: the ROI for the same person in the next frame (from the auxiliary landmarks).
        mask: ``(H, W)`` float32 person probability of the ROI's content (zero outside it), or None.
    """

    xy: np.ndarray
    visibility: np.ndarray
    presence: np.ndarray
    roi: Roi
    next_roi: Roi
    mask: np.ndarray | None


def _to_rect(roi: Roi, width: int, height: int):
    from mediapipe.framework.formats import rect_pb2

    return rect_pb2.NormalizedRect(x_center=roi.cx / width, y_center=roi.cy / height, width=roi.size / width,
                                   height=roi.size / height, rotation=roi.angle)


class BlazePoseDetector:
    """MediaPipe's BlazePose person detector (224x224 input, letterboxed), all detections above ``min_score``.

    Detections of one image overlapping by more than 0.3 IoU are merged by MediaPipe's weighted non-maximum
    suppression inside the graph.

    Args:
        min_score: detection score threshold (MediaPipe's ``Pose`` uses 0.5).
    """

    def __init__(self, *, min_score: float = 0.5) -> None:
        if not 0.0 <= min_score <= 1.0:
            raise UsageError(f"min_score must be in [0, 1], got {min_score}")
        _, solution = _import_mediapipe()
        self._graph = solution(graph_config=_DETECTION_GRAPH, calculator_params={_MIN_SCORE_PARAM: min_score})
        settle(self._graph)

    def close(self) -> None:
        self._graph.close()

    def detect(self, image: np.ndarray, *, offset: tuple[float, float] = (0.0, 0.0)) -> list[Detection]:
        """Detections in ``image (h, w, 3)`` uint8 RGB, in pixels of ``image`` shifted by ``offset`` (x, y)."""
        h, w = image.shape[:2]
        if h < 2 or w < 2:
            return []
        out = self._graph.process({"image": np.ascontiguousarray(image)})
        dets = []
        for d in out.detections or ():
            kp = np.array([[p.x * w + offset[0], p.y * h + offset[1]] for p in d.location_data.relative_keypoints])
            if kp.shape != (4, 2):
                continue
            dets.append(Detection(score=float(d.score[0]), keypoints=kp, roi=roi_from_alignment(kp[0], kp[1])))
        return dets


class BlazePoseLandmarker:
    """MediaPipe's BlazePose landmark model (``pose_landmark_full``) on a given ROI, with segmentation.

    Args:
        segmentation: also return the person mask of the ROI.
        min_presence: the model's own pose-presence score below which it reports nobody (MediaPipe: 0.5).
    """

    def __init__(self, *, segmentation: bool = True, min_presence: float = 0.5) -> None:
        _, solution = _import_mediapipe()
        self.segmentation = segmentation
        self._graph = solution(graph_config=_LANDMARK_GRAPH,
                               side_inputs={"model_complexity": 1, "enable_segmentation": segmentation},
                               calculator_params={_PRESENCE_PARAM: min_presence})
        settle(self._graph)

    def close(self) -> None:
        self._graph.close()

    def run(self, image: np.ndarray, roi: Roi) -> Landmarks | None:
        """Landmarks of the person in ``roi`` of ``image (H, W, 3)`` uint8 RGB, or None when the model sees nobody."""
        H, W = image.shape[:2]
        if roi.size < 4 or H < 2 or W < 2:
            return None
        out = self._graph.process({"image": np.ascontiguousarray(image), "roi": _to_rect(roi, W, H)})
        if out.landmarks is None or out.aux is None:
            return None
        lm = out.landmarks.landmark
        xy = np.array([[p.x * W, p.y * H] for p in lm], np.float64)  # (33, 2)
        vis = np.array([p.visibility for p in lm], np.float64)
        pres = np.array([p.presence for p in lm], np.float64)
        aux = np.array([[p.x * W, p.y * H] for p in out.aux.landmark], np.float64)  # (2, 2) centre, scale point
        mask = None
        if self.segmentation and out.mask is not None:
            mask = np.asarray(out.mask, np.float32).reshape(H, W)
        return Landmarks(xy=xy, visibility=vis, presence=pres, roi=roi, next_roi=roi_from_alignment(aux[0], aux[1]),
                         mask=mask)
