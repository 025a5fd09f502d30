"""The loss of ``hmore train flow`` for one batch, both stages of docs/hmore.md (the loss terms themselves live in
:mod:`hmore.losses`; this module wires them to a :class:`~hmore.flow.data.FlowBatch` and the loss config).

* Stage 1 (``loss.stage: supervised``): the sequence loss against the generator's exact flow plus Psi's loss
  against the exact projected root displacement.
* Stage 2 (``loss.stage: hmore``): the paper's F + alpha G on the world flow plus Psi's loss against the hip-centre
  displacement of the keypoints (the exact root motion on generated samples); optionally a supervised anchor on the
  samples that have ground-truth flow.
* Either stage, on samples without ground truth (real video): a soft-census photometric loss inside the people with
  occluded pixels left out (``loss.photometric_weight``), and the background L1 (``loss.background_l1``).

Target of the world flow (``loss.target``, ours): ``human`` (default) is the generator's flow inside the people's
masks and 0 outside them, since H-MoRe's world flow is human-centric; ``full`` is the optical flow everywhere.
"""

from __future__ import annotations

from typing import Any

import torch

from hmore.flow.config import FlowLossConfig
from hmore.flow.data import FlowBatch


def balance_weights(weight: torch.Tensor, person: torch.Tensor) -> torch.Tensor:
    """Rescale per-pixel loss weights (B, H, W) so that, in every sample, people's pixels (``person`` 1) and the
    background's each sum to half the pixel count (a group with no weight stays 0)."""
    n = float(person.shape[1] * person.shape[2])
    people = (weight * person).sum(dim=(1, 2), keepdim=True).clamp_min(1e-6)  # (B, 1, 1)
    rest = (weight * (1.0 - person)).sum(dim=(1, 2), keepdim=True).clamp_min(1e-6)
    return weight * (person * (0.5 * n / people) + (1.0 - person) * (0.5 * n / rest))


def dilate_masks(person: torch.Tensor, radius: int) -> torch.Tensor:
    """(B, H, W) bool masks dilated by a square of ``radius`` pixels (max pooling)."""
    if radius <= 0:
        return person
    x = person[:, None].to(torch.float32)
    return torch.nn.functional.max_pool2d(x, 2 * radius + 1, stride=1, padding=radius)[:, 0] > 0


def flow_target(batch: FlowBatch, loss: FlowLossConfig) -> tuple[torch.Tensor, torch.Tensor]:
    """Target flow (B, 2, H, W) and per-pixel weights (B, H, W) of the sequence loss (0 without ground truth)."""
    person = (batch.masks > 0).to(batch.flow.dtype)  # (B, H, W)
    has = batch.has_flow.to(batch.flow.dtype)[:, None, None]  # (B, 1, 1)
    valid = batch.valid.to(batch.flow.dtype)
    if loss.target == "human":
        target = batch.flow * person[:, None]
        weight = person * valid + (1.0 - person) * loss.background_weight
    else:
        target = batch.flow
        weight = valid * (person + (1.0 - person) * loss.background_weight)
    if loss.balance:
        weight = balance_weights(weight, person)
    return target, weight * has


def flow_loss(out: Any, batch: FlowBatch, loss: FlowLossConfig, *,
              leak_dilation: int) -> tuple[torch.Tensor, dict[str, float]]:
    """The total loss of the model output ``out`` (a :class:`~hmore.models.flow.model.FlowOutput`) on ``batch``.

    Args:
        out: the model's output for ``batch``.
        batch: the batch.
        loss: which stage and weights.
        leak_dilation: pixels by which the person masks are dilated before the background L1 (ablation switch).

    Returns:
        ``(total, logs)``: the scalar loss and the float value of each term (``sequence``, ``epe_mask``,
        ``skeleton``, ``boundary``, ``photometric``, ``subject``, ``background_l1`` as they apply).
    """
    from hmore.losses.flow_sequence import endpoint_error, sequence_loss
    from hmore.losses.subject_velocity import hip_centre_displacement, subject_velocity_loss

    c = loss
    person = batch.masks > 0  # (B, H, W)
    logs: dict[str, float] = {}
    total = out.world.new_zeros(())
    if c.stage == "supervised" or c.supervised_weight > 0:
        target, weight = flow_target(batch, c)
        seq = sequence_loss(out.iterations, target, weight, gamma=c.gamma, max_flow=c.max_flow)
        total = total + (1.0 if c.stage == "supervised" else c.supervised_weight) * seq
        logs["sequence"] = float(seq.detach())
        with torch.no_grad():
            counted = person & batch.valid & batch.has_flow[:, None, None]  # (B, H, W)
            logs["epe_mask"] = float(endpoint_error(out.world.detach(), target, counted))
    if c.photometric_weight > 0:
        from hmore.losses.photometric import census_loss

        real = (~batch.has_flow)[:, None, None]  # (B, 1, 1) samples without ground truth
        counted = (person & ~batch.occluded & real).to(out.world.dtype)  # (B, H, W)
        ph = census_loss(batch.image1, batch.image2, out.world, counted)
        total = total + c.photometric_weight * ph
        logs["photometric"] = float(ph.detach())
    if c.stage == "supervised":
        sv_target, sv_weight = batch.subject_velocity, batch.subject_weight
    else:
        from hmore.losses.boundary_constraint import boundary_constraint
        from hmore.losses.skeleton_constraint import skeleton_constraint

        f = skeleton_constraint(out.world, batch.kp_t, batch.kp_t1, batch.masks)
        gb = boundary_constraint(out.world, batch.masks)
        total = total + c.skeleton_weight * f + c.boundary_weight * gb
        logs.update(skeleton=float(f.detach()), boundary=float(gb.detach()))
        hip_target, hip_w = hip_centre_displacement(batch.kp_t, batch.kp_t1)
        exact = batch.has_flow[:, None]  # (B, 1): generated samples have the exact root motion
        sv_target = torch.where(exact[..., None], batch.subject_velocity.to(hip_target.dtype), hip_target)
        sv_weight = torch.where(exact, batch.subject_weight.to(hip_w.dtype), hip_w * batch.subject_weight)
    psi = subject_velocity_loss(out.subject_velocity, sv_target, sv_weight)
    total = total + c.subject_weight * psi
    logs["subject"] = float(psi.detach())
    if c.background_l1 > 0:
        outside = (~dilate_masks(person, leak_dilation)).to(out.world.dtype)  # (B, H, W)
        bg = (out.world.abs().sum(1) * outside).sum() / outside.sum().clamp_min(1.0)
        total = total + c.background_l1 * bg
        logs["background_l1"] = float(bg.detach())
    return total, logs


__all__ = ["balance_weights", "dilate_masks", "flow_loss", "flow_target"]
