"""2D-to-3D lifting on Human3.6M, MotionBERT's protocol: model inputs and targets as arrays, and the evaluation.

**Inputs** (``source``): ``"sh"``, the Stacked-Hourglass detections of the data (3d-pose-baseline's, *not*
fine-tuned on Human3.6M) mapped to H36M-17 **by position** (:data:`hmore.data.h36m.SH_TO_H36M17_NEAREST`: MPII thorax
-> Thorax, upper neck -> Neck/Nose, head top -> Head; Spine has no detection and is given as a missing joint, all
zero), score 1; ``"gt"``, the ground-truth 2D (the 3D projected with the camera's distortion), all 17 joints, score 1.
Both are normalised by the image size as MotionBERT does (:func:`hmore.lift.data.normalize_2d`).
**Targets**: camera-frame 3D, root-relative, metres (``hmore.lift.data``'s convention).

**Protocol** (:func:`evaluate`): every (sequence, camera) pair of the test subjects with both 3D and 2D
(:meth:`hmore.data.h36m.H36M.examples`: S9 and S11, 235 pairs, 525,327 frames at 50 fps; ``S9/Discussion 1`` has
no 3D in the data and ``S11/Directions``' camera 54138969 no 2D). A windowed model (DSTformer) sees each sequence
as consecutive non-overlapping windows of its length, the last one aligned with the sequence's end (frames in two
windows get the mean); a convolutional or per-frame model sees the whole sequence at once. Test-time flip: the mirrored
input's output, mirrored back, is averaged in. Protocol 1 (MPJPE) after aligning the root joints, Protocol 2
(P-MPJPE) after a rigid Procrustes alignment with scale per frame, both in mm, averaged over the frames of each of the
15 actions, then over the actions. ``every=n`` evaluates every n-th window only (a quick check on 1/n of the frames):
each example keeps the windows (frames, for a whole-sequence model) at positions ``o, o + n, ...`` with a fixed
pseudo-random offset ``o < n`` of its own (:func:`sample_offset`), so every part of a sequence is equally likely to be
scored. (Until the fourteenth session every example kept its first window: with few windows per example the sample leant
on the sequences' first frames and flattered long-window models.)
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from hmore.data.h36m import ACTIONS, H36M, H36MExample
from hmore.errors import UsageError
from hmore.lift.data import ROOT, flip_pair, normalize_2d, starts_within
from hmore.lift.infer import window_starts

log = logging.getLogger(__name__)

SOURCES = ("sh", "gt")


@dataclass(frozen=True)
class LiftArrays:
    """Inputs and targets of a list of examples, concatenated frame by frame.

    Attributes:
        examples: the (sequence, camera) pairs, in order.
        offsets: (E + 1,) example ``e`` is frames ``offsets[e]:offsets[e + 1]``.
        x: source name -> (N, 17, 3) normalised 2D + score (missing joints all zero).
        y: (N, 17, 3) float32 camera-frame root-relative 3D, metres.
    """

    examples: tuple[H36MExample, ...]
    offsets: np.ndarray
    x: dict[str, np.ndarray]
    y: np.ndarray

    @property
    def num_frames(self) -> int:
        return int(self.offsets[-1])

    def example_of_frame(self) -> np.ndarray:
        """(N,) index of each frame's example."""
        return np.repeat(np.arange(len(self.examples)), np.diff(self.offsets))

    def window_starts(self, length: int, step: int = 1) -> np.ndarray:
        """(W,) every global frame index where a window of ``length`` frames ``step`` apart starts inside one
        example."""
        return starts_within(self.offsets, length, step)


def sample_offset(example: int, every: int) -> int:
    """The fixed pseudo-random offset in ``[0, every)`` of example ``example``'s every-n-th sample (the same on every
    run and for every model, so that ``--quick`` scores the same frames of each model with the same window length)."""
    if every <= 1:
        return 0
    return int(np.random.default_rng([every, example]).integers(every))


def normalized_input(kp: np.ndarray, width: int, height: int) -> np.ndarray:
    """(T, 17, 3) pixels + score -> normalised 2D + score, joints with score 0 all zero."""
    x = np.concatenate([normalize_2d(kp[..., :2], width, height), kp[..., 2:3]], axis=-1)
    x[kp[..., 2] <= 0] = 0.0
    return x


def build_arrays(data: H36M, examples: Sequence[H36MExample], *, sources: Sequence[str] = SOURCES,
                 dtype: type = np.float32, progress: bool = False) -> LiftArrays:
    """Inputs of ``sources`` and targets of ``examples`` as :class:`LiftArrays` (inputs stored as ``dtype``)."""
    from tqdm.auto import tqdm

    bad = sorted(set(sources) - set(SOURCES))
    if bad:
        raise ValueError(f"unknown input source(s) {bad}; known: {SOURCES}")
    lengths = np.array([e.num_frames for e in examples], np.int64)
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    n = int(offsets[-1])
    xs = {s: np.zeros((n, 17, 3), dtype) for s in sources}
    y = np.zeros((n, 17, 3), np.float32)
    for e, a in zip(tqdm(examples, disable=not progress, desc="h36m arrays", unit="example"), offsets[:-1]):
        b = a + e.num_frames
        w, h = data.image_size(e.subject, e.camera)
        y[a:b] = data.poses_camera(e.sequence, e.camera) / 1000.0
        if "sh" in xs:
            xs["sh"][a:b] = normalized_input(data.keypoints_sh(e.sequence, e.camera, mapping="nearest"), w, h)
        if "gt" in xs:
            xs["gt"][a:b] = normalized_input(data.keypoints_gt(e.sequence, e.camera), w, h)
    return LiftArrays(examples=tuple(examples), offsets=offsets, x=xs, y=y)


def split_validation(examples: Sequence[H36MExample], subjects: Sequence[str]) -> tuple[list, list]:
    """(train, validation): the validation part is, for each subject of ``subjects`` and each action, the
    sequence whose name sorts last (the action's other trial stays in training), with all its cameras."""
    by_action: dict[tuple[str, str], set[str]] = {}
    for e in examples:
        if e.subject in subjects:
            by_action.setdefault((e.subject, e.action), set()).add(e.sequence)
    held = {max(seqs) for seqs in by_action.values()}
    return [e for e in examples if e.sequence not in held], [e for e in examples if e.sequence in held]


def gather_windows(x: np.ndarray, starts: np.ndarray, length: int, ends: np.ndarray | None = None, *,
                   step: int = 1) -> np.ndarray:
    """(B, length, ...) windows ``x[s : s + length * step : step]``; with ``ends`` (B,), indices past ``ends - 1``
    repeat it."""
    idx = starts[:, None] + step * np.arange(length)  # (B, L)
    if ends is not None:
        idx = np.minimum(idx, ends[:, None] - 1)
    return x[idx]


def phase_split(offsets: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Frames of every example reordered as its ``k`` interleaved sub-sequences (frames r, r + k, ...; r < k).

    Returns:
        ``(order (N,), offsets (E' + 1,))``: ``x[order]`` holds the sub-sequences one after the other, sub-sequence
        ``i`` being ``offsets[i]:offsets[i + 1]`` (examples shorter than ``k`` give fewer).
    """
    parts = [np.arange(a + r, b, k) for a, b in zip(offsets[:-1], offsets[1:]) for r in range(min(k, int(b - a)))]
    order = np.concatenate(parts) if parts else np.zeros(0, np.int64)
    return order, np.concatenate([[0], np.cumsum([len(p) for p in parts])]).astype(np.int64)


def model_window(model: torch.nn.Module) -> int | None:
    """The window length a model is evaluated with: a DSTformer's ``config.max_len``; None (the whole sequence)
    for the convolutional and per-frame baselines."""
    cfg = getattr(model, "config", None)
    return int(cfg.max_len) if cfg is not None and hasattr(cfg, "max_len") else None


@torch.no_grad()
def _run(model: torch.nn.Module, xb: np.ndarray, flip: bool) -> np.ndarray:
    x = torch.from_numpy(np.ascontiguousarray(xb, dtype=np.float32))
    y = model(x).float().numpy()
    if flip:
        yf = model(torch.from_numpy(np.ascontiguousarray(flip_pair(xb)[0], dtype=np.float32))).float().numpy()
        y = 0.5 * (y + flip_pair(yf)[0])
    return y


@torch.no_grad()
def predict(model: torch.nn.Module, x: np.ndarray, offsets: np.ndarray, *, window: int | None, flip: bool = True,
            every: int = 1, batch_windows: int = 64, frame_stride: int | None = None,
            progress: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Run ``model`` over every example (see the module doc for the windows). A windowed model with a frame
    stride k > 1 sees the k interleaved sub-sequences of each example (:func:`phase_split`), each cut into windows as
    above, and its k phases are then merged (:func:`hmore.lift.infer.smooth_phases`, as ``hmore lift`` does).

    Args:
        model: a lifter in eval mode, (B, F, 17, 3) -> (B, F, 17, 3).
        x: (N, 17, 3) inputs of all examples, concatenated.
        offsets: (E + 1,) example boundaries.
        window: window length, or None for whole sequences.
        flip: test-time flip averaging.
        every: keep every n-th window of each example from its :func:`sample_offset` (whole-sequence models: every
            n-th frame is scored; a model whose ``per_frame`` attribute is true is only run on those frames).
        batch_windows: windows per forward pass.
        frame_stride: the model takes every k-th frame (None: :func:`hmore.lift.infer.frame_stride_of` the model).
        progress: progress bar.

    Returns:
        ``(pred (N, 17, 3) float32, covered (N,) bool)``: predictions, and which frames were evaluated.
    """
    from tqdm.auto import tqdm

    from hmore.lift.infer import frame_stride_of, smooth_phases

    if every < 1:
        raise ValueError(f"every must be >= 1, got {every}")
    k = frame_stride_of(model) if frame_stride is None else frame_stride
    if window is not None and k > 1:
        order, sub = phase_split(offsets, k)
        p, c = predict(model, x[order], sub, window=window, flip=flip, every=every, batch_windows=batch_windows,
                       frame_stride=1, progress=progress)
        pred, covered = np.zeros_like(p), np.zeros_like(c)
        pred[order], covered[order] = p, c
        for a, b in zip(offsets[:-1], offsets[1:]):  # merge the phases, as hmore lift does (run_windows)
            pred[a:b] = smooth_phases(pred[a:b], k, covered[a:b])
        return pred, covered
    n = x.shape[0]
    acc = np.zeros((n, 17, 3), np.float64)
    count = np.zeros(n, np.int64)
    if window is None:
        per_frame = getattr(model, "per_frame", False)  # a per-frame model needs no neighbours: scored frames only
        for e, (a, b) in enumerate(tqdm(list(zip(offsets[:-1], offsets[1:])), disable=not progress, desc="lift",
                                        unit="seq")):
            keep = slice(a + sample_offset(e, every), b, every)
            if per_frame:
                if keep.start < b:
                    acc[keep] = _run(model, x[keep][None], flip)[0]
            else:
                acc[a:b] = _run(model, x[a:b][None], flip)[0]
            count[keep] = 1
    else:
        starts, ends = [], []
        for e, (a, b) in enumerate(zip(offsets[:-1], offsets[1:])):
            s = np.asarray(window_starts(int(b - a), min(window, int(b - a)), min(window, int(b - a))))
            s = s[sample_offset(e, every) :: every]
            starts.append(a + s)
            ends.append(np.full(len(s), b))
        st, en = np.concatenate(starts), np.concatenate(ends)
        for i in tqdm(range(0, len(st), batch_windows), disable=not progress, desc="lift", unit="batch"):
            s, e = st[i : i + batch_windows], en[i : i + batch_windows]
            yb = _run(model, gather_windows(x, s, window, e), flip)  # (B, L, 17, 3)
            idx = np.minimum(s[:, None] + np.arange(window), e[:, None] - 1)  # (B, L)
            first = np.concatenate([np.ones((len(s), 1), bool), np.diff(idx, axis=1) > 0], axis=1)  # no repeats
            np.add.at(acc, idx[first], yb[first])
            np.add.at(count, idx[first], 1)
    covered = count > 0
    pred = np.zeros((n, 17, 3), np.float32)
    pred[covered] = (acc[covered] / count[covered, None, None]).astype(np.float32)
    return pred, covered


def frame_errors(pred: np.ndarray, target: np.ndarray, *, chunk: int = 65536) -> tuple[np.ndarray, np.ndarray]:
    """Per-frame (P1, P2) errors in mm of (N, 17, 3) metre arrays: MPJPE after root alignment, P-MPJPE."""
    from hmore.metrics.pose3d import mpjpe, p_mpjpe

    p = pred - pred[:, ROOT : ROOT + 1]
    t = target - target[:, ROOT : ROOT + 1]
    e1, e2 = np.zeros(len(p)), np.zeros(len(p))
    for i in range(0, len(p), chunk):
        pt, tt = torch.from_numpy(p[i : i + chunk]).double(), torch.from_numpy(t[i : i + chunk]).double()
        e1[i : i + chunk] = 1000 * mpjpe(pt, tt, reduce=False).numpy()
        e2[i : i + chunk] = 1000 * p_mpjpe(pt, tt, reduce=False).numpy()
    return e1, e2


def bone_length_variation(pred: np.ndarray, offsets: np.ndarray, covered: np.ndarray) -> float:
    """Mean over examples and bones of std / mean of the predicted bone lengths over the example's frames."""
    from hmore.skeleton import H36M17, bone_lengths

    vals = []
    for a, b in zip(offsets[:-1], offsets[1:]):
        ok = covered[a:b]
        if ok.sum() < 2:
            continue
        bl = bone_lengths(pred[a:b][ok].astype(np.float64), H36M17)  # (T, bones)
        vals.append(float(np.mean(bl.std(axis=0) / np.maximum(bl.mean(axis=0), 1e-9))))
    return float(np.mean(vals)) if vals else math.nan


def drop_joints(x: np.ndarray, fraction: float, seed: int = 0) -> np.ndarray:
    """A copy of inputs (N, 17, 3) with each joint of each frame missing (all zero) with probability ``fraction``."""
    rng = np.random.default_rng([seed, 17])
    keep = rng.random(x.shape[:2]) >= fraction
    return x * keep[..., None].astype(x.dtype)


@dataclass(frozen=True)
class ProtocolResult:
    """One model on one input source.

    Attributes:
        p1, p2: mean over actions (the groups) of the per-action mean errors (mm).
        per_action: action (group) -> {"p1", "p2", "frames"}.
        frames: number of frames scored.
        bone_cv: mean std / mean of predicted bone lengths over each sequence (0 = rigid).
        pred: (N, 17, 3) predictions (metres) and ``covered`` (N,) bool, for pictures.
        p1_frames, p2_frames: means over all scored frames (mm).
    """

    p1: float
    p2: float
    per_action: dict[str, dict[str, float]]
    frames: int
    bone_cv: float
    pred: np.ndarray
    covered: np.ndarray
    p1_frames: float = math.nan
    p2_frames: float = math.nan


def evaluate(model: torch.nn.Module, arrays: LiftArrays, *, source: str, flip: bool = True, every: int = 1,
             window: int | None = -1, missing: float = 0.0, seed: int = 0, group_by: str = "action",
             progress: bool = False) -> ProtocolResult:
    """Protocols 1 and 2 of ``model`` on ``arrays`` with input ``source`` (see the module doc).

    Args:
        window: window length; -1 (default) takes :func:`model_window`; None runs whole sequences.
        missing: fraction of joints dropped at random (score 0) from the input, per frame and joint.
        seed: seed of the dropped joints.
        group_by: the examples' attribute whose values are averaged over (Human3.6M's ``"action"``: its 15 actions
            in their order; other labels sorted).
    """
    if source not in arrays.x:
        raise ValueError(f"the arrays hold no {source!r} input (they hold {sorted(arrays.x)})")
    x = arrays.x[source]
    if missing > 0:
        x = drop_joints(x, missing, seed)
    win = model_window(model) if window == -1 else window
    was = model.training
    model.eval()
    try:
        pred, covered = predict(model, x, arrays.offsets, window=win, flip=flip, every=every, progress=progress)
    finally:
        model.train(was)
    if not covered.any():
        raise UsageError(f"every {every}-th window leaves no frame to score in these {len(arrays.examples)} "
                         "sequences: use a smaller --quick")
    e1, e2 = frame_errors(pred[covered], arrays.y[covered])
    frame_ex = arrays.example_of_frame()[covered]
    groups = np.array([getattr(e, group_by) for e in arrays.examples])[frame_ex]
    order = ACTIONS if group_by == "action" and set(groups.tolist()) <= set(ACTIONS) else sorted(set(groups.tolist()))
    per_action = {}
    for a in order:
        sel = groups == a
        if sel.any():
            per_action[a] = {"p1": float(e1[sel].mean()), "p2": float(e2[sel].mean()), "frames": int(sel.sum())}
    return ProtocolResult(p1=float(np.mean([v["p1"] for v in per_action.values()])),
                          p2=float(np.mean([v["p2"] for v in per_action.values()])), per_action=per_action,
                          frames=int(covered.sum()), bone_cv=bone_length_variation(pred, arrays.offsets, covered),
                          pred=pred, covered=covered, p1_frames=float(e1.mean()), p2_frames=float(e2.mean()))


__all__ = ["LiftArrays", "ProtocolResult", "SOURCES", "build_arrays", "bone_length_variation", "drop_joints",
           "evaluate", "frame_errors", "gather_windows", "model_window", "normalized_input", "phase_split", "predict",
           "sample_offset", "split_validation"]
