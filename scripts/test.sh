#!/usr/bin/env bash
# The whole test suite: Rust unit tests (tch only), the stub check, pytest.
# Extra arguments go to pytest (e.g. --runslow).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# shellcheck disable=SC1091
source .venv/bin/activate
TORCH_LIB=$(python -c "import os, torch; print(os.path.join(os.path.dirname(torch.__file__), 'lib'))")
export LD_LIBRARY_PATH="$TORCH_LIB${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export LIBTORCH_USE_PYTORCH=1

echo "== cargo test"
cargo test --release --no-default-features -q
echo "== stubtest"
python -m mypy.stubtest lfr_rs._native --allowlist .stubtest-allowlist
echo "== pytest"
python -m pytest -q "$@"
