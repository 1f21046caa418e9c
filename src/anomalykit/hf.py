"""Hugging Face ``datasets`` views: typed features per modality and sample -> row conversion."""

from __future__ import annotations

import json
from typing import Any

from .schema import Modality, PAYLOAD_TYPES, Sample, decode_npy, to_jsonable


def dataset_features(modality: Modality | str):
    """``datasets.Features`` of ``AnomalyDataset.to_hf()``: envelope columns plus payload columns
    (``image``/``mask`` for images, ``points``/``target`` for point clouds, and so on)."""
    from datasets import Features, Value

    columns: dict[str, Any] = {
        "key": Value("string"),
        "dataset": Value("string"),
        "category": Value("string"),
        "split": Value("string"),
        "label": Value("int8"),
        "defect": Value("string"),
        "meta": Value("string"),
        "provenance": Value("string"),
    }
    for member, feature in PAYLOAD_TYPES[Modality(modality)].shard_features().items():
        columns.setdefault(member.split(".", 1)[0], feature)  # mask.png wins over mask.npy
    return Features(columns)


def sample_to_hf_row(sample: Sample) -> dict[str, Any]:
    row: dict[str, Any] = {
        "key": sample.key,
        "dataset": sample.dataset,
        "category": sample.category,
        "split": sample.split,
        "label": sample.label,
        "defect": sample.defect,
        "meta": json.dumps(to_jsonable(sample.meta), sort_keys=True),
        "provenance": json.dumps(to_jsonable(sample.provenance), sort_keys=True) if sample.provenance else None,
    }
    for member in type(sample.data).shard_features():
        row[member.split(".", 1)[0]] = None
    target = sample.target
    fields = sample.data.shard_fields(target)
    for member, data in fields.items():
        column, _, suffix = member.partition(".")
        if suffix == "png":
            row[column] = {"bytes": data, "path": None}
        elif suffix == "npy":
            array = decode_npy(data)
            row[column] = array if column != "mask" else None
        else:
            row[column] = data
    return row
