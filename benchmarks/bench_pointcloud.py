"""Point-cloud defect generators against straightforward numpy implementations of the same
algorithms, in one run: clouds per second at 16k and 200k points, and the ratio.

The straightforward versions are what a direct transcription of the reference code gives:

* Patch-Gen: sort every distance to the viewpoint (``np.argsort``) to find the M nearest points.
* DA-Gen: the full greedy partition into 64 patches, each by sorting the distances of every
  unassigned point, and open3d normals for the whole cloud.
* defects3d (a bulge, then a hole): patches and the hole's border by distances to every point.

The toolkit's versions (``anomalykit.get_generator(...)``) use ``argpartition``, KD-tree
neighbourhoods (scipy ``cKDTree``), only the partition steps they need, and open3d normals on the
region alone; their timings include building the whole output ``Sample`` (index map, metadata,
provenance). Both sides draw the same random numbers, and the script checks that they agree.

    python benchmarks/bench_pointcloud.py            # about a minute on two cores
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from anomalykit.generators import derive_seed, get_generator
from anomalykit.generators.pointcloud._common import example_cloud
from anomalykit.generators.pointcloud.patchgen import VIEWPOINTS


def rng_for(source, seed):
    return np.random.default_rng(derive_seed(seed, source.key))


# -- straightforward implementations ------------------------------------------------------------


def plain_patchgen(source, seed):
    p = source.data.points.astype(np.float64)
    rng = rng_for(source, seed)
    n = len(p)
    size = min(n, max(1, int(rng.uniform(int(n / 32), int(n / 4)))))
    centre = (p.min(0) + p.max(0)) / 2
    half = float((p.max(0) - p.min(0)).max() / 2)
    viewpoint = centre + half * VIEWPOINTS[rng.integers(len(VIEWPOINTS))]
    scale = rng.uniform(0.0, 0.2) * half
    sign = float(rng.choice((-1.0, 1.0)))
    order = np.argsort(((p - viewpoint) ** 2).sum(1), kind="stable")[:size]
    r = np.sort(rng.random(size))[::-1]
    rays = p[order] - viewpoint
    rays /= np.linalg.norm(rays, axis=1, keepdims=True)
    new = p.copy()
    new[order] += sign * scale * r[:, None] * rays
    mask = np.zeros(n, np.uint8)
    mask[order] = 1
    new32 = new.astype(np.float32)
    return new32, mask, new32 - source.data.points


def open3d_normals(points, k=16):
    import open3d as o3d

    cloud = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(points))
    cloud.estimate_normals(o3d.geometry.KDTreeSearchParamKNN(k))
    return np.asarray(cloud.normals)


def plain_dagen(source, seed, parts=64):
    p = source.data.points.astype(np.float64)
    rng = rng_for(source, seed)
    n = len(p)
    size = n // parts
    region_id = int(rng.integers(parts // 2))
    patch_id = np.full(n, parts - 1)
    assigned = np.zeros(n, bool)
    rest = np.random.default_rng(1)  # the patches after the region do not touch the sample's stream
    for patch in range(parts):
        stream = rng if patch <= region_id else rest
        free = np.flatnonzero(~assigned)
        if len(free) < size:
            break
        centre = p[free[stream.integers(len(free))]]
        members = free[np.argsort(((p[free] - centre) ** 2).sum(1), kind="stable")[:size]]
        assigned[members] = True
        patch_id[members] = patch
    region = np.flatnonzero(patch_id == region_id)
    normals = open3d_normals(p)[region]
    normals = np.where((np.einsum("ij,ij->i", normals, p[region] - p.mean(0)) < 0)[:, None], -normals, normals)
    mean = normals.sum(0)
    normals = np.where((normals @ mean < 0)[:, None], -normals, normals)
    pts = p[region]
    c = pts.mean(0)
    eta = rng.normal(size=3)
    eta /= np.linalg.norm(eta)
    sigma, lam = rng.uniform(0, 0.08), rng.uniform(0.95, 1.0)
    beta = float(rng.choice((-1.0, 1.0)))
    radius = np.sqrt(((p - p.mean(0)) ** 2).sum(1).max())
    magnitude = rng.uniform(0.06, 0.12) * radius
    q = (pts - c) @ eta
    q_hat = q / np.abs(q).max()
    d = lam * normals + (1 - lam) * eta
    d /= np.linalg.norm(d, axis=1, keepdims=True)
    new = p.copy()
    new[region] += beta * magnitude * (q_hat * (1 - sigma * np.abs(q_hat)))[:, None] * d
    mask = np.zeros(n, np.uint8)
    mask[region] = 1
    new32 = new.astype(np.float32)
    return new32, mask, new32 - source.data.points


def plain_bulge_hole(source, seed):
    """A cosine bulge along the patch normal, then a hole with its border (defects3d's defaults)."""
    p = source.data.points.astype(np.float64)
    n = len(p)
    rng = rng_for(source, seed)
    centroid = p.mean(0)
    unit = np.sqrt(((p - centroid) ** 2).sum(1).max())
    # bulge
    radius, height = rng.uniform(0.06, 0.15) * unit, rng.uniform(0.015, 0.04) * unit
    centre = int(rng.integers(n))
    distance = np.linalg.norm(p - p[centre], axis=1)
    members = np.flatnonzero(distance <= radius)
    w = 0.5 * (1 + np.cos(np.pi * np.clip(distance[members] / radius, 0, 1)))
    mean = (p[members] * w[:, None]).sum(0) / w.sum()
    _, _, vt = np.linalg.svd((p[members] - mean) * np.sqrt(w + 1e-12)[:, None], full_matrices=False)
    normal = vt[-1] if vt[-1] @ (mean - centroid) >= 0 else -vt[-1]
    new = p.copy()
    new[members] += height * w[:, None] * normal
    mask = np.zeros(n, bool)
    mask[members] = True
    # hole
    radius = rng.uniform(0.06, 0.15) * unit
    centre = int(rng.integers(n))
    distance = np.linalg.norm(new - new[centre], axis=1)
    gone = distance <= radius
    sample = new[np.flatnonzero(gone)[:: max(1, gone.sum() // 256)]]
    knn = np.sort(np.linalg.norm(sample[:, None] - new[None], axis=2), axis=1)[:, 8]
    rim = max(0.01 * unit, 2 * np.median(knn) * np.sqrt(np.pi / 8))
    candidates = np.flatnonzero(~gone & (distance <= radius + rim))
    removed = new[gone]
    nearest = np.array([np.linalg.norm(removed - new[i], axis=1).min() for i in candidates])
    mask[candidates[nearest <= rim]] = True
    keep = np.flatnonzero(~gone)
    new32 = new[keep].astype(np.float32)
    return new32, mask[keep].astype(np.uint8), new32 - source.data.points[keep]


# -- timing -------------------------------------------------------------------------------------


def rate(fn, repeats):
    fn(0)  # warm-up (imports, open3d start-up)
    start = time.perf_counter()
    for seed in range(1, repeats + 1):
        fn(seed)
    return repeats / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[16_384, 200_000])
    parser.add_argument("--repeats", type=int, nargs="+", default=[20, 5])
    args = parser.parse_args()
    cases = [
        ("patchgen", get_generator("patchgen"), plain_patchgen),
        ("dagen", get_generator("dagen"), plain_dagen),
        ("defects3d bulge+hole", get_generator("defects3d", families=["bulge", "hole"], pick=0), plain_bulge_hole),
    ]
    print(f"{'generator':<22}{'points':>9}{'anomalykit/s':>15}{'numpy/s':>10}{'ratio':>8}  agreement")
    for size, repeats in zip(args.sizes, args.repeats):
        source = example_cloud(size, key=f"bench/{size}")
        for name, generator, plain in cases:
            ours = generator(source, seed=0)
            new, mask, displacement = plain(source, 0)
            same_mask = np.array_equal(ours.target, mask)
            difference = float(np.abs(ours.data.displacement - displacement).max()) if same_mask else float("nan")
            fast = rate(lambda s: generator(source, seed=s), repeats)
            slow = rate(lambda s: plain(source, s), repeats)
            agreement = f"masks equal: {same_mask}, max |displacement difference|: {difference:.2e}"
            print(f"{name:<22}{size:>9}{fast:>15.2f}{slow:>10.2f}{fast / slow:>7.1f}x  {agreement}")


if __name__ == "__main__":
    main()
