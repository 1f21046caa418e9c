import warnings

import numpy as np
import pytest

import anomalykit
from anomalykit.baselines.base import Detector
from anomalykit.baselines.dominant import Dominant, graph_report, normalized_adjacency
from anomalykit.errors import ConfigError
from anomalykit.metrics.classification import auroc
from anomalykit.metrics.fairness import predictions_at_contamination, statistical_parity_difference
from anomalykit.schema import Graph, Sample
from anomalykit.testing import build

PARAMS = {"epochs": 100, "hidden_dim": 32, "learning_rate": 0.01, "threads": 1}


def community_graph(rng, nodes=120, communities=4, features=16, p_in=0.15, p_out=0.005):
    """A stochastic block model whose node features depend on the community (the community
    centres are the same for every graph, so one fitted model applies to all)."""
    community = rng.integers(communities, size=nodes)
    same = community[:, None] == community[None, :]
    upper = np.triu(rng.random((nodes, nodes)) < np.where(same, p_in, p_out), k=1)
    src, dst = np.nonzero(upper)
    centres = np.random.default_rng(1234).normal(scale=2.0, size=(communities, features))
    x = centres[community] + rng.normal(scale=0.5, size=(nodes, features))
    return x.astype(np.float32), np.stack([src, dst]).astype(np.int64)


def inject_structural(rng, edge_index, nodes, cliques, clique_size):
    """PyGOD's gen_structural_outlier: ``cliques`` random node sets made fully connected."""
    chosen = rng.choice(nodes, size=cliques * clique_size, replace=False).reshape(cliques, clique_size)
    new = [(a, b) for group in chosen for a in group for b in group if a < b]
    edges = np.concatenate([edge_index, np.array(new, np.int64).T], axis=1)
    return edges, chosen.ravel()


def inject_contextual(rng, x, count, candidates, exclude):
    """PyGOD's gen_contextual_outlier: each outlier takes the features of the farthest of
    ``candidates`` random nodes."""
    pool = np.setdiff1d(np.arange(x.shape[0]), exclude)
    outliers = rng.choice(pool, size=count, replace=False)
    out = x.copy()
    for node in outliers:
        picks = rng.choice(x.shape[0], size=candidates, replace=False)
        far = picks[np.argmax(np.linalg.norm(x[picks] - x[node], axis=1))]
        out[node] = x[far]
    return out, outliers


def injected_sample(seed):
    rng = np.random.default_rng(seed)
    x, edges = community_graph(rng)
    edges, structural = inject_structural(rng, edges, x.shape[0], cliques=2, clique_size=6)
    x, contextual = inject_contextual(rng, x, count=8, candidates=30, exclude=structural)
    target = np.zeros(x.shape[0], np.uint8)
    target[structural] = 1
    target[contextual] = 1
    sensitive = (rng.random(x.shape[0]) < 0.4).astype(np.int64)
    graph = Graph(x, edges, sensitive=sensitive)
    sample = Sample(key=f"injected/{seed}", dataset="synthetic", split="test", label=1, data=graph, target=target)
    return sample, structural, contextual


@pytest.fixture(scope="module")
def fitted():
    sample, structural, contextual = injected_sample(0)
    detector = Dominant(**PARAMS).fit([sample], seed=0)
    return detector, sample, structural, contextual


def test_injected_outliers_rank_above_normal_nodes(fitted):
    detector, sample, structural, contextual = fitted
    output = detector.score_samples([sample])[0]
    assert output.anomaly_map.shape == sample.target.shape
    assert auroc(sample.target, output.anomaly_map) > 0.85
    normal = np.flatnonzero(sample.target == 0)
    attribute, structure = output.extras["attribute_error"], output.extras["structure_error"]
    assert np.median(structure[structural]) > np.quantile(structure[normal], 0.9)
    assert np.median(attribute[contextual]) > np.quantile(attribute[normal], 0.9)
    assert output.score == pytest.approx(float(output.anomaly_map.max()))
    assert detector.loss_history_[-1] < detector.loss_history_[0]


def test_fitted_model_transfers_to_another_graph(fitted):
    detector = fitted[0]
    sample, _, _ = injected_sample(1)
    output = detector.score_samples([sample])[0]
    assert auroc(sample.target, output.anomaly_map) > 0.75


def test_fairness_report_on_fairgad_layout(tmp_path):
    built = build("fairgad", tmp_path)
    graph = anomalykit.load("fairgad", built.root, **built.options)[0]
    assert graph.label == 1  # holds anomalous nodes, and fit() accepts it
    detector = Dominant(threads=1, epochs=30, hidden_dim=16).fit([graph], seed=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a tiny graph may leave a group without true anomalies
        report = graph_report(detector, graph, contamination=0.1)
    output = detector.score_samples([graph])[0]
    assert report.auroc == pytest.approx(auroc(graph.target, output.anomaly_map))
    assert 0.0 <= report.statistical_parity <= 1.0 and 0.0 <= report.auprc <= 1.0
    predictions = predictions_at_contamination(output.anomaly_map, graph.meta["contamination"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        own = graph_report(detector, graph)  # the graph's own contamination, as FairGAD thresholds
    assert own.statistical_parity == pytest.approx(statistical_parity_difference(predictions, graph.data.sensitive))


def test_same_seed_same_scores_other_seed_differs(fitted):
    sample = fitted[1]
    params = {"epochs": 10, "hidden_dim": 8, "threads": 1}
    first = Dominant(**params).fit([sample], seed=5).score_samples([sample])[0].anomaly_map
    again = Dominant(**params).fit([sample], seed=5).score_samples([sample])[0].anomaly_map
    other = Dominant(**params).fit([sample], seed=6).score_samples([sample])[0].anomaly_map
    np.testing.assert_array_equal(first, again)
    assert not np.allclose(first, other)


def test_save_load_round_trip(fitted, tmp_path):
    detector, sample = fitted[0], fitted[1]
    reloaded = Detector.load(detector.save(tmp_path / "dominant"))
    assert isinstance(reloaded, Dominant)
    np.testing.assert_allclose(reloaded.score_samples([sample])[0].anomaly_map,
                               detector.score_samples([sample])[0].anomaly_map, rtol=1e-6)


def test_mean_reduction_and_standardize():
    sample, _, _ = injected_sample(2)
    detector = Dominant(threads=1, epochs=5, hidden_dim=8, reduction="mean", standardize=True).fit([sample], seed=0)
    output = detector.score_samples([sample])[0]
    assert output.score == pytest.approx(float(output.anomaly_map.mean()), rel=1e-5)


def test_normalized_adjacency_is_symmetric_with_unit_self_loop_on_isolated_node():
    adjacency = normalized_adjacency(np.array([[0, 1], [1, 2]]), 4).to_dense().numpy()
    np.testing.assert_allclose(adjacency, adjacency.T)
    assert adjacency[3, 3] == pytest.approx(1.0)
    assert adjacency[0, 1] == pytest.approx(1 / np.sqrt(2 * 3))


def test_large_graph_is_refused_with_the_cap_named():
    rng = np.random.default_rng(0)
    graph = Graph(rng.normal(size=(50, 3)).astype(np.float32), np.array([[0, 1], [1, 2]]))
    sample = Sample(key="big", dataset="demo", split="test", label=0, data=graph)
    with pytest.raises(ConfigError, match="max_nodes=40"):
        Dominant(threads=1, max_nodes=40, epochs=1).fit([sample], seed=0)
    Dominant(threads=1, max_nodes=50, epochs=1).fit([sample], seed=0)  # raising the cap lets it through
    with pytest.raises(ConfigError, match="alpha"):
        Dominant(alpha=1.5)
    fitted = Dominant(threads=1, epochs=1).fit([sample], seed=0)
    narrow = Sample(key="narrow", dataset="demo", split="test", label=0,
                    data=Graph(np.zeros((5, 2), np.float32), np.array([[0], [1]])))
    with pytest.raises(ConfigError, match="narrow"):
        fitted.score_samples([narrow])
