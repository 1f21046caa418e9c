"""Image anomaly scores: image AUROC, pixel AUROC, the PRO curve and AUPRO, and F1-max.

Labels and masks are 1 for anomalous and 0 for normal; scores and anomaly maps are higher for
more anomalous. ``masks`` and ``maps`` are sequences of H x W arrays (one pair per image; sizes
may differ between images, not within a pair) or N x H x W arrays.

AUPRO follows the MVTec AD evaluation code (Bergmann et al., IJCV 2021): every connected
component of the ground truth (8-connectivity, ``scipy.ndimage.label``) is one region; at a
threshold t, the per-region overlap is the mean over all regions of all images of the share of the
region's pixels with score >= t, and the false-positive rate is the share of all normal pixels with
score >= t. The curve is built by sorting every pixel score once (each pixel changes FPR or PRO by a
fixed amount when the threshold passes it); tied scores form one step. ``aupro`` sorts only the
pixels scoring at least as high as the first normal pixel past the FPR limit. The area under PRO(FPR) is
integrated with the trapezoid rule from FPR 0 to ``fpr_limit`` (0.3; the curve is interpolated at
the limit) and divided by ``fpr_limit``, so it lies in [0, 1].

>>> import numpy as np
>>> mask = np.zeros((4, 4), np.uint8); mask[1:3, 1:3] = 1
>>> perfect = mask.astype(float)
>>> aupro([mask], [perfect])
1.0
>>> pixel_auroc([mask], [perfect])
1.0
>>> f1_max([0, 0, 1, 1], [0.1, 0.6, 0.5, 0.9])
0.8
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ..errors import ConfigError
from .classification import auroc, check_binary_scores

__all__ = [
    "AUPRO_VERSION",
    "aupro",
    "image_report",
    "f1_max",
    "image_auroc",
    "pixel_auroc",
    "pixel_f1_max",
    "pro_curve",
]


#: changes whenever the AUPRO definition here changes; store it with results (anomalib's AUPRO up to
#: v2.2 divided by the curve's last averaged FPR instead of the limit, which moved published numbers)
AUPRO_VERSION = "1"


def image_report(labels: Any, scores: Any, masks: Any = None, maps: Any = None, *,
                 fpr_limit: float = 0.3) -> dict[str, float | str]:
    """Every image metric that the inputs allow: image AUROC and F1-max; with masks and maps
    also pixel AUROC, pixel F1-max and AUPRO (when some mask holds an anomaly).

    A normal image (label 0) without a mask (None) has no anomalous pixel, so it counts with an
    all-zero mask (as in the MVTec AD evaluation, whose good images have no mask file): its false
    positives lower the pixel metrics. Anomalous images without a mask, and images without a map,
    are left out of the pixel metrics; ``pixel_images`` counts the images that were used.
    """
    report: dict[str, float | str] = {"image_auroc": image_auroc(labels, scores),
                                      "image_f1_max": f1_max(labels, scores)}
    if masks is None or maps is None:
        return report
    label_list = np.asarray(labels).reshape(-1).tolist()
    pairs = []
    for label, mask, amap in zip(label_list, masks, maps):
        if amap is None:
            continue
        if mask is None and label == 0:
            mask = np.zeros(np.shape(amap), np.uint8)  # same layout as the map: squeezed alike
        if mask is not None:
            pairs.append((mask, amap))
    report["pixel_images"] = float(len(pairs))
    if not pairs:
        return report
    pixel_masks, pixel_maps = [p[0] for p in pairs], [p[1] for p in pairs]
    report["pixel_auroc"] = pixel_auroc(pixel_masks, pixel_maps)
    report["pixel_f1_max"] = pixel_f1_max(pixel_masks, pixel_maps)
    report["aupro"] = aupro(pixel_masks, pixel_maps, fpr_limit=fpr_limit)
    report["aupro_fpr_limit"] = fpr_limit
    report["aupro_version"] = AUPRO_VERSION
    return report


def image_auroc(labels: Any, scores: Any) -> float:
    """AUROC of one score per image against 0/1 image labels."""
    return auroc(labels, scores)


def pixel_auroc(masks: Any, maps: Any) -> float:
    """AUROC over every pixel of every image: mask pixels are the labels, map values the scores."""
    flat_masks, flat_maps, _ = _pixels(masks, maps)
    return auroc(flat_masks, flat_maps)


def f1_max(labels: Any, scores: Any) -> float:
    """The best F1 over all thresholds (``score >= t`` is positive), as anomalib's F1Max."""
    from sklearn.metrics import precision_recall_curve

    y, s = check_binary_scores(labels, scores)
    precision, recall, _ = precision_recall_curve(y, s)
    denominator = precision + recall
    f1 = np.divide(2 * precision * recall, denominator, out=np.zeros_like(denominator), where=denominator > 0)
    return float(f1.max())


def pixel_f1_max(masks: Any, maps: Any) -> float:
    """F1-max over every pixel of every image."""
    flat_masks, flat_maps, _ = _pixels(masks, maps)
    return f1_max(flat_masks, flat_maps)


def pro_curve(masks: Any, maps: Any, *, connectivity: int = 8) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The PRO curve: ``(fpr, pro, thresholds)`` with FPR increasing from 0 to 1.

    Point i holds the FPR and PRO of the rule ``score >= thresholds[i]`` (the first point, FPR = PRO
    = 0, has threshold +inf). ``connectivity`` 8 (as MVTec) or 4 defines the regions.
    """
    return _curve(*_region_steps(masks, maps, connectivity))


def aupro(masks: Any, maps: Any, *, fpr_limit: float = 0.3, connectivity: int = 8) -> float:
    """Area under the PRO curve up to ``fpr_limit``, divided by ``fpr_limit`` (in [0, 1]).

    Only the pixels that score at least as high as the first normal pixel past the limit are
    sorted (found with a linear-time selection), since the curve beyond the limit is not needed.
    """
    if not 0.0 < fpr_limit <= 1.0:
        raise ConfigError(f"fpr_limit must be in (0, 1], got {fpr_limit!r}")
    steps = _region_steps(masks, maps, connectivity)
    fpr, pro, _ = _curve(*steps, fpr_stop=fpr_limit)
    if fpr[-1] < fpr_limit:  # not reached through rounding: take the whole curve
        fpr, pro, _ = _curve(*steps)
    return float(min(_trapezoid_up_to(fpr, pro, fpr_limit) / fpr_limit, 1.0))


def _region_steps(masks: Any, maps: Any, connectivity: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, int, int]:
    """Per pixel: the score, whether it is normal, and its PRO increment 1 / (region size)
    (0 for normal pixels); plus the number of regions and of normal pixels."""
    from scipy import ndimage

    if connectivity not in (4, 8):
        raise ConfigError(f"connectivity must be 4 or 8, got {connectivity!r}")
    structure = np.ones((3, 3), bool) if connectivity == 8 else ndimage.generate_binary_structure(2, 1)
    flat_masks, flat_maps, shapes = _pixels(masks, maps)
    pro_step = np.zeros(flat_masks.shape, np.float64)
    regions = 0
    start = 0
    for shape in shapes:
        size = shape[0] * shape[1]
        labelled, count = ndimage.label(flat_masks[start:start + size].reshape(shape), structure=structure)
        if count:
            labelled = labelled.reshape(-1)
            region_sizes = np.bincount(labelled, minlength=count + 1).astype(np.float64)
            inverse = np.zeros(count + 1)
            inverse[1:] = 1.0 / region_sizes[1:]
            pro_step[start:start + size] = inverse[labelled]
        regions += count
        start += size
    normal = flat_masks == 0
    normal_pixels = int(normal.sum())
    if regions == 0:
        raise ConfigError("masks hold no anomalous pixels; PRO is undefined without ground-truth regions")
    if normal_pixels == 0:
        raise ConfigError("masks hold no normal pixels; the false-positive rate is undefined")
    return flat_maps, normal, pro_step, regions, normal_pixels


def _curve(scores: np.ndarray, normal: np.ndarray, pro_step: np.ndarray, regions: int, normal_pixels: int,
           fpr_stop: float | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The PRO curve from one sort: when the threshold drops past a pixel's score, a normal pixel
    adds 1 / normal_pixels to the FPR and a pixel of region r adds 1 / (|r| regions) to the PRO.
    With ``fpr_stop``, the curve ends at the first point with FPR > fpr_stop."""
    if fpr_stop is not None:
        before_stop = int(np.floor(fpr_stop * normal_pixels))  # normal pixels allowed at FPR <= fpr_stop
        if before_stop < normal_pixels:
            normal_scores = scores[normal]
            rank = normal_pixels - before_stop - 1  # the (before_stop + 1)-th largest normal score
            lowest = np.partition(normal_scores, rank)[rank]
            keep = np.flatnonzero(scores >= lowest)
            scores, normal, pro_step = scores[keep], normal[keep], pro_step[keep]
    order = np.argsort(scores)[::-1]  # ties need no stable order: each tie group is one step
    sorted_scores = scores[order]
    fpr = np.cumsum(normal[order], dtype=np.float64) / normal_pixels
    pro = np.cumsum(pro_step[order]) / regions
    last_of_tie = np.append(sorted_scores[1:] != sorted_scores[:-1], True)
    fpr = np.minimum(fpr[last_of_tie], 1.0)
    pro = np.minimum(pro[last_of_tie], 1.0)  # rounding can push the last sum a hair above 1
    thresholds = sorted_scores[last_of_tie]
    return (np.concatenate(([0.0], fpr)), np.concatenate(([0.0], pro)),
            np.concatenate(([np.inf], thresholds.astype(np.float64))))


def _trapezoid_up_to(x: np.ndarray, y: np.ndarray, x_max: float) -> float:
    """Trapezoid area under y(x) for x in [x[0], x_max], interpolating y linearly at x_max.

    ``x`` is non-decreasing and ends at 1 >= x_max. Vertical steps (equal x) add no area.
    """
    inside = int(np.searchsorted(x, x_max, side="right"))  # x[:inside] <= x_max
    area = float(np.sum(0.5 * (y[1:inside] + y[:inside - 1]) * np.diff(x[:inside])))
    if inside < len(x) and x[inside - 1] < x_max:
        x0, x1, y0, y1 = x[inside - 1], x[inside], y[inside - 1], y[inside]
        y_at_limit = y0 + (y1 - y0) * (x_max - x0) / (x1 - x0)
        area += 0.5 * (y0 + y_at_limit) * (x_max - x0)
    return area


def _pixels(masks: Any, maps: Any) -> tuple[np.ndarray, np.ndarray, list[tuple[int, int]]]:
    """Flat 0/1 labels and float scores of every pixel, plus each image's (H, W)."""
    mask_list = _as_images(masks, "masks")
    map_list = _as_images(maps, "maps")
    if len(mask_list) != len(map_list):
        raise ConfigError(f"masks ({len(mask_list)} images) and maps ({len(map_list)} images) differ in length")
    if not mask_list:
        raise ConfigError("masks and maps are empty")
    shapes: list[tuple[int, int]] = []
    flat_masks, flat_maps = [], []
    for index, (mask, amap) in enumerate(zip(mask_list, map_list)):
        if mask.shape != amap.shape:
            raise ConfigError(f"image {index}: mask shape {mask.shape} differs from map shape {amap.shape}")
        flat_masks.append(_binary(mask, index).reshape(-1))
        values = (amap if amap.dtype in (np.float32, np.float64) else amap.astype(np.float64)).reshape(-1)
        if not np.isfinite(values).all():
            raise ConfigError(f"maps[{index}] holds {int((~np.isfinite(values)).sum())} non-finite value(s)")
        flat_maps.append(values)
        shapes.append(mask.shape)
    return np.concatenate(flat_masks), np.concatenate(flat_maps), shapes  # mixed float types give float64


def _as_images(values: Any, what: str) -> list[np.ndarray]:
    if isinstance(values, np.ndarray):
        if values.ndim == 2:
            values = values[None]
        if values.ndim == 4 and values.shape[1] == 1:
            values = values[:, 0]
        if values.ndim != 3:
            raise ConfigError(f"{what} must be N x H x W (or a list of H x W arrays), got shape {values.shape}")
        return list(values)
    if not isinstance(values, Sequence) and not hasattr(values, "__iter__"):
        raise ConfigError(f"{what} must be a sequence of H x W arrays, got {type(values).__name__}")
    out = []
    for index, item in enumerate(values):
        if item is None:
            raise ConfigError(f"{what}[{index}] is None (no mask or map for this image)")
        array = np.asarray(item)
        if array.ndim == 3 and array.shape[-1] == 1:
            array = array[..., 0]
        if array.ndim == 3 and array.shape[0] == 1:
            array = array[0]
        if array.ndim != 2:
            raise ConfigError(f"{what}[{index}] must be H x W, got shape {array.shape}")
        out.append(array)
    return out


def _binary(mask: np.ndarray, index: int) -> np.ndarray:
    """0/1 uint8 from a bool, 0/1 integer or [0, 1] float mask (floats binarised at 0.5)."""
    if mask.dtype == bool:
        return mask.view(np.uint8)
    if np.issubdtype(mask.dtype, np.integer):
        if mask.size and (mask.min() < 0 or mask.max() > 1):
            raise ConfigError(f"masks[{index}] holds values other than 0 and 1 (max {mask.max()}); binarise it "
                              f"first (e.g. mask > 0)")
        return mask.astype(np.uint8, copy=False)
    if np.issubdtype(mask.dtype, np.floating):
        if mask.size and not ((mask >= 0) & (mask <= 1)).all():
            raise ConfigError(f"masks[{index}] is a float mask outside [0, 1]")
        return (mask >= 0.5).view(np.uint8)
    raise ConfigError(f"masks[{index}] has dtype {mask.dtype}; expected bool, integer 0/1 or float in [0, 1]")


def evaluate_outputs(samples: Any, outputs: Any) -> dict[str, float | str]:
    """The image scores of a detector's outputs (the hook ``anomalykit.baselines.evaluate`` calls):
    ``image_report`` with the samples' masks and the outputs' anomaly maps."""
    labels = [s.label for s in samples]
    scores = [o.score for o in outputs]
    masks = [s.target for s in samples]
    maps = [o.anomaly_map for o in outputs]
    report = image_report(labels, scores, masks, maps)
    report["aupro_version"] = AUPRO_VERSION
    return report
