"""Reference anomaly detectors, one module each, registered with ``@register_baseline``."""

from .base import (
    BASELINES,
    Detector,
    DetectorConfig,
    DetectorOutput,
    get_baseline,
    list_baselines,
    register_baseline,
)

__all__ = ["BASELINES", "Detector", "DetectorConfig", "DetectorOutput", "get_baseline", "list_baselines",
           "register_baseline"]
