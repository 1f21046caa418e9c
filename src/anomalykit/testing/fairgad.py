"""FairGAD layout: ``reddit.pt`` and ``twitter.pt``, each a torch_geometric ``Data`` saved with
``torch.save``.

The files are written without torch_geometric: small writer-side classes are pickled under the
names torch_geometric uses (``torch_geometric.data.data.Data`` holding ``_edge_attr_cls``,
``_tensor_attr_cls`` and a ``torch_geometric.data.storage.GlobalStorage`` whose ``_mapping`` holds
the attributes and whose ``_parent`` points back at the ``Data``), so the pickle has the same
records as a file saved by torch_geometric 2.x.
"""

from __future__ import annotations

import pickle
import types
from pathlib import Path
from typing import Any

import numpy as np

from . import Built, register_builder

DEFAULT_GRAPHS: dict[str, dict[str, Any]] = {
    "reddit": {"nodes": 60, "features": 8, "edges": 150, "anomaly_share": 0.14, "sensitive_share": 0.3, "directed": False},
    "twitter": {"nodes": 80, "features": 6, "edges": 200, "anomaly_share": 0.08, "sensitive_share": 0.25, "directed": True},
}


class DataTensorAttr:
    """Writer-side stand-in, pickled as ``torch_geometric.data.data.DataTensorAttr``."""


class DataEdgeAttr:
    """Writer-side stand-in, pickled as ``torch_geometric.data.data.DataEdgeAttr``."""


class GlobalStorage:
    """Writer-side stand-in, pickled as ``torch_geometric.data.storage.GlobalStorage``."""

    def __init__(self, parent: Any, mapping: dict[str, Any]) -> None:
        self._mapping = dict(mapping)
        self._parent = parent


class Data:
    """Writer-side stand-in, pickled as ``torch_geometric.data.data.Data``."""

    def __init__(self, **attributes: Any) -> None:
        self._edge_attr_cls = DataEdgeAttr
        self._tensor_attr_cls = DataTensorAttr
        self._store = GlobalStorage(self, attributes)


_PICKLED_AS = {
    Data: ("torch_geometric.data.data", "Data"),
    DataTensorAttr: ("torch_geometric.data.data", "DataTensorAttr"),
    DataEdgeAttr: ("torch_geometric.data.data", "DataEdgeAttr"),
    GlobalStorage: ("torch_geometric.data.storage", "GlobalStorage"),
}


class _PygNamePickler(pickle._Pickler):  # type: ignore[name-defined]
    """A pickler that writes the stand-ins above under torch_geometric's class names."""

    def save_global(self, obj: Any, name: str | None = None) -> None:
        target = _PICKLED_AS.get(obj)
        if target is None:
            super().save_global(obj, name)
            return
        module, qualname = target
        self.write(pickle.GLOBAL + f"{module}\n{qualname}\n".encode("ascii"))
        self.memoize(obj)


_PICKLE_MODULE = types.ModuleType("anomalykit_pyg_pickle")
_PICKLE_MODULE.Pickler = _PygNamePickler  # type: ignore[attr-defined]


def save_pyg_data(path: str | Path, **attributes: Any) -> None:
    """``torch.save`` a torch_geometric-style ``Data`` holding ``attributes`` at ``path``."""
    import torch

    torch.save(Data(**attributes), path, pickle_module=_PICKLE_MODULE, pickle_protocol=2)


def random_graph(
    rng: np.random.Generator,
    nodes: int,
    features: int,
    edges: int,
    anomaly_share: float,
    sensitive_share: float,
    directed: bool,
) -> dict[str, Any]:
    """Tensors of a small attributed graph with FairGAD's attribute names.

    Anomalies and the sensitive attribute are both present in each group when ``nodes`` allows
    it, so fairness measures are defined. Undirected graphs store both directions of each edge.
    """
    import torch

    sensitive = np.zeros(nodes, np.int64)
    sensitive[rng.permutation(nodes)[: max(2, int(round(sensitive_share * nodes)))]] = 1
    y = np.zeros(nodes, np.int64)
    n_anomalies = max(2, int(round(anomaly_share * nodes)))
    picks = [rng.choice(np.flatnonzero(sensitive == g)) for g in (0, 1)]
    rest = rng.permutation(np.setdiff1d(np.arange(nodes), picks))[: n_anomalies - 2]
    y[np.concatenate([picks, rest]).astype(np.int64)] = 1
    x = rng.normal(size=(nodes, features)).astype(np.float32)
    x[y == 1] += 1.5
    src = rng.integers(0, nodes, size=edges)
    dst = (src + rng.integers(1, nodes, size=edges)) % nodes
    pairs = np.unique(np.stack([src, dst], axis=1), axis=0)
    if not directed:
        pairs = np.unique(np.concatenate([pairs, pairs[:, ::-1]]), axis=0)
    return {
        "x": torch.from_numpy(x),
        "edge_index": torch.from_numpy(np.ascontiguousarray(pairs.T.astype(np.int64))),
        "y": torch.from_numpy(y),
        "sensitive": torch.from_numpy(sensitive),
        "contamination": float(y.mean()),
    }


@register_builder("fairgad")
def build_fairgad(root: Path, graphs: dict[str, dict[str, Any]] | None = None, seed: int = 0) -> Built:
    """Write tiny ``reddit.pt`` and ``twitter.pt`` files (sizes in ``graphs``)."""
    rng = np.random.default_rng(seed)
    graphs = DEFAULT_GRAPHS if graphs is None else graphs
    expected: dict[str, Any] = {"total": len(graphs), "graphs": {}}
    for name, spec in graphs.items():
        tensors = random_graph(rng, **spec)
        save_pyg_data(Path(root) / f"{name}.pt", **tensors)
        expected["graphs"][name] = {
            "nodes": spec["nodes"],
            "edges": int(tensors["edge_index"].shape[1]),
            "anomalies": int(tensors["y"].sum()),
        }
    return Built(Path(root), {}, expected)
