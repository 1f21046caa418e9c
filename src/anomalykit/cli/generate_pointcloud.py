"""``anomalykit generate pointcloud METHOD --from DATASET --root R --out DIR`` (or ``--meshes FOLDER``)."""

from __future__ import annotations

from pathlib import Path

import typer

from . import generate_app
from ._common import friendly_errors, parse_options
from ._generate_common import print_corpus_summary


@generate_app.command("pointcloud")
@friendly_errors
def pointcloud_command(
    method: str = typer.Argument(..., help="point-cloud generator: patchgen, dagen or defects3d"),
    source: str = typer.Option(None, "--from", help="a registered point-cloud dataset, e.g. real3d_ad"),
    root: Path = typer.Option(None, "--root", "-r", help="root folder of the --from dataset"),
    meshes: Path = typer.Option(None, "--meshes", help="a folder of .obj/.ply/.stl/.off meshes, instead of --from"),
    out_dir: Path = typer.Option(..., "--out", help="output folder for shards, manifest, card and previews"),
    per_source: int = typer.Option(1, "--per-source", help="generated samples per source cloud"),
    seed: int = typer.Option(0, "--seed", help="corpus seed; the same seed gives the same bytes"),
    workers: int = typer.Option(1, "--workers", "-w", help="worker processes"),
    option: list[str] = typer.Option(None, "--option", "-o", help="generator option key=value (repeatable)"),
    load_option: list[str] = typer.Option(None, "--load-option", help="dataset loader option key=value (repeatable)"),
    limit: int = typer.Option(None, "--limit", help="use only the first N source samples"),
    previews: int = typer.Option(4, "--previews", help="samples drawn into previews.png (0: none)"),
) -> None:
    """Deform the normal training clouds of a dataset (or meshes) into labelled 3D defects, written
    as shards with a dataset card and a PNG preview. Interrupted runs resume."""
    from ..generators.pointcloud.corpus import PREVIEW_NAME, generate_pointcloud_corpus

    manifest = generate_pointcloud_corpus(
        method, out_dir=out_dir, dataset=source, root=root, meshes=meshes, options=parse_options(option),
        load_options=parse_options(load_option), per_source=per_source, seed=seed, workers=workers, limit=limit,
        previews=previews, progress=True,
    )
    print_corpus_summary(manifest, out_dir, extra=(out_dir / PREVIEW_NAME,) if previews else ())
