"""Which joints of a BlazePose fit are reported, and which fits are not people at all.

**Per-joint visibility.** A landmark is reported (score = its visibility) only when the model says it is inside the
crop (presence >= ``min_presence``) and it lies inside both the frame and the ROI the model was run on. Otherwise
it is *missing*: ``(0, 0, 0)``, as COCO writes a joint that is not labelled. A crop that holds only legs therefore
gives hips, knees and ankles, and no face squeezed onto the feet. The same holds for a head out of view: the face
joints (nose, eyes, ears) are missing when :func:`clipped_face` finds (a) a hip but neither shoulder (the head cannot
be in view with the hips while the shoulders between them are not), or (b) the nose less than ``0.15`` torso lengths
above the mid-shoulder along the torso axis while the top of a head there (``0.35`` torso lengths further up) would lie
outside the frame: the model squeezes a head above the frame onto its edge.

**Implausible skeletons** are rejected by :func:`implausible`, which returns the first rule a fit breaks:

1. ``evidence``: fewer than ``min_joints`` joints with score >= 0.3.
2. ``collapsed``: the reported joints span less than ``min_extent`` of the ROI's side (the model, given a crop without
   a person, tends to fold a whole skeleton into a small blob).
3. ``proportions``: a limb bone (upper arm, forearm, thigh, shin) longer than ``max_bone`` x its share of body height
   (Drillis & Contini's segment lengths) x the body height the ROI implies (side / 1.25). Foreshortening only
   shortens a bone in 2D, so a much longer one means joints placed on something else.
4. ``flipped``: the torso axis (mid-hip to mid-shoulder) turned by more than ``max_turn`` degrees since the person's
   previous fit (when it is given): bodies do not turn upside down from one frame to the next, fits on a wrong crop
   do.
5. ``head``: with the nose, both shoulders and both hips reported and a torso longer than 10% of the ROI, the nose
   lies below the middle of the torso along its axis (the head is attached above the shoulders).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from hmore.priors.blazepose import ROI_SCALE, Landmarks
from hmore.skeleton import BLAZEPOSE33, COCO17, convert

NOSE, LSH, RSH, LHIP, RHIP = 0, 5, 6, 11, 12
FACE = (0, 1, 2, 3, 4)  # COCO nose, eyes, ears
TORSO = (LSH, RSH, LHIP, RHIP)
# COCO-17 limb bones and their length as a fraction of body height (Drillis & Contini 1966, via Winter's
# "Biomechanics and Motor Control of Human Movement": upper arm 0.186, forearm 0.146, thigh 0.245, shank 0.246).
LIMB_SHARE = {(5, 7): 0.186, (6, 8): 0.186, (7, 9): 0.146, (8, 10): 0.146, (11, 13): 0.245, (12, 14): 0.245,
              (13, 15): 0.246, (14, 16): 0.246}
CONFIDENT = 0.3  # joints at least this sure count as seen (the score the preview draws from)


def landmarks_to_coco(lm: Landmarks, frame_size: tuple[int, int], *, min_presence: float = 0.5) -> np.ndarray:
    """COCO-17 ``(17, 3)`` float32 x, y, score of one fit, with missing joints (see the module docstring) as zeros.

    Args:
        lm: the landmark model's output.
        frame_size: (width, height) of the frame.
        min_presence: a landmark less likely than this to be inside the crop is missing.
    """
    W, H = frame_size
    xy = lm.xy
    inside = (xy[:, 0] >= 0) & (xy[:, 0] < W) & (xy[:, 1] >= 0) & (xy[:, 1] < H) & lm.roi.contains(xy)
    ok = inside & (lm.presence >= min_presence)
    score = np.where(ok, np.clip(lm.visibility, 0.0, 1.0), 0.0)
    kp33 = np.concatenate([xy, score[:, None]], axis=1)  # (33, 3)
    kp = convert(kp33.astype(np.float32), BLAZEPOSE33, COCO17, has_score=True).astype(np.float32)
    kp[kp[:, 2] <= 0] = 0.0  # a COCO joint derived from a missing landmark is missing too
    if clipped_face(kp, frame_size):
        kp[list(FACE)] = 0.0
    return kp


def clipped_face(kp: np.ndarray, frame_size: tuple[int, int], *, min_rise: float = 0.15,
                 head: float = 0.35) -> bool:
    """Whether the face joints of ``kp (17, 3)`` belong to a head that is out of view (see the module docstring).

    Args:
        kp: COCO-17 x, y, score.
        frame_size: (width, height) of the frame.
        min_rise: the nose must lie at least this many torso lengths above the mid-shoulder ...
        head: ... unless a head's top this many torso lengths above the nose would still be inside the frame.
    """
    seen = kp[:, 2] >= CONFIDENT
    if not (kp[list(FACE), 2] > 0).any():
        return False
    if (seen[LHIP] or seen[RHIP]) and not (seen[LSH] or seen[RSH]):
        return True
    t = torso(kp)
    if t is None or not seen[NOSE]:
        return False
    if float(np.dot(kp[NOSE, :2] - t.shoulder, t.axis)) >= min_rise * t.length:
        return False
    W, H = frame_size
    top = kp[NOSE, :2] + t.axis * head * t.length
    return not (0 <= top[0] < W and 0 <= top[1] < H)


class Torso(NamedTuple):
    """Mid-shoulder and mid-hip (x, y), their distance and the unit axis from hip to shoulder."""

    shoulder: np.ndarray
    hip: np.ndarray
    length: float
    axis: np.ndarray


def torso(kp: np.ndarray) -> Torso | None:
    """The torso of ``kp (17, 3)`` (None when a shoulder or hip is missing or the two midpoints coincide)."""
    if (kp[list(TORSO), 2] < CONFIDENT).any():
        return None
    shoulder, hip = kp[[LSH, RSH], :2].mean(0), kp[[LHIP, RHIP], :2].mean(0)
    n = float(np.linalg.norm(shoulder - hip))
    return None if n < 1e-6 else Torso(shoulder, hip, n, (shoulder - hip) / n)


def torso_axis(kp: np.ndarray) -> np.ndarray | None:
    """Unit vector from mid-hip to mid-shoulder of ``kp (17, 3)`` (None as :func:`torso`)."""
    t = torso(kp)
    return None if t is None else t.axis


def implausible(
    kp: np.ndarray,
    roi_size: float,
    *,
    previous: np.ndarray | None = None,
    min_joints: int = 4,
    min_extent: float = 0.15,
    max_bone: float = 1.6,
    max_turn: float = 90.0,
) -> str | None:
    """The first rule of the module docstring that the fit ``kp (17, 3)`` breaks, or None for a plausible person.

    Args:
        kp: COCO-17 x, y, score (missing joints have score 0).
        roi_size: side of the ROI the fit came from (pixels).
        previous: the same person's keypoints in the previous frame, for the ``flipped`` rule.
        min_joints, min_extent, max_bone, max_turn: the thresholds of rules 1-4.
    """
    seen = kp[:, 2] >= CONFIDENT
    if seen.sum() < min_joints:
        return "evidence"
    xy = kp[seen, :2]
    extent = float(np.hypot(*(xy.max(0) - xy.min(0))))
    if extent < min_extent * roi_size:
        return "collapsed"
    height = roi_size / ROI_SCALE
    for (a, b), share in LIMB_SHARE.items():
        if seen[a] and seen[b] and np.linalg.norm(kp[a, :2] - kp[b, :2]) > max_bone * share * height:
            return "proportions"
    t = torso(kp)
    if previous is not None and t is not None:
        before = torso_axis(previous)
        if before is not None and float(np.dot(t.axis, before)) < math.cos(math.radians(max_turn)):
            return "flipped"
    if t is not None and seen[NOSE]:
        if t.length > 0.1 * roi_size and float(np.dot(kp[NOSE, :2] - t.hip, t.axis)) < 0.5 * t.length:
            return "head"
    return None
