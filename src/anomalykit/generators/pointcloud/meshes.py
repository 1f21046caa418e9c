"""Meshes as sources of the point-cloud defect generators.

A mesh source is a ``PointCloud`` sample of the mesh vertices (with vertex normals) whose
``meta["faces"]`` holds the F x 3 triangles; the generators deform the vertices, then sample
points on the deformed surface. ``MeshFolder`` reads a folder of ``.obj/.ply/.stl/.off`` files
lazily (it pickles to worker processes as a list of paths).

>>> import trimesh
>>> from anomalykit.generators import get_generator
>>> from anomalykit.generators.pointcloud.meshes import mesh_sample
>>> source = mesh_sample(trimesh.creation.icosphere(3), key="sphere")
>>> out = get_generator("defects3d", families=["bulge"], mesh_points=4096)(source, seed=0)
>>> len(out.data), out.target.dtype.name
(4096, 'uint8')
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ...errors import ConfigError, DatasetNotFoundError, MalformedFileError, SchemaError
from ...schema import PointCloud, Sample

MESH_SUFFIXES = (".obj", ".ply", ".stl", ".off")


def load_mesh(path: str | Path):
    """Read one triangle mesh with trimesh; a file without faces is an error naming it."""
    import trimesh

    path = Path(path)
    try:
        mesh = trimesh.load(path, force="mesh", process=False)
    except Exception as exc:  # noqa: BLE001 - trimesh raises many types for bad files
        raise MalformedFileError(path, f"cannot be read as a mesh ({type(exc).__name__}: {exc})") from exc
    faces = getattr(mesh, "faces", None)
    if faces is None or len(faces) == 0:
        raise MalformedFileError(path, "the mesh has no faces (is it a point cloud?); the `faces` of a mesh "
                                       "source must hold at least one triangle")
    return mesh


def mesh_sample(mesh: Any, key: str, *, dataset: str = "meshes", category: str | None = None,
                path: str | None = None) -> Sample:
    """A normal source sample from a ``trimesh.Trimesh``: vertices, vertex normals, faces."""
    faces = np.asarray(mesh.faces, dtype=np.int64)
    if faces.size == 0:
        raise SchemaError(f"mesh {key}: the mesh has no faces; the `faces` of a mesh source must hold triangles")
    vertices = np.asarray(mesh.vertices, dtype=np.float32)
    normals = np.asarray(mesh.vertex_normals, dtype=np.float32)
    meta: dict[str, Any] = {"faces": faces}
    if path is not None:
        meta["path"] = str(path)
    return Sample(key=key, dataset=dataset, split="train", label=0, data=PointCloud(vertices, normals=normals),
                  category=category, target=np.zeros(len(vertices), np.uint8), meta=meta)


class MeshFolder(Sequence[Sample]):
    """The meshes under ``folder`` (recursively, sorted), as normal source samples keyed by their
    relative path without suffix; the category is the first folder level when there is one."""

    name = "meshes"

    def __init__(self, folder: str | Path, paths: list[Path] | None = None) -> None:
        self.folder = Path(folder)
        if paths is None:
            if not self.folder.is_dir():
                raise DatasetNotFoundError(f"mesh folder not found at {self.folder}")
            paths = sorted(p for p in self.folder.rglob("*") if p.is_file() and p.suffix.lower() in MESH_SUFFIXES)
            if not paths:
                raise DatasetNotFoundError(f"no mesh files ({', '.join(MESH_SUFFIXES)}) under {self.folder}")
        self.paths = list(paths)
        seen: dict[str, Path] = {}
        for path, key in zip(self.paths, self.keys):
            if key in seen:
                raise ConfigError(f"{seen[key]} and {path} would both be the sample {key!r} (keys are paths "
                                  f"without suffix); rename or remove one of them")
            seen[key] = path

    @property
    def keys(self) -> list[str]:
        return [p.relative_to(self.folder).with_suffix("").as_posix() for p in self.paths]

    @property
    def manifest(self):
        """A table of keys and paths, as datasets have (the corpus runner reads its keys)."""
        import pyarrow as pa

        return pa.table({"key": self.keys, "path": [str(p) for p in self.paths]})

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> Sample:  # type: ignore[override]
        path = self.paths[index]
        relative = path.relative_to(self.folder)
        category = relative.parts[0] if len(relative.parts) > 1 else None
        return mesh_sample(load_mesh(path), relative.with_suffix("").as_posix(), category=category, path=str(path))

    def select(self, indices: Any) -> MeshFolder:
        return MeshFolder(self.folder, [self.paths[i] for i in indices])

    def __repr__(self) -> str:
        return f"MeshFolder({str(self.folder)!r}, meshes={len(self)})"
