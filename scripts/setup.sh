#!/usr/bin/env bash
# Create .venv and install ganforge with its test tools. Safe to run again.
#
# torch: the CPU build 2.13.0 unless the venv already has a torch. For a GPU, install the
# CUDA build you want into .venv first (or set GANFORGE_TORCH, e.g. "torch==2.13.0").
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
if ! .venv/bin/python -c "import torch" 2>/dev/null; then
    .venv/bin/python -m pip install -q "${GANFORGE_TORCH:-torch==2.13.0}"
fi
.venv/bin/python -m pip install -q -e ".[test]"
