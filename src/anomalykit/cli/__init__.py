"""The ``anomalykit`` command line.

Sub-commands live in the modules of this package; each module attaches its commands to one of
the apps below (``app``, ``datasets_app``, ``generate_app``) and is imported by ``main``, so a
new module adds its commands without editing this file.
"""

from __future__ import annotations

import importlib
import pkgutil

import typer

app = typer.Typer(
    name="anomalykit",
    help="Load anomaly-detection datasets, synthesise labelled anomalies, write Hub-ready shards.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
)
datasets_app = typer.Typer(help="List, describe and verify datasets.", no_args_is_help=True)
generate_app = typer.Typer(help="Generate labelled synthetic anomalies into shards.", no_args_is_help=True)
app.add_typer(datasets_app, name="datasets")
app.add_typer(generate_app, name="generate")

_loaded = False


def load_commands() -> None:
    global _loaded
    if _loaded:
        return
    _loaded = True
    for module in pkgutil.iter_modules(__path__):
        if not module.name.startswith("_"):
            importlib.import_module(f"{__name__}.{module.name}")


def main() -> None:
    load_commands()
    app()


load_commands()
