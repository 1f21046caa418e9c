import numpy as np
import pytest
import torch

import anomalykit
from anomalykit.baselines.base import Detector
from anomalykit.baselines.mil_ranking import (MILRanking, _snippet_segment, ranking_loss, segment_bounds,
                                              segment_features)
from anomalykit.errors import ConfigError
from anomalykit.metrics.classification import auroc
from anomalykit.schema import Sample, Video
from anomalykit.testing import build


PARAMS = {"iterations": 300, "batch_size": 6, "optimizer": "adam", "learning_rate": 0.002, "hidden_1": 64,
          "hidden_2": 16, "dropout": 0.6, "threads": 1}
DIM = 96


def video(rng, key, anomalous, split, crops=3):
    """Ten-crop-like features (T x crops x D); an anomalous event moves along a fixed direction."""
    direction = np.random.default_rng(99).normal(size=DIM)
    t = int(rng.integers(40, 90))
    features = rng.normal(size=(t, crops, DIM))
    target = np.zeros(t, np.uint8)
    if anomalous:
        start = int(rng.integers(0, t - 12))
        stop = min(t, start + int(rng.integers(6, 20)))
        features[start:stop] += 1.2 * direction
        target[start:stop] = 1
    return Sample(key=key, dataset="synthetic", split=split, label=int(anomalous),
                  data=Video(features=features.astype(np.float32)), target=target if split == "test" else None)


def videos(seed, count, split):
    rng = np.random.default_rng(seed)
    return [video(rng, f"{split}/{i}", i % 2 == 0, split) for i in range(count)]


@pytest.fixture(scope="module")
def fitted():
    return MILRanking(**PARAMS).fit(videos(0, 24, "train"), seed=0)


@pytest.mark.parametrize("resolution", ["segments", "snippets"])
def test_anomalous_snippets_rank_above_normal_ones(fitted, resolution):
    detector = MILRanking(**{**PARAMS, "test_resolution": resolution})
    detector.load_state_dict(fitted.state_dict())
    detector.fitted_ = True
    test = videos(1, 10, "test")
    outputs = detector.score_samples(test)
    for sample, output in zip(test, outputs):
        assert output.anomaly_map.shape == sample.target.shape
    targets = np.concatenate([s.target for s in test])
    maps = np.concatenate([o.anomaly_map for o in outputs])
    assert auroc(targets, maps) > 0.85
    assert auroc([s.label for s in test], [o.score for o in outputs]) > 0.9
    assert fitted.loss_history_[-50:].mean() < fitted.loss_history_[:50].mean()


def test_same_seed_same_scores_other_seed_differs():
    train, test = videos(2, 12, "train"), videos(3, 4, "test")
    params = {**PARAMS, "iterations": 40}
    first = MILRanking(**params).fit(train, seed=7).decision_function(test)
    again = MILRanking(**params).fit(train, seed=7).decision_function(test)
    other = MILRanking(**params).fit(train, seed=8).decision_function(test)
    np.testing.assert_array_equal(first, again)
    assert not np.allclose(first, other)


def test_save_load_round_trip(fitted, tmp_path):
    test = videos(4, 4, "test")
    reloaded = Detector.load(fitted.save(tmp_path / "mil"))
    assert isinstance(reloaded, MILRanking) and reloaded.in_dim_ == DIM
    for a, b in zip(reloaded.score_samples(test), fitted.score_samples(test)):
        np.testing.assert_allclose(a.anomaly_map, b.anomaly_map, rtol=1e-6)


@pytest.mark.parametrize("source", ["rtfm", "urdmu"])
def test_ucf_crime_feature_layouts(tmp_path, source):
    built = build("ucf_crime", tmp_path, features=source)
    dataset = anomalykit.load("ucf_crime", built.root, **built.options)
    train, test = dataset.filter(split="train"), list(dataset.filter(split="test"))
    detector = MILRanking(threads=1, iterations=5, batch_size=2, hidden_1=16, hidden_2=4).fit(train, seed=0)
    for sample, output in zip(test, detector.score_samples(test)):
        assert output.anomaly_map.shape == sample.target.shape == (sample.data.length,)
        assert np.isfinite(output.anomaly_map).all()


def test_segments_average_their_snippets():
    features = np.arange(64 * 2, dtype=np.float32).reshape(64, 2)
    means = segment_features(features, 32, normalize=False)
    np.testing.assert_allclose(means, (features[0::2] + features[1::2]) / 2)
    short = segment_features(features[:5], 32, normalize=True)
    assert short.shape == (32, 2)
    np.testing.assert_allclose(np.linalg.norm(short, axis=1), 1.0, rtol=1e-6)
    owner = _snippet_segment(5, 32)
    bounds = segment_bounds(5, 32)
    assert all(bounds[s] <= t < bounds[s + 1] for t, s in enumerate(owner))


def test_ranking_loss_by_hand():
    anomalous = torch.tensor([[0.1, 0.9, 0.2]])
    normal = torch.tensor([[0.3, 0.4, 0.2]])
    expected = (1 - 0.9 + 0.4) + 0.5 * (0.8**2 + 0.7**2) + 0.25 * 1.2
    assert float(ranking_loss(anomalous, normal, 0.5, 0.25)) == pytest.approx(expected, rel=1e-6)


def test_bad_input_is_named(tmp_path):
    normal_only = [s for s in videos(5, 6, "train") if s.label == 0]
    with pytest.raises(ConfigError, match="both anomalous and normal"):
        MILRanking(threads=1, iterations=1).fit(normal_only, seed=0)
    unknown = Sample(key="unlabelled", dataset="x", split="train", label=-1,
                     data=Video(features=np.zeros((4, DIM), np.float32)))
    with pytest.raises(ConfigError, match="unlabelled"):
        MILRanking(threads=1, iterations=1).fit(videos(5, 4, "train") + [unknown], seed=0)
    file_form = Sample(key="clip", dataset="x", split="test", label=0, data=Video(path=str(tmp_path / "a.mp4")))
    fitted = MILRanking(threads=1, iterations=1, batch_size=1).fit(videos(5, 4, "train"), seed=0)
    with pytest.raises(ConfigError, match="clip.*source='rtfm'"):
        fitted.score_samples([file_form])
    with pytest.raises(ConfigError, match="segments"):
        MILRanking(segments=0)
