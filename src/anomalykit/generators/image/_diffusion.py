"""Diffusion pieces shared by AnoGen and SeaS: model loading, added tokens, attention and feature
capture, noise schedules, device selection.

What runs where: every function takes the device and dtype of the ``DiffusionParts`` it is given.
``resolve_device("auto")`` picks CUDA when available (then ``resolve_dtype("auto")`` picks float16
and the U-Net uses PyTorch's fused scaled-dot-product attention, ``AttnProcessor2_0``) and falls
back to the CPU in float32. Random numbers are drawn from per-sample CPU ``torch.Generator``s and
moved to the device, so a seed gives the same noise on every device.

>>> parts = load_parts("CompVis/ldm-text2im-large-256", device="auto")    # doctest: +SKIP
>>> parts.family, parts.resolution                                          # doctest: +SKIP
(<ModelFamily.LDM: 'ldm-text2im'>, 256)
"""

from __future__ import annotations

import contextlib
import json
import math
import threading
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ...errors import ConfigError

__all__ = [
    "ModelFamily",
    "DiffusionParts",
    "ExtendedTokenEmbedding",
    "load_parts",
    "get_parts",
    "resolve_device",
    "resolve_dtype",
    "capture_cross_attention",
    "capture_outputs",
    "unet_feature_modules",
    "vae_feature_modules",
    "ddim_scheduler",
    "dpm_solver_scheduler",
    "alpha_bar_at",
    "randn",
    "images_to_tensor",
    "tensor_to_images",
    "resize_masks",
    "progress_bar",
]


class ModelFamily(str, Enum):
    """The two checkpoint layouts supported: Stable Diffusion 1.x and LDM text-to-image."""

    SD = "stable-diffusion"
    LDM = "ldm-text2im"


# --------------------------------------------------------------------------------------------
# devices


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``"auto"``: the first CUDA GPU when one is visible, else the CPU."""
    if isinstance(device, torch.device):
        return device
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except RuntimeError as exc:
        raise ConfigError(f"device: {device!r} is not a torch device ({exc})") from None
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device: {device!r} asked for, but no CUDA GPU is visible (use device='auto' or 'cpu')")
    return resolved


_DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


def resolve_dtype(dtype: str | torch.dtype = "auto", device: torch.device | None = None) -> torch.dtype:
    """``"auto"``: float16 on a GPU (half precision), float32 on the CPU."""
    if isinstance(dtype, torch.dtype):
        return dtype
    if dtype == "auto":
        return torch.float16 if device is not None and device.type == "cuda" else torch.float32
    if dtype not in _DTYPES:
        raise ConfigError(f"dtype: {dtype!r} is not one of auto, {', '.join(_DTYPES)}")
    return _DTYPES[dtype]


# --------------------------------------------------------------------------------------------
# added tokens


class ExtendedTokenEmbedding(nn.Module):
    """A token-embedding table extended by learnable rows for added tokens.

    Ids below ``num_base`` read the original table (``base``); ids from ``num_base`` on read
    ``extra``. Keeping the rows apart lets textual inversion train ``extra`` while the original
    table stays bit-identical, and lets SeaS train both with different optimiser settings.
    """

    def __init__(self, base: nn.Embedding) -> None:
        super().__init__()
        self.base = base
        self.num_base = int(base.num_embeddings)
        self.extra = nn.Parameter(torch.zeros(0, base.embedding_dim, dtype=base.weight.dtype,
                                              device=base.weight.device), requires_grad=False)

    @property
    def weight(self) -> torch.Tensor:
        return self.base.weight

    @property
    def embedding_dim(self) -> int:
        return int(self.base.embedding_dim)

    @property
    def num_embeddings(self) -> int:
        return self.num_base + int(self.extra.shape[0])

    def append(self, rows: torch.Tensor) -> None:
        """Add rows (``[n, dim]``) at the end of ``extra``."""
        requires_grad = self.extra.requires_grad
        data = torch.cat([self.extra.detach(), rows.to(self.extra.dtype).to(self.extra.device)], 0)
        self.extra = nn.Parameter(data, requires_grad=requires_grad)

    def full_table(self) -> torch.Tensor:
        return torch.cat([self.base.weight, self.extra], 0)

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        is_extra = input_ids >= self.num_base
        out = self.base(input_ids.masked_fill(is_extra, 0))
        if bool(is_extra.any()):
            index = (input_ids - self.num_base).clamp(min=0)
            if int(index.max()) >= self.extra.shape[0]:
                raise ConfigError(f"token id {int(input_ids.max())} has no embedding row "
                                  f"(table has {self.num_embeddings} rows)")
            rows = F.embedding(index, self.extra).to(out.dtype)
            out = torch.where(is_extra.unsqueeze(-1), rows, out)
        return out


# --------------------------------------------------------------------------------------------
# the loaded model


@dataclass
class DiffusionParts:
    """The pieces of a text-to-image latent diffusion model that AnoGen and SeaS use."""

    unet: Any
    vae: Any
    text_encoder: Any
    tokenizer: Any
    scheduler_config: dict[str, Any]
    family: ModelFamily
    model_id: str
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    dtype: torch.dtype = torch.float32

    def to(self, device: str | torch.device = "cpu", dtype: torch.dtype | None = None) -> DiffusionParts:
        self.device = resolve_device(device)
        self.dtype = dtype or self.dtype
        for module in (self.unet, self.vae, self.text_encoder):
            if module.dtype != self.dtype:
                module.to(dtype=self.dtype)
            module.to(device=self.device)
        if self.device.type == "cuda":
            from diffusers.models.attention_processor import AttnProcessor2_0

            self.unet.set_attn_processor(AttnProcessor2_0())
        return self

    # geometry ---------------------------------------------------------------------------------
    @property
    def vae_factor(self) -> int:
        return 2 ** (len(self.vae.config.block_out_channels) - 1)

    @property
    def latent_size(self) -> int:
        size = self.unet.config.sample_size
        return int(size if isinstance(size, int) else size[0])

    @property
    def resolution(self) -> int:
        """The pixel resolution the U-Net was trained at (256 for LDM text2img-large, 512 for SD)."""
        return self.latent_size * self.vae_factor

    @property
    def latent_scale(self) -> float:
        return float(getattr(self.vae.config, "scaling_factor", 0.18215) or 0.18215)

    @property
    def latent_channels(self) -> int:
        return int(self.unet.config.in_channels)

    # text -------------------------------------------------------------------------------------
    @property
    def max_length(self) -> int:
        return int(min(self.tokenizer.model_max_length, 77))

    def tokenize(self, prompts: Sequence[str]) -> torch.Tensor:
        ids = self.tokenizer(list(prompts), padding="max_length", max_length=self.max_length, truncation=True,
                             return_tensors="pt").input_ids
        return ids.to(self.device)

    def encode_ids(self, input_ids: torch.Tensor) -> torch.Tensor:
        return self.text_encoder(input_ids.to(self.device))[0]

    def encode_prompts(self, prompts: Sequence[str]) -> torch.Tensor:
        return self.encode_ids(self.tokenize(prompts))

    def token_embedding(self) -> ExtendedTokenEmbedding:
        """The (extended) token-embedding table of the text encoder; installed on first use."""
        module = self.text_encoder.get_input_embeddings()
        if not isinstance(module, ExtendedTokenEmbedding):
            module = ExtendedTokenEmbedding(module)
            self.text_encoder.set_input_embeddings(module)
        return module

    def add_tokens(self, tokens: Sequence[str], init_word: str) -> list[int]:
        """Add ``tokens`` to the tokenizer with embedding rows initialised from ``init_word``.

        Tokens added before keep their row. Returns the token ids.
        """
        table = self.token_embedding()
        init_ids = [i for i in self.tokenizer(init_word, add_special_tokens=False).input_ids]
        if not init_ids:
            raise ConfigError(f"init word {init_word!r} gives no token with this tokenizer")
        ids = []
        for token in tokens:
            existing = self.tokenizer.convert_tokens_to_ids(token)
            if isinstance(existing, int) and existing != self.tokenizer.unk_token_id and existing < table.num_base:
                raise ConfigError(f"token {token!r} is already a word of the vocabulary; choose another placeholder")
            if isinstance(existing, int) and existing >= table.num_base and existing != self.tokenizer.unk_token_id:
                ids.append(existing)
                continue
            self.tokenizer.add_tokens([token])
            new_id = self.tokenizer.convert_tokens_to_ids(token)
            if new_id != table.num_embeddings:
                raise ConfigError(f"token {token!r} got id {new_id}, expected {table.num_embeddings} "
                                  "(the tokenizer and the embedding table are out of step)")
            with torch.no_grad():
                init = table.base.weight[torch.tensor(init_ids, device=table.weight.device)].mean(0, keepdim=True)
            table.append(init)
            ids.append(new_id)
        check = self.tokenizer(" ".join(tokens), add_special_tokens=False).input_ids
        if check != ids:
            raise ConfigError(f"tokens {list(tokens)} do not tokenize as single tokens ({check} != {ids})")
        return ids

    def set_token_rows(self, ids: Sequence[int], rows: torch.Tensor) -> None:
        table = self.token_embedding()
        with torch.no_grad():
            for token_id, row in zip(ids, rows):
                table.extra[token_id - table.num_base] = row.to(table.extra.dtype).to(table.extra.device)

    # images -----------------------------------------------------------------------------------
    @torch.no_grad()
    def posterior(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and standard deviation of the VAE posterior of images in [-1, 1] (unscaled)."""
        encoded = self.vae.encode(images.to(self.device, self.dtype))
        dist = getattr(encoded, "latent_dist", None)
        if dist is None:  # VQModel: a deterministic latent
            latents = encoded.latents
            return latents, torch.zeros_like(latents)
        return dist.mean, dist.std

    def encode_images(self, images: torch.Tensor, generators: Sequence[torch.Generator], *,
                      scaled: bool = True) -> torch.Tensor:
        """Sample latents of images in [-1, 1]; multiplied by the latent scale unless ``scaled=False``."""
        mean, std = self.posterior(images)
        latents = mean + std * randn(mean.shape[1:], generators, mean.device, mean.dtype)
        return latents * self.latent_scale if scaled else latents

    def decode_latents(self, latents: torch.Tensor) -> torch.Tensor:
        """Images in [-1, 1] (not clamped) from scaled latents."""
        return self.vae.decode(latents.to(self.dtype) / self.latent_scale).sample


def _read_model_index(model: str) -> dict[str, Any]:
    local = Path(model).expanduser()
    if local.is_dir():
        index = local / "model_index.json"
        if not index.is_file():
            raise ConfigError(f"model {model!r}: the folder has no model_index.json (save a pipeline with "
                              "save_pretrained, or give a Hugging Face Hub id)")
        return json.loads(index.read_text(encoding="utf-8"))
    try:
        from huggingface_hub import hf_hub_download

        return json.loads(Path(hf_hub_download(model, "model_index.json")).read_text(encoding="utf-8"))
    except Exception as exc:  # noqa: BLE001 - any hub failure means the checkpoint is not available
        raise ConfigError(
            f"model {model!r}: cannot be loaded: it is not a local folder and not in the Hugging Face cache "
            "(with HF_HUB_OFFLINE=1 the checkpoint must be available locally: download it once with "
            f"`huggingface-cli download {model}` or pass the path of a saved pipeline) [{type(exc).__name__}: {exc}]"
        ) from None


def load_parts(model: str, *, device: str | torch.device = "auto", dtype: str | torch.dtype = "auto") -> DiffusionParts:
    """Load a Stable Diffusion 1.x or LDM text-to-image checkpoint (Hub id or local folder).

    The two tiny ids of ``_tiny`` (``anomalykit:tiny-sd``, ``anomalykit:tiny-ldm``) build
    random tiny models from configs instead.
    """
    from ._tiny import TINY_IDS, build_tiny_parts

    resolved = resolve_device(device)
    torch_dtype = resolve_dtype(dtype, resolved)
    if model in TINY_IDS:
        parts = build_tiny_parts(TINY_IDS[model])
        return parts.to(resolved, torch_dtype)
    index = _read_model_index(model)
    class_name = index.get("_class_name", "")
    from diffusers import AutoencoderKL, DDIMScheduler, UNet2DConditionModel, VQModel

    try:
        if class_name == "LDMTextToImagePipeline" or "bert" in index:
            from diffusers.pipelines.latent_diffusion.pipeline_latent_diffusion import LDMBertModel
            from transformers import AutoTokenizer

            family = ModelFamily.LDM
            vae_class = VQModel if index.get("vqvae", [None, ""])[1] == "VQModel" else AutoencoderKL
            vae = vae_class.from_pretrained(model, subfolder="vqvae", torch_dtype=torch_dtype)
            text_encoder = LDMBertModel.from_pretrained(model, subfolder="bert", torch_dtype=torch_dtype)
            tokenizer = AutoTokenizer.from_pretrained(model, subfolder="tokenizer")
        elif "text_encoder" in index and "unet" in index:
            from transformers import CLIPTextModel, CLIPTokenizer

            family = ModelFamily.SD
            vae = AutoencoderKL.from_pretrained(model, subfolder="vae", torch_dtype=torch_dtype)
            text_encoder = CLIPTextModel.from_pretrained(model, subfolder="text_encoder", torch_dtype=torch_dtype)
            tokenizer = CLIPTokenizer.from_pretrained(model, subfolder="tokenizer")
        else:
            raise ConfigError(f"model {model!r}: {class_name or 'this pipeline'} is neither a Stable Diffusion 1.x "
                              "nor an LDM text-to-image pipeline")
        unet = UNet2DConditionModel.from_pretrained(model, subfolder="unet", torch_dtype=torch_dtype)
        scheduler_config = dict(DDIMScheduler.load_config(model, subfolder="scheduler"))
    except OSError as exc:
        raise ConfigError(f"model {model!r}: a component could not be loaded ({exc}); with HF_HUB_OFFLINE=1 the "
                          "whole checkpoint must be available locally") from None
    for module in (unet, vae, text_encoder):
        module.requires_grad_(False)
        module.eval()
    parts = DiffusionParts(unet=unet, vae=vae, text_encoder=text_encoder, tokenizer=tokenizer,
                           scheduler_config=scheduler_config, family=family, model_id=model)
    return parts.to(resolved, torch_dtype)


_CACHE: dict[tuple[Any, ...], Any] = {}
_CACHE_LOCK = threading.Lock()


def get_parts(key: tuple[Any, ...], build: Callable[[], Any]) -> Any:
    """A per-process cache of loaded models (generators are called once per sample)."""
    with _CACHE_LOCK:
        if key not in _CACHE:
            _CACHE[key] = build()
        return _CACHE[key]


def weights_identity(weights: str | Path) -> tuple[str, float]:
    """Where saved weights are and when they were last written (a retrained folder is reloaded)."""
    path = Path(weights).expanduser().resolve()
    files = [p for p in path.iterdir() if p.is_file()] if path.is_dir() else [path]
    return str(path), max((p.stat().st_mtime for p in files if p.exists()), default=0.0)


# --------------------------------------------------------------------------------------------
# capturing attention maps and features


class CrossAttentionStore:
    """Cross-attention probabilities recorded per group (a down block), layer by layer."""

    def __init__(self) -> None:
        self.probs: dict[int, list[torch.Tensor]] = defaultdict(list)

    def clear(self) -> None:
        self.probs.clear()

    def maps(self, group: int) -> torch.Tensor:
        """``[B, tokens, r, r]``: the block's maps averaged over its layers and heads."""
        layers = self.probs.get(group)
        if not layers:
            raise RuntimeError(f"no cross-attention was recorded in down block {group}")
        mean = torch.stack([p.mean(1) for p in layers], 0).mean(0)  # [B, HW, T]
        batch, hw, tokens = mean.shape
        side = int(round(math.sqrt(hw)))
        if side * side != hw:
            raise RuntimeError(f"attention map of {hw} positions is not square")
        return mean.permute(0, 2, 1).reshape(batch, tokens, side, side)


class CrossAttentionCaptureProcessor:
    """An attention processor that computes softmax(QK^T/sqrt(d)) explicitly and records it.

    Gradients flow through the recorded probabilities (SeaS's alignment loss needs them).
    """

    def __init__(self, store: CrossAttentionStore, group: int) -> None:
        self.store = store
        self.group = group

    def __call__(self, attn, hidden_states, encoder_hidden_states=None, attention_mask=None, temb=None,
                 *args: Any, **kwargs: Any) -> torch.Tensor:
        residual = hidden_states
        if attn.spatial_norm is not None:
            hidden_states = attn.spatial_norm(hidden_states, temb)
        input_ndim = hidden_states.ndim
        if input_ndim == 4:
            batch, channel, height, width = hidden_states.shape
            hidden_states = hidden_states.view(batch, channel, height * width).transpose(1, 2)
        batch, sequence_length, _ = hidden_states.shape if encoder_hidden_states is None else encoder_hidden_states.shape
        attention_mask = attn.prepare_attention_mask(attention_mask, sequence_length, batch)
        if attn.group_norm is not None:
            hidden_states = attn.group_norm(hidden_states.transpose(1, 2)).transpose(1, 2)
        query = attn.to_q(hidden_states)
        if encoder_hidden_states is None:
            encoder_hidden_states = hidden_states
        elif attn.norm_cross:
            encoder_hidden_states = attn.norm_encoder_hidden_states(encoder_hidden_states)
        key = attn.head_to_batch_dim(attn.to_k(encoder_hidden_states))
        value = attn.head_to_batch_dim(attn.to_v(encoder_hidden_states))
        query = attn.head_to_batch_dim(query)
        probs = attn.get_attention_scores(query, key, attention_mask)
        self.store.probs[self.group].append(probs.view(batch, attn.heads, *probs.shape[1:]))
        hidden_states = attn.batch_to_head_dim(torch.bmm(probs, value))
        hidden_states = attn.to_out[1](attn.to_out[0](hidden_states))
        if input_ndim == 4:
            hidden_states = hidden_states.transpose(-1, -2).reshape(batch, channel, height, width)
        if attn.residual_connection:
            hidden_states = hidden_states + residual
        return hidden_states / attn.rescale_output_factor


@contextlib.contextmanager
def capture_cross_attention(unet: Any, down_blocks: Sequence[int]) -> Iterator[CrossAttentionStore]:
    """Record the cross-attention (``attn2``) probabilities of the given U-Net down blocks.

    Other attention layers keep their processor (SDPA on a GPU); the original processors are
    restored on exit.
    """
    original = dict(unet.attn_processors)
    store = CrossAttentionStore()
    replaced = dict(original)
    found: set[int] = set()
    for name in original:
        for block in down_blocks:
            if name.startswith(f"down_blocks.{block}.") and ".attn2." in name:
                replaced[name] = CrossAttentionCaptureProcessor(store, block)
                found.add(block)
    missing = sorted(set(down_blocks) - found)
    if missing:
        raise ConfigError(f"U-Net down block(s) {missing} have no cross-attention layer to capture")
    unet.set_attn_processor(replaced)
    try:
        yield store
    finally:
        unet.set_attn_processor(original)


@contextlib.contextmanager
def capture_outputs(modules: Sequence[nn.Module]) -> Iterator[list[torch.Tensor | None]]:
    """Record the output of each module of ``modules`` (forward hooks, removed on exit)."""
    outputs: list[torch.Tensor | None] = [None] * len(modules)
    handles = []
    for i, module in enumerate(modules):
        def hook(_module, _inputs, output, i=i):
            outputs[i] = output[0] if isinstance(output, tuple) else output
        handles.append(module.register_forward_hook(hook))
    try:
        yield outputs
    finally:
        for handle in handles:
            handle.remove()


def unet_feature_modules(unet: Any) -> tuple[nn.Module, nn.Module]:
    """The U-Net decoder blocks whose outputs SeaS's mask head reads: the block ending at half the
    latent resolution (``up_blocks[-3]``; 1280 ch at 32^2 in SD) and the one ending at the latent
    resolution (``up_blocks[-2]``; 640 ch at 64^2)."""
    if len(unet.up_blocks) < 3:
        raise ConfigError("the U-Net needs at least 3 decoder blocks for the SeaS mask head")
    return unet.up_blocks[-3], unet.up_blocks[-2]


def unet_feature_channels(unet: Any) -> tuple[int, int]:
    reversed_channels = list(reversed(unet.config.block_out_channels))
    n = len(reversed_channels)
    return int(reversed_channels[n - 3]), int(reversed_channels[n - 2])


def vae_feature_modules(vae: Any) -> list[nn.Module]:
    """The VAE decoder blocks that upsample (SD: 512@128^2, 512@256^2, 256@512^2)."""
    return [block for block in vae.decoder.up_blocks if getattr(block, "upsamplers", None)]


def vae_feature_channels(vae: Any) -> list[int]:
    reversed_channels = list(reversed(vae.config.block_out_channels))
    return [int(reversed_channels[i]) for i, block in enumerate(vae.decoder.up_blocks)
            if getattr(block, "upsamplers", None)]


# --------------------------------------------------------------------------------------------
# schedulers and noise


def ddim_scheduler(parts: DiffusionParts):
    """DDIM with the checkpoint's betas, no sample clipping and ``set_alpha_to_one=False`` (LDM's sampler)."""
    from diffusers import DDIMScheduler

    config = {k: v for k, v in parts.scheduler_config.items() if not k.startswith("_")}
    config.update(clip_sample=False, set_alpha_to_one=False, prediction_type="epsilon")
    return DDIMScheduler.from_config(config)


def dpm_solver_scheduler(parts: DiffusionParts):
    """Multistep DPM-Solver (diffusers defaults: dpmsolver++, order 2) with the checkpoint's betas."""
    from diffusers import DPMSolverMultistepScheduler

    keep = ("num_train_timesteps", "beta_start", "beta_end", "beta_schedule", "trained_betas", "prediction_type",
            "steps_offset", "timestep_spacing")
    config = {k: v for k, v in parts.scheduler_config.items() if k in keep}
    return DPMSolverMultistepScheduler.from_config(config)


def ddpm_scheduler(parts: DiffusionParts):
    from diffusers import DDPMScheduler

    keep = ("num_train_timesteps", "beta_start", "beta_end", "beta_schedule", "trained_betas", "prediction_type")
    config = {k: v for k, v in parts.scheduler_config.items() if k in keep}
    return DDPMScheduler.from_config({**config, "clip_sample": False})


def alpha_bar_at(config: dict[str, Any], steps: int) -> float:
    """ᾱ after ``steps`` steps of the checkpoint's beta schedule stretched to ``steps`` steps
    (SeaS's ``add_noise_step = 1500``: β = linspace(√β₀, √β₁, 1500)², ᾱ = Π(1 − β))."""
    start, end = float(config.get("beta_start", 0.00085)), float(config.get("beta_end", 0.012))
    schedule = config.get("beta_schedule", "scaled_linear")
    if schedule == "scaled_linear":
        betas = np.linspace(math.sqrt(start), math.sqrt(end), steps, dtype=np.float64) ** 2
    elif schedule == "linear":
        betas = np.linspace(start, end, steps, dtype=np.float64)
    else:
        raise ConfigError(f"noise level: beta schedule {schedule!r} is not supported (scaled_linear, linear)")
    return float(np.prod(1.0 - betas))


def randn(shape: Sequence[int], generators: Sequence[torch.Generator], device: torch.device | str,
          dtype: torch.dtype) -> torch.Tensor:
    """Standard normal noise ``[len(generators), *shape]``, one CPU generator per sample."""
    noise = torch.stack([torch.randn(tuple(shape), generator=g, dtype=torch.float32) for g in generators])
    return noise.to(device=device, dtype=dtype)


def cpu_generators(seeds: Sequence[int]) -> list[torch.Generator]:
    return [torch.Generator("cpu").manual_seed(int(s) % (2**63)) for s in seeds]


# --------------------------------------------------------------------------------------------
# images


def _rgb(pixels: np.ndarray) -> np.ndarray:
    if pixels.ndim == 2:
        pixels = pixels[:, :, None]
    if pixels.shape[2] == 1:
        return np.repeat(pixels, 3, axis=2)
    return pixels[:, :, :3]


def images_to_tensor(images: Sequence[np.ndarray], size: int) -> torch.Tensor:
    """uint8 H x W x C images (1, 3 or 4 channels) -> ``[B, 3, size, size]`` in [-1, 1] (bicubic resize)."""
    from PIL import Image as PILImage

    batch = []
    for pixels in images:
        rgb = np.array(_rgb(np.asarray(pixels)))
        if rgb.shape[:2] != (size, size):
            rgb = np.array(PILImage.fromarray(rgb).resize((size, size), PILImage.BICUBIC))
        batch.append(torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1))
    return torch.stack(batch).float() / 127.5 - 1.0


def tensor_to_images(images: torch.Tensor) -> list[np.ndarray]:
    """``[B, 3, H, W]`` in [-1, 1] -> uint8 H x W x 3 images."""
    array = ((images.detach().float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    return [np.ascontiguousarray(a.permute(1, 2, 0).cpu().numpy()) for a in array]


def resize_image(pixels: np.ndarray, height: int, width: int) -> np.ndarray:
    from PIL import Image as PILImage

    if pixels.shape[:2] == (height, width):
        return pixels
    return np.asarray(PILImage.fromarray(pixels).resize((width, height), PILImage.BICUBIC))


def resize_masks(masks: Sequence[np.ndarray], size: int, resample: str = "bicubic") -> torch.Tensor:
    """Masks (bool or [0, 1]) -> ``[B, 1, size, size]`` float in [0, 1]."""
    from PIL import Image as PILImage

    mode = {"bicubic": PILImage.BICUBIC, "bilinear": PILImage.BILINEAR, "nearest": PILImage.NEAREST}[resample]
    out = []
    for mask in masks:
        array = np.asarray(mask, dtype=np.float32)
        if array.shape != (size, size):
            array = np.asarray(PILImage.fromarray(array, mode="F").resize((size, size), mode), dtype=np.float32)
        out.append(torch.from_numpy(np.clip(array, 0.0, 1.0).copy()))
    return torch.stack(out)[:, None]


def match_channels(pixels: np.ndarray, channels: int) -> np.ndarray:
    """An RGB result converted back to the source's channel count (1: luminance, 4: opaque alpha)."""
    if channels == 3:
        return pixels
    if channels == 1:
        from PIL import Image as PILImage

        return np.asarray(PILImage.fromarray(pixels).convert("L"))[:, :, None]
    alpha = np.full(pixels.shape[:2] + (1,), 255, np.uint8)
    return np.concatenate([pixels, alpha], axis=2)


# --------------------------------------------------------------------------------------------
# progress


@contextlib.contextmanager
def progress_bar(total: int, description: str, enabled: bool = True) -> Iterator[Callable[..., None]]:
    """A rich progress bar; the yielded ``advance(**fields)`` moves it one step and shows fields."""
    if not enabled or total <= 0:
        yield lambda **_: None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    with Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TimeRemainingColumn(), TextColumn("{task.fields[status]}"), transient=False) as progress:
        task = progress.add_task(description, total=total, status="")

        def advance(**fields: Any) -> None:
            status = " ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in fields.items())
            progress.update(task, advance=1, status=status)

        yield advance


def write_preview(path: str | Path, sources: Sequence[np.ndarray], outputs: Sequence[Any], title: str = "") -> Path:
    """A PNG with the normal sources on top and the generated samples below, their masks outlined in red."""
    from matplotlib.figure import Figure  # no pyplot: the caller's backend and figures stay untouched

    n = len(outputs)
    fig = Figure(figsize=(2.2 * n, 4.6))
    axes = fig.subplots(2, n, squeeze=False)
    for i, (source, sample) in enumerate(zip(sources, outputs)):
        axes[0, i].imshow(_rgb(np.asarray(source)))
        axes[0, i].set_title("normal", fontsize=8)
        axes[1, i].imshow(_rgb(np.asarray(sample.data)))
        if sample.target is not None and np.any(np.asarray(sample.target) > 0):
            axes[1, i].contour(np.asarray(sample.target, dtype=np.float32) > 0.5, levels=[0.5], colors="red",
                               linewidths=0.8)
        axes[1, i].set_title(str(sample.defect or ""), fontsize=8)
        for ax in axes[:, i]:
            ax.axis("off")
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=110)
    return path
