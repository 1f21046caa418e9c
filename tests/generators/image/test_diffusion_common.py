"""Shared diffusion pieces: model loading, added tokens, attention capture, schedules, losses."""

from __future__ import annotations

import math

import pytest
import torch

from anomalykit.errors import ConfigError
from anomalykit.generators.image import _diffusion as D
from anomalykit.generators.image._tiny import TINY_LDM, TINY_SD, build_tiny_parts, save_tiny_pipeline
from anomalykit.losses import box_supervision_weight, focal_loss, masked_denoising_loss, weak_box_focal_loss


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    # tiny models: one thread is faster than several competing for a busy CPU
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.mark.parametrize("kind", ["sd", "ldm"])
def test_saved_tiny_pipeline_loads_by_path(tmp_path, kind):
    folder = save_tiny_pipeline(tmp_path / kind, kind)
    loaded = D.load_parts(str(folder), device="cpu")
    built = build_tiny_parts(kind)
    assert loaded.family == (D.ModelFamily.SD if kind == "sd" else D.ModelFamily.LDM)
    assert loaded.resolution == 64 and loaded.latent_size == 8
    for (name, a), (_, b) in zip(loaded.unet.state_dict().items(), built.unet.state_dict().items()):
        assert torch.equal(a, b), name
    ids = loaded.tokenize(["a photo of the defect"])
    assert torch.equal(ids, built.tokenize(["a photo of the defect"]))
    assert torch.allclose(loaded.encode_ids(ids), built.encode_ids(ids))


def test_tiny_ids_resolve(tmp_path):
    assert D.load_parts(TINY_LDM, device="cpu").family is D.ModelFamily.LDM
    assert D.load_parts(TINY_SD, device="cpu").family is D.ModelFamily.SD


def test_offline_checkpoint_id_gives_clear_error(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    with pytest.raises(ConfigError) as info:
        D.load_parts("no-such-org/no-such-model", device="cpu")
    assert "no-such-org/no-such-model" in str(info.value) and "HF_HUB_OFFLINE" in str(info.value)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match="model_index.json"):
        D.load_parts(str(tmp_path / "empty"), device="cpu")


def test_added_token_starts_from_init_word_and_keeps_base_table():
    parts = build_tiny_parts("sd")
    base = parts.text_encoder.get_input_embeddings().weight.detach().clone()
    (token_id,) = parts.add_tokens(["<bottle-crack>"], "defect")
    table = parts.token_embedding()
    defect_id = parts.tokenizer("defect", add_special_tokens=False).input_ids
    assert token_id == table.num_base == base.shape[0]
    assert torch.equal(table.extra[0], base[defect_id].mean(0))
    assert torch.equal(table.base.weight, base)
    # the prompt with the new token reads the new row
    with_token = parts.encode_prompts(["a <bottle-crack>"])
    with_word = parts.encode_prompts(["a defect"])
    assert torch.allclose(with_token, with_word, atol=1e-6)
    assert parts.add_tokens(["<bottle-crack>"], "defect") == [token_id]  # idempotent
    with pytest.raises(ConfigError, match="already a word"):
        parts.add_tokens(["defect</w>"], "defect")


def test_attention_capture_matches_default_attention_and_restores_processors():
    parts = build_tiny_parts("sd")
    generator = torch.Generator().manual_seed(0)
    latents = torch.randn(2, 4, 8, 8, generator=generator)
    context = parts.encode_prompts(["a photo of the defect", "a bottle"])
    t = torch.tensor([10, 700])
    before = {k: type(v) for k, v in parts.unet.attn_processors.items()}
    with torch.no_grad():
        reference = parts.unet(latents, t, context).sample
        with D.capture_cross_attention(parts.unet, (1, 2)) as store:
            captured = parts.unet(latents, t, context).sample
    assert torch.allclose(reference, captured, atol=1e-5)
    assert {k: type(v) for k, v in parts.unet.attn_processors.items()} == before
    maps1, maps2 = store.maps(1), store.maps(2)
    assert maps1.shape == (2, parts.max_length, 4, 4) and maps2.shape == (2, parts.max_length, 2, 2)
    assert torch.allclose(maps1.sum(1), torch.ones(2, 4, 4), atol=1e-5)  # softmax over tokens
    with pytest.raises(ConfigError, match="no cross-attention"):
        with D.capture_cross_attention(parts.unet, (0,)):
            pass


def test_feature_modules_have_the_declared_channels():
    parts = build_tiny_parts("sd")
    with torch.no_grad(), D.capture_outputs(D.unet_feature_modules(parts.unet)) as feats:
        parts.unet(torch.zeros(1, 4, 8, 8), 5, parts.encode_prompts(["a"]))
    assert [f.shape[1] for f in feats] == list(D.unet_feature_channels(parts.unet))
    assert [f.shape[-1] for f in feats] == [4, 8]
    with torch.no_grad(), D.capture_outputs(D.vae_feature_modules(parts.vae)) as vae_feats:
        parts.decode_latents(torch.zeros(1, 4, 8, 8))
    assert [f.shape[1] for f in vae_feats] == D.vae_feature_channels(parts.vae)
    assert [f.shape[-1] for f in vae_feats] == [16, 32, 64]


def test_extended_noise_level_matches_seas_numbers():
    config = build_tiny_parts("sd").scheduler_config
    assert math.sqrt(D.alpha_bar_at(config, 1500)) == pytest.approx(0.0178, abs=5e-4)
    from diffusers import DDPMScheduler

    reference = DDPMScheduler(beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012).alphas_cumprod[-1]
    assert D.alpha_bar_at(config, 1000) == pytest.approx(float(reference), rel=1e-4)


def test_per_sample_generators_make_batch_independent_noise():
    a = D.randn((4, 2, 2), D.cpu_generators([1, 2]), "cpu", torch.float32)
    b = D.randn((4, 2, 2), D.cpu_generators([2]), "cpu", torch.float32)
    assert torch.equal(a[1], b[0]) and not torch.equal(a[0], a[1])


def test_device_and_dtype_resolution():
    assert D.resolve_device("cpu").type == "cpu"
    assert D.resolve_dtype("auto", torch.device("cpu")) is torch.float32
    assert D.resolve_dtype("auto", torch.device("cuda")) is torch.float16
    with pytest.raises(ConfigError, match="dtype"):
        D.resolve_dtype("float8")
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="CUDA"):
            D.resolve_device("cuda")


# ---- losses -----------------------------------------------------------------------------------


def test_masked_denoising_loss_only_sees_the_mask_and_is_not_area_normalised():
    g = torch.Generator().manual_seed(0)
    predicted, target = torch.randn(2, 4, 8, 8, generator=g), torch.randn(2, 4, 8, 8, generator=g)
    mask = torch.zeros(2, 1, 8, 8)
    mask[:, :, 2:4, 2:5] = 1
    loss = masked_denoising_loss(predicted, target, mask)
    outside = predicted.clone()
    outside[:, :, 6:, 6:] += 5.0
    assert masked_denoising_loss(outside, target, mask) == loss
    inside = predicted.clone()
    inside[:, :, 2, 2] += 5.0
    assert masked_denoising_loss(inside, target, mask) > loss
    expected = ((predicted - target) ** 2 * mask).sum() / predicted.numel()
    assert torch.allclose(loss, expected)
    assert masked_denoising_loss(predicted, target, torch.zeros_like(mask)) == 0


def test_focal_loss_values():
    probs = torch.tensor([[0.9, 0.2], [0.1, 0.8]]).reshape(1, 2, 1, 2)  # pixel 0: class 0, pixel 1: class 1
    target = torch.tensor([[[0, 1]]])
    per_pixel = focal_loss(probs, target, smoothing=0.0, reduction="none")
    expected = torch.tensor([-(0.1 ** 2) * math.log(0.9), -(0.2 ** 2) * math.log(0.8)])
    assert torch.allclose(per_pixel.flatten(), expected, atol=1e-6)
    assert focal_loss(probs, target, smoothing=0.0) == pytest.approx(float(expected.mean()), abs=1e-6)
    wrong = focal_loss(probs, 1 - target, smoothing=0.0)
    assert wrong > 10 * focal_loss(probs, target, smoothing=0.0)
    # a float mask of whole numbers is a class target; a soft one would be truncated, so it is refused
    assert focal_loss(probs, target.float(), smoothing=0.0) == focal_loss(probs, target, smoothing=0.0)
    with pytest.raises(ValueError, match="fractional"):
        focal_loss(probs, torch.tensor([[[0.0, 0.7]]]))
    with pytest.raises(ValueError, match="fractional"):
        weak_box_focal_loss(probs, torch.tensor([[[0.0, 0.7]]]))


def test_weak_box_loss_ignores_confident_normal_pixels_inside_the_box():
    box = torch.zeros(1, 4, 4)
    box[:, 1:3, 1:3] = 1
    anomaly = torch.full((1, 4, 4), 0.05)
    anomaly[0, 1, 1] = 0.9  # the detector already sees this pixel of the box
    probs = torch.stack([1 - anomaly, anomaly], 1)
    weight = box_supervision_weight(probs[:, 1], box, tau=0.1)
    assert weight[0, 1, 1] == 1 and weight[0, 2, 2] == 0 and weight[0, 0, 0] == 1
    loss = weak_box_focal_loss(probs, box, tau=0.1)
    per_pixel = focal_loss(probs, box, reduction="none")
    assert torch.allclose(loss, (per_pixel * weight).mean())
    # with tau = 0 every box pixel with p > 0 is supervised: the box is (almost) a full label
    assert weak_box_focal_loss(probs, box, tau=0.0) > loss


def test_preview_png_leaves_the_matplotlib_backend_alone(tmp_path, monkeypatch):
    import matplotlib
    import numpy as np

    from anomalykit.schema import Image, Sample

    switched = []
    monkeypatch.setattr(matplotlib, "use", lambda *a, **k: switched.append(a))
    target = np.zeros((16, 16), np.uint8)
    target[4:9, 4:9] = 1
    out = Sample(key="g", dataset="d", split="train", label=1, data=Image(np.full((16, 16, 3), 90, np.uint8)),
                 defect="crack", target=target)
    path = D.write_preview(tmp_path / "preview.png", [np.zeros((16, 16, 3), np.uint8)], [out], "title")
    assert switched == [] and path.read_bytes()[:4] == b"\x89PNG"
