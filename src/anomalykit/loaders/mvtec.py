"""MVTec AD: 15 categories, ``train/good``, ``test/<defect>``, ``ground_truth/<defect>/NNN_mask.png``.

>>> ds = anomalykit.load("mvtec_ad", root="/data/mvtec", category="bottle")   # doctest: +SKIP
>>> ds.filter(split="test", label=1)[0].defect                                  # doctest: +SKIP
'broken_large'
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..errors import ConfigError
from ..io.images import is_image_file
from ..schema import Modality, Sample
from .base import DatasetLoader, VerifyReport, manifest_from_rows, register_dataset
from ._image_common import image_sample, list_images, scan_mvtec_like, undecodable_images

CATEGORIES = (
    "bottle", "cable", "capsule", "carpet", "grid", "hazelnut", "leather", "metal_nut",
    "pill", "screw", "tile", "toothbrush", "transistor", "wood", "zipper",
)
TEXTURES = ("carpet", "grid", "leather", "tile", "wood")
GRAYSCALE = ("grid", "screw", "zipper")


@register_dataset("mvtec_ad")
class MVTecAD(DatasetLoader):
    """Loader of MVTec AD (root: the folder holding the category folders).

    Options: ``category`` (a name, a list, or ``"all"``), ``split`` (``"train"``, ``"test"`` or
    None for both). Grayscale categories are converted to RGB; masks are binarised with ``> 0``;
    normal images get an all-zero mask. Keys are relative paths (file names repeat across folders).
    """

    modality = Modality.IMAGE
    options = {"category": "all", "split": None}

    def __init__(self, root, *, strict: bool = True, **options: Any) -> None:
        self.skipped: list[tuple[str, str]] = []
        root = Path(root).expanduser()
        nested = root / "mvtec_anomaly_detection"
        if root.is_dir() and not _has_categories(root) and nested.is_dir():
            root = nested
        super().__init__(root, strict=strict, **options)

    def validate_options(self) -> None:
        if self.split not in (None, "train", "test"):
            raise ConfigError(f"mvtec_ad: split must be 'train', 'test' or None, got {self.split!r}")
        if self.as_list(self.category) is not None:  # a name given twice must not give its samples twice
            self.category = list(dict.fromkeys(self.as_list(self.category)))

    def categories(self) -> list[str]:
        wanted = self.as_list(self.category)
        if wanted is None:
            found = sorted(p.name for p in self.root.iterdir() if p.is_dir() and _is_category_dir(p))
            if not found:
                raise self.not_found(self.root / "<category>/train/good", "category folders")
            return found
        for name in wanted:
            if not (self.root / name).is_dir():
                known = f" (MVTec AD categories: {', '.join(CATEGORIES)})" if name not in CATEGORIES else ""
                raise self.not_found(self.root / name, f"category {name!r}{known}")
        return wanted

    def build_manifest(self):
        rows: list[dict[str, Any]] = []
        splits = ("train", "test") if self.split is None else (self.split,)
        named = self.as_list(self.category) is not None
        for category in self.categories():
            rows.extend(scan_mvtec_like(self, self.root / category, category, splits=splits, required=named))
        return manifest_from_rows(rows)

    def read(self, row: dict[str, Any]) -> Sample:
        sample = image_sample(self, row)
        sample.meta["grayscale_source"] = row["category"] in GRAYSCALE
        return sample

    def verify(self, decode: bool = False) -> VerifyReport:
        """Compare each requested category folder with the layout and the card's counts."""
        report = VerifyReport(self.name, str(self.root))
        expected_all = self.card().get("expected_counts", {}).get("categories", {})
        wanted = self.as_list(self.category) or list(CATEGORIES)
        for stray in sorted(p.name for p in self.root.iterdir() if p.is_dir() and p.name not in wanted):
            if self.as_list(self.category) is None:
                report.extra.append(f"{stray}/ (not an MVTec AD category)")
        for category in wanted:
            cat_dir = self.root / category
            if not cat_dir.is_dir():
                report.missing.append(f"{category}/")
                continue
            expected = expected_all.get(category, {})
            found: dict[str, int] = {}
            for split in ("train", "test"):
                split_dir = cat_dir / split
                if not split_dir.is_dir():
                    report.missing.append(f"{category}/{split}/")
                    continue
                for defect_dir in sorted(p for p in split_dir.iterdir() if p.is_dir()):
                    images = list_images(defect_dir)
                    found[f"{split}/{defect_dir.name}"] = len(images)
                    for other in sorted(p for p in defect_dir.iterdir() if not is_image_file(p)):
                        report.extra.append(other.relative_to(self.root).as_posix())
                    if decode:
                        report.malformed.extend(undecodable_images(images, self.root))
                    if split == "test" and defect_dir.name != "good":
                        mask_dir = cat_dir / "ground_truth" / defect_dir.name
                        masks = {p.name for p in list_images(mask_dir)}
                        for image in images:
                            name = f"{image.stem}_mask.png"
                            if name not in masks:
                                report.missing.append(f"{category}/ground_truth/{defect_dir.name}/{name}")
                        image_stems = {f"{i.stem}_mask.png" for i in images}
                        report.extra.extend(
                            f"{category}/ground_truth/{defect_dir.name}/{m}" for m in sorted(masks - image_stems)
                        )
            if (cat_dir / "ground_truth" / "good").exists():
                report.extra.append(f"{category}/ground_truth/good/ (MVTec AD has no masks for good images)")
            for folder, count in sorted(found.items()):
                report.counts[f"{category}/{folder}"] = count
                want = expected.get(folder)
                if want is None:
                    report.extra.append(f"{category}/{folder}/ (not in the MVTec AD layout)")
                elif want != count:
                    report.count_mismatches.append(f"{category}/{folder}: {count} images, expected {want}")
            for folder in sorted(set(expected) - set(found)):
                report.missing.append(f"{category}/{folder}/ ({expected[folder]} images expected)")
        return report


def _is_category_dir(path: Path) -> bool:
    return (path / "train").is_dir() or (path / "test").is_dir()


def _has_categories(root: Path) -> bool:
    return any(_is_category_dir(p) for p in root.iterdir() if p.is_dir())
