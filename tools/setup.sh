#!/usr/bin/env bash
# One-time set-up of a fresh checkout: system packages (tools/install_deps.sh) and a virtual
# environment in .venv with sedtk installed in editable mode plus its development extras.
#
# torch/torchaudio are installed first as a pair known to import together (overridable):
#   SEDTK_TORCH="torch==2.14.1 torchaudio==2.11.0"   (default; CUDA build, also runs on CPU)
# Re-running is cheap: an existing .venv is reused.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

bash tools/install_deps.sh

python=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv with $($python --version)"
  "$python" -m venv .venv
fi
pip=".venv/bin/python -m pip"
torch_spec=${SEDTK_TORCH:-"torch==2.14.1 torchaudio==2.11.0"}
# shellcheck disable=SC2086
$pip install -q $torch_spec
.venv/bin/python -c "import torch, torchaudio" || { echo "setup: torch/torchaudio do not import together" >&2; exit 1; }
$pip install -q -e ".[dev,tensorboard]"
.venv/bin/sedtk --version
echo "setup: ready (activate with: . .venv/bin/activate)"
