"""FairGAD: two social graphs (Reddit, Twitter) with misinformation-spreader labels and a
sensitive attribute (political leaning), for fair graph anomaly detection.

Files: ``<root>/reddit.pt`` and ``<root>/twitter.pt`` (the reference driver also uses the
names ``fairgad_reddit.pt`` / ``fairgad_twitter.pt``; a ``data/`` folder below the root is
searched too). Each holds one PyTorch Geometric ``Data`` saved with ``torch.save``, with the
attributes ``x`` (N x F node features), ``edge_index`` (2 x E), ``y`` (N, 1 = misinformation
spreader), ``sensitive`` (N, 1 = right-leaning, 0 = left-leaning) and ``contamination`` (the
anomaly share passed to the detectors).

The files are read without torch_geometric and without running pickled code: ``torch.load``
with ``weights_only=True``, where the four PyG class names a ``Data`` pickle refers to are
allow-listed as inert stand-ins that only record the pickled state. Any other class or function
in the file is refused, and the load fails with an error naming the file.

Each graph is one ``Sample`` with a ``Graph`` payload (``x``, ``edge_index``, ``sensitive``);
the target holds one label per node. The sample's ``label`` is 1 when the graph holds any
anomalous node. The task is unsupervised on the whole graph, so the split is ``test``.

.. warning::
   ``pygod.utils.load_data("reddit")`` is a *different* graph (PyGOD's Reddit: 10,984 nodes,
   168,016 edges, 64 features, no sensitive attribute), not FairGAD's Reddit (9,892 nodes,
   1,211,748 edges). Loading PyGOD's file here fails (it has no ``sensitive``) or, when it
   carries one, warns once.

>>> ds = anomalykit.load("fairgad", "/data/FairGAD", graph="reddit")   # doctest: +SKIP
>>> g = ds[0]                                                            # doctest: +SKIP
>>> g.data.x.shape, g.data.sensitive.mean(), g.target.mean()           # doctest: +SKIP
((9892, 386), 0.13, 0.14)
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from ..errors import ConfigError, MalformedFileError
from ..schema import Graph, Modality, Sample
from .base import DatasetLoader, VerifyReport, manifest_from_rows, register_dataset

GRAPHS = ("reddit", "twitter")
REQUIRED_ATTRIBUTES = ("x", "edge_index", "y", "sensitive")
#: (nodes, edges) of PyGOD's unrelated "reddit" graph, used to warn about the mix-up
PYGOD_REDDIT_SHAPE = (10984, 168016)
DIRECTED = {"reddit": False, "twitter": True}

_pygod_warning_shown = False


# --------------------------------------------------------------------------------------------
# inert stand-ins for the PyG classes named in a pickled ``Data``


class _PickledRecord:
    """Stands in for an allow-listed PyG class: keeps the pickled state, runs no code."""

    pickled_name: ClassVar[str] = ""

    def __setstate__(self, state: Any) -> None:
        object.__setattr__(self, "_pickled_state", state)

    @property
    def state(self) -> Any:
        return self.__dict__.get("_pickled_state")


class _DataRecord(_PickledRecord):
    pickled_name = "torch_geometric.data.data.Data"


class _GlobalStorageRecord(_PickledRecord):
    pickled_name = "torch_geometric.data.storage.GlobalStorage"


class _DataEdgeAttrRecord(_PickledRecord):
    pickled_name = "torch_geometric.data.data.DataEdgeAttr"


class _DataTensorAttrRecord(_PickledRecord):
    pickled_name = "torch_geometric.data.data.DataTensorAttr"


#: exactly the classes a ``torch_geometric`` ``Data`` pickle refers to, by their pickled names
PYG_STAND_INS: tuple[type[_PickledRecord], ...] = (
    _DataRecord, _GlobalStorageRecord, _DataEdgeAttrRecord, _DataTensorAttrRecord,
)


def load_pyg_data(path: str | Path, *, mmap: bool = False) -> dict[str, Any]:
    """The attributes of a ``torch_geometric`` ``Data`` saved at ``path``, as a dict.

    Reads with ``torch.load(weights_only=True)``; the PyG class names are allow-listed as
    inert records, so neither torch_geometric nor any pickled callable is ever run. Also accepts
    a plain dict of tensors. Raises ``MalformedFileError`` naming the file for anything else.
    """
    import pickle

    import torch

    path = Path(path)
    allow = [(record, record.pickled_name) for record in PYG_STAND_INS]
    try:
        with torch.serialization.safe_globals(allow):
            try:
                obj = torch.load(path, map_location="cpu", weights_only=True, mmap=mmap)
            except RuntimeError as exc:
                if not mmap or "mmap" not in str(exc):
                    raise
                obj = torch.load(path, map_location="cpu", weights_only=True)  # legacy (non-zip) file
    except pickle.UnpicklingError as exc:
        text = str(exc)
        found = re.search(r"GLOBAL ([\w.]+)", text)
        detail = f"it refers to {found.group(1)}" if found else text.strip().splitlines()[-1][:200]
        raise MalformedFileError(
            path, f"holds objects other than a graph's tensors, refused without running them ({detail})"
        ) from None
    except Exception as exc:  # noqa: BLE001 - corrupt zip, truncated file, ...: all mean malformed
        raise MalformedFileError(path, f"not a readable torch file ({type(exc).__name__}: {str(exc)[:300]})") from None
    return _attributes(obj, path)


def _attributes(obj: Any, path: Path) -> dict[str, Any]:
    if isinstance(obj, _DataRecord):
        state = obj.state
        if isinstance(state, tuple) and len(state) == 2 and isinstance(state[0], dict):
            state = state[0]
        if not isinstance(state, dict):
            raise MalformedFileError(path, "the pickled Data object carries no attributes")
        store = state.get("_store")
        if store is None:  # torch_geometric 1.x kept the attributes on the object itself
            return {k: v for k, v in state.items() if not k.startswith("_")}
        if not isinstance(store, _GlobalStorageRecord) or not isinstance(store.state, dict):
            raise MalformedFileError(path, f"the Data object's store is a {type(store).__name__}, not a GlobalStorage")
        mapping = store.state.get("_mapping")
        if not isinstance(mapping, dict):
            raise MalformedFileError(path, "the Data object's store holds no attribute mapping")
        return dict(mapping)
    if isinstance(obj, dict) and all(isinstance(k, str) for k in obj):
        return dict(obj)
    raise MalformedFileError(
        path, f"holds a {type(obj).__name__}, not a graph (a torch_geometric Data or a dict of tensors)"
    )


# --------------------------------------------------------------------------------------------
# validation


def _tensor(attributes: dict[str, Any], name: str, path: Path) -> np.ndarray:
    import torch

    value = attributes.get(name)
    if value is None:
        hint = ""
        if name == "sensitive":
            hint = (" (FairGAD graphs store the political leaning as 'sensitive'; PyGOD's 'reddit' graph, "
                    "a different dataset, has none)")
        raise MalformedFileError(path, f"has no '{name}' attribute{hint}; found {', '.join(sorted(attributes)) or 'none'}")
    if not isinstance(value, torch.Tensor):
        raise MalformedFileError(path, f"'{name}' is a {type(value).__name__}, expected a tensor")
    if value.layout != torch.strided:
        raise MalformedFileError(path, f"'{name}' is a {value.layout} tensor, expected a dense tensor")
    return value.detach().numpy()


def _binary(values: np.ndarray, name: str, path: Path, n: int) -> np.ndarray:
    if values.ndim == 2 and values.shape[1] == 1:
        values = values[:, 0]
    if values.shape != (n,):
        raise MalformedFileError(path, f"'{name}' has shape {values.shape}, expected one value per node ({n},)")
    return values


def graph_arrays(attributes: dict[str, Any], path: Path) -> dict[str, Any]:
    """Check the attributes of a FairGAD graph and return them as arrays (and extras)."""
    import torch

    x = _tensor(attributes, "x", path)
    if x.ndim != 2 or not (np.issubdtype(x.dtype, np.number) or x.dtype == bool):
        raise MalformedFileError(path, f"'x' must be a numeric N x F tensor, got {x.dtype} of shape {x.shape}")
    n = x.shape[0]
    edges = _tensor(attributes, "edge_index", path)
    if edges.ndim != 2 or edges.shape[0] != 2 or not np.issubdtype(edges.dtype, np.integer):
        raise MalformedFileError(path, f"'edge_index' must be an integer 2 x E tensor, got {edges.dtype} of shape {edges.shape}")
    if edges.size and (edges.min() < 0 or edges.max() >= n):
        raise MalformedFileError(path, f"'edge_index' refers to node {int(edges.max())}, but 'x' has {n} nodes")
    y = _binary(_tensor(attributes, "y", path), "y", path, n)
    if not np.isin(y, (0, 1)).all():
        raise MalformedFileError(path, f"'y' must hold 0/1 labels, found {sorted(np.unique(y).tolist())[:5]}")
    sensitive = _binary(_tensor(attributes, "sensitive", path), "sensitive", path, n)
    if sensitive.dtype == bool:
        sensitive = sensitive.astype(np.int64)
    if not np.array_equal(sensitive, np.round(sensitive)):
        raise MalformedFileError(path, "'sensitive' must hold group ids (whole numbers)")
    contamination = attributes.get("contamination")
    if isinstance(contamination, torch.Tensor) and contamination.numel() == 1:
        contamination = float(contamination.item())
    if contamination is not None:
        if isinstance(contamination, bool) or not isinstance(contamination, (int, float)):
            raise MalformedFileError(path, f"'contamination' must be a number, got {type(contamination).__name__}")
        contamination = float(contamination)
        if not 0.0 < contamination <= 0.5:
            raise MalformedFileError(path, f"'contamination' must lie in (0, 0.5], got {contamination}")
    extras: list[str] = []
    for name, value in attributes.items():
        if name in (*REQUIRED_ATTRIBUTES, "contamination"):
            continue
        if value is None or isinstance(value, (torch.Tensor, int, float)) and not isinstance(value, bool):
            extras.append(name)
            continue
        raise MalformedFileError(path, f"attribute '{name}' is a {type(value).__name__}; only tensors and numbers are expected")
    return {
        "x": x,
        "edge_index": edges.astype(np.int64, copy=False),
        "y": y.astype(np.uint8),
        "sensitive": sensitive.astype(np.int64),
        "contamination": contamination,
        "extras": sorted(extras),
    }


def _warn_pygod_once(path: Path, nodes: int, edges: int) -> None:
    global _pygod_warning_shown
    if (nodes, edges) != PYGOD_REDDIT_SHAPE or _pygod_warning_shown:
        return
    _pygod_warning_shown = True
    warnings.warn(
        f"{path}: {nodes} nodes and {edges} edges is the size of PyGOD's 'reddit' graph, a different dataset "
        "from FairGAD's Reddit (9,892 nodes); its 'sensitive' values are not FairGAD's political leaning.",
        UserWarning,
        stacklevel=3,
    )


# --------------------------------------------------------------------------------------------
# the loader


@register_dataset("fairgad")
class FairGAD(DatasetLoader):
    """Loader of the FairGAD graphs (root: the folder holding ``reddit.pt`` / ``twitter.pt``).

    Options: ``graph`` (``"reddit"``, ``"twitter"``, a list, or ``"all"``: every graph found).
    Each sample is one whole graph; see the module docstring for the attributes and the
    warning about PyGOD's unrelated "reddit" graph.
    """

    modality = Modality.GRAPH
    options = {"graph": "all"}

    def __init__(self, root, *, strict: bool = True, **options: Any) -> None:
        self.skipped: list[tuple[str, str]] = []
        super().__init__(root, strict=strict, **options)

    def validate_options(self) -> None:
        wanted = self.as_list(self.graph) or []
        unknown = [g for g in wanted if g not in GRAPHS]
        if unknown:
            raise ConfigError(f"fairgad: graph must be one of {', '.join(GRAPHS)} or 'all', got {', '.join(unknown)}")
        if wanted:  # a name given twice must not give its graph twice
            self.graph = list(dict.fromkeys(wanted))

    def graph_file(self, graph: str) -> Path | None:
        for folder in (self.root, self.root / "data"):
            for name in (f"{graph}.pt", f"fairgad_{graph}.pt"):
                if (folder / name).is_file():
                    return folder / name
        return None

    def build_manifest(self):
        self.skipped = []
        wanted = self.as_list(self.graph)
        rows: list[dict[str, Any]] = []
        for graph in wanted or GRAPHS:
            path = self.graph_file(graph)
            if path is None:
                if wanted is not None:
                    raise self.not_found(self.root / f"{graph}.pt", f"graph file {graph}.pt")
                continue
            try:
                arrays = graph_arrays(load_pyg_data(path, mmap=True), path)
            except MalformedFileError as exc:
                if self.strict:
                    raise
                rel = path.relative_to(self.root).as_posix()
                self.skipped.append((rel, str(exc)))
                warnings.warn(f"fairgad: skipped {rel}: {exc}", stacklevel=2)
                continue
            label = int(arrays["y"].any())
            rows.append({
                "key": graph,
                "split": "test",
                "label": label,
                "category": graph,
                "defect": "misinformation_spreader" if label else None,
                "path": path.relative_to(self.root).as_posix(),
                "mask_path": None,
                "num_nodes": int(arrays["x"].shape[0]),
                "num_edges": int(arrays["edge_index"].shape[1]),
            })
        if not rows and not self.skipped:
            raise self.not_found(self.root / "reddit.pt", "FairGAD graph files (reddit.pt, twitter.pt)")
        import pyarrow as pa

        if not rows:
            base = manifest_from_rows([])
            return base.append_column("num_nodes", pa.array([], pa.int64())).append_column(
                "num_edges", pa.array([], pa.int64()))
        return manifest_from_rows(rows, {"num_nodes": pa.int64(), "num_edges": pa.int64()})

    def verify(self) -> VerifyReport:
        """Check that the graph files load and have the datasheet's node and edge counts.

        Whether Reddit's undirected edges are stored once or in both directions is not
        documented, so an edge count of E or 2 E matches.
        """
        report = VerifyReport(self.name, str(self.root))
        strict, self.strict = self.strict, False
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                manifest = self.build_manifest()
        finally:
            self.strict = strict
        report.malformed.extend(f"{rel}: {reason}" for rel, reason in self.skipped)
        expected = self.card().get("expected_counts", {}).get("graphs", {})
        found = {row["key"]: row for row in manifest.to_pylist()}
        for graph in self.as_list(self.graph) or GRAPHS:
            if graph not in found:
                if self.graph_file(graph) is None:  # a file that exists but does not load is malformed, above
                    report.missing.append(f"{graph}.pt")
                continue
            row, want = found[graph], expected.get(graph, {})
            report.counts[f"{graph}/nodes"] = row["num_nodes"]
            report.counts[f"{graph}/edges"] = row["num_edges"]
            if "nodes" in want and row["num_nodes"] != want["nodes"]:
                report.count_mismatches.append(f"{graph}: {row['num_nodes']} nodes, expected {want['nodes']}")
            if "edges" in want and row["num_edges"] not in (want["edges"], 2 * want["edges"]):
                report.count_mismatches.append(f"{graph}: {row['num_edges']} edges, expected {want['edges']}")
        return report

    def read(self, row: dict[str, Any]) -> Sample:
        path = self.root / row["path"]
        if not path.is_file():
            raise self.not_found(path, f"graph file of {row['key']}")
        arrays = graph_arrays(load_pyg_data(path), path)
        nodes, edges = arrays["x"].shape[0], arrays["edge_index"].shape[1]
        _warn_pygod_once(path, nodes, edges)
        meta = {
            "path": row["path"],
            "num_nodes": nodes,
            "num_edges": edges,
            "contamination": arrays["contamination"],
            "sensitive_attribute": "political_leaning",
            "sensitive_values": {"0": "left", "1": "right"},
            "directed": DIRECTED.get(row["key"]),
            "extra_attributes": arrays["extras"],
        }
        return Sample(
            key=row["key"],
            dataset=self.name,
            split=row["split"],
            label=int(arrays["y"].any()),
            data=Graph(arrays["x"], arrays["edge_index"], sensitive=arrays["sensitive"]),
            category=row["category"],
            defect="misinformation_spreader" if arrays["y"].any() else None,
            target=arrays["y"],
            meta=meta,
        )
