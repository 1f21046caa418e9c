"""Group-fairness measures of anomaly predictions, as the FairGAD benchmark computes them.

* ``statistical_parity_difference``: ``max_v P(pred=1 | S=v) - min_v P(pred=1 | S=v)``.
* ``equality_of_odds_difference``: the same gap among true anomalies only,
  ``max_v P(pred=1 | S=v, y=1) - min_v P(pred=1 | S=v, y=1)`` (a true-positive-rate gap).

Both take binary predictions (FairGAD thresholds the detector's scores at the
``1 - contamination`` quantile, see ``predictions_at_contamination``); lower is fairer. Groups
are the distinct values of the sensitive attribute in sorted order, as ``torch.unique`` gives
them in the reference code. ``fairgad_report`` bundles the four numbers of the FairGAD tables
(AUROC, trapezoidal AUPRC, ΔSP, ΔEO).

>>> pred = [1, 0, 0, 1, 1, 0]
>>> sens = [0, 0, 0, 1, 1, 1]
>>> round(statistical_parity_difference(pred, sens), 4)   # 1/3 vs 2/3
0.3333
>>> equality_of_odds_difference(pred, [1, 1, 0, 1, 0, 0], sens)   # 1/2 vs 1/1
0.5
"""

from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from ..errors import ConfigError
from .classification import PRArea, auprc, auroc

__all__ = [
    "FairGADReport",
    "equality_of_odds_difference",
    "fairgad_report",
    "group_positive_rates",
    "predictions_at_contamination",
    "statistical_parity_difference",
]


def _binary(values: Any, name: str) -> np.ndarray:
    array = np.asarray(values).reshape(-1)
    if array.dtype == bool:
        return array.astype(np.int64)
    if array.size and not np.isin(array, (0, 1)).all():
        raise ConfigError(f"{name} must be binary (0/1), found {np.unique(array)[:5].tolist()}")
    return array.astype(np.int64)


def _groups(sensitive: Any, n: int) -> tuple[np.ndarray, np.ndarray]:
    array = np.asarray(sensitive).reshape(-1)
    if array.shape[0] != n:
        raise ConfigError(f"sensitive has {array.shape[0]} values, predictions have {n}")
    if array.size == 0:
        raise ConfigError("predictions and sensitive are empty")
    values, inverse = np.unique(array, return_inverse=True)
    return values, inverse.reshape(-1)


def group_positive_rates(predictions: Any, sensitive: Any, labels: Any | None = None) -> dict[Any, float]:
    """Share of positive predictions per sensitive group (among ``labels == 1`` when given).

    A group without any such item gets NaN.
    """
    pred = _binary(predictions, "predictions")
    values, group = _groups(sensitive, pred.shape[0])
    keep = np.ones(pred.shape[0], bool)
    if labels is not None:
        y = _binary(labels, "labels")
        if y.shape != pred.shape:
            raise ConfigError(f"labels have {y.shape[0]} values, predictions have {pred.shape[0]}")
        keep = y == 1
    rates: dict[Any, float] = {}
    for index, value in enumerate(values.tolist()):
        members = pred[keep & (group == index)]
        rates[value] = float(members.mean()) if members.size else float("nan")
    return rates


def statistical_parity_difference(predictions: Any, sensitive: Any) -> float:
    """ΔSP: the largest minus the smallest positive-prediction rate over sensitive groups.

    NaN, with a warning, when ``sensitive`` holds a single group (there is no gap to measure).
    """
    rates = list(group_positive_rates(predictions, sensitive).values())
    if len(rates) < 2:
        warnings.warn("sensitive holds only one sensitive group; ΔSP is undefined", stacklevel=2)
        return float("nan")
    return float(max(rates) - min(rates))


def equality_of_odds_difference(predictions: Any, labels: Any, sensitive: Any) -> float:
    """ΔEO: the largest minus the smallest true-positive rate over sensitive groups.

    Only defined when there are at least two groups and every group holds at least one true
    anomaly; otherwise a warning is issued and NaN returned (the reference code would average an empty group and compare NaN).
    """
    rates = group_positive_rates(predictions, sensitive, labels)
    if len(rates) < 2:
        warnings.warn("sensitive holds only one sensitive group; ΔEO is undefined", stacklevel=2)
        return float("nan")
    empty = [value for value, rate in rates.items() if np.isnan(rate)]
    if empty:
        warnings.warn(f"sensitive group(s) {empty} hold no true anomaly; ΔEO is undefined", stacklevel=2)
        return float("nan")
    values = list(rates.values())
    return float(max(values) - min(values))


def predictions_at_contamination(scores: Any, contamination: float) -> np.ndarray:
    """Binary predictions as PyGOD makes them: 1 where ``score > percentile(scores, 100 (1 - c))``."""
    if not 0.0 < float(contamination) <= 0.5:
        raise ConfigError(f"contamination must lie in (0, 0.5], got {contamination}")
    s = np.asarray(scores, dtype=np.float64).reshape(-1)
    if s.size == 0 or not np.isfinite(s).all():
        raise ConfigError("scores must be a non-empty array of finite values")
    threshold = np.percentile(s, 100.0 * (1.0 - float(contamination)))
    return (s > threshold).astype(np.int64)


@dataclass(frozen=True)
class FairGADReport:
    """The four numbers of a FairGAD result row."""

    auroc: float
    auprc: float
    statistical_parity: float
    equality_of_odds: float

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


def fairgad_report(
    labels: Any,
    scores: Any,
    sensitive: Any,
    contamination: float | None = None,
    predictions: Any | None = None,
) -> FairGADReport:
    """AUROC, trapezoidal AUPRC, ΔSP and ΔEO as in the FairGAD benchmark.

    Predictions are thresholded from ``scores`` at ``contamination`` unless given.
    """
    if predictions is None:
        if contamination is None:
            raise ConfigError("give either predictions or contamination (to threshold the scores)")
        predictions = predictions_at_contamination(scores, contamination)
    return FairGADReport(
        auroc=auroc(labels, scores),
        auprc=auprc(labels, scores, method=PRArea.TRAPEZOID),
        statistical_parity=statistical_parity_difference(predictions, sensitive),
        equality_of_odds=equality_of_odds_difference(predictions, labels, sensitive),
    )
