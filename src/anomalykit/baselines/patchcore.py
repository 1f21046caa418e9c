"""PatchCore (Roth et al., CVPR 2022): a coreset memory bank of locally aware patch features.

1. Features of ResNet ``layer2`` and ``layer3`` (stages 2 and 3), each averaged over its
   ``patch_size`` x ``patch_size`` neighbourhood (stride 1), are brought to the layer2 grid
   (bilinear) and concatenated: one D-dimensional feature per patch.
2. Greedy k-center coreset: the training patches are projected to ``projection_dim`` dimensions
   with a seeded Gaussian random projection (Johnson-Lindenstrauss, as in the paper); starting
   from a seeded random patch (which is kept), the patch farthest from the chosen set is added
   until the bank holds ``coreset_ratio`` of the patches, at most ``max_memory``.
3. A test patch scores its distance to its nearest bank entry; the map is upsampled to the
   image's H x W (aligned with its mask) and smoothed with a Gaussian (sigma 4). The image score
   is the largest patch score s*, optionally reweighted as in the paper's eq. 7:
   ``s = (1 - exp(d_0) / sum_j exp(d_j)) * s*``, where m_0 is the bank entry nearest to the worst
   test patch m_test*, m_0 .. m_{b-1} are the ``num_neighbors`` (b) bank entries nearest to m_0,
   and d_j = ||m_test* - m_j||.

Memory (float32): training features ``n_images * h * w * D * 4`` bytes, kept on the CPU, or
``max_train_patches * D * 4`` when a random subset of patches is kept per image; the bank
``M * D * 4`` with M = min(ceil(coreset_ratio * patches), max_memory). h x w is image_size / 8
squared for a ResNet, D = 512 + 1024 for ResNet-50 (1536 floats = 6 kB per patch). Coreset time
grows as patches x M x projection_dim.

>>> import anomalykit
>>> from anomalykit.baselines._image_features import synthetic_image_set
>>> train, test = synthetic_image_set(n_train=6, n_normal=2, n_anomalous=2)
>>> detector = anomalykit.get_baseline("patchcore", backbone="anomalykit:tiny-resnet", image_size=64,
...                                    coreset_ratio=0.25).fit(train, seed=0)
>>> scores = detector.decision_function(test)
>>> bool(scores[2:].min() > scores[:2].max())
True
"""

from __future__ import annotations

import math
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

#: query rows per distance block, so that a block of distances stays near 64 MB
_DISTANCE_BLOCK_FLOATS = 16 * 1024 * 1024


@dataclass
class PatchcoreConfig(CNNFeatureConfig):
    """Parameters of ``patchcore`` (defaults: the paper's PatchCore-10%)."""

    patch_size: int = param(3, low=1, high=15, doc="neighbourhood averaged into each patch feature (odd)")
    coreset_ratio: float = param(0.1, low=1e-6, high=1.0, doc="share of training patches kept in the bank")
    max_memory: int | None = param(None, low=1, doc="cap on the number of bank entries")
    max_train_patches: int | None = param(None, low=1, doc="before the coreset, keep a seeded random subset of "
                                                           "max_train_patches // n_images patches per image "
                                                           "(at least one)")
    projection_dim: int | None = param(128, low=1, doc="random projection for the coreset search (None: off)")
    reweight: bool = param(True, doc="image score reweighting (paper eq. 7)")
    num_neighbors: int = param(9, low=2, high=1000, doc="bank neighbourhood b of the reweighting")

    def validate(self) -> None:
        super().validate()
        if self.patch_size % 2 == 0:
            raise ConfigError(f"PatchcoreConfig.patch_size must be odd, got {self.patch_size}")


@register_baseline("patchcore")
class Patchcore(Detector):
    """PatchCore; see the module docstring."""

    version = "1"
    modality = Modality.IMAGE
    config_class = PatchcoreConfig
    config: PatchcoreConfig

    def _extractor(self) -> FeatureExtractor:
        cfg = self.config
        return FeatureExtractor(cfg.backbone, cfg.layers, cfg.image_size, cfg.batch_size, cfg.device)

    def _embed(self, features: list[torch.Tensor]) -> torch.Tensor:
        """B x h x w x D locally aware patch features on the first layer's grid."""
        k = self.config.patch_size
        pooled = [F.avg_pool2d(f, k, stride=1, padding=k // 2) if k > 1 else f for f in features]
        grid = pooled[0].shape[-2:]
        resized = [pooled[0]] + [F.interpolate(f, size=grid, mode="bilinear", align_corners=False) for f in pooled[1:]]
        return torch.cat(resized, 1).permute(0, 2, 3, 1)

    def _fit(self, samples: Sequence[Sample], rng: np.random.Generator, progress: bool) -> None:
        with torch_threads(self.config.num_threads):
            self._fit_model(samples, rng, progress)

    def _fit_model(self, samples: Sequence[Sample], rng: np.random.Generator, progress: bool) -> None:
        cfg = self.config
        extractor = self._extractor()
        per_image = None if cfg.max_train_patches is None else max(1, cfg.max_train_patches // len(samples))
        chunks = []
        for features in track_batches(extractor.batches(samples), progress, len(samples), cfg.batch_size,
                                      "PatchCore features"):
            embedding = self._embed(features).cpu()  # kept on the CPU: the bank can outgrow a GPU
            self.grid_ = tuple(embedding.shape[1:3])
            patches = embedding.reshape(len(embedding), -1, embedding.shape[-1])
            if per_image is not None and per_image < patches.shape[1]:
                keep = np.stack([np.sort(rng.choice(patches.shape[1], per_image, replace=False))
                                 for _ in range(len(patches))])
                patches = torch.gather(patches, 1, torch.from_numpy(keep)[..., None].expand(-1, -1, patches.shape[-1]))
            chunks.append(patches.reshape(-1, patches.shape[-1]))
        bank = torch.cat(chunks)
        size = max(1, math.ceil(cfg.coreset_ratio * len(bank)))
        if cfg.max_memory is not None:
            size = min(size, cfg.max_memory)
        if size < len(bank):
            selected = greedy_coreset(bank, size, rng, cfg.projection_dim, device=extractor.device, progress=progress)
            bank = bank[torch.from_numpy(selected)]
        self.memory_bank_ = bank.contiguous()

    def _score(self, samples: Sequence[Sample]) -> list[DetectorOutput]:
        with torch_threads(self.config.num_threads):
            return self._score_samples(samples)

    def _score_samples(self, samples: Sequence[Sample]) -> list[DetectorOutput]:
        cfg = self.config
        extractor = self._extractor()
        bank = self.memory_bank_.to(extractor.device)
        outputs: list[DetectorOutput] = []
        start = 0
        for features in extractor.batches(samples):
            embedding = self._embed(features)
            batch_size, height, width, dim = embedding.shape
            if dim != bank.shape[1]:
                raise ConfigError(f"patchcore: features have {dim} channels, the memory bank {bank.shape[1]}")
            queries = embedding.reshape(-1, dim)
            distance, nearest = nearest_neighbours(queries, bank, 1)
            patch_scores = distance[:, 0].reshape(batch_size, height * width)
            nearest = nearest[:, 0].reshape(batch_size, height * width)
            worst = patch_scores.argmax(1)
            rows = torch.arange(batch_size, device=bank.device)
            image_scores = patch_scores[rows, worst]
            if cfg.reweight and len(bank) > 1:
                worst_features = queries.reshape(batch_size, -1, dim)[rows, worst]
                _, support = nearest_neighbours(bank[nearest[rows, worst]], bank, min(cfg.num_neighbors, len(bank)))
                support_distance = torch.linalg.vector_norm(worst_features[:, None] - bank[support], dim=-1)
                image_scores = image_scores * (1.0 - torch.softmax(support_distance, 1)[:, 0])
            batch = samples[start:start + batch_size]
            maps = anomaly_maps(patch_scores.reshape(batch_size, height, width), batch, cfg.sigma)
            for sample, score, amap in zip(batch, image_scores.tolist(), maps):
                outputs.append(DetectorOutput(sample.key, float(score), amap))
            start += batch_size
        return outputs

    def state_dict(self) -> dict[str, np.ndarray]:
        return {"memory_bank": self.memory_bank_.cpu().numpy(), "grid": np.asarray(self.grid_, np.int64)}

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        self.memory_bank_ = torch.from_numpy(np.asarray(state["memory_bank"], np.float32))
        self.grid_ = tuple(int(v) for v in state["grid"])

    @classmethod
    def example(cls) -> tuple[dict[str, Any], list[Sample], list[Sample]]:
        train, test = example_data()
        return dict(backbone=TINY_RESNET_ID, image_size=64, coreset_ratio=0.25, sigma=1.0,
                    num_threads=1), train, test


def nearest_neighbours(queries: torch.Tensor, bank: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Euclidean distances and indices of the ``k`` nearest ``bank`` rows of each query, in blocks
    of queries so that memory stays bounded."""
    block = max(1, _DISTANCE_BLOCK_FLOATS // max(1, len(bank)))
    distances, indices = [], []
    for start in range(0, len(queries), block):
        d = torch.cdist(queries[start:start + block], bank)
        values, index = torch.topk(d, k, dim=1, largest=False)
        distances.append(values)
        indices.append(index)
    return torch.cat(distances), torch.cat(indices)


def greedy_coreset(features: torch.Tensor, size: int, rng: np.random.Generator, projection_dim: int | None = 128,
                   device: torch.device | str = "cpu", progress: bool = False) -> np.ndarray:
    """Indices of ``size`` rows chosen by greedy k-center selection (the first, random, included).

    Distances are measured after a seeded Gaussian random projection to ``projection_dim``
    dimensions when that is smaller than the feature dimension.
    """
    n, dim = features.shape
    if not 1 <= size <= n:
        raise ConfigError(f"coreset size {size} must be between 1 and the {n} patches")
    points = features.to(device)
    if projection_dim is not None and projection_dim < dim:
        projection = torch.from_numpy(rng.standard_normal((dim, projection_dim)) / math.sqrt(projection_dim))
        points = points @ projection.to(device=device, dtype=points.dtype)
    selected = np.empty(size, np.int64)
    selected[0] = int(rng.integers(n))
    min_distance = torch.linalg.vector_norm(points - points[selected[0]], dim=1)
    steps = range(1, size)
    if progress:
        from rich.progress import track

        steps = track(steps, description="PatchCore coreset", total=size - 1)
    for i in steps:
        index = int(torch.argmax(min_distance))
        selected[i] = index
        min_distance = torch.minimum(min_distance, torch.linalg.vector_norm(points - points[index], dim=1))
    return selected
