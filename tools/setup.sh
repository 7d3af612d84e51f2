#!/usr/bin/env bash
# Idempotent set-up: Bazel (Debian's bazel-bootstrap 4.2.3), the project's
# virtualenv .venv, and the exact pins of requirements.txt. Re-running it is
# quick: each step is skipped when already done.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { echo "[setup] $*"; }

if ! command -v bazel >/dev/null 2>&1; then
  log "installing bazel-bootstrap (Debian's Bazel 4.2.3)"
  SUDO=""
  if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
  export DEBIAN_FRONTEND=noninteractive
  if ! $SUDO apt-get install -y -q bazel-bootstrap >/dev/null; then
    $SUDO apt-get update -q >/dev/null
    $SUDO apt-get install -y -q bazel-bootstrap >/dev/null
  fi
fi

PY="${PYTHON:-}"
if [ -z "$PY" ]; then
  for cand in python3.11 python3; do
    if command -v "$cand" >/dev/null 2>&1; then PY="$cand"; break; fi
  done
fi
if [ -z "$PY" ]; then
  echo "[setup] error: no python3 found; install Python 3.11" >&2
  exit 1
fi

if [ ! -x .venv/bin/python3 ]; then
  log "creating .venv with $($PY --version 2>&1)"
  rm -rf .venv
  "$PY" -m venv .venv
fi

stamp=.venv/.requirements.sha256
want=$(sha256sum requirements.txt | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  log "installing requirements.txt into .venv (a few minutes the first time)"
  .venv/bin/python3 -m pip install -q --disable-pip-version-check \
    -r requirements.txt 2> >(grep -v "is ignored: it is neither" >&2)
  echo "$want" > "$stamp"
fi
log "ready: $(.venv/bin/python3 --version 2>&1), $(bazel --version 2>/dev/null || echo bazel)"
