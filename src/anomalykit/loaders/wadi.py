"""WADI (Water Distribution testbed, iTrust/SUTD), the sibling of SWaT: about 127 sensor and
actuator channels at 1 Hz, in two releases.

* ``WADI.A1_9 Oct 2017/``: ``WADI_14days.csv`` (normal operation; a few preamble lines before
  the ``Row,Date,Time,...`` header) and ``WADI_attackdata.csv`` (about two days with attacks).
  Channel names are OPC paths such as ``\\\\WIN-25J4RO10SBF\\LOG_DATA\\SUTD_WADI\\LOG_DATA\\1_AIT_001_PV``
  and are cut to the part after the last backslash. The attack file has no label column: the
  labels come from an attack table, a CSV with the columns ``Id, Date, Start Time, End Time,
  Affected`` (``WADI_attacklabels.csv`` beside the data files, or ``attack_list=<path>``), such
  as the ``data/WADI/WADI_attacklabels.csv`` published with TranAD (imperial-qore/TranAD).
* ``WADI.A2_19 Nov 2019/``: ``WADI_14days_new.csv`` (normal, short tag names) and
  ``WADI_attackdataLABLE.csv``, whose first line holds column indices and whose label column
  ``Attack LABLE (1:No Attack, -1:Attack)`` marks attacks with -1.

Column names are compared after removing a BOM, quotes, leading and trailing spaces (A2 writes
``Row `` and ``Date ``) and any OPC path. ``Date`` is month first (``10/9/2017``) and ``Time``
a 12-hour clock with milliseconds (``6:00:00.000 PM``); timestamps keep the milliseconds.

Sample mapping (as for SWaT):

* one sample per file; normal files (``14days``) are ``split="train"``, attack files
  ``split="test"``; ``target`` is the per-step label (1 = attack) and ``label`` is 1 when any
  step is an attack. An attack file without a label column and without an attack table has
  ``label=-1`` (unknown) and no target;
* ``window=W`` (``stride``, default ``W``) cuts fixed-length windows keyed ``<stem>/<start>``;
  ``downsample=k`` averages blocks of ``k`` steps (labels: block maximum) or keeps every
  ``k``-th step (``downsample_method="first"``);
* ``meta["attack_id"]`` numbers, per step, the attack-table row (1-based, in table order) whose
  interval holds the step (0 elsewhere); ``meta["attacks"]`` describes the rows, with the ids as
  written (``"3-4"``), the resolved start and end, and the affected channels found in the file.

The attack table's dates are written inconsistently (``10/09/2017`` month first next to
``13/11/2017`` day first). Each row's date is read month first; when that reading puts the
attack outside the attack file (or is not a date), the day-first reading is tried. A row that
lies outside the file either way labels nothing and is listed with ``"aligned": False``; an end
time earlier than the start time rolls over midnight.

Each parsed file is cached as Parquet under ``cache_dir`` (default
``~/.cache/anomalykit/wadi`` or ``$ANOMALYKIT_CACHE/wadi``), keyed by the SHA-256 of its bytes;
``meta["cache_path"]`` says where. ``cache_dir=False`` disables the cache.

>>> ds = anomalykit.load("wadi", "/data/WADI.A1_9 Oct 2017")  # doctest: +SKIP
>>> attack = ds.filter(split="test")[0]                         # doctest: +SKIP
>>> attack.data.values.shape[1], attack.data.channels[0]        # doctest: +SKIP
(127, '1_AIT_001_PV')
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
import pandas as pd
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
    physical_data_lines,
    read_csv_after_header,
    read_text_head,
    strings_to_float,
    window_bounds,
)
from .base import DatasetLoader, VerifyReport, manifest_from_rows, register_dataset

log = logging.getLogger(__name__)

#: canonical stem of each known file -> (release, kind)
KNOWN_FILES: dict[str, tuple[str, str]] = {
    "WADI_14days": ("A1", "normal"),
    "WADI_attackdata": ("A1", "attack"),
    "WADI_14days_new": ("A2", "normal"),
    "WADI_attackdataLABLE": ("A2", "attack"),
}
RELEASE_FOLDERS = {"A1": "WADI.A1_9 Oct 2017", "A2": "WADI.A2_19 Nov 2019"}
FILE_PATTERN = re.compile(r"^WADI_(14days|14days_new|attackdata|attackdatalab(?:le|el))\.csv$", re.IGNORECASE)
ATTACK_TABLE_NAME = "WADI_attacklabels.csv"
LABEL_COLUMN = "Attack LABLE (1:No Attack, -1:Attack)"
#: the columns of the A1 files that hold no value at all
EMPTY_IN_A1 = ("2_LS_001_AL", "2_LS_002_AL", "2_P_001_STATUS", "2_P_002_STATUS")
TIMESTAMP_FORMATS = (
    "%m/%d/%Y %I:%M:%S.%f %p",
    "%m/%d/%Y %I:%M:%S %p",
    "%m/%d/%Y %H:%M:%S.%f",
    "%m/%d/%Y %H:%M:%S",
    "%Y-%m-%d %H:%M:%S.%f",
    "%Y-%m-%d %H:%M:%S",
)
#: bump when the cached table's layout or the parsing rules change
CACHE_VERSION = 1
#: columns re-read as text one by one before all channels are read as text at once
_MAX_TEXT_RETRIES = 4


def canonical_stem(name: str) -> str | None:
    """``WADI_attackdataLABLE`` for ``wadi_attackdatalable.csv``; None for other names."""
    match = FILE_PATTERN.match(name)
    if match is None:
        return None
    part = match.group(1).lower()
    return {"14days": "WADI_14days", "14days_new": "WADI_14days_new", "attackdata": "WADI_attackdata"}.get(
        part, "WADI_attackdataLABLE"
    )


def normalise_column(name: Any) -> str:
    """Header cell to channel name: BOM, quotes and spaces removed, OPC path cut at the last ``\\``."""
    text = str(name).replace("\ufeff", "").strip().strip('"').strip()
    return text.rsplit("\\", 1)[-1].strip()


def _squash(text: Any) -> str:
    return re.sub(r"\s+", "", str(text)).lower()


# ------------------------------------------------------------------------------------------------
# parsed files


@dataclass
class WadiTable:
    """One parsed WADI file: millisecond timestamps, T x C values, the channel names in file
    order, and the inline per-step labels (1 = attack) where the file has a label column."""

    timestamps: np.ndarray  # datetime64[ms], (T,)
    values: np.ndarray  # float32, (T, C)
    channels: tuple[str, ...]
    labels: np.ndarray | None  # uint8 (T,) or None
    problems: list[RowProblem] = field(default_factory=list)

    def __len__(self) -> int:
        return int(self.timestamps.shape[0])

    def to_arrow(self) -> pa.Table:
        columns: dict[str, Any] = {"timestamp": pa.array(self.timestamps, pa.timestamp("ms"))}
        for i in range(len(self.channels)):
            columns[f"c{i:04d}"] = pa.array(self.values[:, i], pa.float32())
        if self.labels is not None:
            columns["label"] = pa.array(self.labels, pa.uint8())
        metadata = {
            "anomalykit.wadi.channels": json.dumps(list(self.channels)),
            "anomalykit.wadi.problems": json.dumps([[p.path, p.line, p.reason, p.action] for p in self.problems]),
        }
        return pa.table(columns).replace_schema_metadata(metadata)

    @classmethod
    def from_arrow(cls, table: pa.Table, source: Path) -> WadiTable:
        metadata = table.schema.metadata or {}
        channels = tuple(json.loads(metadata[b"anomalykit.wadi.channels"]))
        # the same bytes may sit at another path now: report problems where they are
        problems = [RowProblem(str(source), *p[1:]) for p in json.loads(metadata.get(b"anomalykit.wadi.problems", b"[]"))]
        values = np.empty((table.num_rows, len(channels)), np.float32)
        for i in range(len(channels)):
            values[:, i] = table.column(f"c{i:04d}").to_numpy()
        labels = table.column("label").to_numpy().astype(np.uint8) if "label" in table.column_names else None
        stamps = table.column("timestamp").to_numpy().astype("datetime64[ms]")
        return cls(stamps, values, channels, labels, problems)


class _Header:
    """The columns of a WADI file: Date, Time, the optional Row and label columns, channels."""

    def __init__(self, cells: list[str], path: Path, line: int, problems: ProblemLog) -> None:
        names = [normalise_column(c) for c in cells]
        self.count = len(cells)
        self.date = self.time = self.label = None
        self.channels: list[tuple[int, str]] = []
        self.unnamed: list[int] = []
        seen: dict[str, int] = {}
        for i, name in enumerate(names):
            lowered = name.lower()
            if lowered == "row":
                continue
            if lowered == "date" and self.date is None:
                self.date = i
            elif lowered == "time" and self.time is None:
                self.time = i
            elif _squash(name).startswith("attacklab"):
                if self.label is not None:
                    raise MalformedFileError(path, f"two label columns: {cells[self.label]!r} and {cells[i]!r}", line=line)
                self.label = i
            elif not name:
                self.unnamed.append(i)
            else:
                if name in seen:
                    copy = 2
                    while f"{name}#{copy}" in seen:
                        copy += 1
                    problems.add(
                        line,
                        f"channel {name!r} appears twice in the header (columns {seen[name] + 1} and {i + 1})",
                        f"column {i + 1} kept as {name}#{copy}",
                    )
                    name = f"{name}#{copy}"
                seen[name] = i
                self.channels.append((i, name))
        for required, where in (("Date", self.date), ("Time", self.time)):
            if where is None:
                raise MalformedFileError(path, f"missing column {required!r}; header starts {', '.join(names[:6])}", line=line)
        if not self.channels:
            raise MalformedFileError(path, "the header names no channel column after Row, Date, Time", line=line)

    @property
    def field_names(self) -> list[str]:
        return [f"f{i}" for i in range(self.count)]


def _csv_split(line: str, delimiter: str) -> list[str]:
    return next(csv.reader([line], delimiter=delimiter, quotechar='"'), [])


def find_header(path: Path) -> tuple[int, str, list[str]]:
    """(line index, delimiter, cells) of the header: the first line holding ``Date`` and ``Time``
    among its first cells (after the A1 preamble or the A2 line of column indices)."""
    lines = read_text_head(path, max_lines=40)
    for index, line in enumerate(lines):
        for delimiter in (",", ";", "\t"):
            cells = _csv_split(line, delimiter)
            if len(cells) < 4:
                continue
            first = [normalise_column(c).lower() for c in cells[:4]]
            if "date" in first and "time" in first:
                return index, delimiter, cells
    raise MalformedFileError(path, f"no header line with 'Row, Date, Time' columns in the first {len(lines)} lines")


def parse_timestamps(
    dates: pa.ChunkedArray, times: pa.ChunkedArray, line_map: LineMap, problems: ProblemLog
) -> tuple[np.ndarray, np.ndarray]:
    """``Date`` (month first) and ``Time`` (12-hour clock with milliseconds, or 24-hour) to
    datetime64[ms]; returns (values, ok mask) and records unparsable rows."""
    text = pc.binary_join_element_wise(
        pc.utf8_trim(dates, characters=' \t"'), pc.utf8_trim(times, characters=' \t"'), " "
    )
    series = pd.Series(text.to_numpy(zero_copy_only=False), dtype=object)
    parsed = pd.Series(pd.NaT, index=series.index, dtype="datetime64[ns]")
    todo = np.ones(len(series), bool)
    for fmt in TIMESTAMP_FORMATS:
        if not todo.any():
            break
        attempt = pd.to_datetime(series[todo], format=fmt, errors="coerce")
        parsed[todo] = attempt
        todo = parsed.isna().to_numpy()
    bad = np.flatnonzero(todo)
    if bad.size:
        for i, line in zip(bad, line_map(bad)):
            problems.add(int(line), f"unparsable Date/Time {series.iloc[i]!r} (expected like '10/9/2017 6:00:00.000 PM')", "row skipped")
    values = parsed.to_numpy().astype("datetime64[ms]")
    return values, ~todo


def parse_labels(cells: pa.ChunkedArray, line_map: LineMap, problems: ProblemLog) -> tuple[np.ndarray, np.ndarray]:
    """The A2 label column: ``1`` (no attack) -> 0, ``-1`` (attack) -> 1; returns (labels, ok)."""
    text = pc.utf8_trim(cells, characters=' \t"')
    number = pc.cast(pc.if_else(pc.match_substring_regex(text, r"^[+-]?\d+(\.0*)?$"), text, pa.scalar(None, pa.string())), pa.float64())
    values = number.to_numpy(zero_copy_only=False)
    attack = values == -1
    ok = attack | (values == 1)
    bad = np.flatnonzero(~ok)
    if bad.size:
        raw = text.to_numpy(zero_copy_only=False)
        for i, line in zip(bad, line_map(bad)):
            problems.add(int(line), f"unparsable label {raw[i]!r} (expected 1 for no attack or -1 for attack)", "row skipped")
    return attack.astype(np.uint8), ok


def parse_file(path: Path, problems: ProblemLog) -> WadiTable:
    """Parse one WADI CSV: header found after any preamble, channels as float32, Date/Time to
    timestamps, the inline label column when there is one."""
    header_index, delimiter, cells = find_header(path)
    header_line = header_index + 1
    header = _Header(cells, path, header_line, problems)
    names = header.field_names
    text_fields = [header.date, header.time] + ([header.label] if header.label is not None else []) + header.unnamed
    include = [names[i] for i in sorted(text_fields + [i for i, _ in header.channels])]
    types: dict[str, pa.DataType] = {names[i]: pa.string() for i in text_fields}
    # channels are read as float32; a column holding a cell that is not a number is read again
    # as text (the error names it), so that its bad cells can be reported with their lines
    text_channels: set[int] = set()
    while True:
        read_problems = ProblemLog(path)
        as_text = len(text_channels) > _MAX_TEXT_RETRIES
        channel_types = {
            names[i]: pa.string() if as_text or i in text_channels else pa.float32() for i, _ in header.channels
        }
        try:
            table = read_csv_after_header(
                path, header_index=header_index, delimiter=delimiter, problems=read_problems, column_names=names,
                column_types={**types, **channel_types}, include_columns=include,
            )  # fmt: skip
            break
        except pa.ArrowInvalid as exc:
            match = re.search(r"column #(\d+)", str(exc))
            failing = int(match.group(1)) if match else None
            if failing is None or failing in text_channels or failing >= len(names):
                text_channels.update(i for i, _ in header.channels)
            text_channels.add(failing if failing is not None else -1)
    problems.problems.extend(read_problems.problems)
    invalid = {p.line for p in read_problems.problems if p.line is not None}
    line_map = LineMap(header_line + 1, lambda: physical_data_lines(path, header_line, invalid))

    for i in header.unnamed:
        column = pc.utf8_trim_whitespace(table.column(names[i]))
        filled = pc.not_equal(column, "")
        if pc.any(filled).as_py():
            first = int(np.flatnonzero(filled.to_numpy(zero_copy_only=False))[0])
            problems.add(int(line_map(np.array([first]))[0]), f"column {i + 1} has values but no name in the header", "column ignored")

    stamps, ok = parse_timestamps(table.column(names[header.date]), table.column(names[header.time]), line_map, problems)
    labels = None
    if header.label is not None:
        labels, ok_label = parse_labels(table.column(names[header.label]), line_map, problems)
        ok &= ok_label
    values = np.empty((table.num_rows, len(header.channels)), np.float32)
    for j, (i, name) in enumerate(header.channels):
        column = table.column(names[i])
        if column.type == pa.string():
            sub = ProblemLog(path)
            values[:, j] = strings_to_float(column, decimal_comma=False, first_line=header_line + 1, line_numbers=None,
                                            problems=sub, column=name)  # fmt: skip
            if sub.problems:
                rows = np.asarray([p.line - (header_line + 1) for p in sub.problems])
                for problem, line in zip(sub.problems, line_map(rows)):
                    problems.add(int(line), problem.reason, problem.action)
        else:
            values[:, j] = column.to_numpy().astype(np.float32) if column.null_count == 0 else column.fill_null(np.nan).to_numpy()
    channels = tuple(name for _, name in header.channels)
    if ok.all():
        return WadiTable(stamps, values, channels, labels)
    return WadiTable(stamps[ok], values[ok], channels, labels[ok] if labels is not None else None)


# ------------------------------------------------------------------------------------------------
# the attack table


@dataclass(frozen=True)
class AttackRow:
    """One row of the attack table as written (dates not yet resolved)."""

    number: int  # 1-based position in the table: the value used in meta["attack_id"]
    id: str
    line: int
    dates: tuple[tuple[dt.date, bool], ...]  # candidate readings (date, read day first), month first before day first
    date_text: str
    start: dt.time
    end: dt.time
    affected: tuple[str, ...]


@dataclass(frozen=True)
class Attack:
    """An attack-table row resolved against one file."""

    row: AttackRow
    start: dt.datetime
    end: dt.datetime
    aligned: bool
    day_first: bool
    points: tuple[str, ...]
    unknown_points: tuple[str, ...]

    def as_meta(self) -> dict[str, Any]:
        return {
            "number": self.row.number,
            "id": self.row.id,
            "start": self.start.isoformat(sep=" "),
            "end": self.end.isoformat(sep=" "),
            "date_as_written": self.row.date_text,
            "day_first": self.day_first,
            "aligned": self.aligned,
            "points": list(self.points),
            "unknown_points": list(self.unknown_points),
            "affected": list(self.row.affected),
        }


_TABLE_COLUMNS = {
    "id": "id", "attackid": "id", "attack#": "id", "attackno": "id", "attackno.": "id", "no": "id", "no.": "id",
    "date": "date", "starttime": "start", "endtime": "end",
    "affected": "affected", "attackpoint": "affected", "affectedcomponents": "affected",
}  # fmt: skip


def _dates(text: str) -> tuple[tuple[dt.date, bool], ...]:
    found: list[tuple[dt.date, bool]] = []
    for fmt in ("%m/%d/%Y", "%d/%m/%Y", "%Y-%m-%d", "%m/%d/%y", "%d/%m/%y"):
        try:
            day = dt.datetime.strptime(text, fmt).date()
        except ValueError:
            continue
        if all(day != seen for seen, _ in found):
            found.append((day, fmt.startswith("%d")))
    return tuple(found)


def _time(text: str) -> dt.time | None:
    for fmt in ("%H:%M:%S", "%H:%M:%S.%f", "%H:%M", "%I:%M:%S %p", "%I:%M:%S.%f %p", "%I:%M %p"):
        try:
            return dt.datetime.strptime(text, fmt).time()
        except ValueError:
            continue
    return None


def parse_attack_table(path: Path, problems: ProblemLog) -> list[AttackRow]:
    """Read an attack table (``Id, Date, Start Time, End Time, Affected``). Blank rows are
    ignored; a row whose date or times cannot be read is recorded in ``problems`` and left out."""
    with open(path, encoding="utf-8-sig", errors="replace", newline="") as handle:
        rows = list(csv.reader(handle))
    header_index = next(
        (i for i, row in enumerate(rows[:20]) if {"date", "starttime", "endtime"} <= {_squash(c) for c in row}), None
    )
    if header_index is None:
        raise MalformedFileError(path, "no header with 'Date', 'Start Time' and 'End Time' columns in the first 20 lines")
    position: dict[str, int] = {}
    for i, cell in enumerate(rows[header_index]):
        key = _TABLE_COLUMNS.get(_squash(cell))
        if key and key not in position:
            position[key] = i
    if "id" not in position:
        raise MalformedFileError(path, "missing column 'Id'", line=header_index + 1)
    attacks: list[AttackRow] = []
    for line, row in enumerate(rows[header_index + 1 :], start=header_index + 2):
        if not any(c.strip() for c in row):
            continue
        cell = {key: (row[i].strip() if i < len(row) else "") for key, i in position.items()}
        if len(row) < len(rows[header_index]) and not cell.get("end"):
            problems.add(line, f"truncated row: {len(row)} fields, expected {len(rows[header_index])}", "attack skipped")
            continue
        dates = _dates(cell["date"])
        start, end = _time(cell["start"]), _time(cell["end"])
        for what, ok, raw in (("date", dates, cell["date"]), ("start time", start, cell["start"]), ("end time", end, cell["end"])):
            if not ok:
                problems.add(line, f"attack {cell['id'] or '?'}: unparsable {what} {raw!r}", "attack skipped")
                break
        else:
            affected = tuple(p.strip() for p in re.split(r"[,;&]", cell.get("affected", "")) if p.strip())
            attacks.append(AttackRow(len(attacks) + 1, cell["id"], line, dates, cell["date"], start, end, affected))  # type: ignore[arg-type]
    return attacks


def _tokens(name: str) -> tuple[str, ...]:
    return tuple(t.lstrip("0") or "0" if t.isdigit() else t for t in re.findall(r"[A-Z]+|\d+", name.upper()))


def match_points(affected: tuple[str, ...], channels: tuple[str, ...]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Channels named by the table's ``Affected`` entries (``1_MV_001`` names ``1_MV_001_STATUS``,
    ``2_MCV301`` names ``2_MCV_301_CO``); returns (channels found, entries matching none)."""
    tokenised = [(c, _tokens(c)) for c in channels]
    found: list[str] = []
    unknown: list[str] = []
    for entry in affected:
        want = _tokens(entry)
        hits = [c for c, t in tokenised if want and t[: len(want)] == want]
        if hits:
            found.extend(h for h in hits if h not in found)
        else:
            unknown.append(entry)
    return tuple(found), tuple(unknown)


def resolve_attacks(rows: list[AttackRow], timestamps: np.ndarray, channels: tuple[str, ...]) -> list[Attack]:
    """Give each row the date reading that puts it inside the file's time span (see the module
    docstring); a row inside the span under no reading keeps the month-first one, unaligned."""
    if len(timestamps):
        first, last = (t.astype("datetime64[ms]").astype(dt.datetime) for t in (timestamps[0], timestamps[-1]))
    resolved: list[Attack] = []
    for row in rows:
        choice = None
        for day, day_first in row.dates:
            start = dt.datetime.combine(day, row.start)
            end = dt.datetime.combine(day, row.end)
            if end < start:
                end += dt.timedelta(days=1)
            if choice is None:
                choice = (start, end, False, day_first)
            if len(timestamps) and start <= last and end >= first:
                choice = (start, end, True, day_first)
                break
        points, unknown = match_points(row.affected, channels)
        start, end, aligned, day_first = choice  # type: ignore[misc]
        resolved.append(Attack(row, start, end, aligned, day_first, points, unknown))
    return resolved


def align_attacks(timestamps: np.ndarray, attacks: list[Attack]) -> np.ndarray:
    """Attack-table row number per step (0 outside every attack); where rows overlap the later wins."""
    ids = np.zeros(len(timestamps), np.int16)
    for attack in attacks:
        if not attack.aligned:
            continue
        lo = np.searchsorted(timestamps, np.datetime64(attack.start, "ms"), side="left")
        hi = np.searchsorted(timestamps, np.datetime64(attack.end, "ms"), side="right")
        ids[lo:hi] = attack.row.number
    return ids


# ------------------------------------------------------------------------------------------------
# the loader


@dataclass
class _FileData:
    table: WadiTable
    labels: np.ndarray | None
    label_source: str
    attack_id: np.ndarray
    attacks: list[Attack]
    cache_path: str | None
    sha256: str
    empty_channels: list[str]


@register_dataset("wadi")
class WADI(CachedSensorLoader, DatasetLoader):
    """Loader of WADI A1 (2017) and A2 (2019). ``root``: a release folder, or a folder holding
    one or both release folders (or the files themselves). See the module docstring.

    Options: ``files`` (``"all"`` or names such as ``"14days"``, ``"WADI_attackdata"``,
    ``"attackdataLABLE"``), ``release`` (``"all"``, ``"A1"``, ``"A2"``), ``window``, ``stride``,
    ``downsample``, ``downsample_method`` (``"mean"`` or ``"first"``), ``cache_dir`` (a folder,
    None for the default, False for none), ``attack_list`` (None finds ``WADI_attacklabels.csv``,
    a path, or False for none).
    """

    modality = Modality.SERIES
    options = {
        "files": "all",
        "release": "all",
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
        self._tables: dict[str, list[AttackRow]] = {}
        self._warned: set[str] = set()
        super().__init__(root, strict=strict, **options)

    def validate_options(self) -> None:
        if self.release not in ("all", "A1", "A2"):
            raise ConfigError(f"wadi: release must be 'all', 'A1' or 'A2', got {self.release!r}")
        self.check_window_options()

    # -- files ---------------------------------------------------------------------------------
    def source_files(self) -> list[Path]:
        """The data files to load, A1 before A2 and normal before attack in each."""
        found: dict[str, Path] = {}
        for folder in [self.root, *sorted(p for p in self.root.iterdir() if p.is_dir())]:
            for path in sorted(folder.iterdir()):
                stem = canonical_stem(path.name) if path.is_file() else None
                if stem is None:
                    continue
                if stem in found:
                    raise ConfigError(
                        f"wadi: two copies of {stem} under {self.root}: {found[stem]} and {path}; pass the release folder as root"
                    )
                found[stem] = path
        if not found:
            raise self.not_found(self.root / RELEASE_FOLDERS["A1"] / "WADI_attackdata.csv", "WADI data files")
        wanted = self.as_list(self.files)
        if wanted is not None:
            lookup = {s.lower().removeprefix("wadi_"): s for s in KNOWN_FILES}
            names = []
            for w in wanted:
                key = re.sub(r"\.csv$", "", w.strip(), flags=re.IGNORECASE).lower().removeprefix("wadi_")
                key = "attackdatalable" if key == "attackdatalabel" else key
                if lookup.get(key) not in found:
                    raise self.not_found(self.root / f"WADI_{key}.csv", f"file {w!r} (found: {', '.join(sorted(found))})")
                names.append(lookup[key])
        else:
            names = list(found)
        chosen = [found[s] for s in KNOWN_FILES if s in names and (self.release == "all" or KNOWN_FILES[s][0] == self.release)]
        if not chosen:
            raise self.not_found(self.root / RELEASE_FOLDERS.get(self.release, "WADI"), f"WADI {self.release} files")
        return chosen

    def attack_table_path(self, data_file: Path) -> Path | None:
        if self.attack_list is False:
            return None
        if self.attack_list not in (None, True):
            path = Path(self.attack_list).expanduser()
            if not path.is_file():
                raise self.not_found(path, "attack table")
            return path
        for folder in dict.fromkeys((data_file.parent, data_file.parent.parent, self.root)):
            for path in sorted(folder.glob("*.csv")):
                if path.name.lower() == ATTACK_TABLE_NAME.lower():
                    return path
        return None

    def attack_rows(self, path: Path) -> list[AttackRow]:
        key = str(path)
        if key not in self._tables:
            problems = ProblemLog(path)
            rows = parse_attack_table(path, problems)
            self._record(problems.settle(self.strict, self.name))
            self._tables[key] = rows
        return self._tables[key]

    def load_table(self, path: Path) -> tuple[WadiTable, str | None, str]:
        """Parse ``path`` or read its cached Parquet copy: (table, cache path or None, sha256)."""
        return self.cached_parse(path, version=CACHE_VERSION, parse=parse_file,
                                 decode=lambda cached: WadiTable.from_arrow(cached, path),
                                 encode=lambda table, sha: table.to_arrow())

    def _file_data(self, path: Path) -> _FileData:
        if self._memo is not None and self._memo[0] == str(path):
            return self._memo[1]
        table, cache_path, sha = self.load_table(path)
        kind = KNOWN_FILES[canonical_stem(path.name)][1]  # type: ignore[index]
        table_path = self.attack_table_path(path) if kind == "attack" else None
        attacks = resolve_attacks(self.attack_rows(table_path), table.timestamps, table.channels) if table_path else []
        attack_id = align_attacks(table.timestamps, attacks)
        if table.labels is not None:
            labels, source = table.labels, "inline"
        elif kind == "normal":
            labels, source = np.zeros(len(table), np.uint8), "normal file"
        elif table_path is not None:
            labels, source = (attack_id > 0).astype(np.uint8), "attack table"
            outside = [a.row.id for a in attacks if not a.aligned]
            if outside and str(path) not in self._warned:
                self._warned.add(str(path))
                log.warning("wadi: attacks %s of %s lie outside %s and label nothing", ", ".join(outside), table_path.name, path.name)
        else:
            labels, source = None, "none"
            if str(path) not in self._warned:
                self._warned.add(str(path))
                log.warning("wadi: %s has no label column and no %s was found; its labels are unknown (-1)", path.name, ATTACK_TABLE_NAME)
        empty = [c for c, full in zip(table.channels, np.isnan(table.values).all(axis=0)) if full] if len(table) else []
        if self.downsample > 1:
            factor, method = self.downsample, self.downsample_method
            attack_id = downsample_steps(attack_id, factor, method)
            labels = downsample_steps(labels, factor, method) if labels is not None else None
            table = WadiTable(table.timestamps[::factor], downsample_values(table.values, factor, method),
                              table.channels, None, table.problems)  # fmt: skip
        data = _FileData(table, labels, source, attack_id, attacks, cache_path, sha, empty)
        self._memo = (str(path), data)
        return data

    # -- manifest and samples ------------------------------------------------------------------
    def build_manifest(self) -> pa.Table:
        rows: list[dict[str, Any]] = []
        for path in self.source_files():
            data = self._file_data(path)
            stem = canonical_stem(path.name)
            release, kind = KNOWN_FILES[stem]  # type: ignore[index]
            by_number = {a.row.number: a.row.id for a in data.attacks}
            for start, length in window_bounds(len(data.table), self.window, self.stride):
                stop = start + length
                if data.labels is None:
                    label = -1
                else:
                    label = int(data.labels[start:stop].any())
                ids = data.attack_id[start:stop]
                first_attack = int(ids[ids > 0][0]) if (ids > 0).any() else 0
                rows.append(
                    {
                        "key": path.stem if self.window is None else f"{path.stem}/{start:07d}",
                        "split": "train" if kind == "normal" else "test",
                        "label": label,
                        "category": None,
                        "defect": f"attack-{by_number[first_attack]}" if self.window and first_attack and label == 1 else None,
                        "path": path.relative_to(self.root).as_posix(),
                        "mask_path": None,
                        "release": release,
                        "start": start,
                        "length": length,
                    }
                )
        return manifest_from_rows(rows, {"release": pa.string(), "start": pa.int64(), "length": pa.int64()})

    def read(self, row: dict[str, Any]) -> Sample:
        path = self.root / row["path"]
        data = self._file_data(path)
        start, stop = int(row["start"]), int(row["start"]) + int(row["length"])
        table = data.table
        ids = data.attack_id[start:stop]
        present = {int(i) for i in np.unique(ids) if i}
        attacks = [a.as_meta() for a in data.attacks if self.window is None or a.row.number in present]
        return Sample(
            key=row["key"],
            dataset=self.name,
            split=row["split"],
            label=row["label"],
            data=Series(table.values[start:stop], timestamps=table.timestamps[start:stop], channels=table.channels),
            category=None,
            defect=row["defect"],
            target=data.labels[start:stop] if data.labels is not None else None,
            meta={
                "source": row["path"],
                "release": row["release"],
                "sha256": data.sha256,
                "cache_path": data.cache_path,
                "start": start,
                "sampling_seconds": self.downsample,
                "downsample_method": self.downsample_method if self.downsample > 1 else None,
                "label_source": data.label_source,
                "attack_id": ids,
                "attacks": attacks,
                "empty_channels": data.empty_channels,
                "skipped_rows": len([p for p in table.problems if p.action == "row skipped"]),
            },
        )

    def verify(self) -> VerifyReport:
        """Row counts per file against the card (parses each file or reads its cache)."""
        report = VerifyReport(self.name, str(self.root))
        expected = self.card().get("expected_counts", {}).get("files", {})
        for path in self.source_files():
            try:
                table, _, _ = self.load_table(path)
            except MalformedFileError as exc:
                report.malformed.append(str(exc))
                continue
            stem = path.stem
            report.counts[stem] = len(table)
            want = expected.get(canonical_stem(path.name))
            if want is not None and want != len(table):
                report.count_mismatches.append(f"{path.name}: {len(table)} rows, expected {want}")
            if KNOWN_FILES[canonical_stem(path.name)] == ("A1", "attack") and self.attack_table_path(path) is None:  # type: ignore[index]
                if self.attack_list is not False:
                    report.missing.append(ATTACK_TABLE_NAME)
        return report
