from dataclasses import dataclass

import numpy as np
import pytest

import anomalykit
from anomalykit.baselines.base import Detector, DetectorConfig, DetectorOutput, param
from anomalykit.baselines.evaluate import evaluate
from anomalykit.errors import ConfigError
from anomalykit.schema import Image, Modality, Sample
from anomalykit.testing import build


@dataclass
class DarknessConfig(DetectorConfig):
    power: float = param(1.0, low=0.1, high=4.0)


class Darkness(Detector):
    """Pixel score = how much darker than the training mean a pixel is (the test defects are dark)."""

    name = "darkness"
    modality = Modality.IMAGE
    config_class = DarknessConfig

    def _fit(self, samples, rng, progress):
        self.mean_ = np.mean([s.data.pixels.mean(axis=2) for s in samples], axis=0)

    def _score(self, samples):
        outputs = []
        for s in samples:
            dark = np.clip(self.mean_ - s.data.pixels.mean(axis=2), 0, None) ** self.config.power
            outputs.append(DetectorOutput(s.key, float(dark.max()), dark))
        return outputs

    def state_dict(self):
        return {"mean": self.mean_}

    def load_state_dict(self, state):
        self.mean_ = state["mean"]


@pytest.fixture
def data(tmp_path):
    ds = anomalykit.load("mvtec_ad", build("mvtec_ad", tmp_path / "m", categories={"bottle": ("broken_large",)},
                                           n_train=6, n_test_good=4, n_defect=4).root)
    return ds.filter(split="train"), ds.filter(split="test")


def test_fit_evaluate_predict_save_load(data, tmp_path):
    train, test = data
    detector = Darkness(power=2.0).fit(train, seed=0)
    metrics = evaluate(detector, test)
    assert metrics["samples"] == 8 and metrics["anomalous"] == 4
    assert metrics["auroc"] == 1.0 and metrics["dense_auroc"] > 0.95
    assert 0.5 < metrics["aupro"] <= 1.0 and metrics["pixel_auroc"] == metrics["dense_auroc"]
    assert detector.threshold_ == pytest.approx(np.quantile(detector.train_scores_, 0.9))
    assert detector.predict(test).tolist() == [int(s > detector.threshold_) for s in detector.decision_function(test)]
    import anomalykit.baselines.base as base

    base.BASELINES._items["darkness"] = Darkness  # so that Detector.load can find it by name
    try:
        reloaded = Detector.load(detector.save(tmp_path / "model"))
    finally:
        del base.BASELINES._items["darkness"]
    np.testing.assert_array_equal(reloaded.decision_function(test), detector.decision_function(test))
    assert reloaded.config.power == 2.0 and reloaded.threshold_ == detector.threshold_


def test_guards(data):
    train, test = data
    with pytest.raises(ConfigError, match="call fit"):
        Darkness().decision_function(test)
    with pytest.raises(ConfigError, match="anomalous samples"):
        Darkness().fit(test)
    with pytest.raises(ConfigError, match=r"power: 9.0 is above the allowed range"):
        Darkness(power=9.0)
    from anomalykit.schema import Series

    series = Sample(key="s", dataset="x", split="train", label=0, data=Series(np.zeros((5, 1))))
    with pytest.raises(ConfigError, match="expects image samples, s is series"):
        Darkness().fit([series])


def test_train_command_on_cert_reports_detection_rates(tmp_path):
    import json

    from typer.testing import CliRunner

    from anomalykit.cli import app

    built = build("cert", tmp_path / "cert")
    manifest = anomalykit.load("cert", built.root, progress=False, **built.options).manifest.to_pylist()
    days = sorted({row["start"].date() for row in manifest})
    train_until = days[1].isoformat()  # the first day trains, the later days (with the insiders) test
    result = CliRunner().invoke(app, ["train", "cert_iforest", "--from", "cert", "--root", str(built.root),
                                      "--out", str(tmp_path / "run"), "--load-option", f"train_until={train_until}",
                                      "--load-option", "release=r4.2", "--load-option", "progress=false"])
    assert result.exit_code == 0, result.output
    metrics = json.loads((tmp_path / "run/metrics.json").read_text())
    assert metrics["train_samples"] > 0 and metrics["anomalous"] > 0
    assert "detection_rate" in metrics and "user_detection_rate" in metrics
    assert (tmp_path / "run/model/config.json").is_file()


def test_train_command_on_mvtec(tmp_path):
    import json

    from typer.testing import CliRunner

    from anomalykit.cli import app

    root = build("mvtec_ad", tmp_path / "m", categories={"bottle": ("broken_large",)}, n_train=6, n_test_good=3,
                 n_defect=3, size=48).root
    args = ["train", "padim", "--from", "mvtec_ad", "--root", str(root), "--out", str(tmp_path / "run"),
            "-o", "backbone=anomalykit:tiny-resnet", "-o", "image_size=48", "-o", "n_features=32", "-o", "num_threads=1"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    metrics = json.loads((tmp_path / "run/metrics.json").read_text())
    assert metrics["train_samples"] == 6 and metrics["samples"] == 6 and "aupro" in metrics
    reloaded = Detector.load(tmp_path / "run/model")
    test = anomalykit.load("mvtec_ad", root).filter(split="test")
    assert reloaded.decision_function(test).shape == (6,)
    wrong = CliRunner().invoke(app, ["train", "pca", "--from", "mvtec_ad", "--root", str(root), "--out", str(tmp_path / "x")])
    assert wrong.exit_code == 1 and "pca detects series anomalies" in wrong.output


def test_evaluate_refuses_misaligned_maps(data):
    train, test = data

    class Cropped(Darkness):
        def _score(self, samples):
            return [DetectorOutput(o.key, o.score, o.anomaly_map[1:]) for o in super()._score(samples)]

    detector = Cropped().fit(train, seed=0)
    with pytest.raises(ConfigError, match=r"anomaly map has shape \(31, 32\), the sample's target \(32, 32\)"):
        evaluate(detector, test)
