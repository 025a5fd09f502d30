"""Held-out evaluation of ``hmore train flow``: generated clips the training never sees (generator seeds at or above
:data:`~hmore.flow.data.HELD_OUT_SEED_BASE`), scored for in-mask EPE, background leakage, local flow and Psi, beside
the EPE of predicting no motion and of OpenCV DIS on the same pairs.
"""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np
import torch
from torch import nn

from hmore.flow.config import FlowDataConfig
from hmore.flow.data import augment_none, clip_pair, collate, held_out_clip_seed, render_params, render_training_clip


def held_out_samples(data: FlowDataConfig, slots: int) -> list[dict[str, np.ndarray]]:
    """``data.eval_clips`` held-out first pairs at ``data.eval_size``, each with its exact ``local`` flow."""
    samples = []
    for i in range(data.eval_clips):
        params = render_params(data, np.random.default_rng([data.seed, 17, i]))
        clip = render_training_clip(held_out_clip_seed(data.seed, i), params, size=data.eval_size, num_frames=2)
        s = clip_pair(clip, 0, slots)
        s["local"] = clip.local_flow()[0]
        samples.append(s)
    return samples


@torch.no_grad()
def predict(model: nn.Module, samples: list[dict[str, np.ndarray]], slots: int) -> Any:
    """``(model output, batch)`` for ``samples`` without crop or flip."""
    batch = collate(augment_none(samples))
    dev = next(model.parameters()).device
    return model(batch.image1.to(dev), batch.image2.to(dev), masks=batch.masks.to(dev), num_subjects=slots), batch


def dilate_masks_np(person: np.ndarray, radius: int) -> np.ndarray:
    """(H, W) bool mask dilated by a disc of ``radius`` pixels."""
    if radius <= 0:
        return person.astype(bool)
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
    return cv2.dilate(person.astype(np.uint8), kernel) > 0


def evaluate_samples(model: nn.Module, samples: list[dict[str, np.ndarray]], *, slots: int,
                     leak_dilation: int) -> dict[str, float]:
    """EPE inside the masks, background leakage, local-flow EPE and Psi's error on ``samples`` (pooled over pixels).

    ``zero_flow_epe_mask`` (the mean ground-truth flow length inside the masks) is the EPE of predicting no motion:
    the scale against which ``epe_mask`` reads.
    """
    sums = dict(epe=0.0, n_in=0.0, leak=0.0, n_out=0.0, local=0.0, gt=0.0, sv=0.0, n_sv=0.0)
    for i in range(0, len(samples), 4):
        chunk = samples[i:i + 4]
        out, batch = predict(model, chunk, slots)
        world = out.world.cpu().numpy().transpose(0, 2, 3, 1)  # (B, H, W, 2)
        local = out.local.cpu().numpy().transpose(0, 2, 3, 1)
        vel = out.subject_velocity.cpu().numpy()  # (B, P, 2)
        for j, s in enumerate(chunk):
            person = s["masks"] > 0
            inside = person & s["valid"]
            sums["epe"] += float(np.linalg.norm(world[j] - s["flow"], axis=-1)[inside].sum())
            sums["local"] += float(np.linalg.norm(local[j] - s["local"], axis=-1)[inside].sum())
            sums["gt"] += float(np.linalg.norm(s["flow"], axis=-1)[inside].sum())
            sums["n_in"] += float(inside.sum())
            outside = ~dilate_masks_np(person, leak_dilation)
            sums["leak"] += float(np.linalg.norm(world[j], axis=-1)[outside].sum())
            sums["n_out"] += float(outside.sum())
            w = batch.subject_weight[j].numpy() > 0
            sums["sv"] += float(np.linalg.norm(vel[j] - s["subject_velocity"], axis=-1)[w].sum())
            sums["n_sv"] += float(w.sum())
    return {
        "epe_mask": sums["epe"] / max(sums["n_in"], 1.0),
        "leakage": sums["leak"] / max(sums["n_out"], 1.0),
        "local_epe_mask": sums["local"] / max(sums["n_in"], 1.0),
        "zero_flow_epe_mask": sums["gt"] / max(sums["n_in"], 1.0),  # the error of predicting no motion
        "subject_velocity_error": sums["sv"] / max(sums["n_sv"], 1.0),
    }


def dis_epe_mask(samples: list[dict[str, np.ndarray]]) -> float:
    """EPE of OpenCV DIS (medium) inside the valid person pixels of ``samples``, pooled over pixels."""
    from hmore.models.flow.init import dis_flow

    err, n = 0.0, 0.0
    for s in samples:
        img1 = torch.from_numpy(np.ascontiguousarray(s["image1"])).permute(2, 0, 1)[None].float()
        img2 = torch.from_numpy(np.ascontiguousarray(s["image2"])).permute(2, 0, 1)[None].float()
        flow = dis_flow(img1, img2)[0].numpy().transpose(1, 2, 0)  # (H, W, 2)
        inside = (s["masks"] > 0) & s["valid"]
        err += float(np.linalg.norm(flow - s["flow"], axis=-1)[inside].sum())
        n += float(inside.sum())
    return err / max(n, 1.0)


def preview_panels(model: nn.Module, sample: dict[str, np.ndarray], *, slots: int, target: str) -> np.ndarray:
    """``frame | ground truth | predicted world | predicted local`` of one sample, one colour scale (H, 4W, 3)."""
    from hmore.report.flowviz import flow_to_color, robust_max_magnitude

    out, _ = predict(model, [sample], slots)
    world = out.world[0].cpu().numpy().transpose(1, 2, 0)  # (H, W, 2)
    local = out.local[0].cpu().numpy().transpose(1, 2, 0)
    gt = sample["flow"] * (sample["masks"] > 0)[..., None] if target == "human" else sample["flow"]
    scale = max(robust_max_magnitude(gt), 1.0)
    panels = [sample["image1"], flow_to_color(gt, max_mag=scale), flow_to_color(world, max_mag=scale),
              flow_to_color(local, max_mag=scale)]
    return np.concatenate(panels, axis=1)


__all__ = ["dilate_masks_np", "dis_epe_mask", "evaluate_samples", "held_out_samples", "predict", "preview_panels"]
