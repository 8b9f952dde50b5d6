"""Why LLR collapses to a constant predictor at MNIST's eps 0.3 with the
weights of Qin et al. (2019) (lambda 4, mu 3, set for CIFAR-10 at eps 8/255).

For each checkpoint given, the three terms of the LLR objective
``L(x) + lam * gamma(x, d) + mu * |d^T grad_x L(x)|`` (lfr_rs.losses.LLR) on the
first N images, at each radius of ``--eps``, beside the objective of a constant
predictor (uniform logits: cross-entropy log C and both regularizers 0). When
a model that classifies pays more than log C, the constant predictor is the
lower objective, and SGD finds it.

    python benchmarks/studies/llr_collapse.py runs/warmup-mnist-w0.3/at-s1000/checkpoint.pt \
        --dataset mnist --data-root ../shared/data/mnist --eps 0.0314,0.1,0.3
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import torch
import torch.nn.functional as F

from lfr_rs import llr_perturb
from lfr_rs.data import load_fashion_mnist, load_mnist
from lfr_rs.training import load_model


def terms(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float, steps: int) -> dict:
    torch.manual_seed(0)
    x_adv = llr_perturb(model, x, y, eps=eps, alpha=eps * 4 / 3 / steps, steps=steps)
    xr = x.detach().requires_grad_(True)
    clean = F.cross_entropy(model(xr), y, reduction="none")
    (grad,) = torch.autograd.grad(clean.sum(), xr)
    linear = ((x_adv - x) * grad).flatten(1).sum(1)
    with torch.no_grad():
        adv = F.cross_entropy(model(x_adv), y, reduction="none")
    gamma = (adv - clean.detach() - linear).abs()
    return {"eps": eps, "clean_ce": float(clean.mean()), "gamma": float(gamma.mean()),
            "linear": float(linear.abs().mean()), "grad_l1": float(grad.flatten(1).abs().sum(1).mean())}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("checkpoints", nargs="+", type=Path)
    p.add_argument("--dataset", default="mnist")
    p.add_argument("--data-root")
    p.add_argument("--eps", default="0.0314,0.1,0.3")
    p.add_argument("--n", type=int, default=500)
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--lam", type=float, default=4.0)
    p.add_argument("--mu", type=float, default=3.0)
    p.add_argument("--json", type=Path)
    args = p.parse_args()
    load = load_mnist if args.dataset == "mnist" else load_fashion_mnist
    x, y = load(args.data_root, train=False) if args.data_root or args.dataset != "mnist" else load(args.data_root)
    x, y = x[2000:2000 + args.n], y[2000:2000 + args.n]  # training images of the MNIST-8k split
    rows = []
    print(f"constant predictor: objective log 10 = {math.log(10):.3f}; lam {args.lam:g}, mu {args.mu:g}")
    print("| checkpoint | eps | clean CE | gamma | abs(d^T grad) | LLR objective | > log 10 |")
    print("|---|---|---|---|---|---|---|")
    for path in args.checkpoints:
        model, _ = load_model(path)
        for eps in map(float, args.eps.split(",")):
            t = terms(model, x, y, eps, args.steps)
            t["objective"] = t["clean_ce"] + args.lam * t["gamma"] + args.mu * t["linear"]
            t["checkpoint"] = str(path)
            rows.append(t)
            print(f"| {path.parent.name} | {eps:g} | {t['clean_ce']:.3f} | {t['gamma']:.3f} | {t['linear']:.3f} | "
                  f"{t['objective']:.3f} | {'yes' if t['objective'] > math.log(10) else 'no'} |")
    if args.json:
        args.json.write_text(json.dumps({"lam": args.lam, "mu": args.mu, "rows": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
