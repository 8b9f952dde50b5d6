"""Attack speed: lfr-rs vs torchattacks 3.5.1 vs the floor, on SmallCNN.

The floor of a k-step gradient attack is k x (one forward + one backward to
the input) in plain PyTorch, on the same batch: on a CPU the model is the cost,
so a loop at the floor has no room left. torchattacks has no DDN; its row is
compared with the plain-PyTorch DDN loop below instead.

The "PGD eval" row is the time to measure robust accuracy of a standard-trained
model: lfr-rs ``pgd(keep_best=True)`` (stops stepping samples once fooled) vs
torchattacks ``PGD`` followed by the accuracy check; both report the accuracy
they measure (lfr-rs's can only be lower or equal: it keeps the first fooling
iterate).

    python benchmarks/bench_attacks.py [--batch 128] [--repeats 5] [--steps 40]
        [--threads N] [--quick] [--json benchmarks/results/attacks.json]

Every side runs in this one process, with the same thread count and allocator
settings, after one untimed warm-up run each (a fresh process runs its first
forwards ~50% slower until a backward has run); timed runs are interleaved.
"""

from __future__ import annotations

import argparse
import math
import sys
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional

import torch
import torch.nn.functional as F
import torchattacks

import lfr_rs
from _common import (  # the script's folder is on sys.path
    accuracy,
    add_common_args,
    env_info,
    device_info,
    floor_fn,
    held_out_batch,
    json_path,
    load_mnist_test,
    markdown_table,
    set_threads,
    summary,
    time_interleaved,
    train_standard_model,
    write_json,
)

LINF_EPS, LINF_ALPHA = 0.3, 0.01  # TRADES' MNIST PGD-40 settings (alpha: --alpha)
L2_EPS, L2_ALPHA = 2.0, 0.1
MI_DECAY = 1.0
DDN_GAMMA, DDN_INIT_NORM, DDN_LEVELS = 0.05, 1.0, 256
N_TRAIN = 8000  # train on the first 8000 test images, evaluate on the rest


def ddn_torch(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, *, steps: int,
              gamma: float = DDN_GAMMA, init_norm: float = DDN_INIT_NORM, levels: int = DDN_LEVELS) -> torch.Tensor:
    """Plain-PyTorch DDN (Rony et al., 2019), the same algorithm as ``lfr_rs.ddn``."""
    view = (-1,) + (1,) * (x.dim() - 1)

    def l2(t: torch.Tensor) -> torch.Tensor:
        return t.flatten(1).norm(dim=1)

    worst = l2(torch.maximum(x, 1 - x))
    norm = torch.full_like(worst, init_norm)
    best_l2, best, delta = worst.clone(), x.clone(), torch.zeros_like(x)
    for i in range(steps):
        alpha = 0.01 + 0.99 * (1 + math.cos(math.pi * i / steps)) / 2
        adv = (x + delta).requires_grad_()
        logits = model(adv)
        (grad,) = torch.autograd.grad(F.cross_entropy(logits, y, reduction="sum"), adv)
        with torch.no_grad():
            is_adv = logits.argmax(1) != y
            d = l2(delta)
            improved = is_adv & (d < best_l2)
            best_l2 = torch.where(improved, d, best_l2)
            best = torch.where(improved.view(view), adv, best)
            g = l2(grad).view(view)
            unit = grad / g
            zero = g < 1e-12
            if zero.any():
                unit = torch.where(zero, torch.randn_like(grad), unit)
            delta = delta + alpha * unit
            norm = torch.where(is_adv, norm * (1 - gamma), norm * (1 + gamma)).minimum(worst)
            nxt = (x + delta * (norm / l2(delta)).view(view)).clamp(0, 1)
            delta = (nxt * (levels - 1)).round() / (levels - 1) - x
    return best


def ddn_stats(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, adv: torch.Tensor) -> Dict[str, float]:
    with torch.no_grad():
        fooled = model(adv).argmax(1) != y
    l2 = (adv - x).flatten(1).norm(dim=1)[fooled]
    return {"success_rate": float(fooled.float().mean()), "median_l2": float(l2.median()) if len(l2) else math.nan}


@dataclass
class Row:
    key: str
    name: str
    steps: int  # for the floor
    reference: str
    lfr: Callable[[], Any]
    other: Callable[[], Any]
    check: Callable[[Any, Any], Dict[str, Any]]  # compares the sides' warm-up outputs


def make_rows(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, *, steps: int, ddn_steps: int,
              alpha: float) -> List[Row]:
    linf = dict(eps=LINF_EPS, alpha=alpha, steps=steps)
    l2 = dict(eps=L2_EPS, alpha=L2_ALPHA, steps=steps)
    ta_fgsm = torchattacks.FGSM(model, eps=LINF_EPS)
    ta_pgd = torchattacks.PGD(model, **linf, random_start=False)
    ta_pgd_rs = torchattacks.PGD(model, **linf, random_start=True)
    ta_mi = torchattacks.MIFGSM(model, **linf, decay=MI_DECAY)
    ta_l2 = torchattacks.PGDL2(model, **l2, random_start=False)

    def lfr_pgd(keep_best: bool = False, random_start: bool = False) -> torch.Tensor:
        return lfr_rs.pgd(model, x, y, eps=LINF_EPS, alpha=alpha, steps=steps, random_start=random_start,
                          keep_best=keep_best)

    def diff(a: torch.Tensor, b: torch.Tensor) -> Dict[str, Any]:
        return {"max_abs_diff": float((a - b).abs().max())}

    def ddn_check(a: torch.Tensor, b: torch.Tensor) -> Dict[str, Any]:
        return {"lfr_rs": ddn_stats(model, x, y, a), "reference": ddn_stats(model, x, y, b)}

    def acc_check(a: float, b: float) -> Dict[str, Any]:
        return {"robust_acc_lfr_rs": a, "robust_acc_reference": b}

    return [
        Row("fgsm", "FGSM", 1, "torchattacks.FGSM",
            lambda: lfr_rs.fgsm(model, x, y, eps=LINF_EPS), lambda: ta_fgsm(x, y), diff),
        Row("pgd", f"PGD-{steps} linf", steps, "torchattacks.PGD", lfr_pgd, lambda: ta_pgd(x, y), diff),
        Row("mifgsm", f"MI-FGSM-{steps}", steps, "torchattacks.MIFGSM",
            lambda: lfr_rs.mifgsm(model, x, y, eps=LINF_EPS, alpha=alpha, steps=steps, decay=MI_DECAY),
            lambda: ta_mi(x, y), diff),
        Row("pgd_l2", f"PGD-{steps} L2", steps, "torchattacks.PGDL2",
            lambda: lfr_rs.pgd(model, x, y, eps=L2_EPS, alpha=L2_ALPHA, steps=steps, random_start=False, norm="l2"),
            lambda: ta_l2(x, y), diff),
        Row("ddn", f"DDN-{ddn_steps}", ddn_steps, "PyTorch DDN loop (torchattacks has none)",
            lambda: lfr_rs.ddn(model, x, y, steps=ddn_steps, gamma=DDN_GAMMA, init_norm=DDN_INIT_NORM,
                               levels=DDN_LEVELS),
            lambda: ddn_torch(model, x, y, steps=ddn_steps), ddn_check),
        Row("eval", f"PGD-{steps} eval keep_best", steps, "torchattacks.PGD + accuracy",
            lambda: accuracy(model, lfr_pgd(keep_best=True), y), lambda: accuracy(model, ta_pgd(x, y), y),
            acc_check),
        Row("eval_rs", f"PGD-{steps} eval keep_best, random start", steps, "torchattacks.PGD (default) + accuracy",
            lambda: accuracy(model, lfr_pgd(keep_best=True, random_start=True), y),
            lambda: accuracy(model, ta_pgd_rs(x, y), y), acc_check),
    ]


def run_row(row: Row, model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, repeats: int) -> Dict[str, Any]:
    fns = {"lfr_rs": row.lfr, "reference": row.other, "floor": floor_fn(model, x, y, row.steps)}
    times, outs = time_interleaved(fns, repeats)
    s = {k: summary(v, row.steps) for k, v in times.items()}
    lfr, ref, floor = (s[k]["median_ms"] for k in ("lfr_rs", "reference", "floor"))
    return {"key": row.key, "attack": row.name, "steps": row.steps, "reference_name": row.reference, **s,
            "lfr_over_reference": lfr / ref, "lfr_over_floor": lfr / floor, "reference_over_floor": ref / floor,
            "check": row.check(outs["lfr_rs"], outs["reference"])}


def targets(rows: List[Dict[str, Any]], device: str = "cpu") -> List[Dict[str, Any]]:
    """The targets: PGD within 3% of the floor and no slower than
    torchattacks; robust-accuracy evaluation at least 3x faster. On a GPU
    (launch-bound): PGD within 20% of the floor and at least 1.5x faster than
    torchattacks."""
    by = {r["key"]: r for r in rows}
    pgd = by["pgd"]
    if torch.device(device).type == "cuda":
        return [{"target": t, "value": v, "ok": ok} for t, v, ok in (
            (f"{pgd['attack']} on {device}: lfr-rs / floor <= 1.20", pgd["lfr_over_floor"], pgd["lfr_over_floor"] <= 1.2),
            (f"{pgd['attack']} on {device}: torchattacks / lfr-rs >= 1.5", 1 / pgd["lfr_over_reference"],
             1 / pgd["lfr_over_reference"] >= 1.5))]
    goals = [(f"{pgd['attack']}: lfr-rs / floor <= 1.03", pgd["lfr_over_floor"], 1.03, "<="),
             (f"{pgd['attack']}: lfr-rs / torchattacks <= 1.00", pgd["lfr_over_reference"], 1.0, "<=")]
    goals += [(f"{by[k]['attack']}: torchattacks / lfr-rs >= 3", 1 / by[k]["lfr_over_reference"], 3.0, ">=")
              for k in ("eval", "eval_rs")]
    return [{"target": t, "value": v, "ok": v <= lim if op == "<=" else v >= lim} for t, v, lim, op in goals]


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_common_args(parser, default_json="benchmarks/results/attacks.json",
                    quick_json="benchmarks/results/attacks_quick.json")
    parser.add_argument("--steps", type=int, default=40, help="steps of PGD / MI-FGSM / PGD-L2 / eval")
    parser.add_argument("--ddn-steps", type=int, default=100)
    parser.add_argument("--alpha", type=float, default=LINF_ALPHA, help="L-inf step of PGD / MI-FGSM / eval")
    parser.add_argument("--tune-malloc", action="store_true",
                        help="call lfr_rs.tune_malloc() first (process-wide: every side runs tuned)")
    args = parser.parse_args(argv)
    malloc_tuned = lfr_rs.tune_malloc() if args.tune_malloc else False
    if args.tune_malloc and not args.json:
        args.json = "benchmarks/results/attacks_quick_tuned.json" if args.quick else "benchmarks/results/attacks_tuned.json"
    n_train, epochs = N_TRAIN, args.model_epochs
    if args.quick:
        args.batch, args.repeats, args.steps, args.ddn_steps = 16, 2, 3, 5
        n_train, epochs = 1000, 1

    threads = set_threads(args.threads)
    env = env_info()
    images, labels = load_mnist_test(args.data)
    model, clean_acc = train_standard_model(images, labels, n_train=n_train, epochs=epochs, seed=args.seed)
    model = model.to(args.device)
    x, y = held_out_batch(images, labels, n_train, args.batch, args.device)
    env.update(device_info(args.device))
    torch.manual_seed(args.seed)

    rows = []
    for row in make_rows(model, x, y, steps=args.steps, ddn_steps=args.ddn_steps, alpha=args.alpha):
        rows.append(run_row(row, model, x, y, args.repeats))
        r = rows[-1]
        print(f"  {r['attack']}: lfr {r['lfr_rs']['median_ms']:.1f} ms, ref {r['reference']['median_ms']:.1f} ms, "
              f"floor {r['floor']['median_ms']:.1f} ms", file=sys.stderr, flush=True)

    print(f"\nSmallCNN (standard-trained, clean acc {clean_acc:.4f} on {len(labels) - n_train} held-out), "
          f"batch {len(y)}, {env['device_name']}, {threads} threads, malloc {'tuned' if malloc_tuned else 'default'}, "
          f"median of {args.repeats}, times in ms\n")
    print(markdown_table(
        ["attack", "lfr-rs", "reference", "floor", "lfr/ref", "lfr/floor", "ref/floor", "lfr ms/step", "reference is"],
        [[r["attack"], r["lfr_rs"]["median_ms"], r["reference"]["median_ms"], r["floor"]["median_ms"],
          r["lfr_over_reference"], r["lfr_over_floor"], r["reference_over_floor"], r["lfr_rs"]["per_step_ms"],
          r["reference_name"]] for r in rows]))
    for r in rows[-2:]:
        ev = r["check"]
        print(f"\nrobust accuracy ({r['attack']}): lfr-rs {ev['robust_acc_lfr_rs']:.4f}, "
              f"torchattacks {ev['robust_acc_reference']:.4f}")
    goals = targets(rows, args.device)
    for t in goals:
        print(f"target {t['target']}: {t['value']:.3f} {'ok' if t['ok'] else 'MISSED'}")

    model_info = {"arch": "SmallCNN(zero_init_last=False)", "optimizer": "SGD lr 0.01 momentum 0.9",
                  "epochs": epochs, "n_train": n_train, "clean_acc_heldout": clean_acc,
                  "clean_acc_batch": accuracy(model, x, y)}
    settings = {"device": args.device, "malloc_tuned": malloc_tuned, "batch": len(y), "repeats": args.repeats, "steps": args.steps, "ddn_steps": args.ddn_steps,
                "threads": threads, "quick": args.quick, "seed": args.seed, "model": model_info,
                "linf": {"eps": LINF_EPS, "alpha": args.alpha, "random_start": False},
                "l2": {"eps": L2_EPS, "alpha": L2_ALPHA, "random_start": False}, "mifgsm_decay": MI_DECAY,
                "ddn": {"gamma": DDN_GAMMA, "init_norm": DDN_INIT_NORM, "levels": DDN_LEVELS}}
    payload = {"benchmark": "attacks", "env": env, "settings": settings, "rows": rows, "targets": goals}
    print(f"\nwrote {write_json(json_path(args), payload)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
