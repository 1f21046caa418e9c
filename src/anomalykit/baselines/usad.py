"""USAD: UnSupervised Anomaly Detection on multivariate time series (Audibert et al., KDD 2020).

A shared encoder E and two decoders D1, D2 over flattened sliding windows ``w`` (min-max scaled
to [0, 1] with the training minimum and maximum per channel, so the sigmoid decoders can
reconstruct them). With ``AE1 = D1(E(.))`` and ``AE2 = D2(E(.))``, epoch ``n`` (from 1) minimises,
in two phases per batch with two Adam optimisers,

* phase 1 (E, D1): ``1/n * |w - AE1(w)|^2 + (1 - 1/n) * |w - AE2(AE1(w))|^2``
* phase 2 (E, D2): ``1/n * |w - AE2(w)|^2 - (1 - 1/n) * |w - AE2(AE1(w))|^2``

so AE1 learns to fool AE2 and AE2 learns to tell real windows from AE1's reconstructions.
``gradients="reference"`` (the default) clears gradients as the authors' code does: phase 1's
gradients on D2, and phase 2's on D1, are not cleared before the other phase's step, so they are
added to it; ``"separate"`` clears every gradient before each phase (the objective exactly as
written above).

The window score is ``alpha * |w - AE1(w)|^2 + beta * |w - AE2(AE1(w))|^2`` (mean squared over the
window's values, as the reference code computes it); a step's score is the mean over the windows
covering it (anomaly map of shape (T,)); the sample score aggregates the map. A missing value
(NaN) is replaced by the channel's training mean.

Training is seeded: weight initialisation and batch order come from the fit seed, and the
optimisation runs with torch's deterministic algorithms on ``threads`` CPU threads.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import ConfigError
from ..schema import Modality, Sample
from ._windows import (
    AGGREGATES,
    aggregate,
    check_length,
    example_series,
    series_values,
    training_arrays,
    torch_session,
    training_windows,
    window_chunks,
    windows_to_steps,
)
from .base import Detector, DetectorConfig, DetectorOutput, param, register_baseline

__all__ = ["USADConfig", "USADDetector"]


@dataclass
class USADConfig(DetectorConfig):
    window: int = param(12, low=1, high=1024, doc="steps per sliding window")
    latent: int = param(40, low=1, high=4096, doc="size of the shared code")
    epochs: int = param(30, low=1, high=10_000)
    batch_size: int = param(128, low=1, high=65_536)
    learning_rate: float = param(1e-3, low=1e-7, high=1.0)
    alpha: float = param(0.5, low=0.0, high=1.0, doc="weight of |w - AE1(w)| in the score")
    beta: float = param(0.5, low=0.0, high=1.0, doc="weight of |w - AE2(AE1(w))| in the score")
    train_stride: int = param(1, low=1, high=10_000)
    max_train_windows: int = param(50_000, low=0, high=10_000_000, doc="training windows kept at most (0 = all)")
    aggregate: str = param("max", choices=AGGREGATES)
    threads: int = param(1, low=0, high=1024, doc="torch CPU threads while fitting and scoring (0 = torch's setting)")
    gradients: str = param("reference", choices=("reference", "separate"),
                           doc="clear gradients as the authors' code does, or before each phase")

    def validate(self) -> None:
        super().validate()
        if self.alpha + self.beta <= 0:
            raise ConfigError("USADConfig: alpha + beta must be positive")


def _network(inputs: int, latent: int):
    import torch
    from torch import nn

    half, quarter = max(inputs // 2, 1), max(inputs // 4, 1)

    class USADNet(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.encoder = nn.Sequential(nn.Linear(inputs, half), nn.ReLU(), nn.Linear(half, quarter), nn.ReLU(),
                                         nn.Linear(quarter, latent), nn.ReLU())
            self.decoder1 = self._decoder()
            self.decoder2 = self._decoder()

        @staticmethod
        def _decoder() -> nn.Module:
            return nn.Sequential(nn.Linear(latent, quarter), nn.ReLU(), nn.Linear(quarter, half), nn.ReLU(),
                                 nn.Linear(half, inputs), nn.Sigmoid())

        def forward(self, w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
            z = self.encoder(w)
            w1 = self.decoder1(z)
            w2 = self.decoder2(z)
            w3 = self.decoder2(self.encoder(w1))
            return w1, w2, w3

    return USADNet()


@register_baseline("usad")
class USADDetector(Detector):
    """USAD on sliding windows (see the module docstring)."""

    modality = Modality.SERIES
    config_class = USADConfig
    config: USADConfig

    def _scale(self, sample: Sample) -> np.ndarray:
        values = series_values(sample, self.name)
        if values.shape[1] != self.minimum_.size:
            raise ConfigError(f"{self.name}: {sample.key} has {values.shape[1]} channels, the model was fitted on "
                              f"{self.minimum_.size}")
        scaled = (values - self.minimum_) / self.range_
        return np.where(np.isnan(scaled), self.fill_, scaled)

    def _fit(self, samples: Sequence[Sample], rng: np.random.Generator, progress: bool) -> None:
        import torch
        from rich.progress import track

        cfg = self.config
        arrays = training_arrays(samples, self.name)
        stacked = np.concatenate(arrays, axis=0)
        if np.isnan(stacked).all(axis=0).any():
            raise ConfigError(f"{self.name}: a channel has no training value (all NaN)")
        self.minimum_ = np.nanmin(stacked, axis=0)
        span = np.nanmax(stacked, axis=0) - self.minimum_
        self.range_ = np.where(span > 1e-12, span, 1.0)
        self.fill_ = (np.nanmean(stacked, axis=0) - self.minimum_) / self.range_
        train = training_windows([self._scale(s) for s in samples], cfg.window, cfg.train_stride,
                                 cfg.max_train_windows, rng).astype(np.float32)
        inputs = torch.from_numpy(train)
        with torch.random.fork_rng(devices=[]), torch_session(cfg.threads):
            torch.manual_seed(int(rng.integers(2**63 - 1)))
            self.net_ = _network(train.shape[1], cfg.latent)
            net = self.net_
            first = torch.optim.Adam([*net.encoder.parameters(), *net.decoder1.parameters()], lr=cfg.learning_rate)
            second = torch.optim.Adam([*net.encoder.parameters(), *net.decoder2.parameters()], lr=cfg.learning_rate)
            order = torch.Generator().manual_seed(int(rng.integers(2**63 - 1)))
            self.loss_history_ = np.zeros((cfg.epochs, 2))
            net.train()
            for epoch in track(range(cfg.epochs), description="usad: training", disable=not progress):
                n = epoch + 1
                totals = np.zeros(2)
                for batch in torch.randperm(len(inputs), generator=order).split(cfg.batch_size):
                    w = inputs[batch]
                    if cfg.gradients == "separate":
                        net.zero_grad()
                    w1, w2, w3 = net(w)
                    loss1 = torch.mean((w - w1) ** 2) / n + (1 - 1 / n) * torch.mean((w - w3) ** 2)
                    loss1.backward()
                    first.step()
                    first.zero_grad() if cfg.gradients == "reference" else net.zero_grad()
                    w1, w2, w3 = net(w)
                    loss2 = torch.mean((w - w2) ** 2) / n - (1 - 1 / n) * torch.mean((w - w3) ** 2)
                    loss2.backward()
                    second.step()
                    if cfg.gradients == "reference":
                        second.zero_grad()
                    totals += (loss1.item() * len(batch), loss2.item() * len(batch))
                self.loss_history_[epoch] = totals / len(inputs)
            net.eval()

    def window_scores(self, sample: Sample) -> np.ndarray:
        """alpha * |w - AE1(w)|^2 + beta * |w - AE2(AE1(w))|^2 for each stride-1 window."""
        import torch

        values = self._scale(sample)
        check_length(sample, values.shape[0], self.config.window, self.name)
        out = []
        with torch.no_grad(), torch_session(self.config.threads):
            for block in window_chunks(values, self.config.window, 4096):
                batch = torch.from_numpy(block.astype(np.float32))
                w1, _, w3 = self.net_(batch)
                out.append(self.config.alpha * torch.mean((batch - w1) ** 2, dim=1)
                           + self.config.beta * torch.mean((batch - w3) ** 2, dim=1))
        return torch.cat(out).numpy().astype(np.float64)

    def _score(self, samples: Sequence[Sample]) -> list[DetectorOutput]:
        outputs = []
        for sample in samples:
            steps = windows_to_steps(self.window_scores(sample), len(sample.data), self.config.window)
            outputs.append(DetectorOutput(sample.key, aggregate(steps, self.config.aggregate), steps))
        return outputs

    def state_dict(self) -> dict[str, np.ndarray]:
        state = {f"net.{k}": v.detach().cpu().numpy() for k, v in self.net_.state_dict().items()}
        state.update(minimum=self.minimum_, range=self.range_, fill=self.fill_)
        return state

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        import torch

        self.minimum_, self.range_, self.fill_ = state["minimum"], state["range"], state["fill"]
        inputs = int(state["net.encoder.0.weight"].shape[1])
        self.net_ = _network(inputs, self.config.latent)
        weights = {k[4:]: torch.from_numpy(np.array(v)) for k, v in state.items() if k.startswith("net.")}
        self.net_.load_state_dict(weights)
        self.net_.eval()

    @classmethod
    def example(cls) -> tuple[dict[str, Any], list[Sample], list[Sample]]:
        train, test = example_series(seed=1)
        return {"window": 5, "latent": 8, "epochs": 8, "batch_size": 64}, train, test
