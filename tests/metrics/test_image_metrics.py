"""Image metrics: hand-computed PRO/AUPRO cases and a slow threshold-loop reference."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from anomalykit.errors import ConfigError
from anomalykit.metrics.image import (
    AUPRO_VERSION,
    aupro,
    f1_max,
    image_auroc,
    image_report,
    pixel_auroc,
    pixel_f1_max,
    pro_curve,
)


# -- the slow, straightforward definition: one pass over the images per threshold ------------------
def slow_pro_curve(masks, maps, connectivity=8):
    structure = np.ones((3, 3)) if connectivity == 8 else None
    thresholds = np.unique(np.concatenate([np.ravel(m) for m in maps]))[::-1]
    labelled = [ndimage.label(np.asarray(mask) > 0, structure=structure) for mask in masks]
    normal_total = sum(int((np.asarray(mask) == 0).sum()) for mask in masks)
    fprs, pros = [0.0], [0.0]
    for t in thresholds:
        overlaps, false_positives = [], 0
        for (regions, count), mask, amap in zip(labelled, masks, maps):
            detected = amap >= t
            false_positives += int((detected & (np.asarray(mask) == 0)).sum())
            for r in range(1, count + 1):
                overlaps.append(detected[regions == r].mean())
        fprs.append(false_positives / normal_total)
        pros.append(float(np.mean(overlaps)))
    return np.array(fprs), np.array(pros)


def slow_aupro(masks, maps, limit=0.3, connectivity=8):
    fpr, pro = slow_pro_curve(masks, maps, connectivity)
    area = 0.0
    for i in range(1, len(fpr)):
        x0, x1, y0, y1 = fpr[i - 1], fpr[i], pro[i - 1], pro[i]
        if x0 >= limit:
            break
        if x1 > limit:  # cut the segment at the limit, interpolating linearly
            y1 = y0 + (y1 - y0) * (limit - x0) / (x1 - x0)
            x1 = limit
        area += (x1 - x0) * (y0 + y1) / 2
    return area / limit


def test_pro_curve_by_hand():
    # two regions: A = two pixels top left, B = one pixel bottom right (not touching A)
    mask = np.array([[1, 1, 0, 0],
                     [0, 0, 0, 1]], np.uint8)
    amap = np.array([[0.9, 0.3, 0.5, 0.1],
                     [0.2, 0.4, 0.6, 0.7]])
    fpr, pro, thresholds = pro_curve([mask], [amap])
    # t=0.9: A half found -> PRO (1/2 + 0)/2; t=0.7: B found -> 0.75; then normal pixels 0.6, 0.5, 0.4
    # each add 1/5 FPR; t=0.3 completes A -> PRO 1
    np.testing.assert_allclose(fpr[:5], [0, 0, 0, 0.2, 0.4])
    np.testing.assert_allclose(pro[:5], [0, 0.25, 0.75, 0.75, 0.75])
    np.testing.assert_allclose(thresholds[1:4], [0.9, 0.7, 0.6])
    assert fpr[-1] == 1.0 and pro[-1] == 1.0
    # area up to FPR 0.3: PRO is 0.75 on the whole interval [0, 0.3]
    assert aupro([mask], [amap]) == pytest.approx(0.75)
    assert aupro([mask], [amap], fpr_limit=0.3) == pytest.approx(slow_aupro([mask], [amap]))


def test_regions_are_counted_per_component_not_per_pixel():
    # the diagonal pixels touch with 8-connectivity (MVTec's rule): one region of 3 pixels
    mask = np.array([[1, 1, 0],
                     [0, 0, 1],
                     [0, 0, 0]], np.uint8)
    amap = np.zeros((3, 3))
    amap[1, 2] = 1.0
    _, pro8, _ = pro_curve([mask], [amap])
    _, pro4, _ = pro_curve([mask], [amap], connectivity=4)
    assert pro8[1] == pytest.approx(1 / 3)  # one region, one third of it found
    assert pro4[1] == pytest.approx(0.5)  # two regions: (0 + 1) / 2


def test_constant_map_gives_the_diagonal():
    mask = np.zeros((5, 5), np.uint8)
    mask[1:3, 1:3] = 1
    fpr, pro, _ = pro_curve([mask], [np.zeros((5, 5))])
    np.testing.assert_allclose(fpr, [0, 1])  # all ties: one step
    np.testing.assert_allclose(pro, [0, 1])
    # PRO = FPR on [0, 0.3]: area 0.045, normalised 0.15
    assert aupro([mask], [np.zeros((5, 5))]) == pytest.approx(0.15)


def test_regions_span_images_and_normal_images_only_add_false_positives():
    mask = np.zeros((4, 4), np.uint8)
    mask[0, 0:2] = 1  # one region of 2 pixels
    normal = np.zeros((4, 4), np.uint8)
    amap = np.zeros((4, 4))
    amap[0, 0] = 1.0
    normal_map = np.zeros((4, 4))
    normal_map[3, 3] = 2.0  # the highest score is a false positive in the normal image
    fpr, pro, _ = pro_curve([mask, normal], [amap, normal_map])
    np.testing.assert_allclose(fpr[:3], [0, 1 / 30, 1 / 30])  # 14 + 16 normal pixels
    np.testing.assert_allclose(pro[:3], [0, 0, 0.5])


@pytest.mark.parametrize("seed", range(4))
def test_matches_the_threshold_loop(seed):
    rng = np.random.default_rng(seed)
    masks, maps = [], []
    for shape in [(12, 9), (7, 7), (10, 14)]:  # sizes may differ between images
        mask = (ndimage.gaussian_filter(rng.random(shape), 1.5) > 0.55).astype(np.uint8)
        # rounding creates ties, which must form one step of the curve
        amap = np.round(mask * rng.uniform(0.2, 1.0) + rng.random(shape) * 0.8, 1)
        masks.append(mask)
        maps.append(amap)
    assume_regions = sum(ndimage.label(m, structure=np.ones((3, 3)))[1] for m in masks)
    assert assume_regions >= 2
    fpr, pro, _ = pro_curve(masks, maps)
    slow_fpr, slow_pro = slow_pro_curve(masks, maps)
    np.testing.assert_allclose(fpr, slow_fpr, atol=1e-12)
    np.testing.assert_allclose(pro, slow_pro, atol=1e-12)
    for limit in (0.05, 0.3, 1.0):
        assert aupro(masks, maps, fpr_limit=limit) == pytest.approx(slow_aupro(masks, maps, limit), abs=1e-12)
    assert aupro(masks, maps, connectivity=4) == pytest.approx(slow_aupro(masks, maps, 0.3, connectivity=4))


def test_aupro_never_exceeds_one_and_a_perfect_map_scores_one():
    rng = np.random.default_rng(7)
    masks = (rng.random((6, 32, 32)) > 0.9).astype(np.uint8)  # many one-pixel regions
    assert aupro(masks, masks.astype(float)) == pytest.approx(1.0, abs=1e-12)
    for _ in range(5):
        maps = masks * 10.0 + rng.random(masks.shape)
        value = aupro(masks, maps)
        assert 0.99 <= value <= 1.0
        assert 0.0 <= aupro(masks, rng.random(masks.shape)) <= 1.0
    # a map that ranks every normal pixel above every anomalous one
    assert aupro(masks, 1.0 - masks) == 0.0


def test_pixel_auroc_and_f1_max():
    mask = np.array([[0, 1], [1, 0]], np.uint8)
    amap = np.array([[0.1, 0.8], [0.3, 0.4]])
    # positives 0.8 and 0.3 against negatives 0.1 and 0.4: 3 of 4 pairs ordered
    assert pixel_auroc([mask], [amap]) == pytest.approx(0.75)
    assert pixel_auroc(mask[None], amap[None]) == pytest.approx(0.75)
    # thresholds 0.8: P=1 R=1/2 F1=2/3; 0.4: P=1/2 R=1/2; 0.3: P=2/3 R=1 F1=0.8
    assert pixel_f1_max([mask], [amap]) == pytest.approx(0.8)
    assert f1_max([1, 0, 0, 1], [0.9, 0.8, 0.1, 0.7]) == pytest.approx(0.8)
    assert image_auroc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]) == pytest.approx(0.75)


def test_soft_and_bool_masks_are_binarised():
    soft = np.array([[0.0, 0.7], [0.2, 1.0]], np.float32)
    amap = np.array([[0.0, 0.9], [0.1, 0.8]])
    assert pixel_auroc([soft], [amap]) == pixel_auroc([soft >= 0.5], [amap]) == 1.0


def test_bad_input_is_named():
    mask = np.zeros((4, 4), np.uint8)
    mask[1, 1] = 1
    with pytest.raises(ConfigError, match=r"image 1: mask shape"):
        aupro([mask, mask], [np.zeros((4, 4)), np.zeros((3, 4))])
    with pytest.raises(ConfigError, match="binarise"):
        aupro([mask * 255], [np.zeros((4, 4))])
    with pytest.raises(ConfigError, match="no anomalous pixels"):
        aupro([np.zeros((4, 4), np.uint8)], [np.zeros((4, 4))])
    with pytest.raises(ConfigError, match="non-finite"):
        pixel_auroc([mask], [np.full((4, 4), np.nan)])
    with pytest.raises(ConfigError, match=r"maps\[0\] is None"):
        aupro([mask], [None])
    with pytest.raises(ConfigError, match="fpr_limit"):
        aupro([mask], [np.zeros((4, 4))], fpr_limit=0)
    with pytest.raises(ConfigError, match="differ in length"):
        pixel_auroc([mask, mask], [np.zeros((4, 4))])


def test_report_collects_what_the_inputs_allow():
    mask = np.zeros((4, 4), np.uint8)
    mask[1:3, 1:3] = 1
    good = np.zeros((4, 4), np.uint8)
    amap = mask * 0.9 + 0.05
    labels, scores = [0, 1, 1], [0.1, 0.9, 0.8]
    only_images = image_report(labels, scores)
    assert only_images == {"image_auroc": 1.0, "image_f1_max": 1.0}
    report = image_report(labels, scores, [good, mask, None], [np.zeros((4, 4)), amap, np.zeros((4, 4))])
    assert report["pixel_images"] == 2.0  # the third image has no mask
    assert report["pixel_auroc"] == report["pixel_f1_max"] == 1.0
    assert report["aupro"] == pytest.approx(1.0) and report["aupro_version"] == AUPRO_VERSION
    assert report["aupro_fpr_limit"] == 0.3


def test_report_counts_normal_images_without_a_mask_as_all_normal_pixels():
    # a normal image's false positives must lower the pixel metrics even when it has no mask file
    mask = np.zeros((4, 4), np.uint8)
    mask[1:3, 1:3] = 1
    amap = mask * 0.5 + 0.05
    hot_normal = np.full((4, 4), 0.9)  # a normal image that the map calls anomalous everywhere
    labels, scores = [0, 1], [0.9, 0.8]
    without = image_report(labels, scores, [None, mask], [hot_normal, amap])
    explicit = image_report(labels, scores, [np.zeros((4, 4), np.uint8), mask], [hot_normal, amap])
    assert without["pixel_images"] == explicit["pixel_images"] == 2.0
    assert without["pixel_auroc"] == explicit["pixel_auroc"] < 1.0
    assert without["aupro"] == explicit["aupro"] < 0.5
    # an anomalous image without a mask is still left out: its anomalous pixels are unknown
    unknown = image_report([0, 1, 1], [0.1, 0.9, 0.8], [np.zeros((4, 4), np.uint8), mask, None],
                           [np.zeros((4, 4)), amap, hot_normal])
    assert unknown["pixel_images"] == 2.0 and unknown["pixel_auroc"] == 1.0
