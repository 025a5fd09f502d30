"""HuMoCon's losses (docs/humocon.md): masked reconstruction, the two informativeness terms (discriminative and
actionable, InfoCon's mechanism) and the video-motion alignment (InfoNCE with a learnt temperature).

Each returns a scalar; the training task weights and switches them (``hmore.train.tasks.concepts``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def masked_mse(pred: torch.Tensor, target: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Mean squared error over the valid frames: pred, target (B, T, C), valid (B, T) bool; 0 when none is valid."""
    if pred.shape != target.shape or valid.shape != pred.shape[:2]:
        raise ValueError(f"masked_mse: pred {tuple(pred.shape)}, target {tuple(target.shape)}, valid "
                         f"{tuple(valid.shape)} disagree")
    w = valid.to(pred.dtype)
    per_frame = ((pred - target) ** 2).mean(dim=-1)  # (B, T)
    return (per_frame * w).sum() / w.sum().clamp_min(1.0)


def reconstruction_loss(pred: torch.Tensor, target: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Masked reconstruction: L2 between the decoder's output (from tokens, some masked) and the input, over valid
    frames."""
    return masked_mse(pred, target, valid)


def discriminative_loss(logits: torch.Tensor, positive: torch.Tensor, scored: torch.Tensor | None = None,
                        row_weight: torch.Tensor | None = None) -> torch.Tensor:
    """InfoCon's discriminative term: each concept's classifier puts its own states on one side and every other
    state on the other, each side weighted by its inverse size (so a big concept does not drown a small one).

    Args:
        logits: (K, M) classifier logits of K concepts (rows) on M states.
        positive: (K, M) bool, state m belongs to concept k's segments.
        scored: (K, M) bool, the states each row is scored on (None: all); the others count neither as positives
            nor as negatives (e.g. a row per (concept, dataset) scored on that dataset's states only).
        row_weight: (K,) weights of the rows in the mean (None: equal); 0 when they sum to 0.

    Returns:
        Mean over the concepts of the balanced binary cross-entropy; 0 for an empty input.
    """
    if logits.shape != positive.shape or logits.ndim != 2 or (scored is not None and scored.shape != logits.shape):
        raise ValueError(f"discriminative_loss: logits {tuple(logits.shape)}, positive {tuple(positive.shape)} and "
                         f"scored {None if scored is None else tuple(scored.shape)} must be the same (K, M)")
    if logits.numel() == 0:
        return logits.sum()
    pos = positive.to(logits.dtype)
    bce = F.binary_cross_entropy_with_logits(logits, pos, reduction="none")  # (K, M)
    if scored is not None:
        keep = scored.to(logits.dtype)
        pos = pos * keep
        bce = bce * keep
        neg = keep - pos
    else:
        neg = 1 - pos
    n_pos = pos.sum(dim=1, keepdim=True).clamp_min(1.0)
    n_neg = neg.sum(dim=1, keepdim=True).clamp_min(1.0)
    per_row = (bce * pos / n_pos).sum(dim=1) + (bce * neg / n_neg).sum(dim=1)
    if row_weight is None:
        return 0.5 * per_row.mean()
    if row_weight.shape != per_row.shape:
        raise ValueError(f"discriminative_loss: row_weight {tuple(row_weight.shape)} must be ({len(per_row)},)")
    rw = row_weight.to(per_row.dtype)
    return 0.5 * (per_row * rw).sum() / rw.sum().clamp_min(1e-12)


def clustering_loss(latent: torch.Tensor, codebook: torch.Tensor, valid: torch.Tensor, *,
                    tau: float = 0.1) -> torch.Tensor:
    """InfoCon's clustering term: -log of the largest soft assignment softmax(cos(z, c_k) / tau), over valid tokens.

    Args:
        latent: (B, N, D) tokens before quantisation.
        codebook: (K, D) concept vectors.
        valid: (B, N) bool, or float weights of the tokens in the mean.
    """
    sim = F.normalize(latent, dim=-1) @ F.normalize(codebook, dim=-1).t() / tau  # (B, N, K)
    nll = -(sim.log_softmax(dim=-1).max(dim=-1).values)  # (B, N)
    w = valid.to(nll.dtype)
    return (nll * w).sum() / w.sum().clamp_min(1.0)


def consistency_loss(latent_a: torch.Tensor, latent_b: torch.Tensor, codebook: torch.Tensor, valid: torch.Tensor,
                     *, tau: float = 0.1) -> torch.Tensor:
    """Concept consistency between two views of the same moments (issue 16): the symmetric KL divergence
    0.5 (KL(p_a || p_b) + KL(p_b || p_a)) of the soft assignments p = softmax(cos(z, c_k) / tau) over the codebook
    (InfoCon's soft weights), averaged over the valid token pairs; 0 when both views give the same assignment.

    Args:
        latent_a, latent_b: (..., D) tokens before quantisation, paired element by element.
        codebook: (K, D) concept vectors.
        valid: (...) bool, pairs that count, or float weights of the pairs in the mean.
    """
    if latent_a.shape != latent_b.shape or valid.shape != latent_a.shape[:-1]:
        raise ValueError(f"consistency_loss: latents {tuple(latent_a.shape)}, {tuple(latent_b.shape)} and valid "
                         f"{tuple(valid.shape)} disagree")
    c = F.normalize(codebook, dim=-1)
    log_a = (F.normalize(latent_a, dim=-1) @ c.t() / tau).log_softmax(dim=-1)  # (..., K)
    log_b = (F.normalize(latent_b, dim=-1) @ c.t() / tau).log_softmax(dim=-1)
    sym_kl = 0.5 * ((log_a.exp() - log_b.exp()) * (log_a - log_b)).sum(dim=-1)  # (...)
    w = valid.to(sym_kl.dtype)
    return (sym_kl * w).sum() / w.sum().clamp_min(1.0)


def actionable_loss(pred_velocity: torch.Tensor, velocity: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """InfoCon's actionable term: the velocity predicted from [state, d score / d state] against the true joint
    displacement (MSE over frames with a target)."""
    return masked_mse(pred_velocity, velocity, valid)


def info_nce(a: torch.Tensor, b: torch.Tensor, logit_scale: torch.Tensor, *, max_scale: float = 100.0
             ) -> torch.Tensor:
    """Symmetric InfoNCE between paired unit vectors a[i] <-> b[i] (B, D) with a learnt temperature:
    logits = exp(logit_scale) a b^T (the scale capped at ``max_scale``, as CLIP does)."""
    if a.shape != b.shape or a.ndim != 2:
        raise ValueError(f"info_nce: a {tuple(a.shape)} and b {tuple(b.shape)} must be the same (B, D)")
    logits = logit_scale.exp().clamp(max=max_scale) * a @ b.t()
    target = torch.arange(a.shape[0], device=a.device)
    return 0.5 * (F.cross_entropy(logits, target) + F.cross_entropy(logits.t(), target))


__all__ = ["actionable_loss", "clustering_loss", "consistency_loss", "discriminative_loss", "info_nce", "masked_mse",
           "reconstruction_loss"]
