"""SWaT loading: first load (xlsx parse + Parquet cache write) and cached load against
``pandas.read_excel`` on the same workbook, in one run.

The workbook has the real Attack-file layout (sheet "Combined Data", an extra first row, the
header on row 2 with `` Timestamp`` and space-prefixed names, 53 columns, timestamps as text)
and ``--rows`` data rows of synthetic values (the real Attack_v0 has 449,919). Writing it with
openpyxl takes about as long as pandas takes to read it; it is kept in ``--workdir`` and reused.

    python benchmarks/bench_swat.py --rows 100000

Prints the best of ``--repeat`` runs (seconds, rows/s) of each reader and the ratios; pandas'
default openpyxl engine, minutes per run at this size, runs once.
"""

from __future__ import annotations

import argparse
import logging
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

import anomalykit
from anomalykit.loaders.swat import CHANNELS
from anomalykit.testing.swat import ATTACK_START, RELEASE_FOLDER, attack_labels, synthetic_values, write_xlsx


def build_workbook(workdir: Path, rows: int, seed: int) -> Path:
    """``<workdir>/rows-<rows>-seed-<seed>/SWaT.A1 & A2_Dec 2015/Physical/SWaT_Dataset_Attack_v0.xlsx``."""
    release = workdir / f"rows-{rows}-seed-{seed}" / RELEASE_FOLDER
    path = release / "Physical" / "SWaT_Dataset_Attack_v0.xlsx"
    if not path.is_file():
        rng = np.random.default_rng(seed)
        partial = path.with_name("building.xlsx")
        write_xlsx(partial, ATTACK_START, synthetic_values(rng, rows), attack_labels(rows), attack=True)
        partial.rename(path)
    return release


def timed(function, repeat: int = 1):
    """(best wall time over ``repeat`` runs, last result): the machine may be shared."""
    best, result = float("inf"), None
    for _ in range(repeat):
        start = time.perf_counter()
        result = function()
        best = min(best, time.perf_counter() - start)
    return best, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=100_000, help="data rows of the workbook (default 100000)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "anomalykit-bench-swat")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each reader but openpyxl; the best is kept")
    parser.add_argument("--no-openpyxl", action="store_true", help="skip pandas' default (openpyxl) engine (run once)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    console = Console()
    import pandas as pd

    with Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), console=console) as progress:
        task = progress.add_task(f"writing a {args.rows:,}-row SWaT workbook (openpyxl, reused later)", total=None)
        reused = (args.workdir / f"rows-{args.rows}-seed-{args.seed}" / RELEASE_FOLDER / "Physical" / "SWaT_Dataset_Attack_v0.xlsx").is_file()
        write_s, release = timed(lambda: build_workbook(args.workdir, args.rows, args.seed))
        progress.remove_task(task)
        workbook = release / "Physical" / "SWaT_Dataset_Attack_v0.xlsx"
        cache = Path(tempfile.mkdtemp(prefix="swat-cache-"))

        def first_load():
            shutil.rmtree(cache, ignore_errors=True)  # every first load starts without a cache
            return anomalykit.load("swat", release, cache_dir=str(cache), attack_list=False)[0]

        try:
            task = progress.add_task(f"anomalykit first load (xlsx parse, Parquet cache write) x{args.repeat}", total=None)
            first_s, first = timed(first_load, args.repeat)
            progress.remove_task(task)
            task = progress.add_task(f"anomalykit cached load x{args.repeat}", total=None)
            cached_s, cached = timed(lambda: anomalykit.load("swat", release, cache_dir=str(cache), attack_list=False)[0], args.repeat)
            progress.remove_task(task)
            task = progress.add_task(f"pandas.read_excel(engine='calamine') x{args.repeat}", total=None)
            calamine_s, frame = timed(lambda: pd.read_excel(workbook, header=1, engine="calamine"), args.repeat)
            progress.remove_task(task)
            openpyxl_s = None
            if not args.no_openpyxl:
                task = progress.add_task("pandas.read_excel (default engine, openpyxl)", total=None)
                openpyxl_s, frame = timed(lambda: pd.read_excel(workbook, header=1, engine="openpyxl"))
                progress.remove_task(task)
        finally:
            cache_files = sorted(cache.glob("*.parquet"))
            cache_bytes = sum(p.stat().st_size for p in cache_files)
            shutil.rmtree(cache, ignore_errors=True)

    # the readers must agree before their times mean anything
    frame.columns = [str(c).strip() for c in frame.columns]
    assert first.data.values.shape == (args.rows, len(CHANNELS)) == cached.data.values.shape
    np.testing.assert_array_equal(first.data.values, cached.data.values)
    np.testing.assert_allclose(first.data.values, frame[list(CHANNELS)].to_numpy(np.float32), rtol=1e-6)
    assert int(first.target.sum()) == int((frame["Normal/Attack"].str.replace(" ", "") == "Attack").sum())

    size_mb = workbook.stat().st_size / 1e6
    origin = f"reused from {args.workdir}" if reused else f"written in {write_s:.1f} s"
    console.print(f"workbook: {args.rows:,} rows x 53 columns, {size_mb:.1f} MB xlsx ({origin}); "
                  f"Parquet cache {cache_bytes / 1e6:.1f} MB")  # fmt: skip
    table = Table(title="SWaT Attack-layout workbook: load times")
    for column in ("reader", "seconds", "rows/s"):
        table.add_column(column, justify="right" if column != "reader" else "left")
    results = [("anomalykit first load (xlsx)", first_s), ("anomalykit cached load (Parquet)", cached_s),
               ("pandas.read_excel, calamine engine", calamine_s)]  # fmt: skip
    if openpyxl_s is not None:
        results.append(("pandas.read_excel, default openpyxl engine", openpyxl_s))
    for name, seconds in results:
        table.add_row(name, f"{seconds:.3f}", f"{args.rows / seconds:,.0f}")
    console.print(table)
    console.print(f"cached load vs first load:            {first_s / cached_s:8.1f}x faster")
    console.print(f"first load vs pandas (calamine):      {calamine_s / first_s:8.2f}x")
    console.print(f"cached load vs pandas (calamine):     {calamine_s / cached_s:8.1f}x")
    if openpyxl_s is not None:
        console.print(f"first load vs pandas (openpyxl):      {openpyxl_s / first_s:8.2f}x")
        console.print(f"cached load vs pandas (openpyxl):     {openpyxl_s / cached_s:8.1f}x")


if __name__ == "__main__":
    main()
