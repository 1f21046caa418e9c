"""Base patterns of synthetic series: every SynTSBench family and every GutenTAG base oscillation.

Each pattern kind is registered with a typed parameter dataclass (validated ranges) and a
function ``(n, params, ctx) -> values`` (``(n,)``, or ``(n, k)`` for a set of ``k`` linked
channels). Families:

* ``trend`` – SynTSBench's 11 closed-form trends (``linear-trend`` ... ``gaussian-trend``);
* ``periodic`` – SynTSBench's sine mixtures, triangle, sawtooth, square, exp-sine, sinc, cosine,
  two-pulse triangles (frequencies in cycles per sample, time index ``x = 0 .. n-1``);
* ``stochastic`` – AR, ARMA, Gaussian random walk, white noise, GARCH(1,1);
* ``gutentag`` – GutenTAG's base oscillations (``sine``, ``cosine``, ``square``, ``sawtooth``,
  ``ecg``, ``dirichlet``, ``mls``, ``polynomial``, ``random-walk``, ``random-mode-jump``,
  ``cylinder-bell-funnel``, ``formula``) with GutenTAG's convention: frequency = cycles per 100
  points, ``t = linspace(0, n/100, n)``;
* ``multivariate`` – ``lag`` and ``formula`` operators over earlier channels, SynTSBench's
  ``lag-pair`` and ``sin-noise-composite`` sets;
* ``ode`` / ``causal`` / ``composite`` – Lotka-Volterra, SIR, the causal sets and the composite
  real-world-like series.

>>> import numpy as np
>>> from anomalykit.generators.series.patterns import evaluate_pattern
>>> evaluate_pattern("sine", {"frequency": 2}, 400, np.random.default_rng(0)).shape
(400,)
"""

from __future__ import annotations

import ast
import math
import operator
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import signal as sps
from scipy import special

from ...errors import ConfigError
from ..base import param
from ._params import build

__all__ = ["PatternKind", "PatternContext", "PATTERNS", "register_pattern", "get_pattern", "list_patterns",
           "evaluate_pattern", "Forecast"]


@dataclass
class PatternContext:
    """What a pattern function sees besides its parameters."""

    n: int
    rng: np.random.Generator
    channel: int = 0                                   # expanded index of the pattern's first output
    previous: list[np.ndarray] = field(default_factory=list)  # clean values of earlier channels
    state: dict[str, Any] = field(default_factory=dict)       # filled by stochastic patterns (optimum)


@dataclass
class Forecast:
    """Optimal point forecast and its error variance for steps t+1 .. t+h, one column per output."""

    mean: np.ndarray
    var: np.ndarray


@dataclass(frozen=True)
class PatternKind:
    name: str
    params: type
    fn: Callable[[int, Any, PatternContext], np.ndarray]
    family: str
    doc: str = ""
    outputs: tuple[str, ...] = ()
    at: Callable[[np.ndarray, int, Any], np.ndarray] | None = None  # deterministic time function
    period: Callable[[Any, int], float | None] | None = None        # period in samples
    forecast: Callable[..., Forecast] | None = None
    zero_centered: bool = False
    references: Callable[[Any], list[int]] | None = None             # channels it reads

    @property
    def num_outputs(self) -> int:
        return max(1, len(self.outputs))

    def parse(self, values: Any, path: str) -> Any:
        return build(self.params, values, path, skip=("kind",))


PATTERNS: dict[str, PatternKind] = {}


def register_pattern(name: str, params: type, *, family: str, outputs: tuple[str, ...] = (),
                     period: Callable | None = None, forecast: Callable | None = None,
                     zero_centered: bool = False, references: Callable | None = None):
    """Register ``fn(n, params, ctx)`` as pattern ``name``."""

    def decorator(fn: Callable) -> Callable:
        PATTERNS[name] = PatternKind(name, params, fn, family, (fn.__doc__ or "").strip().split("\n")[0], outputs,
                                     None, period, forecast, zero_centered, references)
        return fn

    return decorator


def register_time_pattern(name: str, params: type, *, family: str, period: Callable | None = None,
                          zero_centered: bool = True):
    """Register a deterministic ``at(x, n, params)`` function of the (fractional) sample index."""

    def decorator(at: Callable) -> Callable:
        PATTERNS[name] = PatternKind(name, params, _OnIndex(at), family, (at.__doc__ or "").strip().split("\n")[0], (),
                                     at, period, deterministic_forecast, zero_centered, None)
        return at

    return decorator


class _OnIndex:
    """``fn(n, params, ctx)`` of a time pattern: its ``at`` function on x = 0 .. n-1 (picklable)."""

    def __init__(self, at: Callable) -> None:
        self.at = at

    def __call__(self, n: int, p: Any, ctx: PatternContext) -> np.ndarray:
        return self.at(np.arange(n, dtype=np.float64), n, p)


def get_pattern(name: str, path: str = "pattern.kind") -> PatternKind:
    key = str(name).strip().lower().replace("_", "-")
    if key not in PATTERNS:
        raise ConfigError(f"{path}: unknown pattern {name!r}; known: {', '.join(sorted(PATTERNS))}")
    return PATTERNS[key]


def list_patterns(family: str | None = None) -> list[str]:
    return sorted(n for n, k in PATTERNS.items() if family is None or k.family == family)


def evaluate_pattern(name: str, params: dict[str, Any] | None, n: int, rng: np.random.Generator,
                     previous: list[np.ndarray] | None = None) -> np.ndarray:
    """Values of one pattern (a convenience for exploring patterns outside a config)."""
    kind = get_pattern(name)
    ctx = PatternContext(n, rng, len(previous or []), list(previous or []))
    return np.asarray(kind.fn(n, kind.parse(params or {}, "pattern"), ctx), dtype=np.float64)


# --------------------------------------------------------------------------------------------
# optimal forecasts (see optimum.py); ``latent`` is the pattern's own (noise-free) output


def deterministic_forecast(latent: np.ndarray, state: dict, p: Any, t: int, h: int, ctx: Any) -> Forecast:
    """The generating function itself: the future is known, error 0."""
    mean = np.asarray(state.get("mean", latent))[t + 1:t + h + 1]
    var = np.broadcast_to(np.asarray(state.get("noise_var", 0.0), np.float64), mean.shape).copy()
    return Forecast(mean.astype(np.float64), var)


# --------------------------------------------------------------------------------------------
# SynTSBench trends (x = 0 .. n-1)


def _x(n: int) -> np.ndarray:
    return np.arange(n, dtype=np.float64)


@dataclass
class LinearTrendParams:
    slope: float = param(0.01, doc="a in a*x + b")
    intercept: float = param(5.0, doc="b in a*x + b")


@register_time_pattern("linear-trend", LinearTrendParams, family="trend", zero_centered=False)
def linear_trend(x: np.ndarray, n: int, p: LinearTrendParams) -> np.ndarray:
    """a*x + b."""
    return p.slope * x + p.intercept


@dataclass
class QuadraticParams:
    a: float = param(1e-4)
    b: float = param(0.0)
    c: float = param(0.0)


@register_time_pattern("quadratic-function", QuadraticParams, family="trend", zero_centered=False)
def quadratic_function(x: np.ndarray, n: int, p: QuadraticParams) -> np.ndarray:
    """a*x^2 + b*x + c."""
    return p.a * x * x + p.b * x + p.c


@dataclass
class ExponentialParams:
    scale: float = param(1.0, doc="a in a*exp(r*x) + c")
    rate: float = param(0.0015, low=-1.0, high=1.0, doc="r")
    constant: float = param(1.0, doc="c")


@register_time_pattern("exponential-trend", ExponentialParams, family="trend", zero_centered=False)
def exponential_trend(x: np.ndarray, n: int, p: ExponentialParams) -> np.ndarray:
    """a*exp(r*x) + c."""
    return p.scale * np.exp(p.rate * x) + p.constant


@dataclass
class NegativeExponentialParams:
    scale: float = param(100.0)
    rate: float = param(-0.0005, low=-1.0, high=0.0)
    constant: float = param(1.0)


@register_time_pattern("negative-exponential-trend", NegativeExponentialParams, family="trend", zero_centered=False)
def negative_exponential_trend(x: np.ndarray, n: int, p: NegativeExponentialParams) -> np.ndarray:
    """a*exp(r*x) + c with r < 0 (decay)."""
    return p.scale * np.exp(p.rate * x) + p.constant


@dataclass
class LogarithmicParams:
    base: float = param(2.0, low=1.0001)
    scale: float = param(1.0)


@register_time_pattern("logarithmic-function", LogarithmicParams, family="trend", zero_centered=False)
def logarithmic_function(x: np.ndarray, n: int, p: LogarithmicParams) -> np.ndarray:
    """scale * log_base(x + 1)."""
    return p.scale * np.log1p(x) / math.log(p.base)


@dataclass
class LogisticParams:
    capacity: float = param(10.0, doc="L")
    growth: float = param(0.001, doc="k")
    midpoint: float | None = param(None, doc="t0 (default n/2)")


@register_time_pattern("logistic-trend", LogisticParams, family="trend", zero_centered=False)
def logistic_trend(x: np.ndarray, n: int, p: LogisticParams) -> np.ndarray:
    """L / (1 + exp(-k (x - t0)))."""
    t0 = n / 2 if p.midpoint is None else p.midpoint
    return p.capacity / (1.0 + np.exp(-p.growth * (x - t0)))


@dataclass
class GompertzParams:
    a: float = param(10.0)
    b: float = param(5.0)
    k: float = param(0.001)


@register_time_pattern("gompertz-trend", GompertzParams, family="trend", zero_centered=False)
def gompertz_trend(x: np.ndarray, n: int, p: GompertzParams) -> np.ndarray:
    """a * exp(-b * exp(-k x))."""
    return p.a * np.exp(-p.b * np.exp(-p.k * x))


@dataclass
class PowerLawParams:
    a: float = param(0.5)
    b: float = param(0.6)


@register_time_pattern("power-law-trend", PowerLawParams, family="trend", zero_centered=False)
def power_law_trend(x: np.ndarray, n: int, p: PowerLawParams) -> np.ndarray:
    """a * (x + 1)^b."""
    return p.a * np.power(x + 1.0, p.b)


@dataclass
class StepParams:
    before: float = param(2.0)
    after: float = param(8.0)
    at: float | None = param(None, low=0.0, doc="step position in samples (default n/3)")


@register_time_pattern("step-function", StepParams, family="trend", zero_centered=False)
def step_function(x: np.ndarray, n: int, p: StepParams) -> np.ndarray:
    """before for x < t0, after from t0 on."""
    t0 = n / 3 if p.at is None else p.at
    return np.where(x < t0, p.before, p.after)


@dataclass
class PiecewiseLinearParams:
    knots: list[float] = param(default_factory=lambda: [0.0, 1 / 6, 1 / 3, 0.6, 1.0], low=0.0, high=1.0,
                               doc="knot positions as fractions of the series")
    values: list[float] = param(default_factory=lambda: [2.0, 8.0, 4.0, 10.0, 7.0])

    def __post_init__(self) -> None:
        if len(self.knots) != len(self.values) or len(self.knots) < 2:
            raise ConfigError(f"knots and values must have the same length >= 2, got {len(self.knots)} and "
                              f"{len(self.values)}")
        if any(b <= a for a, b in zip(self.knots, self.knots[1:])):
            raise ConfigError(f"knots must increase strictly, got {self.knots}")


@register_time_pattern("piecewise-linear", PiecewiseLinearParams, family="trend", zero_centered=False)
def piecewise_linear(x: np.ndarray, n: int, p: PiecewiseLinearParams) -> np.ndarray:
    """Linear interpolation between knots."""
    return np.interp(x, np.asarray(p.knots) * (n - 1), np.asarray(p.values, np.float64))


@dataclass
class GaussianTrendParams:
    height: float = param(10.0)
    center: float | None = param(None, doc="default n/2")
    width: float | None = param(None, low=1e-9, doc="sigma, default n/6")


@register_time_pattern("gaussian-trend", GaussianTrendParams, family="trend", zero_centered=False)
def gaussian_trend(x: np.ndarray, n: int, p: GaussianTrendParams) -> np.ndarray:
    """a * exp(-(x - t0)^2 / (2 sigma^2))."""
    t0 = n / 2 if p.center is None else p.center
    sigma = n / 6 if p.width is None else p.width
    return p.height * np.exp(-((x - t0) ** 2) / (2 * sigma * sigma))


# --------------------------------------------------------------------------------------------
# SynTSBench periodic patterns (frequency in cycles per sample)


@dataclass
class SinusoidParams:
    frequency: float = param(0.05, low=0.0, high=0.5, doc="cycles per sample")
    amplitude: float = param(1.0)
    phase: float = param(0.0, doc="radians")
    period: float | None = param(None, low=2.0, doc="samples per cycle; overrides frequency")

    def __post_init__(self) -> None:
        if self.period is not None:
            self.frequency = 1.0 / self.period


def _per_sample_period(p: Any, n: int) -> float | None:
    return 1.0 / p.frequency if p.frequency > 0 else None


@register_time_pattern("sin", SinusoidParams, family="periodic", period=_per_sample_period)
def sinusoid(x: np.ndarray, n: int, p: SinusoidParams) -> np.ndarray:
    """A sin(2 pi f x + phase) (SynTSBench Sin0.05 / Sin0.005)."""
    return p.amplitude * np.sin(2 * np.pi * p.frequency * x + p.phase)


@register_time_pattern("cosine-wave", SinusoidParams, family="periodic", period=_per_sample_period)
def cosine_wave(x: np.ndarray, n: int, p: SinusoidParams) -> np.ndarray:
    """A cos(2 pi f x + phase)."""
    return p.amplitude * np.cos(2 * np.pi * p.frequency * x + p.phase)


def _mixture_params(class_name: str, amplitudes: list[float], frequencies: list[float]) -> type:
    @dataclass
    class MixtureParams:
        amplitudes: list[float] = param(default_factory=lambda: list(amplitudes))
        frequencies: list[float] = param(default_factory=lambda: list(frequencies), low=0.0, high=0.5,
                                         doc="cycles per sample")

        def __post_init__(self) -> None:
            if len(self.amplitudes) != len(self.frequencies) or not self.amplitudes:
                raise ConfigError(f"amplitudes and frequencies must have the same non-zero length, got "
                                  f"{len(self.amplitudes)} and {len(self.frequencies)}")

    MixtureParams.__name__ = MixtureParams.__qualname__ = class_name  # importable by name, so picklable
    globals()[class_name] = MixtureParams
    return MixtureParams


def _mixture_period(p: Any, n: int) -> float | None:
    """Least common multiple of the component periods 1/f_k (frequencies read as fractions)."""
    from fractions import Fraction

    periods = [1 / Fraction(f).limit_denominator(10_000) for f in p.frequencies if f > 0]
    if not periods:
        return None
    numerator = math.lcm(*(q.numerator for q in periods))
    denominator = math.gcd(*(q.denominator for q in periods))
    return numerator / denominator


def _sine_mixture(x: np.ndarray, n: int, p: Any) -> np.ndarray:
    """Sum of A_k sin(2 pi f_k x) (SynTSBench Double/Triple/Five/Ten-Sin)."""
    out = np.zeros_like(x)
    for a, f in zip(p.amplitudes, p.frequencies):
        out += a * np.sin(2 * np.pi * f * x)
    return out


for _name, _amps, _freqs in [
    ("sine-mixture", [2.0, 1.5], [0.1, 0.05]),
    ("double-sin", [2.0, 1.5], [0.1, 0.05]),
    ("triple-sin", [1.0, 2.0, 4.0], [0.2, 0.15, 0.05]),
    ("five-sin", [1.0, 1.2, 2.0, 1.4, 0.9], [0.01, 0.02, 0.05, 0.08, 0.1]),
    ("ten-sin", [1.0, 1.2, 1.5, 1.8, 2.0, 2.2, 1.7, 1.4, 1.1, 0.9],
     [0.01, 0.02, 0.03, 0.04, 0.05, 0.06, 0.07, 0.08, 0.09, 0.1]),
]:
    _class_name = "".join(part.capitalize() for part in _name.split("-")) + "Params"
    register_time_pattern(_name, _mixture_params(_class_name, _amps, _freqs), family="periodic",
                          period=_mixture_period)(
        _sine_mixture)


@dataclass
class WaveParams:
    frequency: float = param(0.05, low=0.0, high=0.5, doc="cycles per sample")
    amplitude: float = param(1.0)
    phase: float = param(0.0, doc="radians (SynTSBench uses 0.99 pi in some sets)")
    period: float | None = param(None, low=2.0, doc="samples per cycle; overrides frequency")

    def __post_init__(self) -> None:
        if self.period is not None:
            self.frequency = 1.0 / self.period


@register_time_pattern("triangle-wave", WaveParams, family="periodic", period=_per_sample_period)
def triangle_wave(x: np.ndarray, n: int, p: WaveParams) -> np.ndarray:
    """A sawtooth(2 pi f x, 0.5) (also Triangle-Wave0.005 / 0.0025 with other frequencies)."""
    return p.amplitude * sps.sawtooth(2 * np.pi * p.frequency * x + p.phase, 0.5)


@register_time_pattern("sawtooth-wave", WaveParams, family="periodic", period=_per_sample_period)
def sawtooth_wave(x: np.ndarray, n: int, p: WaveParams) -> np.ndarray:
    """A sawtooth(2 pi f x + phase)."""
    return p.amplitude * sps.sawtooth(2 * np.pi * p.frequency * x + p.phase)


@register_time_pattern("square-wave", WaveParams, family="periodic", period=_per_sample_period)
def square_wave(x: np.ndarray, n: int, p: WaveParams) -> np.ndarray:
    """A square(2 pi f x + phase)."""
    return p.amplitude * sps.square(2 * np.pi * p.frequency * x + p.phase)


@register_time_pattern("exp-sine-wave", WaveParams, family="periodic", period=_per_sample_period)
def exp_sine_wave(x: np.ndarray, n: int, p: WaveParams) -> np.ndarray:
    """A exp(sin(2 pi f x + phase))."""
    return p.amplitude * np.exp(np.sin(2 * np.pi * p.frequency * x + p.phase))


@dataclass
class SincParams:
    frequency: float = param(0.05, low=1e-6, high=0.5)
    amplitude: float = param(1.0)


@register_time_pattern("sinc", SincParams, family="periodic", zero_centered=False)
def sinc(x: np.ndarray, n: int, p: SincParams) -> np.ndarray:
    """A sinc(u) with u spanning linspace(-8 pi / f, 8 pi / f, n)."""
    half = 8 * np.pi / p.frequency
    return p.amplitude * np.sinc(-half + x * (2 * half / max(n - 1, 1)))


@dataclass
class TwoPulseParams:
    amplitudes: list[float] = param(default_factory=lambda: [1.0, 2.0])
    width: int = param(10, low=2)
    spacing: int = param(96, low=1, doc="samples between pulse starts")


def _two_pulse_period(p: TwoPulseParams, n: int) -> float:
    return float(p.spacing * len(p.amplitudes))


@register_time_pattern("twopulse-triangles", TwoPulseParams, family="periodic", period=_two_pulse_period,
                       zero_centered=False)
def twopulse_triangles(x: np.ndarray, n: int, p: TwoPulseParams) -> np.ndarray:
    """Triangle pulses of alternating amplitudes, one every ``spacing`` samples (long-range dependency)."""
    pulse_index = np.floor(x / p.spacing)
    offset = x - pulse_index * p.spacing
    half = p.width / 2
    shape = np.where(offset < half, offset / half, np.where(offset < p.width, (p.width - offset) / half, 0.0))
    amplitudes = np.asarray(p.amplitudes, np.float64)
    return amplitudes[pulse_index.astype(np.int64) % len(amplitudes)] * np.clip(shape, 0.0, 1.0)


# --------------------------------------------------------------------------------------------
# stochastic processes


def _psi_weights(ar: list[float], ma: list[float], h: int) -> np.ndarray:
    """MA(infinity) weights psi_0 .. psi_{h-1} of an ARMA process."""
    impulse = np.zeros(h)
    impulse[0] = 1.0
    return sps.lfilter(np.r_[1.0, ma], np.r_[1.0, -np.asarray(ar, np.float64)], impulse)


def _arma_forecast(latent: np.ndarray, state: dict, ar: list[float], ma: list[float], sigma: float, t: int,
                   h: int) -> Forecast:
    """Conditional expectation given the past values and shocks; variance sigma^2 sum psi_j^2."""
    p, q = len(ar), len(ma)
    ys = np.zeros(p + h)
    past = latent[max(0, t - p + 1):t + 1]
    ys[p - len(past):p] = past
    es = np.zeros(q + h)  # future shocks have mean 0
    shocks = state["innovations"][max(0, t - q + 1):t + 1]
    es[q - len(shocks):q] = shocks
    for k in range(h):
        ys[p + k] = (sum(ar[j] * ys[p + k - 1 - j] for j in range(p))
                     + sum(ma[j] * es[q + k - 1 - j] for j in range(q)))
    psi = _psi_weights(ar, ma, h)
    return Forecast(ys[p:], sigma * sigma * np.cumsum(psi * psi))


@dataclass
class ARParams:
    coefficients: list[float] = param(default_factory=lambda: [0.6, 0.2, 0.15], doc="phi_1 .. phi_p")
    sigma: float = param(1.0, low=0.0)

    def __post_init__(self) -> None:
        _check_stationary(self.coefficients, "coefficients")


def _check_stationary(ar: list[float], name: str) -> None:
    if ar and np.any(np.abs(np.roots(np.r_[1.0, -np.asarray(ar, np.float64)])) >= 1.0):
        raise ConfigError(f"{name}: {ar} is not stationary (all roots of z^p - phi_1 z^(p-1) - ... must lie "
                          f"inside the unit circle)")


def _ar_forecast(latent, state, p: ARParams, t, h, ctx) -> Forecast:
    return _arma_forecast(latent, state, list(p.coefficients), [], p.sigma, t, h)


@register_pattern("ar", ARParams, family="stochastic", forecast=_ar_forecast, zero_centered=True)
def ar_process(n: int, p: ARParams, ctx: PatternContext) -> np.ndarray:
    """AR(p): y_t = sum phi_j y_(t-j) + N(0, sigma^2); the first p values are 0."""
    shocks = ctx.rng.normal(0.0, p.sigma, n)
    shocks[:len(p.coefficients)] = 0.0
    ctx.state["innovations"] = shocks
    return sps.lfilter([1.0], np.r_[1.0, -np.asarray(p.coefficients, np.float64)], shocks)


@dataclass
class ARMAParams:
    ar: list[float] = param(default_factory=lambda: [0.5], doc="phi_1 .. phi_p")
    ma: list[float] = param(default_factory=lambda: [0.3], doc="theta_1 .. theta_q")
    sigma: float = param(1.0, low=0.0)

    def __post_init__(self) -> None:
        _check_stationary(self.ar, "ar")


def _arma_pattern_forecast(latent, state, p: ARMAParams, t, h, ctx) -> Forecast:
    return _arma_forecast(latent, state, list(p.ar), list(p.ma), p.sigma, t, h)


@register_pattern("arma", ARMAParams, family="stochastic", forecast=_arma_pattern_forecast, zero_centered=True)
def arma_process(n: int, p: ARMAParams, ctx: PatternContext) -> np.ndarray:
    """ARMA(p, q): lfilter([1, theta], [1, -phi], N(0, sigma^2)) (statsmodels' ArmaProcess)."""
    shocks = ctx.rng.normal(0.0, p.sigma, n)
    ctx.state["innovations"] = shocks
    return sps.lfilter(np.r_[1.0, p.ma], np.r_[1.0, -np.asarray(p.ar, np.float64)], shocks)


@dataclass
class GaussianWalkParams:
    sigma: float = param(1.0, low=0.0)
    start: float = param(0.0)


def _walk_forecast(latent, state, p: GaussianWalkParams, t, h, ctx) -> Forecast:
    return Forecast(np.full(h, latent[t]), p.sigma ** 2 * np.arange(1, h + 1, dtype=np.float64))


@register_pattern("gaussian-random-walk", GaussianWalkParams, family="stochastic", forecast=_walk_forecast)
def gaussian_random_walk(n: int, p: GaussianWalkParams, ctx: PatternContext) -> np.ndarray:
    """cumsum(N(0, sigma^2)) + start (SynTSBench random walk)."""
    return np.cumsum(ctx.rng.normal(0.0, p.sigma, n)) + p.start


@dataclass
class WhiteNoiseParams:
    mean: float = param(0.0)
    std: float = param(1.0, low=0.0)


def _white_forecast(latent, state, p: WhiteNoiseParams, t, h, ctx) -> Forecast:
    return Forecast(np.full(h, p.mean), np.full(h, p.std ** 2))


@register_pattern("white-noise", WhiteNoiseParams, family="stochastic", forecast=_white_forecast)
def white_noise(n: int, p: WhiteNoiseParams, ctx: PatternContext) -> np.ndarray:
    """N(mean, std^2)."""
    return ctx.rng.normal(p.mean, p.std, n)


@dataclass
class GarchParams:
    omega: float = param(0.1, low=1e-12)
    alpha: float = param(0.2, low=0.0, high=1.0)
    beta: float = param(0.7, low=0.0, high=1.0)

    def __post_init__(self) -> None:
        if self.alpha + self.beta >= 1.0:
            raise ConfigError(f"alpha + beta: {self.alpha + self.beta} must be below 1 (allowed range [0, 1))")


def _garch_loop(z: np.ndarray, omega: float, alpha: float, beta: float) -> tuple[np.ndarray, np.ndarray]:
    n = z.shape[0]
    returns = np.empty(n)
    sigma2 = np.empty(n)
    sigma2[0] = omega / (1.0 - alpha - beta)
    returns[0] = math.sqrt(sigma2[0]) * z[0]
    for i in range(1, n):
        sigma2[i] = omega + alpha * returns[i - 1] ** 2 + beta * sigma2[i - 1]
        returns[i] = math.sqrt(sigma2[i]) * z[i]
    return returns, sigma2


try:  # numba compiles the recursion; the plain loop is the fallback
    import numba

    _garch_loop = numba.njit(cache=True)(_garch_loop)
except ImportError:  # pragma: no cover
    pass


def _garch_forecast(latent, state, p: GarchParams, t, h, ctx) -> Forecast:
    unconditional = p.omega / (1.0 - p.alpha - p.beta)
    next_var = p.omega + p.alpha * latent[t] ** 2 + p.beta * state["sigma2"][t]
    persistence = (p.alpha + p.beta) ** np.arange(h)
    return Forecast(np.zeros(h), unconditional + persistence * (next_var - unconditional))


@register_pattern("garch", GarchParams, family="stochastic", forecast=_garch_forecast, zero_centered=True)
def garch(n: int, p: GarchParams, ctx: PatternContext) -> np.ndarray:
    """GARCH(1,1) returns: r_t = sigma_t z_t, sigma_t^2 = omega + alpha r_(t-1)^2 + beta sigma_(t-1)^2."""
    returns, sigma2 = _garch_loop(ctx.rng.standard_normal(n), p.omega, p.alpha, p.beta)
    ctx.state["sigma2"] = sigma2
    return returns


# --------------------------------------------------------------------------------------------
# GutenTAG base oscillations: frequency in cycles per 100 points, t = linspace(0, n/100, n)


def _gt_phase(x: np.ndarray, n: int, frequency: float) -> np.ndarray:
    step = (n / 100) / max(n - 1, 1)
    return x * (2 * np.pi * frequency * step)


def _gt_period(p: Any, n: int) -> float | None:
    if getattr(p, "frequency", 0) <= 0:
        return None
    return (100.0 / p.frequency) * max(n - 1, 1) / n  # linspace(0, n/100, n) has step (n/100)/(n-1)


@dataclass
class GutenTagSineParams:
    frequency: float = param(10.0, low=0.0, doc="cycles per 100 points")
    amplitude: float = param(1.0)
    phase: float = param(0.0, doc="radians")
    freq_mod: float = param(0.0, low=0.0, doc="multiply by sin(freq_mod * phase) when > 0")
    period: float | None = param(None, low=2.0, doc="samples per cycle; overrides frequency")

    def __post_init__(self) -> None:
        if self.period is not None:
            self.frequency = 100.0 / self.period


@register_time_pattern("sine", GutenTagSineParams, family="gutentag", period=_gt_period)
def gt_sine(x: np.ndarray, n: int, p: GutenTagSineParams) -> np.ndarray:
    """GutenTAG sine: A sin(2 pi f t) [* sin(2 pi f t * freq_mod)]."""
    base = _gt_phase(x, n, p.frequency)
    out = np.sin(base + p.phase if p.phase else base)
    if p.amplitude != 1.0:
        out *= p.amplitude
    return out * np.sin(base * p.freq_mod) if p.freq_mod > 0 else out


@register_time_pattern("cosine", GutenTagSineParams, family="gutentag", period=_gt_period)
def gt_cosine(x: np.ndarray, n: int, p: GutenTagSineParams) -> np.ndarray:
    """GutenTAG cosine: A cos(2 pi f t) [* sin(2 pi f t * freq_mod)]."""
    base = _gt_phase(x, n, p.frequency)
    out = p.amplitude * np.cos(base + p.phase)
    return out * np.sin(base * p.freq_mod) if p.freq_mod > 0 else out


@dataclass
class GutenTagSquareParams:
    frequency: float = param(10.0, low=0.0)
    amplitude: float = param(1.0)
    duty: float = param(0.5, low=0.0, high=1.0)
    freq_mod: float = param(0.0, low=0.0)
    period: float | None = param(None, low=2.0, doc="samples per cycle; overrides frequency")

    def __post_init__(self) -> None:
        if self.period is not None:
            self.frequency = 100.0 / self.period


@register_time_pattern("square", GutenTagSquareParams, family="gutentag", period=_gt_period)
def gt_square(x: np.ndarray, n: int, p: GutenTagSquareParams) -> np.ndarray:
    """GutenTAG square: A square(2 pi f t, duty)."""
    base = _gt_phase(x, n, p.frequency)
    out = p.amplitude * sps.square(base, p.duty)
    return out * np.sin(base * p.freq_mod) if p.freq_mod > 0 else out


@dataclass
class GutenTagSawtoothParams:
    frequency: float = param(10.0, low=0.0)
    amplitude: float = param(1.0)
    width: float = param(1.0, low=0.0, high=1.0)
    freq_mod: float = param(0.0, low=0.0)
    period: float | None = param(None, low=2.0, doc="samples per cycle; overrides frequency")

    def __post_init__(self) -> None:
        if self.period is not None:
            self.frequency = 100.0 / self.period


@register_time_pattern("sawtooth", GutenTagSawtoothParams, family="gutentag", period=_gt_period)
def gt_sawtooth(x: np.ndarray, n: int, p: GutenTagSawtoothParams) -> np.ndarray:
    """GutenTAG sawtooth: A sawtooth(2 pi f t, width)."""
    base = _gt_phase(x, n, p.frequency)
    out = p.amplitude * sps.sawtooth(base, p.width)
    return out * np.sin(base * p.freq_mod) if p.freq_mod > 0 else out


@dataclass
class DirichletParams:
    frequency: float = param(10.0, low=0.0)
    amplitude: float = param(1.0)
    periodicity: int = param(6, low=1)


def _dirichlet_period(p: DirichletParams, n: int) -> float | None:
    base = _gt_period(p, n)
    return None if base is None else base * (1 if p.periodicity % 2 else 2)


@register_time_pattern("dirichlet", DirichletParams, family="gutentag", period=_dirichlet_period)
def gt_dirichlet(x: np.ndarray, n: int, p: DirichletParams) -> np.ndarray:
    """GutenTAG dirichlet: A diric(2 pi f t, periodicity)."""
    return p.amplitude * special.diric(_gt_phase(x, n, p.frequency), p.periodicity)


def _daubechies(order: int) -> np.ndarray:
    """Daubechies scaling-filter coefficients (2*order taps) by spectral factorisation."""
    y_poly = [math.comb(order - 1 + k, k) for k in range(order)]  # P(y) = sum C(p-1+k, k) y^k
    y_roots = np.roots(y_poly[::-1])
    z_roots = []
    for y in y_roots:  # y = (2 - z - 1/z) / 4  ->  z^2 - (2 - 4y) z + 1 = 0; keep the root inside
        candidates = np.roots([1.0, -(2.0 - 4.0 * y), 1.0])
        z_roots.append(candidates[np.argmin(np.abs(candidates))])
    h = np.real(np.convolve(np.poly(z_roots), np.poly(-np.ones(order))))
    return h * (math.sqrt(2.0) / h.sum())


_ECG_BEAT: np.ndarray | None = None


def _ecg_beat() -> np.ndarray:
    """One beat as in neurokit2's ``ecg_simulate(method="simple")``: a Daubechies-10 wavelet
    followed by 10 resting samples, scaled to a peak of 1."""
    global _ECG_BEAT
    if _ECG_BEAT is None:
        beat = np.concatenate([_daubechies(10), np.zeros(10)])
        _ECG_BEAT = beat / np.abs(beat).max()
    return _ECG_BEAT


@dataclass
class EcgParams:
    frequency: float = param(1.0, low=1e-6, doc="beats per 100 points (heart rate = 60 f at 100 Hz)")
    amplitude: float = param(1.0)


def _ecg_period(p: EcgParams, n: int) -> float:
    return 100.0 / p.frequency


@register_time_pattern("ecg", EcgParams, family="gutentag", period=_ecg_period)
def gt_ecg(x: np.ndarray, n: int, p: EcgParams) -> np.ndarray:
    """GutenTAG ecg: repeated wavelet heart beats, ``frequency`` beats per 100 points."""
    beat = _ecg_beat()
    position = np.mod(x * p.frequency / 100.0, 1.0) * len(beat)
    return p.amplitude * np.interp(position, np.arange(len(beat) + 1), np.r_[beat, beat[0]])


@dataclass
class PolynomialParams:
    polynomial: list[float] = param(default_factory=lambda: [1.0, 1.0], doc="coefficients c0, c1, ... of x^0, x^1, ...")


@register_time_pattern("polynomial", PolynomialParams, family="gutentag", zero_centered=False)
def gt_polynomial(x: np.ndarray, n: int, p: PolynomialParams) -> np.ndarray:
    """GutenTAG polynomial: numpy Polynomial(coefficients)(x)."""
    return np.polynomial.Polynomial(p.polynomial)(x)


def _smooth(values: np.ndarray, smoothing: float) -> np.ndarray:
    size = int(smoothing * len(values))
    if size < 2:
        return values
    window = np.exp(-0.5 * np.linspace(-1.5, 1.5, size) ** 2)
    return np.convolve(values, window / window.sum(), mode="same")


def _scale_to(values: np.ndarray, amplitude: float) -> np.ndarray:
    low, high = values.min(), values.max()
    if high - low <= 0:
        return np.zeros_like(values)
    return (values - low) / (high - low) * 2 * amplitude - amplitude


@dataclass
class RandomWalkParams:
    amplitude: float = param(1.0)
    smoothing: float = param(0.01, low=0.0, high=1.0, doc="Gaussian window size as a fraction of n")


@register_pattern("random-walk", RandomWalkParams, family="gutentag", zero_centered=True)
def gt_random_walk(n: int, p: RandomWalkParams, ctx: PatternContext) -> np.ndarray:
    """GutenTAG random walk: cumsum of steps in {-1, 0, 1}, Gaussian-smoothed, scaled to [-A, A]."""
    steps = ctx.rng.integers(-1, 2, n).astype(np.float64)
    return _scale_to(_smooth(np.cumsum(steps), p.smoothing), p.amplitude)


@dataclass
class RandomModeJumpParams:
    frequency: float = param(10.0, low=1e-9, doc="number of segments per series (a segment is n // frequency long)")
    channel_diff: float = param(0.0, doc="level grows by this per channel index (GutenTAG default 0)")
    channel_offset: float = param(1.0)
    random_seed: int | None = param(42, doc="shared seed keeps channels correlated; null draws from the sample seed")


@register_pattern("random-mode-jump", RandomModeJumpParams, family="gutentag", zero_centered=True)
def gt_random_mode_jump(n: int, p: RandomModeJumpParams, ctx: PatternContext) -> np.ndarray:
    """GutenTAG random-mode-jump: level +-(channel_diff * channel + channel_offset), sign switching at random."""
    segment = max(1, int(n // p.frequency))
    rng = ctx.rng if p.random_seed is None else np.random.default_rng(p.random_seed)
    signs = rng.choice(np.array([-1.0, 1.0]), -(-n // segment))
    level = p.channel_diff * ctx.channel + p.channel_offset
    return np.repeat(signs, segment)[:n] * level


@dataclass
class CbfParams:
    amplitude: float = param(1.0)
    variance: float = param(0.1, low=0.0, doc="std of the background and of the pattern noise")
    avg_pattern_length: int = param(10, low=1)
    variance_pattern_length: float = param(0.0, low=0.0)
    variance_amplitude: float = param(2.0, low=0.0)


def cbf_values(n: int, p: CbfParams, rng: np.random.Generator) -> np.ndarray:
    out = rng.normal(0.0, p.variance, n) if p.variance > 0 else np.zeros(n)
    i = 0
    while i < n:
        i += int(rng.integers(0, p.avg_pattern_length))
        length = max(1, math.ceil(rng.normal(p.avg_pattern_length, p.variance_pattern_length)))
        stop = min(n, i + length)
        if stop <= i:
            break
        a = rng.normal(p.amplitude, p.variance_amplitude) * (-1.0 if rng.random() < 0.5 else 1.0)
        ramp = np.arange(stop - i, dtype=np.float64)
        shape = int(rng.integers(0, 3))
        values = np.full(stop - i, a) if shape == 0 else (a * ramp / length if shape == 1 else a * (length - ramp) / length)
        out[i:stop] += values + (rng.normal(0.0, p.variance, stop - i) if p.variance > 0 else 0.0)
        i = stop
    return out


@register_pattern("cylinder-bell-funnel", CbfParams, family="gutentag", zero_centered=True)
def gt_cylinder_bell_funnel(n: int, p: CbfParams, ctx: PatternContext) -> np.ndarray:
    """GutenTAG cylinder-bell-funnel: random cylinder / bell / funnel patterns on N(0, variance) background."""
    return cbf_values(n, p, ctx.rng)


@dataclass
class MlsParams:
    amplitude: float = param(1.0)
    complexity: int = param(7, low=2, high=24, doc="number of bits of the sequence")
    smoothing: float = param(0.01, low=0.0, high=1.0)


@register_pattern("mls", MlsParams, family="gutentag", zero_centered=True)
def gt_mls(n: int, p: MlsParams, ctx: PatternContext) -> np.ndarray:
    """GutenTAG mls: maximum-length sequence (+-1), cumulative sum, tiled, smoothed, scaled to [-A, A]."""
    state = ctx.rng.integers(0, 2, p.complexity)
    if not state.any():
        state[0] = 1
    sequence = sps.max_len_seq(p.complexity, state=state)[0].astype(np.float64) * 2 - 1
    walk = np.cumsum(sequence)
    tiled = np.resize(walk, n)
    return _scale_to(_smooth(tiled, p.smoothing), p.amplitude)


# --------------------------------------------------------------------------------------------
# channel operators: formula and lag


_BINARY = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
           ast.Pow: operator.pow}
_FUNCTIONS = {"sin": np.sin, "cos": np.cos, "exp": np.exp, "log": np.log, "abs": np.abs, "sqrt": np.sqrt,
              "tanh": np.tanh}
_AGGREGATIONS = {"sum": np.sum, "mean": np.mean, "min": np.min, "max": np.max, "median": np.median,
                 "std": np.std, "var": np.var}


def parse_expression(expression: str) -> tuple[ast.Expression, list[int]]:
    """Parse a safe arithmetic expression over ``ch0, ch1, ...``; return it and the channels it reads."""
    try:
        tree = ast.parse(expression, mode="eval")
    except SyntaxError as exc:
        raise ConfigError(f"expression: {expression!r} is not a valid expression ({exc.msg})") from None
    channels: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            if node.id in _FUNCTIONS:
                continue
            if not (node.id.startswith("ch") and node.id[2:].isdigit()):
                raise ConfigError(f"expression: unknown name {node.id!r}; use ch0, ch1, ... and "
                                  f"{', '.join(sorted(_FUNCTIONS))}")
            channels.add(int(node.id[2:]))
        elif isinstance(node, ast.Call):
            if not isinstance(node.func, ast.Name) or node.func.id not in _FUNCTIONS or node.keywords:
                raise ConfigError(f"expression: only {', '.join(sorted(_FUNCTIONS))} may be called")
        elif isinstance(node, ast.BinOp) and type(node.op) not in _BINARY:
            raise ConfigError(f"expression: operator {type(node.op).__name__} is not allowed (use + - * / **)")
        elif isinstance(node, ast.Constant) and not isinstance(node.value, (int, float)):
            raise ConfigError(f"expression: constant {node.value!r} is not a number")
        elif not isinstance(node, (ast.Expression, ast.Name, ast.Call, ast.BinOp, ast.UnaryOp, ast.Constant,
                                   ast.Load, ast.USub, ast.UAdd, *_BINARY)):
            raise ConfigError(f"expression: {type(node).__name__} is not allowed")
    return tree, sorted(channels)


def evaluate_expression(tree: ast.Expression, channels: list[np.ndarray]) -> np.ndarray:
    def walk(node: ast.AST) -> Any:
        if isinstance(node, ast.Expression):
            return walk(node.body)
        if isinstance(node, ast.Constant):
            return float(node.value)
        if isinstance(node, ast.Name):
            return channels[int(node.id[2:])]
        if isinstance(node, ast.UnaryOp):
            value = walk(node.operand)
            return -value if isinstance(node.op, ast.USub) else value
        if isinstance(node, ast.BinOp):
            return _BINARY[type(node.op)](walk(node.left), walk(node.right))
        if isinstance(node, ast.Call):
            return _FUNCTIONS[node.func.id](walk(node.args[0]))  # type: ignore[union-attr]
        raise ConfigError(f"expression: {type(node).__name__} is not allowed")  # pragma: no cover

    with np.errstate(all="ignore"):
        return walk(tree)


@dataclass
class FormulaParams:
    expression: str | None = param(None, doc="arithmetic over ch0, ch1, ... e.g. 'ch0 + 0.5 * ch1'")
    aggregation: str | None = param(None, choices=tuple(_AGGREGATIONS) + (None,))
    channels: list[int] = param(default_factory=list, low=0, doc="channels aggregated")

    def __post_init__(self) -> None:
        if (self.expression is None) == (self.aggregation is None):
            raise ConfigError("give exactly one of expression or aggregation")
        if self.expression is not None:
            parse_expression(self.expression)
        elif not self.channels:
            raise ConfigError("channels: an aggregation needs at least one channel")


def _formula_refs(p: FormulaParams) -> list[int]:
    return parse_expression(p.expression)[1] if p.expression is not None else list(p.channels)


def _formula_coefficients(p: FormulaParams, width: int) -> tuple[float, np.ndarray] | None:
    """(intercept, coefficients) when the formula is linear in the channels, else None."""
    if p.aggregation is not None:
        if p.aggregation not in ("sum", "mean"):
            return None
        coef = np.zeros(width)
        coef[p.channels] = 1.0 if p.aggregation == "sum" else 1.0 / len(p.channels)
        return 0.0, coef
    tree = parse_expression(p.expression)[0]  # type: ignore[arg-type]

    def at(values: np.ndarray) -> float:
        return float(evaluate_expression(tree, [np.asarray(v) for v in values]))

    zero = at(np.zeros(width))
    coef = np.array([at(np.eye(width)[i]) - zero for i in range(width)])
    probe = np.random.default_rng(0).normal(size=(3, width)) * 3
    if all(abs(at(v) - (zero + coef @ v)) <= 1e-9 * (1 + abs(at(v))) for v in probe):
        return zero, coef
    return None


def _formula_forecast(latent, state, p: FormulaParams, t, h, ctx) -> Forecast:
    refs = _formula_refs(p)
    width = max(refs) + 1
    linear = _formula_coefficients(p, width)
    if linear is None:
        raise ConfigError("formula: no closed-form optimum for a non-linear formula")
    intercept, coef = linear
    mean = np.full(h, intercept)
    var = np.zeros(h)
    for c in refs:  # the operands are independent by construction
        f = ctx.channel_forecast(c)
        mean += coef[c] * f.mean
        var += coef[c] ** 2 * f.var
    return Forecast(mean, var)


@register_pattern("formula", FormulaParams, family="gutentag", forecast=_formula_forecast, references=_formula_refs)
def formula(n: int, p: FormulaParams, ctx: PatternContext) -> np.ndarray:
    """GutenTAG formula: arithmetic or an aggregation over earlier channels."""
    if p.aggregation is not None:
        stacked = np.stack([ctx.previous[c] for c in p.channels], axis=0)
        return _AGGREGATIONS[p.aggregation](stacked, axis=0)
    tree, _ = parse_expression(p.expression)  # type: ignore[arg-type]
    return np.broadcast_to(evaluate_expression(tree, ctx.previous), (n,)).astype(np.float64)


@dataclass
class LagParams:
    source: int = param(0, low=0, doc="earlier channel that leads")
    lag: int = param(10, low=0)
    scale: float = param(1.0)


def _lag_forecast(latent, state, p: LagParams, t, h, ctx) -> Forecast:
    mean = np.empty(h)
    var = np.zeros(h)
    known = min(h, p.lag)
    mean[:known] = latent[t + 1:t + 1 + known]  # B_(t+k) = A_(t+k-L) is already observed when k <= L
    if h > known:
        f = ctx.channel_forecast(p.source, horizon=h - p.lag)
        mean[known:] = p.scale * f.mean
        var[known:] = p.scale ** 2 * f.var
    return Forecast(mean, var)


@register_pattern("lag", LagParams, family="multivariate", forecast=_lag_forecast,
                  references=lambda p: [p.source])
def lag(n: int, p: LagParams, ctx: PatternContext) -> np.ndarray:
    """B_t = scale * A_(t - lag) for an earlier channel A (zeros for t < lag)."""
    out = np.zeros(n)
    if p.lag < n:
        out[p.lag:] = p.scale * ctx.previous[p.source][:n - p.lag]
    return out


@dataclass
class LagPairParams:
    lag: int = param(24, low=0, doc="SynTSBench uses 5, 10, 24, 48")


def _lag_pair_forecast(latent, state, p: LagPairParams, t, h, ctx) -> Forecast:
    mean = np.zeros((h, 2))
    var = np.ones((h, 2))
    known = min(h, p.lag)
    mean[:known, 1] = latent[t + 1:t + 1 + known, 1]
    var[:known, 1] = 0.0
    return Forecast(mean, var)


@register_pattern("lag-pair", LagPairParams, family="multivariate", outputs=("white-noise", "lagged"),
                  forecast=_lag_pair_forecast, zero_centered=True)
def lag_pair(n: int, p: LagPairParams, ctx: PatternContext) -> np.ndarray:
    """SynTSBench Lag{L}: A ~ N(0, 1); B_t = A_(t-L) (zeros for t < L)."""
    a = ctx.rng.standard_normal(n)
    b = np.zeros(n)
    if p.lag < n:
        b[p.lag:] = a[:n - p.lag]
    return np.stack([a, b], axis=1)


@dataclass
class SinNoiseParams:
    frequency: float = param(0.05, low=0.0, high=0.5)
    snr_db: float = param(0.0, low=-60.0, high=100.0, doc="SNR of the noise channel relative to the sine")


def _sin_noise_forecast(latent, state, p: SinNoiseParams, t, h, ctx) -> Forecast:
    sine = np.sin(2 * np.pi * p.frequency * np.arange(t + 1, t + h + 1))
    noise_var = state["noise_var"]
    return Forecast(np.stack([sine, np.zeros(h), sine], axis=1),
                    np.stack([np.zeros(h), np.full(h, noise_var), np.full(h, noise_var)], axis=1))


@register_pattern("sin-noise-composite", SinNoiseParams, family="multivariate", outputs=("sine", "noise", "sum"),
                  forecast=_sin_noise_forecast, zero_centered=True)
def sin_noise_composite(n: int, p: SinNoiseParams, ctx: PatternContext) -> np.ndarray:
    """SynTSBench SinNoiseComposite: A = sin(2 pi f x), B = white noise at ``snr_db`` to A, C = A + B."""
    a = np.sin(2 * np.pi * p.frequency * _x(n))
    noise_var = float(np.var(a)) / 10 ** (p.snr_db / 10)
    ctx.state["noise_var"] = noise_var
    b = ctx.rng.normal(0.0, math.sqrt(noise_var), n)
    return np.stack([a, b, a + b], axis=1)


# --------------------------------------------------------------------------------------------
# ODE systems (scipy solve_ivp, RK45) with observation noise as a fraction of the range


def _ode(rhs: Callable, y0: list[float], n: int, t_end: float) -> np.ndarray:
    from scipy.integrate import solve_ivp

    t_eval = np.linspace(0.0, t_end, n)
    solution = solve_ivp(rhs, (0.0, t_end), y0, method="RK45", t_eval=t_eval, rtol=1e-6, atol=1e-8)
    if not solution.success:  # pragma: no cover - the default systems are well behaved
        raise ConfigError(f"ODE solver failed: {solution.message}")
    return solution.y.T


def _add_range_noise(values: np.ndarray, fraction: float, ctx: PatternContext) -> np.ndarray:
    ranges = values.max(axis=0) - values.min(axis=0)
    std = fraction * ranges
    ctx.state["mean"] = values
    ctx.state["noise_var"] = std ** 2
    return values + ctx.rng.normal(size=values.shape) * std if fraction > 0 else values


@dataclass
class LotkaVolterraParams:
    alpha: float = param(1.0, low=0.0)
    beta: float = param(0.1, low=0.0)
    delta: float = param(0.075, low=0.0)
    gamma: float = param(1.5, low=0.0)
    prey0: float = param(10.0, low=0.0)
    predator0: float = param(5.0, low=0.0)
    t_end: float = param(60.0, low=1e-6)
    noise_fraction: float = param(0.02, low=0.0, high=1.0, doc="observation noise std as a fraction of the range")


@register_pattern("lotka-volterra", LotkaVolterraParams, family="ode", outputs=("prey", "predator"),
                  forecast=deterministic_forecast)
def lotka_volterra(n: int, p: LotkaVolterraParams, ctx: PatternContext) -> np.ndarray:
    """Predator-prey ODE: x' = alpha x - beta x y, y' = delta x y - gamma y."""
    def rhs(t, z):
        x, y = z
        return [p.alpha * x - p.beta * x * y, p.delta * x * y - p.gamma * y]

    return _add_range_noise(_ode(rhs, [p.prey0, p.predator0], n, p.t_end), p.noise_fraction, ctx)


@dataclass
class SirParams:
    beta: float = param(0.3, low=0.0)
    gamma: float = param(0.1, low=0.0)
    population: float = param(1000.0, low=1.0)
    infected0: float = param(1.0, low=0.0)
    t_end: float = param(60.0, low=1e-6)
    noise_fraction: float = param(0.01, low=0.0, high=1.0)


@register_pattern("sir", SirParams, family="ode", outputs=("susceptible", "infected", "recovered"),
                  forecast=deterministic_forecast)
def sir(n: int, p: SirParams, ctx: PatternContext) -> np.ndarray:
    """SIR epidemic ODE: S' = -beta S I / N, I' = beta S I / N - gamma I, R' = gamma I."""
    def rhs(t, z):
        s, i, r = z
        infection = p.beta * s * i / p.population
        return [-infection, infection - p.gamma * i, p.gamma * i]

    y0 = [p.population - p.infected0, p.infected0, 0.0]
    return _add_range_noise(_ode(rhs, y0, n, p.t_end), p.noise_fraction, ctx)


# --------------------------------------------------------------------------------------------
# causal sets: linked channels with lagged effects; a warm-up is simulated and discarded


@dataclass
class CausalParams:
    warmup: int = param(200, low=0, doc="steps simulated and discarded first")
    noise: float = param(1.0, low=0.0, doc="scale of the innovations")


def _lagged(values: np.ndarray, lag: int) -> np.ndarray:
    out = np.empty_like(values)
    out[:lag] = values[0]
    out[lag:] = values[:len(values) - lag]
    return out


@register_pattern("weather-sales", CausalParams, family="causal", outputs=("temperature", "rain", "sales"))
def weather_sales(n: int, p: CausalParams, ctx: PatternContext) -> np.ndarray:
    """Temperature (yearly cycle + AR noise) and rain drive sales with a 2-step lag."""
    m = n + p.warmup
    rng = ctx.rng
    x = _x(m)
    temperature = 15 + 10 * np.sin(2 * np.pi * x / 365) + sps.lfilter([1.0], [1.0, -0.7], rng.normal(0, p.noise, m))
    rain = np.where(rng.random(m) < 0.3, rng.gamma(2.0, 3.0, m), 0.0)
    sales = 100 + 2.5 * _lagged(temperature, 2) - 1.5 * rain + rng.normal(0, 3 * p.noise, m)
    return np.stack([temperature, rain, sales], axis=1)[p.warmup:]


@register_pattern("ad-sales", CausalParams, family="causal", outputs=("ad_spend", "sales"))
def ad_sales(n: int, p: CausalParams, ctx: PatternContext) -> np.ndarray:
    """Ad spend drives sales through a lagged Gaussian kernel peaking at lag 10, with sqrt saturation."""
    m = n + p.warmup
    rng = ctx.rng
    spend = np.where(rng.random(m) < 0.2, rng.lognormal(3.0, 0.5, m), rng.lognormal(1.0, 0.3, m))
    lags = np.arange(31)
    kernel = np.exp(-0.5 * ((lags - 10) / 3.0) ** 2)
    effect = np.convolve(np.sqrt(spend), kernel / kernel.sum(), mode="full")[:m]
    sales = 50 + 8 * effect + rng.normal(0, 2 * p.noise, m)
    return np.stack([spend, sales], axis=1)[p.warmup:]


@register_pattern("macro-economy", CausalParams, family="causal", outputs=("policy_rate", "inflation", "growth"))
def macro_economy(n: int, p: CausalParams, ctx: PatternContext) -> np.ndarray:
    """Policy-rate jumps every 60 steps; inflation and growth respond with lags 12 and 6."""
    m = n + p.warmup
    rng = ctx.rng
    jumps = rng.choice([-0.5, -0.25, 0.0, 0.25, 0.5], -(-m // 60))
    rate = np.clip(2.0 + np.cumsum(np.repeat(jumps, 60)[:m]), 0.0, None)
    inflation = sps.lfilter([1.0], [1.0, -0.9], 0.2 + 0.05 * (2.0 - _lagged(rate, 12))
                            + rng.normal(0, 0.05 * p.noise, m))
    growth = sps.lfilter([1.0], [1.0, -0.8], 0.4 + 0.1 * (2.0 - _lagged(rate, 6)) + rng.normal(0, 0.1 * p.noise, m))
    return np.stack([rate, inflation, growth], axis=1)[p.warmup:]


@register_pattern("supply-demand-price", CausalParams, family="causal", outputs=("supply", "demand", "price"))
def supply_demand_price(n: int, p: CausalParams, ctx: PatternContext) -> np.ndarray:
    """Cobweb market: supply follows last price, price moves with excess demand."""
    m = n + p.warmup
    rng = ctx.rng
    demand = 100 + 10 * np.sin(2 * np.pi * _x(m) / 52) + rng.normal(0, p.noise, m)
    supply = np.empty(m)
    price = np.empty(m)
    price[0], supply[0] = 10.0, 100.0
    shocks = rng.normal(0, p.noise, (m, 2))
    for i in range(1, m):
        supply[i] = 50 + 5 * price[i - 1] + shocks[i, 0]
        price[i] = max(0.1, price[i - 1] + 0.02 * (demand[i] - supply[i]) + 0.1 * shocks[i, 1])
    return np.stack([supply, demand, price], axis=1)[p.warmup:]


@dataclass
class InterventionParams(CausalParams):
    effect: float = param(5.0, doc="level change of the treated series")
    at: float = param(1 / 3, low=0.0, high=1.0, doc="intervention time as a fraction of n")


@register_pattern("intervention-effect", InterventionParams, family="causal", outputs=("control", "treated"))
def intervention_effect(n: int, p: InterventionParams, ctx: PatternContext) -> np.ndarray:
    """Control and treated share an AR(1) factor; the treated series gains ``effect`` after the intervention."""
    m = n + p.warmup
    rng = ctx.rng
    factor = sps.lfilter([1.0], [1.0, -0.8], rng.normal(0, p.noise, m))
    control = 20 + factor + rng.normal(0, 0.3 * p.noise, m)
    treated = 22 + factor + rng.normal(0, 0.3 * p.noise, m)
    start = p.warmup + int(p.at * n)
    treated[start:] += p.effect * (1 - np.exp(-np.arange(m - start) / 10.0))
    return np.stack([control, treated], axis=1)[p.warmup:]


# --------------------------------------------------------------------------------------------
# composite real-world-like series (SynTSBench complex univariate sets)


@dataclass
class CompositeParams:
    noise: float = param(1.0, low=0.0, doc="scale of the random components")


@register_pattern("stock-price", CompositeParams, family="composite")
def stock_price(n: int, p: CompositeParams, ctx: PatternContext) -> np.ndarray:
    """Exponential trend, two cycles, weekly sine, random walk x0.8, GARCH x8; floored at 10."""
    x = _x(n)
    rng = ctx.rng
    _, sigma2 = _garch_loop(rng.standard_normal(n), 0.1, 0.2, 0.7)
    returns = np.sqrt(sigma2) * rng.standard_normal(n)
    value = (50 * np.exp(0.0002 * x) + 5 * np.sin(2 * np.pi * x / 500) + 3 * np.sin(2 * np.pi * x / 120)
             + np.sin(2 * np.pi * x / 5) + p.noise * (0.8 * np.cumsum(rng.normal(0, 1, n)) + 8 * returns))
    return np.maximum(value, 10.0)


@register_pattern("electricity-consumption", CompositeParams, family="composite")
def electricity_consumption(n: int, p: CompositeParams, ctx: PatternContext) -> np.ndarray:
    """Daily double sine, weekend -15, yearly sine, linear trend, noise sigma 5, monthly spikes."""
    x = _x(n)
    daily = 20 * np.sin(2 * np.pi * x / 24) + 10 * np.sin(4 * np.pi * x / 24)
    weekend = np.where((x // 24) % 7 >= 5, -15.0, 0.0)
    spikes = np.where(x % (24 * 30) < 3, 25.0, 0.0)
    return (200 + daily + weekend + 30 * np.sin(2 * np.pi * x / (24 * 365)) + 0.002 * x + spikes
            + ctx.rng.normal(0, 5 * p.noise, n))


@dataclass
class IndustrialParams(CompositeParams):
    failure: bool = param(False, doc="degradation and failure from failure_at on")
    failure_at: float = param(0.5, low=0.0, high=1.0, doc="fraction of n (SynTSBench: 2500 of 5000)")


@register_pattern("industrial-sensor", IndustrialParams, family="composite")
def industrial_sensor(n: int, p: IndustrialParams, ctx: PatternContext) -> np.ndarray:
    """Machine sensor: cycles and noise; with ``failure``, quadratic degradation, growing noise,
    pre-failure spikes and an exp-sine failure pattern."""
    x = _x(n)
    rng = ctx.rng
    value = 50 + 3 * np.sin(2 * np.pi * x / 100) + rng.normal(0, 0.5 * p.noise, n)
    if p.failure:
        start = int(p.failure_at * n)
        decay_start = max(0, start - n // 5)
        u = np.clip((x - decay_start) / max(1, start - decay_start), 0, None)
        value += np.where(x >= decay_start, 4 * u ** 2, 0.0)
        value += np.where(x >= decay_start, rng.normal(0, 1, n) * 0.5 * u * p.noise, 0.0)
        value += np.where((x >= decay_start) & (x < start) & (rng.random(n) < 0.01), 8.0, 0.0)
        value += np.where(x >= start, 5 * np.exp(np.sin(2 * np.pi * x / 20)), 0.0)
    return value


@register_pattern("network-traffic", CompositeParams, family="composite")
def network_traffic(n: int, p: CompositeParams, ctx: PatternContext) -> np.ndarray:
    """Daily and weekly cycles, growth, heavy-tailed bursts."""
    x = _x(n)
    bursts = np.where(ctx.rng.random(n) < 0.01, ctx.rng.pareto(2.5, n) * 50, 0.0)
    return (100 + 40 * np.sin(2 * np.pi * x / 24) + 15 * np.sin(2 * np.pi * x / 168) + 0.01 * x
            + p.noise * (bursts + ctx.rng.normal(0, 5, n)))


@register_pattern("retail-sales", CompositeParams, family="composite")
def retail_sales(n: int, p: CompositeParams, ctx: PatternContext) -> np.ndarray:
    """Weekly pattern, yearly season with a holiday peak, trend, Poisson demand."""
    x = _x(n)
    weekly = 1 + 0.3 * ((x % 7) >= 5)
    season = 1 + 0.2 * np.sin(2 * np.pi * x / 365) + 0.8 * np.exp(-0.5 * (((x % 365) - 355) / 7.0) ** 2)
    rate = (50 + 0.01 * x) * weekly * season
    return ctx.rng.poisson(rate).astype(np.float64) * p.noise + rate * (1 - p.noise)


@register_pattern("economic-indicator", CompositeParams, family="composite")
def economic_indicator(n: int, p: CompositeParams, ctx: PatternContext) -> np.ndarray:
    """Slow growth, a business cycle, AR(2) fluctuations and occasional recessions."""
    x = _x(n)
    ar2 = sps.lfilter([1.0], [1.0, -1.2, 0.3], ctx.rng.normal(0, 0.2 * p.noise, n))
    recessions = np.where(np.sin(2 * np.pi * x / 1000) < -0.95, -3.0, 0.0)
    return 100 + 0.02 * x + 4 * np.sin(2 * np.pi * x / 400) + ar2 + recessions


@register_pattern("iot-sensor-battery", CompositeParams, family="composite")
def iot_sensor_battery(n: int, p: CompositeParams, ctx: PatternContext) -> np.ndarray:
    """Battery voltage: discharge saw-tooth with recharges, temperature ripple and noise."""
    x = _x(n)
    cycle = max(2, n // 5)
    charge = 1 - (x % cycle) / cycle
    return 3.0 + 1.2 * charge ** 0.7 + 0.05 * np.sin(2 * np.pi * x / 24) + ctx.rng.normal(0, 0.01 * p.noise, n)


@register_pattern("website-traffic", CompositeParams, family="composite")
def website_traffic(n: int, p: CompositeParams, ctx: PatternContext) -> np.ndarray:
    """Visits: weekly and daily cycles, exponential growth, viral spikes with decay."""
    x = _x(n)
    spikes = np.zeros(n)
    for start in np.flatnonzero(ctx.rng.random(n) < 0.002):
        spikes[start:] += 200 * np.exp(-(x[start:] - start) / 20.0)
    return (300 * np.exp(0.0001 * x) * (1 + 0.3 * np.sin(2 * np.pi * x / 24)) * (1 - 0.2 * ((x // 24) % 7 >= 5))
            + spikes + ctx.rng.normal(0, 10 * p.noise, n))


@register_pattern("temperature-sensor", CompositeParams, family="composite")
def temperature_sensor(n: int, p: CompositeParams, ctx: PatternContext) -> np.ndarray:
    """Daily and yearly temperature cycles with AR(1) weather noise."""
    x = _x(n)
    weather = sps.lfilter([1.0], [1.0, -0.95], ctx.rng.normal(0, 0.3 * p.noise, n))
    return 12 + 8 * np.sin(2 * np.pi * (x - 6) / 24) + 10 * np.sin(2 * np.pi * x / (24 * 365)) + weather
