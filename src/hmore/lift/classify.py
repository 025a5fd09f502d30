"""Skeleton action classification of keypoint files with a trained action model (``hmore classify``)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from hmore.errors import InputError
from hmore.lift.actions import ActionClip, read_action_pickle


@dataclass(frozen=True)
class ActionModel:
    """A trained action model with what its inputs must look like."""

    model: torch.nn.Module
    classes: list[str]
    clip_len: int
    frame_step: int
    persons: int


def load_action_model(*, checkpoint: str | Path | None = None, weights: str | None = None) -> ActionModel:
    """From a training run folder / checkpoint (``hmore train action``) or shipped weights by name."""
    from hmore.train.checkpoint import load_weights_into, read_metadata, resolve_checkpoint
    from hmore.weights import build_model_from_config, load_model, read_weights_metadata

    if checkpoint is not None:
        path = resolve_checkpoint(checkpoint)
        cfg = read_metadata(path).get("model_config")
        if not isinstance(cfg, dict) or "classes" not in cfg:
            raise InputError(f"{path} is not an action model checkpoint (no class names in its model config)")
        model = build_model_from_config(cfg, source=str(path))
        load_weights_into(model, path)
    elif weights is not None:
        cfg = read_weights_metadata(weights)["model"]
        if "classes" not in cfg:
            raise InputError(f"weights {weights!r} are not an action model (no class names in their metadata)")
        model = load_model(weights)
    else:
        raise InputError("give an action model: a checkpoint or a weights name")
    return ActionModel(model=model.eval(), classes=list(cfg["classes"]), clip_len=int(cfg.get("clip_len", 27)),
                       frame_step=int(cfg.get("frame_step", 1)), persons=int(cfg.get("persons", 1)))


def read_action_clips(path: str | Path, *, size: tuple[int, int] | None = None) -> list[ActionClip]:
    """Clips to classify: every clip of a pyskl action pickle (labels kept), or the one clip of any keypoint file
    that ``hmore.io.keypoints.read_keypoints`` reads (label -1)."""
    path = Path(path)
    if path.suffix.lower() in (".pkl", ".pickle"):
        return read_action_pickle(path).clips
    from hmore.io.keypoints import read_keypoints

    seq = read_keypoints(path)
    wh = seq.image_size or size
    if wh is None:
        raise InputError(f"{path} does not give the image size; pass it (e.g. --size 1920x1080)")
    kp = np.asarray(seq.kp2d, np.float32).transpose(1, 0, 2, 3)  # (T, P, 17, 3) -> (P, T, 17, 3)
    return [ActionClip(name=path.stem, label=-1, kp2d=kp, width=int(wh[0]), height=int(wh[1]))]


def classify_clips(am: ActionModel, clips: list[ActionClip]) -> np.ndarray:
    """(N, classes) probabilities."""
    from hmore.train.tasks.action import predict_clips

    if not clips:
        raise InputError("no clip to classify")
    return predict_clips(am.model, clips, clip_len=am.clip_len, frame_step=am.frame_step, persons=am.persons)
