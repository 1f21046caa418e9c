"""Shared helpers of the tabular loaders (SWaT, CARE): delimited-text reading with line numbers,
problem collection for ``strict=False``, string-to-number conversion, checksums and the cache folder.

Every problem found in a file is recorded as a ``RowProblem`` (file, 1-based line, reason). In
strict mode the first one becomes a ``MalformedFileError``; otherwise the problems are reported
with a warning and kept in the loader's ``skipped`` list.
"""

from __future__ import annotations

import hashlib
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

from ..errors import MalformedFileError

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

    def on_invalid(row: Any) -> str:
        kind = "truncated row" if row.actual_columns < row.expected_columns else "row with extra fields"
        problems.add(row.number, f"{kind}: {row.actual_columns} fields, expected {row.expected_columns}", "row skipped")
        return "skip"

    types = dict(column_types or {})
    for name in string_columns or []:
        types[name] = pa.string()
    try:
        return pcsv.read_csv(
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
