import glob
import json

import numpy as np
import pytest

import anomalykit
from anomalykit.errors import ShardError
from anomalykit.schema import PointCloud, Sample
from anomalykit.shards import ShardManifest, ShardWriter, read_shards, tar_key, write_shards
from anomalykit.testing import build


@pytest.fixture
def dataset(tmp_path):
    built = build("mvtec_ad", tmp_path / "mvtec")
    return anomalykit.load("mvtec_ad", built.root)


def _same(a: Sample, b: Sample) -> None:
    assert (a.key, a.split, a.label, a.category, a.defect, a.meta) == (b.key, b.split, b.label, b.category, b.defect, b.meta)
    np.testing.assert_array_equal(np.asarray(a.data), np.asarray(b.data))
    np.testing.assert_array_equal(a.target, b.target)


def test_round_trip_gives_the_same_samples(dataset, tmp_path):
    manifest = write_shards(dataset, tmp_path / "out")
    assert manifest.complete and manifest.num_samples == len(dataset)
    assert sorted(manifest.splits()) == ["test", "train"]
    back = {s.key: s for s in read_shards(tmp_path / "out")}
    assert len(back) == len(dataset)
    for sample in dataset:
        _same(sample, back[sample.key])
    assert not list((tmp_path / "out").rglob("*.partial"))


def test_shard_size_is_bounded(dataset, tmp_path):
    manifest = write_shards(dataset, tmp_path / "out", max_bytes=20_480)
    assert len(manifest.shards) > 2
    assert all(s.num_bytes <= 20_480 for s in manifest.shards)
    assert sum(s.num_samples for s in manifest.shards) == len(dataset)


def test_same_input_same_bytes(dataset, tmp_path):
    a = write_shards(dataset, tmp_path / "a")
    b = write_shards(dataset, tmp_path / "b")
    assert [s.sha256 for s in a.shards] == [s.sha256 for s in b.shards]


def test_checksum_mismatch_is_detected(dataset, tmp_path):
    write_shards(dataset, tmp_path / "out")
    shard = sorted(glob.glob(str(tmp_path / "out/data/train-*.tar")))[0]
    data = bytearray(open(shard, "rb").read())
    data[700] ^= 0xFF
    open(shard, "wb").write(bytes(data))
    with pytest.raises(ShardError, match="SHA-256"):
        list(read_shards(tmp_path / "out"))


def test_interrupted_run_resumes(dataset, tmp_path):
    out = tmp_path / "out"

    class Boom(Exception):
        pass

    def interrupted():
        for i, sample in enumerate(dataset):
            if i == 12:
                raise Boom
            yield sample

    with pytest.raises(Boom):
        write_shards(interrupted(), out, dataset="mvtec_ad", max_bytes=15_000)
    partial = ShardManifest.load(out)
    assert not partial.complete and 0 < partial.num_samples < 12
    assert not list(out.rglob("*.partial"))
    manifest = write_shards(dataset, out, max_bytes=15_000)
    assert manifest.complete and manifest.num_samples == len(dataset)
    keys = [s.key for s in read_shards(out)]
    assert sorted(keys) == sorted(dataset.keys)


def test_other_dataset_in_same_folder_is_refused(dataset, tmp_path):
    write_shards(dataset, tmp_path / "out")
    with pytest.raises(ShardError, match="holds shards of 'mvtec_ad'"):
        ShardWriter(tmp_path / "out", dataset="visa")


def test_mixed_modalities_are_refused(tmp_path):
    writer = ShardWriter(tmp_path / "o", dataset="x")
    writer.write(Sample(key="a", dataset="x", split="train", label=0, data=PointCloud(np.zeros((3, 3)))))
    from anomalykit.schema import Image

    with pytest.raises(ShardError, match="is image"):
        writer.write(Sample(key="b", dataset="x", split="train", label=0, data=Image(np.zeros((2, 2, 3), np.uint8))))


def test_tar_keys_are_webdataset_safe_and_unique():
    keys = ["a/b.png", "a_b_png", "a.b/png", "plain-key_1"]
    safe = [tar_key(k) for k in keys]
    assert len(set(safe)) == 4
    assert all("." not in k and "/" not in k for k in safe)
    assert tar_key("plain-key_1") == "plain-key_1"


def test_hf_webdataset_reads_the_shards(dataset, tmp_path):
    import datasets

    write_shards(dataset, tmp_path / "out")
    files = {split: sorted(glob.glob(str(tmp_path / f"out/data/{split}-*.tar"))) for split in ("train", "test")}
    loaded = datasets.load_dataset("webdataset", data_files=files, cache_dir=str(tmp_path / "cache"))
    assert loaded["train"].num_rows == 6 and loaded["test"].num_rows == 10
    row = loaded["test"][0]
    envelope = row["sample.json"]
    original = {s.key: s for s in dataset}[envelope["key"]]
    np.testing.assert_array_equal(np.asarray(row["image.png"]), original.data.pixels)
    np.testing.assert_array_equal(np.asarray(row["mask.png"]) > 0, original.target > 0)
    assert json.loads(envelope["meta"])["path"] == original.meta["path"]


def test_hf_reads_the_folder_with_its_card(dataset, tmp_path):
    import datasets

    write_shards(dataset, tmp_path / "out")
    loaded = datasets.load_dataset(str(tmp_path / "out"), cache_dir=str(tmp_path / "cache"))
    assert loaded["test"].num_rows == 10
    assert loaded["train"].features["mask.png"].__class__.__name__ == "Image"


def test_card_declares_only_the_members_written(tmp_path):
    import datasets
    import yaml

    from anomalykit.schema import Image

    cloud = [Sample(key=f"c{i}", dataset="x", split="train", label=1, data=PointCloud(np.eye(3) * i),
                    target=np.array([0, 1, 0])) for i in range(3)]
    card = {"name": "x", "pretty_name": "X", "modality": "pointcloud", "homepage": "https://example.org",
            "license": "cc-by-4.0", "redistribution": "allowed", "citation": "@misc{x}"}
    manifest = write_shards(cloud, tmp_path / "pc", dataset="x", card=card)
    assert manifest.members == ["points.npy", "sample.json", "target.npy"]
    front = yaml.safe_load((tmp_path / "pc/README.md").read_text().split("---")[1])
    declared = {f["name"] for f in front["dataset_info"]["features"]}
    assert declared == {"__key__", "__url__", "sample.json", "points.npy", "target.npy"}
    loaded = datasets.load_dataset(str(tmp_path / "pc"), cache_dir=str(tmp_path / "cache"))
    np.testing.assert_array_equal(np.asarray(loaded["train"][1]["points.npy"]), np.eye(3))

    soft = [Sample(key="s", dataset="y", split="train", label=1, data=Image(np.zeros((4, 4, 3), np.uint8)),
                   target=np.full((4, 4), 0.5, np.float32))]
    manifest = write_shards(soft, tmp_path / "soft", dataset="y", card={**card, "name": "y", "modality": "image"})
    assert "mask.npy" in manifest.features() and "mask.png" not in manifest.features()


def test_a_key_written_twice_in_one_run_is_an_error(tmp_path):
    sample = Sample(key="same", dataset="x", split="train", label=0, data=PointCloud(np.zeros((2, 3))))
    with pytest.raises(ShardError, match="'same' is written twice"):
        write_shards([sample, sample], tmp_path / "o", dataset="x", card={})
