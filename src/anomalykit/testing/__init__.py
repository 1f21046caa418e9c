"""Builders of tiny datasets in the exact real on-disk layouts, for tests and for users.

Every loader registers a builder here under its dataset name, so the registry sweep in the
tests runs each loader on real-layout files the moment it exists.

>>> import anomalykit, tempfile
>>> from anomalykit.testing import build
>>> built = build("mvtec_ad", tempfile.mkdtemp())
>>> ds = anomalykit.load("mvtec_ad", built.root, **built.options)
>>> len(ds) == built.expected["total"]
True
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from ..registry import Registry

BUILDERS: Registry[Callable[..., "Built"]] = Registry("testing builder", package="anomalykit.testing")


@dataclass
class Built:
    """What a builder wrote: the root to load, the load options, and the counts to expect."""

    root: Path
    options: dict[str, Any] = field(default_factory=dict)
    expected: dict[str, Any] = field(default_factory=dict)


def register_builder(name: str):
    """Register a builder ``fn(root, **kwargs) -> Built`` for the dataset ``name``."""
    return BUILDERS.register(name)


def build(name: str, root: str | Path, **kwargs: Any) -> Built:
    """Write the tiny ``name`` dataset under ``root`` and describe it."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    return BUILDERS.get(name)(root, **kwargs)


def list_builders() -> list[str]:
    return BUILDERS.names()


__all__ = ["BUILDERS", "Built", "build", "list_builders", "register_builder"]
