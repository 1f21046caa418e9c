"""DOMINANT (Ding et al., SDM 2019): a graph autoencoder that scores nodes by reconstruction error.

A GCN encoder (symmetric-normalised adjacency with self-loops, sparse matmul) embeds the nodes;
an attribute decoder (GCN) reconstructs the node features X and a structure decoder (GCN then an
inner product ``Z Zᵀ``, with the paper's sigmoid as an option) reconstructs the adjacency A.
Per node,

    score_i = alpha * ||x_i - x̂_i||₂ + (1 - alpha) * ||a_i - â_i||₂

and the training loss is the mean of these scores, as in PyGOD's ``DOMINANT``
(``num_layers`` split into ``num_layers // 2`` encoder layers and the rest for the decoders).
Plain torch: no torch_geometric needed.

Graph anomaly detection is transductive and unsupervised: the "training samples" are graphs,
and the usual protocol fits on a graph and scores that graph's nodes. ``fit`` therefore accepts
graphs whose sample label is 1 (``trains_on_any_sample = True`` only lifts the normal-only check of
``Detector.fit``; node labels in ``target`` are never read). Each ``DetectorOutput`` holds the
per-node scores (N,) aligned with the graph's target; the sample score is their max or mean.

The structure decoder is dense (N x N), which is why DOMINANT does not scale (PyGOD #118):
graphs above ``max_nodes`` are refused with an error giving the memory needed; raise
``max_nodes`` when the machine has it (training holds about ``6 * 4 * N**2`` bytes).

>>> import anomalykit                                                     # doctest: +SKIP
>>> graph = anomalykit.load("fairgad", "/data/FairGAD", graph="reddit")[0]   # doctest: +SKIP
>>> detector = anomalykit.get_baseline("dominant").fit([graph], seed=0)      # doctest: +SKIP
>>> graph_report(detector, graph, contamination=0.14)                         # doctest: +SKIP
FairGADReport(auroc=..., auprc=..., statistical_parity=..., equality_of_odds=...)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from ..errors import ConfigError
from ..metrics.fairness import FairGADReport, fairgad_report
from ..schema import Graph, Modality, Sample
from ._windows import torch_session
from .base import Detector, DetectorConfig, DetectorOutput, param, register_baseline

__all__ = ["Dominant", "DominantConfig", "graph_report", "normalized_adjacency"]

#: float32 N x N matrices alive while training (adjacency, logits, reconstruction, error, grads)
_DENSE_COPIES = 6


@dataclass
class DominantConfig(DetectorConfig):
    hidden_dim: int = param(64, low=1, high=4096, doc="width of every GCN layer")
    num_layers: int = param(4, low=2, high=16, doc="GCN layers: num_layers // 2 encode, the rest decode")
    dropout: float = param(0.0, low=0.0, high=0.9)
    alpha: float = param(0.5, low=0.0, high=1.0, doc="weight of the attribute error (1 - alpha: structure)")
    epochs: int = param(100, low=1, high=100_000)
    learning_rate: float = param(0.004, low=1e-6, high=1.0)
    weight_decay: float = param(0.0, low=0.0, high=1.0)
    sigmoid_structure: bool = param(False, choices=(True, False),
                                    doc="sigmoid on Z Zᵀ as in the paper; off (PyGOD 1.x's default) the structure "
                                        "part trains far better, since the sigmoid saturates near 0.5")
    undirected: bool = param(True, choices=(True, False), doc="treat every edge as undirected")
    standardize: bool = param(False, choices=(True, False), doc="z-score node features with training statistics")
    reduction: str = param("max", choices=("max", "mean"), doc="graph score from the node scores")
    max_nodes: int = param(10_000, low=2, doc="largest graph accepted (the structure decoder is dense)")
    threads: int = param(0, low=0, high=1024, doc="torch CPU threads while fitting and scoring (0 = torch's "
                         "setting; 1 is fastest for tiny problems)")


def normalized_adjacency(edge_index: np.ndarray, num_nodes: int, undirected: bool = True) -> torch.Tensor:
    """``D^-1/2 (A + I) D^-1/2`` as a sparse COO tensor (duplicate edges count once)."""
    src, dst = np.asarray(edge_index, dtype=np.int64)
    if undirected:
        src, dst = np.concatenate([src, dst]), np.concatenate([dst, src])
    loops = np.arange(num_nodes, dtype=np.int64)
    pairs = np.unique(np.stack([np.concatenate([dst, loops]), np.concatenate([src, loops])], axis=1), axis=0)
    rows, cols = pairs[:, 0], pairs[:, 1]
    degree = np.bincount(rows, minlength=num_nodes).astype(np.float64)
    values = 1.0 / np.sqrt(degree[rows] * degree[cols])
    return torch.sparse_coo_tensor(np.stack([rows, cols]), values.astype(np.float32), (num_nodes, num_nodes),
                                   check_invariants=False).coalesce()


def _dense_adjacency(edge_index: np.ndarray, num_nodes: int, undirected: bool) -> torch.Tensor:
    adjacency = torch.zeros(num_nodes, num_nodes)
    src, dst = torch.from_numpy(np.asarray(edge_index, dtype=np.int64))
    adjacency[src, dst] = 1.0
    if undirected:
        adjacency[dst, src] = 1.0
    return adjacency


class _GCN(nn.Module):
    """Graph convolutions ``Â X W + b``; ReLU (and dropout) after every layer but the last,
    unless ``activate_last``."""

    def __init__(self, dims: Sequence[int], dropout: float, activate_last: bool) -> None:
        super().__init__()
        self.linears = nn.ModuleList(nn.Linear(a, b, bias=False) for a, b in zip(dims, dims[1:]))
        self.biases = nn.ParameterList(nn.Parameter(torch.zeros(b)) for b in dims[1:])
        self.dropout = dropout
        self.activate_last = activate_last

    def forward(self, x: torch.Tensor, adjacency: torch.Tensor) -> torch.Tensor:
        last = len(self.linears) - 1
        for index, (linear, bias) in enumerate(zip(self.linears, self.biases)):
            x = torch.sparse.mm(adjacency, linear(x)) + bias
            if index < last or self.activate_last:
                x = nn.functional.dropout(torch.relu(x), self.dropout, self.training)
        return x


class _DominantNet(nn.Module):
    def __init__(self, in_dim: int, config: DominantConfig) -> None:
        super().__init__()
        encoder_layers = config.num_layers // 2
        decoder_layers = config.num_layers - encoder_layers
        hidden = config.hidden_dim
        # as PyGOD's GCN stacks: an activation between layers, none after the last, so that the
        # structure logits Z Zᵀ can be negative
        self.encoder = _GCN([in_dim] + [hidden] * encoder_layers, config.dropout, activate_last=False)
        self.attribute_decoder = _GCN([hidden] * decoder_layers + [in_dim], config.dropout, activate_last=False)
        self.structure_decoder = _GCN([hidden] * decoder_layers, config.dropout, activate_last=False)
        self.sigmoid = config.sigmoid_structure

    def forward(self, x: torch.Tensor, adjacency: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        embedding = self.encoder(x, adjacency)
        return self.attribute_decoder(embedding, adjacency), self.structure_decoder(embedding, adjacency)

    def structure(self, z: torch.Tensor, rows: slice = slice(None)) -> torch.Tensor:
        logits = z[rows] @ z.T
        return torch.sigmoid(logits) if self.sigmoid else logits


@register_baseline("dominant")
class Dominant(Detector):
    """DOMINANT graph autoencoder; per-node reconstruction-error scores."""

    version = "1"
    modality = Modality.GRAPH
    config_class = DominantConfig
    config: DominantConfig
    #: fit() takes graphs holding anomalous nodes: training is unsupervised, node labels unused
    trains_on_any_sample = True

    # -- helpers -------------------------------------------------------------------------------
    def _graph(self, sample: Sample) -> Graph:
        graph = sample.data
        assert isinstance(graph, Graph)
        n = graph.num_nodes
        if n > self.config.max_nodes:
            need = _DENSE_COPIES * 4 * n * n / 2**30
            raise ConfigError(
                f"dominant: {sample.key} has {n} nodes, above max_nodes={self.config.max_nodes}; DOMINANT "
                f"reconstructs the dense {n} x {n} adjacency (about {need:.1f} GiB while training). Raise "
                f"max_nodes if the machine has the memory, or use a sparse graph detector")
        if n < 2:
            raise ConfigError(f"dominant: {sample.key} has {n} node(s); at least 2 are needed")
        return graph

    def _features(self, graph: Graph, key: str) -> torch.Tensor:
        if graph.x.shape[1] != self.in_dim_:
            raise ConfigError(f"dominant: {key} has {graph.x.shape[1]} node features, the model was fitted on "
                              f"{self.in_dim_}")
        x = graph.x.astype(np.float32)
        if self.config.standardize:
            x = (x - self.feature_mean_) / self.feature_std_
        if not np.isfinite(x).all():
            raise ConfigError(f"dominant: {key} has non-finite node features")
        return torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))

    def _build(self, in_dim: int) -> None:
        self.in_dim_ = int(in_dim)
        self.net_ = _DominantNet(self.in_dim_, self.config)

    def _node_errors(self, x: torch.Tensor, graph: Graph, block: int = 2048) -> tuple[np.ndarray, np.ndarray]:
        """Per-node attribute and structure errors, the structure rows computed in blocks."""
        adjacency = normalized_adjacency(graph.edge_index, graph.num_nodes, self.config.undirected)
        self.net_.eval()
        with torch.no_grad(), torch_session(self.config.threads):
            x_hat, z = self.net_(x, adjacency)
            attribute = torch.linalg.vector_norm(x - x_hat, dim=1)
            structure = torch.empty(graph.num_nodes)
            src, dst = graph.edge_index
            for start in range(0, graph.num_nodes, block):
                stop = min(start + block, graph.num_nodes)
                rows = torch.zeros(stop - start, graph.num_nodes)
                keep = (src >= start) & (src < stop)
                rows[torch.from_numpy(src[keep] - start), torch.from_numpy(dst[keep])] = 1.0
                if self.config.undirected:
                    back = (dst >= start) & (dst < stop)
                    rows[torch.from_numpy(dst[back] - start), torch.from_numpy(src[back])] = 1.0
                structure[start:stop] = torch.linalg.vector_norm(rows - self.net_.structure(z, slice(start, stop)), dim=1)
        return attribute.numpy().astype(np.float64), structure.numpy().astype(np.float64)

    # -- Detector API --------------------------------------------------------------------------
    def _fit(self, samples: Sequence[Sample], rng: np.random.Generator, progress: bool) -> None:
        from rich.progress import track

        graphs = [self._graph(s) for s in samples]
        widths = {g.x.shape[1] for g in graphs}
        if len(widths) != 1:
            raise ConfigError(f"dominant: training graphs have different feature widths {sorted(widths)}")
        stacked = np.concatenate([g.x for g in graphs]).astype(np.float64)
        self.feature_mean_ = stacked.mean(axis=0).astype(np.float32)
        self.feature_std_ = np.where(stacked.std(axis=0) > 0, stacked.std(axis=0), 1.0).astype(np.float32)
        self.in_dim_ = int(widths.pop())
        cfg = self.config
        with torch.random.fork_rng(devices=[]), torch_session(cfg.threads):
            torch.manual_seed(int(rng.integers(2**63 - 1)))
            self._build(self.in_dim_)  # initialised under the fitted seed
            inputs = [(self._features(g, s.key), normalized_adjacency(g.edge_index, g.num_nodes, cfg.undirected),
                       _dense_adjacency(g.edge_index, g.num_nodes, cfg.undirected)) for g, s in zip(graphs, samples)]
            optimizer = torch.optim.Adam(self.net_.parameters(), lr=cfg.learning_rate, weight_decay=cfg.weight_decay)
            self.net_.train()
            self.loss_history_ = np.zeros(cfg.epochs, np.float64)
            for epoch in track(range(cfg.epochs), description="dominant: training", disable=not progress):
                total = 0.0
                for x, adjacency, dense in inputs:
                    optimizer.zero_grad()
                    x_hat, z = self.net_(x, adjacency)
                    attribute = torch.linalg.vector_norm(x - x_hat, dim=1)
                    structure = torch.linalg.vector_norm(dense - self.net_.structure(z), dim=1)
                    loss = torch.mean(cfg.alpha * attribute + (1.0 - cfg.alpha) * structure)
                    loss.backward()
                    optimizer.step()
                    total += float(loss.detach())
                self.loss_history_[epoch] = total / len(inputs)
        self.net_.eval()

    def _score(self, samples: Sequence[Sample]) -> list[DetectorOutput]:
        outputs = []
        for sample in samples:
            graph = self._graph(sample)
            attribute, structure = self._node_errors(self._features(graph, sample.key), graph)
            node_scores = self.config.alpha * attribute + (1.0 - self.config.alpha) * structure
            score = float(node_scores.max() if self.config.reduction == "max" else node_scores.mean())
            outputs.append(DetectorOutput(sample.key, score, node_scores.astype(np.float32),
                                          {"attribute_error": attribute, "structure_error": structure}))
        return outputs

    def state_dict(self) -> dict[str, np.ndarray]:
        state = {f"net.{k}": v.detach().cpu().numpy() for k, v in self.net_.state_dict().items()}
        state["feature_mean"] = self.feature_mean_
        state["feature_std"] = self.feature_std_
        return state

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        self.feature_mean_ = np.asarray(state["feature_mean"], np.float32)
        self.feature_std_ = np.asarray(state["feature_std"], np.float32)
        self._build(self.feature_mean_.shape[0])
        weights = {k[len("net."):]: torch.from_numpy(np.array(v)) for k, v in state.items() if k.startswith("net.")}
        self.net_.load_state_dict(weights)
        self.net_.eval()

    @classmethod
    def example(cls) -> tuple[dict[str, Any], list[Sample], list[Sample]]:
        rng = np.random.default_rng(0)
        train = [_example_graph(rng, "example/train", anomalous=True)]
        test = [_example_graph(rng, "example/test_anomalous", anomalous=True),
                _example_graph(rng, "example/test_normal", anomalous=False)]
        return {"epochs": 20, "hidden_dim": 16, "threads": 1}, train, test


def _example_graph(rng: np.random.Generator, key: str, anomalous: bool) -> Sample:
    from ..testing.fairgad import random_graph

    tensors = random_graph(rng, nodes=60, features=8, edges=150, anomaly_share=0.1, sensitive_share=0.3,
                           directed=False)
    y = tensors["y"].numpy().astype(np.uint8)
    x = tensors["x"].numpy()
    if not anomalous:
        x = rng.normal(size=x.shape).astype(np.float32)
        y = np.zeros_like(y)
    graph = Graph(x, tensors["edge_index"].numpy(), sensitive=tensors["sensitive"].numpy())
    return Sample(key=key, dataset="example", split="test", label=int(y.any()), data=graph, target=y)


def graph_report(detector: Detector, sample: Sample, contamination: float | None = None) -> FairGADReport:
    """AUROC and AUPRC over the nodes of ``sample`` and the FairGAD fairness gaps (ΔSP, ΔEO) of
    the node predictions at ``contamination``, from the detector's per-node map.

    ``contamination`` defaults to the graph's own (``sample.meta["contamination"]``, which the
    ``fairgad`` loader sets from the file, as the FairGAD benchmark does), else the detector's."""
    graph = sample.data
    if not isinstance(graph, Graph) or graph.sensitive is None or sample.target is None:
        raise ConfigError(f"graph_report: {sample.key} needs a Graph with a sensitive attribute and node targets")
    output = detector.score_samples([sample])[0]
    if output.anomaly_map is None:
        raise ConfigError(f"graph_report: {detector.name} gives no per-node scores")
    share = contamination
    if share is None:
        share = float(sample.meta.get("contamination") or detector.config.contamination)
    return fairgad_report(np.asarray(sample.target) > 0, output.anomaly_map, graph.sensitive, contamination=share)
