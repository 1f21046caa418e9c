"""Config parsing: dicts, YAML, GutenTAG-style channels; errors name the key path and range."""

import pytest

import anomalykit
from anomalykit import ConfigError
from anomalykit.generators.series.config import SeriesConfig, load_config


def error_of(config: dict) -> str:
    with pytest.raises(ConfigError) as info:
        SeriesConfig.from_dict(config)
    return str(info.value)


@pytest.mark.parametrize("config, message", [
    ({"length": 100, "anomalies": [{"kind": "mean", "length": 10}, {"kind": "mean", "length": 10},
                                   {"kind": "mean", "length": 500}]},
     "anomalies[2].length: 500 is above the allowed range [1, 100]"),
    ({"length": 1000, "anomalies": [{"kind": "mean", "length": 50, "contamination": 0.7, "region": [0, 0.5]}]},
     "anomalies[0].contamination: 0.7 is above the allowed range [0, 0.5]"),
    ({"anomalies": [{"kind": "wobble"}]}, "anomalies[0].kind: unknown anomaly kind 'wobble'"),
    ({"channels": [{"pattern": {"kind": "sine", "period": -5}}]},
     "channels[0].pattern.period: -5.0 is below the allowed range [2.0, inf]"),
    ({"channels": [{"pattern": {"kind": "sin", "frequency": -0.1}}]},
     "channels[0].pattern.frequency: -0.1 is below the allowed range [0.0, 0.5]"),
    ({"channels": [{"pattern": {"kind": "spiral"}}]}, "channels[0].pattern.kind: unknown pattern 'spiral'"),
    ({"length": 1}, "length: 1 is below the allowed range [2, 1000000000]"),
    ({"lenght": 100}, "lenght: unknown key; allowed keys: length"),
    ({"anomalies": [{"kind": "mean", "amplitude_factor": 2}]},
     "anomalies[0].amplitude_factor: unknown key for a mean anomaly"),
    ({"anomalies": [{"kind": "mean", "channel": 1, "length": 5}]},
     "anomalies[0].channel: 1 is above the allowed range [0, 0]"),
    ({"length": 100, "anomalies": [{"kind": "mean", "start": 95, "length": 10}]},
     "anomalies[0].start: 95 is above the allowed range [0, 90]"),
    ({"length": 100, "anomalies": [{"kind": "mean", "length": 30, "count": 4}]},
     "anomalies[0].count: 4 is above the allowed range [0, 3]"),
    ({"length": 100, "anomalies": [{"kind": "mean", "length": 60}, {"kind": "variance", "length": 60}]},
     "anomalies[1].count: together with the earlier anomalies on channel 0 this needs 120 steps"),
    ({"anomalies": [{"kind": "pattern-shift", "length": 10, "transition_window": 8, "shift_by": 2}]},
     "anomalies[0].transition_window: 8 is above the allowed range [1, 5]"),
    ({"anomalies": [{"kind": "pattern-shift", "length": 50, "transition_window": 3, "shift_by": 5}]},
     "anomalies[0]: shift_by: 5 is outside the allowed range [-3, 3]"),
    ({"anomalies": [{"kind": "extremum", "length": 4}]}, "anomalies[0].length: a extremum anomaly is 1 step(s) long"),
    ({"channels": [{"pattern": {"kind": "lag", "source": 0}}]},
     "channels[0].pattern.source: channel 0 is not an earlier channel"),
    ({"channels": [{"pattern": "sin"}, {"pattern": {"kind": "formula", "expression": "ch0 + ch3"}}]},
     "channels[1].pattern.expression: channel 3 is not an earlier channel; allowed range [0, 0]"),
    ({"channels": [{"pattern": {"kind": "formula", "expression": "__import__('os')"}}]},
     "channels[0].pattern: expression:"),
    ({"channels": [{"pattern": {"kind": "garch", "alpha": 0.5, "beta": 0.6}}]},
     "channels[0].pattern: alpha + beta: 1.1 must be below 1"),
    ({"noise": {"snr_db": 10, "std": 1}}, "noise: std: give at most one of snr_db, std, variance"),
    ({"anomalies": [{"kind": "mean", "region": [0.8, 0.2]}]}, "anomalies[0].region"),
    ({"anomalies": [{"kind": "point", "ratio": 2}]}, "anomalies[0].ratio: 2.0 is above the allowed range [0.0, 1.0]"),
    ({"split": "holdout"}, "split: 'holdout' is not one of"),
    ({"anomalies": [{"kind": "platform", "length": 20, "creeping_length": 5}]},
     "anomalies[0].creeping_length: a platform anomaly has no creeping part (only amplitude, level-shift, mean, "
     "variance)"),
    ({"anomalies": [{"kind": "mean", "length": 20, "creeping_length": 25}]},
     "anomalies[0].creeping_length: 25 is above the allowed range [0, 20]"),
    ({"channels": [{"pattern": {"kind": "sine", "amplitude": "big"}}]},
     "channels[0].pattern.amplitude: expected a number, got 'big'"),
])
def test_errors_name_the_key_and_the_allowed_range(config, message):
    assert message in error_of(config)


def test_errors_come_before_any_work():
    # a generator with an impossible config cannot even be made
    with pytest.raises(ConfigError, match=r"anomalies\[0\]\.length"):
        anomalykit.get_generator("syntsbench", length=50, anomalies=[{"kind": "amplitude", "length": 51}])


def test_yaml_text_file_and_gutentag_style_channels(tmp_path):
    text = """
length: 800
noise: {std: 0.01}
channels:
  - {kind: sine, frequency: 4, variance: 0.05, offset: 2.0,
     trend: {kind: polynomial, polynomial: [0, 0.001]}}
  - pattern: cylinder-bell-funnel
anomalies:
  - {kind: amplitude, channel: 0, position: middle, length: 50, amplitude-factor: 2}
  - kind: platform
    channel: 1
    params: {value: 0.5}
"""
    path = tmp_path / "cfg.yaml"
    path.write_text(text)
    from_file, from_text = load_config(path), load_config(text)
    assert from_file.to_dict() == from_text.to_dict()
    channel = from_file.channels[0]
    assert channel.pattern.kind == "sine" and channel.pattern.params.frequency == 4.0
    assert channel.noise.variance == 0.05 and channel.offset == 2.0 and channel.trend.kind == "polynomial"
    assert from_file.anomalies[0].params.amplitude_factor == 2.0 and from_file.anomalies[1].params.value == 0.5
    # a round trip through the provenance dict gives the same config
    again = SeriesConfig.from_dict(from_file.to_dict())
    assert again.to_dict() == from_file.to_dict()
    gen = anomalykit.get_generator("syntsbench", from_file, length=900)
    assert gen.config.length == 900 and gen(seed=0).data.values.shape == (900, 2)


def test_yaml_syntax_error_names_the_line(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("length: 10\nchannels: [\n  - {kind: sine\n")
    with pytest.raises(ConfigError, match=r"bad\.yaml, line \d+: not valid YAML"):
        load_config(path)
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "missing.yaml")


def test_example_config_ships_and_is_valid():
    from pathlib import Path

    example = Path(__file__).resolve().parents[3] / "examples" / "series.yaml"
    cfg = load_config(example)
    assert cfg.num_channels == 3 and len(cfg.anomalies) == 7
