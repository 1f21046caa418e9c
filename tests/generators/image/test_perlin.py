"""DRAEM Perlin anomalies: exact masks, determinism, the noise kernel, textures, bad input."""

import numpy as np
import pytest
from PIL import Image as PILImage

import anomalykit
from anomalykit.errors import ConfigError, MalformedFileError, SchemaError
from anomalykit.generators.image._procedural import (
    AUGMENTERS,
    augment,
    example_source,
    object_mask,
    perlin_angles,
    perlin_noise,
    perlin_noise_numpy,
)
from anomalykit.schema import Image, Sample


def _source(size=64, channels=3, category="bottle", key="cat/train/good/000.png", seed=0):
    base = example_source(size, seed=seed, category=category)
    pixels = base.data.pixels if channels == 3 else base.data.pixels[:, :, :1]
    return Sample(key=key, dataset="demo", split="train", label=0, data=Image(pixels), category=category,
                  meta={"path": key})


def _textures(folder, n=3, size=40):
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(5)
    for i in range(n):
        sub = folder / f"class{i % 2}"
        sub.mkdir(exist_ok=True)
        PILImage.fromarray(rng.integers(0, 255, (size, size + 7, 3), dtype=np.uint8)).save(sub / f"t{i}.jpg")
    return folder


def test_mask_is_exactly_the_changed_pixels(tmp_path):
    textures = _textures(tmp_path / "dtd")
    source = _source()
    for options in ({}, {"texture_dir": str(textures)}, {"object_mask": "on"}):
        gen = anomalykit.get_generator("perlin", **options)
        for seed in range(8):
            out = gen(source, seed=seed)
            changed = (out.data.pixels != source.data.pixels).any(axis=2)
            assert out.label == 1 and out.target.dtype == np.uint8
            np.testing.assert_array_equal(out.target.astype(bool), changed)
            assert changed.any()


def test_same_seed_same_bytes_and_seeds_differ():
    source = _source()
    gen = anomalykit.get_generator("perlin")
    a, b, c = gen(source, seed=11), gen(source, seed=11), gen(source, seed=12)
    assert a.data.pixels.tobytes() == b.data.pixels.tobytes()
    assert a.target.tobytes() == b.target.tobytes()
    assert a.provenance == b.provenance
    assert a.data.pixels.tobytes() != c.data.pixels.tobytes()


def test_provenance_records_published_scales_and_blend():
    gen = anomalykit.get_generator("perlin")
    source = _source()
    scales = set()
    for seed in range(40):
        prov = gen(source, seed=seed).provenance
        assert prov["generator"] == "perlin" and prov["seed"] == seed and prov["source_key"] == source.key
        assert 0.0 <= prov["beta"] <= 0.8
        assert len(prov["augmenters"]) == 3 and len({a["name"] for a in prov["augmenters"]}) == 3
        assert -90 <= prov["noise_rotation"] <= 90
        scales.update(prov["scale"])
    assert scales <= {1, 2, 4, 8, 16, 32} and len(scales) >= 4


def test_numba_kernel_matches_numpy_reference_and_draem_layout():
    rng = np.random.default_rng(3)
    for height, width, ry, rx in ((64, 64, 4, 8), (50, 77, 2, 16), (256, 256, 32, 1)):
        angles = perlin_angles(rng, ry, rx)
        fast = perlin_noise(height, width, ry, rx, angles)
        reference = perlin_noise_numpy(height, width, ry, rx, angles)
        assert fast.shape == (height, width) and fast.dtype == np.float32
        np.testing.assert_allclose(fast, reference, atol=1e-5)
    # lattice points are zero-valued (gradient noise) and the amplitude stays within sqrt(2)
    angles = perlin_angles(rng, 4, 4)
    noise = perlin_noise(64, 64, 4, 4, angles)
    assert np.allclose(noise[::16, ::16], 0.0, atol=1e-6)
    assert np.abs(noise).max() <= np.sqrt(2) + 1e-6


def test_pixels_inside_the_mask_follow_the_blend_formula(tmp_path):
    source = _source()
    gen = anomalykit.get_generator("perlin", beta_low=0.0, beta_high=0.0, num_augmenters=0,
                                   texture_dir=str(_textures(tmp_path / "t", n=1, size=64)))
    out = gen(source, seed=4)
    texture = np.asarray(PILImage.open(next((tmp_path / "t").rglob("*.jpg"))).convert("RGB").resize((64, 64)))
    region = out.target.astype(bool)
    # beta = 0: the texture replaces the image inside the mask (up to JPEG decoder / resize differences)
    diff = np.abs(out.data.pixels[region].astype(int) - texture[region].astype(int))
    assert np.median(diff) <= 3
    assert out.provenance["texture"].startswith("class0/")
    # beta = 0.3: out = 0.7 texture + 0.3 image inside the mask, the image itself outside
    mixed = anomalykit.get_generator("perlin", beta_low=0.3, beta_high=0.3, num_augmenters=0,
                                     texture_dir=str(tmp_path / "t"))(source, seed=4)
    region = mixed.target.astype(bool)
    expected = 0.7 * texture[region] + 0.3 * source.data.pixels[region]
    assert np.median(np.abs(mixed.data.pixels[region] - expected)) <= 3
    np.testing.assert_array_equal(mixed.data.pixels[~region], source.data.pixels[~region])


def test_every_augmenter_keeps_shape_and_dtype():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 255, (33, 47, 3), dtype=np.uint8)
    for name, fn in AUGMENTERS.items():
        out, params = fn(image, np.random.default_rng(1))
        assert out.shape == image.shape and out.dtype == np.uint8, name
    out, record = augment(image, rng, 10)
    assert sorted(r["name"] for r in record) == sorted(AUGMENTERS)
    inverted, _ = AUGMENTERS["invert"](image, rng)
    np.testing.assert_array_equal(inverted, 255 - image)


def test_object_mask_keeps_anomaly_on_object():
    source = _source(category="bottle")
    foreground = object_mask(source.data.pixels, 200, 60)
    assert 0.1 < foreground.mean() < 0.9
    gen = anomalykit.get_generator("perlin", object_mask="on")
    for seed in range(6):
        out = gen(source, seed=seed)
        assert not (out.target.astype(bool) & ~foreground).any()


def test_foreground_dir_and_wrong_size_mask(tmp_path):
    source = _source(key="cat/train/good/007.png")
    folder = tmp_path / "fg"
    (folder / "cat/train/good").mkdir(parents=True)
    mask = np.zeros((64, 64), np.uint8)
    mask[10:30, 20:50] = 255
    PILImage.fromarray(mask).save(folder / "cat/train/good/007.png")
    out = anomalykit.get_generator("perlin", object_mask="on", foreground_dir=str(folder))(source, seed=2)
    assert not (out.target.astype(bool) & ~(mask > 0)).any()
    PILImage.fromarray(np.zeros((32, 32), np.uint8)).save(folder / "cat/train/good/007.png")
    with pytest.raises(MalformedFileError, match=r"cat/train/good/007\.png.*foreground_dir"):
        anomalykit.get_generator("perlin", object_mask="on", foreground_dir=str(folder))(source, seed=2)


def test_bad_input_names_image_and_parameter(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "notes.txt").write_text("no images here")
    with pytest.raises(ConfigError, match="texture_dir.*holds no images"):
        anomalykit.get_generator("perlin", texture_dir=str(empty))
    with pytest.raises(ConfigError, match="texture_dir.*not a folder"):
        anomalykit.get_generator("perlin", texture_dir=str(tmp_path / "missing"))
    with pytest.raises(SchemaError, match=r"'gray/000\.png' is grayscale"):
        anomalykit.get_generator("perlin")(_source(channels=1, key="gray/000.png"), seed=0)
    with pytest.raises(ConfigError, match="object_mask='on'.*'odd/1.png'"):
        anomalykit.get_generator("perlin", object_mask="on")(_source(category="unknown", key="odd/1.png"), seed=0)


@pytest.mark.parametrize("options, message", [
    ({"beta_high": 1.5}, "beta_high"),
    ({"beta_low": 0.7, "beta_high": 0.2}, "beta_low"),
    ({"min_scale_exponent": 4, "max_scale_exponent": 4}, "max_scale_exponent"),
    ({"num_augmenters": 11}, "num_augmenters"),
    ({"anomaly_source": "texture"}, "texture_dir"),
    ({"object_mask": "sometimes"}, "object_mask"),
    ({"scale": 3}, "unknown key"),
])
def test_parameter_validation(options, message):
    with pytest.raises(ConfigError, match=message):
        anomalykit.get_generator("perlin", **options)
