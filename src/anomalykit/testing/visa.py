"""VisA original layout: ``split_csv/1cls.csv`` (CRLF), ``<cat>/Data/Images/{Normal,Anomaly}/*.JPG``,
class-id masks in ``<cat>/Data/Masks/Anomaly/*.png``, ``<cat>/image_anno.csv`` with quoted labels."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
from PIL import Image

from . import Built, register_builder
from ._images import add_defect, product_image

# pcb1 uses 4-digit normal names, capsules 3-digit ones (so 000.JPG exists in Normal and Anomaly)
DEFAULT_CATEGORIES = {"capsules": 3, "pcb1": 4}
DEFECT_NAMES = {"capsules": ("scratch", "squeeze"), "pcb1": ("melt,scratch", "bent")}


@register_builder("visa")
def build_visa(
    root: Path,
    categories: dict[str, int] | None = None,
    n_train: int = 3,
    n_test_good: int = 2,
    n_anomaly: int = 2,
    size: tuple[int, int] = (24, 36),
    seed: int = 0,
    layout: str = "original",
) -> Built:
    """Write a tiny VisA tree. ``layout``: ``original`` (default), ``anomalib`` (``visa_pytorch/``,
    3-channel 0/255 masks) or ``spot_diff`` (``1cls/``, L-mode 0/255 masks)."""
    rng = np.random.default_rng(seed)
    categories = categories or DEFAULT_CATEGORIES
    rows: list[list[str]] = []
    total = anomalous = 0
    for category, digits in categories.items():
        data = root / category / "Data"
        normal_dir, anomaly_dir, mask_dir = data / "Images/Normal", data / "Images/Anomaly", data / "Masks/Anomaly"
        for d in (normal_dir, anomaly_dir, mask_dir):
            d.mkdir(parents=True, exist_ok=True)
        anno = [["image", "label", "mask"]]
        order = rng.permutation(n_train + n_test_good)
        for j, i in enumerate(order):
            name = f"{i:0{digits}d}.JPG"
            Image.fromarray(product_image(rng, size)).save(normal_dir / name, "JPEG", quality=95)
            rel = f"{category}/Data/Images/Normal/{name}"
            rows.append([category, "train" if j < n_train else "test", "normal", rel, ""])
            anno.append([rel, "normal", ""])
            total += 1
        for i in range(n_anomaly):
            image, mask = add_defect(rng, product_image(rng, size))
            name = f"{i:03d}"
            Image.fromarray(image).save(anomaly_dir / f"{name}.JPG", "JPEG", quality=95)
            class_id = 1 + i % 2  # class ids, not 255: the real masks look black
            Image.fromarray(mask.astype(np.uint8) * class_id, mode="L").save(mask_dir / f"{name}.png")
            rel = f"{category}/Data/Images/Anomaly/{name}.JPG"
            mask_rel = f"{category}/Data/Masks/Anomaly/{name}.png"
            rows.append([category, "test", "anomaly", rel, mask_rel])
            anno.append([rel, DEFECT_NAMES.get(category, ("defect",))[i % 2], mask_rel])
            total += 1
            anomalous += 1
        with open(root / category / "image_anno.csv", "w", newline="") as handle:
            csv.writer(handle, lineterminator="\n").writerows(anno)
    (root / "split_csv").mkdir(exist_ok=True)
    with open(root / "split_csv" / "1cls.csv", "w", newline="") as handle:
        handle.write("object,split,label,image,mask\r\n")
        for row in rows:
            handle.write(",".join(row) + "\r\n")
    (root / "LICENSE-DATASET").write_text("Attribution 4.0 International (test tree)\n")
    expected = {"total": total, "anomalous": anomalous, "categories": sorted(categories)}
    if layout == "original":
        return Built(root, {}, expected)
    return _convert(root, rows, layout, expected)


def _convert(root: Path, rows: list[list[str]], layout: str, expected: dict) -> Built:
    """Write a converted copy the way anomalib (``visa_pytorch``) or spot-diff (``1cls``) does."""
    import shutil

    if layout not in ("anomalib", "spot_diff"):
        raise ValueError(f"layout must be original, anomalib or spot_diff, got {layout!r}")
    out_root = root / ("visa_pytorch" if layout == "anomalib" else "1cls")
    for category, split, label, image, mask in rows:
        folder = "good" if label == "normal" else "bad"
        target = out_root / category / split / folder / Path(image).name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(root / image, target)
        if mask:
            values = (np.asarray(Image.open(root / mask)) != 0).astype(np.uint8) * 255
            if layout == "anomalib":
                values = np.repeat(values[:, :, None], 3, axis=2)  # OpenCV writes 3-channel masks
            mask_out = out_root / category / "ground_truth" / "bad" / Path(mask).name
            mask_out.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(values).save(mask_out)
    for entry in ("split_csv",):
        shutil.rmtree(root / entry)
    for category in {r[0] for r in rows}:
        shutil.rmtree(root / category)
    return Built(root, {"layout": layout}, expected)
