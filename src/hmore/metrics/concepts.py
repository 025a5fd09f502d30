"""Metrics of motion concepts: clustering agreement with labels (NMI, purity) and cross-modal retrieval (R@k).

NMI uses the arithmetic mean of the two entropies (scikit-learn's default): NMI = I(C; Y) / ((H(C) + H(Y)) / 2),
1 when the clusters are the labels up to renaming, 0 when they are independent. Purity = sum over clusters of the
count of its most frequent label / N (1 for pure clusters; it rises with the number of clusters, so compare methods
with the same number of clusters). NMI is the harmonic mean of homogeneity I(C; Y) / H(Y) (each cluster holds
one label) and completeness I(C; Y) / H(C) (each label sits in one cluster): :func:`homogeneity_completeness`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def contingency(clusters: Sequence[int] | np.ndarray, labels: Sequence[object] | np.ndarray
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(C, L) counts of every (cluster, label) pair, with the sorted cluster ids and label values."""
    c = np.asarray(clusters)
    y = np.asarray(labels)
    if c.shape != y.shape or c.ndim != 1:
        raise ValueError(f"clusters {c.shape} and labels {y.shape} must be 1-D and the same length")
    cu, ci = np.unique(c, return_inverse=True)
    yu, yi = np.unique(y, return_inverse=True)
    table = np.zeros((len(cu), len(yu)), np.int64)
    np.add.at(table, (ci, yi), 1)
    return table, cu, yu


def _entropy(counts: np.ndarray) -> float:
    p = counts[counts > 0] / counts.sum()
    return float(-(p * np.log(p)).sum())


def _mi_entropies(clusters: Sequence[int] | np.ndarray, labels: Sequence[object] | np.ndarray
                  ) -> tuple[float, float, float]:
    """(I(C; Y), H(C), H(Y)) in nats of a non-empty clustering against labels."""
    table, _, _ = contingency(clusters, labels)
    n = table.sum()
    pc, py = table.sum(axis=1), table.sum(axis=0)
    nz = table > 0
    mi = float((table[nz] / n * np.log(table[nz] * n / np.outer(pc, py)[nz])).sum())
    return max(0.0, mi), _entropy(pc), _entropy(py)


def nmi(clusters: Sequence[int] | np.ndarray, labels: Sequence[object] | np.ndarray) -> float:
    """Normalised mutual information (arithmetic normalisation) of a clustering against labels; 0 for an empty
    input, 1 when both are the same single group."""
    if len(clusters) == 0:
        return 0.0
    mi, hc, hy = _mi_entropies(clusters, labels)
    if hc == 0.0 and hy == 0.0:
        return 1.0
    denom = 0.5 * (hc + hy)
    return mi / denom if denom > 0 else 0.0


def homogeneity_completeness(clusters: Sequence[int] | np.ndarray, labels: Sequence[object] | np.ndarray
                             ) -> tuple[float, float]:
    """(I(C; Y) / H(Y), I(C; Y) / H(C)); a ratio whose entropy is 0 is 1 (one label / one cluster), and both are 1
    for an empty input."""
    if len(clusters) == 0:
        return 1.0, 1.0
    mi, hc, hy = _mi_entropies(clusters, labels)
    return (mi / hy if hy > 0 else 1.0), (mi / hc if hc > 0 else 1.0)


def purity(clusters: Sequence[int] | np.ndarray, labels: Sequence[object] | np.ndarray) -> float:
    """Fraction of items whose label is their cluster's most frequent label."""
    if len(clusters) == 0:
        return 0.0
    table, _, _ = contingency(clusters, labels)
    return float(table.max(axis=1).sum() / table.sum())


def recall_at_k(query: np.ndarray, gallery: np.ndarray, k: int = 1) -> float:
    """Fraction of queries i whose match gallery[i] is among the k most similar gallery items (dot product).

    Args:
        query, gallery: (N, D) embeddings, row i of each is a pair.
        k: rank cut-off.
    """
    q, g = np.asarray(query, np.float64), np.asarray(gallery, np.float64)
    if q.shape != g.shape or q.ndim != 2:
        raise ValueError(f"query {q.shape} and gallery {g.shape} must be the same (N, D)")
    if len(q) == 0:
        return 0.0
    sim = q @ g.T
    own = np.diag(sim)
    rank = (sim > own[:, None]).sum(axis=1)  # ties count in the query's favour
    return float((rank < k).mean())


__all__ = ["contingency", "homogeneity_completeness", "nmi", "purity", "recall_at_k"]
