"""NSA, Natural Synthetic Anomalies (Schlueter et al., ECCV 2022).

Patches cut from another normal image of the same class (the donor) are resized and blended into
the image with Poisson image editing (``cv2.seamlessClone``, ``NORMAL_CLONE``). Up to
``max_patches`` patches: the first always, each further one with probability 1/2. Per-class
patch bounds, object thresholds and label parameters follow NSA's MVTec AD settings.

Half-widths are ``clip((0.03 + Gamma(2, 0.05)) * dim, lo * dim, hi * dim)``; the source centre
is redrawn (up to 200 times) until the patch is mostly object, the resize factor is
``clip(N(1, 0.5), 0.7, 1.3)``, and the destination is redrawn until the patch overlaps the
object. Object masks: ``|mean RGB - background| > threshold``, median-blurred (size 7).

Labels (``label_mode``):

* ``exact`` (default): 1 on exactly the pixels the blend changed;
* ``binary``: NSA's label, ``mean_c |before - after| > tolerance`` median-blurred 5 x 5;
* ``logistic``: NSA's soft label ``binary / (1 + exp(-k (D - x0)))``, ``D`` the mean absolute
  difference median-filtered with a disk of radius 5, per-class ``(k, x0)``; a float32 mask.

Both NSA labels are restricted to changed pixels, so no unchanged pixel is ever labelled.

Donors: ``donor_dir`` (a folder of images), ``donor_dataset`` + ``donor_root`` (+
``donor_load_options``: normal training images of the same category of a registered dataset;
the corpus pipeline fills these with the dataset it runs on and its loader options), or, when neither is set, the image itself (NSA's ``same=True``).

>>> import anomalykit
>>> from anomalykit.generators.image._procedural import example_source
>>> out = anomalykit.get_generator("nsa", label_mode="logistic")(example_source(), seed=1)
>>> out.target.dtype.name, float(out.target.max()) <= 1.0
('float32', True)
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from scipy import ndimage

from ...errors import ConfigError
from ...schema import Modality, Sample
from ..base import Generator, GeneratorConfig, param, register_generator
from ._procedural import (
    ForegroundSpec,
    anomaly_sample,
    background_pair,
    box_dict,
    changed_mask,
    example_source,
    foreground_of,
    list_image_files,
    object_mask,
    read_rgb,
    require_gray_or_rgb,
)

DEFAULT_WIDTH_BOUNDS = ((0.03, 0.4), (0.03, 0.4))
#: half-width bounds as fractions of (height, width), per MVTec AD class
WIDTH_BOUNDS: dict[str, tuple[tuple[float, float], tuple[float, float]]] = {
    "capsule": ((0.03, 0.15), (0.03, 0.4)),
    "pill": ((0.03, 0.2), (0.03, 0.4)),
    "screw": ((0.03, 0.12), (0.03, 0.12)),
    "toothbrush": ((0.03, 0.4), (0.03, 0.2)),
    "zipper": ((0.03, 0.4), (0.03, 0.2)),
    "cable": ((0.05, 0.4), (0.05, 0.4)),
}
DEFAULT_MIN_OBJECT = 0.7
MIN_OBJECT_FRACTION = {"metal_nut": 0.5, "screw": 0.5, "toothbrush": 0.25}
DEFAULT_LOGISTIC = (1 / 6, 20.0)
LOGISTIC_PARAMS: dict[str, tuple[float, float]] = {
    **dict.fromkeys(("bottle", "cable", "hazelnut"), (1 / 12, 24.0)),
    "capsule": (1 / 2, 4.0),
    **dict.fromkeys(("metal_nut", "pill", "carpet", "grid", "leather", "tile"), (1 / 3, 7.0)),
    "screw": (1.0, 3.0),
    **dict.fromkeys(("toothbrush", "transistor", "zipper", "wood"), (1 / 6, 15.0)),
}
MIN_CLONE_PIXELS = 50  # cv2.seamlessClone fails on smaller masks
MIN_SIDE = 5  # and on patches under 3 pixels wide inside their 1-pixel border
_DISK5 = (np.add.outer(np.arange(-5, 6) ** 2, np.arange(-5, 6) ** 2) <= 25)


@dataclass
class NSAConfig(GeneratorConfig):
    """Parameters of ``nsa`` (defaults: NSA's best MVTec AD setting, with the exact mask)."""

    category: str | None = param(None, doc="class whose NSA settings apply; default: the image's category")
    width_bounds: list | None = param(None, doc="[[h_lo, h_hi], [w_lo, w_hi]] half-widths as fractions of H, W")
    max_patches: int = param(4, low=1, high=32, doc="first patch always, each further with probability 1/2")
    gamma_shape: float = param(2.0, low=1e-6, high=100.0)
    gamma_scale: float = param(0.05, low=1e-6, high=10.0)
    gamma_offset: float = param(0.03, low=0.0, high=1.0)
    resize: bool = param(True, doc="resample the patch by clip(N(1, 0.5), resize_low, resize_high)")
    resize_low: float = param(0.7, low=0.05, high=10.0)
    resize_high: float = param(1.3, low=0.05, high=10.0)
    mode: str = param("normal_clone", choices=("normal_clone", "mixed_clone", "mix", "swap"),
                      doc="Poisson blending (OpenCV clone flag), a coin flip between both, or a hard paste")
    label_mode: str = param("exact", choices=("exact", "binary", "logistic"))
    tolerance: float = param(1.0, low=0.0, high=255.0, doc="binary label: mean |difference| above this")
    logistic_k: float | None = param(None, low=1e-6, high=100.0)
    logistic_x0: float | None = param(None, low=0.0, high=255.0)
    object_mask: str = param("auto", choices=("off", "auto", "on"),
                             doc="auto: NSA's object rule for its object classes, whole image otherwise")
    background: int | None = param(None, low=0, high=255)
    background_threshold: int | None = param(None, low=0, high=255)
    foreground_dir: str | None = param(None, doc="folder of precomputed foreground masks (<image path>.png)")
    min_object_fraction: float | None = param(None, low=0.0, high=1.0, doc="default: NSA's per-class value")
    min_overlap: float = param(0.25, low=0.0, high=1.0)
    max_attempts: int = param(200, low=1, high=10000)
    donor_dir: str | None = param(None, doc="folder of donor images")
    donor_dataset: str | None = param(None, doc="registered dataset whose normal training images are donors")
    donor_root: str | None = param(None)
    donor_load_options: dict | None = param(None, doc="loader options of donor_dataset (those of the sources)")
    reproduce_reference_quirks: bool = param(False, doc="clip resized patches to the half-width bounds, as NSA's code does")

    def validate(self) -> None:
        super().validate()
        if self.resize_low > self.resize_high:
            raise ConfigError(f"NSAConfig.resize_low ({self.resize_low}) is above resize_high ({self.resize_high})")
        if self.width_bounds is not None:
            self.width_bounds = [list(pair) for pair in _check_bounds(self.width_bounds)]
        if self.donor_load_options is not None and (self.donor_dataset is None
                                                     or not isinstance(self.donor_load_options, dict)):
            raise ConfigError(f"NSAConfig.donor_load_options: a mapping of loader options for donor_dataset, got "
                              f"{self.donor_load_options!r}" + ("" if self.donor_dataset else " without donor_dataset"))
        if (self.donor_dataset is None) != (self.donor_root is None):
            raise ConfigError("NSAConfig: donor_dataset and donor_root go together (the dataset name and its root folder)")
        if self.donor_dir is not None and self.donor_dataset is not None:
            raise ConfigError("NSAConfig: set donor_dir or donor_dataset, not both")
        if self.donor_dir is not None:
            list_image_files(str(Path(self.donor_dir).expanduser()), "donor_dir", "nsa")
        if (self.logistic_k is None) != (self.logistic_x0 is None):
            raise ConfigError("NSAConfig: set both logistic_k and logistic_x0 (or neither, for the per-class values)")


def _check_bounds(value: Any) -> tuple[tuple[float, float], tuple[float, float]]:
    try:
        (h_lo, h_hi), (w_lo, w_hi) = value
        bounds = ((float(h_lo), float(h_hi)), (float(w_lo), float(w_hi)))
    except (TypeError, ValueError):
        raise ConfigError(f"NSAConfig.width_bounds: expected [[h_lo, h_hi], [w_lo, w_hi]], got {value!r}") from None
    for lo, hi in bounds:
        if not 0 < lo <= hi <= 0.5:
            raise ConfigError(f"NSAConfig.width_bounds: need 0 < lo <= hi <= 0.5 (half-widths), got {value!r}")
    return bounds


@dataclass
class _Patch:
    record: dict[str, Any]
    placed: bool


@register_generator("nsa")
class NSAGenerator(Generator):
    """NSA Poisson-blended patches; see the module docstring."""

    version = "1"
    modality = Modality.IMAGE
    config_class = NSAConfig
    config: NSAConfig
    max_rounds = 5

    def generate(self, source: Sample | None, rng: np.random.Generator, seed: int) -> Sample:
        assert source is not None
        c = self.config
        image = require_gray_or_rgb(source, self.name)
        height, width = image.shape[:2]
        category = c.category or source.category
        bounds = _check_bounds(c.width_bounds) if c.width_bounds is not None else WIDTH_BOUNDS.get(category or "", DEFAULT_WIDTH_BOUNDS)
        half = self._half_width_range(source, bounds, height, width)
        min_object = c.min_object_fraction if c.min_object_fraction is not None else MIN_OBJECT_FRACTION.get(category or "", DEFAULT_MIN_OBJECT)
        spec = ForegroundSpec(c.object_mask, c.background, c.background_threshold, c.foreground_dir)
        dest_object = foreground_of(source, image, spec, self.name)
        donor, donor_record, donor_sample = self._donor(source, image, rng)
        src_object = self._donor_object(source, donor, donor_sample, dest_object, spec, image)

        patches: list[dict[str, Any]] = []
        for round_index in range(self.max_rounds):
            out = image.copy()
            for i in range(c.max_patches):
                if i > 0 and rng.integers(2) == 0:
                    continue
                patch = self._add_patch(out, donor, dest_object, src_object, half, min_object, rng)
                patches.append({"round": round_index, **patch.record})
            changed = changed_mask(image, out)
            if changed.any():
                break
        else:
            raise ConfigError(
                f"nsa: no patch could be blended into image {source.key!r} in {self.max_rounds} rounds of "
                f"{c.max_attempts} placement tries (max_attempts); the object may be too small for "
                f"min_object_fraction={min_object} or object_mask={c.object_mask!r}"
            )
        target, label_record = self._label(image, out, changed, category)
        return anomaly_sample(self, source, out, target, seed, "nsa", category_settings=category,
                              width_bounds=[list(b) for b in bounds], min_object_fraction=min_object,
                              patches=patches, changed_pixels=int(changed.sum()), **donor_record, **label_record)

    # -- pieces ------------------------------------------------------------------------------
    def _half_width_range(self, source: Sample, bounds, height: int, width: int) -> tuple[int, int, int, int]:
        (h_lo, h_hi), (w_lo, w_hi) = bounds
        lo_h, hi_h = max(1, round(h_lo * height)), max(1, round(h_hi * height))
        lo_w, hi_w = max(1, round(w_lo * width)), max(1, round(w_hi * width))
        interior = (2 * hi_h - 2) * (2 * hi_w - 2)
        if interior < MIN_CLONE_PIXELS:
            raise ConfigError(
                f"nsa: image {source.key!r} is {width}x{height}, smaller than the patch bounds: width_bounds "
                f"{[list(b) for b in bounds]} allow patches of at most {2 * hi_w}x{2 * hi_h} px, under the "
                f"{MIN_CLONE_PIXELS} blended pixels Poisson blending needs"
            )
        return lo_h, hi_h, lo_w, hi_w

    def _donor(self, source: Sample, image: np.ndarray,
               rng: np.random.Generator) -> tuple[np.ndarray, dict[str, Any], Sample | None]:
        c = self.config
        height, width, channels = image.shape
        if c.donor_dir is not None:
            folder = Path(c.donor_dir).expanduser()
            files = list_image_files(str(folder), "donor_dir", self.name)
            path = files[int(rng.integers(len(files)))]
            donor = read_rgb(path, (height, width), gray=channels == 1)
            return donor, {"donor": Path(path).relative_to(folder).as_posix()}, None
        if c.donor_dataset is not None:
            sample = _pick_donor(c.donor_dataset, c.donor_root, c.donor_load_options, source, rng)  # type: ignore[arg-type]
            donor = sample.data.pixels
            if donor.shape[2] != channels:
                donor = cv2.cvtColor(donor, cv2.COLOR_RGB2GRAY)[:, :, None] if channels == 1 else np.repeat(donor, 3, axis=2)
            if donor.shape[:2] != (height, width):
                donor = cv2.resize(donor, (width, height), interpolation=cv2.INTER_LINEAR)
                donor = donor if donor.ndim == 3 else donor[:, :, None]
            return donor, {"donor": sample.key}, sample
        return image, {"donor": "self"}, None

    def _donor_object(self, source: Sample, donor: np.ndarray, donor_sample: Sample | None,
                      dest_object: np.ndarray | None, spec: ForegroundSpec, image: np.ndarray) -> np.ndarray | None:
        """The donor's object mask, found the same way as the image's."""
        if dest_object is None:
            return None
        if donor is image:
            return dest_object
        if spec.foreground_dir is not None:
            if donor_sample is None:
                return np.ones(donor.shape[:2], bool)  # a donor folder has no masks of its own
            mask = foreground_of(donor_sample, donor_sample.data.pixels, spec, self.name)
            if mask is not None and mask.shape != donor.shape[:2]:
                mask = cv2.resize(mask.astype(np.uint8), donor.shape[1::-1], interpolation=cv2.INTER_NEAREST).astype(bool)
            return mask
        pair = background_pair(source, spec, self.name)
        return None if pair is None else object_mask(donor, *pair)

    def _patch_size(self, rng: np.random.Generator, half: tuple[int, int, int, int], height: int, width: int) -> tuple[int, int]:
        c = self.config
        lo_h, hi_h, lo_w, hi_w = half
        half_h = int(np.clip((c.gamma_offset + rng.gamma(c.gamma_shape, c.gamma_scale)) * height, lo_h, hi_h))
        half_w = int(np.clip((c.gamma_offset + rng.gamma(c.gamma_shape, c.gamma_scale)) * width, lo_w, hi_w))
        return half_h, half_w

    def _add_patch(self, out: np.ndarray, donor: np.ndarray, dest_object: np.ndarray | None,
                   src_object: np.ndarray | None, half: tuple[int, int, int, int], min_object: float,
                   rng: np.random.Generator) -> _Patch:
        c = self.config
        height, width = out.shape[:2]
        lo_h, hi_h, lo_w, hi_w = half
        half_h, half_w = self._patch_size(rng, half, height, width)
        objects = dest_object is not None and src_object is not None

        # source location: uniform centre; with objects, mostly on the object
        for attempt in range(c.max_attempts):
            cy = int(rng.integers(lo_h, max(lo_h + 1, height - lo_h)))
            cx = int(rng.integers(lo_w, max(lo_w + 1, width - lo_w)))
            sy0, sy1 = max(0, cy - half_h), min(height, cy + half_h)
            sx0, sx1 = max(0, cx - half_w), min(width, cx + half_w)
            if sy1 - sy0 < MIN_SIDE or sx1 - sx0 < MIN_SIDE:
                continue
            if not objects or src_object[sy0:sy1, sx0:sx1].mean() > min_object:  # type: ignore[index]
                break
        else:
            return _Patch({"placed": False, "reason": "no source location on the object"}, False)
        patch = donor[sy0:sy1, sx0:sx1]
        patch_object = src_object[sy0:sy1, sx0:sx1] if objects else None  # type: ignore[index]
        ph, pw = patch.shape[:2]
        scale = 1.0
        if c.resize:
            scale = float(np.clip(rng.normal(1.0, 0.5), c.resize_low, c.resize_high))
            if c.reproduce_reference_quirks:  # NSA clips full sizes to the half-width bounds
                bh, bw = (lo_h, hi_h), (lo_w, hi_w)
            else:
                bh, bw = (2 * lo_h, 2 * hi_h), (2 * lo_w, 2 * hi_w)
            new_h = float(np.clip(scale * ph, *bh))
            new_w = int(np.clip(int(new_h / ph * pw), *bw))
            new_h = int(np.clip(int(new_w / pw * ph), *bh))
            new_h, new_w = min(max(new_h, MIN_SIDE), height), min(max(new_w, MIN_SIDE), width)
            if (new_h, new_w) != (ph, pw):
                patch = cv2.resize(patch, (new_w, new_h), interpolation=cv2.INTER_LINEAR)
                patch = patch if patch.ndim == 3 else patch[:, :, None]
                if patch_object is not None:
                    patch_object = cv2.resize(patch_object.astype(np.uint8), (new_w, new_h),
                                              interpolation=cv2.INTER_NEAREST).astype(bool)
            ph, pw = new_h, new_w

        # destination: uniform; with objects, overlapping the object
        area = ph * pw
        if objects and not patch_object.any():  # type: ignore[union-attr]
            return _Patch({"placed": False, "reason": "the resized patch holds no object",
                           "src_box": box_dict(sy0, sy1, sx0, sx1)}, False)
        for attempt in range(c.max_attempts):
            dy0, dx0 = int(rng.integers(0, height - ph + 1)), int(rng.integers(0, width - pw + 1))
            if not objects:
                break
            dest_box = dest_object[dy0:dy0 + ph, dx0:dx0 + pw]  # type: ignore[index]
            on_object = patch_object.sum()  # type: ignore[union-attr]
            if on_object / area > min_object and (dest_box & patch_object).sum() / on_object > c.min_overlap:
                break
        else:
            return _Patch({"placed": False, "reason": "no destination overlapping the object",
                           "src_box": box_dict(sy0, sy1, sx0, sx1)}, False)
        dy1, dx1 = dy0 + ph, dx0 + pw
        patch_mask = np.ones((ph, pw), bool)
        clone_mask = patch_mask.copy()
        if objects:
            dest_box = dest_object[dy0:dy1, dx0:dx1]  # type: ignore[index]
            patch_mask &= patch_object | dest_box  # type: ignore[operator]
            clone_mask = patch_mask | (~patch_object & ~dest_box)  # type: ignore[operator]
        record: dict[str, Any] = {"src_box": box_dict(sy0, sy1, sx0, sx1), "dest_box": box_dict(dy0, dy1, dx0, dx1),
                                  "scale": scale}
        mode = c.mode
        if mode == "mix":
            mode = ("normal_clone", "mixed_clone")[int(rng.integers(2))]
        record["mode"] = mode
        if mode == "swap":
            region = out[dy0:dy1, dx0:dx1]
            region[patch_mask] = patch[patch_mask]
            return _Patch({**record, "placed": True}, True)
        clone_mask[0, :] = clone_mask[-1, :] = False
        clone_mask[:, 0] = clone_mask[:, -1] = False
        if clone_mask.sum() < MIN_CLONE_PIXELS:
            return _Patch({**record, "placed": False, "reason": f"under {MIN_CLONE_PIXELS} pixels to blend"}, False)
        try:
            out[:] = _seamless_clone(out, patch, clone_mask, (dy0, dx0),
                                     cv2.NORMAL_CLONE if mode == "normal_clone" else cv2.MIXED_CLONE)
        except cv2.error as exc:  # OpenCV rejects some degenerate masks; NSA skips the patch then
            return _Patch({**record, "placed": False, "reason": f"OpenCV: {str(exc).strip().splitlines()[-1]}"}, False)
        return _Patch({**record, "placed": True}, True)

    def _label(self, before: np.ndarray, after: np.ndarray, changed: np.ndarray,
               category: str | None) -> tuple[np.ndarray, dict[str, Any]]:
        c = self.config
        if c.label_mode == "exact":
            return changed, {"label_mode": "exact"}
        difference = np.abs(before.astype(np.float32) - after.astype(np.float32)).mean(axis=2)
        binary = cv2.medianBlur((difference > c.tolerance).astype(np.uint8), 5).astype(bool) & changed
        if c.label_mode == "binary":
            return binary, {"label_mode": "binary", "tolerance": c.tolerance}
        if c.logistic_k is not None:
            k, x0 = c.logistic_k, c.logistic_x0
        else:
            k, x0 = LOGISTIC_PARAMS.get(category or "", DEFAULT_LOGISTIC)
        intensity = np.zeros_like(difference)
        rows, cols = np.nonzero(binary)
        if rows.size:
            y0, y1 = max(0, rows.min() - 5), min(binary.shape[0], rows.max() + 6)
            x0_, x1 = max(0, cols.min() - 5), min(binary.shape[1], cols.max() + 6)
            window = (difference * binary)[y0:y1, x0_:x1]
            intensity[y0:y1, x0_:x1] = ndimage.median_filter(window, footprint=_DISK5, mode="nearest")
        soft = binary / (1.0 + np.exp(-k * (intensity - x0)))
        return soft.astype(np.float32), {"label_mode": "logistic", "tolerance": c.tolerance, "logistic_k": k,
                                         "logistic_x0": x0}

    @classmethod
    def example(cls) -> tuple[dict[str, Any], Sample | None]:
        return {}, example_source(64)


def _seamless_clone(dest: np.ndarray, patch: np.ndarray, clone_mask: np.ndarray, corner: tuple[int, int],
                    flag: int) -> np.ndarray:
    """Poisson-blend ``patch`` into ``dest`` with its top-left corner at ``corner``.

    The patch is placed on a copy of ``dest`` and the mask on a full-size canvas; the centre
    passed to OpenCV is that of the mask's bounding box, so the blend lands exactly where the
    patch was placed (OpenCV anchors the region at ``centre - size // 2``).
    """
    y0, x0 = corner
    ph, pw = clone_mask.shape
    gray = dest.shape[2] == 1
    dest3 = np.concatenate([dest, np.zeros_like(dest), np.zeros_like(dest)], axis=2) if gray else dest
    patch3 = np.concatenate([patch, np.zeros_like(patch), np.zeros_like(patch)], axis=2) if gray else patch
    canvas = dest3.copy()
    canvas[y0:y0 + ph, x0:x0 + pw] = patch3
    mask = np.zeros(dest.shape[:2], np.uint8)
    mask[y0:y0 + ph, x0:x0 + pw] = clone_mask.astype(np.uint8) * 255
    bx, by, bw, bh = cv2.boundingRect(mask)
    blended = cv2.seamlessClone(canvas, dest3, mask, (bx + bw // 2, by + bh // 2), flag)
    return blended[:, :, :1] if gray else blended


_DONOR_POOLS: dict[tuple[str, str, str], Any] = {}


def _pick_donor(dataset: str, root: str, load_options: dict[str, Any] | None, source: Sample,
                rng: np.random.Generator) -> Sample:
    """A normal training image of the source's category (not the source) from a registered dataset,
    loaded with the same options as the sources (a split file decides what is training data)."""
    import json

    import anomalykit

    key = (dataset, str(root), json.dumps(load_options or {}, sort_keys=True, default=str))
    pool = _DONOR_POOLS.get(key)
    if pool is None:
        normal = anomalykit.load(dataset, root, **(load_options or {})).filter(split="train", label=0)
        pool = (normal, normal.manifest.column("key").to_pylist(), normal.manifest.column("category").to_pylist())
        _DONOR_POOLS[key] = pool
    normal, keys, categories = pool
    candidates = [i for i, (k, cat) in enumerate(zip(keys, categories))
                  if k != source.key and (source.category is None or cat == source.category)]
    if not candidates:
        raise ConfigError(
            f"nsa: no other normal training image of category {source.category!r} in {dataset} at {root} to take "
            f"patches from for image {source.key!r} (donor_dataset); add images, set donor_dir, or unset donor_dataset "
            f"to take patches from the image itself"
        )
    return normal[candidates[int(rng.integers(len(candidates)))]]
