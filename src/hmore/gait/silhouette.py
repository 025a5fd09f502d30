"""Silhouettes cropped and resized as OpenGait's pre-treatment does, and the same crop applied to flow fields.

OpenGait (``datasets/pretreatment.py`` + ``BaseSilCuttingTransform``): keep the rows that hold the silhouette, resize
them to 64 rows keeping the aspect ratio, find the column where the cumulative silhouette mass passes half of it, cut
64 columns centred there (zero padding at the borders), then drop 10 columns on each side: 64 x 44.

:class:`CropBox` records one frame's crop so that flow fields (and any other per-pixel map) of that frame can be
cropped identically; flow vectors are scaled by the resize factors.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

SIL_HEIGHT = 64
SIL_CUT = 10  # columns dropped on each side of the 64-wide crop (OpenGait's BaseSilCuttingTransform for 64x64)
SIL_WIDTH = SIL_HEIGHT - 2 * SIL_CUT  # 44


@dataclass(frozen=True)
class CropBox:
    """One frame's crop: rows ``top..bottom`` of the source, resized to ``SIL_HEIGHT`` x ``width`` pixels, then
    columns ``left .. left + SIL_WIDTH`` of the resized rows padded by ``SIL_HEIGHT // 2`` zeros on each side.

    Attributes:
        top, bottom: first and last source rows of the silhouette (inclusive).
        width: width of the resized rows.
        left: first output column in the padded resized rows.
        sx, sy: resize factors (x: width / source width; y: SIL_HEIGHT / rows).
    """

    top: int
    bottom: int
    width: int
    left: int
    sx: float
    sy: float

    def apply(self, image: np.ndarray, *, flow: bool = False) -> np.ndarray:
        """Crop (H, W) or (H, W, C) ``image`` (same size as the mask the box came from) to (64, 44[, C]) float32.

        With ``flow=True`` the last axis holds (dx, dy) vectors, scaled by (sx, sy).
        """
        rows = np.asarray(image, np.float32)[self.top:self.bottom + 1]
        shrink = rows.shape[0] > SIL_HEIGHT
        resized = cv2.resize(rows, (self.width, SIL_HEIGHT), interpolation=cv2.INTER_AREA if shrink else
                             cv2.INTER_LINEAR)
        if resized.ndim < rows.ndim:  # cv2 drops a trailing axis of length 1
            resized = resized[..., None]
        if flow:
            resized = resized * np.array([self.sx, self.sy], np.float32)
        half = SIL_HEIGHT // 2
        pad = [(0, 0), (half, half)] + [(0, 0)] * (resized.ndim - 2)
        padded = np.pad(resized, pad)
        return np.ascontiguousarray(padded[:, self.left:self.left + SIL_WIDTH])


def crop_box(mask: np.ndarray) -> CropBox | None:
    """The OpenGait crop of a binary silhouette (H, W) (nonzero = person); None when it is empty."""
    fg = np.asarray(mask) > 0
    rows = np.flatnonzero(fg.any(axis=1))
    if rows.size == 0:
        return None
    top, bottom = int(rows[0]), int(rows[-1])
    h_src, w_src = bottom - top + 1, fg.shape[1]
    width = max(1, int(round(w_src * SIL_HEIGHT / h_src)))
    part = fg[top:bottom + 1].astype(np.float32)
    resized = cv2.resize(part, (width, SIL_HEIGHT), interpolation=cv2.INTER_AREA if h_src > SIL_HEIGHT else
                         cv2.INTER_LINEAR)
    csum = np.cumsum(resized.sum(axis=0))
    centre = int(np.argmax(csum > csum[-1] / 2.0))  # the column where the mass passes half
    half = SIL_HEIGHT // 2
    left = centre - half + half + SIL_CUT  # in the padded rows: centre + half is the centre; 64 wide, then cut 10
    return CropBox(top=top, bottom=bottom, width=width, left=left, sx=width / w_src, sy=SIL_HEIGHT / h_src)


def crop_silhouette(mask: np.ndarray, box: CropBox | None = None) -> np.ndarray:
    """(64, 44) uint8 silhouette (0-255, soft edges) of a binary mask; zeros when the mask is empty."""
    box = crop_box(mask) if box is None else box
    if box is None:
        return np.zeros((SIL_HEIGHT, SIL_WIDTH), np.uint8)
    sil = box.apply((np.asarray(mask) > 0).astype(np.float32) * 255.0)
    return np.clip(np.rint(sil), 0, 255).astype(np.uint8)
