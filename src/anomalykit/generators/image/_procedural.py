"""Pieces shared by the procedural image synthesizers (Perlin/DRAEM, CutPaste, NSA).

* input checks that name the image (sample key) and the parameter at fault;
* object foreground masks as NSA computes them (per-class background brightness and threshold,
  median-blurred), or read from a folder of precomputed masks;
* texture folders (DRAEM uses DTD's ``images/*/*.jpg``);
* DRAEM's ten texture augmenters, written with OpenCV look-up tables;
* 2-D Perlin noise (numba kernel, plus the plain numpy reference it is tested against);
* colour jitter with torchvision's ``ColorJitter`` semantics (CutPaste).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from numba import njit

from ...errors import ConfigError, MalformedFileError, SchemaError
from ...io.images import IMAGE_SUFFIXES
from ...schema import Image, Sample

# ---------------------------------------------------------------------------------------------
# NSA's per-class settings (MVTec AD class names)

#: (background brightness, threshold): object = |mean RGB - background| > threshold
OBJECT_BACKGROUND: dict[str, tuple[int, int]] = {
    "bottle": (200, 60), "screw": (200, 60), "capsule": (200, 60), "zipper": (200, 60),
    "hazelnut": (20, 20), "pill": (20, 20), "toothbrush": (20, 20), "metal_nut": (20, 20),
}
FOREGROUND_MEDIAN = 7


def _check_image(source: Sample, generator: str, *, rgb: bool) -> np.ndarray:
    """The source pixels, after checking that the payload is an image the generator can use."""
    if not isinstance(source.data, Image):
        raise SchemaError(f"{generator}: source {source.key!r} is not an image")
    pixels = source.data.pixels
    channels = pixels.shape[2]
    if rgb and channels != 3:
        kind = "grayscale" if channels == 1 else "RGBA" if channels == 4 else f"{channels}-channel"
        raise SchemaError(
            f"{generator}: image {source.key!r} is {kind} ({channels} channel(s)); {generator} needs an RGB "
            f"(3-channel) image because its colour augmentations (hue, saturation) are defined on RGB. "
            f"Load the dataset as RGB or convert the image first."
        )
    if not rgb and channels not in (1, 3):
        raise SchemaError(f"{generator}: image {source.key!r} has {channels} channels; expected 1 (grayscale) or 3 (RGB)")
    return pixels


def require_rgb(source: Sample, generator: str) -> np.ndarray:
    return _check_image(source, generator, rgb=True)


def require_gray_or_rgb(source: Sample, generator: str) -> np.ndarray:
    return _check_image(source, generator, rgb=False)


def object_mask(pixels: np.ndarray, background: float, threshold: float) -> np.ndarray:
    """NSA's object mask: ``|mean_c(pixels) - background| > threshold``, median-blurred (size 7)."""
    mean = pixels.mean(axis=2) if pixels.ndim == 3 else pixels.astype(np.float64)
    raw = (np.abs(mean - background) > threshold).astype(np.uint8)
    return cv2.medianBlur(raw, FOREGROUND_MEDIAN).astype(bool)


@dataclass(frozen=True)
class ForegroundSpec:
    """How to find the object in an image (the config fields shared by the generators)."""

    mode: str  # "off" | "auto" | "on"
    background: int | None
    background_threshold: int | None
    foreground_dir: str | None


def foreground_of(source: Sample, pixels: np.ndarray, spec: ForegroundSpec, generator: str) -> np.ndarray | None:
    """The object mask of ``source`` (H x W bool), or None when anomalies may go anywhere.

    ``foreground_dir`` (a folder of masks named like the image, ``<key or meta path>.png``) wins;
    otherwise the NSA threshold rule with the per-class (background, threshold) pair or the
    explicit ``background``/``background_threshold``. ``mode="auto"`` applies it only where a
    pair is known (NSA's object classes); ``"on"`` requires one.
    """
    if spec.mode == "off":
        return None
    if spec.foreground_dir is not None:
        return _read_foreground(source, pixels, Path(spec.foreground_dir), generator)
    pair = background_pair(source, spec, generator)
    return None if pair is None else object_mask(pixels, *pair)


def background_pair(source: Sample, spec: ForegroundSpec, generator: str) -> tuple[int, int] | None:
    """The (background brightness, threshold) used for ``source``, or None (see ``foreground_of``)."""
    if spec.background is not None or spec.background_threshold is not None:
        if spec.background is None or spec.background_threshold is None:
            raise ConfigError(f"{generator}: set both background and background_threshold (or neither)")
        return spec.background, spec.background_threshold
    if source.category in OBJECT_BACKGROUND:
        return OBJECT_BACKGROUND[source.category]
    if spec.mode == "on":
        raise ConfigError(
            f"{generator}: object_mask='on' but image {source.key!r} (category {source.category!r}) has no known "
            f"background; known categories: {', '.join(sorted(OBJECT_BACKGROUND))}. Set background and "
            f"background_threshold, or foreground_dir"
        )
    return None


def _read_foreground(source: Sample, pixels: np.ndarray, folder: Path, generator: str) -> np.ndarray:
    from ...io.images import read_mask

    if not folder.is_dir():
        raise ConfigError(f"{generator}: foreground_dir {str(folder)!r} is not a folder")
    names = [source.meta.get("path"), source.key]
    candidates = [folder / Path(n).with_suffix(".png") for n in names if n]
    path = next((c for c in candidates if c.is_file()), None)
    if path is None:
        raise ConfigError(
            f"{generator}: no foreground mask for image {source.key!r} in foreground_dir (looked for "
            f"{', '.join(str(c) for c in candidates)})"
        )
    mask = read_mask(path)
    if mask.shape != pixels.shape[:2]:
        raise MalformedFileError(
            path, f"foreground mask is {mask.shape[1]}x{mask.shape[0]} but image {source.key!r} is "
            f"{pixels.shape[1]}x{pixels.shape[0]} (parameter foreground_dir)"
        )
    return mask


# ---------------------------------------------------------------------------------------------
# image folders (textures, donors)


@functools.lru_cache(maxsize=16)
def list_image_files(folder: str, parameter: str, generator: str) -> tuple[str, ...]:
    """Image files under ``folder`` (recursively, sorted): DTD's ``images/<class>/*.jpg`` works as is."""
    root = Path(folder).expanduser()
    if not root.is_dir():
        raise ConfigError(f"{generator}: {parameter} {folder!r} is not a folder")
    files = sorted(p.as_posix() for p in root.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise ConfigError(
            f"{generator}: {parameter} {folder!r} holds no images ({', '.join(IMAGE_SUFFIXES)}); "
            f"point it at a texture folder such as DTD's dtd/images"
        )
    return tuple(files)


def read_rgb(path: str, size: tuple[int, int] | None = None, *, gray: bool = False) -> np.ndarray:
    """Decode an image file with OpenCV as RGB (or gray) uint8, resized to ``size`` = (H, W)."""
    flag = cv2.IMREAD_GRAYSCALE if gray else cv2.IMREAD_COLOR
    array = cv2.imread(path, flag)
    if array is None:
        raise MalformedFileError(path, "cannot decode image")
    if not gray:
        array = cv2.cvtColor(array, cv2.COLOR_BGR2RGB)
    if size is not None and array.shape[:2] != size:
        array = cv2.resize(array, (size[1], size[0]), interpolation=cv2.INTER_LINEAR)
    return array if array.ndim == 3 else array[:, :, None]


# ---------------------------------------------------------------------------------------------
# DRAEM's texture augmenters (three distinct ones of ten, in random order)


def _lut3(tables: list[np.ndarray]) -> np.ndarray:
    return np.stack([np.clip(t, 0, 255) for t in tables], axis=-1).astype(np.uint8).reshape(256, 1, 3)


_LEVELS = np.arange(256, dtype=np.float64)


def _gamma_contrast(image: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, dict[str, Any]]:
    gammas = rng.uniform(0.5, 2.0, 3)
    lut = _lut3([np.rint(255.0 * (_LEVELS / 255.0) ** g) for g in gammas])
    return cv2.LUT(image, lut), {"gamma": gammas}


def _multiply_add_brightness(image, rng):
    mul, add = rng.uniform(0.8, 1.2), rng.uniform(-30.0, 30.0)
    ycrcb = cv2.cvtColor(image, cv2.COLOR_RGB2YCrCb)
    lut = _lut3([np.rint(_LEVELS * mul + add), _LEVELS, _LEVELS])
    return cv2.cvtColor(cv2.LUT(ycrcb, lut), cv2.COLOR_YCrCb2RGB), {"mul": mul, "add": add}


_SMOOTH = np.array([[1, 1, 1], [1, 5, 1], [1, 1, 1]], np.float32) / 13.0


def _sharpness(image, rng):
    """PIL's ``ImageEnhance.Sharpness``: blend with the SMOOTH-filtered image (edges kept)."""
    factor = float(rng.uniform(0.0, 2.0))
    smooth = cv2.filter2D(image, -1, _SMOOTH, borderType=cv2.BORDER_REPLICATE)
    smooth[0], smooth[-1], smooth[:, 0], smooth[:, -1] = image[0], image[-1], image[:, 0], image[:, -1]
    return cv2.addWeighted(image, factor, smooth, 1.0 - factor, 0.0), {"factor": factor}


def _hue_saturation(image, rng):
    hue_add, sat_add = (int(v) for v in rng.integers(-50, 51, 2))
    hsv = cv2.cvtColor(image, cv2.COLOR_RGB2HSV)  # H in [0, 180)
    shift = int(round(hue_add * 180 / 255))
    lut = _lut3([np.mod(_LEVELS + shift, 180), _LEVELS + sat_add, _LEVELS])
    return cv2.cvtColor(cv2.LUT(hsv, lut), cv2.COLOR_HSV2RGB), {"hue": hue_add, "saturation": sat_add}


def _solarize(image, rng):
    applied = bool(rng.random() < 0.5)
    threshold = rng.uniform(32.0, 128.0)
    if not applied:
        return image, {"applied": False, "threshold": threshold}
    table = np.where(_LEVELS >= threshold, 255 - _LEVELS, _LEVELS)
    return cv2.LUT(image, _lut3([table] * 3)), {"applied": True, "threshold": threshold}


def _posterize(image, rng):
    bits = int(rng.integers(1, 9))
    keep = (0xFF << (8 - bits)) & 0xFF
    return cv2.LUT(image, _lut3([np.bitwise_and(_LEVELS.astype(np.int64), keep)] * 3)), {"bits": bits}


def _invert(image, rng):
    return cv2.bitwise_not(image), {}


def _autocontrast(image, rng):
    """PIL's ``ImageOps.autocontrast`` with a cutoff of U(0, 20) % on each side, per channel."""
    cutoff = rng.uniform(0.0, 20.0)
    tables = []
    for c in range(image.shape[2]):
        hist = np.bincount(image[:, :, c].ravel(), minlength=256)
        cdf = np.cumsum(hist)
        total = cdf[-1]
        low = int(np.searchsorted(cdf, total * cutoff / 100.0, side="right"))
        high = int(np.searchsorted(cdf, total * (1 - cutoff / 100.0), side="left"))
        if high <= low:
            tables.append(_LEVELS)
        else:
            tables.append(np.rint((_LEVELS - low) * 255.0 / (high - low)))
    return cv2.LUT(image, _lut3(tables)), {"cutoff": cutoff}


def _equalize(image, rng):
    return cv2.merge([cv2.equalizeHist(image[:, :, c]) for c in range(image.shape[2])]), {}


def _affine_rotate(image, rng):
    angle = rng.uniform(-45.0, 45.0)
    return rotate(image, angle), {"angle": angle}


AUGMENTERS: dict[str, Callable[[np.ndarray, np.random.Generator], tuple[np.ndarray, dict[str, Any]]]] = {
    "gamma_contrast": _gamma_contrast,
    "multiply_add_brightness": _multiply_add_brightness,
    "sharpness": _sharpness,
    "hue_saturation": _hue_saturation,
    "solarize": _solarize,
    "posterize": _posterize,
    "invert": _invert,
    "autocontrast": _autocontrast,
    "equalize": _equalize,
    "affine_rotate": _affine_rotate,
}


def augment(image: np.ndarray, rng: np.random.Generator, count: int) -> tuple[np.ndarray, list[dict[str, Any]]]:
    """Apply ``count`` distinct DRAEM augmenters, in random order, to an RGB uint8 image."""
    names = list(AUGMENTERS)
    chosen = rng.choice(len(names), size=count, replace=False)
    record = []
    for index in chosen:
        image, params = AUGMENTERS[names[int(index)]](image, rng)
        record.append({"name": names[int(index)], **params})
    return image, record


def rotate(array: np.ndarray, angle: float, *, interpolation: int = cv2.INTER_LINEAR) -> np.ndarray:
    """Rotate about the centre by ``angle`` degrees (counter-clockwise), zeros outside."""
    h, w = array.shape[:2]
    matrix = cv2.getRotationMatrix2D(((w - 1) / 2.0, (h - 1) / 2.0), angle, 1.0)
    out = cv2.warpAffine(array, matrix, (w, h), flags=interpolation, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    return out if out.ndim == array.ndim else out[:, :, None]


# ---------------------------------------------------------------------------------------------
# Perlin noise

SQRT2 = math.sqrt(2.0)


@njit(cache=True, nogil=True)
def _perlin_kernel(height, width, res_y, res_x, angles):  # pragma: no cover - compiled
    out = np.empty((height, width), np.float32)
    grad_y = np.cos(angles)
    grad_x = np.sin(angles)
    col_cell = np.empty(width, np.int64)
    col_frac = np.empty(width, np.float64)
    col_fade = np.empty(width, np.float64)
    for j in range(width):
        v = j * res_x / width
        cj = int(math.floor(v))
        fx = v - cj
        col_cell[j] = cj
        col_frac[j] = fx
        col_fade[j] = fx * fx * fx * (fx * (fx * 6.0 - 15.0) + 10.0)
    for i in range(height):
        u = i * res_y / height
        ci = int(math.floor(u))
        fy = u - ci
        ty = fy * fy * fy * (fy * (fy * 6.0 - 15.0) + 10.0)
        for j in range(width):
            cj = col_cell[j]
            fx = col_frac[j]
            n00 = grad_y[ci, cj] * fy + grad_x[ci, cj] * fx
            n10 = grad_y[ci + 1, cj] * (fy - 1.0) + grad_x[ci + 1, cj] * fx
            n01 = grad_y[ci, cj + 1] * fy + grad_x[ci, cj + 1] * (fx - 1.0)
            n11 = grad_y[ci + 1, cj + 1] * (fy - 1.0) + grad_x[ci + 1, cj + 1] * (fx - 1.0)
            a = n00 + ty * (n10 - n00)
            b = n01 + ty * (n11 - n01)
            out[i, j] = 1.4142135623730951 * (a + col_fade[j] * (b - a))
    return out


def perlin_angles(rng: np.random.Generator, res_y: int, res_x: int) -> np.ndarray:
    """Gradient angles on the (res_y + 1) x (res_x + 1) lattice, uniform on [0, 2 pi)."""
    return 2.0 * np.pi * rng.random((res_y + 1, res_x + 1))


def perlin_noise(height: int, width: int, res_y: int, res_x: int, angles: np.ndarray) -> np.ndarray:
    """2-D Perlin noise (DRAEM's ``rand_perlin_2d_np``: quintic fade, output x sqrt 2) for any
    image size: pixel ``i`` sits at lattice coordinate ``i * res / size``."""
    return _perlin_kernel(int(height), int(width), int(res_y), int(res_x), np.ascontiguousarray(angles, np.float64))


def perlin_noise_numpy(height: int, width: int, res_y: int, res_x: int, angles: np.ndarray) -> np.ndarray:
    """The same noise in plain numpy (vectorised, DRAEM's formulation), the reference of the kernel."""
    u = np.arange(height) * res_y / height
    v = np.arange(width) * res_x / width
    ci, cj = np.floor(u).astype(np.int64), np.floor(v).astype(np.int64)
    fy, fx = (u - ci)[:, None], (v - cj)[None, :]
    gy, gx = np.cos(angles), np.sin(angles)

    def dot(di: int, dj: int) -> np.ndarray:
        rows, cols = (ci + di)[:, None], (cj + dj)[None, :]
        return gy[rows, cols] * (fy - di) + gx[rows, cols] * (fx - dj)

    def fade(t: np.ndarray) -> np.ndarray:
        return t * t * t * (t * (t * 6.0 - 15.0) + 10.0)

    ty, tx = fade(fy), fade(fx)
    a = dot(0, 0) + ty * (dot(1, 0) - dot(0, 0))
    b = dot(0, 1) + ty * (dot(1, 1) - dot(0, 1))
    return (SQRT2 * (a + tx * (b - a))).astype(np.float32)


# ---------------------------------------------------------------------------------------------
# colour jitter (torchvision ColorJitter semantics, float RGB in [0, 1])


def color_jitter(patch: np.ndarray, rng: np.random.Generator, brightness: float, contrast: float,
                 saturation: float, hue: float) -> tuple[np.ndarray, dict[str, Any]]:
    """Jitter an RGB uint8 patch: factors U(1 - x, 1 + x) (hue: shift U(-x, x) of the circle),
    applied in a random order, as ``torchvision.transforms.ColorJitter`` does."""
    image = patch.astype(np.float32) / 255.0
    factors = {
        "brightness": rng.uniform(max(0.0, 1 - brightness), 1 + brightness) if brightness > 0 else None,
        "contrast": rng.uniform(max(0.0, 1 - contrast), 1 + contrast) if contrast > 0 else None,
        "saturation": rng.uniform(max(0.0, 1 - saturation), 1 + saturation) if saturation > 0 else None,
        "hue": rng.uniform(-hue, hue) if hue > 0 else None,
    }
    order = [list(factors)[int(i)] for i in rng.permutation(4)]
    for name in order:
        f = factors[name]
        if f is None:
            continue
        if name == "brightness":
            image = np.clip(image * f, 0.0, 1.0)
        elif name == "contrast":
            mean = float(_gray(image).mean())
            image = np.clip(f * image + (1 - f) * mean, 0.0, 1.0)
        elif name == "saturation":
            gray = _gray(image)[:, :, None]
            image = np.clip(f * image + (1 - f) * gray, 0.0, 1.0)
        else:
            hsv = cv2.cvtColor(image, cv2.COLOR_RGB2HSV)  # float input: H in [0, 360)
            hsv[:, :, 0] = np.mod(hsv[:, :, 0] + f * 360.0, 360.0)
            image = np.clip(cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB), 0.0, 1.0)
    out = np.clip(np.rint(image * 255.0), 0, 255).astype(np.uint8)
    return out, {"order": order, **{k: v for k, v in factors.items() if v is not None}}


def _gray(image: np.ndarray) -> np.ndarray:
    return 0.299 * image[:, :, 0] + 0.587 * image[:, :, 1] + 0.114 * image[:, :, 2]


# ---------------------------------------------------------------------------------------------
# output


def changed_mask(before: np.ndarray, after: np.ndarray) -> np.ndarray:
    """H x W uint8, 1 where any channel differs."""
    diff = cv2.absdiff(before, after)
    if diff.ndim == 3 and diff.shape[2] > 1:
        # the saturated channel sum is non-zero exactly where some channel differs
        diff = cv2.transform(diff, np.ones((1, diff.shape[2]), np.float32))
    return np.minimum(diff.reshape(diff.shape[:2]), 1)


def anomaly_sample(generator: Any, source: Sample, pixels: np.ndarray, target: np.ndarray, seed: int,
                   defect: str, **details: Any) -> Sample:
    """The output ``Sample``: label 1, the source's envelope, the mask and the provenance; its key
    names the source and the seed, so samples of one source with other seeds do not collide."""
    return Sample(
        key=f"{source.key}/{generator.name}-{seed}",
        dataset=source.dataset,
        split=source.split,
        label=1,
        data=Image(pixels),
        category=source.category,
        defect=defect,
        target=target,
        meta={"source_path": source.meta.get("path")} if source.meta.get("path") else {},
        provenance=generator.provenance(seed, source, **details),
    )


def box_dict(y0: int, y1: int, x0: int, x1: int) -> dict[str, int]:
    return {"y0": int(y0), "y1": int(y1), "x0": int(x0), "x1": int(x1)}


def example_source(size: int = 64, seed: int = 0, category: str | None = "bottle") -> Sample:
    """A small RGB image (a bright object on a light background) for ``Generator.example()``."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size]
    disc = (yy - size / 2) ** 2 + (xx - size / 2) ** 2 < (size / 3) ** 2
    pixels = np.full((size, size, 3), 230, np.uint8)
    pixels[disc] = (60, 90, 140)
    noise = rng.integers(-12, 13, (size, size, 3))
    pixels = np.clip(pixels.astype(np.int64) + noise, 0, 255).astype(np.uint8)
    return Sample(key=f"example/{category or 'image'}/000.png", dataset="example", split="train", label=0,
                  data=Image(pixels), category=category, target=np.zeros((size, size), np.uint8))
