"""Image loading: the ``mvtec_ad`` loader against raw Pillow decoding of the same files.

Builds an MVTec AD-layout tree of 500 RGB PNGs (512 x 512; 100 of them anomalous, with masks),
then times, in the same run:

* limit: Pillow decoding each image (``convert("RGB")``) and each mask, straight from the paths;
* anomalykit: iterating ``anomalykit.load("mvtec_ad", root)``, which also builds the manifest,
  validates shapes and makes typed ``Sample``s;
* anomalib (optional): ``MVTecADDataset`` from an interpreter that has anomalib installed,
  given with ``--anomalib-python`` (anomalib needs torchvision, which does not import beside
  the CPU torch this project pins, so it runs in its own environment; ``bench_image_synthesis.py``
  creates one at /tmp/anomalykit-bench-anomalib).

Prints images/s of each and the ratios. Target: the loader adds at most 10% over raw decoding.

    python benchmarks/bench_image_loading.py [--images 500] [--size 512] [--repeats 3]
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
from PIL import Image

import anomalykit
from anomalykit.testing import build


def raw_decode(paths: list[tuple[Path, Path | None]]) -> int:
    pixels = 0
    for image_path, mask_path in paths:
        with Image.open(image_path) as im:
            array = np.asarray(im.convert("RGB"))
        if mask_path is not None:
            with Image.open(mask_path) as m:
                mask = np.asarray(m) != 0
        else:
            mask = np.zeros(array.shape[:2], bool)
        pixels += array.shape[0] * array.shape[1] + int(mask.shape[0])
    return pixels


def loader_decode(root: Path) -> int:
    pixels = 0
    for sample in anomalykit.load("mvtec_ad", root):
        pixels += sample.data.height * sample.data.width + int(sample.target.shape[0])
    return pixels


def best_of(repeats: int, fn, *args) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn(*args)
        times.append(time.perf_counter() - start)
    return min(times)


ANOMALIB_SNIPPET = """
import sys, time
import torch
try:
    import torchvision  # noqa: F401
except RuntimeError as exc:
    # torchvision's compiled operators do not load beside a CPU torch of another build; declare
    # the two detection operators it registers at import (the dataset never calls them)
    if "torchvision::nms" not in str(exc):
        raise
    for name in [m for m in list(sys.modules) if m.startswith("torchvision")]:
        del sys.modules[name]
    lib = torch.library.Library("torchvision", "DEF")
    lib.define("nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
    lib.define("qnms(Tensor qdets, Tensor scores, float iou_threshold) -> Tensor")
torch.set_num_threads(1)
from anomalib.data.datasets import MVTecADDataset
root, category, repeats = sys.argv[1], sys.argv[2], int(sys.argv[3])
best = None
for _ in range(repeats):
    start = time.perf_counter()
    n = 0
    for split in ("train", "test"):
        ds = MVTecADDataset(root=root, category=category, split=split)
        for i in range(len(ds)):
            ds[i]
            n += 1
    elapsed = time.perf_counter() - start
    best = elapsed if best is None else min(best, elapsed)
print(n, best)
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=500)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--anomalib-python", help="python of an environment where anomalib is installed")
    args = parser.parse_args()

    n_defect = args.images // 5
    n_train = args.images - n_defect - args.images // 10
    n_good = args.images // 10
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "mvtec"
        start = time.perf_counter()
        built = build("mvtec_ad", root, categories={"bottle": ("broken_large",)}, n_train=n_train,
                      n_test_good=n_good, n_defect=n_defect, size=args.size, seed=0)
        print(f"built {built.expected['total']} PNGs of {args.size}x{args.size} in {time.perf_counter() - start:.1f}s")
        dataset = anomalykit.load("mvtec_ad", root)
        paths = [(root / r["path"], root / r["mask_path"] if r["mask_path"] else None) for r in dataset.manifest.to_pylist()]
        assert raw_decode(paths) == loader_decode(root)  # same work on both sides
        # interleave the two measurements so that machine load affects both alike
        raw_times, loader_times = [], []
        for _ in range(args.repeats):
            raw_times.append(best_of(1, raw_decode, paths))
            loader_times.append(best_of(1, loader_decode, root))
        raw, ours = min(raw_times), min(loader_times)
        n = len(paths)
        print(f"raw Pillow decode (limit): {n / raw:8.1f} images/s")
        print(f"anomalykit loader:         {n / ours:8.1f} images/s")
        print(f"loader time / raw time:    {ours / raw:8.3f}  (overhead {100 * (ours / raw - 1):+.1f}%, target <= +10%)")
        if args.anomalib_python:
            result = subprocess.run([args.anomalib_python, "-c", ANOMALIB_SNIPPET, str(root), "bottle", str(args.repeats)],
                                    capture_output=True, text=True)
            if result.returncode != 0:
                print(f"anomalib: failed to run ({result.stderr.strip().splitlines()[-1:]})")
            else:
                count, elapsed = result.stdout.split()[-2:]
                rate = int(count) / float(elapsed)
                print(f"anomalib MVTecADDataset:   {rate:8.1f} images/s   anomalykit / anomalib speed: {n / ours / rate:.2f}x")
        else:
            print("anomalib: not measured (pass --anomalib-python PATH to an environment with anomalib installed)")
        print(json.dumps({"images": n, "raw_images_per_s": n / raw, "loader_images_per_s": n / ours, "ratio": ours / raw}))


if __name__ == "__main__":
    sys.exit(main())
