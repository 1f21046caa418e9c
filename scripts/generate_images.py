#!/usr/bin/env python
"""Generate a corpus of synthetic image anomalies: the same as ``anomalykit generate image``.

    python scripts/generate_images.py perlin --from mvtec_ad --root data/mvtec --out out/perlin \
        --per-image 4 --workers 2 -o texture_dir=data/dtd/images
    python scripts/generate_images.py nsa --from mvtec_ad --root data/mvtec --out out/nsa -c bottle -o label_mode=logistic
"""

from __future__ import annotations

import sys

from anomalykit.cli import app

if __name__ == "__main__":
    sys.exit(app(["generate", "image", *sys.argv[1:]]))
