"""AnoGen (Gui, Gao et al., ECCV 2024): few-shot anomaly-driven generation on ``diffusers``.

Stage 1 learns one textual-inversion token per (category, defect) from K real anomalies with a
denoising loss weighted by the defect mask; only the token's embedding row trains (U-Net, VAE and
text encoder stay frozen). Stage 2 paints the defect into a box on a normal image: DDIM sampling
with classifier-free guidance in which, before every step, the latent outside the box is replaced
by the normal image's latent noised to that step. The box is the (weak) label. Stage 3's loss for
box labels lives in ``anomalykit.losses.weak_box_focal_loss``.

Works with LDM text-to-image (``CompVis/ldm-text2im-large-256``, the paper's backbone: 256^2,
LDM-BERT) and Stable Diffusion 1.x checkpoints, by Hub id or local folder.

What runs where: ``device="auto"`` runs on the GPU when one is visible (float16, fused SDPA
attention, ``generate_batch`` batches samples and both guidance branches in one U-Net call) and
on the CPU otherwise (float32). Training keeps the frozen model in float32 and autocasts to
bfloat16 on a GPU.

>>> import anomalykit
>>> gen = anomalykit.get_generator("anogen", weights="anogen-bottle/")          # doctest: +SKIP
>>> sample = gen(normal_sample, seed=0)     # label 1, target = the box          # doctest: +SKIP

Train the weights with ``scripts/train_anogen.py`` or ``train_anogen(...)``.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from ...errors import ConfigError, MalformedFileError, SchemaError
from ...losses import masked_denoising_loss
from ...schema import Image, Modality, Sample
from ..base import Generator, GeneratorConfig, derive_seed, param, register_generator
from . import _diffusion as D

__all__ = [
    "AnoGen",
    "AnoGenConfig",
    "AnoGenEmbedding",
    "AnoGenTrainConfig",
    "AnoGenWeights",
    "BoxSpec",
    "SupportImage",
    "MVTEC_BOX_RANGES",
    "box_inpaint",
    "box_spec_for",
    "foreground_template",
    "sample_box_mask",
    "stage1_loss",
    "support_from_dataset",
    "support_from_folder",
    "train_anogen",
    "train_embedding",
]

FORMAT = "anogen"
FORMAT_VERSION = 1
CONFIG_NAME = "anogen.json"
TENSORS_NAME = "embeddings.safetensors"
DEFAULT_MODEL = "CompVis/ldm-text2im-large-256"

#: captions of textual inversion (``imagenet_templates_small``); ``{}`` is the learned token
IMAGENET_TEMPLATES_SMALL = (
    "a photo of a {}", "a rendering of a {}", "a cropped photo of the {}", "the photo of a {}",
    "a photo of a clean {}", "a photo of a dirty {}", "a dark photo of the {}", "a photo of my {}",
    "a photo of the cool {}", "a close-up photo of a {}", "a bright photo of the {}", "a cropped photo of a {}",
    "a photo of the {}", "a good photo of the {}", "a photo of one {}", "a close-up photo of the {}",
    "a rendition of the {}", "a photo of the clean {}", "a rendition of a {}", "a photo of a nice {}",
    "a good photo of a {}", "a photo of the nice {}", "a photo of the small {}", "a photo of the weird {}",
    "a photo of the large {}", "a photo of a cool {}", "a photo of a small {}",
)


# --------------------------------------------------------------------------------------------
# box sampling


@dataclass(frozen=True)
class BoxSpec:
    """Box size ranges as fractions of the image side, and whether the box is rotated."""

    width: tuple[float, float]
    height: tuple[float, float]
    rotate: bool = False

    def __post_init__(self) -> None:
        for name, (lo, hi) in (("width", self.width), ("height", self.height)):
            if not (0 < lo <= hi <= 1):
                raise ConfigError(f"box {name} range {lo}..{hi} must satisfy 0 < low <= high <= 1")


def _spec(w: tuple[float, float], h: tuple[float, float] | None = None, rotate: bool = False) -> BoxSpec:
    return BoxSpec(tuple(w), tuple(h if h is not None else w), rotate)  # type: ignore[arg-type]


_ZIPPER = {d: _spec((.05, .15), (.1, .2)) for d in ("broken_teeth", "combined", "fabric_border", "fabric_interior",
                                                     "rough", "split_teeth", "squeezed_teeth")}
#: per-defect box ranges of AnoGen's ``mvtec_range.json`` (fractions of the side; rotate flag)
MVTEC_BOX_RANGES: dict[str, dict[str, BoxSpec]] = {
    "bottle": {"broken_large": _spec((.20, .25), (.25, .80), True), "broken_small": _spec((.15, .25)),
               "contamination": _spec((.2, .4), None, True)},
    "cable": {"bent_wire": _spec((.1, .25)), "cable_swap": _spec((.3, .4)), "combined": _spec((.1, .2)),
              "cut_inner_insulation": _spec((.1, .2)), "cut_outer_insulation": _spec((.1, .2), (.2, .4), True),
              "missing_cable": _spec((.4, .4)), "missing_wire": _spec((.1, .2)), "poke_insulation": _spec((.1, .2))},
    "capsule": {"crack": _spec((.1, .2), (.1, .3), True), "faulty_imprint": _spec((.15, .25)),
                "poke": _spec((.05, .15)), "scratch": _spec((.05, .15), (.15, .25), True),
                "squeeze": _spec((.25, .4), (.3, .4), True)},
    "carpet": {"color": _spec((.1, .25), None, True), "cut": _spec((.05, .15), None, True), "hole": _spec((.05, .15)),
               "metal_contamination": _spec((.05, .2), None, True), "thread": _spec((.05, .2), None, True)},
    "grid": {"bent": _spec((.05, .15)), "broken": _spec((.1, .2)), "glue": _spec((.1, .2)),
             "metal_contamination": _spec((.1, .2)), "thread": _spec((.05, .1), (.1, .4), True)},
    "hazelnut": {"crack": _spec((.2, .35)), "cut": _spec((.05, .2), (.2, .3), True), "hole": _spec((.1, .15)),
                 "print": _spec((.2, .4), None, True)},
    "leather": {"color": _spec((.05, .1), (.1, .2), True), "cut": _spec((.05, .1), (.1, .2), True),
                "fold": _spec((.05, .1), (.1, .2), True), "glue": _spec((.05, .15), None, True),
                "poke": _spec((.05, .15), None, True)},
    "metal_nut": {"bent": _spec((.1, .2), None, True), "color": _spec((.05, .1), (.1, .2), True),
                  "flip": _spec((.9, .9)), "scratch": _spec((.2, .4), None, True)},
    "pill": {"color": _spec((.05, .15), None, True), "combined": _spec((.05, .15), None, True),
             "contamination": _spec((.05, .15), None, True), "crack": _spec((.05, .1), (.1, .2), True),
             "faulty_imprint": _spec((.1, .4)), "pill_type": _spec((.8, .8), (.5, .5)),
             "scratch": _spec((.05, .1), (.1, .2), True)},
    "tile": {"crack": _spec((.05, .1), (.2, 1.0), True), "glue_strip": _spec((.1, .4), None, True),
             "gray_stroke": _spec((.1, .4), None, True), "oil": _spec((.1, .4)), "rough": _spec((.1, .4), None, True)},
    "toothbrush": {"defective": _spec((.1, .15))},
    "transistor": {"bent_lead": _spec((.2, .4), (.15, .3)), "cut_lead": _spec((.3, .6), (.15, .4)),
                   "damaged_case": _spec((.25, .4)), "misplaced": _spec((.9, .9))},
    "wood": {"color": _spec((.1, .3), None, True), "combined": _spec((.1, .3), None, True),
             "liquid": _spec((.1, .3), None, True), "hole": _spec((.05, .15)),
             "scratch": _spec((.1, .2), (.2, .5), True)},
    "zipper": _ZIPPER,
}
#: foreground-based variant (VisA): 0.05-0.1 of the side, no rotation
FOREGROUND_BOX = _spec((.05, .1))


def box_spec_for(category: str | None, defect: str, masks: Sequence[np.ndarray] = ()) -> BoxSpec:
    """The box ranges of a defect: AnoGen's MVTec table when it lists (category, defect); else
    the bounding-box sizes of the support masks widened by 20 %; else 0.05-0.2 of the side."""
    table = MVTEC_BOX_RANGES.get(category or "", {})
    if defect in table:
        return table[defect]
    widths, heights = [], []
    for mask in masks:
        ys, xs = np.nonzero(np.asarray(mask))
        if len(xs):
            widths.append((xs.max() - xs.min() + 1) / mask.shape[1])
            heights.append((ys.max() - ys.min() + 1) / mask.shape[0])
    if widths:
        def widen(values: list[float]) -> tuple[float, float]:
            return float(np.clip(min(values) * 0.8, 0.02, 1.0)), float(np.clip(max(values) * 1.2, 0.02, 1.0))
        return BoxSpec(widen(widths), widen(heights), False)
    return _spec((.05, .2))


def foreground_template(pixels: np.ndarray, size: int) -> np.ndarray:
    """AnoGen's foreground template (variant 2): grey image at ``size``^2, Otsu threshold, inverted
    when the top-left pixel is foreground-white, closed with a 15x15 ellipse (scaled to ``size``)."""
    import cv2

    rgb = D.resize_image(D._rgb(np.asarray(pixels)), size, size)
    grey = cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2GRAY)
    _, binary = cv2.threshold(grey, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    if binary[0, 0] == 255:
        binary = 255 - binary
    k = max(3, int(round(15 * size / 256)) | 1)
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k))
    return cv2.morphologyEx(binary, cv2.MORPH_CLOSE, kernel) > 0


def sample_box_mask(rng: np.random.Generator, size: int, spec: BoxSpec, template: np.ndarray | None = None, *,
                    rotate: bool | None = None, min_overlap: float = 0.75, max_tries: int = 1000,
                    ) -> tuple[np.ndarray, dict[str, Any]]:
    """Rejection-sample a (rotated) filled box on a ``size``^2 canvas.

    Width and height are drawn in pixels from the spec's ranges, the corner uniformly so the box
    lies in the canvas; with rotation the canvas turns about the box centre by an integer angle in
    [0, 180]. A box is accepted when more than ``min_overlap`` of its (unrotated) area lies in
    ``template`` (no template: every box is accepted). Raises ``ConfigError`` when no box fits.
    """
    import cv2

    rotate = spec.rotate if rotate is None else rotate
    if template is not None:
        template = np.asarray(template, bool)
        if template.shape != (size, size):
            raise ConfigError(f"box template is {template.shape[1]}x{template.shape[0]}, expected {size}x{size}")
    w_lo, w_hi = max(1, int(spec.width[0] * size)), max(1, int(spec.width[1] * size))
    h_lo, h_hi = max(1, int(spec.height[0] * size)), max(1, int(spec.height[1] * size))
    for attempt in range(1, max_tries + 1):
        w = int(rng.integers(w_lo, w_hi + 1))
        h = int(rng.integers(h_lo, h_hi + 1))
        x = int(rng.integers(0, size - w + 1))
        y = int(rng.integers(0, size - h + 1))
        canvas = np.zeros((size, size), np.uint8)
        canvas[y:y + h, x:x + w] = 255
        angle = 0
        if rotate:
            angle = int(rng.integers(0, 181))
            matrix = cv2.getRotationMatrix2D((x + w / 2.0, y + h / 2.0), angle, 1.0)
            canvas = cv2.warpAffine(canvas, matrix, (size, size), flags=cv2.INTER_NEAREST)
        box = canvas > 0
        if template is None or (box & template).sum() / float(w * h) > min_overlap:
            return box, {"x": x, "y": y, "width": w, "height": h, "angle": angle, "tries": attempt}
    coverage = 100.0 * (template.mean() if template is not None else 1.0)
    raise ConfigError(
        f"anogen: no box of {w_lo}-{w_hi} x {h_lo}-{h_hi} px fits more than {min_overlap:.0%} inside the template "
        f"(covers {coverage:.1f}% of the {size}x{size} image) after {max_tries} tries; use smaller boxes, a lower "
        "min_overlap or box_mode='anywhere'")


# --------------------------------------------------------------------------------------------
# support sets


@dataclass
class SupportImage:
    """A real anomaly image (H x W x C uint8), its defect mask (H x W bool) and where it came from."""

    image: np.ndarray
    mask: np.ndarray
    name: str


def check_support(support: Sequence[SupportImage], k_shot: int, what: str) -> list[SupportImage]:
    """Validate a support set: at least ``k_shot`` items, masks the size of their images, non-empty."""
    if len(support) < k_shot:
        raise ConfigError(f"{what}: {len(support)} anomaly image(s) found, at least k_shot={k_shot} are needed")
    for item in support:
        mask = np.asarray(item.mask)
        if mask.shape[:2] != np.asarray(item.image).shape[:2]:
            raise SchemaError(f"{what}: mask of {item.name} is {mask.shape[1]}x{mask.shape[0]} but the image is "
                              f"{item.image.shape[1]}x{item.image.shape[0]}")
        if not mask.any():
            raise SchemaError(f"{what}: mask of {item.name} is empty (an anomaly needs a defect region)")
    return list(support)


def support_from_dataset(dataset: Any, defect: str, *, k_shot: int = 3, seed: int = 0,
                         category: str | None = None) -> list[SupportImage]:
    """Draw ``k_shot`` anomalies of ``defect`` at random (seeded) from a loaded dataset's test split."""
    subset = dataset.filter(label=1, defect=defect)
    if category is not None:
        subset = subset.filter(category=category)
    keys = subset.keys
    if len(keys) < k_shot:
        raise ConfigError(f"defect {defect!r}: {len(keys)} anomaly image(s) with masks found, at least "
                          f"k_shot={k_shot} are needed")
    chosen = sorted(random.Random(seed).sample(range(len(keys)), k_shot))
    items = []
    for i in chosen:
        sample = subset[i]
        if sample.target is None:
            raise SchemaError(f"{sample.key}: the anomaly has no mask")
        items.append(SupportImage(np.asarray(sample.data), np.asarray(sample.target) > 0, sample.key))
    return check_support(items, k_shot, f"defect {defect!r}")


def support_from_folder(root: str | Path, defect: str) -> list[SupportImage]:
    """Read AnoGen's support layout: ``<root>/<defect>/NNN.png`` with ``<root>/<defect>_mask/NNN_mask.png``
    (``NNN.png`` is accepted in the mask folder too)."""
    from ...io.images import IMAGE_SUFFIXES, read_image, read_mask

    root = Path(root)
    images_dir, masks_dir = root / defect, root / f"{defect}_mask"
    if not images_dir.is_dir():
        raise ConfigError(f"defect {defect!r}: folder {images_dir} not found (layout: <root>/<defect>/NNN.png, "
                          "<root>/<defect>_mask/NNN_mask.png)")
    items = []
    for path in sorted(p for p in images_dir.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES):
        candidates = [masks_dir / f"{path.stem}_mask.png", masks_dir / f"{path.stem}.png"]
        mask_path = next((c for c in candidates if c.is_file()), None)
        if mask_path is None:
            raise MalformedFileError(path, f"no mask found (looked for {candidates[0].name} in {masks_dir})")
        image, mask = read_image(path), read_mask(mask_path)
        if mask.shape != image.shape[:2]:
            raise MalformedFileError(mask_path, f"mask is {mask.shape[1]}x{mask.shape[0]}, image {path.name} is "
                                     f"{image.shape[1]}x{image.shape[0]}")
        items.append(SupportImage(image, mask, str(path)))
    return items


# --------------------------------------------------------------------------------------------
# learned weights


@dataclass
class AnoGenEmbedding:
    """One learned token: its text, vector, and the box ranges used to place its defect."""

    category: str
    defect: str
    token: str
    vector: np.ndarray
    box: BoxSpec
    init_word: str = "defect"
    train: dict[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> str:
        return f"{self.category}/{self.defect}"


@dataclass
class AnoGenWeights:
    """Learned AnoGen embeddings for one base model; saved as ``anogen.json`` + ``embeddings.safetensors``."""

    model: str
    resolution: int
    embeddings: list[AnoGenEmbedding]

    def get(self, defect: str | None) -> AnoGenEmbedding:
        if defect is None:
            return self.embeddings[0]
        for emb in self.embeddings:
            if defect in (emb.defect, emb.key):
                return emb
        raise ConfigError(f"anogen: defect {defect!r} is not in the weights (have: "
                          f"{', '.join(e.key for e in self.embeddings)})")

    def save(self, folder: str | Path) -> Path:
        from safetensors.numpy import save_file

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        tensors = {e.key: np.ascontiguousarray(e.vector, dtype=np.float32) for e in self.embeddings}
        save_file(tensors, str(folder / TENSORS_NAME))
        config = {
            "format": FORMAT, "format_version": FORMAT_VERSION, "model": self.model, "resolution": self.resolution,
            "embeddings": [{"category": e.category, "defect": e.defect, "token": e.token, "init_word": e.init_word,
                            "box": {"width": list(e.box.width), "height": list(e.box.height), "rotate": e.box.rotate},
                            "train": e.train} for e in self.embeddings],
        }
        (folder / CONFIG_NAME).write_text(json.dumps(config, indent=2, sort_keys=True), encoding="utf-8")
        return folder

    @classmethod
    def load(cls, path: str | Path) -> AnoGenWeights:
        from safetensors.numpy import load_file

        folder = Path(path)
        if folder.is_file():
            folder = folder.parent
        config_path = folder / CONFIG_NAME
        if not config_path.is_file():
            raise ConfigError(f"anogen weights: {config_path} not found (train with scripts/train_anogen.py)")
        try:
            config = json.loads(config_path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise MalformedFileError(config_path, f"invalid JSON ({exc.msg})", line=exc.lineno) from None
        if config.get("format") != FORMAT:
            raise MalformedFileError(config_path, f"not AnoGen weights (format {config.get('format')!r})")
        tensors_path = folder / TENSORS_NAME
        if not tensors_path.is_file():
            raise ConfigError(f"anogen weights: {tensors_path} not found")
        tensors = load_file(str(tensors_path))
        embeddings = []
        for entry in config["embeddings"]:
            key = f"{entry['category']}/{entry['defect']}"
            if key not in tensors:
                raise MalformedFileError(tensors_path, f"no tensor {key!r}")
            box = entry["box"]
            embeddings.append(AnoGenEmbedding(entry["category"], entry["defect"], entry["token"], tensors[key],
                                              BoxSpec(tuple(box["width"]), tuple(box["height"]), bool(box["rotate"])),
                                              entry.get("init_word", "defect"), entry.get("train", {})))
        return cls(config["model"], int(config["resolution"]), embeddings)


def token_for(category: str, defect: str) -> str:
    return f"<{category}-{defect}>".lower().replace(" ", "_")


# --------------------------------------------------------------------------------------------
# stage 1: textual inversion with the mask-weighted loss


@dataclass
class AnoGenTrainConfig:
    """Stage-1 settings (reference: 6100 steps, batch 4, lr 5e-3 x 4 = 0.02, init word "defect")."""

    steps: int = 6100
    batch_size: int = 4
    learning_rate: float = 0.02
    weight_decay: float = 0.01
    k_shot: int = 3
    init_word: str = "defect"
    flip_probability: float = 0.5
    seed: int = 0
    mixed_precision: str = "auto"

    def __post_init__(self) -> None:
        for name in ("steps", "batch_size", "k_shot"):
            if getattr(self, name) < 1:
                raise ConfigError(f"AnoGenTrainConfig.{name} must be >= 1, got {getattr(self, name)}")
        if self.learning_rate <= 0:
            raise ConfigError(f"AnoGenTrainConfig.learning_rate must be > 0, got {self.learning_rate}")
        if self.mixed_precision not in ("auto", "no", "bf16", "fp16"):
            raise ConfigError(f"AnoGenTrainConfig.mixed_precision: {self.mixed_precision!r} is not auto, no, bf16, fp16")


def latent_mask(masks: torch.Tensor, latent_size: int) -> torch.Tensor:
    """M_lat = 1[bilinear_resize(M) != 0]: every latent cell the defect touches."""
    return (F.interpolate(masks.float(), size=(latent_size, latent_size), mode="bilinear",
                          align_corners=False) > 0).float()


def stage1_loss(parts: D.DiffusionParts, latents: torch.Tensor, masks_lat: torch.Tensor, input_ids: torch.Tensor,
                timesteps: torch.Tensor, noise: torch.Tensor, scheduler: Any) -> torch.Tensor:
    """Mask-weighted denoising loss of a batch of (scaled) latents with captions ``input_ids``."""
    noisy = scheduler.add_noise(latents, noise, timesteps)
    context = parts.encode_ids(input_ids)
    predicted = parts.unet(noisy, timesteps, context).sample
    return masked_denoising_loss(predicted, noise, masks_lat)


def _autocast(device: torch.device, mode: str):
    import contextlib

    if mode == "auto":
        mode = "bf16" if device.type == "cuda" else "no"
    if mode == "no":
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=torch.bfloat16 if mode == "bf16" else torch.float16)


def train_embedding(parts: D.DiffusionParts, support: Sequence[SupportImage], *, category: str, defect: str,
                    config: AnoGenTrainConfig | None = None, progress: bool = True,
                    on_step: Callable[[int, float], None] | None = None) -> AnoGenEmbedding:
    """Learn the token of (category, defect) from ``support`` (at least ``k_shot`` images).

    Only the token's row of the (extended) embedding table is updated; the U-Net, VAE, text
    encoder and every other embedding row stay as they are.
    """
    config = config or AnoGenTrainConfig()
    support = check_support(support, config.k_shot, f"defect {defect!r}")
    token = token_for(category, defect)
    (token_id,) = parts.add_tokens([token], config.init_word)
    table = parts.token_embedding()
    row = token_id - table.num_base
    for module in (parts.unet, parts.vae, parts.text_encoder):
        module.requires_grad_(False)
    table.extra.requires_grad_(True)
    size, lat = parts.resolution, parts.latent_size

    # The VAE is frozen: encode each support image (and its mirror) once.
    images = D.images_to_tensor([s.image for s in support], size)
    masks = D.resize_masks([s.mask for s in support], size, "bicubic")
    images = torch.cat([images, images.flip(-1)])
    masks = torch.cat([masks, masks.flip(-1)])
    mean, std = parts.posterior(images)
    masks_lat = latent_mask(masks, lat).to(parts.device)

    py_rng = random.Random(config.seed)
    generator = torch.Generator("cpu").manual_seed(config.seed)
    scheduler = D.ddpm_scheduler(parts)
    optimizer = torch.optim.AdamW([table.extra], lr=config.learning_rate, weight_decay=config.weight_decay)
    frozen_rows = table.extra.detach().clone()
    keep = torch.ones(table.extra.shape[0], dtype=torch.bool, device=table.extra.device)
    keep[row] = False
    n = len(support)
    order: list[int] = []
    losses: list[float] = []
    with D.progress_bar(config.steps, f"anogen {category}/{defect}", progress) as advance:
        for step in range(config.steps):
            batch = []
            for _ in range(config.batch_size):
                if not order:
                    order = list(range(n))
                    py_rng.shuffle(order)
                index = order.pop()
                batch.append(index + n if py_rng.random() < config.flip_probability else index)
            captions = [py_rng.choice(IMAGENET_TEMPLATES_SMALL).format(token) for _ in batch]
            idx = torch.tensor(batch, device=mean.device)
            eps_latent = torch.randn(mean[idx].shape, generator=generator).to(mean.device, mean.dtype)
            latents = (mean[idx] + std[idx] * eps_latent) * parts.latent_scale
            timesteps = torch.randint(0, scheduler.config.num_train_timesteps, (len(batch),), generator=generator)
            noise = torch.randn(latents.shape, generator=generator).to(latents.device, latents.dtype)
            with _autocast(parts.device, config.mixed_precision):
                loss = stage1_loss(parts, latents, masks_lat[idx], parts.tokenize(captions),
                                   timesteps.to(parts.device), noise, scheduler)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            with torch.no_grad():
                table.extra[keep] = frozen_rows[keep]
            value = float(loss.detach())
            losses.append(value)
            if on_step is not None:
                on_step(step, value)
            advance(loss=value)
    table.extra.requires_grad_(False)
    vector = table.extra[row].detach().float().cpu().numpy().copy()
    train_info = {**asdict(config), "support": [s.name for s in support],
                  "final_loss": float(np.mean(losses[-min(len(losses), 50):]))}
    return AnoGenEmbedding(category, defect, token, vector, box_spec_for(category, defect, [s.mask for s in support]),
                           config.init_word, train_info)


def train_anogen(model: str, supports: dict[str, Sequence[SupportImage]], *, category: str,
                 config: AnoGenTrainConfig | None = None, device: str = "auto", progress: bool = True,
                 parts: D.DiffusionParts | None = None) -> AnoGenWeights:
    """Train one token per defect of ``supports`` ({defect: support images}) on ``model``."""
    config = config or AnoGenTrainConfig()
    if parts is None:
        parts = D.load_parts(model, device=device, dtype="float32")
    embeddings = [train_embedding(parts, support, category=category, defect=defect, config=config, progress=progress)
                  for defect, support in supports.items()]
    return AnoGenWeights(model=parts.model_id, resolution=parts.resolution, embeddings=embeddings)


# --------------------------------------------------------------------------------------------
# stage 2: box-conditioned sampling


StepCallback = Callable[[int, Any, dict[str, torch.Tensor]], None]


def box_inpaint(parts: D.DiffusionParts, images: torch.Tensor, boxes: torch.Tensor, prompts: Sequence[str], *,
                generators: Sequence[torch.Generator], steps: int = 50, guidance_scale: float = 10.0,
                eta: float = 0.0, callback: StepCallback | None = None) -> torch.Tensor:
    """Fill ``boxes`` of ``images`` (``[B, 3, S, S]`` in [-1, 1]; boxes ``[B, 1, S, S]`` in {0, 1}).

    DDIM from pure noise; before each step the latent outside the box is replaced by the source
    latent noised to that step with fresh noise (LDM mask blending), then the classifier-free
    guided update. ``callback(i, t, tensors)`` sees the blended latent and the pieces it was made of
    (``latents``, ``source_latents``, ``noise``, ``keep``). Returns decoded images in [-1, 1].
    """
    batch = images.shape[0]
    with torch.no_grad():
        z0 = parts.encode_images(images, generators)
        keep = 1.0 - (F.interpolate(boxes.float(), size=z0.shape[-2:], mode="area") > 0.5).to(z0.dtype)
        keep = keep.to(z0.device)
        context = parts.encode_prompts(list(prompts))
        uncond = parts.encode_prompts([""] * batch) if guidance_scale != 1.0 else None
        scheduler = D.ddim_scheduler(parts)
        scheduler.set_timesteps(steps, device=parts.device)
        latents = D.randn(z0.shape[1:], generators, z0.device, z0.dtype)
        for i, t in enumerate(scheduler.timesteps):
            noise = D.randn(z0.shape[1:], generators, z0.device, z0.dtype)
            source = scheduler.add_noise(z0, noise, t.reshape(1))
            latents = keep * source + (1.0 - keep) * latents
            if callback is not None:
                callback(i, t, {"latents": latents, "source_latents": z0, "noise": noise, "keep": keep})
            if uncond is not None:
                eps_u, eps_c = parts.unet(torch.cat([latents, latents]), t, torch.cat([uncond, context])).sample.chunk(2)
                eps = eps_u + guidance_scale * (eps_c - eps_u)
            else:
                eps = parts.unet(latents, t, context).sample
            variance_noise = D.randn(z0.shape[1:], generators, z0.device, z0.dtype) if eta > 0 else None
            latents = scheduler.step(eps, t, latents, eta=eta, variance_noise=variance_noise).prev_sample
        return parts.decode_latents(latents)


# --------------------------------------------------------------------------------------------
# the registered generator


@dataclass
class AnoGenConfig(GeneratorConfig):
    """Parameters of the ``anogen`` generator.

    ``weights``: folder written by ``scripts/train_anogen.py``; ``model``: Hub id or folder of
    the base checkpoint (default: the one the weights were trained on); ``defect``: which learned
    defect to paint (default: one at random per sample). Box: ``box_mode`` is ``foreground``
    (Otsu template of the source image, AnoGen's variant 2), ``template`` (a mask image given as
    ``template``, variant 1) or ``anywhere``; sizes come from AnoGen's MVTec table or the support
    masks unless ``box_*`` fractions are given. ``paste_back`` restores the source pixels outside
    the box exactly (the reference keeps the VAE round trip there).
    """

    weights: str | None = param(None, doc="folder with anogen.json and embeddings.safetensors")
    model: str | None = param(None, doc="Hub id or local folder of the base model")
    defect: str | None = param(None, doc="defect to paint; None = random among the learned ones")
    steps: int = param(50, low=1, high=1000)
    guidance_scale: float = param(10.0, low=0.0, high=50.0)
    eta: float = param(0.0, low=0.0, high=1.0)
    box_mode: str = param("foreground", choices=("foreground", "template", "anywhere"))
    template: str | None = param(None, doc="mask image of where the defect may appear (box_mode='template')")
    box_min_width: float | None = param(None, low=0.0, high=1.0)
    box_max_width: float | None = param(None, low=0.0, high=1.0)
    box_min_height: float | None = param(None, low=0.0, high=1.0)
    box_max_height: float | None = param(None, low=0.0, high=1.0)
    rotate: str = param("auto", choices=("auto", "always", "never"))
    min_overlap: float = param(0.75, low=0.0, high=1.0)
    max_tries: int = param(1000, low=1)
    paste_back: bool = param(True)
    device: str = param("auto")
    dtype: str = param("auto", choices=("auto", "float32", "float16", "bfloat16"))
    reproduce_reference_quirks: bool = param(False, doc="always rotate boxes, as the reference code does")


@register_generator("anogen")
class AnoGen(Generator):
    """AnoGen box-conditioned defect painting (see the module docstring)."""

    version = "1"
    modality = Modality.IMAGE
    config_class = AnoGenConfig
    config: AnoGenConfig

    # model --------------------------------------------------------------------------------------
    def weights(self) -> AnoGenWeights:
        if not self.config.weights:
            raise ConfigError("anogen: weights=PATH is required (train them with scripts/train_anogen.py)")
        return D.get_parts(("anogen-weights", *D.weights_identity(self.config.weights)),
                           lambda: AnoGenWeights.load(self.config.weights))

    def model(self) -> tuple[D.DiffusionParts, AnoGenWeights]:
        weights = self.weights()
        model_id = self.config.model or weights.model
        device = D.resolve_device(self.config.device)
        key = ("anogen", model_id, *D.weights_identity(self.config.weights), str(device), self.config.dtype)

        def build() -> D.DiffusionParts:
            parts = D.load_parts(model_id, device=device, dtype=self.config.dtype)
            width = parts.token_embedding().embedding_dim
            for emb in weights.embeddings:
                if emb.vector.shape != (width,):
                    raise ConfigError(f"anogen: the embedding of {emb.key} has {emb.vector.shape[-1]} dimensions, the "
                                      f"text encoder of {model_id!r} has {width} (weights trained on {weights.model!r})")
                ids = parts.add_tokens([emb.token], emb.init_word)
                parts.set_token_rows(ids, torch.from_numpy(emb.vector)[None])
            return parts

        return D.get_parts(key, build), weights

    # per-sample plan --------------------------------------------------------------------------
    def _box_spec(self, emb: AnoGenEmbedding) -> BoxSpec:
        c = self.config
        spec = emb.box
        width = (c.box_min_width if c.box_min_width is not None else spec.width[0],
                 c.box_max_width if c.box_max_width is not None else spec.width[1])
        height = (c.box_min_height if c.box_min_height is not None else spec.height[0],
                  c.box_max_height if c.box_max_height is not None else spec.height[1])
        rotate = {"always": True, "never": False}.get(c.rotate, spec.rotate)
        if c.reproduce_reference_quirks and c.box_mode == "template":
            rotate = True
        try:
            return BoxSpec(width, height, rotate)
        except ConfigError as exc:
            raise ConfigError(f"anogen: {exc} (from box_min/max_width/height)") from None

    def _template(self, source: Sample, size: int) -> np.ndarray | None:
        mode = self.config.box_mode
        if mode == "anywhere":
            return None
        if mode == "foreground":
            return foreground_template(np.asarray(source.data), size)
        if not self.config.template:
            raise ConfigError("anogen: box_mode='template' needs template=PATH (a mask of where the defect may appear)")
        from ...io.images import read_mask

        mask = read_mask(self.config.template)
        return D.resize_masks([mask], size, "nearest")[0, 0].numpy() > 0.5

    def _plan(self, source: Sample, rng: np.random.Generator, weights: AnoGenWeights, size: int) -> dict[str, Any]:
        if self.config.defect is not None:
            emb = weights.get(self.config.defect)
        else:
            emb = weights.embeddings[int(rng.integers(len(weights.embeddings)))]
        spec = self._box_spec(emb)
        try:
            box, info = sample_box_mask(rng, size, spec, self._template(source, size),
                                        min_overlap=self.config.min_overlap, max_tries=self.config.max_tries)
        except ConfigError as exc:
            raise ConfigError(f"image {source.key!r}, defect {emb.defect!r}: {exc}") from None
        return {"embedding": emb, "box": box, "box_info": info, "torch_seed": int(rng.integers(0, 2**63 - 1))}

    # generation -------------------------------------------------------------------------------
    def generate(self, source: Sample | None, rng: np.random.Generator, seed: int) -> Sample:
        assert source is not None
        return self._generate([source], [rng], [seed])[0]

    def generate_batch(self, sources: Sequence[Sample], seeds: Sequence[int]) -> list[Sample]:
        """Generate one sample per (source, seed) in a single batched diffusion run (GPU throughput).

        Each result equals ``gen(source, seed=seed)`` up to floating-point rounding of batched
        kernels (bit-identical on the CPU).
        """
        rngs = [np.random.default_rng(derive_seed(int(s), src.key)) for src, s in zip(sources, seeds)]
        for src in sources:
            if src.modality != self.modality:
                raise ConfigError(f"anogen: expects an image sample, got {src.modality.value} ({src.key})")
        return self._generate(list(sources), rngs, [int(s) for s in seeds])

    def _generate(self, sources: list[Sample], rngs: list[np.random.Generator], seeds: list[int],
                  callback: StepCallback | None = None) -> list[Sample]:
        parts, weights = self.model()
        size = parts.resolution
        plans = [self._plan(src, rng, weights, size) for src, rng in zip(sources, rngs)]
        images = D.images_to_tensor([np.asarray(s.data) for s in sources], size)
        boxes = torch.from_numpy(np.stack([p["box"] for p in plans]).astype(np.float32))[:, None]
        generated = box_inpaint(parts, images.to(parts.device, parts.dtype), boxes, [p["embedding"].token for p in plans],
                                generators=D.cpu_generators([p["torch_seed"] for p in plans]),
                                steps=self.config.steps, guidance_scale=self.config.guidance_scale,
                                eta=self.config.eta, callback=callback)
        outputs = D.tensor_to_images(generated)
        return [self._sample(src, out, plan, seed) for src, out, plan, seed in zip(sources, outputs, plans, seeds)]

    def _sample(self, source: Sample, generated: np.ndarray, plan: dict[str, Any], seed: int) -> Sample:
        pixels = np.asarray(source.data)
        height, width = pixels.shape[:2]
        box = _resize_nearest(plan["box"], height, width)
        out = D.resize_image(generated, height, width)
        if self.config.paste_back:
            out = np.where(box[:, :, None], out, D._rgb(pixels))
        out = D.match_channels(np.ascontiguousarray(out.astype(np.uint8)), pixels.shape[2])
        emb: AnoGenEmbedding = plan["embedding"]
        return Sample(
            key=f"{source.key}/anogen-{seed}",
            dataset=source.dataset,
            split=source.split,
            label=1,
            data=Image(out),
            category=source.category,
            defect=emb.defect,
            target=box.astype(np.uint8),
            meta={"label_kind": "box"},
            provenance=self.provenance(seed, source, defect=emb.key, token=emb.token, box=plan["box_info"],
                                       torch_seed=plan["torch_seed"], model=self.config.model or self.weights().model,
                                       working_resolution=plan["box"].shape[0]),
        )

    @classmethod
    def example(cls) -> tuple[dict[str, Any], Sample | None]:
        from ._tiny import example_source, example_weights

        return ({"weights": str(example_weights("anogen")), "steps": 2, "device": "cpu", "box_mode": "anywhere"},
                example_source())


def _resize_nearest(mask: np.ndarray, height: int, width: int) -> np.ndarray:
    from PIL import Image as PILImage

    if mask.shape == (height, width):
        return mask.astype(bool)
    return np.asarray(PILImage.fromarray(mask.astype(np.uint8) * 255).resize((width, height), PILImage.NEAREST)) > 127
