"""Patch-Gen (R3D-AD): patch selection, rays, sign, magnitude profile, invariants, bad input."""

import numpy as np
import pytest

from anomalykit.errors import ConfigError, SchemaError
from anomalykit.generators import get_generator
from anomalykit.generators.pointcloud._common import example_cloud
from anomalykit.generators.pointcloud.patchgen import VIEWPOINTS, select_patch
from anomalykit.schema import PointCloud, Sample

N = 4096


@pytest.fixture(scope="module")
def source():
    return example_cloud(N)


def edit(sample):
    (record,) = sample.provenance["edits"]
    return record


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_invariants_and_patch_geometry(source, seed):
    out = get_generator("patchgen")(source, seed=seed)
    old = source.data.points
    assert np.array_equal(out.data.source_index, np.arange(N)) and out.meta["removed_count"] == 0
    assert np.array_equal(out.data.points - old, out.data.displacement)
    mask = out.target.astype(bool)
    assert np.array_equal(out.data.points[~mask], old[~mask])  # untouched bytes
    record = edit(out)
    size = record["patch_size"]
    assert N // 32 <= size <= N // 4 and mask.sum() == size
    viewpoint = np.array(record["viewpoint"])
    distance = np.linalg.norm(old - viewpoint, axis=1)
    assert distance[mask].max() <= distance[~mask].min()  # the patch is the M points nearest V
    # displacement along the rays through V: dent moves away from V, bulge towards it
    delta = out.data.displacement[mask].astype(np.float64)
    rays = old[mask] - viewpoint
    cross = np.linalg.norm(np.cross(delta, rays), axis=1) / np.linalg.norm(rays, axis=1)
    assert cross.max() < 1e-5
    along = np.einsum("ij,ij->i", delta, rays)
    assert np.all(along >= -1e-9) if out.defect == "dent" else np.all(along <= 1e-9)
    # magnitude: sorted uniforms by proximity rank, at most s
    magnitude = np.linalg.norm(delta, axis=1)[np.argsort(distance[mask], kind="stable")]
    assert np.all(np.diff(magnitude) <= 1e-6) and magnitude.max() <= record["scale"] * (1 + 1e-5)


def test_sign_option_and_units(source):
    assert get_generator("patchgen", sign="bulge")(source, seed=5).defect == "bulge"
    assert get_generator("patchgen", sign="dent")(source, seed=5).defect == "dent"
    raw = get_generator("patchgen", units="raw")(source, seed=5)
    viewpoint = np.array(edit(raw)["viewpoint"])
    assert any(np.allclose(viewpoint, v) for v in VIEWPOINTS)
    scaled = source.data.points * 10 + 3
    big = Sample(key=source.key, dataset="t", split="train", label=0, data=PointCloud(scaled))
    ratio = np.abs(get_generator("patchgen")(big, seed=5).data.displacement).max() / np.abs(
        get_generator("patchgen")(source, seed=5).data.displacement).max()
    assert ratio == pytest.approx(10, rel=1e-3)  # object units follow the object size


def test_cosine_profile_and_normal_direction(source):
    out = get_generator("patchgen", profile="cosine", direction="normal", sign="bulge")(source, seed=3)
    mask = out.target.astype(bool)
    # the label is exactly the moved points: the cosine cap's rim point does not move
    np.testing.assert_array_equal(mask, np.any(out.data.points != source.data.points, axis=1))
    assert mask.sum() < edit(out)["patch_size"]
    delta = out.data.displacement[mask]
    outward = np.einsum("ij,ij->i", delta, source.data.points[mask])
    assert np.mean(outward > 0) > 0.95


def test_seed_reproduces_bytes(source):
    gen = get_generator("patchgen")
    a, b, c = gen(source, seed=9), gen(source, seed=9), gen(source, seed=10)
    assert a.to_shard_fields() == b.to_shard_fields()
    assert a.to_shard_fields() != c.to_shard_fields()


def test_select_patch_matches_a_full_sort():
    rng = np.random.default_rng(0)
    points = rng.normal(size=(1000, 3))
    viewpoint = np.array([2.0, 0, -2])
    expected = np.argsort(((points - viewpoint) ** 2).sum(axis=1), kind="stable")[:77]
    assert np.array_equal(select_patch(points, viewpoint, 77), expected)


def test_bad_input():
    tiny = example_cloud(20, key="tiny/cloud")
    with pytest.raises(ConfigError, match=r"tiny/cloud.*patch_fraction_low"):
        get_generator("patchgen")(tiny, seed=0)
    points = example_cloud(256).data.points.copy()
    points[17] = np.nan
    bad = Sample(key="nan/cloud", dataset="t", split="train", label=0, data=PointCloud(points))
    with pytest.raises(SchemaError, match=r"nan/cloud.*index 17"):
        get_generator("patchgen")(bad, seed=0)
    with pytest.raises(ConfigError, match="scale_low"):
        get_generator("patchgen", scale_low=0.5, scale_high=0.1)
    with pytest.raises(ConfigError, match="sign"):
        get_generator("patchgen", sign="sideways")
