"""Theoretical-optimum forecasts (the closed forms of optimum.py) and an empirical check."""

import numpy as np
import pytest

from anomalykit import ConfigError
from anomalykit.generators.series.optimum import optimal_forecast, theoretical_optimum
from anomalykit.generators.series.syntsbench import SynTSBenchGenerator


def one(kind: str, length: int = 4000, **extra) -> dict:
    return {"length": length, "channels": [{"pattern": {"kind": kind, **extra.pop("params", {})}, **extra}]}


def test_deterministic_pattern_plus_noise():
    cfg = one("sin", noise={"snr_db": 10})
    f = optimal_forecast(cfg, seed=0, t=1000, horizon=5)
    np.testing.assert_allclose(f.mean[:, 0], np.sin(2 * np.pi * 0.05 * np.arange(1001, 1006)), atol=1e-12)
    report = theoretical_optimum(cfg, seed=0, horizons=(24, 96))
    for h in (24, 96):  # normalised optimum of a stationary periodic signal: 1 / (1 + SNR)
        assert report.mse[h][0] == pytest.approx(1 / 11, rel=0.03)
    sigma = np.sqrt(report.mse_raw[24][0])
    assert report.mae_raw[24][0] == pytest.approx(sigma * np.sqrt(2 / np.pi))


def test_random_walk_white_noise_and_ar1_closed_forms():
    walk = theoretical_optimum(one("gaussian-random-walk"), seed=0, horizons=(24, 48))
    assert walk.mse_raw[24][0] == pytest.approx(12.5) and walk.mse_raw[48][0] == pytest.approx(24.5)
    noise = theoretical_optimum(one("white-noise", params={"mean": 3, "std": 2}), seed=0, horizons=(24,))
    assert noise.mse_raw[24][0] == pytest.approx(4.0) and noise.mse[24][0] == pytest.approx(1.0, rel=0.06)
    phi = 0.8
    ar = theoretical_optimum(one("ar", params={"coefficients": [phi]}), seed=0, horizons=(12,))
    expected = np.mean([(1 - phi ** (2 * h)) / (1 - phi ** 2) for h in range(1, 13)])
    assert ar.mse_raw[12][0] == pytest.approx(expected)


def test_multivariate_sets():
    pair = theoretical_optimum(one("lag-pair", params={"lag": 48}), seed=0, horizons=(24, 96))
    assert pair.mse_raw[24].tolist() == pytest.approx([1.0, 0.0])
    assert pair.mse_raw[96].tolist() == pytest.approx([1.0, 0.5])
    composite = theoretical_optimum(one("sin-noise-composite"), seed=0, horizons=(24,))
    assert composite.mse[24] == pytest.approx([0.0, 1.0, 0.5], abs=0.06)
    rows = composite.rows()
    assert len(rows) == 3 and {"channel", "horizon", "mse", "mae", "mse_raw", "mae_raw"} <= set(rows[0])


def test_the_optimal_forecast_is_what_the_errors_of_the_series_show():
    cfg = {"length": 6000, "channels": [{"pattern": {"kind": "arma", "ar": [0.7], "ma": [0.4]}},
                                        {"pattern": {"kind": "sine", "frequency": 3}, "noise": {"std": 0.3}}]}
    values = SynTSBenchGenerator(cfg)(seed=5).data.values.astype(np.float64)
    errors = []
    for t in range(200, 5900, 7):
        f = optimal_forecast(cfg, seed=5, t=t, horizon=3)
        errors.append((values[t + 1:t + 4] - f.mean) ** 2)
        predicted = f.var
    empirical = np.mean(errors, axis=0)
    np.testing.assert_allclose(empirical, predicted, rtol=0.2)


def test_unsupported_patterns_and_bad_arguments():
    with pytest.raises(ConfigError, match=r"channels\[0\]\.pattern\.kind: no closed-form optimum for 'cylinder-bell-funnel'"):
        theoretical_optimum(one("cylinder-bell-funnel", length=1000), seed=0, horizons=(24,))
    with pytest.raises(ConfigError, match="t: 999 is outside the allowed range"):
        optimal_forecast(one("sin", length=1000), seed=0, t=999, horizon=5)
    with pytest.raises(ConfigError, match="split"):
        theoretical_optimum(one("sin", length=1000), seed=0, split=(0.5, 0.5, 0.5))
