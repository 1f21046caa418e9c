#!/usr/bin/env python
"""Series generation throughput: anomalykit's ``syntsbench`` against GutenTAG, in the same run.

Both generate the same corpus in memory, in one process: 100 series of 10,000 points, a sine
(GutenTAG's convention, frequency 10 per 100 points) with Gaussian noise (std 0.05), and five
anomaly kinds of 100 steps each (amplitude, frequency, mean, platform, variance), labelled per
step. Each side parses its config and builds its in-memory result (GutenTAG: DataFrames with
``is_anomaly``; anomalykit: ``Sample`` objects with targets and anomaly records). Timings are the
median of ``--repeats`` runs after one warm-up run, each taken inside its own process. A third
row has anomalykit read GutenTAG's own config (``from_gutentag``: 100 entries, one generator each).

GutenTAG pins ``scipy<1.15``, so it runs in its own virtual environment, created on first use
with ``python -m venv`` and ``pip install timeeval-gutentag==1.5.0`` (or pass ``--gutentag-python``).

    python benchmarks/bench_series.py [--series 100] [--length 10000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np

GUTENTAG_VERSION = "1.5.0"

# (anomalykit kind, GutenTAG kind, shared parameters, position)
ANOMALIES = [
    ("amplitude", {"amplitude_factor": 2.0}, "beginning"),
    ("frequency", {"frequency_factor": 2.0}, "middle"),
    ("mean", {"offset": 1.0}, "end"),
    ("platform", {"value": 0.0}, "beginning"),
    ("variance", {"variance": 0.3}, "end"),
]
ANOMALY_LENGTH = 100


def anomalykit_config(length: int) -> dict:
    return {
        "length": length,
        "channels": [{"pattern": {"kind": "sine", "frequency": 10.0, "amplitude": 1.0}, "noise": {"std": 0.05}}],
        "anomalies": [{"kind": kind, "position": position, "length": ANOMALY_LENGTH, **params}
                      for kind, params, position in ANOMALIES],
    }


def gutentag_config(series: int, length: int) -> dict:
    anomalies = [{"position": position, "length": ANOMALY_LENGTH, "kinds": [{"kind": kind, **params}]}
                 for kind, params, position in ANOMALIES]
    return {"timeseries": [{"name": f"ts-{i}", "length": length,
                            "base-oscillations": [{"kind": "sine", "frequency": 10.0, "amplitude": 1.0,
                                                   "variance": 0.05}],
                            "anomalies": anomalies} for i in range(series)]}


def run_anomalykit(series: int, length: int) -> dict:
    from anomalykit.generators.series.syntsbench import SynTSBenchGenerator

    start = time.perf_counter()
    generator = SynTSBenchGenerator(anomalykit_config(length))
    samples = [generator(seed=i) for i in range(series)]
    seconds = time.perf_counter() - start
    labelled = float(np.mean([s.target.mean() for s in samples]))
    return {"seconds": seconds, "points": sum(len(s.data) for s in samples), "labelled_fraction": labelled}


def run_anomalykit_gutentag_config(series: int, length: int) -> dict:
    """The very GutenTAG config, read by anomalykit (100 configs parsed, one generator each)."""
    from anomalykit.generators.series.gutentag import from_gutentag
    from anomalykit.generators.series.syntsbench import SynTSBenchGenerator

    start = time.perf_counter()
    configs = from_gutentag(gutentag_config(series, length))
    samples = [SynTSBenchGenerator(cfg)(seed=i) for i, cfg in enumerate(configs.values())]
    seconds = time.perf_counter() - start
    labelled = float(np.mean([s.target.mean() for s in samples]))
    return {"seconds": seconds, "points": sum(len(s.data) for s in samples), "labelled_fraction": labelled}


_GUTENTAG_RUN = textwrap.dedent("""
    import json, logging, os, sys, time
    logging.disable(logging.WARNING)
    os.environ["TQDM_DISABLE"] = "1"
    from gutenTAG import GutenTAG
    config = json.loads(sys.argv[1])
    start = time.perf_counter()
    result = GutenTAG(seed=0, n_jobs=1).load_config_dict(config).generate(return_timeseries=True)
    seconds = time.perf_counter() - start
    points = sum(len(ts.timeseries) for ts in result)
    labelled = sum(float(ts.timeseries["is_anomaly"].mean()) for ts in result) / len(result)
    print(json.dumps({"seconds": seconds, "points": points, "labelled_fraction": labelled}))
""")


def gutentag_python(explicit: str | None) -> Path:
    if explicit:
        return Path(explicit)
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "anomalykit" / "gutentag-venv"
    python = cache / "bin" / "python"
    if python.exists():
        probe = subprocess.run([str(python), "-c", "import gutenTAG"], capture_output=True)
        if probe.returncode == 0:
            return python
    print(f"creating a virtual environment for GutenTAG {GUTENTAG_VERSION} in {cache} ...", file=sys.stderr)
    subprocess.run([sys.executable, "-m", "venv", str(cache)], check=True)
    subprocess.run([str(python), "-m", "pip", "install", "-q", f"timeeval-gutentag=={GUTENTAG_VERSION}"], check=True)
    return python


def run_gutentag(python: Path, series: int, length: int) -> dict:
    config = json.dumps(gutentag_config(series, length))
    done = subprocess.run([str(python), "-c", _GUTENTAG_RUN, config], capture_output=True, text=True,
                          env={**os.environ, "TQDM_DISABLE": "1"})
    if done.returncode != 0:
        raise RuntimeError(f"GutenTAG failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def run_anomalykit_subprocess(series: int, length: int, runner: str = "run_anomalykit") -> dict:
    code = (f"import json, sys; sys.path.insert(0, {str(Path(__file__).parent)!r}); import bench_series as b; "
            f"b.{runner}(2, {length}); print(json.dumps(b.{runner}({series}, {length})))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"anomalykit failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--series", type=int, default=100)
    parser.add_argument("--length", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--gutentag-python", default=None, help="a Python with timeeval-gutentag installed")
    args = parser.parse_args()

    python = gutentag_python(args.gutentag_python)
    run_gutentag(python, 2, args.length)  # warm-up: imports, file caches
    ours, same_config, theirs = [], [], []
    for _ in range(args.repeats):  # interleaved, so all see the same machine load
        ours.append(run_anomalykit_subprocess(args.series, args.length))
        same_config.append(run_anomalykit_subprocess(args.series, args.length, "run_anomalykit_gutentag_config"))
        theirs.append(run_gutentag(python, args.series, args.length))

    def summary(runs: list[dict]) -> tuple[float, float, float]:
        seconds = statistics.median(r["seconds"] for r in runs)
        return seconds, runs[0]["points"] / seconds, statistics.mean(r["labelled_fraction"] for r in runs)

    our_s, our_rate, our_lab = summary(ours)
    same_s, same_rate, same_lab = summary(same_config)
    their_s, their_rate, their_lab = summary(theirs)
    print(f"workload: {args.series} series x {args.length} points, sine + noise, 5 anomaly kinds "
          f"({', '.join(k for k, _, _ in ANOMALIES)}), {ANOMALY_LENGTH} steps each; median of {args.repeats}")
    print(f"{'':<22}{'seconds':>10}{'points/s':>16}{'labelled':>10}")
    print(f"{'anomalykit syntsbench':<22}{our_s:>10.3f}{our_rate:>16,.0f}{our_lab:>10.4f}")
    print(f"{'  from GutenTAG config':<22}{same_s:>10.3f}{same_rate:>16,.0f}{same_lab:>10.4f}")
    print(f"{'GutenTAG ' + GUTENTAG_VERSION:<22}{their_s:>10.3f}{their_rate:>16,.0f}{their_lab:>10.4f}")
    print(f"ratio (anomalykit / GutenTAG points/s): {our_rate / their_rate:.1f}x "
          f"({same_rate / their_rate:.1f}x reading GutenTAG's own config)")


if __name__ == "__main__":
    main()
