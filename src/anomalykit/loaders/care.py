"""CARE to Compare (Fraunhofer IEE): SCADA data of 36 wind turbines in three farms, 95 event
datasets, each with a ``train`` part and a ``prediction`` part that holds one event.

Layout: ``<root>/Wind Farm {A,B,C}/{datasets/<event_id>.csv, event_info.csv,
feature_description.csv}``, every file ``;``-separated.

Sample mapping (``part="all"``, the default): one sample per event dataset, ``split="test"``,
``key="<farm>/<event_id>"``, ``category`` the farm letter, ``label`` 1 for an ``anomaly`` event
and 0 for a ``normal`` one, ``defect`` the event description. The payload is a ``Series`` of the
signal columns (T x C float32, timestamps, channel names; empty cells are NaN) and ``target`` is
1 on the rows whose ``id`` lies in [``event_start_id``, ``event_end_id``] of an anomaly event.
``meta`` holds, per row, ``ids``, ``status_type_id``, ``normal_mask`` (status in
``normal_status``, default {0} as the reference code; the README counts {0, 2}) and
``is_prediction``; and the event (asset id, start/end times and ids, label, description), the
asset id, and ``channel_info`` (sensor, statistic, description, unit, is_angle, is_counter from
``feature_description.csv``).

``part="train"`` / ``"prediction"`` keep one part (``train`` samples have ``split="train"``,
label 0); ``part="both"`` gives both, keyed ``<farm>/<event_id>/train`` and ``.../prediction``.
``statistics`` keeps only some statistics (``["average"]`` reads the averages, as the reference
code does; Farm A's bare ``sensor_44`` ... ``sensor_51`` columns count as averages).

Timestamps are shifted per event in the release: never order or join events by time.

>>> ds = anomalykit.load("care", "/data/CARE_To_Compare", farm="A", statistics=["average"])  # doctest: +SKIP
>>> s = ds[0]; s.meta["normal_mask"].mean(), s.target.sum()                                   # doctest: +SKIP
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..errors import ConfigError, MalformedFileError
from ..schema import Modality, Sample, Series
from ._tabular import (
    LineMap,
    ProblemLog,
    parse_bool,
    physical_data_lines,
    read_delimited_strings,
    read_text_head,
    strings_to_float,
)
from .base import DatasetLoader, VerifyReport, manifest_from_rows, register_dataset

FARMS = ("A", "B", "C")
FARM_FOLDER = re.compile(r"^Wind Farm ([A-Z])$")
META_COLUMNS = ("time_stamp", "asset_id", "id", "train_test", "status_type_id")
TIME_FORMAT = "%Y-%m-%d %H:%M:%S"
STATUS_NAMES = {0: "normal operation", 1: "derated", 2: "idling", 3: "service", 4: "downtime", 5: "other"}
STATISTICS = {"average": "_avg", "minimum": "_min", "maximum": "_max", "std_dev": "_std"}
_SUFFIX_TO_STATISTIC = {suffix: name for name, suffix in STATISTICS.items()}
EVENT_COLUMNS = ("asset_id", "event_id", "event_label", "event_start", "event_start_id", "event_end", "event_end_id")
EVENT_OPTIONAL = ("event_description",)
PARTS = ("all", "train", "prediction", "both")
#: statuses the reference code counts as normal operation (the default ``normal_status``)
CODE_NORMAL_STATUS = (0,)
#: statuses the dataset README counts as normal operation; pass as ``normal_status`` to follow it
README_NORMAL_STATUS = (0, 2)


# ------------------------------------------------------------------------------------------------
# event_info.csv and feature_description.csv


@dataclass(frozen=True)
class Event:
    """One row of a farm's ``event_info.csv``."""

    farm: str
    event_id: int
    asset_id: int
    label: str  # "anomaly" or "normal"
    start: dt.datetime
    start_id: int
    end: dt.datetime
    end_id: int
    description: str | None
    line: int

    @property
    def is_anomaly(self) -> bool:
        return self.label == "anomaly"

    def as_meta(self) -> dict[str, Any]:
        return {
            "farm": self.farm,
            "event_id": self.event_id,
            "asset_id": self.asset_id,
            "event_label": self.label,
            "event_start": self.start.isoformat(sep=" "),
            "event_start_id": self.start_id,
            "event_end": self.end.isoformat(sep=" "),
            "event_end_id": self.end_id,
            "event_description": self.description,
        }


def _decode(path: Path) -> str:
    """UTF-8 text; files whose bytes are not UTF-8 (a Latin-1 degree sign) are read as cp1252."""
    data = path.read_bytes()
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data.decode("cp1252", errors="replace")


def _read_semicolon_rows(path: Path) -> list[list[str]]:
    return list(csv.reader(io.StringIO(_decode(path), newline=""), delimiter=";", quotechar='"'))


def parse_event_info(path: Path, farm: str, problems: ProblemLog) -> list[Event]:
    """Parse ``event_info.csv`` (``asset`` in Farm A, ``asset_id`` elsewhere; ``;``-separated)."""
    rows = _read_semicolon_rows(path)
    if not rows:
        raise MalformedFileError(path, "empty file; expected a header " + ";".join(EVENT_COLUMNS), line=1)
    header = [c.strip() for c in rows[0]]
    names = ["asset_id" if c == "asset" else c for c in header]
    missing = [c for c in EVENT_COLUMNS if c not in names]
    if missing:
        raise MalformedFileError(path, f"missing column(s) {', '.join(missing)}; header is {';'.join(header)}", line=1)
    for name in names:
        if name not in EVENT_COLUMNS + EVENT_OPTIONAL:
            problems.add(1, f"unknown column {name!r}", "ignored")
    position = {name: i for i, name in enumerate(names)}
    events: list[Event] = []
    seen: set[int] = set()
    for line, row in enumerate(rows[1:], start=2):
        if not any(cell.strip() for cell in row):
            continue
        if len(row) < len(EVENT_COLUMNS) or len(row) < position[EVENT_COLUMNS[-1]] + 1:
            problems.add(line, f"truncated row: {len(row)} fields, the header has {len(header)}", "row skipped")
            continue
        if len(row) > len(header):
            problems.add(line, f"row with {len(row)} fields, the header has {len(header)}", "row skipped")
            continue
        cell = {name: row[i].strip() for name, i in position.items() if i < len(row)}
        try:
            event = Event(
                farm=farm,
                event_id=_int(cell["event_id"], "event_id"),
                asset_id=_int(cell["asset_id"], "asset_id"),
                label=_event_label(cell["event_label"]),
                start=_time(cell["event_start"], "event_start"),
                start_id=_int(cell["event_start_id"], "event_start_id"),
                end=_time(cell["event_end"], "event_end"),
                end_id=_int(cell["event_end_id"], "event_end_id"),
                description=cell.get("event_description") or None,
                line=line,
            )
        except ValueError as exc:
            problems.add(line, str(exc), "row skipped")
            continue
        if event.event_id in seen:
            problems.add(line, f"event_id {event.event_id} appears twice", "row skipped")
            continue
        if event.end_id < event.start_id:
            problems.add(line, f"event_end_id {event.end_id} is before event_start_id {event.start_id}", "row skipped")
            continue
        seen.add(event.event_id)
        events.append(event)
    return events


def _int(text: str, column: str) -> int:
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"{column}: {text!r} is not an integer") from None
    if not value.is_integer():
        raise ValueError(f"{column}: {text!r} is not an integer")
    return int(value)


def _time(text: str, column: str) -> dt.datetime:
    for fmt in (TIME_FORMAT, "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M:%S"):
        try:
            return dt.datetime.strptime(text, fmt)
        except ValueError:
            continue
    raise ValueError(f"{column}: unparsable date {text!r} (expected YYYY-MM-DD HH:MM:SS)")


def _event_label(text: str) -> str:
    label = text.strip().lower()
    if label not in ("anomaly", "normal"):
        raise ValueError(f"event_label: {text!r} is neither 'anomaly' nor 'normal'")
    return label


@dataclass(frozen=True)
class FeatureInfo:
    """One sensor of ``feature_description.csv``."""

    sensor: str
    statistics: tuple[str, ...]
    description: str | None
    unit: str | None
    is_angle: bool | None
    is_counter: bool | None
    extra: tuple[tuple[str, str], ...] = ()


def parse_feature_description(path: Path, problems: ProblemLog) -> dict[str, FeatureInfo]:
    """Parse ``feature_description.csv`` by column name (``statistics_type``, or the README's
    ``statistic_type``, is a comma-separated set of average/minimum/maximum/std_dev)."""
    rows = _read_semicolon_rows(path)
    if not rows:
        raise MalformedFileError(path, "empty file; expected a header with sensor_name", line=1)
    header = [c.strip() for c in rows[0]]
    position = {name: i for i, name in enumerate(header)}
    if "sensor_name" not in position:
        raise MalformedFileError(path, f"missing column 'sensor_name'; header is {';'.join(header)}", line=1)
    stat_column = "statistics_type" if "statistics_type" in position else "statistic_type"
    known = {"sensor_name", stat_column, "description", "unit", "is_angle", "is_counter"}
    features: dict[str, FeatureInfo] = {}
    for line, row in enumerate(rows[1:], start=2):
        if not any(cell.strip() for cell in row):
            continue
        if len(row) != len(header):
            problems.add(line, f"row with {len(row)} fields, the header has {len(header)}", "row skipped")
            continue
        cell = {name: row[i].strip() for name, i in position.items()}
        statistics = tuple(s.strip() for s in cell.get(stat_column, "").split(",") if s.strip())
        unknown = [s for s in statistics if s not in STATISTICS]
        if unknown:
            problems.add(line, f"unknown statistic(s) {', '.join(unknown)} (expected {', '.join(STATISTICS)})", "kept as written")
        flags = {}
        for flag in ("is_angle", "is_counter"):
            value = cell.get(flag)
            flags[flag] = parse_bool(value) if value not in (None, "") else None
            if value not in (None, "") and flags[flag] is None:
                problems.add(line, f"{flag}: {value!r} is not a boolean", "left unknown")
        features[cell["sensor_name"]] = FeatureInfo(
            sensor=cell["sensor_name"],
            statistics=statistics,
            description=cell.get("description") or None,
            unit=cell.get("unit") or None,
            is_angle=flags["is_angle"],
            is_counter=flags["is_counter"],
            extra=tuple((k, v) for k, v in cell.items() if k not in known),
        )
    return features


def describe_channel(column: str, features: dict[str, FeatureInfo]) -> dict[str, Any]:
    """Sensor, statistic and description of a signal column (``x_avg``, ``x_min``, ``x_max``,
    ``x_std``, or a bare sensor name meaning its average)."""
    sensor, statistic = column, None
    for suffix, name in _SUFFIX_TO_STATISTIC.items():
        if column.endswith(suffix) and (column[: -len(suffix)] in features or column not in features):
            sensor, statistic = column[: -len(suffix)], name
            break
    if statistic is None and column in features:
        statistic = "average"
    info = features.get(sensor)
    return {
        "name": column,
        "sensor": sensor,
        "statistic": statistic,
        "described": info is not None,
        "description": info.description if info else None,
        "unit": info.unit if info else None,
        "is_angle": info.is_angle if info else None,
        "is_counter": info.is_counter if info else None,
    }


# ------------------------------------------------------------------------------------------------
# datasets/<event_id>.csv


@dataclass
class EventData:
    """One parsed event dataset."""

    columns: list[str]
    values: np.ndarray  # float32 (T, C)
    timestamps: np.ndarray  # datetime64[s]
    asset_id: np.ndarray  # int64
    ids: np.ndarray  # int64
    is_prediction: np.ndarray  # bool
    status: np.ndarray  # int16


def read_event_csv(path: Path, problems: ProblemLog, statistics: set[str] | None, features: dict[str, FeatureInfo]) -> EventData:
    """Parse ``datasets/<event_id>.csv``. Rows with a bad time stamp, id, asset id, status or
    train_test value are left out and recorded; non-numeric signal cells become NaN and are recorded."""
    head = read_text_head(path, 1)
    if not head:
        raise MalformedFileError(path, "empty file; expected a header starting " + ";".join(META_COLUMNS), line=1)
    header = next(csv.reader([head[0]], delimiter=";"))
    missing = [c for c in META_COLUMNS if c not in header]
    if missing:
        raise MalformedFileError(path, f"missing column(s) {', '.join(missing)}; the header starts {';'.join(header[:6])}", line=1)
    if len(set(header)) != len(header):
        twice = sorted({c for c in header if header.count(c) > 1})
        raise MalformedFileError(path, f"column(s) {', '.join(twice)} appear twice in the header", line=1)
    signals = [c for c in header if c not in META_COLUMNS]
    if statistics is not None:
        signals = [c for c in signals if describe_channel(c, features)["statistic"] in statistics]
    # fast path: pyarrow parses the signals as numbers; only a file with a non-numeric cell is
    # read again as text, to locate and report every such cell
    first_try = ProblemLog(path)
    try:
        table = read_delimited_strings(
            path, delimiter=";", skip_rows=0, problems=first_try, include_columns=list(META_COLUMNS) + signals,
            string_columns=list(META_COLUMNS), column_types={name: pa.float64() for name in signals},
        )  # fmt: skip
        problems.problems.extend(first_try.problems)
    except MalformedFileError:
        table = read_delimited_strings(
            path, delimiter=";", skip_rows=0, problems=problems, include_columns=list(META_COLUMNS) + signals,
            string_columns=list(META_COLUMNS) + signals,
        )  # fmt: skip
    invalid = {p.line for p in problems.problems if p.line is not None and p.line > 1}
    line_map = LineMap(2, lambda: physical_data_lines(path, 1, invalid))
    n = table.num_rows
    keep = np.ones(n, bool)

    def flag(bad: np.ndarray, reason: Any) -> None:
        rows = np.flatnonzero(bad & keep)
        if rows.size:
            for row, line in zip(rows, line_map(rows)):
                problems.add(int(line), reason(row), "row skipped")
            keep[rows] = False

    stamp_text = pc.utf8_trim_whitespace(table.column("time_stamp"))
    stamps = pc.strptime(stamp_text, format=TIME_FORMAT, unit="s", error_is_null=True)
    stamp_values = stamps.cast(pa.int64()).fill_null(0).to_numpy().astype("datetime64[s]")
    stamp_list = None
    bad_stamps = ~stamps.is_valid().to_numpy(zero_copy_only=False)
    if bad_stamps.any():
        stamp_list = stamp_text.to_pylist()
        flag(bad_stamps, lambda r: f"time_stamp: unparsable date {stamp_list[r]!r} (expected YYYY-MM-DD HH:MM:SS)")

    integers = {}
    for column in ("asset_id", "id", "status_type_id"):
        text = table.column(column)
        values, bad = _integers(text)
        if bad.any():
            cells = text.to_pylist()
            flag(bad, lambda r, column=column, cells=cells: f"{column}: {cells[r]!r} is not an integer")
        integers[column] = values
    status = integers["status_type_id"]
    flag((status < 0) | (status > 5), lambda r: f"status_type_id: {int(status[r])} is outside 0-5")

    part = pc.utf8_lower(pc.utf8_trim_whitespace(table.column("train_test")))
    is_prediction = pc.equal(part, "prediction").to_numpy(zero_copy_only=False)
    is_train = pc.equal(part, "train").to_numpy(zero_copy_only=False)
    part_cells = table.column("train_test")
    flag(~(is_prediction | is_train), lambda r: f"train_test: {part_cells[r].as_py()!r} is neither 'train' nor 'prediction'")

    values = np.empty((n, len(signals)), np.float32)
    for i, name in enumerate(signals):
        column = table.column(name)
        if pa.types.is_floating(column.type):
            values[:, i] = column.to_numpy()
            continue
        sub = ProblemLog(path)
        values[:, i] = strings_to_float(table.column(name), decimal_comma=False, first_line=2, line_numbers=None, problems=sub, column=name)
        if sub.problems:
            rows = np.asarray([p.line - 2 for p in sub.problems])
            for problem, row, line in zip(sub.problems, rows, line_map(rows)):
                if keep[row]:
                    problems.add(int(line), problem.reason, problem.action)
    if not keep.all():
        values, stamp_values, is_prediction, status = values[keep], stamp_values[keep], is_prediction[keep], status[keep]
        integers = {k: v[keep] for k, v in integers.items()}
    return EventData(
        columns=signals,
        values=values,
        timestamps=stamp_values,
        asset_id=integers["asset_id"],
        ids=integers["id"],
        is_prediction=is_prediction,
        status=status.astype(np.int16),
    )


def _integers(text: Any) -> tuple[np.ndarray, np.ndarray]:
    """Integers from text cells and a mask of the cells that are not integers."""
    trimmed = pc.utf8_trim_whitespace(text)
    try:
        return pc.cast(trimmed, pa.int64()).to_numpy(zero_copy_only=False), np.zeros(len(trimmed), bool)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        pass
    out = np.zeros(len(trimmed), np.int64)
    bad = np.zeros(len(trimmed), bool)
    for i, cell in enumerate(trimmed.to_pylist()):
        try:
            value = float(cell)
            if not value.is_integer():
                raise ValueError
            out[i] = int(value)
        except (TypeError, ValueError):
            bad[i] = True
    return out, bad


# ------------------------------------------------------------------------------------------------
# the loader


def _event_ids(value: Any) -> set[int] | None:
    """The ``event_id`` option as a set of ints (None: every event); ``ConfigError`` otherwise."""
    if value is None:
        return None
    items = [value] if isinstance(value, (int, str, np.integer)) else value
    try:
        items = list(items)
    except TypeError:
        items = [value]
    ids: set[int] = set()
    for item in items:
        text = str(item).strip()
        if isinstance(item, bool) or not re.fullmatch(r"\d+", text):
            raise ConfigError(f"care: event_id must be a non-negative integer or a list of them, got {item!r}")
        ids.add(int(text))
    if not ids:
        raise ConfigError("care: event_id is an empty list; pass None for every event")
    return ids


@register_dataset("care")
class CARE(DatasetLoader):
    """Loader of CARE to Compare (root: ``CARE_To_Compare/``, its parent, or one farm folder).
    See the module docstring for the sample mapping.

    Options: ``farm`` (``"all"``, a letter or a list), ``event_id`` (None, an id or a list),
    ``part`` (``"all"``, ``"train"``, ``"prediction"``, ``"both"``), ``statistics`` (``"all"``
    or a subset of average/minimum/maximum/std_dev), ``normal_status`` (status ids counted as
    normal operation, default ``(0,)``).
    """

    modality = Modality.SERIES
    options = {"farm": "all", "event_id": None, "part": "all", "statistics": "all", "normal_status": CODE_NORMAL_STATUS}

    def __init__(self, root, *, strict: bool = True, **options: Any) -> None:
        self.skipped: list[tuple[str, str]] = []
        self._features: dict[str, dict[str, FeatureInfo]] = {}
        self._events: dict[str, list[Event]] = {}
        self._last: tuple[str, EventData, ProblemLog] | None = None
        root = Path(root).expanduser()
        nested = root / "CARE_To_Compare"
        if root.is_dir() and not self._farm_dirs_in(root) and not (root / "event_info.csv").is_file() and nested.is_dir():
            root = nested
        super().__init__(root, strict=strict, **options)

    def validate_options(self) -> None:
        if self.part not in PARTS:
            raise ConfigError(f"care: part must be one of {', '.join(PARTS)}, got {self.part!r}")
        stats = self.as_list(self.statistics)
        if stats is not None:
            unknown = [s for s in stats if s not in STATISTICS]
            if unknown or not stats:
                raise ConfigError(f"care: statistics must be 'all' or a subset of {', '.join(STATISTICS)}, got {self.statistics!r}")
        try:
            self.normal_status = tuple(int(s) for s in ([self.normal_status] if isinstance(self.normal_status, int) else self.normal_status))
        except (TypeError, ValueError):
            raise ConfigError(f"care: normal_status must be status ids 0-5, got {self.normal_status!r}") from None
        if not self.normal_status or any(s not in STATUS_NAMES for s in self.normal_status):
            raise ConfigError(f"care: normal_status must be status ids 0-5, got {self.normal_status!r}")
        self.event_ids = _event_ids(self.event_id)
        farms = self.as_list(self.farm)
        if farms is not None:
            bad = [f for f in farms if not re.fullmatch(r"[A-Za-z]", f)]
            if bad:
                raise ConfigError(f"care: farm must be a letter such as {', '.join(FARMS)} (or 'all'), got {bad[0]!r}")

    @staticmethod
    def _farm_dirs_in(folder: Path) -> dict[str, Path]:
        return {m.group(1): p for p in sorted(folder.iterdir()) if p.is_dir() and (m := FARM_FOLDER.match(p.name))}

    def farm_dirs(self) -> dict[str, Path]:
        """Farm letter -> folder, for the farms asked for."""
        if (self.root / "event_info.csv").is_file():
            match = FARM_FOLDER.match(self.root.name)
            found = {match.group(1) if match else self.root.name: self.root}
        else:
            found = self._farm_dirs_in(self.root)
        if not found:
            raise self.not_found(self.root / "Wind Farm A" / "event_info.csv", "CARE farm folders ('Wind Farm A', ...)")
        wanted = self.as_list(self.farm)
        if wanted is None:
            return found
        wanted = [w.upper() for w in wanted]
        for farm in wanted:
            if farm not in found:
                raise self.not_found(self.root / f"Wind Farm {farm}", f"farm {farm!r} (found: {', '.join(sorted(found))})")
        return {farm: found[farm] for farm in wanted}

    def _settle(self, problems: ProblemLog) -> None:
        for problem in problems.settle(self.strict, self.name):
            reason = f"{problem.reason} ({problem.action})" if problem.action else problem.reason
            self.skipped.append((f"{problem.path}:{problem.line}", reason))

    def events(self, farm: str, folder: Path) -> list[Event]:
        """The parsed ``event_info.csv`` of a farm (parsed once per loader)."""
        if farm not in self._events:
            path = folder / "event_info.csv"
            if not path.is_file():
                raise self.not_found(path, f"event_info.csv of farm {farm}")
            problems = ProblemLog(path)
            events = parse_event_info(path, farm, problems)
            self._settle(problems)
            self._events[farm] = events
        return self._events[farm]

    def features(self, farm: str, folder: Path) -> dict[str, FeatureInfo]:
        if farm not in self._features:
            path = folder / "feature_description.csv"
            if not path.is_file():
                if self.strict:
                    raise self.not_found(path, f"feature_description.csv of farm {farm}")
                self.skipped.append((str(path), "missing; channels carry no description"))
                self._features[farm] = {}
            else:
                problems = ProblemLog(path)
                self._features[farm] = parse_feature_description(path, problems)
                self._settle(problems)
        return self._features[farm]

    def build_manifest(self) -> pa.Table:
        rows: list[dict[str, Any]] = []
        wanted_ids = self.event_ids
        for farm, folder in self.farm_dirs().items():
            events = self.events(farm, folder)
            data_dir = folder / "datasets"
            if not data_dir.is_dir():
                raise self.not_found(data_dir, f"datasets folder of farm {farm}")
            listed = {e.event_id for e in events}
            orphans = ProblemLog(folder / "event_info.csv")
            for path in sorted(data_dir.glob("*.csv")):
                if not path.stem.isdigit() or int(path.stem) not in listed:
                    orphans.add(None, f"datasets/{path.name} has no row in event_info.csv", "not loaded")
            absent = ProblemLog(data_dir)
            for event in events:
                if wanted_ids is not None and event.event_id not in wanted_ids:
                    continue
                path = data_dir / f"{event.event_id}.csv"
                if not path.is_file():
                    if self.strict:
                        raise self.not_found(path, f"dataset of event {event.event_id} (event_info.csv line {event.line})")
                    absent.add(None, f"{event.event_id}.csv listed in event_info.csv line {event.line} is missing", "event skipped")
                    continue
                parts = {"all": [("all", "test")], "train": [("train", "train")], "prediction": [("prediction", "test")],
                         "both": [("train", "train"), ("prediction", "test")]}[self.part]  # fmt: skip
                for part, split in parts:
                    anomalous = event.is_anomaly and part != "train"
                    rows.append(
                        {
                            "key": f"{farm}/{event.event_id}" + ("" if self.part == "all" else f"/{part}"),
                            "split": split,
                            "label": int(anomalous),
                            "category": farm,
                            "defect": event.description if anomalous else None,
                            "path": path.relative_to(self.root).as_posix(),
                            "mask_path": None,
                            "part": part,
                            "event_id": event.event_id,
                            "asset_id": event.asset_id,
                        }
                    )
            self._settle(orphans)
            self._settle(absent)
        if wanted_ids is not None:
            found = {r["event_id"] for r in rows}
            missing = sorted(wanted_ids - found)
            if missing:
                raise self.not_found(self.root / "Wind Farm */event_info.csv", f"event id(s) {', '.join(map(str, missing))}")
        return manifest_from_rows(rows, {"event_id": pa.int64(), "asset_id": pa.int64()})

    def _event(self, farm: str, event_id: int) -> tuple[Event, Path]:
        folder = self.farm_dirs().get(farm, self.root / f"Wind Farm {farm}")
        for event in self.events(farm, folder):
            if event.event_id == event_id:
                return event, folder
        raise MalformedFileError(folder / "event_info.csv", f"event {event_id} is not listed")

    def read(self, row: dict[str, Any]) -> Sample:
        farm, event_id, part = row["category"], int(row["event_id"]), row["part"]
        event, folder = self._event(farm, event_id)
        features = self.features(farm, folder)
        path = self.root / row["path"]
        statistics = self.as_list(self.statistics)
        problems = ProblemLog(path)
        if self._last is not None and self._last[0] == str(path):  # part="both" reads a file twice
            data, problems = self._last[1], self._last[2]
        else:
            data = read_event_csv(path, problems, set(statistics) if statistics else None, features)
            self._settle(problems)
            self._last = (str(path), data, problems)
        if part == "all":
            rows = slice(None)
        else:
            rows = data.is_prediction if part == "prediction" else ~data.is_prediction
        ids = data.ids[rows]
        window = (ids >= event.start_id) & (ids <= event.end_id)
        target = (window & event.is_anomaly).astype(np.uint8)
        if row["label"] == 0:
            target = np.zeros_like(target)
        status = data.status[rows]
        prediction = np.flatnonzero(data.is_prediction)
        contiguous = prediction.size and np.all(np.diff(prediction) == 1) and prediction[-1] == len(data.ids) - 1
        file_assets = sorted({int(a) for a in np.unique(data.asset_id)})
        meta = {
            **event.as_meta(),
            "source": row["path"],
            "part": part,
            "ids": ids,
            "status_type_id": status,
            "normal_status": list(self.normal_status),
            "normal_mask": np.isin(status, self.normal_status),
            "is_prediction": data.is_prediction[rows],
            "prediction_start": int(prediction[0]) if part == "all" and contiguous else None,
            "event_window_rows": int(window.sum()),
            "asset_ids_in_file": file_assets,
            "channel_info": [describe_channel(c, features) for c in data.columns],
            "skipped_rows": len([p for p in problems.problems if p.action == "row skipped"]),
        }
        return Sample(
            key=row["key"],
            dataset=self.name,
            split=row["split"],
            label=row["label"],
            data=Series(data.values[rows], timestamps=data.timestamps[rows], channels=tuple(data.columns)),
            category=farm,
            defect=row["defect"],
            target=target,
            meta=meta,
        )

    def verify(self) -> VerifyReport:
        """Datasets per farm against the card, headers of every dataset, events without files."""
        report = VerifyReport(self.name, str(self.root))
        expected = self.card().get("expected_counts", {}).get("farms", {})
        for farm, folder in self.farm_dirs().items():
            try:
                events = self.events(farm, folder)
            except MalformedFileError as exc:
                report.malformed.append(str(exc))
                continue
            files = sorted((folder / "datasets").glob("*.csv"))
            report.counts[farm] = len(files)
            # the README (44 anomaly / 51 normal) and the v6 event_info (45 / 50) differ: count, never assume
            for label in ("anomaly", "normal"):
                report.counts[f"{farm}/{label} events"] = sum(e.label == label for e in events)
            listed = {e.event_id for e in events}
            for event in events:
                if not (folder / "datasets" / f"{event.event_id}.csv").is_file():
                    report.missing.append(f"Wind Farm {farm}/datasets/{event.event_id}.csv")
            for path in files:
                if not path.stem.isdigit() or int(path.stem) not in listed:
                    report.extra.append(f"Wind Farm {farm}/datasets/{path.name} (not in event_info.csv)")
                head = read_text_head(path, 1)
                header = head[0].split(";") if head else []
                missing = [c for c in META_COLUMNS if c not in header]
                if missing:
                    report.malformed.append(f"{path}, line 1: missing column(s) {', '.join(missing)}")
            want = expected.get(farm)
            if want is not None and want != len(files):
                report.count_mismatches.append(f"farm {farm}: {len(files)} datasets, expected {want}")
        return report

