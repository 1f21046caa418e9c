"""MVTec AD layout: ``<category>/{train/good, test/<defect>, ground_truth/<defect>/NNN_mask.png}``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from . import Built, register_builder
from ._images import add_defect, product_image

DEFAULT_DEFECTS = {"bottle": ("broken_large", "contamination"), "grid": ("bent",)}


@register_builder("mvtec_ad")
def build_mvtec_ad(
    root: Path,
    categories: dict[str, tuple[str, ...]] | None = None,
    n_train: int = 3,
    n_test_good: int = 2,
    n_defect: int = 2,
    size: int = 32,
    seed: int = 0,
) -> Built:
    """Write a tiny MVTec AD tree. ``grid`` (if asked for) is written grayscale, as in the real data.

    Also writes ``license.txt`` at the root, like the real archive.
    """
    rng = np.random.default_rng(seed)
    categories = categories or DEFAULT_DEFECTS
    (root / "license.txt").write_text("CC BY-NC-SA 4.0 (test tree)\n")
    total = anomalous = 0
    for category, defects in categories.items():
        channels = 1 if category in ("grid", "screw", "zipper") else 3
        folders = [("train", "good", n_train), ("test", "good", n_test_good)]
        folders += [("test", d, n_defect) for d in defects]
        for split, defect, count in folders:
            out = root / category / split / defect
            out.mkdir(parents=True, exist_ok=True)
            for i in range(count):
                image = product_image(rng, (size, size), channels)
                if defect != "good":
                    image, mask = add_defect(rng, image)
                    mask_dir = root / category / "ground_truth" / defect
                    mask_dir.mkdir(parents=True, exist_ok=True)
                    Image.fromarray(mask.astype(np.uint8) * 255, mode="L").save(mask_dir / f"{i:03d}_mask.png")
                    anomalous += 1
                Image.fromarray(image).save(out / f"{i:03d}.png")
                total += 1
    return Built(root, {}, {"total": total, "anomalous": anomalous, "categories": sorted(categories)})
