"""Early fusion of extra input channels (flow) into a network's first convolution, shared by the downstream models
(``gaitbase_*``, ``r2plus1d_*``).

Flow channels stacked after the base input (silhouette, RGB) only widen the first convolution. Scaling their initial
weights by ``scale`` (0: the network starts as the base-input-only one and learns how much flow to take in) keeps
randomly initialised flow filters from feeding noise in at the base input's gain for a whole short CPU schedule
(README "Downstream": the gait experiments).
"""

from __future__ import annotations

import torch
from torch import nn


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
