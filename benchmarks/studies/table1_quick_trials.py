"""The measurements behind the ``quick`` preset of ``lfr-rs table1``: trains each
Table 1 method at a candidate budget and reports clean and PGD accuracy, the
training time and the SGD steps, so that the preset's budget is chosen from
numbers (results/table1_quick_trials.txt).

    python benchmarks/studies/table1_quick_trials.py --dataset fashion-mnist --train-n 2000 --epochs 3 \
        --inner-steps 3 --batch 32 --lr 0.01 [--methods standard,at,trades,llr,lfr] [--seeds 1000]

Evaluation here is deliberately cheap (clean accuracy on --eval-n images and
PGD-10 at the table's eps on the first 200 of them); the table itself runs the
full protocol.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import tempfile
import time

import torch

import lfr_rs
from lfr_rs.experiments import table1
from lfr_rs.experiments.table1.presets import travel_alpha
from lfr_rs.training import load_data, train


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", default="fashion-mnist")
    p.add_argument("--data-root")
    p.add_argument("--train-split", default=None)
    p.add_argument("--holdout", type=int, default=None)
    p.add_argument("--train-n", type=int, required=True)
    p.add_argument("--eval-n", type=int, default=500)
    p.add_argument("--epochs", type=int, required=True)
    p.add_argument("--inner-steps", type=int, required=True)
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--lr", type=float, default=0.01)
    p.add_argument("--methods", default="standard,at,trades,llr,lfr")
    p.add_argument("--seeds", default="1000")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--json", default=None, help="append one JSON line per run to this file")
    a = p.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    for seed in (int(s) for s in a.seeds.split(",")):
        s = table1.resolve("quick", a.dataset, data_root=a.data_root, train_split=a.train_split, holdout=a.holdout,
                           seed=seed, methods=tuple(a.methods.split(",")))
        s = dataclasses.replace(s, train_n=a.train_n, eval_n=a.eval_n, epochs=a.epochs, batch_size=a.batch,
                                inner_steps=a.inner_steps, inner_alpha=travel_alpha(s.eps, a.inner_steps))
        data = load_data(dataclasses.replace(s.train_config(s.methods[0]), subset=None))
        x, y = data.eval_x[: a.eval_n], data.eval_y[: a.eval_n]
        for method in s.methods:
            config = dataclasses.replace(s.train_config(method), lr=a.lr)
            with tempfile.TemporaryDirectory() as out:
                tic = time.perf_counter()
                result = train(config, out, resume=False, progress=False, verbose=False)
                train_s = time.perf_counter() - tic
            model = result.model.eval()
            with torch.no_grad():
                clean = float((model(x).argmax(1) == y).float().mean())
            torch.manual_seed(0)
            adv = lfr_rs.pgd(model, x[:200], y[:200], eps=s.eps, alpha=s.eps / 4, steps=10, keep_best=True)
            with torch.no_grad():
                robust = float((model(adv).argmax(1) == y[:200]).float().mean())
            steps = -(-a.train_n // a.batch) * a.epochs
            row = {"dataset": a.dataset, "eps": s.eps, "method": method, "seed": seed, "train_n": a.train_n,
                   "epochs": a.epochs, "inner_steps": a.inner_steps, "batch": a.batch, "lr": a.lr, "sgd_steps": steps,
                   "train_s": round(train_s, 1), "clean": clean, "pgd10": robust, "threads": torch.get_num_threads()}
            print(f"{a.dataset} eps {s.eps:g} seed {seed} {method:<8} n {a.train_n} x{a.epochs} K{a.inner_steps} "
                  f"b{a.batch} lr {a.lr:g} ({steps} steps): clean {100 * clean:.1f}%  PGD-10 {100 * robust:.1f}%  "
                  f"train {train_s:.0f} s", flush=True)
            if a.json:
                with open(a.json, "a") as f:
                    f.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
