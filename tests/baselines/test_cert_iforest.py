import numpy as np
import pyarrow as pa
import pytest

import anomalykit
from anomalykit.baselines.base import Detector
from anomalykit.baselines.cert_iforest import FEATURES, CertIForestDetector, activity_features, split_example
from anomalykit.errors import ConfigError
from anomalykit.metrics.insider import evaluate_insider
from anomalykit.schema import EventLog, Sample, Series
from anomalykit.testing import build


@pytest.fixture(scope="module")
def cert(tmp_path_factory):
    built = build("cert", tmp_path_factory.mktemp("cert"), n_users=8, n_days=5)
    samples = list(anomalykit.load("cert", built.root, **built.options))
    train, test = split_example(samples, last_days=1)
    return train, test


def _log(rows, user="AAA0001", key="u/day"):
    columns = ("type", "date", "user", "pc", "activity", "url", "to", "cc", "bcc", "size", "attachments", "filename",
               "to_removable_media")
    table = {c: [r.get(c) for r in rows] for c in columns}
    table["date"] = pa.array(np.array([r["date"] for r in rows], dtype="datetime64[ms]"))
    table["size"] = pa.array([r.get("size") for r in rows], pa.int64())
    return Sample(key=key, dataset="cert", split="test", label=0, data=EventLog(pa.table(table)), meta={"user": user})


def test_features_of_a_hand_made_day():
    day = _log([
        {"type": "logon", "date": "2010-01-04T06:50", "pc": "PC-1", "activity": "Logon"},
        {"type": "http", "date": "2010-01-04T09:00", "pc": "PC-1", "url": "http://www.careerbuilder.com/jobs/a/b.htm"},
        {"type": "http", "date": "2010-01-04T22:10", "pc": "PC-2", "url": "http://wikileaks.org/Leak/upload.php",
         "activity": "WWW Upload"},
        {"type": "email", "date": "2010-01-04T10:00", "pc": "PC-1", "to": "a@dtaa.com;hr@other.com", "cc": "",
         "bcc": "x@gmail.com", "size": 1000, "attachments": "cv.doc(100);photo.jpg(5)"},
        {"type": "email", "date": "2010-01-04T11:00", "pc": "PC-1", "to": "b@dtaa.com", "size": 3000,
         "attachments": "2"},
        {"type": "file", "date": "2010-01-04T12:00", "pc": "PC-1", "filename": "R:\\tool.exe"},
        {"type": "device", "date": "2010-01-04T21:00", "pc": "PC-2", "activity": "Connect"},
        {"type": "logon", "date": "2010-01-04T23:00", "pc": "PC-2", "activity": "Logoff"},
    ])
    values = dict(zip(FEATURES, activity_features([day], usual_pc={"AAA0001": "PC-1"})[0]))
    expected = {
        "events": 8, "logon": 1, "logoff": 1, "connect": 1, "disconnect": 0, "http": 2, "email": 2, "file": 1,
        "after_hours_events": 4, "after_hours_logon": 1, "after_hours_connect": 1, "after_hours_http": 1,
        "after_hours_email": 0, "weekend_events": 0, "first_hour": 6 + 50 / 60, "last_hour": 23.0,
        "pcs": 2, "other_pc_events": 3, "file_to_removable": 1, "file_exe_archive": 1,
        "http_upload": 1, "http_job": 1, "http_leak": 1, "http_social": 0,
        "url_length_mean": (len("http://www.careerbuilder.com/jobs/a/b.htm")
                            + len("http://wikileaks.org/Leak/upload.php")) / 2,
        "url_depth_mean": (3 + 2) / 2,
        "email_external": 1, "email_external_recipients": 2, "email_recipients": 4, "email_bcc_recipients": 1,
        "email_attachments": 4, "email_size_mean": 2000,
    }
    for name, value in expected.items():
        assert values[name] == pytest.approx(value), name
    # without a known usual PC, the day's most used PC is the user's
    assert dict(zip(FEATURES, activity_features([day])[0]))["other_pc_events"] == 3


@pytest.mark.parametrize("model", ["iforest", "autoencoder"])
def test_insider_days_rank_first(cert, model, tmp_path):
    train, test = cert
    detector = anomalykit.get_baseline("cert_iforest", model=model, n_estimators=100).fit(train, seed=0)
    scores = detector.decision_function(test)
    labels = np.array([s.label for s in test])
    assert labels.sum() == 2 and scores[labels == 1].min() > scores[labels == 0].max()
    report = evaluate_insider(test, scores, budgets=(0.2, 0.25))
    assert report["auroc"] == 1.0 and report["insiders"] == 2
    assert report["detection_rate"][0.25] == 1.0
    # save/load: the forest is refitted from the saved features and seed, the autoencoder reloaded
    reloaded = Detector.load(detector.save(tmp_path / model))
    np.testing.assert_allclose(reloaded.decision_function(test), scores)
    again = CertIForestDetector(model=model, n_estimators=100).fit(train, seed=0)
    np.testing.assert_array_equal(again.decision_function(test), scores)
    other = CertIForestDetector(model=model, n_estimators=100).fit(train, seed=1)
    assert not np.array_equal(other.decision_function(test), scores)


def test_bad_input(cert):
    train, test = cert
    with pytest.raises(ConfigError, match="work_start"):
        CertIForestDetector(work_start=18.0, work_end=9.0)
    with pytest.raises(ConfigError, match="model"):
        CertIForestDetector(model="lof")
    series = Sample(key="s", dataset="x", split="train", label=0, data=Series(np.zeros((3, 1))))
    with pytest.raises(ConfigError, match="eventlog"):
        CertIForestDetector().fit([series])
    odd = Sample(key="odd/day", dataset="x", split="train", label=0, data=EventLog(pa.table({"x": [1, 2]})))
    with pytest.raises(ConfigError, match="odd/day"):
        CertIForestDetector().fit([odd])


def test_refitting_trains_the_autoencoder_again(cert):
    train, test = cert
    detector = CertIForestDetector(model="autoencoder").fit(train, seed=0)
    first = detector.decision_function(test)
    detector.fit(train[: len(train) // 2], seed=3)
    assert not np.allclose(detector.decision_function(test), first)
    fresh = CertIForestDetector(model="autoencoder").fit(train, seed=0)
    np.testing.assert_array_equal(fresh.decision_function(test), first)


def test_event_map_points_at_the_malicious_events(cert):
    train, test = cert
    detector = CertIForestDetector().fit(train, seed=0)
    outputs = detector.score_samples(test)
    for sample, output in zip(test, outputs):
        assert output.anomaly_map.shape == sample.target.shape
    insider_days = [(s, o) for s, o in zip(test, outputs) if s.label == 1]
    for sample, output in insider_days:
        malicious = np.asarray(sample.target) == 1
        # every malicious event scores above every ordinary event of the same day: none of their
        # kinds (a 22:00 logon, a leak-site visit, an e-mail to a recruiter) occurs in training
        assert output.anomaly_map[malicious].min() > output.anomaly_map[~malicious].max()
        np.testing.assert_allclose(output.anomaly_map[malicious], np.log(detector.signature_counts_.sum() + 1.0))
