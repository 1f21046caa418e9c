"""The nested config of the series generator: channels (base pattern, trend, offset, noise) and a
list of anomalies, as typed dataclasses built from a dict or YAML.

Every error names the key path and the allowed range, and impossible configs (an anomaly longer
than its region, more contamination than fits, an unknown kind, a negative period) fail here,
before any series is generated::

    length: 2000
    channels:
      - pattern: {kind: sine, frequency: 4}        # GutenTAG base oscillation
        trend: {kind: linear-trend, slope: 0.001, intercept: 0}
        noise: {snr_db: 20}
      - pattern: {kind: lag, source: 0, lag: 25}   # depends on channel 0
    anomalies:
      - {kind: amplitude, channel: 0, position: middle, length: 100, amplitude_factor: 2.5}
      - {kind: point, channel: 1, ratio: 0.01, region: [0.0, 0.8]}

GutenTAG's per-channel style is accepted too: ``{kind: sine, frequency: 4, variance: 0.05,
offset: 1, trend: {kind: polynomial, polynomial: [0, 0.001]}}``.

>>> cfg = SeriesConfig.from_dict({"length": 100, "anomalies": [{"kind": "mean", "length": 500}]})
Traceback (most recent call last):
...
anomalykit.errors.ConfigError: anomalies[0].length: 500 is above the allowed range [1, 100] (region [0, 100) of a series of 100 steps)
"""

from __future__ import annotations

import dataclasses
import math
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ...errors import ConfigError
from ...schema import to_jsonable
from ..base import GeneratorConfig, param
from ._params import build, coerce, normalise_key, type_hints
from .anomalies import ANOMALIES, AnomalyKind, get_anomaly
from .patterns import PatternKind, get_pattern

__all__ = ["PatternSpec", "NoiseSpec", "ChannelSpec", "AnomalySpec", "SeriesConfig", "InjectConfig",
           "ResolvedAnomaly", "resolve_anomalies", "load_config", "POSITIONS"]

POSITIONS = ("beginning", "middle", "end", "random")


@dataclass
class PatternSpec:
    """A pattern kind and its typed parameters."""

    kind: str
    params: Any = None

    def __post_init__(self) -> None:
        pattern_kind = get_pattern(self.kind)
        self.kind = pattern_kind.name
        if self.params is None or isinstance(self.params, dict):
            self.params = pattern_kind.parse(self.params or {}, "pattern")

    @property
    def pattern(self) -> PatternKind:
        kind = self.__dict__.get("_kind")
        if kind is None or kind.name != self.kind:
            kind = self.__dict__["_kind"] = get_pattern(self.kind)
        return kind

    @classmethod
    def parse(cls, value: Any, path: str) -> PatternSpec:
        if isinstance(value, PatternSpec):
            return value
        if isinstance(value, str):
            value = {"kind": value}
        if not isinstance(value, dict):
            raise ConfigError(f"{path}: expected a pattern mapping such as {{kind: sine}}, got {value!r}")
        if "kind" not in value:
            raise ConfigError(f"{path}.kind: required (one of the pattern kinds, e.g. sine, ar, linear-trend)")
        pattern_kind = get_pattern(value["kind"], f"{path}.kind")
        flat = {k: v for k, v in value.items() if k not in ("kind", "params")}
        nested = value.get("params")
        if nested is not None:
            if not isinstance(nested, dict):
                raise ConfigError(f"{path}.params: expected a mapping, got {nested!r}")
            flat = {**nested, **flat}
        return cls(pattern_kind.name, pattern_kind.parse(flat, path))

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, **_params_record(self)}

    def __getstate__(self) -> dict[str, Any]:  # caches stay behind when pickled to worker processes
        return {k: v for k, v in self.__dict__.items() if not k.startswith("_")}


def _params_record(spec: Any) -> dict[str, Any]:
    """A spec's typed parameters as a JSON-ready dict, computed once per parameter object (a copy
    is returned, so callers may change it)."""
    cached = spec.__dict__.get("_params_record")
    if cached is None or cached[0] is not spec.params:
        cached = spec.__dict__["_params_record"] = (spec.params, to_jsonable(dataclasses.asdict(spec.params)))
    return dict(cached[1])


@dataclass
class NoiseSpec:
    """Additive noise: ``snr_db`` (relative to the clean channel's variance), ``std`` (absolute) or
    GutenTAG's ``variance`` (std = variance * amplitude); ``poisson`` draws Poisson counts instead."""

    kind: str = param("gaussian", choices=("gaussian", "poisson"))
    snr_db: float | None = param(None, low=-100.0, high=300.0)
    std: float | None = param(None, low=0.0)
    variance: float | None = param(None, low=0.0, doc="GutenTAG: std = variance * amplitude")

    def __post_init__(self) -> None:
        given = [n for n in ("snr_db", "std", "variance") if getattr(self, n) is not None]
        if len(given) > 1:
            raise ConfigError(f"{given[1]}: give at most one of snr_db, std, variance (got {', '.join(given)})")

    @property
    def active(self) -> bool:
        return (self.kind == "poisson" or self.snr_db is not None
                or any(getattr(self, n) not in (None, 0.0) for n in ("std", "variance")))

    @classmethod
    def parse(cls, value: Any, path: str) -> NoiseSpec | None:
        if value is None or isinstance(value, NoiseSpec):
            return value
        return build(cls, value, path)


@dataclass
class ChannelSpec:
    """One entry of ``channels``: a pattern (one or several linked outputs), an optional trend
    pattern, an offset, noise (defaults to the config's ``noise``) and a name."""

    pattern: PatternSpec = field(default_factory=lambda: PatternSpec("sine"))
    trend: PatternSpec | None = None
    offset: float = 0.0
    noise: NoiseSpec | None = None
    name: str | None = None

    def __post_init__(self) -> None:
        if isinstance(self.pattern, (dict, str)):
            self.pattern = PatternSpec.parse(self.pattern, "pattern")
        if isinstance(self.trend, (dict, str)):
            self.trend = PatternSpec.parse(self.trend, "trend")
        if isinstance(self.noise, dict):
            self.noise = NoiseSpec.parse(self.noise, "noise")

    _KEYS = ("pattern", "trend", "offset", "noise", "name")

    @classmethod
    def parse(cls, value: Any, path: str) -> ChannelSpec:
        if isinstance(value, ChannelSpec):
            return value
        if isinstance(value, str):
            value = {"pattern": {"kind": value}}
        if not isinstance(value, dict):
            raise ConfigError(f"{path}: expected a channel mapping such as {{pattern: {{kind: sine}}}}, got {value!r}")
        value = {normalise_key(k): v for k, v in value.items()}
        if "kind" in value:  # GutenTAG base-oscillation style: pattern keys and channel keys side by side
            channel_keys = {k: value.pop(k) for k in list(value) if k in cls._KEYS}
            pattern_kind = get_pattern(value["kind"], f"{path}.kind")
            pattern_fields = {f.name for f in dataclasses.fields(pattern_kind.params)}
            if "variance" in value and "variance" not in pattern_fields:
                if "noise" in channel_keys:
                    raise ConfigError(f"{path}.variance: give either variance or noise, not both")
                channel_keys["noise"] = {"variance": value.pop("variance")}
            channel_keys["pattern"] = value
            value = channel_keys
        unknown = sorted(set(value) - set(cls._KEYS))
        if unknown:
            raise ConfigError(f"{path}.{unknown[0]}: unknown key; allowed keys: {', '.join(cls._KEYS)} "
                              f"(or a pattern's keys beside 'kind')")
        if "pattern" not in value:
            raise ConfigError(f"{path}.pattern: required")
        trend = PatternSpec.parse(value["trend"], f"{path}.trend") if value.get("trend") is not None else None
        if trend is not None and trend.pattern.num_outputs != 1:
            raise ConfigError(f"{path}.trend.kind: {trend.kind!r} has {trend.pattern.num_outputs} outputs; a trend "
                              f"needs one")
        if trend is not None and trend.pattern.references is not None:
            raise ConfigError(f"{path}.trend.kind: {trend.kind!r} reads other channels and cannot be a trend")
        return cls(
            pattern=PatternSpec.parse(value["pattern"], f"{path}.pattern"),
            trend=trend,
            offset=coerce(value.get("offset", 0.0), float, f"{path}.offset"),
            noise=NoiseSpec.parse(value.get("noise"), f"{path}.noise"),
            name=coerce(value.get("name"), typing.Optional[str], f"{path}.name"),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "pattern": self.pattern.to_dict(),
            "trend": self.trend.to_dict() if self.trend is not None else None,
            "offset": self.offset,
            "noise": to_jsonable(dataclasses.asdict(self.noise)) if self.noise is not None else None,
            "name": self.name,
        }

    def output_names(self, index: int) -> list[str]:
        base = self.name or f"{self.pattern.kind}-{index}"
        outputs = self.pattern.pattern.outputs
        return [f"{base}.{o}" for o in outputs] if outputs else [base]


@dataclass
class _AnomalyCommon:
    kind: str = param("mean")
    channel: list[int] = param(default_factory=lambda: [0], low=0, doc="channel index, or a list")
    position: str = param("random", choices=POSITIONS, doc="third of the region the start falls in")
    start: int | None = param(None, low=0, doc="exact start step (overrides position)")
    length: int | None = param(None, low=1)
    count: int | None = param(None, low=0, doc="number of anomalies of this entry (default 1)")
    contamination: float | None = param(None, low=0.0, high=1.0, doc="fraction of the series' steps; sets count")
    creeping_length: int = param(0, low=0, doc="linear ramp-in (amplitude, mean, variance, level-shift)")
    region: list[float] = param(default_factory=lambda: [0.0, 1.0], low=0.0, high=1.0,
                                doc="[from, to) as fractions of the series; SynTSBench contaminates [0, 0.8]")


@dataclass
class AnomalySpec:
    """One entry of ``anomalies``: the kind, where (channel, position or start, region), how
    many (count or contamination), how long, and the kind's typed parameters."""

    kind: str
    params: Any = None
    channel: list[int] = field(default_factory=lambda: [0])
    position: str = "random"
    start: int | None = None
    length: int | None = None
    count: int | None = None
    contamination: float | None = None
    creeping_length: int = 0
    region: list[float] = field(default_factory=lambda: [0.0, 1.0])

    def __post_init__(self) -> None:
        anomaly_kind = get_anomaly(self.kind)
        self.kind = anomaly_kind.name
        if isinstance(self.channel, int):
            self.channel = [self.channel]
        if self.params is None or isinstance(self.params, dict):
            self.params = anomaly_kind.parse(self.params or {}, "anomaly")

    @property
    def anomaly(self) -> AnomalyKind:
        kind = self.__dict__.get("_kind")
        if kind is None or kind.name != self.kind:
            kind = self.__dict__["_kind"] = get_anomaly(self.kind)
        return kind

    @property
    def params_record(self) -> dict[str, Any]:
        """The kind's parameters as a JSON-ready dict (for anomaly records)."""
        return _params_record(self)

    @classmethod
    def parse(cls, value: Any, path: str) -> AnomalySpec:
        if isinstance(value, AnomalySpec):
            return value
        if isinstance(value, str):
            value = {"kind": value}
        if not isinstance(value, dict):
            raise ConfigError(f"{path}: expected an anomaly mapping such as {{kind: mean, length: 50}}, got {value!r}")
        value = {normalise_key(k): v for k, v in value.items()}
        if "kind" not in value:
            raise ConfigError(f"{path}.kind: required (one of the anomaly kinds, e.g. amplitude, mean, point)")
        anomaly_kind = get_anomaly(value["kind"], f"{path}.kind")
        common_names = {f.name for f in dataclasses.fields(_AnomalyCommon)}
        kind_names = {f.name for f in dataclasses.fields(anomaly_kind.params)}
        nested = value.pop("params", None) or {}
        if not isinstance(nested, dict):
            raise ConfigError(f"{path}.params: expected a mapping, got {nested!r}")
        nested = {normalise_key(k): v for k, v in nested.items()}
        for key in list(value) + list(nested):
            if key not in common_names and key not in kind_names:
                allowed = sorted((common_names | kind_names) - {"kind"})
                raise ConfigError(f"{path}.{key}: unknown key for a {anomaly_kind.name} anomaly; allowed keys: "
                                  f"{', '.join(allowed)}")
        if isinstance(value.get("channel"), (int, float)) and not isinstance(value.get("channel"), bool):
            value["channel"] = [value["channel"]]
        common = build(_AnomalyCommon, {k: v for k, v in value.items() if k in common_names}, path)
        params = anomaly_kind.parse({**nested, **{k: v for k, v in value.items() if k in kind_names}}, path)
        if not common.channel:
            raise ConfigError(f"{path}.channel: needs at least one channel")
        if not (len(common.region) == 2 and common.region[0] < common.region[1]):
            raise ConfigError(f"{path}.region: expected [from, to) with 0 <= from < to <= 1, got {common.region}")
        return cls(anomaly_kind.name, params, common.channel, common.position, common.start, common.length,
                   common.count, common.contamination, common.creeping_length, list(common.region))

    def __getstate__(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if not k.startswith("_")}

    def to_dict(self) -> dict[str, Any]:
        out = {"kind": self.kind, "channel": list(self.channel), "position": self.position, "start": self.start,
               "length": self.length, "count": self.count, "contamination": self.contamination,
               "creeping_length": self.creeping_length, "region": list(self.region)}
        out.update(_params_record(self))
        return out


@dataclass(frozen=True)
class ResolvedAnomaly:
    """An anomaly entry checked against a series: region in steps, length (None: to the end), count."""

    index: int
    spec: AnomalySpec
    lo: int
    hi: int
    length: int | None
    count: int
    spacing: int = 0

    @property
    def path(self) -> str:
        return f"anomalies[{self.index}]"


def resolve_anomalies(anomalies: list[AnomalySpec], n: int, num_channels: int,
                      prefix: str = "anomalies") -> list[ResolvedAnomaly]:
    """Check every anomaly against a series of ``n`` steps and ``num_channels`` channels."""
    resolved = []
    budget = [0] * num_channels
    for i, spec in enumerate(anomalies):
        path = f"{prefix}[{i}]"
        kind = spec.anomaly
        for c in spec.channel:
            if c >= num_channels:
                raise ConfigError(f"{path}.channel: {c} is above the allowed range [0, {num_channels - 1}] "
                                  f"(the series has {num_channels} channel(s))")
        lo, hi = int(round(spec.region[0] * n)), int(round(spec.region[1] * n))
        region_len = hi - lo
        if region_len < 1:
            raise ConfigError(f"{path}.region: {spec.region} covers no step of a series of {n} steps")
        where = f"region [{lo}, {hi}) of a series of {n} steps"
        if kind.fixed_length is not None:
            if spec.length is not None and spec.length != kind.fixed_length:
                raise ConfigError(f"{path}.length: a {kind.name} anomaly is {kind.fixed_length} step(s) long, got "
                                  f"{spec.length}")
            length: int | None = kind.fixed_length
        elif kind.name == "pulse":
            if spec.length is not None:
                raise ConfigError(f"{path}.length: a pulse's length is drawn from width_low/width_high; remove length")
            length = spec.params.width_high - 1
        elif spec.length is None:
            length = None if kind.default_length is None else min(kind.default_length, region_len)
        else:
            length = spec.length
        if length is not None and length > region_len:
            raise ConfigError(f"{path}.length: {length} is above the allowed range [1, {region_len}] ({where})")
        count = 1 if spec.count is None else spec.count
        if kind.name == "point" and spec.params.ratio is not None:
            count = int(math.floor(region_len * spec.params.ratio))
        if spec.contamination is not None:
            steps = (length or region_len)
            count = int(math.ceil(spec.contamination * n / steps)) if spec.contamination > 0 else 0
            if count * steps > region_len:
                most = region_len // steps * steps / n
                raise ConfigError(f"{path}.contamination: {spec.contamination} is above the allowed range "
                                  f"[0, {most:.6g}] ({count} anomalies of {steps} steps do not fit in {where})")
        if spec.start is not None:
            if count != 1:
                raise ConfigError(f"{path}.count: an anomaly with an exact start has count 1, got {count}")
            span = length or 1
            if spec.start + span > n:
                raise ConfigError(f"{path}.start: {spec.start} is above the allowed range [0, {n - span}] "
                                  f"(a {span}-step anomaly in a series of {n} steps)")
        if length is None and count > 1:
            raise ConfigError(f"{path}.count: a {kind.name} anomaly without a length runs to the end of the series; "
                              f"count must be 1, got {count}")
        spacing = 0
        if kind.name == "pulse" and count > 0:
            spacing = spec.params.min_spacing
            if spacing is None:
                spacing = max(30, region_len // (2 * count))
            most = (region_len - spec.params.width_high) // max(spacing, spec.params.width_high, 1) + 1
            if count > most:
                raise ConfigError(f"{path}.count: {count} is above the allowed range [0, {max(0, most)}] (pulses of up "
                                  f"to {spec.params.width_high} steps, {spacing} apart, in {where})")
        elif length is not None and count * length > region_len:
            raise ConfigError(f"{path}.count: {count} is above the allowed range [0, {region_len // length}] "
                              f"({length}-step anomalies in {where})")
        if spec.creeping_length and not kind.creeping:
            creeping_kinds = ", ".join(sorted(k.name for k in ANOMALIES.values() if k.creeping))
            raise ConfigError(f"{path}.creeping_length: a {kind.name} anomaly has no creeping part (only "
                              f"{creeping_kinds})")
        if spec.creeping_length and length is not None and spec.creeping_length > length:
            raise ConfigError(f"{path}.creeping_length: {spec.creeping_length} is above the allowed range "
                              f"[0, {length}] (the anomaly's length)")
        if kind.name == "pattern-shift" and length is not None and 2 * spec.params.transition_window > length:
            raise ConfigError(f"{path}.transition_window: {spec.params.transition_window} is above the allowed range "
                              f"[1, {length // 2}] (two transition windows must fit in the {length}-step anomaly)")
        if kind.name == "missing" and spec.params.driver is not None and spec.params.driver >= num_channels:
            raise ConfigError(f"{path}.driver: {spec.params.driver} is above the allowed range "
                              f"[0, {num_channels - 1}]")
        if length is not None:
            steps = count * length
        else:  # runs to the end from a start known only at placement (placed after the others)
            steps = n - spec.start if spec.start is not None else 1
        for c in spec.channel:
            budget[c] += steps
            if budget[c] > n:
                raise ConfigError(f"{path}.count: together with the earlier anomalies on channel {c} this needs "
                                  f"{budget[c]} steps, the series has {n}")
        resolved.append(ResolvedAnomaly(i, spec, lo, hi, length, count, spacing))
    return resolved


def _parse_list(value: Any, path: str, parse: Any) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, dict):
        value = [value]
    if not isinstance(value, (list, tuple)):
        raise ConfigError(f"{path}: expected a list, got {value!r}")
    return [parse(v, f"{path}[{i}]") for i, v in enumerate(value)]


class _TopLevelChecks:
    """Shared by the two configs: scalar fields checked with key paths."""

    def validate(self) -> None:  # replaces GeneratorConfig.validate's class-prefixed messages
        hints = type_hints(type(self))
        for f in dataclasses.fields(self):  # type: ignore[arg-type]
            if f.name in ("channels", "anomalies", "noise"):
                continue
            meta = f.metadata
            setattr(self, f.name, coerce(getattr(self, f.name), hints[f.name], f.name, low=meta.get("low"),
                                         high=meta.get("high"), choices=meta.get("choices")))

    @classmethod
    def from_dict(cls, values: dict[str, Any] | None = None, **overrides: Any):
        if values is not None and not isinstance(values, dict):
            raise ConfigError(f"config: expected a mapping, got {type(values).__name__}")
        merged = {normalise_key(k): v for k, v in {**(values or {}), **overrides}.items()}
        known = [f.name for f in dataclasses.fields(cls)]  # type: ignore[arg-type]
        for key in merged:
            if key not in known:
                raise ConfigError(f"{key}: unknown key; allowed keys: {', '.join(known)}")
        return cls(**merged)

    @classmethod
    def from_yaml(cls, source: str | Path):
        """From a YAML file path or YAML text."""
        return cls.from_dict(_read_yaml(source))

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):  # type: ignore[arg-type]
            value = getattr(self, f.name)
            if isinstance(value, list):
                out[f.name] = [v.to_dict() if hasattr(v, "to_dict") else to_jsonable(dataclasses.asdict(v))
                               if dataclasses.is_dataclass(v) else to_jsonable(v) for v in value]
            elif dataclasses.is_dataclass(value):
                out[f.name] = value.to_dict() if hasattr(value, "to_dict") else to_jsonable(
                    dataclasses.asdict(value))
            else:
                out[f.name] = to_jsonable(value)
        return out


def _read_yaml(source: str | Path) -> Any:
    import yaml

    path = Path(source) if isinstance(source, Path) or ("\n" not in str(source) and len(str(source)) < 4096) else None
    if path is not None and path.exists():
        text = path.read_text(encoding="utf-8")
        where = str(path)
    elif isinstance(source, Path) or (path is not None and str(source).endswith((".yaml", ".yml", ".json"))):
        raise ConfigError(f"config: file {source} does not exist")
    else:
        text, where = str(source), "config text"
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f", line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"{where}{line}: not valid YAML ({getattr(exc, 'problem', exc)})") from None


@dataclass
class SeriesConfig(_TopLevelChecks, GeneratorConfig):
    """Config of the ``syntsbench`` generator (see the module docstring)."""

    length: int = param(1000, low=2, high=1_000_000_000, doc="steps per series (ignored when injecting)")
    channels: list[ChannelSpec] = param(default_factory=lambda: [ChannelSpec()])
    noise: NoiseSpec | None = param(None, doc="default noise of channels without their own")
    anomalies: list[AnomalySpec] = param(default_factory=list)
    name: str | None = param(None, doc="category written into each sample")
    split: str = param("test", choices=("train", "val", "test"))
    include_clean: bool = param(False, doc="also store the clean series in meta['clean']")

    def __post_init__(self) -> None:
        self.channels = _parse_list(self.channels, "channels", ChannelSpec.parse)
        if not self.channels:
            raise ConfigError("channels: needs at least one channel")
        self.anomalies = _parse_list(self.anomalies, "anomalies", AnomalySpec.parse)
        self.noise = NoiseSpec.parse(self.noise, "noise")
        self.validate()
        self.check_references()
        shape = (self.length, self.num_channels)
        self.__dict__["_resolved"] = {shape: resolve_anomalies(self.anomalies, *shape)}

    @property
    def num_channels(self) -> int:
        return sum(c.pattern.pattern.num_outputs for c in self.channels)

    def channel_names(self) -> list[str]:
        names = [name for i, c in enumerate(self.channels) for name in c.output_names(i)]
        seen: dict[str, int] = {}
        for i, name in enumerate(names):  # keep names unique
            if name in seen:
                names[i] = f"{name}-{i}"
            seen[name] = i
        return names

    def check_references(self) -> None:
        first = 0
        for i, channel in enumerate(self.channels):
            kind = channel.pattern.pattern
            if kind.references is not None:
                key = {"lag": "source", "formula": "expression" if getattr(channel.pattern.params, "expression", None)
                       else "channels"}.get(kind.name, "kind")
                for ref in kind.references(channel.pattern.params):
                    if ref >= first:
                        allowed = f"[0, {first - 1}]" if first > 0 else "none (it is the first channel)"
                        raise ConfigError(f"channels[{i}].pattern.{key}: channel {ref} is not an earlier channel; "
                                          f"allowed range {allowed}")
            first += kind.num_outputs


@dataclass
class InjectConfig(_TopLevelChecks, GeneratorConfig):
    """Config of the ``series_inject`` generator: anomalies injected into a given series."""

    anomalies: list[AnomalySpec] = param(default_factory=list)
    split: str | None = param(None, choices=("train", "val", "test", None), doc="default: the source's split")
    include_clean: bool = param(False, doc="also store the source values in meta['clean']")

    def __post_init__(self) -> None:
        self.anomalies = _parse_list(self.anomalies, "anomalies", AnomalySpec.parse)
        if not self.anomalies:
            raise ConfigError("anomalies: needs at least one anomaly to inject")
        self.validate()


def load_config(source: SeriesConfig | dict[str, Any] | str | Path) -> SeriesConfig:
    """A ``SeriesConfig`` from a config, a dict, a YAML file path or YAML text."""
    if isinstance(source, SeriesConfig):
        return source
    if isinstance(source, dict):
        return SeriesConfig.from_dict(source)
    return SeriesConfig.from_yaml(source)
