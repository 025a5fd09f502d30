"""Fusing extra inputs (flow) with a base input (silhouette, RGB), shared by the downstream models.

Early fusion (``gaitbase_*``, ``r2plus1d_*``): flow channels stacked after the base input only widen the first
convolution. Scaling their initial weights by ``scale`` (0: the network starts as the base-input-only one and learns
how much flow to take in) keeps randomly initialised flow filters from feeding noise in at the base input's gain for a
whole short CPU schedule (README "Downstream": the gait experiments).

Late fusion (two streams, Simonyan & Zisserman, NeurIPS 2014; TSN, ECCV 2016): a base-input network and a flow-only
network are trained apart and their class probabilities averaged with a weight chosen on held-out data
(:func:`late_fusion`, :func:`choose_fusion_weight`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

FUSION_WEIGHTS = tuple(round(0.1 * k, 1) for k in range(11))  # the grid choose_fusion_weight searches by default


def scale_extra_inputs(conv: nn.Module, *, base_channels: int, scale: float) -> None:
    """Multiply ``conv.weight[:, base_channels:]`` (the input channels after the base ones) by ``scale`` in place.

    Raises:
        ValueError: ``conv`` has no weight with at least ``base_channels`` input channels.
    """
    weight = getattr(conv, "weight", None)
    if not isinstance(weight, torch.Tensor) or weight.ndim < 2 or weight.shape[1] < base_channels:
        raise ValueError(f"scale_extra_inputs: a convolution with >= {base_channels} input channels expected")
    if scale == 1.0:
        return
    with torch.no_grad():
        weight[:, base_channels:] *= scale  # (out, in, *kernel): input channels base_channels.. are the extra ones


def late_fusion(base: np.ndarray, extra: np.ndarray, weight: float) -> np.ndarray:
    """``(1 - weight) * base + weight * extra``: two streams' (N, classes) class probabilities averaged.

    Raises:
        ValueError: shapes differ, or ``weight`` outside [0, 1].
    """
    base, extra = np.asarray(base, np.float64), np.asarray(extra, np.float64)
    if base.shape != extra.shape or base.ndim != 2:
        raise ValueError(f"late_fusion: two (N, classes) arrays expected, got {base.shape} and {extra.shape}")
    if not 0.0 <= weight <= 1.0:
        raise ValueError(f"late_fusion: weight must lie in [0, 1], got {weight}")
    return (1.0 - weight) * base + weight * extra


def choose_fusion_weight(base: np.ndarray, extra: np.ndarray, labels: np.ndarray,
                         weights: Sequence[float] = FUSION_WEIGHTS) -> tuple[float, float]:
    """The weight of :func:`late_fusion` with the highest top-1 on held-out clips, and that top-1 (0..1).

    Ties (a few dozen clips give few distinct accuracies) go to the higher mean log-probability of the true class,
    then to the lower weight (the base stream alone unless the extra stream earns its share).

    Raises:
        ValueError: no weights, or labels that do not match the probabilities.
    """
    labels = np.asarray(labels, np.int64)
    if not len(weights):
        raise ValueError("choose_fusion_weight: no weights to choose from")
    if labels.shape != np.asarray(base).shape[:1]:
        raise ValueError(f"choose_fusion_weight: labels {labels.shape} do not match probabilities "
                         f"{np.asarray(base).shape}")
    best: tuple[float, float, float] | None = None  # (top-1, log-likelihood, -weight)
    for w in sorted(weights):
        p = late_fusion(base, extra, w)
        top1 = float(np.mean(p.argmax(axis=1) == labels)) if len(labels) else 0.0
        ll = float(np.mean(np.log(np.maximum(p[np.arange(len(labels)), labels], 1e-12)))) if len(labels) else 0.0
        key = (top1, round(ll, 9), -w)  # rounded: equal streams tie whatever the rounding of the average
        if best is None or key > best:
            best = key
    assert best is not None
    return -best[2], best[0]
