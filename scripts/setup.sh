#!/usr/bin/env bash
# One-command setup: system packages, a virtual environment in .venv, torch (CPU wheel first,
# so pip never pulls a multi-GB CUDA build), then the project with all extras and dev tools.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! ldconfig -p 2>/dev/null | grep -q libusb-1.0.so.0; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq libusb-1.0-0   # open3d needs it
fi
PYTHON=${PYTHON:-python3.11}
command -v "$PYTHON" >/dev/null 2>&1 || PYTHON=python3
[ -d .venv ] || "$PYTHON" -m venv .venv
. .venv/bin/activate
python -m pip install -q --upgrade pip
python -m pip install -q "torch==2.13.0"
python -m pip install -q -e ".[dev]"
python -c "import anomalykit, open3d, torch; print('anomalykit', anomalykit.__version__, '| torch', torch.__version__)"
