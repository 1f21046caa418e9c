"""PatchCore on a tiny random ResNet: ranking, localisation, coreset, memory caps, reweighting,
seeds, save/load, local backbones and errors."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

import anomalykit
from anomalykit.baselines._image_features import TINY_RESNET_ID, FeatureExtractor, synthetic_image_set
from anomalykit.baselines.base import Detector
from anomalykit.baselines.patchcore import greedy_coreset, nearest_neighbours
from anomalykit.errors import ConfigError
from anomalykit.metrics.image import image_auroc, pixel_auroc

PARAMS = dict(backbone=TINY_RESNET_ID, image_size=64, coreset_ratio=0.25, sigma=1.0)


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
    return anomalykit.get_baseline("patchcore", **PARAMS).fit(train, seed=0)


def test_ranks_and_localises_painted_defects(data, fitted):
    _, test = data
    outputs = fitted.score_samples(test)
    assert image_auroc([s.label for s in test], [o.score for o in outputs]) >= 0.95
    for sample, output in zip(test, outputs):
        assert output.key == sample.key
        assert output.anomaly_map.shape == sample.target.shape == (32, 32)
        if sample.label:
            assert output.anomaly_map[sample.target == 1].mean() > output.anomaly_map[sample.target == 0].mean()
    assert pixel_auroc([s.target for s in test], [o.anomaly_map for o in outputs]) > 0.9
    # 10 images x 8 x 8 patches, 25 % kept; D = 32 + 64 channels of stages 2 and 3
    assert tuple(fitted.memory_bank_.shape) == (160, 96)


def _patch_features(detector, samples):
    extractor = FeatureExtractor(TINY_RESNET_ID, detector.config.layers, detector.config.image_size, 16, "cpu")
    return torch.cat([detector._embed(f) for f in extractor.batches(samples)])


def test_image_scores_follow_the_papers_formula(data, fitted):
    _, test = data
    features = _patch_features(fitted, test).reshape(len(test), -1, 96)
    bank = fitted.memory_bank_
    plain = anomalykit.get_baseline("patchcore", **{**PARAMS, "reweight": False})
    plain.load_state_dict(fitted.state_dict())
    plain.fitted_ = True
    for i, (reweighted, raw) in enumerate(zip(fitted.decision_function(test), plain.decision_function(test))):
        distances = torch.cdist(features[i], bank)  # brute force: patches x bank
        nearest_distance, nearest = distances.min(1)
        worst = int(nearest_distance.argmax())
        assert raw == pytest.approx(float(nearest_distance[worst]), rel=1e-4)
        m_star = bank[nearest[worst]]
        support = torch.argsort(torch.cdist(m_star[None], bank)[0])[:9]
        d = torch.linalg.vector_norm(features[i, worst] - bank[support], dim=1).double()
        weight = 1.0 - float(torch.exp(d[0]) / torch.exp(d).sum())
        assert reweighted == pytest.approx(weight * raw, rel=1e-4)
        assert 0 < reweighted < raw


def test_greedy_coreset_is_farthest_first_and_keeps_its_start():
    rng = np.random.default_rng(0)
    points = torch.from_numpy(rng.normal(size=(40, 3)))
    chosen = greedy_coreset(points, 6, np.random.default_rng(5), projection_dim=None)
    assert chosen[0] == np.random.default_rng(5).integers(40)  # the random start is part of the coreset
    assert len(set(chosen.tolist())) == 6
    for k in range(1, 6):  # each pick is the point farthest from those picked before
        distance_to_set = torch.cdist(points, points[chosen[:k]]).min(1).values
        assert distance_to_set[chosen[k]] == pytest.approx(float(distance_to_set.max()))
    # the k-center guarantee: covering radius at most twice the best possible (brute force)
    radius = float(torch.cdist(points, points[chosen[:3]]).min(1).values.max())
    best = min(float(torch.cdist(points, points[list(c)]).min(1).values.max())
               for c in itertools.combinations(range(40), 3))
    assert radius <= 2 * best + 1e-9


def test_coreset_projection_is_seeded():
    points = torch.from_numpy(np.random.default_rng(1).normal(size=(200, 300))).float()
    a = greedy_coreset(points, 20, np.random.default_rng(3), projection_dim=16)
    b = greedy_coreset(points, 20, np.random.default_rng(3), projection_dim=16)
    c = greedy_coreset(points, 20, np.random.default_rng(4), projection_dim=16)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    with pytest.raises(ConfigError, match="coreset size 0"):
        greedy_coreset(points, 0, np.random.default_rng(3))


def test_nearest_neighbours_in_blocks_match_brute_force(monkeypatch):
    import anomalykit.baselines.patchcore as patchcore

    monkeypatch.setattr(patchcore, "_DISTANCE_BLOCK_FLOATS", 50)  # blocks of 5 queries
    rng = np.random.default_rng(2)
    queries, bank = (torch.from_numpy(rng.normal(size=(n, 4))).float() for n in (23, 10))
    distance, index = nearest_neighbours(queries, bank, 3)
    expected = torch.cdist(queries, bank).topk(3, largest=False)
    torch.testing.assert_close(distance, expected.values)
    torch.testing.assert_close(index, expected.indices)


def test_memory_caps(data):
    train, test = data
    capped = anomalykit.get_baseline("patchcore", **{**PARAMS, "max_memory": 7}).fit(train, seed=0)
    assert capped.memory_bank_.shape[0] == 7
    # at most 20 training patches: 2 per image, then all of them kept (ratio 1)
    subsampled = anomalykit.get_baseline("patchcore", **{**PARAMS, "max_train_patches": 20,
                                                         "coreset_ratio": 1.0}).fit(train, seed=0)
    assert subsampled.memory_bank_.shape[0] == 20
    assert np.isfinite(subsampled.decision_function(test)).all()


def test_seeds_reproduce(data, fitted):
    train, test = data
    again = anomalykit.get_baseline("patchcore", **PARAMS).fit(train, seed=0)
    torch.testing.assert_close(again.memory_bank_, fitted.memory_bank_, rtol=0, atol=0)
    np.testing.assert_array_equal(again.decision_function(test), fitted.decision_function(test))
    other = anomalykit.get_baseline("patchcore", **PARAMS).fit(train, seed=1)
    assert not torch.equal(other.memory_bank_, fitted.memory_bank_)


def test_save_load_round_trip(data, fitted, tmp_path):
    _, test = data
    reloaded = Detector.load(fitted.save(tmp_path / "patchcore"))
    assert type(reloaded).__name__ == "Patchcore" and reloaded.config == fitted.config
    np.testing.assert_allclose(reloaded.decision_function(test), fitted.decision_function(test), rtol=1e-6)


def test_local_transformers_backbone(data, tmp_path):
    """A checkpoint saved like microsoft/resnet-50 (an image classifier) loads as the backbone,
    with its weights: the stages give the classifier's own hidden states."""
    from transformers import ResNetConfig, ResNetForImageClassification

    from anomalykit.baselines._image_features import image_tensor, load_backbone

    config = ResNetConfig(embedding_size=8, hidden_sizes=[8, 16, 24, 32], depths=[1, 1, 1, 1], layer_type="basic")
    torch.manual_seed(0)
    classifier = ResNetForImageClassification(config).eval()
    classifier.save_pretrained(tmp_path / "resnet")
    train, test = data
    images = image_tensor(test[:2], 64)
    with torch.no_grad():
        hidden = classifier.resnet(images, output_hidden_states=True).hidden_states
        stages = load_backbone(str(tmp_path / "resnet"), ("stage2", "stage3"))(images).feature_maps
    torch.testing.assert_close(stages[0], hidden[2])
    torch.testing.assert_close(stages[1], hidden[3])
    detector = anomalykit.get_baseline("patchcore", **{**PARAMS, "backbone": str(tmp_path / "resnet")})
    detector.fit(train[:4], seed=0)
    assert detector.memory_bank_.shape[1] == 16 + 24  # stage2 + stage3 of the saved model
    assert detector.score_samples(test[:1])[0].anomaly_map.shape == (32, 32)


def test_bad_configuration_is_named(data):
    train, _ = data
    with pytest.raises(ConfigError, match="patch_size must be odd"):
        anomalykit.get_baseline("patchcore", patch_size=4)
    with pytest.raises(ConfigError, match="coreset_ratio"):
        anomalykit.get_baseline("patchcore", coreset_ratio=1.5)
    with pytest.raises(ConfigError, match="num_neighbors"):
        anomalykit.get_baseline("patchcore", num_neighbors=1)
    with pytest.raises(ConfigError, match="anomalykit-test/no-such-resnet"):
        anomalykit.get_baseline("patchcore", backbone="anomalykit-test/no-such-resnet").fit(train, seed=0)
    with pytest.raises(ConfigError, match="fit\\(\\) received anomalous samples"):
        anomalykit.get_baseline("patchcore", **PARAMS).fit(data[1], seed=0)
