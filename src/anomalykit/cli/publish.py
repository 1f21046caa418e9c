"""``anomalykit publish DIR --repo-id owner/name``: upload shards and card to the Hub."""

from __future__ import annotations

from pathlib import Path

import typer

from . import app
from ._common import friendly_errors, out


@app.command("publish")
@friendly_errors
def publish_command(
    folder: Path = typer.Argument(..., help="a shard folder written by convert or generate"),
    repo_id: str = typer.Option(..., "--repo-id", help="Hub dataset repository, owner/name"),
    private: bool = typer.Option(False, "--private", help="create the repository private"),
    gated: bool = typer.Option(False, "--gated", help="ask users to accept the licence terms (manual approval)"),
    dry_run: bool = typer.Option(False, "--dry-run", help="check and list what would be uploaded, upload nothing"),
    token: str = typer.Option(None, "--token", envvar="HF_TOKEN", help="Hub token (default: the logged-in one)"),
) -> None:
    """Verify every shard's checksum, check the source licence's redistribution terms, then
    create the dataset repository and upload shards, manifest, card and previews."""
    from ..publish import plan_publish, publish

    plan = plan_publish(folder, repo_id, private=private, gated=gated)
    for note in plan.notes:
        out.print(f"note: {note}", highlight=False)
    out.print(f"{len(plan.files)} files, {plan.num_bytes / 1e6:.1f} MB, licence terms: {plan.redistribution}",
              highlight=False)
    if dry_run:
        for name in plan.files:
            out.print(f"  {name}", highlight=False)
        return
    url = publish(folder, repo_id, private=private, gated=gated, token=token)
    out.print(f"published {url}", highlight=False)
