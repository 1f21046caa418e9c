import shutil

import numpy as np
import pytest
from PIL import Image as PILImage

import anomalykit
from anomalykit.errors import ConfigError, DatasetNotFoundError, MalformedFileError
from anomalykit.testing import build


@pytest.fixture
def mvtec(tmp_path):
    return build("mvtec_ad", tmp_path / "mvtec")


def test_counts_labels_and_keys(mvtec):
    ds = anomalykit.load("mvtec_ad", mvtec.root)
    assert len(ds) == mvtec.expected["total"] == 16
    assert ds.counts() == {"test/anomalous": 6, "test/normal": 4, "train/normal": 6}
    keys = ds.keys
    assert len(set(keys)) == len(keys)
    # 000.png exists in many folders: keys are relative paths, not file names
    assert {"bottle/train/good/000.png", "bottle/test/good/000.png", "bottle/test/broken_large/000.png"} <= set(keys)
    assert set(ds.filter(label=1).manifest.column("defect").to_pylist()) == {"broken_large", "contamination", "bent"}
    assert set(ds.filter(label=0).manifest.column("defect").to_pylist()) == {None}


def test_masks_binarised_and_aligned(mvtec):
    ds = anomalykit.load("mvtec_ad", mvtec.root, category="bottle")
    anomalous = ds.filter(split="test", label=1)[0]
    mask_file = np.asarray(PILImage.open(mvtec.root / anomalous.meta["mask_path"]))
    np.testing.assert_array_equal(anomalous.target, (mask_file > 0).astype(np.uint8))
    assert anomalous.target.max() == 1 and anomalous.target.shape == anomalous.data.pixels.shape[:2]
    normal = ds.filter(split="test", label=0)[0]
    assert normal.target.sum() == 0


def test_grayscale_category_converted_to_rgb(mvtec):
    sample = anomalykit.load("mvtec_ad", mvtec.root, category="grid")[0]
    assert sample.data.pixels.shape[2] == 3
    assert sample.meta["grayscale_source"] is True
    np.testing.assert_array_equal(sample.data.pixels[..., 0], sample.data.pixels[..., 1])


def test_category_and_split_options(mvtec):
    assert len(anomalykit.load("mvtec_ad", mvtec.root, category=["bottle", "grid"])) == 16
    assert len(anomalykit.load("mvtec_ad", mvtec.root, category=["grid", "bottle", "grid"])) == 16
    assert len(anomalykit.load("mvtec_ad", mvtec.root, category="bottle", split="train")) == 3
    with pytest.raises(ConfigError, match="split"):
        anomalykit.load("mvtec_ad", mvtec.root, split="validation")
    with pytest.raises(ConfigError, match="unknown option"):
        anomalykit.load("mvtec_ad", mvtec.root, categry="bottle")


def test_missing_root_category_and_mask_name_the_path(tmp_path, mvtec):
    with pytest.raises(DatasetNotFoundError, match="mvtec-ad.*CC BY-NC-SA"):
        anomalykit.load("mvtec_ad", tmp_path / "nowhere")
    with pytest.raises(DatasetNotFoundError, match=r"cable.*homepage|cable.*Get the dataset"):
        anomalykit.load("mvtec_ad", mvtec.root, category="cable")
    (mvtec.root / "cable" / "test").mkdir(parents=True)  # a category folder without images
    with pytest.raises(DatasetNotFoundError, match=r"images of category 'cable' not found at .*cable/\{train,test\}"):
        anomalykit.load("mvtec_ad", mvtec.root, category="cable")
    assert len(anomalykit.load("mvtec_ad", mvtec.root)) == 16  # unnamed, the empty folder adds nothing
    shutil.rmtree(mvtec.root / "cable")
    (mvtec.root / "bottle/ground_truth/contamination/001_mask.png").unlink()
    with pytest.raises(DatasetNotFoundError, match="001_mask.png"):
        anomalykit.load("mvtec_ad", mvtec.root)
    with pytest.warns(UserWarning, match="skipped bottle/test/contamination/001.png"):
        lenient = anomalykit.load("mvtec_ad", mvtec.root, strict=False)
    assert len(lenient) == 15
    assert [k for k, _ in lenient.loader.skipped] == ["bottle/test/contamination/001.png"]
    # a test mask does not concern the training split: nothing raised, nothing skipped
    train = anomalykit.load("mvtec_ad", mvtec.root, split="train")
    assert len(train) == 6 and train.loader.skipped == []


def test_corrupt_png_strict_and_reported_skip(mvtec):
    (mvtec.root / "bottle/train/good/001.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    ds = anomalykit.load("mvtec_ad", mvtec.root, category="bottle", split="train")
    with pytest.raises(MalformedFileError, match="bottle/train/good/001.png"):
        list(ds)
    lenient = anomalykit.load("mvtec_ad", mvtec.root, category="bottle", split="train", strict=False)
    with pytest.warns(UserWarning, match="skipped bottle/train/good/001.png"):
        samples = list(lenient)
    assert len(samples) == 2
    assert [k for k, _ in lenient.skipped] == ["bottle/train/good/001.png"]


def test_nested_archive_folder_is_found(tmp_path):
    build("mvtec_ad", tmp_path / "mvtec_anomaly_detection")
    assert len(anomalykit.load("mvtec_ad", tmp_path)) == 16


def test_verify_reports_missing_extra_and_counts(tmp_path):
    built = build("mvtec_ad", tmp_path / "m", categories={"toothbrush": ("defective",)},
                  n_train=60, n_test_good=12, n_defect=30, size=8)
    ds = anomalykit.load("mvtec_ad", built.root, category="toothbrush")
    assert ds.loader.verify().ok
    (built.root / "toothbrush/ground_truth/defective/003_mask.png").unlink()
    (built.root / "toothbrush/train/good/notes.txt").write_text("x")
    (built.root / "toothbrush/train/good/059.png").unlink()
    (built.root / "toothbrush/test/good/004.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    with pytest.warns(UserWarning, match="003.png"):
        loader = anomalykit.load("mvtec_ad", built.root, category="toothbrush", strict=False).loader
    report = loader.verify()
    assert not report.malformed  # decoding only when asked
    assert [m.split(":")[0] for m in loader.verify(decode=True).malformed] == ["toothbrush/test/good/004.png"]
    assert report.missing == ["toothbrush/ground_truth/defective/003_mask.png"]
    assert report.extra == ["toothbrush/train/good/notes.txt"]
    assert report.count_mismatches == ["toothbrush/train/good: 59 images, expected 60"]
