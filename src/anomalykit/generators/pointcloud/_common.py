"""Machinery shared by the point-cloud defect generators.

A generator deforms a *workspace*: the source points in float64, an ``alive`` flag per point
(removed points stay in the arrays but are flagged), the accumulated anomaly mask and the object
frame (centroid, unit-ball radius, bounding box). Neighbourhoods come from a KD-tree over the
live points (``scipy.spatial.cKDTree``), per-point normals from open3d on the sub-cloud around
the points that need them. The same deformation code runs on point clouds and on mesh vertices;
for a mesh, points are then sampled on the deformed surface (``mesh_to_points``).

With ``mesh_output="vertices"`` the deformed (subdivided) vertices themselves are the output.

The output is a ``PointCloud`` sample whose ``displacement`` is exactly ``new - old`` in float32
(points outside the mask keep their bytes); the target marks the points whose float32 position
changed and, after a removal, the border of the gap, with ``PointCloud.source_index`` (cloud input: the
source point of every output point) or ``meta["source_face"]`` (mesh input: the source face the
point was sampled on), and ``meta["removed_indices"]`` / ``meta["removed_count"]`` (for a mesh:
indices of the vertices of the subdivided mesh, whose first ``source_vertices`` are the source's;
``meta["removed_source_indices"]`` keeps only those).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, ClassVar

import numpy as np

from ...errors import ConfigError, SchemaError
from ...schema import Modality, PointCloud, Sample
from ..base import Generator, GeneratorConfig, param

#: neighbours used for a normal estimate (open3d ``KDTreeSearchParamKNN``)
NORMAL_NEIGHBOURS = 16


@dataclass
class PointCloudDefectConfig(GeneratorConfig):
    """Options shared by every point-cloud defect generator."""

    units: str = param("object", choices=("object", "raw"),
                       doc="object: lengths are fractions of the object size; raw: coordinate units")
    mesh_points: int = param(16384, low=1, doc="points sampled on the deformed surface of a mesh source")
    mesh_output: str = param("points", choices=("points", "vertices"),
                             doc="points: sample mesh_points on the deformed surface; vertices: output the "
                                 "deformed vertices themselves (as MC4AD trains on template vertices)")
    mesh_max_edge: float = param(0.02, low=0.0,
                                 doc="mesh sources are subdivided until no edge is longer than this fraction "
                                     "of the object radius before deforming (0: never)")


# --------------------------------------------------------------------------------------------
# input checks


def check_points(points: np.ndarray, key: str, what: str = "points") -> None:
    """Reject NaN/infinite coordinates, naming the sample and the first bad point."""
    if np.isfinite(np.sum(points, dtype=np.float64)):  # a float64 sum of float32 values cannot overflow
        return
    finite = np.isfinite(points).all(axis=1)
    if not finite.all():
        bad = np.flatnonzero(~finite)
        raise SchemaError(
            f"sample {key}: {bad.size} of {len(points)} {what} have NaN or infinite coordinates "
            f"(first at index {int(bad[0])}: {points[bad[0]].tolist()}); remove them before generating defects"
        )


def too_small(generator: str, key: str, count: int, parameter: str, value: Any, needed: str) -> ConfigError:
    return ConfigError(
        f"{generator}: sample {key} has {count} points, too few for {parameter}={value!r} ({needed}); "
        f"use a denser cloud or change {parameter}"
    )


# --------------------------------------------------------------------------------------------
# the workspace


class Workspace:
    """Mutable state of one generation: points, live flags, mask, and neighbourhood queries."""

    def __init__(self, points: np.ndarray, normals: np.ndarray | None, key: str, units: str) -> None:
        self.key = key
        self.original = np.asarray(points, dtype=np.float64)
        self.points = self.original.copy()
        self.given_normals = None if normals is None else np.asarray(normals, dtype=np.float64)
        self.alive = np.ones(len(points), dtype=bool)
        self.mask = np.zeros(len(points), dtype=bool)
        self.units = units
        self._tree = None
        self._tree_index: np.ndarray | None = None
        self.edits: list[dict[str, Any]] = []

    # object frame, from the source points
    @cached_property
    def centroid(self) -> np.ndarray:
        return self.original.mean(axis=0)

    @cached_property
    def radius(self) -> float:
        """Unit-ball radius: the largest distance from the centroid (1 in raw units)."""
        if self.units == "raw":
            return 1.0
        return float(np.sqrt(((self.original - self.centroid) ** 2).sum(axis=1).max())) or 1.0

    @cached_property
    def bbox(self) -> tuple[np.ndarray, np.ndarray]:
        return self.original.min(axis=0), self.original.max(axis=0)

    @property
    def bbox_center(self) -> np.ndarray:
        low, high = self.bbox
        return (low + high) / 2

    @property
    def bbox_half(self) -> float:
        """Half of the largest bounding-box extent (the ``shape_bbox`` normaliser; 1 in raw units)."""
        if self.units == "raw":
            return 1.0
        low, high = self.bbox
        return float((high - low).max() / 2) or 1.0

    # live points and the KD-tree over them
    @property
    def live(self) -> np.ndarray:
        """Indices of the live points, ascending."""
        if self._tree_index is None:
            self._tree_index = np.flatnonzero(self.alive)
        return self._tree_index

    @property
    def tree(self):
        from scipy.spatial import cKDTree

        if self._tree is None:
            self._tree = cKDTree(self.points[self.live], balanced_tree=False, compact_nodes=False)
        return self._tree

    def ball(self, centre: np.ndarray, radius: float) -> np.ndarray:
        """Indices (into all points, ascending) of the live points within ``radius`` of ``centre``."""
        local = np.asarray(self.tree.query_ball_point(centre, radius), dtype=np.int64)
        return np.sort(self.live[local])

    def knn(self, centre: np.ndarray, k: int) -> np.ndarray:
        """Indices of the ``k`` live points nearest to ``centre``, nearest first."""
        k = min(k, len(self.live))
        _, local = self.tree.query(centre, k=k)
        return self.live[np.atleast_1d(local)]

    # normals
    def normals_at(self, indices: np.ndarray) -> np.ndarray:
        """Unit normals at ``indices``: the source's own normals when it has them, else open3d
        estimates on the sub-cloud of those points' neighbours, oriented outwards (away from the
        centroid, then consistently with the patch's mean direction)."""
        indices = np.asarray(indices, dtype=np.int64)
        if self.given_normals is not None and not self._moved(indices):
            normals = self.given_normals[indices]
            norms = np.linalg.norm(normals, axis=1, keepdims=True)
            if np.all(norms > 0):
                return normals / norms
        return self.estimate_normals(indices)

    def _moved(self, indices: np.ndarray) -> bool:
        return bool(np.any(self.points[indices] != self.original[indices]))

    def estimate_normals(self, indices: np.ndarray) -> np.ndarray:
        import open3d as o3d

        k = min(NORMAL_NEIGHBOURS, len(self.live))
        if k < 3:
            raise too_small("normals", self.key, len(self.live), "points", len(self.live), "a normal needs 3 neighbours")
        _, local = self.tree.query(self.points[indices], k=k)
        neighbourhood = np.unique(local)
        cloud = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(self.points[self.live[neighbourhood]]))
        cloud.estimate_normals(o3d.geometry.KDTreeSearchParamKNN(k))
        position = np.searchsorted(neighbourhood, np.searchsorted(self.live, indices))
        normals = np.asarray(cloud.normals)[position]
        outward = np.einsum("ij,ij->i", normals, self.points[indices] - self.centroid)
        normals = np.where((outward < 0)[:, None], -normals, normals)
        mean = normals.sum(axis=0)
        if np.linalg.norm(mean) > 0:
            normals = np.where((normals @ mean < 0)[:, None], -normals, normals)
        return normals

    def patch_normal(self, indices: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
        """One outward unit normal for a patch: the least-variance axis of its (weighted) points."""
        pts = self.points[indices]
        w = np.ones(len(pts)) if weights is None else np.asarray(weights, dtype=np.float64) + 1e-12
        mean = (pts * w[:, None]).sum(axis=0) / w.sum()
        centred = (pts - mean) * np.sqrt(w)[:, None]
        _, _, vt = np.linalg.svd(centred, full_matrices=False)
        normal = vt[-1]
        if self.given_normals is not None:
            reference = self.given_normals[indices].sum(axis=0)
        else:
            reference = mean - self.centroid
        if normal @ reference < 0:
            normal = -normal
        return normal / np.linalg.norm(normal)

    # edits
    def move(self, indices: np.ndarray, delta: np.ndarray) -> None:
        """Displace live points ``indices`` by ``delta`` and mark anomalous those whose float32
        position (the output's precision) changed: a profile that falls to zero at the rim of
        its region leaves the rim where it was, unlabelled."""
        indices = np.asarray(indices, dtype=np.int64)
        self.points[indices] += delta
        moved = np.any(self.points[indices].astype(np.float32) != self.original[indices].astype(np.float32), axis=1)
        self.mask[indices[moved]] = True
        self._tree = None

    def remove(self, indices: np.ndarray, rim: float) -> np.ndarray:
        """Remove live points ``indices``; the live points within ``rim`` of them become anomalous
        (the border of the gap is what a detector can see). Returns the rim indices."""
        from scipy.spatial import cKDTree

        indices = np.unique(np.asarray(indices, dtype=np.int64))
        if indices.size == 0:
            return indices
        removed_points = self.points[indices]
        self.alive[indices] = False
        self.mask[indices] = True
        self._tree = None
        self._tree_index = None
        low, high = removed_points.min(axis=0) - rim, removed_points.max(axis=0) + rim
        live = self.live
        near = live[np.all((self.points[live] >= low) & (self.points[live] <= high), axis=1)]
        if near.size == 0:
            return near
        distance, _ = cKDTree(removed_points).query(self.points[near], k=1, distance_upper_bound=rim)
        border = near[np.isfinite(distance)]
        self.mask[border] = True
        return border

    def spacing(self, indices: np.ndarray) -> float:
        """Typical point spacing around ``indices`` (at most 256 of them), from the distance to the
        8th neighbour: on a surface of density ρ it is sqrt(8 / (π ρ)), and the spacing 1/sqrt(ρ)."""
        k = min(9, len(self.live))
        if k < 2:
            return 0.0
        sample = self.points[indices[:: max(1, len(indices) // 256)]]
        distance, _ = self.tree.query(sample, k=k)
        return float(np.median(distance[:, -1]) * np.sqrt(np.pi / (k - 1)))

    def record(self, family: str, **params: Any) -> None:
        self.edits.append({"family": family, **params})


# --------------------------------------------------------------------------------------------
# geometry helpers


def cosine_falloff(distance: np.ndarray, radius: float) -> np.ndarray:
    """½(1 + cos(π ρ / R)) inside the radius, 0 outside: a smooth bump profile."""
    ratio = np.clip(distance / radius, 0.0, 1.0)
    return 0.5 * (1.0 + np.cos(np.pi * ratio))


def random_unit(rng: np.random.Generator) -> np.ndarray:
    vector = rng.normal(size=3)
    return vector / np.linalg.norm(vector)


def random_tangent(rng: np.random.Generator, normal: np.ndarray) -> np.ndarray:
    """A random unit vector perpendicular to ``normal``."""
    vector = random_unit(rng)
    vector -= (vector @ normal) * normal
    norm = np.linalg.norm(vector)
    if norm < 1e-9:
        return random_tangent(rng, normal)
    return vector / norm


def rotate_about_axis(points: np.ndarray, origin: np.ndarray, axis: np.ndarray, angles: np.ndarray) -> np.ndarray:
    """Rodrigues' rotation of each point about the line (origin, axis) by its own angle."""
    v = points - origin
    cos, sin = np.cos(angles)[:, None], np.sin(angles)[:, None]
    cross = np.cross(axis, v)
    dot = (v @ axis)[:, None]
    return origin + v * cos + cross * sin + axis[None, :] * dot * (1 - cos)


# --------------------------------------------------------------------------------------------
# meshes


def is_mesh_source(source: Sample) -> bool:
    return "faces" in source.meta


def mesh_faces(source: Sample, generator: str) -> np.ndarray:
    faces = np.asarray(source.meta["faces"])
    if faces.size == 0:
        raise SchemaError(f"{generator}: mesh sample {source.key} has no faces (meta['faces'] is empty); "
                          f"a mesh needs triangles to sample points on")
    if faces.ndim != 2 or faces.shape[1] != 3 or not np.issubdtype(faces.dtype, np.integer):
        raise SchemaError(f"{generator}: mesh sample {source.key}: meta['faces'] must be an F x 3 integer array, "
                          f"got shape {faces.shape} and dtype {faces.dtype}")
    n = len(source.data)
    if faces.min() < 0 or faces.max() >= n:
        raise SchemaError(f"{generator}: mesh sample {source.key}: meta['faces'] refers to vertex {int(faces.max())}, "
                          f"but the mesh has {n} vertices")
    return faces.astype(np.int64)


def subdivide(vertices: np.ndarray, faces: np.ndarray, max_edge: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Split triangles until no edge is longer than ``max_edge`` (trimesh), so that small defects
    still move vertices. Returns vertices, faces and the source face of every face."""
    import trimesh

    origin = np.arange(len(faces))
    if max_edge <= 0:
        return vertices, faces, origin
    edges = vertices[faces[:, [1, 2, 0]]] - vertices[faces]
    if np.sqrt((edges**2).sum(axis=2)).max() <= max_edge:
        return vertices, faces, origin
    vertices, faces, origin = trimesh.remesh.subdivide_to_size(vertices, faces, max_edge=max_edge, max_iter=12,
                                                               return_index=True)
    return np.asarray(vertices, np.float64), np.asarray(faces, np.int64), np.asarray(origin, np.int64)


def vertex_normals(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    import trimesh

    mesh = trimesh.Trimesh(vertices, faces, process=False)
    return np.asarray(mesh.vertex_normals, dtype=np.float64)


@dataclass
class MeshPoints:
    points: np.ndarray  # float32, on the deformed surface
    displacement: np.ndarray  # float32, new - old at the same barycentric coordinates
    normals: np.ndarray  # float32, face normals of the deformed surface
    target: np.ndarray  # uint8
    face: np.ndarray  # int64, source face of each point


def mesh_to_points(original: np.ndarray, deformed: np.ndarray, faces: np.ndarray, face_alive: np.ndarray,
                   vertex_mask: np.ndarray, count: int, rng: np.random.Generator) -> MeshPoints:
    """Sample ``count`` points uniformly by area on the live faces of the deformed mesh.

    Each point keeps its barycentric coordinates on the original face, so its displacement is
    the deformed minus the original position; a point is anomalous when any vertex of its face is.
    """
    live_faces = np.flatnonzero(face_alive)
    tri = deformed[faces[live_faces]]
    areas = 0.5 * np.linalg.norm(np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]), axis=1)
    cumulative = np.cumsum(areas)
    if cumulative[-1] <= 0:
        raise SchemaError("the mesh has zero surface area after deformation")
    pick = np.searchsorted(cumulative, rng.random(count) * cumulative[-1], side="right")
    pick = np.minimum(pick, len(live_faces) - 1)
    uv = rng.random((count, 2))
    flip = uv.sum(axis=1) > 1
    uv[flip] = 1 - uv[flip]
    weights = np.column_stack([1 - uv[:, 0] - uv[:, 1], uv[:, 0], uv[:, 1]])
    face = live_faces[pick]
    corners = faces[face]
    new = np.einsum("nk,nkd->nd", weights, deformed[corners]).astype(np.float32)
    old = np.einsum("nk,nkd->nd", weights, original[corners]).astype(np.float32)
    target = vertex_mask[corners].any(axis=1)
    # float32 bytes of the points on untouched faces are identical before and after
    new[~target] = old[~target]
    normal = np.cross(tri[pick, 1] - tri[pick, 0], tri[pick, 2] - tri[pick, 0])
    normal /= np.maximum(np.linalg.norm(normal, axis=1, keepdims=True), 1e-30)
    return MeshPoints(new, new - old, normal.astype(np.float32), target.astype(np.uint8), face)


# --------------------------------------------------------------------------------------------
# the generator base


class PointCloudDefectGenerator(Generator):
    """Base of the point-cloud defect generators: input checks, mesh handling, the output sample.

    Subclasses implement ``deform(work, rng) -> defect name``, editing the workspace.
    """

    modality: ClassVar[Modality] = Modality.POINTCLOUD
    config_class: ClassVar[type[GeneratorConfig]] = PointCloudDefectConfig

    def deform(self, work: Workspace, rng: np.random.Generator) -> str:  # pragma: no cover - abstract
        raise NotImplementedError

    def from_mesh(self, mesh: Any, *, seed: int, key: str = "mesh") -> Sample:
        """Deform a ``trimesh.Trimesh`` and sample points on it (see ``meshes.mesh_sample``)."""
        from .meshes import mesh_sample

        return self(mesh_sample(mesh, key), seed=seed)

    def generate(self, source: Sample | None, rng: np.random.Generator, seed: int) -> Sample:
        assert source is not None
        cloud: PointCloud = source.data  # type: ignore[assignment]
        if is_mesh_source(source):
            return self._generate_mesh(source, rng, seed)
        check_points(cloud.points, source.key)
        work = Workspace(cloud.points, cloud.normals, source.key, self.config.units)
        defect = self.deform(work, rng)
        return self._cloud_output(source, seed, work, cloud.points, cloud.normals, cloud.colors, defect,
                                  {"source_points": len(cloud)})

    def _cloud_output(self, source: Sample, seed: int, work: Workspace, points: np.ndarray,
                      normals: np.ndarray | None, colors: np.ndarray | None, defect: str,
                      meta: dict[str, Any]) -> Sample:
        """The live points of the workspace as the output cloud; ``points`` are the float32
        positions before deforming (untouched points keep exactly these bytes)."""
        keep = work.live
        everything = len(keep) == len(points)
        old = points if everything else points[keep]
        touched = np.flatnonzero(work.mask[keep])
        new = old.copy()
        new[touched] = work.points[keep[touched]].astype(np.float32)
        displacement = np.zeros_like(old)
        displacement[touched] = new[touched] - old[touched]
        if normals is not None:
            normals = normals.copy() if everything else normals[keep]
            moved = touched[np.any(displacement[touched] != 0, axis=1)]
            if moved.size:
                normals[moved] = work.estimate_normals(keep[moved]).astype(np.float32)
        if colors is not None and not everything:
            colors = colors[keep]
        removed = np.flatnonzero(~work.alive)
        data = PointCloud(new, normals=normals, colors=colors, displacement=displacement, source_index=keep)
        meta = {"removed_indices": removed.astype(np.int64),
                "removed_count": int(removed.size), **meta}
        return self._sample(source, seed, data, work.mask[keep], defect, meta, work)

    def _generate_mesh(self, source: Sample, rng: np.random.Generator, seed: int) -> Sample:
        faces = mesh_faces(source, self.name)
        vertices = np.asarray(source.data.points, dtype=np.float64)
        check_points(vertices, source.key, "mesh vertices")
        source_faces = len(faces)
        scale = Workspace(vertices, None, source.key, self.config.units).radius
        vertices, faces, face_origin = subdivide(vertices, faces, self.config.mesh_max_edge * scale)
        normals = vertex_normals(vertices, faces)
        work = Workspace(vertices, normals, source.key, self.config.units)
        defect = self.deform(work, rng)
        if self.config.mesh_output == "vertices":
            meta = {"source_vertices": len(source.data), "mesh_vertices": len(vertices), "mesh_faces": len(faces),
                    "source_faces": source_faces}
            return self._cloud_output(source, seed, work, vertices.astype(np.float32),
                                      normals.astype(np.float32), None, defect, meta)
        face_alive = work.alive[faces].all(axis=1)
        if not face_alive.any():
            raise ConfigError(f"{self.name}: every face of mesh sample {source.key} was removed; "
                              f"choose smaller removal parameters")
        sampled = mesh_to_points(work.original, work.points, faces, face_alive, work.mask,
                                 self.config.mesh_points, rng)
        removed = np.flatnonzero(~work.alive)
        data = PointCloud(sampled.points, normals=sampled.normals, displacement=sampled.displacement)
        # subdivision keeps the source vertices first, so indices below source_vertices are the source's
        source_vertices = len(source.data)
        meta = {"source_face": face_origin[sampled.face].astype(np.int64), "removed_indices": removed.astype(np.int64),
                "removed_count": int(removed.size),
                "removed_source_indices": removed[removed < source_vertices].astype(np.int64),
                "mesh_vertices": len(vertices), "mesh_faces": len(faces), "source_vertices": source_vertices,
                "source_faces": source_faces}
        if "path" in source.meta:
            meta["path"] = source.meta["path"]
        return self._sample(source, seed, data, sampled.target, defect, meta, work)

    def _sample(self, source: Sample, seed: int, data: PointCloud, target: np.ndarray, defect: str,
                meta: dict[str, Any], work: Workspace) -> Sample:
        return Sample(
            key=f"{source.key}/{self.name}-{seed}",  # one key per (source, seed), as the other generators
            dataset=f"{self.name}-corpus",
            split=source.split,
            label=1,
            data=data,
            category=source.category,
            defect=defect,
            target=target.astype(np.uint8),
            meta=meta,
            provenance=self.provenance(seed, source, edits=work.edits),
        )


# --------------------------------------------------------------------------------------------
# example sources for the registry sweep and the tests


def example_cloud(n: int = 2048, seed: int = 0, key: str = "example/sphere") -> Sample:
    """A slightly squashed sphere of ``n`` points (deterministic), as a normal training sample."""
    rng = np.random.default_rng(seed)
    points = rng.normal(size=(n, 3))
    points /= np.linalg.norm(points, axis=1, keepdims=True)
    points *= np.array([1.0, 0.8, 0.6])
    return Sample(key=key, dataset="example", split="train", label=0, data=PointCloud(points.astype(np.float32)),
                  category="sphere", target=np.zeros(n, np.uint8))


@dataclass
class Range:
    """A low/high pair drawn uniformly."""

    low: float
    high: float
    name: str = field(default="")

    def draw(self, rng: np.random.Generator) -> float:
        return float(rng.uniform(self.low, self.high)) if self.high > self.low else float(self.low)


def check_range(config: GeneratorConfig, low_name: str, high_name: str) -> Range:
    low, high = getattr(config, low_name), getattr(config, high_name)
    if low > high:
        raise ConfigError(f"{type(config).__name__}: {low_name}={low!r} is above {high_name}={high!r}")
    return Range(low, high, low_name[: -len("_low")] if low_name.endswith("_low") else low_name)
