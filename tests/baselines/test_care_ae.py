import numpy as np
import pytest

import anomalykit
from anomalykit.baselines.base import Detector
from anomalykit.baselines.care_ae import CareAEDetector, evaluate_care, inject_fault
from anomalykit.errors import ConfigError
from anomalykit.metrics.care import care_score, evaluate_care_sample
from anomalykit.testing import build


@pytest.fixture(scope="module")
def care(tmp_path_factory):
    built = build("care", tmp_path_factory.mktemp("care"), farms=("A", "B"))
    loaded = list(anomalykit.load("care", built.root, part="both", **built.options))
    train = [s for s in loaded if s.split == "train"]
    test = [inject_fault(s, seed=i) if s.label == 1 else s for i, s in enumerate(loaded) if s.split == "test"]
    params = {"epochs": 15, "hidden": 16, "code": 4, "batch_size": 64}
    return params, train, test


@pytest.fixture(scope="module")
def fitted(care):
    params, train, test = care
    return anomalykit.get_baseline("care_ae", **params).fit(train, seed=0)


def test_one_model_per_event_trained_on_normal_status_rows(care, fitted):
    params, train, test = care
    assert sorted(fitted.models_) == sorted(f"{s.category}/{s.meta['event_id']}" for s in train)
    sample = train[0]
    normal = sample.meta["normal_mask"]
    assert 0 < normal.sum() < normal.size  # the fixture has abnormal statuses to leave out
    values = np.asarray(sample.data.values, np.float64)[normal]
    model = fitted.models_[fitted.group_of(sample)]
    np.testing.assert_allclose(model.scaler.mean, np.nanmean(values, axis=0))
    # the threshold normalises the training rows: about 1 % of them score above 1
    share = np.mean(fitted.step_scores(sample)[normal] > 1.0)
    assert 0.0 < share <= 0.03


def test_injected_faults_are_flagged_inside_the_event_window(care, fitted):
    params, train, test = care
    outputs = fitted.score_samples(test)
    for sample, output in zip(test, outputs):
        assert output.anomaly_map.shape == sample.target.shape
        if sample.label == 1:
            window = sample.target == 1
            assert np.median(output.anomaly_map[window]) > 1.5 > np.median(output.anomaly_map[~window])
    labels = np.array([s.label for s in test])
    scores = np.array([o.score for o in outputs])
    assert scores[labels == 1].min() > scores[labels == 0].max()


def test_care_score_from_the_flags(care, fitted):
    params, train, test = care
    report = evaluate_care(fitted, test, criticality_threshold=20)
    # the same evaluation by hand, from the flags and the metric module
    flags = [o.anomaly_map > 1.0 for o in fitted.score_samples(test)]
    by_hand = care_score([evaluate_care_sample(s, f, criticality_threshold=20) for s, f in zip(test, flags)])
    assert report.result == by_hand
    assert report.result.rule == "weighted" and report.result.n_detected == 2
    assert report.result.score > 0.9
    # with the benchmark's 72-step criticality, a 40-step event cannot be detected: CARE is 0
    assert evaluate_care(fitted, test).result.score == 0.0


def test_seed_and_save_load(care, fitted, tmp_path):
    params, train, test = care
    again = CareAEDetector(**params).fit(train, seed=0)
    np.testing.assert_array_equal(again.step_scores(test[0]), fitted.step_scores(test[0]))
    reloaded = Detector.load(fitted.save(tmp_path / "care_ae"))
    np.testing.assert_allclose(reloaded.step_scores(test[0]), fitted.step_scores(test[0]), rtol=1e-6)
    np.testing.assert_allclose(reloaded.decision_function(test), fitted.decision_function(test))


def test_errors_name_the_sample(care, fitted):
    params, train, test = care
    with pytest.raises(ConfigError, match="anomalous samples"):
        CareAEDetector(**params).fit(test)
    stranger = CareAEDetector(**params).fit([train[0]], seed=0)
    with pytest.raises(ConfigError, match=f"no model for {test[1].key}"):
        stranger.decision_function([test[1]])
    with pytest.raises(ConfigError, match="grouping="):
        CareAEDetector(grouping="shared", epochs=1).fit(train, seed=0)  # farms A and B differ in channels
    with pytest.raises(ConfigError, match="threshold_quantile"):
        CareAEDetector(threshold_quantile=0.2)


def test_evaluate_adds_the_care_score(care, fitted):
    from anomalykit.baselines.evaluate import evaluate

    params, train, test = care
    report = evaluate(fitted, test)
    assert report["auroc"] == 1.0
    assert report["care_score"] == evaluate_care(fitted, test).result.score
    assert report["care_rule"] == "none detected"  # 40-step events never reach the criticality of 72
    assert report["vus_series"] == 2 and 0 < report["vus_pr"] <= 1


def test_evaluate_care_threshold(care, fitted):
    from anomalykit.baselines.pca import PCADetector

    params, train, test = care
    strict = evaluate_care(fitted, test, threshold=1e9, criticality_threshold=20)
    assert strict.result.n_detected == 0 and strict.result.score == 0.0
    with pytest.raises(ConfigError, match="differ in channels"):
        PCADetector(window=4).fit(train, seed=0)  # farms A and B have different sensors
    farm_a = [s for s in train if s.category == "A"]
    pca = PCADetector(window=4).fit(farm_a, seed=0)
    test_a = [s for s in test if s.category == "A"]
    with pytest.raises(ConfigError, match="threshold="):
        evaluate_care(pca, test_a)
    assert evaluate_care(pca, test_a, threshold=float(np.median(pca.train_scores_))).result.n_events == 2
