"""Anomaly-ShapeNet (PCD variant): synthetic point clouds of 40 (v1) or 50 (v2) shape classes.

Layout::

    <root>/<class>/train/<class>_template<k>.pcd
    <root>/<class>/test/<class>_<type><j>.pcd      type: positive (normal), bulge, concavity, ...
    <root>/<class>/GT/<class>_<type><j>.txt        x,y,z,label (comma-separated; folder upper-case)

v2 keeps its ten newer classes one folder down (``<root>/new/<class>/...``); those are found too.
Class names carry a trailing digit (``ashtray0``, ``vase9``). The anomaly type is parsed from the
file name (``<class>_<letters><digits>``), not taken from a fixed list: the README names bulge,
concavity, crack, hole and broken, but the file tokens beyond ``bulge``/``concavity`` are not
documented. Normal test samples are called ``positive``.

As in Real3D-AD, anomalous samples take their points from the ground-truth list, whose point
count is checked against the PCD header. Only the PCD variant is read (the OBJ meshes are not).

>>> ds = anomalykit.load("anomaly_shapenet", "/data/Anomaly-ShapeNet/pcd")   # doctest: +SKIP
>>> sorted(set(ds.manifest.column("defect").to_pylist()) - {None})            # doctest: +SKIP
['bulge', 'concavity', 'crack', 'hole', 'broken']
"""

from __future__ import annotations

import re
from typing import Any

from .base import register_dataset
from .real3d_ad import PointCloudADLoader

CATEGORIES_V1 = (
    "ashtray0", "bag0", "bottle0", "bottle1", "bottle3", "bowl0", "bowl1", "bowl2", "bowl3", "bowl4",
    "bowl5", "bucket0", "bucket1", "cap0", "cap3", "cap4", "cap5", "cup0", "cup1", "eraser0",
    "headset0", "headset1", "helmet0", "helmet1", "helmet2", "helmet3", "jar0", "microphone0",
    "shelf0", "tap0", "tap1", "vase0", "vase1", "vase2", "vase3", "vase4", "vase5", "vase7",
    "vase8", "vase9",
)
NORMAL_TYPES = ("positive", "good")

_TEST_NAME = re.compile(r"^(?P<cls>.+?)_(?P<type>[A-Za-z]+)[_-]?(?P<index>\d*)$")


@register_dataset("anomaly_shapenet")
class AnomalyShapeNet(PointCloudADLoader):
    """Loader of Anomaly-ShapeNet's PCD variant (root: the ``pcd`` folder, or one above it).

    Options: ``category`` (a class name such as ``"ashtray0"``, a list, or ``"all"``),
    ``split`` (``"train"``, ``"test"`` or None), ``normalize`` (centre each cloud on its mean).
    """

    options = {"category": "all", "split": None, "normalize": False}
    include_variants = True
    known_categories = CATEGORIES_V1
    closed_category_list = False  # the names of v2's ten newer classes are not documented
    gt_dirnames = ("GT", "gt")
    gt_delimiter = ","
    root_candidates = ("pcd", "Anomaly-ShapeNet-v2/pcd", "dataset/pcd")

    def parse_test_name(self, stem: str) -> dict[str, Any] | None:
        match = _TEST_NAME.match(stem)
        if match is None:
            return None
        kind = match["type"].lower()
        normal = kind in NORMAL_TYPES
        return {
            "normal": normal,
            "defect": None if normal else kind,
            "scan_id": match["index"] or None,
            "variant": None,
        }

    def train_scan_id(self, stem: str) -> str:
        match = re.search(r"(\d+)$", stem)
        return match.group(1) if match else stem
