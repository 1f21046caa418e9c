"""Every registered loader runs on its testing builder, and every registered generator on its
example, against the schema contract. A new module is tested the moment it registers."""

import numpy as np
import pytest

import anomalykit
from anomalykit.generators.base import GENERATORS
from anomalykit.loaders.base import MANIFEST_COLUMNS
from anomalykit.schema import Sample
from anomalykit.shards import read_shards, write_shards
from anomalykit.testing import build, list_builders


def _assert_same(a: Sample, b: Sample) -> None:
    assert (a.key, a.dataset, a.split, a.label, a.category, a.defect) == (b.key, b.dataset, b.split, b.label, b.category, b.defect)
    if a.modality.value == "eventlog":
        assert a.data.events.equals(b.data.events)
    else:
        np.testing.assert_array_equal(np.asarray(a.data), np.asarray(b.data))
    if a.target is None:
        assert b.target is None
    else:
        np.testing.assert_array_equal(a.target, b.target)


def test_the_eight_datasets_are_registered():
    assert set(anomalykit.KNOWN_DATASETS) <= set(anomalykit.list_datasets())


@pytest.mark.parametrize("name", anomalykit.list_datasets())
def test_loader_contract(name, tmp_path):
    assert name in list_builders(), f"{name} has no testing builder in anomalykit.testing"
    built = build(name, tmp_path / name)
    dataset = anomalykit.load(name, built.root, **built.options)
    assert len(dataset) == built.expected["total"] > 0
    assert set(MANIFEST_COLUMNS) <= set(dataset.manifest.column_names)
    keys = dataset.keys
    assert len(set(keys)) == len(keys), "keys must be unique"
    splits = set(dataset.manifest.column("split").to_pylist())
    assert splits <= {"train", "val", "test"}
    assert sum(len(dataset.filter(split=s)) for s in splits) == len(dataset)
    manifest_rows = dataset.manifest.to_pylist()
    samples = list(dataset)
    assert len(samples) == len(dataset)
    for row, sample in zip(manifest_rows, samples):
        assert isinstance(sample, Sample)
        assert sample.dataset == name and sample.modality == dataset.modality
        assert (sample.key, sample.split, sample.label) == (row["key"], row["split"], row["label"])
        assert sample.label in (-1, 0, 1)
        np.asarray(sample.data)
        if sample.label == 0 and sample.target is not None:
            assert not np.any(np.asarray(sample.target) > 0), f"{sample.key}: normal sample with anomalous target"
        if sample.label == 1 and sample.target is not None and sample.target.size:
            assert np.any(np.asarray(sample.target) > 0), f"{sample.key}: anomalous sample whose target marks nothing"
    if "anomalous" in built.expected:
        assert sum(s.label == 1 for s in samples) == built.expected["anomalous"]
    subset = list({s.key: s for s in samples[:2] + [s for s in samples if s.label == 1][:1]}.values())
    write_shards(subset, tmp_path / "shards", dataset=name)
    back = {s.key: s for s in read_shards(tmp_path / "shards")}
    for sample in subset:
        _assert_same(sample, back[sample.key])
    # the Hub reads the folder through its card: declared features must match the members
    import datasets

    hub = datasets.load_dataset(str(tmp_path / "shards"), cache_dir=str(tmp_path / "hf-cache"))
    assert sum(part.num_rows for part in hub.values()) == len(subset)
    assert {row["sample.json"]["key"] for part in hub.values() for row in part} == {s.key for s in subset}


@pytest.mark.parametrize("name", anomalykit.list_generators())
def test_generator_contract(name):
    generator_class = GENERATORS.get(name)
    params, source = generator_class.example()
    generator = anomalykit.get_generator(name, **params)
    first = generator(source, seed=3)
    second = generator(source, seed=3)
    assert first.to_shard_fields() == second.to_shard_fields(), "the same seed must give the same bytes"
    assert first.modality == generator.modality
    assert first.label == 1 and first.target is not None
    assert np.any(np.asarray(first.target) > 0)
    assert first.provenance["generator"] == name and first.provenance["seed"] == 3
    assert first.provenance["parameters"] == generator.config.to_dict()
    if source is not None:
        assert first.provenance["source_key"] == source.key


def test_every_module_imports_in_the_dev_environment():
    from anomalykit.loaders.base import DATASETS
    from anomalykit.testing import BUILDERS

    for registry in (DATASETS, GENERATORS, BUILDERS):
        registry.names()
        assert registry.unavailable == {}, f"{registry.kind}: {registry.unavailable}"


@pytest.mark.parametrize("name", anomalykit.list_baselines())
def test_baseline_contract(name, tmp_path):
    from anomalykit.baselines.base import BASELINES, Detector

    detector_class = BASELINES.get(name)
    params, train, test = detector_class.example()
    assert any(s.label == 1 for s in test) and any(s.label == 0 for s in test)
    detector = anomalykit.get_baseline(name, **params).fit(train, seed=0)
    scores = detector.decision_function(test)
    assert scores.shape == (len(test),) and np.all(np.isfinite(scores))
    again = anomalykit.get_baseline(name, **params).fit(train, seed=0).decision_function(test)
    np.testing.assert_allclose(scores, again, rtol=1e-6, atol=1e-9, err_msg="same data and seed, same scores")
    for sample, output in zip(test, detector.score_samples(test)):
        assert output.key == sample.key
        if output.anomaly_map is not None and sample.target is not None:
            assert np.asarray(output.anomaly_map).shape == np.asarray(sample.target).shape
    assert set(np.unique(detector.predict(test))) <= {0, 1}
    reloaded = Detector.load(detector.save(tmp_path / name))
    np.testing.assert_allclose(reloaded.decision_function(test), scores, rtol=1e-5, atol=1e-7)
