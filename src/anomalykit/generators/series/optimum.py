"""Theoretical-optimum forecasts of generated series (closed form, SynTSBench-style).

The data come from known processes, so the Bayes-optimal forecast and its error follow directly:
the generating function for deterministic patterns (error = the observation noise), the mean
for white noise, the last value for a random walk, the conditional expectation for AR/ARMA
(error sigma^2 sum psi_j^2), the conditional variance for GARCH, the known past for lagged
channels, and sums of these for linear formulas. The optimum is computed from the noise-free
latent state, i.e. it is the oracle a model could at best approach.

>>> from anomalykit.generators.series.optimum import optimal_forecast, theoretical_optimum
>>> cfg = {"length": 1000, "channels": [{"pattern": {"kind": "gaussian-random-walk"}}]}
>>> f = optimal_forecast(cfg, seed=0, t=499, horizon=4)
>>> f.var[:, 0].tolist()
[1.0, 2.0, 3.0, 4.0]
>>> report = theoretical_optimum(cfg, seed=0, horizons=(24,))
>>> round(float(report.mse_raw[24][0]), 1)   # random walk: (H + 1) / 2
12.5
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ...errors import ConfigError
from .config import SeriesConfig, load_config
from .engine import Simulation
from .patterns import Forecast

__all__ = ["OptimalForecast", "OptimumReport", "optimal_forecast", "theoretical_optimum"]

_GAUSSIAN_MAE = math.sqrt(2.0 / math.pi)


@dataclass
class OptimalForecast:
    """Forecast of steps t+1 .. t+horizon (rows) for every channel (columns) and its error variance."""

    t: int
    horizon: int
    mean: np.ndarray
    var: np.ndarray
    channel_names: list[str]

    @property
    def mae(self) -> np.ndarray:
        """Expected absolute error per step (Gaussian errors): sigma * sqrt(2 / pi)."""
        return _GAUSSIAN_MAE * np.sqrt(self.var)


@dataclass
class OptimumReport:
    """Optimal MSE / MAE averaged over steps 1..H and over forecast origins in the test split.

    ``mse``/``mae`` are in the normalised units of a ``StandardScaler`` fit on the training split
    (what forecasting papers report); ``mse_raw``/``mae_raw`` in the series' own units.
    """

    horizons: tuple[int, ...]
    channel_names: list[str]
    scaler_var: np.ndarray
    mse_raw: dict[int, np.ndarray] = field(default_factory=dict)
    mae_raw: dict[int, np.ndarray] = field(default_factory=dict)
    origins: int = 0

    @property
    def mse(self) -> dict[int, np.ndarray]:
        return {h: v / self.scaler_var for h, v in self.mse_raw.items()}

    @property
    def mae(self) -> dict[int, np.ndarray]:
        return {h: v / np.sqrt(self.scaler_var) for h, v in self.mae_raw.items()}

    def rows(self) -> list[dict[str, Any]]:
        """One row per (channel, horizon), JSON-ready."""
        mse, mae = self.mse, self.mae
        return [{"channel": name, "horizon": h, "mse": float(mse[h][c]), "mae": float(mae[h][c]),
                 "mse_raw": float(self.mse_raw[h][c]), "mae_raw": float(self.mae_raw[h][c])}
                for c, name in enumerate(self.channel_names) for h in self.horizons]


class _Forecaster:
    def __init__(self, cfg: SeriesConfig, sim: Simulation, t: int) -> None:
        self.cfg, self.sim, self.t = cfg, sim, t
        self.entry_of: list[int] = []
        self.first_of: list[int] = []
        for i, channel in enumerate(cfg.channels):
            self.first_of.append(len(self.entry_of))
            self.entry_of.extend([i] * channel.pattern.pattern.num_outputs)
        self._cache: dict[tuple[int, int], Forecast] = {}

    def channel_forecast(self, channel: int, horizon: int | None = None) -> Forecast:
        """Forecast of a channel's noise-free signal (pattern + trend + offset)."""
        h = horizon if horizon is not None else self.h
        key = (channel, h)
        if key not in self._cache:
            self._cache[key] = self._signal(channel, h)
        return self._cache[key]

    def _signal(self, channel: int, h: int) -> Forecast:
        i = self.entry_of[channel]
        spec = self.cfg.channels[i]
        kind = spec.pattern.pattern
        if kind.forecast is None:
            raise ConfigError(f"channels[{i}].pattern.kind: no closed-form optimum for {kind.name!r}; available for "
                              f"trends, periodic patterns, GutenTAG's deterministic oscillations, AR, ARMA, random "
                              f"walk, white noise, GARCH, lag, linear formulas, lag-pair, sin-noise-composite, ODEs")
        if spec.trend is not None and spec.trend.pattern.at is None:
            raise ConfigError(f"channels[{i}].trend.kind: no closed-form optimum for a {spec.trend.kind!r} trend")
        first = self.first_of[i]
        outputs = kind.num_outputs
        latent = self.sim.latent[first] if outputs == 1 else np.stack(self.sim.latent[first:first + outputs], axis=1)
        previous_h, self.h = getattr(self, "h", h), h
        try:
            f = kind.forecast(latent, self.sim.states[i], spec.pattern.params, self.t, h, self)
        finally:
            self.h = previous_h
        mean = np.asarray(f.mean, np.float64).reshape(h, -1)
        var = np.asarray(f.var, np.float64).reshape(h, -1)
        column = channel - first
        trend = self.sim.signal[channel] - self.sim.latent[channel]
        return Forecast(mean[:, column] + trend[self.t + 1:self.t + h + 1], var[:, column].copy())

    def observed(self, channel: int, h: int) -> Forecast:
        f = self.channel_forecast(channel, h)
        return Forecast(f.mean, f.var + self.sim.noise_var[channel])


def _simulate(config: Any, seed: int) -> tuple[SeriesConfig, Simulation]:
    from .syntsbench import SynTSBenchGenerator

    cfg = load_config(config)
    return cfg, SynTSBenchGenerator(cfg).simulate(seed=seed)


def optimal_forecast(config: SeriesConfig | dict[str, Any] | str, *, seed: int, t: int, horizon: int
                     ) -> OptimalForecast:
    """The optimal forecast of steps ``t+1 .. t+horizon`` of the series ``gen(seed=seed)``."""
    cfg, sim = _simulate(config, seed)
    return _forecast(cfg, sim, t, horizon)


def _forecast(cfg: SeriesConfig, sim: Simulation, t: int, horizon: int) -> OptimalForecast:
    n = sim.values.shape[0]
    if horizon < 1:
        raise ConfigError(f"horizon: {horizon} is below the allowed range [1, {n - 1}]")
    if not 0 <= t <= n - 1 - horizon:
        raise ConfigError(f"t: {t} is outside the allowed range [0, {n - 1 - horizon}] (horizon {horizon}, "
                          f"{n} steps)")
    forecaster = _Forecaster(cfg, sim, t)
    columns = [forecaster.observed(c, horizon) for c in range(sim.values.shape[1])]
    return OptimalForecast(t, horizon, np.stack([f.mean for f in columns], axis=1),
                           np.stack([f.var for f in columns], axis=1), list(sim.channel_names))


def theoretical_optimum(config: SeriesConfig | dict[str, Any] | str, *, seed: int,
                        horizons: tuple[int, ...] = (24, 48, 96, 192), split: tuple[float, float, float] = (0.7, 0.1, 0.2),
                        stride: int | None = None) -> OptimumReport:
    """Optimal MSE/MAE per horizon H (averaged over steps 1..H and test-split origins), raw and
    normalised by the training split's variance (SynTSBench's 70/10/20 split and scaler)."""
    if len(split) != 3 or any(s < 0 for s in split) or abs(sum(split) - 1.0) > 1e-6:
        raise ConfigError(f"split: {split} must be three non-negative fractions summing to 1")
    cfg, sim = _simulate(config, seed)
    n = sim.values.shape[0]
    train_end = int(split[0] * n)
    test_start = int((split[0] + split[1]) * n)
    if train_end < 2:
        raise ConfigError(f"split: the training part of {n} steps is too short")
    scaler_var = np.nanvar(sim.values[:train_end].astype(np.float64), axis=0)
    scaler_var = np.where(scaler_var > 0, scaler_var, 1.0)
    report = OptimumReport(tuple(horizons), list(sim.channel_names), scaler_var)
    for horizon in horizons:
        last_origin = n - 1 - horizon
        if last_origin < test_start - 1:
            raise ConfigError(f"horizons: {horizon} does not fit in the test split of {n - test_start} steps")
        origins = range(test_start - 1, last_origin + 1, stride or horizon)
        mse = np.zeros(sim.values.shape[1])
        mae = np.zeros(sim.values.shape[1])
        for t in origins:
            f = _forecast(cfg, sim, t, horizon)
            mse += f.var.mean(axis=0)
            mae += f.mae.mean(axis=0)
        report.mse_raw[horizon] = mse / len(origins)
        report.mae_raw[horizon] = mae / len(origins)
        report.origins = max(report.origins, len(origins))
    return report
