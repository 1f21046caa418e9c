"""The detector API shared by the reference baselines (PyOD/PyGOD-style contract on Samples).

A detector is trained on samples (normally the normal training split) and scores samples::

    detector = anomalykit.get_baseline("padim", backbone="anomalykit:tiny-resnet")
    detector.fit(dataset.filter(split="train", label=0), seed=0)
    scores = detector.decision_function(test)       # one float per sample, higher = more anomalous
    outputs = detector.score_samples(test)          # per sample: score and a dense anomaly map
    labels = detector.predict(test)                 # 0/1 from the threshold set by ``contamination``
    detector.save("model/"); detector = Detector.load("model/")

Fitted attributes end with an underscore (``threshold_``, ``train_scores_``). ``fit`` takes a
seed: the same data and seed give the same fitted state and the same scores.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from ..errors import ConfigError
from ..generators.base import GeneratorConfig, param
from ..registry import Registry
from ..schema import Modality, Sample

BASELINES: Registry[type["Detector"]] = Registry("baseline", package="anomalykit.baselines")

__all__ = [
    "BASELINES",
    "Detector",
    "DetectorConfig",
    "DetectorOutput",
    "get_baseline",
    "list_baselines",
    "param",
    "register_baseline",
]


@dataclass
class DetectorConfig(GeneratorConfig):
    """Base of detector configs: ``contamination`` sets the ``predict`` threshold."""

    contamination: float = param(0.1, low=0.0, high=0.5, doc="expected share of anomalies, for predict()")


@dataclass
class DetectorOutput:
    """What a detector says about one sample: a score, and a dense map aligned with the sample's
    target where the method localises (pixel map, per-step, per-point, per-event, per-node)."""

    key: str
    score: float
    anomaly_map: np.ndarray | None = None
    extras: dict[str, Any] = field(default_factory=dict)


class Detector:
    """Base class of reference detectors. Subclasses implement ``_fit`` and ``_score``."""

    name: ClassVar[str] = ""
    version: ClassVar[str] = "1"
    modality: ClassVar[Modality]
    config_class: ClassVar[type[DetectorConfig]] = DetectorConfig
    #: whether ``fit`` reads sample labels (supervised or weakly supervised methods)
    uses_labels: ClassVar[bool] = False
    #: whether ``fit`` takes samples of any label without reading it (e.g. a graph detector
    #: that trains on the very graph whose nodes it scores)
    trains_on_any_sample: ClassVar[bool] = False

    @classmethod
    def training_data(cls) -> str:
        if cls.uses_labels:
            return "labelled samples"
        return "any samples (labels unused)" if cls.trains_on_any_sample else "normal samples"

    def __init__(self, config: DetectorConfig | dict[str, Any] | None = None, **params: Any) -> None:
        if isinstance(config, DetectorConfig):
            self.config = config.from_dict({**dataclasses.asdict(config), **params}) if params else config
        else:
            self.config = self.config_class.from_dict(config or {}, **params)
        self.fitted_ = False

    # -- to implement ------------------------------------------------------------------------
    def _fit(self, samples: Sequence[Sample], rng: np.random.Generator, progress: bool) -> None:  # pragma: no cover
        raise NotImplementedError

    def _score(self, samples: Sequence[Sample]) -> list[DetectorOutput]:  # pragma: no cover
        raise NotImplementedError

    def state_dict(self) -> dict[str, np.ndarray]:
        """Fitted arrays to save (numpy arrays or torch tensors converted to numpy)."""
        return {}

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        """Restore what ``state_dict`` returned."""

    @classmethod
    def example(cls) -> tuple[dict[str, Any], list[Sample], list[Sample]]:
        """Small parameters, training samples and test samples (with at least one anomaly) with
        which the registry sweep fits and scores this detector quickly on CPU."""
        raise NotImplementedError  # pragma: no cover

    # -- public API ------------------------------------------------------------------------------
    def fit(self, samples: Iterable[Sample], *, seed: int = 0, progress: bool = False) -> Detector:
        """Fit on ``samples`` (an ``AnomalyDataset`` or any iterable of samples); returns self."""
        train = _as_list(samples, "fit")
        self._check_modality(train)
        if not (self.uses_labels or self.trains_on_any_sample) and any(s.label == 1 for s in train):
            raise ConfigError(
                f"{self.name}: fit() received anomalous samples; this detector trains on normal data "
                f"(use dataset.filter(split='train', label=0))"
            )
        _seed_everything(seed)
        self._fit(train, np.random.default_rng(seed), progress)
        self.seed_ = int(seed)
        self.fitted_ = True
        self.train_scores_ = np.array([o.score for o in self._score(train)], dtype=np.float64)
        self.threshold_ = float(np.quantile(self.train_scores_, 1.0 - self.config.contamination)) if len(train) else 0.0
        return self

    def score_samples(self, samples: Iterable[Sample]) -> list[DetectorOutput]:
        self._check_fitted()
        items = _as_list(samples, "score_samples")
        self._check_modality(items)
        return self._score(items)

    def decision_function(self, samples: Iterable[Sample]) -> np.ndarray:
        """One score per sample; higher means more anomalous."""
        return np.array([o.score for o in self.score_samples(samples)], dtype=np.float64)

    def predict(self, samples: Iterable[Sample]) -> np.ndarray:
        return (self.decision_function(samples) > self.threshold_).astype(np.int8)

    # -- persistence -------------------------------------------------------------------------------
    def save(self, folder: str | Path) -> Path:
        """Write ``config.json`` and ``weights.safetensors`` (no pickle) into ``folder``."""
        from safetensors.numpy import save_file

        self._check_fitted()
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        state = {k: np.ascontiguousarray(_to_numpy(v)) for k, v in self.state_dict().items()}
        state["__train_scores__"] = self.train_scores_
        save_file(state, str(folder / "weights.safetensors"))
        info = {"baseline": self.name, "version": self.version, "config": self.config.to_dict(),
                "threshold": self.threshold_, "seed": self.seed_}
        (folder / "config.json").write_text(json.dumps(info, indent=1, sort_keys=True))
        return folder

    @classmethod
    def load(cls, folder: str | Path) -> Detector:
        from safetensors.numpy import load_file

        folder = Path(folder)
        config_path = folder / "config.json"
        if not config_path.is_file():
            raise ConfigError(f"{folder}: no config.json; not a folder written by Detector.save()")
        info = json.loads(config_path.read_text())
        detector_class = BASELINES.get(info["baseline"]) if cls is Detector else cls
        if detector_class.name != info["baseline"]:
            raise ConfigError(f"{folder} holds a {info['baseline']!r} model, not {detector_class.name!r}")
        detector = detector_class(info["config"])
        state = load_file(str(folder / "weights.safetensors"))
        detector.train_scores_ = state.pop("__train_scores__")
        detector.load_state_dict(state)
        detector.threshold_ = float(info["threshold"])
        detector.seed_ = int(info["seed"])
        detector.fitted_ = True
        return detector

    # -- checks ------------------------------------------------------------------------------------
    def _check_fitted(self) -> None:
        if not self.fitted_:
            raise ConfigError(f"{self.name}: call fit() before scoring")

    def _check_modality(self, samples: Sequence[Sample]) -> None:
        for sample in samples:
            if sample.modality != self.modality:
                raise ConfigError(f"{self.name}: expects {self.modality.value} samples, "
                                  f"{sample.key} is {sample.modality.value}")

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.config})"


def _as_list(samples: Iterable[Sample], what: str) -> list[Sample]:
    items = list(samples)
    if not items:
        raise ConfigError(f"{what}() received no samples")
    return items


def _to_numpy(value: Any) -> np.ndarray:
    if hasattr(value, "detach"):
        return value.detach().cpu().numpy()
    return np.asarray(value)


def _seed_everything(seed: int) -> None:
    try:
        import torch
    except ImportError:  # torch is optional for numpy-only detectors
        return
    torch.manual_seed(seed)


def register_baseline(name: str):
    """Class decorator registering a ``Detector`` subclass under ``name``."""

    def decorator(cls: type[Detector]) -> type[Detector]:
        cls.name = name
        return BASELINES.register(name)(cls)

    return decorator


def get_baseline(name: str, config: DetectorConfig | dict[str, Any] | None = None, **params: Any) -> Detector:
    """Instantiate the reference detector registered as ``name``."""
    return BASELINES.get(name)(config, **params)


def list_baselines(modality: Modality | str | None = None) -> list[str]:
    names = BASELINES.names()
    if modality is None:
        return names
    wanted = Modality(modality)
    return [n for n in names if BASELINES.get(n).modality == wanted]
