"""SWaT Dec 2015 layout: ``SWaT.A1 & A2_Dec 2015/{Physical/SWaT_Dataset_*.xlsx|csv, List_of_attacks_Final.xlsx}``.

The files carry the real quirks: an extra row above the header, `` Timestamp`` and seven channel
names with a leading space in the Attack file, timestamps like `` 31/12/2015 11:57:00 PM``, the
``A ttack`` label typo, and an attack list whose end times are times of day (one rolling over
midnight) and whose last attack is dated a year early. Values are synthetic.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import numpy as np

from ..loaders.swat import ACTUATORS, CHANNELS
from . import Built, register_builder

RELEASE_FOLDER = "SWaT.A1 & A2_Dec 2015"
#: channel names written with a leading space in the Attack file's header (as in the real file)
SPACED_IN_ATTACK = ("MV101", "AIT201", "MV201", "P201", "P202", "P204", "MV303")
NORMAL_START = dt.datetime(2015, 12, 22, 16, 0, 0)
ATTACK_START = dt.datetime(2015, 12, 31, 23, 57, 0)
#: (id, first row, last row, attack point, end written as text) of the attacks in the fixture
FIXTURE_ATTACKS = ((1, 60, 89, "MV-101"), (3, 160, 199, "P-101, P-102"), (4, 240, 269, "DIT-301, MV-504"))
A_TTACK_ROWS = (170, 171, 172, 173, 174)
MIN_ATTACK_ROWS = 300
VARIANTS = ("xlsx", "official_csv", "usad_csv")


def swat_timestamp(moment: dt.datetime, leading_space: bool = True) -> str:
    """``' 22/12/2015 4:00:00 PM'``: day first, day/month/hour not padded, 12-hour clock."""
    hour = moment.hour % 12 or 12
    text = f"{moment.day}/{moment.month}/{moment.year} {hour}:{moment.minute:02d}:{moment.second:02d} {'AM' if moment.hour < 12 else 'PM'}"
    return (" " if leading_space else "") + text


def synthetic_values(rng: np.random.Generator, rows: int) -> np.ndarray:
    """T x 51 plausible values: smooth sensor levels, actuators in {0, 1, 2} (MV) or {1, 2}."""
    values = np.empty((rows, len(CHANNELS)), np.float64)
    for i, name in enumerate(CHANNELS):
        if name in ACTUATORS:
            low = 0 if name.startswith("MV") else 1
            state = rng.integers(low, 3)
            flips = rng.random(rows) < 0.002
            values[:, i] = (state + np.cumsum(flips)) % (3 - low) + low
        else:
            level = rng.uniform(0.5, 900.0)
            walk = np.cumsum(rng.normal(0.0, level * 1e-3, rows))
            values[:, i] = np.round(level + walk, 6)
    return values


def attack_labels(rows: int) -> list[str]:
    labels = ["Normal"] * rows
    for _, first, last, _ in FIXTURE_ATTACKS:
        for r in range(first, min(last, rows - 1) + 1):
            labels[r] = "Attack"
    for r in A_TTACK_ROWS:
        if r < rows:
            labels[r] = "A ttack"
    return labels


def _stage_row() -> list[Any]:
    stages: list[Any] = [None]
    previous = None
    for name in CHANNELS:
        stage = f"P{''.join(ch for ch in name if ch.isdigit())[0]}"
        stages.append(stage if stage != previous else None)
        previous = stage
    return stages + [None]


def _header(attack: bool, spaces: bool = True) -> list[str]:
    names = [f" {c}" if attack and spaces and c in SPACED_IN_ATTACK else c for c in CHANNELS]
    return [" Timestamp" if spaces else "Timestamp", *names, "Normal/Attack"]


def write_xlsx(
    path: Path, start: dt.datetime, values: np.ndarray, labels: list[str], attack: bool, excel_dates: bool = False
) -> None:
    """Write one sheet "Combined Data": an extra first row, the header, then the data rows."""
    from openpyxl import Workbook

    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet("Combined Data")
    sheet.append([None] * (len(CHANNELS) + 2) if attack else _stage_row())
    sheet.append(_header(attack))
    integer = np.array([c in ACTUATORS for c in CHANNELS])
    second = dt.timedelta(seconds=1)
    for r in range(values.shape[0]):
        moment = start + r * second
        cells: list[Any] = [moment if excel_dates else swat_timestamp(moment)]
        row = values[r]
        cells.extend(int(v) if is_int else float(v) for v, is_int in zip(row, integer))
        cells.append(labels[r])
        sheet.append(cells)
    path.parent.mkdir(parents=True, exist_ok=True)
    workbook.save(path)


def write_csv(
    path: Path,
    start: dt.datetime,
    values: np.ndarray,
    labels: list[str],
    *,
    attack: bool,
    delimiter: str = ",",
    decimal_comma: bool = False,
    spaces: bool = True,
    junk_first_line: bool = False,
    bom: bool = False,
) -> None:
    """Write one CSV variant (see ``build_swat``)."""
    integer = [c in ACTUATORS for c in CHANNELS]
    lines = []
    if junk_first_line:
        lines.append(delimiter.join(str(c or "") for c in _stage_row()))
    lines.append(delimiter.join(_header(attack, spaces)))
    second = dt.timedelta(seconds=1)
    for r in range(values.shape[0]):
        cells = [swat_timestamp(start + r * second, leading_space=spaces)]
        for v, is_int in zip(values[r], integer):
            text = str(int(v)) if is_int else repr(float(v))
            if decimal_comma and not is_int:
                text = text.replace(".", ",")
                if delimiter == ",":
                    text = f'"{text}"'
            cells.append(text)
        cells.append(labels[r])
        lines.append(delimiter.join(cells))
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8-sig" if bom else "utf-8", newline="") as handle:
        handle.write("\r\n".join(lines) + "\r\n")


def write_attack_list(path: Path) -> dict[int, int]:
    """Write ``List_of_attacks_Final.xlsx`` matching the fixture's Attack file; returns the
    number of aligned steps per attack id."""
    from openpyxl import Workbook

    workbook = Workbook()
    sheet = workbook.active
    sheet.title = "Sheet1"
    sheet.append(["Attack #", "Start Time", "End Time", "Attack Point", "Start State", "Attack",
                  "Actual Change", "Expected Impact or attacker intent", "Unexpected Outcome"])  # fmt: skip
    second = dt.timedelta(seconds=1)
    aligned: dict[int, int] = {}
    rows: list[list[Any]] = []
    for attack_id, first, last, point in FIXTURE_ATTACKS:
        begin, end = ATTACK_START + first * second, ATTACK_START + last * second
        aligned[attack_id] = last - first + 1
        start_cell: Any = begin
        end_cell: Any = end.time()
        if attack_id == 3:
            end_cell = end.strftime("%H:%M:%S")  # a time typed as text; rolls over midnight
        if attack_id == 4:  # dated a year early, written as text like the sheet's last rows
            start_cell = f"{begin.day}/{begin.month}/{begin.year - 1} {begin.hour}:{begin.minute:02d}:{begin.second:02d}"
        rows.append([attack_id, start_cell, end_cell, point, f"{point} normal", f"Change {point}", "Yes", "Overflow", ""])
    no_impact = ATTACK_START + 120 * second
    rows.insert(1, [2, no_impact, None, "No Physical Impact Attack", "", "Spoof", "No", "", ""])
    for row in rows:
        sheet.append(row)
    sheet.append([])
    path.parent.mkdir(parents=True, exist_ok=True)
    workbook.save(path)
    return aligned


@register_builder("swat")
def build_swat(
    root: Path,
    variant: str = "xlsx",
    n_normal: int = 240,
    v1_offset: int = 40,
    n_attack: int = MIN_ATTACK_ROWS,
    seed: int = 0,
    attack_list: bool = True,
    excel_dates: bool = False,
) -> Built:
    """Write a tiny SWaT release under ``root/SWaT.A1 & A2_Dec 2015``.

    ``variant``: ``"xlsx"`` (Normal v0, Normal v1 = v0 without its first ``v1_offset`` rows,
    Attack v0), ``"official_csv"`` (same files as CSV: comma separated, leading spaces, the
    Normal files with a junk first line, the Attack file with a BOM), ``"usad_csv"`` (Normal v1
    comma separated with quoted decimal commas, Attack v0 semicolon separated with decimal
    commas, no leading spaces). ``excel_dates`` writes timestamps as spreadsheet datetimes.
    """
    if variant not in VARIANTS:
        raise ValueError(f"variant must be one of {VARIANTS}, got {variant!r}")
    if n_attack < MIN_ATTACK_ROWS:
        raise ValueError(f"n_attack must be >= {MIN_ATTACK_ROWS} to hold the fixture's attacks, got {n_attack}")
    rng = np.random.default_rng(seed)
    release = root / RELEASE_FOLDER
    physical = release / "Physical"
    normal_values = synthetic_values(rng, n_normal)
    attack_values = synthetic_values(rng, n_attack)
    normal_labels = ["Normal"] * n_normal
    labels = attack_labels(n_attack)
    v1_start = NORMAL_START + dt.timedelta(seconds=v1_offset)
    files = {
        "Normal_v0": (NORMAL_START, normal_values, normal_labels, False),
        "Normal_v1": (v1_start, normal_values[v1_offset:], normal_labels[v1_offset:], False),
        "Attack_v0": (ATTACK_START, attack_values, labels, True),
    }
    if variant == "usad_csv":
        del files["Normal_v0"]
    for stem, (start, values, file_labels, is_attack) in files.items():
        path = physical / f"SWaT_Dataset_{stem}.{'xlsx' if variant == 'xlsx' else 'csv'}"
        if variant == "xlsx":
            write_xlsx(path, start, values, file_labels, is_attack, excel_dates=excel_dates)
        elif variant == "official_csv":
            write_csv(path, start, values, file_labels, attack=is_attack, junk_first_line=not is_attack, bom=is_attack)
        else:
            write_csv(path, start, values, file_labels, attack=is_attack, spaces=False, decimal_comma=True,
                      delimiter=";" if is_attack else ",")  # fmt: skip
    aligned = write_attack_list(release / "List_of_attacks_Final.xlsx") if attack_list else {}
    # the parsed-file cache goes beside the tree so that loading the fixture writes nowhere else
    return Built(
        release,
        {"cache_dir": str(root / "anomalykit-cache")},
        {
            "total": len(files),
            "anomalous": 1,
            "rows": {stem: len(spec[2]) for stem, spec in files.items()},
            "attack_rows": sum(label != "Normal" for label in labels),
            "a_ttack_rows": sum(label == "A ttack" for label in labels),
            "aligned_steps": aligned,
            "first_timestamps": {stem: np.datetime64(spec[0], "s") for stem, spec in files.items()},
            "values": {stem: spec[1] for stem, spec in files.items()},
        },
    )
