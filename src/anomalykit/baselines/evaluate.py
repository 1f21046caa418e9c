"""Score a fitted detector on labelled samples: sample-level and dense (per pixel/step/point/node)."""

from __future__ import annotations

import importlib
from collections.abc import Iterable
from typing import Any

import numpy as np

from ..errors import ConfigError
from ..schema import Sample
from .base import Detector, DetectorOutput


def evaluate(detector: Detector, samples: Iterable[Sample]) -> dict[str, Any]:
    """AUROC and AUPRC over samples, and over the dense targets where the detector gives maps.

    Modality-specific scores are added when ``anomalykit.metrics.<modality>`` defines
    ``evaluate_outputs(samples, outputs)`` (for example AUPRO for images).
    """
    from ..metrics.classification import auprc, auroc

    items = list(samples)
    outputs = detector.score_samples(items)
    labels = np.array([s.label for s in items])
    scores = np.array([o.score for o in outputs], dtype=np.float64)
    known = labels >= 0
    result: dict[str, Any] = {
        "baseline": detector.name,
        "samples": int(len(items)),
        "anomalous": int((labels == 1).sum()),
    }
    if len(set(labels[known].tolist())) == 2:
        result["auroc"] = float(auroc(labels[known], scores[known]))
        result["auprc"] = float(auprc(labels[known], scores[known]))
    dense_targets, dense_scores = _dense_pairs(items, outputs)
    if dense_targets is not None and len(np.unique(dense_targets)) == 2:
        result["dense_auroc"] = float(auroc(dense_targets, dense_scores))
        result["dense_auprc"] = float(auprc(dense_targets, dense_scores))
    extra = _modality_metrics(items, outputs)
    result.update(extra)
    return result


def _dense_pairs(items: list[Sample], outputs: list[DetectorOutput]) -> tuple[np.ndarray | None, np.ndarray | None]:
    targets, maps = [], []
    for sample, output in zip(items, outputs):
        if sample.target is None or output.anomaly_map is None:
            continue
        target = np.asarray(sample.target)
        if target.shape != np.asarray(output.anomaly_map).shape:
            raise ConfigError(f"{sample.key}: the detector's anomaly map has shape {np.asarray(output.anomaly_map).shape}, "
                              f"the sample's target {target.shape}")
        targets.append((target > 0.5).ravel().astype(np.int8))
        maps.append(np.asarray(output.anomaly_map, dtype=np.float64).ravel())
    if not targets:
        return None, None
    return np.concatenate(targets), np.concatenate(maps)


def _modality_metrics(items: list[Sample], outputs: list[DetectorOutput]) -> dict[str, Any]:
    if not items:
        return {}
    try:
        module = importlib.import_module(f"anomalykit.metrics.{items[0].modality.value}")
    except ModuleNotFoundError:
        return {}
    hook = getattr(module, "evaluate_outputs", None)
    return dict(hook(items, outputs)) if hook is not None else {}
