"""Point-cloud defect corpora: a generator run over the normal training clouds of a dataset (or a
folder of meshes) into shards, a dataset card and a PNG preview.

>>> from anomalykit.generators.pointcloud.corpus import generate_pointcloud_corpus
>>> generate_pointcloud_corpus("patchgen", dataset="real3d_ad", root="data/Real3D-AD",
...                            out_dir="out/patchgen", per_source=8, workers=2)   # doctest: +SKIP
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ...errors import ConfigError
from ...schema import Modality
from ...shards import ShardManifest
from ..base import get_generator

PREVIEW_NAME = "previews.png"


def pointcloud_sources(dataset: str | None = None, root: str | Path | None = None, meshes: str | Path | None = None,
                       load_options: dict[str, Any] | None = None, limit: int | None = None) -> Any:
    """The normal training samples of a registered point-cloud dataset, or a ``MeshFolder``."""
    if (dataset is None) == (meshes is None):
        raise ConfigError("give exactly one source: a point-cloud dataset (--from NAME --root DIR) or --meshes FOLDER")
    if meshes is not None:
        from .meshes import MeshFolder

        if root is not None or load_options:
            raise ConfigError("--root/--load-option: apply to a dataset (--from NAME), not to --meshes")

        sources: Any = MeshFolder(meshes)
    else:
        import anomalykit

        if root is None:
            raise ConfigError(f"--root: the folder holding {dataset} is required with --from {dataset}")
        loaded = anomalykit.load(dataset, root, **(load_options or {}))
        if loaded.modality != Modality.POINTCLOUD:
            raise ConfigError(f"--from: {dataset} holds {loaded.modality.value} samples, not point clouds")
        sources = loaded.filter(split="train", label=0)
        if len(sources) == 0:
            raise ConfigError(f"--from: {dataset} under {root} has no normal training samples to deform")
    if limit is not None:
        if limit < 1:
            raise ConfigError(f"limit must be >= 1, got {limit}")
        sources = sources.select(range(min(limit, len(sources))))
    return sources


def generate_pointcloud_corpus(
    method: str,
    *,
    out_dir: str | Path,
    dataset: str | None = None,
    root: str | Path | None = None,
    meshes: str | Path | None = None,
    options: dict[str, Any] | None = None,
    load_options: dict[str, Any] | None = None,
    per_source: int = 1,
    seed: int = 0,
    workers: int = 1,
    limit: int | None = None,
    previews: int = 4,
    progress: bool = False,
) -> ShardManifest:
    """Run ``method`` (``patchgen``, ``dagen``, ``defects3d``) over the sources into ``out_dir``:
    shards, manifest, README card, and ``previews.png`` with the first ``previews`` samples.
    Called again with the same settings it resumes; other settings in the same folder are refused."""
    from ...corpus import generate_corpus
    from ...corpus import record_settings, run_settings
    from ...shards import first_samples

    if workers < 1:
        raise ConfigError(f"workers must be >= 1, got {workers}")
    if per_source < 1:
        raise ConfigError(f"per_source must be >= 1, got {per_source}")
    if previews < 0:
        raise ConfigError(f"previews must be >= 0 (samples drawn), got {previews}")
    generator = get_generator(method, **(options or {}))
    if generator.modality != Modality.POINTCLOUD:
        raise ConfigError(f"METHOD: {method} generates {generator.modality.value} samples, not point clouds")
    sources = pointcloud_sources(dataset, root, meshes, load_options, limit)
    record_settings(out_dir, run_settings(
        generator, dataset=dataset, meshes=str(Path(meshes).expanduser().resolve()) if meshes is not None else None,
        load_options=load_options or {}, limit=limit, per_source=per_source, seed=seed))
    manifest = generate_corpus(generator, sources, out_dir=out_dir, per_source=per_source, seed=seed, workers=workers,
                               progress=progress)
    if previews and manifest.num_samples:
        from .preview import write_preview

        write_preview(first_samples(out_dir, previews), Path(out_dir) / PREVIEW_NAME)
    return manifest
