"""Initial flows for the refinement loop: a classical estimate the recurrent update starts from (warm start).

RAFT starts its refinement from zero flow or from a given ``flow_init`` (its video warm start). ``init="dis"`` makes
the model compute that start itself with OpenCV's DIS optical flow (Kroeger et al. 2016), so a network trained
from scratch on a CPU budget begins from a sensible displacement field and learns the human-centric correction
(people's motion kept and sharpened, background driven to zero) instead of matching from nothing. It is not
differentiable and runs on the CPU whatever the model's device; gradients never flow into it.
"""

from __future__ import annotations

import cv2
import numpy as np
import torch

DIS_PRESETS = {"ultrafast": cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST, "fast": cv2.DISOPTICAL_FLOW_PRESET_FAST,
               "medium": cv2.DISOPTICAL_FLOW_PRESET_MEDIUM}


def _gray_u8(image: torch.Tensor) -> np.ndarray:
    """(3, H, W) RGB in [0, 255] -> (H, W) uint8 grey (ITU-R BT.601 weights, as OpenCV's RGB2GRAY)."""
    rgb = image.detach().to("cpu", torch.float32).clamp(0, 255)
    grey = 0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2]
    return grey.round().to(torch.uint8).numpy()


def dis_flow(image1: torch.Tensor, image2: torch.Tensor, *, preset: str = "medium") -> torch.Tensor:
    """DIS optical flow from ``image1`` to ``image2``, both (B, 3, H, W) RGB in [0, 255] -> (B, 2, H, W) float32.

    The result is on the images' device. Images smaller than DIS's patch (8 px) on a side get zero flow.
    """
    if preset not in DIS_PRESETS:
        raise ValueError(f"unknown DIS preset {preset!r}; choose one of {sorted(DIS_PRESETS)}")
    b, _, h, w = image1.shape
    out = np.zeros((b, 2, h, w), dtype=np.float32)
    if min(h, w) >= 8:
        dis = cv2.DISOpticalFlow_create(DIS_PRESETS[preset])
        for i in range(b):
            flow = dis.calc(_gray_u8(image1[i]), _gray_u8(image2[i]), None)  # (H, W, 2) x, y
            out[i] = flow.transpose(2, 0, 1)
    return torch.from_numpy(out).to(image1.device)
