"""Exceptions raised by anomalykit. Every message names the file, line or parameter at fault."""

from __future__ import annotations


class AnomalyKitError(Exception):
    """Base class of every error anomalykit raises on purpose."""


class DatasetNotFoundError(AnomalyKitError, FileNotFoundError):
    """A dataset root, category folder or file is missing.

    The message names the expected path, the dataset's homepage and its licence.
    """


class MalformedFileError(AnomalyKitError, ValueError):
    """A file exists but cannot be parsed (corrupt image, truncated row, wrong columns)."""

    def __init__(self, path: object, reason: str, line: int | None = None) -> None:
        self.path = str(path)
        self.line = line
        self.reason = reason
        where = f"{self.path}, line {line}" if line is not None else self.path
        super().__init__(f"{where}: {reason}")


class SchemaError(AnomalyKitError, ValueError):
    """A payload or sample violates the schema (shape, dtype, target alignment)."""


class ConfigError(AnomalyKitError, ValueError):
    """A parameter or config key is invalid. The message names the key and the allowed range."""


class ShardError(AnomalyKitError):
    """A shard is missing, incomplete, or does not match its recorded checksum."""


class RegistryError(AnomalyKitError, KeyError):
    """An unknown name was asked of a registry."""

    def __str__(self) -> str:  # KeyError quotes its message; keep it readable
        return str(self.args[0]) if self.args else ""
