"""CERT release layouts, the answers package, and the cached event index behind the ``cert`` loader.

The index is built in one streaming pass over the five activity files of a release and written
beside the data (see ``CertLoader`` for the design and its costs). Everything here is private
to the loader; the public entry point is ``anomalykit.load("cert", root, ...)``.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import mmap
import os
import re
import shutil
import warnings
from collections import OrderedDict, deque
from collections.abc import Iterable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.ipc as paipc
import pyarrow.parquet as pq

from ..errors import DatasetNotFoundError, MalformedFileError

INDEX_VERSION = 3
KNOWN_RELEASES = ("r4.2", "r5.2", "r6.2")
ACTIVITY_TYPES = ("logon", "device", "http", "email", "file")
DATE_FORMAT = "%m/%d/%Y %H:%M:%S"
SECONDS_PER_DAY = 86_400

_BASE = ("id", "date", "user", "pc")
_R4_EMAIL = _BASE + ("to", "cc", "bcc", "from", "size", "attachments", "content")
_R5_EMAIL = _BASE + ("to", "cc", "bcc", "from", "activity", "size", "attachments", "content")
_R4_FILE = _BASE + ("filename", "content")
_R5_FILE = _BASE + ("filename", "activity", "to_removable_media", "from_removable_media", "content")

#: header columns of each activity file, per release (order as in the real headers)
COLUMNS: dict[str, dict[str, tuple[str, ...]]] = {
    "r4.2": {
        "logon": _BASE + ("activity",),
        "device": _BASE + ("activity",),
        "http": _BASE + ("url", "content"),
        "email": _R4_EMAIL,
        "file": _R4_FILE,
    },
    "r5.2": {
        "logon": _BASE + ("activity",),
        "device": _BASE + ("file_tree", "activity"),
        "http": _BASE + ("url", "content"),
        "email": _R5_EMAIL,
        "file": _R5_FILE,
    },
    "r6.2": {
        "logon": _BASE + ("activity",),
        "device": _BASE + ("file_tree", "activity"),
        "http": _BASE + ("url", "activity", "content"),
        "email": _R5_EMAIL,
        "file": _R5_FILE,
    },
}
#: header names seen in documentation rather than in the files, mapped to the real names
COLUMN_ALIASES = {"attachment_count": "attachments"}

LDAP_COLUMNS = {
    "r4.2": ("employee_name", "user_id", "email", "role", "business_unit", "functional_unit", "department",
             "team", "supervisor"),
    "r5.2": ("employee_name", "user_id", "email", "role", "projects", "business_unit", "functional_unit",
             "department", "team", "supervisor"),
}
LDAP_COLUMNS["r6.2"] = LDAP_COLUMNS["r5.2"]
PSYCHOMETRIC_COLUMNS = ("employee_name", "user_id", "O", "C", "E", "A", "N")

#: the columns of every ``EventLog`` the loader returns, whatever the release and activity type
EVENT_SCHEMA = pa.schema(
    [pa.field("type", pa.string()), pa.field("id", pa.string()), pa.field("date", pa.timestamp("ms")),
     pa.field("user", pa.string()), pa.field("pc", pa.string()), pa.field("activity", pa.string()),
     pa.field("url", pa.string()), pa.field("to", pa.string()), pa.field("cc", pa.string()),
     pa.field("bcc", pa.string()), pa.field("from", pa.string()), pa.field("size", pa.int64()),
     pa.field("attachments", pa.string()), pa.field("filename", pa.string()),
     pa.field("to_removable_media", pa.string()), pa.field("from_removable_media", pa.string()),
     pa.field("file_tree", pa.string()), pa.field("content", pa.string()), pa.field("decoy", pa.bool_())]
)
EVENT_COLUMNS = tuple(EVENT_SCHEMA.names)
#: rows while indexing: the events plus their day and label
PENDING_SCHEMA = EVENT_SCHEMA.append(pa.field("day", pa.int32())).append(pa.field("malicious", pa.bool_()))

_ID_PATTERN = re.compile(rb"\{[^}\r\n]*\}")
_BLOCK_SIZE = 4 << 20
#: rows waiting to be sorted and written are flushed once they exceed this many bytes
PENDING_BUDGET = 128 << 20


# --------------------------------------------------------------------------------------------
# bad-input bookkeeping


@dataclass
class Skipped:
    """Items left out under ``strict=False``: ``(where, reason)`` pairs, where = ``file:line``."""

    items: list[tuple[str, str]] = field(default_factory=list)

    def add(self, path: Path | str, reason: str, line: int | None = None) -> None:
        where = f"{path}:{line}" if line is not None else str(path)
        self.items.append((where, reason))


def fail_or_skip(strict: bool, skipped: Skipped, path: Path | str, reason: str, line: int | None = None,
                 skip_note: str = "") -> None:
    """Raise ``MalformedFileError`` when strict; otherwise record the item (reason + note) as skipped."""
    if strict:
        raise MalformedFileError(path, reason, line=line)
    skipped.add(path, reason + skip_note, line)


def locate_lines(path: Path, texts: Iterable[bytes] = (), ids: Iterable[bytes] = ()) -> dict[bytes, int]:
    """Find the 1-based line of each raw row text or event id in ``path`` (one pass, bytes only)."""
    wanted_texts, wanted_ids = set(texts), set(ids)
    found: dict[bytes, int] = {}
    if not wanted_texts and not wanted_ids:
        return found
    with open(path, "rb") as handle:
        for number, line in enumerate(handle, 1):
            stripped = line.rstrip(b"\r\n")
            if stripped in wanted_texts and stripped not in found:
                found[stripped] = number
            if wanted_ids:
                match = _ID_PATTERN.search(line)
                if match and match.group() in wanted_ids and match.group() not in found:
                    found[match.group()] = number
            if len(found) == len(wanted_texts) + len(wanted_ids):
                break
    return found


# --------------------------------------------------------------------------------------------
# the answers package


@dataclass(frozen=True)
class Insider:
    """One row of ``answers/insiders.csv`` for the loaded release."""

    user: str
    scenario: int
    details: str
    start: datetime | None
    end: datetime | None
    answer_file: str | None  # relative to the answers folder

    def as_meta(self) -> dict[str, Any]:
        return {
            "scenario": self.scenario,
            "start": self.start.isoformat() if self.start else None,
            "end": self.end.isoformat() if self.end else None,
            "answer_file": self.answer_file,
        }


@dataclass
class Answers:
    """Insiders of a release and their malicious events, keyed by activity type then event id."""

    folder: Path
    insiders: dict[str, Insider]
    malicious: dict[str, dict[str, str]]  # type -> {id: insider user}
    fingerprint: str
    repairs: list[str] = field(default_factory=list)

    @property
    def num_events(self) -> int:
        return sum(len(v) for v in self.malicious.values())


def _stat_token(path: Path) -> str:
    stat = path.stat()
    return f"{path.name}:{stat.st_size}:{stat.st_mtime_ns}"


def _parse_answer_date(text: str) -> tuple[datetime | None, str | None]:
    """Parse an insiders.csv date; repair the truncated r6.2 date (``/...``) as ``02/...``."""
    text = (text or "").strip()
    repaired = None
    if text.startswith("/"):
        repaired, text = text, "02" + text
    for fmt in (DATE_FORMAT, "%m/%d/%Y %H:%M", "%m/%d/%Y"):
        try:
            value = datetime.strptime(text, fmt)
        except ValueError:
            continue
        return value, (f"truncated date {repaired!r} read as {text!r}" if repaired else None)
    return None, None


def _release_matches(dataset_field: str, release: str) -> bool:
    value = dataset_field.strip().lower().lstrip("r")
    wanted = release.lower().lstrip("r")
    if value == wanted:
        return True
    try:
        return float(value) == float(wanted)
    except ValueError:
        return False


def read_answers(folder: Path, release: str, strict: bool, skipped: Skipped) -> Answers:
    """Read ``insiders.csv`` and the answer file of each insider of ``release``.

    Per-insider files have no header and rows of varying length: ``type,id,date,user,pc,...``.
    Only rows whose user is the insider are malicious (files also hold context rows of others).
    """
    table_path = folder / "insiders.csv"
    if not table_path.is_file():
        raise DatasetNotFoundError(f"cert: answers table not found at {table_path} (expected in the answers package)")
    tokens = [_stat_token(table_path)]
    insiders: dict[str, Insider] = {}
    malicious: dict[str, dict[str, str]] = {t: {} for t in ACTIVITY_TYPES}
    repairs: list[str] = []
    with open(table_path, newline="", encoding="utf-8-sig") as handle:
        reader = csv.reader(handle)
        header = [h.strip().lower() for h in next(reader, [])]
        needed = ("dataset", "scenario", "details", "user", "start", "end")
        missing = [c for c in needed if c not in header]
        if missing:
            raise MalformedFileError(table_path, f"missing column(s) {', '.join(missing)}; expected {', '.join(needed)}", line=1)
        position = {name: header.index(name) for name in needed}
        for row in reader:
            line = reader.line_num
            if not row or not any(cell.strip() for cell in row):
                continue
            if len(row) < len(header):
                fail_or_skip(strict, skipped, table_path, f"row has {len(row)} fields, the header has {len(header)}", line)
                continue
            fields = {name: row[i].strip() for name, i in position.items()}
            if not _release_matches(fields["dataset"], release):
                continue
            try:
                scenario = int(float(fields["scenario"]))
            except ValueError:
                fail_or_skip(strict, skipped, table_path, f"scenario {fields['scenario']!r} is not a number", line)
                continue
            window: list[datetime | None] = []
            for name in ("start", "end"):
                value, repair = _parse_answer_date(fields[name])
                if value is None:
                    fail_or_skip(strict, skipped, table_path,
                                 f"{name} date {fields[name]!r} does not parse as MM/DD/YYYY HH:MM:SS", line)
                if repair:
                    repairs.append(f"{table_path}:{line}: {repair}")
                window.append(value)
            user = fields["user"]
            answer_file = _find_answer_file(folder, release, scenario, fields["details"])
            insider = Insider(user, scenario, fields["details"], window[0], window[1], answer_file)
            insiders.setdefault(user, insider)
            if answer_file is None:
                fail_or_skip(strict, skipped, table_path,
                             f"answer file {fields['details']!r} of insider {user} not found under {folder}", line)
                continue
            tokens.append(_stat_token(folder / answer_file))
            _read_answer_file(folder / answer_file, user, malicious, strict, skipped)
    fingerprint = hashlib.sha1("|".join(tokens).encode()).hexdigest()
    return Answers(folder, insiders, malicious, fingerprint, repairs)


def _find_answer_file(folder: Path, release: str, scenario: int, details: str) -> str | None:
    for candidate in (f"{release}-{scenario}/{details}", details):
        if details and (folder / candidate).is_file():
            return candidate
    return None


def _read_answer_file(path: Path, insider: str, malicious: dict[str, dict[str, str]], strict: bool,
                      skipped: Skipped) -> None:
    with open(path, newline="", encoding="utf-8-sig") as handle:
        reader = csv.reader(handle)
        for row in reader:
            line = reader.line_num
            if not row or not any(cell.strip() for cell in row):
                continue
            if len(row) < 5:
                fail_or_skip(strict, skipped, path, f"answer row has {len(row)} fields; expected at least "
                             "type,id,date,user,pc", line)
                continue
            kind = row[0].strip().strip('"').lower()
            if kind not in malicious:
                fail_or_skip(strict, skipped, path, f"unknown activity type {row[0]!r} (expected one of "
                             f"{', '.join(ACTIVITY_TYPES)})", line)
                continue
            if row[3].strip().strip('"') == insider:
                malicious[kind][row[1].strip().strip('"')] = insider


# --------------------------------------------------------------------------------------------
# decoy files (r5.2, r6.2)

DECOY_COLUMNS = ("decoy_filename", "pc")
_DECOY_SEPARATOR = "\x1f"  # joins filename and pc into one lookup key; never part of either


@dataclass
class Decoys:
    """The ``(decoy_filename, pc)`` pairs of ``decoy_file.csv``: the files planted as bait."""

    path: Path
    keys: pa.Array  # "filename<US>pc" strings, for a vectorised membership test
    token: str

    def __len__(self) -> int:
        return len(self.keys)


def read_decoys(path: Path, strict: bool, skipped: Skipped) -> Decoys:
    """Read ``decoy_file.csv`` (``decoy_filename,pc``; r6.2 quotes the header)."""
    with open(path, newline="", encoding="utf-8-sig") as handle:
        reader = csv.reader(handle)
        header = [h.strip() for h in next(reader, [])]
        missing = [c for c in DECOY_COLUMNS if c not in header]
        if missing:
            raise MalformedFileError(path, f"missing column(s) {', '.join(missing)}; decoy_file.csv has columns "
                                     f"{','.join(DECOY_COLUMNS)}", line=1)
        name_at, pc_at = header.index("decoy_filename"), header.index("pc")
        keys = []
        for row in reader:
            if not row or not any(cell.strip() for cell in row):
                continue
            if len(row) != len(header) or not row[name_at].strip() or not row[pc_at].strip():
                fail_or_skip(strict, skipped, path, f"decoy row {row!r} does not have the {len(header)} fields "
                             f"{','.join(header)}", reader.line_num)
                continue
            keys.append(row[name_at].strip() + _DECOY_SEPARATOR + row[pc_at].strip())
    return Decoys(path, pa.array(sorted(set(keys)), pa.string()), _stat_token(path))


# --------------------------------------------------------------------------------------------
# activity files


@dataclass
class SourceFile:
    """An activity file and how to parse it (header names mapped to the canonical names)."""

    kind: str
    path: Path
    names: list[str]  # every header column, aliases resolved
    columns: tuple[str, ...]  # the release's columns, all present in ``names``
    quoted: bool


def inspect_activity_file(path: Path, release: str, kind: str, strict: bool, skipped: Skipped) -> SourceFile | None:
    """Check the header of an activity file against the release's layout.

    Missing columns fail (or, with ``strict=False``, skip the file); unknown columns fail (or are
    ignored). Both are reported with the file and line 1.
    """
    with open(path, "rb") as handle:
        head = handle.read(1 << 16)
    first = head.split(b"\n", 1)[0].rstrip(b"\r")
    if not first.strip():
        fail_or_skip(strict, skipped, path, "empty file or empty header line", 1)
        return None
    names = [COLUMN_ALIASES.get(n.strip(), n.strip()) for n in next(csv.reader([first.decode("utf-8-sig", "replace")]))]
    expected = COLUMNS[release][kind]
    if len(set(names)) != len(names):
        fail_or_skip(strict, skipped, path, f"duplicate column names in header {names}", 1)
        return None
    missing = [c for c in expected if c not in names]
    unknown = [c for c in names if c not in expected]
    others = [other for other, layout in COLUMNS.items() if other != release and set(layout[kind]) == set(names)]
    hint = f" (this is the {' / '.join(others)} layout: is the release folder named correctly?)" if others else ""
    if missing:
        fail_or_skip(strict, skipped, path, f"missing column(s) {', '.join(missing)}; {release} {kind}.csv has "
                     f"columns {','.join(expected)}{hint}", 1, skip_note="; file skipped")
        return None
    if unknown:
        fail_or_skip(strict, skipped, path, f"unknown column(s) {', '.join(unknown)}; {release} {kind}.csv has "
                     f"columns {','.join(expected)}{hint}", 1, skip_note="; the unknown columns are ignored")
    quoted = release.startswith("r6") or b'"' in head
    return SourceFile(kind, path, names, expected, quoted)


def _buffer_bytes(table: pa.Table) -> int:
    """Bytes of the table's buffers. Not ``nbytes``, which walks every string offset: pending
    tables own their buffers (parsed blocks, or copies made by ``filter``), so the two agree."""
    return table.get_total_buffer_size()


def _constant_strings(value: str, n: int) -> pa.Array:
    encoded = value.encode()
    offsets = (np.arange(n + 1, dtype=np.int32) * len(encoded)).tobytes()
    return pa.StringArray.from_buffers(n, pa.py_buffer(offsets), pa.py_buffer(encoded * n))


class _Stream:
    """Streams one activity file as typed batches of the stored schema, keeping rows by day."""

    def __init__(self, source: SourceFile, malicious: dict[str, str] | None, strict: bool, skipped: Skipped,
                 display: str, decoys: Decoys | None = None) -> None:
        self.source = source
        self.decoys = decoys if source.kind == "file" and decoys is not None and len(decoys) else None
        self.decoy_hits = 0
        self.display = display
        self.strict = strict
        self.skipped = skipped
        self.malicious_ids = pa.array(sorted(malicious), pa.string()) if malicious else None
        self.malicious = malicious or {}
        self.matched: set[str] = set()
        self.invalid: list[tuple[int | None, str, str]] = []
        self.bad_rows: list[tuple[str, int | None, str | None, str | None]] = []
        self.rows = 0
        self.pending: list[pa.Table] = []
        self.pending_bytes = 0  # buffer bytes of ``pending``, kept up to date by pull and take_through
        self.pending_days: list[tuple[int, int]] = []
        self.max_day = -(1 << 31)
        self.exhausted = False
        self._file = pa.OSFile(str(source.path))
        self._reader = pacsv.open_csv(
            self._file,
            read_options=pacsv.ReadOptions(use_threads=True, block_size=_BLOCK_SIZE, skip_rows=1,
                                           column_names=source.names),
            parse_options=pacsv.ParseOptions(quote_char='"' if source.quoted else False,
                                             newlines_in_values=source.quoted,
                                             invalid_row_handler=self._on_invalid_row),
            convert_options=pacsv.ConvertOptions(column_types={n: pa.string() for n in source.names},
                                                 include_columns=list(source.columns),
                                                 strings_can_be_null=False, quoted_strings_can_be_null=False),
        )

    def _on_invalid_row(self, row: Any) -> str:
        self.invalid.append((row.number, row.text, f"expected {row.expected_columns} fields, found "
                             f"{row.actual_columns} (truncated or extra fields)"))
        return "skip"

    @property
    def position(self) -> int:
        return self._file.tell() if not self.exhausted else self.source.path.stat().st_size

    @property
    def min_pending_day(self) -> int | None:
        return min((lo for lo, _ in self.pending_days), default=None)

    def pull(self) -> None:
        try:
            batch = self._reader.read_next_batch()
        except StopIteration:
            self.exhausted = True
            self._file.close()
            if self.invalid:
                self._report_invalid_rows()
            self.finish()
            return
        except pa.ArrowInvalid as exc:
            raise MalformedFileError(self.source.path, f"cannot be parsed as CSV: {exc}") from None
        if self.invalid:
            self._report_invalid_rows()
        table = self._convert(batch)
        if table.num_rows:
            days = table.column("day")
            bounds = pc.min_max(days)
            lo, hi = bounds["min"], bounds["max"]
            self.pending.append(table)
            self.pending_bytes += _buffer_bytes(table)
            self.pending_days.append((lo.as_py(), hi.as_py()))
            self.max_day = max(self.max_day, hi.as_py())

    def _report_invalid_rows(self) -> None:
        rows, self.invalid = self.invalid, []
        for number, text, reason in rows:
            self._defer(reason, line=number, text=text)

    def _defer(self, reason: str, line: int | None = None, text: str | None = None, event_id: str | None = None) -> None:
        """Record a bad row. Its line is found now under strict (it fails at once), otherwise in
        one rescan of the file when the stream ends (``finish``)."""
        self.bad_rows.append((reason, line, text, event_id))
        if self.strict:
            self.finish()

    def finish(self) -> None:
        """Locate the deferred bad rows (one pass over the file) and raise or record them."""
        rows, self.bad_rows = self.bad_rows, []
        unknown = [r for r in rows if r[1] is None]
        lookup = locate_lines(self.source.path, texts=[r[2].encode() for r in unknown if r[2] is not None],
                              ids=[r[3].encode() for r in unknown if r[3] is not None]) if unknown else {}
        located = []
        for reason, line, text, event_id in rows:
            if line is None:
                needle = text if text is not None else event_id
                line = lookup.get(needle.encode()) if needle is not None else None
            located.append((line if line is not None else 1 << 62, line, reason))
        for _, line, reason in sorted(located, key=lambda r: r[0]):
            fail_or_skip(self.strict, self.skipped, self.display, reason, line)

    def _convert(self, batch: pa.RecordBatch) -> pa.Table:
        n = batch.num_rows
        self.rows += n
        dates = pc.strptime(batch.column("date"), format=DATE_FORMAT, unit="ms", error_is_null=True)
        bad = pc.or_(pc.is_null(dates), pc.equal(pc.utf8_length(batch.column("user")), 0))
        size = None
        if "size" in self.source.columns:
            raw_size = batch.column("size")
            not_int = pc.invert(pc.or_(pc.match_substring_regex(raw_size, r"^\s*[0-9]+\s*$"),
                                       pc.equal(pc.utf8_length(raw_size), 0)))
            bad = pc.or_(bad, not_int)
        if pc.any(bad).as_py():
            self._report_bad_rows(batch, dates, bad)
            keep = pc.invert(bad)
            batch, dates = batch.filter(keep), dates.filter(keep)
            n = batch.num_rows
        if "size" in self.source.columns:
            raw_size = pc.utf8_trim_whitespace(batch.column("size"))
            size = pc.cast(pc.if_else(pc.equal(pc.utf8_length(raw_size), 0), pa.scalar(None, pa.string()), raw_size),
                           pa.int64())
        columns = []
        for name in EVENT_COLUMNS:
            if name == "type":
                columns.append(_constant_strings(self.source.kind, n))
            elif name == "date":
                columns.append(dates)
            elif name == "size":
                columns.append(size if size is not None else pa.nulls(n, pa.int64()))
            elif name == "decoy":
                columns.append(self._decoy_mask(batch))
            elif name in self.source.columns:
                columns.append(batch.column(name))
            else:
                columns.append(pa.nulls(n, EVENT_SCHEMA.field(name).type))
        millis = dates.cast(pa.int64()).to_numpy(zero_copy_only=False)
        columns.append(pa.array((millis // (1000 * SECONDS_PER_DAY)).astype(np.int32)))
        columns.append(self._malicious_mask(batch))
        return pa.Table.from_arrays(columns, schema=PENDING_SCHEMA)

    def _report_bad_rows(self, batch: pa.RecordBatch, dates: pa.Array, bad: pa.Array) -> None:
        positions = np.flatnonzero(bad.to_numpy(zero_copy_only=False))
        raw_dates = batch.column("date").take(positions).to_pylist()
        users = batch.column("user").take(positions).to_pylist()
        ids = batch.column("id").take(positions).to_pylist()
        sizes = batch.column("size").take(positions).to_pylist() if "size" in self.source.columns else [None] * len(ids)
        parsed = dates.take(positions).to_pylist()
        reasons = []
        for raw_date, value, user, raw_size in zip(raw_dates, parsed, users, sizes):
            if value is None:
                reasons.append(f"date {raw_date!r} does not parse as MM/DD/YYYY HH:MM:SS")
            elif not user:
                reasons.append("empty user field")
            else:
                reasons.append(f"size {raw_size!r} is not an integer")
        for event_id, reason in zip(ids, reasons):
            self._defer(reason, event_id=event_id)

    def _decoy_mask(self, batch: pa.RecordBatch) -> pa.Array:
        """True where a file event's (filename, pc) is a decoy of ``decoy_file.csv``."""
        n = batch.num_rows
        if self.decoys is None or n == 0:
            return pa.array(np.zeros(n, bool))
        keys = pc.binary_join_element_wise(pc.utf8_trim_whitespace(batch.column("filename")), batch.column("pc"),
                                           _DECOY_SEPARATOR)
        hits = pc.is_in(keys, value_set=self.decoys.keys)
        self.decoy_hits += pc.sum(hits).as_py() or 0
        return hits

    def _malicious_mask(self, batch: pa.RecordBatch) -> pa.Array:
        n = batch.num_rows
        if self.malicious_ids is None or n == 0:
            return pa.array(np.zeros(n, bool))
        hits = pc.is_in(batch.column("id"), value_set=self.malicious_ids)
        mask = hits.to_numpy(zero_copy_only=False).copy()
        for position in np.flatnonzero(mask):
            event_id = batch.column("id")[int(position)].as_py()
            if batch.column("user")[int(position)].as_py() == self.malicious[event_id]:
                self.matched.add(event_id)
            else:
                mask[position] = False
        return pa.array(mask)

    def take_through(self, day: int | None) -> pa.Table | None:
        """Remove and return the pending rows of days ``<= day`` (all of them when ``day`` is None)."""
        taken, kept, kept_days = [], [], []
        for table, (lo, hi) in zip(self.pending, self.pending_days):
            if day is None or hi <= day:
                taken.append(table)
            elif lo > day:
                kept.append(table)
                kept_days.append((lo, hi))
            else:
                mask = pc.less_equal(table.column("day"), day)
                taken.append(table.filter(mask))
                rest = table.filter(pc.invert(mask))
                kept.append(rest)
                kept_days.append((day + 1, hi))
        self.pending, self.pending_days = kept, kept_days
        self.pending_bytes = sum(_buffer_bytes(t) for t in kept)
        return pa.concat_tables(taken) if taken else None


# --------------------------------------------------------------------------------------------
# sessions


class _Sessions:
    """Logon/Logoff pairing per (user, pc), fed in chronological order.

    A Logon while a session is open on the same PC is a screen unlock (the session goes on).
    A Logoff closes the session. A session whose Logoff is missing (the next Logon on that PC
    falls on a later day, or the data ends) ends at the end of the day of its last Logon.
    """

    def __init__(self) -> None:
        self.open: dict[tuple[str, str], list[int]] = {}
        self.rows: dict[str, list[Any]] = {"user": [], "pc": [], "start": [], "end": [], "logoff": []}
        self.tables: list[pa.Table] = []  # closed sessions, moved out of Python lists in blocks
        self.orphan_logoffs = 0

    def _close(self, key: tuple[str, str], end: int, logoff: bool) -> None:
        start, _ = self.open.pop(key)
        for name, value in zip(("user", "pc", "start", "end", "logoff"), (key[0], key[1], start, end, logoff)):
            self.rows[name].append(value)
        if len(self.rows["user"]) >= 65_536:
            self._move_rows()

    def _move_rows(self) -> None:
        self.tables.append(pa.table({
            "user": pa.array(self.rows["user"], pa.string()),
            "pc": pa.array(self.rows["pc"], pa.string()),
            "start": pa.array(self.rows["start"], pa.int64()).cast(pa.timestamp("s")),
            "end": pa.array(self.rows["end"], pa.int64()).cast(pa.timestamp("s")),
            "logoff": pa.array(self.rows["logoff"], pa.bool_()),
        }))
        self.rows = {name: [] for name in self.rows}

    @staticmethod
    def _end_of_day(seconds: int) -> int:
        return (seconds // SECONDS_PER_DAY + 1) * SECONDS_PER_DAY - 1

    def feed(self, users: list[str], pcs: list[str], seconds: list[int], activities: list[str]) -> None:
        for user, host, t, activity in zip(users, pcs, seconds, activities):
            key = (user, host)
            current = self.open.get(key)
            kind = (activity or "").strip().lower()
            if kind == "logon":
                if current is None:
                    self.open[key] = [t, t]
                elif t // SECONDS_PER_DAY > current[1] // SECONDS_PER_DAY:
                    self._close(key, self._end_of_day(current[1]), False)
                    self.open[key] = [t, t]
                else:
                    current[1] = t
            elif kind == "logoff":
                if current is None:
                    self.orphan_logoffs += 1
                elif t // SECONDS_PER_DAY > current[1] // SECONDS_PER_DAY + 1:
                    self._close(key, self._end_of_day(current[1]), False)
                    self.orphan_logoffs += 1
                else:
                    self._close(key, t, True)

    def finish(self) -> pa.Table:
        for key in sorted(self.open):
            self._close(key, self._end_of_day(self.open[key][1]), False)
        self._move_rows()
        return pa.concat_tables(self.tables)


# --------------------------------------------------------------------------------------------
# the index


@dataclass
class IndexInfo:
    """What ``index.json`` records about a built index."""

    folder: Path
    fingerprint: str
    rows: dict[str, int]
    num_batches: int
    skipped: list[tuple[str, str]]
    unmatched_answers: list[str]
    repairs: list[str]
    orphan_logoffs: int
    decoy_events: int = 0

    @classmethod
    def load(cls, folder: Path) -> IndexInfo:
        data = json.loads((folder / "index.json").read_text())
        return cls(folder, data["fingerprint"], data["rows"], data["num_batches"],
                   [tuple(x) for x in data["skipped"]], data["unmatched_answers"], data["repairs"],
                   data["orphan_logoffs"], data.get("decoy_events", 0))


def fingerprint_sources(release: str, files: dict[str, Path], answers: Answers | None,
                        decoys: Decoys | None = None) -> str:
    tokens = [f"v{INDEX_VERSION}", release] + [f"{k}={_stat_token(p)}" for k, p in sorted(files.items())]
    tokens.append(answers.fingerprint if answers else "no-answers")
    tokens.append(decoys.token if decoys else "no-decoys")
    return hashlib.sha1("|".join(tokens).encode()).hexdigest()


def build_index(folder: Path, release: str, files: dict[str, Path], answers: Answers | None, strict: bool,
                skipped: Skipped, fingerprint: str, display_root: Path, progress: bool = True,
                decoys: Decoys | None = None) -> IndexInfo:
    """Stream the activity files into ``folder``: events sorted by (day, user, date) + tables.

    Written to a temporary folder first and renamed when complete.
    """
    folder.parent.mkdir(parents=True, exist_ok=True)
    work = folder.parent / f".{folder.name}.building-{os.getpid()}"
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    start_skipped = len(skipped.items)
    try:
        info = _build(work, release, files, answers, strict, skipped, fingerprint, display_root, progress, decoys)
        info_skipped = skipped.items[start_skipped:]
        payload = {
            "version": INDEX_VERSION, "release": release, "fingerprint": fingerprint, "rows": info["rows"],
            "num_batches": info["num_batches"], "skipped": info_skipped,
            "unmatched_answers": info["unmatched"], "repairs": answers.repairs if answers else [],
            "orphan_logoffs": info["orphan_logoffs"], "decoy_events": info["decoy_events"],
        }
        (work / "index.json").write_text(json.dumps(payload, indent=1))
        try:
            if IndexInfo.load(folder).fingerprint == fingerprint:  # another process finished first
                return IndexInfo.load(folder)
        except (OSError, ValueError, KeyError):
            pass
        if folder.exists():
            shutil.rmtree(folder)
        os.replace(work, folder)
    finally:
        if work.exists():
            shutil.rmtree(work, ignore_errors=True)
    return IndexInfo.load(folder)


def _build(work: Path, release: str, files: dict[str, Path], answers: Answers | None, strict: bool,
           skipped: Skipped, fingerprint: str, display_root: Path, progress: bool,
           decoys: Decoys | None) -> dict[str, Any]:
    streams: list[_Stream] = []
    for kind in ACTIVITY_TYPES:
        path = files.get(kind)
        if path is None:
            continue
        source = inspect_activity_file(path, release, kind, strict, skipped)
        if source is None:
            continue
        display = str(path)
        streams.append(_Stream(source, answers.malicious[kind] if answers else None, strict, skipped, display,
                               decoys))
    total_bytes = sum(s.source.path.stat().st_size for s in streams)
    sessions = _Sessions()
    ranges: dict[str, list[np.ndarray]] = {k: [] for k in ("user", "day", "batch", "start", "count", "malicious",
                                                             "decoy")}
    malicious_rows: list[pa.Table] = []
    writer = paipc.new_file(str(work / "events.arrow"), EVENT_SCHEMA)
    flags_file = open(work / "malicious.u8", "wb")  # one byte per stored row: the per-event label
    batch_starts: list[int] = []
    batch_number = rows_written = 0

    def flush(holder: list[pa.Table]) -> None:
        nonlocal batch_number, rows_written
        chunk = holder.pop()  # the caller keeps no reference: each copy below frees the one before
        if chunk.num_rows == 0:
            return
        chunk = chunk.combine_chunks()  # a take on one contiguous chunk is much faster than on many
        chunk = chunk.take(_day_user_date_order(chunk))
        days = chunk.column("day").to_numpy()
        flags = chunk.column("malicious").to_numpy(zero_copy_only=False)
        decoy = chunk.column("decoy").to_numpy(zero_copy_only=False)
        events = chunk.select(list(EVENT_COLUMNS)).combine_chunks()
        for record_batch in events.to_batches():
            n = record_batch.num_rows
            writer.write_batch(record_batch)
            _record_ranges(record_batch.column("user"), days[:n], flags[:n], decoy[:n], batch_number, ranges)
            flags_file.write(flags[:n].astype(np.uint8).tobytes())
            days, flags, decoy = days[n:], flags[n:], decoy[n:]
            batch_starts.append(rows_written)
            rows_written += n
            batch_number += 1
        logons = chunk.filter(pc.equal(chunk.column("type"), "logon"))
        if logons.num_rows:
            sessions.feed(logons.column("user").to_pylist(), logons.column("pc").to_pylist(),
                          pc.divide(logons.column("date").cast(pa.int64()), 1000).to_pylist(),
                          logons.column("activity").to_pylist())
        bad = chunk.filter(chunk.column("malicious"))
        if bad.num_rows:
            malicious_rows.append(bad.select(["type", "id", "user", "pc", "date", "day"]))

    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn

    show = progress and total_bytes >= (64 << 20)
    # chunks are sorted and written by one worker thread while the next day is parsed (both
    # release the GIL); at most one chunk waits, so memory stays bounded
    in_flight: deque[Future] = deque()
    with Progress(TextColumn(f"cert {release}: indexing"), BarColumn(), DownloadColumn(), TimeRemainingColumn(),
                  transient=True, disable=not show) as bar, ThreadPoolExecutor(1, "cert-index") as pool:
        task = bar.add_task("index", total=total_bytes)
        try:
            for stream in streams:
                stream.pull()
            while True:
                candidates = [d for d in (s.min_pending_day for s in streams) if d is not None]
                if not candidates:
                    live = [s for s in streams if not s.exhausted]
                    if not live:
                        break
                    for stream in live:
                        stream.pull()
                    continue
                day = min(candidates)
                for stream in streams:
                    while not stream.exhausted and stream.max_day <= day and stream.pending_bytes < PENDING_BUDGET:
                        stream.pull()
                over_budget = sum(s.pending_bytes for s in streams) >= PENDING_BUDGET
                parts = [s.take_through(None if over_budget else day) for s in streams]
                parts = [p for p in parts if p is not None and p.num_rows]
                if parts:
                    holder = [pa.concat_tables(parts)]
                    del parts
                    in_flight.append(pool.submit(flush, holder))
                    while len(in_flight) > 1:
                        in_flight.popleft().result()
                bar.update(task, completed=sum(s.position for s in streams))
            while in_flight:
                in_flight.popleft().result()
        finally:
            for future in in_flight:  # after an error: let the worker finish before closing files
                future.cancel()
            wait(in_flight)
            writer.close()
            flags_file.close()
    np.save(work / "batch_starts.npy", np.asarray(batch_starts + [rows_written], np.int64))

    unmatched = []
    if answers:
        matched = {s.source.kind: s.matched for s in streams}
        for kind, ids in answers.malicious.items():
            for event_id in sorted(set(ids) - matched.get(kind, set())):
                unmatched.append(f"{kind}:{event_id}")
    if unmatched:
        warnings.warn(f"cert {release}: {len(unmatched)} malicious event(s) named in the answers were not found in "
                      f"the activity files (first: {unmatched[0]}); see loader.unmatched_answers", stacklevel=3)

    _write_userdays(work / "userdays.parquet", ranges)
    pq.write_table(sessions.finish(), work / "sessions.parquet")
    schema = pa.schema([("type", pa.string()), ("id", pa.string()), ("user", pa.string()), ("pc", pa.string()),
                        ("date", pa.timestamp("ms")), ("day", pa.int32())])
    pq.write_table(pa.concat_tables(malicious_rows) if malicious_rows else schema.empty_table(),
                   work / "malicious.parquet")
    return {
        "rows": {s.source.kind: s.rows for s in streams},
        "num_batches": batch_number,
        "unmatched": unmatched,
        "orphan_logoffs": sessions.orphan_logoffs,
        "decoy_events": sum(s.decoy_hits for s in streams),
    }


def _day_user_date_order(chunk: pa.Table) -> pa.Array:
    """Row order grouping a chunk by day, then user, then date (stable for equal dates).

    One int64 key per row (day offset, user code, millisecond of the day) sorts several times
    faster than a three-column sort with string comparisons. Users are grouped in the order
    they first appear, not by name: only contiguity matters to the ranges.
    """
    users = pc.dictionary_encode(chunk.column("user")).combine_chunks()
    codes = users.indices.to_numpy().astype(np.int64)
    days = chunk.column("day").to_numpy().astype(np.int64)
    millis = chunk.column("date").cast(pa.int64()).to_numpy() - days * (1000 * SECONDS_PER_DAY)
    span = int(days.max() - days.min()) + 1 if len(days) else 1
    if span * len(users.dictionary) < (1 << 63) // (1000 * SECONDS_PER_DAY):
        key = ((days - days.min()) * len(users.dictionary) + codes) * (1000 * SECONDS_PER_DAY) + millis
        return pa.array(np.argsort(key, kind="stable"))
    return pc.sort_indices(chunk.select(["day", "user", "date"]),  # a chunk spanning millennia
                           [("day", "ascending"), ("user", "ascending"), ("date", "ascending")])


def _record_ranges(users: pa.Array, days: np.ndarray, flags: np.ndarray, decoy: np.ndarray, number: int,
                   ranges: dict[str, list[np.ndarray]]) -> None:
    """Append one (user, day, batch, start, count, malicious, decoy) row per run of equal (day, user)."""
    n = len(users)
    change = np.ones(n, bool)
    if n > 1:
        same_user = pc.equal(users.slice(1), users.slice(0, n - 1)).to_numpy(zero_copy_only=False)
        change[1:] = ~(same_user & (days[1:] == days[:-1]))
    starts = np.flatnonzero(change)
    counts = np.diff(np.append(starts, n))
    malicious = flags.astype(np.int64)
    ranges["user"].append(users.take(pa.array(starts)).to_numpy(zero_copy_only=False))
    ranges["day"].append(days[starts])
    ranges["batch"].append(np.full(len(starts), number, np.int64))
    ranges["start"].append(starts.astype(np.int64))
    ranges["count"].append(counts.astype(np.int64))
    ranges["malicious"].append(np.add.reduceat(malicious, starts) if n else np.zeros(0, np.int64))
    ranges["decoy"].append(np.add.reduceat(decoy.astype(np.int64), starts) if n else np.zeros(0, np.int64))


def _write_userdays(path: Path, ranges: dict[str, list[np.ndarray]]) -> None:
    """One row per (user, day): event and malicious counts, and ``ranges`` = [batch, start, count]*."""
    if not ranges["day"]:
        table = pa.table({"user": pa.array([], pa.string()), "day": pa.array([], pa.int32()),
                          "n_events": pa.array([], pa.int64()), "n_malicious": pa.array([], pa.int64()),
                          "n_decoy": pa.array([], pa.int64()), "ranges": pa.array([], pa.list_(pa.int64()))})
        pq.write_table(table, path)
        return
    user = np.concatenate(ranges["user"]).astype(str)
    day = np.concatenate(ranges["day"])
    batch = np.concatenate(ranges["batch"])
    start = np.concatenate(ranges["start"])
    count = np.concatenate(ranges["count"])
    mal = np.concatenate(ranges["malicious"])
    decoy = np.concatenate(ranges["decoy"])
    order = np.lexsort((start, batch, user, day))
    user, day, batch, start, count, mal, decoy = (a[order] for a in (user, day, batch, start, count, mal, decoy))
    new_group = np.ones(len(day), bool)
    new_group[1:] = (day[1:] != day[:-1]) | (user[1:] != user[:-1])
    group_starts = np.flatnonzero(new_group)
    triples = np.stack([batch, start, count], axis=1).reshape(-1)
    offsets = np.append(group_starts, len(day)).astype(np.int32) * 3
    table = pa.table({
        "user": pa.array(user[group_starts], pa.string()),
        "day": pa.array(day[group_starts].astype(np.int32)),
        "n_events": pa.array(np.add.reduceat(count, group_starts)),
        "n_malicious": pa.array(np.add.reduceat(mal, group_starts)),
        "n_decoy": pa.array(np.add.reduceat(decoy, group_starts)),
        "ranges": pa.ListArray.from_arrays(pa.array(offsets), pa.array(triples)),
    })
    pq.write_table(table, path)


# --------------------------------------------------------------------------------------------
# reading the index


class EventStore:
    """Reads row ranges of ``events.arrow`` and their labels from ``malicious.u8``.

    With ``memory_map`` (the default) batches are zero-copy views of the mapped file, paged in
    by the OS when used; otherwise each batch is read into memory and the last few are kept.
    A mapped batch that leaves the cache of recent batches has its pages unmapped from this
    process (``madvise(MADV_DONTNEED)``): the mapping is shared and read-only, so views still
    held read the same bytes again from the page cache when used, and the resident size stays
    bounded by a few batches however much of the file a reader goes through.
    """

    def __init__(self, folder: Path, cached_batches: int = 3, memory_map: bool = True) -> None:
        self.folder = folder
        self.cached_batches = cached_batches
        self.memory_map = memory_map
        self._pid: int | None = None
        self._reader: paipc.RecordBatchFileReader | None = None
        self._flags: np.ndarray | None = None
        self._starts = np.load(folder / "batch_starts.npy")
        self._cache: OrderedDict[int, tuple[pa.Table, np.ndarray]] = OrderedDict()
        self._map: mmap.mmap | None = None
        self._map_address = 0
        self.released_batches = 0  # mapped batches whose pages were given back (see the class docstring)

    def _open(self) -> None:
        path = self.folder / "events.arrow"
        self._map = None
        if self.memory_map and path.stat().st_size:
            with open(path, "rb") as handle:
                self._map = mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ)
            mapped = pa.py_buffer(self._map)
            self._map_address = mapped.address
            self._reader = paipc.open_file(pa.BufferReader(mapped))
        else:
            self._reader = paipc.open_file(pa.OSFile(str(path)))
        size = (self.folder / "malicious.u8").stat().st_size
        # a plain ndarray over the mapping: slicing it skips np.memmap's per-slice bookkeeping. The
        # bytes are 0/1, read as bool: the sample schema turns a bool target into uint8 labels
        # without the range check an integer target needs
        flags = np.asarray(np.memmap(self.folder / "malicious.u8", np.uint8, "r")) if size else np.zeros(0, np.uint8)
        self._flags = flags.view(np.bool_)
        self._cache.clear()
        self._pid = os.getpid()

    @property
    def num_batches(self) -> int:
        return len(self._starts) - 1

    def batch(self, number: int) -> tuple[pa.Table, np.ndarray]:
        """Batch ``number`` as a one-chunk table, and its labels (bool, a view of the label file)."""
        if self._pid != os.getpid():  # (re)open in each process: data-loader workers fork
            self._open()
        entry = self._cache.get(number)
        if entry is None:
            batch = self._reader.get_batch(number)  # type: ignore[union-attr]
            first, stop = int(self._starts[number]), int(self._starts[number + 1])
            entry = (pa.Table.from_batches([batch]), self._flags[first:stop])  # type: ignore[index]
            self._cache[number] = entry
            while len(self._cache) > self.cached_batches:
                _, (old, _) = self._cache.popitem(last=False)
                self._release(old)
        else:
            self._cache.move_to_end(number)
        return entry

    def _release(self, table: pa.Table) -> None:
        """Unmap the pages of a mapped batch from this process (they stay in the page cache)."""
        if self._map is None or not hasattr(mmap, "MADV_DONTNEED"):
            return
        size = len(self._map)
        spans = [(buffer.address - self._map_address, buffer.size) for column in table.columns
                 for chunk in column.chunks for buffer in chunk.buffers() if buffer is not None and buffer.size]
        spans = [(offset, length) for offset, length in spans if 0 <= offset and offset + length <= size]
        if not spans:
            return
        first = min(offset for offset, _ in spans) // mmap.PAGESIZE * mmap.PAGESIZE
        stop = max(offset + length for offset, length in spans)
        if first < stop:
            self._map.madvise(mmap.MADV_DONTNEED, first, stop - first)
            self.released_batches += 1

    def rows(self, ranges: list[int]) -> tuple[pa.Table, np.ndarray]:
        """Events named by ``[batch, start, count, ...]`` in date order, and their labels (bool; a
        view of the mapped label file for a single range: copy it to keep it)."""
        if len(ranges) == 3:
            table, flags = self.batch(ranges[0])
            start, count = ranges[1], ranges[2]
            return table.slice(start, count), flags[start:start + count]
        if not ranges:
            return EVENT_SCHEMA.empty_table(), np.zeros(0, np.bool_)
        pieces, labels = [], []
        for i in range(0, len(ranges), 3):
            table, flags = self.batch(ranges[i])
            start, count = ranges[i + 1], ranges[i + 2]
            pieces.append(table.slice(start, count))
            labels.append(flags[start:start + count])
        table = pa.concat_tables(pieces)
        target = np.concatenate(labels)
        dates = table.column("date").cast(pa.int64()).to_numpy()
        if np.all(dates[1:] >= dates[:-1]):  # consecutive days (a week, a session): already in order
            return table, target
        order = pc.sort_indices(table, [("date", "ascending")])  # stable: equal dates keep their order
        return table.take(order), target[order.to_numpy()]


def read_csv_dicts(path: Path) -> tuple[list[str], list[tuple[int, dict[str, str]]]]:
    """Header and ``(line, row)`` pairs of a small CSV (LDAP, psychometric); short rows padded."""
    with open(path, newline="", encoding="utf-8-sig") as handle:
        text = handle.read()
    reader = csv.reader(io.StringIO(text))
    header = [h.strip().strip('"') for h in next(reader, [])]
    rows = []
    padding = [""] * len(header)
    for row in reader:
        values = [cell.strip() for cell in row]
        if not any(values):  # a blank line
            continue
        if len(values) < len(header):
            values += padding[len(values):]
        rows.append((reader.line_num, dict(zip(header, values))))
    return header, rows
