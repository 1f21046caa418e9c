"""Parsing of typed parameter dataclasses from plain dicts, with errors that name the key path.

A parameter dataclass declares its fields with :func:`anomalykit.generators.base.param`
(``low``/``high``/``choices``). :func:`build` turns ``{"frequency": 2}`` into an instance,
accepting GutenTAG-style hyphenated keys (``freq-mod``) and naming the full key path
(``channels[0].pattern.frequency``) and the allowed range on any error.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import types
import typing
from typing import Any, TypeVar

import numpy as np

from ...errors import ConfigError

T = TypeVar("T")

_NUMBER = (int, float, np.integer, np.floating)


@functools.lru_cache(maxsize=None)
def type_hints(cls: type) -> dict[str, Any]:
    """``typing.get_type_hints`` of a dataclass, evaluated once per class."""
    return typing.get_type_hints(cls)


@functools.lru_cache(maxsize=None)
def _fields(cls: type) -> dict[str, dataclasses.Field]:
    return {f.name: f for f in dataclasses.fields(cls)}


def normalise_key(key: Any) -> str:
    return str(key).strip().replace("-", "_")


def _range_text(low: Any, high: Any) -> str:
    return f"[{'-inf' if low is None else low}, {'inf' if high is None else high}]"


def _check_number(value: Any, path: str, want_int: bool, low: Any, high: Any) -> int | float:
    if isinstance(value, bool) or not isinstance(value, _NUMBER):
        raise ConfigError(f"{path}: expected {'an integer' if want_int else 'a number'}, got {value!r}")
    if want_int:
        if isinstance(value, (float, np.floating)) and not float(value).is_integer():
            raise ConfigError(f"{path}: expected an integer, got {value!r}")
        value = int(value)
    else:
        value = float(value)
        if not math.isfinite(value):
            raise ConfigError(f"{path}: expected a finite number, got {value!r}")
    if low is not None and value < low:
        raise ConfigError(f"{path}: {value!r} is below the allowed range {_range_text(low, high)}")
    if high is not None and value > high:
        raise ConfigError(f"{path}: {value!r} is above the allowed range {_range_text(low, high)}")
    return value


def coerce(value: Any, hint: Any, path: str, *, low: Any = None, high: Any = None,
           choices: tuple[Any, ...] | None = None) -> Any:
    """Check ``value`` against a type hint (int, float, bool, str, list[float], X | None)."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        options = [a for a in typing.get_args(hint) if a is not type(None)]
        if value is None:
            if type(None) in typing.get_args(hint):
                return None
            raise ConfigError(f"{path}: a value is required")
        errors = []
        for option in options:
            try:
                return coerce(value, option, path, low=low, high=high, choices=choices)
            except ConfigError as exc:
                errors.append(str(exc))
        raise ConfigError(errors[0] if len(errors) == 1 else f"{path}: {value!r} does not fit {hint}")
    if choices is not None and hint is str:
        if not isinstance(value, str) or normalise_choice(value) not in choices:
            raise ConfigError(f"{path}: {value!r} is not one of {list(choices)}")
        return normalise_choice(value)
    if hint is bool:
        if not isinstance(value, (bool, np.bool_)):
            raise ConfigError(f"{path}: expected true or false, got {value!r}")
        return bool(value)
    if hint is int or hint is float:
        return _check_number(value, path, hint is int, low, high)
    if hint is str:
        if not isinstance(value, str):
            raise ConfigError(f"{path}: expected a string, got {value!r}")
        return value
    if origin in (list, tuple):
        args = typing.get_args(hint)
        item_hint = args[0] if args else Any
        if isinstance(value, np.ndarray):
            value = value.tolist()
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{path}: expected a list, got {value!r}")
        items = [coerce(v, item_hint, f"{path}[{i}]", low=low, high=high) for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if origin is dict or hint is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{path}: expected a mapping, got {value!r}")
        return dict(value)
    return value


def normalise_choice(value: str) -> str:
    return value.strip().lower().replace("_", "-")


def build(cls: type[T], values: Any, path: str, *, skip: tuple[str, ...] = ()) -> T:
    """An instance of the parameter dataclass ``cls`` from a mapping; keys in ``skip`` are ignored."""
    if values is None:
        values = {}
    if dataclasses.is_dataclass(values) and not isinstance(values, type):
        values = dataclasses.asdict(values)
    if not isinstance(values, dict):
        raise ConfigError(f"{path}: expected a mapping, got {values!r}")
    hints = type_hints(cls)
    known = _fields(cls)
    given: dict[str, Any] = {}
    for raw_key, value in values.items():
        key = normalise_key(raw_key)
        if key in skip:
            continue
        if key not in known:
            allowed = ", ".join(sorted(k for k in known if not k.startswith("_"))) or "none"
            raise ConfigError(f"{path}.{raw_key}: unknown key; allowed keys: {allowed}")
        given[key] = value
    kwargs: dict[str, Any] = {}
    for name, value in given.items():
        meta = known[name].metadata
        kwargs[name] = coerce(value, hints[name], f"{path}.{name}", low=meta.get("low"), high=meta.get("high"),
                              choices=meta.get("choices"))
    try:
        return cls(**kwargs)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None
    except TypeError as exc:
        raise ConfigError(f"{path}: {exc}") from None


def describe(cls: type) -> dict[str, dict[str, Any]]:
    """Field name -> default, range, choices and doc of a parameter dataclass (for docs and the CLI)."""
    out: dict[str, dict[str, Any]] = {}
    for f in dataclasses.fields(cls):
        default = f.default if f.default is not dataclasses.MISSING else (
            f.default_factory() if f.default_factory is not dataclasses.MISSING else None)
        out[f.name] = {"default": default, "low": f.metadata.get("low"), "high": f.metadata.get("high"),
                       "choices": f.metadata.get("choices"), "doc": f.metadata.get("doc", "")}
    return out
