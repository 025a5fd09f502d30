"""Checks of a generated clip's ground truth against its own frames."""

from __future__ import annotations

import cv2
import numpy as np

from hmore.synth.clip import Clip


def warp_error(clip: Clip, region: np.ndarray) -> tuple[float, float]:
    """How well the flow reproduces the next frame: mean |frame_t - frame_{t+1}(x + flow(x))| (bilinear, grey levels
    averaged over RGB) and the same with zero flow, over ``region`` (T-1, H, W) pixels that stay visible (the
    generator's depth check, ``clip.flow_valid``) and keep their subject label on all four bilinear neighbours.

    Exact flow leaves only interpolation error (texture detail, silhouettes, self-occlusion edges).
    """
    if clip.flow_valid is None:
        raise ValueError("warp_error needs a freshly rendered clip (flow_valid is not saved)")
    T, H, W = clip.masks.shape
    jj, ii = np.meshgrid(np.arange(W, dtype=np.float32), np.arange(H, dtype=np.float32))
    errs, zeros = [], []
    for t in range(T - 1):
        mx, my = jj + clip.flow[t, ..., 0], ii + clip.flow[t, ..., 1]
        nxt = clip.frames[t + 1].astype(np.float32)
        warped = cv2.remap(nxt, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        cur = clip.frames[t].astype(np.float32)
        x0 = np.clip(np.floor(mx), 0, W - 2).astype(int)
        y0 = np.clip(np.floor(my), 0, H - 2).astype(int)
        same = np.ones((H, W), dtype=bool)
        for dy in (0, 1):
            for dx in (0, 1):
                same &= clip.masks[t + 1][y0 + dy, x0 + dx] == clip.masks[t]
        ok = region[t] & clip.flow_valid[t] & same
        errs.append(np.abs(warped - cur).mean(-1)[ok])
        zeros.append(np.abs(nxt - cur).mean(-1)[ok])
    return float(np.concatenate(errs).mean()), float(np.concatenate(zeros).mean())
