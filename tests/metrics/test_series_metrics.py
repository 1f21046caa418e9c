import math

import numpy as np
import pytest

from anomalykit.errors import ConfigError
from anomalykit.metrics.series import (
    anomaly_ranges,
    estimate_period,
    point_auprc,
    point_auroc,
    range_precision_recall_f1,
    vus,
    vus_pr,
    vus_roc,
    window_from_series,
)


def test_anomaly_ranges_are_inclusive_runs():
    assert anomaly_ranges([0, 1, 1, 0, 1]).tolist() == [[1, 2], [4, 4]]
    assert anomaly_ranges([1, 1, 1]).tolist() == [[0, 2]]
    assert anomaly_ranges([0, 0]).shape == (0, 2)


def test_point_wise_scores_concatenate_samples_and_reduce_channel_targets():
    labels = [np.array([0, 1, 0]), np.array([[0, 0], [0, 1]])]  # the second target is T x C
    scores = [np.array([0.1, 0.9, 0.2]), np.array([0.3, 0.8])]
    assert point_auroc(labels, scores) == 1.0
    assert point_auprc(labels, scores) == 1.0
    assert point_auroc([0, 1, 0, 1], [0.1, 0.2, 0.3, 0.4]) == 0.75


def test_range_precision_recall_by_hand():
    # one real event [1, 4]; predictions [2, 3] (inside) and [6, 7] (outside)
    r = range_precision_recall_f1([0, 1, 1, 1, 1, 0, 0, 0], [0, 0, 1, 1, 0, 0, 1, 1])
    assert (r.recall, r.precision, r.f1) == (0.5, 0.5, 0.5)
    assert (r.n_events, r.n_predicted_events) == (1, 2)
    # one event [0, 5] split across two predictions: cardinality 1/2, overlap 4/6
    labels, predicted = [1, 1, 1, 1, 1, 1, 0, 0], [1, 1, 0, 1, 1, 0, 0, 0]
    r = range_precision_recall_f1(labels, predicted)
    assert r.recall == pytest.approx(1 / 3) and r.precision == 1.0
    r = range_precision_recall_f1(labels, predicted, alpha=0.2)
    assert r.recall == pytest.approx(0.2 + 0.8 / 3)
    assert range_precision_recall_f1([0, 1, 0], [0, 0, 0]).precision == 0.0
    with pytest.raises(ConfigError, match="no anomalous step"):
        range_precision_recall_f1([0, 0], [0, 1])
    with pytest.raises(ConfigError, match="same length"):
        range_precision_recall_f1([0, 1], [0, 1, 1])


def test_vus_by_hand():
    # a one-step event at 3; the highest score is on step 4, its neighbour
    labels = [0, 0, 0, 1, 0, 0, 0]
    scores = [0.0, 0.1, 0.2, 0.9, 1.0, 0.3, 0.4]
    result = vus(labels, scores, window=2)
    # buffer 0 and 1 (w // 2 = 0): the first threshold flags step 4 only (a false positive), the second the event
    np.testing.assert_allclose(result.pr_per_window[:2], [0.5, 0.5])
    np.testing.assert_allclose(result.roc_per_window[:2], [5 / 6, 5 / 6])
    # buffer 2: steps 2 and 4 get label sqrt(1 - 1/2); flagging step 4 alone is partly right
    b = math.sqrt(0.5)
    recall = b / (1 + b / 2)                      # TP / P_new with P_new = P + buffer TP / 2
    ap = recall * b + (1 - recall) * (1 + b) / 2  # precision b at the first step, (1 + b) / 2 at the second
    fpr = (1 - b) / (7 - (1 + b / 2))
    auc = fpr * recall / 2 + (1 - fpr)
    assert result.pr_per_window[2] == pytest.approx(ap)
    assert result.roc_per_window[2] == pytest.approx(auc)
    assert result.pr == pytest.approx((1.0 + ap) / 3) and result.roc == pytest.approx((5 / 3 + auc) / 3)
    assert result.window == 2 and result.thresholds == 250
    assert vus_pr(labels, scores, window=2) == result.pr and vus_roc(labels, scores, window=2) == result.roc


def _vus_by_definition(labels, scores, window, thresholds=250):
    """The TSB-AD definition, step by step (slow, for small inputs)."""
    y = np.asarray(labels, float)
    s = np.asarray(scores, float)
    n = y.size
    events = anomaly_ranges(y)
    ranked = np.sort(s)[::-1]
    aucs, aps = [], []
    for w in range(window + 1):
        h = w // 2
        soft = y.copy()
        for start, end in events:
            for d in range(1, h + 1):
                for step in (start - d, end + d):
                    if 0 <= step < n:
                        soft[step] += math.sqrt(1 - d / w)
        soft = np.minimum(soft, 1)
        merged = []  # buffered events, merged when their buffers meet
        for start, end in events:
            lo, hi = max(start - h, 0), min(end + h, n - 1)
            if merged and merged[-1][1] >= start - h:
                merged[-1][1] = hi
            else:
                merged.append([lo, hi])
        tpr, fpr, precision = [0.0], [0.0], []
        for index in np.linspace(0, n - 1, thresholds).astype(int):
            predicted = s >= ranked[index]
            tp = float(np.sum(soft * predicted))
            buffer_tp = tp - float(np.sum(y * predicted))
            p_new = y.sum() + buffer_tp / 2
            touched = sum(predicted[lo:hi + 1].any() for lo, hi in merged)
            tpr.append(min(tp / p_new, 1) * touched / len(merged))
            fpr.append((predicted.sum() - tp) / (n - p_new))
            precision.append(tp / predicted.sum())
        tpr.append(1.0)
        fpr.append(1.0)
        tpr, fpr = np.array(tpr), np.array(fpr)
        aucs.append(np.sum(np.diff(fpr) * (tpr[1:] + tpr[:-1]) / 2))
        aps.append(np.sum((tpr[1:-1] - tpr[:-2]) * np.array(precision)))
    return np.mean(aucs), np.mean(aps)


@pytest.mark.parametrize("seed", range(6))
def test_vus_matches_the_definition_computed_step_by_step(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(40, 120))
    labels = np.zeros(n, int)
    for _ in range(int(rng.integers(1, 4))):
        start = int(rng.integers(0, n - 1))
        labels[start:start + int(rng.integers(1, 8))] = 1
    scores = rng.normal(size=n) + labels
    if seed % 2:
        scores = np.round(scores, 1)  # ties
    window = int(rng.integers(0, 16))
    roc, pr = _vus_by_definition(labels, scores, window, thresholds=50)
    result = vus(labels, scores, window=window, thresholds=50)
    assert result.roc == pytest.approx(roc, abs=1e-12) and result.pr == pytest.approx(pr, abs=1e-12)


def test_vus_window_is_explicit_and_validated():
    labels, scores = [0, 1, 0, 0], [0.1, 0.9, 0.2, 0.3]
    with pytest.raises(TypeError):
        vus(labels, scores)  # no default window
    for bad in (None, 2.5, -1, True):
        with pytest.raises(ConfigError, match="window"):
            vus(labels, scores, window=bad)
    with pytest.raises(ConfigError, match="both classes"):
        vus([0, 0, 0], [0.1, 0.2, 0.3], window=2)
    # VUS grows with the window when the detector fires next to the event
    late = [0.0, 0.1, 0.9, 0.2]
    assert vus(labels, late, window=4).pr > vus(labels, late, window=0).pr


def test_period_estimate_for_multivariate_series():
    t = np.arange(2000)
    rng = np.random.default_rng(0)
    values = np.stack([np.sin(2 * np.pi * t / 40), np.sin(2 * np.pi * t / 40 + 1.0), rng.normal(size=t.size)], axis=1)
    assert estimate_period(values) in (39, 40, 41)
    assert window_from_series(values) == 2 * estimate_period(values)
    # a channel with no periodicity (or constant) does not pull the estimate to 0
    assert estimate_period(np.stack([np.sin(2 * np.pi * t / 25), np.zeros(t.size)], axis=1)) == 25
    assert estimate_period(np.zeros((100, 2)), default=125) == 125
    with pytest.raises(ConfigError, match="shape"):
        estimate_period(np.zeros((1, 3)))


def test_vus_with_events_at_both_ends_and_close_together():
    rng = np.random.default_rng(7)
    labels = np.zeros(60, int)
    labels[:3] = 1     # at the start
    labels[20:22] = 1  # two events 3 steps apart: their buffers merge for w >= 4
    labels[25:27] = 1
    labels[-4:] = 1    # at the end
    scores = rng.normal(size=60) + labels
    for window in (0, 3, 4, 9):
        roc, pr = _vus_by_definition(labels, scores, window, thresholds=60)
        result = vus(labels, scores, window=window, thresholds=60)
        assert (result.roc, result.pr) == (pytest.approx(roc, abs=1e-12), pytest.approx(pr, abs=1e-12))


def test_window_is_capped_for_short_series():
    flat = np.ones((60, 3))  # no period: the estimate falls back to 125, a window of 250
    assert estimate_period(flat) == 125
    assert window_from_series(flat) == 15
    assert window_from_series(flat, max_fraction=1.0) == 60
    t = np.arange(4000)
    assert window_from_series(np.sin(2 * np.pi * t / 50)) == 100  # long series: TSB-AD's rule unchanged
    with pytest.raises(ConfigError, match="max_fraction"):
        window_from_series(flat, max_fraction=0.0)


def test_per_sample_lengths_must_match_pairwise_not_only_in_total():
    # 3 + 2 label steps against 2 + 3 score steps: the totals agree, the samples do not
    labels = [np.array([0, 1, 0]), np.array([1, 0])]
    scores = [np.array([0.1, 0.9]), np.array([0.3, 0.8, 0.2])]
    with pytest.raises(ConfigError, match=r"sample 0.*3 steps.*2"):
        point_auroc(labels, scores)


def _series_sample(key, target):
    from anomalykit.schema import Sample, Series

    values = np.sin(np.arange(len(target), dtype=np.float32))[:, None]
    return Sample(key=key, dataset="example", split="test", label=int(np.any(target)),
                  data=Series(values, None, ("s0",)), target=np.asarray(target, np.uint8))


def test_evaluate_outputs_rejects_bad_maps_instead_of_dropping_their_samples():
    from anomalykit.baselines.base import DetectorOutput
    from anomalykit.metrics.series import evaluate_outputs

    target = np.zeros(64, np.uint8)
    target[20:26] = 1
    good, bad = _series_sample("a", target), _series_sample("b", target)
    good_map = np.where(target == 1, 1.0, 0.1)
    report = evaluate_outputs([good], [DetectorOutput("a", 1.0, good_map)])
    assert report["vus_series"] == 1
    nan_map = good_map.copy()
    nan_map[3] = np.nan
    with pytest.raises(ConfigError, match="b.*non-finite"):
        evaluate_outputs([good, bad], [DetectorOutput("a", 1.0, good_map), DetectorOutput("b", 1.0, nan_map)])
    with pytest.raises(ConfigError, match="b.*63 steps.*64"):
        evaluate_outputs([good, bad], [DetectorOutput("a", 1.0, good_map), DetectorOutput("b", 1.0, good_map[:63])])


def _tsb_ad_find_length(x):
    """TSB-AD's find_length_rank(rank=1) for a univariate series, with the ACF written out
    (statsmodels' acf, fft=True, unadjusted: sum_t (x_t - m)(x_t+k - m) / sum_t (x_t - m)^2)."""
    x = np.asarray(x, float)[:20000]
    c = x - x.mean()
    acf = np.array([np.dot(c[: c.size - k], c[k:]) for k in range(401)]) / np.dot(c, c)
    auto_corr = acf[3:]
    local_max = np.flatnonzero((auto_corr[1:-1] > auto_corr[:-2]) & (auto_corr[1:-1] > auto_corr[2:])) + 1
    if local_max.size == 0:
        return 125
    best = local_max[np.argmax(auto_corr[local_max])]
    if best < 3 or best > 300:
        return 125
    return int(best + 3)


@pytest.mark.parametrize("period", [4, 5, 6, 40, 302])
def test_period_estimate_follows_tsb_ad_for_univariate_series(period):
    # TSB-AD keeps the highest ACF peak only when its lag lies in [6, 303], else falls back to 125;
    # a short period (4, 5) must not give a tiny window where TSB-AD uses 250
    t = np.arange(4000)
    x = np.sin(2 * np.pi * t / period) + 0.05 * np.random.default_rng(period).normal(size=t.size)
    assert estimate_period(x) == _tsb_ad_find_length(x)
    assert window_from_series(x) == 2 * _tsb_ad_find_length(x)


def _care_like(key, label, flags):
    from anomalykit.schema import Sample, Series

    n = len(flags)
    meta = {"part": "prediction", "is_prediction": np.ones(n, bool), "normal_mask": np.ones(n, bool),
            "ids": np.arange(n), "event_start_id": 2, "event_end_id": n - 1, "event_label": label,
            "event_id": key, "farm": "B"}
    target = np.zeros(n, np.uint8)
    if label == "anomaly":
        target[2:] = 1
    return Sample(key=key, dataset="care", split="test", label=int(label == "anomaly"),
                  data=Series(np.zeros((n, 1), np.float32), None, ("s0",)), target=target, meta=meta)


def test_evaluate_outputs_says_why_the_care_score_is_missing():
    from anomalykit.baselines.base import DetectorOutput
    from anomalykit.metrics.series import evaluate_outputs

    # only anomaly events, one detected: the accuracy term has no normal event, the score is undefined
    flags = np.r_[np.zeros(2), np.ones(98)]
    samples = [_care_like("e1", "anomaly", flags), _care_like("e2", "anomaly", flags)]
    outputs = [DetectorOutput(s.key, 1.0, 2.0 * flags, {"step_threshold": 1.0}) for s in samples]
    with pytest.warns(UserWarning, match="CARE score.*normal event"):
        report = evaluate_outputs(samples, outputs)
    assert "care_score" not in report
