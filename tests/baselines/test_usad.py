import numpy as np
import pytest

import anomalykit
from anomalykit.baselines.base import Detector
from anomalykit.baselines.usad import USADDetector
from anomalykit.errors import ConfigError
from anomalykit.metrics.series import point_auroc


@pytest.fixture(scope="module")
def fitted():
    params, train, test = USADDetector.example()
    return anomalykit.get_baseline("usad", **params).fit(train, seed=0), params, train, test


def test_injected_anomalies_score_above_normal_series(fitted):
    detector, params, train, test = fitted
    outputs = detector.score_samples(test)
    labels = np.array([s.label for s in test])
    scores = np.array([o.score for o in outputs])
    assert scores[labels == 1].min() > scores[labels == 0].max()
    for sample, output in zip(test, outputs):
        assert output.anomaly_map.shape == sample.target.shape
    assert point_auroc([s.target for s in test], [o.anomaly_map for o in outputs]) > 0.85


def test_two_phase_training_follows_the_epoch_weights(fitted):
    detector, params, train, test = fitted
    history = detector.loss_history_
    assert history.shape == (params["epochs"], 2)
    # epoch 1: both phases are plain reconstruction losses (weight 1/n = 1), so both are positive;
    # later the adversarial term -(1 - 1/n)|w - AE2(AE1(w))| pulls phase 2 below phase 1
    assert history[0, 0] > 0 and history[0, 1] > 0
    assert history[-1, 1] < history[-1, 0]


def test_score_is_the_weighted_sum_of_both_reconstructions(fitted):
    detector, params, train, test = fitted
    only_first = USADDetector(**params, alpha=1.0, beta=0.0)
    only_first.load_state_dict(detector.state_dict())
    only_second = USADDetector(**params, alpha=0.0, beta=1.0)
    only_second.load_state_dict(detector.state_dict())
    np.testing.assert_allclose(detector.window_scores(test[2]),
                               0.5 * only_first.window_scores(test[2]) + 0.5 * only_second.window_scores(test[2]),
                               rtol=1e-5)


def test_seeds_reproduce_and_differ(fitted):
    detector, params, train, test = fitted
    again = USADDetector(**params).fit(train, seed=0)
    other = USADDetector(**params).fit(train, seed=1)
    np.testing.assert_array_equal(again.decision_function(test), detector.decision_function(test))
    assert not np.array_equal(other.decision_function(test), detector.decision_function(test))


def test_save_load_round_trip(fitted, tmp_path):
    detector, params, train, test = fitted
    reloaded = Detector.load(detector.save(tmp_path / "usad"))
    assert isinstance(reloaded, USADDetector)
    np.testing.assert_allclose(reloaded.decision_function(test), detector.decision_function(test), rtol=1e-6)


def test_config_ranges():
    with pytest.raises(ConfigError, match="alpha"):
        USADDetector(alpha=1.5)
    with pytest.raises(ConfigError, match="alpha \\+ beta"):
        USADDetector(alpha=0.0, beta=0.0)
    with pytest.raises(ConfigError, match="epochs"):
        USADDetector(epochs=0)


def test_gradient_clearing_modes_differ(fitted):
    detector, params, train, test = fitted
    separate = USADDetector(**params, gradients="separate").fit(train, seed=0)
    assert separate.loss_history_.shape == detector.loss_history_.shape
    assert not np.allclose(separate.loss_history_[1:], detector.loss_history_[1:])
    # epoch 1 starts from the same weights; its first phase-1 loss is the same in both modes
    assert separate.loss_history_[0, 0] == pytest.approx(detector.loss_history_[0, 0], rel=0.05)
    with pytest.raises(ConfigError, match="gradients"):
        USADDetector(gradients="none")


def test_missing_values_and_channel_mismatch(fitted):
    from anomalykit.schema import Sample, Series

    detector, params, train, test = fitted
    values = np.asarray(test[0].data.values).copy()
    values[5:9, 0] = np.nan
    holed = Sample(key="holed", dataset="x", split="test", label=0, data=Series(values))
    assert np.isfinite(detector.window_scores(holed)).all()
    wide = Sample(key="wide", dataset="x", split="test", label=0, data=Series(np.zeros((40, 5))))
    with pytest.raises(ConfigError, match="wide has 5 channels"):
        detector.decision_function([wide])
