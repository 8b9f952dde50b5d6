"""Strong evaluation: lfr-rs' ``robust_accuracy`` cascade (APGD-CE, APGD-T,
Square; Rust kernels, per-sample early stopping) against torchattacks 3.5.1's
``MultiAttack([APGD, APGDT, Square])`` with the same settings, on a standard
and an LFR-trained SmallCNN, at eps 0.1 and 0.3.

Both models are trained with the library on the 8,000 MNIST test images after
the first 2,000 (``lfr_rs.training.train``, cached under
``benchmarks/results/eval_{standard,lfr}/``, git-ignored) and evaluated on the
first ``--n`` of the 2,000 held-out ones. Both sides run in this process with
the same threads and allocator, interleaved (rotating order), median of
``--repeats``; both are seeded with 0 before each attack, so both start from the
same random points. Passes are counted by wrapping the model (one image through
the model = one pass). ``masking`` checks are off on our side (they are a
separate cost).

    python benchmarks/bench_eval.py --threads 1           # writes benchmarks/results/eval.json
    python benchmarks/bench_eval.py --threads 1 --models lfr --json benchmarks/results/eval_lfr.json
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Any, Callable, Dict, List

import torch
import torchattacks

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import RESULTS, DEFAULT_DATA, env_info, markdown_table, set_threads, write_json  # noqa: E402

import lfr_rs  # noqa: E402
from lfr_rs.evaluation.counting import PassCounter  # noqa: E402
from lfr_rs.training import TrainConfig, eval_split, load_model, train  # noqa: E402

RECIPES = {
    # lr 0.05 with one drop at the last epoch: short runs that train
    "standard": dict(method="standard", options={}),
    "lfr": dict(method="lfr", options={"steps": 5, "alpha": 0.06, "hvp": "fd"}),
}


def trained(name: str, data: str, epochs: int) -> torch.nn.Module:
    out = RESULTS / f"eval_{name}"
    ckpt = out / "checkpoint.pt"
    if not ckpt.is_file():
        config = TrainConfig(dataset="mnist", data_root=data, train_split="test", holdout=2000, epochs=epochs,
                             lr=0.05, milestones=(epochs,), seed=0, **RECIPES[name])
        train(config, out, resume=True, progress=False)
    model, _ = load_model(ckpt)
    for p in model.parameters():
        p.requires_grad_(False)
    return model.eval()


def ours(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float, a: argparse.Namespace) -> Dict[str, Any]:
    r = lfr_rs.robust_accuracy(model, x, y, eps=eps, steps=a.steps, n_target_classes=a.targets, queries=a.queries,
                               batch_size=len(x), seed=0, detect_masking=False, progress=False)
    return {"worst": r.worst, "robust": r.robust,
            "forward": sum(s.forward for s in r.attacks.values()) + len(x),
            "backward": sum(s.backward for s in r.attacks.values())}


def theirs(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float, a: argparse.Namespace) -> Dict[str, Any]:
    counter = PassCounter(model)
    wrapped = _AsModule(counter)
    atk = torchattacks.MultiAttack([
        torchattacks.APGD(wrapped, eps=eps, steps=a.steps, loss="ce", seed=0),
        torchattacks.APGDT(wrapped, eps=eps, steps=a.steps, n_classes=a.targets + 1, seed=0),
        torchattacks.Square(wrapped, eps=eps, n_queries=a.queries, seed=0),
    ])
    adv = atk(x, y)
    with torch.no_grad():
        robust = model(adv).argmax(1) == y
    return {"worst": float(robust.float().mean()), "robust": robust, "forward": counter.forward,
            "backward": counter.backward}


class _AsModule(torch.nn.Module):
    """torchattacks wants an nn.Module; this one counts passes."""

    def __init__(self, counter: PassCounter) -> None:
        super().__init__()
        self.counter = counter
        self.inner = counter.model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.counter(x)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n", type=int, default=100, help="held-out images to evaluate")
    p.add_argument("--steps", type=int, default=25, help="APGD / APGD-T iterations")
    p.add_argument("--targets", type=int, default=3, help="APGD-T target classes")
    p.add_argument("--queries", type=int, default=500, help="Square queries")
    p.add_argument("--eps", default="0.1,0.3")
    p.add_argument("--models", default="standard,lfr", help="comma-separated, of: standard, lfr")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--epochs", type=int, default=3, help="training epochs of each model (when not cached)")
    p.add_argument("--data", default=DEFAULT_DATA)
    p.add_argument("--json", default=str(RESULTS / "eval.json"))
    a = p.parse_args()
    threads = set_threads(a.threads)
    models = {name: trained(name, a.data, a.epochs) for name in a.models.split(",")}
    x, y = eval_split(TrainConfig(dataset="mnist", data_root=a.data, train_split="test", holdout=2000))
    x, y = x[: a.n], y[: a.n]
    rows: List[List[Any]] = []
    records: List[Dict[str, Any]] = []
    for name, model in models.items():
        with torch.no_grad():
            clean = float((model(x).argmax(1) == y).float().mean())
        for eps in (float(e) for e in a.eps.split(",")):
            sides: Dict[str, Callable[[], Dict[str, Any]]] = {
                "lfr-rs": lambda m=model, e=eps: ours(m, x, y, e, a),
                "torchattacks": lambda m=model, e=eps: theirs(m, x, y, e, a),
            }
            times: Dict[str, List[float]] = {s: [] for s in sides}
            last: Dict[str, Dict[str, Any]] = {}
            for r in range(a.repeats):
                order = list(sides) if r % 2 == 0 else list(sides)[::-1]
                for s in order:
                    t0 = time.perf_counter()
                    last[s] = sides[s]()
                    times[s].append(time.perf_counter() - t0)
            med = {s: statistics.median(t) for s, t in times.items()}
            o, t = last["lfr-rs"], last["torchattacks"]
            rows.append([name, eps, f"{100 * clean:.1f}", f"{100 * o['worst']:.1f}", f"{100 * t['worst']:.1f}",
                         med["lfr-rs"], med["torchattacks"], med["torchattacks"] / med["lfr-rs"],
                         o["forward"], t["forward"], o["backward"], t["backward"]])
            records.append({"model": name, "eps": eps, "clean": clean, "n": len(x),
                            "worst": {"lfr-rs": o["worst"], "torchattacks": t["worst"]},
                            "robust_only_ours": int((o["robust"] & ~t["robust"]).sum()),
                            "robust_only_theirs": int((t["robust"] & ~o["robust"]).sum()),
                            "seconds": times, "median_s": med, "speedup": med["torchattacks"] / med["lfr-rs"],
                            "forward": {"lfr-rs": o["forward"], "torchattacks": t["forward"]},
                            "backward": {"lfr-rs": o["backward"], "torchattacks": t["backward"]}})
            print(markdown_table(HEADERS, rows[-1:]), flush=True)
    table = markdown_table(HEADERS, rows)
    print(table)
    settings = {"n": a.n, "steps": a.steps, "n_target_classes": a.targets, "queries": a.queries,
                "repeats": a.repeats, "threads": threads, "training": RECIPES, "epochs": a.epochs}
    path = write_json(a.json, {"command": " ".join(sys.argv), "settings": settings, "env": env_info(),
                               "results": records, "table": table})
    print(f"wrote {path}")


HEADERS = ["model", "eps", "clean %", "worst % lfr-rs", "worst % TA", "lfr-rs s", "TA s", "TA/lfr-rs",
           "fwd lfr-rs", "fwd TA", "bwd lfr-rs", "bwd TA"]

if __name__ == "__main__":
    main()
