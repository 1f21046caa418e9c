"""DRAEM with tiny widths on CPU: it learns from perlin anomalies to find painted defects; SSIM,
architecture, seeds, save/load and errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import anomalykit
from anomalykit.baselines._image_features import synthetic_image_set
from anomalykit.baselines.base import Detector
from anomalykit.baselines.draem import DiscriminativeNetwork, ReconstructiveNetwork, ssim
from anomalykit.errors import ConfigError
from anomalykit.metrics.image import image_auroc, pixel_auroc

# small enough for a CPU test, large enough to learn the task (AUROC 1.0 for seeds 0-4 at 150 steps)
TRAINED = dict(image_size=32, reconstructive_width=8, discriminative_width=8, reconstructive_depth=2,
               discriminative_depth=2, steps=150, batch_size=8, learning_rate=1e-3, score_window=5, sigma=1.0,
               rotate_prob=0.0)
QUICK = {**TRAINED, "reconstructive_width": 4, "discriminative_width": 4, "steps": 3}


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    previous = torch.get_num_threads()
    torch.set_num_threads(1)  # the machine's cores are shared; small convolutions gain nothing from more
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="module")
def data():
    return synthetic_image_set(n_train=8, n_normal=6, n_anomalous=6, size=32, seed=3)


@pytest.fixture(scope="module")
def trained(data):
    train, _ = data
    return anomalykit.get_baseline("draem", **TRAINED).fit(train, seed=0)


def test_learns_to_find_painted_defects(data, trained):
    _, test = data
    outputs = trained.score_samples(test)
    assert image_auroc([s.label for s in test], [o.score for o in outputs]) >= 0.9
    for sample, output in zip(test, outputs):
        assert output.anomaly_map.shape == sample.target.shape == (32, 32)
        assert 0.0 <= output.score <= 1.0
    inside = np.mean([o.anomaly_map[s.target == 1].mean() for s, o in zip(test, outputs) if s.label])
    outside = np.mean([o.anomaly_map[s.target == 0].mean() for s, o in zip(test, outputs) if s.label])
    assert inside > outside
    assert pixel_auroc([s.target for s in test], [o.anomaly_map for o in outputs]) > 0.85
    # training reduced the loss (reconstruction + SSIM + focal)
    assert trained.losses_[-10:].mean() < 0.5 * trained.losses_[:10].mean()


def test_image_score_is_the_max_of_the_mean_filtered_softmax(data, trained):
    _, test = data
    sample = test[-1]
    x = torch.from_numpy(sample.data.pixels).permute(2, 0, 1)[None].float() / 255
    with torch.no_grad():
        reconstruction = trained.reconstructive_(x)
        probability = torch.softmax(trained.discriminative_(torch.cat([x, reconstruction], 1)), 1)[0, 1].numpy()
    padded = np.pad(probability, 2)  # 5 x 5 mean, zero padding counted as in avg_pool2d
    mean5 = np.array([[padded[i:i + 5, j:j + 5].mean() for j in range(32)] for i in range(32)])
    assert trained.decision_function([sample])[0] == pytest.approx(mean5.max(), rel=1e-5)
    raw = anomalykit.get_baseline("draem", **{**TRAINED, "sigma": 0.0})
    raw.load_state_dict(trained.state_dict())
    raw.fitted_ = True
    np.testing.assert_allclose(raw.score_samples([sample])[0].anomaly_map, probability, rtol=1e-5, atol=1e-6)


def test_ssim_by_hand():
    x = torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    assert float(ssim(x, x)) == pytest.approx(1.0, abs=1e-5)
    other = torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(1))  # not the global RNG: a test that ran before may have seeded it with 0
    assert float(ssim(x, other)) < 0.5
    # constant images a and b with zero padding (as DRAEM's SSIM): with w the in-image weight of the
    # 11 x 11 Gaussian window (sigma 1.5) at each pixel, mu = a w, var = a^2 (w - w^2), cov = a b (w - w^2)
    from scipy.ndimage import convolve

    g = np.exp(-(np.arange(11) - 5) ** 2 / (2 * 1.5**2))
    g /= g.sum()
    w = convolve(np.ones((16, 16)), np.outer(g, g), mode="constant")
    a, b, c1, c2 = 0.2, 0.6, 0.01**2, 0.03**2
    mu_a, mu_b, spread = a * w, b * w, w - w * w
    expected = ((2 * mu_a * mu_b + c1) * (2 * a * b * spread + c2)
                / ((mu_a**2 + mu_b**2 + c1) * ((a * a + b * b) * spread + c2))).mean()
    value = ssim(torch.full((1, 1, 16, 16), a, dtype=torch.float64), torch.full((1, 1, 16, 16), b, dtype=torch.float64))
    assert float(value) == pytest.approx(expected, rel=1e-6)
    # in the interior (w = 1) only the luminance term is left
    assert (2 * a * b + c1) / (a * a + b * b + c1) == pytest.approx(
        ((2 * mu_a * mu_b + c1) / (mu_a**2 + mu_b**2 + c1))[8, 8], rel=1e-6)


def test_rotation_of_training_images(data):
    from anomalykit.baselines.draem import _rotate

    image = np.arange(5 * 5 * 3, dtype=np.uint8).reshape(5, 5, 3)
    np.testing.assert_array_equal(_rotate(image, 90.0), np.rot90(image))  # counter-clockwise, about the centre
    corners = _rotate(np.full((9, 9, 3), 200, np.uint8), 45.0)
    assert corners[0, 0].tolist() == [0, 0, 0] and corners[4, 4].tolist() == [200, 200, 200]
    train, _ = data
    plain = anomalykit.get_baseline("draem", **QUICK).fit(train, seed=0)
    rotated = anomalykit.get_baseline("draem", **{**QUICK, "rotate_prob": 1.0}).fit(train, seed=0)
    assert not np.array_equal(plain.losses_, rotated.losses_)


def test_networks_keep_the_image_size():
    x = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(3))
    reconstructive = ReconstructiveNetwork(width=4, depth=3)
    assert reconstructive(x).shape == (2, 3, 32, 32)
    # no skip connections: the bottleneck is width * 8 channels at 32 / 2^3
    assert reconstructive.encoder[-1][3].out_channels == 32
    assert DiscriminativeNetwork(width=4, depth=3)(torch.cat([x, x], 1)).shape == (2, 2, 32, 32)


def test_seeds_reproduce_and_save_load(data, tmp_path):
    train, test = data
    first = anomalykit.get_baseline("draem", **QUICK).fit(train, seed=4)
    again = anomalykit.get_baseline("draem", **QUICK).fit(train, seed=4)
    other = anomalykit.get_baseline("draem", **QUICK).fit(train, seed=5)
    scores = first.decision_function(test)
    np.testing.assert_array_equal(scores, again.decision_function(test))
    np.testing.assert_array_equal(first.losses_, again.losses_)
    assert not np.allclose(scores, other.decision_function(test))
    reloaded = Detector.load(first.save(tmp_path / "draem"))
    assert type(reloaded).__name__ == "Draem"
    np.testing.assert_allclose(reloaded.decision_function(test), scores, rtol=1e-6)


def test_perlin_textures_are_used(data, tmp_path):
    from PIL import Image as PILImage

    textures = tmp_path / "dtd" / "banded"
    textures.mkdir(parents=True)
    stripes = np.zeros((32, 32, 3), np.uint8)
    stripes[::4] = 255
    PILImage.fromarray(stripes).save(textures / "banded_0001.jpg")
    train, test = data
    detector = anomalykit.get_baseline("draem", **{**QUICK, "texture_dir": str(tmp_path / "dtd"), "num_threads": 2})
    assert np.isfinite(detector.fit(train, seed=0).decision_function(test)).all()
    assert torch.get_num_threads() == 1  # num_threads applies while fitting and scoring only
    with pytest.raises(ConfigError, match="texture_dir"):
        anomalykit.get_baseline("draem", **{**QUICK, "texture_dir": str(tmp_path / "missing")}).fit(train, seed=0)


def test_bad_configuration_is_named():
    with pytest.raises(ConfigError, match=r"image_size \(36\) must be divisible by 2\^3"):
        anomalykit.get_baseline("draem", image_size=36, reconstructive_depth=3, discriminative_depth=2)
    with pytest.raises(ConfigError, match="score_window must be odd"):
        anomalykit.get_baseline("draem", score_window=20)
    with pytest.raises(ConfigError, match="anomaly_prob"):
        anomalykit.get_baseline("draem", anomaly_prob=1.5)
    with pytest.raises(ConfigError, match="unknown key"):
        anomalykit.get_baseline("draem", width=3)


def test_weights_of_another_config_are_refused(data):
    train, _ = data
    state = anomalykit.get_baseline("draem", **QUICK).fit(train[:2], seed=0).state_dict()
    wider = anomalykit.get_baseline("draem", **{**QUICK, "discriminative_width": 8})
    with pytest.raises(ConfigError, match="discriminative weights do not fit"):
        wider.load_state_dict(state)
