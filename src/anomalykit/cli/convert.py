"""``anomalykit convert NAME --root R --out DIR``: any dataset to shards with a card."""

from __future__ import annotations

from pathlib import Path

import typer

from . import app
from ._common import console, friendly_errors, out, parse_options


@app.command("convert")
@friendly_errors
def convert_command(
    name: str = typer.Argument(..., help="dataset name, e.g. mvtec_ad"),
    root: Path = typer.Option(..., "--root", "-r", help="dataset root folder"),
    out_dir: Path = typer.Option(..., "--out", help="output folder for shards, manifest and card"),
    option: list[str] = typer.Option(None, "--option", "-o", help="loader option key=value (repeatable)"),
    split: list[str] = typer.Option(None, "--split", help="keep only these splits"),
    category: list[str] = typer.Option(None, "--category", "-c", help="keep only these categories"),
    max_shard_mb: int = typer.Option(1000, "--max-shard-mb", help="shard size bound in MB"),
    strict: bool = typer.Option(True, "--strict/--no-strict", help="stop at the first unreadable file"),
) -> None:
    """Write a dataset as webdataset shards with a SHA-256 manifest and a Hub dataset card.
    Interrupted runs resume when called again with the same arguments."""
    import anomalykit

    options = parse_options(option)
    if category:
        options["category"] = list(category)
    dataset = anomalykit.load(name, root, strict=strict, **options)
    if split:
        dataset = dataset.filter(split=list(split))
    manifest = dataset.write_shards(out_dir, max_bytes=max_shard_mb * 1_000_000, progress=True)
    if dataset.skipped:
        console.print(f"[yellow]skipped {len(dataset.skipped)} unreadable item(s):[/yellow]")
        for key, reason in dataset.skipped:
            console.print(f"  {key}: {reason}", highlight=False)
    report_written(out_dir, manifest)


def report_written(out_dir: Path, manifest) -> None:
    for split, info in sorted(manifest.splits().items()):
        out.print(f"{split}: {info['num_examples']} samples in {len(info['files'])} shard(s), "
                  f"{info['num_bytes'] / 1e6:.1f} MB", highlight=False)
    out.print(f"wrote {out_dir / 'manifest.json'}", highlight=False)
    if (out_dir / "README.md").is_file():
        out.print(f"wrote {out_dir / 'README.md'} (dataset card)", highlight=False)
