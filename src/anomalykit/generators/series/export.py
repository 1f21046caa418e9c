"""CSV export and import in GutenTAG's layout: ``timestamp, value-0 .. value-{C-1}, is_anomaly``.

>>> import anomalykit, tempfile, pathlib
>>> sample = anomalykit.get_generator("syntsbench", length=200)(seed=0)
>>> path = to_gutentag_csv(sample, pathlib.Path(tempfile.mkdtemp()) / "test.csv")
>>> path.read_text().splitlines()[0]
'timestamp,value-0,is_anomaly'
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ...errors import MalformedFileError
from ...schema import Sample, Series

__all__ = ["to_gutentag_csv", "read_gutentag_csv", "GUTENTAG_COLUMNS"]


def GUTENTAG_COLUMNS(num_channels: int) -> list[str]:  # noqa: N802 - reads like the constant it stands for
    """The column names GutenTAG writes for a series of ``num_channels`` channels."""
    return ["timestamp", *(f"value-{c}" for c in range(num_channels)), "is_anomaly"]


def to_gutentag_csv(sample: Sample, path: str | Path) -> Path:
    """Write a series sample as GutenTAG's ``test.csv`` (missing values as empty cells)."""
    import pandas as pd

    if not isinstance(sample.data, Series):
        raise MalformedFileError(path, f"sample {sample.key} is {sample.modality.value}, not a series")
    values = sample.data.values
    stamps = sample.data.timestamps if sample.data.timestamps is not None else np.arange(values.shape[0])
    labels = np.zeros(values.shape[0], np.uint8) if sample.target is None else np.asarray(sample.target)
    if labels.ndim == 2:
        labels = labels.any(axis=1)
    frame = pd.DataFrame({"timestamp": stamps})
    for c in range(values.shape[1]):
        frame[f"value-{c}"] = values[:, c]
    frame["is_anomaly"] = (labels > 0).astype(np.uint8)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(path, index=False)
    return path


def read_gutentag_csv(path: str | Path, *, key: str | None = None) -> Sample:
    """A GutenTAG CSV (``timestamp, value-*, is_anomaly``) as a series sample."""
    import pandas as pd

    path = Path(path)
    try:
        frame = pd.read_csv(path)
    except (OSError, ValueError) as exc:
        raise MalformedFileError(path, f"cannot be read as CSV ({exc})") from None
    value_columns = [c for c in frame.columns if str(c).startswith("value-")]
    missing = [c for c in ("timestamp", "is_anomaly") if c not in frame.columns]
    if missing or not value_columns:
        raise MalformedFileError(path, f"expected columns timestamp, value-0.., is_anomaly; got {list(frame.columns)}",
                                 line=1)
    labels = frame["is_anomaly"].to_numpy()
    bad = np.flatnonzero(~np.isin(labels, (0, 1)))
    if bad.size:
        raise MalformedFileError(path, f"is_anomaly must be 0 or 1, got {labels[bad[0]]!r}", line=int(bad[0]) + 2)
    stamps = frame["timestamp"].to_numpy()
    if stamps.dtype.kind not in "iuf":
        stamps = pd.to_datetime(frame["timestamp"]).to_numpy()
    return Sample(key=key or path.stem, dataset="gutentag-csv", split="test", label=int(labels.any()),
                  data=Series(frame[value_columns].to_numpy(np.float32), stamps, tuple(value_columns)),
                  target=labels.astype(np.uint8), meta={"path": str(path)})
