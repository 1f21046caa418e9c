#!/usr/bin/env python
"""Generate a corpus of labelled synthetic time series: the same as ``anomalykit generate series``.

    python scripts/generate_series.py --config examples/series.yaml --out out/series --num 1000 --workers 2
    python scripts/generate_series.py --config examples/series.yaml --out out/swat-inj --from swat --root data/swat
"""

from __future__ import annotations

import sys

from anomalykit.cli import app

if __name__ == "__main__":
    sys.exit(app(["generate", "series", *sys.argv[1:]]))
