"""Dataset cards: ``cards/<dataset>.yaml`` facts rendered into a Hub dataset-card README.

>>> from anomalykit.cards import load_card
>>> load_card("visa")["license"]
'cc-by-4.0'
"""

from __future__ import annotations

import functools
import re
from pathlib import Path
from typing import Any

import yaml

from .errors import ConfigError

CARD_KEYS_REQUIRED = ("name", "pretty_name", "modality", "homepage", "license", "redistribution", "citation")
REDISTRIBUTION = ("allowed", "restricted", "forbidden")

# Licence ids the Hub accepts (the subset that anomaly datasets and their derivatives use).
HUB_LICENSES = {
    "apache-2.0", "mit", "bsd-3-clause", "bsd-2-clause", "cc0-1.0", "cc-by-4.0", "cc-by-sa-4.0",
    "cc-by-nc-4.0", "cc-by-nc-sa-4.0", "cc-by-nc-nd-4.0", "cc-by-3.0", "odc-by", "odbl", "pddl",
    "openrail", "other", "unknown",
}
HUB_TASK_CATEGORIES = {
    "image-classification", "image-segmentation", "object-detection", "video-classification",
    "time-series-forecasting", "tabular-classification", "graph-ml", "other", "image-to-image",
    "text-to-image", "unconditional-image-generation", "tabular-regression", "feature-extraction",
}
SIZE_CATEGORIES = ("n<1K", "1K<n<10K", "10K<n<100K", "100K<n<1M", "1M<n<10M", "10M<n<100M", "100M<n<1B", "n>1T")


def cards_dir() -> Path:
    """The folder of card YAMLs: packaged as ``anomalykit/_cards`` or the repository's ``cards/``."""
    packaged = Path(__file__).with_name("_cards")
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parents[2] / "cards"


@functools.lru_cache(maxsize=None)
def _load_card_cached(name: str) -> dict[str, Any]:
    path = cards_dir() / f"{name}.yaml"
    if not path.is_file():
        return {}
    with open(path, encoding="utf-8") as handle:
        card = yaml.safe_load(handle) or {}
    missing = [k for k in CARD_KEYS_REQUIRED if k not in card]
    if missing:
        raise ConfigError(f"{path}: card is missing key(s) {', '.join(missing)}")
    if card["redistribution"] not in REDISTRIBUTION:
        raise ConfigError(f"{path}: redistribution must be one of {REDISTRIBUTION}, got {card['redistribution']!r}")
    return card


def load_card(name: str) -> dict[str, Any]:
    """The card facts of a dataset (an empty dict when it has no card)."""
    import copy

    return copy.deepcopy(_load_card_cached(name))


def size_category(n: int) -> str:
    bounds = [(1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M"),
              (10_000_000, "1M<n<10M"), (100_000_000, "10M<n<100M"), (1_000_000_000, "100M<n<1B")]
    for bound, label in bounds:
        if n < bound:
            return label
    return "n>1T"


def card_metadata(
    card: dict[str, Any],
    splits: dict[str, dict[str, Any]],
    features: Any,
    config_name: str = "default",
) -> dict[str, Any]:
    """The YAML front matter of a Hub dataset card.

    ``splits`` maps split name -> ``{"files": [relative paths], "num_examples": n, "num_bytes": b}``.
    ``features`` is a ``datasets.Features`` describing the shard members.
    """
    total = sum(s["num_examples"] for s in splits.values())
    metadata: dict[str, Any] = {
        "license": card["license"],
        "pretty_name": card["pretty_name"],
        "task_categories": list(card.get("task_categories") or ["other"]),
        "tags": list(card.get("tags") or []) + ["anomalykit", "webdataset"],
        "size_categories": [size_category(total)],
        "configs": [
            {
                "config_name": config_name,
                "default": True,
                "data_files": [
                    {"split": split, "path": _glob_for(info["files"])} for split, info in sorted(splits.items())
                ],
            }
        ],
        "dataset_info": {
            "config_name": config_name,
            "features": features._to_yaml_list(),
            "splits": [
                {"name": split, "num_bytes": int(info.get("num_bytes", 0)), "num_examples": int(info["num_examples"])}
                for split, info in sorted(splits.items())
            ],
            "dataset_size": int(sum(info.get("num_bytes", 0) for info in splits.values())),
        },
    }
    if card["license"] == "other":
        metadata["license_name"] = _slug(card.get("license_name", "other"))
        metadata["license_link"] = card["homepage"]
    if card["redistribution"] != "allowed":
        metadata["extra_gated_prompt"] = card.get("redistribution_note", "Access is restricted by the dataset licence.")
        metadata["extra_gated_fields"] = {"I agree to the licence terms of the source dataset": "checkbox"}
    return metadata


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "other"


def _glob_for(files: list[str]) -> str:
    """One glob covering a split's shard files (they share a folder and a prefix)."""
    if not files:
        raise ConfigError("a split with no shard files cannot be described in a card")
    prefix = files[0].rsplit("-", 1)[0]
    if all(f.startswith(prefix + "-") for f in files):
        return f"{prefix}-*.tar"
    return files[0] if len(files) == 1 else str(Path(files[0]).parent / "*.tar")


def validate_metadata(metadata: dict[str, Any]) -> None:
    """Check the front matter offline, the way the Hub would: licence id, task categories,
    size category, configs with data_files, feature list; then parse it with huggingface_hub."""
    from huggingface_hub import DatasetCardData

    problems = []
    if metadata.get("license") not in HUB_LICENSES:
        problems.append(f"license {metadata.get('license')!r} is not a Hub licence id")
    if metadata.get("license") == "other" and not metadata.get("license_name"):
        problems.append("license 'other' needs license_name")
    for task in metadata.get("task_categories", []):
        if task not in HUB_TASK_CATEGORIES:
            problems.append(f"task category {task!r} is not a Hub task category")
    for size in metadata.get("size_categories", []):
        if size not in SIZE_CATEGORIES:
            problems.append(f"size category {size!r} is not valid")
    configs = metadata.get("configs") or []
    if not configs:
        problems.append("configs is empty")
    for config in configs:
        if "config_name" not in config:
            problems.append("a config has no config_name")
        for entry in config.get("data_files", []):
            if not {"split", "path"} <= set(entry):
                problems.append(f"data_files entry {entry} needs split and path")
    info = metadata.get("dataset_info", {})
    if not info.get("features"):
        problems.append("dataset_info.features is empty")
    if problems:
        raise ConfigError("dataset card metadata is invalid: " + "; ".join(problems))
    data = DatasetCardData(**metadata)
    roundtrip = yaml.safe_load(data.to_yaml())
    if roundtrip.get("license") != metadata["license"] or roundtrip.get("configs") != metadata["configs"]:
        raise ConfigError("dataset card metadata does not survive huggingface_hub's YAML round trip")


def render_card(
    card: dict[str, Any],
    splits: dict[str, dict[str, Any]],
    features: Any,
    *,
    extra_sections: str = "",
) -> str:
    """Render and validate a Hub dataset-card README (YAML front matter plus a body)."""
    from huggingface_hub import DatasetCard

    metadata = card_metadata(card, splits, features)
    validate_metadata(metadata)
    front = yaml.safe_dump(metadata, sort_keys=False, allow_unicode=True, width=100)
    rows = "\n".join(
        f"| {split} | {info['num_examples']} | {len(info['files'])} |" for split, info in sorted(splits.items())
    )
    members = ", ".join(f"`{name}`" for name in features)
    body = f"""# {card['pretty_name']}

{card.get('description', '').strip()}

- Homepage: {card['homepage']}
- Licence: {card.get('license_name', card['license'])}
- Redistribution: {card['redistribution']}. {card.get('redistribution_note', '').strip()}

## Files

WebDataset tar shards; each sample's members share a key. Members: {members}.
`sample.json` holds the envelope (key, dataset, category, split, label, defect, modality) and
JSON strings for `meta`, `provenance` and the payload's attributes. `manifest.json` lists every
shard with its SHA-256 checksum.

| split | samples | shards |
|---|---|---|
{rows}

Load with `datasets.load_dataset("webdataset", data_files=...)`, or with
`anomalykit.shards.read_shards(path)` to get typed samples back.

## Source layout

```
{card.get('layout', '').rstrip()}
```
{extra_sections}
## Citation

```bibtex
{card['citation'].rstrip()}
```
"""
    content = f"---\n{front}---\n\n{body}"
    DatasetCard(content)  # parses the front matter exactly as the Hub client does
    return content
