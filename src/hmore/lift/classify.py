"""Skeleton action classification with a trained action model (``hmore classify``).

What a model takes is in its metadata: ``input`` ``"2d"`` (normalised COCO-derived H36M-17 keypoints, e.g. the
generated or pyskl sets) or ``"3d"`` (camera-frame joints, normalised as the metadata's ``normalize`` says:
``hmore.train.tasks.action.skeleton3d_input``), of the ``layout`` ``nw_ucla_h36m17`` (NW-UCLA's Kinect joints mapped
to H36M-17: these models also take lifted videos) or ``nw_ucla_kinect20`` (all 20 Kinect joints, hands included:
NW-UCLA files only). A score ensemble (:func:`load_ensemble`) is one model to everything here. Inputs:

* a pyskl pickle (every clip, labels kept) or any keypoint file ``hmore.io.keypoints`` reads;
* an NW-UCLA file: the shared ``nw_ucla_skeletons.npz`` (every sequence, labels kept; ``split`` picks train or
  test), a CTR-GCN ``all_sqe`` JSON (``{"skeletons": (T, 20, 3) lists}``) or a ``.npy`` holding (T, 20, 3) Kinect v1
  joints in metres;
* a video (through ``hmore.priors``).

A 3D model given 2D keypoints or a video lifts them first with the shipped lifter (``dstformer_cpu``, each person on
their own); a 2D model cannot take NW-UCLA's 3D skeletons. When the input's skeleton was made differently from the
model's training skeletons (COCO-17 detections lifted to 3D vs NW-UCLA's Kinect joints), a note says so.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from hmore.errors import InputError
from hmore.lift.actions import ActionClip, read_action_pickle

#: Layout names recorded in action models' metadata.
LAYOUT_NOTES = {
    "nw_ucla_h36m17": "Kinect v1 skeletons (NW-UCLA) mapped to H36M-17",
    "nw_ucla_kinect20": "Kinect v1 skeletons (NW-UCLA), all 20 joints (hands and feet included)",
    "coco17_h36m17": "COCO-17 keypoints converted to H36M-17",
}


@dataclass(frozen=True)
class ActionModel:
    """A trained action model with what its inputs must look like."""

    model: torch.nn.Module
    classes: list[str]
    clip_len: int
    frame_step: int
    persons: int
    input: str = "2d"
    sampling: str = "windows"
    layout: str = "coco17_h36m17"
    normalize: str = "none"
    members: tuple[str, ...] = ()  # an ensemble's members ("name*weight"), empty for a single model


def load_action_model(*, checkpoint: str | Path | None = None, weights: str | None = None,
                      ensemble: str | None = None) -> ActionModel:
    """From a training run folder / checkpoint (``hmore train action``), shipped weights or a shipped ensemble by
    name, or an ensemble spec (:func:`load_ensemble`)."""
    from hmore.train.checkpoint import load_weights_into, read_metadata, resolve_checkpoint
    from hmore.weights import build_model_from_config, list_ensembles, load_model, read_weights_metadata

    if ensemble is not None:
        return load_ensemble(ensemble)
    if weights is not None and weights in list_ensembles():
        return load_ensemble(weights)
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
                       frame_step=int(cfg.get("frame_step", 1)), persons=int(cfg.get("persons", 1)),
                       input=str(cfg.get("input", "2d")), sampling=str(cfg.get("sampling", "windows")),
                       layout=str(cfg.get("layout", "coco17_h36m17")), normalize=str(cfg.get("normalize", "none")))


def parse_ensemble_spec(spec: str) -> list[tuple[str, float]]:
    """``"A*W+B+C*W"`` -> [(member, weight)] (weight 1 when not given); members are shipped weights names or run
    folders / checkpoints."""
    out = []
    for part in spec.split("+"):
        name, star, w = part.strip().partition("*")
        try:
            weight = float(w) if star else 1.0
        except ValueError:
            raise InputError(f"ensemble {spec!r}: weight {w!r} of {name!r} is not a number") from None
        if not name or weight < 0:
            raise InputError(f"ensemble {spec!r}: expected MEMBER[*WEIGHT]+MEMBER[*WEIGHT]..., weights >= 0")
        out.append((name, weight))
    if sum(w for _, w in out) <= 0:
        raise InputError(f"ensemble {spec!r}: the weights sum to 0")
    return out


def load_ensemble(spec: str) -> ActionModel:
    """A score ensemble (:class:`hmore.models.motion.ensemble.ActionEnsemble`) as one :class:`ActionModel`.

    ``spec``: a shipped ensemble's name (``<name>.ensemble.json``) or ``"A*W+B*W..."`` (:func:`parse_ensemble_spec`).
    The members must agree on classes, input, frames and normalisation. Their layouts may differ in one way: H36M-17
    members of NW-UCLA (``nw_ucla_h36m17``) join 20-joint Kinect members (``nw_ucla_kinect20``) through the fixed
    Kinect -> H36M-17 mapping; the ensemble then takes the 20 Kinect joints (so NW-UCLA files, not lifted videos).
    """
    from hmore.models.motion.ensemble import ActionEnsemble
    from hmore.weights import list_ensembles, list_weights, read_ensemble_metadata

    if spec in list_ensembles():
        parts = [(m["weights"], float(m.get("weight", 1.0))) for m in read_ensemble_metadata(spec)["members"]]
    else:
        parts = parse_ensemble_spec(spec)
    members = []
    for name, _ in parts:
        if name in list_weights():
            members.append(load_action_model(weights=name))
        elif Path(name).exists():
            members.append(load_action_model(checkpoint=name))
        else:
            raise InputError(f"ensemble member {name!r} is neither shipped weights nor a run folder / checkpoint")
    first = members[0]
    for (name, _), m in zip(parts, members):
        if m.members:
            raise InputError(f"ensemble member {name!r} is itself an ensemble")
        same = ("classes", "clip_len", "frame_step", "persons", "input", "sampling", "normalize")
        bad = [k for k in same if getattr(m, k) != getattr(first, k)]
        if bad:
            raise InputError(f"ensemble member {name!r} differs from {parts[0][0]!r} in {', '.join(bad)}")
    layouts = {m.layout for m in members}
    adapters: list = [None] * len(members)
    if len(layouts) == 1:
        layout = first.layout
    elif layouts == {"nw_ucla_h36m17", "nw_ucla_kinect20"}:
        from hmore.data.nw_ucla import h36m17_matrix

        layout = "nw_ucla_kinect20"
        adapters = [torch.from_numpy(h36m17_matrix()).float() if m.layout == "nw_ucla_h36m17" else None
                    for m in members]
    else:
        raise InputError(f"ensemble members have layouts {sorted(layouts)}, which cannot take one input")
    model = ActionEnsemble(members=[m.model for m in members], weights=[w for _, w in parts], adapters=adapters)
    return ActionModel(model=model.eval(), classes=first.classes, clip_len=first.clip_len,
                       frame_step=first.frame_step, persons=first.persons, input=first.input,
                       sampling=first.sampling, layout=layout, normalize=first.normalize,
                       members=tuple(f"{n}*{w:g}" for n, w in parts))


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
    """(N, classes) probabilities of 2D clips."""
    from hmore.train.tasks.action import predict_clips

    if not clips:
        raise InputError("no clip to classify")
    return predict_clips(am.model, clips, clip_len=am.clip_len, frame_step=am.frame_step, persons=am.persons)


# ---- any input, any model --------------------------------------------------------------------------------------------
def is_nw_ucla_file(path: Path) -> bool:
    """Whether ``path`` looks like NW-UCLA data (the shared npz, an all_sqe JSON or a (T, 20, 3) .npy)."""
    suffix = path.suffix.lower()
    if suffix == ".npz":
        try:
            with np.load(path) as z:
                return {"joints", "offsets", "label"} <= set(z.files)
        except (OSError, ValueError):
            return False
    if suffix == ".json":
        try:
            return isinstance(json.loads(path.read_text()).get("skeletons"), list)
        except (OSError, ValueError, AttributeError):
            return False
    if suffix == ".npy":
        try:
            return np.load(path, mmap_mode="r").shape[-2:] == (20, 3)
        except (OSError, ValueError):
            return False
    return False


def _ucla_sequences(path: Path, split: str | None) -> list[tuple[str, int, np.ndarray]]:
    """(name, label or -1, (T, 20, 3) Kinect joints) of an NW-UCLA file."""
    suffix = path.suffix.lower()
    if suffix == ".npz":
        from hmore.data.nw_ucla import NWUCLA

        data = NWUCLA(path.parent) if path.name == "nw_ucla_skeletons.npz" else None
        if data is None:
            raise InputError(f"{path}: an NW-UCLA archive must be named nw_ucla_skeletons.npz")
        seqs = data.split(split) if split else data.sequences
        return [(s.name, s.label, np.asarray(s.joints)) for s in seqs]
    if split:
        raise InputError(f"--split needs the NW-UCLA archive (nw_ucla_skeletons.npz), not {path.name}")
    if suffix == ".json":
        raw = json.loads(path.read_text())
        joints = np.asarray(raw["skeletons"], np.float32)
        label = int(raw["label"]) - 1 if isinstance(raw.get("label"), int) else -1  # all_sqe labels count from 1
    else:
        joints, label = np.load(path).astype(np.float32), -1
    if joints.ndim != 3 or joints.shape[1:] != (20, 3) or joints.shape[0] < 1:
        raise InputError(f"{path}: expected (T, 20, 3) Kinect v1 joints, got {joints.shape}")
    if not np.isfinite(joints).all():
        raise InputError(f"{path}: NaN or infinite joint coordinates")
    return [(path.stem, label, joints)]


@dataclass(frozen=True)
class PreparedInputs:
    """Model inputs of a file: names, labels (-1 unknown), arrays (M, T, 17, 3), and notes for the user."""

    names: list[str]
    labels: list[int]
    xs: list[np.ndarray]
    notes: list[str]


def read_clips_first(path: str | Path, *, size: tuple[int, int] | None = None,
                     split: str | None = None) -> list[ActionClip] | None:
    """The 2D clips of a pyskl pickle or keypoint file, read (and checked) before any model is loaded; None for an
    NW-UCLA file or a video (read by :func:`prepare_inputs`)."""
    from hmore.io.video import VIDEO_SUFFIXES

    path = Path(path)
    if not path.is_file() or path.suffix.lower() in VIDEO_SUFFIXES or is_nw_ucla_file(path):
        return None
    return read_action_pickle(path).subset(split) if split else read_action_clips(path, size=size)


def prepare_inputs(am: ActionModel, path: str | Path, *, size: tuple[int, int] | None = None,
                   split: str | None = None, lifter: str = "dstformer_cpu",
                   clips: list[ActionClip] | None = None) -> PreparedInputs:
    """What ``am`` needs from ``path`` (see the module doc); ``clips``: the file's 2D clips when already read."""
    from hmore.train.tasks.action import clip_input, skeleton3d_input

    path = Path(path)
    if not path.exists():
        raise InputError(f"no such file or folder: {path}")
    if is_nw_ucla_file(path):
        if am.input != "3d":
            raise InputError(f"{path} holds NW-UCLA 3D skeletons; this model takes 2D keypoints")
        from hmore.data.nw_ucla import camera_frame, to_h36m17

        seqs = _ucla_sequences(path, split)
        if am.layout == "nw_ucla_kinect20":
            xs = [skeleton3d_input(camera_frame(j), am.normalize, "kinect20") for _, _, j in seqs]
        else:
            xs = [skeleton3d_input(camera_frame(to_h36m17(j)), am.normalize) for _, _, j in seqs]
        notes = [] if am.layout.startswith("nw_ucla_") else [
            f"note: the model was trained on {LAYOUT_NOTES.get(am.layout, am.layout)}; this input is "
            f"{LAYOUT_NOTES['nw_ucla_h36m17']}: the layouts differ"]
        return PreparedInputs(names=[n for n, _, _ in seqs], labels=[lab for _, lab, _ in seqs], xs=xs, notes=notes)
    if am.input == "2d":
        if clips is None:
            clips = read_action_pickle(path).subset(split) if split else read_action_clips(path, size=size)
        return PreparedInputs(names=[c.name for c in clips], labels=[c.label for c in clips],
                              xs=[clip_input(c, persons=am.persons) for c in clips], notes=[])
    if split:
        raise InputError("--split applies to pyskl pickles and the NW-UCLA archive")
    if am.layout == "nw_ucla_kinect20":
        raise InputError(f"{path.name}: this model takes Kinect v1's 20 joints (hands and feet), which lifted 2D "
                         "keypoints and videos (H36M-17) do not have; use an H36M-17 model such as "
                         "--weights action_ucla_stgcn")
    from hmore.lift.infer import lift_tracks
    from hmore.lift.pipeline import load_lifter, read_tracks

    tracks = read_tracks(path, size=size)
    if tracks.kp2d.shape[0] == 0:
        raise InputError(f"{path}: no person found")
    track = am.normalize == "view_track"  # the model reads the root's path: estimate it
    res = lift_tracks(load_lifter(weights=lifter), tracks.kp2d, width=tracks.width, height=tracks.height,
                      fps=tracks.fps, trajectory=track)
    poses = res.pose3d + np.nan_to_num(res.root)[:, :, None] if track else res.pose3d  # (P, T, 17, 3)
    notes = [f"{path.name}: {tracks.kp2d.shape[0]} person(s), {tracks.kp2d.shape[1]} frames of {tracks.source} 2D "
             f"keypoints lifted to 3D by {lifter}, each person classified on their own"]
    if am.layout == "nw_ucla_h36m17":
        notes.append(f"note: the model was trained on {LAYOUT_NOTES['nw_ucla_h36m17']}; this input is COCO-17 "
                     "keypoints converted to H36M-17 and lifted: the layouts differ (head, neck and hip joints are "
                     "placed differently), expect lower accuracy than on NW-UCLA")
    stem = path.stem
    return PreparedInputs(names=[f"{stem}/person{int(t)}" for t in tracks.track_ids],
                          labels=[-1] * len(tracks.track_ids),
                          xs=[skeleton3d_input(p, am.normalize) for p in poses], notes=notes)


def classify_inputs(am: ActionModel, prepared: PreparedInputs) -> np.ndarray:
    """(N, classes) probabilities of prepared inputs."""
    from hmore.train.tasks.action import predict_inputs

    if not prepared.xs:
        raise InputError("no clip to classify")
    return predict_inputs(am.model, prepared.xs, clip_len=am.clip_len, frame_step=am.frame_step,
                          sampling=am.sampling)
