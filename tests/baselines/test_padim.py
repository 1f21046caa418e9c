"""PaDiM on a tiny random ResNet: ranking, localisation, statistics, seeds, save/load, errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import anomalykit
from anomalykit.baselines._image_features import TINY_RESNET_ID, FeatureExtractor, synthetic_image_set
from anomalykit.baselines.base import Detector
from anomalykit.errors import ConfigError
from anomalykit.metrics.image import image_auroc, pixel_auroc
from anomalykit.schema import Image, Sample
from anomalykit.testing import build

PARAMS = dict(backbone=TINY_RESNET_ID, image_size=32, n_features=40, sigma=1.0)


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    previous = torch.get_num_threads()
    torch.set_num_threads(1)  # the machine's cores are shared; small convolutions gain nothing from more
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="module")
def data():
    return synthetic_image_set(n_train=10, n_normal=6, n_anomalous=6, size=32, seed=3)


@pytest.fixture(scope="module")
def fitted(data):
    train, _ = data
    return anomalykit.get_baseline("padim", **PARAMS).fit(train, seed=0)


def test_ranks_and_localises_painted_defects(data, fitted):
    _, test = data
    outputs = fitted.score_samples(test)
    labels = [s.label for s in test]
    assert image_auroc(labels, [o.score for o in outputs]) >= 0.95
    for sample, output in zip(test, outputs):
        assert output.key == sample.key
        assert output.anomaly_map.shape == sample.target.shape == (32, 32)
        assert output.score == pytest.approx(float(output.anomaly_map.max()))
        if sample.label:
            assert output.anomaly_map[sample.target == 1].mean() > output.anomaly_map[sample.target == 0].mean()
    assert pixel_auroc([s.target for s in test], [o.anomaly_map for o in outputs]) > 0.9


def test_gaussians_match_numpy_statistics(data, fitted):
    train, _ = data
    extractor = FeatureExtractor(TINY_RESNET_ID, fitted.config.layers, 32, batch_size=4, device="cpu")
    embedding = torch.cat([fitted._embed(f) for f in extractor.batches(train)])[:, fitted.channels_]
    assert embedding.shape[1] == 40 and tuple(embedding.shape[-2:]) == fitted.grid_
    x = embedding.flatten(2).permute(2, 0, 1).double().numpy()  # P x N x d
    patch = 5
    np.testing.assert_allclose(fitted.mean_[patch].numpy(), x[patch].mean(0), rtol=1e-4, atol=1e-5)
    covariance = np.cov(x[patch], rowvar=False) + 0.01 * np.eye(40)
    np.testing.assert_allclose(fitted.inv_covariance_[patch].numpy() @ covariance, np.eye(40), atol=2e-3)


def test_seed_picks_the_channels(data, fitted):
    train, test = data
    again = anomalykit.get_baseline("padim", **PARAMS).fit(train, seed=0)
    np.testing.assert_array_equal(again.decision_function(test), fitted.decision_function(test))
    other = anomalykit.get_baseline("padim", **PARAMS).fit(train, seed=1)
    assert not torch.equal(other.channels_, fitted.channels_)
    assert not np.allclose(other.decision_function(test), fitted.decision_function(test))


def test_save_load_round_trip(data, fitted, tmp_path):
    _, test = data
    reloaded = Detector.load(fitted.save(tmp_path / "padim"))
    assert type(reloaded).__name__ == "Padim" and reloaded.config == fitted.config
    np.testing.assert_allclose(reloaded.decision_function(test), fitted.decision_function(test), rtol=1e-6)
    np.testing.assert_allclose(reloaded.score_samples(test[-1:])[0].anomaly_map,
                               fitted.score_samples(test[-1:])[0].anomaly_map, rtol=1e-6)


def test_images_from_the_mvtec_layout(tmp_path):
    built = build("mvtec_ad", tmp_path / "mvtec", categories={"grid": ("bent",)}, n_train=4, size=24)
    dataset = anomalykit.load("mvtec_ad", built.root, category="grid")
    train = list(dataset.filter(split="train", label=0))
    test = list(dataset.filter(split="test"))
    detector = anomalykit.get_baseline("padim", **PARAMS).fit(train, seed=0)
    for sample, output in zip(test, detector.score_samples(test)):
        assert output.anomaly_map.shape == np.asarray(sample.target).shape == (24, 24)


def test_grey_non_square_images_get_maps_of_their_own_size():
    train, test = synthetic_image_set(n_train=4, n_normal=1, n_anomalous=1, size=40, seed=5, channels=1)
    crop = [Sample(key=s.key, dataset=s.dataset, split=s.split, label=s.label, data=Image(s.data.pixels[4:28]),
                   target=s.target[4:28]) for s in test]
    assert crop[0].data.channels == 1 and crop[0].data.pixels.shape[:2] == (24, 40)
    detector = anomalykit.get_baseline("padim", **PARAMS).fit(train, seed=0)
    for sample, output in zip(crop, detector.score_samples(crop)):
        assert output.anomaly_map.shape == (24, 40) and np.isfinite(output.anomaly_map).all()


def test_bad_configuration_is_named(data):
    train, _ = data
    with pytest.raises(ConfigError, match="n_features"):
        anomalykit.get_baseline("padim", n_features=0)
    with pytest.raises(ConfigError, match="n_features: 500 exceeds the 112 channels"):
        anomalykit.get_baseline("padim", **{**PARAMS, "n_features": 500}).fit(train, seed=0)
    with pytest.raises(ConfigError, match="stage9"):
        anomalykit.get_baseline("padim", **{**PARAMS, "layers": ("stage1", "stage9")}).fit(train, seed=0)
    with pytest.raises(ConfigError, match="at least 2 training images"):
        anomalykit.get_baseline("padim", **PARAMS).fit(train[:1], seed=0)
    with pytest.raises(ConfigError, match="call fit"):
        anomalykit.get_baseline("padim", **PARAMS).decision_function(train)


def test_unavailable_hub_backbone_is_named(data, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    train, _ = data
    with pytest.raises(ConfigError, match="anomalykit-test/no-such-resnet"):
        anomalykit.get_baseline("padim", backbone="anomalykit-test/no-such-resnet", image_size=32).fit(train, seed=0)
