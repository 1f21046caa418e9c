"""Helpers shared by the command modules: option parsing and error reporting."""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import wraps
from typing import Any

import typer
from rich.console import Console

from ..errors import AnomalyKitError

console = Console(stderr=True)
out = Console()


def parse_options(pairs: list[str] | None) -> dict[str, Any]:
    """``key=value`` pairs; values parsed as JSON when they can be (numbers, lists), else strings.
    A comma-separated value becomes a list (``category=bottle,cable``)."""
    options: dict[str, Any] = {}
    for pair in pairs or []:
        if "=" not in pair:
            raise typer.BadParameter(f"expected key=value, got {pair!r}", param_hint="--option")
        key, value = pair.split("=", 1)
        try:
            options[key] = json.loads(value)
        except ValueError:
            options[key] = value.split(",") if "," in value else value
    return options


def _escape(text: str) -> str:
    from rich.markup import escape

    return escape(text)


def friendly_errors(fn: Callable) -> Callable:
    """Show anomalykit's own errors as one red line and exit 1, not a traceback."""

    @wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except AnomalyKitError as exc:
            notes = "".join(f" ({note})" for note in getattr(exc, "__notes__", ()))
            # escaped: paths and option values may contain [brackets] that rich would read as markup
            console.print(f"[red]error:[/red] {_escape(str(exc))}{_escape(notes)}", highlight=False)
            raise typer.Exit(1) from None

    return wrapper
