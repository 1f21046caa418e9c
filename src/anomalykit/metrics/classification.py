"""Threshold-free detection scores: AUROC and AUPRC (scikit-learn underneath).

Labels are 1 for anomalous and 0 for normal items; higher scores mean more anomalous.

>>> auroc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8])
0.75
>>> round(auprc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]), 4)
0.8333
>>> round(auprc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8], method="trapezoid"), 4)
0.7917
"""

from __future__ import annotations

from enum import Enum
from typing import Any

import numpy as np

from ..errors import ConfigError

__all__ = ["PRArea", "auroc", "auprc", "check_binary_scores"]


class PRArea(str, Enum):
    """How the area under the precision-recall curve is computed.

    ``average_precision``: the step-wise sum of precision times recall increments
    (``sklearn.metrics.average_precision_score``), not optimistic; the usual choice.
    ``trapezoid``: linear interpolation between the curve's points
    (``sklearn.metrics.auc(recall, precision)``), as the FairGAD benchmark reports it.
    """

    AVERAGE_PRECISION = "average_precision"
    TRAPEZOID = "trapezoid"


def check_binary_scores(labels: Any, scores: Any) -> tuple[np.ndarray, np.ndarray]:
    """Validate and return ``labels`` (0/1 int) and ``scores`` (float) as flat arrays.

    Raises ``ConfigError`` naming the argument for a length mismatch, labels other than 0/1,
    a single class, or non-finite scores.
    """
    y = np.asarray(labels).reshape(-1)
    s = np.asarray(scores, dtype=np.float64).reshape(-1)
    if y.shape != s.shape:
        raise ConfigError(f"labels ({y.shape[0]} values) and scores ({s.shape[0]} values) must have the same length")
    if y.size == 0:
        raise ConfigError("labels and scores are empty")
    if y.dtype == bool:
        y = y.astype(np.int64)
    values = np.unique(y)
    if not np.isin(values, (0, 1)).all():
        raise ConfigError(f"labels must be 0 (normal) or 1 (anomalous), found {values[:5].tolist()}")
    if values.size < 2:
        raise ConfigError(f"labels hold only class {int(values[0])}; the score is undefined without both classes")
    if not np.isfinite(s).all():
        raise ConfigError(f"scores hold {int((~np.isfinite(s)).sum())} non-finite value(s) (NaN or inf)")
    return y.astype(np.int64), s


def auroc(labels: Any, scores: Any) -> float:
    """Area under the ROC curve (``sklearn.metrics.roc_auc_score``); ties count one half."""
    from sklearn.metrics import roc_auc_score

    y, s = check_binary_scores(labels, scores)
    return float(roc_auc_score(y, s))


def auprc(labels: Any, scores: Any, method: PRArea | str = PRArea.AVERAGE_PRECISION) -> float:
    """Area under the precision-recall curve, by ``method`` (see ``PRArea``)."""
    from sklearn.metrics import auc, average_precision_score, precision_recall_curve

    try:
        method = PRArea(method)
    except ValueError:
        raise ConfigError(f"method must be one of {[m.value for m in PRArea]}, got {method!r}") from None
    y, s = check_binary_scores(labels, scores)
    if method is PRArea.AVERAGE_PRECISION:
        return float(average_precision_score(y, s))
    precision, recall, _ = precision_recall_curve(y, s)
    return float(auc(recall, precision))
