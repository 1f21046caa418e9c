"""Point-cloud files of the 3D anomaly datasets: PCD through open3d, ground-truth point lists.

* ``read_pcd_header`` parses and checks a PCD header (fields, sizes, point count, encoding)
  without touching the point data; it is what catches wrong fields and truncated files with a
  message that names the file and line, where open3d would only print a warning and return an
  empty cloud.
* ``read_pcd`` checks the header, then reads the points with open3d (``ascii``, ``binary`` and
  ``binary_compressed``) as N x 3 float32.
* ``read_point_labels`` reads a ground-truth list of ``x y z label`` rows (space-separated in
  Real3D-AD, comma-separated in Anomaly-ShapeNet) with polars' CSV reader.
* ``write_pcd`` writes a cloud with open3d (used by the testing builders and benchmarks).

>>> import numpy as np, tempfile, os
>>> path = os.path.join(tempfile.mkdtemp(), "cloud.pcd")
>>> write_pcd(path, np.eye(3, dtype=np.float32), encoding="binary")
>>> read_pcd_header(path).points, read_pcd(path).points.shape
(3, (3, 3))
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import MalformedFileError

__all__ = [
    "PcdCloud",
    "PcdHeader",
    "PointLabels",
    "describe",
    "read_pcd_header",
    "read_pcd",
    "read_point_labels",
    "write_pcd",
    "PCD_ENCODINGS",
]

PCD_ENCODINGS = ("ascii", "binary", "binary_compressed")
_HEADER_KEYS = ("VERSION", "FIELDS", "SIZE", "TYPE", "COUNT", "WIDTH", "HEIGHT", "VIEWPOINT", "POINTS", "DATA")
_MAX_HEADER_BYTES = 1 << 16


@dataclass(frozen=True)
class PcdHeader:
    """The header of a PCD file (format 0.5 to 0.7)."""

    fields: tuple[str, ...]
    sizes: tuple[int, ...]
    types: tuple[str, ...]
    counts: tuple[int, ...]
    width: int
    height: int
    points: int
    encoding: str
    data_offset: int  # byte offset of the first data byte

    @property
    def point_bytes(self) -> int:
        """Bytes per point in the ``binary`` encoding."""
        return sum(s * c for s, c in zip(self.sizes, self.counts))

    @property
    def has_normals(self) -> bool:
        return {"normal_x", "normal_y", "normal_z"} <= set(self.fields)

    @property
    def has_colors(self) -> bool:
        return "rgb" in self.fields or "rgba" in self.fields


def read_pcd_header(path: str | Path) -> PcdHeader:
    """Parse and check the header of the PCD file at ``path``.

    Raises ``MalformedFileError`` (naming the file and line) when the header is incomplete,
    inconsistent, lacks one of the ``x y z`` fields, or when a ``binary`` file is shorter than
    its header promises.
    """
    path = Path(path)
    with open(path, "rb") as handle:
        file_size = os.fstat(handle.fileno()).st_size
        head = handle.read(4096)
        data_at = head.find(b"DATA")
        if (data_at < 0 or head.find(b"\n", data_at) < 0) and file_size > len(head):
            head += handle.read(_MAX_HEADER_BYTES - len(head))
    values: dict[str, tuple[list[str], int]] = {}
    offset = 0
    line_no = 0
    data_offset = -1
    while offset < len(head):
        end = head.find(b"\n", offset)
        if end < 0:
            end = len(head)
        raw = head[offset:end]
        offset = end + 1
        line_no += 1
        try:
            line = raw.decode("ascii").strip()
        except UnicodeDecodeError:
            raise MalformedFileError(path, "not a PCD file (binary bytes before the DATA line)", line=line_no) from None
        if not line or line.startswith("#"):
            continue
        key, *rest = line.split()
        key = key.upper()
        if key not in _HEADER_KEYS:
            raise MalformedFileError(path, f"not a PCD header line: {line[:60]!r}", line=line_no)
        values[key] = (rest, line_no)
        if key == "DATA":
            data_offset = offset
            break
    if data_offset < 0:
        raise MalformedFileError(path, "PCD header has no DATA line (not a PCD file, or a truncated one)")

    def field_list(key: str) -> tuple[list[str], int]:
        if key not in values:
            raise MalformedFileError(path, f"PCD header has no {key} line")
        return values[key]

    def integer(key: str, text: str, line: int) -> int:
        try:
            value = int(text)
        except ValueError:
            raise MalformedFileError(path, f"{key} must be an integer, got {text!r}", line=line) from None
        if value < 0:
            raise MalformedFileError(path, f"{key} must be >= 0, got {value}", line=line)
        return value

    fields, fields_line = field_list("FIELDS")
    missing = [axis for axis in ("x", "y", "z") if axis not in fields]
    if missing:
        raise MalformedFileError(
            path, f"PCD fields are {' '.join(fields) or '(none)'}; x, y and z are required (missing {', '.join(missing)})",
            line=fields_line,
        )
    sizes_text, sizes_line = field_list("SIZE")
    types, types_line = field_list("TYPE")
    counts_text, counts_line = values.get("COUNT", (["1"] * len(fields), fields_line))
    for key, items, line in (("SIZE", sizes_text, sizes_line), ("TYPE", types, types_line), ("COUNT", counts_text, counts_line)):
        if len(items) != len(fields):
            raise MalformedFileError(path, f"{key} lists {len(items)} values for {len(fields)} fields", line=line)
    sizes = tuple(integer("SIZE", s, sizes_line) for s in sizes_text)
    counts = tuple(integer("COUNT", c, counts_line) for c in counts_text)
    for name, size, kind in zip(fields, sizes, types):
        if kind.upper() not in ("F", "I", "U") or size not in (1, 2, 4, 8):
            raise MalformedFileError(path, f"field {name}: unsupported TYPE {kind} / SIZE {size}", line=types_line)
        if name in ("x", "y", "z") and (kind.upper() != "F" or size not in (4, 8)):
            raise MalformedFileError(
                path, f"field {name} must be a 4- or 8-byte float (TYPE F), got TYPE {kind} SIZE {size}", line=types_line
            )
    width_text, width_line = field_list("WIDTH")
    height_text, height_line = values.get("HEIGHT", (["1"], width_line))
    width = integer("WIDTH", width_text[0] if width_text else "", width_line)
    height = integer("HEIGHT", height_text[0] if height_text else "", height_line)
    if "POINTS" in values:
        points_text, points_line = values["POINTS"]
        points = integer("POINTS", points_text[0] if points_text else "", points_line)
        if points != width * height:
            raise MalformedFileError(path, f"POINTS {points} differs from WIDTH x HEIGHT = {width * height}", line=points_line)
    else:
        points = width * height
    encoding_items, data_line = values["DATA"]
    encoding = encoding_items[0].lower() if encoding_items else ""
    if encoding not in PCD_ENCODINGS:
        raise MalformedFileError(path, f"DATA must be one of {', '.join(PCD_ENCODINGS)}, got {encoding!r}", line=data_line)
    header = PcdHeader(tuple(fields), sizes, tuple(t.upper() for t in types), counts, width, height, points, encoding, data_offset)
    if encoding == "binary":
        expected = data_offset + points * header.point_bytes
        if file_size < expected:
            raise MalformedFileError(
                path, f"binary PCD is truncated: {points} points of {header.point_bytes} bytes need {expected} bytes, "
                f"the file has {file_size}"
            )
    return header


@dataclass(frozen=True)
class PcdCloud:
    """What ``read_pcd`` returns: float32 points (and normals/colours when the file has them)."""

    points: np.ndarray
    header: PcdHeader
    normals: np.ndarray | None = None
    colors: np.ndarray | None = None


def _last_ascii_point(path: Path, header: PcdHeader) -> tuple[np.ndarray | None, str]:
    """x, y, z of the last data row of an ASCII PCD (read from the file's tail), and the row."""
    with open(path, "rb") as handle:
        size = handle.seek(0, os.SEEK_END)
        start = max(header.data_offset, size - 4096)
        handle.seek(start)
        tail = handle.read().rstrip()
    if start == header.data_offset and not tail:
        return None, ""
    last = tail.rsplit(b"\n", 1)[-1].decode("ascii", "replace").strip()
    columns = last.split()
    offsets, position = {}, 0
    for name, count in zip(header.fields, header.counts):
        offsets[name] = position
        position += count
    try:
        xyz = np.array([float(columns[offsets[a]]) for a in ("x", "y", "z")], dtype=np.float32)
    except (IndexError, ValueError):
        return None, last
    return xyz, last


def read_pcd(path: str | Path, header: PcdHeader | None = None, *, with_attributes: bool = True) -> PcdCloud:
    """Read the PCD file at ``path`` with open3d as N x 3 float32 points.

    The header is checked first (``read_pcd_header``). For ASCII files the last row of the file
    must be the last point read (open3d fills missing rows with garbage silently). Normals and
    colours are returned when the file has those fields and ``with_attributes`` is set.
    """
    import open3d as o3d

    path = Path(path)
    header = header or read_pcd_header(path)
    with o3d.utility.VerbosityContextManager(o3d.utility.VerbosityLevel.Error):
        cloud = o3d.io.read_point_cloud(str(path), format="pcd", remove_nan_points=False, remove_infinite_points=False)
    points = np.asarray(cloud.points, dtype=np.float32)
    if points.shape[0] != header.points:
        raise MalformedFileError(
            path, f"open3d read {points.shape[0]} points, the header promises {header.points} "
            f"(corrupt {header.encoding} data)"
        )
    if header.encoding == "ascii" and header.points:
        # open3d fills the points of missing rows with whatever memory held; the last row of
        # the file must be the last point read, or rows are missing (or extra)
        last_xyz, last_row = _last_ascii_point(path, header)
        if last_xyz is None or not np.array_equal(last_xyz, points[-1], equal_nan=True):
            raise MalformedFileError(
                path, f"ASCII data does not hold the header's POINTS {header.points} rows "
                f"(the last row {last_row[:60]!r} is not point {header.points}: rows missing, extra or unreadable)"
            )
    normals = colors = None
    if with_attributes:
        if cloud.has_normals():
            normals = np.asarray(cloud.normals, dtype=np.float32)
        if cloud.has_colors():
            colors = np.asarray(cloud.colors, dtype=np.float32)
    return PcdCloud(points, header, normals, colors)


@dataclass(frozen=True)
class PointLabels:
    """A ground-truth point list: N x 3 float32 coordinates and N uint8 labels (0 or 1)."""

    points: np.ndarray
    labels: np.ndarray


_NUMBER = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$|^[+-]?(nan|inf)$", re.IGNORECASE)


def _slow_parse(path: Path, delimiter: str) -> np.ndarray:
    """Line-by-line parse that names the offending line; accepts any whitespace around fields."""
    rows: list[list[float]] = []
    with open(path, encoding="utf-8", errors="replace") as handle:
        for line_no, line in enumerate(handle, start=1):
            text = line.strip()
            if not text:
                continue
            parts = text.split(delimiter) if delimiter.strip() else text.split()
            parts = [p.strip() for p in parts]
            if parts and parts[-1] == "":
                parts.pop()
            if len(parts) != 4:
                raise MalformedFileError(
                    path, f"expected 4 values (x{delimiter}y{delimiter}z{delimiter}label), got {len(parts)}: {text[:80]!r}",
                    line=line_no,
                )
            bad = [p for p in parts if not _NUMBER.match(p)]
            if bad:
                raise MalformedFileError(path, f"not a number: {bad[0]!r}", line=line_no)
            rows.append([float(p) for p in parts])
    return np.asarray(rows, dtype=np.float64).reshape(-1, 4)


def _fast_parse(path: Path, delimiter: str) -> tuple[np.ndarray, np.ndarray] | None:
    """Points (N x 3 float32) and raw labels with polars' CSV reader, or None when the file
    does not parse as exactly four numeric columns (the caller then finds the faulty line)."""
    import polars as pl

    try:
        frame = pl.read_csv(
            path,
            has_header=False,
            separator=delimiter,
            schema={"x": pl.Float64, "y": pl.Float64, "z": pl.Float64, "label": pl.Float64},
        )
    except (pl.exceptions.PolarsError, ValueError):
        return None
    if frame.null_count().sum_horizontal().item():
        return None
    points = frame.select(pl.col("x", "y", "z").cast(pl.Float32)).to_numpy()
    return np.ascontiguousarray(points), frame.get_column("label").to_numpy()


def read_point_labels(path: str | Path, delimiter: str = " ") -> PointLabels:
    """Read ``x y z label`` rows (``delimiter`` between values) as points and 0/1 labels.

    Labels may be written as floats (``1.0``). Anything but 0 or 1 in the label column, a row
    with another number of values, or a non-number raises ``MalformedFileError`` naming the line.
    """
    path = Path(path)
    if not path.is_file():
        raise MalformedFileError(path, "ground-truth file not found")
    parsed = _fast_parse(path, delimiter)
    if parsed is None:
        array = _slow_parse(path, delimiter)
        parsed = (array[:, :3].astype(np.float32), array[:, 3])
    points, labels = parsed
    if points.shape[0] == 0:
        raise MalformedFileError(path, "the ground-truth file holds no points")
    bad = np.flatnonzero((labels != 0) & (labels != 1))
    if bad.size:
        raise MalformedFileError(path, f"label must be 0 or 1, got {float(labels[bad[0]])!r}",
                                 line=_line_of_row(path, int(bad[0])))
    if not np.isfinite(points).all():
        row = int(np.flatnonzero(~np.isfinite(points).all(axis=1))[0])
        raise MalformedFileError(path, "non-finite coordinate", line=_line_of_row(path, row))
    return PointLabels(points, labels.astype(np.uint8))


def _line_of_row(path: Path, row: int) -> int:
    """The 1-based file line of data row ``row`` (0-based; blank lines hold no row)."""
    with open(path, encoding="utf-8", errors="replace") as handle:
        for line_no, line in enumerate(handle, start=1):
            if line.strip():
                if row == 0:
                    return line_no
                row -= 1
    raise AssertionError(f"{path} has fewer data rows than were parsed")  # pragma: no cover


def write_pcd(
    path: str | Path,
    points: np.ndarray,
    *,
    encoding: str = "binary",
    normals: np.ndarray | None = None,
) -> None:
    """Write ``points`` (N x 3) as a PCD file with open3d (``ascii``, ``binary`` or ``binary_compressed``)."""
    import open3d as o3d

    if encoding not in PCD_ENCODINGS:
        raise ValueError(f"encoding must be one of {PCD_ENCODINGS}, got {encoding!r}")
    cloud = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(np.asarray(points, dtype=np.float64)))
    if normals is not None:
        cloud.normals = o3d.utility.Vector3dVector(np.asarray(normals, dtype=np.float64))
    ok = o3d.io.write_point_cloud(
        str(path), cloud, write_ascii=encoding == "ascii", compressed=encoding == "binary_compressed"
    )
    if not ok:
        raise OSError(f"open3d could not write {path}")


def describe(header: PcdHeader) -> dict[str, Any]:
    """Header facts worth keeping in a sample's ``meta``."""
    return {"encoding": header.encoding, "num_points": header.points, "fields": list(header.fields)}
