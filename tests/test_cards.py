import pytest
import yaml

import anomalykit
from anomalykit.cards import card_metadata, load_card, render_card, validate_metadata
from anomalykit.errors import ConfigError
from anomalykit.shards import shard_features


@pytest.mark.parametrize("name", anomalykit.KNOWN_DATASETS)
def test_every_dataset_has_a_valid_card(name):
    card = load_card(name)
    assert card["name"] == name
    for key in ("homepage", "license", "citation", "layout", "expected_counts", "redistribution"):
        assert card.get(key), f"{name}: {key} missing"
    splits = {"train": {"files": ["data/train-00000.tar"], "num_examples": 5, "num_bytes": 10}}
    text = render_card(card, splits, shard_features(card["modality"]))
    front = yaml.safe_load(text.split("---")[1])
    assert front["license"] == card["license"]
    assert front["configs"][0]["data_files"] == [{"split": "train", "path": "data/train-*.tar"}]
    assert front["size_categories"] == ["n<1K"]
    assert {f["name"] for f in front["dataset_info"]["features"]} >= {"__key__", "sample.json"}
    if card["redistribution"] != "allowed":
        assert "extra_gated_prompt" in front


def test_mvtec_card_counts_add_up():
    counts = load_card("mvtec_ad")["expected_counts"]
    assert sum(sum(c.values()) for c in counts["categories"].values()) == counts["total"] == 5354


def test_visa_card_counts_add_up():
    counts = load_card("visa")["expected_counts"]
    per = counts["categories"].values()
    assert sum(c["train/normal"] for c in per) == 8659
    assert sum(sum(c.values()) for c in per) == 10821


def test_invalid_metadata_is_rejected():
    card = load_card("visa")
    metadata = card_metadata(card, {"test": {"files": ["data/test-00000.tar"], "num_examples": 3}},
                             shard_features("image"))
    validate_metadata(metadata)
    with pytest.raises(ConfigError, match="not a Hub licence id"):
        validate_metadata({**metadata, "license": "cc-by-4"})
    with pytest.raises(ConfigError, match="task category"):
        validate_metadata({**metadata, "task_categories": ["anomaly-detection"]})
