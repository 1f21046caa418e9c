import numpy as np
import pytest

import anomalykit.metrics as metrics
from anomalykit.errors import ConfigError
from anomalykit.metrics.fairness import (
    FairGADReport,
    equality_of_odds_difference,
    fairgad_report,
    group_positive_rates,
    predictions_at_contamination,
    statistical_parity_difference,
)

PRED = [1, 0, 0, 1, 1, 0]
SENS = [0, 0, 0, 1, 1, 1]
LABELS = [1, 1, 0, 1, 0, 0]


def test_statistical_parity_hand_computed():
    # group 0 predicts 1 of 3, group 1 predicts 2 of 3
    assert group_positive_rates(PRED, SENS) == pytest.approx({0: 1 / 3, 1: 2 / 3})
    assert statistical_parity_difference(PRED, SENS) == pytest.approx(1 / 3)
    assert statistical_parity_difference([1, 1, 0, 0], [5, 5, 7, 7]) == 1.0  # any group ids
    assert statistical_parity_difference([1, 0, 1, 0], [0, 0, 1, 1]) == 0.0
    # three groups: rates 1, 0.5, 0 -> gap 1
    assert statistical_parity_difference([1, 1, 1, 0, 0, 0], [0, 0, 1, 1, 2, 2]) == 1.0


def test_equality_of_odds_hand_computed():
    # true anomalies: group 0 -> items 0, 1 (predicted 1, 0): 0.5; group 1 -> item 3 (predicted 1): 1.0
    assert equality_of_odds_difference(PRED, LABELS, SENS) == 0.5
    # predictions on normal items do not matter
    flipped = [1, 0, 1, 1, 0, 1]
    assert equality_of_odds_difference(flipped, LABELS, SENS) == 0.5
    assert statistical_parity_difference(flipped, SENS) != statistical_parity_difference(PRED, SENS)
    # float-coded sensitive values, as the reference casts them
    assert equality_of_odds_difference(PRED, LABELS, np.asarray(SENS, np.float32)) == 0.5


def test_equality_of_odds_undefined_without_anomalies_in_a_group():
    with pytest.warns(UserWarning, match=r"group\(s\) \[1\] hold no true anomaly"):
        assert np.isnan(equality_of_odds_difference([1, 0, 1, 0], [1, 0, 0, 0], [0, 0, 1, 1]))


def test_predictions_at_contamination_follow_pygod_threshold():
    scores = np.arange(1, 11) / 10  # 0.1 ... 1.0; 80th percentile = 0.82
    np.testing.assert_array_equal(predictions_at_contamination(scores, 0.2), [0] * 8 + [1, 1])
    # strictly greater: a score equal to the threshold is not flagged
    np.testing.assert_array_equal(predictions_at_contamination([1.0, 1.0, 1.0, 2.0], 0.5), [0, 0, 0, 1])
    with pytest.raises(ConfigError, match="contamination"):
        predictions_at_contamination(scores, 0.7)


def test_fairgad_report_combines_the_four_numbers():
    labels = [1, 1, 0, 1, 0, 0]
    scores = [0.9, 0.2, 0.4, 0.8, 0.7, 0.1]
    report = fairgad_report(labels, scores, SENS, contamination=0.5)
    # threshold = median 0.55 -> predictions [1, 0, 0, 1, 1, 0] = PRED
    assert isinstance(report, FairGADReport)
    assert report.statistical_parity == pytest.approx(1 / 3)
    assert report.equality_of_odds == 0.5
    # positives 0.9, 0.2, 0.8 vs negatives 0.4, 0.7, 0.1: 7 of 9 pairs ordered
    assert report.auroc == pytest.approx(7 / 9)
    assert report.as_dict()["auprc"] == pytest.approx(metrics.auprc(labels, scores, method="trapezoid"))
    with pytest.raises(ConfigError, match="predictions or contamination"):
        fairgad_report(labels, scores, SENS)


def test_inputs_are_checked():
    with pytest.raises(ConfigError, match="sensitive has 2 values, predictions have 3"):
        statistical_parity_difference([1, 0, 1], [0, 1])
    with pytest.raises(ConfigError, match="predictions must be binary"):
        statistical_parity_difference([0.2, 0.9], [0, 1])
    assert metrics.statistical_parity_difference is statistical_parity_difference


def test_a_single_sensitive_group_gives_nan_not_a_perfectly_fair_zero():
    # with one group there is no gap to measure: 0.0 would read as "perfectly fair" in a table
    with pytest.warns(UserWarning, match="one sensitive group"):
        assert np.isnan(statistical_parity_difference([1, 0, 1, 0], [1, 1, 1, 1]))
    with pytest.warns(UserWarning, match="one sensitive group"):
        assert np.isnan(equality_of_odds_difference([1, 0, 1, 0], [1, 0, 1, 0], [1, 1, 1, 1]))
