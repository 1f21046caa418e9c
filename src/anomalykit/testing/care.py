"""CARE to Compare layout: ``CARE_To_Compare/Wind Farm {A,B,C}/{datasets/<event_id>.csv,
event_info.csv, feature_description.csv}``, every file ``;``-separated.

The quirks are those of the release: ``asset`` in Farm A's ``event_info.csv`` and ``asset_id``
in B and C; Farm A's bare average column ``sensor_44``; ``statistics_type`` as a comma-separated
set; a garbled degree sign in the units (a Latin-1 byte in A, U+FFFD in B); feature
descriptions in a different column order per farm; empty cells (missing) and runs of zeros;
time stamps shifted per event. All values are synthetic (the release is share-alike).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import Built, register_builder


@dataclass(frozen=True)
class _Sensor:
    name: str
    statistics: tuple[str, ...]
    description: str
    unit: str
    is_angle: bool = False
    is_counter: bool = False
    bare_average: bool = False


_ALL = ("average", "minimum", "maximum", "std_dev")
_SUFFIX = {"average": "_avg", "minimum": "_min", "maximum": "_max", "std_dev": "_std"}
FARM_SENSORS = {
    "A": (
        _Sensor("sensor_0", _ALL, "Ambient temperature", "\u00b0C"),
        _Sensor("wind_speed_3", _ALL, "Wind speed", "m/s"),
        _Sensor("sensor_5", ("average",), "Nacelle direction", "\u00b0", is_angle=True),
        _Sensor("sensor_44", ("average",), "Active power counter", "Wh", is_counter=True, bare_average=True),
        _Sensor("power_6", ("average", "maximum"), "Grid power", "kW"),
    ),
    "B": (
        _Sensor("sensor_0", _ALL, "Gearbox oil temperature", "\u00b0C"),
        _Sensor("wind_speed_3", _ALL, "Wind speed", "m/s"),
        _Sensor("power_62", ("average",), "Active power", "kW"),
        _Sensor("reactive_power_10", ("average", "std_dev"), "Reactive power", "kvar"),
    ),
    "C": (
        _Sensor("sensor_0", _ALL, "Generator bearing temperature", "\u00b0C"),
        _Sensor("sensor_1", ("average", "minimum", "maximum"), "Rotor speed", "rpm"),
        _Sensor("wind_speed_3", _ALL, "Wind speed", "m/s"),
        _Sensor("power_2", ("average",), "Active power", "kW"),
    ),
}
#: (event id, asset id, label, description) per farm; ids follow the real per-farm id sets
FARM_EVENTS = {
    "A": ((0, 0, "anomaly", "Hydraulic group"), (3, 10, "normal", None)),
    "B": ((2, 11, "anomaly", "Gearbox failure"), (7, 13, "normal", None)),
    "C": ((1, 20, "anomaly", "Generator bearing failure"), (4, 21, "normal", None)),
}
#: column order of feature_description.csv per farm (the real order is not documented)
FEATURE_HEADERS = {
    "A": ("sensor_name", "statistics_type", "description", "unit", "is_angle", "is_counter"),
    "B": ("sensor_name", "description", "unit", "statistics_type", "is_angle", "is_counter"),
    "C": ("sensor_name", "description", "unit", "is_angle", "is_counter", "statistics_type"),
}
EVENT_OFFSET = 10  # anomaly window starts this many rows into the prediction part
EVENT_LENGTH = 40


def signal_columns(farm: str) -> list[str]:
    columns = []
    for sensor in FARM_SENSORS[farm]:
        for statistic in sensor.statistics:
            bare = sensor.bare_average and statistic == "average"
            columns.append(sensor.name if bare else sensor.name + _SUFFIX[statistic])
    return columns


def _write_feature_description(path: Path, farm: str) -> None:
    header = FEATURE_HEADERS[farm]
    lines = [";".join(header)]
    for sensor in FARM_SENSORS[farm]:
        unit = sensor.unit
        if farm == "B":
            unit = unit.replace("\u00b0", "\ufffd")
        cells = {
            "sensor_name": sensor.name,
            "statistics_type": ",".join(sensor.statistics),
            "description": sensor.description,
            "unit": unit,
            "is_angle": str(sensor.is_angle),
            "is_counter": str(sensor.is_counter),
        }
        lines.append(";".join(cells[c] for c in header))
    text = "\n".join(lines) + "\n"
    path.write_bytes(text.encode("cp1252") if farm == "A" else text.encode("utf-8"))


def _stamp(moment: dt.datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S")


@register_builder("care")
def build_care(root: Path, n_train: int = 288, n_prediction: int = 60, seed: int = 0, farms: tuple[str, ...] = ("A", "B", "C")) -> Built:
    """Write a tiny CARE to Compare tree under ``root/CARE_To_Compare`` (two events per farm,
    one anomaly and one normal; ``n_train`` train rows then ``n_prediction`` prediction rows).

    ``expected`` gives ``total``, ``anomalous``, and per key the rows, the event window rows,
    the normal-status rows (status 0), and the signal columns.
    """
    if n_prediction < EVENT_OFFSET + EVENT_LENGTH:
        raise ValueError(f"n_prediction must be >= {EVENT_OFFSET + EVENT_LENGTH}, got {n_prediction}")
    rng = np.random.default_rng(seed)
    release = root / "CARE_To_Compare"
    (release).mkdir(parents=True, exist_ok=True)
    (release / "README.md").write_text("CARE to Compare (synthetic test tree)\n")
    expected: dict[str, dict] = {}
    step = dt.timedelta(minutes=10)
    rows_total = n_train + n_prediction
    for farm in farms:
        folder = release / f"Wind Farm {farm}"
        (folder / "datasets").mkdir(parents=True, exist_ok=True)
        _write_feature_description(folder / "feature_description.csv", farm)
        columns = signal_columns(farm)
        asset_column = "asset" if farm == "A" else "asset_id"
        info = [f"{asset_column};event_id;event_label;event_start;event_start_id;event_end;event_end_id;event_description"]
        for event_id, asset_id, label, description in FARM_EVENTS[farm]:
            start = dt.datetime(2022, 1, 1) + dt.timedelta(days=int(rng.integers(0, 600)))  # shifted per event
            stamps = [start + i * step for i in range(rows_total)]
            status = np.zeros(rows_total, np.int64)
            for code, count in ((2, 12), (1, 6), (4, 8), (3, 4)):
                at = int(rng.integers(0, rows_total - count))
                status[at : at + count] = code
            values = rng.normal(10.0, 3.0, (rows_total, len(columns))).round(3)
            lines = [";".join(["time_stamp", "asset_id", "id", "train_test", "status_type_id", *columns])]
            missing = set(int(i) for i in rng.choice(rows_total, 5, replace=False))
            zero_run = int(rng.integers(0, rows_total - 6))
            for r in range(rows_total):
                cells = []
                for c, value in enumerate(values[r]):
                    if r in missing and c % 2 == 0:
                        cells.append("")
                    elif farm != "A" and zero_run <= r < zero_run + 6 and c == 0:
                        cells.append("0")
                    else:
                        cells.append(repr(float(value)))
                part = "train" if r < n_train else "prediction"
                lines.append(";".join([_stamp(stamps[r]), str(asset_id), str(r), part, str(status[r]), *cells]))
            (folder / "datasets" / f"{event_id}.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
            if label == "anomaly":
                first, last = n_train + EVENT_OFFSET, n_train + EVENT_OFFSET + EVENT_LENGTH - 1
            else:
                first, last = n_train, rows_total - 1
            info.append(";".join([str(asset_id), str(event_id), label, _stamp(stamps[first]), str(first),
                                  _stamp(stamps[last]), str(last), description or ""]))  # fmt: skip
            expected[f"{farm}/{event_id}"] = {
                "rows": rows_total,
                "train_rows": n_train,
                "label": int(label == "anomaly"),
                "window": (first, last),
                "window_rows": last - first + 1 if label == "anomaly" else 0,
                "normal_rows": int((status == 0).sum()),
                "normal_rows_0_2": int(np.isin(status, (0, 2)).sum()),
                "columns": columns,
                "missing_cells": len(missing) * len(range(0, len(columns), 2)),
                "asset_id": asset_id,
                "first_timestamp": np.datetime64(stamps[0], "s"),
            }
        (folder / "event_info.csv").write_text("\n".join(info) + "\n", encoding="utf-8")
    return Built(
        release,
        {},
        {"total": len(expected), "anomalous": sum(e["label"] for e in expected.values()), "events": expected},
    )
