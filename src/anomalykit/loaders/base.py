"""The loader contract and the lazy dataset every loader returns.

A loader subclass does two things:

* ``build_manifest()`` lists the dataset's items as an Arrow table (no decoding): at least the
  columns ``key, split, label, category, defect, path, mask_path``; loaders may add more.
* ``read(row)`` decodes one manifest row into a ``Sample``.

``anomalykit.load(name, root, **options)`` instantiates the registered loader and wraps it in
an ``AnomalyDataset``: a lazy sequence that filters by manifest columns without decoding and
converts to Hugging Face ``datasets``, to a torch ``Dataset`` and to shards.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..cards import load_card
from ..errors import ConfigError, DatasetNotFoundError, MalformedFileError
from ..registry import Registry
from ..schema import Modality, Payload, PAYLOAD_TYPES, Sample

DATASETS: Registry[type[DatasetLoader]] = Registry("dataset", package="anomalykit.loaders")

MANIFEST_COLUMNS = ("key", "split", "label", "category", "defect", "path", "mask_path")


def register_dataset(name: str):
    """Class decorator: register a ``DatasetLoader`` subclass under ``name``."""

    def decorator(cls: type[DatasetLoader]) -> type[DatasetLoader]:
        cls.name = name
        return DATASETS.register(name)(cls)

    return decorator


def manifest_from_rows(rows: list[dict[str, Any]], extra_types: dict[str, pa.DataType] | None = None) -> pa.Table:
    """Build a manifest table with the standard column types from a list of row dicts."""
    schema_fields = [
        pa.field("key", pa.string()),
        pa.field("split", pa.string()),
        pa.field("label", pa.int8()),
        pa.field("category", pa.string()),
        pa.field("defect", pa.string()),
        pa.field("path", pa.string()),
        pa.field("mask_path", pa.string()),
    ]
    extra_types = extra_types or {}
    extras = [c for c in (rows[0] if rows else extra_types) if c not in MANIFEST_COLUMNS]
    for column in extras:
        schema_fields.append(pa.field(column, extra_types.get(column, pa.string())))
    schema = pa.schema(schema_fields)
    columns = {f.name: [row.get(f.name) for row in rows] for f in schema}
    return pa.table(columns, schema=schema)


@dataclass
class VerifyReport:
    """What ``verify`` found: paths missing or extra, files malformed, count differences."""

    dataset: str
    root: str
    missing: list[str] = field(default_factory=list)
    extra: list[str] = field(default_factory=list)
    malformed: list[str] = field(default_factory=list)
    count_mismatches: list[str] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not (self.missing or self.extra or self.malformed or self.count_mismatches)


class DatasetLoader:
    """Base class of every dataset loader. Subclasses set ``modality`` and implement the hooks."""

    name: ClassVar[str] = ""
    modality: ClassVar[Modality]
    #: options accepted by the constructor besides root/strict, with their defaults
    options: ClassVar[dict[str, Any]] = {}

    def __init__(self, root: str | Path, *, strict: bool = True, **options: Any) -> None:
        self.root = Path(root).expanduser()
        self.strict = strict
        unknown = sorted(set(options) - set(self.options))
        if unknown:
            allowed = ", ".join(sorted(self.options)) or "none"
            raise ConfigError(f"{self.name}: unknown option(s) {', '.join(unknown)}; allowed: {allowed}")
        merged = {**self.options, **options}
        for key, value in merged.items():
            setattr(self, key, value)
        if not self.root.is_dir():
            raise self.not_found(self.root, "dataset root")
        self.validate_options()

    # -- hooks -----------------------------------------------------------------------------
    def validate_options(self) -> None:
        """Check option values; raise ``ConfigError`` naming the option."""

    def build_manifest(self) -> pa.Table:  # pragma: no cover - abstract
        raise NotImplementedError

    def read(self, row: dict[str, Any]) -> Sample:  # pragma: no cover - abstract
        raise NotImplementedError

    def verify(self) -> VerifyReport:
        """Compare the tree with the layout; the default checks that every manifest path exists."""
        report = VerifyReport(self.name, str(self.root))
        manifest = self.build_manifest()
        for column in ("path", "mask_path"):
            for value in manifest.column(column).to_pylist():
                if value and not (self.root / value).exists():
                    report.missing.append(value)
        return report

    # -- helpers ---------------------------------------------------------------------------
    @classmethod
    def card(cls) -> dict[str, Any]:
        return load_card(cls.name)

    def not_found(self, path: Path, what: str) -> DatasetNotFoundError:
        card = self.card()
        return DatasetNotFoundError(
            f"{self.name}: {what} not found at {path}. "
            f"Get the dataset from {card.get('homepage', 'its publisher')} "
            f"(licence: {card.get('license_name') or card.get('license', 'see the publisher')}) "
            f"and pass the folder that contains it as root."
        )

    @staticmethod
    def as_list(value: Any) -> list[str] | None:
        if value is None or value == "all":
            return None
        if isinstance(value, str):
            return [value]
        return list(dict.fromkeys(str(v) for v in value))  # a name given twice is loaded once

    def payload_type(self) -> type[Payload]:
        return PAYLOAD_TYPES[self.modality]


class AnomalyDataset(Sequence[Sample]):
    """A lazy sequence of ``Sample`` over a manifest; samples are decoded when read.

    >>> ds = anomalykit.load("mvtec_ad", root, category="bottle")   # doctest: +SKIP
    >>> test = ds.filter(split="test", label=1)                       # no decoding here
    >>> sample = test[0]                                              # decodes one image
    """

    def __init__(self, loader: DatasetLoader, manifest: pa.Table | None = None) -> None:
        self.loader = loader
        self.manifest = loader.build_manifest() if manifest is None else manifest
        self._read_skipped: list[tuple[str, str]] = []

    @property
    def skipped(self) -> list[tuple[str, str]]:
        """``(key, reason)`` of every item left out with ``strict=False``: while listing the
        dataset (the loader's report) and while reading samples."""
        return list(getattr(self.loader, "skipped", [])) + self._read_skipped

    # -- sequence protocol -----------------------------------------------------------------
    def __len__(self) -> int:
        return self.manifest.num_rows

    def __getitem__(self, index: int | slice) -> Any:  # type: ignore[override]
        if isinstance(index, slice):
            return self._subset(self.manifest.slice(*self._slice_bounds(index)))
        if not isinstance(index, (int, np.integer)):
            raise TypeError(f"dataset indices must be integers or slices, not {type(index).__name__}")
        n = len(self)
        i = int(index) + n if index < 0 else int(index)
        if not 0 <= i < n:
            raise IndexError(f"index {index} out of range for a dataset of {n} samples")
        return self.loader.read(self._row(i))

    def _slice_bounds(self, index: slice) -> tuple[int, int]:
        start, stop, step = index.indices(len(self))
        if step != 1:
            raise ValueError("dataset slices must have step 1; use filter() or select() otherwise")
        return start, max(0, stop - start)

    def _row(self, i: int) -> dict[str, Any]:
        return {name: self.manifest.column(name)[i].as_py() for name in self.manifest.column_names}

    def __iter__(self) -> Iterator[Sample]:
        """Iterate in manifest order. With ``strict=False``, unreadable items are skipped and
        recorded in ``self.skipped`` (with a warning per item); otherwise the error propagates.
        A loader may offer ``iter_samples(manifest)``, a batched reader used when strict."""
        fast = getattr(self.loader, "iter_samples", None)
        if fast is not None and self.loader.strict:
            # the loader reads many samples at once faster than row by row (CERT user-days)
            yield from fast(self.manifest)
            return
        # batches, not one to_pylist(): a manifest of millions of rows (CERT user-days) would
        # otherwise become gigabytes of Python dicts before the first sample
        for batch in self.manifest.to_batches(max_chunksize=4096):
            for row in batch.to_pylist():
                try:
                    yield self.loader.read(row)
                except (MalformedFileError, FileNotFoundError) as exc:
                    if self.loader.strict:
                        raise
                    self._read_skipped.append((row["key"], str(exc)))
                    warnings.warn(f"{self.loader.name}: skipped {row['key']}: {exc}", stacklevel=2)

    # -- manifest views --------------------------------------------------------------------
    @property
    def name(self) -> str:
        return self.loader.name

    @property
    def modality(self) -> Modality:
        return self.loader.modality

    @property
    def keys(self) -> list[str]:
        return self.manifest.column("key").to_pylist()

    def _subset(self, manifest: pa.Table) -> AnomalyDataset:
        return AnomalyDataset(self.loader, manifest)

    def select(self, indices: Iterable[int]) -> AnomalyDataset:
        return self._subset(self.manifest.take(pa.array(list(indices), pa.int64())))

    def filter(
        self,
        split: str | Iterable[str] | None = None,
        category: str | Iterable[str] | None = None,
        label: int | Iterable[int] | None = None,
        defect: str | Iterable[str] | None = None,
    ) -> AnomalyDataset:
        """Keep the rows that match every given criterion (a value or a list of values)."""
        mask = None
        for column, wanted in (("split", split), ("category", category), ("label", label), ("defect", defect)):
            if wanted is None:
                continue
            values = [wanted] if isinstance(wanted, (str, int)) else list(wanted)
            if column == "split":
                values = [getattr(v, "value", v) for v in values]
            condition = pc.is_in(self.manifest.column(column), value_set=pa.array(values, self.manifest.schema.field(column).type))
            mask = condition if mask is None else pc.and_(mask, condition)
        return self if mask is None else self._subset(self.manifest.filter(mask))

    def counts(self) -> dict[str, int]:
        """Number of samples per ``split/label`` (and ``split/label/category`` groups)."""
        grouped = self.manifest.group_by(["split", "label"]).aggregate([("key", "count")])
        names = {0: "normal", 1: "anomalous", -1: "unknown"}
        return {
            f"{row['split']}/{names[row['label']]}": row["key_count"]
            for row in sorted(grouped.to_pylist(), key=lambda r: (r["split"], r["label"]))
        }

    def __repr__(self) -> str:
        return f"AnomalyDataset(name={self.name!r}, root={str(self.loader.root)!r}, samples={len(self)})"

    # -- conversions -----------------------------------------------------------------------
    def to_hf(self):
        """A ``datasets.Dataset`` with typed features (envelope columns plus payload columns)."""
        import tempfile

        import datasets

        from ..hf import dataset_features, sample_to_hf_row

        features = dataset_features(self.modality)

        def generate():
            for sample in self:
                yield sample_to_hf_row(sample)

        # A fresh cache folder per call: the generator's fingerprint cannot see file contents,
        # so a shared cache could hand back stale rows after the files changed.
        cache_dir = tempfile.mkdtemp(prefix="anomalykit-hf-")
        return datasets.Dataset.from_generator(generate, features=features, cache_dir=cache_dir)

    def to_torch(self, transform=None):
        """A ``torch.utils.data.Dataset`` returning dicts of tensors (``transform`` applied last)."""
        from ..torch_compat import TorchDataset

        return TorchDataset(self, transform=transform)

    def write_shards(self, out_dir: str | Path, **kwargs: Any):
        """Write webdataset shards (see ``anomalykit.shards.write_shards``)."""
        from ..shards import write_shards

        return write_shards(self, out_dir, **kwargs)
