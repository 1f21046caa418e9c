import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

import anomalykit
from anomalykit.baselines.base import Detector
from anomalykit.baselines.btf import BTF
from anomalykit.errors import ConfigError
from anomalykit.generators.pointcloud._common import example_cloud
from anomalykit.metrics.classification import auroc
from anomalykit.schema import PointCloud, Sample
from anomalykit.testing import build


@pytest.fixture(autouse=True, scope="module")
def single_thread():
    """Tiny problems: one thread avoids parallel overhead on a shared machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)

PARAMS = {"voxel_fraction": 0.03, "coreset_ratio": 0.25}


@pytest.fixture(scope="module")
def fitted():
    train = [example_cloud(2048, seed=s, key=f"train/{s}") for s in range(3)]
    return anomalykit.get_baseline("btf", **PARAMS).fit(train, seed=0)


def _bulge(seed: int) -> Sample:
    generator = anomalykit.get_generator("patchgen", sign="bulge", scale_low=0.15, scale_high=0.2,
                                         patch_fraction_low=0.04, patch_fraction_high=0.08)
    return generator(example_cloud(2048, seed=seed, key=f"source/{seed}"), seed=seed)


def test_bulge_points_score_above_the_rest(fitted):
    for seed in (21, 22):
        sample = _bulge(seed)
        output = fitted.score_samples([sample])[0]
        target = sample.target.astype(bool)
        assert output.anomaly_map.shape == target.shape
        assert output.anomaly_map[target].mean() > 3 * output.anomaly_map[~target].mean()
        assert auroc(target, output.anomaly_map) > 0.9
        assert output.score == pytest.approx(float(output.anomaly_map.max()))


def test_defective_cloud_outscores_normal_cloud(fitted):
    normal = example_cloud(2048, seed=30, key="test/good")
    scores = fitted.decision_function([normal, _bulge(31), _bulge(32)])
    assert scores[1] > scores[0] and scores[2] > scores[0]


def test_same_seed_same_bank_other_seed_other_bank():
    train = [example_cloud(1024, seed=s, key=f"train/{s}") for s in range(2)]
    first = BTF(**PARAMS).fit(train, seed=3)
    again = BTF(**PARAMS).fit(train, seed=3)
    other = BTF(**PARAMS).fit(train, seed=4)
    np.testing.assert_array_equal(first.memory_bank_, again.memory_bank_)
    assert not np.array_equal(first.memory_bank_, other.memory_bank_)
    probe = [_bulge(5)]
    np.testing.assert_array_equal(first.score_samples(probe)[0].anomaly_map, again.score_samples(probe)[0].anomaly_map)


def test_save_load_round_trip(fitted, tmp_path):
    probe = [_bulge(40)]
    reloaded = Detector.load(fitted.save(tmp_path / "btf"))
    assert isinstance(reloaded, BTF) and reloaded.voxel_ == fitted.voxel_
    np.testing.assert_array_equal(reloaded.score_samples(probe)[0].anomaly_map, fitted.score_samples(probe)[0].anomaly_map)
    assert reloaded.threshold_ == fitted.threshold_


def test_registration_aligns_a_moved_copy_of_the_template():
    template = example_cloud(2048, seed=0, key="train/0")
    points = template.data.points.astype(np.float64)
    rotation = Rotation.from_euler("xyz", [50, 20, -30], degrees=True).as_matrix()
    moved = points @ rotation.T + np.array([0.5, -0.3, 0.2])
    probe = Sample(key="moved", dataset="demo", split="test", label=0, data=PointCloud(moved.astype(np.float32)))
    common = dict(voxel_fraction=0.03, features="fpfh_xyz", ransac_iterations=20000)
    plain = BTF(**common).fit([template], seed=0).score_samples([probe])[0]
    registered = BTF(**common, registration="ransac_icp").fit([template], seed=0).score_samples([probe])[0]
    transform = registered.extras["transformation"]
    back = moved @ transform[:3, :3].T + transform[:3, 3]
    assert np.abs(back - points).mean() < 0.01
    assert registered.score < 0.6 * plain.score


def test_registration_templates_survive_save_load(tmp_path):
    train = [example_cloud(1024, seed=s, key=f"train/{s}") for s in range(2)]
    detector = BTF(voxel_fraction=0.04, features="fpfh_xyz", registration="ransac_icp",
                   ransac_iterations=5000).fit(train, seed=0)
    assert detector.template_sizes_.shape == (2,)
    reloaded = Detector.load(detector.save(tmp_path / "btf"))
    np.testing.assert_array_equal(reloaded.template_points_, detector.template_points_)
    probe = [_bulge(3)]
    a, b = reloaded.score_samples(probe)[0], detector.score_samples(probe)[0]
    np.testing.assert_allclose(a.extras["transformation"], b.extras["transformation"], atol=1e-9)
    np.testing.assert_allclose(a.anomaly_map, b.anomaly_map, rtol=1e-6)


def test_real3d_ad_layout_maps_align_with_targets(tmp_path):
    built = build("real3d_ad", tmp_path, categories=("airplane",), n_points=600)
    dataset = anomalykit.load("real3d_ad", built.root, **built.options)
    train = dataset.filter(split="train", label=0)
    test = list(dataset.filter(split="test"))
    detector = BTF(voxel_fraction=0.02).fit(train, seed=0)
    outputs = detector.score_samples(test)
    for sample, output in zip(test, outputs):
        assert output.anomaly_map.shape == (len(sample.data),)
        assert np.isfinite(output.anomaly_map).all()
        if sample.label == 1:
            assert sample.target.shape == output.anomaly_map.shape


def test_bad_input_is_named():
    with pytest.raises(ConfigError, match="coreset_ratio"):
        BTF(coreset_ratio=0.0)
    with pytest.raises(ConfigError, match="registration"):
        BTF(registration="icp_only")
    tiny = Sample(key="tiny", dataset="demo", split="train", label=0, data=PointCloud(np.zeros((3, 3), np.float32)))
    with pytest.raises(ConfigError, match="tiny"):
        BTF().fit([tiny], seed=0)
    with pytest.raises(ConfigError, match="anomalous"):
        BTF(**PARAMS).fit([_bulge(1)], seed=0)
