"""A ``torch.utils.data.Dataset`` view of an ``AnomalyDataset`` (imported only when asked for)."""

from __future__ import annotations

from typing import Any, Callable

import numpy as np
import torch
import torch.utils.data

from .schema import Image, Sample


def sample_to_tensors(sample: Sample) -> dict[str, Any]:
    """A dict of tensors and plain values; images follow anomalib's names (``image``, ``gt_mask``,
    ``gt_label``), other payloads give ``data`` (the primary array) and ``target``."""
    if isinstance(sample.data, Image):
        item = sample.as_anomalib()
    else:
        item = {"data": torch.from_numpy(np.ascontiguousarray(np.asarray(sample.data)))}
        item["target"] = None if sample.target is None else torch.from_numpy(np.asarray(sample.target))
        item["label"] = torch.tensor(sample.label)
    item.update({"key": sample.key, "category": sample.category, "defect": sample.defect, "split": sample.split})
    return item


class TorchDataset(torch.utils.data.Dataset):
    """Map-style torch dataset; ``transform`` receives and returns the item dict."""

    def __init__(self, dataset, transform: Callable[[dict[str, Any]], Any] | None = None) -> None:
        self.dataset = dataset
        self.transform = transform

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> Any:
        item = sample_to_tensors(self.dataset[index])
        return self.transform(item) if self.transform else item
