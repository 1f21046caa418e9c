"""SynTSBench's irregularity grids as ready-made configs.

``noise_suite`` gives each base signal clean and at SNR 30, 20, 10, 0, -10 dB; ``anomaly_suite``
gives each base signal (with a 20 dB noise floor) point spikes at ratios 0.5 % .. 20 % and pulses
1 .. 20, all confined to the first 80 % of the series (the train/validation part of a 70/10/20
split), as in SynTSBench's released generator.

>>> suite = anomaly_suite(length=1000)
>>> sorted(suite)[:2]
['Double-Sin_point-anomaly-0.5pct', 'Double-Sin_point-anomaly-10pct']
>>> len(noise_suite(length=1000))
30
"""

from __future__ import annotations

from .config import SeriesConfig

__all__ = ["BASE_SIGNALS", "SNR_LEVELS_DB", "POINT_RATIOS", "PULSE_COUNTS", "noise_suite", "anomaly_suite"]

#: SynTSBench's five base signals of the irregularity experiments, as patterns
BASE_SIGNALS: dict[str, dict] = {
    "Linear-Trend": {"kind": "linear-trend"},
    "Logistic-Trend": {"kind": "logistic-trend"},
    "Sin0.05": {"kind": "sin", "frequency": 0.05},
    "Double-Sin": {"kind": "double-sin"},
    "Five-Sin": {"kind": "five-sin"},
}
SNR_LEVELS_DB = (30, 20, 10, 0, -10)
POINT_RATIOS = (0.005, 0.01, 0.05, 0.10, 0.15, 0.20)
PULSE_COUNTS = (1, 3, 5, 10, 20)
CONTAMINATED = [0.0, 0.8]


def _percent(ratio: float, reproduce_reference_quirks: bool) -> str:
    if reproduce_reference_quirks:  # SynTSBench names the 0.5 % set "0pct"
        return str(int(ratio * 100))
    return f"{ratio * 100:g}"


def noise_suite(length: int = 5000) -> dict[str, SeriesConfig]:
    """``{signal}_{raw|SNR{v}dB}`` -> config, SynTSBench's noise-robustness sets."""
    suite = {}
    for signal, pattern in BASE_SIGNALS.items():
        suite[f"{signal}_raw"] = SeriesConfig.from_dict({"length": length, "name": f"{signal}_raw",
                                                         "channels": [{"pattern": pattern}]})
        for snr in SNR_LEVELS_DB:
            name = f"{signal}_SNR{snr}dB"
            suite[name] = SeriesConfig.from_dict({"length": length, "name": name,
                                                  "channels": [{"pattern": pattern, "noise": {"snr_db": snr}}]})
    return suite


def anomaly_suite(length: int = 5000, *, reproduce_reference_quirks: bool = False) -> dict[str, SeriesConfig]:
    """``{signal}_point-anomaly-{pct}pct`` and ``{signal}_pulse-anomaly-{k}`` -> config, with a
    20 dB noise floor and anomalies in the first 80 %."""
    suite = {}
    for signal, pattern in BASE_SIGNALS.items():
        channel = {"pattern": pattern, "noise": {"snr_db": 20}}
        for ratio in POINT_RATIOS:
            name = f"{signal}_point-anomaly-{_percent(ratio, reproduce_reference_quirks)}pct"
            suite[name] = SeriesConfig.from_dict({"length": length, "name": name, "channels": [channel], "anomalies": [
                {"kind": "point", "ratio": ratio, "region": CONTAMINATED}]})
        for count in PULSE_COUNTS:
            name = f"{signal}_pulse-anomaly-{count}"
            suite[name] = SeriesConfig.from_dict({"length": length, "name": name, "channels": [channel], "anomalies": [
                {"kind": "pulse", "count": count, "region": CONTAMINATED}]})
    return suite
