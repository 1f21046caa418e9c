"""Generated samples are keyed by source and seed, so several per source can share a shard set."""

import pytest

import anomalykit
from anomalykit.generators.image._procedural import example_source
from anomalykit.generators.pointcloud._common import example_cloud
from anomalykit.shards import read_shards, write_shards


@pytest.mark.parametrize("name", ["perlin", "cutpaste", "cutpaste_scar", "nsa", "patchgen", "dagen"])
def test_samples_of_one_source_with_other_seeds_have_their_own_keys(name, tmp_path):
    source = example_cloud(1024) if name in ("patchgen", "dagen") else example_source(64)
    gen = anomalykit.get_generator(name)
    samples = [gen(source, seed=seed) for seed in (1, 2)]
    assert samples[0].key == f"{source.key}/{name}-1" and samples[1].key != samples[0].key
    write_shards(samples, tmp_path / "s", dataset="demo")
    assert sorted(s.key for s in read_shards(tmp_path / "s")) == sorted(s.key for s in samples)
