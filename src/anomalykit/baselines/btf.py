"""BTF, "Back to the Feature" (Horwitz & Hoshen, 2022): FPFH point features and a kNN memory bank.

Each cloud is voxel-downsampled, normals are estimated with open3d (hybrid radius/kNN search),
and open3d's Fast Point Feature Histograms (33 values per point) describe the local geometry.
The training features go into a PatchCore-style memory bank (seeded greedy k-center coreset);
a test point's score is its mean distance to the ``num_neighbors`` nearest bank features. Radii
follow the reference: normals within 2 voxels (at most 30 neighbours), FPFH within 5 voxels (at
most 100). The bank holds ``M = min(round(coreset_ratio * P), max_bank_size)`` of the P training
points left after downsampling, ``M * 33 * 4`` bytes (36 columns with ``fpfh_xyz``). The
per-point map is computed on the downsampled points and carried back to every original point
by nearest neighbour, so it is aligned with the sample's (N,) target; the sample score is the
largest point score.

Real3D-AD's test scans are not aligned with the training templates. With
``registration="ransac_icp"`` each test cloud is first aligned to the nearest template (RANSAC
on FPFH correspondences, refined by point-to-point ICP; the template with the best ICP fitness
wins), as the official Real3D-AD baselines do; the training clouds are then aligned to the first
one, whose downsampled points and features are kept as templates. FPFH itself is rotation invariant, so alignment
matters for ``features="fpfh_xyz"``, which appends the (aligned) coordinates to the histograms.

>>> import anomalykit
>>> from anomalykit.generators.pointcloud._common import example_cloud
>>> train = [example_cloud(2048, seed=s, key=f"t/{s}") for s in range(2)]
>>> detector = anomalykit.get_baseline("btf", voxel_fraction=0.03).fit(train, seed=0)
>>> out = detector.score_samples([example_cloud(2048, seed=9)])[0]
>>> out.anomaly_map.shape
(2048,)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any

import numpy as np

from ..errors import ConfigError
from ..schema import Modality, PointCloud, Sample
from .base import Detector, DetectorConfig, DetectorOutput, param, register_baseline
from ._memory_bank import coreset_size, greedy_coreset, knn_distances

__all__ = ["BTF", "BTFConfig", "CloudFeatures", "FeatureKind", "Registration", "fpfh_features"]


class FeatureKind(str, Enum):
    FPFH = "fpfh"
    #: FPFH followed by the coordinates (divided by the voxel size, times ``xyz_weight``)
    FPFH_XYZ = "fpfh_xyz"


class Registration(str, Enum):
    NONE = "none"
    #: RANSAC on FPFH correspondences, refined by ICP, against every template; best fitness wins
    RANSAC_ICP = "ransac_icp"


@dataclass
class BTFConfig(DetectorConfig):
    voxel_size: float = param(0.0, low=0.0, doc="voxel edge for downsampling in the clouds' units; 0 = "
                              "voxel_fraction x the median bounding-box diagonal of the training clouds")
    voxel_fraction: float = param(0.02, low=1e-4, high=0.5, doc="automatic voxel size, as a share of the diagonal")
    normal_radius: float = param(2.0, low=0.5, high=50.0, doc="normal-estimation radius, in voxels")
    normal_max_nn: int = param(30, low=3, high=1000, doc="most neighbours used for a normal")
    feature_radius: float = param(5.0, low=0.5, high=100.0, doc="FPFH radius, in voxels")
    feature_max_nn: int = param(100, low=3, high=5000, doc="most neighbours used for an FPFH")
    orient_normals: bool = param(True, choices=(True, False),
                                 doc="orient normals away from the cloud's centroid (else open3d's arbitrary sign)")
    features: str = param("fpfh", choices=tuple(k.value for k in FeatureKind))
    xyz_weight: float = param(10.0, low=0.0, doc="weight of one voxel of displacement in fpfh_xyz features")
    coreset_ratio: float = param(0.1, low=1e-6, high=1.0, doc="share of training features kept in the bank")
    max_bank_size: int = param(200_000, low=1, doc="cap on the memory bank (rows of 33 float32 each)")
    projection_dim: int = param(0, low=0, doc="random projection width for coreset selection; 0 = none")
    num_neighbors: int = param(1, low=1, high=100, doc="k of the kNN distance")
    registration: str = param("none", choices=tuple(r.value for r in Registration))
    ransac_iterations: int = param(100_000, low=1, doc="RANSAC iterations per template (registration only)")
    icp_iterations: int = param(50, low=1, doc="ICP iterations (registration only)")


@dataclass
class CloudFeatures:
    """A downsampled cloud: points (M x 3, float64), FPFH (M x 33, float32)."""

    points: np.ndarray
    fpfh: np.ndarray


def _o3d():
    try:
        import open3d as o3d
    except ImportError as exc:  # pragma: no cover - open3d is a declared dependency of the pointcloud extra
        raise ConfigError("btf needs open3d (pip install 'anomalykit[pointcloud]')") from exc
    return o3d


def fpfh_features(points: np.ndarray, voxel: float, config: BTFConfig, key: str = "cloud") -> CloudFeatures:
    """Voxel-downsample ``points``, estimate normals and compute FPFH with open3d."""
    o3d = _o3d()
    cloud = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(np.asarray(points, dtype=np.float64)))
    down = cloud.voxel_down_sample(voxel)
    if len(down.points) < 4:
        raise ConfigError(f"btf: {key} keeps {len(down.points)} point(s) after voxel downsampling at {voxel:g}; "
                          f"lower voxel_size / voxel_fraction")
    down.estimate_normals(o3d.geometry.KDTreeSearchParamHybrid(radius=config.normal_radius * voxel,
                                                               max_nn=config.normal_max_nn))
    if config.orient_normals:
        pts = np.asarray(down.points)
        normals = np.asarray(down.normals)
        flip = np.einsum("ij,ij->i", normals, pts - pts.mean(axis=0)) < 0
        normals[flip] *= -1.0
        down.normals = o3d.utility.Vector3dVector(normals)
    fpfh = o3d.pipelines.registration.compute_fpfh_feature(
        down, o3d.geometry.KDTreeSearchParamHybrid(radius=config.feature_radius * voxel, max_nn=config.feature_max_nn))
    return CloudFeatures(np.asarray(down.points).copy(), np.asarray(fpfh.data, dtype=np.float32).T.copy())


def _bbox_diagonal(points: np.ndarray) -> float:
    return float(np.linalg.norm(points.max(axis=0) - points.min(axis=0)))


@register_baseline("btf")
class BTF(Detector):
    """FPFH + kNN memory bank (training-free apart from the bank); per-point maps."""

    version = "1"
    modality = Modality.POINTCLOUD
    config_class = BTFConfig
    config: BTFConfig

    # -- features ------------------------------------------------------------------------------
    def _describe(self, cloud: CloudFeatures) -> np.ndarray:
        if self.config.features == FeatureKind.FPFH_XYZ.value:
            xyz = (cloud.points * (self.config.xyz_weight / self.voxel_)).astype(np.float32)
            return np.concatenate([cloud.fpfh, xyz], axis=1)
        return cloud.fpfh

    def _points(self, sample: Sample) -> np.ndarray:
        data = sample.data
        assert isinstance(data, PointCloud)
        if len(data) < 4:
            raise ConfigError(f"btf: {sample.key} has {len(data)} point(s); at least 4 are needed")
        return data.points.astype(np.float64)

    # -- registration --------------------------------------------------------------------------
    def _register(self, cloud: CloudFeatures, templates: Sequence[CloudFeatures], seed: int) -> np.ndarray:
        """4 x 4 transform aligning ``cloud`` to the best-fitting template."""
        o3d = _o3d()
        reg = o3d.pipelines.registration
        voxel = self.voxel_
        source = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(cloud.points))
        source_feature = reg.Feature()
        source_feature.data = cloud.fpfh.T.astype(np.float64)
        best: tuple[float, float, np.ndarray] | None = None
        for template in templates:
            target = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(template.points))
            target_feature = reg.Feature()
            target_feature.data = template.fpfh.T.astype(np.float64)
            o3d.utility.random.seed(seed)
            coarse = reg.registration_ransac_based_on_feature_matching(
                source, target, source_feature, target_feature, True, 1.5 * voxel,
                reg.TransformationEstimationPointToPoint(False), 3,
                [reg.CorrespondenceCheckerBasedOnEdgeLength(0.9), reg.CorrespondenceCheckerBasedOnDistance(1.5 * voxel)],
                reg.RANSACConvergenceCriteria(self.config.ransac_iterations, 0.999))
            fine = reg.registration_icp(source, target, 1.0 * voxel, coarse.transformation,
                                        reg.TransformationEstimationPointToPoint(),
                                        reg.ICPConvergenceCriteria(max_iteration=self.config.icp_iterations))
            candidate = (float(fine.fitness), -float(fine.inlier_rmse), np.asarray(fine.transformation))
            if best is None or candidate[:2] > best[:2]:
                best = candidate
        assert best is not None
        return best[2]

    def _templates(self) -> list[CloudFeatures]:
        bounds = np.concatenate([[0], np.cumsum(self.template_sizes_)])
        return [CloudFeatures(self.template_points_[a:b], self.template_fpfh_[a:b]) for a, b in zip(bounds, bounds[1:])]

    def _aligned(self, points: np.ndarray, key: str, templates: Sequence[CloudFeatures]) -> tuple[CloudFeatures, np.ndarray]:
        cloud = fpfh_features(points, self.voxel_, self.config, key)
        transform = np.eye(4)
        if self.config.registration == Registration.RANSAC_ICP.value and templates:
            transform = self._register(cloud, templates, self.registration_seed_)
            cloud = CloudFeatures(cloud.points @ transform[:3, :3].T + transform[:3, 3], cloud.fpfh)
        return cloud, transform

    # -- Detector API --------------------------------------------------------------------------
    def _fit(self, samples: Sequence[Sample], rng: np.random.Generator, progress: bool) -> None:
        from rich.progress import track

        clouds = [self._points(s) for s in samples]
        cfg = self.config
        self.voxel_ = float(cfg.voxel_size) if cfg.voxel_size > 0 else (
            cfg.voxel_fraction * float(np.median([_bbox_diagonal(p) for p in clouds])))
        if not self.voxel_ > 0:
            raise ConfigError("btf: the training clouds have no extent; set voxel_size")
        self.registration_seed_ = int(rng.integers(2**31 - 1))
        templates: list[CloudFeatures] = []
        described = []
        for sample, points in track(list(zip(samples, clouds)), description="btf: training features",
                                    disable=not progress):
            cloud, _ = self._aligned(points, sample.key, templates[:1])
            if cfg.registration == Registration.RANSAC_ICP.value:
                templates.append(cloud)
            described.append(self._describe(cloud))
        features = np.concatenate(described, axis=0)
        size = coreset_size(features.shape[0], cfg.coreset_ratio, cfg.max_bank_size)
        if size >= features.shape[0]:
            keep = np.arange(features.shape[0])
        else:
            keep = greedy_coreset(features, size, rng, cfg.projection_dim or None)
        self.memory_bank_ = np.ascontiguousarray(features[keep], dtype=np.float32)
        if self.memory_bank_.shape[0] < cfg.num_neighbors:
            raise ConfigError(f"btf: num_neighbors={cfg.num_neighbors} exceeds the memory bank "
                              f"({self.memory_bank_.shape[0]} features); raise coreset_ratio or lower num_neighbors")
        self.template_sizes_ = np.array([len(t.points) for t in templates], np.int64)
        self.template_points_ = (np.concatenate([t.points for t in templates]) if templates
                                 else np.zeros((0, 3))).astype(np.float64)
        self.template_fpfh_ = (np.concatenate([t.fpfh for t in templates]) if templates
                               else np.zeros((0, 33))).astype(np.float32)

    def _score(self, samples: Sequence[Sample]) -> list[DetectorOutput]:
        from scipy.spatial import cKDTree

        templates = self._templates()
        outputs = []
        for sample in samples:
            points = self._points(sample)
            cloud, transform = self._aligned(points, sample.key, templates)
            features = self._describe(cloud)
            if features.shape[1] != self.memory_bank_.shape[1]:
                raise ConfigError(f"btf: {sample.key} gives {features.shape[1]} features per point, the bank holds "
                                  f"{self.memory_bank_.shape[1]}")
            point_scores = knn_distances(features, self.memory_bank_, self.config.num_neighbors)
            aligned_points = points @ transform[:3, :3].T + transform[:3, 3]
            _, nearest = cKDTree(cloud.points).query(aligned_points, k=1)
            extras: dict[str, Any] = {"scored_points": int(len(cloud.points))}
            if self.config.registration != Registration.NONE.value:
                extras["transformation"] = transform
            outputs.append(DetectorOutput(sample.key, float(point_scores.max()),
                                          point_scores[nearest].astype(np.float32), extras))
        return outputs

    def state_dict(self) -> dict[str, np.ndarray]:
        return {
            "memory_bank": self.memory_bank_,
            "voxel": np.array([self.voxel_], np.float64),
            "registration_seed": np.array([self.registration_seed_], np.int64),
            "template_sizes": self.template_sizes_,
            "template_points": self.template_points_,
            "template_fpfh": self.template_fpfh_,
        }

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        self.memory_bank_ = np.asarray(state["memory_bank"], np.float32)
        self.voxel_ = float(state["voxel"][0])
        self.registration_seed_ = int(state["registration_seed"][0])
        self.template_sizes_ = np.asarray(state["template_sizes"], np.int64)
        self.template_points_ = np.asarray(state["template_points"], np.float64)
        self.template_fpfh_ = np.asarray(state["template_fpfh"], np.float32)

    @classmethod
    def example(cls) -> tuple[dict[str, Any], list[Sample], list[Sample]]:
        from ..generators import get_generator
        from ..generators.pointcloud._common import example_cloud

        train = [example_cloud(2048, seed=s, key=f"example/train_{s}") for s in range(2)]
        normal = example_cloud(2048, seed=10, key="example/test_good")
        normal.split = "test"
        defect = get_generator("patchgen", sign="bulge", scale_low=0.15, scale_high=0.2,
                               patch_fraction_low=0.05, patch_fraction_high=0.08)(
            example_cloud(2048, seed=11, key="example/test_source"), seed=0)
        defect.split = "test"
        return {"voxel_fraction": 0.03, "coreset_ratio": 0.25}, train, [normal, defect]
