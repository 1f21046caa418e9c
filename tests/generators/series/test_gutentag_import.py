"""GutenTAG generation configs read as series configs."""

import numpy as np
import pytest

from anomalykit import ConfigError
from anomalykit.generators.series.gutentag import from_gutentag
from anomalykit.generators.series.syntsbench import SynTSBenchGenerator

GUTENTAG_YAML = """
timeseries:
  - name: demo
    length: 2000
    base-oscillations:
      - kind: sine
        frequency: 4.0
        amplitude: 2.0
        variance: 0.05
        trend: {kind: polynomial, polynomial: [0, 0.001]}
      - kind: cylinder-bell-funnel
        avg-pattern-length: 12
    anomalies:
      - {position: beginning, length: 40, channel: 0, kinds: [{kind: amplitude, amplitude_factor: 2.0}]}
      - {exact-position: 1500, length: 30, creeping-length: 10, channel: 0, kinds: [{kind: mean, offset: 1.0}]}
      - {position: end, length: 60, channel: 1, kinds: [{kind: trend, oscillation: {kind: polynomial, polynomial: [0, 1]}}]}
      - {position: middle, length: 1, channel: 1, kinds: [{kind: extremum, min: true, local: false, context_window: 50}]}
  - name: second
    base-oscillations: [{kind: ecg, frequency: 1.0}]
    anomalies: []
"""


def test_gutentag_yaml_becomes_series_configs(tmp_path):
    path = tmp_path / "gutentag.yaml"
    path.write_text(GUTENTAG_YAML)
    configs = from_gutentag(path)
    assert sorted(configs) == ["demo", "second"] and configs["second"].length == 10_000
    demo = configs["demo"]
    sine, cbf = demo.channels
    assert sine.pattern.params.amplitude == 2.0 and sine.noise.variance == 0.05 and sine.trend.kind == "polynomial"
    assert cbf.pattern.params.avg_pattern_length == 12
    mean = demo.anomalies[1]
    assert (mean.start, mean.length, mean.creeping_length) == (1490, 40, 10)
    assert demo.anomalies[2].params.pattern == {"kind": "polynomial", "polynomial": [0, 1]}
    sample = SynTSBenchGenerator(demo)(seed=0)
    assert sorted({r["kind"] for r in sample.meta["anomalies"]}) == ["amplitude", "extremum", "mean", "trend"]
    sim = SynTSBenchGenerator(demo).simulate(seed=0)
    noise = sim.clean[:, 0].astype(np.float64) - sim.signal[0]
    assert abs(np.std(noise) - 0.1) < 0.01  # GutenTAG: std = variance * amplitude


@pytest.mark.parametrize("series, message", [
    ({"name": "x", "base-oscillations": [{"kind": "custom-input"}]},
     "timeseries[0].base-oscillations[0].kind: custom-input is read with series_inject"),
    ({"name": "x", "base-oscillations": [{"kind": "sine"}],
      "anomalies": [{"length": 10, "kinds": [{"kind": "mean"}, {"kind": "variance"}]}]},
     "timeseries[0].anomalies[0].kinds: 2 stacked kinds"),
    ({"name": "x", "length": 100, "base-oscillations": [{"kind": "sine"}],
      "anomalies": [{"length": 200, "kinds": [{"kind": "mean"}]}]},
     "timeseries[0] (x): anomalies[0].length: 200 is above the allowed range [1, 100]"),
])
def test_unsupported_or_impossible_gutentag_entries(series, message):
    with pytest.raises(ConfigError) as info:
        from_gutentag({"timeseries": [series]})
    assert message in str(info.value)


def test_config_entries_that_would_be_lost_are_reported():
    sine = {"base-oscillations": [{"kind": "sine"}], "length": 200}
    with pytest.raises(ConfigError, match=r"timeseries\[1\]\.name: 'a' names an earlier time series"):
        from_gutentag({"timeseries": [{"name": "a", **sine}, {"name": "a", **sine}]})
    with pytest.raises(ConfigError, match=r"timeseries\[0\]\.channels: 2, but 1 base oscillation"):
        from_gutentag({"timeseries": [{"name": "a", "channels": 2, **sine}]})
    with pytest.raises(ConfigError, match=r"timeseries\[0\]: unknown key\(s\) lenght"):
        from_gutentag({"timeseries": [{"name": "a", "lenght": 300, **sine}]})
    with pytest.raises(ConfigError, match=r"timeseries\[0\]\.anomalies\[0\]: unknown key\(s\) creeping"):
        from_gutentag({"timeseries": [{"name": "a", **sine, "anomalies": [{"creeping": 5, "kinds": [{"kind": "mean"}]}]}]})
    with pytest.warns(UserWarning, match="semi-supervised training files are not written"):
        configs = from_gutentag({"timeseries": [{"name": "a", "semi-supervised": True, "channels": 1, **sine}]})
    assert list(configs) == ["a"]
