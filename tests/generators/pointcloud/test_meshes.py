"""Mesh sources: deform vertices, sample points; displacement at fixed barycentric coordinates."""

import numpy as np
import pytest
import trimesh

from anomalykit.errors import ConfigError, DatasetNotFoundError, MalformedFileError, SchemaError
from anomalykit.generators import get_generator
from anomalykit.generators.pointcloud.meshes import MeshFolder, load_mesh, mesh_sample


def barycentric(points, triangles):
    """Barycentric coordinates of points in the planes of their triangles, and plane distances."""
    a, b, c = triangles[:, 0], triangles[:, 1], triangles[:, 2]
    v0, v1, v2 = b - a, c - a, points - a
    d00, d01, d11 = (v0 * v0).sum(1), (v0 * v1).sum(1), (v1 * v1).sum(1)
    d20, d21 = (v2 * v0).sum(1), (v2 * v1).sum(1)
    den = d00 * d11 - d01 * d01
    v = (d11 * d20 - d01 * d21) / den
    w = (d00 * d21 - d01 * d20) / den
    normal = np.cross(v0, v1)
    normal /= np.linalg.norm(normal, axis=1, keepdims=True)
    return np.stack([1 - v - w, v, w], axis=1), np.abs((v2 * normal).sum(1))


@pytest.fixture(scope="module")
def sphere():
    return trimesh.creation.icosphere(subdivisions=2)


BULGE_STRETCH = {"families": ["bulge", "stretch"], "pick": 0, "radius_low": 0.2, "radius_high": 0.3}


@pytest.mark.parametrize("method,options", [("patchgen", {}), ("dagen", {}), ("defects3d", BULGE_STRETCH)])
def test_mesh_displacement_is_new_minus_old_on_the_source_face(sphere, method, options):
    gen = get_generator(method, mesh_points=3000, mesh_max_edge=0.08, **options)
    out = gen.from_mesh(sphere, seed=4, key="ico")
    assert len(out.data) == 3000 and out.label == 1 and out.target.sum() > 0
    old = out.data.points.astype(np.float64) - out.data.displacement
    faces = out.meta["source_face"]
    weights, height = barycentric(old, np.asarray(sphere.vertices)[np.asarray(sphere.faces)[faces]])
    assert height.max() < 1e-5 and weights.min() > -1e-4  # the old position lies on its source face
    mask = out.target.astype(bool)
    assert not np.any(out.data.displacement[~mask])
    assert np.abs(out.data.displacement[mask]).max() > 1e-3
    assert out.meta["mesh_vertices"] > len(sphere.vertices)  # subdivided before deforming
    again = gen.from_mesh(sphere, seed=4, key="ico")
    assert again.to_shard_fields() == out.to_shard_fields()


def test_mesh_hole_reports_removed_vertices(sphere):
    out = get_generator("defects3d", families=["hole"], mesh_points=4000, mesh_max_edge=0.05).from_mesh(
        sphere, seed=1)
    assert out.meta["removed_count"] == len(out.meta["removed_indices"]) > 0
    assert set(out.meta["removed_source_indices"]) <= set(out.meta["removed_indices"])
    assert np.all(out.meta["removed_source_indices"] < len(sphere.vertices))
    assert not np.any(out.data.displacement)
    (record,) = out.provenance["edits"]
    distance = np.linalg.norm(out.data.points - np.array(record["position"]), axis=1)
    assert distance.min() > record["radius"] - 0.05  # nothing sampled inside the hole
    assert out.target[distance < record["radius"] + 0.1].mean() > 0.5  # its border is anomalous


def test_mesh_bad_input(tmp_path, sphere):
    with pytest.raises(SchemaError, match=r"flat.*faces"):
        mesh_sample(trimesh.Trimesh(vertices=np.eye(3), faces=np.zeros((0, 3), int)), key="flat")
    source = mesh_sample(sphere, key="broken")
    source.meta["faces"] = np.zeros((0, 3), np.int64)
    with pytest.raises(SchemaError, match=r"broken.*faces"):
        get_generator("patchgen")(source, seed=0)
    source.meta["faces"] = np.array([[0, 1, 10**6]])
    with pytest.raises(SchemaError, match=r"broken.*vertex"):
        get_generator("patchgen")(source, seed=0)
    cloud_file = tmp_path / "points.ply"
    trimesh.PointCloud(np.random.default_rng(0).normal(size=(50, 3))).export(cloud_file)
    with pytest.raises(MalformedFileError, match=r"points\.ply.*no faces"):
        load_mesh(cloud_file)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DatasetNotFoundError, match="no mesh files"):
        MeshFolder(empty)
    twins = tmp_path / "twins"
    twins.mkdir()
    sphere.export(twins / "a.obj")
    sphere.export(twins / "a.stl")
    with pytest.raises(ConfigError, match=r"a\.obj and .*a\.stl would both be the sample 'a'"):
        MeshFolder(twins)


def test_mesh_folder(tmp_path, sphere):
    (tmp_path / "balls").mkdir()
    sphere.export(tmp_path / "balls" / "a.obj")
    trimesh.creation.box().export(tmp_path / "b.stl")
    folder = MeshFolder(tmp_path)
    assert folder.keys == ["b", "balls/a"] and len(folder) == 2
    sample = folder[1]
    assert sample.category == "balls" and sample.key == "balls/a" and len(sample.meta["faces"]) == len(sphere.faces)
    assert folder.manifest.column("key").to_pylist() == folder.keys
    assert folder.select([1]).keys == ["balls/a"]


def test_mesh_vertices_output_as_mc4ad_trains(sphere):
    dense = trimesh.creation.icosphere(subdivisions=4)
    out = get_generator("dagen", mesh_output="vertices", mesh_max_edge=0).from_mesh(dense, seed=2)
    vertices = np.asarray(dense.vertices, np.float32)
    assert len(out.data) == len(vertices) and out.target.sum() == len(vertices) // 64
    assert np.array_equal(out.data.points - vertices[out.data.source_index], out.data.displacement)
    mask = out.target.astype(bool)
    assert np.array_equal(out.data.points[~mask], vertices[~mask])
    hole = get_generator("defects3d", families=["hole"], mesh_output="vertices", mesh_max_edge=0.1,
                         radius_low=0.3, radius_high=0.3).from_mesh(sphere, seed=0)
    assert hole.meta["removed_count"] > 0 and len(hole.data) == hole.meta["mesh_vertices"] - hole.meta["removed_count"]
