"""A corpus of generated series: shards, a card, a preview PNG and a CSV of the first sample.

Series are generated from nothing (``num_samples`` seeds), or, with ``sources``, by injecting the
config's anomalies into given series (e.g. a dataset's normal samples). The corpus is identical
whatever the number of workers (``anomalykit.corpus.generate_corpus``).

>>> from anomalykit.generators.series.corpus import generate_series_corpus      # doctest: +SKIP
>>> generate_series_corpus("examples/series.yaml", "out/series", num_samples=100, workers=2)  # doctest: +SKIP
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ...errors import ConfigError
from ...schema import Sample
from ...shards import ShardManifest
from .config import InjectConfig, SeriesConfig, _read_yaml, load_config
from .syntsbench import SeriesInjectGenerator, SynTSBenchGenerator, _SeriesGenerator

__all__ = ["generate_series_corpus", "PREVIEW_NAME", "CSV_PREVIEW_NAME"]

PREVIEW_NAME = "preview.png"
CSV_PREVIEW_NAME = "preview.csv"


_GENERATION_ONLY = ("length", "channels", "noise", "name")


def _inject_config(config: SeriesConfig | dict[str, Any] | str | Path) -> InjectConfig:
    """The anomalies (and split) of a series config, for injection into given series; the keys
    that describe a generated series do not apply there and are reported."""
    if isinstance(config, SeriesConfig):
        return InjectConfig(anomalies=config.anomalies, include_clean=config.include_clean)
    raw = config if isinstance(config, dict) else _read_yaml(config)
    if not isinstance(raw, dict):
        raise ConfigError(f"config: expected a mapping, got {type(raw).__name__}")
    ignored = sorted(k for k in raw if k in _GENERATION_ONLY)
    if ignored:
        warnings.warn(f"injecting into given series: config keys {', '.join(ignored)} describe a generated series "
                      f"and are not used", stacklevel=3)
    return InjectConfig.from_dict({k: v for k, v in raw.items() if k not in _GENERATION_ONLY})


def load_series_config(config: SeriesConfig | dict[str, Any] | str | Path, only: str | None = None) -> SeriesConfig:
    """A series config; a GutenTAG config (``timeseries: [...]``) gives the entry named ``only``
    (or its single entry)."""
    if isinstance(config, SeriesConfig):
        return config
    raw = config if isinstance(config, dict) else _read_yaml(config)
    if isinstance(raw, dict) and "timeseries" in raw:
        from .gutentag import from_gutentag

        configs = from_gutentag(raw)
        if only is not None:
            if only not in configs:
                raise ConfigError(f"--only: {only!r} is not a time series of this GutenTAG config; "
                                  f"known: {', '.join(configs)}")
            return configs[only]
        if len(configs) != 1:
            raise ConfigError(f"timeseries: this GutenTAG config has {len(configs)} time series; pick one with "
                              f"--only ({', '.join(configs)})")
        return next(iter(configs.values()))
    if only is not None:
        raise ConfigError("--only: applies to GutenTAG configs (with a 'timeseries' list)")
    return load_config(raw)


def generate_series_corpus(config: SeriesConfig | dict[str, Any] | str | Path, out_dir: str | Path, *,
                           num_samples: int | None = None, sources: Sequence[Sample] | None = None,
                           per_source: int = 1, seed: int = 0, workers: int = 1, preview: bool = True,
                           progress: bool = False, only: str | None = None) -> ShardManifest:
    """Write a series corpus into ``out_dir`` (shards, ``manifest.json``, ``README.md`` card,
    ``preview.png`` and ``preview.csv`` of the first sample). With ``sources``, the config's
    anomalies are injected into each source series (``series_inject``). A GutenTAG config is
    read too (``only`` names its time series when it has several). Called again with the same
    settings it resumes; other settings in the same folder are refused."""
    from ...corpus import generate_corpus
    from ...corpus import record_settings, run_settings
    from ...shards import first_samples
    from .export import to_gutentag_csv
    from .plot import plot_series

    if sources is None and (num_samples is None or num_samples < 1):
        raise ConfigError(f"num_samples: {num_samples} is below the allowed range [1, inf] (or give sources)")
    if sources is not None and (num_samples is not None or only is not None):
        raise ConfigError("num_samples/only: apply to generated series; with sources, per_source sets the copies "
                          "per source series")
    if workers < 1:
        raise ConfigError(f"workers: {workers} is below the allowed range [1, inf]")
    if per_source < 1:
        raise ConfigError(f"per_source: {per_source} is below the allowed range [1, inf]")
    if sources is None:
        cfg = load_series_config(config, only)
        generator: _SeriesGenerator = SynTSBenchGenerator(cfg)
        split = cfg.split
    else:
        generator = SeriesInjectGenerator(_inject_config(config))
        split = generator.config.split  # None keeps each source's split
    out = Path(out_dir)
    record_settings(out, run_settings(
        generator, sources=None if sources is None else getattr(sources, "name", "given series"),
        num_sources=None if sources is None else len(sources), num_samples=num_samples,
        per_source=per_source if sources is not None else None, seed=seed))
    manifest = generate_corpus(generator, sources, out_dir=out, num_samples=num_samples, per_source=per_source,
                               seed=seed, workers=workers, split=split, progress=progress)
    if preview and manifest.num_samples:
        first = first_samples(out, 1)[0]
        plot_series(first, out / PREVIEW_NAME)
        to_gutentag_csv(first, out / CSV_PREVIEW_NAME)
    return manifest
