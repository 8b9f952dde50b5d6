#!/usr/bin/env bash
# The main job on a fresh machine: set everything up, then reproduce the
# paper's Table 1 at the quick preset on Fashion-MNIST (Standard, AT, TRADES,
# LLR and LFR trained and attacked with FGSM, PGD-40, MI-FGSM and DDN; about
# 15 minutes on 2 CPU cores) and print it beside the paper's rows. Extra
# arguments go to `lfr-rs table1` (e.g. --out DIR, --seed N).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# shellcheck disable=SC1091
source .venv/bin/activate
lfr-rs table1 --preset quick --dataset fashion-mnist "$@"
