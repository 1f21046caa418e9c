"""The defect families: invariants, removal reporting, directions, combination, bad input."""

import numpy as np
import pytest

from anomalykit.errors import ConfigError
from anomalykit.generators import get_generator
from anomalykit.generators.pointcloud._common import example_cloud
from anomalykit.generators.pointcloud.defects3d import FAMILIES

N = 8192


@pytest.fixture(scope="module")
def source():
    return example_cloud(N)


def check_invariants(source, out):
    index = out.data.source_index
    removed = out.meta["removed_indices"]
    assert out.label == 1 and out.provenance["generator"] == "defects3d"
    assert len(removed) == out.meta["removed_count"] and not np.intersect1d(index, removed).size
    assert np.array_equal(np.union1d(index, removed), np.arange(len(source.data)))
    old = source.data.points[index]
    assert np.array_equal(out.data.points - old, out.data.displacement)
    mask = out.target.astype(bool)
    assert np.array_equal(out.data.points[~mask], old[~mask])
    return mask


@pytest.mark.parametrize("family", FAMILIES)
def test_each_family(source, family):
    out = get_generator("defects3d", families=[family], pick=0)(source, seed=11)
    assert out.defect == family
    mask = check_invariants(source, out)
    moved = np.any(out.data.displacement != 0, axis=1)
    if family in ("crack", "cut", "hole"):
        assert out.meta["removed_count"] > 0 and not moved.any()
        assert mask.sum() > 0  # the border of the gap is anomalous
        gone = source.data.points[out.meta["removed_indices"]]
        border = out.data.points[mask]
        nearest = np.min(np.linalg.norm(border[:, None, :] - gone[None, :, :], axis=2), axis=1)
        assert nearest.max() <= out.provenance["edits"][0].get("radius", 1.0) + 0.2
    else:
        assert out.meta["removed_count"] == 0 and moved.sum() > 0.5 * mask.sum()
    if family in ("bulge", "sink"):
        outward = np.einsum("ij,ij->i", out.data.displacement[mask], source.data.points[mask])
        assert np.all(outward > 0) if family == "bulge" else np.all(outward < 0)


def test_twist_preserves_distance_to_the_axis(source):
    out = get_generator("defects3d", families=["twist"], pick=0)(source, seed=2)
    (record,) = out.provenance["edits"]
    axis = np.array(record["axis"])
    centroid = source.data.points.astype(np.float64).mean(axis=0)
    def radial(points):
        rel = points.astype(np.float64) - centroid
        return np.linalg.norm(rel - np.outer(rel @ axis, axis), axis=1), rel @ axis
    r0, t0 = radial(source.data.points)
    r1, t1 = radial(out.data.points)
    np.testing.assert_allclose(r1, r0, atol=1e-5)
    np.testing.assert_allclose(t1, t0, atol=1e-5)
    assert abs(out.target.mean() - record["fraction"]) < 0.01


def test_combinations_and_seeds(source):
    gen = get_generator("defects3d", families=["bulge", "hole", "roughness"], pick=0)
    out = gen(source, seed=3)
    assert out.defect == "bulge+hole+roughness"
    assert [e["family"] for e in out.provenance["edits"]] == ["bulge", "hole", "roughness"]
    check_invariants(source, out)
    assert gen(source, seed=3).to_shard_fields() == out.to_shard_fields()
    picked = get_generator("defects3d", pick=2)
    seen = set()
    for seed in range(6):
        sample = picked(source, seed=seed)
        families = sample.defect.split("+")
        assert len(families) == 2 and len(set(families)) == 2
        check_invariants(source, sample)
        seen.update(families)
    assert len(seen) >= 4


def test_carries_source_normals(source):
    from anomalykit.schema import PointCloud, Sample

    points = source.data.points
    normals = points / np.linalg.norm(points, axis=1, keepdims=True)
    with_normals = Sample(key="n", dataset="t", split="train", label=0, data=PointCloud(points, normals=normals))
    out = get_generator("defects3d", families=["bulge", "hole"], pick=0)(with_normals, seed=1)
    index = out.data.source_index
    moved = np.any(out.data.displacement != 0, axis=1)
    assert np.array_equal(out.data.normals[~moved], normals[index][~moved].astype(np.float32))
    assert np.allclose(np.linalg.norm(out.data.normals[moved], axis=1), 1, atol=1e-4)


def test_bad_config_and_small_clouds():
    with pytest.raises(ConfigError, match="families"):
        get_generator("defects3d", families=["bulge", "melt"])
    with pytest.raises(ConfigError, match="pick"):
        get_generator("defects3d", families=["bulge"], pick=2)
    with pytest.raises(ConfigError, match="radius_low"):
        get_generator("defects3d", radius_low=0.3, radius_high=0.2)
    with pytest.raises(ConfigError, match=r"sparse/cloud.*radius_low"):
        get_generator("defects3d", families=["hole"], radius_low=0.001, radius_high=0.001)(
            example_cloud(512, key="sparse/cloud"), seed=0)
    assert get_generator("defects3d", families="hole,crack").config.families == ["hole", "crack"]
