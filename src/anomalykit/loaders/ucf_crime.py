"""UCF-Crime (Sultani et al., CVPR 2018): raw videos, or the RTFM / UR-DMU I3D features.

Three sources, chosen with ``source``:

* ``"videos"`` (default): the archive's MP4 files, found by file name anywhere under ``root``
  (the folder names in the split files differ from the archive's). Training videos come from
  ``Anomaly_Train.txt`` and carry video-level labels only; test videos come from the temporal
  annotation and carry one label per frame. Nothing is decoded when the dataset is loaded;
  reading a sample reads the container header, and ``sample.data.frames(start, stop)`` decodes.
* ``"rtfm"``: one ``<video>_i3d.npy`` of shape (T, 10, 2048) per video, listed in
  ``ucf-i3d.list`` / ``ucf-i3d-test.list`` (CRLF lines, Windows paths; files found by name).
* ``"urdmu"``: one ``<video>__<k>.npy`` of shape (T, 1024) per crop k = 0..9, listed in
  ``UCF_Train.list`` / ``UCF_Test.list``; the crops of a video are stacked to (T, 10, 1024).

Feature samples carry one label per 16-frame snippet, with T read from each feature file.
Test targets follow the official evaluation by default (``frame_convention="matlab"``: the
annotated numbers are 1-based inclusive frame indices); ``"zero_based"`` follows RTFM's
``make_gt_ucf.py``. Both events of a line count, and ends past the video are clipped.

>>> ds = anomalykit.load("ucf_crime", "/data/UCF_Crimes")                  # doctest: +SKIP
>>> ds.filter(split="test")[0].data.frames(160, 176).shape               # doctest: +SKIP
(16, 240, 320, 3)
>>> feats = anomalykit.load("ucf_crime", "/data/rtfm", source="rtfm")      # doctest: +SKIP
"""

from __future__ import annotations

import json
import os
import re
import warnings
from collections.abc import Iterable
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ConfigError, MalformedFileError
from ..io.video import VideoReader, probe_video
from ..schema import Modality, Sample, Video
from .base import DatasetLoader, VerifyReport, manifest_from_rows, register_dataset

CLASSES = (
    "Abuse", "Arrest", "Arson", "Assault", "Burglary", "Explosion", "Fighting",
    "RoadAccidents", "Robbery", "Shooting", "Shoplifting", "Stealing", "Vandalism",
)
#: archive part holding each class (Anomaly-Videos-Part-k)
ARCHIVE_PART = {
    "Abuse": 1, "Arrest": 1, "Arson": 1, "Assault": 1,
    "Burglary": 2, "Explosion": 2, "Fighting": 2,
    "RoadAccidents": 3, "Robbery": 3, "Shooting": 3,
    "Shoplifting": 4, "Stealing": 4, "Vandalism": 4,
}
NORMAL = "Normal"
TRAIN_NORMAL_FOLDER = "Training_Normal_Videos_Anomaly"
TEST_NORMAL_FOLDER = "Testing_Normal_Videos_Anomaly"
NORMAL_FOLDERS = (TRAIN_NORMAL_FOLDER, TEST_NORMAL_FOLDER, "Normal_Videos_event")
SNIPPET_FRAMES = 16
NUM_CROPS = 10
#: file names of the temporal annotation, in order of preference
ANNOTATION_NAMES = (
    "Temporal_Anomaly_Annotation_for_Testing_Videos.txt",
    "Temporal_Anomaly_Annotation.txt",
    "UCF_Annotation.txt",
)
TRAIN_SPLIT_NAME = "Anomaly_Train.txt"
TEST_SPLIT_NAME = "Anomaly_Test.txt"
FEATURE_LISTS = {
    "rtfm": ("ucf-i3d.list", "ucf-i3d-test.list"),
    "urdmu": ("UCF_Train.list", "UCF_Test.list"),
}
FEATURE_DIM = {"rtfm": 2048, "urdmu": 1024}
VIDEO_SUFFIXES = (".mp4", ".avi", ".mkv", ".webm", ".mov")

_VIDEO_NAME = re.compile(r"^(?P<cls>[A-Za-z]+?)(?P<num>_?\d+)_x264$")
_CROP_NAME = re.compile(r"^(?P<stem>.+)__(?P<crop>\d+)\.npy$", re.IGNORECASE)


class Source(str, Enum):
    VIDEOS = "videos"
    RTFM = "rtfm"
    URDMU = "urdmu"


class FrameConvention(str, Enum):
    """How annotated frame numbers map to frame indices (0-based, as decoded)."""

    #: the official ``Evaluate_Anomaly_Detector.m``: 1-based, inclusive, ``GT(max(s,1):min(e,N))``
    MATLAB = "matlab"
    #: RTFM's ``make_gt_ucf.py``: 0-based, inclusive end, ``range(s, e + 1)``
    ZERO_BASED = "zero_based"


# --------------------------------------------------------------------------------------------
# names


def video_class(filename: str) -> str:
    """The class of a video from its file name: ``Abuse028_x264.mp4`` -> ``Abuse``,
    ``Normal_Videos_003_x264.mp4`` -> ``Normal``. Raises ``ValueError`` for other names."""
    stem = Path(filename.replace("\\", "/")).name
    for suffix in (".mp4", "_i3d.npy", ".npy"):
        if stem.lower().endswith(suffix.lower()):
            stem = stem[: -len(suffix)]
            break
    if stem.startswith("Normal_Videos"):
        return NORMAL
    match = _VIDEO_NAME.match(stem)
    if match is None or match["cls"] not in CLASSES:
        raise ValueError(f"{filename!r} is not a UCF-Crime video name (<Class>NNN_x264 or Normal_Videos...)")
    return match["cls"]


def _stem(filename: str) -> str:
    name = Path(filename.replace("\\", "/")).name
    return name[: -len(Path(name).suffix)] if Path(name).suffix else name


# --------------------------------------------------------------------------------------------
# parsers of the real files


@dataclass(frozen=True)
class SplitEntry:
    """One line of ``Anomaly_Train.txt`` / ``Anomaly_Test.txt``: ``<Folder>/<file>.mp4``."""

    folder: str
    filename: str
    line: int

    @property
    def stem(self) -> str:
        return _stem(self.filename)

    @property
    def video_class(self) -> str:
        return video_class(self.filename)

    @property
    def label(self) -> int:
        return 0 if self.video_class == NORMAL else 1


@dataclass(frozen=True)
class TemporalAnnotation:
    """One test video of the temporal annotation: up to two ``(start, end)`` events.

    ``num_frames`` and ``folder`` are set only by the UR-DMU variant (``UCF_Annotation.txt``).
    """

    filename: str
    video_class: str
    events: tuple[tuple[int, int], ...]
    line: int
    num_frames: int | None = None
    folder: str | None = None

    @property
    def stem(self) -> str:
        return _stem(self.filename)

    @property
    def label(self) -> int:
        return 0 if self.video_class == NORMAL else 1


def _fail(path: Path, reason: str, line: int, skipped: list[str] | None) -> None:
    error = MalformedFileError(path, reason, line=line)
    if skipped is None:
        raise error
    skipped.append(str(error))
    warnings.warn(f"ucf_crime: skipped {error}", stacklevel=3)


def _lines(path: str | Path) -> Iterable[tuple[int, str]]:
    # universal newlines: CRLF (RTFM lists) and LF read alike
    with open(path, encoding="utf-8-sig") as handle:
        for number, text in enumerate(handle, start=1):
            if text.strip():
                yield number, text


def parse_split_file(path: str | Path, *, skipped: list[str] | None = None) -> list[SplitEntry]:
    """Parse ``Anomaly_Train.txt`` or ``Anomaly_Test.txt`` (``<Folder>/<file>.mp4`` per line).

    A line that does not parse raises ``MalformedFileError`` naming the file and line; with a
    ``skipped`` list the line is recorded there (with a warning) instead.

    >>> entries = parse_split_file("Anomaly_Train.txt")          # doctest: +SKIP
    >>> len(entries), sum(e.label for e in entries)              # doctest: +SKIP
    (1610, 810)
    """
    path = Path(path)
    entries: list[SplitEntry] = []
    seen: dict[str, int] = {}
    for number, text in _lines(path):
        parts = text.strip().replace("\\", "/").split("/")
        if len(parts) != 2 or not parts[0] or not parts[1].lower().endswith(".mp4"):
            _fail(path, f"expected <Folder>/<file>.mp4, got {text.strip()!r}", number, skipped)
            continue
        folder, filename = parts
        try:
            cls = video_class(filename)
        except ValueError as exc:
            _fail(path, str(exc), number, skipped)
            continue
        if folder not in CLASSES and folder not in NORMAL_FOLDERS:
            _fail(path, f"folder {folder!r} is neither a UCF-Crime class nor a normal-video folder", number, skipped)
            continue
        if (cls == NORMAL) != (folder in NORMAL_FOLDERS) or (cls != NORMAL and folder != cls):
            _fail(path, f"video {filename} does not belong in folder {folder}", number, skipped)
            continue
        if filename in seen:
            _fail(path, f"video {filename} is listed twice (first on line {seen[filename]})", number, skipped)
            continue
        seen[filename] = number
        entries.append(SplitEntry(folder, filename, number))
    return entries


def _events(values: list[str], path: Path, number: int) -> tuple[tuple[int, int], ...]:
    try:
        numbers = [int(v) for v in values]
    except ValueError:
        raise MalformedFileError(path, f"frame numbers must be integers, got {' '.join(values)}", line=number) from None
    events: list[tuple[int, int]] = []
    for i in range(0, len(numbers), 2):
        start, end = numbers[i], numbers[i + 1]
        if start == -1 and end == -1:
            continue
        if start < 0 or end < 0:
            raise MalformedFileError(path, f"event {i // 2 + 1}: start and end must both be -1 or both >= 0, "
                                     f"got {start} {end}", line=number)
        if end < start:
            raise MalformedFileError(path, f"event {i // 2 + 1} ends ({end}) before it starts ({start})", line=number)
        if i > 0 and not events:
            raise MalformedFileError(path, "second event given without a first (-1 -1 first)", line=number)
        events.append((start, end))
    return tuple(events)


def parse_temporal_annotation(path: str | Path, *, skipped: list[str] | None = None) -> list[TemporalAnnotation]:
    """Parse the temporal annotation of the 290 test videos.

    Reads Sultani's ``Temporal_Anomaly_Annotation*.txt`` (six fields separated by two spaces,
    trailing spaces, ``-1`` for a missing event) and UR-DMU's ``UCF_Annotation.txt`` (seven
    fields: ``<Folder>/<file>.mp4 <num_frames> <Class> s1 e1 s2 e2``). Fields are split on any
    whitespace. Errors name the file and line (or, with ``skipped``, are recorded there).

    >>> notes = parse_temporal_annotation("Temporal_Anomaly_Annotation.txt")   # doctest: +SKIP
    >>> len(notes), sum(len(n.events) == 2 for n in notes)                      # doctest: +SKIP
    (290, 16)
    """
    path = Path(path)
    notes: list[TemporalAnnotation] = []
    seen: dict[str, int] = {}
    for number, text in _lines(path):
        fields = text.split()
        try:
            if len(fields) == 6:
                filename, cls, values = fields[0], fields[1], fields[2:]
                folder, num_frames = None, None
            elif len(fields) == 7:
                rel, count, cls, values = fields[0], fields[1], fields[2], fields[3:]
                folder, _, filename = rel.replace("\\", "/").rpartition("/")
                folder = folder.rsplit("/", 1)[-1] or None
                if not count.isdigit():
                    raise MalformedFileError(path, f"frame count must be a positive integer, got {count!r}", line=number)
                num_frames = int(count)
            else:
                raise MalformedFileError(
                    path, f"expected 6 fields (<file> <Class> s1 e1 s2 e2) or 7 (UR-DMU, with a frame count), "
                    f"got {len(fields)}: {text.rstrip()!r}", line=number)
            if not filename.lower().endswith(".mp4"):
                raise MalformedFileError(path, f"first field must be a .mp4 file name, got {filename!r}", line=number)
            if cls != NORMAL and cls not in CLASSES:
                raise MalformedFileError(path, f"class {cls!r} is not Normal or one of the 13 classes", line=number)
            try:
                named = video_class(filename)
            except ValueError as exc:
                raise MalformedFileError(path, str(exc), line=number) from None
            if named != cls:
                raise MalformedFileError(path, f"video {filename} is annotated as {cls}", line=number)
            if folder is not None and folder != cls and not (cls == NORMAL and folder in NORMAL_FOLDERS):
                raise MalformedFileError(path, f"video {filename} does not belong in folder {folder}", line=number)
            events = _events(values, path, number)
            if cls == NORMAL and events:
                raise MalformedFileError(path, f"normal video {filename} has events {events}", line=number)
            if cls != NORMAL and not events:
                raise MalformedFileError(path, f"anomalous video {filename} has no event (-1 -1 -1 -1)", line=number)
            if filename in seen:
                raise MalformedFileError(path, f"video {filename} is annotated twice (first on line {seen[filename]})",
                                         line=number)
        except MalformedFileError as exc:
            if skipped is None:
                raise
            skipped.append(str(exc))
            warnings.warn(f"ucf_crime: skipped {exc}", stacklevel=2)
            continue
        seen[filename] = number
        notes.append(TemporalAnnotation(filename, cls, events, number, num_frames, folder))
    return notes


@dataclass(frozen=True)
class FeatureListEntry:
    """One line of a feature list: the path as written (Windows separators turned into ``/``)."""

    path: str
    line: int

    @property
    def filename(self) -> str:
        return self.path.rsplit("/", 1)[-1]


def parse_feature_list(path: str | Path, *, skipped: list[str] | None = None) -> list[FeatureListEntry]:
    """Parse an RTFM or UR-DMU feature list: one ``.npy`` path per line, any line ending,
    Windows (``G:\\UCF_Train_ten_crop_i3d\\Abuse001_x264_i3d.npy``) or POSIX paths."""
    path = Path(path)
    entries: list[FeatureListEntry] = []
    for number, text in _lines(path):
        value = text.strip().replace("\\", "/")
        if not value.lower().endswith(".npy"):
            _fail(path, f"expected a .npy path, got {text.strip()!r}", number, skipped)
            continue
        entries.append(FeatureListEntry(value, number))
    return entries


@dataclass(frozen=True)
class CropGroup:
    """The crop files of one video in a UR-DMU list, ordered by crop index."""

    stem: str
    entries: tuple[FeatureListEntry, ...]


def group_crops(entries: list[FeatureListEntry], list_path: str | Path, crops: int = NUM_CROPS) -> list[CropGroup]:
    """Group UR-DMU entries ``<video>__<k>.npy`` by video (consecutive lines); every video must
    list the crops 0..crops-1 exactly once, else ``MalformedFileError`` naming the list and line."""
    groups: dict[str, dict[int, FeatureListEntry]] = {}
    for entry in entries:
        match = _CROP_NAME.match(entry.filename)
        if match is None:
            raise MalformedFileError(list_path, f"expected <video>__<crop>.npy, got {entry.path!r}", line=entry.line)
        crop = int(match["crop"])
        by_crop = groups.setdefault(match["stem"], {})
        if crop in by_crop or crop >= crops:
            raise MalformedFileError(list_path, f"crop {crop} of {match['stem']} is repeated or out of range "
                                     f"0..{crops - 1}", line=entry.line)
        by_crop[crop] = entry
    out = []
    for stem, by_crop in groups.items():
        if sorted(by_crop) != list(range(crops)):
            missing = sorted(set(range(crops)) - set(by_crop))
            first = min(e.line for e in by_crop.values())
            raise MalformedFileError(list_path, f"video {stem} lacks crop(s) {missing}", line=first)
        out.append(CropGroup(stem, tuple(by_crop[k] for k in range(crops))))
    return out


# --------------------------------------------------------------------------------------------
# targets


def frame_targets(
    events: Iterable[tuple[int, int]],
    num_frames: int,
    convention: FrameConvention | str = FrameConvention.MATLAB,
) -> np.ndarray:
    """Per-frame labels (uint8, length ``num_frames``) from annotated ``(start, end)`` events.

    ``matlab`` (the official evaluation): frames ``start..end`` 1-based inclusive, i.e. indices
    ``start-1 .. end-1``; ``zero_based`` (RTFM): indices ``start .. end``. Ends past the video
    are clipped.

    >>> frame_targets([(2, 4)], 6).tolist(), frame_targets([(2, 4)], 6, "zero_based").tolist()
    ([0, 1, 1, 1, 0, 0], [0, 0, 1, 1, 1, 0])
    """
    convention = FrameConvention(convention)
    target = np.zeros(max(int(num_frames), 0), np.uint8)
    for start, end in events:
        if convention is FrameConvention.MATLAB:
            low, high = max(start, 1) - 1, min(end, num_frames)
        else:
            low, high = max(start, 0), min(end + 1, num_frames)
        if high > low:
            target[low:high] = 1
    return target


def snippet_targets(
    events: Iterable[tuple[int, int]],
    num_snippets: int,
    snippet_frames: int = SNIPPET_FRAMES,
    convention: FrameConvention | str = FrameConvention.MATLAB,
) -> np.ndarray:
    """Per-snippet labels: a snippet of ``snippet_frames`` frames is anomalous when any of its
    frames is. Frames run to ``num_snippets * snippet_frames``, as in RTFM's ground truth.

    >>> snippet_targets([(20, 40)], 4).tolist()
    [0, 1, 1, 0]
    """
    frames = frame_targets(events, num_snippets * snippet_frames, convention)
    return frames.reshape(num_snippets, snippet_frames).max(axis=1) if num_snippets else frames


# --------------------------------------------------------------------------------------------
# feature files


def load_feature_file(path: str | Path, *, allow_pickle: bool = False) -> np.ndarray:
    """Load one ``.npy`` feature file as float32. Object (pickled) arrays are refused unless
    ``allow_pickle=True`` is given for files you trust."""
    try:
        with open(path, "rb") as handle:
            magic = handle.read(6)
    except OSError as exc:
        raise MalformedFileError(path, f"cannot be read ({exc})") from None
    if magic != b"\x93NUMPY":
        raise MalformedFileError(path, "not a readable .npy file (no NumPy header)")
    try:
        array = np.load(path, allow_pickle=allow_pickle)
    except ValueError as exc:
        if "allow_pickle" in str(exc):
            raise MalformedFileError(path, "holds a pickled object array; pass allow_pickle=True only for "
                                     "files you trust") from None
        raise MalformedFileError(path, f"not a readable .npy file ({exc})") from None
    except (OSError, EOFError) as exc:
        raise MalformedFileError(path, f"not a readable .npy file ({exc})") from None
    try:
        return np.asarray(array, dtype=np.float32)
    except (TypeError, ValueError) as exc:
        raise MalformedFileError(path, f"does not hold a numeric array ({exc})") from None


# --------------------------------------------------------------------------------------------
# the loader


class _FileIndex:
    """Every file under a root, by name (one directory walk)."""

    def __init__(self, root: Path, suffixes: tuple[str, ...]) -> None:
        self.by_name: dict[str, list[Path]] = {}
        visited: set[tuple[int, int]] = set()
        for folder, dirs, files in os.walk(root, followlinks=True):
            # linked folders are followed (datasets are often assembled from links), each real
            # folder once: a link back to an ancestor would otherwise repeat the walk endlessly
            stat = os.stat(folder)
            if (stat.st_dev, stat.st_ino) in visited:
                dirs.clear()
                continue
            visited.add((stat.st_dev, stat.st_ino))
            for name in files:
                if name.lower().endswith(suffixes):
                    self.by_name.setdefault(name, []).append(Path(folder) / name)

    def find(self, name: str, hints: tuple[str, ...] = (), avoid: tuple[str, ...] = ()) -> Path | None:
        """The file called ``name``; among several, the one whose folders match most ``hints``."""
        candidates = self.by_name.get(name)
        if not candidates:
            return None

        def score(path: Path) -> tuple[int, int, str]:
            parts = set(path.parts[:-1])
            return (-sum(h in parts for h in hints), sum(a in parts for a in avoid), path.as_posix())

        return min(candidates, key=score)

    def first(self, names: tuple[str, ...], prefer: str) -> Path | None:
        for name in names:
            found = self.find(name, hints=(prefer,))
            if found is not None:
                return found
        return None


@register_dataset("ucf_crime")
class UCFCrime(DatasetLoader):
    """Loader of UCF-Crime (root: the folder holding the unpacked archives or the feature folders).

    Options:

    * ``source``: ``"videos"``, ``"rtfm"`` or ``"urdmu"`` (see the module docstring).
    * ``split``: ``"train"``, ``"test"`` or None for both.
    * ``frame_convention``: ``"matlab"`` (official, default) or ``"zero_based"`` (RTFM).
    * ``train_split``, ``annotation``: paths (absolute or under ``root``) of ``Anomaly_Train.txt``
      and the temporal annotation; found by name under ``root`` when not given.
    * ``train_list``, ``test_list``: the feature lists (``source`` rtfm/urdmu); found by name.
    * ``crops``: which of the 10 crops to keep (an int gives T x D, a list T x len x D; None all).
    * ``feature_dim``: expected feature width (default 2048 for rtfm, 1024 for urdmu).
    * ``allow_pickle``: load object-array ``.npy`` files (only for files you trust).

    Samples: ``key`` ``<Folder>/<video stem>`` (the split files' folder names), ``defect`` the
    class of anomalous videos, ``meta['events']`` the annotated ``(start, end)`` pairs.
    """

    modality = Modality.VIDEO
    options = {
        "source": "videos",
        "split": None,
        "frame_convention": "matlab",
        "train_split": None,
        "annotation": None,
        "train_list": None,
        "test_list": None,
        "crops": None,
        "feature_dim": None,
        "allow_pickle": False,
    }

    def __init__(self, root, *, strict: bool = True, **options: Any) -> None:
        self.skipped: list[tuple[str, str]] = []
        self._index: _FileIndex | None = None
        super().__init__(root, strict=strict, **options)

    def validate_options(self) -> None:
        try:
            self.source = Source(self.source)
        except ValueError:
            raise ConfigError(f"ucf_crime: source must be one of {[s.value for s in Source]}, got {self.source!r}") from None
        try:
            self.frame_convention = FrameConvention(self.frame_convention)
        except ValueError:
            raise ConfigError(f"ucf_crime: frame_convention must be one of {[c.value for c in FrameConvention]}, "
                              f"got {self.frame_convention!r}") from None
        if self.split not in (None, "train", "test"):
            raise ConfigError(f"ucf_crime: split must be 'train', 'test' or None, got {self.split!r}")
        if self.crops is not None:
            wanted = [self.crops] if isinstance(self.crops, (int, np.integer)) else list(self.crops)
            if not wanted or any(not isinstance(c, (int, np.integer)) or not 0 <= c < NUM_CROPS for c in wanted):
                raise ConfigError(f"ucf_crime: crops must be an int or a list of ints in 0..{NUM_CROPS - 1}, got {self.crops!r}")
            if self.source is Source.VIDEOS:
                raise ConfigError("ucf_crime: crops applies to source='rtfm' or 'urdmu', not to videos")
        if self.feature_dim is None:
            self.feature_dim = FEATURE_DIM.get(self.source.value)
        elif not isinstance(self.feature_dim, int) or self.feature_dim <= 0:
            raise ConfigError(f"ucf_crime: feature_dim must be a positive int, got {self.feature_dim!r}")

    # -- locating files ------------------------------------------------------------------------
    def _files(self) -> _FileIndex:
        if self._index is None:
            suffixes = (".txt", ".list") + (VIDEO_SUFFIXES if self.source is Source.VIDEOS else (".npy",))
            self._index = _FileIndex(self.root, suffixes)
        return self._index

    def _option_path(self, value: str | Path) -> Path:
        path = Path(value).expanduser()
        path = path if path.is_absolute() else self.root / path
        if not path.is_file():
            raise self.not_found(path, "file")
        return path

    def train_split_path(self) -> Path:
        if self.train_split is not None:
            return self._option_path(self.train_split)
        found = self._files().first((TRAIN_SPLIT_NAME,), prefer="Anomaly_Detection_splits")
        if found is None:
            raise self.not_found(self.root / "Anomaly_Detection_splits" / TRAIN_SPLIT_NAME, "training split file")
        return found

    def annotation_path(self) -> Path:
        if self.annotation is not None:
            return self._option_path(self.annotation)
        found = self._files().first(ANNOTATION_NAMES, prefer="list")
        if found is None:
            raise self.not_found(self.root / ANNOTATION_NAMES[0], "temporal annotation of the test videos")
        return found

    def feature_list_path(self, split: str) -> Path:
        given = self.train_list if split == "train" else self.test_list
        if given is not None:
            return self._option_path(given)
        name = FEATURE_LISTS[self.source.value][0 if split == "train" else 1]
        found = self._files().first((name,), prefer="list")
        if found is None:
            raise self.not_found(self.root / "list" / name, f"{self.source.value} {split} feature list")
        return found

    def _skip_or_raise(self, error: Exception, what: str, missing: list[str] | None) -> None:
        if missing is not None:
            missing.append(what)
            return
        if self.strict:
            raise error
        self.skipped.append((what, str(error)))
        warnings.warn(f"ucf_crime: skipped {what}: {error}", stacklevel=4)

    def _splits(self) -> list[str]:
        return ["train", "test"] if self.split is None else [self.split]

    def _parse_skipped(self) -> list[str] | None:
        return None if self.strict else []

    def _record(self, skipped_lines: list[str] | None) -> None:
        for message in skipped_lines or []:
            self.skipped.append(("line", message))

    # -- manifest ------------------------------------------------------------------------------
    def build_manifest(self):
        rows = self._unique(self._rows(missing=None), malformed=None)
        return manifest_from_rows(rows)

    def _unique(self, rows: list[dict[str, Any]], malformed: list[str] | None) -> list[dict[str, Any]]:
        """Drop a video listed again under the same key (in both splits, or in two folders):
        an error when strict, else recorded; ``malformed`` (verify) collects the messages."""
        first: dict[str, str] = {}
        kept = []
        for row in rows:
            if row["key"] in first:
                name, _, line = row["listed_in"].rpartition(":")
                error = MalformedFileError(name, f"video {row['key']} ({row['split']}) is already listed at "
                                           f"{first[row['key']]}; keys must be unique", line=int(line))
                if malformed is not None:
                    malformed.append(str(error))
                else:
                    self._skip_or_raise(error, row["key"], None)
                continue
            first[row["key"]] = row["listed_in"]
            kept.append(row)
        return kept

    def _annotations(self) -> tuple[Path, dict[str, TemporalAnnotation]]:
        path = self.annotation_path()
        lines = self._parse_skipped()
        notes = parse_temporal_annotation(path, skipped=lines)
        self._record(lines)
        return path, {n.stem: n for n in notes}

    def _rows(self, missing: list[str] | None) -> list[dict[str, Any]]:
        if self.source is Source.VIDEOS:
            return self._video_rows(missing)
        return self._feature_rows(missing)

    def _row(self, split: str, folder: str, stem: str, cls: str, rel: str, events, source_file: Path,
             line: int, extra: list[str] | None = None) -> dict[str, Any]:
        return {
            "key": f"{folder}/{stem}",
            "split": split,
            "label": 0 if cls == NORMAL else 1,
            "category": None,
            "defect": None if cls == NORMAL else cls,
            "path": rel,
            "mask_path": None,
            "events": None if events is None else json.dumps([list(e) for e in events]),
            "listed_in": f"{source_file.name}:{line}",
            "feature_files": None if extra is None else json.dumps(extra),
        }

    def _video_rows(self, missing: list[str] | None) -> list[dict[str, Any]]:
        files = self._files()
        rows: list[dict[str, Any]] = []
        if "train" in self._splits():
            split_path = self.train_split_path()
            lines = self._parse_skipped()
            entries = parse_split_file(split_path, skipped=lines)
            self._record(lines)
            for entry in entries:
                hints = (entry.folder, *(("Training-Normal-Videos-Part-1", "Training-Normal-Videos-Part-2")
                                         if entry.label == 0 else (f"Anomaly-Videos-Part-{ARCHIVE_PART[entry.folder]}",)))
                found = files.find(entry.filename, hints=hints, avoid=("Normal_Videos_event", TEST_NORMAL_FOLDER))
                if found is None:
                    self._skip_or_raise(self.not_found(self.root, f"training video {entry.filename} (listed in "
                                                       f"{split_path.name}, line {entry.line}; searched by file name)"),
                                        entry.filename, missing)
                    continue
                rows.append(self._row("train", entry.folder, entry.stem, entry.video_class,
                                      found.relative_to(self.root).as_posix(), None, split_path, entry.line))
        if "test" in self._splits():
            note_path, notes = self._annotations()
            for note in notes.values():
                folder = note.folder or (TEST_NORMAL_FOLDER if note.label == 0 else note.video_class)
                hints = (folder, TEST_NORMAL_FOLDER) if note.label == 0 else (
                    folder, f"Anomaly-Videos-Part-{ARCHIVE_PART[note.video_class]}")
                found = files.find(note.filename, hints=hints, avoid=("Normal_Videos_event",))
                if found is None:
                    self._skip_or_raise(self.not_found(self.root, f"test video {note.filename} (listed in "
                                                       f"{note_path.name}, line {note.line}; searched by file name)"),
                                        note.filename, missing)
                    continue
                rows.append(self._row("test", folder, note.stem, note.video_class,
                                      found.relative_to(self.root).as_posix(), note.events, note_path, note.line))
        return rows

    def _resolve_feature(self, entry: FeatureListEntry, list_path: Path) -> Path | None:
        relative = entry.path
        if not re.match(r"^[A-Za-z]:/", relative) and not relative.startswith("/"):
            for base in (self.root, list_path.parent, list_path.parent.parent):
                candidate = base / relative
                if candidate.is_file():
                    return candidate
        hint_parts = tuple(entry.path.split("/")[:-1])
        return self._files().find(entry.filename, hints=hint_parts)

    def _feature_rows(self, missing: list[str] | None) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = []
        notes: dict[str, TemporalAnnotation] = {}
        note_path: Path | None = None
        if "test" in self._splits():
            note_path, notes = self._annotations()
        for split in self._splits():
            list_path = self.feature_list_path(split)
            lines = self._parse_skipped()
            entries = parse_feature_list(list_path, skipped=lines)
            self._record(lines)
            if self.source is Source.RTFM:
                groups = [CropGroup(_rtfm_stem(e.filename), (e,)) for e in entries]
            else:
                groups = group_crops(entries, list_path)
            listed: set[str] = set()
            for group in groups:
                first = group.entries[0]
                if group.stem in listed:
                    raise MalformedFileError(list_path, f"video {group.stem} is listed twice", line=first.line)
                listed.add(group.stem)
                try:
                    cls = video_class(group.stem)
                except ValueError as exc:
                    raise MalformedFileError(list_path, str(exc), line=first.line) from None
                events = None
                if split == "test":
                    note = notes.get(group.stem)
                    if note is None:
                        error = MalformedFileError(list_path, f"test video {group.stem} is not in the annotation "
                                                   f"{note_path}", line=first.line)
                        self._skip_or_raise(error, group.stem, missing)
                        continue
                    events = note.events
                resolved = [self._resolve_feature(e, list_path) for e in group.entries]
                if any(p is None for p in resolved):
                    lost = next(e for e, p in zip(group.entries, resolved) if p is None)
                    self._skip_or_raise(self.not_found(self.root, f"feature file {lost.filename} (listed in "
                                                       f"{list_path.name}, line {lost.line}; searched by file name)"),
                                        lost.filename, missing)
                    continue
                rels = [p.relative_to(self.root).as_posix() if p.is_relative_to(self.root) else str(p)
                        for p in resolved]  # type: ignore[union-attr]
                if cls == NORMAL:
                    folder = TRAIN_NORMAL_FOLDER if split == "train" else TEST_NORMAL_FOLDER
                else:
                    folder = cls
                rows.append(self._row(split, folder, group.stem, cls, rels[0], events, list_path, first.line,
                                      extra=rels if self.source is Source.URDMU else None))
        return rows

    # -- reading -------------------------------------------------------------------------------
    def _path(self, rel: str) -> Path:
        path = Path(rel)
        return path if path.is_absolute() else self.root / path

    def read(self, row: dict[str, Any]) -> Sample:
        events = [tuple(e) for e in json.loads(row["events"])] if row.get("events") else []
        meta: dict[str, Any] = {"path": row["path"], "source": self.source.value, "listed_in": row.get("listed_in")}
        if row["split"] == "test":
            meta["events"] = [list(e) for e in events]
            meta["frame_convention"] = self.frame_convention.value
        if self.source is Source.VIDEOS:
            path = self._path(row["path"])
            if not path.is_file():
                raise self.not_found(path, "video file")
            info = probe_video(path)
            if info.num_frames <= 0:
                raise MalformedFileError(path, "the video has no frames")
            data = Video(path=str(path), fps=info.fps, num_frames=info.num_frames)
            meta.update(fps=info.fps, num_frames=info.num_frames, width=info.width, height=info.height,
                        codec=info.codec)
            target = frame_targets(events, info.num_frames, self.frame_convention) if row["split"] == "test" else None
        else:
            features = self._features(row)
            data = Video(features=features, snippet_frames=SNIPPET_FRAMES)
            meta["num_snippets"] = int(features.shape[0])
            target = (snippet_targets(events, features.shape[0], SNIPPET_FRAMES, self.frame_convention)
                      if row["split"] == "test" else None)
        if row["split"] == "test" and events:
            last = max(end for _start, end in events)
            if self.frame_convention is FrameConvention.ZERO_BASED:
                last += 1
            meta["clipped"] = bool(last > data.length * (data.snippet_frames if data.features is not None else 1))
        return Sample(
            key=row["key"],
            dataset=self.name,
            split=row["split"],
            label=row["label"],
            data=data,
            category=row.get("category"),
            defect=row.get("defect"),
            target=target,
            meta=meta,
        )

    def _features(self, row: dict[str, Any]) -> np.ndarray:
        if self.source is Source.RTFM:
            path = self._path(row["path"])
            array = load_feature_file(path, allow_pickle=self.allow_pickle)
            if array.ndim != 3 or array.shape[1] != NUM_CROPS or array.shape[2] != self.feature_dim or array.shape[0] < 1:
                raise MalformedFileError(path, f"RTFM features must be (T, {NUM_CROPS}, {self.feature_dim}) with "
                                         f"T >= 1, got {array.shape}")
        else:
            arrays = []
            for rel in json.loads(row["feature_files"]):
                path = self._path(rel)
                crop = load_feature_file(path, allow_pickle=self.allow_pickle)
                if crop.ndim != 2 or crop.shape[1] != self.feature_dim or crop.shape[0] < 1:
                    raise MalformedFileError(path, f"UR-DMU crop features must be (T, {self.feature_dim}) with T >= 1, "
                                             f"got {crop.shape}")
                if arrays and crop.shape[0] != arrays[0].shape[0]:
                    raise MalformedFileError(path, f"has T={crop.shape[0]} snippets, crop 0 of the same video has "
                                             f"T={arrays[0].shape[0]}")
                arrays.append(crop)
            array = np.stack(arrays, axis=1)
        if isinstance(self.crops, (int, np.integer)):
            return np.ascontiguousarray(array[:, int(self.crops)])
        if self.crops is not None:
            return np.ascontiguousarray(array[:, list(self.crops)])
        return array

    # -- verification --------------------------------------------------------------------------
    def verify(self, decode: bool = False) -> VerifyReport:
        """Check that every listed video (or feature file) exists, compare the counts with the
        full dataset's, cross-check ``Anomaly_Test.txt`` against the annotation when both exist,
        and with ``decode=True`` decode the first frame of every video."""
        report = VerifyReport(self.name, str(self.root))
        rows = self._unique(self._rows(missing=report.missing), malformed=report.malformed)
        expected = self.card().get("expected_counts", {})
        for split in self._splits():
            count = sum(r["split"] == split for r in rows)
            report.counts[split] = count
            want = expected.get(split)
            if want is not None and count != want:
                report.count_mismatches.append(f"{split}: {count} videos found, the full dataset has {want}")
        if "test" in self._splits():
            two = sum(1 for r in rows if r["split"] == "test" and r["events"] and len(json.loads(r["events"])) == 2)
            want_two = expected.get("test_with_two_events")
            if want_two is not None and report.counts["test"] == expected.get("test") and two != want_two:
                report.count_mismatches.append(f"test: {two} videos with two events, the annotation has {want_two}")
            test_split = self._files().first((TEST_SPLIT_NAME,), prefer="Anomaly_Detection_splits")
            if test_split is not None:
                listed_names = {e.stem for e in parse_split_file(test_split)}
                annotated = {r["key"].rsplit("/", 1)[-1] for r in rows if r["split"] == "test"}
                for stem in sorted(listed_names - annotated):
                    report.extra.append(f"{stem} (in {TEST_SPLIT_NAME}, not in the temporal annotation)")
                for stem in sorted(annotated - listed_names):
                    report.missing.append(f"{stem} (annotated, not in {TEST_SPLIT_NAME})")
        if decode and self.source is Source.VIDEOS:
            for row in rows:
                try:
                    with VideoReader(self._path(row["path"])) as reader:
                        if reader.frames(0, 1).shape[0] != 1:
                            report.malformed.append(f"{row['path']}: no frame decodes")
                except MalformedFileError as exc:
                    report.malformed.append(str(exc))
        return report


def _rtfm_stem(filename: str) -> str:
    name = filename
    for suffix in ("_i3d.npy", ".npy"):
        if name.lower().endswith(suffix.lower()):
            return name[: -len(suffix)]
    return name
