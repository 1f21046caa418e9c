import numpy as np
import pytest

import anomalykit
import anomalykit.metrics
from anomalykit.errors import ConfigError
from anomalykit.metrics.care import (
    care_criticality,
    care_earliness,
    care_earliness_weights,
    care_reliability,
    care_score,
    CareEventEvaluation,
    CareWeights,
    evaluate_care_event,
    evaluate_care_sample,
)
from anomalykit.testing import build


def test_exported_lazily_from_metrics():
    from anomalykit.metrics import care_score as lazy

    assert lazy is care_score and anomalykit.metrics.evaluate_care_event is evaluate_care_event


# -- the reference implementation's golden values ----------------------------------------------


def test_earliness_golden_values():
    np.testing.assert_allclose(care_earliness_weights(8), [1, 1, 0.9892, 0.8172, 0.6452, 0.4731, 0.3011, 0.1290], atol=1e-4)
    for bits, expected in (("11000000", 0.37349), ("00000011", 0.08032), ("00001111", 0.28916), ("11111111", 1.0)):
        assert care_earliness([int(b) for b in bits]) == pytest.approx(expected, abs=1e-5)


def test_criticality_golden_value():
    np.testing.assert_array_equal(care_criticality([1, 1, 0, 1, 1, 1, 0, 0], [1, 1, 1, 0, 1, 1, 1, 1]), [1, 2, 1, 1, 2, 3, 2, 1])


def test_criticality_floor_and_cap():
    assert care_criticality([0, 0, 1], [1, 1, 1]).tolist() == [0, 0, 1]
    assert care_criticality(np.ones(1005, bool), np.ones(1005, bool)).max() == 1000


def _golden_events(f2=0.625, acc3=0.8, acc4=0.5, f1=20 / 23, acc1=0.9, acc2=0.5):
    return [
        CareEventEvaluation(True, True, acc1, coverage=f1, earliness=0.5, event_id=1),
        CareEventEvaluation(True, True, acc2, coverage=f2, earliness=0.8, event_id=2),
        CareEventEvaluation(False, True, acc3, event_id=3),
        CareEventEvaluation(False, True, acc4, event_id=4),
    ]


def test_combined_score_golden_values():
    events = _golden_events()
    assert care_score(events).score == pytest.approx(0.650567632850241, abs=1e-12)
    assert care_score(events, event_selection=[1, 3]).score == pytest.approx(0.705024154589372, abs=1e-12)
    low = care_score(events, event_selection=[2, 4])
    assert low.score == 0.5 and low.rule == "accuracy <= 0.5"  # the code's "<=", not the docstring's "<"
    second = _golden_events(f1=0.625, f2=30 / 41, acc3=0.1, acc4=0.0)
    assert care_score(second).score == pytest.approx(0.05)
    assert care_score(second, event_selection=[1, 3]).score == pytest.approx(0.1)
    assert care_score(second, event_selection=[2, 4]).score == 0.0


def test_combined_score_terms_by_hand():
    result = care_score(_golden_events())
    # two anomaly and two normal events, all detected: event-wise precision 1/2, recall 1
    assert result.reliability == pytest.approx(1.25 * 0.5 / (0.25 * 0.5 + 1))
    assert result.accuracy == pytest.approx(0.65) and result.earliness == pytest.approx(0.65)
    assert result.coverage == pytest.approx((20 / 23 + 0.625) / 2)
    assert result.score == pytest.approx((2 * 0.65 + 0.65 + result.coverage + result.reliability) / 5)
    assert (result.n_events, result.n_anomaly, result.n_normal, result.n_detected, result.rule) == (4, 2, 2, 4, "weighted")
    equal = care_score(_golden_events(), weights=CareWeights(accuracy=1.0))
    assert equal.score == pytest.approx((0.65 + 0.65 + result.coverage + result.reliability) / 4)


def test_no_detection_scores_zero_and_empty_cases_are_errors():
    events = [CareEventEvaluation(True, False, 0.9, coverage=0.9, earliness=0.9, event_id=1), CareEventEvaluation(False, False, 1.0, event_id=2)]
    result = care_score(events)
    assert result.score == 0.0 and result.rule == "none detected"
    with pytest.raises(ConfigError, match="normal event"):
        care_score([CareEventEvaluation(True, True, 0.9, coverage=0.9, earliness=0.9)])
    with pytest.raises(ConfigError, match="anomaly event"):
        care_score([CareEventEvaluation(False, True, 0.9)])
    with pytest.raises(ConfigError, match="unknown event"):
        care_score(events, event_selection=[7])
    with pytest.raises(ConfigError, match="coverage and earliness"):
        CareEventEvaluation(True, True, 0.5)


def test_reliability_by_hand():
    # precision 1/2 and recall 1/2 give F_0.5 = 1/2
    assert care_reliability([1, 1, 0, 0], [1, 0, 1, 0]) == pytest.approx(0.5)
    assert care_reliability([1, 0], [0, 0]) == 0.0


# -- one event, computed by hand ----------------------------------------------------------------

PREDICTED = [0, 1, 1, 1, 0, 0, 1, 0, 0, 0]
NORMAL = [1, 1, 1, 0, 1, 1, 1, 1, 1, 1]


def test_anomaly_event_by_hand():
    result = evaluate_care_event(PREDICTED, NORMAL, event_start=2, event_end=5, is_anomaly=True, event_id="e")
    # on the 9 normal-status steps: truth 001110000 (step 3 left out), predicted 011001000
    assert result.coverage == pytest.approx(1 / 3)  # TP 1, FP 2, FN 2
    assert result.accuracy == pytest.approx(5 / 9)
    # window 1100 with weights 1, 44/45, 28/45, 12/45
    assert result.earliness == pytest.approx(89 / 129)
    assert result.max_criticality == 2 and result.detected is False and result.event_id == "e"
    assert evaluate_care_event(PREDICTED, NORMAL, event_start=2, event_end=5, is_anomaly=True, criticality_threshold=1).detected
    fraction = evaluate_care_event(PREDICTED, NORMAL, event_start=2, event_end=5, is_anomaly=True, detection="fraction")
    assert fraction.detected is True  # 1 of the 3 normal-status window steps
    strict_fraction = evaluate_care_event(PREDICTED, NORMAL, event_start=2, event_end=5, is_anomaly=True,
                                     detection="fraction", min_fraction=0.5)  # fmt: skip
    assert strict_fraction.detected is False


def test_window_by_index_values_is_inclusive():
    ids = np.arange(100, 110)
    by_id = evaluate_care_event(PREDICTED, NORMAL, event_start=102, event_end=105, is_anomaly=True, index=ids)
    by_position = evaluate_care_event(PREDICTED, NORMAL, event_start=2, event_end=5, is_anomaly=True)
    assert by_id == by_position
    times = np.datetime64("2022-01-01T00:00") + np.arange(10) * np.timedelta64(10, "m")
    by_time = evaluate_care_event(PREDICTED, NORMAL, event_start="2022-01-01T00:20", event_end="2022-01-01T00:50",
                             is_anomaly=True, index=times)  # fmt: skip
    assert by_time == by_position


def test_ignore_normal_index_and_normal_event():
    ignored = evaluate_care_event(PREDICTED, NORMAL, event_start=2, event_end=5, is_anomaly=True, ignore_normal_index=True)
    assert ignored.coverage == pytest.approx(0.5) and ignored.accuracy == pytest.approx(0.6)
    normal = evaluate_care_event([0, 0, 1, 0], [1, 1, 1, 0], event_start=0, event_end=3, is_anomaly=False)
    assert normal.accuracy == pytest.approx(2 / 3) and normal.coverage is None and normal.earliness is None
    with pytest.raises(ConfigError, match="differ in length"):
        evaluate_care_event([0, 1], [1], event_start=0, event_end=1, is_anomaly=False)
    with pytest.raises(ConfigError, match="holds no prediction step"):
        evaluate_care_event([0, 1], [1, 1], event_start=5, event_end=6, is_anomaly=True)


# -- with samples of the care loader -----------------------------------------------------------


def test_evaluate_care_sample(tmp_path):
    built = build("care", tmp_path)
    ds = anomalykit.load("care", built.root, farm="C")
    anomaly, normal = ds[0], ds[1]
    perfect = evaluate_care_sample(anomaly, anomaly.target.astype(bool))
    assert perfect.coverage == 1.0 and perfect.earliness == 1.0 and perfect.accuracy == 1.0
    assert perfect.max_criticality <= 40 and perfect.detected is False  # 40 steps never pass 72
    prediction_rows = anomaly.meta["is_prediction"]
    everything = evaluate_care_sample(anomaly, np.ones(int(prediction_rows.sum()), bool))
    assert everything.earliness == 1.0 and everything.detected is False  # 60 steps either
    quiet = evaluate_care_sample(normal, np.zeros(len(normal.data), bool))
    assert quiet.accuracy == 1.0 and quiet.detected is False
    with pytest.raises(ConfigError, match="348 rows, 60 of them prediction rows"):
        evaluate_care_sample(anomaly, np.zeros(7, bool))
    train = anomalykit.load("care", built.root, farm="C", event_id=1, part="train")[0]
    with pytest.raises(ConfigError, match="training data only"):
        evaluate_care_sample(train, np.zeros(len(train.data), bool))
    # Farm A ignores the status mask by default, as the reference evaluation does
    a = anomalykit.load("care", built.root, farm="A", event_id=0)[0]
    rows = a.meta["is_prediction"]
    silent = np.zeros(int(rows.sum()), bool)
    assert evaluate_care_sample(a, silent).accuracy == pytest.approx(20 / 60)  # 40 of 60 steps in the window
    normal_status = np.asarray(a.meta["normal_mask"])[rows]
    window = a.target[rows].astype(bool)
    with_status = evaluate_care_sample(a, silent, ignore_normal_index=False).accuracy
    assert with_status == pytest.approx(1 - window[normal_status].sum() / normal_status.sum())


def test_event_without_normal_status_steps_is_an_error_naming_the_event():
    # no step has normal status: coverage (anomaly events) and accuracy (normal events) are undefined;
    # a normal event must not put NaN into the combined score
    for is_anomaly in (True, False):
        with pytest.raises(ConfigError, match="event 7.*normal status"):
            evaluate_care_event([1, 0, 1, 0], [0, 0, 0, 0], event_start=1, event_end=2, is_anomaly=is_anomaly,
                                event_id=7)
    # ignoring the status makes every step count
    event = evaluate_care_event([1, 0, 1, 0], [0, 0, 0, 0], event_start=1, event_end=2, is_anomaly=False,
                                ignore_normal_index=True, event_id=7)
    assert event.accuracy == 0.5
