import numpy as np
import pytest

import anomalykit
from anomalykit.errors import DatasetNotFoundError, MalformedFileError
from anomalykit.loaders._pointcloud_io import write_pcd
from anomalykit.testing import build


@pytest.fixture(scope="module")
def shapenet(tmp_path_factory):
    return build("anomaly_shapenet", tmp_path_factory.mktemp("asn"))


def test_layout_counts_and_parsed_types(shapenet):
    ds = anomalykit.load("anomaly_shapenet", shapenet.root)  # the folder above pcd/
    assert ds.loader.root == shapenet.root / "pcd"
    assert len(ds) == shapenet.expected["total"] == 10
    assert ds.counts() == {"test/anomalous": 4, "test/normal": 2, "train/normal": 4}
    rows = {r["key"]: r for r in ds.manifest.to_pylist()}
    assert rows["ashtray0/test/ashtray0_positive0.pcd"]["label"] == 0
    crack = rows["vase9/test/vase9_crack0.pcd"]
    assert (crack["label"], crack["defect"], crack["category"]) == (1, "crack", "vase9")
    assert crack["mask_path"] == "vase9/GT/vase9_crack0.txt"
    assert sorted(set(ds.manifest.column("defect").to_pylist()) - {None}) == ["bulge", "concavity", "crack"]


def test_comma_separated_ground_truth_is_the_point_source(shapenet):
    ds = anomalykit.load("anomaly_shapenet", shapenet.root, category="ashtray0").filter(label=1)
    for sample in ds:
        gt = np.loadtxt(shapenet.root / "pcd" / sample.meta["gt_path"], delimiter=",")
        np.testing.assert_allclose(sample.data.points, gt[:, :3].astype(np.float32))
        np.testing.assert_array_equal(sample.target, gt[:, 3].astype(np.uint8))
        assert sample.target.sum() == 10


def test_unlisted_type_tokens_new_folder_and_lowercase_gt(tmp_path):
    built = build(
        "anomaly_shapenet", tmp_path / "asn",
        classes={"bowl2": ("scratch3", "hole1")}, new_classes={"spoon0": ("broken0",)}, n_train=1,
    )
    (built.root / "pcd/bowl2/GT").rename(built.root / "pcd/bowl2/gt")
    ds = anomalykit.load("anomaly_shapenet", built.root / "pcd")
    assert len(ds) == built.expected["total"] == 7
    defects = {r["key"]: r["defect"] for r in ds.manifest.to_pylist() if r["label"] == 1}
    assert defects == {
        "bowl2/test/bowl2_scratch3.pcd": "scratch",
        "bowl2/test/bowl2_hole1.pcd": "hole",
        "new/spoon0/test/spoon0_broken0.pcd": "broken",
    }
    assert len(anomalykit.load("anomaly_shapenet", built.root, category="spoon0")) == 3
    for sample in ds.filter(label=1):
        assert sample.target.sum() > 0


def test_unparseable_name_and_point_count_mismatch(tmp_path):
    built = build("anomaly_shapenet", tmp_path / "asn", classes={"cup0": ("bulge0",)})
    test_dir = built.root / "pcd/cup0/test"
    write_pcd(test_dir / "cup0.pcd", np.zeros((4, 3)), encoding="ascii")
    with pytest.raises(MalformedFileError, match=r"cup0.pcd: cannot tell the sample type"):
        anomalykit.load("anomaly_shapenet", built.root)
    with pytest.warns(UserWarning, match="cup0.pcd"):
        lenient = anomalykit.load("anomaly_shapenet", built.root, strict=False)
    assert len(lenient) == built.expected["total"]
    assert lenient.loader.skipped == [("cup0/test/cup0.pcd", "file name does not name an anomaly type")]
    (test_dir / "cup0.pcd").unlink()

    gt = built.root / "pcd/cup0/GT/cup0_bulge0.txt"
    gt.write_text(gt.read_text() + "1.0,2.0,3.0,0\n")
    sample_ds = anomalykit.load("anomaly_shapenet", built.root).filter(label=1)
    with pytest.raises(MalformedFileError, match=r"cup0_bulge0.txt: holds 201 points, but cup0/test/cup0_bulge0.pcd has 200"):
        sample_ds[0]


def test_verify_checks_the_published_test_count_range(tmp_path):
    built = build("anomaly_shapenet", tmp_path / "asn", classes={"cup0": tuple(f"bulge{j}" for j in range(14)),
                                                                 "cap3": ("bulge0",)}, n_points=40)
    report = anomalykit.load("anomaly_shapenet", built.root).loader.verify()
    assert report.counts["cup0/test/good"] + report.counts["cup0/test/defect"] == 15
    assert report.count_mismatches == ["cap3: 2 test clouds, expected 15 to 24"]
    assert not report.missing and not report.malformed


def test_missing_class_names_the_homepage(shapenet):
    with pytest.raises(DatasetNotFoundError, match=r"'bag0'.*Chopper-233/Anomaly-ShapeNet.*CC BY 4.0"):
        anomalykit.load("anomaly_shapenet", shapenet.root, category="bag0")
