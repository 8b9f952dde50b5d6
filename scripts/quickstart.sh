#!/usr/bin/env bash
# The main job on a fresh machine: set everything up, then reproduce the
# paper's Table 1 at the quick preset on Fashion-MNIST (Standard, AT, TRADES,
# LLR and LFR trained and attacked with FGSM, PGD-40, MI-FGSM, DDN and the
# strong APGD/Square cascade; 13.6 minutes on 2 CPU cores, 24.7 with the set-up
# from a fresh clone) and print it beside the paper's rows. Extra
# arguments go to `lfr-rs table1` (e.g. --out DIR, --seed N).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# shellcheck disable=SC1091
source .venv/bin/activate
lfr-rs table1 --preset quick --dataset fashion-mnist "$@"
