"""PCD loads per second through the Real3D-AD loader against open3d reading the same files.

The limit is ``open3d.io.read_point_cloud(path)`` followed by ``np.asarray(cloud.points)`` (a
view, no copy): the file read alone. The loader does that too, plus the header check, the
float32 conversion, the per-point target and the ``Sample``. Files are written once in a
Real3D-AD tree with realistic sizes (100k to 400k points), then both readers run on the same
files, interleaved round by round so that machine noise hits both alike; the median round is
reported.

A second section times the ground-truth point lists of anomalous samples (the points of those
samples come from ``gt/*.txt``): the loader (pyarrow CSV) against ``numpy.loadtxt``, the reader
the official code uses (``np.genfromtxt``/``loadtxt``), as the peer.

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


def time_round(fn, items) -> float:
    start = time.perf_counter()
    for item in items:
        fn(item)
    return time.perf_counter() - start


def compare(name_a: str, fn_a, name_b: str, fn_b, items, rounds: int) -> tuple[float, float]:
    fn_a(items[0]), fn_b(items[0])  # warm the page cache and imports
    times_a, times_b = [], []
    for _ in range(rounds):
        times_a.append(time_round(fn_a, items))
        times_b.append(time_round(fn_b, items))
    rate_a = len(items) / statistics.median(times_a)
    rate_b = len(items) / statistics.median(times_b)
    print(f"  {name_a:<34} {rate_a:9.2f} loads/s")
    print(f"  {name_b:<34} {rate_b:9.2f} loads/s")
    return rate_a, rate_b


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--encodings", nargs="+", default=["binary", "ascii"], choices=["binary", "ascii", "binary_compressed"])
    parser.add_argument("--files", type=int, default=8, help="number of clouds (sizes spread over 100k-400k points)")
    parser.add_argument("--gt-files", type=int, default=3, help="anomalous samples with ground-truth lists")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()

    import open3d as o3d

    import anomalykit
    from anomalykit.loaders._pointcloud_io import read_point_labels

    sizes = [int(n) for n in np.linspace(100_000, 400_000, args.files)]
    print(f"{args.files} clouds of {sizes[0]:,} to {sizes[-1]:,} points ({sum(sizes):,} in all), {args.rounds} rounds")
    with tempfile.TemporaryDirectory(prefix="bench-pcd-") as tmp:
        for encoding in args.encodings:
            root = Path(tmp) / encoding
            write_tree(root, encoding, sizes, args.gt_files)
            ds = anomalykit.load("real3d_ad", root)
            normal = ds.filter(label=0)
            paths = [str(root / p) for p in normal.manifest.column("path").to_pylist()]

            def direct(path: str) -> np.ndarray:
                return np.asarray(o3d.io.read_point_cloud(path).points)

            print(f"\nPCD ({encoding}), {len(paths)} files")
            ours, limit = compare_indices(normal, paths, direct, args.rounds)
            print(f"  ratio loader / limit: {ours / limit:.3f}  (target >= 0.90)")

            if args.gt_files and encoding == args.encodings[0]:
                anomalous = ds.filter(label=1)
                gt_paths = [str(root / p) for p in anomalous.manifest.column("mask_path").to_pylist()]
                lines = sum(1 for p in gt_paths for _ in open(p))
                print(f"\nground-truth lists (x y z label), {len(gt_paths)} files, {lines:,} rows in all")
                peer = lambda p: np.loadtxt(p, delimiter=" ")  # noqa: E731 - the official reader
                ours_gt, peer_gt = compare("anomalykit read_point_labels", read_point_labels,
                                           "numpy.loadtxt (official loaders)", peer, gt_paths, max(2, args.rounds // 2))
                print(f"  ratio loader / numpy: {ours_gt / peer_gt:.2f}")


def compare_indices(dataset, paths: list[str], direct, rounds: int) -> tuple[float, float]:
    indices = list(range(len(dataset)))
    dataset[0], direct(paths[0])
    times_ours, times_limit = [], []
    for _ in range(rounds):
        times_ours.append(time_round(dataset.__getitem__, indices))
        times_limit.append(time_round(direct, paths))
    ours = len(indices) / statistics.median(times_ours)
    limit = len(paths) / statistics.median(times_limit)
    if len(dataset[0].data) != len(direct(paths[0])):
        raise RuntimeError("the loader and open3d disagree on the number of points")
    print(f"  {'anomalykit real3d_ad loader':<34} {ours:9.2f} loads/s")
    print(f"  {'open3d read_point_cloud (limit)':<34} {limit:9.2f} loads/s")
    return ours, limit


if __name__ == "__main__":
    main()
