"""PNG previews of generated point clouds: normal points grey, anomalous points red.

>>> from anomalykit.generators import get_generator
>>> from anomalykit.generators.pointcloud._common import example_cloud
>>> from anomalykit.generators.pointcloud.preview import write_preview
>>> out = get_generator("patchgen")(example_cloud(), seed=0)
>>> write_preview([out], "/tmp/preview.png").suffix                 # doctest: +SKIP
'.png'
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ...errors import SchemaError
from ...schema import PointCloud, Sample


def write_preview(samples: Sequence[Sample], path: str | Path, *, max_points: int = 20000, columns: int = 4,
                  dpi: int = 90) -> Path:
    """Draw up to ``columns`` x rows 3D scatter plots (one per sample) into a PNG at ``path``."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    if not samples:
        raise SchemaError("write_preview: no samples to draw")
    columns = max(1, min(columns, len(samples)))
    rows = -(-len(samples) // columns)
    figure = Figure(figsize=(4 * columns, 4 * rows))
    FigureCanvasAgg(figure)
    for i, sample in enumerate(samples):
        if not isinstance(sample.data, PointCloud):
            raise SchemaError(f"write_preview: sample {sample.key} is {sample.modality.value}, not a point cloud")
        points = sample.data.points
        target = np.zeros(len(points), bool) if sample.target is None else np.asarray(sample.target) > 0
        step = max(1, len(points) // max_points)
        normal = np.flatnonzero(~target)[::step]
        anomalous = np.flatnonzero(target)
        axes = figure.add_subplot(rows, columns, i + 1, projection="3d")
        axes.scatter(*points[normal].T, s=0.3, c="0.6", depthshade=False, linewidths=0)
        axes.scatter(*points[anomalous].T, s=1.5, c="red", depthshade=False, linewidths=0)
        low, high = points.min(axis=0), points.max(axis=0)
        middle, half = (low + high) / 2, float((high - low).max() / 2) or 1.0
        axes.set_xlim(middle[0] - half, middle[0] + half)
        axes.set_ylim(middle[1] - half, middle[1] + half)
        axes.set_zlim(middle[2] - half, middle[2] + half)
        axes.set_axis_off()
        removed = sample.meta.get("removed_count", 0)
        title = f"{sample.key}\n{sample.defect or ''}: {int(target.sum())} anomalous" + (
            f", {removed} removed" if removed else "")
        axes.set_title(title, fontsize=7)
    # room for the two-line titles: 0.45 inch above the first row, as much between rows
    height = 4.0 * rows
    figure.subplots_adjust(left=0.0, right=1.0, bottom=0.0, top=1.0 - 0.45 / height, wspace=0.0,
                           hspace=0.45 / (height / rows - 0.45))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=dpi)
    return path
