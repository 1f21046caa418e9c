"""Dataset loaders, one module per dataset, each registered with ``@register_dataset``."""

from .base import DATASETS, AnomalyDataset, DatasetLoader, VerifyReport, manifest_from_rows, register_dataset

__all__ = ["DATASETS", "AnomalyDataset", "DatasetLoader", "VerifyReport", "manifest_from_rows", "register_dataset"]
