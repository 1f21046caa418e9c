"""The generator API shared by every synthetic-anomaly generator.

A generator is a pure function of (source sample or nothing, parameters, seed) returning a new
``Sample`` with ``target``, ``label`` and ``provenance``. Parameters live in a typed config
dataclass whose fields declare their allowed range, so a bad value fails before any work::

    @dataclass
    class SpikeConfig(GeneratorConfig):
        height: float = param(3.0, low=0.0)
        kind: str = param("up", choices=("up", "down"))

>>> import anomalykit
>>> gen = anomalykit.get_generator("syntsbench", length=500)          # doctest: +SKIP
>>> sample = gen(seed=7)                                              # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import hashlib
import typing
from dataclasses import MISSING, dataclass, field, fields
from typing import Any, ClassVar

import numpy as np

from ..errors import ConfigError
from ..registry import Registry
from ..schema import Modality, Sample, to_jsonable

GENERATORS: Registry[type["Generator"]] = Registry("generator", package="anomalykit.generators")


def param(default: Any = MISSING, *, low: float | None = None, high: float | None = None,
          choices: tuple[Any, ...] | None = None, doc: str = "", default_factory: Any = MISSING) -> Any:
    """A config field with a validated range (``low <= value <= high``) or a set of ``choices``."""
    metadata = {"low": low, "high": high, "choices": choices, "doc": doc}
    if default_factory is not MISSING:
        return field(default_factory=default_factory, metadata=metadata)
    return field(default=default, metadata=metadata)


@dataclass
class GeneratorConfig:
    """Base of generator configs. ``from_dict`` rejects unknown keys and out-of-range values."""

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        hints = typing.get_type_hints(type(self))
        for f in fields(self):
            value = getattr(self, f.name)
            low, high, choices = f.metadata.get("low"), f.metadata.get("high"), f.metadata.get("choices")
            hint = hints.get(f.name)
            if hint in (int, float) and not isinstance(value, (int, float, np.integer, np.floating)):
                raise ConfigError(f"{self.__class__.__name__}.{f.name}: expected a number, got {value!r}")
            if hint is int and isinstance(value, float) and not float(value).is_integer():
                raise ConfigError(f"{self.__class__.__name__}.{f.name}: expected an integer, got {value!r}")
            if choices is not None and value not in choices:
                raise ConfigError(f"{self.__class__.__name__}.{f.name}: {value!r} is not one of {list(choices)}")
            if low is not None and value is not None and value < low:
                raise ConfigError(f"{self.__class__.__name__}.{f.name}: {value!r} is below the allowed range "
                                  f"[{low}, {'inf' if high is None else high}]")
            if high is not None and value is not None and value > high:
                raise ConfigError(f"{self.__class__.__name__}.{f.name}: {value!r} is above the allowed range "
                                  f"[{'-inf' if low is None else low}, {high}]")

    @classmethod
    def from_dict(cls, values: dict[str, Any] | None = None, **overrides: Any):
        values = {**(values or {}), **overrides}
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ConfigError(f"{cls.__name__}: unknown key(s) {', '.join(unknown)}; allowed: {', '.join(sorted(known))}")
        try:
            return cls(**values)
        except TypeError as exc:
            raise ConfigError(f"{cls.__name__}: {exc}") from exc

    def to_dict(self) -> dict[str, Any]:
        return to_jsonable(dataclasses.asdict(self))


class Generator:
    """Base class: subclasses set ``name``/``version``/``modality``/``config_class`` and implement
    ``generate(source, rng, seed)``. Call the instance: ``gen(source, seed=0)``."""

    name: ClassVar[str] = ""
    version: ClassVar[str] = "1"
    modality: ClassVar[Modality]
    config_class: ClassVar[type[GeneratorConfig]] = GeneratorConfig
    needs_source: ClassVar[bool] = True

    def __init__(self, config: GeneratorConfig | dict[str, Any] | None = None, **params: Any) -> None:
        if isinstance(config, GeneratorConfig):
            if params:
                config = config.from_dict({**dataclasses.asdict(config), **params})
            self.config = config
        else:
            self.config = self.config_class.from_dict(config or {}, **params)

    def __call__(self, source: Sample | None = None, *, seed: int) -> Sample:
        if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool):
            raise ConfigError(f"{self.name}: seed must be an integer, got {seed!r}")
        if self.needs_source and source is None:
            raise ConfigError(f"{self.name}: needs a source sample (gen(source, seed=...))")
        if source is not None and source.modality != self.modality:
            raise ConfigError(f"{self.name}: expects a {self.modality.value} sample, got {source.modality.value} "
                              f"({source.key})")
        rng = np.random.default_rng(derive_seed(seed, source.key if source is not None else ""))
        return self.generate(source, rng, int(seed))

    def generate(self, source: Sample | None, rng: np.random.Generator, seed: int) -> Sample:  # pragma: no cover
        raise NotImplementedError

    @classmethod
    def example(cls) -> tuple[dict[str, Any], Sample | None]:
        """Small parameters and a small source sample (None when no source is needed) with which
        the registry sweep in the tests runs this generator quickly on CPU."""
        return {}, None

    def provenance(self, seed: int, source: Sample | None, **extra: Any) -> dict[str, Any]:
        if "_parameters" not in self.__dict__:  # one JSON-ready dict shared by this generator's samples
            self._parameters = self.config.to_dict()
        record = {
            "generator": self.name,
            "version": self.version,
            "parameters": self._parameters,
            "seed": int(seed),
            "source_key": source.key if source is not None else None,
            "source_dataset": source.dataset if source is not None else None,
        }
        record.update(to_jsonable(extra))
        return record

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.config})"


def derive_seed(seed: int, *parts: str) -> int:
    """A 64-bit seed from a user seed and strings (the source key), stable across processes."""
    digest = hashlib.sha256(("\x1f".join([str(int(seed)), *parts])).encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "little")


def register_generator(name: str):
    """Class decorator registering a ``Generator`` subclass under ``name``."""

    def decorator(cls: type[Generator]) -> type[Generator]:
        cls.name = name
        return GENERATORS.register(name)(cls)

    return decorator


def get_generator(name: str, config: GeneratorConfig | dict[str, Any] | None = None, **params: Any) -> Generator:
    """Instantiate the generator registered as ``name`` with validated parameters."""
    return GENERATORS.get(name)(config, **params)


def list_generators(modality: Modality | str | None = None) -> list[str]:
    names = GENERATORS.names()
    if modality is None:
        return names
    wanted = Modality(modality)
    return [n for n in names if GENERATORS.get(n).modality == wanted]
