"""``anomalykit demo``: the whole path on a fresh machine with no data."""

from __future__ import annotations

from pathlib import Path

import typer

from . import app
from ._common import friendly_errors, out


@app.command("demo")
@friendly_errors
def demo_command(
    out_dir: Path = typer.Option(Path("demo-output"), "--out", help="where to write the dataset, shards and card"),
    seed: int = typer.Option(0, "--seed"),
) -> None:
    """Build a small MVTec-AD-layout dataset, load it, write shards and a card, read them back."""
    import anomalykit
    from ..shards import read_shards
    from ..testing import build

    from .convert import report_written

    out_dir.mkdir(parents=True, exist_ok=True)
    data_root = out_dir / "mvtec_ad"
    built = build("mvtec_ad", data_root, categories={"bottle": ("broken_large", "contamination"), "grid": ("bent",)},
                  n_train=8, n_test_good=4, n_defect=4, size=64, seed=seed)
    out.print(f"built an MVTec AD-layout tree of {built.expected['total']} images at {data_root}", highlight=False)
    dataset = anomalykit.load("mvtec_ad", data_root)
    out.print(f"loaded {dataset!r}: {dataset.counts()}", highlight=False)
    first = dataset.filter(split="test", label=1)[0]
    out.print(f"first anomalous sample: {first!r}, {int(first.target.sum())} mask pixels", highlight=False)
    shards_dir = out_dir / "shards"
    manifest = dataset.write_shards(shards_dir, progress=True)
    report_written(shards_dir, manifest)
    again = sum(1 for _ in read_shards(shards_dir))
    out.print(f"read back {again} samples from the shards, checksums verified", highlight=False)
