"""Strong evaluation against the peer: ``robust_accuracy(attacks="standard")``
(AutoAttack's standard L-inf set as Rust kernels: APGD-CE, APGD-T over 9
targets, FAB-T over 9 targets, Square with 5000 queries; 100 iterations, 1
restart; the gradient-masking checks on, as a user runs it) against
torchattacks 3.5.1's ``MultiAttack`` of the same four attacks with the same
budgets (``APGD(loss="ce", steps=100)``, ``APGDT(steps=100)``,
``FAB(multi_targeted=True, steps=100)``, ``Square(n_queries=5000)``, all
``n_restarts=1``, ``seed=0``, ``n_classes=10``). torchattacks' own
``AutoAttack(version="standard")`` is not used: it leaves APGD, APGD-T and
FAB at its 10-iteration defaults, a tenth of AutoAttack's budget.

Models: the committed reference checkpoints (``lfr_rs.models.load_reference``),
by default MNIST's standard and LFR SmallCNNs (trained on the 8,000 MNIST
test images after the first 2,000), evaluated on the first ``--n`` of the 2,000
held-out test images at eps 0.1 and 0.3. The time is bounded by ``--n``: a
point that survives every attack costs about 12,000 image passes on each side
(Square's 5000 queries are most of them), about 4 s on one core here.

Per configuration the two sides run once each, in alternating order, in this
process with the same threads. For each side: the worst-case accuracy, the
total time (ours with and without its masking checks), and per attack the
points attacked, points fooled, seconds and image passes (one image through
the model = one pass, counted by wrapping the model on both sides).

    python benchmarks/bench_eval.py --threads 1      # writes benchmarks/results/eval_standard_set.json
    python benchmarks/bench_eval.py --threads 1 --models mnist/lfr --eps 0.3 --n 20 --json /tmp/e.json
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any, Dict, List

import torch
import torchattacks

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import DEFAULT_DATA, RESULTS, env_info, markdown_table, set_threads, write_json  # noqa: E402

import lfr_rs  # noqa: E402
from lfr_rs.evaluation.counting import PassCounter  # noqa: E402
from lfr_rs.models import load_reference  # noqa: E402
from lfr_rs.training import TrainConfig, eval_split  # noqa: E402

#: AutoAttack's standard budgets (fra31/auto-attack, version="standard")
STEPS, TARGETS, QUERIES = 100, 9, 5000


def held_out(dataset: str, data: str) -> Any:
    if dataset == "mnist":
        return eval_split(TrainConfig(dataset="mnist", data_root=data, train_split="test", holdout=2000))
    return eval_split(TrainConfig(dataset=dataset))


def ours(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float) -> Dict[str, Any]:
    tic = time.perf_counter()
    r = lfr_rs.robust_accuracy(model, x, y, eps=eps, attacks="standard", batch_size=len(x), seed=0,
                               detect_masking=True, progress=False)
    total = time.perf_counter() - tic
    attacks = {k: {"attacked": s.attacked, "fooled": s.fooled, "seconds": s.seconds, "forward": s.forward,
                   "backward": s.backward} for k, s in r.attacks.items()}
    checks = r.masking
    return {"worst": r.worst, "robust": r.robust, "seconds": total,
            "cascade_seconds": r.clean_seconds + sum(s.seconds for s in r.attacks.values()),
            "checks_seconds": sum(checks.seconds.values()),
            "forward": len(x) + sum(a["forward"] for a in attacks.values()) + sum(checks.forward.values()),
            "backward": sum(a["backward"] for a in attacks.values()) + sum(checks.backward.values()),
            "attacks": attacks,
            "checks": {k: {"seconds": checks.seconds[k], "forward": checks.forward[k],
                           "backward": checks.backward[k]} for k in checks.forward},
            "warnings": checks.warnings}


class _AsModule(torch.nn.Module):
    """torchattacks wants an nn.Module; this one counts the passes."""

    def __init__(self, counter: PassCounter) -> None:
        super().__init__()
        self.counter = counter
        self.inner = counter.model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.counter(x)


def theirs(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float) -> Dict[str, Any]:
    counter = PassCounter(model)
    wrapped = _AsModule(counter)
    named = {
        "apgd-ce": torchattacks.APGD(wrapped, eps=eps, steps=STEPS, loss="ce", n_restarts=1, seed=0),
        "apgd-t": torchattacks.APGDT(wrapped, eps=eps, steps=STEPS, n_classes=TARGETS + 1, n_restarts=1, seed=0),
        "fab-t": torchattacks.FAB(wrapped, eps=eps, steps=STEPS, multi_targeted=True, n_classes=TARGETS + 1,
                                  n_restarts=1, seed=0),
        "square": torchattacks.Square(wrapped, eps=eps, n_queries=QUERIES, n_restarts=1, seed=0),
    }
    attacks: Dict[str, Dict[str, Any]] = {}
    for name, atk in named.items():  # time each attack where MultiAttack calls it
        atk.forward = _timed(atk.forward, name, counter, attacks)
    tic = time.perf_counter()
    adv = torchattacks.MultiAttack(list(named.values()))(x, y)
    total = time.perf_counter() - tic
    with torch.no_grad():
        robust = model(adv).argmax(1) == y
    return {"worst": float(robust.float().mean()), "robust": robust, "seconds": total, "forward": counter.forward,
            "backward": counter.backward, "attacks": attacks}


def _timed(forward: Any, name: str, counter: PassCounter, into: Dict[str, Dict[str, Any]]) -> Any:
    def run(images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        f, b, tic = counter.forward, counter.backward, time.perf_counter()
        out = forward(images, labels)
        into[name] = {"attacked": len(images), "seconds": time.perf_counter() - tic,
                      "forward": counter.forward - f, "backward": counter.backward - b}
        return out
    return run


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", default="mnist/standard,mnist/lfr", help="reference names (lfr_rs.models.list_references)")
    p.add_argument("--eps", default="0.1,0.3")
    p.add_argument("--n", type=int, default=50, help="held-out images per model (bounds the time)")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--data", default=DEFAULT_DATA, help="folder with the MNIST test IDX files")
    p.add_argument("--json", default=str(RESULTS / "eval_standard_set.json"))
    a = p.parse_args()
    threads = set_threads(a.threads)
    start = time.perf_counter()
    rows: List[List[Any]] = []
    records: List[Dict[str, Any]] = []
    for k, name in enumerate(a.models.split(",")):
        model = load_reference(name)
        for q in model.parameters():
            q.requires_grad_(False)
        x, y = held_out(name.split("/")[0], a.data)
        x, y = x[: a.n], y[: a.n]
        with torch.no_grad():
            clean = float((model(x).argmax(1) == y).float().mean())
        for j, eps in enumerate(float(e) for e in a.eps.split(",")):
            sides = {"lfr-rs": lambda e=eps: ours(model, x, y, e), "torchattacks": lambda e=eps: theirs(model, x, y, e)}
            order = list(sides) if (k + j) % 2 == 0 else list(sides)[::-1]
            got = {s: sides[s]() for s in order}
            o, t = got["lfr-rs"], got["torchattacks"]
            rows.append([name, eps, f"{100 * clean:.1f}", f"{100 * o['worst']:.1f}", f"{100 * t['worst']:.1f}",
                         o["seconds"], o["cascade_seconds"], t["seconds"], t["seconds"] / o["seconds"],
                         o["forward"], t["forward"], o["backward"], t["backward"]])
            records.append({
                "model": name, "eps": eps, "n": len(x), "clean": clean, "order": order,
                "worst": {"lfr-rs": o["worst"], "torchattacks": t["worst"]},
                "robust_only_ours": int((o["robust"] & ~t["robust"]).sum()),
                "robust_only_theirs": int((t["robust"] & ~o["robust"]).sum()),
                "seconds": {"lfr-rs": o["seconds"], "torchattacks": t["seconds"]},
                "lfr_rs_cascade_seconds": o["cascade_seconds"], "lfr_rs_checks_seconds": o["checks_seconds"],
                "speedup": t["seconds"] / o["seconds"],
                "speedup_without_checks": t["seconds"] / o["cascade_seconds"],
                "forward": {"lfr-rs": o["forward"], "torchattacks": t["forward"]},
                "backward": {"lfr-rs": o["backward"], "torchattacks": t["backward"]},
                "attacks": {"lfr-rs": o["attacks"], "torchattacks": t["attacks"]},
                "lfr_rs_checks": o["checks"], "lfr_rs_warnings": o["warnings"]})
            print(markdown_table(HEADERS, rows[-1:]), flush=True)
            for s in ("lfr-rs", "torchattacks"):
                print(f"  {s}: " + "; ".join(f"{n} {v['attacked']} pts {v['seconds']:.1f} s {v['forward']}f/{v['backward']}b"
                                             for n, v in got[s]["attacks"].items()), flush=True)
    table = markdown_table(HEADERS, rows)
    print(table)
    settings = {"n": a.n, "steps": STEPS, "n_target_classes": TARGETS, "queries": QUERIES, "restarts": 1, "seed": 0,
                "threads": threads, "models": a.models.split(","), "masking_checks": True,
                "total_seconds": time.perf_counter() - start}
    path = write_json(a.json, {"command": " ".join(sys.argv), "settings": settings, "env": env_info(),
                               "results": records, "table": table})
    print(f"wrote {path} ({settings['total_seconds'] / 60:.1f} min)")


HEADERS = ["model", "eps", "clean %", "worst % lfr-rs", "worst % TA", "lfr-rs s", "lfr-rs s (no checks)", "TA s",
           "TA/lfr-rs", "fwd lfr-rs", "fwd TA", "bwd lfr-rs", "bwd TA"]

if __name__ == "__main__":
    main()
