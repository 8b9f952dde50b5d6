#!/usr/bin/env bash
# Sets up a development environment in ./.venv: PyTorch 2.13.0 (the only
# version tch 0.26 builds against), the test tools, Debian's Fashion-MNIST,
# and the extension built in release mode. Safe to re-run.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -d /usr/share/datasets/fashion-mnist ]; then
    if [ "$(id -u)" = 0 ]; then
        (apt-get update -qq && apt-get install -y -qq dataset-fashion-mnist) >/dev/null
    else
        echo "note: Fashion-MNIST missing; run 'sudo apt-get install dataset-fashion-mnist'" >&2
    fi
fi

command -v cargo >/dev/null || { echo "error: Rust (cargo) is required: https://rustup.rs" >&2; exit 1; }

[ -x .venv/bin/python ] || python3 -m venv .venv
# shellcheck disable=SC1091
source .venv/bin/activate
python -m pip install -q --upgrade pip
python -m pip install -q "torch==2.13.0" "torchvision==0.28.0" numpy tqdm \
    pytest pytest-timeout mypy scipy "maturin>=1.5,<2"
python -m pip install -q matplotlib  # lfr-rs table1 draws its bar chart with it
python -m pip install -q --no-deps "torchattacks==3.5.1"
# figures (lfr_rs.plots) and notebook execution (tests/test_notebooks.py)
python -m pip install -q "matplotlib==3.11.2" "nbclient==0.11.0" "nbformat==5.11.1" "ipykernel==7.4.0"

export LIBTORCH_USE_PYTORCH=1
maturin develop --release -q
