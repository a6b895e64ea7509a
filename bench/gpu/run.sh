#!/usr/bin/env bash
# The GPU check in one command (bench/gpu/README.md):
#
#   bash bench/gpu/run.sh [--cpu] [--out DIR] [--wheels DIR] [--budget SECONDS] [--parts a,b,...]
#
# For a machine with CUDA PyTorch, transformers, peft, torchaudio, typer, rich, scipy and pandas but
# no internet and no model weights: installs the wheels of --wheels DIR (packages that machine lacks,
# e.g. soundfile, cffi, bitsandbytes; bench/gpu/README.md says how to fetch them) into a folder on
# PYTHONPATH, installs sedtk with `pip install --no-deps -e .` unless this checkout is already the
# sedtk that Python imports, names the packages still missing, then runs bench/gpu/gpu_check.py.
# --cpu: the same code at tiny shapes in float32 on the CPU (what the test suite runs).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
python=${PYTHON:-python3}
wheels=""
args=()
while [ $# -gt 0 ]; do
  case $1 in
    --wheels) wheels=$2; shift 2 ;;
    --wheels=*) wheels=${1#*=}; shift ;;
    *) args+=("$1"); shift ;;
  esac
done

if [ -n "$wheels" ]; then
  site=${TMPDIR:-/tmp}/sedtk-gpu-site
  echo "gpu_check: installing the wheels of $wheels into $site"
  "$python" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$site" "$wheels"/*.whl
  export PYTHONPATH="$site${PYTHONPATH:+:$PYTHONPATH}"
fi

here=$(pwd -P)
imported=$("$python" -c 'import pathlib, sedtk; print(pathlib.Path(sedtk.__file__).resolve().parent)' 2>/dev/null || true)
if [ "$imported" != "$here/sedtk" ]; then
  echo "gpu_check: pip install --no-deps -e . (Python imports sedtk from '${imported:-nowhere}')"
  if ! "$python" -m pip install -q --no-deps --no-build-isolation -e . 2>&1 | tail -3; then
    echo "gpu_check: the editable install failed; using PYTHONPATH=$here instead"
  fi
  imported=$("$python" -c 'import pathlib, sedtk; print(pathlib.Path(sedtk.__file__).resolve().parent)' 2>/dev/null || true)
  [ "$imported" = "$here/sedtk" ] || export PYTHONPATH="$here${PYTHONPATH:+:$PYTHONPATH}"
fi

# what sedtk's training and decoding import (decoding checks every input for speech: silero_vad);
# the rest (scoring, evidence measurements) is not used here
missing=$("$python" - <<'PY'
import importlib.util
need = ["torch", "torchaudio", "transformers", "peft", "tokenizers", "safetensors", "typer", "rich",
        "numpy", "scipy", "pandas", "yaml", "soundfile", "silero_vad"]
print(" ".join(n for n in need if importlib.util.find_spec(n) is None))
PY
)
if [ -n "$missing" ]; then
  echo "gpu_check: error: missing Python packages: $missing (carry their wheels: bench/gpu/README.md)" >&2
  exit 1
fi
exec "$python" bench/gpu/gpu_check.py "${args[@]}"
