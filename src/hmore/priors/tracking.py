"""Person tracking over frames: Hungarian assignment on box IoU and keypoint distance, gap interpolation.

Detections come per frame as COCO-17 keypoints ``(17, 3)`` (x, y, score in pixels) and optionally boxes. The tracker
keeps every frame (a frame with no detection stays, with no person valid in it), gives each person one id for the
whole clip, and fills short gaps of a track by linear interpolation, flagged in ``Tracks.interpolated``.

Use :class:`Tracker` online (``update`` per frame, ``predicted_boxes`` to crop the next frame around known people)
or :func:`track` on a whole clip.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import linear_sum_assignment

from hmore.errors import InputError

NUM_JOINTS = 17


@dataclass(frozen=True)
class TrackerConfig:
    """How detections are linked into tracks.

    Attributes:
        iou_weight: weight of ``1 - IoU`` of the boxes in the assignment cost.
        kp_weight: weight of the mean keypoint distance (divided by the track's box diagonal, capped at 1; left and
            right may be swapped).
        max_cost: pairs costing more than this are never linked (cost is in [0, iou_weight + kp_weight]).
        max_age: a track unseen for more than this many frames is closed; a person coming back gets a new id.
        max_interp_gap: gaps up to this many frames are filled by linear interpolation (and flagged).
        min_score: joints below this confidence are left out of the keypoint distance and of keypoint boxes.
        min_track_len: tracks detected in fewer frames than this are dropped at the end (spurious detections),
            unless the whole clip is shorter than this: then every track is kept (a single image or a 2-frame
            input cannot confirm anybody over several frames, and its people are still people).
        use_velocity: predict a track's position in the next frame with its last velocity.
    """

    iou_weight: float = 1.0
    kp_weight: float = 1.0
    max_cost: float = 1.4
    max_age: int = 15
    max_interp_gap: int = 10
    min_score: float = 0.2
    min_track_len: int = 1
    use_velocity: bool = True

    def __post_init__(self) -> None:
        if self.max_age < 0 or self.max_interp_gap < 0 or self.min_track_len < 1:
            raise ValueError(f"bad tracker config {self}: max_age, max_interp_gap >= 0 and min_track_len >= 1")


@dataclass(frozen=True)
class Tracks:
    """People tracked over a clip; person axis ``P`` is ordered by first appearance.

    Attributes:
        kp2d: ``(T, P, 17, 3)`` float32 x, y, score; zeros where the person is not valid.
        boxes: ``(T, P, 4)`` float32 x0, y0, x1, y1; zeros where not valid.
        valid: ``(T, P)`` bool, detected or interpolated.
        interpolated: ``(T, P)`` bool, filled by interpolation (a subset of ``valid``).
        det_index: ``(T, P)`` int64, index of the detection in its frame's input list, -1 if none.
        track_ids: ``(P,)`` int64 person ids ``1..P`` (0 is kept for "nobody", as in instance masks).
    """

    kp2d: np.ndarray
    boxes: np.ndarray
    valid: np.ndarray
    interpolated: np.ndarray
    det_index: np.ndarray
    track_ids: np.ndarray

    @property
    def num_frames(self) -> int:
        return int(self.kp2d.shape[0])

    @property
    def num_people(self) -> int:
        return int(self.kp2d.shape[1])


def keypoint_box(kp: np.ndarray, *, min_score: float = 0.2) -> np.ndarray | None:
    """Tight ``(4,)`` box x0, y0, x1, y1 around the joints of ``kp (17, 3)`` with score >= ``min_score`` (None if
    fewer than two such joints)."""
    ok = kp[:, 2] >= min_score
    if ok.sum() < 2:
        return None
    xy = kp[ok, :2]
    return np.array([xy[:, 0].min(), xy[:, 1].min(), xy[:, 0].max(), xy[:, 1].max()], np.float64)


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of boxes ``a (N, 4)`` and ``b (M, 4)`` (x0, y0, x1, y1) -> ``(N, M)``."""
    a = np.asarray(a, np.float64).reshape(-1, 4)
    b = np.asarray(b, np.float64).reshape(-1, 4)
    x0 = np.maximum(a[:, None, 0], b[None, :, 0])
    y0 = np.maximum(a[:, None, 1], b[None, :, 1])
    x1 = np.minimum(a[:, None, 2], b[None, :, 2])
    y1 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(x1 - x0, 0, None) * np.clip(y1 - y0, 0, None)
    area_a = np.clip(a[:, 2] - a[:, 0], 0, None) * np.clip(a[:, 3] - a[:, 1], 0, None)
    area_b = np.clip(b[:, 2] - b[:, 0], 0, None) * np.clip(b[:, 3] - b[:, 1], 0, None)
    union = area_a[:, None] + area_b[None, :] - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)


@dataclass
class _Track:
    first: int
    frames: list[int] = field(default_factory=list)
    kps: list[np.ndarray] = field(default_factory=list)
    boxes: list[np.ndarray] = field(default_factory=list)
    dets: list[int] = field(default_factory=list)

    def predict(self, frame: int, use_velocity: bool) -> tuple[np.ndarray, np.ndarray]:
        """Keypoints and box expected at ``frame``: the last seen ones, moved on by the mean velocity of the last
        few frames for at most ``_MAX_HORIZON`` frames (detections jitter; a long extrapolation drifts away)."""
        kp, box = self.kps[-1].copy(), self.boxes[-1].copy()
        if use_velocity and len(self.frames) >= 2:
            k = max(0, len(self.frames) - 1 - _VELOCITY_WINDOW)
            dt = self.frames[-1] - self.frames[k]
            v_box = (self.boxes[-1] - self.boxes[k]) / dt
            shift = v_box * min(frame - self.frames[-1], _MAX_HORIZON)
            box = box + shift
            kp[:, 0] += 0.5 * (shift[0] + shift[2])
            kp[:, 1] += 0.5 * (shift[1] + shift[3])
        return kp, box


_VELOCITY_WINDOW = 4  # frames over which a track's velocity is averaged
_MAX_HORIZON = 2  # frames a track's position is extrapolated ahead at most
_FLIP = np.array([0, 2, 1, 4, 3, 6, 5, 8, 7, 10, 9, 12, 11, 14, 13, 16, 15])  # COCO-17 left <-> right


def keypoint_distance(a: np.ndarray, b: np.ndarray, *, min_score: float) -> float | None:
    """Mean distance between joints seen in both ``a`` and ``b`` (``(17, 3)``), the smaller of the distances with
    and without swapping left and right (detectors often swap sides of a person seen from behind). None if no joint
    is seen in both."""
    best = None
    for bb in (b, b[_FLIP]):
        both = (a[:, 2] >= min_score) & (bb[:, 2] >= min_score)
        if both.any():
            d = float(np.linalg.norm(a[both, :2] - bb[both, :2], axis=-1).mean())
            best = d if best is None else min(best, d)
    return best


class Tracker:
    """Online multi-person tracker (see the module docstring).

    Args:
        config: a :class:`TrackerConfig`.
    """

    def __init__(self, *, config: TrackerConfig | None = None) -> None:
        self.config = config or TrackerConfig()
        self._tracks: list[_Track] = []
        self._frame = 0

    @property
    def num_frames(self) -> int:
        return self._frame

    def _live(self, frame: int) -> list[int]:
        return [i for i, t in enumerate(self._tracks) if frame - t.frames[-1] <= self.config.max_age + 1]

    def predicted_boxes(self) -> list[tuple[int, np.ndarray]]:
        """``(track index, box (4,))`` for each live track, predicted for the next frame."""
        out = []
        for i in self._live(self._frame):
            _, box = self._tracks[i].predict(self._frame, self.config.use_velocity)
            out.append((i, box))
        return out

    def cost_matrix(self, kps: Sequence[np.ndarray], boxes: Sequence[np.ndarray], live: Sequence[int]) -> np.ndarray:
        """Assignment cost ``(len(live), len(kps))`` between live tracks and this frame's detections."""
        cfg = self.config
        cost = np.zeros((len(live), len(kps)))
        if not live or not kps:
            return cost
        preds = [self._tracks[i].predict(self._frame, cfg.use_velocity) for i in live]
        iou = box_iou(np.stack([b for _, b in preds]), np.stack(boxes))  # (N_tracks, N_dets)
        for r, (pkp, pbox) in enumerate(preds):
            diag = max(float(np.hypot(pbox[2] - pbox[0], pbox[3] - pbox[1])), 1.0)
            for c, kp in enumerate(kps):
                d = keypoint_distance(pkp, kp, min_score=cfg.min_score)
                if d is None:  # no joint seen in both: fall back on the box centres
                    d = float(np.hypot(*(0.5 * (pbox[:2] + pbox[2:]) - 0.5 * (boxes[c][:2] + boxes[c][2:]))))
                d /= diag
                cost[r, c] = cfg.iou_weight * (1.0 - iou[r, c]) + cfg.kp_weight * min(d, 1.0)
        return cost

    def update(
        self,
        kps: Sequence[np.ndarray],
        boxes: Sequence[np.ndarray | None] | None = None,
        *,
        links: Sequence[int] | None = None,
    ) -> list[int]:
        """Link one frame's detections to tracks.

        Args:
            kps: ``(17, 3)`` keypoints per detection (may be empty).
            boxes: a box per detection (None: the keypoints' box).
            links: per detection, the internal track index it is known to continue (the backend followed that person
                from the previous frame), or -1; known links are kept (when the track is live and not taken twice),
                the other detections are assigned by cost.

        Returns:
            The internal track index given to each detection (numbered by first appearance, from 0; the final ids
            of :meth:`finish` differ when short tracks are dropped: use ``Tracks.det_index`` to map detections).
        """
        cfg = self.config
        kps = [_check_kp(k) for k in kps]
        if boxes is None:
            boxes = [None] * len(kps)
        if len(boxes) != len(kps):
            raise ValueError(f"{len(kps)} keypoint sets but {len(boxes)} boxes")
        full_boxes = []
        for kp, b in zip(kps, boxes):
            if b is None:
                b = keypoint_box(kp, min_score=cfg.min_score)
                if b is None:
                    b = keypoint_box(kp, min_score=-np.inf)
            full_boxes.append(np.asarray(b, np.float64).reshape(4))
        live = self._live(self._frame)
        assigned = [-1] * len(kps)
        if links is not None:
            if len(links) != len(kps):
                raise ValueError(f"{len(kps)} keypoint sets but {len(links)} links")
            for c, t in enumerate(links):
                if t in live and t not in assigned:
                    assigned[c] = int(t)
        free = [t for t in live if t not in assigned]
        todo = [c for c in range(len(kps)) if assigned[c] < 0]
        if free and todo:
            cost = self.cost_matrix([kps[c] for c in todo], [full_boxes[c] for c in todo], free)
            rows, cols = linear_sum_assignment(cost)
            for r, c in zip(rows, cols):
                if cost[r, c] <= cfg.max_cost:
                    assigned[todo[c]] = free[r]
        for c, kp in enumerate(kps):
            if assigned[c] < 0:
                self._tracks.append(_Track(first=self._frame))
                assigned[c] = len(self._tracks) - 1
            t = self._tracks[assigned[c]]
            t.frames.append(self._frame)
            t.kps.append(kp.astype(np.float64))
            t.boxes.append(full_boxes[c])
            t.dets.append(c)
        self._frame += 1
        return assigned

    def finish(self) -> Tracks:
        """All tracks so far as arrays, short tracks dropped, gaps up to ``max_interp_gap`` interpolated."""
        cfg = self.config
        min_len = cfg.min_track_len if self._frame >= cfg.min_track_len else 1  # short clips: keep everybody
        keep = [t for t in self._tracks if len(t.frames) >= min_len]
        T, P = self._frame, len(keep)
        kp2d = np.zeros((T, P, NUM_JOINTS, 3), np.float32)
        boxes = np.zeros((T, P, 4), np.float32)
        valid = np.zeros((T, P), bool)
        interp = np.zeros((T, P), bool)
        det = np.full((T, P), -1, np.int64)
        for p, t in enumerate(keep):
            f = np.asarray(t.frames)
            kp2d[f, p] = np.stack(t.kps)
            boxes[f, p] = np.stack(t.boxes)
            valid[f, p] = True
            det[f, p] = t.dets
            for a, b in zip(t.frames[:-1], t.frames[1:]):
                if 1 < b - a <= cfg.max_interp_gap + 1:
                    w = (np.arange(a + 1, b) - a) / (b - a)  # (G,) in (0, 1)
                    kp_a, kp_b = kp2d[a, p].astype(np.float64), kp2d[b, p].astype(np.float64)
                    xy = (1 - w)[:, None, None] * kp_a[None, :, :2] + w[:, None, None] * kp_b[None, :, :2]
                    score = np.minimum(kp_a[:, 2], kp_b[:, 2])  # only as sure as the less sure end
                    kp2d[a + 1 : b, p, :, :2] = xy
                    kp2d[a + 1 : b, p, :, 2] = score
                    boxes[a + 1 : b, p] = (1 - w)[:, None] * boxes[a, p] + w[:, None] * boxes[b, p]
                    valid[a + 1 : b, p] = True
                    interp[a + 1 : b, p] = True
        return Tracks(kp2d=kp2d, boxes=boxes, valid=valid, interpolated=interp, det_index=det,
                      track_ids=np.arange(1, P + 1, dtype=np.int64))


def _check_kp(kp: np.ndarray) -> np.ndarray:
    kp = np.asarray(kp, np.float64)
    if kp.shape != (NUM_JOINTS, 3):
        raise InputError(f"a detection must be COCO-17 keypoints of shape (17, 3), got {kp.shape}")
    if not np.isfinite(kp).all():
        raise InputError("detection keypoints contain NaN or inf")
    return kp


def track(
    detections: Sequence[Sequence[np.ndarray]],
    *,
    boxes: Sequence[Sequence[np.ndarray | None]] | None = None,
    config: TrackerConfig | None = None,
) -> Tracks:
    """Track people over a clip.

    Args:
        detections: per frame, a list of ``(17, 3)`` keypoints (an empty list for a frame with nobody).
        boxes: per frame, an optional box per detection (x0, y0, x1, y1); None uses the keypoints' boxes.
        config: a :class:`TrackerConfig`.

    Returns:
        :class:`Tracks` with ``T == len(detections)``.
    """
    tracker = Tracker(config=config)
    for t, kps in enumerate(detections):
        tracker.update(kps, None if boxes is None else boxes[t])
    return tracker.finish()
