"""Every pattern family of the series generator: shapes, formulas, dependencies, determinism."""

import numpy as np
import pytest

import anomalykit
from anomalykit.generators.series.patterns import PATTERNS, evaluate_pattern, list_patterns

NEEDS_SOURCE = {"lag": {"source": 0, "lag": 3}, "formula": {"expression": "2 * ch0 + 1"}}

SYNTSBENCH_FAMILIES = {
    "trend": {"linear-trend", "quadratic-function", "exponential-trend", "negative-exponential-trend",
              "logarithmic-function", "logistic-trend", "gompertz-trend", "power-law-trend", "step-function",
              "piecewise-linear", "gaussian-trend"},
    "periodic": {"sin", "cosine-wave", "sine-mixture", "double-sin", "triple-sin", "five-sin", "ten-sin",
                 "triangle-wave", "sawtooth-wave", "square-wave", "exp-sine-wave", "sinc", "twopulse-triangles"},
    "stochastic": {"ar", "arma", "gaussian-random-walk", "white-noise", "garch"},
    "gutentag": {"sine", "cosine", "square", "sawtooth", "ecg", "dirichlet", "mls", "polynomial", "random-walk",
                 "random-mode-jump", "cylinder-bell-funnel", "formula"},
    "multivariate": {"lag", "lag-pair", "sin-noise-composite"},
    "ode": {"lotka-volterra", "sir"},
    "causal": {"weather-sales", "ad-sales", "macro-economy", "supply-demand-price", "intervention-effect"},
}


def test_every_family_is_complete():
    for family, names in SYNTSBENCH_FAMILIES.items():
        assert names <= set(list_patterns(family)), (family, names - set(list_patterns(family)))


@pytest.mark.parametrize("name", sorted(PATTERNS))
def test_every_pattern_generates_through_the_generator(name):
    kind = PATTERNS[name]
    channels = [{"pattern": {"kind": name, **NEEDS_SOURCE.get(name, {})}}]
    if name in NEEDS_SOURCE:
        channels.insert(0, {"pattern": {"kind": "sin"}})
    gen = anomalykit.get_generator("syntsbench", length=240, channels=channels,
                                   anomalies=[{"kind": "mean", "channel": len(channels) - 1 + kind.num_outputs - 1,
                                               "length": 20, "offset": 3.0}])
    sample = gen(seed=3)
    width = kind.num_outputs + (1 if name in NEEDS_SOURCE else 0)
    assert sample.data.values.shape == (240, width)
    assert np.isfinite(sample.data.values).all()
    assert sample.label == 1 and sample.target.sum() > 0
    again = gen(seed=3)
    assert again.data.values.tobytes() == sample.data.values.tobytes()
    assert [r["kind"] for r in sample.meta["anomalies"]] == ["mean"]


def test_gutentag_sine_convention_and_period_override():
    x = evaluate_pattern("sine", {"frequency": 2.0, "amplitude": 3.0}, 1001, np.random.default_rng(0))
    # frequency = cycles per 100 points on t = linspace(0, n/100, n)
    expected = 3.0 * np.sin(2 * np.pi * 2.0 * np.linspace(0, 1001 / 100, 1001))
    np.testing.assert_allclose(x, expected, atol=1e-12)
    by_period = evaluate_pattern("sin", {"period": 20}, 100, np.random.default_rng(0))
    np.testing.assert_allclose(by_period, np.sin(2 * np.pi * np.arange(100) / 20), atol=1e-12)


def test_syntsbench_closed_forms():
    rng = np.random.default_rng(0)
    n = 600
    x = np.arange(n)
    np.testing.assert_allclose(evaluate_pattern("linear-trend", None, n, rng), 0.01 * x + 5)
    np.testing.assert_allclose(evaluate_pattern("logistic-trend", None, n, rng), 10 / (1 + np.exp(-0.001 * (x - n / 2))))
    step = evaluate_pattern("step-function", None, n, rng)
    assert step[199] == 2 and step[200] == 8
    knots = evaluate_pattern("piecewise-linear", None, n, rng)
    assert knots[0] == 2 and knots[-1] == 7 and np.isclose(knots[int(0.6 * (n - 1))], 10, atol=0.1)
    mixture = evaluate_pattern("double-sin", None, n, rng)
    np.testing.assert_allclose(mixture, 2 * np.sin(2 * np.pi * 0.1 * x) + 1.5 * np.sin(2 * np.pi * 0.05 * x), atol=1e-12)
    pulses = evaluate_pattern("twopulse-triangles", None, 400, rng)
    assert pulses[5] == 1.0 and pulses[96 + 5] == 2.0 and pulses[50] == 0.0


def test_stochastic_processes_follow_their_recursions():
    gen = anomalykit.get_generator("syntsbench", length=3000, channels=[
        {"pattern": {"kind": "ar", "coefficients": [0.6, 0.2, 0.15]}},
        {"pattern": {"kind": "garch"}},
        {"pattern": {"kind": "gaussian-random-walk", "sigma": 0.5}},
    ])
    sim = gen.simulate(seed=1)
    ar = sim.latent[0]
    shocks = sim.states[0]["innovations"]
    assert ar[:3].tolist() == [0.0, 0.0, 0.0]
    np.testing.assert_allclose(ar[3:], 0.6 * ar[2:-1] + 0.2 * ar[1:-2] + 0.15 * ar[:-3] + shocks[3:], atol=1e-9)
    sigma2 = sim.states[1]["sigma2"]
    returns = sim.latent[1]
    np.testing.assert_allclose(sigma2[1:], 0.1 + 0.2 * returns[:-1] ** 2 + 0.7 * sigma2[:-1], rtol=1e-9)
    assert abs(np.std(np.diff(sim.latent[2])) - 0.5) < 0.05


def test_channel_dependencies_lag_and_formula():
    gen = anomalykit.get_generator("syntsbench", length=500, channels=[
        {"pattern": {"kind": "white-noise"}},
        {"pattern": {"kind": "sine", "frequency": 3}, "offset": 1.0},
        {"pattern": {"kind": "lag", "source": 0, "lag": 10, "scale": 2.0}},
        {"kind": "formula", "aggregation": "sum", "channels": [0, 1]},     # GutenTAG style channel entry
        {"pattern": {"kind": "lag-pair", "lag": 5}},
    ])
    values = gen(seed=0).data.values.astype(np.float64)
    np.testing.assert_allclose(values[10:, 2], 2 * values[:-10, 0], rtol=1e-5, atol=1e-5)
    assert not values[:10, 2].any()
    np.testing.assert_allclose(values[:, 3], values[:, 0] + values[:, 1], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(values[5:, 5], values[:-5, 4], rtol=1e-6)
    assert gen.config.channel_names()[4:] == ["lag-pair-4.white-noise", "lag-pair-4.lagged"]


def test_random_mode_jump_channels_share_their_jumps():
    gen = anomalykit.get_generator("syntsbench", length=1000, channels=[
        {"pattern": {"kind": "random-mode-jump", "channel_diff": 1.0, "channel_offset": 1.0}},
        {"pattern": {"kind": "random-mode-jump", "channel_diff": 1.0, "channel_offset": 1.0}},
    ])
    values = gen(seed=0).data.values
    assert set(np.abs(values[:, 0])) == {1.0} and set(np.abs(values[:, 1])) == {2.0}
    np.testing.assert_array_equal(np.sign(values[:, 0]), np.sign(values[:, 1]))


def test_noise_at_a_target_snr():
    gen = anomalykit.get_generator("syntsbench", length=20000,
                                   channels=[{"pattern": {"kind": "sin"}, "noise": {"snr_db": 10}}])
    sim = gen.simulate(seed=0)
    noise = sim.values[:, 0].astype(np.float64) - sim.signal[0]
    snr = 10 * np.log10(np.var(sim.signal[0]) / np.var(noise))
    assert abs(snr - 10) < 0.2


def test_gutentag_variance_and_poisson_noise():
    gen = anomalykit.get_generator("syntsbench", length=20000, channels=[
        {"kind": "sine", "amplitude": 2.0, "variance": 0.1},          # GutenTAG: std = variance * amplitude
        {"pattern": {"kind": "linear-trend", "slope": 0.0, "intercept": 5.0}, "noise": {"kind": "poisson"}},
    ])
    sim = gen.simulate(seed=0)
    gaussian = sim.values[:, 0].astype(np.float64) - sim.signal[0]
    assert abs(np.std(gaussian) - 0.2) < 0.01
    counts = sim.values[:, 1].astype(np.float64)
    assert np.allclose(counts, np.round(counts))  # a constant signal shifted to 0: Poisson(0) noise
    poisson = anomalykit.get_generator("syntsbench", length=20000, channels=[
        {"pattern": {"kind": "step-function", "before": 0.0, "after": 9.0}, "noise": {"kind": "poisson"}}])
    values = poisson(seed=0).data.values[:, 0].astype(np.float64)
    after = values[20000 // 3 + 1:]
    assert abs(after.mean() - 9.0) < 0.1 and abs(after.var() - 9.0) < 0.5  # Poisson: variance = mean
