#!/usr/bin/env bash
# lfr-rs on a GPU, in two halves.
#
#   bash scripts/gpu_check.sh pack   # here, on the CPU: builds the torch 2.11 wheel for Python 3.12 (GPU_PYTHON=3.11:
#                                    # for another Python, as CI's dry run does) (the GPU machine has
#                                    # torch 2.11.0+cu130 and Python 3.12, and no package registry), packs
#                                    # dist/gpu/ (<= 64 MiB), then runs the `run` half on the CPU (--quick)
#                                    # against the pack, to prove it before any GPU time is spent
#   bash scripts/gpu_check.sh run    # on the GPU machine, in the repository root, with dist/gpu carried:
#                                    # device tool: run(command="bash scripts/gpu_check.sh run", carry=["dist/gpu"])
#
# `run` does, with the packed extension and pure-Python package on PYTHONPATH:
#   * tests/test_gpu.py and test_gpu_graphs.py (every kernel on CUDA tensors, CPU-vs-CUDA agreement, parity with torchattacks
#     on CUDA, packed here, or with tests/reference/ if it does not import); a skipped test fails the run;
#   * benchmarks/bench_attacks.py and bench_lfr.py on cuda at batch 128 and at GPU_BATCH (default 8192,
#     a batch that fills the GPU for SmallCNN), and bench_autocast.py (bfloat16 autocast: how far the
#     robust accuracy of the reference models moves, PGD/APGD time on SmallCNN and ResNet18), and bench_graphs.py
#     (PGD-40 through a CUDA graph against eager, torchattacks and the captured plain loop), writing JSON (device named in each) to
#     $OUT/benchmarks/results/ when $OUT is set (the device tool brings that back), else benchmarks/results/.
# Environment: DEVICE (default cuda), GPU_BATCH (8192), QUICK=1 (tiny sizes: what `pack` uses on the CPU),
# TESTS_ONLY=1 (the tests, no benchmarks).
set -euo pipefail
cd "$(dirname "$0")/.."
PACK=dist/gpu
MINOR=2.11

pack() {
    # GPU_PYTHON: the Python to pack for (the GPU machine's 3.12; CI packs its own build's as a dry run)
    local pyver=${GPU_PYTHON:-3.12}
    local venv=.venv-torch$MINOR-py$pyver dist=dist/torch-$MINOR-py$pyver
    if ! ls "$dist"/lfr_rs-*.whl >/dev/null 2>&1; then
        LFR_VARIANT_PYTHON=$pyver bash scripts/test_torch_variant.sh $MINOR.0
    fi
    local wheel
    wheel=$(ls "$dist"/lfr_rs-*.whl | head -n1)
    case "$wheel" in
        *cp312*) ;;
        *) echo "warning: $wheel is not a CPython 3.12 wheel; the GPU machine runs Python 3.12 (a dry run only)" >&2 ;;
    esac
    rm -rf "$PACK"
    mkdir -p "$PACK/site" "$PACK/mnist"
    "$venv/bin/python" -m zipfile -e "$wheel" "$PACK/site"
    # torchattacks is pure Python; the GPU machine does not have it
    local site
    site=$("$venv/bin/python" -c "import sysconfig; print(sysconfig.get_paths()['purelib'])")
    if [ -d "$site/torchattacks" ]; then cp -r "$site/torchattacks" "$PACK/site/"; fi
    # pure-Python tools the run needs; put on the path there only if the machine lacks one of them
    mkdir -p "$PACK/fallback"
    for m in pytest _pytest pluggy iniconfig packaging tqdm py.py; do
        if [ -e "$site/$m" ]; then cp -r "$site/$m" "$PACK/fallback/"; fi
    done
    find "$PACK/site" "$PACK/fallback" -name __pycache__ -prune -exec rm -rf {} +
    cp "${LFR_MNIST_ROOT:-../shared/data/mnist}"/t10k-*-idx*-ubyte.gz "$PACK/mnist/"
    local bytes
    bytes=$(du -sb "$PACK" | cut -f1)
    echo "== packed $PACK: $((bytes / 1024)) KiB (limit 64 MiB with the working tree)"
    [ "$bytes" -lt $((48 * 1024 * 1024)) ] || { echo "error: $PACK is too large" >&2; exit 1; }
    # The run half on the CPU, against the pack, with tiny sizes.
    DEVICE=cpu QUICK=1 PYTHON="$PWD/$venv/bin/python" bash "$0" run
    echo "== pack ok. On the GPU machine: run(command=\"bash scripts/gpu_check.sh run\", carry=[\"$PACK\"])"
}

run() {
    local py=${PYTHON:-python3} device=${DEVICE:-cuda} big=${GPU_BATCH:-8192} quick=()
    [ "${QUICK:-0}" = 1 ] && quick=(--quick --repeats 2)
    export PYTHONPATH="$PWD/$PACK/site${PYTHONPATH:+:$PYTHONPATH}" LFR_MNIST_ROOT="$PWD/$PACK/mnist" PYTHONUNBUFFERED=1 \
        LFR_RS_REFERENCE_DIR="$PWD/results/reference"
    local results=${OUT:+$OUT/}benchmarks/results root=$PWD m
    for m in pytest tqdm; do
        if ! "$py" -c "import $m" 2>/dev/null; then
            echo "== $m is not installed here: using the packed pure-Python tools"
            export PYTHONPATH="$PYTHONPATH:$PWD/$PACK/fallback"
            break
        fi
    done
    mkdir -p "$results"
    (cd /tmp && "$py" -c "
import sys, torch, lfr_rs
print('python', sys.version.split()[0], '| torch', torch.__version__, '| lfr_rs built against torch', lfr_rs.__torch_version__)
print('device:', torch.cuda.get_device_name() if torch.cuda.is_available() else 'no CUDA device')
assert lfr_rs.__file__.startswith('$root/$PACK/site'), lfr_rs.__file__
")
    echo "== tests/test_gpu.py on $device"
    local log
    log=$(mktemp)
    set +e
    (cd tests && "$py" -m pytest -q -p no:cacheprovider -rs -c ../pyproject.toml --rootdir=.. test_gpu.py test_gpu_graphs.py attacks/test_reference_attacks.py 2>&1) | tee "$log"
    local rc=${PIPESTATUS[0]}
    set -e
    # the benchmarks run even when a test failed (GPU time is scarce); the exit status reports the tests
    if [ "$device" = cuda ] && grep -q "skipped" "$log"; then
        echo "error: tests were skipped on the GPU machine" >&2; rc=1
    fi
    local tag=$device
    [ "${QUICK:-0}" = 1 ] && tag=${device}_quick
    [ "${TESTS_ONLY:-0}" = 1 ] && return "$rc"
    for batch in 128 "$big"; do
        [ "${QUICK:-0}" = 1 ] && [ "$batch" != 128 ] && continue
        echo "== attack benchmark, $device, batch $batch"
        "$py" benchmarks/bench_attacks.py --device "$device" --batch "$batch" "${quick[@]}" \
            --json "$results/attacks_${tag}_b$batch.json"
        echo "== LFR-step benchmark, $device, batch $batch"
        "$py" benchmarks/bench_lfr.py --device "$device" --batch "$batch" --malloc default "${quick[@]}" \
            --json "$results/lfr_step_${tag}_b$batch.json"
    done
    echo "== CUDA graphs: PGD-40 captured vs eager vs torchattacks vs the device's limit, $device"
    "$py" benchmarks/bench_graphs.py --device "$device" "${quick[@]}" --json "$results/graphs_${tag}.json"
    echo "== mixed precision (autocast bf16): robust accuracy moved, and time, $device"
    "$py" benchmarks/bench_autocast.py --device "$device" "${quick[@]}" --json "$results/autocast_${tag}.json"
    [ "$rc" = 0 ] || echo "error: the GPU tests failed (exit $rc); see above" >&2
    return "$rc"
}

case "${1:-}" in
    pack) pack ;;
    run) run ;;
    *) echo "usage: bash scripts/gpu_check.sh pack|run" >&2; exit 2 ;;
esac
