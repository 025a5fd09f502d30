"""Supervised sequence loss over refinement iterations (RAFT, Teed & Deng 2020, eq. 7) and the end-point error."""

from __future__ import annotations

import torch


def _valid_weights(target: torch.Tensor, valid: torch.Tensor | None, max_flow: float | None) -> torch.Tensor:
    """(B, H, W) float weights: ``valid`` (default ones), zeroed where the target is non-finite or too long."""
    b, _, h, w = target.shape
    if valid is None:
        weight = target.new_ones(b, h, w)
    else:
        if valid.shape != (b, h, w):
            raise ValueError(f"valid must be (B, H, W) = {(b, h, w)}, got {tuple(valid.shape)}")
        weight = valid.to(target.dtype)
    finite = torch.isfinite(target).all(dim=1)
    weight = weight * finite.to(weight.dtype)
    if max_flow is not None:
        mag = torch.linalg.vector_norm(torch.nan_to_num(target), dim=1)
        weight = weight * (mag < max_flow).to(weight.dtype)
    return weight


def sequence_loss(iterations: torch.Tensor, target: torch.Tensor, valid: torch.Tensor | None = None, *,
                  gamma: float = 0.8, max_flow: float | None = 400.0) -> torch.Tensor:
    """Sum over iterations i = 1..N of gamma^(N - i) * mean |flow_i - target| over valid pixels.

    The mean runs over both flow channels of the valid pixels; the last iteration has weight 1.

    Args:
        iterations: (N, B, 2, H, W) predicted flows, one per refinement iteration.
        target: (B, 2, H, W) ground-truth flow; non-finite pixels are ignored.
        valid: (B, H, W) bool or 0/1 weights of the pixels that count, or None for all.
        gamma: decay of the weights of earlier iterations (RAFT: 0.8).
        max_flow: pixels whose target is at least this long are ignored (None: keep all).

    Returns:
        A scalar tensor; 0 (with a gradient path) when no pixel is valid.

    Raises:
        ValueError: on mismatched shapes.
    """
    if iterations.ndim != 5 or iterations.shape[2] != 2:
        raise ValueError(f"iterations must be (N, B, 2, H, W), got {tuple(iterations.shape)}")
    if target.shape != iterations.shape[1:]:
        raise ValueError(f"target must be (B, 2, H, W) = {tuple(iterations.shape[1:])}, got {tuple(target.shape)}")
    n = iterations.shape[0]
    weight = _valid_weights(target, valid, max_flow)  # (B, H, W)
    err = (iterations - torch.nan_to_num(target)[None]).abs()  # (N, B, 2, H, W)
    per_iter = (err * weight[None, :, None]).sum(dim=(1, 2, 3, 4)) / (2.0 * weight.sum()).clamp_min(1.0)  # (N,)
    decay = gamma ** torch.arange(n - 1, -1, -1, device=iterations.device, dtype=per_iter.dtype)  # (N,)
    return (decay * per_iter).sum()


def endpoint_error(flow: torch.Tensor, target: torch.Tensor, valid: torch.Tensor | None = None) -> torch.Tensor:
    """Mean end-point error ||flow - target||_2 over valid pixels, a scalar tensor (0 when no pixel is valid).

    Args:
        flow: (B, 2, H, W) predicted flow.
        target: (B, 2, H, W) ground truth; non-finite pixels are ignored.
        valid: (B, H, W) pixels that count, or None for all.
    """
    if flow.shape != target.shape or flow.ndim != 4 or flow.shape[1] != 2:
        raise ValueError(
            f"flow and target must both be (B, 2, H, W), got {tuple(flow.shape)} and {tuple(target.shape)}"
        )
    weight = _valid_weights(target, valid, None)
    epe = torch.linalg.vector_norm(flow - torch.nan_to_num(target), dim=1)  # (B, H, W)
    return (epe * weight).sum() / weight.sum().clamp_min(1.0)
