"""AnoGen: stage-1 textual inversion, box sampling, box-conditioned DDIM, generator, script."""

from __future__ import annotations

import runpy
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import anomalykit
from anomalykit.errors import ConfigError, SchemaError
from anomalykit.generators.image import _diffusion as D
from anomalykit.generators.image._tiny import TINY_LDM, TINY_SD, build_tiny_parts, example_source, tiny_defect_images
from anomalykit.generators.image.anogen import (
    MVTEC_BOX_RANGES,
    AnoGen,
    AnoGenTrainConfig,
    AnoGenWeights,
    BoxSpec,
    SupportImage,
    box_inpaint,
    box_spec_for,
    foreground_template,
    sample_box_mask,
    stage1_loss,
    train_anogen,
    train_embedding,
)
from anomalykit.schema import Image, Sample

SCRIPTS = Path(__file__).resolve().parents[3] / "scripts"


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    # tiny models: one thread is faster than several competing for a busy CPU
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _support(n: int = 3, seed: int = 0) -> list[SupportImage]:
    return [SupportImage(image, mask, f"s{i}") for i, (image, mask) in enumerate(tiny_defect_images(n, seed=seed))]


def _config(**kw) -> AnoGenTrainConfig:
    return AnoGenTrainConfig(**{"steps": 2, "batch_size": 2, **kw})


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    weights = train_anogen(TINY_SD, {"crack": _support()}, category="tiny", config=_config(steps=3),
                           parts=build_tiny_parts("sd"), progress=False)
    return weights.save(tmp_path_factory.mktemp("anogen") / "weights")


# ---- stage 1 ----------------------------------------------------------------------------------


def test_stage1_changes_only_the_token_embedding():
    parts = build_tiny_parts("sd")
    parts.add_tokens(["<other-token>"], "object")
    before = {f"{prefix}.{k}": v.detach().clone() for prefix, module in
              (("unet", parts.unet), ("vae", parts.vae), ("text", parts.text_encoder))
              for k, v in module.state_dict().items()}
    embedding = train_embedding(parts, _support(), category="tiny", defect="crack", config=_config(steps=3),
                                progress=False)
    after = {f"{prefix}.{k}": v for prefix, module in
             (("unet", parts.unet), ("vae", parts.vae), ("text", parts.text_encoder))
             for k, v in module.state_dict().items()}
    extra_key = next(k for k in after if k.endswith("token_embedding.extra"))
    assert before.keys() == after.keys()
    changed = [k for k in before if k != extra_key and not torch.equal(before[k], after[k])]
    assert changed == []  # U-Net, VAE, text encoder and the original token table: bit-identical
    rows_before, rows_after = before[extra_key], after[extra_key]
    assert rows_before.shape[0] == 1 and rows_after.shape[0] == 2  # the trained token was added
    assert torch.equal(rows_after[0], rows_before[0])  # the other added token is untouched
    trained_row = rows_after[1]
    defect_ids = parts.tokenizer("defect", add_special_tokens=False).input_ids
    init = parts.token_embedding().base.weight[defect_ids].mean(0)
    assert not torch.equal(trained_row, init)
    assert np.array_equal(embedding.vector, trained_row.numpy())
    assert all(not p.requires_grad for p in parts.unet.parameters())


def test_stage1_seed_reproduces_and_differs_across_seeds():
    vectors = []
    for seed in (5, 5, 6):
        parts = build_tiny_parts("sd")
        emb = train_embedding(parts, _support(), category="tiny", defect="crack", config=_config(seed=seed),
                              progress=False)
        vectors.append(emb.vector)
    assert np.array_equal(vectors[0], vectors[1])
    assert not np.array_equal(vectors[0], vectors[2])


def test_stage1_loss_is_mask_weighted():
    parts = build_tiny_parts("sd")
    (token_id,) = parts.add_tokens(["<tiny-crack>"], "defect")
    scheduler = D.ddpm_scheduler(parts)
    g = torch.Generator().manual_seed(0)
    latents = torch.randn(2, 4, 8, 8, generator=g)
    noise = torch.randn(2, 4, 8, 8, generator=g)
    t = torch.tensor([100, 600])
    ids = parts.tokenize(["a photo of a <tiny-crack>"] * 2)
    mask = torch.zeros(2, 1, 8, 8)
    mask[:, :, 3:5, 3:6] = 1
    with torch.no_grad():
        loss = stage1_loss(parts, latents, mask, ids, t, noise, scheduler)
        noisy = scheduler.add_noise(latents, noise, t)
        predicted = parts.unet(noisy, t, parts.encode_ids(ids)).sample
        assert torch.allclose(loss, ((noise - predicted) ** 2 * mask).mean())
        assert stage1_loss(parts, latents, torch.zeros_like(mask), ids, t, noise, scheduler) == 0
        # a different noise target outside the mask (weight 0) leaves the loss unchanged
        assert torch.allclose(
            ((noise + 3 * (1 - mask) - predicted) ** 2 * mask).mean(), loss)
    # a gradient reaches the token row only through masked positions
    table = parts.token_embedding()
    table.extra.requires_grad_(True)
    stage1_loss(parts, latents, mask, ids, t, noise, scheduler).backward()
    assert table.extra.grad[token_id - table.num_base].abs().sum() > 0


def test_support_set_errors_name_the_cause():
    parts = build_tiny_parts("sd")
    with pytest.raises(ConfigError, match="k_shot=3"):
        train_embedding(parts, _support(2), category="tiny", defect="crack", config=_config(), progress=False)
    bad = _support()
    bad[1] = SupportImage(bad[1].image, bad[1].mask[:32], "s1.png")
    with pytest.raises(SchemaError, match="s1.png"):
        train_embedding(parts, bad, category="tiny", defect="crack", config=_config(), progress=False)


# ---- boxes ------------------------------------------------------------------------------------


def test_box_sampling_respects_ranges_template_and_rotation():
    rng = np.random.default_rng(0)
    template = np.zeros((64, 64), bool)
    template[16:48, 16:48] = True
    for _ in range(20):
        box, info = sample_box_mask(rng, 64, BoxSpec((0.1, 0.2), (0.1, 0.2)), template)
        assert 6 <= info["width"] <= 12 and 6 <= info["height"] <= 12 and info["angle"] == 0
        assert (box & template).sum() / (info["width"] * info["height"]) > 0.75
        assert box.sum() == info["width"] * info["height"]
    box, info = sample_box_mask(np.random.default_rng(3), 64, BoxSpec((0.3, 0.3), (0.1, 0.1), rotate=True))
    assert info["angle"] in range(181)
    with pytest.raises(ConfigError, match="no box"):
        sample_box_mask(rng, 64, BoxSpec((0.9, 0.9), (0.9, 0.9)), template, max_tries=20)


def test_box_specs_and_foreground_template():
    assert box_spec_for("bottle", "broken_large") == MVTEC_BOX_RANGES["bottle"]["broken_large"]
    assert box_spec_for("bottle", "broken_large").rotate is True
    mask = np.zeros((100, 100), bool)
    mask[10:30, 40:50] = True
    spec = box_spec_for("widget", "dent", [mask])
    assert spec.width == pytest.approx((0.08, 0.12)) and spec.height == pytest.approx((0.16, 0.24))
    image, _ = tiny_defect_images(1, defect=False)[0]
    template = foreground_template(image, 64)
    assert template.shape == (64, 64) and not template[0, 0] and template[32, 32]


# ---- stage 2 ----------------------------------------------------------------------------------


def test_latents_outside_the_box_equal_the_noised_source_at_every_step():
    parts = build_tiny_parts("sd")
    parts.add_tokens(["<tiny-crack>"], "defect")
    images = D.images_to_tensor([example_source().data.pixels, example_source(seed=1).data.pixels], 64)
    boxes = torch.zeros(2, 1, 64, 64)
    boxes[0, :, 8:40, 16:48] = 1
    boxes[1, :, 24:56, 0:32] = 1
    scheduler = D.ddim_scheduler(parts)
    seen = []

    def check(i, t, tensors):
        keep = tensors["keep"]
        expected = scheduler.add_noise(tensors["source_latents"], tensors["noise"], t.reshape(1))
        outside = keep.expand_as(expected) > 0
        assert torch.equal(tensors["latents"][outside], expected[outside])
        assert not torch.allclose(tensors["latents"][~outside], expected[~outside])
        seen.append(int(t))

    box_inpaint(parts, images, boxes, ["<tiny-crack>"] * 2, generators=D.cpu_generators([0, 1]), steps=4,
                guidance_scale=10.0, callback=check)
    assert len(seen) == 4 and seen == sorted(seen, reverse=True)


def test_generator_output_seed_and_box_label(trained):
    gen = anomalykit.get_generator("anogen", weights=str(trained), steps=3, device="cpu")
    source = example_source()
    a, b, c = gen(source, seed=1), gen(source, seed=1), gen(source, seed=2)
    assert np.array_equal(a.data.pixels, b.data.pixels) and np.array_equal(a.target, b.target)
    assert not np.array_equal(a.data.pixels, c.data.pixels)
    assert a.label == 1 and a.defect == "crack" and a.target.dtype == np.uint8 and a.target.any()
    box = a.provenance["box"]
    assert a.target.sum() == box["width"] * box["height"]  # no rotation for a learned, unlisted defect
    outside = a.target == 0
    assert np.array_equal(a.data.pixels[outside], source.data.pixels[outside])  # paste_back
    assert a.provenance["generator"] == "anogen" and a.provenance["seed"] == 1
    assert a.meta["label_kind"] == "box"
    # batched generation equals one-by-one generation on the CPU
    batch = gen.generate_batch([source, example_source(seed=3)], [1, 4])
    assert np.array_equal(batch[0].data.pixels, a.data.pixels)
    # a grayscale source of another size keeps its shape and channels
    grey = Sample(key="g", dataset="t", split="train", label=0, data=Image(source.data.pixels[:48, :40, :1]))
    out = gen(grey, seed=0)
    assert out.data.pixels.shape == (48, 40, 1) and out.target.shape == (48, 40)


def test_weights_round_trip(trained, tmp_path):
    weights = AnoGenWeights.load(trained)
    copy = weights.save(tmp_path / "copy")
    again = AnoGenWeights.load(copy)
    assert again.model == TINY_SD and again.resolution == 64
    assert np.array_equal(again.embeddings[0].vector, weights.embeddings[0].vector)
    assert again.embeddings[0].box == weights.embeddings[0].box
    first = AnoGen(weights=str(trained), steps=2, device="cpu")(example_source(), seed=3)
    second = AnoGen(weights=str(copy), steps=2, device="cpu")(example_source(), seed=3)
    assert np.array_equal(first.data.pixels, second.data.pixels)


def test_generator_bad_input(trained, tmp_path):
    with pytest.raises(ConfigError, match="weights=PATH"):
        AnoGen()(example_source(), seed=0)
    with pytest.raises(ConfigError, match="anogen.json"):
        AnoGen(weights=str(tmp_path))(example_source(), seed=0)
    with pytest.raises(ConfigError, match="not in the weights"):
        AnoGen(weights=str(trained), defect="hole", device="cpu")(example_source(), seed=0)
    with pytest.raises(ConfigError, match="template=PATH"):
        AnoGen(weights=str(trained), box_mode="template", device="cpu")(example_source(), seed=0)
    source = example_source()
    with pytest.raises(ConfigError, match=rf"image '{source.key}', defect '\w+': anogen: no box"):
        AnoGen(weights=str(trained), box_min_width=0.9, box_max_width=0.9, box_min_height=0.9, box_max_height=0.9,
               max_tries=5, device="cpu")(example_source(), seed=0)
    with pytest.raises(ConfigError, match="offline-org/missing"):
        AnoGen(weights=str(trained), model="offline-org/missing", device="cpu")(example_source(), seed=0)


def test_ldm_family_trains_and_generates(tmp_path):
    weights = train_anogen(TINY_LDM, {"crack": _support()}, category="tiny", config=_config(steps=1),
                           progress=False)
    folder = weights.save(tmp_path / "ldm")
    sample = AnoGen(weights=str(folder), steps=2, device="cpu", box_mode="anywhere")(example_source(), seed=0)
    assert sample.label == 1 and sample.target.any()


def test_training_script_and_corpus(tmp_path, monkeypatch):
    from anomalykit.corpus import generate_corpus
    from anomalykit.shards import read_shards
    from anomalykit.testing import build

    built = build("mvtec_ad", tmp_path / "mvtec", categories={"bottle": ("broken_large",)}, n_defect=3, size=32)
    out = tmp_path / "weights"
    monkeypatch.setattr(sys, "argv", ["train_anogen.py", "--from", "mvtec_ad", "--root", str(built.root),
                                      "--category", "bottle", "--defect", "broken_large", "--out", str(out),
                                      "--model", TINY_SD, "--steps", "2", "--batch-size", "2", "--device", "cpu",
                                      "--no-progress", "--preview", "2"])
    namespace = runpy.run_path(str(SCRIPTS / "train_anogen.py"), run_name="__main__")
    assert "main" in namespace
    weights = AnoGenWeights.load(out)
    assert [e.key for e in weights.embeddings] == ["bottle/broken_large"]
    assert weights.embeddings[0].box == MVTEC_BOX_RANGES["bottle"]["broken_large"]
    assert len(weights.embeddings[0].train["support"]) == 3
    assert (out / "preview.png").stat().st_size > 0

    normals = anomalykit.load("mvtec_ad", built.root, category="bottle").filter(split="train", label=0)
    gen = anomalykit.get_generator("anogen", weights=str(out), steps=2, device="cpu", box_mode="anywhere")
    generate_corpus(gen, normals, out_dir=tmp_path / "corpus", per_source=1, seed=0)
    samples = list(read_shards(tmp_path / "corpus"))
    assert len(samples) == len(normals) and all(s.label == 1 and s.target.any() for s in samples)
    assert all(s.data.pixels.shape == (32, 32, 3) for s in samples)

    # the corpus command gives the same bytes
    from typer.testing import CliRunner

    from anomalykit.cli import app

    result = CliRunner().invoke(app, ["generate", "image", "anogen", "--from", "mvtec_ad", "--root", str(built.root),
                                      "--out", str(tmp_path / "cli"), "-o", f"weights={out}", "-o", "steps=2",
                                      "-o", "device=cpu", "-o", "box_mode=anywhere", "--contact-sheet", "0"])
    assert result.exit_code == 0, result.output
    by_key = {s.key: s for s in read_shards(tmp_path / "cli")}
    assert len(by_key) == len(samples)
    for sample in samples:
        assert np.array_equal(by_key[sample.key].data.pixels, sample.data.pixels)


def test_example_is_small_and_runs():
    params, source = AnoGen.example()
    sample = AnoGen(**params)(source, seed=0)
    assert sample.label == 1 and sample.provenance["source_key"] == source.key


def test_reference_quirk_always_rotates_template_boxes(trained, tmp_path):
    from PIL import Image as PILImage

    template = tmp_path / "template.png"
    PILImage.fromarray(np.full((64, 64), 255, np.uint8)).save(template)
    weights = AnoGenWeights.load(trained)
    emb = weights.embeddings[0]
    assert emb.box.rotate is False
    plain = AnoGen(weights=str(trained), box_mode="template", template=str(template))
    quirky = AnoGen(weights=str(trained), box_mode="template", template=str(template), reproduce_reference_quirks=True)
    assert plain._box_spec(emb).rotate is False and quirky._box_spec(emb).rotate is True
    assert AnoGen(weights=str(trained), rotate="always")._box_spec(emb).rotate is True


def test_stochastic_ddim_is_seeded(trained):
    gen = AnoGen(weights=str(trained), steps=3, eta=1.0, device="cpu")
    a, b = gen(example_source(), seed=9), gen(example_source(), seed=9)
    deterministic = AnoGen(weights=str(trained), steps=3, eta=0.0, device="cpu")(example_source(), seed=9)
    assert np.array_equal(a.data.pixels, b.data.pixels)
    assert not np.array_equal(a.data.pixels, deterministic.data.pixels)


def test_training_script_refuses_options_that_do_not_apply(tmp_path):
    main = runpy.run_path(str(SCRIPTS / "train_anogen.py"))["main"]
    with pytest.raises(ConfigError, match="--root: applies to --from"):
        main(["--folder", str(tmp_path), "--root", str(tmp_path), "--category", "bottle", "--defect", "crack",
              "--out", str(tmp_path / "w")])
