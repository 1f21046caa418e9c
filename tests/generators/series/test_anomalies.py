"""Every anomaly kind: generated, labelled exactly on the changed steps, recorded, reproducible;
injection into a given series keeps the unlabelled steps unchanged."""

import json

import numpy as np
import pytest

import anomalykit
from anomalykit.generators.series.anomalies import ANOMALIES
from anomalykit.schema import Sample, Series
from anomalykit.testing import build

KIND_PARAMS = {
    "amplitude": {"amplitude_factor": 3.0},
    "extremum": {"local": True},
    "frequency": {"frequency_factor": 2.0},
    "mean": {"offset": 1.5, "creeping_length": 10},
    "mode-correlation": {},
    "pattern": {"sinusoid_k": 20.0},
    "pattern-shift": {"shift_by": 6, "transition_window": 10},
    "platform": {"value": 0.5},
    "trend": {"magnitude": 2.0},
    "variance": {"variance": 0.6},
    "point": {"count": 5},
    "pulse": {"count": 2},
    "level-shift": {"offset": -2.0},
    "missing": {"length": 12, "count": 2},
}
LENGTHS = {"extremum": None, "point": None, "pulse": None, "level-shift": None, "missing": None}


def changed_steps(clean: np.ndarray, anomalous: np.ndarray) -> np.ndarray:
    same = (clean == anomalous) | (np.isnan(clean) & np.isnan(anomalous))
    return ~same


def check_exact_labels(clean: Sample, anomalous: Sample) -> None:
    """Every changed step is labelled; labels are exactly the union of the recorded windows, and
    each window is tight (its first and last step changed) and changes only its own channel."""
    changed = changed_steps(clean.data.values, anomalous.data.values)
    labels = anomalous.target.astype(bool)
    assert not (changed.any(axis=1) & ~labels).any(), "a changed step is not labelled"
    union = np.zeros_like(labels)
    per_channel = np.zeros_like(changed)
    for record in anomalous.meta["anomalies"]:
        assert record["changed_steps"] > 0
        start, end, c = record["start"], record["end"], record["channel"]
        assert changed[start, c] and changed[end - 1, c], record
        union[start:end] = True
        per_channel[start:end, c] = True
    np.testing.assert_array_equal(union, labels)
    assert not (changed & ~per_channel).any(), "a step changed outside its anomaly's channel window"
    assert anomalous.label == int(labels.any())


def test_every_kind_is_covered():
    assert set(KIND_PARAMS) == set(ANOMALIES)


@pytest.mark.parametrize("kind", sorted(ANOMALIES))
@pytest.mark.parametrize("pattern", ["sine", "ar", "ecg"])
def test_every_kind_is_generated_and_labelled_exactly(kind, pattern):
    anomaly = {"kind": kind, "channel": 1, **KIND_PARAMS[kind]}
    if LENGTHS.get(kind, 0) == 0:
        anomaly["length"] = 60
    gen = anomalykit.get_generator("syntsbench", length=900, noise={"std": 0.05}, channels=[
        {"pattern": {"kind": "sin"}},
        {"pattern": {"kind": pattern}},
    ], anomalies=[anomaly])
    clean, anomalous = gen.pair(seed=11)
    assert anomalous.defect == kind
    assert not clean.target.any() and clean.label == 0
    records = anomalous.meta["anomalies"]
    assert records and all(r["kind"] == kind and r["channel"] == 1 for r in records)
    check_exact_labels(clean, anomalous)
    if kind == "missing":
        assert np.isnan(anomalous.data.values[:, 1]).sum() == 24
    if kind in ("extremum", "point"):
        assert all(r["length"] == 1 for r in records)
    if kind == "pulse":
        assert len(records) == 2 and all(10 <= r["length"] <= 29 for r in records)
    if kind == "level-shift":
        assert records[0]["end"] == 900  # no length: the shift lasts to the end
    # the clean twin is the same series without the anomaly
    gen_clean = anomalykit.get_generator("syntsbench", gen.config, anomalies=[])
    assert gen_clean(seed=11).data.values.tobytes() == clean.data.values.tobytes()


def test_same_seed_same_bytes_other_seed_other_series():
    gen = anomalykit.get_generator("syntsbench", length=500, channels=[{"pattern": {"kind": "cylinder-bell-funnel"}}],
                                   anomalies=[{"kind": "pattern", "length": 50}, {"kind": "point", "ratio": 0.01}])
    a, b, c = gen(seed=4), gen(seed=4), gen(seed=5)
    assert a.to_shard_fields() == b.to_shard_fields()
    assert a.data.values.tobytes() != c.data.values.tobytes()
    assert json.dumps(a.meta, sort_keys=True) == json.dumps(b.meta, sort_keys=True)
    assert a.provenance["seed"] == 4 and a.provenance["generator"] == "syntsbench"


def test_point_ratio_region_and_amplitude_follow_syntsbench():
    gen = anomalykit.get_generator("syntsbench", length=5000, channels=[{"pattern": {"kind": "sin"}}],
                                   noise={"snr_db": 20},
                                   anomalies=[{"kind": "point", "ratio": 0.01, "region": [0.0, 0.8]}])
    sample = gen(seed=0)
    records = sample.meta["anomalies"]
    assert len(records) == int(0.8 * 5000 * 0.01)
    assert max(r["start"] for r in records) < 4000 and not sample.target[4000:].any()
    value_range = 2 * sample.meta["channels"][0]["scale"]
    for r in records:  # range < 4: factor 2, so |A| in [2, 4] x range
        assert 2 * value_range - 1e-9 <= abs(r["parameters"]["amplitude"]) <= 4 * value_range + 1e-9


def test_positions_contamination_and_period_snapping():
    gen = anomalykit.get_generator("syntsbench", length=3000, channels=[{"pattern": {"kind": "sine", "frequency": 5}}],
                                   anomalies=[{"kind": "mean", "position": "beginning", "length": 50},
                                              {"kind": "frequency", "position": "end", "length": 100},
                                              {"kind": "variance", "contamination": 0.1, "length": 30},
                                              {"kind": "platform", "start": 1500, "length": 40}])
    sample = gen(seed=2)
    records = sample.meta["anomalies"]
    by_kind = {}
    for r in records:
        by_kind.setdefault(r["kind"], []).append(r)
    assert by_kind["mean"][0]["placed_start"] < 1000
    assert by_kind["frequency"][0]["placed_start"] >= 2000
    period = 100 / 5 * 2999 / 3000
    start = by_kind["frequency"][0]["placed_start"]
    assert abs(start - round(start / period) * period) < 0.5  # starts on a period boundary
    assert len(by_kind["variance"]) == 10  # 0.1 * 3000 / 30
    assert by_kind["platform"][0]["placed_start"] == 1500 and by_kind["platform"][0]["position"] == "exact"
    spans = sorted((r["placed_start"], r["placed_end"]) for r in records)
    assert all(a[1] <= b[0] for a, b in zip(spans, spans[1:])), "anomalies on a channel overlap"


def test_trend_persist_labels_to_the_end_and_creeping_ramps_in():
    gen = anomalykit.get_generator("syntsbench", length=600, channels=[{"pattern": {"kind": "sin"}}],
                                   anomalies=[{"kind": "trend", "start": 100, "length": 50, "persist": True},
                                              {"kind": "trend", "start": 20, "length": 20,
                                               "pattern": {"kind": "quadratic-function"}}])
    clean, anomalous = gen.pair(seed=0)
    check_exact_labels(clean, anomalous)
    persist = next(r for r in anomalous.meta["anomalies"] if r["parameters"]["persist"])
    assert persist["end"] == 600 and anomalous.target[100:].all()
    creep = anomalykit.get_generator("syntsbench", length=300, anomalies=[
        {"kind": "mean", "start": 100, "length": 50, "offset": 2.0, "creeping_length": 10}])
    c, a = creep.pair(seed=0)
    delta = a.data.values[:, 0].astype(np.float64) - c.data.values[:, 0]
    scale = a.meta["channels"][0]["scale"]
    np.testing.assert_allclose(delta[100:110], 2.0 * scale * np.arange(1, 11) / 10, rtol=1e-4)
    np.testing.assert_allclose(delta[110:150], 2.0 * scale, rtol=1e-4)


def test_multichannel_anomaly_and_per_channel_scaling():
    gen = anomalykit.get_generator("syntsbench", length=400, channels=[
        {"pattern": {"kind": "sin", "amplitude": 1.0}}, {"pattern": {"kind": "sin", "amplitude": 100.0}}],
        anomalies=[{"kind": "mean", "channel": [0, 1], "length": 30, "offset": 1.0}])
    clean, anomalous = gen.pair(seed=0)
    check_exact_labels(clean, anomalous)
    r0, r1 = anomalous.meta["anomalies"]
    assert (r0["placed_start"], r0["channel"], r1["channel"]) == (r1["placed_start"], 0, 1)
    assert np.isclose(r1["parameters"]["absolute_offset"] / r0["parameters"]["absolute_offset"], 100.0, rtol=1e-3)


def series_source(values, key="demo/0", target=None):
    return Sample(key=key, dataset="demo", split="train", label=0, data=Series(values), target=target)


@pytest.fixture(scope="module")
def swat_normal(tmp_path_factory):
    built = build("swat", tmp_path_factory.mktemp("data") / "swat")
    return anomalykit.load("swat", built.root).filter(label=0)[0]


@pytest.mark.parametrize("kind", sorted(ANOMALIES))
def test_injection_keeps_unlabelled_steps_unchanged(kind, swat_normal):
    normal = swat_normal
    anomaly = {"kind": kind, "channel": [0, 1], **KIND_PARAMS[kind]}
    if LENGTHS.get(kind, 0) == 0:
        anomaly["length"] = 25
    if kind in ("pulse",):
        anomaly["width_low"], anomaly["width_high"], anomaly["min_spacing"] = 5, 10, 20
    gen = anomalykit.get_generator("series_inject", anomalies=[anomaly])
    out = gen(normal, seed=9)
    assert out.provenance["source_key"] == normal.key and out.provenance["source_dataset"] == "swat"
    assert out.data.values.shape == normal.data.values.shape
    assert out.data.channels == normal.data.channels
    np.testing.assert_array_equal(out.data.timestamps, normal.data.timestamps)
    unlabelled = out.target == 0
    source = normal.data.values
    np.testing.assert_array_equal(out.data.values[unlabelled], source[unlabelled])
    np.testing.assert_array_equal(out.data.values[:, 2:], source[:, 2:])  # other channels untouched
    check_exact_labels(normal, out)
    assert out.label == 1 and out.defect == kind
    assert gen(normal, seed=9).to_shard_fields() == out.to_shard_fields()


def test_injection_scales_to_the_series_and_keeps_source_labels():
    steps = np.arange(1000)
    values = np.stack([1000 + 50 * np.sin(steps / 20), 0.01 * np.cos(steps / 7)], axis=1)
    prior = np.zeros(1000, np.uint8)
    prior[900:910] = 1
    source = series_source(values, target=prior)
    syn = anomalykit.get_generator("series_inject", anomalies=[
        {"kind": "mean", "channel": 0, "start": 100, "length": 20, "offset": 1.0},
        {"kind": "mean", "channel": 1, "start": 300, "length": 20, "offset": 1.0}])
    out = syn(source, seed=0)
    delta = out.data.values.astype(np.float64) - source.data.values
    assert np.isclose(delta[110, 0], 50, rtol=1e-3) and np.isclose(delta[310, 1], 0.01, rtol=1e-3)
    assert out.target[900:910].all() and out.meta["source_labelled_steps"] == 10
    assert out.data.values.shape == (1000, 2)


def test_syntsbench_injects_its_anomalies_into_a_given_series():
    source = series_source(np.linspace(0, 5, 300)[:, None], key="ramp")
    gen = anomalykit.get_generator("syntsbench", anomalies=[{"kind": "platform", "length": 30, "value": 0.0}])
    out = gen(source, seed=1)
    assert out.key == "ramp/syntsbench-1" and out.data.values.shape == (300, 1)
    record = out.meta["anomalies"][0]
    np.testing.assert_allclose(out.data.values[record["start"]:record["end"], 0], 2.5, rtol=1e-6)
    check_exact_labels(source, out)


def test_inject_errors_name_the_key_and_the_series():
    source = series_source(np.zeros((50, 2)))
    too_long = anomalykit.get_generator("series_inject", anomalies=[{"kind": "mean", "length": 80}])
    with pytest.raises(anomalykit.ConfigError, match=r"series 'demo/0' \(50 steps, 2 channels\): "
                                                     r"anomalies\[0\]\.length: 80 is above the allowed range \[1, 50\]"):
        too_long(source, seed=0)
    bad_channel = anomalykit.get_generator("series_inject", anomalies=[{"kind": "mean", "length": 5, "channel": 2}])
    with pytest.raises(anomalykit.ConfigError, match=r"series 'demo/0' .*anomalies\[0\]\.channel: 2 is above the "
                                                     r"allowed range \[0, 1\]"):
        bad_channel(source, seed=0)
    with pytest.raises(anomalykit.ConfigError, match="needs a source"):
        too_long(seed=0)


def test_an_anomaly_that_changes_nothing_is_reported_not_labelled():
    gen = anomalykit.get_generator("syntsbench", length=1000, channels=[{"pattern": "random-mode-jump"}],
                                   anomalies=[{"kind": "pattern", "length": 100}])
    with pytest.warns(UserWarning, match=r"anomalies\[0\]: the pattern anomaly .* changed no value"):
        sample = gen(seed=0)
    assert sample.label == 0 and not sample.target.any()
    assert sample.meta["anomalies"][0]["changed_steps"] == 0 and sample.meta["anomalies"][0]["start"] is None


def test_anomalies_to_the_end_leave_room_for_the_others_and_clean_copy_in_meta():
    gen = anomalykit.get_generator("syntsbench", length=1000, include_clean=True, anomalies=[
        {"kind": "level-shift", "position": "middle", "offset": 1.0},
        {"kind": "trend", "channel": 0, "length": 50, "persist": False},
        {"kind": "mean", "length": 100, "count": 3}])
    clean, sample = gen.pair(seed=4)
    check_exact_labels(clean, sample)
    shift = next(r for r in sample.meta["anomalies"] if r["kind"] == "level-shift")
    others = [r for r in sample.meta["anomalies"] if r["kind"] != "level-shift"]
    assert len(others) == 4 and all(not r["placed_start"] <= shift["placed_start"] < r["placed_end"] for r in others)
    assert 333 <= shift["placed_start"] < 667 and shift["end"] == 1000
    assert sample.target[shift["placed_start"]:].all()
    np.testing.assert_array_equal(np.asarray(sample.meta["clean"], np.float32), clean.data.values)


def test_gutentag_kind_semantics():
    sine = {"pattern": {"kind": "sine", "frequency": 5.0, "amplitude": 2.0}}
    gen = anomalykit.get_generator("syntsbench", length=2000, channels=[
        sine,
        {**sine, "trend": {"kind": "linear-trend", "slope": 0.01, "intercept": 0.0}, "noise": {"std": 0.01}},
        {**sine, "noise": {"std": 0.01}},
        sine,
    ], anomalies=[
        {"kind": "amplitude", "channel": 0, "start": 400, "length": 200, "amplitude_factor": 3.0},
        {"kind": "platform", "channel": 1, "start": 1000, "length": 100, "value": 0.5},
        {"kind": "variance", "channel": 2, "start": 500, "length": 400, "variance": 0.5},
        {"kind": "frequency", "channel": 3, "start": 800, "length": 200, "frequency_factor": 2.0},
    ])
    sim = gen.simulate(seed=0)
    values, clean = sim.values.astype(np.float64), sim.clean.astype(np.float64)
    # amplitude: the plateau (between the 20 % ramps) is exactly factor x the clean sine
    np.testing.assert_allclose(values[440:560, 0], 3.0 * clean[440:560, 0], rtol=1e-5, atol=1e-6)
    # platform: a constant level at center + value * scale, the trend switched off, the noise kept
    info = sim.channel_info[1]
    level = info["center"] + 0.5 * info["scale"]
    np.testing.assert_allclose(values[1000:1100, 1] - sim.parts[1].noise[1000:1100], level, rtol=1e-5)
    # variance: the noise inside has std variance * scale
    inside = values[500:900, 2] - sim.latent[2][500:900]
    assert abs(np.std(inside) - 0.5 * sim.channel_info[2]["scale"]) < 0.1
    # frequency: the sine runs twice as fast from the anomaly's start
    step = (2000 / 100) / 1999
    t = 800 + 2.0 * np.arange(200)
    np.testing.assert_allclose(values[800:1000, 3], 2.0 * np.sin(2 * np.pi * 5.0 * t * step), atol=1e-5)
