#!/usr/bin/env bash
# Wheel and sdist, each installed into a fresh venv holding only the matching
# torch (and, for the sdist build, maturin), then smoke-tested there
# (scripts/smoke.py: one attack and one LFR training step) from outside the
# source tree. Also checks that an isolated `pip install <sdist>` stops with
# the message saying what to do. CI calls it from scripts/test.sh.
#
#   bash scripts/package_check.sh        # torch 2.13.0 (the default variant)
#   ONLY=wheel|sdist bash scripts/package_check.sh    # one of the two
#
# The torch wheels are downloaded once into dist/wheelhouse (pip keeps no cache
# here), so both fresh venvs install them without the network.
set -euo pipefail
cd "$(dirname "$0")/.."
TORCH=${1:-2.13.0}
BUILD_VENV=${BUILD_VENV:-.venv}   # has that torch and maturin (scripts/setup.sh)
PY=${PYTHON:-python3}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
t0=$SECONDS

"$BUILD_VENV/bin/python" -c "import torch, sys; sys.exit(torch.__version__.split('+')[0] != '$TORCH')" \
    || { echo "error: $BUILD_VENV does not hold torch $TORCH" >&2; exit 1; }
mkdir -p dist/wheelhouse
"$BUILD_VENV/bin/python" -m pip download -q -d dist/wheelhouse "torch==$TORCH" "maturin>=1.5,<2" numpy tqdm
echo "== torch $TORCH wheels in dist/wheelhouse ($((SECONDS - t0)) s)"

fresh_venv() {  # fresh_venv DIR [extra requirement...]: a venv with only torch (and what is named)
    "$PY" -m venv "$1"
    "$1/bin/pip" install -q --no-index --find-links dist/wheelhouse "torch==$TORCH" "${@:2}"
}

# --- wheel: maturin build --release
if [ "${ONLY:-}" != sdist ]; then
t1=$SECONDS
rm -rf dist/wheel
(source "$BUILD_VENV/bin/activate" && LIBTORCH_USE_PYTORCH=1 maturin build --release -q -o dist/wheel)
wheel=$(ls dist/wheel/lfr_rs-*.whl)
fresh_venv "$WORK/wheel-venv"
"$WORK/wheel-venv/bin/pip" install -q --no-index --find-links dist/wheelhouse "$wheel"
(cd "$WORK" && "$WORK/wheel-venv/bin/python" "$OLDPWD/scripts/smoke.py")
rm -rf "$WORK/wheel-venv"
echo "== wheel $(basename "$wheel"): installed into a fresh venv and smoke-tested ($((SECONDS - t1)) s)"
fi

# --- sdist: maturin sdist, built by pip against the venv's torch
if [ "${ONLY:-}" != wheel ]; then
t2=$SECONDS
rm -rf dist/sdist
(source "$BUILD_VENV/bin/activate" && maturin sdist -o dist/sdist >/dev/null)
sdist=$(ls dist/sdist/lfr_rs-*.tar.gz)
fresh_venv "$WORK/sdist-venv" "maturin>=1.5,<2"
# An isolated build cannot see the venv's torch: it must stop and say what to do.
if out=$("$WORK/sdist-venv/bin/pip" install --no-index --find-links dist/wheelhouse "$sdist" 2>&1); then
    echo "error: an isolated sdist build succeeded; it cannot have used the venv's torch" >&2; exit 1
fi
grep -q -- "--no-build-isolation" <<<"$out" || { echo "$out" >&2; echo "error: no advice in the isolated-build failure" >&2; exit 1; }
echo "== isolated sdist build stops with: $(grep -m1 -A1 'lfr-rs is compiled against' <<<"$out" | tr -s ' ' | head -c 300)"
# The target dir is shared with the development build only to reuse compiled dependencies;
# the lfr-rs crate itself compiles from the unpacked sdist.
CARGO_TARGET_DIR="$PWD/target" "$WORK/sdist-venv/bin/pip" install -q --no-index --find-links dist/wheelhouse \
    --no-build-isolation "$sdist"
(cd "$WORK" && "$WORK/sdist-venv/bin/python" "$OLDPWD/scripts/smoke.py")
rm -rf "$WORK/sdist-venv"
echo "== sdist $(basename "$sdist"): built against the venv's torch by pip, smoke-tested ($((SECONDS - t2)) s)"
fi
echo "== package check: $((SECONDS - t0)) s in all"
