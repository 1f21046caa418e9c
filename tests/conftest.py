"""Shared test setup: offline Hugging Face, the real-files folder, small builders."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("MPLBACKEND", "Agg")

REPO = Path(__file__).resolve().parents[1]


def shared_real_dir() -> Path | None:
    """``../shared/real`` beside the repository (or /work/shared/real), when present."""
    for candidate in (REPO.parent / "shared" / "real", Path("/work/shared/real")):
        if candidate.is_dir():
            return candidate
    return None


@pytest.fixture
def real_dir() -> Path:
    path = shared_real_dir()
    if path is None:
        pytest.skip("the real split/annotation files (../shared/real) are not present on this machine")
    return path
