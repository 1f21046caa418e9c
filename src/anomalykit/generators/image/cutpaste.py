"""CutPaste and CutPaste-Scar (Li et al., CVPR 2021).

``cutpaste``: a rectangle of U(0.02, 0.15) of the image area, aspect ratio in (0.3, 1) U (1, 3.3)
(each interval with probability 1/2, then uniform; or log-uniform), is cut at a uniform location,
colour-jittered (``ColorJitter(0.1, 0.1, 0.1, 0.1)``) and pasted at another uniform location
without blending.

``cutpaste_scar``: a thin scar, width U(2, 16) px and height U(10, 25) px, is cut, jittered,
rotated by U(-45, 45) degrees (the footprint grows to hold it) and pasted with its rotated
footprint as alpha.

The paper gives image-level labels only; here the target is exactly the set of pixels the paste
changed (inside the pasted rectangle or scar footprint, recorded in the provenance).
anomalib's ``CutPasteGenerator`` is a different, alpha-blended variant and is not reproduced.

>>> import anomalykit
>>> from anomalykit.generators.image._procedural import example_source
>>> out = anomalykit.get_generator("cutpaste_scar")(example_source(), seed=3)
>>> out.provenance["generator"], out.target.dtype.name
('cutpaste_scar', 'uint8')
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from ...errors import ConfigError
from ...schema import Modality, Sample
from ..base import Generator, GeneratorConfig, param, register_generator
from ._procedural import (
    ForegroundSpec,
    anomaly_sample,
    box_dict,
    changed_mask,
    color_jitter,
    example_source,
    foreground_of,
    require_rgb,
)


@dataclass
class _CutPasteCommon(GeneratorConfig):
    brightness: float = param(0.1, low=0.0, high=1.0, doc="ColorJitter brightness")
    contrast: float = param(0.1, low=0.0, high=1.0, doc="ColorJitter contrast")
    saturation: float = param(0.1, low=0.0, high=1.0, doc="ColorJitter saturation")
    hue: float = param(0.1, low=0.0, high=0.5, doc="ColorJitter hue")
    object_mask: str = param("off", choices=("off", "auto", "on"),
                             doc="cut from and paste onto the object (NSA's foreground rule)")
    background: int | None = param(None, low=0, high=255)
    background_threshold: int | None = param(None, low=0, high=255)
    foreground_dir: str | None = param(None, doc="folder of precomputed foreground masks (<image path>.png)")
    min_object_fraction: float = param(0.5, low=0.0, high=1.0, doc="with object_mask: part of the cut on the object")
    min_overlap: float = param(0.25, low=0.0, high=1.0, doc="with object_mask: part of the paste on the object")
    max_attempts: int = param(200, low=1, high=10000, doc="placement draws (with object_mask), and redraws when "
                                                          "a paste changes nothing")


@dataclass
class CutPasteConfig(_CutPasteCommon):
    """Parameters of ``cutpaste`` (defaults: the paper's)."""

    area_ratio_low: float = param(0.02, low=0.0, high=1.0, doc="patch area / image area, lower bound")
    area_ratio_high: float = param(0.15, low=0.0, high=1.0)
    aspect_ratio_low: float = param(0.3, low=0.01, high=1.0, doc="width / height in [low, 1/low]")
    aspect_sampling: str = param("two_interval", choices=("two_interval", "log_uniform"))

    def validate(self) -> None:
        super().validate()
        if not 0 < self.area_ratio_low <= self.area_ratio_high:
            raise ConfigError(f"CutPasteConfig: need 0 < area_ratio_low ({self.area_ratio_low}) <= area_ratio_high "
                              f"({self.area_ratio_high})")


@dataclass
class CutPasteScarConfig(_CutPasteCommon):
    """Parameters of ``cutpaste_scar`` (defaults: the paper's)."""

    scar_width_low: int = param(2, low=1, high=4096, doc="scar width in pixels")
    scar_width_high: int = param(16, low=1, high=4096)
    scar_height_low: int = param(10, low=1, high=4096, doc="scar length in pixels")
    scar_height_high: int = param(25, low=1, high=4096)
    rotation: float = param(45.0, low=0.0, high=180.0, doc="rotation U(-x, x) degrees")

    def validate(self) -> None:
        super().validate()
        for name in ("width", "height"):
            low, high = getattr(self, f"scar_{name}_low"), getattr(self, f"scar_{name}_high")
            if low > high:
                raise ConfigError(f"CutPasteScarConfig.scar_{name}_low ({low}) is above scar_{name}_high ({high})")


class _CutPasteBase(Generator):
    modality = Modality.IMAGE
    version = "1"

    def _foreground(self, source: Sample, image: np.ndarray) -> np.ndarray | None:
        c = self.config
        return foreground_of(source, image, ForegroundSpec(c.object_mask, c.background, c.background_threshold,
                                                           c.foreground_dir), self.name)

    def _corner(self, rng: np.random.Generator, image_shape: tuple[int, int], footprint: np.ndarray,
                foreground: np.ndarray | None, enough: float) -> tuple[int, int]:
        """Top-left corner of a ``footprint`` placed uniformly in the image; with a foreground, the
        first draw whose footprint is at least ``enough`` on the object (or, failing that, the best
        of ``max_attempts`` draws)."""
        height, width = image_shape
        fh, fw = footprint.shape
        best, best_overlap = (0, 0), -1.0
        area = max(1, int(footprint.sum()))
        for _ in range(self.config.max_attempts if foreground is not None else 1):
            y, x = int(rng.integers(0, height - fh + 1)), int(rng.integers(0, width - fw + 1))
            if foreground is None:
                return y, x
            overlap = float((foreground[y:y + fh, x:x + fw] & footprint).sum()) / area
            if overlap > best_overlap:
                best, best_overlap = (y, x), overlap
            if overlap >= enough:
                break
        return best

    def _cut(self, rng: np.random.Generator, image_shape: tuple[int, int], size: tuple[int, int],
             foreground: np.ndarray | None) -> tuple[int, int]:
        """Where to cut a rectangle of ``size``: mostly on the object (``min_object_fraction``)."""
        return self._corner(rng, image_shape, np.ones(size, bool), foreground, self.config.min_object_fraction)

    def _place(self, rng: np.random.Generator, image_shape: tuple[int, int], footprint: np.ndarray,
               foreground: np.ndarray | None) -> tuple[int, int]:
        """Where to paste ``footprint``: overlapping the object (``min_overlap``)."""
        return self._corner(rng, image_shape, footprint, foreground, self.config.min_overlap)

    def _jitter(self, patch: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, dict[str, Any]]:
        c = self.config
        return color_jitter(patch, rng, c.brightness, c.contrast, c.saturation, c.hue)

    def _no_change(self, source: Sample) -> ConfigError:
        return ConfigError(f"{self.name}: every paste left image {source.key!r} unchanged in {self.config.max_attempts} "
                           f"tries (max_attempts); is the image uniform and the jitter zero?")


@register_generator("cutpaste")
class CutPasteGenerator(_CutPasteBase):
    """CutPaste: a jittered rectangle pasted elsewhere; see the module docstring."""

    config_class = CutPasteConfig
    config: CutPasteConfig

    def generate(self, source: Sample | None, rng: np.random.Generator, seed: int) -> Sample:
        assert source is not None
        c = self.config
        image = require_rgb(source, self.name)
        height, width = image.shape[:2]
        smallest = c.area_ratio_low * height * width
        if smallest < 4:
            raise ConfigError(
                f"cutpaste: image {source.key!r} is {width}x{height}, smaller than the patch bounds: "
                f"area_ratio_low={c.area_ratio_low} gives patches of {smallest:.1f} px (at least 4 needed)"
            )
        foreground = self._foreground(source, image)
        for attempt in range(c.max_attempts):
            area = rng.uniform(c.area_ratio_low, c.area_ratio_high) * height * width
            aspect = self._aspect(rng)
            pw = int(np.clip(round(math.sqrt(area * aspect)), 1, width))
            ph = int(np.clip(round(math.sqrt(area / aspect)), 1, height))
            cy, cx = self._cut(rng, (height, width), (ph, pw), foreground)
            patch, jitter = self._jitter(image[cy:cy + ph, cx:cx + pw], rng)
            py, px = self._place(rng, (height, width), np.ones((ph, pw), bool), foreground)
            out = image.copy()
            out[py:py + ph, px:px + pw] = patch
            changed = changed_mask(image, out)
            if changed.any():
                return anomaly_sample(self, source, out, changed, seed, "cutpaste",
                                      area_ratio=area / (height * width), aspect_ratio=aspect,
                                      cut_box=box_dict(cy, cy + ph, cx, cx + pw),
                                      paste_box=box_dict(py, py + ph, px, px + pw), jitter=jitter,
                                      attempts=attempt + 1)
        raise self._no_change(source)

    def _aspect(self, rng: np.random.Generator) -> float:
        low = self.config.aspect_ratio_low
        if self.config.aspect_sampling == "log_uniform":
            return float(math.exp(rng.uniform(math.log(low), -math.log(low))))
        if rng.random() < 0.5:
            return float(rng.uniform(low, 1.0))
        return float(rng.uniform(1.0, 1.0 / low))

    @classmethod
    def example(cls) -> tuple[dict[str, Any], Sample | None]:
        return {}, example_source(64)


@register_generator("cutpaste_scar")
class CutPasteScarGenerator(_CutPasteBase):
    """CutPaste-Scar: a thin jittered, rotated strip; see the module docstring."""

    config_class = CutPasteScarConfig
    config: CutPasteScarConfig

    def generate(self, source: Sample | None, rng: np.random.Generator, seed: int) -> Sample:
        assert source is not None
        c = self.config
        image = require_rgb(source, self.name)
        height, width = image.shape[:2]
        need = _largest_footprint(c.scar_width_high, c.scar_height_high, c.rotation)
        if height < need[0] or width < need[1] or height < c.scar_height_high or width < c.scar_width_high:
            raise ConfigError(
                f"cutpaste_scar: image {source.key!r} is {width}x{height}, smaller than the patch bounds: a scar of up "
                f"to {c.scar_width_high}x{c.scar_height_high} px (scar_width_high x scar_height_high) rotated by up "
                f"to {c.rotation} degrees (rotation) needs {need[1]}x{need[0]} px"
            )
        foreground = self._foreground(source, image)
        for attempt in range(c.max_attempts):
            sw = int(rng.integers(c.scar_width_low, c.scar_width_high + 1))
            sh = int(rng.integers(c.scar_height_low, c.scar_height_high + 1))
            cy, cx = self._cut(rng, (height, width), (sh, sw), foreground)
            patch, jitter = self._jitter(image[cy:cy + sh, cx:cx + sw], rng)
            angle = float(rng.uniform(-c.rotation, c.rotation))
            rotated, footprint = _rotate_expand(patch, angle)
            fh, fw = footprint.shape
            py, px = self._place(rng, (height, width), footprint, foreground)
            out = image.copy()
            region = out[py:py + fh, px:px + fw]
            region[footprint] = rotated[footprint]
            changed = changed_mask(image, out)
            if changed.any():
                return anomaly_sample(self, source, out, changed, seed, "cutpaste_scar",
                                      scar_size=[sh, sw], rotation=angle, cut_box=box_dict(cy, cy + sh, cx, cx + sw),
                                      paste_box=box_dict(py, py + fh, px, px + fw), jitter=jitter,
                                      footprint_pixels=int(footprint.sum()), attempts=attempt + 1)
        raise self._no_change(source)

    @classmethod
    def example(cls) -> tuple[dict[str, Any], Sample | None]:
        return {}, example_source(64)


def _rotation(h: int, w: int, angle: float) -> tuple[np.ndarray, int, int]:
    """The affine matrix rotating an h x w patch by ``angle`` into a canvas that holds it whole."""
    rad = math.radians(angle)
    cos, sin = abs(math.cos(rad)), abs(math.sin(rad))
    new_w = max(1, int(math.ceil(w * cos + h * sin - 1e-9)))
    new_h = max(1, int(math.ceil(w * sin + h * cos - 1e-9)))
    matrix = cv2.getRotationMatrix2D(((w - 1) / 2.0, (h - 1) / 2.0), angle, 1.0)
    matrix[0, 2] += (new_w - 1) / 2.0 - (w - 1) / 2.0
    matrix[1, 2] += (new_h - 1) / 2.0 - (h - 1) / 2.0
    return matrix, new_h, new_w


def _rotate_expand(patch: np.ndarray, angle: float) -> tuple[np.ndarray, np.ndarray]:
    """Rotate a patch (nearest neighbour, like PIL's ``rotate(expand=True)``) and its footprint."""
    h, w = patch.shape[:2]
    matrix, new_h, new_w = _rotation(h, w, angle)
    rotated = cv2.warpAffine(patch, matrix, (new_w, new_h), flags=cv2.INTER_NEAREST, borderValue=0)
    footprint = cv2.warpAffine(np.ones((h, w), np.uint8), matrix, (new_w, new_h), flags=cv2.INTER_NEAREST,
                               borderValue=0).astype(bool)
    return rotated, footprint


@functools.lru_cache(maxsize=64)
def _largest_footprint(w: int, h: int, max_angle: float) -> tuple[int, int]:
    """Largest (height, width) canvas of an h x w scar rotated by up to ``max_angle`` degrees
    (181 trial rotations: cached, as every sample of a generator asks the same question)."""
    angles = np.linspace(0.0, min(max_angle, 180.0), 181)
    sizes = [_rotation(h, w, float(a))[1:] for a in angles]
    return max(s[0] for s in sizes), max(s[1] for s in sizes)
