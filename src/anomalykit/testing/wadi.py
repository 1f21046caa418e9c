"""WADI layouts: ``WADI.A1_9 Oct 2017/`` and ``WADI.A2_19 Nov 2019/``, quirks included.

A1: ``WADI_14days.csv`` with preamble lines (one blank) before the ``Row,Date,Time`` header,
channel names as OPC paths, four channels without any value; ``WADI_attackdata.csv`` with the
header on line 1 and no label column; an attack table ``WADI_attacklabels.csv`` whose dates mix
month-first and day-first writing and whose last row lies outside the attack file. A2:
``WADI_14days_new.csv`` with short tag names; ``WADI_attackdataLABLE.csv`` with a first line of
column indices, names with trailing spaces and the ``Attack LABLE (1:No Attack, -1:Attack)``
column. Values are synthetic.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np

from . import Built, register_builder

OPC_PREFIX = "\\\\WIN-25J4RO10SBF\\LOG_DATA\\SUTD_WADI\\LOG_DATA\\"
#: channels of the fixture, in file order (a subset of the real ~127, real names)
CHANNELS: tuple[str, ...] = (
    "1_AIT_001_PV", "1_AIT_002_PV", "1_FIT_001_PV", "1_LT_001_PV", "1_MV_001_STATUS", "1_P_006_STATUS",
    "2_FIT_001_PV", "2_LT_002_PV", "2_LS_001_AL", "2_LS_002_AL", "2_MCV_101_CO", "2_MCV_201_CO",
    "2_MCV_301_CO", "2_MV_003_STATUS", "2_P_001_STATUS", "2_P_002_STATUS", "2A_AIT_001_PV",
    "3_AIT_001_PV", "LEAK_DIFF_PRESSURE", "TOTAL_CONS_REQUIRED_FLOW",
)  # fmt: skip
EMPTY = ("2_LS_001_AL", "2_LS_002_AL", "2_P_001_STATUS", "2_P_002_STATUS")
NORMAL_START = dt.datetime(2017, 9, 25, 18, 0, 0)
ATTACK_START = dt.datetime(2017, 10, 9, 18, 0, 0)
#: (id as written, date as written, first row, last row, affected) of the fixture's attack table;
#: "09/10/2017" only fits the attack file read day first, "13/11/2017" fits it under no reading
ATTACK_TABLE = (
    ("1", "10/09/2017", 60, 119, "1_MV_001"),
    ("2", "09/10/2017", 180, 209, "2_MCV_101, 2_MCV301"),
    ("3-4", "10/9/2017", 300, 319, "2_LT_002, 1_AIT_001"),
    ("15", "13/11/2017", 120, 130, "2_LT_002, 1_AIT_001"),
)
MIN_ATTACK_ROWS = 330
RELEASES = ("A1", "A2")


def wadi_date_time(moment: dt.datetime) -> tuple[str, str]:
    """``('10/9/2017', '6:00:00.000 PM')``: month first without padding, 12-hour clock with ms."""
    hour = moment.hour % 12 or 12
    time = f"{hour}:{moment.minute:02d}:{moment.second:02d}.{moment.microsecond // 1000:03d} {'AM' if moment.hour < 12 else 'PM'}"
    return f"{moment.month}/{moment.day}/{moment.year}", time


def synthetic_values(rng: np.random.Generator, rows: int) -> np.ndarray:
    """T x C values: sensor levels as random walks, STATUS channels in {1, 2}, empty channels NaN."""
    values = np.empty((rows, len(CHANNELS)), np.float64)
    for i, name in enumerate(CHANNELS):
        if name in EMPTY:
            values[:, i] = np.nan
        elif name.endswith("_STATUS"):
            values[:, i] = (rng.integers(0, 2) + np.cumsum(rng.random(rows) < 0.01)) % 2 + 1
        else:
            level = rng.uniform(0.5, 500.0)
            values[:, i] = np.round(level + np.cumsum(rng.normal(0.0, level * 1e-3, rows)), 5)
    return values


def _cell(value: float) -> str:
    if np.isnan(value):
        return ""
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def write_wadi_csv(
    path: Path,
    start: dt.datetime,
    values: np.ndarray,
    *,
    names: list[str],
    preamble: tuple[str, ...] = (),
    labels: np.ndarray | None = None,
    index_line: bool = False,
    trailing_spaces: bool = False,
) -> None:
    """Write one WADI CSV (CRLF line ends). ``labels`` adds the A2 label column (1 / -1);
    ``index_line`` writes a first line of column indices; ``trailing_spaces`` writes ``Row ``."""
    header = ["Row", "Date", "Time", *names]
    if trailing_spaces:
        header = [f"{h} " if h in ("Row", "Date", "Time") else h for h in header]
    if labels is not None:
        header.append('"Attack LABLE (1:No Attack, -1:Attack)"')
    lines = list(preamble)
    if index_line:
        lines.append(",".join(str(i) for i in range(len(header))))
    lines.append(",".join(header))
    second = dt.timedelta(seconds=1)
    for r in range(values.shape[0]):
        date, time = wadi_date_time(start + r * second)
        cells = [str(r + 1), date, time, *(_cell(v) for v in values[r])]
        if labels is not None:
            cells.append("-1" if labels[r] else "1")
        lines.append(",".join(cells))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(("\r\n".join(lines) + "\r\n").encode())


def write_attack_table(path: Path) -> None:
    """``WADI_attacklabels.csv`` in the published layout (``Id,Date,Start Time,End Time,Affected``)."""
    second = dt.timedelta(seconds=1)
    lines = ["Id,Date,Start Time,End Time,Affected"]
    for attack_id, date, first, last, affected in ATTACK_TABLE:
        begin, end = ATTACK_START + first * second, ATTACK_START + last * second
        quoted = f'"{affected}"' if "," in affected else affected
        lines.append(f"{attack_id},{date},{begin:%H:%M:%S},{end:%H:%M:%S},{quoted}")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")


def attack_steps(rows: int) -> np.ndarray:
    """Per-step labels of the fixture's attack files (the aligned rows of the table)."""
    labels = np.zeros(rows, np.uint8)
    for _, date, first, last, _ in ATTACK_TABLE:
        if date != "13/11/2017":
            labels[first : last + 1] = 1
    return labels


@register_builder("wadi")
def build_wadi(
    root: Path,
    releases: tuple[str, ...] = RELEASES,
    n_normal: int = 200,
    n_attack: int = 400,
    seed: int = 0,
    attack_table: bool = True,
) -> Built:
    """Write a tiny WADI tree under ``root`` (both release folders by default; ``releases``
    picks). ``Built.root`` is ``root`` when both are written, else the release folder."""
    unknown = [r for r in releases if r not in RELEASES]
    if unknown or not releases:
        raise ValueError(f"releases must be a non-empty subset of {RELEASES}, got {releases!r}")
    if n_attack < MIN_ATTACK_ROWS:
        raise ValueError(f"n_attack must be >= {MIN_ATTACK_ROWS} to hold the fixture's attacks, got {n_attack}")
    rng = np.random.default_rng(seed)
    labels = attack_steps(n_attack)
    rows: dict[str, int] = {}
    values: dict[str, np.ndarray] = {}
    folders: dict[str, Path] = {}
    if "A1" in releases:
        folder = folders["A1"] = root / "WADI.A1_9 Oct 2017"
        normal, attack = synthetic_values(rng, n_normal), synthetic_values(rng, n_attack)
        long_names = [OPC_PREFIX + c for c in CHANNELS]
        end = NORMAL_START + dt.timedelta(seconds=n_normal - 1)
        preamble = (
            "WADI historian export,,,",
            "",
            f"Start Time,{' '.join(wadi_date_time(NORMAL_START))},,",
            f"End Time,{' '.join(wadi_date_time(end))},,",
        )
        write_wadi_csv(folder / "WADI_14days.csv", NORMAL_START, normal, names=long_names, preamble=preamble)
        write_wadi_csv(folder / "WADI_attackdata.csv", ATTACK_START, attack, names=long_names)
        if attack_table:
            write_attack_table(folder / "WADI_attacklabels.csv")
        values.update(WADI_14days=normal, WADI_attackdata=attack)
    if "A2" in releases:
        folder = folders["A2"] = root / "WADI.A2_19 Nov 2019"
        normal, attack = synthetic_values(rng, n_normal), synthetic_values(rng, n_attack)
        write_wadi_csv(folder / "WADI_14days_new.csv", NORMAL_START, normal, names=list(CHANNELS))
        write_wadi_csv(folder / "WADI_attackdataLABLE.csv", ATTACK_START, attack, names=list(CHANNELS),
                       labels=labels, index_line=True, trailing_spaces=True)  # fmt: skip
        values.update(WADI_14days_new=normal, WADI_attackdataLABLE=attack)
    for stem, array in values.items():
        rows[stem] = len(array)
    labelled = {stem for stem in values if "attack" in stem and (stem.endswith("LABLE") or attack_table)}
    # the parsed-file cache goes beside the tree so that loading the fixture writes nowhere else
    return Built(
        root if len(folders) > 1 else next(iter(folders.values())),
        {"cache_dir": str(root / "anomalykit-cache")},
        {
            "total": len(values),
            "anomalous": len(labelled),
            "rows": rows,
            "values": values,
            "attack_labels": labels,
            "attack_rows": int(labels.sum()),
            "channels": CHANNELS,
            "empty_channels": EMPTY,
            "first_timestamps": {
                stem: np.datetime64(ATTACK_START if "attack" in stem else NORMAL_START, "ms") for stem in values
            },
        },
    )
