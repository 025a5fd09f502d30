"""Person masks: per-person probability maps combined into one instance mask per frame, and its boundaries.

Instance masks are ``(H, W)`` uint8 with 0 for background and a person's track id (1..255) on its pixels, the same
ids as the keypoint tracks. Boundaries are the Canny edges of the instance mask: between people and background and
between two touching people, which is what H-MoRe's boundary constraint needs.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np


def instance_mask(
    person_masks: Sequence[np.ndarray],
    ids: Sequence[int],
    *,
    threshold: float = 0.5,
    shape: tuple[int, int] | None = None,
) -> np.ndarray:
    """Combine per-person probability maps into one id map.

    Args:
        person_masks: ``(H, W)`` float probabilities (or bool masks), one per person.
        ids: the id to paint for each person (1..255).
        threshold: a pixel belongs to a person when its probability is above this; where several are, the most
            probable one wins.
        shape: ``(H, W)`` of the output when there are no masks.

    Returns:
        ``(H, W)`` uint8 ids, 0 background.
    """
    if len(person_masks) != len(ids):
        raise ValueError(f"{len(person_masks)} masks but {len(ids)} ids")
    if any(not 0 < int(i) < 256 for i in ids):
        raise ValueError(f"instance ids must be in 1..255, got {list(ids)}")
    if not person_masks:
        if shape is None:
            raise ValueError("no masks and no shape")
        return np.zeros(shape, np.uint8)
    first = np.asarray(person_masks[0], np.float32)
    best = np.full(first.shape, threshold, np.float32)  # (H, W) highest probability so far, at least the threshold
    out = np.zeros(first.shape, np.uint8)
    for m, i in zip(person_masks, ids):  # one pass per person: no (P, H, W) stack
        m = np.asarray(m, np.float32)
        win = m > best
        out[win] = int(i)
        best[win] = m[win]
    return out


def split_person_masks(
    probs: Sequence[np.ndarray],
    kps: Sequence[np.ndarray],
    *,
    threshold: float = 0.5,
    min_score: float = 0.3,
    reach: float = 0.5,
) -> list[np.ndarray]:
    """Split segmentations that each cover everybody in a person's crop into one mask per person, seeded by pose.

    1. A person's *seeds* are their seen bones (both joints with score >= ``min_score``) drawn as lines, and their
       seen joints.
    2. A person keeps only the connected parts of their own mask (``probs[k] > threshold``) that touch a seed and
       lie within ``reach`` x their size (the longer side of their seen joints' box) of one: another person in the
       crop, or a caption banner, is not theirs.
    3. A pixel kept by several people goes to the one whose nearest seed is closest, in units of each one's size.
       This is the depth cue: where two people overlap, the one in front has its joints seen there and the one
       behind has them missing (hidden joints are not seeds), so the pixel goes to the one in front.

    Args:
        probs: ``(H, W)`` float probability maps, one per person.
        kps: ``(17, 3)`` COCO-17 keypoints (x, y, score) per person, in the maps' pixels.
        threshold: probability above which a pixel is a candidate.
        min_score: joints at least this sure are seeds.
        reach: how far from their seeds a person's pixels may be, in units of their size.

    Returns:
        Per person, ``probs[k]`` where the pixel is theirs and 0 elsewhere (float32).
    """
    from hmore.skeleton import COCO17

    if len(probs) != len(kps):
        raise ValueError(f"{len(probs)} masks but {len(kps)} keypoint sets")
    if not probs:
        return []
    shape = np.asarray(probs[0]).shape
    best = np.full(shape, np.inf, np.float32)  # (H, W) distance to the nearest seed of the owner so far
    owner = np.full(shape, -1, np.int32)
    for k, (prob, kp) in enumerate(zip(probs, kps)):
        prob = np.asarray(prob, np.float32)
        if prob.shape != shape:
            raise ValueError(f"masks must share one shape, got {prob.shape} and {shape}")
        kp = np.asarray(kp, np.float64)
        seen = kp[:, 2] >= min_score
        cand = prob > threshold
        x0, y0, w, h = cv2.boundingRect(cand.view(np.uint8))  # work in the candidates' box only
        if seen.sum() == 0 or w == 0:
            continue
        x1, y1 = x0 + w, y0 + h
        xy = kp[seen, :2]
        size = max(float((xy.max(0) - xy.min(0)).max()), 8.0)
        seeds = np.zeros((y1 - y0, x1 - x0), np.uint8)
        pts = np.round(kp[:, :2] - [x0, y0]).astype(np.int32)
        width = max(1, int(round(0.02 * size)))
        for a, b in COCO17.bones:
            if seen[a] and seen[b]:
                cv2.line(seeds, tuple(int(v) for v in pts[a]), tuple(int(v) for v in pts[b]), 1, width)
        for j in np.flatnonzero(seen):
            cv2.circle(seeds, tuple(int(v) for v in pts[j]), width, 1, -1)
        sub = cand[y0:y1, x0:x1].astype(np.uint8)
        dist = cv2.distanceTransform((seeds == 0).astype(np.uint8), cv2.DIST_L2, 3) / np.float32(size)
        _, labels = cv2.connectedComponents(sub, connectivity=8)
        touched = np.unique(labels[(seeds > 0) & (sub > 0)])
        keep = np.isin(labels, touched[touched > 0]) & (dist <= reach)
        win = keep & (dist < best[y0:y1, x0:x1])
        best[y0:y1, x0:x1][win] = dist[win]
        owner[y0:y1, x0:x1][win] = k
    out = []
    for k, prob in enumerate(probs):
        mine = owner == k
        x0, y0, w, h = cv2.boundingRect(mine.view(np.uint8))
        m = np.zeros(shape, np.float32)
        if w:
            crop = (slice(y0, y0 + h), slice(x0, x0 + w))
            m[crop] = np.where(mine[crop], np.asarray(prob, np.float32)[crop], 0.0)
        out.append(m)
    return out


def boundaries(instance: np.ndarray) -> np.ndarray:
    """Canny edges of an instance mask ``(H, W)``: uint8, 1 on boundary pixels (id changes), 0 elsewhere."""
    m = np.asarray(instance)
    if m.ndim != 2:
        raise ValueError(f"instance mask must be (H, W), got {m.shape}")
    # Spread ids over the grey range so that any id change is a strong step, then any gradient is an edge.
    levels = np.where(m > 0, 64 + (m.astype(np.int64) * 37) % 192, 0).astype(np.uint8)
    return (cv2.Canny(levels, 1, 1) > 0).astype(np.uint8)


def resize_mask(mask: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """An id or probability map resized to ``size`` = (width, height): nearest for integer ids, linear otherwise."""
    m = np.asarray(mask)
    interp = cv2.INTER_NEAREST if m.dtype.kind in "iub" else cv2.INTER_LINEAR
    src = m.astype(np.uint8) if m.dtype == bool else m
    out = cv2.resize(src, size, interpolation=interp)
    return out.astype(bool) if m.dtype == bool else out
