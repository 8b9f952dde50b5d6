#!/usr/bin/env bash
# Builds and tests lfr-rs against a second PyTorch (default 2.11.0), beside the
# 2.13.0 of scripts/setup.sh: CI calls it from scripts/test.sh.
#
#   bash scripts/test_torch_variant.sh [2.11.0]
#   LFR_VARIANT_PYTHON=3.12 bash scripts/test_torch_variant.sh 2.11.0   # the GPU machine's Python
#
# 1. .venv-torch<X.Y>-py<P>: a venv with only that torch, the build and the test
#    tools, on Python P (default: the Python of .venv, so that step 4 is real;
#    LFR_VARIANT_PYTHON=3.12 or a path chooses another);
# 2. builds the wheel with that venv's pip, *without activating it*
#    (`venv/bin/pip wheel --no-build-isolation .`): the build backend picks
#    variants/torch-<X.Y>/Cargo.toml and that venv's torch;
# 3. installs the wheel there and runs the kernel tests against it;
# 4. loads that build under the 2.13 venv of scripts/setup.sh (a real mismatch,
#    same Python): it must raise the ImportError that names both versions.
# The wheel stays in dist/torch-<X.Y>-py<P>/, where scripts/gpu_check.sh packs it from.
set -euo pipefail
cd "$(dirname "$0")/.."
TORCH=${1:-2.11.0}
MINOR=${TORCH%.*}

# The Python to build for: a version (3.12) or a path; default the one of .venv.
find_python() {
    local want=$1 c
    if [ -x "$want" ]; then echo "$want"; return; fi
    for c in "python$want" "$(ls -d "${PYENV_ROOT:-$HOME/.pyenv}"/versions/"$want"*/bin/python"$want" 2>/dev/null | tail -n1)"; do
        # a pyenv shim can exist without that version being selected: it must run
        if [ -n "$c" ] && "$c" -c "" 2>/dev/null; then command -v "$c"; return; fi
    done
    echo "error: no Python $want found for the torch $TORCH venv (set LFR_VARIANT_PYTHON to a version or a path)" >&2
    exit 1
}
MAIN_PYVER=$( [ -x .venv/bin/python ] && .venv/bin/python -c 'import sys; print("%d.%d" % sys.version_info[:2])' || true)
PY=$(find_python "${LFR_VARIANT_PYTHON:-${MAIN_PYVER:-3.12}}")
PYVER=$("$PY" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
VENV=.venv-torch$MINOR-py$PYVER
DIST=dist/torch-$MINOR-py$PYVER
t0=$SECONDS

# Disk first: a fresh venv with the PyPI CUDA torch takes about 5 GB, pip unpacks
# the wheels beside it, and the build adds about 0.5 GB. A full disk midway is an
# OSError deep inside pip; this says what is needed instead and exits with 75,
# which scripts/test.sh reports as a skip unless LFR_TEST_VARIANTS=1.
free_gib() { df -Pk "$1" | awk 'NR == 2 { printf "%d", $4 / 1048576 }'; }
venv_ready() { [ -x "$VENV/bin/python" ] && "$VENV/bin/python" -c "import torch, sys; sys.exit(torch.__version__.split('+')[0] != '$TORCH')" 2>/dev/null; }
if venv_ready; then need=2; else need=${LFR_VARIANT_NEED_GIB:-10}; fi
for where in . "${TMPDIR:-/tmp}"; do
    have=$(free_gib "$where")
    if [ "$have" -lt "$need" ]; then
        echo "error: the torch $TORCH variant needs about $need GiB free on $(df -P "$where" | awk 'NR == 2 { print $6 }') ($where); $have GiB are free." >&2
        echo "       Free some space, or skip it with LFR_TEST_VARIANTS=0." >&2
        exit 75
    fi
done

if ! venv_ready; then
    rm -rf "$VENV"
    "$PY" -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install -q "torch==$TORCH" "maturin>=1.5,<2" numpy tqdm pytest pytest-timeout scipy
"$VENV/bin/python" -m pip install -q --no-deps "torchattacks==3.5.1"
echo "== torch $TORCH venv ready ($((SECONDS - t0)) s)"

t1=$SECONDS
rm -rf "$DIST"
# Not activated on purpose: the backend must find this venv's torch by itself.
env -u VIRTUAL_ENV CARGO_TARGET_DIR="$PWD/target/torch-$MINOR-py$PYVER" \
    "$VENV/bin/pip" wheel -q --no-build-isolation --no-deps -w "$DIST" .
"$VENV/bin/pip" install -q --no-deps --force-reinstall "$DIST"/lfr_rs-*.whl
echo "== built and installed the torch $TORCH wheel ($((SECONDS - t1)) s)"

t2=$SECONDS
TORCH_LIB=$("$VENV/bin/python" -c "import os, torch; print(os.path.join(os.path.dirname(torch.__file__), 'lib'))")
# Run from the tests' folder so the installed package, not ./python, is imported.
(cd tests && LD_LIBRARY_PATH="$TORCH_LIB" "../$VENV/bin/python" -m pytest -q -p no:cacheprovider \
    --rootdir=.. -c ../pyproject.toml \
    attacks/test_attacks.py test_errors.py regularizers/test_penalty.py regularizers/test_lfr.py \
    regularizers/test_trades.py regularizers/test_llr.py training/test_losses.py \
    test_packaging.py attacks/test_reference_attacks.py test_gpu.py)
echo "== kernel tests against torch $TORCH ($((SECONDS - t2)) s)"

# A real mismatch: the torch-$TORCH build under the 2.13 venv.
if [ "$MINOR" != 2.13 ] && [ "$PYVER" != "$MAIN_PYVER" ]; then
    echo "== mismatch check skipped: .venv runs Python ${MAIN_PYVER:-(none)}, this build is for $PYVER"
elif [ "$MINOR" != 2.13 ]; then
    site=$(mktemp -d)
    (cd "$site" && "$OLDPWD/$VENV/bin/python" -m zipfile -e "$OLDPWD/$DIST"/lfr_rs-*.whl .)
    out=$(cd /tmp && PYTHONPATH="$site" "$OLDPWD/.venv/bin/python" -c "import lfr_rs" 2>&1 || true)
    rm -rf "$site"
    if ! grep -q "ImportError: lfr_rs was compiled against torch $TORCH" <<<"$out" \
        || ! grep -q "but torch 2.13" <<<"$out" || ! grep -q -- "--no-build-isolation" <<<"$out"; then
        echo "error: importing the torch $TORCH build under torch 2.13 did not raise the expected ImportError:" >&2
        echo "$out" >&2
        exit 1
    fi
    echo "== a torch $TORCH build under torch 2.13 raises: $(grep ImportError <<<"$out")"
fi
echo "== torch $TORCH variant: $((SECONDS - t0)) s in all"
