"""What the CNN-feature image detectors (PaDiM, PatchCore) share: the backbone, the input
pipeline, map post-processing, and a small synthetic image set for examples and tests.

The backbone is any ``transformers`` vision backbone (``AutoBackbone``), loaded by Hub id or
local folder; the papers take ``layer2`` and ``layer3`` of a (Wide) ResNet, which are the stages
``stage2`` and ``stage3`` of ``ResNetBackbone``. ``anomalykit:tiny-resnet`` builds a tiny ResNet
with random weights from a fixed seed instead (no download), for tests and examples.

>>> extractor = FeatureExtractor("anomalykit:tiny-resnet", ("stage2", "stage3"), image_size=32)
>>> train, test = synthetic_image_set(n_train=2, n_normal=1, n_anomalous=1, size=32)
>>> [tuple(f.shape) for f in next(extractor.batches(train))]
[(2, 32, 4, 4), (2, 64, 2, 2)]
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from ..errors import ConfigError
from ..schema import Image, Sample
from .base import DetectorConfig, param

TINY_RESNET_ID = "anomalykit:tiny-resnet"
#: ImageNet statistics, used by the ResNet checkpoints' image processors
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

__all__ = [
    "CNNFeatureConfig",
    "FeatureExtractor",
    "TINY_RESNET_ID",
    "gaussian_smooth",
    "load_backbone",
    "resolve_device",
    "synthetic_image_set",
    "torch_threads",
    "upsample",
]


@dataclass
class CNNFeatureConfig(DetectorConfig):
    """Backbone and input settings shared by PaDiM and PatchCore."""

    backbone: str = param("microsoft/resnet-50", doc="transformers backbone: Hub id, local folder, or "
                                                     "anomalykit:tiny-resnet (random tiny ResNet)")
    layers: tuple[str, ...] = param(default_factory=lambda: ("stage2", "stage3"),
                                    doc="backbone stages to concatenate (ResNet layer2 + layer3)")
    image_size: int = param(224, low=16, high=2048, doc="images are resized to image_size x image_size "
                                                        "(the papers: 224)")
    batch_size: int = param(16, low=1, high=4096)
    device: str = param("auto", choices=("auto", "cpu", "cuda"))
    sigma: float = param(4.0, low=0.0, high=64.0, doc="Gaussian smoothing of the anomaly map in output pixels "
                                                      "(0: none)")
    num_threads: int | None = param(None, low=1, high=1024, doc="CPU threads of torch while fitting and "
                                                                "scoring (None: torch's setting)")

    def validate(self) -> None:
        if isinstance(self.layers, str):
            self.layers = tuple(part.strip() for part in self.layers.split(",") if part.strip())
        self.layers = tuple(self.layers)
        super().validate()
        if not self.layers or not all(isinstance(layer, str) and layer for layer in self.layers):
            raise ConfigError(f"{type(self).__name__}.layers: expected stage names such as ('stage2', 'stage3'), "
                              f"got {self.layers!r}")


@contextmanager
def torch_threads(count: int | None) -> Iterator[None]:
    """Run the block with ``count`` torch CPU threads (None: leave the setting alone); small
    convolutions run fastest on one thread when the cores are busy."""
    if count is None:
        yield
        return
    previous = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def resolve_device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device='cuda' but no CUDA device is available")
    return torch.device(device)


_BACKBONES: dict[tuple[str, tuple[str, ...], str], torch.nn.Module] = {}
_BACKBONES_LOCK = threading.Lock()


def load_backbone(name: str, layers: Sequence[str], device: torch.device | str = "cpu") -> torch.nn.Module:
    """A frozen backbone in eval mode whose forward returns ``.feature_maps`` for ``layers``."""
    layers = tuple(layers)
    key = (name, layers, str(device))
    with _BACKBONES_LOCK:
        if key not in _BACKBONES:
            model = _tiny_resnet(layers) if name == TINY_RESNET_ID else _hub_backbone(name, layers)
            model.requires_grad_(False)
            model.eval()
            _BACKBONES[key] = model.to(device)
        return _BACKBONES[key]


def _tiny_resnet(layers: tuple[str, ...]) -> torch.nn.Module:
    from transformers import ResNetBackbone, ResNetConfig

    config = ResNetConfig(embedding_size=16, hidden_sizes=[16, 32, 64, 128], depths=[1, 1, 1, 1],
                          layer_type="basic")
    _check_layers(TINY_RESNET_ID, layers, config.stage_names)
    config.out_features = list(layers)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)  # fixed: the tiny backbone plays the part of fixed pretrained weights
        return ResNetBackbone(config)


def _hub_backbone(name: str, layers: tuple[str, ...]) -> torch.nn.Module:
    from transformers import AutoConfig

    try:
        config = AutoConfig.from_pretrained(name)
    except Exception as exc:  # noqa: BLE001 - any hub or file failure means the checkpoint is unavailable
        raise ConfigError(
            f"backbone {name!r} cannot be loaded: it is not a local folder and not in the Hugging Face cache "
            f"(offline, the checkpoint must be available locally: download it once with "
            f"`huggingface-cli download {name}`, or use {TINY_RESNET_ID!r} for a random tiny ResNet) "
            f"[{type(exc).__name__}: {exc}]") from None
    stage_names = list(getattr(config, "stage_names", []) or [])
    if not stage_names:
        raise ConfigError(f"backbone {name!r} ({type(config).__name__}) is not a staged vision backbone; use a "
                          f"CNN such as microsoft/resnet-50")
    _check_layers(name, layers, stage_names)
    from transformers.models.auto.modeling_auto import MODEL_FOR_BACKBONE_MAPPING

    # the backbone class itself rather than AutoBackbone.from_pretrained, which asks the Hub
    # whether the repository exists and so fails offline
    try:
        backbone_class = MODEL_FOR_BACKBONE_MAPPING[type(config)]
    except KeyError:
        raise ConfigError(f"backbone {name!r}: transformers has no backbone class for "
                          f"{type(config).__name__}") from None
    try:
        return backbone_class.from_pretrained(name, out_features=list(layers))
    except Exception as exc:  # noqa: BLE001
        raise ConfigError(f"backbone {name!r}: the weights could not be loaded [{type(exc).__name__}: {exc}]") from None


def _check_layers(name: str, layers: tuple[str, ...], stage_names: Sequence[str]) -> None:
    unknown = [layer for layer in layers if layer not in stage_names]
    if unknown:
        raise ConfigError(f"layers: backbone {name!r} has no stage(s) {unknown}; it has {list(stage_names)}")


def image_tensor(samples: Sequence[Sample], size: int) -> torch.Tensor:
    """B x 3 x size x size float tensor, ImageNet-normalised (grey images repeated, alpha dropped)."""
    batch = np.empty((len(samples), size, size, 3), np.float32)
    for index, sample in enumerate(samples):
        if not isinstance(sample.data, Image):
            raise ConfigError(f"{sample.key}: expected an Image payload, got {type(sample.data).__name__}")
        pixels = sample.data.pixels
        pixels = np.repeat(pixels, 3, axis=2) if pixels.shape[2] == 1 else pixels[:, :, :3]
        if pixels.shape[:2] != (size, size):
            pixels = cv2.resize(np.ascontiguousarray(pixels), (size, size), interpolation=cv2.INTER_LINEAR)
        batch[index] = pixels
    batch *= 1.0 / 255.0
    batch -= np.asarray(IMAGENET_MEAN, np.float32)
    batch /= np.asarray(IMAGENET_STD, np.float32)
    return torch.from_numpy(batch).permute(0, 3, 1, 2).contiguous()


class FeatureExtractor:
    """Feature maps of the chosen backbone stages, batch by batch."""

    def __init__(self, backbone: str, layers: Sequence[str], image_size: int, batch_size: int = 16,
                 device: str = "auto") -> None:
        self.device = resolve_device(device)
        self.model = load_backbone(backbone, layers, self.device)
        self.image_size = image_size
        self.batch_size = batch_size

    @torch.inference_mode()
    def batches(self, samples: Sequence[Sample]) -> Iterator[list[torch.Tensor]]:
        """For each batch of ``samples``: one B x C_l x h_l x w_l tensor per layer (float32, on the device)."""
        for start in range(0, len(samples), self.batch_size):
            images = image_tensor(samples[start:start + self.batch_size], self.image_size).to(self.device)
            yield [f.float() for f in self.model(images).feature_maps]


def track_batches(batches: Iterator[Any], progress: bool, n_samples: int, batch_size: int,
                  description: str) -> Iterator[Any]:
    """Wrap ``batches`` in a rich progress bar when ``progress``."""
    if not progress:
        return batches
    from rich.progress import track

    return iter(track(batches, description=description, total=-(-n_samples // batch_size)))


def upsample(maps: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Bilinear resize of B x h x w maps to B x H x W."""
    return F.interpolate(maps[:, None], size=size, mode="bilinear", align_corners=False)[:, 0]


def gaussian_smooth(amap: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian filter (scipy, truncated at 4 sigma) as PatchCore and PaDiM smooth their maps."""
    if sigma <= 0:
        return amap
    from scipy.ndimage import gaussian_filter

    return gaussian_filter(amap, sigma=sigma)


def anomaly_maps(patch_scores: torch.Tensor, samples: Sequence[Sample], sigma: float) -> list[np.ndarray]:
    """Per-sample H x W float32 maps: ``patch_scores`` (B x h x w) upsampled to each sample's size
    (aligned with its mask) and smoothed."""
    out = []
    for scores, sample in zip(patch_scores, samples):
        assert isinstance(sample.data, Image)
        size = (sample.data.height, sample.data.width)
        amap = upsample(scores[None].float(), size)[0].cpu().numpy()
        out.append(gaussian_smooth(amap, sigma).astype(np.float32))
    return out


def synthetic_image_set(n_train: int = 8, n_normal: int = 4, n_anomalous: int = 4, size: int = 32, seed: int = 0,
                        channels: int = 3) -> tuple[list[Sample], list[Sample]]:
    """Normal training images and a test set of normal images and images with a painted dark
    blob (with its mask): the smooth "product" images of ``anomalykit.testing``. In memory."""
    from ..testing._images import add_defect, product_image

    rng = np.random.default_rng(seed)

    def make(split: str, index: int, anomalous: bool) -> Sample:
        pixels = product_image(rng, (size, size), channels)
        mask = np.zeros((size, size), np.uint8)
        if anomalous:
            pixels, defect_mask = add_defect(rng, pixels)
            mask = defect_mask.astype(np.uint8)
        kind = "defect" if anomalous else "good"
        return Sample(key=f"synthetic/{split}/{kind}/{index:03d}", dataset="synthetic", split=split,
                      label=int(anomalous), data=Image(pixels), category="product",
                      defect="blob" if anomalous else None, target=mask)

    train = [make("train", i, False) for i in range(n_train)]
    test = [make("test", i, False) for i in range(n_normal)]
    test += [make("test", i, True) for i in range(n_anomalous)]
    return train, test


def example_data(**overrides: Any) -> tuple[list[Sample], list[Sample]]:
    """The small set that the detectors' ``example()`` use."""
    options = dict(n_train=6, n_normal=3, n_anomalous=3, size=32, seed=0)
    options.update(overrides)
    return synthetic_image_set(**options)
