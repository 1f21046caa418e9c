"""``anomalykit train BASELINE --from DATASET --root R --out DIR``: fit, evaluate, save."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.table import Table

from . import app
from ._common import friendly_errors, out, parse_options


@app.command("train")
@friendly_errors
def train_command(
    baseline: str = typer.Argument(..., help="reference detector, e.g. patchcore (see `anomalykit baselines`)"),
    dataset_name: str = typer.Option(..., "--from", help="dataset name, e.g. mvtec_ad"),
    root: Path = typer.Option(..., "--root", "-r", help="dataset root folder"),
    out_dir: Path = typer.Option(..., "--out", help="where to write the model and metrics.json"),
    category: list[str] = typer.Option(None, "--category", "-c", help="dataset categories to use"),
    option: list[str] = typer.Option(None, "--option", "-o", help="detector parameter key=value (repeatable)"),
    load_option: list[str] = typer.Option(None, "--load-option", help="loader option key=value (repeatable)"),
    train_split: str = typer.Option("train", "--train-split"),
    test_split: str = typer.Option("test", "--test-split"),
    seed: int = typer.Option(0, "--seed"),
) -> None:
    """Fit a reference detector on a dataset's training split (normal samples unless the method
    uses labels), evaluate it on the test split, and save the model and the metrics."""
    import anomalykit
    from ..baselines.evaluate import evaluate
    from ..errors import ConfigError

    load_options = parse_options(load_option)
    if category:
        load_options["category"] = list(category)
    dataset = anomalykit.load(dataset_name, root, **load_options)
    detector = anomalykit.get_baseline(baseline, **parse_options(option))
    if dataset.modality != detector.modality:
        raise ConfigError(f"{baseline} detects {detector.modality.value} anomalies; {dataset_name} holds "
                          f"{dataset.modality.value} samples")
    train = dataset.filter(split=train_split)
    if not (detector.uses_labels or detector.trains_on_any_sample):
        train = train.filter(label=0)
    test = dataset.filter(split=test_split)
    if len(train) == 0 or len(test) == 0:
        raise ConfigError(f"{dataset_name}: {len(train)} training and {len(test)} test samples; both are needed "
                          f"(check --train-split/--test-split and --category)")
    out.print(f"fitting {baseline} on {len(train)} samples of {dataset_name} (seed {seed})", highlight=False)
    detector.fit(train, seed=seed, progress=True)
    metrics = evaluate(detector, test)
    metrics.update({"dataset": dataset_name, "categories": list(category or []), "train_samples": len(train),
                    "seed": seed, "parameters": detector.config.to_dict()})
    out_dir.mkdir(parents=True, exist_ok=True)
    detector.save(out_dir / "model")
    (out_dir / "metrics.json").write_text(json.dumps(metrics, indent=1, sort_keys=True))
    table = Table("metric", "value")
    for key, value in metrics.items():
        if isinstance(value, float):
            table.add_row(key, f"{value:.4f}")
    out.print(table)
    out.print(f"wrote {out_dir / 'model'} and {out_dir / 'metrics.json'}", highlight=False)


@app.command("baselines")
def baselines_command() -> None:
    """List the reference detectors with their modality."""
    from ..baselines.base import BASELINES

    table = Table("name", "modality", "trains on")
    for name, detector_class in BASELINES.items():
        table.add_row(name, detector_class.modality.value, detector_class.training_data())
    out.print(table)
