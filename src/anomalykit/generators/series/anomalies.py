"""Anomaly kinds: every GutenTAG kind, SynTSBench's point spikes and pulses, level shifts and
missing values.

An anomaly works on one channel's parts (``base`` pattern, ``trend`` incl. offset, ``noise``,
``missing`` mask) inside a window ``[start, end)``. Magnitudes are in units of the channel's
``scale`` (half its range before anomalies) around its ``center`` (mid-range), so the same
config fits a generated sine and a real sensor series alike. For SynTSBench's ``point`` and
``pulse`` the amplitude is relative to the full range, as in SynTSBench.

Each kind has a typed parameter dataclass (validated ranges) and an ``apply`` function that
returns the values it drew (sign, amplitude ...) for the anomaly's record.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from ...errors import ConfigError
from ..base import param
from ._params import build
from .patterns import PatternKind, cbf_values, get_pattern

__all__ = ["ChannelParts", "AnomalyKind", "ANOMALIES", "get_anomaly", "list_anomalies"]


@dataclass
class ChannelParts:
    """The additive parts of one channel; ``values()`` is ``base + trend + noise`` (NaN where missing)."""

    base: np.ndarray
    trend: np.ndarray
    noise: np.ndarray
    missing: np.ndarray
    scale: float
    center: float
    injected: bool = False
    pattern: PatternKind | None = None
    params: Any = None
    output: int = 0
    has_missing: bool = False

    @property
    def n(self) -> int:
        return int(self.base.shape[0])

    @property
    def zero_centered(self) -> bool:
        return not self.injected and self.pattern is not None and self.pattern.zero_centered

    def window(self, start: int, end: int) -> np.ndarray:
        values = self.base[start:end] + self.trend[start:end] + self.noise[start:end]
        if self.has_missing:
            values[self.missing[start:end]] = np.nan
        return values

    def values(self) -> np.ndarray:
        return self.window(0, self.n)


@dataclass(frozen=True)
class AnomalyKind:
    name: str
    params: type
    apply: Callable[..., dict[str, Any]]
    doc: str = ""
    default_length: int | None = 100       # None: until the end of the series
    fixed_length: int | None = None         # e.g. 1 for extremum and point
    period_aware: bool = False              # start snapped to a period boundary on periodic patterns
    creeping: bool = False

    def parse(self, values: Any, path: str) -> Any:
        return build(self.params, values, path)


ANOMALIES: dict[str, AnomalyKind] = {}


def register_anomaly(name: str, params: type, **options: Any):
    def decorator(fn: Callable) -> Callable:
        ANOMALIES[name] = AnomalyKind(name, params, fn, (fn.__doc__ or "").strip().split("\n")[0], **options)
        return fn

    return decorator


def get_anomaly(name: Any, path: str = "kind") -> AnomalyKind:
    key = str(name).strip().lower().replace("_", "-")
    if key not in ANOMALIES:
        raise ConfigError(f"{path}: unknown anomaly kind {name!r}; known: {', '.join(sorted(ANOMALIES))}")
    return ANOMALIES[key]


def list_anomalies() -> list[str]:
    return sorted(ANOMALIES)


def _creep(length: int, creeping_length: int) -> np.ndarray:
    """1 everywhere, except a linear ramp-in over the first ``creeping_length`` steps (never 0)."""
    ramp = np.ones(length)
    c = min(creeping_length, length)
    if c > 0:
        ramp[:c] = np.arange(1, c + 1) / c
    return ramp


def _interp_at(values: np.ndarray, positions: np.ndarray) -> np.ndarray:
    positions = np.clip(positions, 0, len(values) - 1)
    return np.interp(positions, np.arange(len(values), dtype=np.float64), values)


# --------------------------------------------------------------------------------------------
# GutenTAG kinds


@dataclass
class AmplitudeParams:
    amplitude_factor: float = param(2.0, low=0.0, doc="peak multiplier of the deviation from the center")


def _bell_envelope(length: int, creeping_length: int) -> np.ndarray:
    """0 .. 1 .. 0: half-Gaussian ramps over 20 % at each end (or a linear creep-in), plateau 1."""
    ramp = max(1, int(0.2 * length))
    grid = np.arange(ramp) * (3.0 / (ramp - 1)) - 3.0 if ramp > 1 else np.zeros(1)  # linspace(-3, 0, ramp)
    half = np.exp(-0.5 * (grid / 1.05) ** 2)
    half = (half - half.min()) / (half.max() - half.min()) if ramp > 1 else np.ones(1)
    head = np.arange(1, creeping_length + 1) / creeping_length if creeping_length > 0 else half
    middle = max(0, length - len(head) - ramp)
    envelope = np.concatenate([head, np.ones(middle), half[::-1]])
    if len(envelope) > length:  # too short for both ramps: keep the symmetric middle
        cut = (len(envelope) - length) // 2
        envelope = envelope[cut:cut + length]
    return envelope


@register_anomaly("amplitude", AmplitudeParams, creeping=True)
def amplitude(parts: ChannelParts, start: int, end: int, p: AmplitudeParams, rng: np.random.Generator,
              creeping_length: int) -> dict[str, Any]:
    """Multiply the deviation from the center by a bell-shaped envelope rising to ``amplitude_factor``."""
    envelope = 1.0 + (p.amplitude_factor - 1.0) * _bell_envelope(end - start, creeping_length)
    segment = parts.base[start:end]
    center = 0.0 if parts.zero_centered else float(np.nanmean(segment))
    parts.base[start:end] = center + (segment - center) * envelope
    return {"center": center}


@dataclass
class ExtremumParams:
    min: bool = param(False, doc="a dip instead of a peak")
    local: bool = param(False, doc="relative to the local context instead of the global range")
    context_window: int = param(100, low=1)


@register_anomaly("extremum", ExtremumParams, default_length=1, fixed_length=1)
def extremum(parts: ChannelParts, start: int, end: int, p: ExtremumParams, rng: np.random.Generator,
             creeping_length: int) -> dict[str, Any]:
    """One point set to value +- e: e = U * local range, or (U + 0.5) * global range."""
    if p.local:
        lo, hi = max(0, start - p.context_window // 2), min(parts.n, start + p.context_window // 2 + 1)
        context = parts.window(lo, hi)
        magnitude = float(rng.uniform() * (np.nanmax(context) - np.nanmin(context)))
    else:
        magnitude = float((rng.uniform() + 0.5) * 2 * parts.scale)
    noise_peak = float(np.max(np.abs(parts.noise))) if parts.noise.size else 0.0
    if magnitude < 2 * noise_peak:
        magnitude += 2 * noise_peak
    if magnitude == 0.0:
        magnitude = parts.scale
    sign = -1.0 if p.min else 1.0
    parts.base[start] += sign * magnitude
    return {"magnitude": magnitude * sign}


@dataclass
class FrequencyParams:
    frequency_factor: float = param(2.0, low=1e-6, high=1e3, doc="speed-up (>1) or slow-down (<1) of time")


@register_anomaly("frequency", FrequencyParams, period_aware=True)
def frequency(parts: ChannelParts, start: int, end: int, p: FrequencyParams, rng: np.random.Generator,
              creeping_length: int) -> dict[str, Any]:
    """The pattern runs ``frequency_factor`` times faster inside the window (time re-scaled from its start)."""
    positions = start + np.arange(end - start, dtype=np.float64) * p.frequency_factor
    if not parts.injected and parts.pattern is not None and parts.pattern.at is not None:
        parts.base[start:end] = parts.pattern.at(positions, parts.n, parts.params)
        return {"method": "regenerated"}
    parts.base[start:end] = _interp_at(parts.base.copy(), positions)
    return {"method": "resampled"}


@dataclass
class MeanParams:
    offset: float = param(1.0, doc="added level, in units of the channel scale")


@register_anomaly("mean", MeanParams, creeping=True)
def mean(parts: ChannelParts, start: int, end: int, p: MeanParams, rng: np.random.Generator,
         creeping_length: int) -> dict[str, Any]:
    """Add ``offset * scale`` (linearly creeping in over ``creeping_length``)."""
    parts.base[start:end] += p.offset * parts.scale * _creep(end - start, creeping_length)
    return {"absolute_offset": p.offset * parts.scale}


@dataclass
class ModeCorrelationParams:
    pass


@register_anomaly("mode-correlation", ModeCorrelationParams, period_aware=True)
def mode_correlation(parts: ChannelParts, start: int, end: int, p: ModeCorrelationParams,
                     rng: np.random.Generator, creeping_length: int) -> dict[str, Any]:
    """Invert the segment around the center (breaks the correlation of random-mode-jump channels)."""
    center = 0.0 if parts.zero_centered else float(np.nanmax(parts.base) + np.nanmin(parts.base)) / 2
    parts.base[start:end] = 2 * center - parts.base[start:end]
    return {"center": center}


@dataclass
class PatternParams:
    sinusoid_k: float = param(10.0, low=1e-6, doc="arctan distortion strength (sines, generic series)")
    square_duty: float = param(0.1, low=0.0, high=1.0)
    sawtooth_width: float = param(0.5, low=0.0, high=1.0)
    cbf_pattern_factor: float = param(2.0, low=1e-6, doc="scales the average pattern length of CBF")


def _arctan_distort(segment: np.ndarray, k: float) -> np.ndarray:
    lo, hi = np.nanmin(segment), np.nanmax(segment)
    if not hi > lo:
        return segment
    mid, half = (hi + lo) / 2, (hi - lo) / 2
    return mid + half * np.arctan(k * (segment - mid) / half) / np.arctan(k)


@register_anomaly("pattern", PatternParams, period_aware=True)
def pattern(parts: ChannelParts, start: int, end: int, p: PatternParams, rng: np.random.Generator,
            creeping_length: int) -> dict[str, Any]:
    """Change the shape: new duty (square) or width (sawtooth), reversed beats (ecg, mls), longer CBF
    patterns, otherwise an arctan distortion rescaled to the segment's min/max."""
    from scipy import signal as sps

    kind = None if parts.injected or parts.pattern is None else parts.pattern.name
    x = np.arange(start, end, dtype=np.float64)
    segment = parts.base[start:end]
    if kind == "square":
        parts.base[start:end] = parts.pattern.at(x, parts.n, dataclasses.replace(parts.params, duty=p.square_duty))
        return {"method": "duty"}
    if kind == "sawtooth":
        parts.base[start:end] = parts.pattern.at(x, parts.n, dataclasses.replace(parts.params, width=p.sawtooth_width))
        return {"method": "width"}
    if kind in ("square-wave", "sawtooth-wave"):
        q = parts.params
        phase = 2 * np.pi * q.frequency * x + q.phase
        parts.base[start:end] = q.amplitude * (sps.square(phase, p.square_duty) if kind == "square-wave"
                                               else sps.sawtooth(phase, p.sawtooth_width))
        return {"method": "duty" if kind == "square-wave" else "width"}
    if kind == "ecg":
        parts.base[start:end] = segment[::-1]
        return {"method": "reversed"}
    if kind == "mls":
        reversed_ = segment[::-1]
        parts.base[start:end] = reversed_ + np.linspace(segment[0] - reversed_[0], segment[-1] - reversed_[-1],
                                                        len(segment))
        return {"method": "reversed"}
    if kind == "cylinder-bell-funnel":
        q = dataclasses.replace(parts.params, avg_pattern_length=max(1, round(parts.params.avg_pattern_length
                                                                              * p.cbf_pattern_factor)))
        parts.base[start:end] = cbf_values(end - start, q, rng)
        return {"method": "cbf-regenerated"}
    parts.base[start:end] = _arctan_distort(segment, p.sinusoid_k)
    return {"method": "arctan"}


@dataclass
class PatternShiftParams:
    shift_by: int = param(5, doc="steps the middle of the window moves (positive: later)")
    transition_window: int = param(10, low=1, doc="steps over which the shift builds up and decays")

    def __post_init__(self) -> None:
        if abs(self.shift_by) > self.transition_window:
            raise ConfigError(f"shift_by: {self.shift_by} is outside the allowed range "
                              f"[-{self.transition_window}, {self.transition_window}] (|shift_by| <= transition_window)")


@register_anomaly("pattern-shift", PatternShiftParams, period_aware=True)
def pattern_shift(parts: ChannelParts, start: int, end: int, p: PatternShiftParams, rng: np.random.Generator,
                  creeping_length: int) -> dict[str, Any]:
    """Time warp: the window's content is delayed by ``shift_by`` steps, squeezed or stretched in the
    transition windows at both ends."""
    length = end - start
    i = np.arange(length, dtype=np.float64)
    ramp = np.clip(np.minimum(i / p.transition_window, (length - 1 - i) / p.transition_window), 0.0, 1.0)
    parts.base[start:end] = _interp_at(parts.base.copy(), start + i - p.shift_by * ramp)
    return {}


@dataclass
class PlatformParams:
    value: float = param(0.0, doc="constant level, in scale units around the channel center")


@register_anomaly("platform", PlatformParams)
def platform(parts: ChannelParts, start: int, end: int, p: PlatformParams, rng: np.random.Generator,
             creeping_length: int) -> dict[str, Any]:
    """A constant level (the trend is switched off inside); noise stays."""
    level = parts.center + p.value * parts.scale
    parts.base[start:end] = level
    parts.trend[start:end] = 0.0
    return {"level": level}


@dataclass
class TrendParams:
    magnitude: float = param(1.0, doc="value reached at the end of the window, in scale units")
    pattern: dict | None = param(None, doc="shape as a pattern (e.g. {kind: quadratic-function}); default linear")
    persist: bool = param(False, doc="keep the end value after the window (labelled to the end of the series)")

    def __post_init__(self) -> None:
        if self.pattern is not None:
            pattern_kind = get_pattern(self.pattern.get("kind", ""), "pattern.kind")
            if pattern_kind.num_outputs != 1:
                raise ConfigError(f"pattern.kind: {pattern_kind.name!r} has {pattern_kind.num_outputs} outputs; "
                                  f"a trend needs one")
            pattern_kind.parse(self.pattern, "pattern")


@register_anomaly("trend", TrendParams)
def trend(parts: ChannelParts, start: int, end: int, p: TrendParams, rng: np.random.Generator,
          creeping_length: int) -> dict[str, Any]:
    """Add a trend (linear or a pattern's shape) rising to ``magnitude * scale`` with a 20 % ramp-in."""
    from .patterns import PatternContext

    length = end - start
    if p.pattern is None:
        shape = np.arange(1, length + 1, dtype=np.float64)
    else:
        kind = get_pattern(p.pattern["kind"])
        values = np.asarray(kind.fn(length + 1, kind.parse(p.pattern, "pattern"), PatternContext(length + 1, rng)),
                            np.float64)
        shape = values[1:] - values[0]
    peak = np.max(np.abs(shape))
    shape = shape / peak if peak > 0 else np.linspace(1.0 / length, 1.0, length)
    ramp = max(1, int(0.2 * length))
    shape[:ramp] *= np.arange(1, ramp + 1) / ramp
    added = p.magnitude * parts.scale * shape
    parts.base[start:end] += added
    if p.persist and end < parts.n:
        parts.base[end:] += added[-1]
        return {"end_value": float(added[-1]), "extends_to": parts.n}
    return {"end_value": float(added[-1])}


@dataclass
class VarianceParams:
    variance: float = param(0.5, low=0.0, doc="std of the noise inside, in scale units")


@register_anomaly("variance", VarianceParams, creeping=True)
def variance(parts: ChannelParts, start: int, end: int, p: VarianceParams, rng: np.random.Generator,
             creeping_length: int) -> dict[str, Any]:
    """Replace the noise inside by N(0, (variance * scale)^2) (added on top for a given series)."""
    noise = rng.normal(0.0, 1.0, end - start) * (p.variance * parts.scale) * _creep(end - start, creeping_length)
    if parts.injected:
        parts.base[start:end] += noise
    else:
        parts.noise[start:end] = noise
    return {"std": p.variance * parts.scale}


# --------------------------------------------------------------------------------------------
# SynTSBench point spikes and pulses; level shift; missing values


@dataclass
class PointParams:
    ratio: float | None = param(None, low=0.0, high=1.0,
                                doc="SynTSBench: count = floor(region steps * ratio); overrides count")
    amplitude_low: float = param(1.0, low=0.0, doc="amplitude ~ U(low, high) * range")
    amplitude_high: float = param(2.0, low=0.0)
    range_adaptive: bool = param(True, doc="x0.2 when the range exceeds 100, x2 below 4 (SynTSBench)")

    def __post_init__(self) -> None:
        if self.amplitude_high < self.amplitude_low:
            raise ConfigError(f"amplitude_high: {self.amplitude_high} is below amplitude_low {self.amplitude_low}")


def _range_factor(value_range: float, large: float, enabled: bool) -> float:
    if not enabled:
        return 1.0
    if value_range > 100:
        return large
    if value_range < 4:
        return 2.0
    return 1.0


@register_anomaly("point", PointParams, default_length=1, fixed_length=1)
def point(parts: ChannelParts, start: int, end: int, p: PointParams, rng: np.random.Generator,
          creeping_length: int) -> dict[str, Any]:
    """SynTSBench point spike: +-U(low, high) * range, random sign."""
    value_range = 2 * parts.scale
    factor = _range_factor(value_range, 0.2, p.range_adaptive)
    amplitude_ = rng.uniform(p.amplitude_low * factor, p.amplitude_high * factor) * value_range
    signed = float(amplitude_ * (1.0 if rng.random() < 0.5 else -1.0))
    parts.base[start] += signed if signed != 0 else parts.scale
    return {"amplitude": signed}


@dataclass
class PulseParams:
    width_low: int = param(10, low=1, doc="width ~ U_int[width_low, width_high)")
    width_high: int = param(30, low=2)
    amplitude_low: float = param(1.0, low=0.0)
    amplitude_high: float = param(2.0, low=0.0)
    range_adaptive: bool = param(True, doc="x0.8 when the range exceeds 100, x2 below 4 (SynTSBench)")
    min_spacing: int | None = param(None, low=0, doc="between pulse starts; default max(30, region / (2 count))")

    def __post_init__(self) -> None:
        if self.width_high <= self.width_low:
            raise ConfigError(f"width_high: {self.width_high} must be above width_low {self.width_low}")
        if self.amplitude_high < self.amplitude_low:
            raise ConfigError(f"amplitude_high: {self.amplitude_high} is below amplitude_low {self.amplitude_low}")


@register_anomaly("pulse", PulseParams)
def pulse(parts: ChannelParts, start: int, end: int, p: PulseParams, rng: np.random.Generator,
          creeping_length: int) -> dict[str, Any]:
    """SynTSBench pulse: a constant offset +-U(low, high) * range over the window."""
    value_range = 2 * parts.scale
    factor = _range_factor(value_range, 0.8, p.range_adaptive)
    amplitude_ = rng.uniform(p.amplitude_low * factor, p.amplitude_high * factor) * value_range
    signed = float(amplitude_ * (1.0 if rng.random() < 0.5 else -1.0))
    parts.base[start:end] += signed if signed != 0 else parts.scale
    return {"amplitude": signed}


@dataclass
class LevelShiftParams:
    offset: float = param(1.0, doc="level change in scale units")


@register_anomaly("level-shift", LevelShiftParams, default_length=None, creeping=True)
def level_shift(parts: ChannelParts, start: int, end: int, p: LevelShiftParams, rng: np.random.Generator,
                creeping_length: int) -> dict[str, Any]:
    """The level moves by ``offset * scale`` from the start on (to the end of the series unless a length is set)."""
    parts.base[start:end] += p.offset * parts.scale * _creep(end - start, creeping_length)
    return {"absolute_offset": p.offset * parts.scale}


@dataclass
class MissingParams:
    mechanism: str = param("mcar", choices=("mcar", "mar"),
                           doc="mcar: uniform positions; mar: more likely where the driver channel is high")
    driver: int | None = param(None, low=0, doc="channel whose value drives MAR (default: the channel itself)")


@register_anomaly("missing", MissingParams, default_length=10)
def missing(parts: ChannelParts, start: int, end: int, p: MissingParams, rng: np.random.Generator,
            creeping_length: int) -> dict[str, Any]:
    """A block of missing values (NaN)."""
    parts.missing[start:end] = True
    parts.has_missing = True
    return {}
