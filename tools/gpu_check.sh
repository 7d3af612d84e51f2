#!/usr/bin/env bash
# One prepared check of rtc on a GPU (<= 8 minutes); see rtc/bench/gpu_check.py.
#   tools/gpu_check.sh [--out=docs/gpu_check.md]
#   tools/gpu_check.sh --smoke          # tiny sizes, CPU (CI)
#   tools/gpu_check.sh --memory_only    # XLA memory analysis at paper sizes
# $PYTHON picks the interpreter (default: the checkout's .venv).
set -euo pipefail
cd "$(dirname "$0")/.."
exec "${PYTHON:-.venv/bin/python}" -m rtc.bench.gpu_check "$@"
