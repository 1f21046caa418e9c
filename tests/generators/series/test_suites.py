"""SynTSBench's noise and anomaly grids as configs."""

import numpy as np

from anomalykit.generators.series.suites import anomaly_suite, noise_suite
from anomalykit.generators.series.syntsbench import SynTSBenchGenerator


def test_anomaly_grid_names_counts_and_region():
    suite = anomaly_suite(length=5000)
    assert len(suite) == 5 * (6 + 5)
    quirky = anomaly_suite(length=5000, reproduce_reference_quirks=True)
    assert "Sin0.05_point-anomaly-0pct" in quirky and "Sin0.05_point-anomaly-0.5pct" in suite
    sample = SynTSBenchGenerator(suite["Sin0.05_point-anomaly-1pct"])(seed=0)
    assert len(sample.meta["anomalies"]) == int(0.8 * 5000 * 0.01)
    assert not sample.target[4000:].any()
    pulses = SynTSBenchGenerator(suite["Five-Sin_pulse-anomaly-20"])(seed=0)
    assert len(pulses.meta["anomalies"]) == 20 and not pulses.target[4000:].any()


def test_noise_grid_reaches_its_snr():
    suite = noise_suite(length=4000)
    assert len(suite) == 5 * 6
    sim = SynTSBenchGenerator(suite["Double-Sin_SNR0dB"]).simulate(seed=0)
    noise = sim.values[:, 0].astype(np.float64) - sim.signal[0]
    assert abs(10 * np.log10(np.var(sim.signal[0]) / np.var(noise))) < 0.3
