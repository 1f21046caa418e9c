"""anomalykit: load anomaly-detection datasets as one typed schema, synthesise labelled
anomalies, and write Hub-ready shards with dataset cards.

>>> import anomalykit
>>> "mvtec_ad" in anomalykit.list_datasets()
True
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .errors import (
    AnomalyKitError,
    ConfigError,
    DatasetNotFoundError,
    MalformedFileError,
    SchemaError,
    ShardError,
)
from .baselines.base import get_baseline, list_baselines
from .generators.base import get_generator, list_generators
from .loaders.base import DATASETS, AnomalyDataset
from .schema import EventLog, Graph, Image, Label, Modality, PointCloud, Sample, Series, Split, Video

__version__ = "0.1.0"

#: registry names of the datasets anomalykit knows, whether or not their loader is installed
KNOWN_DATASETS = ("mvtec_ad", "visa", "ucf_crime", "cert", "swat", "real3d_ad", "care", "fairgad")


def list_datasets() -> list[str]:
    """Names of the registered dataset loaders."""
    return DATASETS.names()


def load(name: str, root: str | Path, **options: Any) -> AnomalyDataset:
    """Load dataset ``name`` from ``root`` as a lazy sequence of ``Sample``.

    Options are the loader's (``category``, ``split``, ...) plus ``strict`` (default True).
    """
    loader_class = DATASETS.get(name)
    return AnomalyDataset(loader_class(root, **options))


def read_shards(path: str | Path, **kwargs: Any):
    """Iterate the samples stored in a shard folder (see ``anomalykit.shards.read_shards``)."""
    from .shards import read_shards as _read

    return _read(path, **kwargs)


__all__ = [
    "AnomalyDataset",
    "AnomalyKitError",
    "ConfigError",
    "DatasetNotFoundError",
    "EventLog",
    "Graph",
    "Image",
    "KNOWN_DATASETS",
    "Label",
    "MalformedFileError",
    "Modality",
    "PointCloud",
    "Sample",
    "SchemaError",
    "Series",
    "ShardError",
    "Split",
    "Video",
    "get_baseline",
    "get_generator",
    "list_baselines",
    "list_datasets",
    "list_generators",
    "load",
    "read_shards",
]
