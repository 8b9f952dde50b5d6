"""Seed spread of short trainings: each method of ``--methods`` (default
standard, AT, LFR) trained at a Table 1 preset's budget under ``--seeds``
(default five), then its clean accuracy, PGD-40 (the paper's protocol) and
APGD-CE (``--apgd-steps`` steps) on the preset's evaluation images. Reports each
method's mean, sample standard deviation, minimum and maximum, and each
method's per-seed margins over Standard and over AT, the control (paired: same
seed, same data order), so that a change that costs a method its margin shows beyond the noise.

    python benchmarks/seed_spread.py --preset quick --dataset fashion-mnist --out runs/seed-spread-quick-fmnist
    python benchmarks/seed_spread.py --preset quick --dataset fashion-mnist --warmup 0 --out runs/...   # no warm-up

Runs are resumable (one folder per method and seed, ``run.json`` once
evaluated); ``--json`` (default OUT/seed_spread.json) gets everything. The
machine and the torch threads are recorded: runs are deterministic per machine
and differ across CPUs in float reduction order.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import time
from pathlib import Path
from typing import Any, Dict, List, Sequence, Tuple

import torch

from lfr_rs import paper_protocol, robust_accuracy
from lfr_rs.experiments import table1
from lfr_rs.experiments.common import device_name, load_experiment_data
from lfr_rs.training import train, write_json

KEYS = ("clean", "pgd", "apgd")


def _evaluate(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, s: Any, apgd_steps: int) -> Dict[str, float]:
    a = s.attack
    torch.manual_seed(s.seed)
    paper = paper_protocol(model, x, y, attacks=("pgd",), eps=a.eps, alpha=a.alpha, steps=a.steps,
                           batch_size=a.batch_size, progress=False)
    strong = robust_accuracy(model, x, y, eps=a.eps, attacks=("apgd-ce",), steps=apgd_steps, batch_size=a.batch_size,
                             detect_masking=False, progress=False, seed=0)
    return {"clean": paper["clean"], "pgd": paper["pgd"], "apgd": strong.worst}


def _stats(values: List[float]) -> Dict[str, float]:
    """Mean, sample standard deviation (None from one seed: a spread needs two), range and count."""
    return {"mean": statistics.fmean(values), "std": statistics.stdev(values) if len(values) > 1 else None,
            "min": min(values), "max": max(values), "n": len(values)}


def _spread(stats: Dict[str, Any]) -> str:
    """``± s`` in points, or ``(one seed)`` where there is no spread to state."""
    return f"± {100 * stats['std']:.1f}" if stats["std"] is not None else "(one seed)"


def summarize(runs: Dict[str, Dict[int, Dict[str, Any]]], methods: Sequence[str],
              seeds: Sequence[int]) -> Tuple[Dict[str, Any], Dict[str, Any]]:
    """Per method and metric, the statistics over ``seeds``; and the margins
    paired by seed (same data order and initialisation) of every other method
    over Standard and over AT, the control, where those were run."""
    summary = {m: {k: _stats([runs[m][s][k] for s in seeds]) for k in KEYS} for m in methods}
    margins = {base: {m: {k: _stats([runs[m][s][k] - runs[base][s][k] for s in seeds]) for k in KEYS}
                      for m in methods if m not in ("standard", base)}
               for base in ("standard", "at") if base in methods}
    return summary, margins


def table_lines(summary: Dict[str, Any], margins: Dict[str, Any]) -> List[str]:
    """The Markdown table of :func:`summarize`'s results, in points."""
    lines = ["| method | clean | PGD-40 | APGD-CE |", "|---|---|---|---|"]
    for m, stats in summary.items():
        cells = [f"{100 * stats[k]['mean']:.1f} {_spread(stats[k])} "
                 f"[{100 * stats[k]['min']:.1f}, {100 * stats[k]['max']:.1f}]" for k in KEYS]
        lines.append(f"| {m} | " + " | ".join(cells) + " |")
    for base, over in margins.items():
        for m, d in over.items():
            cells = [f"{100 * d[k]['mean']:+.1f} {_spread(d[k])}" for k in KEYS]
            lines.append(f"| {m} - {base} | " + " | ".join(cells) + " |")
    return [*lines, "", "mean ± sample standard deviation over seeds [min, max], in points; margins paired by seed"]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--preset", default="quick", choices=table1.PRESETS)
    p.add_argument("--dataset", default="fashion-mnist")
    p.add_argument("--data-root")
    p.add_argument("--train-split")
    p.add_argument("--holdout", type=int)
    p.add_argument("--methods", default="standard,at,lfr")
    p.add_argument("--seeds", default="1000,1001,1002,1003,1004")
    p.add_argument("--warmup", type=float, help="epochs of warm-up (default: the preset's)")
    p.add_argument("--apgd-steps", type=int, default=100)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--json", type=Path)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    methods = tuple(args.methods.split(","))
    seeds = [int(s) for s in args.seeds.split(",")]
    args.out.mkdir(parents=True, exist_ok=True)

    runs: Dict[str, Dict[int, Dict[str, Any]]] = {m: {} for m in methods}
    settings = None
    for seed in seeds:
        s = table1.resolve(args.preset, args.dataset, data_root=args.data_root, train_split=args.train_split,
                           holdout=args.holdout, methods=methods, seed=seed)
        if args.warmup is not None:
            s = dataclasses.replace(s, warmup=args.warmup)
        settings = s
        data = load_experiment_data(s)
        x, y = data.data.eval_x[: data.n_eval], data.data.eval_y[: data.n_eval]
        for m in methods:
            folder = args.out / f"{m}-s{seed}"
            done = folder / "run.json"
            if done.exists():
                runs[m][seed] = json.loads(done.read_text())
                continue
            tic = time.perf_counter()
            result = train(s.train_config(m), folder, resume=True, progress=False, verbose=False)
            train_s = time.perf_counter() - tic
            record = {"method": m, "seed": seed, "train_s": train_s, "final_train_acc": result.history[-1]["train_acc"],
                      **_evaluate(result.model, x, y, s, args.apgd_steps)}
            write_json(done, record)
            runs[m][seed] = record
            print(f"{m:<9} seed {seed}: " + "  ".join(f"{k} {100 * record[k]:.1f}" for k in KEYS) +
                  f"  ({train_s:.0f} s)", flush=True)

    assert settings is not None
    summary, margins = summarize(runs, methods, seeds)
    lines = [f"{args.preset} preset, {args.dataset}, eps {settings.eps:g}, warm-up {settings.warmup:g} epochs, "
             f"{data.n_eval} evaluation images, seeds {','.join(map(str, seeds))}; {device_name('cpu')}", "",
             *table_lines(summary, margins)]
    print("\n".join(lines))
    record = {"preset": args.preset, "dataset": args.dataset, "settings": settings.to_dict(), "seeds": seeds,
              "apgd_steps": args.apgd_steps, "machine": device_name("cpu"), "runs": runs, "summary": summary,
              "margins_over_standard": margins.get("standard", {}), "margins_over_at": margins.get("at", {}), "table": "\n".join(lines)}
    write_json(args.json or args.out / "seed_spread.json", record)


if __name__ == "__main__":
    main()
