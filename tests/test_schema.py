import numpy as np
import pyarrow as pa
import pytest

from anomalykit.errors import SchemaError
from anomalykit.schema import EventLog, Graph, Image, PointCloud, Sample, Series, Video


def _sample(data, target=None, **kw):
    return Sample(key="k", dataset="d", split="test", label=kw.pop("label", 1), data=data, target=target, **kw)


def test_image_primary_array_and_mask_alignment():
    pixels = np.random.default_rng(0).integers(0, 255, (5, 7, 3), dtype=np.uint8)
    sample = _sample(Image(pixels), np.zeros((5, 7), bool))
    assert np.asarray(sample.data).shape == (5, 7, 3)
    assert sample.target.dtype == np.uint8
    with pytest.raises(SchemaError, match=r"mask shape \(7, 5\) differs .* \(5, 7\)"):
        _sample(Image(pixels), np.zeros((7, 5), bool))


def test_image_rejects_wrong_dtype_and_channels():
    with pytest.raises(SchemaError, match="uint8"):
        Image(np.zeros((4, 4, 3), np.float32))
    with pytest.raises(SchemaError, match="C in"):
        Image(np.zeros((4, 4, 2), np.uint8))
    assert Image(np.zeros((4, 4), np.uint8)).channels == 1


def test_image_mask_values_are_checked():
    with pytest.raises(SchemaError, match="binarise"):
        _sample(Image(np.zeros((2, 2, 3), np.uint8)), np.full((2, 2), 255, np.uint8))
    soft = _sample(Image(np.zeros((2, 2, 3), np.uint8)), np.full((2, 2), 0.5))
    assert soft.target.dtype == np.float32


def test_pointcloud_series_graph_eventlog_targets_align():
    cloud = PointCloud(np.zeros((10, 3)), normals=np.ones((10, 3)))
    assert np.asarray(cloud).dtype == np.float32
    with pytest.raises(SchemaError, match=r"one label per point \(shape \(10,\)\)"):
        _sample(cloud, np.zeros(9))
    with pytest.raises(SchemaError, match="normals"):
        PointCloud(np.zeros((10, 3)), normals=np.ones((9, 3)))

    series = Series(np.zeros((20, 2)), timestamps=np.arange(20), channels=("a", "b"))
    assert np.asarray(series).shape == (20, 2)
    with pytest.raises(SchemaError, match="one label per step"):
        _sample(series, np.zeros(19))
    with pytest.raises(SchemaError, match="channels"):
        Series(np.zeros((20, 2)), channels=("a",))

    graph = Graph(np.zeros((4, 3)), np.array([[0, 1], [1, 3]]), sensitive=np.array([0, 1, 0, 1]))
    assert np.asarray(graph).shape == (4, 3)
    with pytest.raises(SchemaError, match="refers to node 4"):
        Graph(np.zeros((4, 3)), np.array([[0], [4]]))
    with pytest.raises(SchemaError, match="one label per node"):
        _sample(graph, np.zeros(5))

    events = EventLog(pa.table({"t": pa.array([1, 2, 3], pa.int64()), "user": ["a", "b", "c"]}))
    assert np.asarray(events).shape == (3, 1)
    with pytest.raises(SchemaError, match="one label per event"):
        _sample(events, np.zeros(2))


def test_video_needs_exactly_one_source():
    with pytest.raises(SchemaError, match="exactly one"):
        Video()
    video = Video(features=np.zeros((6, 10, 8)))
    assert _sample(video, np.zeros(6)).target.shape == (6,)
    with pytest.raises(SchemaError, match="one label per snippet"):
        _sample(video, np.zeros(7))


def test_sample_envelope_validation():
    image = Image(np.zeros((2, 2, 3), np.uint8))
    with pytest.raises(SchemaError, match="split"):
        Sample(key="k", dataset="d", split="validation", label=0, data=image)
    with pytest.raises(SchemaError, match="label"):
        Sample(key="k", dataset="d", split="train", label=2, data=image)
    with pytest.raises(SchemaError, match="key"):
        Sample(key="", dataset="d", split="train", label=0, data=image)


@pytest.mark.parametrize(
    "data,target",
    [
        (Image(np.arange(48, dtype=np.uint8).reshape(4, 4, 3)), np.eye(4, dtype=bool)),
        (Image(np.arange(16, dtype=np.uint8).reshape(4, 4)), np.full((4, 4), 0.25, np.float32)),
        (PointCloud(np.random.default_rng(1).normal(size=(6, 3)), displacement=np.ones((6, 3)),
                    source_index=np.array([0, 2, 3, 5, 6, 9])), np.array([0, 1, 1, 0, 0, 0])),
        (Series(np.random.default_rng(2).normal(size=(8, 2)), np.arange(8).astype("datetime64[s]"), ("x", "y")), np.arange(8) % 2),
        (Graph(np.ones((3, 2)), np.array([[0, 1], [1, 2]]), sensitive=np.array([1, 0, 1])), np.array([1, 0, 0])),
        (EventLog(pa.table({"a": [1.0, 2.0], "s": ["x", "y"]})), np.array([0, 1])),
        (Video(features=np.ones((3, 2, 4)), fps=30.0), np.array([0, 1, 1])),
        (PointCloud(np.zeros((3, 3))), None),
    ],
)
def test_shard_fields_round_trip(data, target):
    sample = _sample(data, target, category="c", defect="d", meta={"path": "x", "n": np.int64(3)}, provenance={"seed": 1})
    back = Sample.from_shard_fields(sample.to_shard_fields())
    assert (back.key, back.split, back.label, back.category, back.defect) == ("k", "test", 1, "c", "d")
    assert back.meta == {"path": "x", "n": 3}
    assert back.provenance == {"seed": 1}
    if isinstance(data, EventLog):
        assert back.data.events.equals(data.events)
    else:
        np.testing.assert_array_equal(np.asarray(back.data), np.asarray(data))
    if target is None:
        assert back.target is None
    else:
        np.testing.assert_array_equal(back.target, sample.target)
        assert back.target.dtype == sample.target.dtype
    if isinstance(data, PointCloud) and data.source_index is not None:
        np.testing.assert_array_equal(back.data.source_index, data.source_index)
        assert back.data.source_index.dtype == np.int64
    if isinstance(data, Series):
        assert back.data.channels == ("x", "y")
        np.testing.assert_array_equal(back.data.timestamps, data.timestamps)


def test_as_anomalib_names():
    sample = _sample(Image(np.full((3, 4, 3), 255, np.uint8)), np.ones((3, 4), bool))
    item = sample.as_anomalib()
    assert tuple(item["image"].shape) == (3, 3, 4)
    assert float(item["image"].max()) == 1.0
    assert bool(item["gt_label"]) and int(item["gt_mask"].sum()) == 12


def test_video_clips_over_features():
    video = Video(features=np.arange(10 * 2, dtype=np.float32).reshape(10, 2))
    clips = list(video.clips(4, stride=3))
    assert [first for first, _ in clips] == [0, 3, 6]
    np.testing.assert_array_equal(clips[1][1], video.features[3:7])
    with pytest.raises(SchemaError, match="length and stride"):
        list(video.clips(0))


def test_video_clips_over_a_file(tmp_path):
    from anomalykit.io.video import write_video

    frames = np.random.default_rng(0).integers(0, 255, (12, 16, 16, 3), dtype=np.uint8)
    path = tmp_path / "v.mp4"
    write_video(path, frames, fps=10)
    video = Video(path=str(path))
    assert video.length == 12
    clips = list(video.clips(5))
    assert [first for first, _ in clips] == [0, 5]
    assert clips[0][1].shape[:2] == (5, 16)
