"""A PNG of a series with its anomaly spans shaded (matplotlib, Agg backend).

>>> import anomalykit, tempfile, pathlib
>>> gen = anomalykit.get_generator("syntsbench", length=300, anomalies=[{"kind": "mean", "length": 30}])
>>> plot_series(gen(seed=0), pathlib.Path(tempfile.mkdtemp()) / "series.png").suffix
'.png'
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ...errors import ConfigError
from ...schema import Sample, Series

__all__ = ["plot_series"]

_COLORS = {"missing": "#999999", "point": "#d62728", "extremum": "#d62728", "pulse": "#ff7f0e",
           "level-shift": "#9467bd", "trend": "#8c564b"}


def _spans(labels: np.ndarray) -> list[tuple[int, int]]:
    edges = np.diff(np.concatenate([[0], labels.astype(np.int8), [0]]))
    return list(zip(np.flatnonzero(edges == 1).tolist(), np.flatnonzero(edges == -1).tolist()))


def _shade(ax, start: int, stop: int, color: str, steps: int, width_px: float) -> None:
    """Shade steps [start, stop); a span narrower than a pixel (a point anomaly in a long series)
    is drawn as a one-pixel line so that it stays visible."""
    ax.axvspan(start - 0.5, stop - 0.5, color=color, alpha=0.35, linewidth=0)
    if (stop - start) * width_px / max(steps, 1) < 1.5:
        ax.axvline((start + stop - 1) / 2, color=color, alpha=0.6, linewidth=1.5)


def plot_series(sample: Sample, path: str | Path, *, clean: Sample | None = None, max_channels: int = 8,
                width: float = 12.0, dpi: int = 100) -> Path:
    """Plot every channel (up to ``max_channels``) with anomaly spans shaded per channel from
    ``meta["anomalies"]`` (or from the per-step target); ``clean`` is drawn underneath in grey."""
    from matplotlib.figure import Figure  # no pyplot: the caller's backend and figures stay untouched

    if not isinstance(sample.data, Series):
        raise ConfigError(f"plot_series: sample {sample.key} is {sample.modality.value}, not a series")
    values = sample.data.values
    channels = min(values.shape[1], max_channels)
    x = np.arange(values.shape[0])
    fig = Figure(figsize=(width, 1.8 * channels + 0.6))
    axes = fig.subplots(channels, 1, sharex=True, squeeze=False)
    records = sample.meta.get("anomalies") if isinstance(sample.meta, dict) else None
    width_px = 0.85 * width * dpi  # about the axes' width in pixels
    for c in range(channels):
        ax = axes[c, 0]
        if clean is not None:
            ax.plot(x, clean.data.values[:, c], color="#bbbbbb", linewidth=0.8, label="clean")
        ax.plot(x, values[:, c], color="#1f77b4", linewidth=0.8, label="series")
        if records:
            named: set[str] = set()
            for record in records:
                if record.get("channel") == c and record.get("start") is not None:
                    color = _COLORS.get(record["kind"], "#ff9896")
                    _shade(ax, record["start"], record["end"], color, len(x), width_px)
                    if record["kind"] not in named:  # name each kind once per channel
                        named.add(record["kind"])
                        ax.text(record["start"], 1.0, record["kind"], transform=ax.get_xaxis_transform(),
                                fontsize=7, va="bottom", color=color)
        elif sample.target is not None:
            target = np.asarray(sample.target)
            column = target[:, c] if target.ndim == 2 else target
            for start, stop in _spans(column > 0):
                _shade(ax, start, stop, "#ff9896", len(x), width_px)
        ax.set_ylabel(sample.data.channels[c] if sample.data.channels else f"ch{c}", fontsize=8)
        ax.tick_params(labelsize=7)
    axes[0, 0].set_title(f"{sample.key}  ({sample.defect or 'normal'})", fontsize=9)
    axes[-1, 0].set_xlabel("step")
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi)
    return path
