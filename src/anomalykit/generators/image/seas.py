"""SeaS (Dai, Zeng et al., ICCV 2025): separation-and-sharing fine-tuning on ``diffusers``.

One model per product category learns all its defect types and its normal look together:

- the *unbalanced abnormal* prompt ``"a ob1 with sks{4k+1} .. sks{4k+4}"`` (one normal token, four
  anomaly tokens per defect type k; normal images use ``"a ob1"``);
- fine-tuning of the whole U-Net and the token-embedding table with the denoising loss on anomalies,
  the normal-image alignment (NA) loss (denoising loss of normal images with the normal prompt)
  and the decoupled anomaly alignment (DA) loss on cross-attention maps captured with attention
  processors (anomaly tokens attend to the defect mask, the normal token does not attend inside it);
- the refined mask prediction (RMP) head: U-Net decoder features fused by self-attention into
  coarse features, refined three times with VAE-decoder features, trained with focal loss;
- inference from a real normal image noised to the extended level "t = 1500", multistep
  DPM-Solver with classifier-free guidance, masks averaged over the last 3 steps and thresholded.

What runs where: ``device="auto"`` uses the GPU when one is visible (generation in float16 with
SDPA attention except in the two captured cross-attention blocks during training; the batch holds
both guidance branches); training keeps float32 weights and autocasts to bfloat16 on a GPU, and
can checkpoint U-Net activations (``gradient_checkpointing``). The CPU fallback runs everything in
float32 and is meant for the tiny test models.

>>> import anomalykit
>>> gen = anomalykit.get_generator("seas", weights="seas-bottle/", defect="broken_large")   # doctest: +SKIP
>>> sample = gen(normal_sample, seed=0)      # label 1, target = the predicted mask           # doctest: +SKIP

Train the weights with ``scripts/train_seas.py`` or ``train_seas(...)``.
"""

from __future__ import annotations

import contextlib
import json
import math
import random
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ...errors import ConfigError, MalformedFileError, SchemaError
from ...losses import focal_loss
from ...schema import Image, Modality, Sample
from ..base import Generator, GeneratorConfig, derive_seed, param, register_generator
from . import _diffusion as D
from .anogen import SupportImage, check_support

__all__ = [
    "SeaS",
    "SeaSConfig",
    "SeaSData",
    "SeaSTrainConfig",
    "SeaSWeights",
    "RefinedMaskHead",
    "MaskRefinementModule",
    "decoupled_alignment_loss",
    "predict_mask",
    "seas_generate",
    "seas_data_from_dataset",
    "seas_data_from_folder",
    "train_seas",
    "untrained_weights",
]

FORMAT = "seas"
FORMAT_VERSION = 1
CONFIG_NAME = "seas.json"
TENSORS_NAME = "seas.safetensors"
DEFAULT_MODEL = "CompVis/stable-diffusion-v1-4"
NORMAL_TOKEN = "ob1"


def anomaly_tokens(defect_index: int, per_defect: int = 4) -> list[str]:
    return [f"sks{defect_index * per_defect + j + 1}" for j in range(per_defect)]


def anomaly_prompt(defect_index: int, per_defect: int = 4) -> str:
    """The unbalanced abnormal prompt of defect ``defect_index`` (0-based)."""
    return f"a {NORMAL_TOKEN} with " + " ".join(anomaly_tokens(defect_index, per_defect))


NORMAL_PROMPT = f"a {NORMAL_TOKEN}"


# --------------------------------------------------------------------------------------------
# refined mask prediction head


def _cbr(in_c: int, out_c: int, k: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(in_c, out_c, k, padding=k // 2, bias=False), nn.BatchNorm2d(out_c), nn.ReLU(inplace=True))


class MaskRefinementModule(nn.Module):
    """MRM: upsample coarse features x2, mix them, and gate them with finer VAE-decoder features."""

    def __init__(self, fine_channels: int, channels: int) -> None:
        super().__init__()
        self.skip = _cbr(channels, channels, 1)
        self.mix = nn.Sequential(_cbr(channels, channels, 1), _cbr(channels, channels, 3), _cbr(channels, channels, 1))
        self.mix2 = nn.Sequential(_cbr(channels, channels, 1), _cbr(channels, channels, 3), _cbr(channels, channels, 1))
        self.fine = _cbr(fine_channels, channels, 1)

    def forward(self, coarse: torch.Tensor, fine: torch.Tensor) -> torch.Tensor:
        coarse = F.interpolate(coarse, size=fine.shape[-2:], mode="bilinear", align_corners=True)
        s1, s2 = self.skip(coarse), coarse
        mixed = self.mix(coarse)
        s3 = self.mix2(mixed)
        mixed = mixed + s1 + s3
        return self.fine(fine) * mixed + s2


class RefinedMaskHead(nn.Module):
    """SeaS's RMP head. Coarse path: 1x1 convs of the U-Net decoder features at 1/2 and full latent
    resolution (2/3 and 1/3 of ``hidden`` channels), concatenated at the latent resolution and
    passed through a self-attention ``Transformer2DModel``; then one MRM per VAE-decoder
    upsampling block; a BN-ReLU-Conv3x3 head gives 2-class logits."""

    def __init__(self, unet_channels: Sequence[int], vae_channels: Sequence[int], hidden: int = 192, heads: int = 8,
                 layers: int = 4) -> None:
        super().__init__()
        from diffusers import Transformer2DModel

        if hidden % heads:
            raise ConfigError(f"RMP: hidden={hidden} must be divisible by heads={heads}")
        low = hidden * 2 // 3
        self.low = nn.Conv2d(int(unet_channels[0]), low, 1)
        self.mid = nn.Conv2d(int(unet_channels[1]), hidden - low, 1)
        self.attention = Transformer2DModel(num_attention_heads=heads, attention_head_dim=hidden // heads,
                                            in_channels=hidden, num_layers=layers,
                                            norm_num_groups=math.gcd(32, hidden))
        self.refine_blocks = nn.ModuleList(MaskRefinementModule(int(c), hidden) for c in vae_channels)
        self.head = nn.Sequential(nn.BatchNorm2d(hidden), nn.ReLU(inplace=True), nn.Conv2d(hidden, 2, 3, padding=1))

    def coarse(self, half: torch.Tensor, full: torch.Tensor) -> torch.Tensor:
        low = F.interpolate(self.low(half), size=full.shape[-2:], mode="bilinear", align_corners=False)
        hidden = torch.cat([low, self.mid(full)], 1)
        return self.attention(hidden, return_dict=False)[0]

    def refine(self, coarse: torch.Tensor, vae_features: Sequence[torch.Tensor]) -> torch.Tensor:
        for block, fine in zip(self.refine_blocks, vae_features):
            coarse = block(coarse, fine)
        return coarse

    def forward(self, half: torch.Tensor, full: torch.Tensor, vae_features: Sequence[torch.Tensor]) -> torch.Tensor:
        """Logits ``[B, 2, S, S]`` at the resolution of the last VAE feature."""
        return self.head(self.refine(self.coarse(half, full), vae_features))


# --------------------------------------------------------------------------------------------
# weights


@dataclass
class SeaSTrainConfig:
    """Training settings (reference values: SD v1.4, batch 2 + 2, accumulation 2, 800 steps per
    defect type for both stages, lr 4e-6 U-Net, 4e-5 tokens, 5e-4 RMP, AdamW weight decay 0.01)."""

    steps: int | None = None
    rmp_steps: int | None = None
    steps_per_defect: int = 800
    batch_size: int = 2
    gradient_accumulation: int = 2
    unet_lr: float = 4e-6
    token_lr: float = 4e-5
    rmp_lr: float = 5e-4
    weight_decay: float = 0.01
    tokens_per_defect: int = 4
    augment: bool = True
    attention_region: str = "full"
    rmp_hidden: int = 192
    rmp_heads: int = 8
    rmp_layers: int = 4
    rmp_max_timestep: int | None = None
    mixed_precision: str = "auto"
    gradient_checkpointing: bool = False
    seed: int = 0
    reproduce_reference_quirks: bool = False

    def __post_init__(self) -> None:
        for name in ("batch_size", "gradient_accumulation", "tokens_per_defect", "steps_per_defect", "rmp_hidden",
                     "rmp_heads", "rmp_layers"):
            if getattr(self, name) < 1:
                raise ConfigError(f"SeaSTrainConfig.{name} must be >= 1, got {getattr(self, name)}")
        for name in ("steps", "rmp_steps"):
            if getattr(self, name) is not None and getattr(self, name) < 0:
                raise ConfigError(f"SeaSTrainConfig.{name} must be >= 0, got {getattr(self, name)}")
        if self.attention_region not in ("full", "any"):
            raise ConfigError("SeaSTrainConfig.attention_region must be 'full' (mask == 1, MVTec) or 'any' "
                              f"(mask > 0, VisA/MVTec 3D), got {self.attention_region!r}")
        if self.mixed_precision not in ("auto", "no", "bf16", "fp16"):
            raise ConfigError(f"SeaSTrainConfig.mixed_precision: {self.mixed_precision!r} is not auto, no, bf16, fp16")


@dataclass
class SeaSWeights:
    """A fine-tuned U-Net, token table and RMP head; saved as ``seas.json`` + ``seas.safetensors``."""

    model: str
    resolution: int
    category: str
    defects: list[str]
    tokens_per_defect: int
    base_vocab_size: int
    rmp: dict[str, Any]
    unet_state: dict[str, torch.Tensor]
    token_table: torch.Tensor
    rmp_state: dict[str, torch.Tensor]
    train: dict[str, Any] = field(default_factory=dict)

    @property
    def tokens(self) -> list[str]:
        out = [NORMAL_TOKEN]
        for k in range(len(self.defects)):
            out += anomaly_tokens(k, self.tokens_per_defect)
        return out

    def defect_index(self, defect: str) -> int:
        if defect not in self.defects:
            raise ConfigError(f"seas: defect {defect!r} is not in the weights (have: {', '.join(self.defects)})")
        return self.defects.index(defect)

    def save(self, folder: str | Path, dtype: torch.dtype = torch.float32) -> Path:
        from safetensors.torch import save_file

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        tensors = {f"unet.{k}": v.detach().to("cpu", dtype).contiguous() for k, v in self.unet_state.items()}
        tensors["text.token_embedding"] = self.token_table.detach().to("cpu", dtype).contiguous()
        tensors.update({f"rmp.{k}": v.detach().to("cpu").contiguous() for k, v in self.rmp_state.items()})
        save_file(tensors, str(folder / TENSORS_NAME))
        config = {"format": FORMAT, "format_version": FORMAT_VERSION, "model": self.model,
                  "resolution": self.resolution, "category": self.category, "defects": self.defects,
                  "tokens_per_defect": self.tokens_per_defect, "normal_token": NORMAL_TOKEN, "tokens": self.tokens,
                  "prompts": {d: anomaly_prompt(k, self.tokens_per_defect) for k, d in enumerate(self.defects)},
                  "base_vocab_size": self.base_vocab_size, "rmp": self.rmp, "train": self.train}
        (folder / CONFIG_NAME).write_text(json.dumps(config, indent=2, sort_keys=True), encoding="utf-8")
        return folder

    @classmethod
    def load(cls, path: str | Path) -> SeaSWeights:
        from safetensors.torch import load_file

        folder = Path(path)
        if folder.is_file():
            folder = folder.parent
        config_path, tensors_path = folder / CONFIG_NAME, folder / TENSORS_NAME
        if not config_path.is_file():
            raise ConfigError(f"seas weights: {config_path} not found (train with scripts/train_seas.py)")
        try:
            config = json.loads(config_path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise MalformedFileError(config_path, f"invalid JSON ({exc.msg})", line=exc.lineno) from None
        if config.get("format") != FORMAT:
            raise MalformedFileError(config_path, f"not SeaS weights (format {config.get('format')!r})")
        if not tensors_path.is_file():
            raise ConfigError(f"seas weights: {tensors_path} not found")
        tensors = load_file(str(tensors_path))
        if "text.token_embedding" not in tensors:
            raise MalformedFileError(tensors_path, "no tensor 'text.token_embedding'")
        unet = {k[5:]: v for k, v in tensors.items() if k.startswith("unet.")}
        rmp = {k[4:]: v for k, v in tensors.items() if k.startswith("rmp.")}
        return cls(config["model"], int(config["resolution"]), config["category"], list(config["defects"]),
                   int(config["tokens_per_defect"]), int(config["base_vocab_size"]), config["rmp"], unet,
                   tensors["text.token_embedding"], rmp, config.get("train", {}))


def _rmp_config(parts: D.DiffusionParts, config: SeaSTrainConfig) -> dict[str, Any]:
    return {"unet_channels": list(D.unet_feature_channels(parts.unet)),
            "vae_channels": D.vae_feature_channels(parts.vae),
            "hidden": config.rmp_hidden, "heads": config.rmp_heads, "layers": config.rmp_layers}


def _build_rmp(rmp: dict[str, Any]) -> RefinedMaskHead:
    return RefinedMaskHead(rmp["unet_channels"], rmp["vae_channels"], rmp["hidden"], rmp["heads"], rmp["layers"])


def _add_seas_tokens(parts: D.DiffusionParts, defects: Sequence[str], per_defect: int) -> tuple[int, list[list[int]]]:
    (normal_id,) = parts.add_tokens([NORMAL_TOKEN], "object")
    anomaly_ids = [parts.add_tokens(anomaly_tokens(k, per_defect), "defect") for k in range(len(defects))]
    return normal_id, anomaly_ids


def _snapshot(parts: D.DiffusionParts, rmp: RefinedMaskHead, category: str, defects: Sequence[str],
              config: SeaSTrainConfig, train: dict[str, Any]) -> SeaSWeights:
    table = parts.token_embedding()
    return SeaSWeights(model=parts.model_id, resolution=parts.resolution, category=category, defects=list(defects),
                       tokens_per_defect=config.tokens_per_defect, base_vocab_size=table.num_base,
                       rmp=_rmp_config(parts, config),
                       unet_state={k: v.detach().cpu().clone() for k, v in parts.unet.state_dict().items()},
                       token_table=table.full_table().detach().cpu().clone(),
                       rmp_state={k: v.detach().cpu().clone() for k, v in rmp.state_dict().items()},
                       train=train)


def untrained_weights(model: str, category: str, defects: Sequence[str], config: SeaSTrainConfig | None = None,
                      seed: int = 0) -> SeaSWeights:
    """Weights of the base model with the SeaS tokens added and a fresh (seeded) RMP head."""
    config = config or SeaSTrainConfig()
    parts = D.load_parts(model, device="cpu", dtype="float32")
    _add_seas_tokens(parts, defects, config.tokens_per_defect)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        rmp = _build_rmp(_rmp_config(parts, config))
    return _snapshot(parts, rmp, category, defects, config, {"steps": 0, "rmp_steps": 0})


def load_model(weights: SeaSWeights, *, model: str | None = None, device: str | torch.device = "auto",
               dtype: str | torch.dtype = "auto") -> tuple[D.DiffusionParts, RefinedMaskHead]:
    """The base model with the fine-tuned U-Net and tokens, and the RMP head (eval mode, float32)."""
    model_id = model or weights.model
    parts = D.load_parts(model_id, device=device, dtype=dtype)
    table = parts.token_embedding()
    if table.num_base != weights.base_vocab_size or table.embedding_dim != weights.token_table.shape[1]:
        raise ConfigError(f"seas: the weights were trained on {weights.model!r} (vocabulary {weights.base_vocab_size} x "
                          f"{weights.token_table.shape[1]}), {model_id!r} has {table.num_base} x {table.embedding_dim}")
    try:
        parts.unet.load_state_dict({k: v.to(parts.dtype) for k, v in weights.unet_state.items()}, strict=True)
    except RuntimeError as exc:
        raise ConfigError(f"seas: the saved U-Net does not fit {model_id!r} ({str(exc)[:300]})") from None
    with torch.no_grad():
        table.base.weight.copy_(weights.token_table[:table.num_base].to(table.base.weight.dtype))
    normal_id, anomaly_ids = _add_seas_tokens(parts, weights.defects, weights.tokens_per_defect)
    ids = [normal_id] + [i for group in anomaly_ids for i in group]
    parts.set_token_rows(ids, weights.token_table[torch.tensor(ids)])
    rmp = _build_rmp(weights.rmp)
    rmp.load_state_dict(weights.rmp_state)
    rmp.to(parts.device).eval().requires_grad_(False)
    return parts, rmp


# --------------------------------------------------------------------------------------------
# training data


@dataclass
class SeaSData:
    """Anomalies (image, mask, defect) and normal images of one category."""

    anomalies: list[tuple[SupportImage, str]]
    normals: list[np.ndarray]
    defects: list[str]

    def __post_init__(self) -> None:
        if not self.normals:
            raise ConfigError("seas: no normal images given (SeaS learns the normal look too)")
        if not self.anomalies:
            raise ConfigError("seas: no anomaly images given")
        check_support([a for a, _ in self.anomalies], 1, "seas")
        for _, defect in self.anomalies:
            if defect not in self.defects:
                raise ConfigError(f"seas: anomaly of defect {defect!r} is not in defects {self.defects}")
        for defect in self.defects:
            if not any(d == defect for _, d in self.anomalies):
                raise ConfigError(f"seas: defect {defect!r} has no anomaly image")


def seas_data_from_dataset(dataset: Any, *, category: str | None = None, normal_count: int = 60,
                           anomaly_fraction: float = 1 / 3, min_per_defect: int = 1) -> SeaSData:
    """SeaS's per-category split: for each defect, the first max(floor(n x fraction), 1) test
    anomalies by key; the first ``normal_count`` training normals by key (sorted, not listing order)."""
    if category is not None:
        dataset = dataset.filter(category=category)
    anomalies_ds = dataset.filter(label=1)
    defects = sorted({d for d in anomalies_ds.manifest.column("defect").to_pylist() if d})
    if not defects:
        raise ConfigError("seas: the dataset has no anomaly images with a defect type")
    anomalies: list[tuple[SupportImage, str]] = []
    for defect in defects:
        subset = anomalies_ds.filter(defect=defect)
        keys = subset.keys
        order = sorted(range(len(keys)), key=lambda i: keys[i])
        take = max(int(len(keys) * anomaly_fraction), 1)
        if len(keys) < min_per_defect:
            raise ConfigError(f"seas: defect {defect!r} has {len(keys)} anomaly image(s), at least {min_per_defect} needed")
        for i in order[:take]:
            sample = subset[i]
            if sample.target is None:
                raise SchemaError(f"{sample.key}: the anomaly has no mask")
            anomalies.append((SupportImage(np.asarray(sample.data), np.asarray(sample.target) > 0, sample.key), defect))
    normals_ds = dataset.filter(split="train", label=0)
    keys = normals_ds.keys
    order = sorted(range(len(keys)), key=lambda i: keys[i])[:normal_count]
    normals = [np.asarray(normals_ds[i].data) for i in order]
    return SeaSData(anomalies, normals, defects)


def seas_data_from_folder(root: str | Path, normal_dir: str | Path, *, normal_count: int = 60,
                          anomaly_fraction: float = 1.0) -> SeaSData:
    """Anomalies in AnoGen's support layout (``<root>/<defect>/`` + ``<root>/<defect>_mask/``) and
    normal images in ``normal_dir``."""
    from ...io.images import IMAGE_SUFFIXES, read_image
    from .anogen import support_from_folder

    root, normal_dir = Path(root), Path(normal_dir)
    if not root.is_dir():
        raise ConfigError(f"seas: anomaly folder {root} not found")
    defects = sorted(p.name for p in root.iterdir() if p.is_dir() and (root / f"{p.name}_mask").is_dir())
    if not defects:
        raise ConfigError(f"seas: {root} has no <defect>/ folder with a <defect>_mask/ sibling")
    anomalies = []
    for defect in defects:
        items = support_from_folder(root, defect)
        anomalies += [(item, defect) for item in items[:max(int(len(items) * anomaly_fraction), 1)]]
    if not normal_dir.is_dir():
        raise ConfigError(f"seas: normal image folder {normal_dir} not found")
    paths = sorted(p for p in normal_dir.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)[:normal_count]
    return SeaSData(anomalies, [read_image(p) for p in paths], defects)


def _augment(arrays: Sequence[np.ndarray], rng: random.Random) -> list[np.ndarray]:
    """The same rotation (0/90/180/270) and flip (none/left-right/top-bottom) for every array."""
    k, flip = rng.randrange(4), rng.randrange(3)
    out = []
    for a in arrays:
        a = np.rot90(a, k, axes=(0, 1))
        if flip == 1:
            a = a[:, ::-1]
        elif flip == 2:
            a = a[::-1]
        out.append(np.ascontiguousarray(a))
    return out


class _PairSampler:
    """Index i gives anomaly i mod N_a and normal i mod N_n; epochs of max(N_a, N_n) in shuffled order."""

    def __init__(self, data: SeaSData, rng: random.Random, augment: bool) -> None:
        self.data, self.rng, self.augment = data, rng, augment
        self.length = max(len(data.anomalies), len(data.normals))
        self.order: list[int] = []

    def batch(self, size: int) -> tuple[list[np.ndarray], list[np.ndarray], list[np.ndarray], list[int]]:
        images, masks, normals, defects = [], [], [], []
        for _ in range(size):
            if not self.order:
                self.order = list(range(self.length))
                self.rng.shuffle(self.order)
            i = self.order.pop()
            item, defect = self.data.anomalies[i % len(self.data.anomalies)]
            arrays = [D._rgb(item.image), item.mask.astype(np.float32), D._rgb(self.data.normals[i % len(self.data.normals)])]
            if self.augment:
                arrays = _augment(arrays, self.rng)
            images.append(arrays[0])
            masks.append(arrays[1])
            normals.append(arrays[2])
            defects.append(self.data.defects.index(defect))
        return images, masks, normals, defects


# --------------------------------------------------------------------------------------------
# losses


def decoupled_alignment_loss(maps: Sequence[torch.Tensor], input_ids: torch.Tensor, normal_id: int,
                             anomaly_ids: torch.Tensor, masks: torch.Tensor, region: str = "full") -> torch.Tensor:
    """SeaS's DA loss over cross-attention maps ``[B, tokens, r, r]`` (one per captured block).

    ``anomaly_ids`` ``[B, n]``: each sample's anomaly token ids; ``masks`` ``[B, 1, L, L]``: the
    defect masks at the latent resolution (bilinear). Per block: the anomaly tokens' mean map and
    the normal token's map are min-max normalised over the whole batch; the loss is
    mean((A_a - G_r)^2) + mean over the defect region of A_n^2, with G_r the mask max-pooled to r.
    """
    is_normal = (input_ids == normal_id).to(maps[0].dtype)
    is_anomaly = (input_ids[:, :, None] == anomaly_ids[:, None, :]).any(-1).to(maps[0].dtype)
    if bool((is_normal.sum(1) == 0).any()) or bool((is_anomaly.sum(1) == 0).any()):
        raise ConfigError("seas: a prompt lost its normal or anomaly tokens (prompt longer than the tokenizer allows?)")
    total = maps[0].new_zeros(())
    for attention in maps:
        r = attention.shape[-1]
        target = masks.to(attention.dtype)
        while target.shape[-1] > r:
            target = F.max_pool2d(target, 2)
        if target.shape[-1] != r:
            target = F.interpolate(target, size=(r, r), mode="bilinear", align_corners=False)
        target = target[:, 0]
        a_n = (attention * is_normal[:, :, None, None]).sum(1) / is_normal.sum(1)[:, None, None]
        a_a = (attention * is_anomaly[:, :, None, None]).sum(1) / is_anomaly.sum(1)[:, None, None]
        a_n = (a_n - a_n.min()) / (a_n.max() - a_n.min() + 1e-8)
        a_a = (a_a - a_a.min()) / (a_a.max() - a_a.min() + 1e-8)
        total = total + F.mse_loss(a_a, target)
        region_mask = target >= 1.0 - 1e-6 if region == "full" else target > 0
        if bool(region_mask.any()):
            total = total + (a_n[region_mask] ** 2).mean()
    return total


def _mask_targets(masks: torch.Tensor, quirks: bool) -> torch.Tensor:
    """Class targets from bilinear masks: the reference's ``.long()`` (only exact 1 is a defect)
    with quirks on, a 0.5 threshold otherwise."""
    return (masks >= 1.0 - 1e-6).long() if quirks else (masks >= 0.5).long()


def _ddpm_previous(scheduler: Any, eps: torch.Tensor, t: torch.Tensor, z_t: torch.Tensor,
                   noise: torch.Tensor) -> torch.Tensor:
    """One ancestral DDPM step (variance "fixed_small") with a timestep per sample."""
    alphas = scheduler.alphas_cumprod.to(z_t.device, torch.float32)
    a_t = alphas[t].view(-1, 1, 1, 1)
    a_prev = torch.where(t > 0, alphas[(t - 1).clamp(min=0)], torch.ones_like(t, dtype=torch.float32)).view(-1, 1, 1, 1)
    beta = 1 - a_t / a_prev
    z = z_t.float()
    x0 = (z - (1 - a_t).sqrt() * eps.float()) / a_t.sqrt()
    mean = a_prev.sqrt() * beta / (1 - a_t) * x0 + (1 - beta).sqrt() * (1 - a_prev) / (1 - a_t) * z
    variance = ((1 - a_prev) / (1 - a_t) * beta).clamp(min=1e-20)
    return (mean + (t > 0).float().view(-1, 1, 1, 1) * variance.sqrt() * noise.float()).to(z_t.dtype)


# --------------------------------------------------------------------------------------------
# training


def _autocast(device: torch.device, mode: str):
    if mode == "auto":
        mode = "bf16" if device.type == "cuda" else "no"
    if mode == "no":
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=torch.bfloat16 if mode == "bf16" else torch.float16)


def train_seas(data: SeaSData, *, model: str, category: str, config: SeaSTrainConfig | None = None,
               device: str = "auto", progress: bool = True, parts: D.DiffusionParts | None = None,
               on_step: Callable[[str, int, dict[str, float]], None] | None = None) -> SeaSWeights:
    """Fine-tune ``model`` on ``data`` (stage 1: U-Net + tokens; stage 2: RMP head) and return the weights."""
    config = config or SeaSTrainConfig()
    if parts is None:
        parts = D.load_parts(model, device=device, dtype="float32")
    n_defects = len(data.defects)
    steps = config.steps if config.steps is not None else config.steps_per_defect * n_defects
    rmp_steps = config.rmp_steps if config.rmp_steps is not None else config.steps_per_defect * n_defects
    normal_id, anomaly_ids = _add_seas_tokens(parts, data.defects, config.tokens_per_defect)
    py_rng = random.Random(config.seed)
    generator = torch.Generator("cpu").manual_seed(config.seed)
    sampler = _PairSampler(data, py_rng, config.augment)
    scheduler = D.ddpm_scheduler(parts)
    history: dict[str, list[float]] = {"loss": [], "rmp_loss": []}

    # ---- stage 1: U-Net and token embeddings -------------------------------------------------
    table = parts.token_embedding()
    parts.vae.requires_grad_(False)
    parts.text_encoder.requires_grad_(False)
    parts.unet.requires_grad_(True)
    table.extra.requires_grad_(True)
    table.base.weight.requires_grad_(True)
    if config.gradient_checkpointing:
        parts.unet.enable_gradient_checkpointing()
    groups = [{"params": list(parts.unet.parameters()), "lr": config.unet_lr, "weight_decay": config.weight_decay},
              {"params": [table.extra], "lr": config.token_lr, "weight_decay": config.weight_decay},
              {"params": [table.base.weight], "lr": config.token_lr,
               "weight_decay": config.weight_decay if config.reproduce_reference_quirks else 0.0}]
    optimizer = torch.optim.AdamW(groups, betas=(0.9, 0.999), eps=1e-8)
    parts.unet.train()
    size, lat = parts.resolution, parts.latent_size
    with D.progress_bar(steps, f"seas {category}: generation", progress) as advance:
        for step in range(steps):
            optimizer.zero_grad(set_to_none=True)
            parts_of_loss = {"denoise": 0.0, "normal": 0.0, "alignment": 0.0}
            for _ in range(config.gradient_accumulation):
                images, masks, normals, defects = sampler.batch(config.batch_size)
                b = len(images)
                x = D.images_to_tensor(images + normals, size).to(parts.device)
                with torch.no_grad():
                    z0 = parts.encode_images(x, [generator] * (2 * b))
                m_lat = D.resize_masks(masks, lat, "bilinear").to(parts.device)
                timesteps = torch.randint(0, scheduler.config.num_train_timesteps, (2 * b,), generator=generator)
                noise = torch.randn(z0.shape, generator=generator).to(z0.device, z0.dtype)
                z_t = scheduler.add_noise(z0, noise, timesteps)
                prompts = [anomaly_prompt(k, config.tokens_per_defect) for k in defects] + [NORMAL_PROMPT] * b
                ids = parts.tokenize(prompts)
                with _autocast(parts.device, config.mixed_precision):
                    context = parts.encode_ids(ids)
                    with D.capture_cross_attention(parts.unet, (1, 2)) as store:
                        predicted = parts.unet(z_t, timesteps.to(parts.device), context).sample
                    loss_a = F.mse_loss(predicted[:b].float(), noise[:b].float())
                    loss_n = F.mse_loss(predicted[b:].float(), noise[b:].float())
                    maps = [store.maps(block)[:b].float() for block in (1, 2)]
                    anomaly = torch.tensor([anomaly_ids[k] for k in defects], device=parts.device)
                    loss_da = decoupled_alignment_loss(maps, ids[:b], normal_id, anomaly, m_lat, config.attention_region)
                loss = (loss_a + loss_n + loss_da) / config.gradient_accumulation
                loss.backward()
                parts_of_loss["denoise"] += float(loss_a.detach()) / config.gradient_accumulation
                parts_of_loss["normal"] += float(loss_n.detach()) / config.gradient_accumulation
                parts_of_loss["alignment"] += float(loss_da.detach()) / config.gradient_accumulation
            optimizer.step()
            total = sum(parts_of_loss.values())
            history["loss"].append(total)
            if on_step is not None:
                on_step("generation", step, parts_of_loss)
            advance(loss=total)
    optimizer.zero_grad(set_to_none=True)
    del optimizer
    parts.unet.eval().requires_grad_(False)
    table.extra.requires_grad_(False)
    table.base.weight.requires_grad_(False)
    if config.gradient_checkpointing:
        parts.unet.disable_gradient_checkpointing()

    # ---- stage 2: refined mask prediction head -----------------------------------------------
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        rmp = _build_rmp(_rmp_config(parts, config)).to(parts.device)
    rmp.train()
    rmp_optimizer = torch.optim.AdamW(rmp.parameters(), lr=config.rmp_lr, weight_decay=config.weight_decay)
    max_t = config.rmp_max_timestep or scheduler.config.num_train_timesteps
    with D.progress_bar(rmp_steps, f"seas {category}: mask head", progress) as advance:
        for step in range(rmp_steps):
            images, masks, normals, defects = sampler.batch(config.batch_size)
            b = len(images)
            x = D.images_to_tensor(images + normals, size).to(parts.device)
            prompts = [anomaly_prompt(k, config.tokens_per_defect) for k in defects] + [NORMAL_PROMPT] * b
            timesteps = torch.randint(0, max_t, (2 * b,), generator=generator)
            with torch.no_grad(), _autocast(parts.device, config.mixed_precision):
                half, full, vae_features = _mask_features(parts, scheduler, x, prompts, timesteps,
                                                          [generator] * (2 * b), decode=slice(0, b))
            with _autocast(parts.device, config.mixed_precision):
                coarse = rmp.coarse(half.float(), full.float())
                logits_anomaly = rmp.head(rmp.refine(coarse[:b], [f.float() for f in vae_features]))
                logits_normal = rmp.head(F.interpolate(coarse[b:], size=(size, size), mode="bilinear",
                                                       align_corners=False))
                logits_latent = rmp.head(coarse)
            m_img = D.resize_masks(masks, size, "bilinear").to(parts.device)
            m_lat = D.resize_masks(masks, lat, "bilinear").to(parts.device)
            quirks = config.reproduce_reference_quirks
            zeros_img = torch.zeros((b, 1, size, size), device=parts.device, dtype=torch.long)
            zeros_lat = torch.zeros((b, 1, lat, lat), device=parts.device, dtype=torch.long)
            loss = (focal_loss(torch.softmax(torch.cat([logits_anomaly, logits_normal]).float(), 1),
                               torch.cat([_mask_targets(m_img, quirks), zeros_img]))
                    + focal_loss(torch.softmax(logits_latent.float(), 1),
                                 torch.cat([_mask_targets(m_lat, quirks), zeros_lat])))
            rmp_optimizer.zero_grad(set_to_none=True)
            loss.backward()
            rmp_optimizer.step()
            history["rmp_loss"].append(float(loss.detach()))
            if on_step is not None:
                on_step("mask", step, {"focal": float(loss.detach())})
            advance(loss=float(loss.detach()))
    rmp.eval().requires_grad_(False)
    train_info = {**asdict(config), "steps": steps, "rmp_steps": rmp_steps, "anomalies": len(data.anomalies),
                  "normals": len(data.normals),
                  "final_loss": float(np.mean(history["loss"][-50:])) if history["loss"] else None,
                  "final_rmp_loss": float(np.mean(history["rmp_loss"][-50:])) if history["rmp_loss"] else None}
    return _snapshot(parts, rmp, category, data.defects, config, train_info)


def _mask_features(parts: D.DiffusionParts, scheduler: Any, images: torch.Tensor, prompts: Sequence[str],
                   timesteps: torch.Tensor, generators: Sequence[torch.Generator], decode: slice,
                   ) -> tuple[torch.Tensor, torch.Tensor, list[torch.Tensor]]:
    """U-Net decoder features of images noised to ``timesteps`` and VAE-decoder features of the
    latents one DDPM step later (for the samples selected by ``decode``)."""
    z0 = parts.encode_images(images.to(parts.device, parts.dtype), generators)
    noise = D.randn(z0.shape[1:], generators, z0.device, z0.dtype)
    t = timesteps.to(parts.device)
    z_t = scheduler.add_noise(z0, noise, t)
    context = parts.encode_prompts(prompts)
    with D.capture_outputs(D.unet_feature_modules(parts.unet)) as features:
        eps = parts.unet(z_t, t, context).sample
    half, full = features
    step_noise = D.randn(z0.shape[1:], generators, z0.device, z0.dtype)[decode]
    z_prev = _ddpm_previous(scheduler, eps[decode], t[decode], z_t[decode], step_noise)
    with D.capture_outputs(D.vae_feature_modules(parts.vae)) as vae_features:
        parts.decode_latents(z_prev)
    return half, full, list(vae_features)


@torch.no_grad()
def predict_mask(parts: D.DiffusionParts, rmp: RefinedMaskHead, images: Sequence[np.ndarray], prompts: Sequence[str],
                 *, timestep: int = 50, seeds: Sequence[int] | None = None) -> np.ndarray:
    """Anomaly probability maps ``[B, S, S]`` of existing images: noise to ``timestep``, one
    U-Net pass with ``prompts``, one DDPM step, VAE decoding, RMP head (the training forward)."""
    seeds = list(seeds) if seeds is not None else list(range(len(images)))
    x = D.images_to_tensor(images, parts.resolution)
    t = torch.full((len(images),), int(timestep), dtype=torch.long)
    half, full, vae_features = _mask_features(parts, D.ddpm_scheduler(parts), x, prompts, t,
                                              D.cpu_generators(seeds), decode=slice(None))
    logits = rmp(half.float(), full.float(), [f.float() for f in vae_features])
    return torch.softmax(logits.float(), 1)[:, 1].cpu().numpy()


# --------------------------------------------------------------------------------------------
# inference


StepCallback = Callable[[int, Any, dict[str, torch.Tensor]], None]


@torch.no_grad()
def seas_generate(parts: D.DiffusionParts, rmp: RefinedMaskHead, images: torch.Tensor, prompts: Sequence[str], *,
                  generators: Sequence[torch.Generator], steps: int = 25, guidance_scale: float = 8.0,
                  noise_level_steps: int = 1500, mask_steps: int = 3, scale_init_latent: bool = True,
                  callback: StepCallback | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Generate from normal ``images`` (``[B, 3, S, S]`` in [-1, 1]): returns the images in [-1, 1]
    and the anomaly probability ``[B, S, S]`` averaged over the last ``mask_steps`` steps.

    The start latent is sqrt(ᾱ)·z0 + sqrt(1 − ᾱ)·ε with ᾱ of the beta schedule stretched to
    ``noise_level_steps`` steps (1500: a faint trace of the normal image). Each mask step decodes
    the current latent (before the update) for the VAE features and reads the conditional
    branch's U-Net features. ``callback(i, t, tensors)`` sees ``latents`` and, on mask steps,
    ``probability``.
    """
    batch = images.shape[0]
    if not 1 <= mask_steps <= steps:
        raise ConfigError(f"seas: mask_steps={mask_steps} must lie in [1, steps={steps}]")
    z0 = parts.encode_images(images.to(parts.device, parts.dtype), generators, scaled=scale_init_latent)
    alpha_bar = D.alpha_bar_at(parts.scheduler_config, noise_level_steps)
    eps = D.randn(z0.shape[1:], generators, z0.device, z0.dtype)
    latents = math.sqrt(alpha_bar) * z0 + math.sqrt(1.0 - alpha_bar) * eps
    scheduler = D.dpm_solver_scheduler(parts)
    scheduler.set_timesteps(steps, device=parts.device)
    context = parts.encode_prompts(list(prompts))
    guided = guidance_scale != 1.0
    if guided:
        context = torch.cat([parts.encode_prompts([""] * batch), context])
    feature_modules = D.unet_feature_modules(parts.unet)
    total = None
    used = 0
    for i, t in enumerate(scheduler.timesteps):
        model_input = torch.cat([latents, latents]) if guided else latents
        with D.capture_outputs(feature_modules) as features:
            noise_pred = parts.unet(model_input, t, context).sample
        tensors: dict[str, torch.Tensor] = {"latents": latents}
        if i >= steps - mask_steps:
            half, full = (f[batch:] if guided else f for f in features)
            with D.capture_outputs(D.vae_feature_modules(parts.vae)) as vae_features:
                parts.decode_latents(latents)
            logits = rmp(half.float(), full.float(), [f.float() for f in vae_features])
            probability = torch.softmax(logits.float(), 1)[:, 1]
            total = probability if total is None else total + probability
            used += 1
            tensors["probability"] = probability
        if guided:
            eps_u, eps_c = noise_pred.chunk(2)
            noise_pred = eps_u + guidance_scale * (eps_c - eps_u)
        if callback is not None:
            callback(i, t, tensors)
        latents = scheduler.step(noise_pred, t, latents).prev_sample
    assert total is not None
    return parts.decode_latents(latents), total / used


# --------------------------------------------------------------------------------------------
# the registered generator


@dataclass
class SeaSConfig(GeneratorConfig):
    """Parameters of the ``seas`` generator.

    ``weights``: folder written by ``scripts/train_seas.py``; ``model``: Hub id or folder of the
    base checkpoint (default: the one trained on; the fine-tuned U-Net replaces its U-Net);
    ``defect``: which defect type (default: one at random per sample). ``guidance_scale``: 8
    (MVTec), 2 (VisA), 5 (MVTec 3D). ``target``: the binary mask (probability > ``threshold``) or
    the soft probability map.
    """

    weights: str | None = param(None, doc="folder with seas.json and seas.safetensors")
    model: str | None = param(None, doc="Hub id or local folder of the base model")
    defect: str | None = param(None, doc="defect type; None = random among the learned ones")
    steps: int = param(25, low=1, high=1000)
    guidance_scale: float = param(8.0, low=0.0, high=50.0)
    noise_level_steps: int = param(1500, low=1, high=100000)
    mask_steps: int = param(3, low=1)
    threshold: float = param(0.2, low=0.0, high=1.0)
    target: str = param("binary", choices=("binary", "soft"))
    device: str = param("auto")
    dtype: str = param("auto", choices=("auto", "float32", "float16", "bfloat16"))
    reproduce_reference_quirks: bool = param(False, doc="start latent without the VAE scale factor, as the reference")


@register_generator("seas")
class SeaS(Generator):
    """SeaS anomaly generation with predicted masks (see the module docstring)."""

    version = "1"
    modality = Modality.IMAGE
    config_class = SeaSConfig
    config: SeaSConfig

    def weights(self) -> SeaSWeights:
        if not self.config.weights:
            raise ConfigError("seas: weights=PATH is required (train them with scripts/train_seas.py)")
        return D.get_parts(("seas-weights", *D.weights_identity(self.config.weights)),
                           lambda: SeaSWeights.load(self.config.weights))

    def model(self) -> tuple[D.DiffusionParts, RefinedMaskHead, SeaSWeights]:
        weights = self.weights()
        device = D.resolve_device(self.config.device)
        key = ("seas", self.config.model or weights.model, *D.weights_identity(self.config.weights), str(device),
               self.config.dtype)
        parts, rmp = D.get_parts(key, lambda: load_model(weights, model=self.config.model, device=device,
                                                         dtype=self.config.dtype))
        return parts, rmp, weights

    def generate(self, source: Sample | None, rng: np.random.Generator, seed: int) -> Sample:
        assert source is not None
        return self._generate([source], [rng], [seed])[0]

    def generate_batch(self, sources: Sequence[Sample], seeds: Sequence[int]) -> list[Sample]:
        """One batched diffusion run for several (source, seed) pairs; each result equals
        ``gen(source, seed=seed)`` up to rounding of batched kernels (bit-identical on the CPU)."""
        for src in sources:
            if src.modality != self.modality:
                raise ConfigError(f"seas: expects an image sample, got {src.modality.value} ({src.key})")
        rngs = [np.random.default_rng(derive_seed(int(s), src.key)) for src, s in zip(sources, seeds)]
        return self._generate(list(sources), rngs, [int(s) for s in seeds])

    def _generate(self, sources: list[Sample], rngs: list[np.random.Generator], seeds: list[int],
                  callback: StepCallback | None = None) -> list[Sample]:
        parts, rmp, weights = self.model()
        c = self.config
        if c.mask_steps > c.steps:
            raise ConfigError(f"seas: mask_steps={c.mask_steps} is more than steps={c.steps}")
        defects = [c.defect if c.defect is not None else weights.defects[int(rng.integers(len(weights.defects)))]
                   for rng in rngs]
        indices = [weights.defect_index(d) for d in defects]
        torch_seeds = [int(rng.integers(0, 2**63 - 1)) for rng in rngs]
        images = D.images_to_tensor([np.asarray(s.data) for s in sources], parts.resolution)
        generated, probability = seas_generate(
            parts, rmp, images, [anomaly_prompt(k, weights.tokens_per_defect) for k in indices],
            generators=D.cpu_generators(torch_seeds), steps=c.steps, guidance_scale=c.guidance_scale,
            noise_level_steps=c.noise_level_steps, mask_steps=c.mask_steps,
            scale_init_latent=not c.reproduce_reference_quirks, callback=callback)
        outputs = D.tensor_to_images(generated)
        probability = probability.float().cpu().numpy()
        samples = []
        for src, out, prob, defect, seed, torch_seed in zip(sources, outputs, probability, defects, seeds, torch_seeds):
            pixels = np.asarray(src.data)
            height, width = pixels.shape[:2]
            soft = _resize_probability(prob, height, width)
            mask = soft > c.threshold
            target = mask.astype(np.uint8) if c.target == "binary" else soft.astype(np.float32)
            image = D.match_channels(D.resize_image(out, height, width), pixels.shape[2])
            samples.append(Sample(
                key=f"{src.key}/seas-{seed}", dataset=src.dataset, split=src.split, label=1, data=Image(image),
                category=src.category, defect=defect, target=target, meta={"label_kind": "predicted_mask"},
                provenance=self.provenance(seed, src, defect=defect, torch_seed=torch_seed, threshold=c.threshold,
                                           mask_fraction=float(mask.mean()),
                                           model=c.model or weights.model,
                                           prompt=anomaly_prompt(weights.defect_index(defect), weights.tokens_per_defect)),
            ))
        return samples

    @classmethod
    def example(cls) -> tuple[dict[str, Any], Sample | None]:
        from ._tiny import example_source, example_weights

        return ({"weights": str(example_weights("seas")), "steps": 3, "device": "cpu"}, example_source())


def _resize_probability(prob: np.ndarray, height: int, width: int) -> np.ndarray:
    from PIL import Image as PILImage

    if prob.shape == (height, width):
        return np.clip(prob, 0.0, 1.0).astype(np.float32)
    resized = np.asarray(PILImage.fromarray(prob.astype(np.float32), mode="F").resize((width, height), PILImage.BILINEAR))
    return np.clip(resized, 0.0, 1.0).astype(np.float32)
