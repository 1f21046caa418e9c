import numpy as np
import pytest

import anomalykit
from anomalykit.baselines.base import Detector
from anomalykit.baselines.pca import PCADetector
from anomalykit.errors import ConfigError
from anomalykit.metrics.series import point_auroc
from anomalykit.schema import Sample, Series


@pytest.fixture(scope="module")
def example():
    return PCADetector.example()


def test_injected_steps_rank_above_normal_steps(example):
    params, train, test = example
    detector = anomalykit.get_baseline("pca", **params).fit(train, seed=0)
    outputs = detector.score_samples(test)
    for sample, output in zip(test, outputs):
        assert output.anomaly_map.shape == sample.target.shape
    labels = np.array([s.label for s in test])
    scores = np.array([o.score for o in outputs])
    assert scores[labels == 1].min() > scores[labels == 0].max()
    assert point_auroc([s.target for s in test], [o.anomaly_map for o in outputs]) > 0.95
    # the normal test series reconstruct about as well as the training ones
    assert scores[labels == 0].max() < 3 * detector.train_scores_.max()


def test_reconstruction_matches_a_direct_projection(example):
    params, train, test = example
    detector = PCADetector(window=4, n_components=3).fit(train, seed=0)
    assert detector.components_.shape == (3, 4 * 3)
    values = np.asarray(test[0].data.values, np.float64)
    scaled = (values - detector.scaler_.mean) / detector.scaler_.scale
    first = scaled[:4].reshape(-1) - detector.center_
    residual = first - detector.components_.T @ (detector.components_ @ first)
    # step 0 is covered by the first window only
    assert detector.step_scores(test[0])[0] == pytest.approx(np.mean(residual**2))


def test_explained_variance_option_and_save_load(example, tmp_path):
    params, train, test = example
    loose = PCADetector(window=8, n_components=0.5).fit(train, seed=0)
    tight = PCADetector(window=8, n_components=0.99).fit(train, seed=0)
    assert loose.components_.shape[0] < tight.components_.shape[0]
    assert loose.explained_variance_ratio_.sum() >= 0.5
    reloaded = Detector.load(tight.save(tmp_path / "pca"))
    np.testing.assert_allclose(reloaded.decision_function(test), tight.decision_function(test))
    np.testing.assert_allclose(reloaded.score_samples(test)[2].anomaly_map, tight.score_samples(test)[2].anomaly_map)


def test_bad_configs_and_inputs(example):
    params, train, test = example
    with pytest.raises(ConfigError, match="n_components"):
        PCADetector(n_components=2.5)
    with pytest.raises(ConfigError, match="window"):
        PCADetector(window=0)
    with pytest.raises(ConfigError, match="aggregate"):
        PCADetector(aggregate="median")
    detector = PCADetector(window=8).fit(train, seed=0)
    short = Sample(key="short", dataset="x", split="test", label=0, data=Series(np.zeros((5, 3))))
    with pytest.raises(ConfigError, match="short.*5 steps"):
        detector.decision_function([short])
    wide = Sample(key="wide", dataset="x", split="test", label=0, data=Series(np.zeros((50, 4))))
    with pytest.raises(ConfigError, match="wide has 4 channels"):
        detector.decision_function([wide])


def test_missing_values_are_scored_as_the_training_mean(example):
    params, train, test = example
    detector = PCADetector(window=8).fit(train, seed=0)
    values = np.asarray(test[0].data.values).copy()
    values[10, 1] = np.nan
    holed = Sample(key="holed", dataset="x", split="test", label=0, data=Series(values))
    assert np.isfinite(detector.step_scores(holed)).all()


def test_evaluate_reports_vus_with_the_window_it_used(example):
    from anomalykit.baselines.evaluate import evaluate
    from anomalykit.metrics.series import vus, window_from_series

    params, train, test = example
    detector = PCADetector(**params).fit(train, seed=0)
    report = evaluate(detector, test)
    assert report["auroc"] == 1.0 and report["dense_auroc"] > 0.95
    anomalous = [s for s in test if s.label == 1]
    assert report["vus_series"] == len(anomalous)
    windows = report["vus_windows"]
    assert windows == {s.key: window_from_series(np.asarray(s.data)) for s in anomalous}
    assert all(w > 0 for w in windows.values())
    expected = np.mean([vus(s.target, o.anomaly_map, window=windows[s.key]).pr
                        for s, o in zip(anomalous, detector.score_samples(anomalous))])
    assert report["vus_pr"] == pytest.approx(expected)


def test_window_scores_spread_to_the_steps_they_cover():
    from anomalykit.baselines._windows import training_windows, windows, windows_to_steps

    # windows of 2 over 4 steps: step 0 is in window 0, step 1 in windows 0-1, step 3 in window 2
    np.testing.assert_allclose(windows_to_steps(np.array([1.0, 2.0, 3.0]), 4, 2), [1.0, 1.5, 2.5, 3.0])
    values = np.arange(12.0).reshape(6, 2)
    assert windows(values, 3)[1].tolist() == [2.0, 3.0, 4.0, 5.0, 6.0, 7.0]  # steps 1..3, channels inside
    drawn = training_windows([values, values[:2]], 3, 1, 2, np.random.default_rng(0))
    assert drawn.shape == (2, 6) and all(row.tolist() in windows(values, 3).tolist() for row in drawn)
