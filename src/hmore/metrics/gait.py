"""Gait retrieval metrics: the CASIA-B evaluation protocol.

CASIA-B (as OpenGait evaluates it): gallery = NM 1-4 of the test subjects; probes = NM 5-6, BG 1-2 and CL 1-2. For
every probe view and every gallery view, each probe sequence takes the identity of its nearest gallery sequence of
that view (distance: Euclidean per horizontal strip, averaged over strips); rank-1 is the fraction right. A probe
view's score averages over the gallery views *other than itself* (identical-view pairs excluded); a condition's score
averages over probe views.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch

CASIA_GALLERY = ("nm-01", "nm-02", "nm-03", "nm-04")
CASIA_PROBES: dict[str, tuple[str, ...]] = {"NM": ("nm-05", "nm-06"), "BG": ("bg-01", "bg-02"),
                                            "CL": ("cl-01", "cl-02")}


def part_distance(probe: np.ndarray | torch.Tensor, gallery: np.ndarray | torch.Tensor) -> np.ndarray:
    """(Q, P, D) and (G, P, D) embeddings -> (Q, G) Euclidean distances averaged over the P strips."""
    q = torch.as_tensor(np.asarray(probe) if not isinstance(probe, torch.Tensor) else probe).float()
    g = torch.as_tensor(np.asarray(gallery) if not isinstance(gallery, torch.Tensor) else gallery).float()
    if q.ndim != 3 or g.ndim != 3 or q.shape[1:] != g.shape[1:]:
        raise ValueError(f"part_distance: (Q, P, D) and (G, P, D) expected, got {tuple(q.shape)}, {tuple(g.shape)}")
    d = torch.cdist(q.transpose(0, 1), g.transpose(0, 1))  # (P, Q, G)
    return d.mean(dim=0).numpy()


@dataclass(frozen=True)
class GaitRank1:
    """CASIA-B rank-1 results.

    Attributes:
        views: the view angles, in order.
        matrix: condition -> (V, V) rank-1 (probe view x gallery view), NaN where a view has no sequences.
        per_view: condition -> (V,) rank-1 per probe view, identical view excluded.
        mean: condition -> mean of ``per_view`` (identical view excluded): CASIA-B's headline number.
        mean_with_identical: condition -> mean of the whole matrix (identical-view pairs included).
    """

    views: tuple[float, ...]
    matrix: dict[str, np.ndarray]
    per_view: dict[str, np.ndarray]
    mean: dict[str, float]
    mean_with_identical: dict[str, float]

    def as_dict(self) -> dict:
        """JSON-able (NaN -> None)."""

        def clean(a: np.ndarray) -> list:
            return [None if not np.isfinite(v) else float(v) for v in np.asarray(a, float).ravel()]

        return {"views": list(self.views),
                "matrix": {k: np.asarray(clean(v), dtype=object).reshape(v.shape).tolist() for k, v in
                           self.matrix.items()},
                "per_view": {k: clean(v) for k, v in self.per_view.items()},
                "mean": dict(self.mean), "mean_with_identical": dict(self.mean_with_identical)}


def casia_rank1(embeddings: np.ndarray | torch.Tensor, subjects: Sequence[int], types: Sequence[str],
                views: Sequence[float], *, gallery: Sequence[str] = CASIA_GALLERY,
                probes: Mapping[str, Sequence[str]] | None = None) -> GaitRank1:
    """Rank-1 accuracy under the CASIA-B protocol (see the module docstring).

    Args:
        embeddings: (N, P, D) one embedding per sequence.
        subjects: (N,) identity of each sequence.
        types: (N,) sequence type names (``nm-01`` ...).
        views: (N,) view angles.
        gallery: the gallery's sequence types.
        probes: condition name -> its probe sequence types (default NM/BG/CL as CASIA-B).

    Raises:
        ValueError: inconsistent lengths, or fewer than 2 views (the identical view cannot be excluded).
    """
    emb = np.asarray(embeddings if not isinstance(embeddings, torch.Tensor) else embeddings.detach().cpu().numpy())
    subj, typ, view = np.asarray(subjects), np.asarray(types), np.asarray(views, float)
    if emb.ndim != 3 or not (len(emb) == len(subj) == len(typ) == len(view)):
        raise ValueError(f"casia_rank1: embeddings (N, P, D) and N labels expected, got {emb.shape}, "
                         f"{len(subj)}, {len(typ)}, {len(view)}")
    probes = CASIA_PROBES if probes is None else probes
    vs = tuple(float(v) for v in np.unique(view))
    if len(vs) < 2:
        raise ValueError(f"casia_rank1 needs at least 2 views to exclude the identical one, got {vs}")
    in_gallery = np.isin(typ, list(gallery))
    matrix, per_view, mean, mean_all = {}, {}, {}, {}
    for cond, ptypes in probes.items():
        in_probe = np.isin(typ, list(ptypes))
        acc = np.full((len(vs), len(vs)), np.nan)
        for i, v1 in enumerate(vs):
            p = np.flatnonzero(in_probe & (view == v1))
            if not len(p):
                continue
            for j, v2 in enumerate(vs):
                g = np.flatnonzero(in_gallery & (view == v2))
                if not len(g):
                    continue
                d = part_distance(emb[p], emb[g])  # (Qp, Gv)
                acc[i, j] = float(np.mean(subj[g][d.argmin(axis=1)] == subj[p]))
        off = acc.copy()
        np.fill_diagonal(off, np.nan)
        with warnings.catch_warnings():  # an all-NaN row (a view without probes) stays NaN
            warnings.simplefilter("ignore", RuntimeWarning)
            pv = np.nanmean(off, axis=1)
        matrix[cond], per_view[cond] = acc, pv
        mean[cond] = float(np.nanmean(pv)) if np.isfinite(pv).any() else float("nan")
        mean_all[cond] = float(np.nanmean(acc)) if np.isfinite(acc).any() else float("nan")
    return GaitRank1(views=vs, matrix=matrix, per_view=per_view, mean=mean, mean_with_identical=mean_all)

