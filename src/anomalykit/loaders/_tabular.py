"""Shared helpers of the tabular loaders (SWaT, WADI, CARE): delimited-text reading with line
numbers, problem collection for ``strict=False``, string-to-number conversion, checksums, the
cache folder and Parquet cache, windows and downsampling of per-step arrays.

Every problem found in a file is recorded as a ``RowProblem`` (file, 1-based line, reason). In
strict mode the first one becomes a ``MalformedFileError``; otherwise the problems are reported
with a warning and kept in the loader's ``skipped`` list.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv
import pyarrow.parquet as pq

from ..errors import ConfigError, MalformedFileError

log = logging.getLogger(__name__)

_NUMBER = re.compile(r"^[+-]?(\d+([.,]\d*)?|[.,]\d+)([eE][+-]?\d+)?$")
_DECIMAL_COMMA = re.compile(r"^[+-]?\d*,\d+([eE][+-]?\d+)?$")


@dataclass(frozen=True)
class RowProblem:
    """One problem in a source file: where it is and what was done about it."""

    path: str
    line: int | None
    reason: str
    action: str | None = None  # what lenient loading did about it: "row skipped", "set to missing", ...

    def __str__(self) -> str:
        where = f"{self.path}, line {self.line}" if self.line is not None else self.path
        return f"{where}: {self.reason}" + (f" ({self.action})" if self.action else "")

    def as_error(self) -> MalformedFileError:
        return MalformedFileError(self.path, self.reason, line=self.line)


class ProblemLog:
    """Collects the problems of one file; ``settle`` raises (strict) or warns (lenient)."""

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        self.problems: list[RowProblem] = []

    def add(self, line: int | None, reason: str, action: str | None = None) -> None:
        self.problems.append(RowProblem(self.path, line, reason, action))

    def __len__(self) -> int:
        return len(self.problems)

    def settle(self, strict: bool, dataset: str) -> list[RowProblem]:
        """Raise the first problem in strict mode; otherwise warn once and return them all."""
        if not self.problems:
            return []
        if strict:
            first = min(self.problems, key=lambda p: (p.line is not None, p.line or 0))  # earliest line
            more = len(self.problems) - 1
            reason = first.reason + (f" ({more} more problem(s) in this file; strict=False skips and reports them)" if more else "")
            raise MalformedFileError(first.path, reason, line=first.line)
        warn_skipped(dataset, self.problems)
        return list(self.problems)


def warn_skipped(dataset: str, problems: list[RowProblem]) -> None:
    if not problems:
        return
    shown = "; ".join(str(p) for p in problems[:5])
    more = f" (and {len(problems) - 5} more)" if len(problems) > 5 else ""
    warnings.warn(f"{dataset}: {len(problems)} problem(s) skipped or set missing: {shown}{more}", stacklevel=3)


def file_sha256(path: str | Path) -> str:
    """SHA-256 of a file's bytes, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def default_cache_dir(dataset: str) -> Path:
    """``$ANOMALYKIT_CACHE/<dataset>``, else ``$XDG_CACHE_HOME/anomalykit/<dataset>``, else
    ``~/.cache/anomalykit/<dataset>``."""
    base = os.environ.get("ANOMALYKIT_CACHE")
    if base:
        return Path(base).expanduser() / dataset
    xdg = os.environ.get("XDG_CACHE_HOME")
    root = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return root / "anomalykit" / dataset


class LineMap:
    """Physical line of each kept data row: ``first_line + row`` unless a ``compute`` callable is
    given, which lists the lines and is called only when a problem must be located."""

    def __init__(self, first_line: int, compute: Any = None) -> None:
        self.first_line = first_line
        self._compute = compute
        self._lines: np.ndarray | None = None

    def __call__(self, rows: np.ndarray) -> np.ndarray:
        rows = np.asarray(rows, np.int64)
        if self._compute is None:
            return self.first_line + rows
        if self._lines is None:
            self._lines = self._compute()
        return self._lines[rows]


def physical_data_lines(path: Path, header_line: int, invalid: set[int]) -> np.ndarray:
    """Physical line numbers of the data rows pyarrow keeps after the header on ``header_line``
    (blank lines and the ``invalid`` lines it skipped are left out)."""
    kept = []
    with open(path, encoding="utf-8-sig", errors="replace", newline="") as handle:
        for number, line in enumerate(handle, start=1):
            if number <= header_line or number in invalid or not line.strip("\r\n"):
                continue
            kept.append(number)
    return np.asarray(kept, np.int64)


def read_text_head(path: Path, max_lines: int = 64, max_bytes: int = 1 << 20) -> list[str]:
    """The first lines of a text file (BOM removed, invalid bytes replaced)."""
    with open(path, "rb") as handle:
        head = handle.read(max_bytes)
    text = head.decode("utf-8-sig", errors="replace")
    lines = text.splitlines()
    if len(head) == max_bytes and lines:
        lines = lines[:-1]  # the last line may be cut
    return lines[:max_lines]


def read_delimited_strings(
    path: Path,
    *,
    delimiter: str,
    skip_rows: int,
    problems: ProblemLog,
    include_columns: list[str] | None = None,
    string_columns: list[str] | None = None,
    column_types: dict[str, pa.DataType] | None = None,
) -> pa.Table:
    """Read a delimited file with pyarrow, the header on physical line ``skip_rows + 1``.

    Rows with a wrong number of fields are recorded in ``problems`` (with their physical line)
    and left out. ``string_columns`` are read as text; ``column_types`` fixes other types.
    """

    bad: list[tuple[int | None, str]] = []

    def on_invalid(row: Any) -> str:
        kind = "truncated row" if row.actual_columns < row.expected_columns else "row with extra fields"
        bad.append((row.number, f"{kind}: {row.actual_columns} fields, expected {row.expected_columns}"))
        return "skip"

    types = dict(column_types or {})
    for name in string_columns or []:
        types[name] = pa.string()
    try:
        table = pcsv.read_csv(
            path,
            read_options=pcsv.ReadOptions(use_threads=False, skip_rows=skip_rows, block_size=1 << 24),
            parse_options=pcsv.ParseOptions(delimiter=delimiter, invalid_row_handler=on_invalid),
            convert_options=pcsv.ConvertOptions(
                column_types=types,
                include_columns=include_columns,
                strings_can_be_null=False,
                quoted_strings_can_be_null=False,
            ),
        )
    except pa.ArrowInvalid as exc:
        line = _line_from_arrow_error(str(exc))
        raise MalformedFileError(path, f"cannot parse: {exc}", line=line) from None
    _record_invalid_rows(path, skip_rows, bad, problems)
    return table


def _record_invalid_rows(path: Path, skip_rows: int, bad: list[tuple[int | None, str]], problems: ProblemLog) -> None:
    """Record rows pyarrow skipped at their physical lines. pyarrow numbers rows from the file
    start but does not count blank lines after the ``skip_rows`` skipped ones, so its numbers are
    converted with one scan of the file, only when there is a problem."""
    if not bad:
        return
    ordinals = [number - skip_rows if number is not None else None for number, _ in bad]
    physical = nonblank_rows_to_lines(path, skip_rows + 1, [o for o in ordinals if o is not None])
    for ordinal, (_, reason) in zip(ordinals, bad):
        problems.add(physical.get(ordinal) if ordinal is not None else None, reason, "row skipped")


def _line_from_arrow_error(message: str) -> int | None:
    match = re.search(r"[Rr]ow #(\d+)", message)
    return int(match.group(1)) if match else None


def strings_to_float(
    values: pa.Array | pa.ChunkedArray,
    *,
    decimal_comma: bool,
    first_line: int,
    line_numbers: np.ndarray | None,
    problems: ProblemLog,
    column: str,
) -> np.ndarray:
    """Convert text cells to float64. Empty cells become NaN (missing); cells that are not numbers
    become NaN and are recorded in ``problems`` with their line.

    ``line_numbers[i]`` is the physical line of row ``i`` (or ``first_line + i`` when None).
    """
    text = pc.utf8_trim(values, characters=' \t"')
    if decimal_comma:
        text = pc.replace_substring(text, ",", ".")
    empty = pc.equal(text, "")
    nullable = pc.if_else(empty, pa.scalar(None, pa.string()), text)
    try:
        return pc.cast(nullable, pa.float64()).to_numpy(zero_copy_only=False).astype(np.float64)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        pass
    out = np.full(len(text), np.nan, np.float64)
    for i, cell in enumerate(nullable.to_pylist()):
        if cell is None:
            continue
        try:
            out[i] = float(cell)
        except ValueError:
            line = int(line_numbers[i]) if line_numbers is not None else first_line + i
            problems.add(line, f"column {column!r}: value {cell!r} is not a number", "set to missing")
    return out


def objects_to_float(
    cells: np.ndarray, *, first_line: int, line_numbers: np.ndarray | None, problems: ProblemLog, column: str
) -> np.ndarray:
    """Convert spreadsheet cells (floats, ints, text, '' for empty) to float64 like ``strings_to_float``."""
    try:
        return np.asarray(cells, dtype=np.float64)
    except (TypeError, ValueError):
        pass
    out = np.full(len(cells), np.nan, np.float64)
    for i, cell in enumerate(cells):
        if isinstance(cell, (int, float, np.number)) and not isinstance(cell, bool):
            out[i] = float(cell)
            continue
        if cell is None:
            continue
        text = str(cell).strip().strip('"')
        if not text:
            continue
        if _NUMBER.match(text):
            out[i] = float(text.replace(",", "."))
            continue
        line = int(line_numbers[i]) if line_numbers is not None else first_line + i
        problems.add(line, f"column {column!r}: value {cell!r} is not a number", "set to missing")
    return out


def looks_like_decimal_comma(cells: list[str]) -> bool:
    """True when some numeric-looking cells use a comma as the decimal mark."""
    return any(_DECIMAL_COMMA.match(c.strip().strip('"')) for c in cells if c)


def parse_bool(text: Any) -> bool | None:
    """``True``/``False``/``1``/``0``/``yes``/``no`` (any case) to a bool; anything else to None."""
    if isinstance(text, bool):
        return text
    value = str(text).strip().lower()
    if value in ("true", "1", "yes", "y", "t"):
        return True
    if value in ("false", "0", "no", "n", "f"):
        return False
    return None


# ------------------------------------------------------------------------------------------------
# reading a delimited file whose header is not on the first line


def read_csv_after_header(
    path: Path,
    *,
    header_index: int,
    delimiter: str,
    problems: ProblemLog,
    column_names: list[str] | None = None,
    column_types: dict[str, pa.DataType] | None = None,
    include_columns: list[str] | None = None,
) -> pa.Table:
    """Read a delimited file whose header is physical line ``header_index + 1`` (lines before
    it, blank ones included, are skipped). ``column_names`` replaces the header's names (one per
    field, so that duplicate or empty names cannot clash). Rows with a wrong number of fields
    are left out and recorded in ``problems`` with their physical line. A cell that does not
    convert to its ``column_types`` type raises ``pyarrow.ArrowInvalid`` (read it as text)."""
    bad: list[tuple[int | None, str]] = []

    def on_invalid(row: Any) -> str:
        kind = "truncated row" if row.actual_columns < row.expected_columns else "row with extra fields"
        bad.append((row.number, f"{kind}: {row.actual_columns} fields, expected {row.expected_columns}"))
        return "skip"

    def read(threads: bool) -> pa.Table:
        try:
            return pcsv.read_csv(
                path,
                read_options=pcsv.ReadOptions(
                    use_threads=threads,
                    skip_rows=header_index + (1 if column_names else 0),
                    column_names=column_names,
                    block_size=1 << 24,
                ),
                parse_options=pcsv.ParseOptions(delimiter=delimiter, invalid_row_handler=on_invalid),
                convert_options=pcsv.ConvertOptions(
                    column_types=column_types or {},
                    include_columns=include_columns,
                    strings_can_be_null=False,
                    quoted_strings_can_be_null=False,
                ),
            )
        except pa.ArrowInvalid as exc:
            if column_types and "conversion error" in str(exc):
                raise  # a cell that is not of its column's type: the caller may read it as text
            raise MalformedFileError(path, f"cannot parse: {exc}", line=_line_from_arrow_error(str(exc))) from None

    table = read(threads=True)
    if bad:  # pyarrow knows row numbers only when it reads in one thread: read again to locate them
        bad.clear()
        table = read(threads=False)
    _record_invalid_rows(path, header_index, bad, problems)
    return table


def nonblank_rows_to_lines(path: Path, header_line: int, ordinals: list[int]) -> dict[int, int]:
    """Physical line of the ``k``-th non-blank line counted from the header (the header is 1)."""
    wanted = set(ordinals)
    found: dict[int, int] = {}
    if not wanted:
        return found
    last = max(wanted)
    ordinal = 0
    with open(path, encoding="utf-8-sig", errors="replace", newline="") as handle:
        for number, line in enumerate(handle, start=1):
            if number < header_line or not line.strip("\r\n"):
                continue
            ordinal += 1
            if ordinal in wanted:
                found[ordinal] = number
            if ordinal >= last:
                break
    return found


# ------------------------------------------------------------------------------------------------
# windows and downsampling of per-step arrays


def window_bounds(length: int, window: int | None, stride: int | None) -> list[tuple[int, int]]:
    """(start, length) of each window; the whole series when ``window`` is None. A tail shorter
    than ``window`` is not a window; ``stride`` defaults to ``window``."""
    if window is None:
        return [(0, length)]
    step = stride or window
    return [(start, window) for start in range(0, length - window + 1, step)]


def downsample_values(values: np.ndarray, factor: int, method: str) -> np.ndarray:
    """T x C values to ceil(T / factor) steps: block means ignoring NaN (``"mean"``; a block of
    only NaN stays NaN, a partial last block is averaged over the steps it has) or every
    ``factor``-th step (``"first"``)."""
    if factor == 1 or len(values) == 0:
        return values
    if method == "first":
        return values[::factor]
    starts = np.arange(0, len(values), factor)
    wide = values.astype(np.float64)
    valid = ~np.isnan(wide)
    sums = np.add.reduceat(np.where(valid, wide, 0.0), starts, axis=0)
    n_valid = np.add.reduceat(valid.astype(np.int64), starts, axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        means = np.where(n_valid > 0, sums / np.maximum(n_valid, 1), np.nan)
    return means.astype(values.dtype if values.dtype.kind == "f" else np.float32)


def downsample_steps(steps: np.ndarray, factor: int, method: str) -> np.ndarray:
    """Per-step labels or ids downsampled like ``downsample_values``: the block maximum for
    ``"mean"`` (a block is anomalous when any of its steps is), every ``factor``-th for ``"first"``."""
    if factor == 1 or len(steps) == 0:
        return steps
    if method == "first":
        return steps[::factor]
    return np.maximum.reduceat(steps, np.arange(0, len(steps), factor))


# ------------------------------------------------------------------------------------------------
# Parquet copies of parsed files, keyed by the source's checksum


class ParquetCache:
    """Parsed tables cached as ``<folder>/<stem>-<sha256 prefix>-v<version>.parquet``.

    The schema metadata holds ``anomalykit.<dataset>.sha256`` (the source's SHA-256) and
    ``anomalykit.<dataset>.version``; a copy whose checksum or version differs is not used.
    ``folder=None`` disables the cache.
    """

    def __init__(self, dataset: str, folder: Path | None, version: int) -> None:
        self.dataset = dataset
        self.folder = folder
        self.version = version

    def key(self, name: str) -> bytes:
        return f"anomalykit.{self.dataset}.{name}".encode()

    def path_for(self, source: Path, sha256: str) -> Path | None:
        if self.folder is None:
            return None
        return self.folder / f"{source.stem}-{sha256[:20]}-v{self.version}.parquet"

    def read(self, source: Path, sha256: str) -> pa.Table | None:
        """The cached table of ``source``, or None (absent, stale or unreadable)."""
        path = self.path_for(source, sha256)
        if path is None or not path.is_file():
            return None
        try:
            table = pq.read_table(path)
        except (pa.ArrowException, OSError) as exc:
            log.warning("%s: ignoring unreadable cache %s (%s)", self.dataset, path, exc)
            return None
        metadata = table.schema.metadata or {}
        if metadata.get(self.key("sha256"), b"").decode() != sha256:
            return None
        if metadata.get(self.key("version"), b"").decode() != str(self.version):
            return None
        log.debug("%s: read %s from cache %s", self.dataset, source.name, path)
        return table

    def write(self, table: pa.Table, source: Path, sha256: str, extra: dict[str, str] | None = None) -> Path | None:
        """Write atomically (temporary name, then rename); returns the path, or None when the
        cache is disabled or cannot be written (a warning says why)."""
        path = self.path_for(source, sha256)
        if path is None:
            return None
        metadata = {
            **(table.schema.metadata or {}),
            self.key("version"): str(self.version).encode(),
            self.key("source"): source.name.encode(),
            self.key("sha256"): sha256.encode(),
            **{self.key(k): v.encode() for k, v in (extra or {}).items()},
        }
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            partial = path.with_name(f"{path.name}.{os.getpid()}.partial")
            pq.write_table(table.replace_schema_metadata(metadata), partial, compression="zstd")
            os.replace(partial, path)
        except OSError as exc:
            log.warning("%s: could not write the cache %s (%s); the next load parses again", self.dataset, path, exc)
            return None
        log.info("%s: cached %s as %s", self.dataset, source.name, path)
        return path


class CachedSensorLoader:
    """What the SWaT and WADI loaders share (mixed into their ``DatasetLoader`` classes): the
    window and downsampling options, the ``skipped`` report of row problems, and parsing a file
    once into a Parquet copy keyed by its checksum."""

    name: str
    strict: bool
    skipped: list[tuple[str, str]]
    cache_dir: Any
    window: Any
    stride: Any
    downsample: Any
    downsample_method: Any

    def check_window_options(self) -> None:
        if self.window is not None and (not isinstance(self.window, int) or self.window < 1):
            raise ConfigError(f"{self.name}: window must be a positive integer or None, got {self.window!r}")
        if self.stride is not None and (self.window is None or not isinstance(self.stride, int) or self.stride < 1):
            raise ConfigError(f"{self.name}: stride must be a positive integer and needs window, got stride={self.stride!r}")
        if not isinstance(self.downsample, int) or self.downsample < 1:
            raise ConfigError(f"{self.name}: downsample must be an integer >= 1, got {self.downsample!r}")
        if self.downsample_method not in ("mean", "first"):
            raise ConfigError(f"{self.name}: downsample_method must be 'mean' or 'first', got {self.downsample_method!r}")

    def _record(self, problems: list[RowProblem]) -> None:
        for problem in problems:
            entry = (f"{problem.path}:{problem.line}", f"{problem.reason} ({problem.action})" if problem.action else problem.reason)
            if entry not in self.skipped:
                self.skipped.append(entry)

    def cache_folder(self) -> Path | None:
        if self.cache_dir is False:
            return None
        return Path(self.cache_dir).expanduser() if self.cache_dir else default_cache_dir(self.name)

    def cached_parse(self, path: Path, *, version: int, parse: Any, decode: Any, encode: Any) -> tuple[Any, str | None, str]:
        """Parse ``path`` (``parse(path, problems)``) or read its cached copy (``decode(arrow)``),
        writing ``encode(table, sha256)`` after a parse: (table, cache path or None, sha256).
        Problems found in the file raise in strict mode, are warned about and recorded otherwise."""
        sha = file_sha256(path)
        cache = ParquetCache(self.name, self.cache_folder(), version)
        table = None
        cached = cache.read(path, sha)
        if cached is not None:
            try:
                table = decode(cached)
            except (pa.ArrowException, KeyError, ValueError) as exc:
                log.warning("%s: ignoring unusable cache for %s (%s)", self.name, path.name, exc)
        if table is None:
            problems = ProblemLog(path)
            table = parse(path, problems)
            table.problems = problems.problems
            if self.strict and table.problems:
                problems.settle(True, self.name)
            cache.write(encode(table, sha), path, sha)
        if table.problems:
            recorded = ProblemLog(path)
            recorded.problems = list(table.problems)
            recorded.settle(self.strict, self.name)  # raises in strict mode, warns otherwise
            self._record(table.problems)
        cache_path = cache.path_for(path, sha)
        return table, (str(cache_path) if cache_path is not None and cache_path.is_file() else None), sha
