#!/usr/bin/env bash
# The main job on a fresh machine: set everything up, then train a SmallCNN on
# Fashion-MNIST and print its robust-accuracy table (clean, FGSM, PGD-40,
# MI-FGSM, DDN). Extra arguments go to `lfr-rs quickstart`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# shellcheck disable=SC1091
source .venv/bin/activate
lfr-rs quickstart "$@"
