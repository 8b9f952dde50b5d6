"""Is the finite-difference Hessian-vector product useful for LFR?

``lfr_perturb(hvp="fd")`` replaces the exact ascent direction ``H(x') sign(g(x'))``
(double backprop) by ``(g(x' + h sign(g)) - g(x')) / h`` (two plain passes).
This script measures, for several step sizes ``h``:

1. direction: cosine between fd and exact directions at clean points, on the
   ReLU/max-pool SmallCNN and on its smooth twin (softplus, average pooling);
2. ascent: the local flatness ``gamma = ||d_x L(x')||_1`` that 40 steps of
   each reach (the objective of eq. 3), against the random start alone;
3. training: a short LFR run with each, evaluated by PGD-40 robust accuracy
   (and a standard run as the baseline), on the same images and schedule.

    python benchmarks/studies/fd_study.py [--fd-steps 0.001,0.01,0.1] [--train-fd 0.01,0.1] [--quick]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
import tempfile
import time
from typing import Any, Dict, List, Optional

import torch
import torch.nn.functional as F

import lfr_rs
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/_common.py
from _common import (
    DEFAULT_DATA,
    env_info,
    load_mnist_test,
    markdown_table,
    set_threads,
    train_standard_model,
    write_json,
)
from lfr_rs.models import SmallCNN
from lfr_rs.training import TrainConfig, train

EPS, ALPHA, STEPS = 0.3, 0.01, 40


def direction_and_ascent(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, hs: List[float],
                         seed: int) -> List[Dict[str, Any]]:
    exact = lfr_rs.flatness_grad(model, x, y, hvp="exact")
    torch.manual_seed(seed)
    start = (x + torch.empty_like(x).uniform_(-EPS, EPS)).clamp(0, 1)
    gamma_start = lfr_rs.grad_norm_penalty(model, start, y).mean().item()
    rows = []
    for hvp, h in [("exact", None)] + [("fd", h) for h in hs]:
        extra = {} if h is None else {"fd_step": h}
        d = exact if h is None else lfr_rs.flatness_grad(model, x, y, hvp="fd", **extra)
        cos = F.cosine_similarity(d.flatten(1), exact.flatten(1)).mean().item()
        torch.manual_seed(seed)
        t0 = time.perf_counter()
        _, gamma = lfr_rs.local_flatness(model, x, y, eps=EPS, alpha=ALPHA, steps=STEPS, hvp=hvp, **extra)
        rows.append({"hvp": hvp, "fd_step": h, "cosine_to_exact": cos, "gamma": gamma.mean().item(),
                     "gamma_random_start": gamma_start, "seconds": time.perf_counter() - t0})
    return rows


def robust(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> Dict[str, float]:
    out = {}
    with torch.no_grad():
        out["clean"] = (model(x).argmax(1) == y).float().mean().item()
    for eps in (0.1, 0.2, 0.3):
        adv = lfr_rs.pgd(model, x, y, eps=eps, alpha=0.01, steps=40, keep_best=True)
        with torch.no_grad():
            out[f"pgd40_eps{eps}"] = (model(adv).argmax(1) == y).float().mean().item()
    return out


def training(args: argparse.Namespace, x: torch.Tensor, y: torch.Tensor) -> List[Dict[str, Any]]:
    runs: List[Dict[str, Any]] = [{"method": "standard", "options": {}}]
    lfr = {"steps": args.train_inner_steps, "alpha": args.train_alpha}
    runs.append({"method": "lfr", "options": {**lfr, "hvp": "exact"}})
    runs += [{"method": "lfr", "options": {**lfr, "hvp": "fd", "fd_step": h}} for h in args.train_fd]
    results = []
    for run in runs:
        config = TrainConfig(method=run["method"], options=run["options"], dataset="mnist", data_root=args.data,
                             train_split="test", holdout=args.holdout, subset=args.train_n, epochs=args.epochs,
                             milestones=(), seed=args.seed, model={"zero_init_last": False})
        with tempfile.TemporaryDirectory() as out:
            t0 = time.perf_counter()
            model = train(config, out, progress=False, verbose=False).model.eval()
            seconds = time.perf_counter() - t0
        results.append({**run, "train_seconds": seconds, **robust(model, x, y)})
        print(f"  trained {run}: {results[-1]}", file=sys.stderr, flush=True)
    return results


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default=DEFAULT_DATA)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--n", type=int, default=256, help="images for the direction/ascent part")
    parser.add_argument("--fd-steps", default="0.0001,0.001,0.01,0.03,0.1,0.3")
    parser.add_argument("--train-fd", default="0.01,0.1", help="fd steps to train with")
    parser.add_argument("--train-n", type=int, default=4096)
    parser.add_argument("--holdout", type=int, default=1000)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--train-inner-steps", type=int, default=5)
    parser.add_argument("--train-alpha", type=float, default=0.06)
    parser.add_argument("--skip-training", action="store_true")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--json", default=None)
    args = parser.parse_args(argv)
    hs = [float(v) for v in args.fd_steps.split(",")]
    args.train_fd = [float(v) for v in args.train_fd.split(",") if v]
    if args.quick:
        args.n, args.train_n, args.holdout, args.epochs = 32, 256, 128, 1
    threads = set_threads(args.threads)

    images, labels = load_mnist_test(args.data)
    n_train = 8000
    relu, clean = train_standard_model(images, labels, n_train=n_train, epochs=2, seed=args.seed)
    torch.manual_seed(args.seed)
    smooth = SmallCNN(zero_init_last=False, smooth=True).eval()
    x, y = images[n_train:n_train + args.n], labels[n_train:n_train + args.n]
    part1 = {"relu_standard_trained": direction_and_ascent(relu, x, y, hs, args.seed),
             "smooth_default_init": direction_and_ascent(smooth, x, y, hs, args.seed)}
    for name, rows in part1.items():
        print(f"\n{name}: fd vs exact, {len(y)} images, {STEPS} steps of {ALPHA}, eps {EPS}\n")
        print(markdown_table(["hvp", "h", "cosine to exact", "gamma reached", "gamma at random start", "s"],
                             [[r["hvp"], "-" if r["fd_step"] is None else f"{r['fd_step']:g}", r["cosine_to_exact"], r["gamma"], r["gamma_random_start"],
                               r["seconds"]] for r in rows]))

    part2: List[Dict[str, Any]] = []
    if not args.skip_training:
        part2 = training(args, images[:args.holdout], labels[:args.holdout])
        print(f"\nshort training ({args.train_n} images, {args.epochs} epochs, inner {args.train_inner_steps} "
              f"steps of {args.train_alpha}), PGD-40 on {args.holdout} held-out images\n")
        print(markdown_table(["method", "hvp", "h", "train s", "clean", "eps 0.1", "eps 0.2", "eps 0.3"],
                             [[r["method"], r["options"].get("hvp"), r["options"].get("fd_step"), r["train_seconds"],
                               r["clean"], r["pgd40_eps0.1"], r["pgd40_eps0.2"], r["pgd40_eps0.3"]] for r in part2]))

    payload = {"benchmark": "fd_study", "env": env_info(), "threads": threads, "relu_model_clean_acc": clean,
               "args": {k: v for k, v in vars(args).items()}, "direction_ascent": part1, "training": part2}
    path = args.json or ("benchmarks/results/fd_study_quick.json" if args.quick else "benchmarks/results/fd_study.json")
    print(f"\nwrote {write_json(path, payload)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
