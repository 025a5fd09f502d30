"""Classification metrics: top-k accuracy and the confusion matrix."""

from __future__ import annotations

import numpy as np


def topk_accuracy(prob: np.ndarray, labels: np.ndarray, k: int = 1) -> float:
    """Fraction of rows of ``prob`` (N, classes) whose ``k`` highest scores include ``labels`` (N,)."""
    prob, labels = np.asarray(prob), np.asarray(labels)
    if prob.ndim != 2 or labels.shape != prob.shape[:1]:
        raise ValueError(f"topk_accuracy: prob (N, classes) and labels (N,) expected, got {prob.shape}, "
                         f"{labels.shape}")
    if not 1 <= k:
        raise ValueError(f"topk_accuracy: k must be >= 1, got {k}")
    if len(labels) == 0:
        return float("nan")
    top = np.argsort(-prob, axis=1, kind="stable")[:, :k]
    return float(np.mean((top == labels[:, None]).any(axis=1)))


def confusion_matrix(labels: np.ndarray, predictions: np.ndarray, num_classes: int) -> np.ndarray:
    """(classes, classes) int64 counts: row = true class, column = predicted class."""
    labels, predictions = np.asarray(labels, np.int64), np.asarray(predictions, np.int64)
    if labels.shape != predictions.shape:
        raise ValueError(f"confusion_matrix: labels {labels.shape} and predictions {predictions.shape} differ")
    both = np.concatenate([labels, predictions])
    if len(both) and (both.min() < 0 or both.max() >= num_classes):
        raise ValueError(f"confusion_matrix: classes must lie in 0..{num_classes - 1}")
    out = np.zeros((num_classes, num_classes), np.int64)
    np.add.at(out, (labels, predictions), 1)
    return out
