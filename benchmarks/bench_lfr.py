"""Speed of one LFR training step: lfr-rs (exact and finite-difference HVP)
vs the same step written in plain PyTorch, vs the floor.

One LFR step (eq. 3 then eq. 4): in eval mode, ``steps`` projected sign-ascent
steps on ``||d_x L(x')||_1`` (each a Hessian-vector product), then in train
mode one SGD step on ``CE(x) + lam * ||d_x L(x')||_1``. The floor is ``steps``
double-backprop steps in plain PyTorch (forward, input gradient with its graph,
backward of its L1 norm): the inner loop with nothing else.

glibc's malloc thresholds change double-backprop speed and apply to the whole
process, so the script measures twice, in two fresh processes: once with
glibc's defaults and once after ``lfr_rs.tune_malloc()``; within a process
every side runs under the same setting.

    python benchmarks/bench_lfr.py [--batch 128] [--steps 40] [--repeats 5]
        [--malloc both|default|tuned] [--quick]
"""

from __future__ import annotations

import argparse
import copy
import json
import subprocess
import sys
import tempfile
from typing import Any, Callable, Dict, List, Optional

import torch
import torch.nn.functional as F

import lfr_rs
from _common import (  # the script's folder is on sys.path
    add_common_args,
    device_info,
    env_info,
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

EPS, ALPHA, LAM = 0.3, 0.01, 0.02  # the paper's settings
N_TRAIN = 8000


def torch_lfr_perturb(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, *, steps: int) -> torch.Tensor:
    """Eq. (3) in plain PyTorch: what a user would write without lfr-rs."""
    adv = (x + torch.empty_like(x).uniform_(-EPS, EPS)).clamp(0, 1)
    for _ in range(steps):
        adv.requires_grad_(True)
        (g,) = torch.autograd.grad(F.cross_entropy(model(adv), y, reduction="sum"), adv, create_graph=True)
        (h,) = torch.autograd.grad(g.abs().sum(), adv)
        adv = adv.detach() + ALPHA * h.sign()
        adv = (x + (adv - x).clamp(-EPS, EPS)).clamp(0, 1)
    return adv


def torch_penalty(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    xr = x.detach().requires_grad_(True)
    (g,) = torch.autograd.grad(F.cross_entropy(model(xr), y, reduction="sum"), xr, create_graph=True)
    return g.flatten(1).abs().sum(1)


def make_step(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, perturb: Callable[..., torch.Tensor],
              penalty: Callable[..., torch.Tensor], seed: int) -> Callable[[], torch.nn.Module]:
    """One full LFR training step on a private copy of ``model``."""
    net = copy.deepcopy(model)
    opt = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9)

    def step() -> torch.nn.Module:
        torch.manual_seed(seed)
        net.eval()
        x_prime = perturb(net, x, y)
        net.train()
        loss = F.cross_entropy(net(x), y) + LAM * penalty(net, x_prime, y).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return net

    return step


def floor(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, steps: int) -> Callable[[], None]:
    def run() -> None:
        for _ in range(steps):
            xr = x.detach().requires_grad_(True)
            (g,) = torch.autograd.grad(F.cross_entropy(model(xr), y, reduction="sum"), xr, create_graph=True)
            torch.autograd.grad(g.abs().sum(), xr)

    return run


def measure(args: argparse.Namespace, tuned: bool) -> Dict[str, Any]:
    malloc_ok = lfr_rs.tune_malloc() if tuned else None
    threads = set_threads(args.threads)
    images, labels = load_mnist_test(args.data)
    n_train = 1000 if args.quick else N_TRAIN
    model, clean = train_standard_model(images, labels, n_train=n_train, epochs=1 if args.quick else 2,
                                        seed=args.seed)
    model = model.to(args.device)
    x, y = held_out_batch(images, labels, n_train, args.batch, args.device)
    k = args.steps

    def rs(hvp: str) -> Callable[..., torch.Tensor]:
        return lambda m, a, b: lfr_rs.lfr_perturb(m, a, b, eps=EPS, alpha=ALPHA, steps=k, hvp=hvp,
                                                  fd_step=args.fd_step)

    fns = {
        "lfr-rs exact": make_step(model, x, y, rs("exact"), lfr_rs.grad_norm_penalty, args.seed),
        "lfr-rs fd": make_step(model, x, y, rs("fd"), lfr_rs.grad_norm_penalty, args.seed),
        "PyTorch": make_step(model, x, y, lambda m, a, b: torch_lfr_perturb(m, a, b, steps=k), torch_penalty,
                             args.seed),
        "floor": floor(model, x, y, k),
    }
    # Same start, same seed: one exact step of each implementation gives the same weights.
    a = make_step(model, x, y, rs("exact"), lfr_rs.grad_norm_penalty, args.seed)()
    b = make_step(model, x, y, lambda m, p, q: torch_lfr_perturb(m, p, q, steps=k), torch_penalty, args.seed)()
    max_diff = max(float((p - q).abs().max()) for p, q in zip(a.parameters(), b.parameters()))

    times, _ = time_interleaved(fns, args.repeats)
    return {"malloc": "tuned" if tuned else "default", "tune_malloc_ok": malloc_ok, "threads": threads,
            "clean_acc_heldout": clean, "batch": len(y), "steps": k, "fd_step": args.fd_step,
            "exact_vs_pytorch_max_param_diff": max_diff, "env": {**env_info(), **device_info(args.device)},
            "sides": {name: summary(t, 1) for name, t in times.items()}}


def run_child(argv: List[str], malloc: str) -> Dict[str, Any]:
    """Measures in a fresh process, so malloc settings never leak across."""
    with tempfile.NamedTemporaryFile(suffix=".json") as out:
        cmd = [sys.executable, __file__, *argv, "--malloc", malloc, "--child-json", out.name]
        subprocess.run(cmd, check=True)
        return json.loads(open(out.name).read())


def main(argv: Optional[List[str]] = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_common_args(parser, default_json="benchmarks/results/lfr_step.json",
                    quick_json="benchmarks/results/lfr_step_quick.json")
    parser.add_argument("--steps", type=int, default=40, help="inner-maximization steps")
    parser.add_argument("--fd-step", type=float, default=0.01)
    parser.add_argument("--malloc", choices=["both", "default", "tuned"], default="both")
    parser.add_argument("--child-json", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.quick:
        args.batch, args.repeats, args.steps = 16, 2, 3

    if args.child_json:
        result = measure(args, tuned=args.malloc == "tuned")
        with open(args.child_json, "w") as f:
            json.dump(result, f)
        return 0

    base = ["--batch", str(args.batch), "--repeats", str(args.repeats), "--steps", str(args.steps),
            "--fd-step", str(args.fd_step), "--seed", str(args.seed), "--data", args.data, "--device", args.device]
    base += (["--threads", str(args.threads)] if args.threads else []) + (["--quick"] if args.quick else [])
    modes = ["default", "tuned"] if args.malloc == "both" else [args.malloc]
    results = [run_child(base, m) for m in modes]

    rows = []
    for r in results:
        s = {k: v["median_ms"] for k, v in r["sides"].items()}
        rows.append([r["malloc"], s["lfr-rs exact"], s["lfr-rs fd"], s["PyTorch"], s["floor"],
                     s["PyTorch"] / s["lfr-rs exact"], s["lfr-rs exact"] / s["lfr-rs fd"],
                     s["lfr-rs exact"] / s["floor"]])
    r0 = results[0]
    print(f"\nOne LFR training step, SmallCNN, batch {r0['batch']}, {r0['env']['device_name']}, {r0['steps']} inner steps, "
          f"{r0['threads']} threads, median of {args.repeats}, ms\n")
    print(markdown_table(["malloc", "lfr-rs exact", "lfr-rs fd", "PyTorch", "floor (inner only)",
                          "PyTorch/exact", "exact/fd", "exact/floor"], rows))
    for r in results:
        print(f"{r['malloc']}: exact step vs PyTorch step, max parameter difference "
              f"{r['exact_vs_pytorch_max_param_diff']:.2e}")
    if len(results) == 2:
        d, t = (r["sides"] for r in results)
        for side in d:
            print(f"tuned/default {side}: {t[side]['median_ms'] / d[side]['median_ms']:.3f}")
    payload = {"benchmark": "lfr_step", "settings": {"eps": EPS, "alpha": ALPHA, "lam": LAM,
                                                     "repeats": args.repeats, "quick": args.quick},
               "results": results}
    print(f"\nwrote {write_json(json_path(args), payload)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
