"""Real3D-AD: 12 categories of high-precision point clouds (PCD), per-point ground truth.

Layout (the official loaders' globs, which differ from the README)::

    <root>/<category>/train/<id>_template.pcd          (README: <id>_prototype.pcd; both accepted)
    <root>/<category>/test/<id>_<type>[_cut| copy].pcd  type: good, bulge, sink
    <root>/<category>/gt/<id>_<type>[_cut].txt          x y z label, one point per line

* A test file is normal iff its *stem* contains ``good`` (the official test looks at the whole
  path, which breaks when the root contains "good").
* For anomalous samples the points come from the ``gt`` txt, as in the official loader; the
  PCD's header is read to check that both hold the same number of points.
* ``_cut`` / ``copy`` files (augmented copies of other scans) are kept and marked in the
  manifest column ``variant``; ``include_variants=False`` leaves them out.
* Test files whose stem contains ``temp`` are templates and are left out of the test split, as
  in the official loader; they are listed in ``loader.skipped``.

The payload is a ``PointCloud`` (N x 3 float32, millimetres) with one label per point as the
target. Train and test clouds are not registered to each other.

>>> ds = anomalykit.load("real3d_ad", "/data/Real3D-AD-PCD", category="airplane")  # doctest: +SKIP
>>> s = ds.filter(split="test", label=1)[0]                                          # doctest: +SKIP
>>> s.data.points.shape, s.target.mean()                                             # doctest: +SKIP
((351000, 3), 0.0117)
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from ..errors import ConfigError, MalformedFileError
from ..schema import Modality, PointCloud, Sample
from ._pointcloud_io import describe, read_pcd, read_pcd_header, read_point_labels
from .base import DatasetLoader, VerifyReport, manifest_from_rows, register_dataset

CATEGORIES = (
    "airplane", "car", "candybar", "chicken", "diamond", "duck",
    "fish", "gemstone", "seahorse", "shell", "starfish", "toffees",
)
ANOMALY_TYPES = ("bulge", "sink")

_REAL3D_TEST_NAME = re.compile(r"^(?P<id>[^_\s]+)_(?P<type>[A-Za-z]+)(?P<rest>.*)$")


def natural_key(name: str) -> tuple[Any, ...]:
    """Sort key that orders ``2_good`` before ``10_good``."""
    return tuple(int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name))


class PointCloudADLoader(DatasetLoader):
    """Shared scanning and decoding of the PCD anomaly datasets (Real3D-AD, Anomaly-ShapeNet).

    Subclasses set the ground-truth folder names and delimiter and parse test file names.
    """

    modality = Modality.POINTCLOUD
    known_categories: ClassVar[tuple[str, ...]] = ()
    gt_dirnames: ClassVar[tuple[str, ...]] = ("gt",)
    gt_delimiter: ClassVar[str] = " "
    root_candidates: ClassVar[tuple[str, ...]] = ()
    #: whether ``known_categories`` is the full list (folders outside it are reported by verify)
    closed_category_list: ClassVar[bool] = True
    include_variants: bool = True
    normalize: bool = False

    def __init__(self, root, *, strict: bool = True, **options: Any) -> None:
        self.skipped: list[tuple[str, str]] = []
        root = Path(root).expanduser()
        if root.is_dir():
            root = self.locate_root(root)
        super().__init__(root, strict=strict, **options)

    # -- layout ----------------------------------------------------------------------------
    @staticmethod
    def is_category_dir(path: Path) -> bool:
        return (path / "train").is_dir() or (path / "test").is_dir()

    @classmethod
    def locate_root(cls, root: Path) -> Path:
        """The folder that holds the category folders: ``root`` itself or a folder below it
        (archives unpack to a named top folder whose name is not documented)."""
        if cls._holds_categories(root):
            return root
        for name in cls.root_candidates:
            if cls._holds_categories(root / name):
                return root / name
        children = _subfolders(root)
        for child in children:
            if cls._holds_categories(child):
                return child
        for child in children:
            for grandchild in _subfolders(child):
                if cls._holds_categories(grandchild):
                    return grandchild
        return root

    @classmethod
    def _holds_categories(cls, folder: Path) -> bool:
        if not folder.is_dir():
            return False
        return any(cls.is_category_dir(p) for p in _subfolders(folder))

    def category_dirs(self) -> dict[str, Path]:
        """Category name -> folder, for category folders at the root and one level below it
        (Anomaly-ShapeNet v2 keeps its newer classes in a ``new`` folder)."""
        found: dict[str, Path] = {}
        children = _subfolders(self.root)
        for child in children:
            if self.is_category_dir(child):
                found[child.name] = child
        for child in children:
            if not self.is_category_dir(child):
                for grandchild in _subfolders(child):
                    if self.is_category_dir(grandchild):
                        found.setdefault(grandchild.name, grandchild)
        return found

    def validate_options(self) -> None:
        if self.split not in (None, "train", "test"):
            raise ConfigError(f"{self.name}: split must be 'train', 'test' or None, got {self.split!r}")
        if not isinstance(self.normalize, bool):
            raise ConfigError(f"{self.name}: normalize must be True or False, got {self.normalize!r}")

    def categories(self) -> dict[str, Path]:
        available = self.category_dirs()
        wanted = self.as_list(self.category)
        if wanted is None:
            if not available:
                raise self.not_found(self.root / "<category>/train", "category folders")
            return available
        chosen = {}
        for name in wanted:
            if name not in available:
                hint = ""
                if self.known_categories and name not in self.known_categories:
                    hint = f" ({self.name} categories: {', '.join(self.known_categories)})"
                raise self.not_found(self.root / name, f"category {name!r}{hint}")
            chosen[name] = available[name]
        return chosen

    def gt_dir(self, category_dir: Path) -> Path | None:
        for name in self.gt_dirnames:
            if (category_dir / name).is_dir():
                return category_dir / name
        lowered = {n.lower() for n in self.gt_dirnames}
        for child in category_dir.iterdir():
            if child.is_dir() and child.name.lower() in lowered:
                return child
        return None

    # -- naming hooks ------------------------------------------------------------------------
    def parse_test_name(self, stem: str) -> dict[str, Any] | None:
        """``{"normal": bool, "defect": str | None, "scan_id": str, "variant": str | None}`` or
        None when the name does not follow the dataset's pattern."""
        raise NotImplementedError  # pragma: no cover - abstract

    def excluded_test_reason(self, stem: str) -> str | None:
        """Why a test file is not a test sample (None when it is one)."""
        return None

    # -- manifest ----------------------------------------------------------------------------
    def _skip(self, path: Path, reason: str, error: Exception | None = None) -> None:
        rel = path.relative_to(self.root).as_posix() if path.is_relative_to(self.root) else str(path)
        if error is not None and self.strict:
            raise error
        self.skipped.append((rel, reason))
        warnings.warn(f"{self.name}: skipped {rel}: {reason}", stacklevel=4)

    def _pcd_files(self, folder: Path) -> list[Path]:
        if not folder.is_dir():
            return []
        files = [p for p in folder.iterdir() if p.is_file() and p.suffix.lower() == ".pcd" and not _hidden(p)]
        return sorted(files, key=lambda p: natural_key(p.name))

    def scan_category(self, category: str, category_dir: Path) -> list[dict[str, Any]]:
        """Rows of one category folder, for the requested split only (the other split's files
        are neither checked nor reported)."""
        rows: list[dict[str, Any]] = []
        if self.split in (None, "train"):
            for path in self._pcd_files(category_dir / "train"):
                rows.append(self._row(path, "train", 0, category, None, None, scan_id=self.train_scan_id(path.stem)))
        if self.split == "train":
            return rows
        gt_dir = self.gt_dir(category_dir)
        for path in self._pcd_files(category_dir / "test"):
            stem = path.stem
            reason = self.excluded_test_reason(stem)
            if reason:
                self._skip(path, reason)
                continue
            parsed = self.parse_test_name(stem)
            if parsed is None:
                self._skip(path, "file name does not name an anomaly type",
                           MalformedFileError(path, f"cannot tell the sample type from the name {path.name!r}"))
                continue
            if parsed.get("variant") and not self.include_variants:
                continue
            if parsed["normal"]:
                rows.append(self._row(path, "test", 0, category, None, None, parsed["scan_id"], parsed.get("variant")))
                continue
            gt_path = gt_dir / f"{stem}.txt" if gt_dir is not None else category_dir / self.gt_dirnames[0] / f"{stem}.txt"
            if not gt_path.is_file():
                self._skip(path, f"no ground truth {gt_path.name}", self.not_found(gt_path, f"ground truth of {path.name}"))
                continue
            rows.append(self._row(path, "test", 1, category, parsed["defect"], gt_path, parsed["scan_id"], parsed.get("variant")))
        return rows

    def train_scan_id(self, stem: str) -> str:
        return stem.split("_")[0]

    def _row(self, path, split, label, category, defect, gt_path, scan_id=None, variant=None) -> dict[str, Any]:
        return {
            "key": path.relative_to(self.root).as_posix(),
            "split": split,
            "label": label,
            "category": category,
            "defect": defect,
            "path": path.relative_to(self.root).as_posix(),
            "mask_path": gt_path.relative_to(self.root).as_posix() if gt_path is not None else None,
            "scan_id": scan_id,
            "variant": variant,
        }

    def build_manifest(self):
        self.skipped = []
        rows: list[dict[str, Any]] = []
        named = self.as_list(self.category) is not None
        for category, folder in self.categories().items():
            found = self.scan_category(category, folder)
            skipped = any(rel.startswith(f"{folder.relative_to(self.root).as_posix()}/") for rel, _ in self.skipped)
            if named and not found and not skipped:
                split = self.split or "{train,test}"
                raise self.not_found(folder / split / "*.pcd", f"point clouds of category {category!r}")
            rows.extend(found)
        return manifest_from_rows(rows) if rows else _empty_manifest()

    # -- decoding ----------------------------------------------------------------------------
    def read(self, row: dict[str, Any]) -> Sample:
        path = self.root / row["path"]
        if not path.is_file():
            raise self.not_found(path, "point cloud")
        meta: dict[str, Any] = {"path": row["path"], "scan_id": row.get("scan_id"), "variant": row.get("variant")}
        if row.get("mask_path"):
            gt_path = self.root / row["mask_path"]
            if not gt_path.is_file():
                raise self.not_found(gt_path, f"ground truth of {row['path']}")
            header = read_pcd_header(path)
            truth = read_point_labels(gt_path, self.gt_delimiter)
            if truth.points.shape[0] != header.points:
                raise MalformedFileError(
                    gt_path, f"holds {truth.points.shape[0]} points, but {row['path']} has {header.points}"
                )
            points, target = truth.points, truth.labels
            meta.update(describe(header), gt_path=row["mask_path"], point_source="gt",
                        anomalous_points=int(target.sum()))
            normals = colors = None
        else:
            cloud = read_pcd(path)
            points, normals, colors = cloud.points, cloud.normals, cloud.colors
            target = np.zeros(points.shape[0], np.uint8)
            meta.update(describe(cloud.header), gt_path=None, point_source="pcd", anomalous_points=0)
        if self.normalize:
            points = (points - points.mean(axis=0, dtype=np.float64)).astype(np.float32)
            meta["centred"] = True
        return Sample(
            key=row["key"],
            dataset=self.name,
            split=row["split"],
            label=row["label"],
            data=PointCloud(points, normals=normals, colors=colors),
            category=row["category"],
            defect=row["defect"],
            target=target,
            meta=meta,
        )

    # -- verification ------------------------------------------------------------------------
    def verify(self, decode: bool = False) -> VerifyReport:
        """Check paths, ground-truth files and, for the categories present, the card's counts.

        Whether the card's counts include the augmented ``_cut``/``copy`` files is not known, so
        a category matches when either count (with or without them) agrees. A ground-truth file
        named after no test file is reported as extra. ``decode=True`` also reads every file
        and lists the malformed ones.
        """
        report = VerifyReport(self.name, str(self.root))
        strict, self.strict = self.strict, False
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                manifest = self.build_manifest()
        finally:
            self.strict = strict
        for rel, reason in self.skipped:
            if "ground truth" in reason:
                report.missing.append(f"{rel}: {reason}")
            elif "template" not in reason:
                report.malformed.append(f"{rel}: {reason}")
        rows = manifest.to_pylist()
        for row in rows:
            for column in ("path", "mask_path"):
                if row[column] and not (self.root / row[column]).exists():
                    report.missing.append(row[column])
        if self.split != "train":
            for folder in self.categories().values():
                gt_dir = self.gt_dir(folder)
                if gt_dir is None:
                    continue
                test_stems = {p.stem for p in self._pcd_files(folder / "test")}
                for orphan in sorted(p for p in gt_dir.glob("*.txt") if p.stem not in test_stems and not _hidden(p)):
                    report.extra.append(f"{orphan.relative_to(self.root).as_posix()} (no test file of that name)")
        card_counts = self.card().get("expected_counts", {})
        expected_all = card_counts.get("categories", {})
        test_range = card_counts.get("test_per_class")  # [low, high] where only a range is published
        by_category: dict[str, list[dict[str, Any]]] = {}
        for row in rows:
            by_category.setdefault(row["category"], []).append(row)
        for category, items in sorted(by_category.items()):
            found_all = _count_groups(items)
            found_plain = _count_groups([r for r in items if not r["variant"]])
            for group, count in found_all.items():
                report.counts[f"{category}/{group}"] = count
            expected = expected_all.get(category)
            tests = found_all["test/good"] + found_all["test/defect"]
            if test_range and self.split != "train" and not test_range[0] <= tests <= test_range[1]:
                report.count_mismatches.append(f"{category}: {tests} test clouds, expected {test_range[0]} to {test_range[1]}")
            if expected is None:
                if self.closed_category_list and category not in self.known_categories:
                    report.extra.append(f"{category}/ (not a {self.name} category)")
                continue
            if self.split is None and expected not in (found_all, found_plain):
                report.count_mismatches.append(f"{category}: found {found_all}, expected {expected}")
        if decode:
            for row in rows:
                try:
                    self.read(row)
                except MalformedFileError as exc:
                    report.malformed.append(str(exc))
        return report


def _hidden(path: Path) -> bool:
    """Entries that archive tools add beside the data (``__MACOSX``, ``._name`` AppleDouble files)."""
    return path.name.startswith((".", "__MACOSX"))


def _subfolders(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_dir() and not _hidden(p))


def _count_groups(rows: list[dict[str, Any]]) -> dict[str, int]:
    counts = {"train": 0, "test/good": 0, "test/defect": 0}
    for row in rows:
        if row["split"] == "train":
            counts["train"] += 1
        else:
            counts["test/defect" if row["label"] == 1 else "test/good"] += 1
    return counts


def _empty_manifest():
    import pyarrow as pa

    base = manifest_from_rows([])
    return base.append_column("scan_id", pa.array([], pa.string())).append_column("variant", pa.array([], pa.string()))


@register_dataset("real3d_ad")
class Real3DAD(PointCloudADLoader):
    """Loader of Real3D-AD (root: the folder holding the category folders, or one above it).

    Options: ``category`` (a name, a list, or ``"all"``), ``split`` (``"train"``, ``"test"``
    or None), ``include_variants`` (keep the ``_cut``/``copy`` test files, default True, as
    the official loader does), ``normalize`` (centre each cloud on its mean, as the official
    ``if_norm=True``; default False).
    """

    options = {"category": "all", "split": None, "include_variants": True, "normalize": False}
    known_categories = CATEGORIES
    gt_dirnames = ("gt",)
    gt_delimiter = " "
    root_candidates = ("Real3D-AD-PCD", "real3d-ad-pcd", "Real3D-AD")

    def excluded_test_reason(self, stem: str) -> str | None:
        if "temp" in stem.lower():
            return "a template in test/ (left out of the test split, as in the official loader)"
        return None

    def parse_test_name(self, stem: str) -> dict[str, Any] | None:
        match = _REAL3D_TEST_NAME.match(stem)
        if match is None:
            return None
        rest = match["rest"].lower()
        variant = "copy" if "copy" in rest else "cut" if "cut" in rest else None
        normal = "good" in stem.lower()
        return {
            "normal": normal,
            "defect": None if normal else match["type"].lower(),
            "scan_id": match["id"],
            "variant": variant,
        }
