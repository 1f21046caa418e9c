"""``anomalykit generate series --config C --out DIR [--num N --seed S --workers W]``."""

from __future__ import annotations

from pathlib import Path

import typer

from . import generate_app
from ._common import friendly_errors, parse_options
from ._generate_common import print_corpus_summary


@generate_app.command("series")
@friendly_errors
def series_command(
    config: Path = typer.Option(..., "--config", "-c", help="YAML config: channels (patterns, noise) and anomalies"),
    out_dir: Path = typer.Option(..., "--out", help="output folder for shards, manifest, card and preview"),
    num: int = typer.Option(None, "--num", "-n", help="series to generate (default 100); not with --from"),
    seed: int = typer.Option(0, "--seed", help="corpus seed; the same seed gives the same bytes"),
    workers: int = typer.Option(1, "--workers", "-w", help="worker processes"),
    source: str = typer.Option(None, "--from", help="inject into the normal series of this registered dataset "
                                                     "instead of generating (e.g. swat, care)"),
    root: Path = typer.Option(None, "--root", "-r", help="root folder of the --from dataset"),
    per_source: int = typer.Option(1, "--per-source", help="anomalous copies per source series (with --from)"),
    load_option: list[str] = typer.Option(None, "--load-option", help="dataset loader option key=value (repeatable)"),
    only: str = typer.Option(None, "--only", help="with a GutenTAG config: the time series to generate"),
) -> None:
    """Generate labelled synthetic series (SynTSBench and GutenTAG patterns, anomalies) into
    shards with a dataset card, a preview PNG and a GutenTAG-style CSV of the first series.
    The config is anomalykit's (see examples/series.yaml) or GutenTAG's. The corpus is the same
    whatever --workers; an interrupted run resumes."""
    from ..errors import ConfigError
    from ..generators.series.corpus import CSV_PREVIEW_NAME, PREVIEW_NAME, generate_series_corpus

    if not config.is_file():
        raise ConfigError(f"--config: file {config} does not exist")
    if source is None:
        given = [name for name, value in (("--root", root), ("--load-option", load_option),
                                          ("--per-source", per_source != 1 or None)) if value]
        if given:
            raise ConfigError(f"{', '.join(given)}: apply to injection into a dataset, which needs --from")
    else:
        given = [name for name, value in (("--num", num), ("--only", only)) if value is not None]
        if given:
            raise ConfigError(f"{', '.join(given)}: apply to generated series, not to injection with --from "
                              f"(use --per-source for the copies per source series)")
    sources = None
    if source is not None:
        if root is None:
            raise ConfigError("--root: required with --from")
        import anomalykit

        sources = anomalykit.load(source, root, **parse_options(load_option)).filter(label=0)
        if len(sources) == 0:
            raise ConfigError(f"--from: {source} at {root} has no normal (label 0) series to inject into")
    manifest = generate_series_corpus(config, out_dir, num_samples=None if sources is not None else 100 if num is None else num,
                                      sources=sources, per_source=per_source, seed=seed, workers=workers,
                                      progress=True, only=only)
    print_corpus_summary(manifest, out_dir, unit="series", extra=(out_dir / PREVIEW_NAME, out_dir / CSV_PREVIEW_NAME))
