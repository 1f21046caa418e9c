"""SeaS: alignment losses, fine-tuning, the mask head, DPM-Solver generation, generator, script."""

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
from anomalykit.generators.image._tiny import TINY_SD, build_tiny_parts, example_source, tiny_defect_images
from anomalykit.generators.image.anogen import SupportImage
from anomalykit.generators.image.seas import (
    NORMAL_PROMPT,
    SeaS,
    SeaSData,
    SeaSTrainConfig,
    SeaSWeights,
    anomaly_prompt,
    decoupled_alignment_loss,
    load_model,
    predict_mask,
    seas_generate,
    train_seas,
)

SCRIPTS = Path(__file__).resolve().parents[3] / "scripts"


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    # tiny models: one thread is faster than several competing for a busy CPU
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _data(n_anomalies: int = 6, n_normals: int = 4, defects=("crack", "scratch")) -> SeaSData:
    anomalies = [(SupportImage(image, mask, f"a{i}"), defects[i % len(defects)])
                 for i, (image, mask) in enumerate(tiny_defect_images(n_anomalies, seed=1))]
    normals = [image for image, _ in tiny_defect_images(n_normals, seed=2, defect=False)]
    return SeaSData(anomalies, normals, list(defects))


def _config(**kw) -> SeaSTrainConfig:
    base = dict(steps=1, rmp_steps=1, gradient_accumulation=1, rmp_hidden=16, rmp_heads=2, rmp_layers=1)
    return SeaSTrainConfig(**{**base, **kw})


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny SeaS whose mask head learned the bright-rectangle defects of ``tiny_defect_images``."""
    weights = train_seas(_data(8, 6, ("crack",)), model=TINY_SD, category="tiny", progress=False,
                         parts=build_tiny_parts("sd"),
                         config=_config(steps=2, rmp_steps=30, rmp_lr=3e-2, rmp_max_timestep=50))
    return weights, weights.save(tmp_path_factory.mktemp("seas") / "weights")


# ---- losses -----------------------------------------------------------------------------------


def test_alignment_loss_is_zero_when_tokens_attend_as_the_mask_says():
    ids = torch.tensor([[0, 3, 10, 4, 11, 12, 1, 1]])  # "a ob1 with sks1 sks2": normal id 10, anomaly 11, 12
    mask = torch.zeros(1, 1, 8, 8)
    mask[:, :, 0:4, 2:6] = 1
    maps = []
    for r in (4, 2):
        attention = torch.full((1, 8, r, r), 0.1)
        region = torch.nn.functional.max_pool2d(mask, 8 // r)[0, 0]
        attention[0, 4] = attention[0, 5] = region  # anomaly tokens: exactly the defect
        attention[0, 2] = 1 - region  # normal token: nothing inside the defect
        maps.append(attention.requires_grad_(True))
    anomaly_ids = torch.tensor([[11, 12]])
    assert decoupled_alignment_loss(maps, ids, 10, anomaly_ids, mask).item() == pytest.approx(0.0, abs=1e-6)
    shifted = [m.detach().clone() for m in maps]
    shifted[0][0, 4] = shifted[0][0, 4].roll(1, -1)  # one anomaly token looks beside the defect
    shifted[1][0, 2] += 0.5 * torch.nn.functional.max_pool2d(mask, 4)[0, 0]  # normal token looks inside it
    assert decoupled_alignment_loss(shifted, ids, 10, anomaly_ids, mask) > 0.05
    noisy = [(m.detach() + 0.3 * torch.rand_like(m)).requires_grad_(True) for m in maps]
    decoupled_alignment_loss(noisy, ids, 10, anomaly_ids, mask).backward()
    assert all(m.grad is not None and m.grad.abs().sum() > 0 for m in noisy)


def test_alignment_region_and_mask_target_switches():
    from anomalykit.generators.image.seas import _mask_targets

    ids = torch.tensor([[0, 10, 11, 1]])
    mask = torch.zeros(1, 1, 4, 4)
    mask[:, :, 1:3, 1:3] = 0.5  # a soft (bilinear) defect edge, nowhere exactly 1
    attention = torch.zeros(1, 4, 4, 4)
    attention[0, 1] = torch.rand(4, 4, generator=torch.Generator().manual_seed(0))
    attention[0, 2] = mask[0, 0] * 2
    full = decoupled_alignment_loss([attention], ids, 10, torch.tensor([[11]]), mask, region="full")
    any_ = decoupled_alignment_loss([attention], ids, 10, torch.tensor([[11]]), mask, region="any")
    assert any_ > full  # "any" also penalises the normal token on the soft defect pixels
    soft = torch.tensor([0.0, 0.49, 0.5, 0.7, 1.0])
    assert _mask_targets(soft, quirks=False).tolist() == [0, 0, 1, 1, 1]
    assert _mask_targets(soft, quirks=True).tolist() == [0, 0, 0, 0, 1]  # the reference's .long()


def test_unscaled_start_latent_quirk_changes_the_output(trained):
    _, folder = trained
    plain = SeaS(weights=str(folder), steps=3, device="cpu")(example_source(), seed=0)
    quirky = SeaS(weights=str(folder), steps=3, device="cpu", reproduce_reference_quirks=True)(example_source(), seed=0)
    assert not np.array_equal(plain.data.pixels, quirky.data.pixels)


# ---- stage 1 ----------------------------------------------------------------------------------


def test_fine_tuning_changes_unet_and_used_token_rows_only():
    parts = build_tiny_parts("sd")
    parts.token_embedding()  # install the extensible table so that state-dict keys stay the same
    vae_before = {k: v.clone() for k, v in parts.vae.state_dict().items()}
    text_before = {k: v.clone() for k, v in parts.text_encoder.state_dict().items()}
    unet_before = {k: v.clone() for k, v in parts.unet.state_dict().items()}
    losses = []
    train_seas(_data(), model=TINY_SD, category="tiny", config=_config(rmp_steps=0, unet_lr=1e-3), parts=parts,
               progress=False, on_step=lambda stage, step, parts_of_loss: losses.append(parts_of_loss))
    assert all(torch.equal(v, parts.vae.state_dict()[k]) for k, v in vae_before.items())
    text_after = parts.text_encoder.state_dict()
    table_key = next(k for k in text_after if k.endswith("token_embedding.base.weight"))
    extra_key = table_key.replace("base.weight", "extra")
    changed = [k for k, v in text_before.items() if k not in (table_key, extra_key) and not torch.equal(v, text_after[k])]
    assert changed == []  # frozen CLIP layers, position embeddings, final norm
    unet_after = parts.unet.state_dict()
    assert sum(not torch.equal(v, unet_after[k]) for k, v in unet_before.items()) > len(unet_before) // 2
    # rows of words in the prompts ("a", "with") moved; rows of unused words did not (no decay)
    word = lambda w: parts.tokenizer(w, add_special_tokens=False).input_ids[0]  # noqa: E731
    assert not torch.equal(text_after[table_key][word("a")], text_before[table_key][word("a")])
    assert torch.equal(text_after[table_key][word("photo")], text_before[table_key][word("photo")])
    assert parts.token_embedding().extra.shape[0] == 1 + 4 * 2  # ob1 + sks1..sks8
    assert losses and losses[0]["alignment"] > 0 and losses[0]["normal"] > 0


def test_training_seed_reproduces():
    first = train_seas(_data(), model=TINY_SD, category="tiny", config=_config(seed=3), parts=build_tiny_parts("sd"),
                       progress=False)
    second = train_seas(_data(), model=TINY_SD, category="tiny", config=_config(seed=3), parts=build_tiny_parts("sd"),
                        progress=False)
    assert all(torch.equal(v, second.unet_state[k]) for k, v in first.unet_state.items())
    assert torch.equal(first.token_table, second.token_table)
    assert all(torch.equal(v, second.rmp_state[k]) for k, v in first.rmp_state.items())


def test_training_data_errors_name_the_cause():
    image, mask = tiny_defect_images(1)[0]
    normal = tiny_defect_images(1, defect=False)[0][0]
    with pytest.raises(SchemaError, match="a0.png"):
        SeaSData([(SupportImage(image, mask[:10], "a0.png"), "crack")], [normal], ["crack"])
    with pytest.raises(ConfigError, match="'hole' has no anomaly"):
        SeaSData([(SupportImage(image, mask, "a0.png"), "crack")], [normal], ["crack", "hole"])
    with pytest.raises(ConfigError, match="normal"):
        SeaSData([(SupportImage(image, mask, "a0.png"), "crack")], [], ["crack"])


# ---- mask head and generation -----------------------------------------------------------------


def test_mask_head_covers_the_regions_that_changed(trained):
    weights, _ = trained
    parts, rmp = load_model(weights, device="cpu")
    test_images = tiny_defect_images(6, seed=11)  # unseen images with a painted defect each
    probability = predict_mask(parts, rmp, [image for image, _ in test_images], [anomaly_prompt(0)] * 6, timestep=20)
    inside = np.mean([p[m].mean() for (_, m), p in zip(test_images, probability)])
    outside = np.mean([p[~m].mean() for (_, m), p in zip(test_images, probability)])
    recall = np.mean([(p[m] > 0.2).mean() for (_, m), p in zip(test_images, probability)])
    area = np.mean([(p > 0.2).mean() for p in probability])
    assert inside > 2 * outside
    assert recall > 0.7 and area < 0.5


def test_generated_mask_is_the_thresholded_mean_of_the_last_steps(trained):
    weights, _ = trained
    parts, rmp = load_model(weights, device="cpu")
    images = D.images_to_tensor([example_source().data.pixels, example_source(seed=1).data.pixels], 64)
    seen = {}

    def record(i, t, tensors):
        if "probability" in tensors:
            seen[i] = tensors["probability"].clone()

    out, probability = seas_generate(parts, rmp, images, [anomaly_prompt(0), NORMAL_PROMPT],
                                     generators=D.cpu_generators([0, 1]), steps=5, mask_steps=3, callback=record)
    assert sorted(seen) == [2, 3, 4]
    assert torch.allclose(probability, torch.stack(list(seen.values())).mean(0))
    assert out.shape == (2, 3, 64, 64) and probability.shape == (2, 64, 64)

    binary = SeaS(weights=str(trained[1]), steps=5, device="cpu", threshold=0.3)
    soft = SeaS(weights=str(trained[1]), steps=5, device="cpu", threshold=0.3, target="soft")
    a, b = binary(example_source(), seed=4), soft(example_source(), seed=4)
    assert np.array_equal(a.data.pixels, b.data.pixels)
    assert b.target.dtype == np.float32 and np.array_equal(a.target, (b.target > 0.3).astype(np.uint8))


def test_generator_seeds_shapes_and_round_trip(trained, tmp_path):
    weights, folder = trained
    gen = anomalykit.get_generator("seas", weights=str(folder), steps=4, device="cpu")
    source = example_source()
    a, b, c = gen(source, seed=1), gen(source, seed=1), gen(source, seed=2)
    assert np.array_equal(a.data.pixels, b.data.pixels) and np.array_equal(a.target, b.target)
    assert not np.array_equal(a.data.pixels, c.data.pixels)
    assert a.label == 1 and a.defect == "crack" and a.target.shape == (64, 64)
    assert a.provenance["threshold"] == 0.2 and a.provenance["prompt"] == anomaly_prompt(0)
    assert gen.generate_batch([source], [1])[0].data.pixels.tobytes() == a.data.pixels.tobytes()

    loaded = SeaSWeights.load(folder)
    assert loaded.defects == ["crack"] and loaded.tokens[:2] == ["ob1", "sks1"]
    assert torch.equal(loaded.token_table, weights.token_table)
    assert all(torch.equal(v, loaded.unet_state[k]) for k, v in weights.unet_state.items())
    assert all(torch.equal(v, loaded.rmp_state[k]) for k, v in weights.rmp_state.items())
    copy = loaded.save(tmp_path / "copy")
    again = SeaS(weights=str(copy), steps=4, device="cpu")(source, seed=1)
    assert np.array_equal(again.data.pixels, a.data.pixels) and np.array_equal(again.target, a.target)

    grey = anomalykit.Sample(key="g", dataset="t", split="train", label=0,
                             data=anomalykit.Image(source.data.pixels[:40, :48, :1]))
    out = gen(grey, seed=0)
    assert out.data.pixels.shape == (40, 48, 1) and out.target.shape == (40, 48)


def test_generator_bad_input(trained, tmp_path):
    _, folder = trained
    with pytest.raises(ConfigError, match="weights=PATH"):
        SeaS()(example_source(), seed=0)
    with pytest.raises(ConfigError, match="seas.json"):
        SeaS(weights=str(tmp_path))(example_source(), seed=0)
    with pytest.raises(ConfigError, match="'hole' is not in the weights"):
        SeaS(weights=str(folder), defect="hole", device="cpu")(example_source(), seed=0)
    with pytest.raises(ConfigError, match="mask_steps"):
        SeaS(weights=str(folder), steps=2, mask_steps=3, device="cpu")(example_source(), seed=0)
    with pytest.raises(ConfigError, match="offline-org/missing"):
        SeaS(weights=str(folder), model="offline-org/missing", device="cpu")(example_source(), seed=0)
    with pytest.raises(ConfigError, match="threshold"):
        SeaS(weights=str(folder), threshold=1.5)


def test_training_script_and_corpus(tmp_path, monkeypatch):
    from anomalykit.shards import read_shards
    from anomalykit.testing import build

    built = build("mvtec_ad", tmp_path / "mvtec", categories={"bottle": ("broken_large", "contamination")},
                  n_defect=3, size=32)
    out = tmp_path / "weights"
    monkeypatch.setattr(sys, "argv", ["train_seas.py", "--from", "mvtec_ad", "--root", str(built.root),
                                      "--category", "bottle", "--out", str(out), "--model", TINY_SD, "--steps", "1",
                                      "--rmp-steps", "1", "--gradient-accumulation", "1", "--rmp-hidden", "16",
                                      "--rmp-heads", "2", "--rmp-layers", "1", "--device", "cpu", "--no-progress",
                                      "--preview", "1"])
    runpy.run_path(str(SCRIPTS / "train_seas.py"), run_name="__main__")
    weights = SeaSWeights.load(out)
    assert weights.defects == ["broken_large", "contamination"] and weights.category == "bottle"
    assert weights.train["anomalies"] == 2 and weights.train["normals"] == 3  # a third of 3 per defect
    assert (out / "preview.png").stat().st_size > 0

    from typer.testing import CliRunner

    from anomalykit.cli import app

    result = CliRunner().invoke(app, ["generate", "image", "seas", "--from", "mvtec_ad", "--root", str(built.root),
                                      "--out", str(tmp_path / "corpus"), "-o", f"weights={out}", "-o", "steps=3",
                                      "-o", "device=cpu", "--contact-sheet", "2"])
    assert result.exit_code == 0, result.output
    samples = list(read_shards(tmp_path / "corpus"))
    normals = anomalykit.load("mvtec_ad", built.root, category="bottle").filter(split="train", label=0)
    assert len(samples) == len(normals)
    assert all(s.label == 1 and s.defect in weights.defects and s.target.shape == (32, 32) for s in samples)
    assert (tmp_path / "corpus" / "contact_sheet.png").is_file()


def test_example_is_small_and_runs():
    params, source = SeaS.example()
    sample = SeaS(**params)(source, seed=0)
    assert sample.label == 1 and sample.target.shape == source.data.pixels.shape[:2]


def test_training_script_refuses_options_that_do_not_apply(tmp_path):
    main = runpy.run_path(str(SCRIPTS / "train_seas.py"))["main"]
    with pytest.raises(ConfigError, match="--normal-folder: applies to --folder"):
        main(["--from", "mvtec_ad", "--root", str(tmp_path), "--normal-folder", str(tmp_path), "--category", "bottle",
              "--out", str(tmp_path / "w")])
    with pytest.raises(ConfigError, match="--root: applies to --from"):
        main(["--folder", str(tmp_path), "--normal-folder", str(tmp_path), "--root", str(tmp_path),
              "--category", "bottle", "--out", str(tmp_path / "w")])
