"""Pieces shared by the image loaders (MVTec AD, VisA and its converted layouts)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ..io.images import read_image, read_mask
from ..schema import Image, Sample


def image_sample(loader: Any, row: dict[str, Any]) -> Sample:
    """Decode an image row: RGB pixels and a binary mask (all zeros for normal images)."""
    root: Path = loader.root
    path = root / row["path"]
    if not path.is_file():
        raise loader.not_found(path, "image file")
    pixels = read_image(path)
    if row.get("mask_path"):
        mask_path = root / row["mask_path"]
        if not mask_path.is_file():
            raise loader.not_found(mask_path, f"mask of {row['path']}")
        mask = read_mask(mask_path)
        if mask.shape != pixels.shape[:2]:
            from ..errors import MalformedFileError

            raise MalformedFileError(mask_path, f"mask is {mask.shape[1]}x{mask.shape[0]}, image {row['path']} is "
                                     f"{pixels.shape[1]}x{pixels.shape[0]}")
    else:
        mask = np.zeros(pixels.shape[:2], dtype=bool)
    meta = {"path": row["path"], "mask_path": row.get("mask_path") or None}
    return Sample(
        key=row["key"],
        dataset=loader.name,
        split=row["split"],
        label=row["label"],
        data=Image(pixels),
        category=row["category"],
        defect=row["defect"],
        target=mask,
        meta=meta,
    )


def list_images(folder: Path) -> list[Path]:
    """Image files of a folder, extensions matched case-insensitively, sorted by name."""
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in (".png", ".jpg", ".jpeg", ".bmp"))


def scan_mvtec_like(
    loader: Any,
    category_dir: Path,
    category: str,
    mask_names: tuple[str, ...] = ("{stem}_mask.png",),
    splits: tuple[str, ...] = ("train", "test"),
    required: bool = False,
    key_base: Path | None = None,
) -> list[dict[str, Any]]:
    """Rows of an MVTec-style category folder: ``train/good``, ``test/<defect>``, masks in
    ``ground_truth/<defect>/`` (or ``ground_truth/<split>/<defect>/`` as in 2-class layouts).

    Only the folders of ``splits`` are scanned. A missing mask raises (``strict=True``) or is
    recorded in ``loader.skipped`` with a warning. ``required``: a category (asked for by name)
    without any image in those folders raises ``DatasetNotFoundError`` instead of giving nothing.
    Paths are relative to ``loader.root``; keys relative to ``key_base`` (default: the root).
    """
    import warnings

    rows: list[dict[str, Any]] = []
    root: Path = loader.root
    seen = 0
    for split in splits:
        split_dir = category_dir / split
        if not split_dir.is_dir():
            continue
        for defect_dir in sorted(p for p in split_dir.iterdir() if p.is_dir()):
            normal = defect_dir.name == "good"
            for image_path in list_images(defect_dir):
                seen += 1
                rel = image_path.relative_to(root).as_posix()
                mask_rel = None
                if not normal:
                    candidates = [
                        category_dir / "ground_truth" / sub / defect_dir.name / pattern.format(stem=image_path.stem)
                        for sub in ("", split)
                        for pattern in mask_names
                    ]
                    found = next((c for c in candidates if c.is_file()), None)
                    if found is None:
                        error = loader.not_found(candidates[0], f"mask of {rel}")
                        if loader.strict:
                            raise error
                        loader.skipped.append((rel, str(error)))
                        warnings.warn(f"{loader.name}: skipped {rel}: {error}", stacklevel=3)
                        continue
                    mask_rel = found.relative_to(root).as_posix()
                rows.append(
                    {
                        "key": rel if key_base is None else image_path.relative_to(key_base).as_posix(),
                        "split": split,
                        "label": 0 if normal else 1,
                        "category": category,
                        "defect": None if normal else defect_dir.name,
                        "path": rel,
                        "mask_path": mask_rel,
                    }
                )
    if required and not seen:
        where = category_dir / (splits[0] if len(splits) == 1 else "{" + ",".join(splits) + "}") / "<defect>"
        raise loader.not_found(where, f"images of category {category!r}")
    return rows


def undecodable_images(images: list[Path], root: Path) -> list[str]:
    """``"<path relative to root>: <reason>"`` for each file PIL cannot verify as an image."""
    from PIL import Image

    bad = []
    for path in images:
        try:
            with Image.open(path) as im:
                im.verify()
        except Exception as exc:  # noqa: BLE001 - any decoder failure means malformed
            bad.append(f"{path.relative_to(root).as_posix()}: {exc}")
    return bad
