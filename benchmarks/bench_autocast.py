"""Mixed precision for the model (``autocast="bf16"``): how much it moves a
robust accuracy and what it saves.

1. Accuracy: ``robust_accuracy`` (default L-inf cascade: APGD-CE, APGD-T,
   Square) on the committed MNIST-8k reference models (``mnist/standard``,
   ``mnist/lfr``) at eps 0.3 on the first ``--n`` held-out test images, in
   float32 and under bfloat16 autocast, same seed: worst case, per-attack
   accuracy, seconds. A bfloat16 forward can only weaken the attacks: the
   ``rose`` flag marks a row where it reported a higher robust accuracy.
2. Speed: PGD-40 and APGD-CE (100 steps) on ResNet18 (CIFAR shape, 3x32x32,
   ``--batch`` 256, random weights: timing only) and on SmallCNN at batch
   128, float32 against bfloat16 autocast, interleaved, median of
   ``--repeats``.

Meant for a GPU (``--device cuda``; bfloat16 tensor cores); on a CPU without
bfloat16 units autocast is slower, and ``--quick`` shrinks everything to a
smoke test.

    python benchmarks/bench_autocast.py --device cuda      # writes benchmarks/results/autocast_cuda.json
    python benchmarks/bench_autocast.py --quick            # CPU smoke test
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any, Dict, List

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (DEFAULT_DATA, RESULTS, device_info, env_info, markdown_table, set_threads, summary,  # noqa: E402
                     time_interleaved, write_json)

import lfr_rs  # noqa: E402
from lfr_rs.models import ResNet18, SmallCNN, load_reference  # noqa: E402
from lfr_rs.training import TrainConfig, eval_split  # noqa: E402

MODES = {"float32": None, "bf16": "bf16"}


def accuracy_rows(a: argparse.Namespace) -> List[Dict[str, Any]]:
    x, y = eval_split(TrainConfig(dataset="mnist", data_root=a.data, train_split="test", holdout=2000))
    x, y = x[: a.n].to(a.device), y[: a.n].to(a.device)
    rows = []
    for name in ("mnist/standard", "mnist/lfr"):
        model = load_reference(name, device=a.device)
        got = {}
        for mode, autocast in MODES.items():
            tic = time.perf_counter()
            r = lfr_rs.robust_accuracy(model, x, y, eps=0.3, steps=a.steps, n_target_classes=3, queries=a.queries,
                                       batch_size=a.n, seed=0, detect_masking=False, progress=False, autocast=autocast)
            if a.device.startswith("cuda"):
                torch.cuda.synchronize()
            got[mode] = {"worst": r.worst, "clean": r.clean, "seconds": time.perf_counter() - tic,
                         "attacks": {k: s.accuracy for k, s in r.attacks.items()}}
        rows.append({"model": name, "eps": 0.3, "n": len(x), **got,
                     "rose": got["bf16"]["worst"] > got["float32"]["worst"],
                     "moved_points": 100 * (got["bf16"]["worst"] - got["float32"]["worst"])})
    return rows


def speed_rows(a: argparse.Namespace) -> List[Dict[str, Any]]:
    nets = {"SmallCNN": (SmallCNN(), (1, 28, 28), 128), "ResNet18": (ResNet18(), (3, 32, 32), a.batch)}
    rows = []
    for net_name, (net, shape, batch) in nets.items():
        net = net.to(a.device).eval()
        for p in net.parameters():
            p.requires_grad_(False)
        x = torch.rand(batch, *shape, device=a.device)
        y = torch.randint(0, 10, (batch,), device=a.device)
        attacks = {
            "pgd-40": lambda m: lfr_rs.pgd(net, x, y, eps=8 / 255, alpha=2 / 255, steps=a.pgd_steps, autocast=m),
            "apgd-ce": lambda m: lfr_rs.apgd(net, x, y, eps=8 / 255, steps=a.steps, autocast=m),
        }
        for attack, call in attacks.items():
            times, _ = time_interleaved({mode: (lambda m=m: call(m)) for mode, m in MODES.items()}, a.repeats)
            med = {mode: summary(t)["median_ms"] for mode, t in times.items()}
            rows.append({"model": net_name, "attack": attack, "batch": batch, "median_ms": med,
                         "speedup": med["float32"] / med["bf16"], "seconds": times})
    return rows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cpu")
    p.add_argument("--n", type=int, default=500, help="held-out MNIST images for the accuracy rows")
    p.add_argument("--steps", type=int, default=100, help="APGD iterations")
    p.add_argument("--pgd-steps", type=int, default=40)
    p.add_argument("--queries", type=int, default=1000, help="Square queries")
    p.add_argument("--batch", type=int, default=256, help="ResNet18 batch")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--data", default=DEFAULT_DATA)
    p.add_argument("--quick", action="store_true", help="tiny sizes: a smoke test only")
    p.add_argument("--json", default=None)
    a = p.parse_args()
    if a.quick:
        a.n, a.steps, a.pgd_steps, a.queries, a.batch, a.repeats = 16, 3, 3, 10, 4, 1
    threads = set_threads(a.threads)
    tag = a.device.split(":")[0] + ("_quick" if a.quick else "")
    acc, speed = accuracy_rows(a), speed_rows(a)
    print(markdown_table(["model", "eps", "n", "worst % float32", "worst % bf16", "moved (points)", "rose"],
                         [[r["model"], r["eps"], r["n"], f"{100 * r['float32']['worst']:.1f}",
                           f"{100 * r['bf16']['worst']:.1f}", f"{r['moved_points']:+.1f}", r["rose"]] for r in acc]))
    print(markdown_table(["model", "attack", "batch", "float32 ms", "bf16 ms", "float32/bf16"],
                         [[r["model"], r["attack"], r["batch"], r["median_ms"]["float32"], r["median_ms"]["bf16"],
                           r["speedup"]] for r in speed]))
    settings = {"n": a.n, "steps": a.steps, "pgd_steps": a.pgd_steps, "queries": a.queries, "batch": a.batch,
                "repeats": a.repeats, "threads": threads, "quick": a.quick}
    path = write_json(a.json or str(RESULTS / f"autocast_{tag}.json"),
                      {"command": " ".join(sys.argv), "settings": settings, "env": env_info(),
                       "device": device_info(a.device), "accuracy": acc, "speed": speed})
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
