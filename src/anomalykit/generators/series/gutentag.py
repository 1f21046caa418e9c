"""Read GutenTAG generation configs (``timeseries: [...]``) as anomalykit series configs.

Each GutenTAG time series becomes one ``SeriesConfig``: its base oscillations become channels
(GutenTAG's keys, e.g. ``freq-mod``, ``variance``, ``trend``, are understood), its anomalies become
anomaly entries (``position``/``exact-position``, ``length`` (default 200), ``channel``,
``creeping-length`` (a ramp before the anomaly, so the window grows by it)). What differs:
magnitudes of ``mean``, ``platform`` and ``variance`` are in units of the channel's scale (half its
range, which is the amplitude for GutenTAG's oscillations) rather than absolute; one kind per
anomaly (GutenTAG stacks several); ``custom-input`` and GutenTAG's formula syntax are not read
(use ``series_inject`` and the ``formula`` pattern's ``expression``).

>>> configs = from_gutentag({"timeseries": [{"name": "demo", "length": 1000,
...     "base-oscillations": [{"kind": "sine", "frequency": 4.0, "variance": 0.05}],
...     "anomalies": [{"position": "middle", "length": 50, "kinds": [{"kind": "pattern", "sinusoid_k": 10.0}]}]}]})
>>> cfg = configs["demo"]
>>> cfg.length, cfg.channels[0].pattern.kind, cfg.anomalies[0].position, cfg.anomalies[0].length
(1000, 'sine', 'middle', 50)
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

from ...errors import ConfigError
from .config import SeriesConfig, _read_yaml

__all__ = ["from_gutentag"]

_DEFAULT_LENGTH = 10_000
_DEFAULT_ANOMALY_LENGTH = 200


_SERIES_KEYS = ("name", "length", "channels", "semi-supervised", "supervised", "base-oscillations",
                "base_oscillations", "anomalies")
_ANOMALY_KEYS = ("position", "exact-position", "exact_position", "length", "channel", "creeping-length",
                 "creeping_length", "kinds")


def _check_keys(entry: dict[str, Any], known: tuple[str, ...], path: str) -> None:
    unknown = sorted(str(k) for k in entry if k not in known)
    if unknown:
        raise ConfigError(f"{path}: unknown key(s) {', '.join(unknown)}; GutenTAG's keys here: {', '.join(known)}")


def _channel(oscillation: Any, path: str) -> dict[str, Any]:
    if not isinstance(oscillation, dict) or "kind" not in oscillation:
        raise ConfigError(f"{path}: expected a base oscillation with a kind, got {oscillation!r}")
    kind = str(oscillation["kind"]).replace("_", "-")
    if kind == "custom-input":
        raise ConfigError(f"{path}.kind: custom-input is read with series_inject (give the series as a source)")
    if kind == "formula":
        raise ConfigError(f"{path}.kind: GutenTAG's formula syntax is not read; use a formula pattern with an "
                          f"expression such as 'ch0 + ch1'")
    channel = {k: v for k, v in oscillation.items() if k not in ("length",)}
    if isinstance(channel.get("trend"), dict):
        channel["trend"] = {k: v for k, v in channel["trend"].items() if k not in ("variance", "offset", "length")}
    return channel


def _anomaly(anomaly: Any, path: str) -> dict[str, Any]:
    if not isinstance(anomaly, dict):
        raise ConfigError(f"{path}: expected a mapping, got {anomaly!r}")
    _check_keys(anomaly, _ANOMALY_KEYS, path)
    kinds = anomaly.get("kinds")
    if not isinstance(kinds, list) or not kinds:
        raise ConfigError(f"{path}.kinds: required, a list with one anomaly kind")
    if len(kinds) > 1:
        raise ConfigError(f"{path}.kinds: {len(kinds)} stacked kinds; one kind per anomaly is supported (split "
                          f"them into anomalies at exact positions)")
    kind = dict(kinds[0])
    name = str(kind.pop("kind", "")).replace("_", "-")
    if name == "trend":
        kind = {"pattern": kind.pop("oscillation", None), **kind}
    creeping = int(anomaly.get("creeping-length", anomaly.get("creeping_length", 0)) or 0)
    entry: dict[str, Any] = {
        "kind": name,
        "channel": anomaly.get("channel", 0),
        "length": int(anomaly.get("length", _DEFAULT_ANOMALY_LENGTH)) + creeping,
        "creeping_length": creeping,
        **kind,
    }
    if name == "extremum":
        entry.pop("length")
        if creeping:
            raise ConfigError(f"{path}.creeping-length: an extremum has no creeping part")
    exact = anomaly.get("exact-position", anomaly.get("exact_position"))
    if exact is not None:
        entry["start"] = max(0, int(exact) - creeping)
    else:
        entry["position"] = anomaly.get("position", "middle")
    return entry


def from_gutentag(source: dict[str, Any] | str | Path) -> dict[str, SeriesConfig]:
    """Series configs (by time-series name) from a GutenTAG config dict, YAML/JSON file or text."""
    raw = source if isinstance(source, dict) else _read_yaml(source)
    if not isinstance(raw, dict) or not isinstance(raw.get("timeseries"), list):
        raise ConfigError("timeseries: a GutenTAG config holds a list under 'timeseries'")
    configs: dict[str, SeriesConfig] = {}
    for i, series in enumerate(raw["timeseries"]):
        path = f"timeseries[{i}]"
        if not isinstance(series, dict):
            raise ConfigError(f"{path}: expected a mapping, got {series!r}")
        _check_keys(series, _SERIES_KEYS, path)
        name = str(series.get("name", f"ts-{i}"))
        if name in configs:
            raise ConfigError(f"{path}.name: {name!r} names an earlier time series too; names must be unique")
        oscillations = series.get("base-oscillations", series.get("base_oscillations"))
        if not isinstance(oscillations, list) or not oscillations:
            raise ConfigError(f"{path}.base-oscillations: required, one entry per channel")
        channels = series.get("channels")
        if channels is not None and channels != len(oscillations):
            raise ConfigError(f"{path}.channels: {channels}, but {len(oscillations)} base oscillation(s) are given "
                              f"(one per channel)")
        unread = [k for k in ("semi-supervised", "supervised") if series.get(k)]
        if unread:
            warnings.warn(f"{path} ({name}): {', '.join(unread)} training files are not written; only the test "
                          f"series is generated", stacklevel=2)
        config = {
            "name": name,
            "length": series.get("length", _DEFAULT_LENGTH),
            "channels": [_channel(o, f"{path}.base-oscillations[{c}]") for c, o in enumerate(oscillations)],
            "anomalies": [_anomaly(a, f"{path}.anomalies[{k}]") for k, a in enumerate(series.get("anomalies") or [])],
        }
        try:
            configs[name] = SeriesConfig.from_dict(config)
        except ConfigError as exc:
            raise ConfigError(f"{path} ({name}): {exc}") from None
    return configs
