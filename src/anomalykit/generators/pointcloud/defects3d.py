"""The defect families of real 3D anomaly datasets (Real3D-AD, Anomaly-ShapeNet), combinable.

Families (lengths are fractions of the object's unit-ball radius R unless ``units="raw"``):

==========  ================================================================================
bulge       a smooth cosine cap pushed out along the patch normal (height h, radius r)
sink        the same cap pushed in (a dent)
crack       a thin slab removed: width w (at least 1.5 point spacings), length 2r, depth r/2 into
            the surface, slightly bent
cut         a V-shaped wedge removed: opening angle α, depth d (at least 2 point spacings),
            length 2r
hole        a disc of radius r removed
stretch     a patch stretched along a random tangent: δ = k · w(ρ) · ((p - c)·t) t
twist       the end part of the object (a fraction f along a principal axis) twisted about the
            axis by up to θ, growing linearly along it
roughness   a patch roughened along its normal by band-limited noise of amplitude a
==========  ================================================================================

``families`` lists the allowed families; each sample applies ``pick`` of them, drawn without
replacement (``pick=0``: all of them, in the listed order). Removed points are reported in
``meta`` and the remaining points at the border of a gap (within ``rim_width``) are marked
anomalous, since that border is what a detector sees.

>>> from anomalykit.generators import get_generator
>>> from anomalykit.generators.pointcloud._common import example_cloud
>>> gen = get_generator("defects3d", families=["bulge", "hole"], pick=0)
>>> out = gen(example_cloud(16384), seed=1)
>>> out.defect, out.meta["removed_count"] > 0
('bulge+hole', True)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ...errors import ConfigError
from ...schema import Sample
from ..base import param, register_generator
from ._common import (PointCloudDefectConfig, PointCloudDefectGenerator, Range, Workspace, check_range,
                      cosine_falloff, random_tangent, random_unit, rotate_about_axis, too_small)

FAMILIES = ("bulge", "sink", "crack", "cut", "hole", "stretch", "twist", "roughness")


@dataclass
class Defects3DConfig(PointCloudDefectConfig):
    families: list[str] = param(default_factory=lambda: list(FAMILIES), doc=f"allowed families: {', '.join(FAMILIES)}")
    pick: int = param(1, low=0, doc="families applied per sample, drawn from `families` (0: all of them)")
    radius_low: float = param(0.06, low=0.0, doc="patch radius r, lower bound")
    radius_high: float = param(0.15, low=0.0, doc="patch radius r, upper bound")
    height_low: float = param(0.015, low=0.0, doc="bulge/sink height h, lower bound")
    height_high: float = param(0.04, low=0.0, doc="bulge/sink height h, upper bound")
    crack_width_low: float = param(0.006, low=0.0, doc="crack width w, lower bound")
    crack_width_high: float = param(0.015, low=0.0, doc="crack width w, upper bound")
    cut_angle_low: float = param(30.0, low=1.0, high=170.0, doc="wedge opening angle α in degrees, lower bound")
    cut_angle_high: float = param(70.0, low=1.0, high=170.0, doc="wedge opening angle α in degrees, upper bound")
    cut_depth_low: float = param(0.02, low=0.0, doc="wedge depth d, lower bound")
    cut_depth_high: float = param(0.06, low=0.0, doc="wedge depth d, upper bound")
    stretch_low: float = param(0.15, low=0.0, doc="stretch factor k, lower bound")
    stretch_high: float = param(0.4, low=0.0, doc="stretch factor k, upper bound")
    twist_angle_low: float = param(8.0, low=0.0, high=180.0, doc="twist angle θ in degrees, lower bound")
    twist_angle_high: float = param(25.0, low=0.0, high=180.0, doc="twist angle θ in degrees, upper bound")
    twist_fraction_low: float = param(0.1, low=0.0, high=1.0, doc="twisted part f (fraction of points), lower bound")
    twist_fraction_high: float = param(0.3, low=0.0, high=1.0, doc="twisted part f, upper bound")
    roughness_low: float = param(0.004, low=0.0, doc="roughness amplitude a, lower bound")
    roughness_high: float = param(0.01, low=0.0, doc="roughness amplitude a, upper bound")
    rim_width: float = param(0.01, low=0.0, doc="gap border marked anomalous (at least two point spacings)")
    min_region_points: int = param(8, low=1, doc="a patch with fewer points is an error naming radius_low")

    def validate(self) -> None:
        super().validate()
        if isinstance(self.families, str):
            self.families = [f for f in self.families.split(",") if f]
        unknown = [f for f in self.families if f not in FAMILIES]
        if unknown or not self.families:
            raise ConfigError(f"Defects3DConfig.families: {unknown or 'an empty list'} "
                              f"{'is not a family' if unknown else 'names no family'}; choose from {list(FAMILIES)}")
        if len(set(self.families)) != len(self.families):
            raise ConfigError(f"Defects3DConfig.families: {self.families} names a family twice")
        if self.pick > len(self.families):
            raise ConfigError(f"Defects3DConfig.pick: {self.pick} is more than the {len(self.families)} families listed")


@register_generator("defects3d")
class Defects3D(PointCloudDefectGenerator):
    """Bulge, sink, crack, cut, hole, stretch, twist and roughness, one or several per sample."""

    version = "1"
    config_class = Defects3DConfig
    config: Defects3DConfig

    def __init__(self, config: Any = None, **params: Any) -> None:
        super().__init__(config, **params)
        names = ("radius", "height", "crack_width", "cut_angle", "cut_depth", "stretch", "twist_angle",
                 "twist_fraction", "roughness")
        self.ranges: dict[str, Range] = {n: check_range(self.config, f"{n}_low", f"{n}_high") for n in names}

    def draw(self, name: str, rng: np.random.Generator) -> float:
        return self.ranges[name].draw(rng)

    def deform(self, work: Workspace, rng: np.random.Generator) -> str:
        cfg = self.config
        if cfg.pick == 0:
            chosen = list(cfg.families)
        else:
            chosen = [cfg.families[i] for i in sorted(rng.choice(len(cfg.families), cfg.pick, replace=False))]
        for family in chosen:
            getattr(self, family)(work, rng)
        return "+".join(chosen)

    # -- shared pieces -------------------------------------------------------------------------
    def patch(self, work: Workspace, rng: np.random.Generator, radius: float) -> tuple[int, np.ndarray]:
        """A random live point and the live points within ``radius`` of it."""
        live = work.live
        if len(live) < self.config.min_region_points:
            raise too_small(self.name, work.key, len(live), "min_region_points", self.config.min_region_points,
                            "fewer live points than one patch needs")
        centre = int(live[rng.integers(len(live))])
        members = work.ball(work.points[centre], radius)
        if len(members) < self.config.min_region_points:
            raise too_small(self.name, work.key, len(live), "radius_low", self.config.radius_low,
                            f"a patch of radius {radius:.4g} around point {centre} holds {len(members)} points, "
                            f"fewer than min_region_points={self.config.min_region_points}")
        return centre, members

    def rim(self, work: Workspace, members: np.ndarray) -> float:
        return max(self.config.rim_width * work.radius, 2.0 * work.spacing(members))

    # -- families ------------------------------------------------------------------------------
    def bulge(self, work: Workspace, rng: np.random.Generator) -> None:
        self.bump(work, rng, +1.0, "bulge")

    def sink(self, work: Workspace, rng: np.random.Generator) -> None:
        self.bump(work, rng, -1.0, "sink")

    def bump(self, work: Workspace, rng: np.random.Generator, sign: float, family: str) -> None:
        radius = self.draw("radius", rng) * work.radius
        height = self.draw("height", rng) * work.radius
        centre, members = self.patch(work, rng, radius)
        distance = np.linalg.norm(work.points[members] - work.points[centre], axis=1)
        weight = cosine_falloff(distance, radius)
        normal = work.patch_normal(members, weight)
        work.move(members, (sign * height) * weight[:, None] * normal)
        work.record(family, centre=centre, position=work.points[centre].copy(), radius=radius, height=height,
                    normal=normal, points=len(members))

    def crack(self, work: Workspace, rng: np.random.Generator) -> None:
        half_length = self.draw("radius", rng) * work.radius
        width = self.draw("crack_width", rng) * work.radius
        centre, members = self.patch(work, rng, half_length * 1.5)
        c = work.points[centre]
        # a crack narrower than the point spacing would remove nothing: widen it to 1.5 spacings
        width = max(width, 1.5 * work.spacing(members))
        normal = work.patch_normal(members)
        along = random_tangent(rng, normal)
        across = np.cross(normal, along)
        bend, phase = rng.uniform(0.05, 0.2) * half_length, rng.uniform(0, 2 * np.pi)
        rel = work.points[members] - c
        t, b, h = rel @ along, rel @ across, rel @ normal
        path = bend * np.sin(np.pi * t / half_length + phase)
        inside = (np.abs(t) <= half_length) & (np.abs(b - path) <= width / 2) & (h >= -half_length / 2)
        gone = members[inside]
        if gone.size == 0:
            raise too_small(self.name, work.key, len(work.live), "crack_width_low", self.config.crack_width_low,
                            f"a crack {width:.4g} wide removes no point; the cloud is too sparse")
        rim = self.rim(work, members)
        border = work.remove(gone, rim)
        work.record("crack", centre=centre, position=c, length=2 * half_length, width=width, direction=along,
                    normal=normal, removed=len(gone), border=len(border))

    def cut(self, work: Workspace, rng: np.random.Generator) -> None:
        half_length = self.draw("radius", rng) * work.radius
        depth = self.draw("cut_depth", rng) * work.radius
        half_angle = np.deg2rad(self.draw("cut_angle", rng)) / 2
        reach = float(np.hypot(half_length, depth * (1 + np.tan(half_angle))) * 1.5)
        centre, members = self.patch(work, rng, reach)
        c = work.points[centre]
        depth = max(depth, 2.0 * work.spacing(members))
        near = members[np.linalg.norm(work.points[members] - c, axis=1) <= half_length]
        normal = work.patch_normal(near if len(near) >= 3 else members)
        along = random_tangent(rng, normal)
        across = np.cross(normal, along)
        rel = work.points[members] - c
        t, b, height = rel @ along, rel @ across, rel @ normal + depth
        inside = (np.abs(t) <= half_length) & (height > 0) & (np.abs(b) <= height * np.tan(half_angle))
        gone = members[inside]
        if gone.size == 0:
            raise too_small(self.name, work.key, len(work.live), "cut_depth_low", self.config.cut_depth_low,
                            "the wedge removes no point; the cloud is too sparse")
        border = work.remove(gone, self.rim(work, members))
        work.record("cut", centre=centre, position=c, length=2 * half_length, depth=depth,
                    angle=np.rad2deg(2 * half_angle), direction=along, normal=normal, removed=len(gone),
                    border=len(border))

    def hole(self, work: Workspace, rng: np.random.Generator) -> None:
        radius = self.draw("radius", rng) * work.radius
        centre, members = self.patch(work, rng, radius)
        position = work.points[centre].copy()
        border = work.remove(members, self.rim(work, members))
        work.record("hole", centre=centre, position=position, radius=radius, removed=len(members), border=len(border))

    def stretch(self, work: Workspace, rng: np.random.Generator) -> None:
        radius = self.draw("radius", rng) * work.radius
        factor = self.draw("stretch", rng)
        centre, members = self.patch(work, rng, radius)
        rel = work.points[members] - work.points[centre]
        weight = cosine_falloff(np.linalg.norm(rel, axis=1), radius)
        axis = random_tangent(rng, work.patch_normal(members, weight))
        work.move(members, (factor * weight * (rel @ axis))[:, None] * axis)
        work.record("stretch", centre=centre, position=work.points[centre].copy(), radius=radius, factor=factor,
                    axis=axis, points=len(members))

    def twist(self, work: Workspace, rng: np.random.Generator) -> None:
        live = work.live
        points = work.points[live]
        centred = points - work.centroid
        _, _, vt = np.linalg.svd(centred[:: max(1, len(live) // 20000)], full_matrices=False)
        axis = vt[int(rng.integers(3))] * float(rng.choice((-1.0, 1.0)))
        angle = np.deg2rad(self.draw("twist_angle", rng)) * float(rng.choice((-1.0, 1.0)))
        fraction = self.draw("twist_fraction", rng)
        position = centred @ axis
        count = int(round(fraction * len(live)))
        if count < self.config.min_region_points:
            raise too_small(self.name, work.key, len(live), "twist_fraction_low", self.config.twist_fraction_low,
                            f"the twisted part holds {count} points")
        start = np.partition(position, len(live) - count)[len(live) - count]
        chosen = position >= start
        span = max(float(position.max() - start), 1e-12)
        angles = angle * (position[chosen] - start) / span
        members = live[chosen]
        moved = rotate_about_axis(points[chosen], work.centroid, axis, angles)
        work.move(members, moved - points[chosen])
        work.record("twist", axis=axis, angle=np.rad2deg(angle), fraction=fraction, points=len(members))

    def roughness(self, work: Workspace, rng: np.random.Generator) -> None:
        radius = self.draw("radius", rng) * work.radius
        amplitude = self.draw("roughness", rng) * work.radius
        centre, members = self.patch(work, rng, radius)
        rel = work.points[members] - work.points[centre]
        weight = cosine_falloff(np.linalg.norm(rel, axis=1), radius)
        normal = work.patch_normal(members, weight)
        waves = 6
        wavelengths = radius / rng.uniform(3.0, 8.0, size=waves)
        directions = np.stack([random_unit(rng) for _ in range(waves)])
        phases = rng.uniform(0, 2 * np.pi, size=waves)
        noise = np.sin((rel @ directions.T) * (2 * np.pi / wavelengths) + phases).sum(axis=1) / np.sqrt(waves / 2)
        noise += 0.3 * rng.standard_normal(len(members))
        noise = np.clip(noise, -2.5, 2.5) / 2.5
        work.move(members, (amplitude * weight * noise)[:, None] * normal)
        work.record("roughness", centre=centre, position=work.points[centre].copy(), radius=radius,
                    amplitude=amplitude, normal=normal, points=len(members))

    @classmethod
    def example(cls) -> tuple[dict[str, Any], Sample]:
        from ._common import example_cloud

        return {"families": ["bulge", "crack"], "pick": 0, "radius_low": 0.12, "radius_high": 0.2}, example_cloud(4096)
