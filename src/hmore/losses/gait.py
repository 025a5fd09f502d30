"""Losses of set-based gait recognisers (GaitBase): batch-all triplet loss and cross-entropy over horizontal strips.

OpenGait's ``TripletLoss`` (margin 0.2): for every strip separately, every (anchor, positive, negative) triplet of the
batch contributes ``relu(d(a, p) - d(a, n) + margin)`` with Euclidean distances; the loss is the sum over triplets
divided by the number of triplets that still violate the margin (so it does not fade as most triplets get easy),
averaged over strips.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def batch_all_triplet_loss(embeddings: torch.Tensor, labels: torch.Tensor, *, margin: float = 0.2) -> torch.Tensor:
    """Batch-all triplet loss, averaged over strips.

    Args:
        embeddings: (B, P, D) per-strip embeddings.
        labels: (B,) integer identities.
        margin: the hinge margin.

    Returns:
        A scalar; 0 when the batch has no triplet (no identity with two samples, or a single identity).
    """
    if embeddings.ndim != 3 or labels.shape != embeddings.shape[:1]:
        raise ValueError(f"batch_all_triplet_loss: embeddings (B, P, D) and labels (B,) expected, got "
                         f"{tuple(embeddings.shape)} and {tuple(labels.shape)}")
    x = embeddings.float().transpose(0, 1)  # (P, B, D)
    dist = torch.cdist(x, x).clamp_min(0.0)  # (P, B, B)
    same = labels[:, None] == labels[None, :]  # (B, B)
    eye = torch.eye(len(labels), dtype=torch.bool, device=labels.device)
    pos = same & ~eye
    neg = ~same
    valid = pos[:, :, None] & neg[:, None, :]  # (B, B, B): anchor a, positive p, negative n
    hinge = F.relu(dist[:, :, :, None] - dist[:, :, None, :] + margin)  # (P, a, p, n)
    hinge = hinge * valid
    active = (hinge > 0).sum(dim=(1, 2, 3)).clamp_min(1)  # (P,)
    return (hinge.sum(dim=(1, 2, 3)) / active).mean()


def part_cross_entropy(logits: torch.Tensor, labels: torch.Tensor, *, label_smoothing: float = 0.0) -> torch.Tensor:
    """Cross-entropy of every strip's logits (B, P, K) against ``labels`` (B,), averaged over strips and samples."""
    if logits.ndim != 3 or labels.shape != logits.shape[:1]:
        raise ValueError(f"part_cross_entropy: logits (B, P, K) and labels (B,) expected, got {tuple(logits.shape)} "
                         f"and {tuple(labels.shape)}")
    b, p, k = logits.shape
    return F.cross_entropy(logits.float().reshape(b * p, k), labels.repeat_interleave(p),
                           label_smoothing=label_smoothing)
