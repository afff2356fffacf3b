#!/usr/bin/env bash
# Issue 8 on a GPU: `calibrate --device cuda --quick` and `validate measured --device cuda --grid quick`.
# Uses the machine's existing PyTorch (with CUDA) when there is one; installs torch only if none is importable.
# Writes profile_cuda.yaml, profile_cuda.json, measured_cuda.json and env.txt to $OUT (default ./gpu-check).
# Offline machine: WHEELS=/path/to/wheels installs missing packages from there only (pip --no-index).
# Exits non-zero when no CUDA device is visible or a command fails.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT="${OUT:-$PWD/gpu-check}"
mkdir -p "$OUT"
PY="${PYTHON:-python}"
PIP_ARGS=()
if [ -n "${WHEELS:-}" ]; then PIP_ARGS=(--no-index --find-links "$WHEELS"); fi

if ! "$PY" -c "import torch" 2>/dev/null; then
    echo "no torch importable: installing it (needs network or a local wheel cache)"
    "$PY" -m pip install -q "${PIP_ARGS[@]}" torch
fi
# paraplan's own dependencies (scipy for the fits); paraplan itself from this checkout
missing=$("$PY" - <<'PY'
import importlib.util as u
print(" ".join(m for m, p in (("numpy", "numpy"), ("yaml", "pyyaml"), ("pydantic", "pydantic"), ("typer", "typer"),
                              ("rich", "rich"), ("scipy", "scipy")) if u.find_spec(m) is None))
PY
)
if [ -n "$missing" ]; then
    echo "installing missing dependencies: $missing"
    "$PY" -m pip install -q "${PIP_ARGS[@]}" $(echo "$missing" | sed 's/\byaml\b/pyyaml/')
fi
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"

"$PY" - <<'PY' | tee "$OUT/env.txt"
import platform, torch
print("python", platform.python_version(), "torch", torch.__version__, "cuda", torch.version.cuda,
      "available", torch.cuda.is_available())
if torch.cuda.is_available():
    for i in range(torch.cuda.device_count()):
        print("device", i, torch.cuda.get_device_name(i))
PY
"$PY" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 3)" || {
    echo "no CUDA device visible to PyTorch"; exit 3; }

time "$PY" -m paraplan.cli_calibrate calibrate --device cuda --quick --quiet \
    --out "$OUT/profile_cuda.yaml" --json "$OUT/profile_cuda.json"
time "$PY" -m paraplan.cli_calibrate validate measured --device cuda --grid quick --quiet \
    --profile "$OUT/profile_cuda.yaml" --json "$OUT/measured_cuda.json"
