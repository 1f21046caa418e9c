"""SWaT (Secure Water Treatment, iTrust/SUTD), the Dec 2015 release: 51 sensor and actuator
channels at 1 Hz, Normal (v0, v1) and Attack (v0) files, as xlsx or as the CSV copies in circulation.

Sample mapping:

* one sample per file by default; ``Normal`` files are ``split="train"``, ``Attack`` files
  ``split="test"``; ``label`` is 1 when any step is labelled attack; ``target`` is the per-step
  label (1 = attack, from the inline ``Normal/Attack`` column, ``A ttack`` included);
* ``window=W`` (and ``stride``, default ``W``) cuts each file into fixed-length windows, each a
  sample keyed ``<file stem>/<start index>``; a tail shorter than ``W`` is not a window;
* ``downsample=k`` averages blocks of ``k`` steps (``downsample_method="mean"``, labels are the
  block maximum) or keeps every ``k``-th step (``"first"``); windows count downsampled steps.

``Normal_v1`` is ``Normal_v0`` without its first 30 minutes; both are loaded unless ``files``
names one (the usual pair is ``files=["Normal_v1", "Attack_v0"]``). Labels come from the data,
so listing the samples parses each file once (or reads its cached copy).

The attack list (``List_of_attacks_Final.xlsx``, beside ``Physical/``) is parsed into
``meta["attacks"]`` (end times are times of day, combined with the start date and rolled over
midnight; the sheet's 2015-for-2016 dates are corrected by keeping the list chronological), and
``meta["attack_id"]`` gives the attack id per step where a step falls inside an attack's
[start, end] (0 elsewhere).

Parsing a 450k-row xlsx takes a while, so each parsed file is cached as Parquet under
``cache_dir`` (default ``~/.cache/anomalykit/swat``, or ``$ANOMALYKIT_CACHE/swat``), named
``<stem>-<sha256 prefix>.parquet`` and keyed by the SHA-256 of the source bytes. The path is in
``meta["cache_path"]`` and is logged on creation. ``cache_dir=False`` disables the cache.

>>> ds = anomalykit.load("swat", "/data/SWaT.A1 & A2_Dec 2015", files=["Normal_v1", "Attack_v0"])  # doctest: +SKIP
>>> attack = ds.filter(split="test")[0]                                                           # doctest: +SKIP
>>> attack.data.values.shape, int(attack.target.sum())                                            # doctest: +SKIP
((449919, 51), 54621)
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..errors import ConfigError, MalformedFileError
from ..schema import Modality, Sample, Series
from ._tabular import (
    CachedSensorLoader,
    LineMap,
    ProblemLog,
    RowProblem,
    downsample_steps,
    downsample_values,
    looks_like_decimal_comma,
    objects_to_float,
    physical_data_lines,
    read_delimited_strings,
    read_text_head,
    strings_to_float,
    window_bounds,
)
from .base import DatasetLoader, VerifyReport, manifest_from_rows, register_dataset

log = logging.getLogger(__name__)

#: the 51 channels in the order of the real files (stages P1 to P6)
CHANNELS: tuple[str, ...] = (
    "FIT101", "LIT101", "MV101", "P101", "P102",
    "AIT201", "AIT202", "AIT203", "FIT201", "MV201", "P201", "P202", "P203", "P204", "P205", "P206",
    "DPIT301", "FIT301", "LIT301", "MV301", "MV302", "MV303", "MV304", "P301", "P302",
    "AIT401", "AIT402", "FIT401", "LIT401", "P401", "P402", "P403", "P404", "UV401",
    "AIT501", "AIT502", "AIT503", "AIT504", "FIT501", "FIT502", "FIT503", "FIT504", "P501", "P502",
    "PIT501", "PIT502", "PIT503",
    "FIT601", "P601", "P602", "P603",
)  # fmt: skip
#: actuators: MV is 0 (in transit), 1 (closed), 2 (open); P and UV are 1 (off), 2 (on)
ACTUATORS: tuple[str, ...] = tuple(c for c in CHANNELS if re.match(r"^(MV|P|UV)\d", c))
SENSORS: tuple[str, ...] = tuple(c for c in CHANNELS if c not in ACTUATORS)
TIMESTAMP_COLUMN = "Timestamp"
LABEL_COLUMN = "Normal/Attack"
TIMESTAMP_FORMAT = "%d/%m/%Y %I:%M:%S %p"
FALLBACK_TIMESTAMP_FORMATS = ("%Y-%m-%d %H:%M:%S", "%d/%m/%Y %H:%M:%S")
FILE_PATTERN = re.compile(r"^SWaT_Dataset_(Normal|Attack)_v(\d+)\.(xlsx|csv)$", re.IGNORECASE)
ATTACK_LIST_NAME = "List_of_attacks_Final.xlsx"
#: bump when the cached table's layout or the parsing rules change
CACHE_VERSION = 1
_EXCEL_EPOCH = np.datetime64("1899-12-30T00:00:00", "s")
_CHUNK_ROWS = 65536


# ------------------------------------------------------------------------------------------------
# parsed files


@dataclass
class SwatTable:
    """One parsed SWaT file: seconds-resolution timestamps, T x 51 values, per-step labels."""

    timestamps: np.ndarray  # datetime64[s], (T,)
    values: np.ndarray  # float32, (T, 51)
    labels: np.ndarray  # uint8, (T,)
    problems: list[RowProblem] = field(default_factory=list)

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def to_arrow(self, source: Path, sha256: str) -> pa.Table:
        columns: dict[str, Any] = {"timestamp": pa.array(self.timestamps, pa.timestamp("s"))}
        for i, name in enumerate(CHANNELS):
            columns[name] = pa.array(self.values[:, i], pa.float32())
        columns["label"] = pa.array(self.labels, pa.uint8())
        metadata = {
            "anomalykit.swat.version": str(CACHE_VERSION),
            "anomalykit.swat.source": source.name,
            "anomalykit.swat.sha256": sha256,
            "anomalykit.swat.problems": json.dumps([[p.path, p.line, p.reason, p.action] for p in self.problems]),
        }
        return pa.table(columns).replace_schema_metadata(metadata)

    @classmethod
    def from_arrow(cls, table: pa.Table) -> SwatTable:
        metadata = table.schema.metadata or {}
        problems = [RowProblem(*p) for p in json.loads(metadata.get(b"anomalykit.swat.problems", b"[]"))]
        values = np.empty((table.num_rows, len(CHANNELS)), np.float32)
        for i, name in enumerate(CHANNELS):
            values[:, i] = table.column(name).to_numpy()
        return cls(
            timestamps=table.column("timestamp").to_numpy().astype("datetime64[s]"),
            values=values,
            labels=table.column("label").to_numpy().astype(np.uint8),
            problems=problems,
        )


def _normalise_header(name: Any) -> str:
    return str(name).replace("\ufeff", "").strip().strip('"').strip()


def _is_header(cells: list[Any]) -> bool:
    return any(_normalise_header(c) == TIMESTAMP_COLUMN for c in cells)


class _Columns:
    """Maps the normalised header names of a file to column positions and checks them."""

    def __init__(self, header: list[Any], path: Path, header_line: int, problems: ProblemLog) -> None:
        names = [_normalise_header(c) for c in header]
        while names and names[-1] == "":
            names.pop()  # trailing empty cells of a spreadsheet row
        self.raw = list(header[: len(names)])
        self.position: dict[str, int] = {}
        for i, name in enumerate(names):
            if name in self.position:
                raise MalformedFileError(path, f"column {name!r} appears twice in the header", line=header_line)
            self.position[name] = i
        for required in (TIMESTAMP_COLUMN, LABEL_COLUMN):
            if required not in self.position:
                raise MalformedFileError(
                    path, f"missing column {required!r}; header is {', '.join(names)}", line=header_line
                )
        self.missing = [c for c in CHANNELS if c not in self.position]
        for name in self.missing:
            problems.add(header_line, f"missing channel column {name!r}", "filled with missing values")
        known = {TIMESTAMP_COLUMN, LABEL_COLUMN, *CHANNELS}
        for name in names:
            if name not in known:
                problems.add(header_line, f"unknown column {name!r}; SWaT has {len(CHANNELS)} channels", "ignored")


def _parse_timestamps(
    cells: np.ndarray, line_map: LineMap, problems: ProblemLog, row_offset: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Timestamps from text (day first, 12-hour clock, leading spaces) or spreadsheet datetimes.

    Returns (datetime64[s] values, ok mask)."""
    n = len(cells)
    out = np.zeros(n, "datetime64[s]")
    ok = np.zeros(n, bool)
    kinds = np.fromiter((type(c) is str for c in cells), bool, n) if cells.dtype == object else np.ones(n, bool)
    if kinds.any():
        idx = np.flatnonzero(kinds)
        text = pc.utf8_trim(pa.array(cells[idx].tolist() if cells.dtype == object else cells, pa.string()), characters=' \t"')
        parsed = pc.strptime(text, format=TIMESTAMP_FORMAT, unit="s", error_is_null=True)
        for fallback in FALLBACK_TIMESTAMP_FORMATS:
            if parsed.null_count == 0:
                break
            parsed = pc.coalesce(parsed, pc.strptime(text, format=fallback, unit="s", error_is_null=True))
        valid = parsed.is_valid().to_numpy(zero_copy_only=False)
        values = parsed.cast(pa.int64()).fill_null(0).to_numpy().astype("datetime64[s]")
        out[idx] = values
        ok[idx] = valid
    for i in np.flatnonzero(~kinds):
        cell = cells[i]
        if isinstance(cell, dt.datetime):
            out[i] = np.datetime64(cell.replace(tzinfo=None), "s")
            ok[i] = True
        elif isinstance(cell, dt.date):  # a spreadsheet datetime at midnight reads as a date
            out[i] = np.datetime64(cell, "s")
            ok[i] = True
        elif isinstance(cell, (int, float)) and not isinstance(cell, bool) and np.isfinite(cell):
            out[i] = _EXCEL_EPOCH + np.timedelta64(int(round(float(cell) * 86400)), "s")
            ok[i] = True
    bad = np.flatnonzero(~ok)
    if bad.size:
        lines = line_map(bad + row_offset)
        for i, line in zip(bad, lines):
            problems.add(int(line), f"unparsable timestamp {cells[i]!r} (expected like '22/12/2015 4:00:00 PM')", "row skipped")
    return out, ok


def _parse_labels(
    cells: np.ndarray, line_map: LineMap, problems: ProblemLog, row_offset: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """``Normal`` -> 0, ``Attack`` or ``A ttack`` (spaces and case ignored) -> 1."""
    text = [c if isinstance(c, str) else "" for c in cells.tolist()] if cells.dtype == object else cells
    squashed = pc.utf8_lower(pc.replace_substring_regex(pa.array(text, pa.string()), r"[\s\"]+", ""))
    attack = pc.equal(squashed, "attack").to_numpy(zero_copy_only=False)
    normal = pc.equal(squashed, "normal").to_numpy(zero_copy_only=False)
    ok = attack | normal
    bad = np.flatnonzero(~ok)
    if bad.size:
        lines = line_map(bad + row_offset)
        for i, line in zip(bad, lines):
            problems.add(int(line), f"unparsable label {cells[i]!r} in {LABEL_COLUMN!r} (expected Normal or Attack)", "row skipped")
    return attack.astype(np.uint8), ok


def _assemble(
    n: int,
    columns: _Columns,
    get_column: Any,
    to_float: Any,
    line_map: LineMap,
    problems: ProblemLog,
    row_offset: int = 0,
) -> SwatTable:
    """Convert the columns of ``n`` data rows into a ``SwatTable`` (rows with a bad timestamp or
    label are left out; they are already recorded in ``problems``)."""
    stamps, ok_time = _parse_timestamps(get_column(TIMESTAMP_COLUMN), line_map, problems, row_offset)
    labels, ok_label = _parse_labels(get_column(LABEL_COLUMN), line_map, problems, row_offset)
    values = np.full((n, len(CHANNELS)), np.nan, np.float32)
    for i, name in enumerate(CHANNELS):
        if name in columns.position:
            values[:, i] = to_float(get_column(name), name)
    keep = ok_time & ok_label
    if keep.all():
        return SwatTable(stamps, values, labels)
    return SwatTable(stamps[keep], values[keep], labels[keep])


def _concat(parts: list[SwatTable]) -> SwatTable:
    if not parts:
        return SwatTable(np.zeros(0, "datetime64[s]"), np.zeros((0, len(CHANNELS)), np.float32), np.zeros(0, np.uint8))
    return SwatTable(
        np.concatenate([p.timestamps for p in parts]),
        np.concatenate([p.values for p in parts]),
        np.concatenate([p.labels for p in parts]),
    )


def parse_xlsx(path: Path, problems: ProblemLog) -> SwatTable:
    """Parse a SWaT workbook (first sheet): the header is the first row holding ``Timestamp``."""
    from python_calamine import CalamineWorkbook

    try:
        sheet = CalamineWorkbook.from_path(str(path)).get_sheet_by_index(0)
    except Exception as exc:  # noqa: BLE001 - calamine raises its own error types for corrupt files
        raise MalformedFileError(path, f"not a readable xlsx workbook ({exc})") from None
    rows = sheet.iter_rows()
    columns: _Columns | None = None
    header_line = 0
    for index, row in enumerate(rows):
        if _is_header(row):
            header_line = index + 1
            columns = _Columns(row, path, header_line, problems)
            break
        if index >= 20:
            break
    if columns is None:
        raise MalformedFileError(path, f"no header row with a {TIMESTAMP_COLUMN!r} cell in the first 20 rows")
    width = len(columns.raw)
    parts: list[SwatTable] = []
    chunk: list[list[Any]] = []
    chunk_first_line = header_line + 1
    line = header_line

    def flush() -> None:
        nonlocal chunk
        if not chunk:
            return
        grid = np.empty((len(chunk), width), dtype=object)
        grid[:] = chunk
        first = chunk_first_line
        line_map = LineMap(first)

        def to_float(cells: np.ndarray, name: str) -> np.ndarray:
            return objects_to_float(cells, first_line=first, line_numbers=None, problems=problems, column=name)

        parts.append(_assemble(len(chunk), columns, lambda name: grid[:, columns.position[name]], to_float, line_map, problems))
        chunk = []

    pending_empty: list[int] = []
    for row in rows:
        line += 1
        if len(row) != width:
            if len(row) < width:
                row = list(row) + [""] * (width - len(row))
            else:
                if any(c not in ("", None) for c in row[width:]):
                    problems.add(line, f"row with {len(row)} cells, the header has {width}", "extra cells ignored")
                row = row[:width]
        if row[0] in ("", None) and all(c == "" or c is None for c in row):
            flush()
            pending_empty.append(line)
            continue
        if pending_empty:  # empty rows between data rows; trailing ones are just the sheet's end
            for empty in pending_empty:
                problems.add(empty, "empty row", "row skipped")
            pending_empty = []
        if not chunk:
            chunk_first_line = line
        chunk.append(row)
        if len(chunk) >= _CHUNK_ROWS:
            flush()
    flush()
    table = _concat(parts)
    return table


def _csv_split(line: str, delimiter: str) -> list[str]:
    return next(csv.reader([line], delimiter=delimiter, quotechar='"'), [])


def sniff_csv(path: Path) -> tuple[int, str, bool]:
    """(header line index, delimiter, decimal comma) of a SWaT CSV, from its first lines."""
    lines = read_text_head(path)
    for index, line in enumerate(lines):
        for delimiter in (";", ",", "\t"):
            cells = _csv_split(line, delimiter)
            if len(cells) > 2 and _is_header(cells):
                sample = [c for data in lines[index + 1 : index + 40] for c in _csv_split(data, delimiter)[1:-1]]
                return index, delimiter, looks_like_decimal_comma(sample)
    raise MalformedFileError(path, f"no header line with a {TIMESTAMP_COLUMN!r} column in the first {len(lines)} lines")


def parse_csv(path: Path, problems: ProblemLog) -> SwatTable:
    """Parse any of the CSV variants: junk lines before the header, BOM, leading spaces, ``,`` or
    ``;`` separators, decimal commas, quoted values."""
    header_index, delimiter, decimal_comma = sniff_csv(path)
    header_line = header_index + 1
    raw_header = _csv_split(read_text_head(path, header_index + 1)[header_index], delimiter)
    columns = _Columns(raw_header, path, header_line, problems)
    table = read_delimited_strings(
        path, delimiter=delimiter, skip_rows=header_index, problems=problems, string_columns=list(dict.fromkeys(raw_header))
    )
    invalid = {p.line for p in problems.problems if p.line is not None and p.line > header_line}
    line_map = LineMap(header_line + 1, lambda: physical_data_lines(path, header_line, invalid))
    names = table.column_names

    def get_column(name: str) -> Any:
        return table.column(names[columns.position[name]]).combine_chunks()

    def get_text_column(name: str) -> np.ndarray:
        return np.asarray(get_column(name).to_pylist(), dtype=object)

    def to_float(column: Any, name: str) -> np.ndarray:
        sub = ProblemLog(path)
        out = strings_to_float(column, decimal_comma=decimal_comma, first_line=header_line + 1,
                               line_numbers=None, problems=sub, column=name)
        if sub.problems:
            rows = np.asarray([p.line - (header_line + 1) for p in sub.problems])
            for problem, line in zip(sub.problems, line_map(rows)):
                problems.add(int(line), problem.reason, problem.action)
        return out

    def column_for(name: str) -> Any:
        return get_text_column(name) if name in (TIMESTAMP_COLUMN, LABEL_COLUMN) else get_column(name)

    return _assemble(table.num_rows, columns, column_for, to_float, line_map, problems)


def parse_file(path: Path, problems: ProblemLog) -> SwatTable:
    return parse_xlsx(path, problems) if path.suffix.lower() == ".xlsx" else parse_csv(path, problems)


# ------------------------------------------------------------------------------------------------
# attack list


@dataclass(frozen=True)
class Attack:
    """One row of ``List_of_attacks_Final.xlsx`` with its end time resolved."""

    id: int
    start: dt.datetime | None
    end: dt.datetime | None
    points: tuple[str, ...]
    unknown_points: tuple[str, ...]
    raw_points: str
    description: str
    start_state: str
    actual_change: str
    expected_impact: str
    unexpected_outcome: str
    year_corrected: bool = False

    @property
    def aligned(self) -> bool:
        return self.start is not None and self.end is not None

    def as_meta(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "start": self.start.isoformat(sep=" ") if self.start else None,
            "end": self.end.isoformat(sep=" ") if self.end else None,
            "points": list(self.points),
            "unknown_points": list(self.unknown_points),
            "attack_point": self.raw_points,
            "attack": self.description,
            "start_state": self.start_state,
            "actual_change": self.actual_change,
            "expected_impact": self.expected_impact,
            "unexpected_outcome": self.unexpected_outcome,
            "year_corrected": self.year_corrected,
        }


_ATTACK_COLUMNS = {
    "attack#": "id",
    "starttime": "start",
    "endtime": "end",
    "attackpoint": "points",
    "startstate": "start_state",
    "attack": "description",
    "actualchange": "actual_change",
    "expectedimpactorattackerintent": "expected_impact",
    "unexpectedoutcome": "unexpected_outcome",
}
_POINT_FIXES = {"DIT301": "DPIT301"}


def _squash(text: Any) -> str:
    return re.sub(r"\s+", "", str(text)).lower()


def _as_datetime(cell: Any) -> dt.datetime | None:
    if isinstance(cell, dt.datetime):
        return cell.replace(tzinfo=None)
    if isinstance(cell, dt.date):
        return dt.datetime.combine(cell, dt.time())
    if isinstance(cell, (int, float)) and not isinstance(cell, bool) and cell > 1:
        return dt.datetime(1899, 12, 30) + dt.timedelta(days=float(cell))
    text = str(cell or "").strip()
    for fmt in ("%d/%m/%Y %H:%M:%S", "%d/%m/%Y %I:%M:%S %p", "%Y-%m-%d %H:%M:%S", "%d/%m/%Y %H:%M", "%Y-%m-%d %H:%M"):
        try:
            return dt.datetime.strptime(text, fmt)
        except ValueError:
            continue
    return None


def _as_time(cell: Any) -> dt.time | None:
    if isinstance(cell, dt.datetime):
        return cell.time()
    if isinstance(cell, dt.time):
        return cell
    if isinstance(cell, (int, float)) and not isinstance(cell, bool) and 0 <= cell < 1:
        seconds = int(round(float(cell) * 86400)) % 86400
        return dt.time(seconds // 3600, seconds // 60 % 60, seconds % 60)
    text = str(cell or "").strip()
    for fmt in ("%H:%M:%S", "%H:%M", "%I:%M:%S %p", "%I:%M %p"):
        try:
            return dt.datetime.strptime(text, fmt).time()
        except ValueError:
            continue
    parsed = _as_datetime(cell)
    return parsed.time() if parsed else None


def _split_points(text: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    if "nophysicalimpact" in _squash(text):
        return (), ()
    points, unknown = [], []
    for part in re.split(r"[,;/&]|\band\b", text):
        name = re.sub(r"[\s\-_]", "", part).upper()
        if not name:
            continue
        name = _POINT_FIXES.get(name, name)
        (points if name in CHANNELS else unknown).append(name)
    return tuple(points), tuple(unknown)


def parse_attack_list(path: Path, problems: ProblemLog) -> list[Attack]:
    """Read the attack list. Rows without an id are ignored; rows whose times cannot be read are
    kept without alignment and recorded in ``problems``."""
    from python_calamine import CalamineWorkbook

    try:
        rows = CalamineWorkbook.from_path(str(path)).get_sheet_by_index(0).to_python()
    except Exception as exc:  # noqa: BLE001
        raise MalformedFileError(path, f"not a readable xlsx workbook ({exc})") from None
    header_index = next((i for i, row in enumerate(rows[:20]) if any(_squash(c) == "attack#" for c in row)), None)
    if header_index is None:
        raise MalformedFileError(path, "no header row with an 'Attack #' column in the first 20 rows")
    position = {_ATTACK_COLUMNS[_squash(c)]: i for i, c in enumerate(rows[header_index]) if _squash(c) in _ATTACK_COLUMNS}
    for needed in ("id", "start", "end", "points"):
        if needed not in position:
            label = next(k for k, v in _ATTACK_COLUMNS.items() if v == needed)
            raise MalformedFileError(path, f"missing column like {label!r}", line=header_index + 1)

    attacks: list[Attack] = []
    previous_start: dt.datetime | None = None
    for index, row in enumerate(rows[header_index + 1 :], start=header_index + 2):
        cell = {name: (row[i] if i < len(row) else "") for name, i in position.items()}
        if cell["id"] in ("", None):
            continue
        try:
            attack_id = int(float(cell["id"]))
        except (TypeError, ValueError):
            problems.add(index, f"unparsable attack id {cell['id']!r}", "row skipped")
            continue
        raw_points = str(cell["points"] or "").strip()
        points, unknown = _split_points(raw_points)
        start = _as_datetime(cell["start"])
        end_time = _as_time(cell["end"]) if cell["end"] not in ("", None) else None
        corrected = False
        if start is None and cell["start"] not in ("", None):
            problems.add(index, f"attack {attack_id}: unparsable start time {cell['start']!r}", "not aligned")
        if start is not None and previous_start is not None and start < previous_start:
            shifted = start.replace(year=start.year + 1)
            if shifted >= previous_start:
                start, corrected = shifted, True
        end = None
        if start is not None and end_time is not None:
            end = dt.datetime.combine(start.date(), end_time)
            if end < start:
                end += dt.timedelta(days=1)
        elif cell["end"] not in ("", None) and end_time is None:
            problems.add(index, f"attack {attack_id}: unparsable end time {cell['end']!r}", "not aligned")
        if start is not None:
            previous_start = start
        attacks.append(
            Attack(
                id=attack_id,
                start=start,
                end=end,
                points=points,
                unknown_points=unknown,
                raw_points=raw_points,
                description=str(cell.get("description", "") or "").strip(),
                start_state=str(cell.get("start_state", "") or "").strip(),
                actual_change=str(cell.get("actual_change", "") or "").strip(),
                expected_impact=str(cell.get("expected_impact", "") or "").strip(),
                unexpected_outcome=str(cell.get("unexpected_outcome", "") or "").strip(),
                year_corrected=corrected,
            )
        )
    return attacks


def align_attacks(timestamps: np.ndarray, attacks: list[Attack]) -> np.ndarray:
    """Attack id per step (0 outside every attack); where attacks overlap the later one wins."""
    ids = np.zeros(len(timestamps), np.int16)
    if not len(timestamps):
        return ids
    for attack in attacks:
        if not attack.aligned:
            continue
        lo = np.searchsorted(timestamps, np.datetime64(attack.start, "s"), side="left")
        hi = np.searchsorted(timestamps, np.datetime64(attack.end, "s"), side="right")
        ids[lo:hi] = attack.id
    return ids


# ------------------------------------------------------------------------------------------------
# the loader


@dataclass
class _FileData:
    table: SwatTable
    attack_id: np.ndarray
    cache_path: str | None
    sha256: str


@register_dataset("swat")
class SWaT(CachedSensorLoader, DatasetLoader):
    """Loader of SWaT Dec 2015 (root: ``SWaT.A1 & A2_Dec 2015/``, its ``Physical/`` folder, or
    a folder that holds the files). See the module docstring for the sample mapping.

    Options: ``files`` (``"all"`` or names such as ``"Normal_v1"``, ``"Attack_v0"``),
    ``format`` (``"auto"`` prefers xlsx when both exist, ``"xlsx"``, ``"csv"``), ``window``,
    ``stride``, ``downsample``, ``downsample_method`` (``"mean"`` or ``"first"``),
    ``cache_dir`` (a folder, None for the default, False for no cache), ``attack_list``
    (None finds it, a path, or False to skip it).
    """

    modality = Modality.SERIES
    options = {
        "files": "all",
        "format": "auto",
        "window": None,
        "stride": None,
        "downsample": 1,
        "downsample_method": "mean",
        "cache_dir": None,
        "attack_list": None,
    }

    def __init__(self, root, *, strict: bool = True, **options: Any) -> None:
        self.skipped: list[tuple[str, str]] = []
        self._memo: tuple[str, _FileData] | None = None
        self._attacks: list[Attack] | None = None
        super().__init__(root, strict=strict, **options)

    def validate_options(self) -> None:
        if self.format not in ("auto", "xlsx", "csv"):
            raise ConfigError(f"swat: format must be 'auto', 'xlsx' or 'csv', got {self.format!r}")
        self.check_window_options()

    # -- files ---------------------------------------------------------------------------------
    def data_dir(self) -> Path:
        candidates = [self.root, self.root / "Physical"]
        candidates += [p / "Physical" for p in sorted(self.root.glob("SWaT*")) if p.is_dir()]
        for folder in candidates:
            if folder.is_dir() and any(FILE_PATTERN.match(p.name) for p in folder.iterdir()):
                return folder
        raise self.not_found(self.root / "Physical" / "SWaT_Dataset_Attack_v0.xlsx", "SWaT data files")

    def source_files(self) -> list[Path]:
        """The files to load, one per stem, in the order Normal v0, v1, ..., Attack v0, ..."""
        folder = self.data_dir()
        by_stem: dict[str, dict[str, Path]] = {}
        for path in folder.iterdir():
            match = FILE_PATTERN.match(path.name)
            if match and path.is_file():
                by_stem.setdefault(f"{match.group(1).capitalize()}_v{match.group(2)}", {})[match.group(3).lower()] = path
        wanted = self.as_list(self.files)
        if wanted is not None:
            wanted = [re.sub(r"^SWaT_Dataset_", "", w, flags=re.IGNORECASE).rsplit(".", 1)[0] for w in wanted]
            wanted = [w[0].upper() + w[1:] for w in wanted]
            unknown = [w for w in wanted if w not in by_stem]
            if unknown:
                raise self.not_found(
                    folder / f"SWaT_Dataset_{unknown[0]}.xlsx",
                    f"file {unknown[0]!r} (found: {', '.join(sorted(by_stem)) or 'none'})",
                )
        chosen = []
        for stem in sorted(by_stem, key=lambda s: (s.startswith("Attack"), s)):
            if wanted is not None and stem not in wanted:
                continue
            formats = by_stem[stem]
            order = {"auto": ["xlsx", "csv"], "xlsx": ["xlsx"], "csv": ["csv"]}[self.format]
            path = next((formats[f] for f in order if f in formats), None)
            if path is None:
                if wanted is not None:
                    raise self.not_found(folder / f"SWaT_Dataset_{stem}.{order[0]}", f"{self.format} file for {stem}")
                continue
            chosen.append(path)
        if not chosen:
            raise self.not_found(folder / "SWaT_Dataset_Attack_v0.xlsx", f"SWaT files in {self.format} format")
        return chosen

    def attack_list_path(self) -> Path | None:
        if self.attack_list is False:
            return None
        if self.attack_list not in (None, True):
            path = Path(self.attack_list).expanduser()
            if not path.is_file():
                raise self.not_found(path, "attack list")
            return path
        folder = self.data_dir()
        for candidate in (folder, folder.parent, self.root):
            for path in sorted(candidate.glob("*.xlsx")):
                if path.name.lower() == ATTACK_LIST_NAME.lower():
                    return path
        return None

    def attacks(self) -> list[Attack]:
        """The parsed attack list ([] when it is absent)."""
        if self._attacks is None:
            path = self.attack_list_path()
            if path is None:
                if self.attack_list is not False:
                    log.info("swat: no %s found; samples carry no attack list", ATTACK_LIST_NAME)
                self._attacks = []
            else:
                problems = ProblemLog(path)
                attacks = parse_attack_list(path, problems)
                self._record(problems.settle(self.strict, self.name))
                self._attacks = attacks
        return self._attacks

    def load_table(self, path: Path) -> tuple[SwatTable, str | None, str]:
        """Parse ``path`` or read its cached Parquet copy: (table, cache path or None, sha256)."""

        def decode(cached: pa.Table) -> SwatTable:
            table = SwatTable.from_arrow(cached)
            # the same bytes may sit at another path now: report problems where they are
            table.problems = [RowProblem(str(path), q.line, q.reason, q.action) for q in table.problems]
            return table

        return self.cached_parse(path, version=CACHE_VERSION, parse=parse_file, decode=decode,
                                 encode=lambda table, sha: table.to_arrow(path, sha))

    def _file_data(self, path: Path) -> _FileData:
        if self._memo is not None and self._memo[0] == str(path):
            return self._memo[1]
        table, cache_path, sha = self.load_table(path)
        attack_id = align_attacks(table.timestamps, self.attacks())
        if self.downsample > 1:
            attack_id = downsample_ids(attack_id, self.downsample, self.downsample_method)
            table = downsample_table(table, self.downsample, self.downsample_method)
        data = _FileData(table, attack_id, cache_path, sha)
        self._memo = (str(path), data)
        return data

    # -- manifest and samples ------------------------------------------------------------------
    def windows(self, length: int) -> list[tuple[int, int]]:
        return window_bounds(length, self.window, self.stride)

    def build_manifest(self) -> pa.Table:
        rows: list[dict[str, Any]] = []
        for path in self.source_files():
            data = self._file_data(path)
            kind = FILE_PATTERN.match(path.name).group(1).capitalize()  # type: ignore[union-attr]
            split = "train" if kind == "Normal" else "test"
            relative = path.relative_to(self.root).as_posix()
            labels = data.table.labels
            for start, length in self.windows(len(data.table)):
                stop = start + length
                ids = data.attack_id[start:stop]
                first_attack = int(ids[ids > 0][0]) if (ids > 0).any() else 0
                key = path.stem if self.window is None else f"{path.stem}/{start:07d}"
                rows.append(
                    {
                        "key": key,
                        "split": split,
                        "label": int(labels[start:stop].any()),
                        "category": None,
                        # a window names its first aligned attack; a whole file holds many
                        "defect": f"attack-{first_attack}" if self.window and first_attack and labels[start:stop].any() else None,
                        "path": relative,
                        "mask_path": None,
                        "start": start,
                        "length": length,
                    }
                )
        return manifest_from_rows(rows, {"start": pa.int64(), "length": pa.int64()})

    def read(self, row: dict[str, Any]) -> Sample:
        path = self.root / row["path"]
        data = self._file_data(path)
        start, stop = int(row["start"]), int(row["start"]) + int(row["length"])
        table = data.table
        ids = data.attack_id[start:stop]
        present = set(int(i) for i in np.unique(ids) if i)
        whole_attack_file = self.window is None and row["split"] == "test"
        attacks = [a.as_meta() for a in self.attacks() if whole_attack_file or a.id in present]
        series = Series(table.values[start:stop], timestamps=table.timestamps[start:stop], channels=CHANNELS)
        return Sample(
            key=row["key"],
            dataset=self.name,
            split=row["split"],
            label=row["label"],
            data=series,
            category=None,
            defect=row["defect"],
            target=table.labels[start:stop],
            meta={
                "source": row["path"],
                "format": path.suffix.lower().lstrip("."),
                "sha256": data.sha256,
                "cache_path": data.cache_path,
                "start": start,
                "sampling_seconds": self.downsample,
                "downsample_method": self.downsample_method if self.downsample > 1 else None,
                "attack_id": ids,
                "attacks": attacks,
                "actuators": list(ACTUATORS),
                "skipped_rows": len([p for p in table.problems if p.action == "row skipped"]),
            },
        )

    def verify(self) -> VerifyReport:
        """Row counts per file against the card and the channel set (parses or uses the cache)."""
        report = VerifyReport(self.name, str(self.root))
        expected = self.card().get("expected_counts", {}).get("files", {})
        for path in self.source_files():
            try:
                table, _, _ = self.load_table(path)
            except MalformedFileError as exc:
                report.malformed.append(str(exc))
                continue
            report.counts[path.stem] = len(table)
            want = expected.get(path.stem)
            if want is not None and want != len(table):
                report.count_mismatches.append(f"{path.name}: {len(table)} rows, expected {want}")
        if self.attack_list_path() is None and self.attack_list is not False:
            report.missing.append(ATTACK_LIST_NAME)
        return report


def downsample_table(table: SwatTable, factor: int, method: str) -> SwatTable:
    """Every ``factor``-th step (``"first"``) or block means with block-maximum labels
    (``"mean"``; a partial last block is averaged over the steps it has)."""
    if factor == 1 or len(table) == 0:
        return table
    stamps = table.timestamps[::factor]  # a block is stamped with its first step
    values = downsample_values(table.values, factor, method)
    return SwatTable(stamps, values, downsample_steps(table.labels, factor, method).astype(np.uint8), table.problems)


def downsample_ids(ids: np.ndarray, factor: int, method: str) -> np.ndarray:
    """Per-step attack ids downsampled like ``downsample_table`` (block maximum for ``"mean"``)."""
    return downsample_steps(ids, factor, method)
