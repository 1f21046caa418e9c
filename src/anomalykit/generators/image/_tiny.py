"""Tiny diffusion components built from configs, for smoke tests of AnoGen and SeaS on CPU.

The components have the architecture of the real checkpoints (a text-conditioned U-Net with
cross-attention at 1/2 and 1/4 of the latent resolution, an f = 8 ``AutoencoderKL``, a CLIP or
LDM-BERT text encoder and a BPE/WordPiece tokenizer whose vocabulary files are written here), but
with a handful of channels, so a forward pass at 64 x 64 pixels takes milliseconds. Weights are
random (seeded), so the images they make are noise: they prove the mechanics, not the quality.

Two model ids resolve to them anywhere a ``model=`` is accepted: ``anomalykit:tiny-sd`` (Stable
Diffusion 1.x layout) and ``anomalykit:tiny-ldm`` (LDM text-to-image layout with LDM-BERT).

>>> from anomalykit.generators.image._tiny import build_tiny_parts, save_tiny_pipeline
>>> parts = build_tiny_parts("sd")                                   # doctest: +SKIP
>>> save_tiny_pipeline("/tmp/tiny-sd", "sd")                         # a folder usable as model=  # doctest: +SKIP
"""

from __future__ import annotations

import json
import string
from pathlib import Path
from typing import Any

import numpy as np

TINY_SD = "anomalykit:tiny-sd"
TINY_LDM = "anomalykit:tiny-ldm"
TINY_IDS = {TINY_SD: "sd", TINY_LDM: "ldm"}

#: tokens of the tiny vocabularies (every other word is spelled letter by letter)
TINY_WORDS = ("a", "photo", "of", "the", "defect", "object", "with", "crack", "scratch", "bottle")
TINY_MAX_LENGTH = 16
TINY_RESOLUTION = 64
_HIDDEN = 32


def write_clip_tokenizer_files(folder: str | Path) -> Path:
    """Write ``vocab.json`` and ``merges.txt`` of a small CLIP BPE vocabulary into ``folder``.

    The vocabulary holds the start/end tokens, every lowercase letter and digit (alone and as a
    word end ``x</w>``), and merges that make each of ``TINY_WORDS`` a single token.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    vocab: dict[str, int] = {"<|startoftext|>": 0, "<|endoftext|>": 1}
    for char in string.ascii_lowercase + string.digits + "*-_<>.,'!":
        vocab[char] = len(vocab)
        vocab[char + "</w>"] = len(vocab)
    merges: list[str] = []
    for word in TINY_WORDS:
        if len(word) == 1:
            continue
        current = word[0]
        for i, char in enumerate(word[1:], 1):
            piece = char + ("</w>" if i == len(word) - 1 else "")
            merge = f"{current} {piece}"
            current += piece
            if merge not in merges:
                merges.append(merge)
            vocab.setdefault(current, len(vocab))
    (folder / "vocab.json").write_text(json.dumps(vocab), encoding="utf-8")
    (folder / "merges.txt").write_text("#version: 0.2\n" + "\n".join(merges) + "\n", encoding="utf-8")
    return folder


def write_bert_vocab_file(folder: str | Path) -> Path:
    """Write a small WordPiece ``vocab.txt`` (special tokens, the tiny words, letters as pieces)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tokens = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *TINY_WORDS]
    for char in string.ascii_lowercase + string.digits + "*-_<>.,'!":
        tokens += [char, "##" + char]
    unique = list(dict.fromkeys(tokens))
    (folder / "vocab.txt").write_text("\n".join(unique) + "\n", encoding="utf-8")
    return folder


def _tiny_tokenizer(kind: str, scratch: Path):
    if kind == "sd":
        from transformers import CLIPTokenizer

        return CLIPTokenizer.from_pretrained(write_clip_tokenizer_files(scratch), model_max_length=TINY_MAX_LENGTH)
    from transformers import BertTokenizer

    return BertTokenizer.from_pretrained(write_bert_vocab_file(scratch), model_max_length=TINY_MAX_LENGTH)


def tiny_unet_config() -> dict[str, Any]:
    """A 3-level U-Net: cross-attention in the 1/2 and 1/4 levels (down_blocks 1, 2; up_blocks 0, 1)."""
    return dict(
        sample_size=TINY_RESOLUTION // 8,
        in_channels=4,
        out_channels=4,
        layers_per_block=1,
        block_out_channels=(16, 32, 32),
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=_HIDDEN,
        attention_head_dim=4,
        norm_num_groups=8,
    )


def tiny_vae_config() -> dict[str, Any]:
    """An f = 8 ``AutoencoderKL`` (four levels, three upsampling decoder blocks) with 8-16 channels."""
    return dict(
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D",) * 4,
        up_block_types=("UpDecoderBlock2D",) * 4,
        block_out_channels=(8, 8, 16, 16),
        layers_per_block=1,
        latent_channels=4,
        norm_num_groups=4,
        sample_size=TINY_RESOLUTION,
        scaling_factor=0.18215,
    )


def tiny_scheduler_config() -> dict[str, Any]:
    """The noise schedule of LDM text2img-large and SD 1.x (scaled-linear 0.00085 -> 0.012, 1000 steps)."""
    return dict(num_train_timesteps=1000, beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                clip_sample=False, set_alpha_to_one=False, steps_offset=1, prediction_type="epsilon")


def build_tiny_components(kind: str = "sd", seed: int = 0) -> dict[str, Any]:
    """Randomly initialised (seeded) tiny components: ``unet``, ``vae``, ``text_encoder``,
    ``tokenizer``, ``scheduler``. ``kind`` is ``"sd"`` (CLIP) or ``"ldm"`` (LDM-BERT)."""
    import tempfile

    import torch
    from diffusers import AutoencoderKL, DDIMScheduler, UNet2DConditionModel

    if kind not in ("sd", "ldm"):
        raise ValueError(f"kind must be 'sd' or 'ldm', got {kind!r}")
    with tempfile.TemporaryDirectory(prefix="anomalykit-tiny-") as scratch:
        tokenizer = _tiny_tokenizer(kind, Path(scratch))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        unet = UNet2DConditionModel(**tiny_unet_config())
        vae = AutoencoderKL(**tiny_vae_config())
        if kind == "sd":
            from transformers import CLIPTextConfig, CLIPTextModel

            text_encoder = CLIPTextModel(CLIPTextConfig(
                vocab_size=len(tokenizer), hidden_size=_HIDDEN, intermediate_size=48, num_attention_heads=4,
                num_hidden_layers=2, max_position_embeddings=TINY_MAX_LENGTH, bos_token_id=0, eos_token_id=1,
                pad_token_id=1, projection_dim=_HIDDEN))
        else:
            from diffusers.pipelines.latent_diffusion.pipeline_latent_diffusion import LDMBertConfig, LDMBertModel

            text_encoder = LDMBertModel(LDMBertConfig(
                vocab_size=len(tokenizer), max_position_embeddings=TINY_MAX_LENGTH, encoder_layers=2,
                encoder_ffn_dim=48, encoder_attention_heads=4, head_dim=8, d_model=_HIDDEN))
    for module in (unet, vae, text_encoder):
        module.requires_grad_(False)
        module.eval()
    return dict(unet=unet, vae=vae, text_encoder=text_encoder, tokenizer=tokenizer,
                scheduler=DDIMScheduler(**tiny_scheduler_config()))


def save_tiny_pipeline(folder: str | Path, kind: str = "sd", seed: int = 0) -> Path:
    """Save the tiny components in the layout of ``save_pretrained`` (``model_index.json`` and one
    folder per component): the folder loads like a Hub checkpoint, also with
    ``DiffusionPipeline.from_pretrained``. Written component by component, which avoids importing
    the pipeline classes."""
    import diffusers

    folder = Path(folder)
    c = build_tiny_components(kind, seed)
    if kind == "sd":
        names = {"vae": ("diffusers", "AutoencoderKL"), "text_encoder": ("transformers", "CLIPTextModel"),
                 "tokenizer": ("transformers", "CLIPTokenizer")}
        index: dict[str, Any] = {"_class_name": "StableDiffusionPipeline", "feature_extractor": [None, None],
                                 "image_encoder": [None, None], "safety_checker": [None, None],
                                 "requires_safety_checker": False}
        objects = {"vae": c["vae"], "text_encoder": c["text_encoder"], "tokenizer": c["tokenizer"]}
    else:
        names = {"vqvae": ("diffusers", "AutoencoderKL"), "bert": ("latent_diffusion", "LDMBertModel"),
                 "tokenizer": ("transformers", "BertTokenizer")}
        index = {"_class_name": "LDMTextToImagePipeline"}
        objects = {"vqvae": c["vae"], "bert": c["text_encoder"], "tokenizer": c["tokenizer"]}
    names.update(unet=("diffusers", "UNet2DConditionModel"), scheduler=("diffusers", "DDIMScheduler"))
    objects.update(unet=c["unet"], scheduler=c["scheduler"])
    for name, obj in objects.items():
        obj.save_pretrained(folder / name)
    index.update({name: list(value) for name, value in names.items()})
    index["_diffusers_version"] = diffusers.__version__
    (folder / "model_index.json").write_text(json.dumps(index, indent=2, sort_keys=True), encoding="utf-8")
    return folder


def build_tiny_parts(kind: str = "sd", seed: int = 0, device: str = "cpu"):
    """The tiny components wrapped as ``DiffusionParts`` (what ``load_parts`` returns)."""
    from ._diffusion import DiffusionParts, ModelFamily

    c = build_tiny_components(kind, seed)
    family = ModelFamily.SD if kind == "sd" else ModelFamily.LDM
    parts = DiffusionParts(unet=c["unet"], vae=c["vae"], text_encoder=c["text_encoder"], tokenizer=c["tokenizer"],
                           scheduler_config=dict(c["scheduler"].config), family=family,
                           model_id=TINY_SD if kind == "sd" else TINY_LDM)
    return parts.to(device)


def tiny_defect_images(n: int, size: int = TINY_RESOLUTION, seed: int = 0, *, defect: bool = True,
                       ) -> list[tuple[np.ndarray, np.ndarray]]:
    """``n`` synthetic (image, mask) pairs: a smooth grey product on a dark background, with a
    bright rectangular defect when ``defect`` (the mask marks it; all-False otherwise)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size] / size
    out = []
    for _ in range(n):
        base = 60 + 40 * np.sin(6 * xx + rng.uniform(0, 6)) * np.cos(5 * yy + rng.uniform(0, 6))
        disc = ((xx - 0.5) ** 2 + (yy - 0.5) ** 2) < 0.16
        image = np.where(disc, base + 60, 20).astype(np.float64)
        mask = np.zeros((size, size), bool)
        if defect:
            h, w = rng.integers(size // 8, size // 4 + 1, size=2)
            y, x = rng.integers(size // 4, size - size // 4 - h + 1), rng.integers(size // 4, size - size // 4 - w + 1)
            mask[y:y + h, x:x + w] = True
            image[mask] = 240
        rgb = np.stack([image, image * 0.9, image * 0.8], axis=-1)
        rgb += rng.normal(0, 3, rgb.shape)
        out.append((np.clip(rgb, 0, 255).astype(np.uint8), mask))
    return out


_EXAMPLE_DIRS: dict[str, Path] = {}


def example_source(size: int = TINY_RESOLUTION, seed: int = 0):
    """A normal image ``Sample`` (a tiny synthetic product) to feed the diffusion generators."""
    from ...schema import Image, Sample

    image, _ = tiny_defect_images(1, size, seed, defect=False)[0]
    return Sample(key="tiny/good/000.png", dataset="tiny", split="train", label=0, data=Image(image),
                  category="tiny", target=np.zeros((size, size), np.uint8))


def example_weights(method: str) -> Path:
    """Untrained (seeded) weights of ``method`` (``anogen`` or ``seas``) for the tiny SD model,
    written once per process to a temporary folder: enough to run the generator end to end."""
    import atexit
    import shutil
    import tempfile

    if method in _EXAMPLE_DIRS and _EXAMPLE_DIRS[method].is_dir():
        return _EXAMPLE_DIRS[method]
    folder = Path(tempfile.mkdtemp(prefix=f"anomalykit-{method}-example-"))
    atexit.register(shutil.rmtree, folder, True)
    if method == "anogen":
        from .anogen import AnoGenEmbedding, AnoGenWeights, _spec, token_for

        vector = np.random.default_rng(0).normal(0, 0.02, _HIDDEN).astype(np.float32)
        AnoGenWeights(TINY_SD, TINY_RESOLUTION, [AnoGenEmbedding("tiny", "crack", token_for("tiny", "crack"), vector,
                                                                  _spec((0.2, 0.4)))]).save(folder)
    elif method == "seas":
        from .seas import SeaSTrainConfig, untrained_weights

        untrained_weights(TINY_SD, "tiny", ["crack"], SeaSTrainConfig(rmp_hidden=16, rmp_heads=2, rmp_layers=1)).save(folder)
    else:
        raise ValueError(f"no example weights for {method!r}")
    _EXAMPLE_DIRS[method] = folder
    return folder
