"""Patch-Gen, the 3D anomaly simulation of R3D-AD (Zhou, Wang et al., ECCV 2024).

A viewpoint V is drawn from the 26 points of the lattice {-2, 0, 2}³ without the origin; the
patch is the M points nearest to V (the cap of the surface facing it); each patch point moves
along the ray from V through it by ``sign · s · r``, where the r are M sorted uniforms assigned
by proximity rank (the point nearest V moves most). ``+s`` pushes points away from V (a dent),
``-s`` pulls them towards V (a bulge). Defaults follow the reference call site:
M ~ U(N/32, N/4), s ~ U(0, 0.2), random sign.

``units="object"`` (default) centres the lattice on the bounding-box centre and scales the
lattice and s by half the largest bounding-box extent, so the reference magnitudes apply to
objects of any size; ``units="raw"`` is the reference literally (origin-centred, raw units).
``profile="cosine"`` and ``direction="normal"`` are optional smooth variants.

>>> from anomalykit.generators import get_generator
>>> from anomalykit.generators.pointcloud._common import example_cloud
>>> out = get_generator("patchgen")(example_cloud(), seed=0)
>>> out.label, out.defect in ("bulge", "dent"), int(out.target.sum()) >= 2048 // 32
(1, True, True)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ...schema import Sample
from ..base import param, register_generator
from ._common import (PointCloudDefectConfig, PointCloudDefectGenerator, Workspace, check_range, cosine_falloff,
                      example_cloud, too_small)
from ._kernels import squared_distances

#: the 26 reference viewpoints: {-2, 0, 2}³ without the origin
VIEWPOINTS = np.array([(x, y, z) for x in (-2, 0, 2) for y in (-2, 0, 2) for z in (-2, 0, 2) if (x, y, z) != (0, 0, 0)],
                      dtype=np.float64)


@dataclass
class PatchGenConfig(PointCloudDefectConfig):
    patch_fraction_low: float = param(1 / 32, low=0.0, high=1.0, doc="smallest patch, as a fraction of the points")
    patch_fraction_high: float = param(1 / 4, low=0.0, high=1.0, doc="largest patch, as a fraction of the points")
    scale_low: float = param(0.0, low=0.0, doc="smallest displacement scale s")
    scale_high: float = param(0.2, low=0.0, doc="largest displacement scale s")
    sign: str = param("random", choices=("random", "bulge", "dent"))
    profile: str = param("sorted_uniform", choices=("sorted_uniform", "cosine"),
                         doc="sorted_uniform: the reference's sorted random magnitudes; cosine: a smooth cap")
    direction: str = param("ray", choices=("ray", "normal"),
                           doc="ray: along the viewpoint ray (reference); normal: along the surface normals")


def select_patch(points: np.ndarray, viewpoint: np.ndarray, size: int) -> np.ndarray:
    """Indices of the ``size`` points nearest to ``viewpoint``, nearest first (ties by index)."""
    distance = squared_distances(np.ascontiguousarray(points, dtype=np.float64), np.asarray(viewpoint, np.float64))
    nearest = np.sort(np.argpartition(distance, size - 1)[:size])
    return nearest[np.argsort(distance[nearest], kind="stable")]


@register_generator("patchgen")
class PatchGen(PointCloudDefectGenerator):
    """R3D-AD's Patch-Gen: a viewpoint-facing patch pushed in or pulled out along the view rays."""

    version = "1"
    config_class = PatchGenConfig
    config: PatchGenConfig

    def __init__(self, config: Any = None, **params: Any) -> None:
        super().__init__(config, **params)
        check_range(self.config, "patch_fraction_low", "patch_fraction_high")  # low <= high
        self.scale_range = check_range(self.config, "scale_low", "scale_high")

    def deform(self, work: Workspace, rng: np.random.Generator) -> str:
        cfg = self.config
        live = work.live
        n = len(live)
        smallest = int(n * cfg.patch_fraction_low)
        if smallest < 1:
            raise too_small(self.name, work.key, n, "patch_fraction_low", cfg.patch_fraction_low,
                            f"a patch of {n} x {cfg.patch_fraction_low:g} < 1 point")
        size = min(n, max(1, int(rng.uniform(smallest, int(n * cfg.patch_fraction_high)))))
        centre = np.zeros(3) if cfg.units == "raw" else work.bbox_center
        viewpoint = centre + work.bbox_half * VIEWPOINTS[rng.integers(len(VIEWPOINTS))]
        scale = self.scale_range.draw(rng) * work.bbox_half
        sign = {"bulge": -1.0, "dent": 1.0}.get(cfg.sign) or float(rng.choice((-1.0, 1.0)))
        patch = live[select_patch(work.points[live], viewpoint, size)]
        points = work.points[patch]
        if cfg.profile == "sorted_uniform":
            magnitude = np.sort(rng.random(size))[::-1]
        else:
            apex_distance = np.linalg.norm(points - points[0], axis=1)
            magnitude = cosine_falloff(apex_distance, max(float(apex_distance.max()), 1e-12) * (1 + 1e-9))
        if cfg.direction == "ray":
            rays = points - viewpoint
            direction = rays / np.linalg.norm(rays, axis=1, keepdims=True)
        else:
            # along the inward normal, so that + is a dent as with the rays
            direction = -work.normals_at(patch)
        work.move(patch, (sign * scale) * magnitude[:, None] * direction)
        defect = "dent" if sign > 0 else "bulge"
        work.record(defect, patch_size=size, viewpoint=viewpoint, scale=scale, sign=sign)
        return defect

    @classmethod
    def example(cls) -> tuple[dict[str, Any], Sample]:
        return {}, example_cloud(1024)
