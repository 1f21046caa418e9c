"""CutPaste and CutPaste-Scar: exact masks inside the pasted footprint, determinism, bad input."""

import numpy as np
import pytest

import anomalykit
from anomalykit.errors import ConfigError, SchemaError
from anomalykit.generators.image._procedural import color_jitter, example_source, object_mask
from anomalykit.schema import Image, Sample


def _source(size=64, channels=3, category="bottle", key="cat/train/good/000.png"):
    pixels = example_source(size, category=category).data.pixels
    if channels == 1:
        pixels = pixels[:, :, :1]
    return Sample(key=key, dataset="demo", split="train", label=0, data=Image(pixels), category=category)


def _box(prov):
    b = prov["paste_box"]
    box = np.zeros((64, 64), bool)
    box[b["y0"]:b["y1"], b["x0"]:b["x1"]] = True
    return box


@pytest.mark.parametrize("name", ["cutpaste", "cutpaste_scar"])
def test_mask_is_exactly_the_changed_pixels_inside_the_paste(name):
    source = _source()
    gen = anomalykit.get_generator(name)
    for seed in range(15):
        out = gen(source, seed=seed)
        changed = (out.data.pixels != source.data.pixels).any(axis=2)
        assert out.label == 1 and out.defect == name
        np.testing.assert_array_equal(out.target.astype(bool), changed)
        assert changed.any()
        assert not (changed & ~_box(out.provenance)).any(), "a pixel changed outside the pasted footprint"


def test_cutpaste_patch_area_and_aspect_follow_the_paper():
    gen = anomalykit.get_generator("cutpaste")
    source = _source()
    for seed in range(30):
        prov = gen(source, seed=seed).provenance
        b = prov["paste_box"]
        h, w = b["y1"] - b["y0"], b["x1"] - b["x0"]
        assert 0.02 <= prov["area_ratio"] <= 0.15
        assert 0.3 <= prov["aspect_ratio"] <= 1 / 0.3
        assert abs(h * w / (64 * 64) - prov["area_ratio"]) < 0.05
        assert prov["cut_box"]["y1"] - prov["cut_box"]["y0"] == h


def test_without_jitter_the_pasted_pixels_are_a_copy_of_the_cut():
    source = _source()
    gen = anomalykit.get_generator("cutpaste", brightness=0, contrast=0, saturation=0, hue=0)
    out = gen(source, seed=5)
    c, p = out.provenance["cut_box"], out.provenance["paste_box"]
    np.testing.assert_array_equal(out.data.pixels[p["y0"]:p["y1"], p["x0"]:p["x1"]],
                                  source.data.pixels[c["y0"]:c["y1"], c["x0"]:c["x1"]])


def test_scar_size_and_rotation_ranges():
    gen = anomalykit.get_generator("cutpaste_scar")
    source = _source()
    for seed in range(20):
        prov = gen(source, seed=seed).provenance
        sh, sw = prov["scar_size"]
        assert 2 <= sw <= 16 and 10 <= sh <= 25
        assert -45 <= prov["rotation"] <= 45
        assert prov["footprint_pixels"] >= sh * sw * 0.8


@pytest.mark.parametrize("name", ["cutpaste", "cutpaste_scar"])
def test_same_seed_same_bytes(name):
    source = _source()
    gen = anomalykit.get_generator(name)
    a, b, c = gen(source, seed=3), gen(source, seed=3), gen(source, seed=4)
    assert a.data.pixels.tobytes() == b.data.pixels.tobytes() and a.target.tobytes() == b.target.tobytes()
    assert a.provenance == b.provenance
    assert a.data.pixels.tobytes() != c.data.pixels.tobytes()


def test_color_jitter_ranges():
    rng = np.random.default_rng(0)
    patch = rng.integers(40, 200, (8, 9, 3), dtype=np.uint8)
    out, params = color_jitter(patch, rng, 0.1, 0.1, 0.1, 0.1)
    assert out.shape == patch.shape and out.dtype == np.uint8
    assert 0.9 <= params["brightness"] <= 1.1 and -0.1 <= params["hue"] <= 0.1
    assert sorted(params["order"]) == ["brightness", "contrast", "hue", "saturation"]
    same, _ = color_jitter(patch, rng, 0, 0, 0, 0)
    np.testing.assert_array_equal(same, patch)
    # each factor does what torchvision's does: brightness scales, contrast and saturation blend
    # with the grey mean / grey image (ITU-R 601-2 luma)
    patch = np.stack([rng.integers(150, 250, (8, 9)), rng.integers(60, 120, (8, 9)), rng.integers(0, 40, (8, 9))],
                     axis=2).astype(np.uint8)  # strongly coloured: the grey mean is far from the channel mean
    pixels = patch.astype(np.float64) / 255
    grey = pixels @ np.array([0.299, 0.587, 0.114])
    for name, expected in (("brightness", lambda f: pixels * f),
                           ("contrast", lambda f: f * pixels + (1 - f) * grey.mean()),
                           ("saturation", lambda f: f * pixels + (1 - f) * grey[:, :, None])):
        for _ in range(5):
            out, params = color_jitter(patch, rng, **{**dict.fromkeys(("brightness", "contrast", "saturation", "hue"),
                                                                      0), name: 0.5})
            want = np.clip(np.rint(np.clip(expected(params[name]), 0, 1) * 255), 0, 255)
            assert np.abs(out.astype(np.int64) - want).max() <= 1, (name, params[name])


def test_object_mask_places_the_paste_on_the_object():
    source = _source()
    foreground = object_mask(source.data.pixels, 200, 60)
    gen = anomalykit.get_generator("cutpaste", object_mask="on")
    for seed in range(10):
        out = gen(source, seed=seed)
        box = _box(out.provenance)
        assert (foreground & box).sum() / box.sum() >= 0.25


def test_bad_input_names_image_and_parameter():
    with pytest.raises(ConfigError, match=r"'tiny/0\.png' is 12x12, smaller than the patch bounds.*scar_width_high"):
        anomalykit.get_generator("cutpaste_scar")(_source(size=12, key="tiny/0.png"), seed=0)
    with pytest.raises(ConfigError, match=r"'tiny/0\.png' is 12x12.*area_ratio_low"):
        anomalykit.get_generator("cutpaste")(_source(size=12, key="tiny/0.png"), seed=0)
    for name in ("cutpaste", "cutpaste_scar"):
        with pytest.raises(SchemaError, match=r"'g/1\.png' is grayscale.*RGB"):
            anomalykit.get_generator(name)(_source(channels=1, key="g/1.png"), seed=0)


@pytest.mark.parametrize("name, options, message", [
    ("cutpaste", {"area_ratio_low": 0.3, "area_ratio_high": 0.1}, "area_ratio_low"),
    ("cutpaste", {"hue": 0.7}, "hue"),
    ("cutpaste", {"aspect_sampling": "uniform"}, "aspect_sampling"),
    ("cutpaste_scar", {"scar_width_low": 20, "scar_width_high": 10}, "scar_width_low"),
    ("cutpaste_scar", {"rotation": -5}, "rotation"),
    ("cutpaste_scar", {"area_ratio_low": 0.1}, "unknown key"),
])
def test_parameter_validation(name, options, message):
    with pytest.raises(ConfigError, match=message):
        anomalykit.get_generator(name, **options)


def test_scar_size_check_is_not_redone_per_sample(monkeypatch):
    from anomalykit.generators.image import cutpaste

    calls = []
    real = cutpaste._rotation
    monkeypatch.setattr(cutpaste, "_rotation", lambda *a: calls.append(a) or real(*a))
    gen = anomalykit.get_generator("cutpaste_scar", scar_height_high=23)  # bounds no other test uses
    source = _source()
    for seed in range(4):
        gen(source, seed=seed)
    # 181 trial rotations for the size check once, then one rotation per sample
    assert len(calls) <= 181 + 4
