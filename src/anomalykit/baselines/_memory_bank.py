"""PatchCore-style memory banks: greedy k-center coreset selection and kNN distances.

The coreset keeps a subset of the training features that covers them in the max-min sense
(Sener & Savarese's greedy k-center, as PatchCore uses it). Selection runs on CPU in float32 with
an optional seeded random projection (PatchCore's Johnson-Lindenstrauss trick), so memory is
``N x (D + 1)`` floats for N features and no N x N matrix is ever formed.

>>> import numpy as np
>>> features = np.random.default_rng(0).normal(size=(500, 8)).astype(np.float32)
>>> keep = greedy_coreset(features, 50, np.random.default_rng(0))
>>> keep.shape, len(set(keep.tolist()))
((50,), 50)
>>> distances = knn_distances(features[:3], features[keep], k=1)
>>> distances.shape
(3,)
"""

from __future__ import annotations

import numpy as np
import torch

from ..errors import ConfigError

__all__ = ["coreset_size", "greedy_coreset", "knn_distances"]


def coreset_size(n_features: int, ratio: float, cap: int | None = None) -> int:
    """How many of ``n_features`` a coreset of ``ratio`` keeps (at least 1, at most ``cap``)."""
    if not 0.0 < ratio <= 1.0:
        raise ConfigError(f"coreset ratio must lie in (0, 1], got {ratio}")
    size = max(1, int(round(n_features * ratio)))
    if cap is not None:
        size = min(size, int(cap))
    return min(size, n_features)


def greedy_coreset(
    features: np.ndarray,
    size: int,
    rng: np.random.Generator,
    projection_dim: int | None = None,
) -> np.ndarray:
    """Indices of ``size`` rows chosen by greedy k-center (farthest-point) selection.

    The first centre is drawn with ``rng`` and kept (it is part of the coreset). With
    ``projection_dim`` smaller than the feature width, distances are measured after a seeded
    Gaussian random projection. Returns int64 indices in selection order.
    """
    data = np.asarray(features, dtype=np.float32)
    if data.ndim != 2 or data.shape[0] == 0:
        raise ConfigError(f"greedy_coreset: features must be a non-empty N x D array, got shape {data.shape}")
    n = data.shape[0]
    if not 1 <= size <= n:
        raise ConfigError(f"greedy_coreset: size must lie in [1, {n}], got {size}")
    if projection_dim is not None and 0 < projection_dim < data.shape[1]:
        projection = rng.normal(size=(data.shape[1], projection_dim)).astype(np.float32) / np.sqrt(projection_dim)
        data = data @ projection
    points = np.ascontiguousarray(data)
    first = int(rng.integers(n))
    chosen = np.empty(size, np.int64)
    chosen[0] = first
    nearest = np.sum((points - points[first]) ** 2, axis=1)
    for step in range(1, size):
        index = int(np.argmax(nearest))
        chosen[step] = index
        np.minimum(nearest, np.sum((points - points[index]) ** 2, axis=1), out=nearest)
    return chosen


def knn_distances(queries: np.ndarray, bank: np.ndarray, k: int = 1, chunk: int = 4096) -> np.ndarray:
    """Mean Euclidean distance of each query row to its ``k`` nearest rows of ``bank`` (float64)."""
    query = np.asarray(queries, dtype=np.float32)
    memory = np.asarray(bank, dtype=np.float32)
    if query.ndim != 2 or memory.ndim != 2 or query.shape[1] != memory.shape[1]:
        raise ConfigError(f"knn_distances: queries {query.shape} and bank {memory.shape} must be 2-D with the "
                          f"same width")
    if not 1 <= k <= memory.shape[0]:
        raise ConfigError(f"knn_distances: k must lie in [1, {memory.shape[0]}] (the bank size), got {k}")
    bank_t = torch.from_numpy(np.ascontiguousarray(memory))
    out = np.empty(query.shape[0], np.float64)
    for start in range(0, query.shape[0], chunk):
        block = torch.from_numpy(np.ascontiguousarray(query[start:start + chunk]))
        distances = torch.cdist(block, bank_t)
        nearest = torch.topk(distances, k, dim=1, largest=False).values
        out[start:start + block.shape[0]] = nearest.mean(dim=1).double().numpy()
    return out
