"""``anomalykit generate image METHOD --from DATASET --root R --out DIR``."""

from __future__ import annotations

from pathlib import Path

import typer

from . import generate_app
from ._common import friendly_errors, out, parse_options
from ._generate_common import print_corpus_summary


@generate_app.command("image")
@friendly_errors
def image_command(
    method: str = typer.Argument(..., help="image generator: perlin, cutpaste, cutpaste_scar, nsa, or any other "
                                           "registered one"),
    source: str = typer.Option(..., "--from", help="a registered image dataset, e.g. mvtec_ad or visa"),
    root: Path = typer.Option(..., "--root", "-r", help="root folder of the --from dataset"),
    out_dir: Path = typer.Option(..., "--out", help="output folder for shards, manifest, card and contact sheet"),
    per_image: int = typer.Option(1, "--per-image", help="anomalies generated per normal training image"),
    seed: int = typer.Option(0, "--seed", help="corpus seed; the same seed gives the same bytes"),
    workers: int = typer.Option(1, "--workers", "-w", help="worker processes"),
    option: list[str] = typer.Option(None, "--option", "-o",
                                     help="generator option key=value (repeatable), e.g. texture_dir=dtd/images"),
    category: list[str] = typer.Option(None, "--category", "-c", help="only these categories (repeatable)"),
    load_option: list[str] = typer.Option(None, "--load-option", help="dataset loader option key=value (repeatable)"),
    contact_sheet: int = typer.Option(16, "--contact-sheet", help="samples drawn into contact_sheet.png (0: none)"),
) -> None:
    """Turn the normal training images of a dataset into labelled synthetic anomalies, written as
    shards with a dataset card and a PNG contact sheet. An interrupted run resumes when called
    again with the same arguments. NSA takes its donor patches from the same dataset unless
    donor_dir or donor_dataset is given."""
    from ..image_corpus import generate_image_corpus

    result = generate_image_corpus(
        method, source, root, out_dir, per_image=per_image, seed=seed, workers=workers,
        options=parse_options(option), category=list(category) if category else None,
        load_options=parse_options(load_option), contact_sheet=contact_sheet, progress=True,
    )
    resumed = f" ({result.resumed} found done from an earlier run)" if result.resumed else ""
    out.print(f"{result.generated} samples generated{resumed}; {result.num_samples} in total", highlight=False, soft_wrap=True)
    print_corpus_summary(result.manifest, out_dir, extra=(result.contact_sheet,) if result.contact_sheet else ())
