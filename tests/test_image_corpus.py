"""The image corpus pipeline: sources, resume after an interruption, settings check, contact sheet."""

import json

import numpy as np
import pytest
from PIL import Image as PILImage

import anomalykit
from anomalykit.errors import ConfigError
from anomalykit.image_corpus import (
    SETTINGS_NAME,
    _overlay,
    generate_image_corpus,
    image_sources,
    pick_keys,
    prepare_generator,
    read_samples,
    record_settings,
    write_contact_sheet,
)
from anomalykit.shards import ShardManifest, read_shards
from anomalykit.testing import build

CATEGORIES = {"bottle": ("broken_large",), "grid": ("bent",)}


@pytest.fixture(scope="module")
def mvtec(tmp_path_factory):
    return build("mvtec_ad", tmp_path_factory.mktemp("mvtec"), categories=CATEGORIES, n_train=3, n_test_good=1,
                 n_defect=1, size=32)


def _by_key(folder):
    return {s.key: s for s in read_shards(folder)}


class Interrupt(Exception):
    pass


def test_resume_after_interruption_gives_the_same_corpus(mvtec, tmp_path):
    common = dict(per_image=2, seed=3, max_bytes=9_000, contact_sheet=0)
    whole = generate_image_corpus("perlin", "mvtec_ad", mvtec.root, tmp_path / "whole", workers=2, **common)
    assert whole.generated == whole.num_samples == 6 * 2 and whole.resumed == 0

    seen = []

    def stop_after_seven(sample):
        seen.append(sample.key)
        if len(seen) == 7:
            raise Interrupt

    with pytest.raises(Interrupt):
        generate_image_corpus("perlin", "mvtec_ad", mvtec.root, tmp_path / "cut", on_sample=stop_after_seven, **common)
    partial = ShardManifest.load(tmp_path / "cut")
    assert not partial.complete and 0 < partial.num_samples < 7
    assert not list((tmp_path / "cut" / "data").glob("*.partial"))

    resumed = generate_image_corpus("perlin", "mvtec_ad", mvtec.root, tmp_path / "cut", **common)
    assert resumed.resumed == partial.num_samples and resumed.generated == 12 - partial.num_samples
    assert ShardManifest.load(tmp_path / "cut").complete

    a, b = _by_key(tmp_path / "whole"), _by_key(tmp_path / "cut")
    assert sorted(a) == sorted(b) and len(a) == 12
    for key in a:
        assert a[key].data.pixels.tobytes() == b[key].data.pixels.tobytes(), key
        assert a[key].target.tobytes() == b[key].target.tobytes(), key
        assert a[key].provenance == b[key].provenance
        assert a[key].label == 1 and a[key].split == "train"
    sources = {s.key for s in image_sources("mvtec_ad", mvtec.root)}
    assert {s.provenance["source_key"] for s in a.values()} == sources

    again = generate_image_corpus("perlin", "mvtec_ad", mvtec.root, tmp_path / "cut", **common)
    assert again.generated == 0 and again.resumed == 12


def test_other_settings_in_the_same_folder_are_refused(mvtec, tmp_path):
    generate_image_corpus("cutpaste", "mvtec_ad", mvtec.root, tmp_path / "o", category="bottle", contact_sheet=0)
    recorded = json.loads((tmp_path / "o" / SETTINGS_NAME).read_text())
    # the same settings given with tuples where JSON has lists are the same settings
    record_settings(tmp_path / "o", {**recorded, "category": tuple(recorded["category"])})
    record_settings(tmp_path / "p", {"load_options": {"cache_dir": tmp_path}})  # a path is recorded as text
    assert json.loads((tmp_path / "p" / SETTINGS_NAME).read_text()) == {"load_options": {"cache_dir": str(tmp_path)}}
    with pytest.raises(ConfigError, match="per_image: 1 before, 2 now"):
        record_settings(tmp_path / "o", {**recorded, "per_image": 2})
    with pytest.raises(ConfigError, match="seed: 0 before, 1 now"):
        generate_image_corpus("cutpaste", "mvtec_ad", mvtec.root, tmp_path / "o", category="bottle", seed=1)
    with pytest.raises(ConfigError, match="parameters"):
        generate_image_corpus("cutpaste", "mvtec_ad", mvtec.root, tmp_path / "o", category="bottle",
                              options={"hue": 0.0})
    # a run that failed before writing any sample does not pin the folder's settings
    with pytest.raises(ConfigError, match="smaller than the patch bounds"):
        generate_image_corpus("cutpaste_scar", "mvtec_ad", mvtec.root, tmp_path / "f", category="grid",
                              options={"scar_height_low": 35, "scar_height_high": 40})
    fixed = generate_image_corpus("cutpaste_scar", "mvtec_ad", mvtec.root, tmp_path / "f", category="grid",
                                  contact_sheet=0)
    assert fixed.num_samples == 3


def test_nsa_takes_donors_from_the_source_dataset_and_card_inherits_licence(mvtec, tmp_path):
    result = generate_image_corpus("nsa", "mvtec_ad", mvtec.root, tmp_path / "nsa", category=["bottle"],
                                   options={"label_mode": "logistic", "width_bounds": [[0.1, 0.4], [0.1, 0.4]]},
                                   contact_sheet=2)
    samples = list(read_shards(tmp_path / "nsa"))
    assert len(samples) == 3 and all(s.category == "bottle" for s in samples)
    for sample in samples:
        assert sample.target.dtype == np.float32
        assert sample.provenance["parameters"]["donor_dataset"] == "mvtec_ad"
        assert sample.provenance["donor"] != sample.provenance["source_key"]
        assert sample.provenance["donor"].startswith("bottle/train/good/")
    card = (tmp_path / "nsa" / "README.md").read_text()
    assert "cc-by-nc-sa-4.0" in card and "nsa" in card
    assert result.contact_sheet == tmp_path / "nsa" / "contact_sheet.png"


def test_contact_sheet_draws_source_generated_and_overlay(mvtec, tmp_path, monkeypatch):
    generate_image_corpus("cutpaste_scar", "mvtec_ad", mvtec.root, tmp_path / "s", per_image=2, contact_sheet=0)
    keys = [k for shard in ShardManifest.load(tmp_path / "s").shards for k in shard.keys]
    chosen = pick_keys(keys, 5)
    assert len(chosen) == 5 and chosen[0] == keys[0] and chosen[-1] == keys[-1]
    assert set(read_samples(tmp_path / "s", chosen)) == set(chosen)
    import matplotlib

    switched = []
    monkeypatch.setattr(matplotlib, "use", lambda *a, **k: switched.append(a))  # the caller's backend stays
    path = write_contact_sheet(tmp_path / "s", image_sources("mvtec_ad", mvtec.root), count=5)
    assert switched == []
    with PILImage.open(path) as im:
        assert im.format == "PNG" and im.width > 300 and im.height > 100
    mask = np.zeros((4, 4), np.float32)
    mask[1, 1], mask[2, 2] = 1.0, 0.5
    painted = _overlay(np.full((4, 4, 3), 100, np.uint8), mask)
    assert painted[1, 1, 0] > painted[2, 2, 0] > painted[0, 0, 0] == 100
    assert painted[1, 1, 1] < 100


def test_bad_requests_name_what_is_wrong(mvtec, tmp_path):
    with pytest.raises(ConfigError, match=r"category 'cable'.*categories there: bottle, grid"):
        generate_image_corpus("perlin", "mvtec_ad", mvtec.root, tmp_path / "x", category="cable")
    with pytest.raises(ConfigError, match="per_image"):
        generate_image_corpus("perlin", "mvtec_ad", mvtec.root, tmp_path / "x", per_image=0)
    series = anomalykit.list_generators("series")
    if series:
        with pytest.raises(ConfigError, match="not images"):
            prepare_generator(series[0], {}, "mvtec_ad", mvtec.root)
    with pytest.raises(anomalykit.AnomalyKitError, match="perlinn"):
        prepare_generator("perlinn", {}, "mvtec_ad", mvtec.root)


def test_nsa_donors_are_loaded_with_the_sources_load_options(mvtec, monkeypatch):
    generator = prepare_generator("nsa", {"width_bounds": [[0.1, 0.4], [0.1, 0.4]]}, "mvtec_ad", mvtec.root,
                                  {"strict": False})
    assert generator.config.donor_load_options == {"strict": False}
    source = image_sources("mvtec_ad", mvtec.root, category="bottle")[0]
    calls = []
    real_load = anomalykit.load

    def recording_load(name, root, **options):
        calls.append(options)
        return real_load(name, root, **options)

    monkeypatch.setattr(anomalykit, "load", recording_load)
    out = generator(source, seed=0)
    assert calls == [{"strict": False}] and out.provenance["donor"].startswith("bottle/train/good/")
    with pytest.raises(ConfigError, match="donor_load_options"):
        anomalykit.get_generator("nsa", donor_load_options={"strict": False})
