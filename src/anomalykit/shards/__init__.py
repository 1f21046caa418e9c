"""WebDataset tar shards with a checksum manifest, resumable writing and verified reading.

Layout of an output folder::

    out/
      data/<split>-00000.tar, <split>-00001.tar, ...   bounded size (default about 1 GB)
      manifest.json                                     shards, SHA-256, sample counts, keys
      README.md                                         Hub dataset card (when a card is given)

Each sample's members share a key: ``<key>.sample.json`` (the envelope) plus the payload's
fixed lower-case members (``image.png``, ``mask.png``, ``points.npy``, ``values.npy`` ...).
A shard is written as ``<name>.partial`` and renamed when complete; ``manifest.json`` is
rewritten atomically after each shard, so an interrupted run resumes after its last complete
shard. Reading checks every shard's checksum first. Nothing is unpickled.

>>> from anomalykit.shards import write_shards, read_shards     # doctest: +SKIP
>>> write_shards(dataset, "out")                                  # doctest: +SKIP
>>> samples = list(read_shards("out"))                            # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tarfile
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..errors import ShardError
from ..schema import Modality, PAYLOAD_TYPES, Sample

MANIFEST_NAME = "manifest.json"
FORMAT_VERSION = 1
DEFAULT_MAX_BYTES = 1_000_000_000

__all__ = ["write_shards", "read_shards", "read_samples", "first_samples", "ShardWriter", "ShardManifest", "ShardInfo", "tar_key", "shard_features"]


def tar_key(key: str) -> str:
    """A webdataset-safe member prefix for a sample key (no dots or slashes; stays unique)."""
    safe = re.sub(r"[^A-Za-z0-9_-]", "_", key)
    if safe != key:
        safe = f"{safe}-{hashlib.sha1(key.encode('utf-8')).hexdigest()[:8]}"
    return safe


def shard_features(modality: Modality | str, members: Iterable[str] | None = None):
    """``datasets.Features`` of the columns that the Hub's webdataset builder yields.

    ``members`` (the member names actually written, as recorded in the manifest) narrows the
    payload's declared members to those present, so optional members are not declared empty.
    """
    from datasets import Features, Value

    from ..schema import envelope_features

    payload_features = PAYLOAD_TYPES[Modality(modality)].shard_features()
    if members is not None:
        present = set(members)
        payload_features = {name: feature for name, feature in payload_features.items() if name in present}
    columns: dict[str, Any] = {"__key__": Value("string"), "__url__": Value("string")}
    columns["sample.json"] = envelope_features()
    columns.update(payload_features)
    return Features(columns)


@dataclass
class ShardInfo:
    name: str
    split: str
    sha256: str
    num_samples: int
    num_bytes: int
    keys: list[str] = field(default_factory=list)


@dataclass
class ShardManifest:
    dataset: str
    modality: str | None
    shards: list[ShardInfo] = field(default_factory=list)
    complete: bool = False
    format_version: int = FORMAT_VERSION
    created: str = ""
    members: list[str] = field(default_factory=list)
    #: the source licence's redistribution terms (allowed, restricted, forbidden), from the card
    redistribution: str | None = None

    def features(self):
        """Hub ``datasets.Features`` of these shards (only the members that were written)."""
        if self.modality is None:
            raise ShardError("an empty shard set has no features")
        return shard_features(self.modality, self.members or None)

    @property
    def num_samples(self) -> int:
        return sum(s.num_samples for s in self.shards)

    def splits(self) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        for shard in self.shards:
            entry = out.setdefault(shard.split, {"files": [], "num_examples": 0, "num_bytes": 0})
            entry["files"].append(shard.name)
            entry["num_examples"] += shard.num_samples
            entry["num_bytes"] += shard.num_bytes
        return out

    def save(self, out_dir: Path) -> None:
        tmp = out_dir / (MANIFEST_NAME + ".tmp")
        with open(tmp, "w", encoding="utf-8") as handle:
            json.dump(asdict(self), handle, indent=1)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, out_dir / MANIFEST_NAME)

    @classmethod
    def load(cls, out_dir: str | Path) -> ShardManifest:
        path = Path(out_dir) / MANIFEST_NAME
        if not path.is_file():
            raise ShardError(f"no {MANIFEST_NAME} in {out_dir}: not a shard folder written by anomalykit")
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
            shards = [ShardInfo(**s) for s in raw.pop("shards")]
            return cls(shards=shards, **raw)
        except (ValueError, TypeError, KeyError) as exc:
            raise ShardError(f"{path}: malformed manifest ({exc})") from exc


_TAR_BLOCK = 512
_TAR_RECORD = 20 * _TAR_BLOCK


def _tar_file_size(member_bytes: int) -> int:
    """Size of a tar holding members of ``member_bytes`` (headers and padding included):
    two zero blocks end the archive, and the file is padded to a whole record."""
    total = member_bytes + 2 * _TAR_BLOCK
    return -(-total // _TAR_RECORD) * _TAR_RECORD


class _HashingFile:
    """A write-only file wrapper that hashes and counts what passes through."""

    def __init__(self, path: Path) -> None:
        self._handle = open(path, "wb")
        self.sha256 = hashlib.sha256()
        self.num_bytes = 0

    def write(self, data: bytes) -> int:
        self.sha256.update(data)
        self.num_bytes += len(data)
        return self._handle.write(data)

    def tell(self) -> int:
        return self.num_bytes

    def flush(self) -> None:
        self._handle.flush()

    def close(self) -> None:
        self._handle.flush()
        os.fsync(self._handle.fileno())
        self._handle.close()


class _OpenShard:
    def __init__(self, out_dir: Path, name: str, split: str) -> None:
        import webdataset as wds

        self.name = name
        self.split = split
        self.final_path = out_dir / name
        self.partial_path = out_dir / (name + ".partial")
        self.partial_path.parent.mkdir(parents=True, exist_ok=True)
        self.file = _HashingFile(self.partial_path)
        self.writer = wds.TarWriter(self.file, encoder=False, mtime=0.0)  # fixed mtime: same input, same bytes
        self.keys: list[str] = []

    def write(self, sample: Sample, fields: dict[str, bytes]) -> None:
        record: dict[str, Any] = {"__key__": tar_key(sample.key)}
        record.update(fields)
        self.writer.write(record)
        self.keys.append(sample.key)

    def finish(self) -> ShardInfo:
        self.writer.close()  # closes the tar stream and our file wrapper
        if not self.file._handle.closed:
            self.file.close()
        os.replace(self.partial_path, self.final_path)
        return ShardInfo(self.name, self.split, self.file.sha256.hexdigest(), len(self.keys), self.file.num_bytes, self.keys)


class ShardWriter:
    """Write samples into per-split shards of bounded size; resumable.

    Use as a context manager, or call ``close()``; ``done_keys`` lists the keys already stored
    in complete shards (from an earlier, interrupted run), so producers can skip them.
    """

    def __init__(
        self,
        out_dir: str | Path,
        *,
        dataset: str,
        modality: Modality | str | None = None,
        max_bytes: int = DEFAULT_MAX_BYTES,
        data_dir: str = "data",
    ) -> None:
        if max_bytes <= 0:
            raise ValueError(f"max_bytes must be positive, got {max_bytes}")
        self.out_dir = Path(out_dir)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self.max_bytes = max_bytes
        self.data_dir = data_dir
        modality_value = Modality(modality).value if modality is not None else None
        if (self.out_dir / MANIFEST_NAME).is_file():
            self.manifest = ShardManifest.load(self.out_dir)
            if self.manifest.dataset != dataset:
                raise ShardError(
                    f"{self.out_dir} holds shards of {self.manifest.dataset!r}, not {dataset!r}; choose another folder"
                )
            self.manifest.complete = False
        else:
            self.manifest = ShardManifest(dataset=dataset, modality=modality_value, created=time.strftime("%Y-%m-%dT%H:%M:%S"))
        for stale in self.out_dir.glob(f"{data_dir}/*.partial"):
            stale.unlink()
        self.done_keys: set[str] = {k for s in self.manifest.shards for k in s.keys}
        self._members: set[str] = set(self.manifest.members)
        self._written_now: set[str] = set()
        self._next_index: dict[str, int] = {}
        for shard in self.manifest.shards:
            index = int(re.search(r"-(\d+)\.tar$", shard.name).group(1))  # type: ignore[union-attr]
            self._next_index[shard.split] = max(self._next_index.get(shard.split, 0), index + 1)
        self._open: dict[str, _OpenShard] = {}
        self.written = 0
        self.skipped = 0

    def write(self, sample: Sample) -> bool:
        """Write one sample; returns False when its key is already in a complete shard of an
        earlier run (resume). A key written twice in one run is an error, not a silent loss."""
        if sample.key in self.done_keys:
            if sample.key in self._written_now:
                raise ShardError(f"sample key {sample.key!r} is written twice; keys must be unique in a shard set")
            self.skipped += 1
            return False
        if self.manifest.modality is None:
            self.manifest.modality = sample.modality.value
        elif sample.modality.value != self.manifest.modality:
            raise ShardError(
                f"sample {sample.key} is {sample.modality.value}, but this shard set holds {self.manifest.modality}"
            )
        fields = sample.to_shard_fields()
        for name in fields:
            if name not in self._members:
                self._members.add(name)
                self.manifest.members = sorted(self._members)
        # each member: up to three header blocks (webdataset's tar headers may carry a pax record)
        size = sum(3 * _TAR_BLOCK + -(-len(v) // _TAR_BLOCK) * _TAR_BLOCK for v in fields.values())
        split = sample.split
        shard = self._open.get(split)
        if shard is not None and shard.keys and _tar_file_size(shard.writer.tarstream.offset + size) > self.max_bytes:
            self._finish(split)
            shard = None
        if shard is None:
            index = self._next_index.get(split, 0)
            self._next_index[split] = index + 1
            shard = self._open[split] = _OpenShard(self.out_dir, f"{self.data_dir}/{split}-{index:05d}.tar", split)
        shard.write(sample, fields)
        self.done_keys.add(sample.key)
        self._written_now.add(sample.key)
        self.written += 1
        return True

    def _finish(self, split: str) -> None:
        shard = self._open.pop(split)
        self.manifest.shards.append(shard.finish())
        self.manifest.save(self.out_dir)

    def close(self) -> ShardManifest:
        for split in list(self._open):
            self._finish(split)
        self.manifest.complete = True
        self.manifest.save(self.out_dir)
        return self.manifest

    def abort(self) -> None:
        """Drop the shards still open (their samples are rewritten on resume)."""
        for shard in self._open.values():
            try:
                shard.writer.close()
            except Exception:  # noqa: BLE001 - best effort on an error path
                pass
            shard.partial_path.unlink(missing_ok=True)
        self._open.clear()

    def __enter__(self) -> ShardWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


def write_shards(
    samples: Iterable[Sample],
    out_dir: str | Path,
    *,
    dataset: str | None = None,
    card: dict[str, Any] | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
    progress: bool = False,
    description: str | None = None,
) -> ShardManifest:
    """Write samples (an ``AnomalyDataset`` or any iterable) as shards, a manifest and a card.

    ``card`` defaults to the dataset's ``cards/<name>.yaml``; pass a dict for generated corpora.
    An interrupted run called again with the same arguments resumes.
    """
    from ..cards import load_card, render_card
    from ..loaders.base import AnomalyDataset

    total = None
    modality = None
    if isinstance(samples, AnomalyDataset):
        dataset = dataset or samples.name
        modality = samples.modality
        total = len(samples)
    if dataset is None:
        raise ValueError("write_shards: pass dataset= (the name recorded in the manifest and card)")
    writer = ShardWriter(out_dir, dataset=dataset, modality=modality, max_bytes=max_bytes)
    if isinstance(samples, AnomalyDataset) and writer.done_keys:
        import pyarrow as pa
        import pyarrow.compute as pc

        keep = pc.invert(pc.is_in(samples.manifest.column("key"), value_set=pa.array(sorted(writer.done_keys))))
        samples = samples._subset(samples.manifest.filter(keep))
        total = len(samples)
    with writer, _progress(progress, total, description or f"writing {dataset} shards") as advance:
        for sample in samples:
            writer.write(sample)
            advance()
    manifest = writer.manifest
    card = card if card is not None else load_card(dataset)
    if card and manifest.modality:
        readme = render_card(card, manifest.splits(), manifest.features())
        (Path(out_dir) / "README.md").write_text(readme, encoding="utf-8")
        manifest.redistribution = card["redistribution"]
        manifest.save(Path(out_dir))
    return manifest


class _progress:
    """A rich progress bar when asked for, a no-op otherwise."""

    def __init__(self, enabled: bool, total: int | None, description: str) -> None:
        self.enabled = enabled
        self.total = total
        self.description = description
        self._progress = None

    def __enter__(self):
        if not self.enabled:
            return lambda: None
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

        self._progress = Progress(
            "[progress.description]{task.description}", BarColumn(), MofNCompleteColumn(), TimeRemainingColumn()
        )
        self._progress.start()
        task = self._progress.add_task(self.description, total=self.total)
        return lambda: self._progress.advance(task)  # type: ignore[union-attr]

    def __exit__(self, *exc) -> None:
        if self._progress is not None:
            self._progress.stop()


def verify_shard(path: Path, info: ShardInfo) -> None:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 22), b""):
            digest.update(block)
    if digest.hexdigest() != info.sha256:
        raise ShardError(f"{path}: SHA-256 {digest.hexdigest()} differs from the manifest's {info.sha256}")


def iter_tar_samples(path: Path) -> Iterator[dict[str, bytes]]:
    """Group a tar's members by key prefix, as webdataset does, yielding raw bytes only."""
    current_key = None
    fields: dict[str, bytes] = {}
    with tarfile.open(path, mode="r|") as archive:
        for member in archive:
            if not member.isfile():
                continue
            name = member.name
            base, _, suffix = name.partition(".")
            data = archive.extractfile(member).read()  # type: ignore[union-attr]
            if base != current_key:
                if fields:
                    yield fields
                current_key, fields = base, {}
            fields[suffix] = data
    if fields:
        yield fields


def read_shards(out_dir: str | Path, *, split: str | None = None, verify: bool = True) -> Iterator[Sample]:
    """Yield the ``Sample``s stored in a shard folder, checking each shard's SHA-256 first."""
    out_dir = Path(out_dir)
    manifest = ShardManifest.load(out_dir)
    for info in manifest.shards:
        if split is not None and info.split != split:
            continue
        path = out_dir / info.name
        if not path.is_file():
            raise ShardError(f"{path}: listed in the manifest but missing")
        if verify:
            verify_shard(path, info)
        for fields in iter_tar_samples(path):
            if "sample.json" not in fields:
                raise ShardError(f"{path}: a sample has no sample.json member")
            yield Sample.from_shard_fields(fields)


def read_samples(out_dir: str | Path, keys: Sequence[str]) -> dict[str, Sample]:
    """Decode only the samples with the given keys from a shard folder (checksums verified)."""
    out_dir = Path(out_dir)
    manifest = ShardManifest.load(out_dir)
    wanted = set(keys)
    found: dict[str, Sample] = {}
    for info in manifest.shards:
        if not wanted.intersection(info.keys):
            continue
        path = out_dir / info.name
        verify_shard(path, info)
        for raw in iter_tar_samples(path):
            key = json.loads(raw["sample.json"])["key"]
            if key in wanted:
                found[key] = Sample.from_shard_fields(raw)
    return found


def first_samples(out_dir: str | Path, count: int) -> list[Sample]:
    """The first ``count`` samples of a corpus in manifest order (the same after a resume)."""
    keys = [k for shard in ShardManifest.load(Path(out_dir)).shards for k in shard.keys][:max(count, 0)]
    found = read_samples(out_dir, keys)
    return [found[k] for k in keys]
