"""Sliding-window PCA reconstruction error on multivariate series.

Simple subspace methods are among the strongest on TSB-AD-M (its PCA: VUS-PR 0.310, beside USAD
0.304). TSB-AD's PCA (PyOD's) scores a window by its distances to the selected eigenvectors,
weighted by their explained-variance ratios; this one scores the plain reconstruction error.

Channels are standardised with the training mean and deviation; every window of ``window``
steps (T x C flattened) is projected onto the principal subspace learnt from the training windows
(``n_components``: a share of explained variance in (0, 1), or a number of components >= 1); the
window score is the mean squared residual, and a step's score is the mean over the windows that
cover it, so the anomaly map has one value per step, aligned with the sample's target. The sample
score aggregates the map (``aggregate``: max, mean or p99). A missing value (NaN) is scored as
the channel's training mean.

>>> import anomalykit
>>> params, train, test = anomalykit.baselines.BASELINES.get("pca").example()
>>> detector = anomalykit.get_baseline("pca", **params).fit(train, seed=0)
>>> detector.score_samples(test)[0].anomaly_map.shape == test[0].target.shape
True
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import ConfigError
from ..schema import Modality, Sample
from ._windows import (
    AGGREGATES,
    Standardiser,
    aggregate,
    check_length,
    example_series,
    series_values,
    training_arrays,
    training_windows,
    window_chunks,
    windows_to_steps,
)
from .base import Detector, DetectorConfig, DetectorOutput, param, register_baseline

__all__ = ["PCADetector", "PCAConfig"]


@dataclass
class PCAConfig(DetectorConfig):
    window: int = param(16, low=1, high=4096, doc="steps per sliding window")
    n_components: float = param(0.95, low=0.0, high=100_000,
                                doc="explained-variance share in (0, 1), or a number of components >= 1")
    train_stride: int = param(1, low=1, high=10_000, doc="step between training windows")
    max_train_windows: int = param(20_000, low=0, high=10_000_000, doc="training windows kept at most (0 = all)")
    aggregate: str = param("max", choices=AGGREGATES, doc="per-step map to sample score")

    def validate(self) -> None:
        super().validate()
        value = float(self.n_components)
        if value <= 0 or (value >= 1 and not value.is_integer()):
            raise ConfigError(f"PCAConfig.n_components: {self.n_components!r} must be a variance share in (0, 1) "
                              f"or a whole number of components >= 1")


@register_baseline("pca")
class PCADetector(Detector):
    """Sliding-window PCA reconstruction error (see the module docstring)."""

    modality = Modality.SERIES
    config_class = PCAConfig
    config: PCAConfig

    def _fit(self, samples: Sequence[Sample], rng: np.random.Generator, progress: bool) -> None:
        from sklearn.decomposition import PCA

        cfg = self.config
        arrays = training_arrays(samples, self.name)
        self.scaler_ = Standardiser.fit(arrays, self.name)
        scaled = [self.scaler_.transform(a, s.key, self.name) for a, s in zip(arrays, samples)]
        train = training_windows(scaled, cfg.window, cfg.train_stride, cfg.max_train_windows, rng)
        limit = min(train.shape)
        wanted = float(cfg.n_components)
        if wanted >= 1:
            if wanted > limit:
                raise ConfigError(f"{self.name}: n_components={int(wanted)} exceeds min(training windows, "
                                  f"window x channels) = {limit}")
            components: float | int = int(wanted)
        else:
            components = wanted
        pca = PCA(n_components=components, svd_solver="full").fit(train)
        self.center_ = pca.mean_.astype(np.float64)
        self.components_ = pca.components_.astype(np.float64)
        self.explained_variance_ratio_ = pca.explained_variance_ratio_.astype(np.float64)

    def step_scores(self, sample: Sample) -> np.ndarray:
        """Per-step reconstruction error of one sample (T,)."""
        values = series_values(sample, self.name)
        check_length(sample, values.shape[0], self.config.window, self.name)
        errors = []
        for block in window_chunks(self.scaler_.transform(values, sample.key, self.name), self.config.window):
            x = block - self.center_
            residual = x - (x @ self.components_.T) @ self.components_
            errors.append(np.mean(residual**2, axis=1))
        return windows_to_steps(np.concatenate(errors), values.shape[0], self.config.window)

    def _score(self, samples: Sequence[Sample]) -> list[DetectorOutput]:
        outputs = []
        for sample in samples:
            steps = self.step_scores(sample)
            outputs.append(DetectorOutput(sample.key, aggregate(steps, self.config.aggregate), steps,
                                          {"n_components": int(self.components_.shape[0])}))
        return outputs

    def state_dict(self) -> dict[str, np.ndarray]:
        return {"mean": self.scaler_.mean, "scale": self.scaler_.scale, "center": self.center_,
                "components": self.components_, "explained_variance_ratio": self.explained_variance_ratio_}

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        self.scaler_ = Standardiser(state["mean"], state["scale"])
        self.center_ = state["center"]
        self.components_ = state["components"]
        self.explained_variance_ratio_ = state["explained_variance_ratio"]

    @classmethod
    def example(cls) -> tuple[dict[str, Any], list[Sample], list[Sample]]:
        train, test = example_series(seed=0)
        return {"window": 8, "n_components": 0.9}, train, test
