"""VisA: the original layout with ``split_csv/*.csv``, and the converted MVTec-like layouts.

Original layout (default split ``split_csv/1cls.csv``, CRLF lines, upper-case ``.JPG``,
class-id masks binarised with ``!= 0``); defect names come from ``<category>/image_anno.csv``
when present. Converted layouts: spot-diff's ``1cls/<category>`` (or ``2cls_*``) and
anomalib's ``visa_pytorch/<category>``; both name masks after the image stem without ``_mask``.
Keys are image paths relative to the folder that holds the category folders
(``candle/Data/Images/Normal/0000.JPG``, ``candle/train/good/0000.JPG``), so they do not
depend on whether ``root`` is that folder or the one above it.

>>> ds = anomalykit.load("visa", root="/data/VisA", category=["pcb1", "pcb4"])   # doctest: +SKIP
>>> ds = anomalykit.load("visa", root="/data/VisA", split_file="2cls_fewshot")    # doctest: +SKIP
"""

from __future__ import annotations

import csv
from pathlib import Path, PurePosixPath
from typing import Any

from ..errors import ConfigError, MalformedFileError
from ..schema import Modality, Sample
from .base import DatasetLoader, VerifyReport, manifest_from_rows, register_dataset
from ._image_common import image_sample, list_images, scan_mvtec_like, undecodable_images

CATEGORIES = (
    "candle", "capsules", "cashew", "chewinggum", "fryum", "macaroni1", "macaroni2",
    "pcb1", "pcb2", "pcb3", "pcb4", "pipe_fryum",
)
SPLIT_FILES = ("1cls", "2cls_fewshot", "2cls_highshot")
LAYOUTS = ("auto", "original", "spot_diff", "anomalib", "mvtec_like")
CSV_HEADER = ["object", "split", "label", "image", "mask"]


def parse_split_csv(path: str | Path) -> list[dict[str, str]]:
    """Parse a VisA split CSV (``object,split,label,image,mask``), any line ending.

    Returns one dict per data row with its 1-based file line number under ``line``.
    Raises ``MalformedFileError`` naming the line for a wrong header, field count or value, a
    path outside the row's object folder, a mask named after another image, or an image listed
    twice (image paths are the sample keys).
    """
    rows: list[dict[str, str]] = []
    first_line: dict[str, int] = {}
    with open(path, newline="", encoding="utf-8-sig") as handle:
        reader = csv.reader(handle)
        header = next(reader, None)
        if header is None or [h.strip() for h in header] != CSV_HEADER:
            raise MalformedFileError(path, f"header must be {','.join(CSV_HEADER)}, got {header}", line=1)
        for fields in reader:
            line = reader.line_num
            if not fields or fields == [""]:
                continue
            if len(fields) != 5:
                raise MalformedFileError(path, f"expected 5 fields, got {len(fields)}: {fields}", line=line)
            obj, split, label, image, mask = (f.strip() for f in fields)
            if split not in ("train", "test"):
                raise MalformedFileError(path, f"split must be train or test, got {split!r}", line=line)
            if label not in ("normal", "anomaly"):
                raise MalformedFileError(path, f"label must be normal or anomaly, got {label!r}", line=line)
            if label == "anomaly" and not mask:
                raise MalformedFileError(path, f"anomalous image {image} has no mask path", line=line)
            if not image:
                raise MalformedFileError(path, "empty image path", line=line)
            for column, value in (("image", image), ("mask", mask)):
                if value and value.split("/", 1)[0] != obj:
                    raise MalformedFileError(path, f"{column} {value} is not under the row's object folder {obj}/", line=line)
            if mask and PurePosixPath(mask).stem != PurePosixPath(image).stem:
                raise MalformedFileError(path, f"mask {mask} does not belong to image {image} (the stems differ)", line=line)
            if image in first_line:
                raise MalformedFileError(path, f"image {image} is listed twice (first on line {first_line[image]})", line=line)
            first_line[image] = line
            rows.append({"object": obj, "split": split, "label": label, "image": image, "mask": mask, "line": line})
    return rows


def parse_image_anno(path: Path) -> dict[str, str]:
    """``image_anno.csv``: image path -> label string (``normal`` or comma-joined defect names)."""
    out: dict[str, str] = {}
    with open(path, newline="", encoding="utf-8-sig") as handle:
        reader = csv.reader(handle)
        header = [h.strip().lower() for h in next(reader, [])]
        image_col = header.index("image") if "image" in header else 0
        label_col = header.index("label") if "label" in header else 1
        for fields in reader:
            if len(fields) <= max(image_col, label_col):
                if any(f.strip() for f in fields):
                    raise MalformedFileError(path, f"expected at least {max(image_col, label_col) + 1} fields",
                                             line=reader.line_num)
                continue
            out[fields[image_col].strip()] = fields[label_col].strip()
    return out


@register_dataset("visa")
class VisA(DatasetLoader):
    """Loader of VisA.

    Options: ``category`` (a name, a list or ``"all"``), ``split`` (``"train"``/``"test"``/None),
    ``split_file`` (``"1cls"``, ``"2cls_fewshot"``, ``"2cls_highshot"`` or a CSV path),
    ``layout`` (``"auto"``, ``"original"``, ``"spot_diff"``, ``"anomalib"``, ``"mvtec_like"``).
    """

    modality = Modality.IMAGE
    options = {"category": "all", "split": None, "split_file": "1cls", "layout": "auto"}

    def __init__(self, root, *, strict: bool = True, **options: Any) -> None:
        self.skipped: list[tuple[str, str]] = []
        super().__init__(root, strict=strict, **options)
        self.resolved_layout, self.layout_root = self._detect_layout()
        converted_split = "1cls" if self.resolved_layout in ("anomalib", "mvtec_like") else self.layout_root.name
        if self.resolved_layout != "original" and self.split_file != converted_split:
            raise ConfigError(
                f"visa: split_file={self.split_file!r} needs split_csv/ (the original layout) or spot-diff's "
                f"{self.split_file}/ folder; the {self.resolved_layout} layout found at {self.layout_root} holds the "
                f"{converted_split} split"
            )

    def validate_options(self) -> None:
        if self.split not in (None, "train", "test"):
            raise ConfigError(f"visa: split must be 'train', 'test' or None, got {self.split!r}")
        if self.layout not in LAYOUTS:
            raise ConfigError(f"visa: layout must be one of {LAYOUTS}, got {self.layout!r}")
        if self.split_file not in SPLIT_FILES and not str(self.split_file).endswith(".csv"):
            raise ConfigError(f"visa: split_file must be one of {SPLIT_FILES} or a .csv path, got {self.split_file!r}")
        for name in self.as_list(self.category) or []:
            if name not in CATEGORIES:
                raise ConfigError(f"visa: unknown category {name!r}; VisA categories: {', '.join(CATEGORIES)}")
        if self.as_list(self.category) is not None:  # a name given twice must not give its samples twice
            self.category = list(dict.fromkeys(self.as_list(self.category)))

    # -- layout ------------------------------------------------------------------------------
    def _split_csv_path(self) -> Path:
        if str(self.split_file).endswith(".csv"):
            path = Path(self.split_file)
            return path if path.is_absolute() else self.root / path
        return self.root / "split_csv" / f"{self.split_file}.csv"

    def _detect_layout(self) -> tuple[str, Path]:
        layout = self.layout
        split_name = self.split_file if self.split_file in SPLIT_FILES else "1cls"
        if layout in ("auto", "original") and self._split_csv_path().is_file():
            return "original", self.root
        if layout == "original":
            raise self.not_found(self._split_csv_path(), "split file")
        if layout in ("auto", "anomalib") and (self.root / "visa_pytorch").is_dir():
            return "anomalib", self.root / "visa_pytorch"
        if layout in ("auto", "spot_diff") and (self.root / split_name).is_dir():
            return "spot_diff", self.root / split_name
        if layout in ("auto", "mvtec_like", "spot_diff", "anomalib") and any(
            (self.root / c / "train").is_dir() for c in CATEGORIES
        ):
            return "mvtec_like", self.root
        raise self.not_found(
            self.root,
            f"a VisA layout (split_csv/{split_name}.csv, visa_pytorch/<category>, {split_name}/<category> or "
            "<category>/train)",
        )

    # -- manifest ----------------------------------------------------------------------------
    def build_manifest(self):
        rows = self._original_rows() if self.resolved_layout == "original" else self._converted_rows()
        return manifest_from_rows(rows)

    def _original_rows(self) -> list[dict[str, Any]]:
        csv_path = self._split_csv_path()
        wanted = self.as_list(self.category)
        records = parse_split_csv(csv_path)
        present = {r["object"] for r in records}
        for name in wanted or []:
            if name not in present:
                raise self.not_found(csv_path, f"rows of category {name!r} in the split file")
        annotations: dict[str, dict[str, str]] = {}
        rows = []
        for record in records:
            category = record["object"]
            if (wanted is not None and category not in wanted) or (self.split is not None and record["split"] != self.split):
                continue
            if category not in annotations:
                anno_path = self.root / category / "image_anno.csv"
                annotations[category] = parse_image_anno(anno_path) if anno_path.is_file() else {}
            anomalous = record["label"] == "anomaly"
            defect = None
            if anomalous:
                # image_anno.csv's paths are relative to the dataset root; the file is not
                # documented, so paths relative to the category folder are accepted too
                labels = annotations[category]
                defect = labels.get(record["image"]) or labels.get(record["image"].partition("/")[2]) or "anomaly"
            rows.append(
                {
                    "key": record["image"],
                    "split": record["split"],
                    "label": 1 if anomalous else 0,
                    "category": category,
                    "defect": defect,
                    "path": record["image"],
                    "mask_path": record["mask"] or None,
                }
            )
        return rows

    def _converted_rows(self) -> list[dict[str, Any]]:
        base = self.layout_root
        wanted = self.as_list(self.category)
        categories = wanted or [c for c in CATEGORIES if (base / c).is_dir()]
        if not categories:
            raise self.not_found(base / "<category>", "category folders")
        rows: list[dict[str, Any]] = []
        for category in categories:
            if not (base / category).is_dir():
                raise self.not_found(base / category, f"category {category!r}")
            rows.extend(
                # anomalib creates all twelve category folders, even those it does not fill
                scan_mvtec_like(self, base / category, category, mask_names=("{stem}.png", "{stem}_mask.png"),
                                splits=("train", "test") if self.split is None else (self.split,),
                                required=wanted is not None, key_base=base)
            )
        return rows

    def read(self, row: dict[str, Any]) -> Sample:
        sample = image_sample(self, row)
        sample.meta["layout"] = self.resolved_layout
        return sample

    # -- verify --------------------------------------------------------------------------------
    def verify(self, decode: bool = False) -> VerifyReport:
        if self.resolved_layout != "original":
            report = super().verify()
            if decode:
                manifest = self.build_manifest()
                files = [p for column in ("path", "mask_path") for p in manifest.column(column).to_pylist() if p]
                report.malformed.extend(undecodable_images([self.root / p for p in files if (self.root / p).is_file()],
                                                           self.root))
            return report
        report = VerifyReport(self.name, str(self.root))
        expected = self.card().get("expected_counts", {}).get("categories", {})
        records = parse_split_csv(self._split_csv_path())
        wanted = self.as_list(self.category) or list(CATEGORIES)
        listed: set[str] = set()
        counts: dict[str, int] = {}
        for record in records:
            if record["object"] not in wanted:
                continue
            listed.add(record["image"])
            if record["mask"]:
                listed.add(record["mask"])
            group = f"{record['object']}/{record['split']}/{record['label']}"
            counts[group] = counts.get(group, 0) + 1
            for column in ("image", "mask"):
                if record[column] and not (self.root / record[column]).is_file():
                    report.missing.append(record[column])
        for category in wanted:
            data_dir = self.root / category / "Data"
            if not data_dir.is_dir():
                report.missing.append(f"{category}/Data/")
                continue
            for sub in ("Images/Normal", "Images/Anomaly", "Masks/Anomaly"):
                for path in list_images(data_dir / sub):
                    rel = path.relative_to(self.root).as_posix()
                    if rel not in listed:
                        report.extra.append(rel)
            if self.split_file == "1cls":
                for column, count_key in (("train/normal", "train/normal"), ("test/normal", "test/normal"),
                                          ("test/anomaly", "test/anomaly")):
                    want = expected.get(category, {}).get(count_key)
                    have = counts.get(f"{category}/{column}", 0)
                    report.counts[f"{category}/{column}"] = have
                    if want is not None and want != have:
                        report.count_mismatches.append(f"{category}/{column}: {have} rows, expected {want}")
        if decode:
            present = [self.root / p for p in sorted(listed) if (self.root / p).is_file()]  # missing: reported above
            report.malformed.extend(undecodable_images(present, self.root))
        return report
