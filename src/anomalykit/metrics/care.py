"""The CARE score of CARE to Compare: Coverage, Accuracy, Reliability and Earliness, combined.

Definitions follow the reference implementation of the benchmark's authors. For one event,
over its prediction data, with ``P`` the predicted anomalies and ``N`` the normal-status mask:

* ground truth ``GT = ~N``, and for an anomaly event ``GT[start..end] = True`` (inclusive);
* **Coverage** (anomaly events): F-beta (beta 0.5) of ``GT[N]`` against ``P[N]``;
* **Accuracy** (used for normal events): accuracy of ``GT[N]`` against ``P[N]``;
* **Earliness** (anomaly events): weighted share of ``P[start..end]`` (no status filter), the
  weight 1 over the first quarter of the window then falling linearly towards 0;
* **detection**: a criticality counter over the whole prediction data rises by 1 on a normal-status
  anomaly, falls by 1 (not below 0) on a normal-status non-anomaly, is capped at 1000; the event
  is detected when its maximum exceeds 72 (12 hours of 10-minute steps). Alternatively
  (``detection="fraction"``) when at least 10 % of the normal-status steps in the window are anomalies;
* **Reliability**: F-beta (beta 0.5) over events of "is an anomaly event" against "detected".

The combined score is 0 when no event is detected; the mean normal-event Accuracy when that is
at most 0.5; otherwise ``(2 Acc + Earliness + Coverage + Reliability) / 5`` with Coverage and
Earliness averaged over anomaly events.

>>> import numpy as np
>>> from anomalykit.metrics.care import CareEventEvaluation, care_score
>>> events = [CareEventEvaluation(True, True, 0.9, coverage=0.869565, earliness=0.5, event_id=1),
...           CareEventEvaluation(False, True, 0.8, event_id=3)]
>>> round(care_score(events).score, 6)
0.705024
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any

import numpy as np
from sklearn.metrics import accuracy_score, fbeta_score

from ..errors import ConfigError

__all__ = [
    "care_coverage",
    "care_criticality",
    "care_earliness",
    "care_earliness_weights",
    "care_reliability",
    "care_score",
    "CareDetection",
    "CareEventEvaluation",
    "CareResult",
    "CareWeights",
    "evaluate_care_event",
    "evaluate_care_sample",
]

CRITICALITY_CAP = 1000
DEFAULT_CRITICALITY_THRESHOLD = 72
DEFAULT_MIN_FRACTION = 0.1
DEFAULT_BETA = 0.5
_EARLINESS_SCALE = 4


class CareDetection(str, Enum):
    """How an event counts as detected."""

    CRITICALITY = "criticality"
    FRACTION = "fraction"


@dataclass(frozen=True)
class CareWeights:
    """Weights of the four terms of the combined score (the benchmark's defaults)."""

    coverage: float = 1.0
    accuracy: float = 2.0
    earliness: float = 1.0
    reliability: float = 1.0

    def __post_init__(self) -> None:
        for name in ("coverage", "accuracy", "earliness", "reliability"):
            if getattr(self, name) < 0:
                raise ConfigError(f"CareWeights.{name} must be >= 0, got {getattr(self, name)}")
        if self.coverage + self.accuracy + self.earliness + self.reliability <= 0:
            raise ConfigError("CareWeights: at least one weight must be positive")


@dataclass(frozen=True)
class CareEventEvaluation:
    """The per-event quantities the combined score needs (``coverage`` and ``earliness`` only for
    anomaly events)."""

    is_anomaly: bool
    detected: bool
    accuracy: float
    coverage: float | None = None
    earliness: float | None = None
    max_criticality: int | None = None
    event_id: Any = None

    def __post_init__(self) -> None:
        if self.is_anomaly and (self.coverage is None or self.earliness is None):
            raise ConfigError(f"CareEventEvaluation {self.event_id!r}: an anomaly event needs coverage and earliness")


@dataclass(frozen=True)
class CareResult:
    """The combined score, its four terms, and which rule produced it."""

    score: float
    coverage: float
    accuracy: float
    earliness: float
    reliability: float
    n_events: int
    n_anomaly: int
    n_normal: int
    n_detected: int
    rule: str  # "none detected", "accuracy <= 0.5" or "weighted"


def _bool_array(values: Any, name: str) -> np.ndarray:
    array = np.asarray(values)
    if array.ndim != 1:
        raise ConfigError(f"{name} must be one-dimensional, got shape {array.shape}")
    if array.dtype != bool:
        if array.size and not np.isin(array, (0, 1)).all():
            raise ConfigError(f"{name} must be boolean or 0/1")
        array = array.astype(bool)
    return array


def care_criticality(predicted: Any, normal_index: Any, cap: int = CRITICALITY_CAP) -> np.ndarray:
    """The criticality counter over a prediction series (see the module docstring).

    >>> care_criticality([1, 1, 0, 1, 1, 1, 0, 0], [1, 1, 1, 0, 1, 1, 1, 1]).tolist()
    [1, 2, 1, 1, 2, 3, 2, 1]
    """
    p = _bool_array(predicted, "predicted")
    n = _bool_array(normal_index, "normal_index")
    if p.shape != n.shape:
        raise ConfigError(f"predicted and normal_index differ in length ({p.size} vs {n.size})")
    out = np.empty(p.size, np.int64)
    count = 0
    for i, (anomalous, normal) in enumerate(zip(p.tolist(), n.tolist())):
        if normal:
            count = min(count + 1, cap) if anomalous else max(count - 1, 0)
        out[i] = count
    return out


def care_earliness_weights(length: int, start_of_descend: tuple[int, int] = (1, 4)) -> np.ndarray:
    """Weights of the earliness score for a window of ``length`` steps: 1 up to the fraction
    ``start_of_descend`` of the window, then a line falling towards 0 at its end (computed on a
    grid 4 times finer and subsampled, as the reference does).

    >>> care_earliness_weights(8).round(4).tolist()
    [1.0, 1.0, 0.9892, 0.8172, 0.6452, 0.4731, 0.3011, 0.129]
    """
    if length < 1:
        raise ConfigError(f"earliness_weights: length must be >= 1, got {length}")
    numerator, denominator = start_of_descend
    if not 0 <= numerator < denominator:
        raise ConfigError(f"earliness_weights: start_of_descend must be a fraction in [0, 1), got {start_of_descend}")
    scale = _EARLINESS_SCALE
    n = scale * length
    x = np.linspace(0.0, scale, n)
    flat = n * numerator // denominator
    x0 = scale * numerator / denominator
    weights = np.empty(n, np.float64)
    weights[:flat] = scale
    weights[flat:] = scale * (scale - x[flat:]) / (scale - x0)
    return weights[::scale] / scale


def care_earliness(predicted_window: Any, start_of_descend: tuple[int, int] = (1, 4)) -> float:
    """Weighted score of the predictions inside an anomaly window (earlier detections weigh more).

    >>> round(care_earliness([1, 1, 0, 0, 0, 0, 0, 0]), 5)
    0.37349
    """
    p = _bool_array(predicted_window, "predicted_window")
    if p.size == 0:
        raise ConfigError("earliness: the event window holds no prediction steps")
    weights = care_earliness_weights(p.size, start_of_descend)
    return float(np.sum(weights * p) / np.sum(weights))


def care_coverage(ground_truth: Any, predicted: Any, beta: float = DEFAULT_BETA) -> float:
    """F-beta of the normal-status steps (already filtered); 0 when nothing is true or predicted."""
    return float(fbeta_score(_bool_array(ground_truth, "ground_truth"), _bool_array(predicted, "predicted"), beta=beta, zero_division=0.0))


def care_reliability(is_anomaly: Sequence[bool], detected: Sequence[bool], beta: float = DEFAULT_BETA) -> float:
    """Event-wise F-beta: "the event is an anomaly event" against "the event was detected"."""
    return float(fbeta_score(np.asarray(is_anomaly, bool), np.asarray(detected, bool), beta=beta, zero_division=0.0))


def _window(length: int, start: Any, end: Any, index: Any) -> np.ndarray:
    if index is None:
        positions = np.arange(length)
        return (positions >= int(start)) & (positions <= int(end))
    idx = np.asarray(index)
    if idx.shape != (length,):
        raise ConfigError(f"index must have one entry per prediction step ({length}), got shape {idx.shape}")
    if idx.dtype.kind == "M":
        start, end = np.datetime64(start), np.datetime64(end)
    return (idx >= start) & (idx <= end)


def evaluate_care_event(
    predicted: Any,
    normal_index: Any,
    *,
    event_start: Any,
    event_end: Any,
    is_anomaly: bool,
    index: Any = None,
    ignore_normal_index: bool = False,
    coverage_beta: float = DEFAULT_BETA,
    detection: CareDetection | str = CareDetection.CRITICALITY,
    criticality_threshold: int = DEFAULT_CRITICALITY_THRESHOLD,
    min_fraction: float = DEFAULT_MIN_FRACTION,
    start_of_descend: tuple[int, int] = (1, 4),
    event_id: Any = None,
) -> CareEventEvaluation:
    """Evaluate one event over its prediction data.

    ``predicted`` and ``normal_index`` are boolean per prediction step. The window is
    [``event_start``, ``event_end``], inclusive: positions, or values of ``index`` (row ids or
    timestamps, sorted) when given. ``ignore_normal_index`` treats every step as normal status
    (the reference does so for Farm A).
    """
    p = _bool_array(predicted, "predicted")
    n = np.ones_like(p) if ignore_normal_index else _bool_array(normal_index, "normal_index")
    if p.shape != n.shape:
        raise ConfigError(f"predicted and normal_index differ in length ({p.size} vs {n.size})")
    detection = CareDetection(detection)
    window = _window(p.size, event_start, event_end, index)
    truth = ~n
    if is_anomaly:
        if not window.any():
            raise ConfigError(f"event {event_id!r}: the window [{event_start}, {event_end}] holds no prediction step")
        truth = truth | window
    if not n.any():
        raise ConfigError(f"event {event_id!r}: no prediction step has normal status, so "
                          f"{'coverage' if is_anomaly else 'accuracy'} is undefined (ignore_normal_index=True "
                          f"counts every step)")
    accuracy = float(accuracy_score(truth[n], p[n]))
    counter = care_criticality(p, n)
    max_criticality = int(counter.max(initial=0))
    if detection is CareDetection.CRITICALITY:
        detected = max_criticality > criticality_threshold
    else:
        inside = p[window & n]
        detected = bool(inside.size) and float(inside.mean()) >= min_fraction
    return CareEventEvaluation(
        is_anomaly=bool(is_anomaly),
        detected=bool(detected),
        accuracy=accuracy,
        coverage=care_coverage(truth[n], p[n], coverage_beta) if is_anomaly else None,
        earliness=care_earliness(p[window], start_of_descend) if is_anomaly else None,
        max_criticality=max_criticality,
        event_id=event_id,
    )


def care_score(
    events: Iterable[CareEventEvaluation],
    *,
    event_selection: Iterable[Any] | None = None,
    reliability_beta: float = DEFAULT_BETA,
    weights: CareWeights = CareWeights(),
) -> CareResult:
    """Combine per-event evaluations into the CARE score (see the module docstring).

    ``event_selection`` keeps the events whose ``event_id`` is listed.
    """
    chosen = list(events)
    if event_selection is not None:
        wanted = set(event_selection)
        unknown = wanted - {e.event_id for e in chosen}
        if unknown:
            raise ConfigError(f"care_score: event_selection names unknown event id(s) {sorted(map(str, unknown))}")
        chosen = [e for e in chosen if e.event_id in wanted]
    if not chosen:
        raise ConfigError("care_score: no events to score")
    anomalies = [e for e in chosen if e.is_anomaly]
    normals = [e for e in chosen if not e.is_anomaly]
    n_detected = sum(e.detected for e in chosen)
    cov = float(np.mean([e.coverage for e in anomalies])) if anomalies else float("nan")
    ear = float(np.mean([e.earliness for e in anomalies])) if anomalies else float("nan")
    acc = float(np.mean([e.accuracy for e in normals])) if normals else float("nan")
    rel = care_reliability([e.is_anomaly for e in chosen], [e.detected for e in chosen], reliability_beta)
    common = dict(coverage=cov, accuracy=acc, earliness=ear, reliability=rel, n_events=len(chosen),
                  n_anomaly=len(anomalies), n_normal=len(normals), n_detected=n_detected)  # fmt: skip
    if n_detected == 0:
        return CareResult(score=0.0, rule="none detected", **common)
    if not normals:
        raise ConfigError("care_score: the accuracy term needs at least one normal event")
    if acc <= 0.5:
        return CareResult(score=acc, rule="accuracy <= 0.5", **common)
    if not anomalies:
        raise ConfigError("care_score: the coverage and earliness terms need at least one anomaly event")
    total = weights.coverage + weights.accuracy + weights.earliness + weights.reliability
    score = (weights.accuracy * acc + weights.earliness * ear + weights.coverage * cov + weights.reliability * rel) / total
    return CareResult(score=float(score), rule="weighted", **common)


def evaluate_care_sample(sample: Any, predicted: Any, *, ignore_normal_index: bool | None = None, **options: Any) -> CareEventEvaluation:
    """Evaluate predictions for a sample of the ``care`` loader (``part="all"`` or ``"prediction"``).

    ``predicted`` covers either every row of the sample or only its prediction rows. The
    normal-status mask, row ids and event window come from ``sample.meta``.
    ``ignore_normal_index`` defaults to True for Farm A, as in the reference evaluation.
    Other options go to ``evaluate_care_event``.
    """
    meta = sample.meta
    if meta.get("part") == "train":
        raise ConfigError(f"evaluate_care_sample: {sample.key} holds training data only; load with part='all' or 'prediction'")
    is_prediction = np.asarray(meta["is_prediction"], bool)
    p = _bool_array(predicted, "predicted")
    if p.size == is_prediction.size:
        p = p[is_prediction]
    elif p.size != int(is_prediction.sum()):
        raise ConfigError(
            f"evaluate_care_sample: predicted has {p.size} steps; {sample.key} has {is_prediction.size} rows, "
            f"{int(is_prediction.sum())} of them prediction rows"
        )
    if ignore_normal_index is None:
        ignore_normal_index = meta.get("farm") == "A"
    return evaluate_care_event(
        p,
        np.asarray(meta["normal_mask"], bool)[is_prediction],
        event_start=meta["event_start_id"],
        event_end=meta["event_end_id"],
        is_anomaly=meta["event_label"] == "anomaly",
        index=np.asarray(meta["ids"])[is_prediction],
        ignore_normal_index=ignore_normal_index,
        event_id=meta.get("event_id", sample.key),
        **options,
    )
