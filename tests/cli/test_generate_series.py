"""``anomalykit generate series``: shards, card, preview; the same corpus whatever the workers."""

import json
import runpy
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from anomalykit import read_shards
from anomalykit.cli import app
from anomalykit.testing import build

runner = CliRunner()

CONFIG = """
length: 300
name: tiny
channels:
  - pattern: {kind: sine, frequency: 3}
    noise: {snr_db: 20}
  - pattern: {kind: ar}
anomalies:
  - {kind: amplitude, channel: 0, length: 30}
  - {kind: point, channel: 1, count: 2}
"""


def flat(output: str) -> str:
    """The command's output with the console's line wrapping undone."""
    return " ".join(output.split())


def manifest_checksums(out):
    manifest = json.loads((out / "manifest.json").read_text())
    return [(s["name"], s["sha256"], s["num_samples"]) for s in manifest["shards"]]


def test_corpus_with_card_and_worker_independence(tmp_path):
    config = tmp_path / "series.yaml"
    config.write_text(CONFIG)
    args = ["generate", "series", "--config", str(config), "--num", "5", "--seed", "7"]
    one = runner.invoke(app, [*args, "--out", str(tmp_path / "w1"), "--workers", "1"])
    assert one.exit_code == 0, one.output
    two = runner.invoke(app, [*args, "--out", str(tmp_path / "w2"), "--workers", "2"])
    assert two.exit_code == 0, two.output
    assert manifest_checksums(tmp_path / "w1") == manifest_checksums(tmp_path / "w2")
    out = tmp_path / "w1"
    card = (out / "README.md").read_text()
    assert "syntsbench" in card and "synthetic" in card
    assert (out / "preview.png").read_bytes()[:4] == b"\x89PNG"
    assert (out / "preview.csv").read_text().splitlines()[0] == "timestamp,value-0,value-1,is_anomaly"
    samples = list(read_shards(out))
    assert len(samples) == 5 and len({s.data.values.tobytes() for s in samples}) == 5
    for sample in samples:
        assert sample.split == "test" and sample.category == "tiny" and sample.label == 1
        assert sample.data.values.shape == (300, 2) and sample.target.shape == (300,)
        kinds = sorted(r["kind"] for r in sample.meta["anomalies"])
        assert kinds == ["amplitude", "point", "point"]
        assert sample.provenance["generator"] == "syntsbench" and sample.provenance["parameters"]["length"] == 300
    # a second run with the same arguments resumes and finds everything done
    again = runner.invoke(app, [*args, "--out", str(out)])
    assert again.exit_code == 0 and manifest_checksums(out) == manifest_checksums(tmp_path / "w2")


def test_injection_into_a_dataset(tmp_path):
    built = build("swat", tmp_path / "swat")
    config = tmp_path / "inject.yaml"
    config.write_text("anomalies:\n  - {kind: level-shift, channel: 3, length: 20, offset: 2.0}\n")
    result = runner.invoke(app, ["generate", "series", "--config", str(config), "--out", str(tmp_path / "o"),
                                 "--from", "swat", "--root", str(built.root), "--per-source", "2"])
    assert result.exit_code == 0, result.output
    samples = list(read_shards(tmp_path / "o"))
    assert len(samples) == 4 and all(s.split == "train" and s.provenance["source_dataset"] == "swat" for s in samples)
    for sample in samples:
        assert sample.target.sum() == 20 and np.isfinite(sample.data.values).all()


def test_clear_errors(tmp_path):
    config = tmp_path / "bad.yaml"
    config.write_text("length: 100\nanomalies:\n  - {kind: mean, length: 10}\n  - {kind: mean, length: 500}\n")
    bad = runner.invoke(app, ["generate", "series", "--config", str(config), "--out", str(tmp_path / "o")])
    assert bad.exit_code == 1 and "anomalies[1].length: 500 is above the allowed range [1, 100]" in flat(bad.output)
    assert not (tmp_path / "o").exists()
    missing = runner.invoke(app, ["generate", "series", "--config", str(tmp_path / "nope.yaml"), "--out",
                                  str(tmp_path / "o")])
    assert missing.exit_code == 1 and "does not exist" in flat(missing.output)


def test_script_is_the_same_command(tmp_path, monkeypatch):
    config = tmp_path / "series.yaml"
    config.write_text(CONFIG)
    script = Path(__file__).resolve().parents[2] / "scripts" / "generate_series.py"
    monkeypatch.setattr(sys, "argv", [str(script), "--config", str(config), "--out", str(tmp_path / "s"),
                                      "--num", "2", "--seed", "7"])
    with pytest.raises(SystemExit) as exit_info:
        runpy.run_path(str(script), run_name="__main__")
    assert exit_info.value.code in (0, None)
    reference = runner.invoke(app, ["generate", "series", "--config", str(config), "--num", "2", "--seed", "7",
                                    "--out", str(tmp_path / "c")])
    assert reference.exit_code == 0
    assert manifest_checksums(tmp_path / "s") == manifest_checksums(tmp_path / "c")


def test_a_gutentag_config_is_read(tmp_path):
    config = tmp_path / "gutentag.yaml"
    config.write_text("""
timeseries:
  - name: a
    length: 500
    base-oscillations: [{kind: sine, frequency: 5.0, variance: 0.05}]
    anomalies: [{position: middle, length: 40, kinds: [{kind: mean, offset: 1.0}]}]
  - name: b
    length: 300
    base-oscillations: [{kind: random-walk}]
    anomalies: []
""")
    out = tmp_path / "o"
    ambiguous = runner.invoke(app, ["generate", "series", "--config", str(config), "--out", str(out)])
    assert ambiguous.exit_code == 1 and "pick one with --only (a, b)" in flat(ambiguous.output)
    result = runner.invoke(app, ["generate", "series", "--config", str(config), "--out", str(out), "--only", "a",
                                 "--num", "2"])
    assert result.exit_code == 0, result.output
    samples = list(read_shards(out))
    assert len(samples) == 2 and all(s.category == "a" and s.target.sum() == 40 for s in samples)


def test_options_that_do_not_apply_are_refused(tmp_path):
    config = tmp_path / "series.yaml"
    config.write_text(CONFIG)
    base = ["generate", "series", "--config", str(config), "--out", str(tmp_path / "o")]
    per_source = runner.invoke(app, [*base, "--per-source", "3"])
    assert per_source.exit_code == 1 and "--per-source: apply to injection into a dataset" in flat(per_source.output)
    root = runner.invoke(app, [*base, "--root", str(tmp_path)])
    assert root.exit_code == 1 and "--root" in flat(root.output)
    num = runner.invoke(app, [*base, "--from", "swat", "--root", str(tmp_path), "--num", "5"])
    assert num.exit_code == 1 and "--num: apply to generated series" in flat(num.output)
    zero = runner.invoke(app, [*base, "--num", "0"])
    assert zero.exit_code == 1 and "num_samples: 0 is below the allowed range" in flat(zero.output)
    assert not (tmp_path / "o").exists()
