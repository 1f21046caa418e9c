"""Real3D-AD layout: ``<category>/{train/<id>_template.pcd, test/<id>_<type>[_cut].pcd, gt/<stem>.txt}``.

PCD files are written with open3d, in ASCII and binary (and one ``binary_compressed`` file per
category), since the encoding of the real files is not documented. Ground-truth files hold the
same points as the matching PCD, in another order, as ``x y z label`` rows.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..loaders._pointcloud_io import write_pcd
from . import Built, register_builder

DEFAULT_CATEGORIES = ("airplane", "candybar")


def object_surface(rng: np.random.Generator, n_points: int, size_mm: float = 20.0) -> np.ndarray:
    """Points on the surface of a random ellipsoid of about ``size_mm`` millimetres, float32."""
    directions = rng.normal(size=(n_points, 3))
    directions /= np.linalg.norm(directions, axis=1, keepdims=True)
    radii = size_mm / 2 * rng.uniform(0.6, 1.0, size=3)
    centre = rng.uniform(-5.0, 5.0, size=3)
    return (directions * radii + centre).astype(np.float32)


def surface_defect(
    rng: np.random.Generator, points: np.ndarray, kind: str, share: float = 0.03
) -> tuple[np.ndarray, np.ndarray]:
    """Push a patch of ``share`` of the points outwards (``bulge``) or inwards (any other kind).

    Returns the deformed points and one 0/1 label per point (1 for the moved patch).
    """
    n = points.shape[0]
    k = max(1, int(round(share * n)))
    seed_point = points[rng.integers(n)]
    distances = np.linalg.norm(points - seed_point, axis=1)
    patch = np.argsort(distances, kind="stable")[:k]
    centre = points.mean(axis=0)
    outward = points[patch] - centre
    outward /= np.maximum(np.linalg.norm(outward, axis=1, keepdims=True), 1e-9)
    radius = max(float(distances[patch].max()), 1e-6)
    falloff = 1.0 - distances[patch] / (radius * 1.01)
    depth = 0.15 * radius * (1.0 if kind == "bulge" else -1.0)
    moved = points.copy()
    moved[patch] += (outward * (depth * falloff)[:, None]).astype(np.float32)
    labels = np.zeros(n, np.uint8)
    labels[patch] = 1
    return moved, labels


def write_point_labels(path: Path, points: np.ndarray, labels: np.ndarray, rng: np.random.Generator,
                       delimiter: str = " ", float_labels: bool = False) -> None:
    """Write ``x y z label`` rows in a shuffled order (the real files are not in PCD order)."""
    order = rng.permutation(points.shape[0])
    label_text = [f"{float(v):.6f}" if float_labels else str(int(v)) for v in labels[order]]
    lines = [
        delimiter.join((f"{x:.6f}", f"{y:.6f}", f"{z:.6f}", lab))
        for (x, y, z), lab in zip(points[order].astype(np.float64), label_text)
    ]
    path.write_text("\n".join(lines) + "\n")


@register_builder("real3d_ad")
def build_real3d_ad(
    root: Path,
    categories: tuple[str, ...] = DEFAULT_CATEGORIES,
    n_train: int = 2,
    prototype: bool = True,
    n_points: int = 300,
    seed: int = 0,
) -> Built:
    """Write a tiny Real3D-AD tree.

    Per category: ``n_train`` ``<id>_template.pcd`` files (plus one ``<id>_prototype.pcd``, the
    README's name, when ``prototype``), and the test files ``<id>_good.pcd``,
    ``<id>_good_cut.pcd``, ``<id>_bulge.pcd``, ``<id>_sink_cut.pcd`` with ``gt/<id>_bulge.txt``
    and ``gt/<id>_sink_cut.txt``. Scan ids are not contiguous, as in the real data.
    """
    rng = np.random.default_rng(seed)
    root = Path(root)
    total = anomalous = 0
    per_category: dict[str, dict[str, int]] = {}
    for c_index, category in enumerate(categories):
        base = root / category
        for folder in ("train", "test", "gt"):
            (base / folder).mkdir(parents=True, exist_ok=True)
        scan = 3 + 17 * c_index
        train_names = [f"{scan + 2 * i}_template.pcd" for i in range(n_train)]
        if prototype:
            train_names.append(f"{scan + 2 * n_train}_prototype.pcd")
        for i, name in enumerate(train_names):
            encoding = "ascii" if i % 2 == 0 else "binary"
            write_pcd(base / "train" / name, object_surface(rng, 2 * n_points), encoding=encoding)
        scan += 2 * len(train_names) + 5
        tests = [(f"{scan}_good", None), (f"{scan + 1}_good_cut", None),
                 (f"{scan + 3}_bulge", "bulge"), (f"{scan + 4}_sink_cut", "sink")]
        encodings = ("binary", "binary_compressed", "ascii", "binary")
        for (stem, kind), encoding in zip(tests, encodings):
            points = object_surface(rng, n_points)
            if kind is not None:
                points, labels = surface_defect(rng, points, kind, share=float(rng.uniform(0.01, 0.05)))
                write_point_labels(base / "gt" / f"{stem}.txt", points, labels, rng,
                                   float_labels=c_index % 2 == 1)
                anomalous += 1
            write_pcd(base / "test" / f"{stem}.pcd", points, encoding=encoding)
        per_category[category] = {"train": len(train_names), "test/good": 2, "test/defect": 2}
        total += len(train_names) + len(tests)
    return Built(
        root,
        {},
        {"total": total, "anomalous": anomalous, "categories": sorted(categories), "per_category": per_category,
         "n_points": n_points},
    )
