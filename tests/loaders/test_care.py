import numpy as np
import pytest

import anomalykit
from anomalykit.errors import ConfigError, DatasetNotFoundError, MalformedFileError
from anomalykit.loaders.care import CARE, README_NORMAL_STATUS
from anomalykit.testing import build


@pytest.fixture(scope="module")
def care(tmp_path_factory):
    return build("care", tmp_path_factory.mktemp("care"))


@pytest.fixture
def care_copy(tmp_path):
    return build("care", tmp_path)


def test_counts_keys_labels_and_defects(care):
    ds = anomalykit.load("care", care.root)
    assert len(ds) == care.expected["total"] == 6
    assert ds.keys == ["A/0", "A/3", "B/2", "B/7", "C/1", "C/4"]
    assert ds.counts() == {"test/anomalous": 3, "test/normal": 3}
    manifest = ds.manifest.to_pylist()
    assert [r["category"] for r in manifest] == ["A", "A", "B", "B", "C", "C"]
    assert {r["key"]: r["defect"] for r in manifest if r["label"] == 1} == {
        "A/0": "Hydraulic group", "B/2": "Gearbox failure", "C/1": "Generator bearing failure"}  # fmt: skip
    assert [r["asset_id"] for r in manifest] == [0, 10, 11, 13, 20, 21]  # Farm A's column is "asset"


def test_series_target_masks_and_event_meta(care):
    ds = anomalykit.load("care", care.root)
    for sample in ds:
        expected = care.expected["events"][sample.key]
        assert sample.data.values.shape == (expected["rows"], len(expected["columns"]))
        assert sample.data.channels == tuple(expected["columns"])
        assert sample.data.timestamps[0] == expected["first_timestamp"]
        assert np.all(np.diff(sample.data.timestamps) == np.timedelta64(10, "m"))
        assert int(np.isnan(sample.data.values).sum()) == expected["missing_cells"]
        assert int(sample.meta["normal_mask"].sum()) == expected["normal_rows"]
        assert sample.meta["normal_mask"].dtype == bool and sample.meta["normal_status"] == [0]
        assert int(sample.meta["is_prediction"].sum()) == expected["rows"] - expected["train_rows"]
        assert sample.meta["prediction_start"] == expected["train_rows"]
        assert (sample.meta["event_start_id"], sample.meta["event_end_id"]) == expected["window"]
        assert sample.meta["asset_id"] == expected["asset_id"] == sample.meta["asset_ids_in_file"][0]
        np.testing.assert_array_equal(sample.meta["ids"], np.arange(expected["rows"]))
        assert int(sample.target.sum()) == expected["window_rows"]
        if sample.label == 1:
            first, last = expected["window"]
            assert sample.target[first : last + 1].all() and sample.target.sum() == last - first + 1
            assert sample.meta["event_label"] == "anomaly"
        else:
            assert sample.meta["event_label"] == "normal" and sample.meta["event_description"] is None
    zeros = ds.filter(category="B")[0].data.values[:, 0]
    assert (zeros == 0).sum() >= 5  # zeros are kept as values, not turned into missing ones


def test_channel_metadata_from_feature_description(care):
    a = anomalykit.load("care", care.root, farm="A")[0]
    info = {c["name"]: c for c in a.meta["channel_info"]}
    assert info["sensor_44"]["statistic"] == "average" and info["sensor_44"]["is_counter"] is True
    assert info["sensor_5_avg"]["is_angle"] is True and info["sensor_5_avg"]["unit"] == "\u00b0"
    assert info["sensor_0_std"] == {
        "name": "sensor_0_std", "sensor": "sensor_0", "statistic": "std_dev", "described": True,
        "description": "Ambient temperature", "unit": "\u00b0C", "is_angle": False, "is_counter": False}  # fmt: skip
    b = anomalykit.load("care", care.root, farm="B")[0]
    assert {c["unit"] for c in b.meta["channel_info"] if c["sensor"] == "sensor_0"} == {"\ufffdC"}
    c = anomalykit.load("care", care.root, farm="C")[0]  # statistics_type is the last column there
    assert [i["statistic"] for i in c.meta["channel_info"][:4]] == ["average", "minimum", "maximum", "std_dev"]


def test_options_statistics_parts_farms_events_and_status(care):
    averages = anomalykit.load("care", care.root, farm="A", statistics=["average"])[0]
    assert averages.data.channels == ("sensor_0_avg", "wind_speed_3_avg", "sensor_5_avg", "sensor_44", "power_6_avg")
    both = anomalykit.load("care", care.root, farm="A", event_id=0, part="both")
    assert both.keys == ["A/0/train", "A/0/prediction"]
    train, prediction = both[0], both[1]
    assert (train.split, train.label, train.defect) == ("train", 0, None)
    assert len(train.data) == 288 and train.target.sum() == 0 and not train.meta["is_prediction"].any()
    assert (prediction.split, prediction.label) == ("test", 1)
    assert len(prediction.data) == 60 and int(prediction.target.sum()) == 40
    assert prediction.meta["ids"][0] == 288
    assert len(anomalykit.load("care", care.root, part="prediction")) == 6
    assert anomalykit.load("care", care.root, farm=["b", "C"]).keys == ["B/2", "B/7", "C/1", "C/4"]
    readme = anomalykit.load("care", care.root, event_id=[3], normal_status=README_NORMAL_STATUS)[0]
    assert int(readme.meta["normal_mask"].sum()) == care.expected["events"]["A/3"]["normal_rows_0_2"]
    with pytest.raises(ConfigError, match="part"):
        anomalykit.load("care", care.root, part="test")
    with pytest.raises(ConfigError, match="statistics"):
        anomalykit.load("care", care.root, statistics=["mean"])
    with pytest.raises(ConfigError, match="normal_status"):
        anomalykit.load("care", care.root, normal_status=[7])
    with pytest.raises(DatasetNotFoundError, match="farm 'D'.*found: A, B, C"):
        anomalykit.load("care", care.root, farm="D")
    with pytest.raises(DatasetNotFoundError, match="event id.*99"):
        anomalykit.load("care", care.root, event_id=99)
    for bad in ("abc", 3.5, [0, "x"], []):
        with pytest.raises(ConfigError, match="care: event_id"):
            anomalykit.load("care", care.root, event_id=bad)
    assert anomalykit.load("care", care.root, event_id="3").keys == anomalykit.load("care", care.root, event_id=3).keys


def test_root_forms(care):
    assert len(anomalykit.load("care", care.root.parent)) == 6  # the folder holding CARE_To_Compare
    one_farm = anomalykit.load("care", care.root / "Wind Farm B")
    assert one_farm.keys == ["B/2", "B/7"]
    with pytest.raises(DatasetNotFoundError, match="zenodo"):
        anomalykit.load("care", care.root / "Wind Farm A" / "datasets")


# -- bad input ---------------------------------------------------------------------------------


def _rewrite(path, line_number, edit):
    lines = path.read_text(encoding="utf-8").split("\n")
    lines[line_number - 1] = edit(lines[line_number - 1])
    path.write_text("\n".join(lines), encoding="utf-8")


def test_event_info_problems(care_copy):
    path = care_copy.root / "Wind Farm B" / "event_info.csv"
    _rewrite(path, 3, lambda line: line.replace(";normal;", ";unknown;"))
    with pytest.raises(MalformedFileError, match=r"Wind Farm B/event_info.csv, line 3: event_label: 'unknown'"):
        anomalykit.load("care", care_copy.root)
    with pytest.warns(UserWarning) as record:
        ds = anomalykit.load("care", care_copy.root, strict=False)
    assert "B/7" not in ds.keys and len(ds) == 5
    # the orphaned dataset file is reported too, never dropped silently
    messages = " ".join(str(w.message) for w in record)
    assert "event_info.csv, line 3: event_label" in messages and "datasets/7.csv has no row in event_info.csv" in messages
    assert any("7.csv has no row in event_info.csv" in reason for _, reason in ds.loader.skipped)

    # an unknown column and a truncated row: the first is the error, both are reported when lenient
    farm_c = care_copy.root / "Wind Farm C" / "event_info.csv"
    _rewrite(farm_c, 1, lambda line: line + ";notes")
    _rewrite(farm_c, 3, lambda line: ";".join(line.split(";")[:4]))
    with pytest.raises(MalformedFileError, match=r"Wind Farm C/event_info.csv, line 1: unknown column 'notes' \(1 more problem"):
        anomalykit.load("care", care_copy.root, farm="C")
    with pytest.warns(UserWarning) as record:
        lenient_c = anomalykit.load("care", care_copy.root, farm="C", strict=False)
    messages = " ".join(str(w.message) for w in record)
    assert "truncated row" in messages and "datasets/4.csv has no row in event_info.csv" in messages
    assert lenient_c.keys == ["C/1"]
    assert [reason for _, reason in lenient_c.loader.skipped][:2] == [
        "unknown column 'notes' (ignored)", "truncated row: 4 fields, the header has 9 (row skipped)"]

    _rewrite(path, 2, lambda line: line.replace("-", "/", 1))
    with pytest.raises(MalformedFileError, match=r"line 2: event_start: unparsable date"):
        anomalykit.load("care", care_copy.root, farm="B")
    path.write_text("asset_id;event_id;event_label\n1;2;anomaly\n")
    with pytest.raises(MalformedFileError, match=r"event_info.csv, line 1: missing column\(s\) event_start"):
        anomalykit.load("care", care_copy.root, farm="B")


def test_dataset_file_problems(care_copy):
    path = care_copy.root / "Wind Farm C" / "datasets" / "1.csv"
    _rewrite(path, 10, lambda line: ";".join(line.split(";")[:7]))
    _rewrite(path, 20, lambda line: line.replace("2", "x", 1))
    _rewrite(path, 30, lambda line: ";".join(line.split(";")[:6] + ["warm"] + line.split(";")[7:]))
    ds = anomalykit.load("care", care_copy.root, farm="C", event_id=1)
    with pytest.raises(MalformedFileError, match=r"datasets/1.csv, line 10: truncated row"):
        ds[0]
    with pytest.warns(UserWarning, match="3 problem"):
        lenient = anomalykit.load("care", care_copy.root, farm="C", event_id=1, strict=False)
        sample = lenient[0]
    assert len(sample.data) == 348 - 2 and sample.meta["skipped_rows"] == 2
    reasons = dict(lenient.loader.skipped)
    assert "time_stamp: unparsable date" in reasons[f"{path}:20"]
    assert "column 'sensor_0_min': value 'warm' is not a number (set to missing)" == reasons[f"{path}:30"]
    assert np.isnan(sample.data.values[26, 1])  # line 30 is data row 28; two rows before it were left out

    path.write_text(path.read_text().replace("status_type_id", "status"))
    with pytest.raises(MalformedFileError, match=r"1.csv, line 1: missing column\(s\) status_type_id"):
        anomalykit.load("care", care_copy.root, farm="C", event_id=1)[0]


def test_missing_dataset_file(care_copy):
    (care_copy.root / "Wind Farm A" / "datasets" / "3.csv").unlink()
    with pytest.raises(DatasetNotFoundError, match=r"event 3 \(event_info.csv line 3\) not found at .*Wind Farm A/datasets/3.csv"):
        anomalykit.load("care", care_copy.root)
    with pytest.warns(UserWarning, match="3.csv"):
        assert len(anomalykit.load("care", care_copy.root, strict=False)) == 5


def test_verify_reports_counts_and_strays(care_copy):
    (care_copy.root / "Wind Farm A" / "datasets" / "77.csv").write_text("time_stamp;asset_id\n")
    report = CARE(care_copy.root).verify()  # verify inspects the tree without building samples
    assert {k: v for k, v in report.counts.items() if "/" not in k} == {"A": 3, "B": 2, "C": 2}
    assert report.counts["B/anomaly events"] == 1 and report.counts["C/normal events"] == 1
    assert any("77.csv" in e for e in report.extra)
    assert any("77.csv, line 1: missing column(s) id" in m for m in report.malformed)
    assert any("farm A: 3 datasets, expected 22" in m for m in report.count_mismatches)
