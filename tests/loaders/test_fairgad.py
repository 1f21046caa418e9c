import base64
import pickle
import zlib

import numpy as np
import pytest
import torch

import anomalykit
from anomalykit.errors import ConfigError, DatasetNotFoundError, MalformedFileError
from anomalykit.loaders import fairgad as fairgad_module
from anomalykit.loaders.fairgad import load_pyg_data
from anomalykit.testing import build
from anomalykit.testing.fairgad import DEFAULT_GRAPHS, random_graph, save_pyg_data

# reddit.pt written by torch_geometric 2.8.1 (torch.save(Data(...))): x 4x2, edge_index 2x4,
# y [0, 1, 0, 1], sensitive [0, 0, 1, 1], contamination 0.5; zlib-compressed, base64.
PYG_281_FILE = (
    "eNqlVU9s01YYf3HSNPUgbRlbRwel/BkzW0ljp0naTVtKBOFgJEIHkzVpshznLbHm2Pmcl64dqgRCrcRtl105bKdphx13HIcd"
    "dmXnHZA4cQIkLogL79n5Y7/SBtiTnp/z/P3+vKfv+1JV4wmEUim0a0yhQ8jwzKa1jhfrBjEy7e/tSjmNvomMm4JJXBqlN7Db"
    "wsSzzIwfzB7iBfYAdPYWxLZAkLQ0pdVxvYF1gxBPN+0OxEfAL9Lo8zRYhIQ2xeAEOx3XGxKMjSC45scHFEktySg6FIFh/NVA"
    "9tFoYPGS7dYM+6veL0jRQ0xsgShp7Kr0ltFuW04D3tmCA5IWo1sbcDAgzOhdYtkdUfdwrWvZ9b7jdUWEtCRp4zS4JwKTAUSs"
    "2K5BBlpTPmEWprU4Xc12Fw6pKQLvXlWRmlCFHTisCmpsB967Y5qubWOTWK7TEa94dezh+gXLJCK8f3YNZgh8sAZHNJGy+Ldu"
    "OXW8AbNNaqPZl77sOo2B8oe+sgxHm77iMaYoqIkdmKPCVPH4nSYjnidwYg1O+sGbcCrgawZgBU5TcILAR77dbTijxrbh4wAo"
    "EaDPT7QJdgf0WixCsws+jRDkYCEgONcjyDCCxYAgS0BeA0U7yC7GdYjRshyDHR9yl0oPgsTt+lestw0POwSWmrFurVvLVNXx"
    "1M+bNxZ+ExBis7pn4s+EEj/zneu1DKKvY69DVXbnv8x4/3z8321mnc29eWdRccjbywDdsK2G06JGK+UcR/1ao7DEDJR+gEf0"
    "TEjY18A0Kg0M1DYJdlnCVMqfv41uf9gWITZmHra/eHiElVdyXw9p9GWkqyxmK+XP/ocBSllC6CadaJWufwUqq/T9XolN5uz3"
    "p/Vv5+nu/Ahnp6PO5Ep5Hr2Gvj9ivVXorXFuH3H7/Tjm79kfT35dDQ6wr79E1J9SKQ+/8jqxEP/h7Pa1tzh/7k3Oz+uG9X/5"
    "+58bo/Un0amB/qDcjo8ykBOZwv27jeuj838OKcMC9I/YwZ5FK/BHv4XoVr1SzrxhLsrZYnG5oBSVleLKynJ+SS4oebko53PL"
    "K/l8QV6Ws9mCslTMMZeKpB2TqA/JdxnzU6DvM9yapnY55/+HeXS4Ac1EkM8FtFcz40nCTWQ2QnI1jvbpXDxPuBFMR3j+DfEM"
    "GhAPD1drOgL/OoG43sFjw5UUxT7hsTKPDVdJFPvTGIdVeGw4wzldHpvjseHcnYxg20nEVwQPDqfUXPSuQ+BXJ3tVTSYX+qUR"
    "PzdAitx6u9erNsb7JZ30315MDEu9qo4lA4zoxwexLwHjazyt"
)


class WritesAFile:
    """Unpickling this object opens (creates) a file: code execution if it ever happens."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


@pytest.fixture(scope="module")
def fairgad(tmp_path_factory):
    return build("fairgad", tmp_path_factory.mktemp("fairgad"))


def test_graphs_load_with_all_attributes(fairgad):
    ds = anomalykit.load("fairgad", fairgad.root)
    assert len(ds) == fairgad.expected["total"] == 2
    assert ds.keys == ["reddit", "twitter"]
    expected = random_graph(np.random.default_rng(0), **DEFAULT_GRAPHS["reddit"])
    reddit = ds[0]
    np.testing.assert_array_equal(reddit.data.x, expected["x"].numpy())
    np.testing.assert_array_equal(reddit.data.edge_index, expected["edge_index"].numpy())
    np.testing.assert_array_equal(reddit.data.sensitive, expected["sensitive"].numpy())
    np.testing.assert_array_equal(reddit.target, expected["y"].numpy())
    assert reddit.label == 1 and reddit.split == "test" and reddit.defect == "misinformation_spreader"
    assert reddit.meta["contamination"] == pytest.approx(expected["contamination"])
    assert reddit.meta["directed"] is False and reddit.meta["sensitive_attribute"] == "political_leaning"
    twitter = ds[1]
    assert twitter.data.num_nodes == 80 and twitter.meta["directed"] is True
    assert int(twitter.target.sum()) == fairgad.expected["graphs"]["twitter"]["anomalies"]
    assert ds.manifest.column("num_edges").to_pylist() == [
        fairgad.expected["graphs"]["reddit"]["edges"], fairgad.expected["graphs"]["twitter"]["edges"]]


def test_reads_a_file_saved_by_torch_geometric(tmp_path):
    (tmp_path / "reddit.pt").write_bytes(zlib.decompress(base64.b64decode("".join(PYG_281_FILE))))
    sample = anomalykit.load("fairgad", tmp_path)[0]
    np.testing.assert_array_equal(sample.data.x, [[0.5, 1.0], [2.0, -1.0], [0.0, 3.0], [1.5, 1.5]])
    np.testing.assert_array_equal(sample.data.edge_index, [[0, 1, 2, 3], [1, 0, 3, 2]])
    np.testing.assert_array_equal(sample.target, [0, 1, 0, 1])
    np.testing.assert_array_equal(sample.data.sensitive, [0, 0, 1, 1])
    assert sample.meta["contamination"] == 0.5


def test_builder_pickle_matches_the_torch_geometric_file(tmp_path):
    tensors = dict(
        x=torch.tensor([[0.5, 1.0], [2.0, -1.0], [0.0, 3.0], [1.5, 1.5]]),
        edge_index=torch.tensor([[0, 1, 2, 3], [1, 0, 3, 2]]),
        y=torch.tensor([0, 1, 0, 1]), sensitive=torch.tensor([0, 0, 1, 1]), contamination=0.5,
    )
    import io
    import zipfile

    save_pyg_data(tmp_path / "ours.pt", **tensors)
    ours = zipfile.ZipFile(tmp_path / "ours.pt").read("ours/data.pkl")
    theirs_zip = zipfile.ZipFile(io.BytesIO(zlib.decompress(base64.b64decode("".join(PYG_281_FILE)))))
    theirs = theirs_zip.read(next(n for n in theirs_zip.namelist() if n.endswith("data.pkl")))
    assert ours == theirs


def test_graph_option_aliases_and_missing_files(fairgad, tmp_path):
    assert anomalykit.load("fairgad", fairgad.root, graph="twitter").keys == ["twitter"]
    assert anomalykit.load("fairgad", fairgad.root, graph=["twitter", "reddit", "twitter"]).keys == ["twitter", "reddit"]
    with pytest.raises(ConfigError, match="graph must be one of reddit, twitter"):
        anomalykit.load("fairgad", fairgad.root, graph="cora")
    alias = tmp_path / "alias" / "data"
    alias.mkdir(parents=True)
    (alias / "fairgad_reddit.pt").write_bytes((fairgad.root / "reddit.pt").read_bytes())
    ds = anomalykit.load("fairgad", tmp_path / "alias")
    assert ds.keys == ["reddit"] and ds.manifest.column("path").to_pylist() == ["data/fairgad_reddit.pt"]
    with pytest.raises(DatasetNotFoundError, match=r"twitter.pt.*nigelnnk/FairGAD"):
        anomalykit.load("fairgad", tmp_path / "alias", graph="twitter")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetNotFoundError, match="reddit.pt, twitter.pt"):
        anomalykit.load("fairgad", tmp_path / "empty")


@pytest.mark.parametrize("container", ["torch_zip", "raw_pickle", "inside_data"])
def test_malicious_pickle_is_refused_without_running(tmp_path, container):
    marker = tmp_path / "pwned.txt"
    evil = WritesAFile(marker)
    pickle.loads(pickle.dumps(evil))  # a plain unpickle runs it: the test can tell
    assert marker.exists()
    marker.unlink()
    target = tmp_path / "reddit.pt"
    if container == "torch_zip":
        torch.save(evil, target)
    elif container == "raw_pickle":
        target.write_bytes(pickle.dumps(evil, protocol=2))
    else:
        graph = random_graph(np.random.default_rng(0), **DEFAULT_GRAPHS["reddit"])
        save_pyg_data(target, **{**graph, "payload": evil})
    with pytest.raises(MalformedFileError, match=r"reddit.pt: .*(refused|not a readable torch file)"):
        anomalykit.load("fairgad", tmp_path)
    assert not marker.exists()


@pytest.mark.parametrize(
    "content, message",
    [
        (lambda g: torch.zeros(3), "holds a Tensor, not a graph"),
        (lambda g: {k: v for k, v in g.items() if k != "sensitive"}, "no 'sensitive' attribute.*PyGOD"),
        (lambda g: {**g, "x": g["x"][0]}, "'x' must be a numeric N x F tensor"),
        (lambda g: {**g, "y": g["y"] * 2}, "'y' must hold 0/1 labels"),
        (lambda g: {**g, "y": g["y"][:-1]}, r"'y' has shape \(59,\), expected one value per node \(60,\)"),
        (lambda g: {**g, "edge_index": g["edge_index"] + 100}, "'edge_index' refers to node"),
        (lambda g: {**g, "contamination": 0.9}, r"'contamination' must lie in \(0, 0.5\]"),
        (lambda g: {**g, "note": "hello"}, "attribute 'note' is a str"),
    ],
)
def test_unexpected_content_names_the_file(tmp_path, content, message):
    graph = random_graph(np.random.default_rng(0), **DEFAULT_GRAPHS["reddit"])
    obj = content(graph)
    if isinstance(obj, dict):
        save_pyg_data(tmp_path / "twitter.pt", **obj)
    else:
        torch.save(obj, tmp_path / "twitter.pt")
    with pytest.raises(MalformedFileError, match=f"twitter.pt: .*{message}"):
        anomalykit.load("fairgad", tmp_path)


def test_corrupt_file_and_lenient_mode(fairgad, tmp_path):
    (tmp_path / "reddit.pt").write_bytes((fairgad.root / "reddit.pt").read_bytes()[:300])
    (tmp_path / "twitter.pt").write_bytes((fairgad.root / "twitter.pt").read_bytes())
    with pytest.raises(MalformedFileError, match="reddit.pt: not a readable torch file"):
        anomalykit.load("fairgad", tmp_path)
    with pytest.warns(UserWarning, match="skipped reddit.pt"):
        ds = anomalykit.load("fairgad", tmp_path, strict=False)
    assert ds.keys == ["twitter"] and ds.loader.skipped[0][0] == "reddit.pt"
    report = ds.loader.verify()
    assert report.malformed and report.malformed[0].startswith("reddit.pt: ")
    assert report.counts == {"twitter/nodes": 80, "twitter/edges": fairgad.expected["graphs"]["twitter"]["edges"]}
    assert report.count_mismatches == ["twitter: 80 nodes, expected 47712", f"twitter: {report.counts['twitter/edges']} edges, expected 468697"]
    assert not report.missing
    # under the driver's other name, in data/: still malformed, not missing
    (tmp_path / "data").mkdir()
    (tmp_path / "reddit.pt").rename(tmp_path / "data" / "fairgad_reddit.pt")
    with pytest.warns(UserWarning, match="skipped data/fairgad_reddit.pt"):
        report = anomalykit.load("fairgad", tmp_path, strict=False).loader.verify()
    assert [m.split(":")[0] for m in report.malformed] == ["data/fairgad_reddit.pt"] and not report.missing
    (tmp_path / "data" / "fairgad_reddit.pt").unlink()
    assert anomalykit.load("fairgad", tmp_path).loader.verify().missing == ["reddit.pt"]


def test_legacy_torch_format_and_no_lasting_allowlist(fairgad, tmp_path):
    graph = random_graph(np.random.default_rng(5), **DEFAULT_GRAPHS["reddit"])
    torch.save(graph, tmp_path / "reddit.pt", _use_new_zipfile_serialization=False)
    sample = anomalykit.load("fairgad", tmp_path)[0]
    np.testing.assert_array_equal(sample.data.x, graph["x"].numpy())
    # the PyG names are allowed only while a FairGAD file loads, never process-wide
    anomalykit.load("fairgad", fairgad.root)[0]
    allowed = torch.serialization.get_safe_globals()
    assert not any("torch_geometric" in str(entry) for entry in allowed)
    with pytest.raises(pickle.UnpicklingError, match="torch_geometric"):
        torch.load(fairgad.root / "reddit.pt", weights_only=True)


def test_plain_dict_of_tensors_is_accepted(tmp_path):
    graph = random_graph(np.random.default_rng(3), **DEFAULT_GRAPHS["twitter"])
    torch.save({**graph, "sensitive": graph["sensitive"].float()}, tmp_path / "twitter.pt")
    attributes = load_pyg_data(tmp_path / "twitter.pt")
    assert set(attributes) == {"x", "edge_index", "y", "sensitive", "contamination"}
    sample = anomalykit.load("fairgad", tmp_path)[0]
    assert sample.data.sensitive.dtype == np.int64
    np.testing.assert_array_equal(sample.data.sensitive, graph["sensitive"].numpy())


def test_pygod_sized_graph_warns_once(tmp_path, monkeypatch):
    monkeypatch.setattr(fairgad_module, "_pygod_warning_shown", False)
    nodes, edges = fairgad_module.PYGOD_REDDIT_SHAPE
    rng = np.random.default_rng(0)
    save_pyg_data(
        tmp_path / "reddit.pt",
        x=torch.zeros(nodes, 1), edge_index=torch.from_numpy(rng.integers(0, nodes, (2, edges))),
        y=torch.from_numpy((rng.random(nodes) < 0.03).astype(np.int64)),
        sensitive=torch.from_numpy((rng.random(nodes) < 0.5).astype(np.int64)),
    )
    ds = anomalykit.load("fairgad", tmp_path)
    with pytest.warns(UserWarning, match="PyGOD's 'reddit' graph, a different dataset"):
        ds[0]
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert ds[0].meta["contamination"] is None  # the second read does not warn again
