"""Synthetic image content shared by the image-layout builders."""

from __future__ import annotations

import numpy as np


def product_image(rng: np.random.Generator, size: tuple[int, int], channels: int = 3) -> np.ndarray:
    """A smooth, object-like image: a gradient background with a bright disc in the middle."""
    h, w = size
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    base = 60 + 40 * (xx / max(w - 1, 1)) + 20 * (yy / max(h - 1, 1))
    disc = ((yy - h / 2) ** 2 + (xx - w / 2) ** 2) < (min(h, w) / 3) ** 2
    image = base + 90 * disc + rng.normal(0, 4, size=(h, w))
    image = np.clip(image, 0, 255).astype(np.uint8)
    if channels == 1:
        return image
    tint = rng.integers(-15, 16, size=channels)
    return np.clip(image[:, :, None].astype(np.int16) + tint, 0, 255).astype(np.uint8)


def add_defect(rng: np.random.Generator, image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Paint a dark blob; return the new image and the boolean mask of the changed pixels."""
    h, w = image.shape[:2]
    cy, cx = rng.integers(h // 4, 3 * h // 4), rng.integers(w // 4, 3 * w // 4)
    ry, rx = max(2, h // 10), max(2, w // 8)
    yy, xx = np.mgrid[0:h, 0:w]
    mask = ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1.0
    out = image.copy()
    out[mask] = 10
    return out, mask
