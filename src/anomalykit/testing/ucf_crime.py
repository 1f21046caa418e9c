"""UCF-Crime layouts: the unpacked archives with real MP4 files, and the RTFM / UR-DMU features.

Archive layout (``features=None``)::

    Anomaly-Videos-Part-<k>/<Class>/<Class>NNN_x264.mp4
    Training-Normal-Videos-Part-1/Normal_VideosNNN_x264.mp4
    Testing_Normal_Videos_Anomaly/Normal_Videos_NNN_x264.mp4
    Anomaly_Detection_splits/{Anomaly_Train.txt, Anomaly_Test.txt}      (LF, sorted by path)
    Temporal_Anomaly_Annotation_for_Testing_Videos.txt                  (two spaces, trailing spaces)

``features="rtfm"``: ``UCF_{Train,Test}_ten_crop_i3d/<video>_i3d.npy`` (T, 10, 2048) and
``list/ucf-i3d{,-test}.list`` (CRLF, Windows paths, anomalies first) plus the annotation.
``features="urdmu"``: ``UCF_Ten_Crop_I3D/<Folder>/<video>__<k>.npy`` (T, 1024), ``list/UCF_{Train,Test}.list``
(``dataset/<Folder>/...`` entries, LF, no final newline) and ``list/UCF_Annotation.txt`` (with frame counts).

Every frame's gray level is 6 x its index (so a decoded frame tells which one it is); frames
inside an annotated event also show an 8 x 8 square (white on dark frames, black on light ones).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ..io.video import write_video
from ..loaders.ucf_crime import (
    ARCHIVE_PART,
    FEATURE_DIM,
    NUM_CROPS,
    SNIPPET_FRAMES,
    TEST_NORMAL_FOLDER,
    TRAIN_NORMAL_FOLDER,
    frame_targets,
)
from . import Built, register_builder

#: (folder in the split file, file name, frame count)
TRAIN_VIDEOS = (
    ("Abuse", "Abuse001_x264.mp4", 36),
    ("Burglary", "Burglary005_x264.mp4", 32),
    (TRAIN_NORMAL_FOLDER, "Normal_Videos001_x264.mp4", 34),
    (TRAIN_NORMAL_FOLDER, "Normal_Videos002_x264.mp4", 33),
    ("Vandalism", "Vandalism001_x264.mp4", 32),
)
#: (file name, class, events as annotated, frame count); Arson011 has two events, the second
#: ending past the video, as in the real file
TEST_VIDEOS = (
    ("Abuse028_x264.mp4", "Abuse", ((5, 20),), 40),
    ("Arson011_x264.mp4", "Arson", ((3, 10), (25, 45)), 36),
    ("Normal_Videos_003_x264.mp4", "Normal", (), 32),
    ("RoadAccidents021_x264.mp4", "RoadAccidents", ((1, 8),), 35),
    ("Normal_Videos_006_x264.mp4", "Normal", (), 38),
)


def _frames(num_frames: int, events: tuple[tuple[int, int], ...], size: tuple[int, int]) -> np.ndarray:
    height, width = size
    frames = np.empty((num_frames, height, width, 3), np.uint8)
    for i in range(num_frames):
        frames[i] = 6 * i
    anomalous = frame_targets(events, num_frames).astype(bool)
    for i in np.flatnonzero(anomalous):
        x = (2 * int(i)) % (width - 8)
        frames[i, height - 8:, x:x + 8] = 255 if 6 * i < 128 else 0
    return frames


def _video_path(root: Path, folder: str, filename: str, split: str) -> Path:
    if folder == TRAIN_NORMAL_FOLDER:
        return root / "Training-Normal-Videos-Part-1" / filename
    if split == "test" and folder == "Normal":
        return root / TEST_NORMAL_FOLDER / filename
    return root / f"Anomaly-Videos-Part-{ARCHIVE_PART[folder]}" / folder / filename


def _annotation_line(filename: str, cls: str, events: tuple[tuple[int, int], ...]) -> str:
    pairs = list(events) + [(-1, -1)] * (2 - len(events))
    numbers = "  ".join(f"{s}  {e}" for s, e in pairs)
    return f"{filename}  {cls}  {numbers}  \n"


@register_builder("ucf_crime")
def build_ucf_crime(
    root: Path,
    features: str | None = None,
    videos: bool | None = None,
    size: tuple[int, int] = (24, 32),
    codec: str | None = None,
    seed: int = 0,
) -> Built:
    """Write a tiny UCF-Crime tree (5 training and 5 test videos of 32 to 40 frames).

    ``features``: None (videos only), ``"rtfm"`` or ``"urdmu"``; ``videos`` (default: only when
    ``features`` is None) also writes the MP4 files. ``size`` is (H, W), both even. ``codec``:
    None picks H.264 when available, else MPEG-4.
    """
    if features not in (None, "rtfm", "urdmu"):
        raise ValueError(f"build_ucf_crime: features must be None, 'rtfm' or 'urdmu', got {features!r}")
    write_videos = features is None if videos is None else videos
    rng = np.random.default_rng(seed)
    root = Path(root)
    test_folders = {name: (TEST_NORMAL_FOLDER if cls == "Normal" else cls) for name, cls, _e, _n in TEST_VIDEOS}
    train = [(folder, name, n, "train", ()) for folder, name, n in TRAIN_VIDEOS]
    test = [(test_folders[name], name, n, "test", events) for name, _cls, events, n in TEST_VIDEOS]
    codec_used = None

    if write_videos:
        for folder, name, n, split, events in train + test:
            path = _video_path(root, "Normal" if folder == TEST_NORMAL_FOLDER else folder, name, split)
            path.parent.mkdir(parents=True, exist_ok=True)
            codec_used = write_video(path, _frames(n, events, size), fps=30, codec=codec, gop=12)

    splits = root / "Anomaly_Detection_splits"
    splits.mkdir(parents=True, exist_ok=True)
    with open(splits / "Anomaly_Train.txt", "w", newline="\n") as handle:
        handle.writelines(f"{path}\n" for path in sorted(f"{f}/{n}" for f, n, _ in TRAIN_VIDEOS))
    with open(splits / "Anomaly_Test.txt", "w", newline="\n") as handle:
        handle.writelines(f"{path}\n" for path in sorted(f"{test_folders[n]}/{n}" for n, *_ in TEST_VIDEOS))

    if features != "urdmu":
        with open(root / "Temporal_Anomaly_Annotation_for_Testing_Videos.txt", "w", newline="\n") as handle:
            for name, cls, events, _n in sorted(TEST_VIDEOS):
                handle.write(_annotation_line(name, cls, events))

    options: dict[str, Any] = {}
    snippets: dict[str, int] = {}
    if features is not None:
        options["source"] = features
        lists = root / "list"
        lists.mkdir(exist_ok=True)
        dim = FEATURE_DIM[features]
        for split_items, split in ((train, "train"), (test, "test")):
            # the feature lists put the anomalous videos first, then the normal ones
            ordered = sorted(split_items, key=lambda item: (item[0] in (TRAIN_NORMAL_FOLDER, TEST_NORMAL_FOLDER), item[1]))
            lines = []
            for folder, name, n, _split, _events in ordered:
                stem = name[: -len(".mp4")]
                # RTFM drops a last partial snippet; UR-DMU's extractor pads it
                count = n // SNIPPET_FRAMES if features == "rtfm" else -(-n // SNIPPET_FRAMES)
                snippets[f"{folder}/{stem}"] = count
                values = rng.standard_normal((count, NUM_CROPS, dim)).astype(np.float32)
                if features == "rtfm":
                    folder_name = f"UCF_{split.title()}_ten_crop_i3d"
                    (root / folder_name).mkdir(exist_ok=True)
                    np.save(root / folder_name / f"{stem}_i3d.npy", values)
                    lines.append(f"G:\\{folder_name}\\{stem}_i3d.npy")
                else:
                    out = root / "UCF_Ten_Crop_I3D" / folder
                    out.mkdir(parents=True, exist_ok=True)
                    for crop in range(NUM_CROPS):
                        np.save(out / f"{stem}__{crop}.npy", values[:, crop])
                        lines.append(f"dataset/{folder}/{stem}__{crop}.npy")
            if features == "rtfm":
                name = "ucf-i3d.list" if split == "train" else "ucf-i3d-test.list"
                (lists / name).write_bytes("".join(f"{line}\r\n" for line in lines).encode())
            else:
                name = "UCF_Train.list" if split == "train" else "UCF_Test.list"
                (lists / name).write_bytes("\n".join(lines).encode())
        if features == "urdmu":
            with open(lists / "UCF_Annotation.txt", "w", newline="\n") as handle:
                for name, cls, events, n in TEST_VIDEOS:  # not sorted, like the real file
                    pairs = list(events) + [(-1, -1)] * (2 - len(events))
                    numbers = " ".join(f"{s} {e}" for s, e in pairs)
                    handle.write(f"{test_folders[name]}/{name} {n} {cls} {numbers} \n")

    keys_train = [f"{folder}/{name[:-4]}" for folder, name, _n in TRAIN_VIDEOS]
    keys_test = [f"{test_folders[name]}/{name[:-4]}" for name, *_ in TEST_VIDEOS]
    expected: dict[str, Any] = {
        "total": len(train) + len(test),
        "train": len(train),
        "test": len(test),
        "anomalous": sum(folder != TRAIN_NORMAL_FOLDER for folder, *_ in TRAIN_VIDEOS)
        + sum(cls != "Normal" for _n, cls, *_ in TEST_VIDEOS),
        "two_events": sum(len(events) == 2 for _n, _c, events, _f in TEST_VIDEOS),
        "keys": keys_train + keys_test,
        "num_frames": {**{f"{f}/{n[:-4]}": c for f, n, c in TRAIN_VIDEOS},
                       **{f"{test_folders[n]}/{n[:-4]}": c for n, _cl, _e, c in TEST_VIDEOS}},
        "events": {f"{test_folders[n]}/{n[:-4]}": [list(e) for e in ev] for n, _c, ev, _f in TEST_VIDEOS},
    }
    if snippets:
        expected["num_snippets"] = snippets
    if codec_used:
        expected["codec"] = codec_used
    return Built(root, options, expected)
