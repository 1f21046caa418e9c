"""DRAEM (Zavrtanik et al., ICCV 2021): a reconstructive and a discriminative sub-network
trained on synthetic anomalies.

Training: each normal image is first rotated by U(-90, 90) degrees with probability ``rotate_prob``
(0.3), then becomes, with probability ``anomaly_prob``, an anomalous one made
by anomalykit's ``perlin`` generator (DRAEM's Perlin-noise masks blended with a texture from
``texture_dir``, e.g. DTD's ``images``, or with an augmented copy of the image itself), with its
exact mask. The reconstructive network (an encoder-decoder without skips) maps the augmented
image back to the normal one (loss: L2 + 1 - SSIM, window 11); the discriminative network (a
U-Net) reads the augmented image and its reconstruction side by side and segments the anomaly
(focal loss, gamma 2). Adam (lr 1e-4), learning rate x0.2 at 80 % and 90 % of the steps; weights
initialised N(0, 0.02).

Scoring: the anomaly map is the discriminative softmax's anomaly channel, upsampled to the
image's H x W (aligned with its mask) and Gaussian-smoothed (``sigma``, 0: the raw softmax); the
image score is the maximum of that softmax mean-filtered with a ``score_window`` box (21 in the
paper).

The paper's sizes are widths 128 / 64 with 4 / 5 pooling levels at 256 x 256 and 700 epochs; the
small widths and step counts used in tests only show the mechanics.

>>> import anomalykit
>>> params, train, test = anomalykit.get_baseline("draem").example()
>>> detector = anomalykit.get_baseline("draem", **params).fit(train, seed=0)
>>> detector.score_samples(test[:1])[0].anomaly_map.shape
(32, 32)
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ConfigError
from ..losses import focal_loss
from ..schema import Image, Modality, Sample
from ._image_features import example_data, gaussian_smooth, resolve_device, torch_threads, upsample
from .base import Detector, DetectorConfig, DetectorOutput, param, register_baseline


@dataclass
class DraemConfig(DetectorConfig):
    """Parameters of ``draem`` (defaults: the paper's)."""

    image_size: int = param(256, low=8, high=2048, doc="images are resized to image_size x image_size")
    reconstructive_width: int = param(128, low=1, high=1024, doc="channels of the first reconstructive level")
    discriminative_width: int = param(64, low=1, high=1024, doc="channels of the first discriminative level")
    reconstructive_depth: int = param(4, low=1, high=8, doc="pooling levels of the reconstructive network")
    discriminative_depth: int = param(5, low=1, high=8, doc="pooling levels of the discriminative network")
    epochs: int = param(700, low=1, doc="passes over the training images (ignored when steps is set)")
    steps: int | None = param(None, low=1, doc="optimiser steps; overrides epochs")
    batch_size: int = param(8, low=1, high=4096)
    learning_rate: float = param(1e-4, low=0.0, high=1.0)
    anomaly_prob: float = param(0.5, low=0.0, high=1.0, doc="share of training images made anomalous")
    rotate_prob: float = param(0.3, low=0.0, high=1.0, doc="share of training images rotated first")
    rotate_degrees: float = param(90.0, low=0.0, high=180.0, doc="rotation angle drawn from U(-x, x)")
    texture_dir: str | None = param(None, doc="anomaly source textures for the perlin generator (e.g. dtd/images)")
    focal_gamma: float = param(2.0, low=0.0, high=10.0)
    score_window: int = param(21, low=1, high=255, doc="mean filter (odd) before the image score's max")
    sigma: float = param(4.0, low=0.0, high=64.0, doc="Gaussian smoothing of the anomaly map (0: none)")
    device: str = param("auto", choices=("auto", "cpu", "cuda"))
    num_threads: int | None = param(None, low=1, high=1024, doc="CPU threads of torch while fitting and scoring "
                                                                "(None: torch's setting)")

    def validate(self) -> None:
        super().validate()
        levels = max(self.reconstructive_depth, self.discriminative_depth)
        if self.image_size % 2**levels:
            raise ConfigError(f"DraemConfig.image_size ({self.image_size}) must be divisible by 2^{levels} "
                              f"(the deepest network pools {levels} times)")
        if self.score_window % 2 == 0:
            raise ConfigError(f"DraemConfig.score_window must be odd, got {self.score_window}")


def _block(in_channels: int, out_channels: int, mid_channels: int | None = None) -> nn.Sequential:
    mid = out_channels if mid_channels is None else mid_channels
    return nn.Sequential(
        nn.Conv2d(in_channels, mid, 3, padding=1), nn.BatchNorm2d(mid), nn.ReLU(inplace=True),
        nn.Conv2d(mid, out_channels, 3, padding=1), nn.BatchNorm2d(out_channels), nn.ReLU(inplace=True),
    )


def _up(in_channels: int, out_channels: int) -> nn.Sequential:
    return nn.Sequential(nn.Upsample(scale_factor=2, mode="bilinear", align_corners=True),
                         nn.Conv2d(in_channels, out_channels, 3, padding=1), nn.BatchNorm2d(out_channels),
                         nn.ReLU(inplace=True))


def _widths(width: int, depth: int) -> list[int]:
    """Channels per level: width x 1, 2, 4, 8, 8, ... (DRAEM's progression)."""
    return [width * min(2**level, 8) for level in range(depth + 1)]


class ReconstructiveNetwork(nn.Module):
    """DRAEM's reconstructive sub-network: encoder-decoder without skip connections."""

    def __init__(self, width: int, depth: int, channels: int = 3) -> None:
        super().__init__()
        widths = _widths(width, depth)
        self.encoder = nn.ModuleList([_block(channels, widths[0])] +
                                     [_block(widths[i - 1], widths[i]) for i in range(1, depth + 1)])
        self.ups = nn.ModuleList([_up(widths[i], widths[i]) for i in range(depth, 0, -1)])
        self.decoder = nn.ModuleList([_block(widths[i], widths[i - 1], widths[i]) for i in range(depth, 0, -1)])
        self.out = nn.Conv2d(widths[0], channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for index, block in enumerate(self.encoder):
            x = block(F.max_pool2d(x, 2) if index else x)
        for up, block in zip(self.ups, self.decoder):
            x = block(up(x))
        return self.out(x)


class DiscriminativeNetwork(nn.Module):
    """DRAEM's discriminative sub-network: a U-Net over (image, reconstruction), two classes out."""

    def __init__(self, width: int, depth: int, in_channels: int = 6) -> None:
        super().__init__()
        widths = _widths(width, depth)
        self.encoder = nn.ModuleList([_block(in_channels, widths[0])] +
                                     [_block(widths[i - 1], widths[i]) for i in range(1, depth + 1)])
        self.ups = nn.ModuleList([_up(widths[i], widths[i - 1]) for i in range(depth, 0, -1)])
        self.decoder = nn.ModuleList([_block(2 * widths[i - 1], widths[i - 1]) for i in range(depth, 0, -1)])
        self.out = nn.Conv2d(widths[0], 2, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = []
        for index, block in enumerate(self.encoder):
            x = block(F.max_pool2d(x, 2) if index else x)
            skips.append(x)
        for up, block, skip in zip(self.ups, self.decoder, reversed(skips[:-1])):
            x = block(torch.cat([up(x), skip], 1))
        return self.out(x)


def _init_weights(module: nn.Module) -> None:
    """DRAEM's initialisation: conv N(0, 0.02); batch-norm scale N(1, 0.02), shift 0."""
    if isinstance(module, nn.Conv2d):
        nn.init.normal_(module.weight, 0.0, 0.02)
    elif isinstance(module, nn.BatchNorm2d):
        nn.init.normal_(module.weight, 1.0, 0.02)
        nn.init.zeros_(module.bias)


def ssim(x: torch.Tensor, y: torch.Tensor, window: int = 11, sigma: float = 1.5) -> torch.Tensor:
    """Mean structural similarity of two B x C x H x W images in [0, 1] (Gaussian window, per
    channel, no padding beyond the window's half width)."""
    coords = torch.arange(window, dtype=x.dtype, device=x.device) - window // 2
    g = torch.exp(-(coords**2) / (2 * sigma**2))
    g = g / g.sum()
    kernel = (g[:, None] * g[None, :]).expand(x.shape[1], 1, window, window).contiguous()

    def blur(t: torch.Tensor) -> torch.Tensor:
        return F.conv2d(t, kernel, padding=window // 2, groups=x.shape[1])

    c1, c2 = 0.01**2, 0.03**2
    mu_x, mu_y = blur(x), blur(y)
    var_x = blur(x * x) - mu_x**2
    var_y = blur(y * y) - mu_y**2
    cov = blur(x * y) - mu_x * mu_y
    ssim_map = ((2 * mu_x * mu_y + c1) * (2 * cov + c2)) / ((mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2))
    return ssim_map.mean()


def _rgb(sample: Sample, size: int) -> np.ndarray:
    """size x size x 3 uint8 (grey images repeated, alpha dropped)."""
    if not isinstance(sample.data, Image):
        raise ConfigError(f"{sample.key}: expected an Image payload, got {type(sample.data).__name__}")
    pixels = sample.data.pixels
    pixels = np.repeat(pixels, 3, axis=2) if pixels.shape[2] == 1 else pixels[:, :, :3]
    if pixels.shape[:2] != (size, size):
        pixels = cv2.resize(np.ascontiguousarray(pixels), (size, size), interpolation=cv2.INTER_LINEAR)
    return np.ascontiguousarray(pixels)


def _rotate(pixels: np.ndarray, degrees: float) -> np.ndarray:
    """Rotate about the centre, corners filled with black (imgaug's Affine default, used by DRAEM)."""
    height, width = pixels.shape[:2]
    matrix = cv2.getRotationMatrix2D((width / 2 - 0.5, height / 2 - 0.5), degrees, 1.0)
    return cv2.warpAffine(pixels, matrix, (width, height), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT,
                          borderValue=0)


def _to_tensor(images: Sequence[np.ndarray]) -> torch.Tensor:
    return torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).float().div_(255.0)


@register_baseline("draem")
class Draem(Detector):
    """DRAEM; see the module docstring."""

    version = "1"
    modality = Modality.IMAGE
    config_class = DraemConfig
    config: DraemConfig

    def _build(self) -> None:
        cfg = self.config
        self.device_ = resolve_device(cfg.device)
        reconstructive = ReconstructiveNetwork(cfg.reconstructive_width, cfg.reconstructive_depth)
        discriminative = DiscriminativeNetwork(cfg.discriminative_width, cfg.discriminative_depth)
        self.reconstructive_ = reconstructive.to(self.device_)
        self.discriminative_ = discriminative.to(self.device_)

    def _fit(self, samples: Sequence[Sample], rng: np.random.Generator, progress: bool) -> None:
        with torch_threads(self.config.num_threads):
            self._fit_model(samples, rng, progress)

    def _fit_model(self, samples: Sequence[Sample], rng: np.random.Generator, progress: bool) -> None:
        from ..generators.base import get_generator

        cfg = self.config
        self._build()
        self.reconstructive_.apply(_init_weights)
        self.discriminative_.apply(_init_weights)
        generator = get_generator("perlin", texture_dir=cfg.texture_dir)
        images = [_rgb(s, cfg.image_size) for s in samples]
        sources = [Sample(key=s.key, dataset=s.dataset, split="train", label=0, data=Image(pixels),
                          category=s.category) for s, pixels in zip(samples, images)]
        batch_size = min(cfg.batch_size, len(images))
        steps = cfg.steps if cfg.steps is not None else cfg.epochs * math.ceil(len(images) / batch_size)
        parameters = list(self.reconstructive_.parameters()) + list(self.discriminative_.parameters())
        optimiser = torch.optim.Adam(parameters, lr=cfg.learning_rate)
        schedule = torch.optim.lr_scheduler.MultiStepLR(
            optimiser, milestones=[int(0.8 * steps), int(0.9 * steps)], gamma=0.2)
        self.reconstructive_.train()
        self.discriminative_.train()
        order: list[int] = []
        step_range = range(steps)
        if progress:
            from rich.progress import track

            step_range = track(step_range, description="DRAEM training", total=steps)
        self.losses_ = np.zeros(steps, np.float64)
        self.synthesis_failures_ = 0
        for step in step_range:
            if len(order) < batch_size:
                order += rng.permutation(len(images)).tolist()
            batch, order = order[:batch_size], order[batch_size:]
            normals, augmented, masks = [], [], []
            for index in batch:
                pixels, source = images[index], sources[index]
                if cfg.rotate_prob and rng.random() < cfg.rotate_prob:  # DRAEM pre-rotates the normal image too
                    pixels = _rotate(pixels, float(rng.uniform(-cfg.rotate_degrees, cfg.rotate_degrees)))
                    source = dataclasses.replace(source, data=Image(pixels))
                normals.append(pixels)
                mask = np.zeros(pixels.shape[:2], np.uint8)
                if rng.random() < cfg.anomaly_prob:
                    try:
                        synthetic = generator(source, seed=int(rng.integers(2**62)))
                        pixels, mask = synthetic.data.pixels, (np.asarray(synthetic.target) >= 0.5).astype(np.uint8)
                    except ConfigError:  # no Perlin region could be placed: keep the normal image, counted
                        self.synthesis_failures_ += 1
                augmented.append(pixels)
                masks.append(mask)
            normal = _to_tensor(normals).to(self.device_)
            augmented_t = _to_tensor(augmented).to(self.device_)
            mask_t = torch.from_numpy(np.stack(masks)).long().to(self.device_)
            reconstruction = self.reconstructive_(augmented_t)
            logits = self.discriminative_(torch.cat([augmented_t, reconstruction], 1))
            loss = (F.mse_loss(reconstruction, normal) + (1.0 - ssim(reconstruction, normal))
                    + focal_loss(torch.softmax(logits, 1), mask_t, gamma=cfg.focal_gamma))
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
            schedule.step()
            self.losses_[step] = float(loss.detach())
        self.reconstructive_.eval()
        self.discriminative_.eval()

    def _score(self, samples: Sequence[Sample]) -> list[DetectorOutput]:
        with torch_threads(self.config.num_threads):
            return self._score_samples(samples)

    @torch.inference_mode()
    def _score_samples(self, samples: Sequence[Sample]) -> list[DetectorOutput]:
        cfg = self.config
        outputs: list[DetectorOutput] = []
        for start in range(0, len(samples), cfg.batch_size):
            batch = samples[start:start + cfg.batch_size]
            x = _to_tensor([_rgb(s, cfg.image_size) for s in batch]).to(self.device_)
            reconstruction = self.reconstructive_(x)
            probability = torch.softmax(self.discriminative_(torch.cat([x, reconstruction], 1)), 1)[:, 1]
            pooled = F.avg_pool2d(probability[:, None], cfg.score_window, stride=1, padding=cfg.score_window // 2)
            scores = pooled.flatten(1).amax(1).tolist()
            for sample, score, prob in zip(batch, scores, probability):
                assert isinstance(sample.data, Image)
                amap = upsample(prob[None], (sample.data.height, sample.data.width))[0].cpu().numpy()
                outputs.append(DetectorOutput(sample.key, float(score), gaussian_smooth(amap, cfg.sigma)
                                              .astype(np.float32)))
        return outputs

    def state_dict(self) -> dict[str, np.ndarray]:
        state = {f"reconstructive.{k}": v.detach().cpu().numpy() for k, v in self.reconstructive_.state_dict().items()}
        state.update({f"discriminative.{k}": v.detach().cpu().numpy()
                      for k, v in self.discriminative_.state_dict().items()})
        return state

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        self._build()
        for prefix, module in (("reconstructive.", self.reconstructive_), ("discriminative.", self.discriminative_)):
            weights = {k[len(prefix):]: torch.from_numpy(np.asarray(v)) for k, v in state.items()
                       if k.startswith(prefix)}
            try:
                module.load_state_dict(weights)
            except RuntimeError as exc:
                raise ConfigError(f"draem: the saved {prefix[:-1]} weights do not fit the config ({exc})") from None
        self.reconstructive_.eval()
        self.discriminative_.eval()

    @classmethod
    def example(cls) -> tuple[dict[str, Any], list[Sample], list[Sample]]:
        train, test = example_data()
        params = dict(image_size=32, reconstructive_width=4, discriminative_width=4, reconstructive_depth=2,
                      discriminative_depth=2, steps=4, batch_size=4, score_window=5, sigma=1.0,
                      num_threads=1)
        return params, train, test
