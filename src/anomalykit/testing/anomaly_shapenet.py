"""Anomaly-ShapeNet layout (PCD variant): ``pcd/<class>/{train, test, GT}``, comma-separated GT."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..loaders._pointcloud_io import write_pcd
from . import Built, register_builder
from .real3d_ad import object_surface, surface_defect, write_point_labels

DEFAULT_CLASSES: dict[str, tuple[str, ...]] = {
    "ashtray0": ("bulge0", "concavity0"),
    "vase9": ("bulge1", "crack0"),
}


@register_builder("anomaly_shapenet")
def build_anomaly_shapenet(
    root: Path,
    classes: dict[str, tuple[str, ...]] | None = None,
    new_classes: dict[str, tuple[str, ...]] | None = None,
    n_train: int = 2,
    n_positive: int = 1,
    n_points: int = 200,
    seed: int = 0,
) -> Built:
    """Write a tiny Anomaly-ShapeNet tree under ``root/pcd``.

    ``classes`` maps a class name to its anomalous test stems after ``<class>_`` (for example
    ``"bulge0"``); each class also gets ``n_train`` ``<class>_template<k>.pcd`` files and
    ``n_positive`` normal ``<class>_positive<j>.pcd`` test files. ``new_classes`` go to
    ``pcd/new/<class>``, where v2 keeps its newer classes.
    """
    rng = np.random.default_rng(seed)
    classes = DEFAULT_CLASSES if classes is None else classes
    groups = [(root / "pcd", classes), (root / "pcd" / "new", new_classes or {})]
    total = anomalous = 0
    defects: set[str] = set()
    for base_dir, group in groups:
        for name, anomalies in group.items():
            base = base_dir / name
            for folder in ("train", "test", "GT"):
                (base / folder).mkdir(parents=True, exist_ok=True)
            for k in range(n_train):
                write_pcd(base / "train" / f"{name}_template{k}.pcd", object_surface(rng, n_points),
                          encoding="binary" if k % 2 else "ascii")
                total += 1
            for j in range(n_positive):
                write_pcd(base / "test" / f"{name}_positive{j}.pcd", object_surface(rng, n_points), encoding="ascii")
                total += 1
            for stem in anomalies:
                kind = stem.rstrip("0123456789")
                points, labels = surface_defect(rng, object_surface(rng, n_points), kind, share=0.05)
                write_pcd(base / "test" / f"{name}_{stem}.pcd", points, encoding="ascii")
                write_point_labels(base / "GT" / f"{name}_{stem}.txt", points, labels, rng, delimiter=",")
                defects.add(kind)
                total += 1
                anomalous += 1
    return Built(
        root,
        {},
        {"total": total, "anomalous": anomalous, "classes": sorted([*classes, *(new_classes or {})]),
         "defects": sorted(defects)},
    )
