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

# A second torch (2.11.0): a venv with only that torch on .venv's Python, the
# variant build, the kernel tests against it, a real mismatched import, then the
# GPU pack of that build with its CPU dry run. On by default; the time it adds is
# printed and stated in the README. LFR_TEST_VARIANTS=0 skips it, =1 makes it
# required; by default a machine without the disk space it needs (about 10 GiB
# for a fresh venv: test_torch_variant.sh checks first and exits with 75) gets a
# SKIPPED line saying so instead of a failure inside pip. The wheel and sdist
# check (two fresh torch venvs, a second full build) runs with LFR_PACKAGE_CHECK=1.
if [ "${LFR_TEST_VARIANTS:-auto}" != 0 ]; then
    t_variants=$SECONDS
    echo "== torch 2.11.0 variant"
    rc=0
    bash scripts/test_torch_variant.sh 2.11.0 || rc=$?
    if [ "$rc" = 75 ] && [ "${LFR_TEST_VARIANTS:-auto}" = auto ]; then
        echo "== torch 2.11.0 variant SKIPPED: not enough disk space (above); LFR_TEST_VARIANTS=1 makes this an error"
    elif [ "$rc" != 0 ]; then
        exit "$rc"
    else
        GPU_PYTHON=$(python -c 'import sys; print("%d.%d" % sys.version_info[:2])') bash scripts/gpu_check.sh pack
        echo "== second torch + GPU pack: $((SECONDS - t_variants)) s"
    fi
fi
if [ "${LFR_PACKAGE_CHECK:-0}" != 0 ]; then
    t_package=$SECONDS
    bash scripts/package_check.sh 2.13.0
    echo "== wheel and sdist: $((SECONDS - t_package)) s"
fi
