"""CERT insider-threat loader on tiny real-layout trees (r4.2, r5.2, r6.2)."""

from __future__ import annotations

import shutil
import warnings
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest

import anomalykit
from anomalykit.errors import ConfigError, DatasetNotFoundError, MalformedFileError
from anomalykit.loaders import _cert_index
from anomalykit.loaders.cert import EVENT_COLUMNS
from anomalykit.testing import build
from anomalykit.testing.cert import corrupt


def _load(root: Path, **options):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return anomalykit.load("cert", root, **options)


def _events_by_key(ds) -> dict[str, list[tuple[str, str]]]:
    return {s.key: list(zip(s.data.events.column("type").to_pylist(), s.data.events.column("id").to_pylist()))
            for s in ds}


@pytest.fixture(scope="module")
def r42(tmp_path_factory):
    return build("cert", tmp_path_factory.mktemp("cert42"))


@pytest.mark.parametrize("release", ["r4.2", "r5.2", "r6.2"])
def test_user_days_labels_and_targets(tmp_path, release):
    built = build("cert", tmp_path, release=release)
    ds = _load(built.root)
    assert len(ds) == built.expected["total"]
    samples = list(ds)
    assert sum(s.label for s in samples) == built.expected["anomalous"]
    assert sum(int(s.target.sum()) for s in samples) == built.expected["malicious_events"]
    by_type = {}
    for sample in samples:
        assert sample.data.events.column_names == list(EVENT_COLUMNS)
        assert len(sample.target) == len(sample.data)
        assert (sample.target.sum() > 0) == (sample.label == 1)
        assert set(sample.data.events.column("user").to_pylist()) == {sample.meta["user"]}
        dates = sample.data.events.column("date").to_pylist()
        assert dates == sorted(dates)
        for kind in sample.data.events.column("type").to_pylist():
            by_type[kind] = by_type.get(kind, 0) + 1
    assert by_type == built.expected["events"]
    insiders = built.expected["insiders"]
    defects = {s.meta["user"]: s.defect for s in samples if s.label == 1}
    assert defects == {user: f"scenario-{k}" for user, k in insiders.items()}


def test_context_rows_of_other_users_are_not_malicious(r42):
    ds = _load(r42.root)
    supervisor = sorted(set(ds.manifest.column("user").to_pylist()) - set(r42.expected["insiders"]))[0]
    sample = next(s for s in ds if s.meta["user"] == supervisor and s.meta["start"].startswith("2010-01-04"))
    # the supervisor's email is written into the scenario-2 answer file, but it is not the insider's row
    assert "email" in sample.data.events.column("type").to_pylist()
    assert sample.label == 0 and sample.target.sum() == 0


def test_release_column_layouts_and_quoting(tmp_path):
    r5 = build("cert", tmp_path / "a", release="r5.2")
    events = _load(r5.root).filter(label=1)[0].data.events
    r6 = build("cert", tmp_path / "b", release="r6.2")
    r6_ds = _load(r6.root)
    rows = [row for s in r6_ds for row in s.data.events.to_pylist()]
    http = [r for r in rows if r["type"] == "http"]
    assert all(r["activity"].startswith("WWW ") for r in http)
    assert any("," in r["content"] and '"ok"' in r["content"] for r in http)  # quoted content kept whole
    files = [r for r in rows if r["type"] == "file"]
    assert {r["to_removable_media"] for r in files if r["activity"] == "File Write"} == {"True"}
    devices = [r for r in rows if r["type"] == "device" and r["activity"] == "Connect"]
    assert all(r["file_tree"].startswith("R:\\") for r in devices)
    emails = [r for r in events.to_pylist() if r["type"] == "email"]
    assert emails and all(r["activity"] == "Send" and isinstance(r["size"], int) for r in emails)
    r4_http = [r for s in _load(build("cert", tmp_path / "c").root) for r in s.data.events.to_pylist()
               if r["type"] == "http"]
    assert all(r["activity"] is None for r in r4_http)


def test_r62_truncated_insider_date_is_repaired(tmp_path):
    built = build("cert", tmp_path, release="r6.2")
    ds = _load(built.root)
    assert len(ds.loader.repairs) == 1 and "truncated date" in ds.loader.repairs[0]
    scenario4 = ds.filter(defect="scenario-4")[0]
    assert scenario4.meta["insider"]["start"] == "2010-02-04T00:00:00"
    assert scenario4.meta["insider"]["answer_file"] == "r6.2-4.csv"


def test_user_metadata_from_ldap_and_psychometric(r42):
    ds = _load(r42.root)
    sample = ds[0]
    meta = sample.meta
    assert set(meta["psychometric"]) == set("OCEAN")
    assert meta["ldap"]["role"] in ("Salesman", "ChiefExecutiveOfficer")
    assert meta["ldap_months"][0] == "2009-12"  # LDAP files are read in name order
    leaver = next(s for s in ds if s.meta["insider"] and s.meta["insider"]["scenario"] == 2)
    assert leaver.meta["ldap_months"] == ["2009-12", "2010-01"]
    ceo = [s for s in ds if s.meta["ldap"]["role"] == "ChiefExecutiveOfficer"]
    assert ceo and ceo[0].meta["ldap"]["supervisor"] == ""  # the short CEO row


def test_week_and_session_units(r42):
    weeks = _load(r42.root, unit="week")
    assert len(weeks) == r42.expected["users"]  # three weekdays in one Sunday-based week
    assert all(k.split("/")[-1] == "week-2010-01-03" for k in weeks.keys)
    days = _load(r42.root)
    assert sum(len(s.data) for s in weeks) == sum(len(s.data) for s in days)
    sessions = _load(r42.root, unit="session")
    assert len(sessions) == r42.expected["sessions"]
    for sample in sessions:
        events = sample.data.events
        assert set(events.column("pc").to_pylist()) == {sample.meta["pc"]}
        assert events.column("type")[0].as_py() == "logon" and events.column("activity")[0].as_py() == "Logon"
        start = datetime.fromisoformat(sample.meta["start"])
        end = datetime.fromisoformat(sample.meta["end"])
        assert all(start <= d <= end for d in events.column("date").to_pylist())
    assert sessions.counts()["test/anomalous"] == 2
    night = [s for s in sessions if s.label == 1 and s.meta["start"].endswith("22:00:00")]
    assert len(night) == 1 and night[0].target.all()  # the after-hours session is all malicious


def test_sessions_opened_in_the_same_second_get_distinct_keys(tmp_path):
    built = build("cert", tmp_path)
    logon = built.root / "r4.2" / "logon.csv"
    for i, activity in enumerate(("Logon", "Logoff", "Logon", "Logoff")):
        corrupt(logon, f"{{S{i}S1-S1SS11SS-111{i}SSSS}},01/06/2010 20:00:00,ABC1000,PC-9999,{activity}")
    sessions = _load(built.root, unit="session")
    assert len(sessions) == built.expected["sessions"] + 2
    keys = [k for k in sessions.keys if "/PC-9999/" in k]
    assert keys == ["r4.2/ABC1000/PC-9999/2010-01-06T20:00:00", "r4.2/ABC1000/PC-9999/2010-01-06T20:00:00#1"]


def test_index_is_cached_and_rebuilt_when_a_source_changes(tmp_path):
    built = build("cert", tmp_path)
    ds = _load(built.root)
    events_file = ds.loader.index().folder / "events.arrow"
    first = events_file.stat().st_mtime_ns
    _load(built.root).loader.index()
    assert events_file.stat().st_mtime_ns == first
    line = "{Z9Z9-Z9ZZ99ZZ-9999ZZZZ},01/06/2010 23:30:00,ABC1000,PC-1000,http://extra.org/a.htm,late words"
    corrupt(built.root / "r4.2" / "http.csv", line)
    again = _load(built.root)
    assert again.loader.index().folder.joinpath("events.arrow").stat().st_mtime_ns != first
    assert sum(len(s.data) for s in again) == sum(len(s.data) for s in ds) + 1


def test_reading_without_memory_map_gives_the_same_samples(r42):
    mapped = list(_load(r42.root))
    read = list(_load(r42.root, memory_map=False))
    assert [s.key for s in mapped] == [s.key for s in read]
    for a, b in zip(mapped, read):
        assert a.data.events.equals(b.data.events)
        np.testing.assert_array_equal(a.target, b.target)


def test_a_failed_build_leaves_no_index(tmp_path, monkeypatch):
    built = build("cert", tmp_path)

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(_cert_index, "_record_ranges", broken)
    with pytest.raises(OSError, match="disk full"):
        _load(built.root)
    cache = built.root / "r4.2" / ".anomalykit"
    assert not any(cache.iterdir())
    monkeypatch.undo()
    assert len(_load(built.root)) == built.expected["total"]


def test_cache_dir_option(tmp_path):
    built = build("cert", tmp_path / "data")
    ds = _load(built.root, cache_dir=tmp_path / "cache")
    assert ds.loader.index().folder.parent == tmp_path / "cache"
    assert not (built.root / "r4.2" / ".anomalykit").exists()


def test_out_of_order_rows_and_small_budget_give_the_same_samples(tmp_path, monkeypatch):
    built = build("cert", tmp_path / "a")
    reference = _events_by_key(_load(built.root))
    monkeypatch.setattr(_cert_index, "_BLOCK_SIZE", 512)  # several batches per file, as in real sizes
    # a row of the first day appended at the end of http.csv lands in its user-day, not dropped
    late = "{Y8Y8-Y8YY88YY-8888YYYY},01/04/2010 08:30:00,ABC1000,PC-1000,http://late.org/x.htm,late row"
    corrupt(built.root / "r4.2" / "http.csv", late)
    ds = _load(built.root)
    assert len(ds) == len(reference)
    sample = next(s for s in ds if s.key.endswith("ABC1000/2010-01-04"))
    assert "{Y8Y8-Y8YY88YY-8888YYYY}" in sample.data.events.column("id").to_pylist()
    row = ds.keys.index(sample.key)
    assert len(ds.manifest.column("ranges")[row].as_py()) == 6  # two [batch, start, count] ranges
    dates = sample.data.events.column("date").to_pylist()
    assert dates == sorted(dates)
    # a budget smaller than a day splits days into several chunks: same samples
    other = build("cert", tmp_path / "b")
    monkeypatch.setattr(_cert_index, "PENDING_BUDGET", 1)
    split_days = _events_by_key(_load(other.root))
    assert split_days == reference


def test_truncated_row_and_bad_date(tmp_path):
    built = build("cert", tmp_path)
    http = built.root / "r4.2" / "http.csv"
    n_lines = len(http.read_text().splitlines())
    corrupt(http, "{A1B2-C3DE45FG-6789HIJK},01/06/2010 09:00:00,ABC1000")
    corrupt(http, "{A1B2-C3DE45FG-6789HIJL},13/45/2010 09:00:00,ABC1000,PC-1000,http://x.com,a b")
    with pytest.raises(MalformedFileError) as info:
        _load(built.root)
    assert info.value.path == str(http) and info.value.line == n_lines + 1
    with pytest.warns(UserWarning, match="skipped 2 item"):
        ds = anomalykit.load("cert", built.root, strict=False)
    assert len(ds) == built.expected["total"]
    assert ds.loader.skipped == [
        (f"{http}:{n_lines + 1}", "expected 6 fields, found 3 (truncated or extra fields)"),
        (f"{http}:{n_lines + 2}", "date '13/45/2010 09:00:00' does not parse as MM/DD/YYYY HH:MM:SS"),
    ]
    # the index built with strict=False is cached; strict loading still reports the bad row
    with pytest.raises(MalformedFileError, match="line"):
        _load(built.root)


def test_bad_date_alone_is_located(tmp_path):
    built = build("cert", tmp_path)
    logon = built.root / "r4.2" / "logon.csv"
    n_lines = len(logon.read_text().splitlines())
    corrupt(logon, "{Q1Q1-Q1QQ11QQ-1111QQQQ},2010-01-06 09:00,ABC1000,PC-1000,Logon")
    with pytest.raises(MalformedFileError, match="does not parse") as info:
        _load(built.root)
    assert info.value.line == n_lines + 1


def test_unknown_and_missing_columns(tmp_path):
    built = build("cert", tmp_path)
    email = built.root / "r4.2" / "email.csv"
    original = email.read_text()
    lines = original.splitlines()
    email.write_text("\n".join([lines[0] + ",mood"] + [line + ",calm" for line in lines[1:]]) + "\n")
    with pytest.raises(MalformedFileError, match="unknown column.*mood") as info:
        _load(built.root)
    assert info.value.line == 1
    ds = _load(built.root, strict=False)
    assert len(ds) == built.expected["total"]
    assert any("mood" in reason and reason.endswith("ignored") for _, reason in ds.loader.skipped)
    email.write_text(original)
    file_csv = built.root / "r4.2" / "file.csv"
    rows = [line.rsplit(",", 1)[0] for line in file_csv.read_text().splitlines()]
    file_csv.write_text("\n".join(rows) + "\n")  # drops the content column
    with pytest.raises(MalformedFileError, match="missing column.*content"):
        _load(built.root)
    ds = _load(built.root, strict=False)
    kinds = {k for s in ds for k in s.data.events.column("type").to_pylist()}
    assert "file" not in kinds
    assert any(where == f"{file_csv}:1" and reason.endswith("file skipped") for where, reason in ds.loader.skipped)


def test_wrong_release_layout_names_the_layout(tmp_path):
    built = build("cert", tmp_path, release="r5.2")
    shutil.move(str(built.root / "r5.2"), str(built.root / "r4.2"))
    with pytest.raises(MalformedFileError, match=r"this is the r5\.2 / r6\.2 layout"):
        _load(built.root)


def test_unknown_release_folder_lists_known_releases(tmp_path):
    built = build("cert", tmp_path)
    shutil.move(str(built.root / "r4.2"), str(built.root / "r3.2"))
    with pytest.raises(ConfigError, match=r"r4\.2, r5\.2, r6\.2"):
        _load(built.root)
    with pytest.raises(ConfigError, match=r"known releases"):
        _load(built.root / "r3.2")
    with pytest.raises(ConfigError, match="release must be one of"):
        _load(built.root, release="r7")


def test_several_releases_need_the_release_option(tmp_path):
    build("cert", tmp_path)
    build("cert", tmp_path, release="r5.2")
    with pytest.raises(ConfigError, match="several releases"):
        _load(tmp_path)
    assert _load(tmp_path, release="r5.2").loader.release == "r5.2"


def test_release_folder_as_root_and_missing_answers(tmp_path):
    built = build("cert", tmp_path)
    ds = _load(built.root / "r4.2")
    assert len(ds) == built.expected["total"] and ds.counts()["test/anomalous"] == 2
    shutil.rmtree(built.root / "answers")
    with pytest.warns(UserWarning, match="labels are -1"):
        unlabelled = anomalykit.load("cert", built.root)
    assert set(unlabelled.manifest.column("label").to_pylist()) == {-1}
    assert unlabelled[0].target is None
    with pytest.raises(DatasetNotFoundError, match="insiders.csv"):
        _load(built.root, answers=tmp_path / "nowhere")


def test_missing_answer_file_and_bad_answer_row(tmp_path):
    built = build("cert", tmp_path)
    answer = built.root / "answers" / "r4.2-1" / f"r4.2-1-{list(built.expected['insiders'])[0]}.csv"
    corrupt(answer, "http,{B2B2-B2BB22BB-2222BBBB}")
    with pytest.raises(MalformedFileError, match="at least") as info:
        _load(built.root)
    assert info.value.path == str(answer)
    answer.unlink()
    with pytest.raises(MalformedFileError, match="not found"):
        _load(built.root)
    ds = _load(built.root, strict=False)
    assert ds.counts()["test/anomalous"] == 1  # only the second insider's day remains labelled
    assert any("r4.2-1-" in reason for _, reason in ds.loader.skipped)


def test_train_until_and_unit_option(r42):
    ds = _load(r42.root, train_until="2010-01-05")
    assert ds.counts()["train/normal"] + ds.counts().get("train/anomalous", 0) == 4
    with pytest.raises(ConfigError, match="unit"):
        _load(r42.root, unit="month")


def test_shard_round_trip_and_numeric_view(r42, tmp_path):
    ds = _load(r42.root)
    anomalous = ds.filter(label=1)
    anomalous.write_shards(tmp_path / "shards")
    back = list(anomalykit.read_shards(tmp_path / "shards"))
    original = list(anomalous)
    assert [s.key for s in back] == [s.key for s in original]
    for a, b in zip(original, back):
        assert a.data.events.equals(b.data.events)
        np.testing.assert_array_equal(a.target, b.target)
        assert b.defect == a.defect
        assert np.asarray(a.data).shape == (len(a.data), 3)  # date, size and decoy


def test_verify_reports_counts(r42):
    report = _load(r42.root).loader.verify()
    assert report.counts["http.csv"] == r42.expected["events"]["http"]
    assert report.counts["users"] == r42.expected["users"]
    assert any("http.csv" in m for m in report.count_mismatches)  # a tiny tree is not the full release
    assert not report.missing and not report.malformed


def test_verify_reports_missing_files(tmp_path):
    built = build("cert", tmp_path)
    (built.root / "r4.2" / "psychometric.csv").unlink()
    with pytest.raises(DatasetNotFoundError, match="psychometric"):
        _load(built.root)[0]
    report = _load(built.root).loader.verify()
    assert report.missing == [str(built.root / "r4.2" / "psychometric.csv")]
    assert any("psychometric" in m for m in report.malformed)


def _same_samples(a, b) -> None:
    assert [s.key for s in a] == [s.key for s in b]
    for x, y in zip(a, b):
        assert (x.split, x.label, x.defect, x.category, x.meta) == (y.split, y.label, y.defect, y.category, y.meta)
        assert x.data.events.equals(y.data.events)
        if x.target is None:
            assert y.target is None
        else:
            assert x.target.dtype == y.target.dtype == np.uint8
            np.testing.assert_array_equal(x.target, y.target)


@pytest.mark.parametrize("unit", ["day", "week", "session"])
def test_iter_samples_gives_what_iteration_gives(r42, unit):
    ds = _load(r42.root, unit=unit)
    fast = list(ds.loader.iter_samples(ds.manifest))
    _same_samples(fast, list(ds))
    assert sum(int(s.target.sum()) for s in fast) == r42.expected["malicious_events"]
    assert all(s.meta["n_malicious"] == int(s.target.sum()) and s.meta["n_events"] == len(s.data) for s in fast)
    anomalous = ds.filter(label=1)  # a filtered manifest, in its own order
    _same_samples(list(ds.loader.iter_samples(anomalous.manifest)), list(anomalous))
    assert [s.key for s in ds.loader.iter_samples()] == ds.keys
    _same_samples(list(ds.loader.iter_samples(ds[1:4].manifest)), list(ds[1:4]))  # a sliced manifest
    assert list(ds.loader.iter_samples(ds.filter(split="train").manifest)) == []


def test_iter_samples_without_answers_and_across_batches(tmp_path, monkeypatch):
    built = build("cert", tmp_path)
    shutil.rmtree(built.root / "answers")
    monkeypatch.setattr(_cert_index, "_BLOCK_SIZE", 512)  # days split over several record batches
    monkeypatch.setattr(_cert_index, "PENDING_BUDGET", 1)
    ds = _load(built.root)
    fast = list(ds.loader.iter_samples(ds.manifest))
    _same_samples(fast, list(ds))
    assert all(s.target is None and s.label == -1 and s.meta["n_malicious"] is None for s in fast)
    assert any(len(ds.manifest.column("ranges")[i].as_py()) > 3 for i in range(len(ds)))


@pytest.mark.parametrize("release", ["r5.2", "r6.2"])
def test_file_events_on_decoys_are_marked(tmp_path, release):
    built = build("cert", tmp_path, release=release)
    ds = _load(built.root)
    assert built.expected["decoy_events"] == 1
    assert ds.loader.report["decoy_events"] == 1
    rows = [(s.meta["user"], r) for s in ds for r in s.data.events.to_pylist()]
    decoys = [(user, r) for user, r in rows if r["decoy"]]
    assert len(decoys) == 1 and decoys[0][1]["type"] == "file" and decoys[0][1]["activity"] == "File Open"
    user, row = decoys[0]
    same_name = [r for _, r in rows if r["filename"] == row["filename"]]
    assert len(same_name) == 2  # the same file name on another PC is no decoy
    assert [r["decoy"] for r in same_name if r["pc"] != row["pc"]] == [False]
    assert sum(ds.manifest.column("n_decoy").to_pylist()) == 1
    day = next(s for s in ds if s.meta["n_decoy"])
    assert day.meta["user"] == user and int(np.asarray(day.data.events.column("decoy")).sum()) == 1
    sessions = _load(built.root, unit="session")
    assert sum(s.meta["n_decoy"] for s in sessions) == 1


def test_r42_has_no_decoys_and_bad_decoy_files_are_reported(tmp_path):
    r4 = build("cert", tmp_path / "a")
    ds = _load(r4.root)
    assert not any(v for s in ds for v in s.data.events.column("decoy").to_pylist())
    assert ds.loader.report["decoy_events"] == 0
    built = build("cert", tmp_path / "b", release="r5.2")
    decoy_file = built.root / "r5.2" / "decoy_file.csv"
    n_lines = len(decoy_file.read_text().splitlines())
    corrupt(decoy_file, "C:\\only-a-name.doc")
    with pytest.raises(MalformedFileError) as info:
        _load(built.root)
    assert info.value.path == str(decoy_file) and info.value.line == n_lines + 1
    lenient = _load(built.root, strict=False)
    assert (f"{decoy_file}:{n_lines + 1}", "decoy row ['C:\\\\only-a-name.doc'] does not have the 2 fields "
            "decoy_filename,pc") in lenient.loader.skipped
    assert lenient.loader.report["decoy_events"] == 1
    decoy_file.write_text("filename,pc\nC:\\a.doc,PC-1000\n")
    with pytest.raises(MalformedFileError, match="missing column.*decoy_filename") as info:
        _load(built.root)
    assert info.value.line == 1
    decoy_file.unlink()
    with pytest.raises(DatasetNotFoundError, match="decoy_file.csv"):
        _load(built.root)
    assert any("decoy_file.csv" in where for where, _ in _load(built.root, strict=False).loader.skipped)


def test_events_outside_sessions_are_counted(tmp_path):
    built = build("cert", tmp_path)
    sessions = _load(built.root, unit="session")
    total = sum(built.expected["events"].values())
    assert sessions.loader.report["events_outside_sessions"] == 0
    assert sum(len(s.data) for s in sessions) == total
    # after the insider's last Logoff of the day: in the user-day, in no session
    late = "{Z9Z9-Z9ZZ99ZZ-9999ZZZZ},01/06/2010 23:30:00,ABC1000,PC-1000,http://extra.org/a.htm,late words"
    corrupt(built.root / "r4.2" / "http.csv", late)
    with pytest.warns(UserWarning, match="1 event.*outside every Logon/Logoff session.*1 http"):
        again = anomalykit.load("cert", built.root, unit="session")
    assert again.loader.report["events_outside_sessions"] == 1
    assert again.loader.report["events_outside_sessions_by_type"] == {"http": 1}
    assert sum(len(s.data) for s in again) + again.loader.report["events_outside_sessions"] == total + 1
    assert (again.loader.index().folder / "outside_sessions.json").is_file()  # counted once, then cached
    assert _load(built.root, unit="session").loader.report["events_outside_sessions"] == 1
    assert "events_outside_sessions" not in _load(built.root).loader.report  # only the session unit leaves events out


def test_released_pages_still_read_the_same_events(tmp_path, monkeypatch):
    built = build("cert", tmp_path)
    monkeypatch.setattr(_cert_index, "_BLOCK_SIZE", 512)  # many small record batches
    monkeypatch.setattr(_cert_index, "PENDING_BUDGET", 1)
    ds = _load(built.root)
    kept = list(ds.loader.iter_samples(ds.manifest))  # early samples are views of batches released later
    assert ds.loader._store.released_batches > 0
    _same_samples(kept, list(_load(built.root, memory_map=False)))
