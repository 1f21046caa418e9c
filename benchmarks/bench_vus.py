#!/usr/bin/env python
"""VUS-PR / VUS-ROC: anomalykit's ``metrics.series.vus`` against TSB-AD's reference, same run.

Both score the same synthetic series: ``--length`` steps with ``--events`` anomaly events of 20 to
200 steps, scores = noise + a bump on the events (and ties from rounding), buffer window
``--window`` (TSB-AD's ``get_metrics`` uses twice the period; 200 = period 100), 250 thresholds.
The reference is ``TSB_AD.evaluation.basic_metrics.basic_metricor().RangeAUC_volume_opt`` (the
"opt" version ``get_metrics`` uses), from the ``tsb-ad`` wheel installed without dependencies
into ``--cache`` on first use (``pip install --no-deps --target``): only numpy and scikit-learn
are needed for its metrics. Timings are the median of ``--repeats`` runs; the script also checks
that both give the same numbers.

    python benchmarks/bench_vus.py [--length 50000] [--events 40] [--window 200] [--repeats 3]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

TSB_AD_VERSION = "1.5"


def reference(cache: Path):
    if not (cache / "TSB_AD").is_dir():
        subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(cache),
                        f"tsb-ad=={TSB_AD_VERSION}"], check=True)
    sys.path.insert(0, str(cache))
    from TSB_AD.evaluation.basic_metrics import basic_metricor

    def run(labels: np.ndarray, scores: np.ndarray, window: int) -> tuple[float, float]:
        out = basic_metricor().RangeAUC_volume_opt(labels_original=labels, score=scores, windowSize=window, thre=250)
        return float(out[4]), float(out[5])

    return run


def data(length: int, events: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    labels = np.zeros(length, np.int64)
    for start in np.sort(rng.choice(length - 250, events, replace=False)):
        labels[start:start + int(rng.integers(20, 200))] = 1
    scores = np.round(rng.normal(size=length) + 1.5 * labels, 2)
    return labels, scores


def timed(fn, repeats: int):
    times, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--length", type=int, default=50_000)
    parser.add_argument("--events", type=int, default=40)
    parser.add_argument("--window", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--cache", type=Path,
                        default=Path.home() / ".cache" / "anomalykit-bench" / f"tsb-ad-{TSB_AD_VERSION}")
    args = parser.parse_args()

    from anomalykit.metrics.series import vus

    labels, scores = data(args.length, args.events, seed=0)
    tsb = reference(args.cache)
    ours_time, ours = timed(lambda: vus(labels, scores, window=args.window), args.repeats)
    tsb_time, (tsb_roc, tsb_pr) = timed(lambda: tsb(labels, scores, args.window), args.repeats)
    print(f"series: {args.length} steps, {args.events} events, window {args.window}, 250 thresholds")
    print(f"{'':<12}{'seconds':>10}{'series/s':>10}{'VUS-PR':>12}{'VUS-ROC':>12}")
    print(f"{'TSB-AD ' + TSB_AD_VERSION:<12}{tsb_time:>10.3f}{1 / tsb_time:>10.2f}{tsb_pr:>12.6f}{tsb_roc:>12.6f}")
    print(f"{'anomalykit':<12}{ours_time:>10.3f}{1 / ours_time:>10.2f}{ours.pr:>12.6f}{ours.roc:>12.6f}")
    print(f"speed-up: {tsb_time / ours_time:.0f}x; largest difference: "
          f"{max(abs(tsb_pr - ours.pr), abs(tsb_roc - ours.roc)):.1e}")


if __name__ == "__main__":
    main()
