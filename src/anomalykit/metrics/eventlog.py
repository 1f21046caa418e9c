"""Scores for event-log detectors (CERT): the ``evaluate()`` hook of the eventlog modality."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .insider import evaluate_insider

__all__: list[str] = []  # the hook below is found by anomalykit.baselines.evaluate, not exported


def evaluate_outputs(samples: Sequence[Any], outputs: Sequence[Any]) -> dict[str, Any]:
    """Detection rates at investigation budgets, per instance and per user (see ``metrics.insider``)."""
    report = evaluate_insider(samples, [o.score for o in outputs])
    report.pop("auroc", None)  # evaluate() reports the sample-level AUROC already
    return report
