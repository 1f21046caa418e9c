"""Sultani et al.'s MIL ranking model (CVPR 2018) over precomputed snippet features.

Weakly supervised: only video-level labels are used. Each video is a bag of ``segments`` (32)
segments; a segment's feature is the mean of the snippet features it covers (crops averaged
first for ten-crop I3D features) and is L2-normalised, as in the reference feature preparation.
A small MLP (``hidden_1``-``hidden_2``-1, ReLU, dropout, sigmoid; 512-32-1 in the paper) scores
segments. Training draws ``batch_size`` anomalous and ``batch_size`` normal bags per iteration and
minimises, per pair,

    max(0, 1 - max_i f(a_i) + max_i f(n_i))  +  λ₁ Σ_i (f(a_i) - f(a_{i+1}))²  +  λ₂ Σ_i f(a_i)

(ranking hinge, temporal smoothness, sparsity; λ₁ = λ₂ = 8e-5), with Adagrad at 0.001 and an L2
weight penalty of 0.001. Inputs are ``Video`` samples in features form, such as those of the
``ucf_crime`` loader with ``source="rtfm"`` or ``"urdmu"``.

The per-snippet map (T,) is aligned with the video's target: with ``test_resolution="segments"``
(the reference protocol) every snippet takes its segment's score; with ``"snippets"`` each
snippet is scored on its own feature. The video score is the largest snippet score.

>>> import anomalykit                                                            # doctest: +SKIP
>>> data = anomalykit.load("ucf_crime", "/data/rtfm", source="rtfm")            # doctest: +SKIP
>>> detector = anomalykit.get_baseline("mil_ranking").fit(data.filter(split="train"), seed=0)  # doctest: +SKIP
>>> detector.score_samples(data.filter(split="test"))[0].anomaly_map.shape      # doctest: +SKIP
(T,)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from ..errors import ConfigError
from ..schema import Modality, Sample, Video
from ._windows import torch_session
from .base import Detector, DetectorConfig, DetectorOutput, param, register_baseline

__all__ = ["MILRanking", "MILRankingConfig", "segment_bounds", "segment_features", "snippet_features"]


@dataclass
class MILRankingConfig(DetectorConfig):
    segments: int = param(32, low=1, high=4096, doc="segments per video (bag size)")
    hidden_1: int = param(512, low=1, high=16384)
    hidden_2: int = param(32, low=1, high=16384)
    dropout: float = param(0.6, low=0.0, high=0.95)
    iterations: int = param(20_000, low=1, high=10_000_000, doc="optimiser steps")
    batch_size: int = param(30, low=1, high=10_000, doc="anomalous and normal bags per step (each)")
    optimizer: str = param("adagrad", choices=("adagrad", "adam"))
    learning_rate: float = param(0.001, low=1e-7, high=10.0)
    weight_decay: float = param(0.001, low=0.0, high=1.0, doc="L2 penalty on the weights")
    lambda_smooth: float = param(8e-5, low=0.0, doc="temporal smoothness weight λ₁")
    lambda_sparse: float = param(8e-5, low=0.0, doc="sparsity weight λ₂")
    normalize: bool = param(True, choices=(True, False), doc="L2-normalise segment (and snippet) features")
    test_resolution: str = param("segments", choices=("segments", "snippets"))
    threads: int = param(0, low=0, high=1024, doc="torch CPU threads while fitting and scoring (0 = torch's "
                         "setting; 1 is fastest for tiny problems)")


def snippet_features(sample: Sample) -> np.ndarray:
    """T x D snippet features of a features-form ``Video`` sample, crops averaged."""
    video = sample.data
    if not isinstance(video, Video) or video.features is None:
        raise ConfigError(f"mil_ranking: {sample.key} holds a video file, not snippet features; load ucf_crime "
                          f"with source='rtfm' or 'urdmu' (or extract features first)")
    features = video.features
    if features.ndim == 3:
        features = features.mean(axis=1)
    elif features.ndim != 2:
        raise ConfigError(f"mil_ranking: {sample.key} has features of shape {features.shape}; expected T x D or "
                          f"T x crops x D")
    if features.shape[0] < 1:
        raise ConfigError(f"mil_ranking: {sample.key} has no snippet")
    if not np.isfinite(features).all():
        raise ConfigError(f"mil_ranking: {sample.key} has non-finite features")
    return np.ascontiguousarray(features, dtype=np.float32)


def segment_bounds(num_snippets: int, segments: int) -> np.ndarray:
    """``segments + 1`` snippet boundaries splitting ``num_snippets`` evenly (rounded)."""
    return np.round(np.linspace(0, num_snippets, segments + 1)).astype(np.int64)


def _l2(features: np.ndarray) -> np.ndarray:
    return features / np.maximum(np.linalg.norm(features, axis=-1, keepdims=True), 1e-12)


def segment_features(features: np.ndarray, segments: int, normalize: bool = True) -> np.ndarray:
    """``segments`` x D: the mean snippet feature of each segment. A video shorter than
    ``segments`` repeats snippets (an empty segment takes the snippet at its start)."""
    t = features.shape[0]
    bounds = segment_bounds(t, segments)
    starts = np.minimum(bounds[:-1], t - 1)
    stops = np.maximum(bounds[1:], starts + 1)
    cumulative = np.concatenate([np.zeros((1, features.shape[1])), np.cumsum(features, axis=0, dtype=np.float64)])
    means = (cumulative[stops] - cumulative[starts]) / (stops - starts)[:, None]
    means = means.astype(np.float32)
    return _l2(means) if normalize else means


def _snippet_segment(num_snippets: int, segments: int) -> np.ndarray:
    """The segment each snippet belongs to (the non-empty segment whose range holds it)."""
    bounds = segment_bounds(num_snippets, segments)
    return np.searchsorted(bounds, np.arange(num_snippets), side="right") - 1


class _Scorer(nn.Module):
    def __init__(self, in_dim: int, config: MILRankingConfig) -> None:
        super().__init__()
        self.layers = nn.Sequential(
            nn.Linear(in_dim, config.hidden_1), nn.ReLU(), nn.Dropout(config.dropout),
            nn.Linear(config.hidden_1, config.hidden_2), nn.Dropout(config.dropout),
            nn.Linear(config.hidden_2, 1), nn.Sigmoid(),
        )

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.layers(features).squeeze(-1)


def ranking_loss(anomalous: torch.Tensor, normal: torch.Tensor, lambda_smooth: float,
                 lambda_sparse: float) -> torch.Tensor:
    """Sultani's MIL ranking loss for B paired bags of segment scores (B x S each), averaged."""
    hinge = torch.relu(1.0 - anomalous.max(dim=1).values + normal.max(dim=1).values)
    smooth = torch.sum((anomalous[:, 1:] - anomalous[:, :-1]) ** 2, dim=1)
    sparse = torch.sum(anomalous, dim=1)
    return torch.mean(hinge + lambda_smooth * smooth + lambda_sparse * sparse)


@register_baseline("mil_ranking")
class MILRanking(Detector):
    """Sultani's MIL ranking network; per-snippet maps."""

    version = "1"
    modality = Modality.VIDEO
    config_class = MILRankingConfig
    config: MILRankingConfig
    uses_labels = True

    def _build(self, in_dim: int) -> None:
        self.in_dim_ = int(in_dim)
        self.net_ = _Scorer(self.in_dim_, self.config)

    def _fit(self, samples: Sequence[Sample], rng: np.random.Generator, progress: bool) -> None:
        from rich.progress import track

        cfg = self.config
        unknown = [s.key for s in samples if s.label not in (0, 1)]
        if unknown:
            raise ConfigError(f"mil_ranking: {len(unknown)} training video(s) have no label (first: {unknown[0]}); "
                              f"the ranking loss needs video-level labels 0/1")
        labels = np.array([s.label for s in samples])
        if labels.min() == labels.max():
            raise ConfigError(f"mil_ranking: the training videos are all {'anomalous' if labels[0] else 'normal'}; "
                              f"the ranking loss needs both anomalous and normal videos")
        features = [snippet_features(s) for s in samples]
        widths = {f.shape[1] for f in features}
        if len(widths) != 1:
            raise ConfigError(f"mil_ranking: training videos have different feature widths {sorted(widths)}")
        bags = torch.from_numpy(np.stack([segment_features(f, cfg.segments, cfg.normalize) for f in features]))
        anomalous, normal = np.flatnonzero(labels == 1), np.flatnonzero(labels == 0)
        with torch.random.fork_rng(devices=[]), torch_session(cfg.threads):
            torch.manual_seed(int(rng.integers(2**63 - 1)))
            self._build(widths.pop())
            optimizer_class = torch.optim.Adagrad if cfg.optimizer == "adagrad" else torch.optim.Adam
            decay = [p for name, p in self.net_.named_parameters() if name.endswith("weight")]
            rest = [p for name, p in self.net_.named_parameters() if not name.endswith("weight")]
            optimizer = optimizer_class([{"params": decay, "weight_decay": cfg.weight_decay},
                                         {"params": rest, "weight_decay": 0.0}], lr=cfg.learning_rate)
            self.net_.train()
            self.loss_history_ = np.zeros(cfg.iterations, np.float64)
            for step in track(range(cfg.iterations), description="mil_ranking: training", disable=not progress):
                pick_a = rng.choice(anomalous, size=cfg.batch_size, replace=len(anomalous) < cfg.batch_size)
                pick_n = rng.choice(normal, size=cfg.batch_size, replace=len(normal) < cfg.batch_size)
                scores = self.net_(bags[np.concatenate([pick_a, pick_n])])
                loss = ranking_loss(scores[:cfg.batch_size], scores[cfg.batch_size:], cfg.lambda_smooth,
                                    cfg.lambda_sparse)
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                self.loss_history_[step] = float(loss.detach())
        self.net_.eval()

    def _score(self, samples: Sequence[Sample]) -> list[DetectorOutput]:
        cfg = self.config
        outputs = []
        for sample in samples:
            features = snippet_features(sample)
            if features.shape[1] != self.in_dim_:
                raise ConfigError(f"mil_ranking: {sample.key} has {features.shape[1]}-d features, the model was "
                                  f"fitted on {self.in_dim_}-d")
            t = features.shape[0]
            with torch.no_grad(), torch_session(cfg.threads):
                if cfg.test_resolution == "segments":
                    segment_scores = self.net_(torch.from_numpy(segment_features(features, cfg.segments, cfg.normalize)))
                    snippet_scores = segment_scores.numpy()[_snippet_segment(t, cfg.segments)]
                else:
                    inputs = _l2(features) if cfg.normalize else features
                    snippet_scores = self.net_(torch.from_numpy(np.ascontiguousarray(inputs))).numpy()
            snippet_scores = snippet_scores.astype(np.float32)
            outputs.append(DetectorOutput(sample.key, float(snippet_scores.max()), snippet_scores))
        return outputs

    def state_dict(self) -> dict[str, np.ndarray]:
        return {f"net.{k}": v.detach().cpu().numpy() for k, v in self.net_.state_dict().items()}

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        weights = {k[len("net."):]: torch.from_numpy(np.array(v)) for k, v in state.items() if k.startswith("net.")}
        self._build(weights["layers.0.weight"].shape[1])
        self.net_.load_state_dict(weights)
        self.net_.eval()

    @classmethod
    def example(cls) -> tuple[dict[str, Any], list[Sample], list[Sample]]:
        rng = np.random.default_rng(0)
        direction = rng.normal(size=64).astype(np.float32)
        train = [_example_video(rng, direction, f"example/train_{i}", i % 2 == 0, "train") for i in range(8)]
        test = [_example_video(rng, direction, f"example/test_{i}", i % 2 == 0, "test") for i in range(4)]
        params = {"iterations": 60, "batch_size": 4, "optimizer": "adam", "learning_rate": 0.003, "segments": 8,
                  "hidden_1": 32, "hidden_2": 8, "dropout": 0.1, "threads": 1}
        return params, train, test


def _example_video(rng: np.random.Generator, direction: np.ndarray, key: str, anomalous: bool, split: str) -> Sample:
    """Snippet features (T x 64) with an anomalous event shifted along ``direction``."""
    t = int(rng.integers(16, 40))
    features = rng.normal(size=(t, direction.shape[0])).astype(np.float32)
    target = np.zeros(t, np.uint8)
    if anomalous:
        start = int(rng.integers(0, t // 2))
        stop = start + int(rng.integers(3, t // 2))
        features[start:stop] += 1.5 * direction
        target[start:stop] = 1
    return Sample(key=key, dataset="example", split=split, label=int(anomalous), data=Video(features=features),
                  defect="event" if anomalous else None, target=target if split == "test" else None)
