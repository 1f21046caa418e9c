"""``anomalykit datasets list | info | verify``."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from ..cards import load_card
from . import datasets_app
from ._common import friendly_errors, out, parse_options


@datasets_app.command("list")
def list_command() -> None:
    """List the registered datasets with modality, licence and redistribution terms."""
    from .. import KNOWN_DATASETS, list_datasets

    table = Table("name", "modality", "licence", "redistribution", "loader")
    registered = set(list_datasets())
    for name in sorted(registered | set(KNOWN_DATASETS)):
        card = load_card(name)
        table.add_row(
            name,
            card.get("modality", "?"),
            card.get("license_name", card.get("license", "?")),
            card.get("redistribution", "?"),
            "yes" if name in registered else "not installed",
        )
    out.print(table)


@datasets_app.command("info")
@friendly_errors
def info_command(name: str = typer.Argument(..., help="dataset name, e.g. mvtec_ad")) -> None:
    """Show a dataset's card: homepage, licence, layout, expected counts, citation, options."""
    from ..loaders.base import DATASETS

    card = load_card(name)
    loader = DATASETS.get(name) if name in DATASETS else None
    if not card and loader is None:
        DATASETS.get(name)  # raises with the known names
    out.print(f"[bold]{card.get('pretty_name', name)}[/bold] ({name})")
    for key in ("modality", "homepage", "license_name", "redistribution"):
        if key in card:
            out.print(f"{key}: {card[key]}", highlight=False)
    if card.get("redistribution_note"):
        out.print(f"note: {card['redistribution_note']}", highlight=False)
    if loader is not None:
        options = ", ".join(f"{k}={v!r}" for k, v in loader.options.items()) or "none"
        out.print(f"load options: {options}, strict=True", highlight=False)
    if card.get("layout"):
        out.print("layout:\n" + card["layout"].rstrip(), highlight=False)
    counts = card.get("expected_counts", {})
    scalar = {k: v for k, v in counts.items() if not isinstance(v, dict)}
    if scalar:
        out.print("expected counts: " + ", ".join(f"{k}={v}" for k, v in scalar.items()), highlight=False)
    out.print("citation:\n" + card.get("citation", "").rstrip(), highlight=False)


@datasets_app.command("verify")
@friendly_errors
def verify_command(
    name: str = typer.Argument(..., help="dataset name"),
    root: Path = typer.Option(..., "--root", "-r", help="dataset root folder"),
    option: list[str] = typer.Option(None, "--option", "-o", help="loader option key=value (repeatable)"),
    decode: bool = typer.Option(False, "--decode", help="also check that every image decodes"),
) -> None:
    """Compare a dataset tree with its layout and expected counts; exit 1 when anything differs."""
    from ..loaders.base import DATASETS

    loader = DATASETS.get(name)(root, **parse_options(option))
    try:
        report = loader.verify(decode=decode)
    except TypeError:
        report = loader.verify()
    for title, items, colour in (
        ("missing", report.missing, "red"),
        ("extra", report.extra, "yellow"),
        ("malformed", report.malformed, "red"),
        ("count mismatches", report.count_mismatches, "yellow"),
    ):
        if items:
            out.print(f"[{colour}]{title} ({len(items)}):[/{colour}]")
            for item in items[:200]:
                out.print(f"  {item}", highlight=False)
            if len(items) > 200:
                out.print(f"  ... and {len(items) - 200} more")
    if report.ok:
        total = sum(report.counts.values())
        out.print(f"[green]ok[/green]: {name} at {root} matches the layout" + (f" ({total} files counted)" if total else ""))
    else:
        raise typer.Exit(1)
