"""The image corpus pipeline: a loaded image dataset in, a labelled synthetic corpus out.

``generate_image_corpus`` takes the normal training images of a dataset loaded by name, makes
``per_image`` anomalies from each with any registered image generator (``perlin``, ``cutpaste``,
``cutpaste_scar``, ``nsa``, the diffusion generators ...), and writes shards, a manifest, a
dataset card (inheriting the source dataset's licence) and a PNG contact sheet (source image,
generated image, mask overlay) of a sample of the output::

    out/
      data/train-00000.tar ...      the samples (image.png, mask.png or mask.npy, sample.json)
      manifest.json                  shards, checksums, keys
      README.md                      dataset card
      generation.json                the settings of the run (checked when a run resumes)
      contact_sheet.png              source | generated | mask overlay, for a sample of the output

Work is split over worker processes; the bytes do not depend on their number. An interrupted
run called again with the same settings resumes after the last complete shard; a different
seed, method or parameter set in the same folder is refused. The point-cloud and series corpus
pipelines use the same settings record (``anomalykit.corpus.record_settings``) and read their
previews back from the shards (``anomalykit.shards.first_samples``), so that a resumed run shows
the same samples as a whole one.

>>> from anomalykit.image_corpus import generate_image_corpus              # doctest: +SKIP
>>> result = generate_image_corpus("perlin", "mvtec_ad", "/data/mvtec", "out/perlin",
...                                per_image=4, category=["bottle"], workers=2)   # doctest: +SKIP
>>> result.contact_sheet                                                    # doctest: +SKIP
PosixPath('out/perlin/contact_sheet.png')
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np

from .errors import ConfigError
from .generators.base import Generator, get_generator
from .schema import Image, Modality, Sample
from .corpus import SETTINGS_NAME, record_settings, run_settings  # noqa: F401 - part of this module's API
from .shards import DEFAULT_MAX_BYTES, ShardManifest, first_samples, read_samples  # noqa: F401

CONTACT_SHEET_NAME = "contact_sheet.png"


@dataclass
class ImageCorpusResult:
    """What a run wrote: the manifest, how many samples were made now or found done, the sheet."""

    out_dir: Path
    manifest: ShardManifest
    generated: int
    resumed: int
    contact_sheet: Path | None

    @property
    def num_samples(self) -> int:
        return self.manifest.num_samples


def image_sources(dataset: str, root: str | Path, *, category: str | Sequence[str] | None = None,
                  load_options: dict[str, Any] | None = None):
    """The normal training images of ``dataset`` (optionally of some categories), lazily."""
    import anomalykit

    loaded = anomalykit.load(dataset, root, **(load_options or {}))
    if loaded.modality != Modality.IMAGE:
        raise ConfigError(f"--from {dataset}: an image dataset is needed, {dataset} holds {loaded.modality.value} samples")
    sources = loaded.filter(split="train", label=0)
    if category is not None:
        wanted = [category] if isinstance(category, str) else list(category)
        present = sorted({c for c in sources.manifest.column("category").to_pylist() if c is not None})
        unknown = [c for c in wanted if c not in present]
        if unknown:
            raise ConfigError(f"category {', '.join(map(repr, unknown))}: no normal training images of it in {dataset} at "
                              f"{root}; categories there: {', '.join(present) or 'none'}")
        sources = sources.filter(category=wanted)
    if len(sources) == 0:
        raise ConfigError(f"{dataset} at {root}: no normal training images (split train, label 0) to generate from")
    return sources


def prepare_generator(method: str, options: dict[str, Any] | None, dataset: str, root: str | Path,
                      load_options: dict[str, Any] | None = None) -> Generator:
    """Instantiate ``method``; a generator taking donor images from a dataset (``donor_dataset``
    and ``donor_root`` config fields, as NSA has) gets the source dataset, loaded with the same
    ``load_options``, unless told otherwise."""
    from .generators.base import GENERATORS

    cls = GENERATORS.get(method)
    if cls.modality != Modality.IMAGE:
        raise ConfigError(f"generator {method!r} makes {cls.modality.value} samples, not images; "
                          f"use `anomalykit generate {cls.modality.value}`")
    options = dict(options or {})
    names = {f.name for f in fields(cls.config_class)}
    donors_set = any(options.get(k) is not None for k in ("donor_dataset", "donor_root", "donor_dir"))
    if {"donor_dataset", "donor_root"} <= names and not donors_set:
        options.update(donor_dataset=dataset, donor_root=str(Path(root).expanduser().resolve()))
        if load_options and "donor_load_options" in names:
            options["donor_load_options"] = dict(load_options)
    return get_generator(method, **options)


def generate_image_corpus(
    method: str,
    dataset: str,
    root: str | Path,
    out_dir: str | Path,
    *,
    per_image: int = 1,
    seed: int = 0,
    workers: int = 1,
    options: dict[str, Any] | None = None,
    category: str | Sequence[str] | None = None,
    load_options: dict[str, Any] | None = None,
    contact_sheet: int = 16,
    progress: bool = False,
    max_bytes: int = DEFAULT_MAX_BYTES,
    on_sample: Callable[[Sample], None] | None = None,
) -> ImageCorpusResult:
    """Generate ``per_image`` anomalies per normal training image of ``dataset`` into ``out_dir``.

    ``options`` are the generator's parameters; ``contact_sheet`` is the number of samples drawn
    into ``contact_sheet.png`` (0: none). ``on_sample`` sees each sample as it is written.
    """
    from .corpus import generate_corpus

    if per_image < 1:
        raise ConfigError(f"per_image must be >= 1, got {per_image}")
    if workers < 1:
        raise ConfigError(f"workers must be >= 1, got {workers}")
    if contact_sheet < 0:
        raise ConfigError(f"contact_sheet must be >= 0 (samples drawn), got {contact_sheet}")
    out_dir = Path(out_dir)
    sources = image_sources(dataset, root, category=category, load_options=load_options)
    generator = prepare_generator(method, options, dataset, root, load_options)
    record_settings(out_dir, run_settings(
        generator, dataset=dataset,
        category=sorted([category] if isinstance(category, str) else category) if category else None,
        load_options=load_options or {}, per_image=per_image, seed=seed))

    generated = 0

    def count(sample: Sample) -> None:
        nonlocal generated
        generated += 1
        if on_sample is not None:
            on_sample(sample)

    manifest = generate_corpus(generator, sources, out_dir=out_dir, per_source=per_image, seed=seed, workers=workers,
                               split="train", max_bytes=max_bytes, progress=progress, on_sample=count)
    sheet = write_contact_sheet(out_dir, sources, count=contact_sheet) if contact_sheet else None
    return ImageCorpusResult(out_dir, manifest, generated, manifest.num_samples - generated, sheet)


# ---------------------------------------------------------------------------------------------
# contact sheet


def pick_keys(keys: Sequence[str], count: int) -> list[str]:
    """``count`` keys spread evenly over ``keys`` (all of them when there are fewer)."""
    if count >= len(keys):
        return list(keys)
    positions = np.linspace(0, len(keys) - 1, count).round().astype(int)
    return [keys[i] for i in positions]


def write_contact_sheet(out_dir: str | Path, sources: Sequence[Sample] | None = None, *, count: int = 16,
                        path: str | Path | None = None) -> Path:
    """Draw ``count`` samples of a corpus as rows of (source image, generated image, mask overlay).

    ``sources`` (the dataset the corpus was made from) supplies the source images, found by the
    ``source_key`` of each sample's provenance; without it the source column stays empty.
    """
    from matplotlib.figure import Figure  # no pyplot: the caller's backend and figures stay untouched

    out_dir = Path(out_dir)
    manifest = ShardManifest.load(out_dir)
    all_keys = [k for shard in manifest.shards for k in shard.keys]
    if not all_keys:
        raise ConfigError(f"{out_dir}: the corpus holds no samples to draw")
    keys = pick_keys(all_keys, count)
    samples = read_samples(out_dir, keys)
    source_index: dict[str, int] = {}
    if sources is not None:
        manifest_keys = sources.manifest.column("key").to_pylist() if hasattr(sources, "manifest") else [s.key for s in sources]
        source_index = {k: i for i, k in enumerate(manifest_keys)}

    groups = max(1, min(4, int(np.ceil(np.sqrt(len(keys) / 2)))))
    rows = int(np.ceil(len(keys) / groups))
    fig = Figure(figsize=(3 * groups * 1.7, rows * 1.9))
    axes = fig.subplots(rows, 3 * groups, squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for n, key in enumerate(keys):
        row, group = n % rows, n // rows
        sample = samples[key]
        source_key = (sample.provenance or {}).get("source_key")
        source_pixels = None
        if source_key in source_index:
            source_pixels = sources[source_index[source_key]].data.pixels  # type: ignore[index]
        generated = sample.data.pixels if isinstance(sample.data, Image) else np.asarray(sample.data)
        mask = sample.target if sample.target is not None else np.zeros(generated.shape[:2], np.float32)
        panels = [(source_pixels, "source"), (generated, sample.defect or "generated"), (_overlay(generated, mask), "mask")]
        for col, (pixels, title) in enumerate(panels):
            ax = axes[row, 3 * group + col]
            if pixels is not None:
                ax.imshow(_rgb(pixels))
            ax.set_title(title if col else _short(source_key or key), fontsize=6)
    fig.suptitle(f"{manifest.dataset}: {len(keys)} of {len(all_keys)} samples (source | generated | mask overlay)",
                 fontsize=8)
    fig.tight_layout()
    target = Path(path) if path is not None else out_dir / CONTACT_SHEET_NAME
    fig.savefig(target, dpi=110)
    return target


def _rgb(pixels: np.ndarray) -> np.ndarray:
    pixels = np.asarray(pixels)
    if pixels.ndim == 2:
        pixels = pixels[:, :, None]
    if pixels.shape[2] == 1:
        pixels = np.repeat(pixels, 3, axis=2)
    return pixels[:, :, :3]


def _overlay(pixels: np.ndarray, mask: np.ndarray, color: tuple[int, int, int] = (255, 0, 0)) -> np.ndarray:
    """The image with the mask painted in red (opacity 0.6 x mask value, so soft labels fade)."""
    base = _rgb(pixels).astype(np.float32)
    alpha = 0.6 * np.clip(np.asarray(mask, np.float32), 0.0, 1.0)[:, :, None]
    return np.clip(base * (1 - alpha) + np.asarray(color, np.float32) * alpha, 0, 255).astype(np.uint8)


def _short(text: str, limit: int = 28) -> str:
    return text if len(text) <= limit else "..." + text[-(limit - 3):]
