"""Scores for per-step anomaly scores of time series: point-wise, range-based and VUS.

* **Point-wise** AUROC / AUPRC treat every step as an item (``anomalykit.metrics.classification``).
* **Range-based** precision / recall / F1 (Tatbul et al., NeurIPS 2018) compare anomaly *events*
  (maximal runs of 1) with predicted events. With flat positional bias and cardinality factor
  ``1 / (number of overlapping ranges)``::

      recall    = mean over real events R    of  alpha * [R overlaps a prediction]
                                                 + (1 - alpha) * card(R) * |R ∩ predicted steps| / |R|
      precision = mean over predicted events P of card(P) * |P ∩ anomalous steps| / |P|

  ``alpha`` weighs the existence reward (TSB-AD uses 0.2 for recall); precision has none.
* **VUS-ROC / VUS-PR** (Paparrizos et al., VLDB 2022) as TSB-AD computes them
  (``basic_metricor.RangeAUC_volume_opt``): every anomaly event is given a buffer of
  ``w // 2`` steps on each side whose labels fall off as ``sqrt(1 - d / w)``; at each of 250
  thresholds (scores ranked, thresholds at evenly spaced ranks) a range-aware TPR (recall times the
  share of buffered events touched), FPR and precision are computed; the ROC area (trapezoid) and
  the PR area (step sum) are averaged over buffer lengths ``w = 0, 1, ..., window``.

  ``window`` is always given explicitly. TSB-AD's ``get_metrics`` passes twice the series' period
  estimate (``2 * slidingWindow``); ``estimate_period`` gives such an estimate for univariate
  *and* multivariate series (per-channel autocorrelation, the median over channels), so the window
  never silently collapses to 0 for multivariate data, and ``window_from_series`` caps it at a
  quarter of the series. Record the window with the result (``VusResult.window``): VUS grows with it.

  The computation here is exact with respect to that definition but avoids its
  (windows x thresholds x steps) loops: steps are ranked once, and for each buffer length only the
  buffer steps are revisited (cumulative sums over ranks), so the cost is about
  ``O(n log n + window * (buffer steps + thresholds))``.

>>> labels = [0, 0, 1, 1, 0, 0, 0, 0]
>>> scores = [0.1, 0.2, 0.9, 0.8, 0.3, 0.1, 0.0, 0.2]
>>> point_auroc(labels, scores)
1.0
>>> range_precision_recall_f1(labels, [0, 0, 1, 0, 0, 0, 1, 0]).recall
0.5
>>> round(vus(labels, scores, window=0).pr, 4)
1.0
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import ConfigError
from .classification import auprc, auroc, check_binary_scores

__all__ = [
    "RangeScores",
    "VusResult",
    "anomaly_ranges",
    "estimate_period",
    "point_auprc",
    "point_auroc",
    "range_precision_recall_f1",
    "vus",
    "vus_pr",
    "vus_roc",
    "window_from_series",
]

#: thresholds per buffer length, as TSB-AD
DEFAULT_THRESHOLDS = 250
#: TSB-AD's fallback period when no autocorrelation peak is found
DEFAULT_PERIOD = 125
#: TSB-AD searches the maxima of the ACF from lag 3 on, whose first point cannot be a maximum
_FIRST_PEAK_LAG = 4


# ------------------------------------------------------------------------------------------------
# point-wise


def _flat_steps(labels: Any, scores: Any) -> tuple[np.ndarray, np.ndarray]:
    """Labels and scores as flat arrays; sequences of per-sample arrays are concatenated, and a
    (T x C) target counts a step as anomalous when any channel is."""
    if isinstance(labels, (list, tuple)) and labels and np.ndim(labels[0]) >= 1:
        if not isinstance(scores, (list, tuple)) or len(scores) != len(labels):
            raise ConfigError("labels is a list of per-sample arrays; scores must be a list of the same length")
        pairs = [_flat_steps(y, s) for y, s in zip(labels, scores)]
        for index, (y, s) in enumerate(pairs):
            if y.shape != s.shape:  # checked per sample: equal totals could hide misaligned samples
                raise ConfigError(f"sample {index}: labels have {y.size} steps, scores have {s.size}")
        return np.concatenate([p[0] for p in pairs]), np.concatenate([p[1] for p in pairs])
    y = np.asarray(labels)
    s = np.asarray(scores, dtype=np.float64)
    if y.ndim == 2:
        y = (y > 0).any(axis=1)
    if s.ndim == 2 and s.shape[0] == y.shape[0]:
        s = s.max(axis=1)
    return (y > 0).astype(np.int64).reshape(-1), s.reshape(-1)


def point_auroc(labels: Any, scores: Any) -> float:
    """AUROC over steps (lists of per-sample arrays are concatenated)."""
    return auroc(*_flat_steps(labels, scores))


def point_auprc(labels: Any, scores: Any) -> float:
    """AUPRC (average precision) over steps (lists of per-sample arrays are concatenated)."""
    return auprc(*_flat_steps(labels, scores))


# ------------------------------------------------------------------------------------------------
# range-based precision / recall


def anomaly_ranges(labels: Any) -> np.ndarray:
    """Maximal runs of non-zero labels as an (events x 2) array of inclusive [start, end].

    >>> anomaly_ranges([1, 1, 0, 0, 1, 0, 1]).tolist()
    [[0, 1], [4, 4], [6, 6]]
    """
    y = np.asarray(labels).reshape(-1) > 0
    padded = np.concatenate([[False], y, [False]]).astype(np.int8)
    change = np.diff(padded)
    starts = np.flatnonzero(change == 1)
    ends = np.flatnonzero(change == -1) - 1
    return np.stack([starts, ends], axis=1).astype(np.int64)


def _range_part(targets: np.ndarray, other: np.ndarray, other_ranges: np.ndarray, alpha: float) -> float:
    """Mean over the ranges of ``targets`` of alpha * existence + (1 - alpha) * card * overlap."""
    ranges = anomaly_ranges(targets)
    if len(ranges) == 0:
        return 0.0
    covered = np.concatenate([[0], np.cumsum(other)])
    lengths = ranges[:, 1] - ranges[:, 0] + 1
    overlap = (covered[ranges[:, 1] + 1] - covered[ranges[:, 0]]) / lengths
    if len(other_ranges):
        # ranges of ``other`` meeting [start, end]: those starting at or before end and ending at or after start
        first = np.searchsorted(other_ranges[:, 1], ranges[:, 0], side="left")
        last = np.searchsorted(other_ranges[:, 0], ranges[:, 1], side="right")
        meeting = np.maximum(last - first, 0)
    else:
        meeting = np.zeros(len(ranges), np.int64)
    cardinality = np.where(meeting > 1, 1.0 / np.maximum(meeting, 1), 1.0)
    existence = (overlap > 0).astype(np.float64)
    return float(np.mean(alpha * existence + (1.0 - alpha) * cardinality * overlap))


@dataclass(frozen=True)
class RangeScores:
    """Range-based precision, recall and F1 (see the module docstring)."""

    precision: float
    recall: float
    f1: float
    n_events: int
    n_predicted_events: int


def range_precision_recall_f1(labels: Any, predicted: Any, *, alpha: float = 0.0) -> RangeScores:
    """Range-based precision / recall / F1 of binary per-step ``predicted`` against ``labels``.

    ``alpha`` (0..1) is the recall's existence-reward weight; precision uses none.

    >>> r = range_precision_recall_f1([0, 1, 1, 1, 1, 0, 0, 0], [0, 0, 1, 1, 0, 0, 1, 1])
    >>> r.precision, r.recall
    (0.5, 0.5)
    """
    y = np.asarray(labels).reshape(-1)
    p = np.asarray(predicted).reshape(-1)
    if y.shape != p.shape:
        raise ConfigError(f"labels ({y.size} steps) and predicted ({p.size} steps) must have the same length")
    if not 0.0 <= alpha <= 1.0:
        raise ConfigError(f"alpha must be in [0, 1], got {alpha}")
    for name, array in (("labels", y), ("predicted", p)):
        if array.size and not np.isin(np.unique(array), (0, 1)).all():
            raise ConfigError(f"{name} must be 0/1 per step")
    y, p = (y > 0).astype(np.int64), (p > 0).astype(np.int64)
    real, pred = anomaly_ranges(y), anomaly_ranges(p)
    if len(real) == 0:
        raise ConfigError("labels hold no anomalous step; range-based recall is undefined")
    recall = _range_part(y, p, pred, alpha)
    precision = _range_part(p, y, real, 0.0) if len(pred) else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0
    return RangeScores(float(precision), float(recall), float(f1), int(len(real)), int(len(pred)))


# ------------------------------------------------------------------------------------------------
# VUS


@dataclass(frozen=True)
class VusResult:
    """VUS-ROC and VUS-PR, the buffer window they were computed with, and the per-window areas."""

    roc: float
    pr: float
    window: int
    thresholds: int
    roc_per_window: np.ndarray
    pr_per_window: np.ndarray


def _check_window(window: Any) -> int:
    if isinstance(window, bool) or not isinstance(window, (int, np.integer)):
        raise ConfigError(f"window must be an integer number of steps (>= 0), got {window!r}; "
                          f"see estimate_period() / window_from_series() for a data-driven choice")
    if window < 0:
        raise ConfigError(f"window must be >= 0, got {window}")
    return int(window)


def vus(labels: Any, scores: Any, *, window: int, thresholds: int = DEFAULT_THRESHOLDS) -> VusResult:
    """VUS-ROC and VUS-PR over buffer lengths ``0..window`` as TSB-AD defines them.

    ``labels`` 0/1 per step, ``scores`` one float per step (higher = more anomalous); both
    classes must be present. ``window`` is the largest buffer length (TSB-AD: twice the period).
    """
    window = _check_window(window)
    if isinstance(thresholds, bool) or not isinstance(thresholds, (int, np.integer)) or thresholds < 2:
        raise ConfigError(f"thresholds must be an integer >= 2, got {thresholds!r}")
    y, s = check_binary_scores(labels, scores)
    n = y.size
    events = anomaly_ranges(y)
    starts, ends = events[:, 0], events[:, 1]
    n_pos = float(y.sum())

    ascending = np.sort(s)
    threshold_values = ascending[::-1][np.linspace(0, n - 1, thresholds).astype(np.int64)]
    # predicted at threshold k: score >= t_k; a step is predicted iff its rank (the number of steps
    # with a strictly higher score) is below c_k, the number of steps with score >= t_k
    counts = n - np.searchsorted(ascending, threshold_values, side="left")
    rank = n - np.searchsorted(ascending, s, side="right")

    positive_ranks = np.sort(rank[y == 1])
    tp_points = np.searchsorted(positive_ranks, counts, side="left").astype(np.float64)
    event_min_rank = _segment_min(rank, starts, ends)

    # the steps that are buffer at the largest window: outside events, within window // 2 of one
    h_max = window // 2
    buffer_mask = np.zeros(n, bool)
    if h_max:
        marks = np.zeros(n + 1, np.int64)
        np.add.at(marks, np.maximum(starts - h_max, 0), 1)
        np.add.at(marks, np.minimum(ends + h_max, n - 1) + 1, -1)
        buffer_mask = (np.cumsum(marks)[:n] > 0) & (y == 0)
    buffer_steps = np.flatnonzero(buffer_mask)
    buffer_rank = rank[buffer_steps]
    by_rank = np.argsort(buffer_rank, kind="stable")
    buffer_rank_sorted = buffer_rank[by_rank]
    buffer_before = np.searchsorted(buffer_rank_sorted, counts, side="left")
    # nearest event ending before / starting after each buffer step
    prev_event = np.searchsorted(ends, buffer_steps, side="left") - 1
    next_event = np.searchsorted(starts, buffer_steps, side="right")

    auc = np.empty(window + 1)
    ap = np.empty(window + 1)
    for w in range(window + 1):
        h = w // 2
        weight = np.zeros(buffer_steps.size)
        if h and buffer_steps.size:
            j = 0
            while True:  # contributions of the events ending before each step, nearest first
                index = prev_event - j
                valid = index >= 0
                distance = buffer_steps - ends[np.where(valid, index, 0)]
                hit = valid & (distance <= h)
                if not hit.any():
                    break
                weight += np.where(hit, np.sqrt(np.clip(1.0 - distance / w, 0.0, None)), 0.0)
                j += 1
            j = 0
            while True:  # and of the events starting after it
                index = next_event + j
                valid = index < len(starts)
                distance = starts[np.where(valid, index, 0)] - buffer_steps
                hit = valid & (distance <= h)
                if not hit.any():
                    break
                weight += np.where(hit, np.sqrt(np.clip(1.0 - distance / w, 0.0, None)), 0.0)
                j += 1
            np.minimum(weight, 1.0, out=weight)
        cumulative = np.concatenate([[0.0], np.cumsum(weight[by_rank])])
        buffer_tp = cumulative[buffer_before]

        # events merged when their buffers meet (gap <= 2h); a merged range is touched when its
        # lowest-ranked step (event or live buffer step) is predicted
        breaks = np.flatnonzero(starts[1:] - ends[:-1] > 2 * h) + 1
        group_start = np.concatenate([[0], breaks])
        group_min = np.minimum.reduceat(event_min_rank, group_start)
        live = weight > 0
        if live.any():
            steps = buffer_steps[live]
            before, after = prev_event[live], next_event[live]
            near_before = (before >= 0) & (steps - ends[np.maximum(before, 0)] <= h)
            event = np.where(near_before, before, after)
            group_of = np.searchsorted(group_start, event, side="right") - 1
            np.minimum.at(group_min, group_of, buffer_rank[live])
        touched = np.searchsorted(np.sort(group_min), counts, side="left")
        existence = touched / len(group_start)

        tp = tp_points + buffer_tp
        p_new = n_pos + buffer_tp / 2.0
        recall = np.minimum(tp / p_new, 1.0)
        tpr = np.concatenate([[0.0], recall * existence, [1.0]])
        fpr = np.concatenate([[0.0], (counts - tp) / (n - p_new), [1.0]])
        precision = tp / counts
        auc[w] = float(np.dot(np.diff(fpr), (tpr[1:] + tpr[:-1]) / 2.0))
        ap[w] = float(np.dot(tpr[1:-1] - tpr[:-2], precision))
    return VusResult(roc=float(auc.mean()), pr=float(ap.mean()), window=window, thresholds=int(thresholds),
                     roc_per_window=auc, pr_per_window=ap)


def _segment_min(values: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """Minimum of ``values[start..end]`` for each inclusive range (ranges disjoint and sorted)."""
    bounds = np.stack([starts, ends + 1], axis=1).reshape(-1)
    padded = np.concatenate([values, [np.iinfo(values.dtype).max]])
    return np.minimum.reduceat(padded, bounds)[::2]


def vus_pr(labels: Any, scores: Any, *, window: int, thresholds: int = DEFAULT_THRESHOLDS) -> float:
    """VUS-PR (see ``vus``)."""
    return vus(labels, scores, window=window, thresholds=thresholds).pr


def vus_roc(labels: Any, scores: Any, *, window: int, thresholds: int = DEFAULT_THRESHOLDS) -> float:
    """VUS-ROC (see ``vus``)."""
    return vus(labels, scores, window=window, thresholds=thresholds).roc


# ------------------------------------------------------------------------------------------------
# window choice


def estimate_period(values: Any, *, max_lag: int = 400, min_period: int = 6, max_period: int = 303,
                    default: int = DEFAULT_PERIOD, max_steps: int = 20_000) -> int:
    """Dominant period of a series from its autocorrelation, by TSB-AD's ``find_length_rank``
    rule: over the first ``max_steps`` steps, the highest local maximum of the ACF at lags 4 to
    ``max_lag - 1`` is the period when its lag lies in [``min_period``, ``max_period``]
    (TSB-AD: an index in [3, 300] of the ACF from lag 3 on, so lags 6 to 303); a highest peak
    outside that range gives no period (it is not replaced by a lower peak inside it). Computed per
    channel; a multivariate series gives the median over the channels that have a period, and
    ``default`` when none has one (TSB-AD uses 125).

    >>> t = np.arange(1000)
    >>> estimate_period(np.stack([np.sin(2 * np.pi * t / 50), np.cos(2 * np.pi * t / 50)], 1))
    50
    """
    x = np.asarray(values, dtype=np.float64)
    if x.ndim == 1:
        x = x[:, None]
    if x.ndim != 2 or x.shape[0] < 2:
        raise ConfigError(f"estimate_period: expected a (T,) or (T, C) series with T >= 2, got shape {x.shape}")
    x = x[:max_steps]
    periods = []
    for channel in x.T:
        channel = channel[np.isfinite(channel)]
        if channel.size < 2 * min_period + 2:
            continue
        centred = channel - channel.mean()
        variance = float(np.dot(centred, centred))
        if variance <= 0:
            continue
        lags = min(max_lag, centred.size - 1)
        size = 1 << int(np.ceil(np.log2(2 * centred.size)))
        spectrum = np.fft.rfft(centred, size)
        acf = np.fft.irfft(spectrum * np.conj(spectrum), size)[: lags + 1] / variance
        inner = acf[1:-1]
        peaks = np.flatnonzero((inner > acf[:-2]) & (inner > acf[2:])) + 1
        peaks = peaks[peaks >= _FIRST_PEAK_LAG]
        if peaks.size:
            best = int(peaks[np.argmax(acf[peaks])])
            if min_period <= best <= max_period:
                periods.append(best)
    if not periods:
        return int(default)
    return int(np.median(periods))


def window_from_series(values: Any, *, max_fraction: float = 0.25, **options: Any) -> int:
    """The VUS window TSB-AD's ``get_metrics`` uses, twice ``estimate_period(values)``, capped at
    ``max_fraction`` of the series length (a buffer as long as the series would make every step an
    event's neighbour; TSB-AD's series are long enough that the cap rarely applies)."""
    length = int(np.shape(values)[0])
    if not 0.0 < max_fraction <= 1.0:
        raise ConfigError(f"max_fraction must be in (0, 1], got {max_fraction}")
    return min(2 * estimate_period(values, **options), max(int(max_fraction * length), 1))


# ------------------------------------------------------------------------------------------------
# hook for anomalykit.baselines.evaluate


def evaluate_outputs(samples: Sequence[Any], outputs: Sequence[Any]) -> dict[str, Any]:
    """Series scores for ``anomalykit.baselines.evaluate``: per-sample VUS-PR / VUS-ROC (window =
    ``window_from_series`` of each sample, recorded) averaged over the samples whose per-step
    target holds both classes; and, for ``care`` samples scored by a detector that states its step
    threshold (``extras["step_threshold"]``), the CARE score with the benchmark's settings."""
    vus_rows = []
    for sample, output in zip(samples, outputs):
        if sample.target is None or output.anomaly_map is None:
            continue
        y, s = _flat_steps(np.asarray(sample.target), np.asarray(output.anomaly_map))
        if y.shape != s.shape:  # a misaligned map is a detector fault, not a sample to leave out
            raise ConfigError(f"{sample.key}: the anomaly map has {s.size} steps, the target {y.size}")
        if not np.isfinite(s).all():
            raise ConfigError(f"{sample.key}: the anomaly map holds {int((~np.isfinite(s)).sum())} non-finite "
                              f"value(s) (NaN or inf)")
        if 0 < y.sum() < y.size:
            window = window_from_series(np.asarray(sample.data))
            result = vus(y, s, window=window)
            vus_rows.append((sample.key, window, result.roc, result.pr))
    report: dict[str, Any] = {}
    if vus_rows:
        report.update({
            "vus_pr": float(np.mean([r[3] for r in vus_rows])),
            "vus_roc": float(np.mean([r[2] for r in vus_rows])),
            "vus_windows": {r[0]: r[1] for r in vus_rows},
            "vus_series": len(vus_rows),
        })
    report.update(_care_terms(samples, outputs))
    return report


def _care_terms(samples: Sequence[Any], outputs: Sequence[Any]) -> dict[str, Any]:
    from .care import care_score, evaluate_care_sample

    is_care = all(s.dataset == "care" and "event_label" in (s.meta or {}) for s in samples)
    thresholds = [(o.extras or {}).get("step_threshold") for o in outputs]
    if not samples or not is_care or any(t is None or o.anomaly_map is None for t, o in zip(thresholds, outputs)):
        return {}
    try:
        events = [evaluate_care_sample(s, np.asarray(o.anomaly_map) > t)
                  for s, o, t in zip(samples, outputs, thresholds)]
        result = care_score(events)
    except ConfigError as exc:  # e.g. no normal event among the samples: the score is undefined
        warnings.warn(f"the CARE score is left out of the report: {exc}", stacklevel=2)
        return {}
    return {"care_score": result.score, "care_coverage": result.coverage, "care_accuracy": result.accuracy,
            "care_earliness": result.earliness, "care_reliability": result.reliability, "care_rule": result.rule}
