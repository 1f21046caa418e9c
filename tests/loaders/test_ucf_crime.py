"""UCF-Crime: the real split and annotation files, the three sources on built trees, bad input."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

import anomalykit
from anomalykit.errors import ConfigError, DatasetNotFoundError, MalformedFileError
from anomalykit.loaders import ucf_crime as ucf
from anomalykit.loaders.ucf_crime import (
    frame_targets,
    group_crops,
    parse_feature_list,
    parse_split_file,
    parse_temporal_annotation,
    snippet_targets,
)
from anomalykit.testing import build

TWO_EVENT_VIDEOS = {
    "Arson011", "Assault010", "Burglary021", "Burglary037", "Explosion033", "Shooting046", "Shooting047",
    "Shoplifting007", "Shoplifting010", "Shoplifting022", "Shoplifting027", "Stealing019", "Stealing079",
    "Vandalism017", "Vandalism028", "Vandalism036",
}


def _real_ucf() -> Path:
    here = Path(__file__).resolve()
    for candidate in (here.parents[2] / ".." / "shared" / "real", Path("/work/shared/real")):
        if (candidate / "ucf_crime").is_dir():
            return (candidate / "ucf_crime").resolve()
    pytest.skip("the real UCF-Crime split/annotation files (../shared/real/ucf_crime) are not on this machine")


# --------------------------------------------------------------------------------------------
# the real files


def test_real_training_split_parses_exactly():
    entries = parse_split_file(_real_ucf() / "Anomaly_Train.txt")
    assert len(entries) == 1610
    assert sum(e.label == 1 for e in entries) == 810 and sum(e.label == 0 for e in entries) == 800
    assert {e.folder for e in entries if e.label == 0} == {"Training_Normal_Videos_Anomaly"}
    per_class = {c: sum(e.video_class == c for e in entries) for c in ucf.CLASSES}
    assert per_class["RoadAccidents"] == 127 and per_class["Robbery"] == 145 and per_class["Shooting"] == 27
    assert entries[0].filename == "Abuse001_x264.mp4" and entries[0].line == 1
    assert entries[-1].filename == "Vandalism050_x264.mp4" and entries[-1].line == 1610


def test_real_temporal_annotation_parses_exactly():
    path = _real_ucf() / "Temporal_Anomaly_Annotation.txt"
    assert b"  -1  -1  \n" in path.read_bytes()  # double spaces and trailing spaces, as shipped
    notes = parse_temporal_annotation(path)
    assert len(notes) == 290
    assert sum(n.label for n in notes) == 140 and sum(n.label == 0 for n in notes) == 150
    two = {n.stem.replace("_x264", "") for n in notes if len(n.events) == 2}
    assert two == TWO_EVENT_VIDEOS
    by_name = {n.stem: n for n in notes}
    assert by_name["Arson011_x264"].events == ((150, 420), (680, 1267))
    assert by_name["Abuse028_x264"].events == ((165, 240),)
    assert by_name["Normal_Videos_003_x264"].events == ()
    assert min(s for n in notes for s, _ in n.events) == 1
    # the training and test normals are disjoint (Normal_Videos001 vs Normal_Videos_003)
    train = {e.stem for e in parse_split_file(_real_ucf() / "Anomaly_Train.txt")}
    assert not train & set(by_name)


def test_real_urdmu_annotation_matches_sultani_and_ends_are_clipped():
    real = _real_ucf()
    sultani = {n.filename: n for n in parse_temporal_annotation(real / "Temporal_Anomaly_Annotation.txt")}
    urdmu = parse_temporal_annotation(real / "URDMU_UCF_Annotation.txt")
    assert len(urdmu) == 290 and sum(n.num_frames for n in urdmu) == 1_111_808
    for note in urdmu:
        assert note.events == sultani[note.filename].events and note.video_class == sultani[note.filename].video_class
    counts = {n.stem: n.num_frames for n in urdmu}
    assert counts["RoadAccidents021_x264"] == 155 and counts["Assault006_x264"] == 8096
    # ends past the video (official 1-based convention): clipped, the last frame is anomalous
    past = {n.stem for n in urdmu if n.events and max(e for _, e in n.events) > n.num_frames}
    assert past == {"Shooting015_x264", "Arson011_x264", "Fighting003_x264", "Arson016_x264", "Explosion033_x264"}
    shooting = next(n for n in urdmu if n.stem == "Shooting015_x264")
    target = frame_targets(shooting.events, shooting.num_frames)
    (start, _end), = shooting.events
    assert target.shape == (1713,) and target[-1] == 1
    assert int(target.sum()) == 1713 - start + 1 and target[start - 2] == 0 and target[start - 1] == 1
    arson = next(n for n in urdmu if n.stem == "Arson011_x264")
    arson_target = frame_targets(arson.events, arson.num_frames)
    assert int(arson_target.sum()) == (420 - 150 + 1) + (1266 - 680 + 1)


def test_real_urdmu_test_list_groups_into_290_videos_of_10_crops():
    path = _real_ucf() / "URDMU_UCF_Test.list"
    entries = parse_feature_list(path)
    assert len(entries) == 2900
    groups = group_crops(entries, path)
    assert len(groups) == 290
    assert [e.filename for e in groups[0].entries] == [f"Abuse028_x264__{k}.npy" for k in range(10)]
    annotated = {n.stem for n in parse_temporal_annotation(_real_ucf() / "Temporal_Anomaly_Annotation.txt")}
    assert {g.stem for g in groups} == annotated
    # anomalies first, then normals (the feature-list order, unlike the annotation's)
    normal = [ucf.video_class(g.stem) == "Normal" for g in groups]
    assert normal == sorted(normal) and sum(normal) == 150


# --------------------------------------------------------------------------------------------
# targets


def test_frame_conventions_differ_by_one_frame_and_clip():
    assert frame_targets([(2, 4)], 6).tolist() == [0, 1, 1, 1, 0, 0]
    assert frame_targets([(2, 4)], 6, "zero_based").tolist() == [0, 0, 1, 1, 1, 0]
    assert frame_targets([(1, 2), (5, 99)], 6).tolist() == [1, 1, 0, 0, 1, 1]
    assert frame_targets([(5, 99)], 6, "zero_based").tolist() == [0, 0, 0, 0, 0, 1]
    assert frame_targets([], 3).tolist() == [0, 0, 0]
    assert snippet_targets([(20, 40)], 4).tolist() == [0, 1, 1, 0]
    assert snippet_targets([(16, 16)], 2).tolist() == [1, 0]  # 1-based frame 16 is index 15
    assert snippet_targets([(16, 16)], 2, convention="zero_based").tolist() == [0, 1]
    with pytest.raises(ValueError):
        frame_targets([(1, 2)], 3, "one_based")


# --------------------------------------------------------------------------------------------
# raw videos


@pytest.fixture(scope="module")
def video_tree(tmp_path_factory):
    return build("ucf_crime", tmp_path_factory.mktemp("ucf"))


def test_video_tree_loads_with_counts_keys_and_labels(video_tree):
    ds = anomalykit.load("ucf_crime", video_tree.root)
    assert len(ds) == video_tree.expected["total"] == 10
    assert sorted(ds.keys) == sorted(video_tree.expected["keys"])
    assert ds.counts() == {"test/anomalous": 3, "test/normal": 2, "train/anomalous": 3, "train/normal": 2}
    assert "Training_Normal_Videos_Anomaly/Normal_Videos001_x264" in ds.keys
    assert "Testing_Normal_Videos_Anomaly/Normal_Videos_003_x264" in ds.keys
    train = ds.filter(split="train")
    assert {s.defect for s in train} == {"Abuse", "Burglary", "Vandalism", None}
    for sample in train:
        assert sample.target is None  # video-level labels only
        assert sample.meta["num_frames"] == video_tree.expected["num_frames"][sample.key]
    # archive folders, not the split files' folder names
    paths = ds.manifest.column("path").to_pylist()
    assert "Training-Normal-Videos-Part-1/Normal_Videos001_x264.mp4" in paths
    assert "Anomaly-Videos-Part-1/Arson/Arson011_x264.mp4" in paths
    assert len(anomalykit.load("ucf_crime", video_tree.root, split="test")) == 5


def test_test_targets_follow_the_official_frame_numbering(video_tree):
    ds = anomalykit.load("ucf_crime", video_tree.root, split="test")
    samples = {s.key: s for s in ds}
    arson = samples["Arson/Arson011_x264"]  # events (3, 10) and (25, 45) in a 36-frame video
    assert arson.target.shape == (36,) and arson.data.length == 36
    assert np.flatnonzero(arson.target).tolist() == list(range(2, 10)) + list(range(24, 36))
    assert arson.meta["events"] == [[3, 10], [25, 45]] and arson.meta["clipped"] is True
    road = samples["RoadAccidents/RoadAccidents021_x264"]
    assert np.flatnonzero(road.target).tolist() == list(range(0, 8))
    assert road.meta["clipped"] is False
    for key in ("Testing_Normal_Videos_Anomaly/Normal_Videos_003_x264", "Testing_Normal_Videos_Anomaly/Normal_Videos_006_x264"):
        assert samples[key].label == 0 and not samples[key].target.any()
    shifted = {s.key: s for s in anomalykit.load("ucf_crime", video_tree.root, split="test", frame_convention="zero_based")}
    assert np.flatnonzero(shifted["Arson/Arson011_x264"].target).tolist() == list(range(3, 11)) + list(range(25, 36))


def test_frames_decode_on_demand_and_match_the_target(video_tree):
    sample = next(s for s in anomalykit.load("ucf_crime", video_tree.root, split="test") if s.key == "Abuse/Abuse028_x264")
    clip = sample.data.frames(2, 10)
    assert clip.shape == (8, 24, 32, 3)
    assert [int(round(f[:12].mean() / 6)) for f in clip] == list(range(2, 10))  # gray level = 6 x index
    frames = np.asarray(sample.data)
    assert frames.shape[0] == 40
    # the builder marks event frames with a square that contrasts with the frame's gray level
    square = np.abs(frames[:, -8:].astype(int) - frames[:, :1, :1].astype(int)).max(axis=(1, 2, 3)) > 60
    np.testing.assert_array_equal(square, sample.target.astype(bool))


def test_loading_decodes_nothing(video_tree, monkeypatch):
    import av

    def refuse(*args, **kwargs):
        raise AssertionError("a video was opened while loading")

    monkeypatch.setattr(av, "open", refuse)
    ds = anomalykit.load("ucf_crime", video_tree.root)
    assert len(ds) == 10 and len(ds.filter(split="test", label=1)) == 3


def test_duplicate_file_names_prefer_the_expected_folder(tmp_path):
    built = build("ucf_crime", tmp_path / "tree")
    event = built.root / "Normal_Videos_event"
    event.mkdir()
    shutil.copy(built.root / "Testing_Normal_Videos_Anomaly" / "Normal_Videos_003_x264.mp4", event)
    doubled = built.root / "Anomaly-Videos-Part-1" / "Anomaly-Videos-Part-1" / "Abuse"
    doubled.mkdir(parents=True)
    shutil.move(built.root / "Anomaly-Videos-Part-1" / "Abuse" / "Abuse001_x264.mp4", doubled)
    ds = anomalykit.load("ucf_crime", built.root)
    paths = dict(zip(ds.keys, ds.manifest.column("path").to_pylist()))
    assert paths["Testing_Normal_Videos_Anomaly/Normal_Videos_003_x264"] == "Testing_Normal_Videos_Anomaly/Normal_Videos_003_x264.mp4"
    assert paths["Abuse/Abuse001_x264"] == "Anomaly-Videos-Part-1/Anomaly-Videos-Part-1/Abuse/Abuse001_x264.mp4"


# --------------------------------------------------------------------------------------------
# features


@pytest.fixture(scope="module")
def rtfm_tree(tmp_path_factory):
    return build("ucf_crime", tmp_path_factory.mktemp("rtfm"), features="rtfm")


def test_rtfm_features_with_snippet_targets(rtfm_tree):
    list_bytes = (rtfm_tree.root / "list" / "ucf-i3d.list").read_bytes()
    assert b"\r\n" in list_bytes and b"G:\\UCF_Train_ten_crop_i3d\\" in list_bytes
    ds = anomalykit.load("ucf_crime", rtfm_tree.root, **rtfm_tree.options)
    assert len(ds) == rtfm_tree.expected["total"] and not list(rtfm_tree.root.rglob("*.mp4"))
    samples = {s.key: s for s in ds}
    assert set(samples) == set(rtfm_tree.expected["keys"])
    for key, sample in samples.items():
        T = rtfm_tree.expected["num_snippets"][key]
        assert np.asarray(sample.data).shape == (T, 10, 2048) and sample.data.snippet_frames == 16
    # Abuse028: (5, 20) -> frame indices 4..19 -> snippets 0 and 1; RoadAccidents021: (1, 8) -> snippet 0
    assert samples["Abuse/Abuse028_x264"].target.tolist() == [1, 1]
    assert samples["RoadAccidents/RoadAccidents021_x264"].target.tolist() == [1, 0]
    assert samples["Testing_Normal_Videos_Anomaly/Normal_Videos_006_x264"].target.tolist() == [0, 0]
    assert samples["Abuse/Abuse001_x264"].target is None
    crop = anomalykit.load("ucf_crime", rtfm_tree.root, source="rtfm", crops=3, split="test")[0]
    full = anomalykit.load("ucf_crime", rtfm_tree.root, source="rtfm", split="test")[0]
    np.testing.assert_array_equal(np.asarray(crop.data), np.asarray(full.data)[:, 3])
    pair = anomalykit.load("ucf_crime", rtfm_tree.root, source="rtfm", crops=[0, 9], split="test")[0]
    assert np.asarray(pair.data).shape == (2, 2, 2048)


def test_urdmu_features_stack_crops_and_take_T_from_the_files(tmp_path):
    built = build("ucf_crime", tmp_path / "urdmu", features="urdmu")
    assert not (built.root / "Temporal_Anomaly_Annotation_for_Testing_Videos.txt").exists()
    ds = anomalykit.load("ucf_crime", built.root, **built.options)  # annotation: list/UCF_Annotation.txt
    assert len(ds) == built.expected["total"]
    samples = {s.key: s for s in ds}
    abuse = samples["Abuse/Abuse028_x264"]  # 40 frames, padded to T = 3 by the extractor
    assert np.asarray(abuse.data).shape == (3, 10, 1024)
    assert abuse.target.tolist() == [1, 1, 0]
    first_crop = np.load(built.root / "UCF_Ten_Crop_I3D" / "Abuse" / "Abuse028_x264__7.npy")
    np.testing.assert_array_equal(np.asarray(abuse.data)[:, 7], first_crop)
    assert samples["Testing_Normal_Videos_Anomaly/Normal_Videos_003_x264"].target.tolist() == [0, 0]


# --------------------------------------------------------------------------------------------
# bad input


def test_annotation_lines_that_do_not_parse_name_file_and_line(tmp_path):
    path = tmp_path / "Temporal_Anomaly_Annotation.txt"
    good = "Abuse028_x264.mp4  Abuse  165  240  -1  -1  \n"
    cases = {
        "Abuse030_x264.mp4  Abuse  1275  1360  -1  \n": "expected 6 fields",
        "Abuse030_x264.mp4  Abuse  12x5  1360  -1  -1  \n": "integers",
        "Abuse030_x264.mp4  Abuse  1360  1275  -1  -1  \n": "before it starts",
        "Abuse030_x264.mp4  Abuse  -1  -1  -1  -1  \n": "no event",
        "Normal_Videos_003_x264.mp4  Normal  3  9  -1  -1  \n": "normal video",
        "Abuse030_x264.mp4  Arson  3  9  -1  -1  \n": "annotated as Arson",
        "Abuse030_x264.mp4  Abuse  -1  -1  3  9  \n": "without a first",
        "Abuse030_x264.mp4  Abuse  3  -1  -1  -1  \n": "both be -1",
        good: "annotated twice",
    }
    for line, message in cases.items():
        path.write_text(good + line)
        with pytest.raises(MalformedFileError, match=message) as info:
            parse_temporal_annotation(path)
        assert info.value.line == 2 and str(path) in str(info.value)
    # UR-DMU lines carry a folder, which becomes part of the key: it must fit the class
    urdmu = "Arson/Arson022_x264.mp4 8640 Arson 3500 4000 -1 -1 \n"
    for line in ("Abuse/Arson023_x264.mp4 10 Arson 3 4 -1 -1 \n",
                 "Arson/Normal_Videos_003_x264.mp4 10 Normal -1 -1 -1 -1 \n"):
        path.write_text(urdmu + line)
        with pytest.raises(MalformedFileError, match="does not belong in folder") as info:
            parse_temporal_annotation(path)
        assert info.value.line == 2
    path.write_text(good + "garbage\n" + good.replace("028", "030"))
    skipped: list[str] = []
    with pytest.warns(UserWarning, match="line 2"):
        notes = parse_temporal_annotation(path, skipped=skipped)
    assert [n.stem for n in notes] == ["Abuse028_x264", "Abuse030_x264"] and len(skipped) == 1


def test_split_lines_that_do_not_parse_name_file_and_line(tmp_path):
    path = tmp_path / "Anomaly_Train.txt"
    for line, message in {
        "Abuse001_x264.mp4": "Folder",
        "Abuse/Abuse001_x264.avi": "Folder",
        "Robbery/Abuse002_x264.mp4": "does not belong",
        "Kitchen/Kitchen001_x264.mp4": "not a UCF-Crime video name",
        "Training_Normal_Videos_Anomaly/Abuse002_x264.mp4": "does not belong",
    }.items():
        path.write_text(f"Abuse/Abuse001_x264.mp4\n{line}\n")
        with pytest.raises(MalformedFileError, match=message) as info:
            parse_split_file(path)
        assert info.value.line == 2
    path.write_bytes(b"Abuse/Abuse001_x264.mp4\r\nTraining_Normal_Videos_Anomaly/Normal_Videos001_x264.mp4\r\n")
    assert [e.filename for e in parse_split_file(path)] == ["Abuse001_x264.mp4", "Normal_Videos001_x264.mp4"]


def test_a_broken_annotation_fails_the_load_naming_the_file(tmp_path):
    built = build("ucf_crime", tmp_path / "tree")
    note = built.root / "Temporal_Anomaly_Annotation_for_Testing_Videos.txt"
    note.write_text(note.read_text() + "Abuse030_x264.mp4  Abuse  12\n")
    with pytest.raises(MalformedFileError, match=r"Temporal_Anomaly_Annotation_for_Testing_Videos.txt, line 6"):
        anomalykit.load("ucf_crime", built.root)
    with pytest.warns(UserWarning, match="line 6"):
        ds = anomalykit.load("ucf_crime", built.root, strict=False)
    assert len(ds) == 10 and any("line 6" in message for _what, message in ds.loader.skipped)


def test_a_video_that_will_not_decode_names_the_file(tmp_path):
    built = build("ucf_crime", tmp_path / "tree")
    broken = built.root / "Anomaly-Videos-Part-1" / "Abuse" / "Abuse028_x264.mp4"
    broken.write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"garbage" * 100)
    ds = anomalykit.load("ucf_crime", built.root, split="test")
    index = ds.keys.index("Abuse/Abuse028_x264")
    with pytest.raises(MalformedFileError, match="Abuse028_x264.mp4"):
        ds[index]
    lenient = anomalykit.load("ucf_crime", built.root, split="test", strict=False)
    with pytest.warns(UserWarning, match="Abuse028"):
        read = list(lenient)
    assert len(read) == 4 and [key for key, _ in lenient.skipped] == ["Abuse/Abuse028_x264"]
    report = lenient.loader.verify(decode=True)
    assert any("Abuse028_x264.mp4" in m for m in report.malformed)


def test_a_video_listed_in_both_splits_is_an_error_or_a_recorded_skip(tmp_path):
    built = build("ucf_crime", tmp_path / "tree")
    split = built.root / "Anomaly_Detection_splits" / "Anomaly_Train.txt"
    split.write_text(split.read_text() + "Abuse/Abuse028_x264.mp4\n")  # a test video
    with pytest.raises(MalformedFileError, match=r"Temporal_Anomaly_Annotation_for_Testing_Videos.txt, line 1: "
                       r"video Abuse/Abuse028_x264 \(test\) is already listed at Anomaly_Train.txt:6"):
        anomalykit.load("ucf_crime", built.root)
    with pytest.warns(UserWarning, match="Abuse028"):
        ds = anomalykit.load("ucf_crime", built.root, strict=False)
    assert len(ds) == 10 and len(set(ds.keys)) == 10
    assert ds.loader.skipped == [("Abuse/Abuse028_x264", ds.loader.skipped[0][1])]
    assert any("already listed" in m for m in ds.loader.verify().malformed)
    assert len(anomalykit.load("ucf_crime", built.root, split="test")) == 5


def test_a_missing_video_is_an_error_or_a_recorded_skip(tmp_path):
    built = build("ucf_crime", tmp_path / "tree")
    (built.root / "Anomaly-Videos-Part-2" / "Burglary" / "Burglary005_x264.mp4").unlink()
    with pytest.raises(DatasetNotFoundError, match=r"Burglary005_x264.mp4.*Anomaly_Train.txt, line 2"):
        anomalykit.load("ucf_crime", built.root)
    with pytest.warns(UserWarning, match="Burglary005"):
        ds = anomalykit.load("ucf_crime", built.root, strict=False)
    assert len(ds) == 9 and ds.loader.skipped[0][0] == "Burglary005_x264.mp4"
    report = ds.loader.verify()
    assert report.missing == ["Burglary005_x264.mp4"] and not report.ok
    assert report.counts == {"train": 4, "test": 5}
    assert "train: 4 videos found, the full dataset has 1610" in report.count_mismatches


def test_linked_folders_are_followed_once(tmp_path):
    built = build("ucf_crime", tmp_path / "tree")
    elsewhere = tmp_path / "disk2"
    shutil.move(built.root / "Anomaly-Videos-Part-2", elsewhere)
    (built.root / "Anomaly-Videos-Part-2").symlink_to(elsewhere, target_is_directory=True)
    (elsewhere / "Burglary" / "back_to_root").symlink_to(built.root, target_is_directory=True)  # a cycle
    ds = anomalykit.load("ucf_crime", built.root)
    assert len(ds) == 10
    paths = dict(zip(ds.keys, ds.manifest.column("path").to_pylist()))
    assert paths["Burglary/Burglary005_x264"] == "Anomaly-Videos-Part-2/Burglary/Burglary005_x264.mp4"
    assert all(len(found) == 1 for found in ds.loader._files().by_name.values() if found[0].suffix == ".mp4")


def test_feature_files_of_the_wrong_shape_name_the_file(tmp_path):
    built = build("ucf_crime", tmp_path / "rtfm", features="rtfm")
    target = built.root / "UCF_Test_ten_crop_i3d" / "Abuse028_x264_i3d.npy"
    ds = anomalykit.load("ucf_crime", built.root, source="rtfm", split="test")
    index = ds.keys.index("Abuse/Abuse028_x264")
    for bad in (np.zeros((2, 10, 1024), np.float32), np.zeros((2, 2048), np.float32), np.zeros((0, 10, 2048), np.float32)):
        np.save(target, bad)
        with pytest.raises(MalformedFileError, match="Abuse028_x264_i3d.npy.*RTFM features must be"):
            ds[index]
    np.save(target, np.array([{"features": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(MalformedFileError, match="pickled object array"):
        ds[index]
    target.write_bytes(b"not numpy")
    with pytest.raises(MalformedFileError, match="Abuse028_x264_i3d.npy.*not a readable"):
        ds[index]


def test_urdmu_crops_of_different_lengths_or_missing_crops(tmp_path):
    built = build("ucf_crime", tmp_path / "urdmu", features="urdmu")
    crop = built.root / "UCF_Ten_Crop_I3D" / "Arson" / "Arson011_x264__4.npy"
    np.save(crop, np.zeros((5, 1024), np.float32))
    ds = anomalykit.load("ucf_crime", built.root, source="urdmu", split="test")
    with pytest.raises(MalformedFileError, match="Arson011_x264__4.npy.*T=5"):
        ds[ds.keys.index("Arson/Arson011_x264")]
    listing = built.root / "list" / "UCF_Test.list"
    lines = listing.read_text().split("\n")
    listing.write_text("\n".join(line for line in lines if not line.endswith("Arson011_x264__9.npy")))
    with pytest.raises(MalformedFileError, match=r"UCF_Test.list, line \d+: video Arson011_x264 lacks crop\(s\) \[9\]"):
        anomalykit.load("ucf_crime", built.root, source="urdmu", split="test")


def test_options_are_validated(video_tree):
    for options, message in (
        ({"source": "c3d"}, "source must be one of"),
        ({"split": "val"}, "split must be"),
        ({"frame_convention": "one_based"}, "frame_convention"),
        ({"crops": 10, "source": "rtfm"}, "crops must be"),
        ({"crops": 1}, "crops applies to"),
        ({"feature_dim": -3, "source": "rtfm"}, "feature_dim"),
        ({"fps": 30}, "unknown option"),
    ):
        with pytest.raises(ConfigError, match=message):
            anomalykit.load("ucf_crime", video_tree.root, **options)
    with pytest.raises(DatasetNotFoundError, match="rtfm train feature list"):
        anomalykit.load("ucf_crime", video_tree.root, source="rtfm")
    with pytest.raises(DatasetNotFoundError, match="crcv.ucf.edu"):
        anomalykit.load("ucf_crime", video_tree.root / "nowhere")


def test_the_loader_reads_the_real_files_and_names_every_missing_video(tmp_path):
    real = _real_ucf()
    options = {"train_split": real / "Anomaly_Train.txt", "annotation": real / "Temporal_Anomaly_Annotation.txt"}
    with pytest.raises(DatasetNotFoundError, match=r"Abuse001_x264.mp4 \(listed in Anomaly_Train.txt, line 1"):
        anomalykit.load("ucf_crime", tmp_path, **options)
    with pytest.warns(UserWarning, match="ucf_crime: skipped"):
        loader = anomalykit.load("ucf_crime", tmp_path, strict=False, split="test", annotation=options["annotation"]).loader
    report = type(loader)(tmp_path, **options).verify()
    assert len(report.missing) == 1900 and "Normal_Videos_003_x264.mp4" in report.missing
    assert report.counts == {"train": 0, "test": 0}
    assert len(loader.skipped) == 290
