"""Synthetic-anomaly generators: ``image/``, ``pointcloud/``, ``series/``, registered by name."""

from .base import GENERATORS, Generator, GeneratorConfig, derive_seed, get_generator, list_generators, param, register_generator

__all__ = ["GENERATORS", "Generator", "GeneratorConfig", "derive_seed", "get_generator", "list_generators", "param",
           "register_generator"]
