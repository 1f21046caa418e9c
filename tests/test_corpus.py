from dataclasses import dataclass

import numpy as np
import pytest

import anomalykit
from anomalykit.corpus import generate_corpus, plan_tasks
from anomalykit.errors import ConfigError
from anomalykit.generators.base import Generator, GeneratorConfig, param
from anomalykit.schema import Image, Modality, Sample
from anomalykit.shards import ShardManifest, read_shards
from anomalykit.testing import build


@dataclass
class SquareConfig(GeneratorConfig):
    side: int = param(3, low=1, high=64)
    value: int = param(255, low=0, high=255)


class SquareGenerator(Generator):
    """Paints a square at a random place: enough to exercise the corpus runner."""

    name = "square"
    modality = Modality.IMAGE
    config_class = SquareConfig

    def generate(self, source, rng, seed):
        pixels = source.data.pixels.copy()
        h, w = pixels.shape[:2]
        side = self.config.side
        y, x = int(rng.integers(0, h - side + 1)), int(rng.integers(0, w - side + 1))
        pixels[y:y + side, x:x + side] = self.config.value
        mask = np.zeros((h, w), bool)
        mask[y:y + side, x:x + side] = True
        return Sample(key=f"{source.key}#square", dataset="square-corpus", split="train", label=1,
                      data=Image(pixels), category=source.category, defect="square", target=mask,
                      provenance=self.provenance(seed, source))


def test_config_validation_names_the_key():
    with pytest.raises(ConfigError, match=r"SquareConfig.side: 0 is below the allowed range \[1, 64\]"):
        SquareGenerator(side=0)
    with pytest.raises(ConfigError, match="unknown key.*colour"):
        SquareGenerator(colour=3)


def test_plan_is_fixed_and_seeded():
    a = plan_tasks("g", ["x", "y"], per_source=2, seed=1)
    assert [t.key for t in a] == ["g/x/000", "g/x/001", "g/y/000", "g/y/001"]
    assert a == plan_tasks("g", ["x", "y"], per_source=2, seed=1)
    assert [t.seed for t in a] != [t.seed for t in plan_tasks("g", ["x", "y"], per_source=2, seed=2)]


def test_corpus_from_a_dataset_with_card_and_resume(tmp_path):
    dataset = anomalykit.load("mvtec_ad", build("mvtec_ad", tmp_path / "m").root).filter(split="train")
    generator = SquareGenerator(side=4)
    out = tmp_path / "corpus"
    seen = []

    def stop_after_five(sample):
        seen.append(sample.key)
        if len(seen) == 5:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        generate_corpus(generator, dataset, out_dir=out, per_source=2, seed=7, max_bytes=12_000, on_sample=stop_after_five)
    done_before = ShardManifest.load(out).num_samples
    assert 0 < done_before < 5
    manifest = generate_corpus(generator, dataset, out_dir=out, per_source=2, seed=7, max_bytes=12_000)
    assert manifest.complete and manifest.num_samples == 2 * len(dataset)
    fresh = generate_corpus(generator, dataset, out_dir=tmp_path / "fresh", per_source=2, seed=7, max_bytes=12_000)
    samples = {s.key: s for s in read_shards(out)}
    assert set(samples) == {s.key for s in read_shards(tmp_path / "fresh")}
    for sample in read_shards(tmp_path / "fresh"):
        np.testing.assert_array_equal(samples[sample.key].data.pixels, sample.data.pixels)
    source = dataset[0]
    made = samples[f"square/{source.key}/000"]
    assert made.provenance["source_key"] == source.key
    assert made.provenance["generator"] == "square" and made.provenance["parameters"]["side"] == 4
    changed = np.any(made.data.pixels != source.data.pixels, axis=2)
    assert changed.any() and np.all(changed <= (made.target > 0))
    assert made.target.sum() == 16
    readme = (out / "README.md").read_text()
    assert "license: cc-by-nc-sa-4.0" in readme and "square" in readme
    assert fresh.num_samples == manifest.num_samples


def test_a_failing_task_names_its_key(tmp_path):
    dataset = anomalykit.load("mvtec_ad", build("mvtec_ad", tmp_path / "m").root).filter(split="train")
    with pytest.raises(ValueError) as info:  # the square does not fit the 32 x 32 images
        generate_corpus(SquareGenerator(side=64), dataset, out_dir=tmp_path / "c", seed=1)
    assert any("while generating corpus sample square/bottle/train/good/000.png/000" in n for n in info.value.__notes__)
