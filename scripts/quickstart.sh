#!/usr/bin/env bash
# The main job on a fresh machine: set everything up, then reproduce the
# paper's Table 1 at the quick preset on Fashion-MNIST (Standard, AT, TRADES,
# LLR and LFR trained and attacked with FGSM, PGD-40, MI-FGSM, DDN and the
# strong APGD/Square cascade), print it beside the paper's rows, and then the
# committed reference table (every method trained near convergence, hours of
# CPU time) beside it. Extra arguments go to `lfr-rs table1` (e.g. --out DIR,
# --seed N).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# shellcheck disable=SC1091
source .venv/bin/activate
lfr-rs table1 --preset quick --dataset fashion-mnist "$@"
reference=results/table1-reference-fashion-mnist/table1.md
echo
echo "Beside it, what the methods reach when trained near convergence (the committed reference table:"
echo "60,000 training images, 4 epochs, 10 inner steps, 1,000 test images, eps 0.1; $reference):"
grep -E '^\|( Defense|---| [^|]+\| ours \|)' "$reference"
