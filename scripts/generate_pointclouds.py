#!/usr/bin/env python
"""Generate a corpus of synthetic 3D defects: the same as ``anomalykit generate pointcloud``.

    python scripts/generate_pointclouds.py patchgen --from real3d_ad --root data/Real3D-AD --out out/patchgen \
        --per-source 8 --workers 2
    python scripts/generate_pointclouds.py defects3d --meshes meshes/ --out out/defects -o families=hole,crack
"""

from __future__ import annotations

import sys

from anomalykit.cli import app

if __name__ == "__main__":
    sys.exit(app(["generate", "pointcloud", *sys.argv[1:]]))
