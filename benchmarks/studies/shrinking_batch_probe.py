"""Why is ``pgd(keep_best=True, random_start=True)`` slow at batch 128 on a GPU?

The H200 run of bench_attacks.py measured the robust-accuracy evaluation with
keep_best at 72 ms from a fixed start but 129-250 ms (falling over the five
repeats) from a random start, against 55-70 ms for torchattacks. keep_best
stops stepping the samples already fooled, so each step runs the model on a
smaller batch. From a fixed start every repeat shrinks through the same batch
sizes; from a random start each repeat meets sizes it has not met before.
Hypothesis: the cost is the first call at each new batch size (cuDNN picks a
convolution plan per shape, the caching allocator meets new block sizes), not
a per-step overhead that stays.

Test: time many repeats from a random start (the time should fall as sizes are
seen), then run one forward and backward at every batch size 1..B and time
again (it should sit at the fixed-start time). Prints a table, writes JSON.

    python benchmarks/studies/shrinking_batch_probe.py --device cuda [--repeats 20]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any, Callable, Dict, List

import torch

import lfr_rs
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/_common.py
from _common import DEFAULT_DATA, device_info, env_info, held_out_batch, load_mnist_test, train_standard_model

try:
    import torchattacks
except ImportError:  # the GPU pack carries it; elsewhere it is optional here
    torchattacks = None


def timed(fn: Callable[[], Any], device: str) -> float:
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    t = time.perf_counter()
    fn()
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    return 1e3 * (time.perf_counter() - t)


def warm_every_batch_size(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> None:
    for b in range(1, len(x) + 1):
        xb = x[:b].clone().requires_grad_(True)
        loss = torch.nn.functional.cross_entropy(model(xb), y[:b])
        torch.autograd.grad(loss, xb)


def main(argv: List[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device", default="cuda")
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--repeats", type=int, default=20)
    p.add_argument("--steps", type=int, default=40)
    p.add_argument("--data", default=DEFAULT_DATA, help="folder with the MNIST test IDX files")
    p.add_argument("--json", default="benchmarks/results/shrinking_batch_probe.json")
    a = p.parse_args(argv)
    images, labels = load_mnist_test(a.data)
    model, clean = train_standard_model(images, labels, n_train=8000, epochs=2, seed=0)
    model = model.to(a.device).eval()
    x, y = held_out_batch(images, labels, 8000, a.batch, a.device)
    torch.manual_seed(0)
    kw = dict(eps=0.3, alpha=0.01, steps=a.steps)

    def run(keep_best: bool, random_start: bool) -> Callable[[], Any]:
        return lambda: lfr_rs.pgd(model, x, y, keep_best=keep_best, random_start=random_start, **kw)

    series: Dict[str, List[float]] = {}
    series["plain PGD (no keep_best), random start"] = [timed(run(False, True), a.device) for _ in range(5)]
    series["keep_best, fixed start"] = [timed(run(True, False), a.device) for _ in range(a.repeats)]
    series["keep_best, random start (cold)"] = [timed(run(True, True), a.device) for _ in range(a.repeats)]
    t = time.perf_counter()
    warm_every_batch_size(model, x, y)
    warm_s = time.perf_counter() - t
    series["keep_best, random start, after one pass at every batch size"] = [
        timed(run(True, True), a.device) for _ in range(a.repeats)]
    if torchattacks is not None:
        ta = torchattacks.PGD(model, random_start=True, **kw)
        series["torchattacks.PGD, random start"] = [timed(lambda: ta(x, y), a.device) for _ in range(5)]

    def med(v: List[float]) -> float:
        return sorted(v)[len(v) // 2]

    env = env_info()
    env.update(device_info(a.device))
    print(f"\nSmallCNN, batch {a.batch}, PGD-{a.steps}, {env.get('device_name', a.device)}; clean acc {clean:.3f}; "
          f"one pass at every batch size took {warm_s:.2f} s\n")
    print("| run | median ms | first | last | all (ms) |\n|---|---|---|---|---|")
    for k, v in series.items():
        print(f"| {k} | {med(v):.1f} | {v[0]:.1f} | {v[-1]:.1f} | {' '.join(f'{t:.0f}' for t in v)} |")
    out = Path(a.json)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"benchmark": "shrinking_batch_probe", "env": env, "settings": vars(a),
                               "warm_every_batch_size_s": warm_s, "series_ms": series}, indent=1))
    print(f"\nJSON: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
