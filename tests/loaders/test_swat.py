import datetime as dt
import numpy as np
import pytest

import anomalykit
from anomalykit.errors import ConfigError, DatasetNotFoundError, MalformedFileError
from anomalykit.loaders import swat as swat_module
from anomalykit.loaders.swat import CHANNELS
from anomalykit.testing import build
from anomalykit.testing.swat import ATTACK_START, write_xlsx


@pytest.fixture(scope="module")
def xlsx_tree(tmp_path_factory):
    return build("swat", tmp_path_factory.mktemp("swat-xlsx"))


def _load(built, **options):
    return anomalykit.load("swat", built.root, **{**built.options, **options})


def _attack_file(built, suffix):
    return built.root / "Physical" / f"SWaT_Dataset_Attack_v0.{suffix}"


def test_counts_splits_labels_and_payload(xlsx_tree):
    ds = _load(xlsx_tree)
    assert len(ds) == xlsx_tree.expected["total"] == 3
    assert ds.keys == ["SWaT_Dataset_Normal_v0", "SWaT_Dataset_Normal_v1", "SWaT_Dataset_Attack_v0"]
    assert ds.counts() == {"test/anomalous": 1, "train/normal": 2}
    for sample in ds:
        stem = sample.key.removeprefix("SWaT_Dataset_")
        assert sample.data.values.shape == (xlsx_tree.expected["rows"][stem], 51)
        assert sample.data.channels == CHANNELS
        assert sample.data.timestamps[0] == xlsx_tree.expected["first_timestamps"][stem]
        assert np.all(np.diff(sample.data.timestamps) == np.timedelta64(1, "s"))
        np.testing.assert_allclose(sample.data.values, xlsx_tree.expected["values"][stem], rtol=1e-6)
    attack = ds.filter(split="test")[0]
    # "A ttack" rows count as attack, as in every published use of the file
    assert int(attack.target.sum()) == xlsx_tree.expected["attack_rows"] == 100
    assert xlsx_tree.expected["a_ttack_rows"] == 5 and attack.target[170:175].all()
    assert attack.target[:60].sum() == 0 and attack.target[60:90].all()
    assert ds.filter(split="train")[1].data.timestamps[0] == np.datetime64("2015-12-22T16:00:40")


def test_attack_list_aligned_with_rollover_and_year_fix(xlsx_tree):
    attack = _load(xlsx_tree, files="Attack_v0")[0]
    ids = np.asarray(attack.meta["attack_id"])
    assert {i: int((ids == i).sum()) for i in (1, 3, 4)} == xlsx_tree.expected["aligned_steps"]
    assert (ids[60:90] == 1).all() and (ids[160:200] == 3).all() and (ids[240:270] == 4).all()
    attacks = {a["id"]: a for a in attack.meta["attacks"]}
    assert sorted(attacks) == [1, 2, 3, 4]
    assert attacks[2]["end"] is None and attacks[2]["points"] == []  # no physical impact: no end time
    assert attacks[3]["end"] == "2016-01-01 00:00:19"  # a time of day past midnight
    assert attacks[4]["start"] == "2016-01-01 00:01:00" and attacks[4]["year_corrected"] is True
    assert attacks[4]["points"] == ["DPIT301"] and attacks[4]["unknown_points"] == ["MV504"]
    assert attacks[3]["points"] == ["P101", "P102"]
    assert attack.defect is None
    normal = _load(xlsx_tree, files="Normal_v0")[0]
    assert normal.meta["attacks"] == [] and not np.asarray(normal.meta["attack_id"]).any()


@pytest.mark.parametrize("variant", ["official_csv", "usad_csv"])
def test_csv_variants_match_the_written_values(tmp_path, variant):
    built = build("swat", tmp_path, variant=variant)
    ds = _load(built)
    assert len(ds) == built.expected["total"]
    for sample in ds:
        stem = sample.key.removeprefix("SWaT_Dataset_")
        assert sample.meta["format"] == "csv"
        np.testing.assert_allclose(sample.data.values, built.expected["values"][stem], rtol=1e-6)
        assert sample.data.timestamps[0] == built.expected["first_timestamps"][stem]
    attack = ds.filter(split="test")[0]
    assert int(attack.target.sum()) == built.expected["attack_rows"]
    assert int((np.asarray(attack.meta["attack_id"]) == 3).sum()) == 40


def test_spreadsheet_datetime_cells(tmp_path):
    built = build("swat", tmp_path, excel_dates=True)
    attack = _load(built, files=["SWaT_Dataset_Attack_v0.xlsx"])[0]
    assert attack.data.timestamps[0] == np.datetime64(ATTACK_START, "ns")
    assert attack.data.timestamps[-1] == np.datetime64(ATTACK_START + dt.timedelta(seconds=299), "ns")


def test_format_choice_when_both_exist(tmp_path):
    built = build("swat", tmp_path / "a", variant="official_csv")
    xlsx = build("swat", tmp_path / "b")
    (built.root / "Physical" / "SWaT_Dataset_Attack_v0.xlsx").write_bytes(_attack_file(xlsx, "xlsx").read_bytes())
    assert _load(built, files="Attack_v0")[0].meta["format"] == "xlsx"
    assert _load(built, files="Attack_v0", format="csv")[0].meta["format"] == "csv"
    with pytest.raises(DatasetNotFoundError, match="xlsx file for Normal_v0"):
        _load(built, files="Normal_v0", format="xlsx")


def test_parquet_cache_is_keyed_by_checksum(tmp_path, monkeypatch):
    built = build("swat", tmp_path)
    cache = tmp_path / "cache"
    first = _load(built, files="Attack_v0", cache_dir=str(cache))[0]
    cached = list(cache.glob("*.parquet"))
    assert len(cached) == 1 and first.meta["cache_path"] == str(cached[0])
    assert first.meta["sha256"][:20] in cached[0].name

    def no_parsing(*args, **kwargs):
        raise AssertionError("the source file was parsed although a cached copy exists")

    monkeypatch.setattr(swat_module, "parse_file", no_parsing)
    second = _load(built, files="Attack_v0", cache_dir=str(cache))[0]
    np.testing.assert_array_equal(second.data.values, first.data.values)
    np.testing.assert_array_equal(second.target, first.target)
    np.testing.assert_array_equal(second.data.timestamps, first.data.timestamps)
    # a changed source file has a new checksum, so it is parsed again
    values = built.expected["values"]["Attack_v0"].copy()
    values[0, 0] += 1.0
    write_xlsx(_attack_file(built, "xlsx"), ATTACK_START, values, ["Normal"] * len(values), attack=True)
    with pytest.raises(AssertionError, match="was parsed"):
        _load(built, files="Attack_v0", cache_dir=str(cache))[0]
    monkeypatch.undo()
    third = _load(built, files="Attack_v0", cache_dir=str(cache))[0]
    assert third.label == 0 and third.data.values[0, 0] == pytest.approx(values[0, 0], rel=1e-6)
    assert len(list(cache.glob("*.parquet"))) == 2
    nocache = _load(built, files="Attack_v0", cache_dir=False)[0]
    assert nocache.meta["cache_path"] is None


def test_windows_and_downsampling(xlsx_tree):
    ds = _load(xlsx_tree, files="Attack_v0", window=50, stride=25)
    assert len(ds) == (300 - 50) // 25 + 1 == 11
    assert ds.keys[:3] == ["SWaT_Dataset_Attack_v0/0000000", "SWaT_Dataset_Attack_v0/0000025", "SWaT_Dataset_Attack_v0/0000050"]
    full = _load(xlsx_tree, files="Attack_v0")[0]
    labels = ds.manifest.column("label").to_pylist()
    for i, sample in enumerate(ds):
        start = 25 * i
        np.testing.assert_array_equal(sample.target, full.target[start : start + 50])
        np.testing.assert_array_equal(sample.data.values, full.data.values[start : start + 50])
        assert sample.label == labels[i] == int(full.target[start : start + 50].any())
        assert sample.meta["start"] == start
    window = ds[2]  # steps 50..99 hold attack 1
    assert window.defect == "attack-1" and [a["id"] for a in window.meta["attacks"]] == [1]
    assert ds[0].label == 0 and ds[0].defect is None
    # the tail shorter than a window is not a window
    assert len(_load(xlsx_tree, files="Attack_v0", window=70)) == 4

    mean = _load(xlsx_tree, files="Attack_v0", downsample=10)[0]
    assert mean.data.values.shape == (30, 51) and mean.meta["sampling_seconds"] == 10
    np.testing.assert_allclose(mean.data.values[6], full.data.values[60:70].mean(axis=0), rtol=1e-5)
    np.testing.assert_array_equal(mean.target, full.target.reshape(30, 10).max(axis=1))
    assert mean.data.timestamps[1] == full.data.timestamps[10]
    first = _load(xlsx_tree, files="Attack_v0", downsample=10, downsample_method="first")[0]
    np.testing.assert_array_equal(first.data.values, full.data.values[::10])
    both = _load(xlsx_tree, files="Attack_v0", downsample=10, window=5)
    assert len(both) == 6 and both[1].data.timestamps[0] == full.data.timestamps[50]


def test_options_are_validated(xlsx_tree, tmp_path):
    with pytest.raises(ConfigError, match="window"):
        _load(xlsx_tree, window=0)
    with pytest.raises(ConfigError, match="stride"):
        _load(xlsx_tree, stride=5)
    with pytest.raises(ConfigError, match="downsample_method"):
        _load(xlsx_tree, downsample=2, downsample_method="median")
    with pytest.raises(ConfigError, match="format"):
        _load(xlsx_tree, format="ods")
    with pytest.raises(DatasetNotFoundError, match="Attack_v9.*found: Attack_v0, Normal_v0, Normal_v1"):
        _load(xlsx_tree, files="Attack_v9")
    with pytest.raises(DatasetNotFoundError, match="iTrust"):
        anomalykit.load("swat", tmp_path)


# -- bad input ---------------------------------------------------------------------------------


def _csv_tree(tmp_path):
    built = build("swat", tmp_path, variant="official_csv")
    return built, _attack_file(built, "csv")


def _edit_line(path, number, edit):
    lines = path.read_bytes().decode("utf-8-sig").split("\r\n")
    lines[number - 1] = edit(lines[number - 1])
    path.write_text("\ufeff" + "\r\n".join(lines), encoding="utf-8")


def test_truncated_csv_row_names_file_and_line(tmp_path):
    built, path = _csv_tree(tmp_path)
    _edit_line(path, 12, lambda line: line.rsplit(",", 20)[0])
    with pytest.raises(MalformedFileError, match=r"SWaT_Dataset_Attack_v0.csv, line 12: truncated row"):
        _load(built, files="Attack_v0")
    with pytest.warns(UserWarning, match="line 12"):
        ds = _load(built, files="Attack_v0", strict=False)
    sample = ds[0]
    assert len(sample.data) == 299 and sample.meta["skipped_rows"] == 1
    assert [where for where, _ in ds.loader.skipped] == [f"{path}:12"]
    # the skip report survives the cache: a strict load of the same file still fails
    with pytest.raises(MalformedFileError, match="line 12"):
        _load(built, files="Attack_v0")


def test_blank_lines_do_not_shift_reported_lines(tmp_path):
    built, _ = _csv_tree(tmp_path)
    normal = built.root / "Physical" / "SWaT_Dataset_Normal_v0.csv"  # a junk line before the header
    lines = normal.read_bytes().decode().split("\r\n")
    lines.insert(5, "")  # line 6 is blank: line 12 holds data row 9
    lines[11] = lines[11].rsplit(",", 20)[0]
    normal.write_bytes("\r\n".join(lines).encode())
    with pytest.raises(MalformedFileError, match=r"SWaT_Dataset_Normal_v0.csv, line 12: truncated row"):
        _load(built, files="Normal_v0")


def _set_field(index, value):
    def edit(line):
        cells = line.split(",")
        cells[index] = value
        return ",".join(cells)

    return edit


def test_unparsable_timestamp_label_and_value(tmp_path):
    built, path = _csv_tree(tmp_path)
    _edit_line(path, 5, _set_field(0, "not a date"))
    _edit_line(path, 7, _set_field(-1, "Unknown"))
    _edit_line(path, 9, _set_field(1, "abc"))
    with pytest.raises(MalformedFileError, match=r"line 5: unparsable timestamp 'not a date'"):
        _load(built, files="Attack_v0")
    with pytest.warns(UserWarning, match="3 problem"):
        ds = _load(built, files="Attack_v0", strict=False)
        sample = ds[0]
    assert len(sample.data) == 298  # the bad timestamp and the bad label rows are left out
    reasons = {where: reason for where, reason in ds.loader.skipped}
    assert "unparsable label 'Unknown'" in reasons[f"{path}:7"]
    assert "'FIT101': value 'abc' is not a number" in reasons[f"{path}:9"]
    assert np.isnan(sample.data.values[:, 0]).sum() == 1  # the bad number is kept as missing
    assert np.isnan(sample.data.values[5, 0])  # line 9 is data row 7; rows 3 and 5 were left out


def test_missing_and_unknown_columns(tmp_path):
    built, path = _csv_tree(tmp_path)
    lines = path.read_bytes().decode("utf-8-sig").split("\r\n")
    lines = [",".join(cells[:1] + cells[2:]) for cells in (line.split(",") for line in lines if line)]  # drop FIT101
    path.write_text("\ufeff" + "\r\n".join(lines) + "\r\n", encoding="utf-8")
    with pytest.raises(MalformedFileError, match=r"line 1: missing channel column 'FIT101'"):
        _load(built, files="Attack_v0")
    with pytest.warns(UserWarning, match="FIT101"):
        sample = _load(built, files="Attack_v0", strict=False)[0]
    assert np.isnan(sample.data.values[:, 0]).all() and not np.isnan(sample.data.values[:, 1:]).any()

    normal = built.root / "Physical" / "SWaT_Dataset_Normal_v0.csv"
    lines = normal.read_bytes().decode().split("\r\n")
    lines = [line + (",Extra" if i == 1 else ",1") if line and i >= 1 else line for i, line in enumerate(lines)]
    normal.write_text("\r\n".join(lines))
    with pytest.raises(MalformedFileError, match=r"SWaT_Dataset_Normal_v0.csv, line 2: unknown column 'Extra'"):
        _load(built, files="Normal_v0")
    with pytest.warns(UserWarning, match="Extra"):
        assert _load(built, files="Normal_v0", strict=False)[0].data.values.shape == (240, 51)


def test_bad_label_in_xlsx_names_the_sheet_row(tmp_path):
    built = build("swat", tmp_path)
    labels = ["Normal"] * 300
    labels[4] = "Bogus"
    write_xlsx(_attack_file(built, "xlsx"), ATTACK_START, built.expected["values"]["Attack_v0"], labels, attack=True)
    # row 1 is the extra row, row 2 the header: data row 5 is sheet row 7
    with pytest.raises(MalformedFileError, match=r"SWaT_Dataset_Attack_v0.xlsx, line 7: unparsable label 'Bogus'"):
        _load(built, files="Attack_v0")
    with pytest.warns(UserWarning, match="line 7"):
        assert len(_load(built, files="Attack_v0", strict=False)[0].data) == 299


def test_verify_counts_rows_against_the_card(tmp_path):
    built = build("swat", tmp_path, attack_list=False)
    report = _load(built).loader.verify()
    assert report.counts == {"SWaT_Dataset_Normal_v0": 240, "SWaT_Dataset_Normal_v1": 200, "SWaT_Dataset_Attack_v0": 300}
    assert "SWaT_Dataset_Attack_v0.xlsx: 300 rows, expected 449919" in report.count_mismatches
    assert report.missing == ["List_of_attacks_Final.xlsx"]
