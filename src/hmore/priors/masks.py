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
    probs = np.stack([np.asarray(m, np.float32) for m in person_masks])  # (P, H, W)
    best = probs.argmax(axis=0)  # (H, W)
    inside = probs.max(axis=0) > threshold
    lut = np.asarray(ids, np.uint8)
    return np.where(inside, lut[best], 0).astype(np.uint8)


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
