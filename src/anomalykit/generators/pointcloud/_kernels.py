"""Per-point loops compiled with numba (one pass, no N x 3 temporaries)."""

from __future__ import annotations

import numba
import numpy as np


@numba.njit(cache=True, nogil=True)
def squared_distances(points: np.ndarray, centre: np.ndarray) -> np.ndarray:
    """‖p_i - centre‖² for every row of the N x 3 float64 ``points`` (same rounding as numpy's
    ``((points - centre) ** 2).sum(axis=1)``)."""
    n = points.shape[0]
    out = np.empty(n, dtype=np.float64)
    cx, cy, cz = centre[0], centre[1], centre[2]
    for i in range(n):
        dx = points[i, 0] - cx
        dy = points[i, 1] - cy
        dz = points[i, 2] - cz
        out[i] = dx * dx + dy * dy + dz * dz
    return out
