"""DA-Gen, the pseudo-anomaly generator of MC4AD (Liang, Wang et al., 2025), as its released code
does it, with the per-point displacement vectors (MC4AD's regression target) in the output.

Region: the cloud is greedily split into ``parts`` (64) patches (each centre drawn among the
unassigned points, the ⌊N/parts⌋ nearest unassigned points join it); the anomaly region is a
patch drawn from the first half, about N/64 points around a random surface point.

Field: η uniform on the sphere, c the region centroid, q̂ = (p - c)·η / max|·| (a signed ramp),
attenuation a = 1 - σ|q̂|, direction d = normalise(λ n + (1 - λ) η), sign β = ±1, magnitude
D ~ U(0.06, 0.12) in unit-ball units: δ = β D q̂ a d on the region, 0 elsewhere.

The reference draws σ ~ U(0, 0.08) and λ ~ U(0.95, 1) once, as default arguments evaluated when
its module loads, so one training run uses one σ and one λ. Here they are drawn for every
sample; ``reproduce_reference_quirks=True`` draws them once per generator (from
``quirk_seed``) instead. ``profile`` offers the generalisations radial_linear (PO3AD's kernel),
cosine and gaussian in place of the signed ramp.

>>> from anomalykit.generators import get_generator
>>> from anomalykit.generators.pointcloud._common import example_cloud
>>> out = get_generator("dagen")(example_cloud(), seed=0)
>>> int(out.target.sum()) == 2048 // 64
True
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ...schema import Sample
from ..base import derive_seed, param, register_generator
from ._common import (PointCloudDefectConfig, PointCloudDefectGenerator, Workspace, check_range, cosine_falloff,
                      example_cloud, random_unit, too_small)


@dataclass
class DAGenConfig(PointCloudDefectConfig):
    parts: int = param(64, low=2, doc="patches of the greedy partition (SphereCropMask's mask_num)")
    region_parts: int = param(32, low=1, doc="the region is one of the first region_parts patches")
    magnitude_low: float = param(0.06, low=0.0, doc="smallest D, unit-ball units")
    magnitude_high: float = param(0.12, low=0.0, doc="largest D, unit-ball units")
    sigma_low: float = param(0.0, low=0.0, high=1.0, doc="attenuation σ, lower bound")
    sigma_high: float = param(0.08, low=0.0, high=1.0, doc="attenuation σ, upper bound")
    lambda_low: float = param(0.95, low=0.0, high=1.0, doc="normal weight λ, lower bound (0: random direction)")
    lambda_high: float = param(1.0, low=0.0, high=1.0, doc="normal weight λ, upper bound (1: along the normal)")
    sign: str = param("random", choices=("random", "out", "in"))
    profile: str = param("signed_ramp", choices=("signed_ramp", "radial_linear", "cosine", "gaussian"))
    reproduce_reference_quirks: bool = param(False, doc="draw σ and λ once per generator, as the reference does")
    quirk_seed: int = param(0, low=0, doc="seed of the once-per-generator σ and λ")


def greedy_patch(points: np.ndarray, rng: np.random.Generator, parts: int, region: int, tree=None) -> np.ndarray:
    """Members of patch ``region`` of the greedy partition into ``parts`` patches.

    Patch p's centre is drawn uniformly among the unassigned points and takes the ⌊N/parts⌋
    unassigned points nearest to it; only patches 0..region are built. With a KD-tree the
    neighbours come from growing k-nearest queries instead of sorting every distance.
    """
    n = len(points)
    size = n // parts
    assigned = np.zeros(n, dtype=bool)
    members = np.empty(0, dtype=np.int64)
    for _ in range(region + 1):
        free = np.flatnonzero(~assigned)
        centre = points[free[rng.integers(len(free))]]
        if tree is None:
            distance = ((points[free] - centre) ** 2).sum(axis=1)
            members = free[np.argsort(distance, kind="stable")[:size]]
        else:
            k = min(n, 2 * size + 8)
            while True:
                distance, index = tree.query(centre, k=k)
                index = np.atleast_1d(index)
                candidates = index[~assigned[index]]
                if len(candidates) >= size or k == n:
                    members = candidates[:size]
                    break
                k = min(n, 2 * k)
        assigned[members] = True
    return members


@register_generator("dagen")
class DAGen(PointCloudDefectGenerator):
    """MC4AD's DA-Gen: a signed-ramp displacement field along tilted normals on one patch."""

    version = "1"
    config_class = DAGenConfig
    config: DAGenConfig

    def __init__(self, config: Any = None, **params: Any) -> None:
        super().__init__(config, **params)
        cfg = self.config
        self.magnitude = check_range(cfg, "magnitude_low", "magnitude_high")
        self.sigma = check_range(cfg, "sigma_low", "sigma_high")
        self.lam = check_range(cfg, "lambda_low", "lambda_high")
        if cfg.region_parts > cfg.parts:
            raise too_small(self.name, "(config)", cfg.parts, "region_parts", cfg.region_parts,
                            f"region_parts must not exceed parts={cfg.parts}")
        self.fixed: tuple[float, float] | None = None
        if cfg.reproduce_reference_quirks:
            once = np.random.default_rng(derive_seed(cfg.quirk_seed, "dagen-module-defaults"))
            self.fixed = (self.sigma.draw(once), self.lam.draw(once))

    def deform(self, work: Workspace, rng: np.random.Generator, tree: Any = "auto") -> str:
        cfg = self.config
        live = work.live
        n = len(live)
        if n // cfg.parts < 3:
            raise too_small(self.name, work.key, n, "parts", cfg.parts,
                            f"patches of {n} // {cfg.parts} = {n // cfg.parts} points; at least 3 are needed")
        region_id = int(rng.integers(cfg.region_parts))
        region = live[greedy_patch(work.points[live], rng, cfg.parts, region_id,
                                   tree=work.tree if tree == "auto" else tree)]
        points = work.points[region]
        normals = work.normals_at(region)
        centre = points.mean(axis=0)
        eta = random_unit(rng)
        sigma, lam = self.fixed if self.fixed is not None else (self.sigma.draw(rng), self.lam.draw(rng))
        beta = {"out": 1.0, "in": -1.0}.get(cfg.sign) or float(rng.choice((-1.0, 1.0)))
        magnitude = self.magnitude.draw(rng) * work.radius
        profile = self.profile(points, centre, eta, sigma)
        direction = lam * normals + (1 - lam) * eta
        direction /= np.maximum(np.linalg.norm(direction, axis=1, keepdims=True), 1e-12)
        work.move(region, (beta * magnitude) * profile[:, None] * direction)
        defect = {"signed_ramp": "crease"}.get(cfg.profile) or ("bulge" if beta > 0 else "dent")
        work.record(defect, region_id=region_id, region_size=len(region), eta=eta, sigma=sigma, lam=lam, beta=beta,
                    magnitude=magnitude, profile=cfg.profile)
        return defect

    def profile(self, points: np.ndarray, centre: np.ndarray, eta: np.ndarray, sigma: float) -> np.ndarray:
        if self.config.profile == "signed_ramp":
            q = (points - centre) @ eta
            q_hat = q / max(float(np.abs(q).max()), 1e-12)
            return q_hat * (1 - sigma * np.abs(q_hat))
        distance = np.linalg.norm(points - centre, axis=1)
        reach = max(float(distance.max()), 1e-12)
        if self.config.profile == "radial_linear":
            w = 1 - distance / reach
            span = w.max() - w.min()
            return (w - w.min()) / span if span > 0 else np.ones_like(w)
        if self.config.profile == "cosine":
            return cosine_falloff(distance, reach)
        return np.exp(-0.5 * (distance / (reach / 2.5)) ** 2)

    @classmethod
    def example(cls) -> tuple[dict[str, Any], Sample]:
        return {}, example_cloud(1024)
