import numpy as np
import pytest

import anomalykit
from anomalykit.errors import RegistryError
from anomalykit.testing import build


@pytest.fixture
def dataset(tmp_path):
    return anomalykit.load("mvtec_ad", build("mvtec_ad", tmp_path / "m").root)


def test_list_and_unknown_name():
    assert {"mvtec_ad", "visa"} <= set(anomalykit.list_datasets())
    with pytest.raises(RegistryError, match="Did you mean 'mvtec_ad'"):
        anomalykit.load("mvtec", "/tmp")


def test_sequence_protocol(dataset):
    n = len(dataset)
    assert dataset[-1].key == dataset[n - 1].key
    with pytest.raises(IndexError):
        dataset[n]
    head = dataset[2:5]
    assert len(head) == 3 and head[0].key == dataset[2].key
    assert [s.key for s in dataset] == dataset.keys


def test_filter_without_decoding(dataset, monkeypatch):
    calls = []
    original = dataset.loader.read
    monkeypatch.setattr(dataset.loader, "read", lambda row: calls.append(row) or original(row))
    test_anomalous = dataset.filter(split="test", label=1, category=["bottle"])
    assert len(test_anomalous) == 4 and calls == []
    assert set(test_anomalous.manifest.column("category").to_pylist()) == {"bottle"}
    assert len(dataset.filter(defect="bent")) == 2
    assert len(dataset.filter(split=["train", "test"])) == len(dataset)
    assert all(s.label == 1 for s in test_anomalous)


def test_to_hf_has_typed_features(dataset):
    hf = dataset.to_hf()
    assert hf.num_rows == len(dataset)
    assert type(hf.features["image"]).__name__ == "Image"
    assert str(hf.features["label"].dtype) == "int8"
    row = hf[int(np.flatnonzero(np.array(hf["label"]) == 1)[0])]
    original = {s.key: s for s in dataset}[row["key"]]
    np.testing.assert_array_equal(np.asarray(row["image"]), original.data.pixels)
    np.testing.assert_array_equal(np.asarray(row["mask"]) > 0, original.target > 0)


def test_to_torch_with_dataloader(dataset):
    import torch.utils.data

    torch_ds = dataset.filter(category="bottle").to_torch()
    loader = torch.utils.data.DataLoader(torch_ds, batch_size=4)
    batch = next(iter(loader))
    assert tuple(batch["image"].shape) == (4, 3, 32, 32)
    assert batch["gt_mask"].dtype.is_floating_point is False
    assert len(torch_ds) == 9


def test_skips_while_listing_and_reading_are_reported_together(tmp_path):
    import warnings

    built = build("mvtec_ad", tmp_path / "m")
    (built.root / "bottle/ground_truth/contamination/000_mask.png").unlink()
    (built.root / "bottle/train/good/001.png").write_bytes(b"not a png")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds = anomalykit.load("mvtec_ad", built.root, category=["bottle", "bottle"], strict=False)
        samples = list(ds)
    assert len(samples) == 7
    assert sorted(k for k, _ in ds.skipped) == ["bottle/test/contamination/000.png", "bottle/train/good/001.png"]


def test_empty_manifest_keeps_extra_columns():
    import pyarrow as pa

    from anomalykit.loaders.base import manifest_from_rows

    table = manifest_from_rows([], extra_types={"frames": pa.int64()})
    assert table.num_rows == 0 and table.schema.field("frames").type == pa.int64()
