"""PCD loads per second through the Real3D-AD loader against open3d reading the same files.

The limit is ``open3d.io.read_point_cloud(path)`` followed by ``np.asarray(cloud.points)`` (a
view, no copy): the file read alone. The loader does that too, plus the header check, the
float32 conversion, the per-point target and the ``Sample``. Files are written once in a
Real3D-AD tree with realistic sizes (100k to 400k points); then, file by file, both readers run
back to back in alternating order, so that the noise of a shared machine hits both alike, and
each file's time is its median over the rounds.

A second section times the ground-truth point lists of anomalous samples (whose points come
from ``gt/*.txt``): the loader's reader (polars CSV) against ``numpy.loadtxt``, the reader of
the official code, as the peer.

    python benchmarks/bench_pcd.py                       # binary and ASCII, 8 clouds
    python benchmarks/bench_pcd.py --encodings binary --files 4 --rounds 3
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np


def write_tree(root: Path, encoding: str, sizes: list[int], gt_files: int, seed: int = 0) -> None:
    """A Real3D-AD category with one normal test cloud per size and ``gt_files`` anomalous ones."""
    from rich.progress import track

    from anomalykit.loaders._pointcloud_io import write_pcd
    from anomalykit.testing.real3d_ad import object_surface, surface_defect, write_point_labels

    rng = np.random.default_rng(seed)
    for folder in ("train", "test", "gt"):
        (root / "airplane" / folder).mkdir(parents=True, exist_ok=True)
    for i, n in enumerate(track(sizes, description=f"writing {encoding} PCD files")):
        write_pcd(root / "airplane/test" / f"{100 + i}_good.pcd", object_surface(rng, n), encoding=encoding)
    for i in range(gt_files):
        points, labels = surface_defect(rng, object_surface(rng, sizes[i % len(sizes)] // 2), "bulge")
        stem = f"{200 + i}_bulge"
        write_pcd(root / "airplane/test" / f"{stem}.pcd", points, encoding=encoding)
        write_point_labels(root / "airplane/gt" / f"{stem}.txt", points, labels, rng)


def paired_rates(fn_a, items_a, fn_b, items_b, rounds: int) -> tuple[float, float]:
    """Loads/s of ``fn_a`` over ``items_a`` and of ``fn_b`` over ``items_b`` (the same files)."""
    fn_a(items_a[0]), fn_b(items_b[0])  # warm the page cache and imports
    times_a = [[0.0] * rounds for _ in items_a]
    times_b = [[0.0] * rounds for _ in items_b]
    for r in range(rounds):
        for i, (a, b) in enumerate(zip(items_a, items_b)):
            order = ((fn_a, a, times_a), (fn_b, b, times_b))
            for fn, item, times in order if (r + i) % 2 == 0 else order[::-1]:
                start = time.perf_counter()
                fn(item)
                times[i][r] = time.perf_counter() - start
    total_a = sum(statistics.median(t) for t in times_a)
    total_b = sum(statistics.median(t) for t in times_b)
    return len(items_a) / total_a, len(items_b) / total_b


def report(name_a: str, rate_a: float, name_b: str, rate_b: float, ratio_name: str, target: str = "") -> None:
    print(f"  {name_a:<36} {rate_a:9.2f} loads/s")
    print(f"  {name_b:<36} {rate_b:9.2f} loads/s")
    print(f"  ratio {ratio_name}: {rate_a / rate_b:.3f}{target}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--encodings", nargs="+", default=["binary", "ascii"],
                        choices=["binary", "ascii", "binary_compressed"])
    parser.add_argument("--files", type=int, default=8, help="number of clouds (sizes spread over 100k-400k points)")
    parser.add_argument("--gt-files", type=int, default=3, help="anomalous samples with ground-truth lists")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()

    import open3d as o3d

    import anomalykit
    from anomalykit.loaders._pointcloud_io import read_point_labels

    def direct(path: str) -> np.ndarray:
        return np.asarray(o3d.io.read_point_cloud(path).points)

    sizes = [int(n) for n in np.linspace(100_000, 400_000, args.files)]
    print(f"{args.files} clouds of {sizes[0]:,} to {sizes[-1]:,} points ({sum(sizes):,} in all), {args.rounds} rounds")
    with tempfile.TemporaryDirectory(prefix="bench-pcd-") as tmp:
        for encoding in args.encodings:
            root = Path(tmp) / encoding
            write_tree(root, encoding, sizes, args.gt_files)
            ds = anomalykit.load("real3d_ad", root)
            normal = ds.filter(label=0)
            paths = [str(root / p) for p in normal.manifest.column("path").to_pylist()]
            if len(normal[0].data) != len(direct(paths[0])):
                raise RuntimeError("the loader and open3d disagree on the number of points")

            print(f"\nPCD ({encoding}), {len(paths)} files")
            ours, limit = paired_rates(normal.__getitem__, list(range(len(normal))), direct, paths, args.rounds)
            report("anomalykit real3d_ad loader", ours, "open3d read_point_cloud (limit)", limit,
                   "loader / limit", "  (target >= 0.90)")

            if args.gt_files and encoding == args.encodings[0]:
                anomalous = ds.filter(label=1)
                gt_paths = [str(root / p) for p in anomalous.manifest.column("mask_path").to_pylist()]
                lines = sum(1 for p in gt_paths for _ in open(p))
                print(f"\nground-truth lists (x y z label), {len(gt_paths)} files, {lines:,} rows in all")
                peer = lambda p: np.loadtxt(p, delimiter=" ")  # noqa: E731 - the official reader
                ours_gt, peer_gt = paired_rates(read_point_labels, gt_paths, peer, gt_paths, args.rounds)
                report("anomalykit read_point_labels", ours_gt, "numpy.loadtxt (official loaders)", peer_gt,
                       "loader / numpy")


if __name__ == "__main__":
    main()
