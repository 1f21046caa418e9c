#!/usr/bin/env python
"""DRAEM Perlin anomaly synthesis on CPU: anomalykit's ``perlin`` generator against anomalib's
``PerlinAnomalyGenerator`` and a plain numpy/scipy implementation of the same algorithm.

    python benchmarks/bench_image_synthesis.py                      # 256 and 512, both workloads
    python benchmarks/bench_image_synthesis.py --sizes 256 --count 40 --no-anomalib

Workloads (one image in, one anomalous image and its mask out, one process):

* ``noise``: the anomaly source is the rotated Perlin noise as a grey image (anomalib's behaviour
  without an anomaly source folder);
* ``texture``: a random texture from a folder (DRAEM's DTD use) resized to the image.

Each method draws a Perlin mask (scale 2^[0,6) per axis, rotation U(-90, 90), threshold 0.5),
applies three of DRAEM's ten augmenters to the source and blends it into the image.

anomalib runs in its own virtual environment (``--anomalib-env``, created on first use with
``python -m venv``; it sees this environment's packages through a ``.pth`` file, so torch is not
downloaded again, and pip adds anomalib and the torchvision release matching this torch). When
torchvision's compiled operators cannot load beside this torch build, the benchmark declares
the two detection operators (``nms``, ``qnms``) that torchvision registers at import, so that
its pure-torch transforms import; the Perlin generator does not use them. If anomalib cannot be
installed or imported, the benchmark says why and skips that peer.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

DEFAULT_ENV = Path(os.environ.get("ANOMALYKIT_BENCH_ANOMALIB_ENV", Path(tempfile.gettempdir()) / "anomalykit-bench-anomalib"))


# ---------------------------------------------------------------------------------------------
# inputs


def make_textures(folder: Path, count: int = 8, size: int = 384) -> Path:
    """Smooth, colourful JPEG textures (stripes, blobs, checks), like DTD images in spirit."""
    from PIL import Image

    rng = np.random.default_rng(0)
    folder.mkdir(parents=True, exist_ok=True)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    for i in range(count):
        fy, fx, phase = rng.uniform(2, 20), rng.uniform(2, 20), rng.uniform(0, 6.28)
        pattern = np.sin(2 * np.pi * (fy * yy + fx * xx) + phase) * np.cos(2 * np.pi * rng.uniform(1, 6) * yy)
        colors = rng.uniform(0, 255, (2, 3))
        weight = (pattern[:, :, None] + 1) / 2
        image = colors[0] * weight + colors[1] * (1 - weight) + rng.normal(0, 8, (size, size, 3))
        Image.fromarray(np.clip(image, 0, 255).astype(np.uint8)).save(folder / f"texture_{i}.jpg", quality=90)
    return folder


def make_images(size: int, count: int = 4) -> list[np.ndarray]:
    rng = np.random.default_rng(size)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    images = []
    for _ in range(count):
        disc = (yy - size / 2) ** 2 + (xx - size / 2) ** 2 < (size / 3) ** 2
        base = 70 + 50 * xx / size + 100 * disc
        image = base[:, :, None] + rng.normal(0, 5, (size, size, 3)) + rng.uniform(-20, 20, 3)
        images.append(np.clip(image, 0, 255).astype(np.uint8))
    return images


# ---------------------------------------------------------------------------------------------
# plain numpy / scipy implementation (DRAEM's formulation)


def numpy_perlin(shape: tuple[int, int], res: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """DRAEM's ``rand_perlin_2d_np`` (shape divisible by res)."""
    delta = (res[0] / shape[0], res[1] / shape[1])
    d = (shape[0] // res[0], shape[1] // res[1])
    grid = np.mgrid[0:res[0]:delta[0], 0:res[1]:delta[1]].transpose(1, 2, 0) % 1
    angles = 2 * np.pi * rng.random((res[0] + 1, res[1] + 1))
    gradients = np.stack((np.cos(angles), np.sin(angles)), axis=-1)

    def tile(s1, s2):
        return np.repeat(np.repeat(gradients[s1[0]:s1[1], s2[0]:s2[1]], d[0], axis=0), d[1], axis=1)

    def dot(grad, shift):
        stacked = np.stack((grid[:shape[0], :shape[1], 0] + shift[0], grid[:shape[0], :shape[1], 1] + shift[1]), -1)
        return (stacked * grad[:shape[0], :shape[1]]).sum(axis=-1)

    n00 = dot(tile([0, -1], [0, -1]), [0, 0])
    n10 = dot(tile([1, None], [0, -1]), [-1, 0])
    n01 = dot(tile([0, -1], [1, None]), [0, -1])
    n11 = dot(tile([1, None], [1, None]), [-1, -1])
    t = 6 * grid ** 5 - 15 * grid ** 4 + 10 * grid ** 3

    def lerp(a, b, w):
        return (b - a) * w + a

    return np.sqrt(2) * lerp(lerp(n00, n10, t[..., 0]), lerp(n01, n11, t[..., 0]), t[..., 1])


def _np_rotate(array: np.ndarray, angle: float) -> np.ndarray:
    from scipy import ndimage

    return ndimage.rotate(array, angle, axes=(1, 0), reshape=False, order=1, mode="constant", cval=0.0)


_YCC = np.array([[0.299, 0.587, 0.114], [-0.168736, -0.331264, 0.5], [0.5, -0.418688, -0.081312]])


def _np_augmenters():
    from matplotlib.colors import hsv_to_rgb, rgb_to_hsv
    from scipy import ndimage

    smooth = np.array([[1, 1, 1], [1, 5, 1], [1, 1, 1]]) / 13.0

    def gamma(x, rng):
        return 255.0 * (x / 255.0) ** rng.uniform(0.5, 2.0, 3)

    def brightness(x, rng):
        ycc = x @ _YCC.T
        ycc[..., 0] = ycc[..., 0] * rng.uniform(0.8, 1.2) + rng.uniform(-30, 30)
        return ycc @ np.linalg.inv(_YCC).T

    def sharpness(x, rng):
        blurred = np.stack([ndimage.convolve(x[..., c], smooth, mode="nearest") for c in range(3)], -1)
        f = rng.uniform(0, 2)
        return blurred + f * (x - blurred)

    def hue_sat(x, rng):
        hsv = rgb_to_hsv(np.clip(x, 0, 255) / 255.0)
        hsv[..., 0] = (hsv[..., 0] + rng.integers(-50, 51) / 255.0) % 1.0
        hsv[..., 1] = np.clip(hsv[..., 1] + rng.integers(-50, 51) / 255.0, 0, 1)
        return hsv_to_rgb(hsv) * 255.0

    def solarize(x, rng):
        threshold = rng.uniform(32, 128)
        return np.where(x >= threshold, 255 - x, x) if rng.random() < 0.5 else x

    def posterize(x, rng):
        keep = (0xFF << (8 - int(rng.integers(1, 9)))) & 0xFF
        return np.bitwise_and(np.clip(x, 0, 255).astype(np.uint8), keep).astype(np.float64)

    def invert(x, rng):
        return 255.0 - x

    def autocontrast(x, rng):
        cut = rng.uniform(0, 20)
        low, high = np.percentile(x, cut, axis=(0, 1)), np.percentile(x, 100 - cut, axis=(0, 1))
        return np.where(high > low, (x - low) * 255.0 / np.maximum(high - low, 1e-6), x)

    def equalize(x, rng):
        out = np.empty_like(x)
        for c in range(3):
            channel = np.clip(x[..., c], 0, 255).astype(np.uint8)
            cdf = np.cumsum(np.bincount(channel.ravel(), minlength=256)).astype(np.float64)
            cdf = (cdf - cdf.min()) * 255.0 / max(cdf.max() - cdf.min(), 1.0)
            out[..., c] = cdf[channel]
        return out

    def rotate(x, rng):
        return _np_rotate(x, rng.uniform(-45, 45))

    return [gamma, brightness, sharpness, hue_sat, solarize, posterize, invert, autocontrast, equalize, rotate]


NP_AUGMENTERS = _np_augmenters()


def numpy_perlin_anomaly(image: np.ndarray, rng: np.random.Generator, textures: list[str] | None):
    from PIL import Image

    h, w = image.shape[:2]
    for _ in range(10):
        res = (2 ** int(rng.integers(0, 6)), 2 ** int(rng.integers(0, 6)))
        noise = _np_rotate(numpy_perlin((h, w), res, rng), rng.uniform(-90, 90))
        mask = noise > 0.5
        if mask.any():
            break
    if textures:
        with Image.open(textures[int(rng.integers(len(textures)))]) as im:
            source = np.asarray(im.convert("RGB").resize((w, h), Image.BILINEAR), np.float64)
    else:
        source = np.repeat(np.clip((noise * 0.5 + 0.25) * 255.0, 0, 255)[:, :, None], 3, axis=2)
    for index in rng.choice(len(NP_AUGMENTERS), 3, replace=False):
        source = np.clip(NP_AUGMENTERS[index](source, rng), 0, 255)
    beta = rng.uniform(0.0, 0.8)
    m = mask[:, :, None]
    out = image * (1 - m) + (1 - beta) * source * m + beta * image * m
    out = np.clip(np.rint(out), 0, 255).astype(np.uint8)
    return out, (out != image).any(axis=2)


# ---------------------------------------------------------------------------------------------
# timing


def rate(fn, count: int, warmup: int = 3) -> float:
    for i in range(warmup):
        fn(i)
    start = time.perf_counter()
    for i in range(count):
        fn(warmup + i)
    return count / (time.perf_counter() - start)


def time_anomalykit(size: int, textures: Path | None, count: int) -> float:
    import anomalykit
    from anomalykit.schema import Image, Sample

    sources = [Sample(key=f"img{i}", dataset="bench", split="train", label=0, data=Image(p))
               for i, p in enumerate(make_images(size))]
    options = {"texture_dir": str(textures)} if textures else {"anomaly_source": "noise"}
    gen = anomalykit.get_generator("perlin", **options)
    return rate(lambda i: gen(sources[i % len(sources)], seed=i), count)


def time_numpy(size: int, textures: Path | None, count: int) -> float:
    images = [im.astype(np.float64) for im in make_images(size)]
    files = sorted(str(p) for p in textures.glob("*.jpg")) if textures else None
    return rate(lambda i: numpy_perlin_anomaly(images[i % len(images)], np.random.default_rng(i), files), count)


ANOMALIB_SCRIPT = r"""
import json, sys, time
import torch
sizes, textures, count, threads = json.loads(sys.argv[1]), sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
torch.set_num_threads(threads)
notes = []
try:
    import torchvision  # noqa: F401
except RuntimeError as exc:
    if "torchvision::nms" not in str(exc):
        raise
    for name in [m for m in list(sys.modules) if m.startswith("torchvision")]:
        del sys.modules[name]
    lib = torch.library.Library("torchvision", "DEF")
    lib.define("nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
    lib.define("qnms(Tensor qdets, Tensor scores, float iou_threshold) -> Tensor")
    notes.append("torchvision's compiled operators do not load beside this torch; nms/qnms declared so that "
                 "its transforms import")
import anomalib
import numpy as np
import torchvision.io
from anomalib.data.utils.generators import perlin as anomalib_perlin
from anomalib.data.utils.generators.perlin import PerlinAnomalyGenerator
try:
    torchvision.io.decode_jpeg(torch.zeros(1, dtype=torch.uint8))
except RuntimeError as exc:
    if "image extension" in str(exc):
        from PIL import Image

        class _PILIO:
            ImageReadMode = torchvision.io.ImageReadMode

            @staticmethod
            def read_image(path, mode=None):
                with Image.open(path) as im:
                    return torch.from_numpy(np.asarray(im.convert("RGB"))).permute(2, 0, 1).contiguous()

        anomalib_perlin.io = _PILIO
        notes.append("torchvision's image extension does not load either; texture files are decoded with PIL "
                     "(libjpeg) in its place")
except Exception:
    pass
result = {"anomalib": anomalib.__version__, "torch": torch.__version__, "threads": torch.get_num_threads(),
          "note": "; ".join(notes), "rates": {}, "errors": {}}
for size in sizes:
    torch.manual_seed(0)
    images = [torch.rand(3, size, size) for _ in range(4)]
    for workload, path in (("noise", None), ("texture", textures)):
        key = f"{size}/{workload}"
        try:
            gen = PerlinAnomalyGenerator(anomaly_source_path=path, probability=1.0, blend_factor=(0.2, 1.0))
            for i in range(3):
                gen(images[i % 4])
            start = time.perf_counter()
            for i in range(count):
                gen(images[i % 4])
            result["rates"][key] = count / (time.perf_counter() - start)
        except Exception as exc:  # a workload that cannot run is reported, not fatal
            result["errors"][key] = f"{type(exc).__name__}: {str(exc).strip().splitlines()[-1][:200]}"
print("RESULT " + json.dumps(result))
"""


def ensure_anomalib_env(env: Path, create: bool) -> tuple[Path | None, str]:
    """The python of an environment where anomalib imports, creating it if asked; or a reason."""
    import site

    import torch

    python = env / "bin" / "python"
    if not python.exists():
        if not create:
            return None, f"no anomalib environment at {env} (run without --no-create to make one)"
        print(f"creating an anomalib environment at {env} (once) ...", flush=True)
        try:
            subprocess.run([sys.executable, "-m", "venv", str(env)], check=True, capture_output=True, text=True)
            target = subprocess.run([str(python), "-c", "import site; print(site.getsitepackages()[0])"],
                                    check=True, capture_output=True, text=True).stdout.strip()
            Path(target, "_anomalykit_base.pth").write_text("\n".join(site.getsitepackages()) + "\n")
            minor = int(torch.__version__.split(".")[1])
            vision = f"torchvision==0.{minor + 15}.*"
            subprocess.run([str(python), "-m", "pip", "install", "-q", "anomalib", vision], check=True,
                           capture_output=True, text=True, timeout=1800)
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired, OSError) as exc:
            detail = getattr(exc, "stderr", "") or str(exc)
            return None, f"could not install anomalib into {env}: {detail.strip().splitlines()[-1] if detail.strip() else exc}"
    return python, ""


def time_anomalib(python: Path, sizes: list[int], textures: Path, count: int, threads: int) -> dict:
    proc = subprocess.run([str(python), "-c", ANOMALIB_SCRIPT, json.dumps(sizes), str(textures), str(count), str(threads)],
                          capture_output=True, text=True, timeout=3600)
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[len("RESULT "):])
    tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
    return {"failed": f"anomalib did not run: {tail}"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[256, 512])
    parser.add_argument("--count", type=int, default=60, help="images timed per method, size and workload")
    parser.add_argument("--anomalib-env", type=Path, default=DEFAULT_ENV)
    parser.add_argument("--no-anomalib", action="store_true", help="skip the anomalib peer")
    parser.add_argument("--no-create", action="store_true", help="do not create the anomalib environment")
    parser.add_argument("--threads", type=int, default=1,
                        help="threads per method (torch intra-op, OpenCV); 1 compares single cores")
    args = parser.parse_args()

    import cv2
    import numba
    import torch

    cv2.setNumThreads(args.threads)
    torch.set_num_threads(args.threads)

    print(f"CPU benchmark, {os.cpu_count()} logical CPUs; numpy {np.__version__}, OpenCV {cv2.__version__}, "
          f"numba {numba.__version__}, torch {torch.__version__} ({torch.get_num_threads()} threads)")
    with tempfile.TemporaryDirectory(prefix="bench-textures-") as tmp:
        textures = make_textures(Path(tmp) / "textures")
        peer: dict = {}
        if args.no_anomalib:
            peer = {"failed": "skipped (--no-anomalib)"}
        else:
            python, reason = ensure_anomalib_env(args.anomalib_env, not args.no_create)
            peer = time_anomalib(python, args.sizes, textures, args.count, args.threads) if python else {"failed": reason}
        if "failed" in peer:
            print(f"anomalib: {peer['failed']}")
        else:
            print(f"anomalib {peer['anomalib']} on torch {peer['torch']} ({peer['threads']} threads)"
                  + (f"; note: {peer['note']}" if peer.get("note") else ""))
        header = f"{'size':>5} {'workload':>8} | {'anomalykit':>10} {'numpy':>8} {'anomalib':>9} | " \
                 f"{'vs numpy':>8} {'vs anomalib':>11}   (images/s)"
        print(header)
        print("-" * len(header))
        for size in args.sizes:
            for workload in ("noise", "texture"):
                tex = textures if workload == "texture" else None
                ours = time_anomalykit(size, tex, args.count)
                plain = time_numpy(size, tex, max(10, args.count // 3))
                theirs = peer.get("rates", {}).get(f"{size}/{workload}")
                vs_peer = f"{ours / theirs:10.2f}x" if theirs else f"{'n/a':>11}"
                theirs_text = f"{theirs:9.1f}" if theirs else f"{'n/a':>9}"
                print(f"{size:>5} {workload:>8} | {ours:10.1f} {plain:8.1f} {theirs_text} | {ours / plain:7.2f}x {vs_peer}")
        for key, error in sorted(peer.get("errors", {}).items()):
            print(f"anomalib {key}: not run ({error})")


if __name__ == "__main__":
    main()
