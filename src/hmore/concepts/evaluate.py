"""Held-out evaluation of motion concepts, shared by the training task and ``hmore bench concepts``.

* :func:`cluster_scores`: NMI and purity of per-frame concept ids against action labels of held-out sequences.
* :func:`window_majority`: each frame's most frequent concept over a window centred on it (the action labels are per
  sequence while the concepts are per segment of a few frames: this scores the concept of a stretch of motion).
* :func:`kmeans_scores`: the baseline: k-means (same K) fitted on training frames' raw pose features (optionally
  with their velocity), applied to the held-out frames.
* :func:`retrieval_scores`: video -> motion retrieval on held-out paired windows (R@1, R@5, chance 1/N).
* :func:`concept_kinds`: which concepts carry the action and which the style (Bandai's action x style takes).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from hmore.concepts.encode import encode_sequences
from hmore.concepts.motion import SkeletonSequence, frame_pose_features, make_windows
from hmore.concepts.pairs import PairedClip, video_channels
from hmore.metrics.concepts import contingency, homogeneity_completeness, nmi, purity, recall_at_k

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FrameLabels:
    """Per-frame concept ids of a set of sequences with their labels (all (F,) arrays)."""

    ids: np.ndarray
    action: np.ndarray
    style: np.ndarray
    sequence: np.ndarray


def encode_labelled(model: torch.nn.Module, seqs: Sequence[SkeletonSequence]) -> FrameLabels:
    """Concept ids of every frame of ``seqs`` with the sequences' labels."""
    enc = encode_sequences(model, [s.joints for s in seqs], has_root=[s.has_root for s in seqs])
    return FrameLabels(ids=np.concatenate([e.ids for e in enc]),
                       action=np.concatenate([[s.action] * s.num_frames for s in seqs]),
                       style=np.concatenate([[s.style] * s.num_frames for s in seqs]),
                       sequence=np.concatenate([[i] * s.num_frames for i, s in enumerate(seqs)]))


def cluster_scores(ids: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """NMI, purity, the number of clusters used, and NMI's two halves: homogeneity (each concept holds one action)
    and completeness (each action stays in one concept)."""
    hom, com = homogeneity_completeness(ids, labels)
    return {"nmi": nmi(ids, labels), "purity": purity(ids, labels), "clusters": float(len(np.unique(ids))),
            "homogeneity": hom, "completeness": com}


def window_majority(ids: np.ndarray, sequence: np.ndarray, window: int) -> np.ndarray:
    """Each frame's most frequent id among the ``window`` frames of its own sequence centred on it (frames
    ``t - window // 2`` to ``t - window // 2 + window - 1``, cut at the sequence's ends; ties: the smallest id);
    ``window`` 0: the sequence's most frequent id for all its frames.

    Args:
        ids: (F,) non-negative integer ids.
        sequence: (F,) the sequence of each frame (a sequence's frames contiguous and in order).
        window: frames per window (>= 1), or 0.
    """
    ids, sequence = np.asarray(ids), np.asarray(sequence)
    if ids.shape != sequence.shape or ids.ndim != 1:
        raise ValueError(f"ids {ids.shape} and sequence {sequence.shape} must be 1-D and the same length")
    if window < 0:
        raise ValueError(f"window must be >= 0, got {window}")
    out = np.empty_like(ids)
    if ids.size == 0:
        return out
    k = int(ids.max()) + 1
    cuts = np.flatnonzero(np.diff(sequence)) + 1
    for lo, hi in zip(np.r_[0, cuts], np.r_[cuts, len(ids)]):
        seg = ids[lo:hi]
        if window == 0:
            out[lo:hi] = np.bincount(seg, minlength=k).argmax()
            continue
        t = np.arange(len(seg))
        first = np.clip(t - window // 2, 0, len(seg))
        last = np.clip(t - window // 2 + window, 0, len(seg))
        cum = np.zeros((len(seg) + 1, k), np.int64)  # cum[i, c]: frames before i with id c
        np.cumsum(np.eye(k, dtype=np.int64)[seg], axis=0, out=cum[1:])
        out[lo:hi] = (cum[last] - cum[first]).argmax(axis=1)  # argmax: the first (smallest) id of a tie
    return out


def pose_features(seqs: Sequence[SkeletonSequence], *, velocity: bool = False) -> np.ndarray:
    """(F, 51) raw per-frame pose features of the sequences (with ``velocity``: (F, 102), the pose change to the
    previous frame appended, x MODEL_FPS)."""
    feats = []
    for s in seqs:
        f = frame_pose_features(s.joints)
        if velocity:
            d = np.diff(f, axis=0, prepend=f[:1])
            f = np.concatenate([f, d * 15.0 / 2.0], axis=1)
        feats.append(f)
    return np.concatenate(feats).astype(np.float64)


def kmeans_fit(features: np.ndarray, k: int, *, seed: int = 0, max_points: int = 20000, iters: int = 30
               ) -> np.ndarray:
    """(k, D) k-means++ centroids (scipy) of at most ``max_points`` randomly drawn rows."""
    from scipy.cluster.vq import kmeans2

    rng = np.random.default_rng(seed)
    x = features if len(features) <= max_points else features[rng.choice(len(features), max_points, replace=False)]
    centroids, _ = kmeans2(x, k, iter=iters, minit="++", seed=rng)
    return centroids


def kmeans_assign(features: np.ndarray, centroids: np.ndarray) -> np.ndarray:
    """(F,) nearest-centroid index of each row."""
    from scipy.cluster.vq import vq

    ids, _ = vq(features, centroids)
    return ids.astype(np.int64)


def kmeans_scores(train: Sequence[SkeletonSequence], test: Sequence[SkeletonSequence], *, k: int,
                  velocity: bool = False, seed: int = 0) -> tuple[dict[str, float], np.ndarray]:
    """The k-means baseline: fit on ``train`` frames, score ``test`` frames; returns (scores, test ids)."""
    cent = kmeans_fit(pose_features(train, velocity=velocity), k, seed=seed)
    ids = kmeans_assign(pose_features(test, velocity=velocity), cent)
    labels = np.concatenate([[s.action] * s.num_frames for s in test])
    return cluster_scores(ids, labels), ids


@torch.no_grad()
def pair_windows(pairs: Sequence[PairedClip], *, window: int, video_size: int, per_clip: int = 1
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Evenly spaced windows of paired clips: motion states (N, W, S), validity (N, W), video (N, W, 7, s, s)
    and the clip index of each window."""
    pieces, vids, owner, roots = [], [], [], []
    for i, p in enumerate(pairs):
        t = p.num_frames - 1  # frames with a flow to the next
        if t < 2:
            continue
        n = min(window, t)
        starts = np.linspace(0, t - n, per_clip).round().astype(int) if per_clip > 1 else [max(0, (t - n) // 2)]
        for s in starts:
            pieces.append(p.joints[s : s + n + 1])
            world = np.zeros((window, 2) + p.world.shape[2:], np.float32)
            local = np.zeros_like(world)
            world[:n], local[:n] = p.world[s : s + n], p.local[s : s + n]
            frames = np.zeros((window,) + p.frames.shape[1:], np.uint8)
            frames[:n] = p.frames[s : s + n]
            vids.append(video_channels(frames, world, local, size=video_size))
            owner.append(i)
            roots.append(bool(p.meta.get("has_root", True)))
    batch = make_windows(pieces, window=window, has_root=roots)
    return batch.states, batch.valid, np.stack(vids), np.asarray(owner)


@torch.no_grad()
def retrieval_scores(model: torch.nn.Module, pairs: Sequence[PairedClip], *, batch_size: int = 64
                     ) -> dict[str, float]:
    """Video -> motion retrieval over held-out paired windows (one per clip): R@1, R@5, N and chance (1/N)."""
    c = model.config
    if not c.video or not pairs:
        return {"r1": float("nan"), "r5": float("nan"), "n": float(len(pairs)), "chance": float("nan")}
    states, valid, video, _ = pair_windows(pairs, window=c.window, video_size=c.video_size)
    was = model.training
    model.eval()
    dev = next(model.parameters()).device
    m_emb, v_emb = [], []
    try:
        for b0 in range(0, len(states), batch_size):
            s = torch.from_numpy(states[b0 : b0 + batch_size]).to(dev)
            ok = torch.from_numpy(valid[b0 : b0 + batch_size]).to(dev)
            v = torch.from_numpy(video[b0 : b0 + batch_size]).to(dev)
            m_emb.append(model.embed(model.motion(s, ok), "motion").cpu().numpy())
            v_emb.append(model.embed(model.video(v, ok), "video").cpu().numpy())
    finally:
        model.train(was)
    m, v = np.concatenate(m_emb), np.concatenate(v_emb)
    n = len(m)
    return {"r1": recall_at_k(v, m, 1), "r5": recall_at_k(v, m, 5), "n": float(n), "chance": 1.0 / n}


def concept_kinds(ids: np.ndarray, action: np.ndarray, style: np.ndarray, *, min_frames: int = 30
                  ) -> list[dict[str, object]]:
    """For each concept with at least ``min_frames`` frames: its frames, its most frequent action and style with
    their shares, and its kind: ``"action"`` when its action share over the action chance (1 / #actions) beats its
    style share over the style chance, else ``"style"`` (sorted by frames)."""
    n_act = max(1, len(np.unique(action)))
    n_sty = max(1, len(np.unique(style)))
    ta, ca, va = contingency(ids, action)
    ts, cs, vs = contingency(ids, style)
    out = []
    for row, k in enumerate(ca):
        total = int(ta[row].sum())
        if total < min_frames:
            continue
        a_share = ta[row].max() / total
        srow = int(np.flatnonzero(cs == k)[0])
        s_share = ts[srow].max() / total
        kind = "action" if a_share * n_act >= s_share * n_sty else "style"
        out.append({"concept": int(k), "frames": total, "action": str(va[ta[row].argmax()]),
                    "action_share": float(a_share), "style": str(vs[ts[srow].argmax()]), "style_share": float(s_share),
                    "kind": kind})
    return sorted(out, key=lambda d: -int(d["frames"]))  # type: ignore[arg-type]


__all__ = ["FrameLabels", "cluster_scores", "concept_kinds", "encode_labelled", "kmeans_assign", "kmeans_fit",
           "kmeans_scores", "pair_windows", "pose_features", "retrieval_scores", "window_majority"]
