"""The normal-behaviour autoencoder of CARE to Compare (wind-turbine SCADA), scored with the CARE score.

As in the benchmark's reference model, a model is trained per event dataset (``grouping="event"``;
or per turbine, ``"asset"``; or one for every sample, ``"shared"``) on the **training part's
normal-status rows only** (``meta["normal_mask"]`` of the ``care`` loader, status 0 by default),
standardised with their mean and deviation. The autoencoder is a symmetric MLP
(C -> hidden -> code -> hidden -> C). A step's score is the RMSE of the standardised
reconstruction over the channels that are present (missing cells are left out), divided by the
model's threshold, the ``threshold_quantile`` of the training steps' RMSE: a normalised score
above 1 flags the step as anomalous. The anomaly map covers every row of the sample (aligned with
its target); the sample score aggregates the prediction rows (all rows when there are none).

``evaluate_care`` turns those flags into the CARE score (``anomalykit.metrics.care``).

>>> import anomalykit                                                             # doctest: +SKIP
>>> ds = anomalykit.load("care", root, part="both", statistics=["average"])       # doctest: +SKIP
>>> detector = anomalykit.get_baseline("care_ae").fit(ds.filter(split="train"))   # doctest: +SKIP
>>> evaluate_care(detector, ds.filter(split="test")).result.score                 # doctest: +SKIP
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import ConfigError
from ..metrics.care import CareEventEvaluation, CareResult, CareWeights, care_score, evaluate_care_sample
from ..schema import Modality, Sample, Series
from ._windows import Standardiser, aggregate, series_values, torch_session
from .base import Detector, DetectorConfig, DetectorOutput, param, register_baseline

__all__ = ["CareAEConfig", "CareAEDetector", "CareEvaluation", "evaluate_care", "inject_fault"]

GROUPINGS = ("event", "asset", "shared")
CARE_AGGREGATES = ("max", "mean", "p99", "fraction")


@dataclass
class CareAEConfig(DetectorConfig):
    grouping: str = param("event", choices=GROUPINGS, doc="one model per event dataset, per turbine, or one in all")
    hidden: int = param(64, low=1, high=8192, doc="width of the hidden layers")
    code: int = param(8, low=1, high=4096, doc="width of the bottleneck")
    epochs: int = param(40, low=1, high=10_000)
    batch_size: int = param(128, low=1, high=65_536)
    learning_rate: float = param(1e-3, low=1e-7, high=1.0)
    threshold_quantile: float = param(0.99, low=0.5, high=1.0, doc="training RMSE quantile that normalises scores to 1")
    aggregate: str = param("fraction", choices=CARE_AGGREGATES,
                           doc="sample score over prediction rows: max/mean/p99 of the map, or the share of "
                               "flagged rows")
    threads: int = param(1, low=0, high=1024, doc="torch CPU threads while fitting and scoring (0 = torch's setting)")


def _network(channels: int, hidden: int, code: int):
    from torch import nn

    return nn.Sequential(nn.Linear(channels, hidden), nn.ReLU(), nn.Linear(hidden, code), nn.ReLU(),
                         nn.Linear(code, hidden), nn.ReLU(), nn.Linear(hidden, channels))


@dataclass
class _Model:
    scaler: Standardiser
    net: Any
    threshold: float


def _masks(sample: Sample, steps: int) -> tuple[np.ndarray, np.ndarray]:
    """(training-part rows, normal-status rows) of a sample; plain series count as all of both."""
    meta = sample.meta or {}
    prediction = np.asarray(meta["is_prediction"], bool) if "is_prediction" in meta else np.zeros(steps, bool)
    normal = np.asarray(meta["normal_mask"], bool) if "normal_mask" in meta else np.ones(steps, bool)
    if prediction.shape != (steps,) or normal.shape != (steps,):
        raise ConfigError(f"care_ae: {sample.key}: meta is_prediction/normal_mask do not have one entry per row "
                          f"({steps})")
    return ~prediction, normal


@register_baseline("care_ae")
class CareAEDetector(Detector):
    """CARE normal-behaviour autoencoder (see the module docstring)."""

    modality = Modality.SERIES
    config_class = CareAEConfig
    config: CareAEConfig

    def group_of(self, sample: Sample) -> str:
        """The model a sample belongs to under ``config.grouping``."""
        if self.config.grouping == "shared":
            return "all"
        meta = sample.meta or {}
        farm = meta.get("farm", sample.category)
        if self.config.grouping == "event":
            if "event_id" not in meta:
                raise ConfigError(f"care_ae: {sample.key} has no meta['event_id'] (not a care sample); "
                                  f"use grouping='shared'")
            return f"{farm}/{meta['event_id']}"
        if "asset_id" not in meta:
            raise ConfigError(f"care_ae: {sample.key} has no meta['asset_id'] (not a care sample); "
                              f"use grouping='shared'")
        return f"{farm}/asset-{meta['asset_id']}"

    def _fit(self, samples: Sequence[Sample], rng: np.random.Generator, progress: bool) -> None:
        import torch
        from rich.progress import track

        cfg = self.config
        rows: dict[str, list[np.ndarray]] = {}
        channels: dict[str, tuple[str, ...]] = {}
        for sample in samples:
            values = series_values(sample, self.name)
            train_part, normal = _masks(sample, values.shape[0])
            group = self.group_of(sample)
            names = tuple(sample.data.channels or ())  # type: ignore[union-attr]
            if channels.setdefault(group, names) != names:
                raise ConfigError(f"care_ae: {sample.key} has channels {names[:4]}..., other samples of model "
                                  f"{group!r} have {channels[group][:4]}...; use grouping='event' or 'asset'")
            rows.setdefault(group, []).append(values[train_part & normal])
        self.models_: dict[str, _Model] = {}
        seeds = {group: int(rng.integers(2**63 - 1)) for group in sorted(rows)}
        for group in track(sorted(rows), description="care_ae: training", disable=not progress):
            train = np.concatenate(rows[group], axis=0)
            if train.shape[0] < 2:
                raise ConfigError(f"care_ae: model {group!r} has {train.shape[0]} normal-status training row(s); "
                                  f"load the training part (part='train' or 'both') with normal rows")
            scaler = Standardiser.fit([train], f"care_ae model {group!r}")
            x = scaler.transform(train, group, self.name)
            present = ~np.isnan(train)
            with torch.random.fork_rng(devices=[]), torch_session(cfg.threads):
                torch.manual_seed(seeds[group])
                net = _network(x.shape[1], cfg.hidden, cfg.code)
                optimizer = torch.optim.Adam(net.parameters(), lr=cfg.learning_rate)
                order = torch.Generator().manual_seed(seeds[group] // 2)
                inputs = torch.from_numpy(x.astype(np.float32))
                weights = torch.from_numpy(present.astype(np.float32))
                net.train()
                for _ in range(cfg.epochs):
                    for batch in torch.randperm(len(inputs), generator=order).split(cfg.batch_size):
                        optimizer.zero_grad()
                        error = (net(inputs[batch]) - inputs[batch]) ** 2 * weights[batch]
                        loss = error.sum() / weights[batch].sum().clamp(min=1.0)
                        loss.backward()
                        optimizer.step()
                net.eval()
            model = _Model(scaler, net, 1.0)
            threshold = float(np.quantile(self._rmse(model, train, group), cfg.threshold_quantile))
            model.threshold = threshold if threshold > 1e-12 else 1.0
            self.models_[group] = model

    def _rmse(self, model: _Model, values: np.ndarray, key: str) -> np.ndarray:
        import torch

        x = model.scaler.transform(values, key, self.name)
        present = ~np.isnan(values)
        with torch.no_grad(), torch_session(self.config.threads):
            reconstruction = model.net(torch.from_numpy(x.astype(np.float32))).numpy().astype(np.float64)
        squared = (reconstruction - x) ** 2 * present
        counts = present.sum(axis=1)
        return np.sqrt(squared.sum(axis=1) / np.maximum(counts, 1))

    def step_scores(self, sample: Sample) -> np.ndarray:
        """Normalised per-row scores (RMSE / the model's threshold; > 1 means anomalous)."""
        group = self.group_of(sample)
        model = self.models_.get(group)
        if model is None:
            raise ConfigError(f"care_ae: no model for {sample.key} (model {group!r}); fitted models: "
                              f"{', '.join(sorted(self.models_)[:8])}; fit on this event's training part")
        return self._rmse(model, series_values(sample, self.name), sample.key) / model.threshold

    def _score(self, samples: Sequence[Sample]) -> list[DetectorOutput]:
        outputs = []
        for sample in samples:
            steps = self.step_scores(sample)
            train_part, _ = _masks(sample, steps.size)
            scored = steps[~train_part] if (~train_part).any() else steps
            how = self.config.aggregate
            if how == "fraction":
                score = float(np.mean(scored > 1.0))
            else:
                score = aggregate(scored, how)
            extras = {"model": self.group_of(sample), "step_threshold": 1.0}
            outputs.append(DetectorOutput(sample.key, score, steps, extras))
        return outputs

    def state_dict(self) -> dict[str, np.ndarray]:
        groups = sorted(self.models_)
        state: dict[str, np.ndarray] = {"groups": np.frombuffer(json.dumps(groups).encode(), np.uint8).copy()}
        for i, group in enumerate(groups):
            model = self.models_[group]
            state[f"m{i}.mean"], state[f"m{i}.scale"] = model.scaler.mean, model.scaler.scale
            state[f"m{i}.threshold"] = np.array([model.threshold])
            for name, tensor in model.net.state_dict().items():
                state[f"m{i}.net.{name}"] = tensor.detach().cpu().numpy()
        return state

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        import torch

        groups = json.loads(bytes(np.asarray(state["groups"], np.uint8)).decode())
        self.models_ = {}
        for i, group in enumerate(groups):
            scaler = Standardiser(state[f"m{i}.mean"], state[f"m{i}.scale"])
            net = _network(scaler.mean.size, self.config.hidden, self.config.code)
            prefix = f"m{i}.net."
            net.load_state_dict({k[len(prefix):]: torch.from_numpy(np.array(v))
                                 for k, v in state.items() if k.startswith(prefix)})
            net.eval()
            self.models_[group] = _Model(scaler, net, float(state[f"m{i}.threshold"][0]))

    @classmethod
    def example(cls) -> tuple[dict[str, Any], list[Sample], list[Sample]]:
        import anomalykit
        from ..testing import build

        with tempfile.TemporaryDirectory() as folder:
            built = build("care", folder, farms=("A", "B"))
            loaded = list(anomalykit.load("care", built.root, part="both", **built.options))
        train = [s for s in loaded if s.split == "train"]
        test = [inject_fault(s, seed=i) if s.label == 1 else s for i, s in enumerate(loaded) if s.split == "test"]
        return {"epochs": 15, "hidden": 16, "code": 4, "batch_size": 64}, train, test


def inject_fault(sample: Sample, *, seed: int, offset: float = 3.0, channels: Sequence[int] = (0, 1, 2)) -> Sample:
    """A copy of a ``care`` sample of an anomaly event with a level shift of ``offset`` (in units
    of each channel's scale) over its event window on ``channels``, injected with the
    ``series_inject`` generator; meta, target and keys stay those of the sample."""
    from ..generators.series.syntsbench import SeriesInjectGenerator

    target = np.asarray(sample.target)
    window = np.flatnonzero(target)
    if window.size == 0:
        raise ConfigError(f"inject_fault: {sample.key} has no event window (target is all 0)")
    generator = SeriesInjectGenerator(anomalies=[{"kind": "mean", "channel": list(channels), "start": int(window[0]),
                                                  "length": int(window.size), "offset": offset}])
    injected = generator(sample, seed=seed)
    values = np.asarray(injected.data.values)  # type: ignore[union-attr]
    return Sample(key=sample.key, dataset=sample.dataset, split=sample.split, label=sample.label,
                  data=Series(values, sample.data.timestamps, sample.data.channels),  # type: ignore[union-attr]
                  category=sample.category, defect=sample.defect, target=sample.target, meta=sample.meta,
                  provenance=injected.provenance)


@dataclass
class CareEvaluation:
    """The CARE score of a detector's flags, and the per-event evaluations behind it."""

    result: CareResult
    events: list[CareEventEvaluation] = field(default_factory=list)


def evaluate_care(detector: Detector, samples: Iterable[Sample], *, threshold: float | None = None,
                  reliability_beta: float = 0.5, weights: CareWeights = CareWeights(),
                  **event_options: Any) -> CareEvaluation:
    """CARE score of ``detector`` on ``care`` samples (``part="all"`` or ``"prediction"``).

    A step is flagged when its anomaly-map value exceeds ``threshold``; by default the threshold
    the detector states in ``extras["step_threshold"]`` (1.0 for ``care_ae``). ``event_options`` go to ``anomalykit.metrics.care.evaluate_care_event``
    (``criticality_threshold``, ``detection``, ``coverage_beta``, ``ignore_normal_index``, ...).
    """
    items = list(samples)
    events = []
    for sample, output in zip(items, detector.score_samples(items)):
        if output.anomaly_map is None:
            raise ConfigError(f"evaluate_care: {detector.name} gives no per-step map for {sample.key}")
        limit = threshold if threshold is not None else (output.extras or {}).get("step_threshold")
        if limit is None:
            raise ConfigError(f"evaluate_care: {detector.name} states no step threshold; pass threshold=")
        flags = np.asarray(output.anomaly_map) > limit
        events.append(evaluate_care_sample(sample, flags, **event_options))
    return CareEvaluation(care_score(events, reliability_beta=reliability_beta, weights=weights), events)
