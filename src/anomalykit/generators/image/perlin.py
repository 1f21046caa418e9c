"""DRAEM's Perlin-noise anomalies (Zavrtanik et al., ICCV 2021).

A Perlin noise map at a random lattice scale (2^k per axis, k in [0, 6)), rotated by
U(-90, 90) degrees and thresholded at 0.5, selects the anomalous region; inside it the image is
blended with an anomaly source (a random texture from a folder such as DTD's ``images``, or the
image itself) that went through three distinct DRAEM augmenters of ten::

    out = I (1 - M) + (1 - beta) A M + beta I M,   beta ~ U(0, 0.8)

The mask is exactly the set of changed pixels. DRAEM's training-time extras (returning the
normal image half of the time, pre-rotating the image) are left to the training pipeline.

>>> import anomalykit
>>> from anomalykit.generators.image._procedural import example_source
>>> gen = anomalykit.get_generator("perlin")
>>> out = gen(example_source(), seed=0)
>>> out.label, out.target.shape
(1, (64, 64))
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from ...errors import ConfigError
from ...schema import Modality, Sample
from ..base import Generator, GeneratorConfig, param, register_generator
from ._procedural import (
    ForegroundSpec,
    anomaly_sample,
    augment,
    changed_mask,
    example_source,
    foreground_of,
    list_image_files,
    perlin_angles,
    perlin_noise,
    read_rgb,
    require_rgb,
    rotate,
)


@dataclass
class PerlinConfig(GeneratorConfig):
    """Parameters of ``perlin`` (defaults: DRAEM's)."""

    texture_dir: str | None = param(None, doc="folder of texture images (searched recursively), e.g. dtd/images")
    anomaly_source: str = param("auto", choices=("auto", "texture", "image", "noise"),
                                doc="auto: textures when texture_dir is set, else the image itself; noise: the "
                                    "Perlin noise as a grey image, as anomalib does without textures")
    min_scale_exponent: int = param(0, low=0, high=10, doc="lattice scale 2^k, k >= this")
    max_scale_exponent: int = param(6, low=1, high=11, doc="k < this (exclusive, as in DRAEM)")
    threshold: float = param(0.5, low=-1.5, high=1.5, doc="mask = noise > threshold")
    noise_rotation: float = param(90.0, low=0.0, high=180.0, doc="noise rotated by U(-x, x) degrees")
    beta_low: float = param(0.0, low=0.0, high=1.0, doc="weight of the original image inside the mask")
    beta_high: float = param(0.8, low=0.0, high=1.0)
    num_augmenters: int = param(3, low=0, high=10, doc="distinct DRAEM augmenters applied to the source")
    max_retries: int = param(10, low=1, high=1000, doc="redraws when the mask comes out empty")
    object_mask: str = param("off", choices=("off", "auto", "on"),
                             doc="keep the anomaly on the object (NSA's foreground rule)")
    background: int | None = param(None, low=0, high=255)
    background_threshold: int | None = param(None, low=0, high=255)
    foreground_dir: str | None = param(None, doc="folder of precomputed foreground masks (<image path>.png)")

    def validate(self) -> None:
        super().validate()
        if self.min_scale_exponent >= self.max_scale_exponent:
            raise ConfigError(f"PerlinConfig.min_scale_exponent ({self.min_scale_exponent}) must be below "
                              f"max_scale_exponent ({self.max_scale_exponent}), which is exclusive")
        if self.beta_low > self.beta_high:
            raise ConfigError(f"PerlinConfig.beta_low ({self.beta_low}) is above beta_high ({self.beta_high})")
        if self.anomaly_source == "texture" and self.texture_dir is None:
            raise ConfigError("PerlinConfig.anomaly_source='texture' needs texture_dir (a folder of texture images)")
        if self.texture_dir is not None:
            list_image_files(str(Path(self.texture_dir).expanduser()), "texture_dir", "perlin")


@register_generator("perlin")
class PerlinGenerator(Generator):
    """DRAEM Perlin-noise anomalies; see the module docstring."""

    version = "1"
    modality = Modality.IMAGE
    config_class = PerlinConfig
    config: PerlinConfig

    def generate(self, source: Sample | None, rng: np.random.Generator, seed: int) -> Sample:
        assert source is not None
        cfg = self.config
        image = require_rgb(source, self.name)
        height, width = image.shape[:2]
        if height < 2 or width < 2:
            raise ConfigError(f"perlin: image {source.key!r} is {width}x{height}; Perlin masks need at least 2x2 pixels")
        foreground = foreground_of(source, image, ForegroundSpec(cfg.object_mask, cfg.background,
                                                                 cfg.background_threshold, cfg.foreground_dir), self.name)
        use_textures = cfg.anomaly_source == "texture" or (cfg.anomaly_source == "auto" and cfg.texture_dir is not None)

        for attempt in range(cfg.max_retries):
            mask, noise, noise_record = self._mask(rng, height, width, foreground, last=attempt == cfg.max_retries - 1)
            if not cv2.countNonZero(mask):
                continue
            if use_textures:
                folder = Path(cfg.texture_dir).expanduser()  # type: ignore[arg-type]
                files = list_image_files(str(folder), "texture_dir", self.name)
                texture_path = files[int(rng.integers(len(files)))]
                anomaly_source = read_rgb(texture_path, (height, width))
                source_record: dict[str, Any] = {"texture": Path(texture_path).relative_to(folder).as_posix()}
            elif cfg.anomaly_source == "noise":
                grey = np.clip(np.rint((noise * 0.5 + 0.25) * 255.0), 0, 255).astype(np.uint8)
                anomaly_source = cv2.merge([grey, grey, grey])
                source_record = {"texture": None, "anomaly_source": "noise"}
            else:
                anomaly_source = image
                source_record = {"texture": None, "anomaly_source": "image"}
            anomaly_source, augmenters = augment(anomaly_source, rng, cfg.num_augmenters)
            beta = float(rng.uniform(cfg.beta_low, cfg.beta_high))
            out = image.copy()
            cv2.copyTo(cv2.addWeighted(anomaly_source, 1.0 - beta, image, beta, 0.0), mask, out)
            changed = changed_mask(image, out)
            changed_pixels = cv2.countNonZero(changed)
            if changed_pixels:
                return anomaly_sample(
                    self, source, out, changed, seed, "perlin",
                    **noise_record, **source_record, augmenters=augmenters, beta=beta, attempts=attempt + 1,
                    region_pixels=cv2.countNonZero(mask), changed_pixels=changed_pixels,
                )
        where = " on the object (object_mask)" if foreground is not None else ""
        raise ConfigError(f"perlin: no anomaly could be placed{where} on image {source.key!r} in {cfg.max_retries} "
                          f"tries (max_retries); check threshold ({cfg.threshold}) and the foreground")

    def _mask(self, rng: np.random.Generator, height: int, width: int, foreground: np.ndarray | None,
              last: bool) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
        """The uint8 0/1 anomaly region, the rotated noise, and what was drawn."""
        cfg = self.config
        exp_y, exp_x = (int(k) for k in rng.integers(cfg.min_scale_exponent, cfg.max_scale_exponent, 2))
        scale_y, scale_x = 2**exp_y, 2**exp_x
        noise = perlin_noise(height, width, scale_y, scale_x, perlin_angles(rng, scale_y, scale_x))
        angle = float(rng.uniform(-cfg.noise_rotation, cfg.noise_rotation))
        noise = rotate(noise, angle)
        renormalised = False
        if last and not (noise > cfg.threshold).any():
            # anomalib's fallback: stretch the noise to [-1, 1] so that its peak passes the threshold
            low, high = float(noise.min()), float(noise.max())
            if high > low:
                noise = (noise - low) / (high - low) * 2.0 - 1.0
                renormalised = True
        mask = (noise > cfg.threshold).view(np.uint8)
        if foreground is not None:
            mask &= foreground.view(np.uint8)
        record = {"scale": [scale_y, scale_x], "noise_rotation": angle, "threshold": cfg.threshold,
                  "renormalised": renormalised}
        return mask, noise, record

    @classmethod
    def example(cls) -> tuple[dict[str, Any], Sample | None]:
        return {}, example_source(64)
