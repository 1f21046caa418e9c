"""GutenTAG CSV export/import and the PNG plot."""

import numpy as np
import pytest

import anomalykit
from anomalykit import MalformedFileError
from anomalykit.generators.series.export import read_gutentag_csv, to_gutentag_csv
from anomalykit.generators.series.plot import plot_series


@pytest.fixture()
def pair():
    gen = anomalykit.get_generator("syntsbench", length=400, channels=[{"pattern": "sine"}, {"pattern": "ar"}],
                                   anomalies=[{"kind": "mean", "channel": 0, "length": 30, "offset": 2},
                                              {"kind": "missing", "channel": 1, "length": 5}])
    return gen.pair(seed=3)


def test_csv_has_gutentag_columns_and_round_trips(tmp_path, pair):
    _, sample = pair
    path = to_gutentag_csv(sample, tmp_path / "ts" / "test.csv")
    header = path.read_text().splitlines()[0]
    assert header == "timestamp,value-0,value-1,is_anomaly"
    back = read_gutentag_csv(path)
    np.testing.assert_array_equal(back.target, sample.target)
    np.testing.assert_allclose(back.data.values, sample.data.values, rtol=1e-6, equal_nan=True)
    assert np.isnan(back.data.values[:, 1]).sum() == 5
    assert back.data.timestamps.tolist() == list(range(400))


def test_malformed_csv_names_file_and_line(tmp_path):
    wrong_columns = tmp_path / "a.csv"
    wrong_columns.write_text("time,x\n0,1\n")
    with pytest.raises(MalformedFileError, match=r"a\.csv, line 1: expected columns timestamp"):
        read_gutentag_csv(wrong_columns)
    bad_label = tmp_path / "b.csv"
    bad_label.write_text("timestamp,value-0,is_anomaly\n0,1.0,0\n1,2.0,7\n")
    with pytest.raises(MalformedFileError, match=r"b\.csv, line 3: is_anomaly must be 0 or 1"):
        read_gutentag_csv(bad_label)


def test_plot_writes_a_png_with_shaded_spans(tmp_path, pair):
    clean, sample = pair
    path = plot_series(sample, tmp_path / "plot.png", clean=clean)
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000
    from PIL import Image

    pixels = np.asarray(Image.open(path).convert("RGB")).astype(int)
    # the mean anomaly's span is shaded in the default anomaly colour (#ff9896 at alpha 0.35 on white)
    shade = np.array([255, 225, 221])
    assert (np.abs(pixels - shade).sum(axis=2) < 12).sum() > 200


def test_plot_leaves_the_matplotlib_backend_alone(tmp_path, pair, monkeypatch):
    import matplotlib

    switched = []
    monkeypatch.setattr(matplotlib, "use", lambda *a, **k: switched.append(a))
    plot_series(pair[1], tmp_path / "plot.png")
    assert switched == [] and (tmp_path / "plot.png").stat().st_size > 1000


def test_a_point_anomaly_in_a_long_series_is_visible(tmp_path):
    gen = anomalykit.get_generator("syntsbench", length=5000, channels=[{"pattern": {"kind": "sine", "amplitude": 0.1}}],
                                   anomalies=[{"kind": "point", "channel": 0, "count": 1}])
    from PIL import Image

    path = plot_series(gen(seed=0), tmp_path / "plot.png")
    pixels = np.asarray(Image.open(path).convert("RGB")).astype(int)
    reddish = pixels[:, :, 0] > pixels[:, :, 1] + 30  # the point colour (#d62728), faded
    assert reddish.sum(axis=0).max() > 0.5 * pixels.shape[0]  # a column shaded over most of the height
