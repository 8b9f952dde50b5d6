"""Which defaults make a short run train? 3-epoch runs of ``lfr_rs.training.train``
on 8000 MNIST test images (the first 2000 held out and evaluated), standard
training and PGD-AT (eps 0.3, step 0.03, 10 steps), at lr 0.01 and 0.05 with
the default (scaled) schedule. Writes ``results/short_run_defaults.json``.

    python benchmarks/studies/short_run_defaults.py --threads 1
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/_common.py
import _common  # noqa: E402

from lfr_rs.attacks import pgd  # noqa: E402
from lfr_rs.training import TrainConfig, train  # noqa: E402

RUNS = [
    ("standard", {}, 0.01),
    ("standard", {}, 0.05),
    ("at", {"eps": 0.3, "alpha": 0.03, "steps": 10}, 0.01),
    ("at", {"eps": 0.3, "alpha": 0.03, "steps": 10}, 0.05),
]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default=_common.DEFAULT_DATA)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--pgd-n", type=int, default=500, help="held-out images attacked with PGD-40 (eps 0.3)")
    p.add_argument("--json", default="results/short_run_defaults.json")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    rows = []
    for method, options, lr in RUNS:
        config = TrainConfig(method=method, options=options, dataset="mnist", data_root=args.data,
                             train_split="test", holdout=2000, epochs=args.epochs, lr=lr, seed=0)
        with tempfile.TemporaryDirectory() as out:
            tic = time.perf_counter()
            result = train(config, out, progress=False, verbose=False)
            seconds = time.perf_counter() - tic
        x, y = _common.load_mnist_test(args.data)
        x, y = x[:2000], y[:2000]
        model = result.model
        with torch.no_grad():
            clean = float((model(x).argmax(1) == y).float().mean())
        xa, ya = x[: args.pgd_n], y[: args.pgd_n]
        adv = pgd(model, xa, ya, eps=0.3, alpha=0.01, steps=40, keep_best=True)
        with torch.no_grad():
            robust = float((model(adv).argmax(1) == ya).float().mean())
        row = {"method": method, "options": options, "lr": lr, "milestones": list(config.resolved().milestones),
               "clean": clean, "pgd40": robust, "train_acc": [e["train_acc"] for e in result.history],
               "train_s": seconds}
        rows.append(row)
        print(f"{method:9s} lr {lr:<5} milestones {row['milestones']}: clean {clean:.2%}  PGD-40 {robust:.2%}  "
              f"train acc {row['train_acc']}  {seconds:.0f}s", flush=True)
    path = _common.write_json(args.json, {"settings": vars(args), "env": _common.env_info(), "rows": rows})
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
