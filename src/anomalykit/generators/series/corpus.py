"""A corpus of generated series: shards, a card, a preview PNG and a CSV of the first sample.

Series are generated from nothing (``num_samples`` seeds), or, with ``sources``, by injecting the
config's anomalies into given series (e.g. a dataset's normal samples). The corpus is identical
whatever the number of workers (``anomalykit.corpus.generate_corpus``).

>>> from anomalykit.generators.series.corpus import generate_series_corpus      # doctest: +SKIP
>>> generate_series_corpus("examples/series.yaml", "out/series", num_samples=100, workers=2)  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ...errors import ConfigError
from ...schema import Sample
from ...shards import ShardManifest
from .config import SeriesConfig, load_config
from .syntsbench import SynTSBenchGenerator

__all__ = ["generate_series_corpus", "PREVIEW_NAME", "CSV_PREVIEW_NAME"]

PREVIEW_NAME = "preview.png"
CSV_PREVIEW_NAME = "preview.csv"


def generate_series_corpus(config: SeriesConfig | dict[str, Any] | str | Path, out_dir: str | Path, *,
                           num_samples: int | None = None, sources: Sequence[Sample] | None = None,
                           per_source: int = 1, seed: int = 0, workers: int = 1, preview: bool = True,
                           progress: bool = False) -> ShardManifest:
    """Write a series corpus into ``out_dir`` (shards, ``manifest.json``, ``README.md`` card,
    ``preview.png`` and ``preview.csv`` of the first sample)."""
    from ...corpus import generate_corpus
    from .export import to_gutentag_csv
    from .plot import plot_series

    if sources is None and (num_samples is None or num_samples < 1):
        raise ConfigError(f"num_samples: {num_samples} is below the allowed range [1, inf] (or give sources)")
    if workers < 1:
        raise ConfigError(f"workers: {workers} is below the allowed range [1, inf]")
    cfg = load_config(config)
    generator = SynTSBenchGenerator(cfg)
    out = Path(out_dir)
    first: list[Sample] = []

    def keep_first(sample: Sample) -> None:
        if preview and not first:
            first.append(sample)

    manifest = generate_corpus(generator, sources, out_dir=out, num_samples=num_samples, per_source=per_source,
                               seed=seed, workers=workers, split=cfg.split, progress=progress, on_sample=keep_first)
    if first:
        plot_series(first[0], out / PREVIEW_NAME)
        to_gutentag_csv(first[0], out / CSV_PREVIEW_NAME)
    return manifest
