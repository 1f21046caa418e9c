"""Helpers shared by the series detectors: standardisation, sliding windows, window-to-step scores."""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from ..errors import ConfigError
from ..schema import Sample

#: how a per-step map becomes one sample score
AGGREGATES = ("max", "mean", "p99")


def series_values(sample: Sample, what: str) -> np.ndarray:
    """The (T, C) float64 values of a ``Series`` sample."""
    values = np.asarray(sample.data.values, dtype=np.float64)  # type: ignore[union-attr]
    if values.ndim != 2 or values.shape[0] == 0:
        raise ConfigError(f"{what}: {sample.key} has no steps (values shape {values.shape})")
    return values


def training_arrays(samples: Sequence[Sample], what: str) -> list[np.ndarray]:
    """The (T, C) values of the training samples, which must all have the same channels."""
    arrays = [series_values(s, what) for s in samples]
    widths = {a.shape[1] for a in arrays}
    if len(widths) > 1:
        first = arrays[0].shape[1]
        odd, width = next((s, a.shape[1]) for s, a in zip(samples, arrays) if a.shape[1] != first)
        raise ConfigError(f"{what}: training series differ in channels: {samples[0].key} has {first}, "
                          f"{odd.key} has {width}; fit one model per channel set")
    return arrays


class Standardiser:
    """Per-channel mean and standard deviation fitted on training steps (NaN ignored). After
    scaling, a missing value becomes 0, the training mean; a constant channel keeps scale 1."""

    def __init__(self, mean: np.ndarray, scale: np.ndarray) -> None:
        self.mean = np.asarray(mean, dtype=np.float64)
        self.scale = np.asarray(scale, dtype=np.float64)

    @classmethod
    def fit(cls, arrays: Sequence[np.ndarray], what: str) -> Standardiser:
        stacked = np.concatenate(arrays, axis=0)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN channels are handled below
            mean = np.nanmean(stacked, axis=0)
            scale = np.nanstd(stacked, axis=0)
        empty = ~np.isfinite(mean)
        if empty.all():
            raise ConfigError(f"{what}: every training value is missing (NaN)")
        mean = np.where(empty, 0.0, mean)
        scale = np.where(~np.isfinite(scale) | (scale < 1e-12), 1.0, scale)
        return cls(mean, scale)

    def transform(self, values: np.ndarray, key: str, what: str) -> np.ndarray:
        if values.shape[1] != self.mean.size:
            raise ConfigError(f"{what}: {key} has {values.shape[1]} channels, the model was fitted on {self.mean.size}")
        scaled = (values - self.mean) / self.scale
        return np.nan_to_num(scaled, nan=0.0, posinf=0.0, neginf=0.0)


def check_length(sample: Sample, steps: int, window: int, what: str) -> None:
    if steps < window:
        raise ConfigError(f"{what}: {sample.key} has {steps} steps, fewer than window={window}; "
                          f"use a smaller window")


def windows(values: np.ndarray, length: int, stride: int = 1) -> np.ndarray:
    """Flattened sliding windows: (number of windows, length * C), step-major inside a window."""
    view = sliding_window_view(values, length, axis=0)[::stride]  # (n, C, length)
    return np.ascontiguousarray(view.transpose(0, 2, 1)).reshape(view.shape[0], -1)


def window_chunks(values: np.ndarray, length: int, chunk: int = 8192):
    """Stride-1 flattened windows of ``values`` in blocks of at most ``chunk`` windows, so that
    long series are scored without materialising every window at once."""
    total = values.shape[0] - length + 1
    for start in range(0, total, chunk):
        stop = min(start + chunk, total)
        yield windows(values[start:stop + length - 1], length)


def windows_to_steps(window_scores: np.ndarray, steps: int, length: int) -> np.ndarray:
    """Per-step scores from stride-1 window scores: the mean over the windows covering each step."""
    scores = np.asarray(window_scores, dtype=np.float64)
    count = scores.size
    if count != steps - length + 1:
        raise ValueError(f"{count} window scores for {steps} steps and window {length}")
    cumulative = np.concatenate([[0.0], np.cumsum(scores)])
    step = np.arange(steps)
    first = np.maximum(step - length + 1, 0)  # windows [first, last] cover the step
    last = np.minimum(step, count - 1) + 1
    return (cumulative[last] - cumulative[first]) / (last - first)


def training_windows(arrays: Sequence[np.ndarray], length: int, stride: int, limit: int,
                     rng: np.random.Generator) -> np.ndarray:
    """Windows (every ``stride`` steps) of the training arrays; at most ``limit`` of them, drawn
    with ``rng`` before any window is copied (0 = all)."""
    starts = [np.arange(0, a.shape[0] - length + 1, stride) if a.shape[0] >= length else np.zeros(0, np.int64)
              for a in arrays]
    sizes = np.array([s.size for s in starts])
    total = int(sizes.sum())
    if total == 0:
        raise ConfigError(f"no training series is at least window={length} steps long")
    chosen = np.arange(total)
    if limit and total > limit:
        chosen = np.sort(rng.choice(total, limit, replace=False))
    offsets = np.concatenate([[0], np.cumsum(sizes)])
    parts = []
    for array, begin, end, start in zip(arrays, offsets[:-1], offsets[1:], starts):
        picked = start[chosen[(chosen >= begin) & (chosen < end)] - begin]
        if picked.size:
            parts.append(array[picked[:, None] + np.arange(length)].reshape(picked.size, -1))
    return np.concatenate(parts, axis=0)


def aggregate(step_scores: np.ndarray, how: str) -> float:
    """One sample score from a per-step map (``max``, ``mean`` or the 99th percentile ``p99``)."""
    if how == "max":
        return float(np.max(step_scores))
    if how == "mean":
        return float(np.mean(step_scores))
    if how == "p99":
        return float(np.quantile(step_scores, 0.99))
    raise ConfigError(f"aggregate must be one of {list(AGGREGATES)}, got {how!r}")


def example_series(*, seed: int = 0, n_train: int = 3, n_test_normal: int = 2, length: int = 240,
                   channels: int = 3) -> tuple[list[Sample], list[Sample]]:
    """Small multichannel sine series for ``example()``: normal training series, normal test
    series, and test series with anomalies injected by the ``series_inject`` generator."""
    from ..generators.series.syntsbench import SeriesInjectGenerator
    from ..schema import Series

    rng = np.random.default_rng(seed)
    steps = np.arange(length)
    periods = 12.0 + 5.0 * np.arange(channels)

    def series(key: str, split: str) -> Sample:
        phase = rng.uniform(0, 2 * np.pi, channels)
        values = np.sin(2 * np.pi * steps[:, None] / periods + phase) + 0.05 * rng.standard_normal((length, channels))
        return Sample(key=key, dataset="example", split=split, label=0,
                      data=Series(values.astype(np.float32), None, tuple(f"s{i}" for i in range(channels))),
                      target=np.zeros(length, np.uint8))

    train = [series(f"example/train-{i}", "train") for i in range(n_train)]
    normal = [series(f"example/test-normal-{i}", "test") for i in range(n_test_normal)]
    inject = SeriesInjectGenerator(anomalies=[
        {"kind": "mean", "channel": 0, "length": 20, "offset": 1.5},
        {"kind": "extremum", "channel": channels - 1, "count": 2},
    ])
    anomalous = [inject(series(f"example/test-source-{i}", "test"), seed=seed + i) for i in range(2)]
    return train, normal + anomalous


class torch_session:
    """For the duration of a block: torch's deterministic algorithms, and ``threads`` CPU threads
    (0 keeps torch's setting; small networks train fastest, and reproducibly, on one thread)."""

    def __init__(self, threads: int = 1) -> None:
        self.threads = int(threads)

    def __enter__(self) -> torch_session:
        import torch

        self.deterministic = torch.are_deterministic_algorithms_enabled()
        self.previous_threads = torch.get_num_threads()
        torch.use_deterministic_algorithms(True)
        if self.threads:
            torch.set_num_threads(self.threads)
        return self

    def __exit__(self, *exc: object) -> None:
        import torch

        torch.use_deterministic_algorithms(self.deterministic)
        if self.threads:
            torch.set_num_threads(self.previous_threads)
