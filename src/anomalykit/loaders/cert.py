"""CERT Insider Threat Test Dataset (CMU SEI / ExactData), releases r4.2, r5.2 and r6.2.

One sample per user and day (or per user and week, or per logon session): an ``EventLog`` of
that user's events across ``logon``, ``device``, ``http``, ``email`` and ``file``, with a
per-event label (1 when the event's (type, id) is in the insider's answer file and the row's
user is the insider), the scenario as ``defect`` (``scenario-2``), and the user's LDAP and
psychometric attributes in ``meta``. File events on a decoy file of ``decoy_file.csv`` (r5.2,
r6.2) are marked in the event table's ``decoy`` column.

>>> ds = anomalykit.load("cert", "/data/cert", release="r4.2")      # doctest: +SKIP
>>> ds.filter(label=1)[0].defect                                       # doctest: +SKIP
'scenario-1'
>>> for sample in ds.loader.iter_samples(ds.manifest): ...         # doctest: +SKIP

``loader.iter_samples(manifest)`` gives the same samples as iterating the dataset, several
times faster (see ``benchmarks/bench_cert_stream.py``).

Root: the folder holding the release folders (``r4.2/``, ...) and ``answers/``, or a release
folder itself. Releases are recognised by folder name, as in the reference feature extractor.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import warnings
from enum import Enum
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ..errors import ConfigError, MalformedFileError
from ..schema import EventLog, Modality, Sample
from ._cert_index import (
    ACTIVITY_TYPES,
    EVENT_COLUMNS,
    INDEX_VERSION,
    KNOWN_RELEASES,
    LDAP_COLUMNS,
    PSYCHOMETRIC_COLUMNS,
    SECONDS_PER_DAY,
    Answers,
    Decoys,
    EventStore,
    IndexInfo,
    Skipped,
    build_index,
    fail_or_skip,
    fingerprint_sources,
    read_answers,
    read_csv_dicts,
    read_decoys,
)
from .base import DatasetLoader, VerifyReport, register_dataset

__all__ = ["CertLoader", "Unit", "KNOWN_RELEASES", "EVENT_COLUMNS"]


class Unit(str, Enum):
    """What one sample covers."""

    DAY = "day"
    WEEK = "week"  # Sunday to Saturday, as the reference feature extractor counts weeks
    SESSION = "session"  # Logon to Logoff of one user on one PC


_MANIFEST_SCHEMA = pa.schema([
    ("key", pa.string()), ("split", pa.string()), ("label", pa.int8()), ("category", pa.string()),
    ("defect", pa.string()), ("path", pa.string()), ("mask_path", pa.string()), ("user", pa.string()),
    ("pc", pa.string()), ("start", pa.timestamp("s")), ("end", pa.timestamp("s")), ("n_events", pa.int64()),
    ("n_malicious", pa.int64()), ("n_decoy", pa.int64()), ("ranges", pa.list_(pa.int64())),
])
_LDAP_NAME = re.compile(r"^(\d{4})-(\d{2})\.csv$")


@register_dataset("cert")
class CertLoader(DatasetLoader):
    """Loader of the CERT insider-threat releases r4.2, r5.2 and r6.2.

    Options:

    * ``release``: ``"r4.2"``, ``"r5.2"`` or ``"r6.2"``; needed only when root holds several.
    * ``unit``: ``"day"`` (default), ``"week"`` or ``"session"``.
    * ``answers``: the answers folder (default: ``answers/`` beside or inside the release). Without
      it, labels are -1 (unknown) and targets are None.
    * ``cache_dir``: where the index goes (default: ``<release>/.anomalykit/`` when writable, else
      ``$XDG_CACHE_HOME/anomalykit/cert/``).
    * ``train_until``: an ISO date; samples ending before it get ``split="train"``, the rest
      ``"test"`` (default None: every sample is ``"test"``).
    * ``memory_map``: read the index through a memory map (default True: payloads are zero-copy
      views, paged in when used); False reads each day's batch into memory instead.
    * ``progress``: show a progress bar while indexing large files.

    r5.2 and r6.2 need ``decoy_file.csv`` (with ``strict=False`` a missing one is listed in
    ``loader.skipped`` and no event is marked).

    Design, for real-size data (r4.2's ``http.csv`` is 14.5 GB, r6.2's holds 117 M rows):

    * **Index, built once.** The five activity files are read together with pyarrow's streaming
      CSV reader (4 MB blocks, every column as text, dates parsed to milliseconds) and merged by
      day: a day is written once every file has moved past it (the files are in date order), so
      about one day of events is held at a time. Rows that arrive out of order, or a day larger
      than the 128 MB budget, are written as an extra chunk of the same day, never dropped. Each
      chunk is grouped by day, user and date (one int64 key per row, sorted in a worker thread
      while the next day is parsed) and appended to ``events.arrow`` (Arrow IPC, one record
      batch per chunk, the ``EventLog`` columns); beside it ``malicious.u8`` holds one label byte
      per row and ``batch_starts.npy`` the first row of each batch. ``userdays.parquet`` lists
      every (user, day) with its event, malicious and decoy counts and row ranges ``[batch,
      start, count]``; ``sessions.parquet`` holds the Logon/Logoff pairing; ``malicious.parquet``
      the matched answer events; ``index.json`` the source fingerprint (sizes and mtimes of the
      activity, answer and decoy files), row counts and skipped rows. A changed source file
      triggers a rebuild. The index takes about as much disk as the CSVs (uncompressed, so it
      can be mapped).
    * **Manifest.** Built from ``userdays.parquet`` (grouped by week, or joined with the
      sessions), so listing samples never touches the events.
    * **read(row).** Slices the user's rows out of the record batch(es) named by the row's ranges
      (one per day). Through the memory map this is zero-copy and a sample's bytes are paged in
      only when used; with ``memory_map=False`` the batch (about a day of events) is read into
      memory and the last few are kept, so reading in manifest order (day-major) reads each
      batch once. Either way memory stays bounded by a few days of events whatever the file size.
    * **iter_samples(manifest).** The same samples for a whole manifest with less Python work per
      sample, which is what limits throughput at about 90 events per user-day: the manifest is
      read a record batch at a time as columns (no dict per row), the event batch at hand is
      kept and each user-day is one ``Table.slice`` of it, labels are a bool view of the label
      file (the schema turns them into uint8 without a range check), and the LDAP, psychometric
      and insider entries of ``meta`` are looked up once per user and month and shared by that
      user's samples (copy them before changing them). ``AnomalyDataset`` iteration reads rows
      one dict at a time and stays the slower path.
    * **Decoys.** A file event whose (filename, pc) is a row of ``decoy_file.csv`` has
      ``decoy=True`` (False for every other event, and throughout r4.2, which has no decoy
      list); ``meta["n_decoy"]`` and the manifest's ``n_decoy`` count them per sample.

    ``loader.report`` tells what the index holds and what a unit leaves out: rows per file,
    answer events not found, Logoffs without a Logon, decoy events, and in session mode the
    events outside every Logon/Logoff session (``events_outside_sessions``, by type; they are in
    their user-day but in no session sample, with a warning). It is counted once per index, in
    one pass over the index's type, user, pc and date columns, and cached beside it.

    Bad input: a truncated row (too few or too many fields), an unparsable date or size, an
    empty user, a missing or unknown column: ``MalformedFileError`` with file and line. With
    ``strict=False`` such rows (or a file with missing columns) are skipped and listed in
    ``loader.skipped`` with a warning. A release folder not named ``r4.2``, ``r5.2`` or ``r6.2``
    raises ``ConfigError`` listing the known releases. The truncated r6.2 date in
    ``insiders.csv`` (``/..``) is read as ``02/..`` and listed in ``loader.repairs``.
    """

    modality = Modality.EVENTLOG
    options = {"release": None, "unit": "day", "answers": None, "cache_dir": None, "train_until": None,
               "memory_map": True, "progress": True}

    @property
    def skipped(self) -> list[tuple[str, str]]:
        """``(file:line, reason)`` of every item left out under ``strict=False``."""
        return self._skips.items

    def validate_options(self) -> None:
        self._skips = Skipped()
        self.repairs: list[str] = []
        self.unmatched_answers: list[str] = []
        try:
            self.unit = Unit(self.unit)
        except ValueError:
            raise ConfigError(f"cert: unit must be one of {', '.join(u.value for u in Unit)}, got {self.unit!r}") from None
        if self.release is not None and self.release not in KNOWN_RELEASES:
            raise ConfigError(f"cert: release must be one of {', '.join(KNOWN_RELEASES)}, got {self.release!r}")
        self._train_until: int | None = None
        if self.train_until is not None:
            try:
                self._train_until = int(np.datetime64(str(self.train_until), "s").astype(np.int64))
            except ValueError:
                raise ConfigError(f"cert: train_until must be an ISO date, got {self.train_until!r}") from None
        self.release_dir = self._resolve_release()
        self.release = self.release_dir.name
        self._answers: Answers | None = None
        self._answers_loaded = False
        self._index: IndexInfo | None = None
        self._store: EventStore | None = None
        self._people_cache: dict[str, Any] | None = None
        self._persons: dict[str, dict[str, Any]] = {}
        self._employees: dict[tuple[str, str], tuple[Any, ...]] = {}
        self._by_session = self.unit is Unit.SESSION
        self._unit_name = self.unit.value
        self._stamps: dict[int, str] = {}
        self._decoys: Decoys | None = None
        self._decoys_loaded = False
        #: what the index and the chosen unit leave out or notice (see the class docstring)
        self.report: dict[str, Any] = {}

    # -- locating things ---------------------------------------------------------------------
    def _resolve_release(self) -> Path:
        root = self.root
        known = ", ".join(KNOWN_RELEASES)
        if _looks_like_release(root):
            folder = root
            if self.release is not None and self.release != root.name:
                raise ConfigError(f"cert: root {root} is release folder {root.name!r}, but release={self.release!r} was asked for")
        elif self.release is not None:
            folder = root / self.release
            if not folder.is_dir():
                raise self.not_found(folder, f"release folder {self.release}")
        else:
            candidates = sorted(p for p in root.iterdir() if p.is_dir() and _looks_like_release(p))
            releases = [p for p in candidates if p.name in KNOWN_RELEASES]
            if len(releases) > 1:
                raise ConfigError(f"cert: {root} holds several releases ({', '.join(p.name for p in releases)}); "
                                  f"pass release= one of them")
            if releases:
                folder = releases[0]
            elif candidates:
                folder = candidates[0]
            else:
                raise self.not_found(root / "r4.2", f"a release folder ({known}) with logon.csv, http.csv, ...")
        if folder.name not in KNOWN_RELEASES:
            raise ConfigError(f"cert: release folder {folder} is not a known release; known releases: {known} "
                              f"(the folder must keep the name of its release)")
        return folder

    def _answers_dir(self) -> Path | None:
        if self.answers is not None:
            folder = Path(self.answers).expanduser()
            if not (folder / "insiders.csv").is_file():
                raise self.not_found(folder / "insiders.csv", "answers table")
            return folder
        for folder in (self.root / "answers", self.release_dir.parent / "answers", self.release_dir / "answers"):
            if (folder / "insiders.csv").is_file():
                return folder
        return None

    def _cache_folder(self) -> Path:
        name = f"cert-{self.release}-index-v{INDEX_VERSION}"
        if self.cache_dir is not None:
            return Path(self.cache_dir).expanduser() / name
        if os.access(self.release_dir, os.W_OK):
            return self.release_dir / ".anomalykit" / name
        digest = hashlib.sha1(str(self.release_dir.resolve()).encode()).hexdigest()[:16]
        base = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
        return base / "anomalykit" / "cert" / digest / name

    def activity_files(self) -> dict[str, Path]:
        """The activity files present (missing ones are an error, or skipped when not strict)."""
        files = {}
        for kind in ACTIVITY_TYPES:
            path = self.release_dir / f"{kind}.csv"
            if path.is_file():
                files[kind] = path
            elif self.strict:
                raise self.not_found(path, f"{self.release} activity file {kind}.csv")
            else:
                self._skips.add(str(path), "activity file missing")
        if not files:
            raise self.not_found(self.release_dir / "logon.csv", f"{self.release} activity files")
        return files

    @property
    def decoys(self) -> Decoys | None:
        """The decoy files of ``decoy_file.csv`` (r5.2, r6.2; None for r4.2)."""
        if not self._decoys_loaded:
            self._decoys_loaded = True
            path = self.release_dir / "decoy_file.csv"
            if self.release == "r4.2":
                self._decoys = None
            elif path.is_file():
                self._decoys = read_decoys(path, self.strict, self._skips)
            elif self.strict:
                raise self.not_found(path, f"{self.release} decoy_file.csv")
            else:
                self._skips.add(str(path), "file missing; no file event is marked as touching a decoy")
        return self._decoys

    # -- answers and index -------------------------------------------------------------------
    @property
    def answers_table(self) -> Answers | None:
        """The insiders of this release and their malicious events (None without answers)."""
        if not self._answers_loaded:
            folder = self._answers_dir()
            if folder is None:
                warnings.warn(f"cert: no answers/insiders.csv found near {self.release_dir}; labels are -1 "
                              f"(unknown). Pass answers= the answers folder.", stacklevel=3)
                self._answers = None
            else:
                self._answers = read_answers(folder, self.release, self.strict, self._skips)
                self.repairs = list(self._answers.repairs)
            self._answers_loaded = True
        return self._answers

    def index(self) -> IndexInfo:
        """The event index, built on first use and reused while the sources are unchanged."""
        if self._index is not None:
            return self._index
        files = self.activity_files()
        answers = self.answers_table
        decoys = self.decoys
        fingerprint = fingerprint_sources(self.release, files, answers, decoys)
        folder = self._cache_folder()
        info = None
        if (folder / "index.json").is_file():
            try:
                info = IndexInfo.load(folder)
            except (ValueError, KeyError):
                info = None
            if info is not None and info.fingerprint != fingerprint:
                info = None
        if info is None:
            info = build_index(folder, self.release, files, answers, self.strict, Skipped(), fingerprint,
                               self.root, progress=self.progress, decoys=decoys)
        if info.skipped:
            if self.strict:  # an index built with strict=False; strict loading still fails on it
                where, reason = info.skipped[0]
                path, _, line = where.rpartition(":")
                raise MalformedFileError(path if line.isdigit() else where, reason, int(line) if line.isdigit() else None)
            self._skips.items.extend(info.skipped)
        self.unmatched_answers = list(info.unmatched_answers)
        self.report.update({"rows": dict(info.rows), "unmatched_answers": len(info.unmatched_answers),
                            "orphan_logoffs": info.orphan_logoffs, "decoy_events": info.decoy_events})
        if self.skipped:
            warnings.warn(f"cert {self.release}: skipped {len(self.skipped)} item(s) (strict=False): first "
                          f"{self.skipped[0][0]}: {self.skipped[0][1]}; see loader.skipped", stacklevel=3)
        self._index = info
        cached = 8 if self.unit is Unit.WEEK else 3
        self._store = EventStore(folder, cached_batches=cached, memory_map=self.memory_map)
        return info

    # -- manifest ----------------------------------------------------------------------------
    def build_manifest(self) -> pa.Table:
        import polars as pl

        info = self.index()
        userdays = pl.from_arrow(pq.ParquetFile(info.folder / "userdays.parquet").read())
        if self.unit is Unit.DAY:
            units = userdays.select(
                "user", pl.lit(None, pl.String).alias("pc"),
                (pl.col("day").cast(pl.Int64) * SECONDS_PER_DAY).alias("start"),
                (pl.col("day").cast(pl.Int64) * SECONDS_PER_DAY + SECONDS_PER_DAY - 1).alias("end"),
                "n_events", "n_malicious", "n_decoy", "ranges",
            ).sort(["start", "user"])
        elif self.unit is Unit.WEEK:
            week = pl.col("day") - (pl.col("day") - 3) % 7  # day 3 since the epoch is a Sunday
            units = (
                userdays.with_columns(week.alias("week")).sort(["week", "user", "day"])
                .group_by(["week", "user"], maintain_order=True)
                .agg(pl.col("ranges").list.explode(keep_nulls=False, empty_as_null=False),
                     pl.col("n_events").sum(), pl.col("n_malicious").sum(), pl.col("n_decoy").sum())
                .select("user", pl.lit(None, pl.String).alias("pc"),
                        (pl.col("week").cast(pl.Int64) * SECONDS_PER_DAY).alias("start"),
                        (pl.col("week").cast(pl.Int64) * SECONDS_PER_DAY + 7 * SECONDS_PER_DAY - 1).alias("end"),
                        "n_events", "n_malicious", "n_decoy", "ranges")
            )
        else:
            units = self._session_units(info, userdays)
        return self._manifest(units)

    def _session_units(self, info: IndexInfo, userdays: Any) -> Any:
        import polars as pl

        sessions = pl.from_arrow(pq.ParquetFile(info.folder / "sessions.parquet").read()).with_columns(
            pl.col("start").dt.epoch("s").alias("start"), pl.col("end").dt.epoch("s").alias("end"),
        ).sort(["start", "user", "pc"]).with_row_index("session")
        self._report_outside_sessions(info, sessions)
        days = sessions.select(
            "session", "user",
            pl.int_ranges(pl.col("start") // SECONDS_PER_DAY, pl.col("end") // SECONDS_PER_DAY + 1).alias("day"),
        ).explode("day").with_columns(pl.col("day").cast(pl.Int32))
        ranges = (
            days.join(userdays.select("user", "day", "ranges"), on=["user", "day"], how="inner")
            .sort(["session", "day"]).group_by("session", maintain_order=True)
            .agg(pl.col("ranges").list.explode(keep_nulls=False, empty_as_null=False))
        )
        malicious = pl.from_arrow(pq.ParquetFile(info.folder / "malicious.parquet").read()).with_columns(
            pl.col("date").dt.epoch("s").alias("t"))
        hits = (
            sessions.select("session", "user", "pc", "start", "end")
            .join(malicious.select("user", "pc", "t"), on=["user", "pc"], how="inner")
            .filter((pl.col("t") >= pl.col("start")) & (pl.col("t") <= pl.col("end")))
            .group_by("session").agg(pl.len().cast(pl.Int64).alias("n_malicious"))
        )
        return (
            sessions.join(ranges, on="session", how="inner").join(hits, on="session", how="left")
            .sort("session")
            .select("user", "pc", "start", "end", pl.lit(None, pl.Int64).alias("n_events"),
                    pl.col("n_malicious").fill_null(0), pl.lit(None, pl.Int64).alias("n_decoy"), "ranges",
                    # two sessions opened in the same second on one PC still get distinct keys
                    pl.int_range(pl.len()).over(["user", "pc", "start"]).alias("repeat"))
        )

    def _report_outside_sessions(self, info: IndexInfo, sessions: Any) -> None:
        """Count the events no session covers (they are in no session sample) into ``report``.

        One pass over the type, user, pc and date columns of the index, a day's batch at a time
        (an as-of join of each event with the last session of its user and PC opened before
        it); the result is cached beside the index.
        """
        import polars as pl

        cached = info.folder / "outside_sessions.json"
        try:
            outside = json.loads(cached.read_text())
        except (OSError, ValueError):
            outside = None
        if outside is None:
            spans = sessions.select("user", "pc", "start", "end").sort("start")
            by_type: dict[str, int] = {}
            for number in range(self._store.num_batches):  # type: ignore[union-attr]
                table, _ = self._store.batch(number)  # type: ignore[union-attr]
                events = pl.from_arrow(table.select(["type", "user", "pc", "date"])).select(
                    "type", "user", "pc", (pl.col("date").dt.epoch("ms") // 1000).alias("t")).sort("t")
                if events.height == 0:
                    continue
                lo, hi = events["t"].min(), events["t"].max()
                near = spans.filter((pl.col("start") <= hi) & (pl.col("end") >= lo))
                matched = events.join_asof(near, left_on="t", right_on="start", by=["user", "pc"], strategy="backward",
                                           check_sortedness=False)
                missed = matched.filter(pl.col("end").is_null() | (pl.col("t") > pl.col("end")))
                for kind, count in missed.group_by("type").len().iter_rows():
                    by_type[kind] = by_type.get(kind, 0) + count
            outside = {"events": sum(by_type.values()), "by_type": dict(sorted(by_type.items()))}
            try:
                scratch = cached.with_name(f".{cached.name}.{os.getpid()}")
                scratch.write_text(json.dumps(outside))
                os.replace(scratch, cached)
            except OSError:  # a read-only index still loads; the count is made again next time
                pass
        self.report["events_outside_sessions"] = outside["events"]
        self.report["events_outside_sessions_by_type"] = outside["by_type"]
        if outside["events"]:
            kinds = ", ".join(f"{count} {kind}" for kind, count in outside["by_type"].items())
            warnings.warn(f"cert {self.release}: {outside['events']} event(s) fall outside every Logon/Logoff session "
                          f"({kinds}) and are in no session sample; see loader.report", stacklevel=4)

    def _manifest(self, units: Any) -> pa.Table:
        import polars as pl

        answers = self.answers_table
        insiders = answers.insiders if answers else {}
        scenario = {user: f"scenario-{ins.scenario}" for user, ins in insiders.items()}
        stamp = pl.from_epoch("start", "s")
        if self.unit is Unit.DAY:
            key = pl.format("{}/{}/{}", pl.lit(self.release), "user", stamp.dt.strftime("%Y-%m-%d"))
        elif self.unit is Unit.WEEK:
            key = pl.format("{}/{}/week-{}", pl.lit(self.release), "user", stamp.dt.strftime("%Y-%m-%d"))
        else:
            key = pl.format("{}/{}/{}/{}", pl.lit(self.release), "user", "pc", stamp.dt.strftime("%Y-%m-%dT%H:%M:%S"))
            key = pl.when(pl.col("repeat") > 0).then(pl.format("{}#{}", key, "repeat")).otherwise(key)
        if answers is None:
            label = pl.lit(-1, pl.Int8)
        else:
            label = (pl.col("n_malicious") > 0).cast(pl.Int8)
        defect = (
            pl.when(pl.col("n_malicious") > 0)
            .then(pl.col("user").replace_strict(scenario, default="scenario-unknown", return_dtype=pl.String))
            .otherwise(pl.lit(None, pl.String))
        )
        split = pl.lit("test")
        if self._train_until is not None:
            split = pl.when(pl.col("end") < self._train_until).then(pl.lit("train")).otherwise(pl.lit("test"))
        path = self.release_dir.relative_to(self.root).as_posix() if self.release_dir != self.root else "."
        frame = units.select(
            key.alias("key"), split.alias("split"), label.alias("label"), pl.lit(self.release).alias("category"),
            defect.alias("defect"), pl.lit(path).alias("path"), pl.lit(None, pl.String).alias("mask_path"),
            "user", "pc", pl.from_epoch("start", "s").alias("start"), pl.from_epoch("end", "s").alias("end"),
            pl.col("n_events").cast(pl.Int64), pl.col("n_malicious").cast(pl.Int64),
            pl.col("n_decoy").cast(pl.Int64), "ranges",
        )
        return frame.to_arrow().cast(_MANIFEST_SCHEMA)

    # -- samples -----------------------------------------------------------------------------
    def read(self, row: dict[str, Any]) -> Sample:
        if self._store is None:
            self.index()
        start = _epoch_seconds(row["start"])
        end = _epoch_seconds(row["end"])
        events, target = self._store.rows(row["ranges"])  # type: ignore[union-attr]
        return self._sample(row["key"], row["split"], row["label"], row["defect"], row["user"], row.get("pc"),
                            start, end, events, target, row["n_malicious"], row.get("n_decoy"))

    def iter_samples(self, manifest: pa.Table | None = None) -> Iterator[Sample]:
        """The samples of ``manifest`` (default: all of them), in its order: what iterating the
        dataset gives, with less work per sample.

        Reads the manifest a record batch at a time as columns (not one dict per row), keeps the
        current event batch (about one day of events) at hand and cuts each user-day out of it.

        >>> ds = anomalykit.load("cert", root)                                  # doctest: +SKIP
        >>> for sample in ds.loader.iter_samples(ds.manifest): ...             # doctest: +SKIP
        """
        if manifest is None:
            manifest = self.build_manifest()
        if self._store is None:
            self.index()
        store = self._store
        current, table, flags = -1, None, None
        for batch in manifest.to_batches(max_chunksize=1 << 16):
            columns = [batch.column(name).to_pylist() for name in ("key", "split", "label", "defect", "user", "pc",
                                                                    "n_malicious", "n_decoy")]
            starts = batch.column("start").cast(pa.int64()).to_numpy(zero_copy_only=False).tolist()
            ends = batch.column("end").cast(pa.int64()).to_numpy(zero_copy_only=False).tolist()
            ranges = batch.column("ranges")
            offsets = (ranges.offsets.to_numpy() - ranges.offsets[0].as_py()).tolist()
            flat = ranges.values.slice(ranges.offsets[0].as_py(), offsets[-1] if offsets else 0).to_numpy().tolist()
            for i, (key, split, label, defect, user, host, n_malicious, n_decoy) in enumerate(zip(*columns)):
                lo, hi = offsets[i], offsets[i + 1]
                if hi - lo == 3:  # one range: a user-day, cut from the batch at hand
                    number, first, count = flat[lo], flat[lo + 1], flat[lo + 2]
                    if number != current:
                        (table, flags), current = store.batch(number), number  # type: ignore[union-attr]
                    events, target = table.slice(first, count), flags[first:first + count]
                else:
                    events, target = store.rows(flat[lo:hi])  # type: ignore[union-attr]
                yield self._sample(key, split, label, defect, user, host, starts[i], ends[i], events, target,
                                   n_malicious, n_decoy)

    def _sample(self, key: str, split: str, label: int, defect: str | None, user: str, host: str | None,
                start: int, end: int, events: pa.Table, target: np.ndarray, n_malicious: int | None,
                n_decoy: int | None) -> Sample:
        """One sample from its manifest fields (times in epoch seconds) and its events and labels."""
        if self._by_session:
            dates = events.column("date")
            keep = pc.and_(pc.equal(events.column("pc"), host),
                           pc.and_(pc.greater_equal(dates, pa.scalar(start * 1000, pa.timestamp("ms"))),
                                   pc.less_equal(dates, pa.scalar(end * 1000, pa.timestamp("ms")))))
            events, target = events.filter(keep), target[keep.to_numpy(zero_copy_only=False)]
            n_malicious = int(target.sum())
            n_decoy = pc.sum(events.column("decoy")).as_py() or 0
        if self._answers is None:
            target = None
            n_malicious = None
        # the manifest's counts for a day or week come from the same label bytes as the target
        return Sample(key=key, dataset=self.name, split=split, label=label, data=EventLog(events),
                      category=self.release, defect=defect, target=target,
                      meta=self._meta(user, host, start, end, events.num_rows, n_malicious, n_decoy))

    def _stamp(self, seconds: int) -> str:
        """ISO text of an epoch second (cached: a day's samples share their start and end)."""
        text = self._stamps.get(seconds)
        if text is None:
            if len(self._stamps) >= 65_536:
                self._stamps.clear()
            text = self._stamps[seconds] = np.datetime64(seconds, "s").item().isoformat()
        return text

    def _meta(self, user: str, host: str | None, start: int, end: int, n_events: int, n_malicious: int | None,
              n_decoy: int | None) -> dict[str, Any]:
        start_text = self._stamp(start)
        month = start_text[:7]
        attributes = self._employees.get((user, month))
        if attributes is None:
            person = self._person(user)
            employee = None
            for snapshot_month, values in person["history"]:
                if employee is None or snapshot_month <= month:
                    employee = values
            attributes = (employee, person["months"], person["psychometric"], person["insider"])
            self._employees[(user, month)] = attributes
        # ldap, ldap_months, psychometric and insider are shared by the user's samples: copy
        # them before changing them
        return {
            "release": self.release,
            "unit": self._unit_name,
            "user": user,
            "pc": host,
            "start": start_text,
            "end": self._stamp(end),
            "n_events": n_events,
            "n_malicious": n_malicious,
            "n_decoy": n_decoy,
            "ldap": attributes[0],
            "ldap_months": attributes[1],
            "psychometric": attributes[2],
            "insider": attributes[3],
        }

    def _person(self, user: str) -> dict[str, Any]:
        """What does not change between a user's samples (kept per user)."""
        person = self._persons.get(user)
        if person is None:
            people = self._people()
            months = people["months"].get(user)
            insider = self._answers.insiders.get(user) if self._answers else None
            person = {
                "history": people["ldap"].get(user, []),
                "months": list(months) if months else None,
                "psychometric": people["psychometric"].get(user),
                "insider": insider.as_meta() if insider else None,
            }
            self._persons[user] = person
        return person

    def _people(self) -> dict[str, Any]:
        """LDAP history (one entry per change) and psychometric scores of every user."""
        if self._people_cache is not None:
            return self._people_cache
        ldap: dict[str, list[tuple[str, dict[str, str]]]] = {}
        months: dict[str, list[str]] = {}
        folder = self.release_dir / "LDAP"
        names = sorted(p.name for p in folder.iterdir() if _LDAP_NAME.match(p.name)) if folder.is_dir() else []
        if not names:
            if self.strict:
                raise self.not_found(folder / "2009-12.csv", f"{self.release} LDAP snapshots (LDAP/YYYY-MM.csv)")
            self._skips.add(str(folder), "no LDAP/YYYY-MM.csv snapshots; user attributes are None")
        for name in names:  # sorted: the listing order of a folder is arbitrary
            path = folder / name
            month = name[:-4]
            header, rows = read_csv_dicts(path)
            if "user_id" not in header:
                fail_or_skip(self.strict, self._skips, str(path),
                             f"no user_id column; {self.release} LDAP has columns {','.join(LDAP_COLUMNS[self.release])}", 1)
                continue
            for _, values in rows:
                user = values.pop("user_id")
                entries = ldap.setdefault(user, [])
                if not entries or entries[-1][1] != values:
                    entries.append((month, values))
                span = months.setdefault(user, [month, month])
                span[1] = month
        psychometric: dict[str, dict[str, int]] = {}
        path = self.release_dir / "psychometric.csv"
        if not path.is_file():
            if self.strict:
                raise self.not_found(path, f"{self.release} psychometric.csv")
            self._skips.add(str(path), "file missing; psychometric scores are None")
        else:
            header, rows = read_csv_dicts(path)
            missing = [c for c in PSYCHOMETRIC_COLUMNS if c not in header]
            if missing:
                fail_or_skip(self.strict, self._skips, str(path), f"missing column(s) {', '.join(missing)}", 1)
                rows = []
            for line, values in rows:
                try:
                    psychometric[values["user_id"]] = {t: int(values[t]) for t in "OCEAN"}
                except ValueError:
                    fail_or_skip(self.strict, self._skips, str(path),
                                 f"a score of {values['user_id']} is not an integer", line)
        self._people_cache = {"ldap": ldap, "months": months, "psychometric": psychometric}
        return self._people_cache

    # -- checks ------------------------------------------------------------------------------
    def verify(self) -> VerifyReport:
        """Files present, rows per activity file against the card's counts, and skipped rows."""
        report = VerifyReport(self.name, str(self.root))
        for kind in ACTIVITY_TYPES + ("psychometric",):
            if not (self.release_dir / f"{kind}.csv").is_file():
                report.missing.append(str(self.release_dir / f"{kind}.csv"))
        if not (self.release_dir / "LDAP").is_dir():
            report.missing.append(str(self.release_dir / "LDAP") + "/")
        if self.release != "r4.2" and not (self.release_dir / "decoy_file.csv").is_file():
            report.missing.append(str(self.release_dir / "decoy_file.csv"))
        if self._answers_dir() is None:
            report.missing.append("answers/insiders.csv")
        strict, self.strict = self.strict, False
        try:
            info = self.index()
            self._people()
        finally:
            self.strict = strict
        report.malformed.extend(f"{where}: {reason}" for where, reason in self.skipped)
        expected = self.card().get("expected_counts", {}).get("releases", {}).get(self.release, {})
        for kind, rows in info.rows.items():
            report.counts[f"{kind}.csv"] = rows
            want = expected.get(f"{kind}.csv")
            if want is not None and want != rows:
                report.count_mismatches.append(f"{kind}.csv: {rows} rows, expected {want}")
        users = len(self._people()["psychometric"])
        report.counts["users"] = users
        if expected.get("users") is not None and expected["users"] != users:
            report.count_mismatches.append(f"users: {users} in psychometric.csv, expected {expected['users']}")
        return report


_EPOCH = datetime(1970, 1, 1)
_SECOND = timedelta(seconds=1)


def _epoch_seconds(value: Any) -> int:
    """Epoch seconds of a manifest time (a naive ``datetime`` in UTC, or a number of seconds)."""
    if isinstance(value, (int, np.integer)):
        return int(value)
    return (value - _EPOCH) // _SECOND


def _looks_like_release(folder: Path) -> bool:
    return folder.is_dir() and any((folder / f"{kind}.csv").is_file() for kind in ACTIVITY_TYPES)
