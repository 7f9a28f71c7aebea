"""Binary classification metrics for benign vs malignant, computed with scikit-learn.

The **positive class is malignant** (label 1); benign is 0. A probability at or above
``threshold`` (default 0.5) predicts malignant. With ``TP, FP, TN, FN`` counted on the
held-out test split:

* accuracy    = (TP + TN) / N
* precision   = TP / (TP + FP)                      (positive predictive value)
* recall      = TP / (TP + FN)                      (sensitivity)
* F1          = 2 precision recall / (precision + recall)
* specificity = TN / (TN + FP)                      (recall of benign)
* ROC-AUC     = area under the ROC curve of ``prob_malignant`` (threshold-free)
* confusion matrix: rows are the true class, columns the predicted class, in the
  order (benign, malignant): ``[[TN, FP], [FN, TP]]``.

A ratio whose denominator is zero (e.g. precision when nothing is predicted
malignant) and ROC-AUC when the labels hold only one class are undefined: they are
reported as ``None``, never silently as 0.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from sklearn import metrics as skm

CLASS_NAMES = ("benign", "malignant")
POSITIVE_CLASS = "malignant"


def encode_labels(labels: Sequence[str | int], *, source: str = "labels") -> np.ndarray:
    """Map ``'benign'``/``'malignant'`` (or 0/1) to 0/1; ``ValueError`` naming ``source`` otherwise."""
    encoded = np.empty(len(labels), dtype=np.int64)
    for i, label in enumerate(labels):
        key = label.strip().lower() if isinstance(label, str) else label
        if key in CLASS_NAMES:
            encoded[i] = CLASS_NAMES.index(key)
        elif key in (0, 1, "0", "1") and not isinstance(key, bool):
            encoded[i] = int(key)
        else:
            raise ValueError(
                f"{source}[{i}]: label must be one of {CLASS_NAMES} or 0/1, got {label!r}"
            )
    return encoded


def _defined(value: float) -> float | None:
    return None if math.isnan(value) else float(value)


def classification_metrics(
    labels: Sequence[str | int],
    prob_malignant: Sequence[float],
    *,
    threshold: float = 0.5,
    source: str = "predictions",
) -> dict:
    """Accuracy, precision, recall, F1, specificity, ROC-AUC and confusion matrix.

    Args:
        labels: true classes, ``'benign'``/``'malignant'`` or 0/1.
        prob_malignant: predicted probability of malignant for each image, in [0, 1].
        threshold: probabilities ``>= threshold`` predict malignant.
        source: name used in error messages (e.g. the predictions file).

    Returns:
        A JSON-safe dict (see the module docstring for the definitions).
    """
    y_true = encode_labels(labels, source=f"{source} labels")
    prob = np.asarray(prob_malignant, dtype=np.float64)
    if y_true.size == 0:
        raise ValueError(f"{source}: no predictions to evaluate")
    if prob.shape != y_true.shape:
        raise ValueError(f"{source}: {y_true.size} labels but {prob.size} probabilities")
    if not np.isfinite(prob).all():
        raise ValueError(
            f"{source}: probability {int(np.flatnonzero(~np.isfinite(prob))[0])} is NaN or infinite"
        )
    if (prob < 0).any() or (prob > 1).any():
        index = int(np.flatnonzero((prob < 0) | (prob > 1))[0])
        raise ValueError(f"{source}: probability {index} is {prob[index]}, outside [0, 1]")
    if not 0.0 <= threshold <= 1.0:
        raise ValueError(f"threshold must lie in [0, 1], got {threshold}")
    y_pred = (prob >= threshold).astype(np.int64)
    matrix = skm.confusion_matrix(y_true, y_pred, labels=[0, 1])
    (tn, fp), (fn, tp) = matrix.tolist()
    both_classes = len(np.unique(y_true)) == 2
    return {
        "positive_class": POSITIVE_CLASS,
        "threshold": float(threshold),
        "n": int(y_true.size),
        "n_malignant": int(y_true.sum()),
        "n_benign": int(y_true.size - y_true.sum()),
        "accuracy": float(skm.accuracy_score(y_true, y_pred)),
        "precision": _defined(
            skm.precision_score(y_true, y_pred, pos_label=1, zero_division=np.nan)
        ),
        "recall": _defined(skm.recall_score(y_true, y_pred, pos_label=1, zero_division=np.nan)),
        "f1": _defined(skm.f1_score(y_true, y_pred, pos_label=1, zero_division=np.nan)),
        "specificity": _defined(
            skm.recall_score(y_true, y_pred, pos_label=0, zero_division=np.nan)
        ),
        "roc_auc": float(skm.roc_auc_score(y_true, prob)) if both_classes else None,
        "confusion_matrix": {
            "labels": list(CLASS_NAMES),
            "rows": "true",
            "columns": "predicted",
            "matrix": matrix.tolist(),
        },
        "tp": tp,
        "fp": fp,
        "tn": tn,
        "fn": fn,
    }
