import collections

import numpy as np
import pytest

import anomalykit
from anomalykit.errors import ConfigError, MalformedFileError
from anomalykit.loaders.visa import parse_split_csv
from anomalykit.testing import build


def test_original_layout_counts_defects_and_masks(tmp_path):
    built = build("visa", tmp_path / "visa")
    ds = anomalykit.load("visa", built.root)
    assert len(ds) == built.expected["total"] == 14
    assert ds.counts() == {"test/anomalous": 4, "test/normal": 4, "train/normal": 6}
    keys = ds.keys
    assert len(set(keys)) == len(keys)
    # capsules has 3-digit normal names: 000.JPG exists in Normal/ and Anomaly/
    assert {"capsules/Data/Images/Normal/000.JPG", "capsules/Data/Images/Anomaly/000.JPG"} <= set(keys)
    assert sorted(ds.filter(label=1).manifest.column("defect").to_pylist()) == ["bent", "melt,scratch", "scratch", "squeeze"]
    anomalous = ds.filter(category="pcb1", label=1)[1]
    assert anomalous.target.max() == 1  # class id 2 in the file, binarised with != 0
    assert anomalous.target.sum() > 0 and anomalous.data.pixels.shape == (24, 36, 3)


def test_image_anno_paths_relative_to_the_category_folder(tmp_path):
    built = build("visa", tmp_path / "visa")
    anno = built.root / "pcb1" / "image_anno.csv"
    anno.write_text(anno.read_text().replace("pcb1/Data/", "Data/"))
    ds = anomalykit.load("visa", built.root, category="pcb1")
    assert sorted(ds.filter(label=1).manifest.column("defect").to_pylist()) == ["bent", "melt,scratch"]


def test_split_csv_has_crlf_and_parses(tmp_path):
    built = build("visa", tmp_path / "visa")
    raw = (built.root / "split_csv/1cls.csv").read_bytes()
    assert raw.count(b"\r\n") == raw.count(b"\n") > 1
    rows = parse_split_csv(built.root / "split_csv/1cls.csv")
    assert all(not r["mask"].endswith("\r") for r in rows)


@pytest.mark.parametrize("layout", ["anomalib", "spot_diff"])
def test_converted_layouts(tmp_path, layout):
    built = build("visa", tmp_path / "visa", layout=layout)
    ds = anomalykit.load("visa", built.root, **built.options)
    assert len(ds) == built.expected["total"]
    assert ds.loader.resolved_layout == layout
    # keys do not depend on whether root is the converted folder or the one above it
    inner = anomalykit.load("visa", ds.loader.layout_root)
    assert inner.loader.resolved_layout == "mvtec_like" and inner.keys == ds.keys
    assert "capsules/test/bad/000.JPG" in ds.keys and len(set(ds.keys)) == len(ds)
    anomalous = ds.filter(label=1)
    assert set(anomalous.manifest.column("defect").to_pylist()) == {"bad"}
    sample = anomalous[0]
    assert sample.target.ndim == 2 and sample.target.max() == 1  # 3-channel anomalib masks handled
    # every converted sample has the pixels and mask of its original (same builder seed)
    original = anomalykit.load("visa", build("visa", tmp_path / "original").root)
    by_original = {(s.category, s.meta["path"].rsplit("/", 1)[-1], s.label): s for s in original}
    for converted in ds:
        source = by_original[(converted.category, converted.meta["path"].rsplit("/", 1)[-1], converted.label)]
        np.testing.assert_array_equal(converted.data.pixels, source.data.pixels)
        np.testing.assert_array_equal(converted.target, source.target)
    # a converted tree holds one split: asking for another is an error, not a silent substitution
    error, message = ((ConfigError, r"split_file='2cls_fewshot' needs split_csv/.* holds the 1cls split") if layout == "anomalib"
                      else (FileNotFoundError, r"split_csv/2cls_fewshot.csv, visa_pytorch/<category>, 2cls_fewshot/<category>"))
    with pytest.raises(error, match=message):
        anomalykit.load("visa", built.root, split_file="2cls_fewshot", **built.options)
    # anomalib creates all twelve category folders; an empty one asked for by name is an error
    (ds.loader.layout_root / "candle" / "train" / "good").mkdir(parents=True)
    with pytest.raises(FileNotFoundError, match="images of category 'candle'"):
        anomalykit.load("visa", built.root, category="candle", **built.options)
    assert len(anomalykit.load("visa", built.root, **built.options)) == built.expected["total"]
    # a missing test mask does not stop the training split from loading
    next((built.root / ("visa_pytorch" if layout == "anomalib" else "1cls")).rglob("ground_truth/bad/*.png")).unlink()
    with pytest.raises(FileNotFoundError, match="mask of"):
        anomalykit.load("visa", built.root, **built.options)
    train = anomalykit.load("visa", built.root, split="train", **built.options)
    assert len(train) == 6 and train.loader.skipped == []


def test_bad_split_rows_name_the_line(tmp_path):
    built = build("visa", tmp_path / "visa")
    path = built.root / "split_csv/1cls.csv"
    lines = path.read_bytes().split(b"\r\n")
    weird = list(lines)
    weird[3] = lines[3].replace(b",normal,", b",weird,")
    path.write_bytes(b"\r\n".join(weird))
    with pytest.raises(MalformedFileError, match=r"1cls.csv, line 4: label must be normal or anomaly"):
        anomalykit.load("visa", built.root)
    # a row whose paths contradict its object, or whose mask is another image's
    for edit, message in ((lambda row: row.replace(b"capsules,", b"pcb1,", 1), r"image capsules/\S+ is not under the row's object folder pcb1/"),
                          (lambda row: row.replace(b"Masks/Anomaly/000.png", b"Masks/Anomaly/001.png"), r"mask \S+/001.png does not belong to image \S+/000.JPG")):
        anomaly = next(i for i, row in enumerate(lines) if row.startswith(b"capsules,test,anomaly") and b"/000.JPG" in row)
        edited = list(lines)
        edited[anomaly] = edit(lines[anomaly])
        path.write_bytes(b"\r\n".join(edited))
        with pytest.raises(MalformedFileError, match=rf"1cls.csv, line {anomaly + 1}: {message}"):
            anomalykit.load("visa", built.root)
    # an image listed twice would give two samples with one key
    lines[3] = lines[2]
    path.write_bytes(b"\r\n".join(lines))
    with pytest.raises(MalformedFileError, match=r"1cls.csv, line 4: image \S+ is listed twice \(first on line 3\)"):
        anomalykit.load("visa", built.root)
    with pytest.raises(ConfigError, match="unknown category"):
        anomalykit.load("visa", built.root, category="pcb9")


@pytest.mark.parametrize("layout", ["original", "anomalib"])
def test_a_category_named_twice_is_loaded_once(tmp_path, layout):
    built = build("visa", tmp_path / "visa", layout=layout)
    ds = anomalykit.load("visa", built.root, category=["pcb1", "capsules", "pcb1"], **built.options)
    assert len(ds) == built.expected["total"] and len(set(ds.keys)) == len(ds)


def test_split_file_option(tmp_path):
    built = build("visa", tmp_path / "visa")
    custom = built.root / "split_csv" / "2cls_fewshot.csv"
    text = (built.root / "split_csv/1cls.csv").read_text()
    custom.write_text(text.replace("test,anomaly,capsules/Data/Images/Anomaly/000.JPG",
                                   "train,anomaly,capsules/Data/Images/Anomaly/000.JPG"))
    ds = anomalykit.load("visa", built.root, split_file="2cls_fewshot")
    assert len(ds.filter(split="train", label=1)) == 1


# -- the real split files of VisA -------------------------------------------------------------

def test_real_1cls_csv_counts(real_dir):
    rows = parse_split_csv(real_dir / "visa/split_csv/1cls.csv")
    assert len(rows) == 10821
    counts = collections.Counter((r["split"], r["label"]) for r in rows)
    assert counts == {("train", "normal"): 8659, ("test", "normal"): 962, ("test", "anomaly"): 1200}
    per_category = collections.Counter(r["object"] for r in rows if r["label"] == "anomaly")
    assert len(per_category) == 12 and set(per_category.values()) == {100}
    assert all(r["mask"] == "" for r in rows if r["label"] == "normal")
    assert all(r["image"].endswith(".JPG") and r["mask"].endswith(".png") for r in rows if r["label"] == "anomaly")
    assert len({r["image"] for r in rows}) == 10821


@pytest.mark.parametrize("name,train_anomalies", [("2cls_fewshot", 20), ("2cls_highshot", 60)])
def test_real_2cls_csvs(real_dir, name, train_anomalies):
    rows = parse_split_csv(real_dir / f"visa/split_csv/{name}.csv")
    assert len(rows) == 10821
    per_category = collections.Counter(r["object"] for r in rows if r["label"] == "anomaly" and r["split"] == "train")
    assert set(per_category.values()) == {train_anomalies} and len(per_category) == 12


def test_real_split_file_through_the_loader(real_dir, tmp_path):
    """The loader reads the real 1cls.csv (copied beside a tree holding two of its images)."""
    import shutil

    from PIL import Image

    root = tmp_path / "VisA"
    (root / "split_csv").mkdir(parents=True)
    shutil.copyfile(real_dir / "visa/split_csv/1cls.csv", root / "split_csv/1cls.csv")
    ds = anomalykit.load("visa", root, category="pcb4")
    assert len(ds) == 1105
    assert ds.counts() == {"test/anomalous": 100, "test/normal": 101, "train/normal": 904}
    row = ds.filter(label=1).manifest.slice(0, 1).to_pylist()[0]
    for rel, mode in ((row["path"], "RGB"), (row["mask_path"], "L")):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.full((6, 8, 3) if mode == "RGB" else (6, 8), 3, np.uint8), mode=mode).save(root / rel)
    sample = ds.filter(label=1)[0]
    assert sample.target.all()  # class id 3 everywhere -> anomalous everywhere


@pytest.mark.parametrize("layout", ["original", "anomalib"])
def test_verify_decode_reports_corrupt_images(tmp_path, layout):
    built = build("visa", tmp_path / "visa", layout=layout)
    loader = anomalykit.load("visa", built.root, **built.options).loader
    assert not loader.verify(decode=True).malformed
    image = next(p for p in sorted(built.root.rglob("*.JPG")) if "Anomaly" not in p.parts)
    image.write_bytes(b"\xff\xd8 not a jpeg")
    report = loader.verify(decode=True)
    assert [m.split(":")[0] for m in report.malformed] == [image.relative_to(built.root).as_posix()]
    assert not loader.verify().malformed  # decoding only when asked



def test_missing_root_category_mask_and_corrupt_image(tmp_path):
    from anomalykit.errors import DatasetNotFoundError

    with pytest.raises(DatasetNotFoundError, match=r"nowhere.*spot-diff.*CC BY 4.0"):
        anomalykit.load("visa", tmp_path / "nowhere")
    built = build("visa", tmp_path / "visa")
    with pytest.raises(DatasetNotFoundError, match=r"rows of category 'candle' in the split file not found at .*1cls.csv"):
        anomalykit.load("visa", built.root, category="candle")
    mask = built.root / "pcb1/Data/Masks/Anomaly/001.png"
    mask.unlink()
    image = built.root / "capsules/Data/Images/Anomaly/000.JPG"
    image.write_bytes(b"\xff\xd8 not a jpeg")
    ds = anomalykit.load("visa", built.root, split="test")
    with pytest.raises(DatasetNotFoundError, match=r"mask of pcb1/Data/Images/Anomaly/001.JPG not found at .*001.png.*CC BY 4.0"):
        ds[ds.keys.index("pcb1/Data/Images/Anomaly/001.JPG")]
    with pytest.raises(MalformedFileError, match=r"capsules/Data/Images/Anomaly/000.JPG: cannot decode image"):
        ds[ds.keys.index("capsules/Data/Images/Anomaly/000.JPG")]
    lenient = anomalykit.load("visa", built.root, split="test", strict=False)
    with pytest.warns(UserWarning, match="skipped"):
        samples = list(lenient)
    assert len(samples) == len(ds) - 2
    assert sorted(key for key, _ in lenient.skipped) == ["capsules/Data/Images/Anomaly/000.JPG",
                                                         "pcb1/Data/Images/Anomaly/001.JPG"]
