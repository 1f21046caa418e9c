"""A ``torch.utils.data.Dataset`` view of an ``AnomalyDataset`` (imported only when asked for)."""

from __future__ import annotations

from typing import Any, Callable

import numpy as np
import torch
import torch.utils.data

from .schema import Image, Sample


def sample_to_tensors(sample: Sample) -> dict[str, Any]:
    """A dict of tensors and strings; images follow anomalib's names (``image``, ``gt_mask``,
    ``gt_label``), other payloads give ``data`` (the primary array), ``label`` and ``target``
    (absent when the sample has no ground truth). Missing strings are ``""``."""
    if isinstance(sample.data, Image):
        item = sample.as_anomalib()
    else:
        item = {"data": torch.from_numpy(np.array(sample.data)), "label": torch.tensor(sample.label)}
        if sample.target is not None:
            item["target"] = torch.from_numpy(np.array(sample.target))
    item.update({"key": sample.key, "category": sample.category, "defect": sample.defect, "split": sample.split})
    # the default collate function cannot batch None: missing strings become ""
    return {k: ("" if v is None else v) for k, v in item.items()}


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
