"""PaDiM (Defard et al., ICPR 2021): one multivariate Gaussian per patch position.

Features of the first three ResNet stages (the paper's layer1..layer3) are brought to the first
stage's grid (nearest neighbour) and concatenated; a seeded random subset of ``n_features``
channels is kept (the paper: 100 of 448 for ResNet-18, 550 of 1792 for WRN-50). For each patch
position (i, j), the training images give a mean and a covariance ``S + epsilon I``; a test
patch scores its Mahalanobis distance to its position's Gaussian. The score grid is upsampled to
the image's H x W (aligned with its mask) and smoothed with a Gaussian (sigma 4); the image score
is the map's maximum.

Memory: the fitted state holds ``h * w * d^2 * 4`` bytes of inverse covariances (h x w: the
first layer's grid, image_size / 4 for a ResNet; d = ``n_features``), and fitting needs about twice
that: 3.8 GB at the defaults (224 x 224 input, 56 x 56 patches, d = 550), 0.1 GB with d = 100.

>>> import anomalykit
>>> from anomalykit.baselines._image_features import synthetic_image_set
>>> train, test = synthetic_image_set(n_train=6, n_normal=2, n_anomalous=2)
>>> detector = anomalykit.get_baseline("padim", backbone="anomalykit:tiny-resnet", image_size=32,
...                                    n_features=40).fit(train, seed=0)
>>> scores = detector.decision_function(test)
>>> bool(scores[2:].min() > scores[:2].max())
True
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import ConfigError
from ..schema import Modality, Sample
from ._image_features import (
    TINY_RESNET_ID,
    CNNFeatureConfig,
    FeatureExtractor,
    anomaly_maps,
    example_data,
    torch_threads,
    track_batches,
)
from .base import Detector, DetectorOutput, param, register_baseline


@dataclass
class PadimConfig(CNNFeatureConfig):
    """Parameters of ``padim`` (defaults: the paper's WRN-50 setting, on microsoft/resnet-50)."""

    layers: tuple[str, ...] = param(default_factory=lambda: ("stage1", "stage2", "stage3"),
                                    doc="backbone stages to concatenate (the paper: layer1..layer3)")
    n_features: int | None = param(550, low=1, high=100_000,
                                   doc="random channel subset size d (None: all channels)")
    epsilon: float = param(0.01, low=0.0, high=10.0, doc="covariance regulariser: S + epsilon I")


@register_baseline("padim")
class Padim(Detector):
    """PaDiM; see the module docstring."""

    version = "1"
    modality = Modality.IMAGE
    config_class = PadimConfig
    config: PadimConfig

    def _extractor(self) -> FeatureExtractor:
        cfg = self.config
        return FeatureExtractor(cfg.backbone, cfg.layers, cfg.image_size, cfg.batch_size, cfg.device)

    @staticmethod
    def _embed(features: list[torch.Tensor]) -> torch.Tensor:
        """Concatenate the stages on the first stage's grid (nearest neighbour)."""
        grid = features[0].shape[-2:]
        return torch.cat([features[0]] + [F.interpolate(f, size=grid, mode="nearest") for f in features[1:]], 1)

    def _fit(self, samples: Sequence[Sample], rng: np.random.Generator, progress: bool) -> None:
        with torch_threads(self.config.num_threads):
            self._fit_model(samples, rng, progress)

    def _fit_model(self, samples: Sequence[Sample], rng: np.random.Generator, progress: bool) -> None:
        cfg = self.config
        if len(samples) < 2:
            raise ConfigError("padim: fit() needs at least 2 training images to estimate covariances")
        extractor = self._extractor()
        count = 0
        shift = sum_x = sum_xx = None
        for features in track_batches(extractor.batches(samples), progress, len(samples), cfg.batch_size, "PaDiM fit"):
            embedding = self._embed(features)
            if shift is None:
                available = embedding.shape[1]
                d = available if cfg.n_features is None else cfg.n_features
                if d > available:
                    raise ConfigError(f"PadimConfig.n_features: {d} exceeds the {available} channels of "
                                      f"{'+'.join(cfg.layers)} of backbone {cfg.backbone!r}")
                channels = np.sort(rng.choice(available, size=d, replace=False))
                self.channels_ = torch.from_numpy(channels).to(embedding.device)
                self.grid_ = tuple(embedding.shape[-2:])
            x = embedding[:, self.channels_].flatten(2).permute(2, 0, 1)  # P x B x d
            if shift is None:
                # sums of (x - shift), shift = the first batch's mean: float32 stays accurate, and
                # the P x d x d accumulator is the only large array besides the result
                shift = x.mean(1, keepdim=True)
                sum_x = torch.zeros_like(shift[:, 0])
                sum_xx = x.new_zeros(x.shape[0], x.shape[2], x.shape[2])
            x = x - shift
            sum_x += x.sum(1)
            sum_xx.baddbmm_(x.transpose(1, 2), x)
            count += x.shape[1]
        assert shift is not None and sum_x is not None and sum_xx is not None
        centred_mean = sum_x / count
        covariance = sum_xx.baddbmm_(centred_mean[:, :, None], centred_mean[:, None, :], alpha=-count)
        covariance /= count - 1
        covariance.diagonal(dim1=1, dim2=2).add_(cfg.epsilon)
        mean = centred_mean + shift[:, 0]
        try:
            inverse = torch.linalg.inv(covariance)
        except RuntimeError as exc:
            raise ConfigError(f"padim: a patch covariance is singular ({exc}); raise epsilon") from None
        self.mean_ = mean
        self.inv_covariance_ = inverse

    def _score(self, samples: Sequence[Sample]) -> list[DetectorOutput]:
        with torch_threads(self.config.num_threads):
            return self._score_samples(samples)

    def _score_samples(self, samples: Sequence[Sample]) -> list[DetectorOutput]:
        extractor = self._extractor()
        mean = self.mean_.to(extractor.device)
        inverse = self.inv_covariance_.to(extractor.device)
        channels = self.channels_.to(extractor.device)
        outputs: list[DetectorOutput] = []
        start = 0
        for features in extractor.batches(samples):
            embedding = self._embed(features)
            if tuple(embedding.shape[-2:]) != tuple(self.grid_):
                raise ConfigError(f"padim: feature grid {tuple(embedding.shape[-2:])} differs from the fitted "
                                  f"{tuple(self.grid_)}")
            diff = embedding[:, channels].flatten(2).permute(0, 2, 1) - mean  # B x P x d
            distance = torch.einsum("bpd,pde,bpe->bp", diff, inverse, diff).clamp_min(0).sqrt()
            batch = samples[start:start + len(diff)]
            for sample, amap in zip(batch, anomaly_maps(distance.reshape(-1, *self.grid_), batch, self.config.sigma)):
                outputs.append(DetectorOutput(sample.key, float(amap.max()), amap))
            start += len(diff)
        return outputs

    def state_dict(self) -> dict[str, np.ndarray]:
        return {"mean": self.mean_.cpu().numpy(), "inv_covariance": self.inv_covariance_.cpu().numpy(),
                "channels": self.channels_.cpu().numpy().astype(np.int64),
                "grid": np.asarray(self.grid_, np.int64)}

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        self.mean_ = torch.from_numpy(np.asarray(state["mean"], np.float32))
        self.inv_covariance_ = torch.from_numpy(np.asarray(state["inv_covariance"], np.float32))
        self.channels_ = torch.from_numpy(np.asarray(state["channels"], np.int64))
        self.grid_ = tuple(int(v) for v in state["grid"])

    @classmethod
    def example(cls) -> tuple[dict[str, Any], list[Sample], list[Sample]]:
        train, test = example_data()
        return dict(backbone=TINY_RESNET_ID, image_size=32, n_features=40, sigma=1.0,
                    num_threads=1), train, test

