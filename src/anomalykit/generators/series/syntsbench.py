"""The ``syntsbench`` and ``series_inject`` generators.

``syntsbench`` builds a series from a config (patterns, noise, anomalies; see ``config.py``);
given a ``Series`` sample instead, it injects the config's anomalies into that series (they are
checked against the config's channels when the generator is made, and against the given series
when it is called). ``series_inject`` only injects, requires a source, and checks its anomalies
against each given series: use it for configs written for real data (more channels than the
generated default). Both label every changed step, record
each anomaly (kind, start, end, channel, parameters) in ``meta["anomalies"]`` and keep the
unlabelled steps of a given series unchanged.

>>> import anomalykit
>>> gen = anomalykit.get_generator("syntsbench", length=500,
...     anomalies=[{"kind": "amplitude", "length": 50, "amplitude_factor": 3}])
>>> sample = gen(seed=0)
>>> sample.data.values.shape, sample.meta["anomalies"][0]["kind"]
((500, 1), 'amplitude')
>>> clean, anomalous = gen.pair(seed=0)
>>> bool((clean.data.values != anomalous.data.values).any())
True
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ...errors import ConfigError
from ...schema import Modality, Sample, Series
from ..base import Generator, derive_seed, register_generator
from .config import InjectConfig, SeriesConfig, resolve_anomalies
from .engine import Simulation, simulate

__all__ = ["SynTSBenchGenerator", "SeriesInjectGenerator", "generate_pair"]


class _SeriesGenerator(Generator):
    modality = Modality.SERIES
    version = "1"

    def simulate(self, source: Sample | None = None, *, seed: int) -> Simulation:
        """The full run behind ``gen(source, seed=...)``: clean and anomalous values, labels, parts."""
        if source is not None and source.modality != Modality.SERIES:
            raise ConfigError(f"{self.name}: expects a series sample, got {source.modality.value} ({source.key})")
        rng = np.random.default_rng(derive_seed(seed, source.key if source is not None else ""))
        return self._run(source, rng)

    def _run(self, source: Sample | None, rng: np.random.Generator) -> Simulation:
        anomalies = self.config.anomalies  # type: ignore[attr-defined]
        if source is not None:
            shape = tuple(np.shape(source.data.values))  # type: ignore[union-attr]
            shape = shape if len(shape) == 2 else (shape[0], 1)
        else:
            shape = (self.config.length, self.config.num_channels)  # type: ignore[attr-defined]
        cache = self.__dict__.setdefault("_resolved", dict(self.config.__dict__.get("_resolved", {})))
        if shape not in cache:  # checked once per series shape, before any work on it
            try:
                cache[shape] = resolve_anomalies(anomalies, shape[0], shape[1])
            except ConfigError as exc:
                if source is None:
                    raise
                raise ConfigError(f"{self.name}: series {source.key!r} ({shape[0]} steps, {shape[1]} channels): "
                                  f"{exc}") from exc
        return simulate(self.config, rng, source, anomalies, cache[shape])  # type: ignore[arg-type]

    def generate(self, source: Sample | None, rng: np.random.Generator, seed: int) -> Sample:
        return self._sample(self._run(source, rng), source, seed, anomalous=True)

    def pair(self, source: Sample | None = None, *, seed: int) -> tuple[Sample, Sample]:
        """(clean, anomalous) twins: the same series with and without the anomalies."""
        sim = self.simulate(source, seed=seed)
        return self._sample(sim, source, seed, anomalous=False), self._sample(sim, source, seed, anomalous=True)

    def _sample(self, sim: Simulation, source: Sample | None, seed: int, *, anomalous: bool) -> Sample:
        cfg = self.config
        values = sim.values if anomalous else sim.clean
        labels = sim.labels if anomalous else np.zeros_like(sim.labels)
        meta: dict[str, Any] = {
            "anomalies": sim.records if anomalous else [],
            "channels": sim.channel_info,
            "length": int(values.shape[0]),
            "variant": "anomalous" if anomalous else "clean",
        }
        if source is not None and source.target is not None and np.ndim(source.target) == 1:
            source_labels = np.asarray(source.target) > 0  # anomalies already in the source stay labelled
            meta["source_labelled_steps"] = int(source_labels.sum())
            labels = (labels.astype(bool) | source_labels).astype(np.uint8)
        if anomalous and getattr(cfg, "include_clean", False):
            meta["clean"] = sim.clean.tolist()
        kinds = sim.kinds if anomalous else []
        split = getattr(cfg, "split", None) or (source.split if source is not None else "test")
        key = f"{self.name}/{seed}" if source is None else f"{source.key}/{self.name}-{seed}"
        return Sample(
            key=key if anomalous else f"{key}/clean",
            dataset=self.name,
            split=split,
            label=int(labels.any()),
            data=Series(values, source.data.timestamps if source is not None else None,  # type: ignore[union-attr]
                        tuple(sim.channel_names)),
            category=getattr(cfg, "name", None) or (source.category if source is not None else None),
            defect="+".join(kinds) or None,
            target=labels,
            meta=meta,
            provenance=self.provenance(seed, source, variant=meta["variant"]),
        )


@register_generator("syntsbench")
class SynTSBenchGenerator(_SeriesGenerator):
    """Programmable series (SynTSBench and GutenTAG patterns) with labelled anomalies."""

    config_class = SeriesConfig
    needs_source = False

    @classmethod
    def example(cls) -> tuple[dict[str, Any], Sample | None]:
        return {
            "length": 400,
            "channels": [{"pattern": {"kind": "sine", "frequency": 5}, "noise": {"snr_db": 20}},
                         {"pattern": {"kind": "ar"}}],
            "anomalies": [{"kind": "amplitude", "channel": 0, "length": 40},
                          {"kind": "point", "channel": 1, "count": 3}],
        }, None


@register_generator("series_inject")
class SeriesInjectGenerator(_SeriesGenerator):
    """Labelled anomalies injected into a given ``Series`` sample, scaled to that series."""

    config_class = InjectConfig
    needs_source = True

    @classmethod
    def example(cls) -> tuple[dict[str, Any], Sample | None]:
        steps = np.arange(300)
        values = np.stack([np.sin(steps / 8.0), 10 + 0.01 * steps], axis=1)
        source = Sample(key="demo/normal-0", dataset="demo", split="train", label=0,
                        data=Series(values, None, ("flow", "level")), target=np.zeros(300, np.uint8))
        return {"anomalies": [{"kind": "mean", "channel": 1, "length": 30, "offset": 2.0},
                              {"kind": "variance", "channel": 0, "length": 40}]}, source


def generate_pair(config: SeriesConfig | dict[str, Any] | str, *, seed: int,
                  source: Sample | None = None) -> tuple[Sample, Sample]:
    """(clean, anomalous) samples of a config (dict, YAML path or text, or ``SeriesConfig``)."""
    from .config import load_config

    return SynTSBenchGenerator(load_config(config)).pair(source, seed=seed)
