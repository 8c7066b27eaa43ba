#!/usr/bin/env bash
# Create .venv and install keylink with its test tools. Installs the local CPU build of
# torch 2.13.0 first where this machine has it, so pip never pulls the CUDA wheels.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
py=.venv/bin/python
$py -m pip install -q --upgrade pip >/dev/null 2>&1 || true
if ! $py -c "import torch" >/dev/null 2>&1; then
  $py -m pip install -q torch==2.13.0 2>/dev/null || $py -m pip install -q "torch>=2.5"
fi
$py -m pip install -q -e ".[test]"
$py -c "import keylink, torch; print(f'keylink ready (torch {torch.__version__})')"
