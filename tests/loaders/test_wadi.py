import datetime as dt
import logging

import numpy as np
import pytest

import anomalykit
from anomalykit.errors import ConfigError, DatasetNotFoundError, MalformedFileError
from anomalykit.loaders import wadi as wadi_module
from anomalykit.loaders._tabular import ProblemLog
from anomalykit.loaders.wadi import align_attacks, match_points, parse_attack_table, resolve_attacks
from anomalykit.testing import build
from anomalykit.testing.wadi import CHANNELS, EMPTY

A1 = "WADI.A1_9 Oct 2017"
A2 = "WADI.A2_19 Nov 2019"


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    return build("wadi", tmp_path_factory.mktemp("wadi"))


def _load(built, **options):
    return anomalykit.load("wadi", built.root, **{**built.options, **options})


def test_both_releases_counts_labels_and_payload(tree):
    ds = _load(tree)
    assert len(ds) == tree.expected["total"] == 4
    assert ds.keys == ["WADI_14days", "WADI_attackdata", "WADI_14days_new", "WADI_attackdataLABLE"]
    assert ds.counts() == {"test/anomalous": 2, "train/normal": 2}
    assert ds.manifest.column("release").to_pylist() == ["A1", "A1", "A2", "A2"]
    for sample in ds:
        # OPC paths (A1) and short tags (A2) give the same channel names
        assert sample.data.channels == CHANNELS
        assert sample.data.values.shape == (tree.expected["rows"][sample.key], len(CHANNELS))
        assert sample.data.timestamps[0] == tree.expected["first_timestamps"][sample.key]
        assert np.all(np.diff(sample.data.timestamps) == np.timedelta64(1, "s"))
        np.testing.assert_allclose(sample.data.values, tree.expected["values"][sample.key], rtol=1e-6)
        assert sample.meta["empty_channels"] == list(EMPTY)
    normal, a1_attack, _, a2_attack = list(ds)
    assert normal.split == "train" and normal.label == 0 and not normal.target.any()
    # A1 labels come from the attack table, A2 labels from its -1/1 column: both mark the same steps
    np.testing.assert_array_equal(a1_attack.target, tree.expected["attack_labels"])
    np.testing.assert_array_equal(a2_attack.target, tree.expected["attack_labels"])
    assert int(a1_attack.target.sum()) == tree.expected["attack_rows"] == 110
    assert (a1_attack.meta["label_source"], a2_attack.meta["label_source"]) == ("attack table", "inline")


def test_attack_table_dates_ids_and_points(tree):
    attack = _load(tree, files="attackdata")[0]
    attacks = {a["id"]: a for a in attack.meta["attacks"]}
    assert list(attacks) == ["1", "2", "3-4", "15"]
    assert attacks["1"]["start"] == "2017-10-09 18:01:00" and not attacks["1"]["day_first"]
    # "09/10/2017" read month first is 10 September, outside the file: read day first instead
    assert attacks["2"]["start"] == "2017-10-09 18:03:00" and attacks["2"]["day_first"] and attacks["2"]["aligned"]
    # "13/11/2017" can only be read day first, and lies outside the file either way
    assert attacks["15"]["aligned"] is False and attacks["15"]["start"] == "2017-11-13 18:02:00"
    assert attacks["2"]["points"] == ["2_MCV_101_CO", "2_MCV_301_CO"]  # "2_MCV301" as written
    assert attacks["1"]["points"] == ["1_MV_001_STATUS"]
    ids = np.asarray(attack.meta["attack_id"])
    assert (ids[60:120] == 1).all() and (ids[180:210] == 2).all() and (ids[300:320] == 3).all()
    assert int((ids > 0).sum()) == 110 and not ids[120:131].any()


def test_match_points_and_midnight_rollover(tmp_path):
    assert match_points(("1_AIT_001", "2_MCV301", "9_XX_001"), CHANNELS) == (("1_AIT_001_PV", "2_MCV_301_CO"), ("9_XX_001",))
    table = tmp_path / "WADI_attacklabels.csv"
    table.write_text("Id,Date,Start Time,End Time,Affected\n7,10/9/2017,23:59:50,00:00:09,1_MV_001\n")
    rows = parse_attack_table(table, ProblemLog(table))
    stamps = np.arange(np.datetime64("2017-10-09T23:59:00", "ms"), np.datetime64("2017-10-10T00:01:00", "ms"), np.timedelta64(1, "s"))
    (attack,) = resolve_attacks(rows, stamps, CHANNELS)
    assert attack.end == dt.datetime(2017, 10, 10, 0, 0, 9) and attack.aligned
    ids = align_attacks(stamps, [attack])
    assert int(ids.sum()) == 20 and ids[50] == 1 and ids[69] == 1 and ids[70] == 0


def test_release_folder_as_root_and_file_choice(tree, tmp_path):
    a2 = anomalykit.load("wadi", tree.root / A2, **tree.options)
    assert a2.keys == ["WADI_14days_new", "WADI_attackdataLABLE"]
    assert _load(tree, release="A1").keys == ["WADI_14days", "WADI_attackdata"]
    assert _load(tree, files=["WADI_attackdataLABEL.csv", "14days"]).keys == ["WADI_14days", "WADI_attackdataLABLE"]
    with pytest.raises(DatasetNotFoundError, match="'attackdata_v2'.*found: WADI_14days, WADI_14days_new"):
        _load(tree, files="attackdata_v2")
    with pytest.raises(ConfigError, match="release"):
        _load(tree, release="A3")
    with pytest.raises(ConfigError, match="downsample_method"):
        _load(tree, downsample=2, downsample_method="median")
    with pytest.raises(ConfigError, match="stride"):
        _load(tree, stride=3)
    with pytest.raises(DatasetNotFoundError, match="iTrust"):
        anomalykit.load("wadi", tmp_path)


def test_without_attack_table_the_a1_labels_are_unknown(tmp_path, caplog):
    built = build("wadi", tmp_path, releases=("A1",), attack_table=False)
    assert built.expected["anomalous"] == 0
    with caplog.at_level(logging.WARNING, logger="anomalykit.loaders.wadi"):
        ds = _load(built)
        attack = ds.filter(split="test")[0]
    assert attack.label == -1 and attack.target is None and attack.meta["label_source"] == "none"
    assert "no label column" in caplog.text
    assert _load(built).loader.verify().missing == ["WADI_attacklabels.csv"]
    # an attack table given by path
    other = build("wadi", tmp_path / "with-table", releases=("A1",))
    labelled = _load(built, attack_list=str(other.root / "WADI_attacklabels.csv"), files="attackdata")[0]
    np.testing.assert_array_equal(labelled.target, other.expected["attack_labels"])
    with pytest.raises(DatasetNotFoundError, match="attack table"):
        _load(built, attack_list=str(tmp_path / "nope.csv"))


def test_parquet_cache_is_keyed_by_checksum(tmp_path, monkeypatch):
    built = build("wadi", tmp_path, releases=("A2",))
    cache = tmp_path / "cache"
    first = _load(built, files="attackdataLABLE", cache_dir=str(cache))[0]
    cached = list(cache.glob("*.parquet"))
    assert len(cached) == 1 and first.meta["cache_path"] == str(cached[0])
    assert first.meta["sha256"][:20] in cached[0].name

    def no_parsing(*args, **kwargs):
        raise AssertionError("the source file was parsed although a cached copy exists")

    monkeypatch.setattr(wadi_module, "parse_file", no_parsing)
    second = _load(built, files="attackdataLABLE", cache_dir=str(cache))[0]
    np.testing.assert_array_equal(second.data.values, first.data.values)
    np.testing.assert_array_equal(second.data.timestamps, first.data.timestamps)
    np.testing.assert_array_equal(second.target, first.target)
    assert second.data.channels == first.data.channels
    path = built.root / "WADI_attackdataLABLE.csv"
    path.write_bytes(path.read_bytes().replace(b",-1\r\n", b",1\r\n"))  # every step normal now
    with pytest.raises(AssertionError, match="was parsed"):
        _load(built, files="attackdataLABLE", cache_dir=str(cache))
    monkeypatch.undo()
    third = _load(built, files="attackdataLABLE", cache_dir=str(cache))[0]
    assert third.label == 0 and len(list(cache.glob("*.parquet"))) == 2
    assert _load(built, files="attackdataLABLE", cache_dir=False)[0].meta["cache_path"] is None


def test_windows_and_downsampling(tree):
    full = _load(tree, files="attackdata")[0]
    ds = _load(tree, files="attackdata", window=50, stride=25)
    assert len(ds) == (400 - 50) // 25 + 1 == 15
    assert ds.keys[:2] == ["WADI_attackdata/0000000", "WADI_attackdata/0000025"]
    for i, sample in enumerate(ds):
        start = 25 * i
        np.testing.assert_array_equal(sample.target, full.target[start : start + 50])
        np.testing.assert_array_equal(sample.data.values, full.data.values[start : start + 50])
        assert sample.label == int(full.target[start : start + 50].any())
    assert ds[2].defect == "attack-1" and [a["id"] for a in ds[2].meta["attacks"]] == ["1"]
    assert ds[12].defect == "attack-3-4" and ds[0].defect is None and ds[0].label == 0
    mean = _load(tree, files="attackdata", downsample=10)[0]
    assert mean.data.values.shape == (40, len(CHANNELS))
    np.testing.assert_allclose(mean.data.values[6, :4], full.data.values[60:70, :4].mean(axis=0), rtol=1e-5)
    assert np.isnan(mean.data.values[:, CHANNELS.index("2_LS_001_AL")]).all()
    np.testing.assert_array_equal(mean.target, full.target.reshape(40, 10).max(axis=1))
    first = _load(tree, files="attackdata", downsample=10, downsample_method="first")[0]
    np.testing.assert_array_equal(first.data.values, full.data.values[::10])
    np.testing.assert_array_equal(first.data.timestamps, full.data.timestamps[::10])


# -- bad input ---------------------------------------------------------------------------------


def _edit_line(path, number, edit):
    lines = path.read_bytes().decode().split("\r\n")
    lines[number - 1] = edit(lines[number - 1])
    path.write_bytes("\r\n".join(lines).encode())


def _set_field(index, value):
    def edit(line):
        cells = line.split(",")
        cells[index] = value
        return ",".join(cells)

    return edit


def test_truncated_row_after_the_preamble_names_the_physical_line(tmp_path):
    built = build("wadi", tmp_path, releases=("A1",))
    path = built.root / "WADI_14days.csv"
    # lines 1-4: preamble (line 2 blank), line 5: header, line 6: first data row
    _edit_line(path, 20, lambda line: line.rsplit(",", 5)[0])
    with pytest.raises(MalformedFileError, match=r"WADI_14days.csv, line 20: truncated row"):
        _load(built, files="14days")
    with pytest.warns(UserWarning, match="line 20"):
        ds = _load(built, files="14days", strict=False)
    sample = ds[0]
    assert len(sample.data) == 199 and sample.meta["skipped_rows"] == 1
    assert [where for where, _ in ds.loader.skipped] == [f"{path}:20"]
    with pytest.raises(MalformedFileError, match="line 20"):  # the cached copy keeps the report
        _load(built, files="14days")


def test_unparsable_time_value_and_label(tmp_path):
    built = build("wadi", tmp_path, releases=("A2",))
    path = built.root / "WADI_attackdataLABLE.csv"
    # line 1: column indices, line 2: header, line 3: first data row
    _edit_line(path, 5, _set_field(2, "25:99:00.000 PM"))
    _edit_line(path, 8, _set_field(3, "abc"))
    _edit_line(path, 9, _set_field(5, "xyz"))
    _edit_line(path, 10, _set_field(-1, "0"))
    with pytest.raises(MalformedFileError, match=r"WADI_attackdataLABLE.csv, line 5: unparsable Date/Time"):
        _load(built, files="attackdataLABLE")
    with pytest.warns(UserWarning, match="4 problem"):
        ds = _load(built, files="attackdataLABLE", strict=False)
        sample = ds[0]
    assert len(sample.data) == 398  # the bad time and the bad label rows are left out
    reasons = dict(ds.loader.skipped)
    assert "'1_AIT_001_PV': value 'abc' is not a number" in reasons[f"{path}:8"]
    assert "'1_FIT_001_PV': value 'xyz' is not a number" in reasons[f"{path}:9"]
    assert "unparsable label '0'" in reasons[f"{path}:10"]
    assert np.isnan(sample.data.values[4, 0]) and np.isnan(sample.data.values[:, 0]).sum() == 1
    assert np.isnan(sample.data.values[5, 2]) and np.isnan(sample.data.values[:, 2]).sum() == 1
    # the other channels were read as numbers and match what was written
    kept = np.delete(np.arange(400), [2, 7])
    np.testing.assert_allclose(sample.data.values[:, 3], built.expected["values"]["WADI_attackdataLABLE"][kept, 3], rtol=1e-6)


def test_bad_header_and_attack_table(tmp_path):
    built = build("wadi", tmp_path, releases=("A1",))
    attack = built.root / "WADI_attackdata.csv"
    _edit_line(attack, 1, lambda line: line.replace(",Date,", ",Day,"))
    with pytest.raises(MalformedFileError, match=r"WADI_attackdata.csv: no header line with 'Row, Date, Time'"):
        _load(built, files="attackdata")
    _edit_line(attack, 1, lambda line: line.replace(",Day,", ",Date,").replace("1_AIT_002_PV", "1_AIT_001_PV"))
    with pytest.raises(MalformedFileError, match=r"line 1: channel '1_AIT_001_PV' appears twice"):
        _load(built, files="attackdata")
    with pytest.warns(UserWarning, match="appears twice"):
        sample = _load(built, files="attackdata", strict=False)[0]
    assert sample.data.channels[:2] == ("1_AIT_001_PV", "1_AIT_001_PV#2") and len(sample.data) == 400

    built = build("wadi", tmp_path / "table", releases=("A1",))
    table = built.root / "WADI_attacklabels.csv"
    lines = table.read_text().splitlines()
    lines[2] = lines[2].replace("18:03:29", "later")
    table.write_text("\n".join(lines) + "\n")
    with pytest.raises(MalformedFileError, match=r"WADI_attacklabels.csv, line 3: attack 2: unparsable end time 'later'"):
        _load(built, files="attackdata")
    with pytest.warns(UserWarning, match="line 3"):
        sample = _load(built, files="attackdata", strict=False)[0]
    assert [a["id"] for a in sample.meta["attacks"]] == ["1", "3-4", "15"]
    assert int(sample.target.sum()) == 80  # attack 2 (30 steps) is not labelled


def test_unnamed_column_with_values_is_reported(tmp_path):
    built = build("wadi", tmp_path, releases=("A2",))
    path = built.root / "WADI_14days_new.csv"
    lines = path.read_bytes().decode().split("\r\n")
    lines = [line + ("," if i == 0 else ",7" if i == 3 else ",") if line else line for i, line in enumerate(lines)]
    path.write_bytes("\r\n".join(lines).encode())
    with pytest.raises(MalformedFileError, match=r"line 4: column 24 has values but no name"):
        _load(built, files="14days_new")
    with pytest.warns(UserWarning, match="no name"):
        assert _load(built, files="14days_new", strict=False)[0].data.values.shape == (200, len(CHANNELS))


def test_verify_counts_rows_against_the_card(tmp_path):
    built = build("wadi", tmp_path, releases=("A1",))
    report = _load(built).loader.verify()
    assert report.counts == {"WADI_14days": 200, "WADI_attackdata": 400}
    assert "WADI_attackdata.csv: 400 rows, expected 172801" in report.count_mismatches
    assert report.missing == []
