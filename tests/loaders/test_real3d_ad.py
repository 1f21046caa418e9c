import shutil

import numpy as np
import open3d as o3d
import pytest

import anomalykit
from anomalykit.errors import ConfigError, DatasetNotFoundError, MalformedFileError
from anomalykit.loaders._pointcloud_io import read_pcd, read_pcd_header, read_point_labels, write_pcd
from anomalykit.testing import build

PCD_HEADER = (
    "VERSION .7\nFIELDS {fields}\nSIZE 4 4 4\nTYPE F F F\nCOUNT 1 1 1\nWIDTH {n}\nHEIGHT 1\n"
    "VIEWPOINT 0 0 0 1 0 0 0\nPOINTS {n}\nDATA ascii\n"
)


@pytest.fixture(scope="module")
def real3d(tmp_path_factory):
    return build("real3d_ad", tmp_path_factory.mktemp("real3d"))


def fresh(tmp_path, **kwargs):
    return build("real3d_ad", tmp_path / "r3d", **kwargs)


def test_counts_types_and_keys(real3d):
    ds = anomalykit.load("real3d_ad", real3d.root)
    assert len(ds) == real3d.expected["total"] == 14
    assert ds.counts() == {"test/anomalous": 4, "test/normal": 4, "train/normal": 6}
    assert len(set(ds.keys)) == len(ds)
    rows = {r["key"]: r for r in ds.manifest.to_pylist()}
    # the README's *_prototype name is accepted beside the real *_template files
    assert rows["airplane/train/7_prototype.pcd"]["split"] == "train"
    bulge = rows["airplane/test/17_bulge.pcd"]
    assert (bulge["label"], bulge["defect"], bulge["variant"], bulge["scan_id"]) == (1, "bulge", None, "17")
    assert bulge["mask_path"] == "airplane/gt/17_bulge.txt"
    sink = rows["airplane/test/18_sink_cut.pcd"]
    assert (sink["label"], sink["defect"], sink["variant"]) == (1, "sink", "cut")
    good_cut = rows["airplane/test/15_good_cut.pcd"]
    assert (good_cut["label"], good_cut["defect"], good_cut["variant"], good_cut["mask_path"]) == (0, None, "cut", None)
    assert set(ds.filter(label=1).manifest.column("defect").to_pylist()) == {"bulge", "sink"}


def test_anomalous_points_come_from_the_ground_truth_file(real3d):
    ds = anomalykit.load("real3d_ad", real3d.root, category="airplane").filter(label=1)
    for sample in ds:
        gt = np.loadtxt(real3d.root / sample.meta["gt_path"])
        np.testing.assert_allclose(sample.data.points, gt[:, :3].astype(np.float32))
        np.testing.assert_array_equal(sample.target, gt[:, 3].astype(np.uint8))
        assert 0 < sample.target.sum() < len(sample.data) * 0.06
        assert sample.meta["point_source"] == "gt"
        assert len(sample.data) == read_pcd_header(real3d.root / sample.meta["path"]).points
        # same point set as the PCD, in another order
        pcd = np.asarray(o3d.io.read_point_cloud(str(real3d.root / sample.meta["path"])).points, dtype=np.float32)
        assert not np.allclose(pcd, sample.data.points)
        np.testing.assert_allclose(np.sort(pcd, axis=0), np.sort(sample.data.points, axis=0), atol=1e-5)


def test_every_pcd_encoding_matches_open3d(real3d):
    ds = anomalykit.load("real3d_ad", real3d.root)
    encodings = set()
    for sample in ds.filter(label=0):
        path = real3d.root / sample.meta["path"]
        expected = np.asarray(o3d.io.read_point_cloud(str(path)).points, dtype=np.float32)
        np.testing.assert_array_equal(sample.data.points, expected)
        assert sample.target.dtype == np.uint8 and sample.target.sum() == 0
        assert sample.data.points.dtype == np.float32
        encodings.add(sample.meta["encoding"])
    assert encodings == {"ascii", "binary", "binary_compressed"}


def test_options(real3d):
    root = real3d.root
    assert len(anomalykit.load("real3d_ad", root, category="airplane")) == 7
    assert len(anomalykit.load("real3d_ad", root, split="train")) == 6
    no_variants = anomalykit.load("real3d_ad", root, include_variants=False)
    assert len(no_variants) == 10 and not any("cut" in k for k in no_variants.keys)
    centred = anomalykit.load("real3d_ad", root, normalize=True, split="train")[0]
    np.testing.assert_allclose(centred.data.points.mean(axis=0), 0, atol=1e-4)
    with pytest.raises(ConfigError, match="split"):
        anomalykit.load("real3d_ad", root, split="val")
    with pytest.raises(ConfigError, match="unknown option"):
        anomalykit.load("real3d_ad", root, catgory="car")
    with pytest.raises(DatasetNotFoundError, match=r"'car'.*M-3LAB/Real3D-AD.*CC BY 4.0"):
        anomalykit.load("real3d_ad", root, category="car")
    with pytest.raises(DatasetNotFoundError, match="Real3D-AD"):
        anomalykit.load("real3d_ad", root / "nowhere")


def test_a_named_category_without_point_clouds_is_an_error(tmp_path):
    built = fresh(tmp_path, categories=("duck",))
    (built.root / "fish" / "train").mkdir(parents=True)
    with pytest.raises(DatasetNotFoundError, match=r"point clouds of category 'fish' not found at .*fish/\{train,test\}/\*.pcd"):
        anomalykit.load("real3d_ad", built.root, category="fish")
    with pytest.raises(DatasetNotFoundError, match=r"category 'duck' not found at .*duck/test/\*.pcd"):
        for path in (built.root / "duck" / "test").iterdir():
            path.unlink()
        anomalykit.load("real3d_ad", built.root, category="duck", split="test")
    assert len(anomalykit.load("real3d_ad", built.root)) == 3  # unnamed, empty folders add nothing


def test_root_with_good_in_its_path_and_nested_top_folder(tmp_path):
    built = build("real3d_ad", tmp_path / "goods" / "Real3D-AD-PCD", categories=("fish",))
    ds = anomalykit.load("real3d_ad", tmp_path / "goods")  # one level above the category folders
    assert ds.loader.root == built.root
    assert ds.counts() == {"test/anomalous": 2, "test/normal": 2, "train/normal": 3}


def test_macos_archive_leftovers_are_ignored(tmp_path):
    built = fresh(tmp_path, categories=("car",))
    shadow = built.root / "__MACOSX" / "car" / "test"
    shadow.mkdir(parents=True)
    (shadow / "._14_good.pcd").write_bytes(b"\x00\x05\x16\x07")
    (built.root / "car/test/._14_good.pcd").write_bytes(b"\x00\x05\x16\x07")
    ds = anomalykit.load("real3d_ad", built.root)
    assert len(ds) == built.expected["total"]
    assert all(not k.startswith("__MACOSX") and "/._" not in k for k in ds.keys)


def test_verify_compares_with_the_card(real3d):
    report = anomalykit.load("real3d_ad", real3d.root).loader.verify()
    assert not report.missing and not report.malformed and not report.extra
    assert report.counts["airplane/train"] == 3
    assert "airplane: found {'train': 3, 'test/good': 2, 'test/defect': 2}" in report.count_mismatches[0]


def test_template_in_test_folder_is_left_out_and_reported(tmp_path):
    built = fresh(tmp_path, categories=("duck",))
    shutil.copy(built.root / "duck/train/3_template.pcd", built.root / "duck/test/3_template.pcd")
    with pytest.warns(UserWarning, match="3_template.pcd"):
        ds = anomalykit.load("real3d_ad", built.root)
    assert len(ds) == built.expected["total"]
    assert ds.loader.skipped[0][0] == "duck/test/3_template.pcd"


def test_pcd_with_wrong_fields_names_file_and_line(tmp_path):
    built = fresh(tmp_path, categories=("shell",))
    target = built.root / "shell/train/3_template.pcd"
    target.write_text(PCD_HEADER.format(fields="x y intensity", n=2) + "1 2 3\n4 5 6\n")
    ds = anomalykit.load("real3d_ad", built.root)
    with pytest.raises(MalformedFileError, match=r"3_template.pcd, line 2: .*missing z"):
        ds[0]
    # strict=False skips it while iterating and records why
    lenient = anomalykit.load("real3d_ad", built.root, strict=False)
    with pytest.warns(UserWarning, match="3_template.pcd"):
        samples = list(lenient)
    assert len(samples) == built.expected["total"] - 1
    assert lenient.skipped[0][0] == "shell/train/3_template.pcd"


def test_ground_truth_point_count_mismatch(tmp_path):
    built = fresh(tmp_path, categories=("toffees",))
    gt = next((built.root / "toffees/gt").glob("*_bulge.txt"))
    lines = gt.read_text().splitlines()
    gt.write_text("\n".join(lines[:-5]) + "\n")
    ds = anomalykit.load("real3d_ad", built.root).filter(defect="bulge")
    with pytest.raises(MalformedFileError, match=rf"{gt.name}: holds {len(lines) - 5} points, but .*_bulge.pcd has {len(lines)}"):
        ds[0]


@pytest.mark.parametrize("text, message", [
    ("0.1 0.2 0.3 0\n0.4 0.5 0.6 1.0\n0.7 0.8 0.9 2\n", "line 3: label must be 0 or 1, got 2.0"),
    ("\n0.1 0.2 0.3 0\n\n0.4 0.5 0.6 1.0\n0.7 0.8 0.9 2\n", "line 5: label must be 0 or 1"),  # blank lines count
    ("0.1 0.2 0.3 0\n\n0.4 0.5 inf 1\n", "line 3: non-finite coordinate"),
    ("0.1 0.2 0.3 0\n0.4 0.5 1\n", "line 2: expected 4 values"),
    ("0.1 0.2 0.3 0\n0.4 abc 0.6 1\n", "line 2: not a number: 'abc'"),
])
def test_bad_ground_truth_rows_name_the_line(tmp_path, text, message):
    path = tmp_path / "1_bulge.txt"
    path.write_text(text)
    with pytest.raises(MalformedFileError, match=rf"1_bulge.txt, {message}"):
        read_point_labels(path)


def test_ground_truth_whitespace_and_float_labels(tmp_path):
    path = tmp_path / "1_bulge.txt"
    # doubled spaces and trailing blanks are tolerated; float labels are read
    path.write_text("0.1  0.2 0.3 1.0 \n0.4 0.5 0.6 0.0\n")
    truth = read_point_labels(path)
    np.testing.assert_array_equal(truth.labels, [1, 0])
    np.testing.assert_allclose(truth.points[1], [0.4, 0.5, 0.6])


def test_missing_ground_truth(tmp_path):
    built = fresh(tmp_path, categories=("gemstone",))
    gt = next((built.root / "gemstone/gt").glob("*_sink_cut.txt"))
    (built.root / "gemstone/gt/99_bulge.txt").write_text(gt.read_text())  # for no test file
    gt.unlink()
    with pytest.raises(DatasetNotFoundError, match=gt.name):
        anomalykit.load("real3d_ad", built.root)
    with pytest.warns(UserWarning, match="no ground truth"):
        ds = anomalykit.load("real3d_ad", built.root, strict=False)
    assert len(ds) == built.expected["total"] - 1
    report = ds.loader.verify()
    assert any(gt.name in m for m in report.missing)
    assert report.extra == ["gemstone/gt/99_bulge.txt (no test file of that name)"]
    # the training split does not depend on test ground truth: nothing raised, nothing skipped
    train = anomalykit.load("real3d_ad", built.root, split="train")
    assert len(train) == 3 and train.loader.skipped == []


def test_truncated_and_short_pcd_files(tmp_path):
    points = np.random.default_rng(1).normal(size=(50, 3))
    binary = tmp_path / "b.pcd"
    write_pcd(binary, points, encoding="binary")
    data = binary.read_bytes()
    binary.write_bytes(data[: len(data) - 40])
    with pytest.raises(MalformedFileError, match="b.pcd: binary PCD is truncated"):
        read_pcd(binary)
    short = tmp_path / "s.pcd"
    short.write_text(PCD_HEADER.format(fields="x y z", n=3) + "1 2 3\n4 5 6\n")
    with pytest.raises(MalformedFileError, match="s.pcd: ASCII data does not hold the header's POINTS 3 rows"):
        read_pcd(short)
    extra = tmp_path / "e.pcd"
    extra.write_text(PCD_HEADER.format(fields="x y z", n=2) + "1 2 3\n4 5 6\n7 8 9\n")
    with pytest.raises(MalformedFileError, match="e.pcd: ASCII data does not hold the header's POINTS 2 rows"):
        read_pcd(extra)
    exact = tmp_path / "x.pcd"
    exact.write_text(PCD_HEADER.format(fields="x y z", n=3) + "1 2 3\n4 5 6\n7 8 9.5\n\n")
    np.testing.assert_array_equal(read_pcd(exact).points, [[1, 2, 3], [4, 5, 6], [7, 8, 9.5]])
    garbage = tmp_path / "g.pcd"
    garbage.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00")
    with pytest.raises(MalformedFileError, match="g.pcd"):
        read_pcd(garbage)
    compressed = tmp_path / "c.pcd"
    write_pcd(compressed, points, encoding="binary_compressed")
    np.testing.assert_allclose(read_pcd(compressed).points, points.astype(np.float32))


def test_shard_round_trip_keeps_points_and_targets(real3d, tmp_path):
    ds = anomalykit.load("real3d_ad", real3d.root, category="candybar").filter(split="test")
    ds.write_shards(tmp_path / "shards")
    back = {s.key: s for s in anomalykit.read_shards(tmp_path / "shards")}
    for sample in ds:
        np.testing.assert_array_equal(back[sample.key].data.points, sample.data.points)
        np.testing.assert_array_equal(back[sample.key].target, sample.target)
