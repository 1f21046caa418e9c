"""Simulation of one series: patterns, noise, then anomalies placed and labelled.

Patterns and noise draw from the sample's random generator, anomalies from a second stream
seeded from it, so the clean series of a config does not depend on its anomalies (removing the
anomalies gives exactly the clean twin) and anomaly placement does not move when the noise or
the patterns change. Every anomaly's window is tightened to the steps it really changed, so
the labels cover exactly the changed steps (interior steps that happen to keep their value, such
as a sine's zero crossing under an amplitude change, stay inside the labelled window).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ...errors import ConfigError
from ...schema import Sample, to_jsonable
from .anomalies import ChannelParts
from .config import AnomalySpec, NoiseSpec, ResolvedAnomaly, SeriesConfig, resolve_anomalies
from .patterns import PatternContext

__all__ = ["Simulation", "simulate", "inject"]


@dataclass
class Simulation:
    """Everything one run produced; ``values``/``clean`` are T x C float32, ``labels`` has T steps."""

    values: np.ndarray
    clean: np.ndarray
    labels: np.ndarray
    channel_labels: np.ndarray
    records: list[dict[str, Any]]
    channel_names: list[str]
    parts: list[ChannelParts]
    channel_info: list[dict[str, Any]]
    latent: list[np.ndarray] = field(default_factory=list)        # pattern outputs (noise-free, no trend)
    signal: list[np.ndarray] = field(default_factory=list)        # pattern + trend + offset (noise-free)
    states: list[dict[str, Any]] = field(default_factory=list)    # per channel entry (stochastic state)
    noise_var: list[float] = field(default_factory=list)

    @property
    def kinds(self) -> list[str]:
        return sorted({r["kind"] for r in self.records if r["changed_steps"] > 0})


def _noise(spec: NoiseSpec | None, signal: np.ndarray, amplitude: float, rng: np.random.Generator
           ) -> tuple[np.ndarray, float]:
    n = signal.shape[0]
    if spec is None or not spec.active:
        return np.zeros(n), 0.0
    if spec.kind == "poisson":
        rate = signal - signal.min()
        noise = rng.poisson(rate).astype(np.float64) - rate
        return noise, float(np.mean(rate))
    if spec.snr_db is not None:
        std = math.sqrt(float(np.var(signal)) / 10 ** (spec.snr_db / 10))
    elif spec.std is not None:
        std = spec.std
    else:
        std = float(spec.variance) * abs(amplitude)  # type: ignore[arg-type]
    if std <= 0:
        return np.zeros(n), 0.0
    return rng.normal(0.0, std, n), std * std


def _scale_center(values: np.ndarray) -> tuple[float, float]:
    lo, hi = float(values.min()), float(values.max())
    if not (np.isfinite(lo) and np.isfinite(hi)):
        finite = values[np.isfinite(values)]
        if finite.size == 0:
            return 1.0, 0.0
        lo, hi = float(finite.min()), float(finite.max())
    half = (hi - lo) / 2
    return (half if half > 0 else max(abs(lo), 1.0)), (hi + lo) / 2


def _generate_channels(cfg: SeriesConfig, rng: np.random.Generator) -> Simulation:
    n = cfg.length
    names = cfg.channel_names()
    parts: list[ChannelParts] = []
    info: list[dict[str, Any]] = []
    latent: list[np.ndarray] = []
    signal: list[np.ndarray] = []
    states: list[dict[str, Any]] = []
    noise_var: list[float] = []
    columns: list[np.ndarray] = []
    for i, channel in enumerate(cfg.channels):
        kind = channel.pattern.pattern
        ctx = PatternContext(n, rng, len(signal), signal, {})
        out = np.asarray(kind.fn(n, channel.pattern.params, ctx), dtype=np.float64).reshape(n, -1)
        states.append(ctx.state)
        trend = np.full(n, float(channel.offset)) if channel.offset else np.zeros(n)
        if channel.trend is not None:
            trend_kind = channel.trend.pattern
            trend_ctx = PatternContext(n, rng, len(signal), signal, {})
            trend = trend + np.asarray(trend_kind.fn(n, channel.trend.params, trend_ctx), np.float64).reshape(n)
        amplitude = float(getattr(channel.pattern.params, "amplitude", 1.0) or 1.0)
        flat_trend = channel.trend is None and not channel.offset
        for j in range(out.shape[1]):
            c = len(signal)
            base = np.ascontiguousarray(out[:, j])
            clean_signal = base if flat_trend else base + trend
            noise, var = _noise(channel.noise or cfg.noise, clean_signal, amplitude, rng)
            observed = clean_signal + noise
            columns.append(observed)
            scale, center = _scale_center(observed)
            latent.append(base)
            signal.append(clean_signal)
            noise_var.append(var)
            parts.append(ChannelParts(base.copy(), trend.copy(), noise, np.zeros(n, bool), scale, center,
                                      pattern=kind, params=channel.pattern.params, output=j))
            info.append({"name": names[c], "pattern": kind.name, "output": kind.outputs[j] if kind.outputs else None,
                         "entry": i, "scale": scale, "center": center, "noise_std": math.sqrt(var)})
    values = np.stack(columns, axis=1).astype(np.float32)
    return Simulation(values, values.copy(), np.zeros(n, np.uint8), np.zeros(values.shape, np.uint8), [], names,
                      parts, info, latent, signal, states, noise_var)


def _source_channels(source: Sample) -> Simulation:
    values = np.asarray(source.data.values, dtype=np.float64)  # type: ignore[union-attr]
    n, num = values.shape
    names = list(source.data.channels or [f"ch{c}" for c in range(num)])  # type: ignore[union-attr]
    parts, info = [], []
    for c in range(num):
        scale, center = _scale_center(values[:, c])
        parts.append(ChannelParts(values[:, c].copy(), np.zeros(n), np.zeros(n), np.zeros(n, bool), scale, center,
                                  injected=True))
        info.append({"name": names[c], "pattern": None, "scale": scale, "center": center})
    clean = np.asarray(source.data.values, dtype=np.float32).copy()  # type: ignore[union-attr]
    return Simulation(clean.copy(), clean, np.zeros(n, np.uint8), np.zeros(clean.shape, np.uint8), [], names,
                      parts, info)


def _start_range(r: ResolvedAnomaly, length: int | None) -> tuple[int, int]:
    """Starts [a, b) allowed by the entry's position (a third of its region, or all of it)."""
    span = 1 if length is None else length
    third = (r.hi - r.lo) / 3
    a, b = {"beginning": (r.lo, r.lo + third), "middle": (r.lo + third, r.lo + 2 * third),
            "end": (r.lo + 2 * third, r.hi), "random": (r.lo, r.hi)}[r.spec.position]
    a, b = int(math.ceil(a)), int(math.ceil(b))
    last = r.hi - span if length is not None else r.hi - 1
    a = min(a, last)
    return a, max(a + 1, min(b, last + 1))


def _free_ranges(intervals: list[tuple[int, int]], a: int, b: int, span: int, gap: int) -> list[tuple[int, int]]:
    """Starts in [a, b) whose [start - gap, start + span + gap) misses every occupied interval."""
    forbidden = sorted((lo - span - gap + 1, hi + gap) for lo, hi in intervals)
    free, cursor = [], a
    for lo, hi in forbidden:
        if lo >= b:
            break
        if lo > cursor:
            free.append((cursor, lo))
        cursor = max(cursor, hi)
        if cursor >= b:
            break
    if cursor < b:
        free.append((cursor, b))
    return free


def _place(occupied: np.ndarray, intervals: list[tuple[int, int]], r: ResolvedAnomaly, length: int | None,
           gap: int, rng: np.random.Generator, period: float | None) -> int:
    n = occupied.shape[0]
    spec = r.spec
    if spec.start is not None:
        s = spec.start
        stop = s + 1 if length is None else s + length
        if occupied[s:stop].any():
            raise ConfigError(f"{r.path}.start: steps [{s}, {stop}) overlap an earlier anomaly on the same channel")
        return s
    span = 1 if length is None else length
    a, b = _start_range(r, length)
    free = _free_ranges(intervals, a, b, span, gap)
    total = sum(hi - lo for lo, hi in free)
    if total == 0:
        raise ConfigError(f"{r.path}: no free place left for a {span}-step {spec.kind} anomaly at position "
                          f"{spec.position!r} in steps [{r.lo}, {r.hi}) (anomalies on a channel never overlap); "
                          f"lower count/contamination or widen region")
    if period is not None and period >= 2 and n / period > 6:  # period-aware kinds start on a period boundary
        multiples = np.round(np.arange(math.ceil(a / period), (b - 1) / period + 1) * period).astype(np.int64)
        lows = np.array([lo for lo, _ in free])
        highs = np.array([hi for _, hi in free])
        slot = np.searchsorted(lows, multiples, side="right") - 1
        snapped = multiples[(slot >= 0) & (multiples < highs[np.clip(slot, 0, None)])]
        if snapped.size:
            return int(snapped[rng.integers(snapped.size)])
    pick = int(rng.integers(total))
    for lo, hi in free:
        if pick < hi - lo:
            return lo + pick
        pick -= hi - lo
    raise AssertionError("unreachable")  # pragma: no cover


def _changed(before: np.ndarray, after: np.ndarray) -> np.ndarray:
    before32, after32 = before.astype(np.float32), after.astype(np.float32)
    return ~((before32 == after32) | (np.isnan(before32) & np.isnan(after32)))


def _runs_to_end(r: ResolvedAnomaly) -> bool:
    return r.length is None or (r.spec.kind == "trend" and bool(r.spec.params.persist))


def _apply_anomalies(sim: Simulation, anomalies: list[AnomalySpec], rng: np.random.Generator,
                     resolved: list[ResolvedAnomaly] | None = None) -> None:
    n, num_channels = sim.values.shape
    if resolved is None:
        resolved = resolve_anomalies(anomalies, n, num_channels)
    occupied = np.zeros((num_channels, n), bool)
    intervals: list[list[tuple[int, int]]] = [[] for _ in range(num_channels)]
    # changes that last to the end of the series (level shift without a length, persisting trend)
    # are applied after the others, so that they shift everything after their onset
    for r in sorted(resolved, key=_runs_to_end):
        spec, kind = r.spec, r.spec.anomaly
        params = spec.params_record
        batch: list[int] = []
        if kind.name == "point" and spec.start is None and r.count > 1:
            # SynTSBench: all spike positions drawn at once, without replacement, from the free steps
            union = occupied[spec.channel].any(axis=0)
            free = r.lo + np.flatnonzero(~union[r.lo:r.hi])
            if free.size < r.count:
                raise ConfigError(f"{r.path}.count: {r.count} spikes do not fit in the {free.size} free steps of "
                                  f"[{r.lo}, {r.hi})")
            batch = rng.choice(free, r.count, replace=False).tolist()
        for instance in range(r.count):
            length = r.length
            if kind.name == "pulse":
                length = int(rng.integers(spec.params.width_low, spec.params.width_high))
            if batch:
                start = batch[instance]
            else:
                if len(spec.channel) == 1:
                    union, union_intervals = occupied[spec.channel[0]], intervals[spec.channel[0]]
                else:
                    union = occupied[spec.channel].any(axis=0)
                    union_intervals = [i for c in spec.channel for i in intervals[c]]
                first = sim.parts[spec.channel[0]]
                period = None
                if kind.period_aware and first.pattern is not None and first.pattern.period is not None:
                    period = first.pattern.period(first.params, n)
                gap = max(0, r.spacing - (length or 0)) if kind.name == "pulse" else 0
                if kind.name == "missing" and spec.params.mechanism == "mar":
                    start = _place_mar(union, r, length or 1, rng, sim, spec.params.driver)
                else:
                    start = _place(union, union_intervals, r, length, gap, rng, period)
            end = n if length is None else start + length
            for c in spec.channel:
                parts = sim.parts[c]
                check_end = n if kind.name == "trend" and spec.params.persist else end
                before = parts.window(start, check_end)
                extra = kind.apply(parts, start, end, spec.params, rng, spec.creeping_length)
                changed = _changed(before, parts.window(start, check_end))
                # a change that lasts to the end reserves only its own onset (later anomalies may
                # ride on the new level); the others reserve their window
                reserved = start + 1 if length is None else end
                occupied[c, start:reserved] = True
                intervals[c].append((start, reserved))
                hits = np.flatnonzero(changed)
                record = {"kind": kind.name, "channel": c, "channel_name": sim.channel_names[c],
                          "start": None, "end": None, "length": 0, "changed_steps": int(hits.size),
                          "placed_start": start, "placed_end": end, "entry": r.index,
                          "position": spec.position if spec.start is None else "exact",
                          "parameters": {**params, **to_jsonable(extra)}}
                if hits.size == 0:  # e.g. a shape change on a constant segment: recorded, unlabelled, reported
                    warnings.warn(f"{r.path}: the {kind.name} anomaly at steps [{start}, {end}) of channel {c} "
                                  f"({sim.channel_names[c]}) changed no value; it is recorded with changed_steps 0 "
                                  f"and not labelled", stacklevel=2)
                else:
                    lo, hi = start + int(hits[0]), start + int(hits[-1]) + 1
                    record.update(start=lo, end=hi, length=hi - lo)
                    sim.labels[lo:hi] = 1
                    sim.channel_labels[lo:hi, c] = 1
                sim.records.append(record)
    touched = sorted({r["channel"] for r in sim.records})
    if touched:
        sim.values = sim.clean.copy()
        for c in touched:
            sim.values[:, c] = sim.parts[c].values()


def _place_mar(occupied: np.ndarray, r: ResolvedAnomaly, length: int, rng: np.random.Generator, sim: Simulation,
               driver: int | None) -> int:
    """Missing at random: starts drawn with probability rising with the driver channel's rank."""
    n = occupied.shape[0]
    driver_values = sim.clean[:, r.spec.channel[0] if driver is None else driver].astype(np.float64)
    starts = np.arange(r.lo, r.hi - length + 1)
    cumulative = np.concatenate([[0], np.cumsum(occupied, dtype=np.int64)])
    free = starts[(cumulative[np.minimum(starts + length, n)] - cumulative[starts]) == 0]
    if free.size == 0:
        raise ConfigError(f"{r.path}: no free place left for a {length}-step missing block in steps [{r.lo}, {r.hi})")
    ranks = np.argsort(np.argsort(np.nan_to_num(driver_values[free], nan=-np.inf))).astype(np.float64) + 1
    return int(rng.choice(free, p=ranks / ranks.sum()))


def simulate(config: SeriesConfig, rng: np.random.Generator, source: Sample | None = None,
             anomalies: list[AnomalySpec] | None = None, resolved: list[ResolvedAnomaly] | None = None
             ) -> Simulation:
    """Generate (or take ``source``'s values), add noise, inject ``anomalies`` (default: the config's).
    ``resolved`` is ``resolve_anomalies`` of those anomalies for this series' shape, when known."""
    # anomalies draw from their own stream, so the clean series (and optimum) does not depend on
    # them, and their placement does not move when the noise or the patterns change
    anomaly_rng = np.random.default_rng(int(rng.integers(2**63)))
    sim = _source_channels(source) if source is not None else _generate_channels(config, rng)
    _apply_anomalies(sim, config.anomalies if anomalies is None else anomalies, anomaly_rng, resolved)
    return sim


def inject(values: np.ndarray, anomalies: list[AnomalySpec | dict[str, Any]], *, seed: int,
           channels: list[str] | None = None) -> Simulation:
    """Inject anomalies into a plain T x C (or T) array; a convenience around ``series_inject``.

    >>> import numpy as np
    >>> sim = inject(np.sin(np.arange(500) / 10), [{"kind": "mean", "length": 20, "offset": 2}], seed=0)
    >>> int(sim.labels.sum())
    20
    """
    from ...schema import Series
    from .config import InjectConfig

    cfg = InjectConfig.from_dict({"anomalies": anomalies})
    source = Sample(key="array", dataset="array", split="test", label=0, data=Series(values, None, channels))
    from ..base import derive_seed

    return simulate(cfg, np.random.default_rng(derive_seed(seed, source.key)), source, cfg.anomalies)  # type: ignore[arg-type]
