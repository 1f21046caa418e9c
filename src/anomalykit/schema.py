"""The sample schema: one ``Sample`` envelope and one payload type per modality.

Every loader and every generator returns ``Sample`` objects. The payload (``Sample.data``) holds
the raw observation; ``Sample.target`` holds the dense ground truth aligned with it (pixel mask,
per-frame, per-point, per-step, per-event or per-node labels).

>>> import numpy as np
>>> from anomalykit.schema import Image, Sample
>>> pixels = np.zeros((4, 6, 3), np.uint8)
>>> s = Sample(key="a/0", dataset="demo", split="test", label=1, data=Image(pixels),
...            target=np.eye(4, 6, dtype=bool))
>>> np.asarray(s.data).shape, s.target.dtype.name
((4, 6, 3), 'uint8')

Field names for images follow anomalib where they meet: ``Sample.as_anomalib()`` gives
``image``, ``gt_mask``, ``gt_label``.

Each payload also declares how it is written into a shard (``shard_fields``: fixed lower-case
member names, PNG for images and masks, NPY for arrays, Parquet for tables, JSON for scalars)
and which Hugging Face ``datasets`` features describe those members (``shard_features``).
"""

from __future__ import annotations

import io
import json
import math
from dataclasses import dataclass, field
from datetime import date, datetime
from enum import Enum, IntEnum
from pathlib import Path, PurePath
from typing import Any, ClassVar

import numpy as np

from .errors import SchemaError

__all__ = [
    "Modality",
    "Split",
    "Label",
    "Payload",
    "Image",
    "Video",
    "PointCloud",
    "Series",
    "EventLog",
    "Graph",
    "Sample",
    "PAYLOAD_TYPES",
    "to_jsonable",
]


class Modality(str, Enum):
    IMAGE = "image"
    VIDEO = "video"
    POINTCLOUD = "pointcloud"
    SERIES = "series"
    EVENTLOG = "eventlog"
    GRAPH = "graph"


class Split(str, Enum):
    TRAIN = "train"
    VAL = "val"
    TEST = "test"


class Label(IntEnum):
    UNKNOWN = -1
    NORMAL = 0
    ANOMALOUS = 1


# --------------------------------------------------------------------------------------------
# encoding helpers


def to_jsonable(value: Any) -> Any:
    """Convert numpy scalars/arrays, paths, enums and dates into plain JSON values."""
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [to_jsonable(v) for v in value]
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, np.ndarray):
        return to_jsonable(value.tolist())
    if isinstance(value, np.generic):
        return to_jsonable(value.item())
    if isinstance(value, float) and not math.isfinite(value):
        return None if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, (PurePath,)):
        return str(value)
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, np.datetime64):
        return str(value)
    return value


def _dumps(value: Any) -> str:
    return json.dumps(to_jsonable(value), sort_keys=True, ensure_ascii=False)


def encode_npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, np.ascontiguousarray(array), allow_pickle=False)
    return buffer.getvalue()


def decode_npy(data: bytes) -> np.ndarray:
    return np.load(io.BytesIO(data), allow_pickle=False)


def encode_png(array: np.ndarray) -> bytes:
    from PIL import Image as PILImage

    array = np.ascontiguousarray(array)
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    buffer = io.BytesIO()
    PILImage.fromarray(array).save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


def decode_png(data: bytes) -> np.ndarray:
    from PIL import Image as PILImage

    with PILImage.open(io.BytesIO(data)) as im:
        return np.asarray(im)


def _as_array(value: Any, name: str, dtype: Any = None) -> np.ndarray:
    try:
        return np.asarray(value) if dtype is None else np.asarray(value, dtype=dtype)
    except (TypeError, ValueError) as exc:
        raise SchemaError(f"{name}: cannot be converted to an array ({exc})") from exc


def _labels_1d(target: Any, length: int, what: str, payload: str) -> np.ndarray:
    array = _as_array(target, "target")
    if array.ndim != 1 or array.shape[0] != length:
        raise SchemaError(
            f"{payload}: target must hold one label per {what} (shape ({length},)), got shape {array.shape}"
        )
    if array.dtype == bool:
        return array.astype(np.uint8)
    if np.issubdtype(array.dtype, np.integer):
        return array.astype(np.int8) if array.min(initial=0) < 0 else array.astype(np.uint8)
    if np.issubdtype(array.dtype, np.floating):
        return array.astype(np.float32)
    raise SchemaError(f"{payload}: target dtype {array.dtype} is not bool, integer or float")


def _seq(dtype: str, depth: int) -> Any:
    from datasets import Sequence, Value

    feature: Any = Value(dtype)
    for _ in range(depth):
        feature = Sequence(feature)
    return feature


# --------------------------------------------------------------------------------------------
# payloads


class Payload:
    """Base of the six payload types."""

    modality: ClassVar[Modality]

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        array = self.primary_array()
        return array if dtype is None else array.astype(dtype)

    def primary_array(self) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def validate_target(self, target: Any) -> np.ndarray | None:
        """Return ``target`` normalised (dtype) after checking its alignment with the payload."""
        raise NotImplementedError  # pragma: no cover - abstract

    def attributes(self) -> dict[str, Any]:
        """Scalar attributes (not arrays) stored beside the arrays in a shard."""
        return {}

    def empty_target(self) -> np.ndarray:
        """An all-normal target, written to shards for samples without ground truth so that every
        sample of a shard set has the same members (the Hub's webdataset reader requires it)."""
        return np.zeros(len(self), np.uint8)  # type: ignore[arg-type]

    def shard_fields(self, target: np.ndarray | None) -> dict[str, bytes]:
        raise NotImplementedError  # pragma: no cover - abstract

    @classmethod
    def from_shard_fields(
        cls, fields: dict[str, bytes], attributes: dict[str, Any]
    ) -> tuple[Payload, np.ndarray | None]:
        raise NotImplementedError  # pragma: no cover - abstract

    @classmethod
    def shard_features(cls) -> dict[str, Any]:
        """Hugging Face ``datasets`` features of the shard members this payload writes."""
        raise NotImplementedError  # pragma: no cover - abstract

    @classmethod
    def shard_member_names(cls) -> tuple[str, ...]:
        return tuple(cls.shard_features())


@dataclass(frozen=True, eq=False)
class Image(Payload):
    """An image, H x W x C uint8 (C is 1, 3 or 4). Target: an H x W mask.

    A binary mask is stored as uint8 {0, 1}; a soft label (NSA's logistic label) as float32.
    """

    pixels: np.ndarray
    modality: ClassVar[Modality] = Modality.IMAGE

    def __post_init__(self) -> None:
        pixels = _as_array(self.pixels, "Image.pixels")
        if pixels.ndim == 2:
            pixels = pixels[:, :, None]
        if pixels.ndim != 3 or pixels.shape[2] not in (1, 3, 4):
            raise SchemaError(f"Image.pixels must be H x W x C with C in (1, 3, 4), got shape {pixels.shape}")
        if pixels.dtype != np.uint8:
            raise SchemaError(f"Image.pixels must be uint8, got {pixels.dtype}")
        object.__setattr__(self, "pixels", pixels)

    @property
    def height(self) -> int:
        return int(self.pixels.shape[0])

    @property
    def width(self) -> int:
        return int(self.pixels.shape[1])

    @property
    def channels(self) -> int:
        return int(self.pixels.shape[2])

    def primary_array(self) -> np.ndarray:
        return self.pixels

    def empty_target(self) -> np.ndarray:
        return np.zeros((self.height, self.width), np.uint8)

    def validate_target(self, target: Any) -> np.ndarray | None:
        if target is None:
            return None
        mask = _as_array(target, "target")
        if mask.ndim == 3 and mask.shape[2] == 1:
            mask = mask[:, :, 0]
        if mask.shape != (self.height, self.width):
            raise SchemaError(
                f"Image: mask shape {mask.shape} differs from the image's H x W ({self.height}, {self.width})"
            )
        if mask.dtype == bool:
            return mask.astype(np.uint8)
        if np.issubdtype(mask.dtype, np.integer):
            if mask.min(initial=0) < 0 or mask.max(initial=0) > 1:
                raise SchemaError("Image: an integer mask must hold only 0 and 1 (binarise it first)")
            return mask.astype(np.uint8)
        if np.issubdtype(mask.dtype, np.floating):
            if not np.all((mask >= 0) & (mask <= 1)):
                raise SchemaError("Image: a soft mask must lie in [0, 1]")
            return mask.astype(np.float32)
        raise SchemaError(f"Image: mask dtype {mask.dtype} is not bool, integer or float")

    def shard_fields(self, target: np.ndarray | None) -> dict[str, bytes]:
        fields = {"image.png": encode_png(self.pixels)}
        if target is not None:
            if target.dtype == np.float32:
                fields["mask.npy"] = encode_npy(target)
            else:
                fields["mask.png"] = encode_png(target * np.uint8(255))
        return fields

    @classmethod
    def from_shard_fields(cls, fields, attributes):
        image = cls(decode_png(fields["image.png"]))
        target = None
        if "mask.png" in fields:
            target = (decode_png(fields["mask.png"]) > 0).astype(np.uint8)
        elif "mask.npy" in fields:
            target = decode_npy(fields["mask.npy"])
        return image, target

    @classmethod
    def shard_features(cls):
        from datasets import Image as HFImage

        return {"image.png": HFImage(), "mask.png": HFImage(), "mask.npy": _seq("float32", 2)}


@dataclass(frozen=True, eq=False)
class Video(Payload):
    """A video: either a file decoded lazily with PyAV, or precomputed snippet features.

    ``path`` form: ``frames(start, stop)`` decodes on demand; ``np.asarray`` decodes every frame
    (T x H x W x 3). ``features`` form: ``np.asarray`` is the T x ... feature array, and each of
    the T snippets covers ``snippet_frames`` frames. Target: one label per frame (``path`` form)
    or per snippet (``features`` form).
    """

    path: str | None = None
    features: np.ndarray | None = None
    fps: float | None = None
    num_frames: int | None = None
    snippet_frames: int = 16
    modality: ClassVar[Modality] = Modality.VIDEO

    def __post_init__(self) -> None:
        if (self.path is None) == (self.features is None):
            raise SchemaError("Video needs exactly one of path (a video file) or features (an array)")
        if self.features is not None:
            feats = _as_array(self.features, "Video.features", np.float32)
            if feats.ndim < 2:
                raise SchemaError(f"Video.features must be T x ..., got shape {feats.shape}")
            object.__setattr__(self, "features", feats)
        else:
            object.__setattr__(self, "path", str(self.path))
        if self.num_frames is not None and self.num_frames < 0:
            raise SchemaError(f"Video.num_frames must be >= 0, got {self.num_frames}")

    @property
    def length(self) -> int:
        """Frames (file form) or snippets (features form)."""
        if self.features is not None:
            return int(self.features.shape[0])
        if self.num_frames is None:
            object.__setattr__(self, "num_frames", self._probe_num_frames())
        return int(self.num_frames)  # type: ignore[arg-type]

    def _probe_num_frames(self) -> int:
        from .io.video import probe_video

        return int(probe_video(self.path).num_frames)  # type: ignore[arg-type]

    def frames(self, start: int = 0, stop: int | None = None) -> np.ndarray:
        """Decode frames ``[start, stop)`` as T x H x W x 3 uint8, seeking near ``start``.

        Consecutive calls on the same file continue decoding where the last one stopped
        instead of seeking again (an open reader is kept per file).
        """
        if self.features is not None:
            raise SchemaError("Video.frames: this video holds features, not a file")
        from .io.video import decode_frames

        return decode_frames(self.path, start, stop)  # type: ignore[arg-type]

    def clips(self, length: int, stride: int | None = None) -> Any:
        """Yield ``(first, clip)`` windows of ``length`` frames (file form, one decoding pass)
        or ``length`` snippets (features form), every ``stride`` (default ``length``)."""
        if length < 1 or (stride is not None and stride < 1):
            raise SchemaError(f"Video.clips: length and stride must be >= 1, got {length}, {stride}")
        if self.features is None:
            from .io.video import iter_clips

            yield from iter_clips(self.path, length, stride)  # type: ignore[arg-type]
            return
        step = stride or length
        for first in range(0, max(0, self.length - length) + 1, step):
            yield first, self.features[first:first + length]

    def primary_array(self) -> np.ndarray:
        return self.features if self.features is not None else self.frames()

    def empty_target(self) -> np.ndarray:
        return np.zeros(self.length, np.uint8)

    def validate_target(self, target):
        if target is None:
            return None
        what = "snippet" if self.features is not None else "frame"
        if self.features is None and self.num_frames is None:
            return _labels_1d(target, _as_array(target, "target").shape[0], what, "Video")
        return _labels_1d(target, self.length, what, "Video")

    def attributes(self):
        return {
            "fps": self.fps,
            "num_frames": self.num_frames,
            "snippet_frames": self.snippet_frames,
            "suffix": Path(self.path).suffix.lower() if self.path else None,
        }

    def shard_fields(self, target):
        if self.features is not None:
            fields = {"features.npy": encode_npy(self.features)}
        else:
            fields = {"video.mp4": Path(self.path).read_bytes()}  # type: ignore[arg-type]
        if target is not None:
            fields["target.npy"] = encode_npy(target)
        return fields

    @classmethod
    def from_shard_fields(cls, fields, attributes):
        target = decode_npy(fields["target.npy"]) if "target.npy" in fields else None
        common = dict(
            fps=attributes.get("fps"),
            num_frames=attributes.get("num_frames"),
            snippet_frames=attributes.get("snippet_frames") or 16,
        )
        if "features.npy" in fields:
            return cls(features=decode_npy(fields["features.npy"]), **common), target
        import tempfile

        handle = tempfile.NamedTemporaryFile(prefix="anomalykit-", suffix=".mp4", delete=False)
        with handle:
            handle.write(fields["video.mp4"])
        return cls(path=handle.name, **common), target

    @classmethod
    def shard_features(cls):
        from datasets import Value

        return {"video.mp4": Value("binary"), "features.npy": _seq("float32", 3), "target.npy": _seq("float32", 1)}


@dataclass(frozen=True, eq=False)
class PointCloud(Payload):
    """N x 3 float32 points, optional N x 3 normals, N x 3 colours and N x 3 displacement field.

    Target: one label per point. ``displacement`` is new minus old position for generated
    defects (zero where a point did not move); ``source_index`` (N, int64) is, for a cloud made
    from another, the index of the source point each point comes from.
    """

    points: np.ndarray
    normals: np.ndarray | None = None
    colors: np.ndarray | None = None
    displacement: np.ndarray | None = None
    source_index: np.ndarray | None = None
    modality: ClassVar[Modality] = Modality.POINTCLOUD

    def __post_init__(self) -> None:
        points = _as_array(self.points, "PointCloud.points", np.float32)
        if points.ndim != 2 or points.shape[1] != 3:
            raise SchemaError(f"PointCloud.points must be N x 3, got shape {points.shape}")
        object.__setattr__(self, "points", points)
        for name in ("normals", "colors", "displacement"):
            value = getattr(self, name)
            if value is None:
                continue
            array = _as_array(value, f"PointCloud.{name}", np.float32)
            if array.shape != points.shape:
                raise SchemaError(f"PointCloud.{name} must have the points' shape {points.shape}, got {array.shape}")
            object.__setattr__(self, name, array)
        if self.source_index is not None:
            index = _as_array(self.source_index, "PointCloud.source_index")
            if index.shape != (points.shape[0],) or (index.size and not np.issubdtype(index.dtype, np.integer)):
                raise SchemaError(f"PointCloud.source_index must be {points.shape[0]} integers, got {index.dtype} {index.shape}")
            object.__setattr__(self, "source_index", index.astype(np.int64))

    def __len__(self) -> int:
        return int(self.points.shape[0])

    def primary_array(self) -> np.ndarray:
        return self.points

    def validate_target(self, target):
        return None if target is None else _labels_1d(target, len(self), "point", "PointCloud")

    def shard_fields(self, target):
        fields = {"points.npy": encode_npy(self.points)}
        for name in ("normals", "colors", "displacement", "source_index"):
            value = getattr(self, name)
            if value is not None:
                fields[f"{name}.npy"] = encode_npy(value)
        if target is not None:
            fields["target.npy"] = encode_npy(target)
        return fields

    @classmethod
    def from_shard_fields(cls, fields, attributes):
        optional = {
            name: decode_npy(fields[f"{name}.npy"])
            for name in ("normals", "colors", "displacement", "source_index")
            if f"{name}.npy" in fields
        }
        target = decode_npy(fields["target.npy"]) if "target.npy" in fields else None
        return cls(decode_npy(fields["points.npy"]), **optional), target

    @classmethod
    def shard_features(cls):
        return {
            "points.npy": _seq("float32", 2),
            "normals.npy": _seq("float32", 2),
            "colors.npy": _seq("float32", 2),
            "displacement.npy": _seq("float32", 2),
            "source_index.npy": _seq("int64", 1),
            "target.npy": _seq("uint8", 1),
        }


@dataclass(frozen=True, eq=False)
class Series(Payload):
    """A multivariate time series: T x C float32 values (NaN marks a missing value).

    ``timestamps`` (length T) are datetime64 or numeric; ``channels`` names the C columns.
    Target: one label per step (T,), or per step and channel (T x C).
    """

    values: np.ndarray
    timestamps: np.ndarray | None = None
    channels: tuple[str, ...] | None = None
    modality: ClassVar[Modality] = Modality.SERIES

    def __post_init__(self) -> None:
        values = _as_array(self.values, "Series.values", np.float32)
        if values.ndim == 1:
            values = values[:, None]
        if values.ndim != 2:
            raise SchemaError(f"Series.values must be T x C, got shape {values.shape}")
        object.__setattr__(self, "values", values)
        if self.timestamps is not None:
            stamps = _as_array(self.timestamps, "Series.timestamps")
            if stamps.shape != (values.shape[0],):
                raise SchemaError(f"Series.timestamps must have length T={values.shape[0]}, got shape {stamps.shape}")
            if stamps.dtype.kind == "M":
                stamps = stamps.astype("datetime64[ns]")
            elif stamps.dtype.kind not in "iuf":
                raise SchemaError(f"Series.timestamps must be datetime64 or numeric, got {stamps.dtype}")
            object.__setattr__(self, "timestamps", stamps)
        if self.channels is None:
            object.__setattr__(self, "channels", tuple(f"ch{i}" for i in range(values.shape[1])))
        else:
            channels = tuple(str(c) for c in self.channels)
            if len(channels) != values.shape[1]:
                raise SchemaError(f"Series.channels names {len(channels)} channels, values have {values.shape[1]}")
            object.__setattr__(self, "channels", channels)

    def __len__(self) -> int:
        return int(self.values.shape[0])

    def primary_array(self) -> np.ndarray:
        return self.values

    def validate_target(self, target):
        if target is None:
            return None
        array = _as_array(target, "target")
        if array.ndim == 2:
            if array.shape != self.values.shape:
                raise SchemaError(f"Series: a 2-D target must be T x C {self.values.shape}, got {array.shape}")
            return array.astype(np.uint8) if array.dtype == bool else array
        return _labels_1d(array, len(self), "step", "Series")

    def attributes(self):
        return {"channels": list(self.channels or ())}

    def shard_fields(self, target):
        fields = {"values.npy": encode_npy(self.values)}
        if self.timestamps is not None:
            fields["timestamps.npy"] = encode_npy(self.timestamps)
        if target is not None:
            fields["target.npy"] = encode_npy(target)
        return fields

    @classmethod
    def from_shard_fields(cls, fields, attributes):
        stamps = decode_npy(fields["timestamps.npy"]) if "timestamps.npy" in fields else None
        target = decode_npy(fields["target.npy"]) if "target.npy" in fields else None
        return cls(decode_npy(fields["values.npy"]), stamps, tuple(attributes.get("channels") or ())), target

    @classmethod
    def shard_features(cls):
        return {"values.npy": _seq("float32", 2), "timestamps.npy": _seq("int64", 1), "target.npy": _seq("int8", 1)}


@dataclass(frozen=True, eq=False)
class EventLog(Payload):
    """A table of events (a ``pyarrow.Table``, one row per event). Target: one label per event.

    ``np.asarray`` gives the numeric view, events x numeric columns as float64 (timestamps as
    nanoseconds since the epoch); ``numeric_columns`` names its columns.
    """

    events: Any  # pyarrow.Table
    modality: ClassVar[Modality] = Modality.EVENTLOG

    def __post_init__(self) -> None:
        import pyarrow as pa

        events = self.events
        if not isinstance(events, pa.Table):
            try:
                events = pa.table(events)
            except (TypeError, ValueError, pa.ArrowInvalid) as exc:
                raise SchemaError(f"EventLog.events must be a pyarrow Table or a column mapping ({exc})") from exc
        object.__setattr__(self, "events", events)

    def __len__(self) -> int:
        return int(self.events.num_rows)

    @property
    def numeric_columns(self) -> list[str]:
        import pyarrow.types as pat

        return [
            f.name
            for f in self.events.schema
            if pat.is_integer(f.type) or pat.is_floating(f.type) or pat.is_timestamp(f.type) or pat.is_boolean(f.type)
        ]

    def primary_array(self) -> np.ndarray:
        import pyarrow as pa
        import pyarrow.types as pat

        columns = []
        for name in self.numeric_columns:
            column = self.events.column(name)
            if pat.is_timestamp(column.type):
                column = column.cast(pa.timestamp("ns")).cast(pa.int64())
            columns.append(column.to_numpy(zero_copy_only=False).astype(np.float64))
        if not columns:
            return np.zeros((len(self), 0), np.float64)
        return np.stack(columns, axis=1)

    def validate_target(self, target):
        return None if target is None else _labels_1d(target, len(self), "event", "EventLog")

    def shard_fields(self, target):
        import pyarrow.parquet as pq

        buffer = io.BytesIO()
        pq.write_table(self.events, buffer)
        fields = {"events.parquet": buffer.getvalue()}
        if target is not None:
            fields["target.npy"] = encode_npy(target)
        return fields

    @classmethod
    def from_shard_fields(cls, fields, attributes):
        import pyarrow.parquet as pq

        target = decode_npy(fields["target.npy"]) if "target.npy" in fields else None
        return cls(pq.read_table(io.BytesIO(fields["events.parquet"]))), target

    @classmethod
    def shard_features(cls):
        from datasets import Value

        return {"events.parquet": Value("binary"), "target.npy": _seq("int8", 1)}


@dataclass(frozen=True, eq=False)
class Graph(Payload):
    """An attributed graph: N x F float32 node features, 2 x E int64 edge index.

    ``sensitive`` (length N) is the protected attribute used by fairness metrics.
    Target: one label per node.
    """

    x: np.ndarray
    edge_index: np.ndarray
    sensitive: np.ndarray | None = None
    edge_attr: np.ndarray | None = None
    modality: ClassVar[Modality] = Modality.GRAPH

    def __post_init__(self) -> None:
        x = _as_array(self.x, "Graph.x", np.float32)
        if x.ndim != 2:
            raise SchemaError(f"Graph.x must be N x F, got shape {x.shape}")
        edges = _as_array(self.edge_index, "Graph.edge_index")
        if edges.ndim != 2 or edges.shape[0] != 2:
            raise SchemaError(f"Graph.edge_index must be 2 x E, got shape {edges.shape}")
        if edges.size and not np.issubdtype(edges.dtype, np.integer):
            raise SchemaError(f"Graph.edge_index must be integer, got {edges.dtype}")
        edges = edges.astype(np.int64)
        if edges.size and (edges.min() < 0 or edges.max() >= x.shape[0]):
            raise SchemaError(
                f"Graph.edge_index refers to node {int(edges.max())}, but the graph has {x.shape[0]} nodes"
            )
        object.__setattr__(self, "x", x)
        object.__setattr__(self, "edge_index", edges)
        if self.sensitive is not None:
            sensitive = _as_array(self.sensitive, "Graph.sensitive")
            if sensitive.shape != (x.shape[0],):
                raise SchemaError(f"Graph.sensitive must have one value per node ({x.shape[0]},), got {sensitive.shape}")
            object.__setattr__(self, "sensitive", sensitive)
        if self.edge_attr is not None:
            attr = _as_array(self.edge_attr, "Graph.edge_attr", np.float32)
            if attr.shape[0] != edges.shape[1]:
                raise SchemaError(f"Graph.edge_attr must have one row per edge ({edges.shape[1]}), got {attr.shape}")
            object.__setattr__(self, "edge_attr", attr)

    @property
    def num_nodes(self) -> int:
        return int(self.x.shape[0])

    @property
    def num_edges(self) -> int:
        return int(self.edge_index.shape[1])

    def primary_array(self) -> np.ndarray:
        return self.x

    def empty_target(self) -> np.ndarray:
        return np.zeros(self.num_nodes, np.uint8)

    def validate_target(self, target):
        return None if target is None else _labels_1d(target, self.num_nodes, "node", "Graph")

    def shard_fields(self, target):
        fields = {"x.npy": encode_npy(self.x), "edge_index.npy": encode_npy(self.edge_index)}
        if self.sensitive is not None:
            fields["sensitive.npy"] = encode_npy(self.sensitive)
        if self.edge_attr is not None:
            fields["edge_attr.npy"] = encode_npy(self.edge_attr)
        if target is not None:
            fields["target.npy"] = encode_npy(target)
        return fields

    @classmethod
    def from_shard_fields(cls, fields, attributes):
        optional = {n: decode_npy(fields[f"{n}.npy"]) for n in ("sensitive", "edge_attr") if f"{n}.npy" in fields}
        target = decode_npy(fields["target.npy"]) if "target.npy" in fields else None
        return cls(decode_npy(fields["x.npy"]), decode_npy(fields["edge_index.npy"]), **optional), target

    @classmethod
    def shard_features(cls):
        return {
            "x.npy": _seq("float32", 2),
            "edge_index.npy": _seq("int64", 2),
            "sensitive.npy": _seq("int64", 1),
            "edge_attr.npy": _seq("float32", 2),
            "target.npy": _seq("uint8", 1),
        }


PAYLOAD_TYPES: dict[Modality, type[Payload]] = {
    Modality.IMAGE: Image,
    Modality.VIDEO: Video,
    Modality.POINTCLOUD: PointCloud,
    Modality.SERIES: Series,
    Modality.EVENTLOG: EventLog,
    Modality.GRAPH: Graph,
}

_SPLITS = {s.value for s in Split}


# --------------------------------------------------------------------------------------------
# the envelope


@dataclass(eq=False)
class Sample:
    """One item of any dataset or generator (see the module docstring)."""

    key: str
    dataset: str
    split: str
    label: int
    data: Payload
    category: str | None = None
    defect: str | None = None
    target: np.ndarray | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    provenance: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.key, str) or not self.key:
            raise SchemaError(f"Sample.key must be a non-empty string, got {self.key!r}")
        if isinstance(self.split, Split):
            self.split = self.split.value
        if self.split not in _SPLITS:
            raise SchemaError(f"Sample {self.key}: split must be one of {sorted(_SPLITS)}, got {self.split!r}")
        try:
            self.label = int(Label(int(self.label)))
        except (ValueError, TypeError):
            raise SchemaError(f"Sample {self.key}: label must be -1, 0 or 1, got {self.label!r}") from None
        if not isinstance(self.data, Payload):
            raise SchemaError(f"Sample {self.key}: data must be a payload (Image, Video, ...), got {type(self.data)}")
        try:
            self.target = self.data.validate_target(self.target)
        except SchemaError as exc:
            raise SchemaError(f"Sample {self.key}: {exc}") from None
        if self.meta is None:
            self.meta = {}

    @property
    def modality(self) -> Modality:
        return self.data.modality

    def envelope(self) -> dict[str, Any]:
        """The JSON member of a shard: fixed keys, nested dicts as JSON strings."""
        return {
            "key": self.key,
            "dataset": self.dataset,
            "category": self.category,
            "split": self.split,
            "label": self.label,
            "defect": self.defect,
            "modality": self.modality.value,
            "meta": _dumps(self.meta),
            "provenance": _dumps(self.provenance) if self.provenance is not None else None,
            "payload": _dumps(self.data.attributes()),
        }

    def to_shard_fields(self) -> dict[str, bytes]:
        has_target = self.target is not None
        fields = self.data.shard_fields(self.target if has_target else self.data.empty_target())
        envelope = self.envelope()
        if not has_target:
            envelope["payload"] = _dumps({**self.data.attributes(), "has_target": False})
        fields["sample.json"] = json.dumps(envelope, ensure_ascii=False).encode("utf-8")
        return fields

    @classmethod
    def from_shard_fields(cls, fields: dict[str, bytes]) -> Sample:
        envelope = json.loads(fields["sample.json"])
        payload_type = PAYLOAD_TYPES[Modality(envelope["modality"])]
        attributes = json.loads(envelope.get("payload") or "{}")
        data, target = payload_type.from_shard_fields(fields, attributes)
        if attributes.get("has_target") is False:
            target = None
        return cls(
            key=envelope["key"],
            dataset=envelope["dataset"],
            split=envelope["split"],
            label=envelope["label"],
            data=data,
            category=envelope.get("category"),
            defect=envelope.get("defect"),
            target=target,
            meta=json.loads(envelope.get("meta") or "{}"),
            provenance=json.loads(envelope["provenance"]) if envelope.get("provenance") else None,
        )

    def as_anomalib(self) -> dict[str, Any]:
        """anomalib-style item: ``image`` (C x H x W float tensor in [0, 1]), ``gt_mask``, ``gt_label``."""
        import torch

        if not isinstance(self.data, Image):
            raise SchemaError(f"Sample {self.key}: as_anomalib() applies to images, this is {self.modality.value}")
        image = torch.from_numpy(np.array(self.data.pixels)).permute(2, 0, 1).float().div_(255.0)
        mask = self.target if self.target is not None else np.zeros((self.data.height, self.data.width), np.uint8)
        return {
            "image": image,
            "gt_mask": torch.from_numpy(np.asarray(mask) > 0),  # a fresh array: writable
            "gt_label": torch.tensor(self.label == 1),
            "image_path": self.meta.get("path"),
            "mask_path": self.meta.get("mask_path"),
        }

    def __repr__(self) -> str:
        parts = [f"key={self.key!r}", f"dataset={self.dataset!r}", f"split={self.split!r}", f"label={self.label}"]
        if self.category:
            parts.append(f"category={self.category!r}")
        if self.defect:
            parts.append(f"defect={self.defect!r}")
        shape = getattr(self.data, "pixels", None)
        array_shape = shape.shape if shape is not None else None
        parts.append(f"data={type(self.data).__name__}{'' if array_shape is None else array_shape}")
        return f"Sample({', '.join(parts)})"


def envelope_features() -> dict[str, Any]:
    """Hugging Face features of the ``sample.json`` shard member."""
    from datasets import Value

    return {
        "key": Value("string"),
        "dataset": Value("string"),
        "category": Value("string"),
        "split": Value("string"),
        "label": Value("int8"),
        "defect": Value("string"),
        "modality": Value("string"),
        "meta": Value("string"),
        "provenance": Value("string"),
        "payload": Value("string"),
    }
