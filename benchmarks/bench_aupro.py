#!/usr/bin/env python
"""AUPRO on CPU: ``anomalykit.metrics.image.aupro`` against anomalib's ``AUPRO`` metric, a
threshold loop (200 thresholds, as many research repositories compute PRO), and the physical
limit of the one-sort method: a single ``np.argsort`` of the same pixel scores.

    python benchmarks/bench_aupro.py                         # 100 images of 256 x 256 (MVTec scale)
    python benchmarks/bench_aupro.py --images 40 --size 512 --no-anomalib

Ground truth: a few elliptic defects per anomalous image (half the images are normal); anomaly
maps: the masks blurred plus noise. Every method gets the same arrays; the values are printed next
to the times, since a fast wrong AUPRO is worthless (anomalib reported 1.21 once, and normalised
by the last FPR instead of the limit until v2.2).

anomalib runs in the environment that ``bench_image_synthesis.py`` creates
(``ANOMALYKIT_BENCH_ANOMALIB_ENV``, by default ``<tmp>/anomalykit-bench-anomalib``); it is skipped,
with the reason, when that environment is missing (create it with that script or ``--create``).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from scipy import ndimage

sys.path.insert(0, str(Path(__file__).resolve().parent))

ANOMALIB_SCRIPT = r"""
import json, sys, time
import numpy as np
import torch
torch.set_num_threads(int(sys.argv[2]))
try:
    import torchvision  # noqa: F401
except RuntimeError as exc:  # compiled operators that do not load beside this torch: declare them
    if "torchvision::nms" not in str(exc):
        raise
    for name in [m for m in list(sys.modules) if m.startswith("torchvision")]:
        del sys.modules[name]
    lib = torch.library.Library("torchvision", "DEF")
    lib.define("nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
    lib.define("qnms(Tensor qdets, Tensor scores, float iou_threshold) -> Tensor")
import anomalib
from anomalib.metrics.aupro import _AUPRO
folder = sys.argv[1]
masks = torch.from_numpy(np.load(folder + "/masks.npy"))
maps = torch.from_numpy(np.load(folder + "/maps.npy"))
times = []
for _ in range(int(sys.argv[3])):
    metric = _AUPRO(fpr_limit=0.3)
    start = time.perf_counter()
    metric.update(maps, masks)
    value = float(metric.compute())
    times.append(time.perf_counter() - start)
print("RESULT " + json.dumps({"anomalib": anomalib.__version__, "value": value, "seconds": min(times)}))
"""


def make_data(images: int, size: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    masks = np.zeros((images, size, size), np.uint8)
    yy, xx = np.mgrid[0:size, 0:size]
    for i in range(images // 2):
        for _ in range(int(rng.integers(1, 4))):
            cy, cx = rng.integers(0, size, 2)
            ry, rx = rng.uniform(0.02, 0.12, 2) * size
            masks[i] |= (((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1).astype(np.uint8)
    maps = np.stack([ndimage.gaussian_filter(m.astype(np.float32), size / 64) for m in masks])
    maps += rng.normal(0, 0.15, maps.shape).astype(np.float32)
    return masks, maps.astype(np.float32)


def threshold_loop_aupro(masks: np.ndarray, maps: np.ndarray, steps: int = 200, limit: float = 0.3) -> float:
    """PRO at ``steps`` evenly spaced thresholds, curve cut at FPR ``limit`` and integrated."""
    structure = np.ones((3, 3))
    labelled = [ndimage.label(m, structure=structure) for m in masks]
    normal = masks == 0
    fprs, pros = [], []
    for t in np.linspace(maps.max(), maps.min(), steps):
        detected = maps >= t
        overlaps = []
        for (regions, count), hit in zip(labelled, detected):
            if count:
                found = np.bincount(regions.ravel(), weights=hit.ravel(), minlength=count + 1)[1:]
                overlaps.extend(found / np.bincount(regions.ravel(), minlength=count + 1)[1:])
        fprs.append((detected & normal).sum() / normal.sum())
        pros.append(np.mean(overlaps))
    fpr, pro = np.array([0.0, *fprs]), np.array([0.0, *pros])
    keep = fpr <= limit
    x, y = fpr[keep], pro[keep]
    if keep.sum() < len(fpr):
        j = int(keep.sum())
        y_end = pro[j - 1] + (pro[j] - pro[j - 1]) * (limit - fpr[j - 1]) / max(fpr[j] - fpr[j - 1], 1e-12)
        x, y = np.append(x, limit), np.append(y, y_end)
    return float(np.trapezoid(y, x) / limit)


def best_of(fn, repeat: int) -> tuple[float, object]:
    best, value = float("inf"), None
    for _ in range(repeat):
        start = time.perf_counter()
        value = fn()
        best = min(best, time.perf_counter() - start)
    return best, value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=100)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1, help="torch threads of the anomalib run")
    parser.add_argument("--no-anomalib", action="store_true")
    parser.add_argument("--create", action="store_true", help="create the anomalib environment if missing")
    args = parser.parse_args()

    from anomalykit.metrics.image import aupro

    masks, maps = make_data(args.images, args.size)
    pixels = masks.size
    print(f"{args.images} images of {args.size} x {args.size} ({pixels / 1e6:.1f} M pixels), "
          f"{sum(ndimage.label(m, structure=np.ones((3, 3)))[1] for m in masks)} defect regions; best of {args.repeat}")
    rows = []
    seconds, value = best_of(lambda: aupro(list(masks), list(maps)), args.repeat)
    rows.append(("anomalykit aupro", seconds, value))
    flat = maps.ravel()  # float32, as the maps are
    seconds, _ = best_of(lambda: np.argsort(flat), args.repeat)
    rows.append(("limit: one np.argsort of all pixel scores", seconds, None))
    seconds, value = best_of(lambda: threshold_loop_aupro(masks, maps), 1)
    rows.append(("threshold loop, 200 thresholds", seconds, value))
    if not args.no_anomalib:
        from bench_image_synthesis import DEFAULT_ENV, ensure_anomalib_env

        python, reason = ensure_anomalib_env(DEFAULT_ENV, args.create)
        if python is None:
            print(f"anomalib skipped: {reason}")
        else:
            with tempfile.TemporaryDirectory() as folder:
                np.save(Path(folder) / "masks.npy", masks)
                np.save(Path(folder) / "maps.npy", maps)
                proc = subprocess.run([str(python), "-c", ANOMALIB_SCRIPT, folder, str(args.threads), str(args.repeat)],
                                      capture_output=True, text=True, timeout=3600)
            lines = proc.stdout.splitlines()
            result = next((json.loads(line[7:]) for line in lines if line.startswith("RESULT ")), None)
            if result is None:
                tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
                print(f"anomalib skipped: it did not run: {tail}")
            else:
                rows.append((f"anomalib {result['anomalib']} AUPRO ({args.threads} torch thread)", result["seconds"],
                             result["value"]))
    ours = rows[0][1]
    print(f"{'method':<44} {'seconds':>9} {'Mpixel/s':>9} {'vs anomalykit':>14} {'AUPRO':>9}")
    for name, seconds, value in rows:
        shown = "" if value is None else f"{value:.6f}"
        print(f"{name:<44} {seconds:>9.3f} {pixels / seconds / 1e6:>9.1f} {seconds / ours:>13.2f}x {shown:>9}")


if __name__ == "__main__":
    main()
