"""NSA: Poisson-blended patches from a donor, exact / binary / logistic labels, donors, bad input."""

import numpy as np
import pytest
from PIL import Image as PILImage

import anomalykit
from anomalykit.errors import ConfigError, SchemaError
from anomalykit.generators.image._procedural import example_source, object_mask
from anomalykit.generators.image.nsa import LOGISTIC_PARAMS, _seamless_clone
from anomalykit.schema import Image, Sample
from anomalykit.testing import build


def _source(size=64, channels=3, category="bottle", key="bottle/train/good/000.png", seed=0):
    pixels = example_source(size, seed=seed, category=category).data.pixels
    if channels == 1:
        pixels = pixels[:, :, :1]
    return Sample(key=key, dataset="demo", split="train", label=0, data=Image(pixels), category=category)


def _dest_boxes(prov, shape):
    union = np.zeros(shape, bool)
    for patch in prov["patches"]:
        if patch["placed"]:
            b = patch["dest_box"]
            union[b["y0"]:b["y1"], b["x0"]:b["x1"]] = True
    return union


@pytest.mark.parametrize("mode", ["normal_clone", "mixed_clone", "swap"])
def test_exact_mask_and_changes_only_inside_the_patches(mode):
    source = _source()
    gen = anomalykit.get_generator("nsa", mode=mode)
    for seed in range(10):
        out = gen(source, seed=seed)
        changed = (out.data.pixels != source.data.pixels).any(axis=2)
        assert out.label == 1 and out.defect == "nsa" and changed.any()
        np.testing.assert_array_equal(out.target.astype(bool), changed)
        assert not (changed & ~_dest_boxes(out.provenance, changed.shape)).any()
        assert all(p["mode"] == mode for p in out.provenance["patches"] if p["placed"])


def test_seamless_clone_lands_where_the_patch_was_placed():
    rng = np.random.default_rng(0)
    dest = rng.integers(0, 255, (40, 50, 3), dtype=np.uint8)
    mask = np.ones((12, 15), bool)
    mask[0], mask[-1], mask[:, 0], mask[:, -1] = False, False, False, False
    # cloning the image onto itself at the same place changes nothing when the placement is exact
    same = _seamless_clone(dest, dest[20:32, 30:45], mask, (20, 30), 1)
    assert np.abs(same.astype(int) - dest).max() <= 1
    moved = _seamless_clone(dest, dest[2:14, 3:18], mask, (20, 30), 1)
    changed = (moved != dest).any(axis=2)
    assert changed[21:31, 31:44].any() and not changed[:20].any() and not changed[:, :30].any()


def test_logistic_and_binary_labels():
    source = _source()
    soft = anomalykit.get_generator("nsa", label_mode="logistic")(source, seed=7)
    exact = anomalykit.get_generator("nsa")(source, seed=7)
    binary = anomalykit.get_generator("nsa", label_mode="binary")(source, seed=7)
    # the label mode does not change the image
    np.testing.assert_array_equal(soft.data.pixels, exact.data.pixels)
    assert soft.target.dtype == np.float32 and 0.0 <= soft.target.min() and soft.target.max() <= 1.0
    assert soft.target.max() > 0
    assert not ((soft.target > 0) & (exact.target == 0)).any(), "soft label on an unchanged pixel"
    assert not ((binary.target > 0) & (exact.target == 0)).any()
    assert ((soft.target > 0) == (binary.target > 0)).all()
    k, x0 = LOGISTIC_PARAMS["bottle"]
    assert (soft.provenance["logistic_k"], soft.provenance["logistic_x0"]) == (k, x0)


def test_same_seed_same_bytes():
    source = _source()
    gen = anomalykit.get_generator("nsa", label_mode="logistic")
    a, b, c = gen(source, seed=2), gen(source, seed=2), gen(source, seed=3)
    assert a.data.pixels.tobytes() == b.data.pixels.tobytes() and a.target.tobytes() == b.target.tobytes()
    assert a.provenance == b.provenance
    assert a.data.pixels.tobytes() != c.data.pixels.tobytes()


def test_object_mask_keeps_patches_on_the_object():
    source = _source()
    foreground = object_mask(source.data.pixels, 200, 60)
    gen = anomalykit.get_generator("nsa", object_mask="on")
    placed = 0
    for seed in range(6):
        out = gen(source, seed=seed)
        assert out.provenance["min_object_fraction"] == 0.7
        for patch in out.provenance["patches"]:
            if patch["placed"]:
                placed += 1
                s, d = patch["src_box"], patch["dest_box"]
                # over 70 % of the cut is object, and over 25 % of that lands on the object
                assert foreground[s["y0"]:s["y1"], s["x0"]:s["x1"]].mean() > 0.7
                assert foreground[d["y0"]:d["y1"], d["x0"]:d["x1"]].mean() > 0.7 * 0.25
    assert placed >= 6


def test_donors_from_a_dataset_and_from_a_folder(tmp_path):
    built = build("mvtec_ad", tmp_path / "mvtec", categories={"bottle": ("broken_large",)}, size=64, n_train=3)
    normal = anomalykit.load("mvtec_ad", built.root).filter(split="train", label=0)
    source = normal[0]
    gen = anomalykit.get_generator("nsa", donor_dataset="mvtec_ad", donor_root=str(built.root))
    donors = {gen(source, seed=s).provenance["donor"] for s in range(8)}
    assert donors and source.key not in donors and donors <= set(normal.keys)
    folder = tmp_path / "donors"
    folder.mkdir()
    PILImage.fromarray(np.full((80, 70, 3), 17, np.uint8)).save(folder / "flat.png")
    out = anomalykit.get_generator("nsa", donor_dir=str(folder), mode="swap", object_mask="off")(source, seed=0)
    assert out.provenance["donor"] == "flat.png"
    assert (out.data.pixels[out.target.astype(bool)] == 17).all()


def test_grayscale_images_are_blended_per_channel():
    source = _source(channels=1, key="gray/000.png")
    out = anomalykit.get_generator("nsa")(source, seed=0)
    assert out.data.pixels.shape == (64, 64, 1)
    np.testing.assert_array_equal(out.target.astype(bool), (out.data.pixels != source.data.pixels)[:, :, 0])


def test_bad_input_names_image_and_parameter(tmp_path):
    with pytest.raises(ConfigError, match=r"'small/1\.png' is 8x8, smaller than the patch bounds: width_bounds"):
        anomalykit.get_generator("nsa")(_source(size=8, key="small/1.png"), seed=0)
    rgba = Sample(key="rgba/2.png", dataset="d", split="train", label=0, data=Image(np.zeros((32, 32, 4), np.uint8)))
    with pytest.raises(SchemaError, match=r"'rgba/2\.png' has 4 channels"):
        anomalykit.get_generator("nsa")(rgba, seed=0)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ConfigError, match="donor_dir.*holds no images"):
        anomalykit.get_generator("nsa", donor_dir=str(empty))
    built = build("mvtec_ad", tmp_path / "one", categories={"bottle": ("broken_large",)}, size=64, n_train=1)
    only = anomalykit.load("mvtec_ad", built.root).filter(split="train", label=0)[0]
    with pytest.raises(ConfigError, match=r"no other normal training image of category 'bottle'.*donor_dataset"):
        anomalykit.get_generator("nsa", donor_dataset="mvtec_ad", donor_root=str(built.root))(only, seed=0)


@pytest.mark.parametrize("options, message", [
    ({"width_bounds": [[0.3, 0.1], [0.1, 0.2]]}, "width_bounds"),
    ({"width_bounds": [0.1, 0.2]}, "width_bounds"),
    ({"label_mode": "soft"}, "label_mode"),
    ({"mode": "blend"}, "mode"),
    ({"resize_low": 1.5, "resize_high": 1.2}, "resize_low"),
    ({"donor_dataset": "mvtec_ad"}, "donor_root"),
    ({"logistic_k": 0.5}, "logistic_x0"),
    ({"max_patches": 0}, "max_patches"),
])
def test_parameter_validation(options, message):
    with pytest.raises(ConfigError, match=message):
        anomalykit.get_generator("nsa", **options)
