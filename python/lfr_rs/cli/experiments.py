"""``lfr-rs sweep``, ``table1`` and ``frontier``: the experiments behind the paper's figures and table."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any, get_args

from lfr_rs._typing import Hvp
from lfr_rs.cli._args import (
    _DEFAULTS,
    _EVAL_DEFAULTS,
    _UsageError,
    _add_common,
    _add_experiment_data,
    _add_methods,
    _add_training_data,
    _attack_list,
    _check_mnist_root,
    _data_root,
    _float_list,
    _int_list,
    _nonneg_float,
    _path,
    _pos_float,
    _pos_int,
    _print_written,
    _writable_dir,
)
from lfr_rs.evaluation import ATTACKS
from lfr_rs.losses import method_options
from lfr_rs.training import TrainConfig


def add_sweep(sub: Any) -> None:
    s = sub.add_parser("sweep", help="train and evaluate LFR over lambdas (Fig. 3)",
                       description="Train LFR at each lambda and evaluate it (resumable; writes OUT/sweep.json).")
    s.add_argument("--lam", type=_float_list, metavar="L1,L2,..", required=True, help="lambdas (0 trains the plain cross-entropy)")
    _add_training_data(s, "sweep directory (one run per lambda, sweep.json)")
    lfr = method_options("lfr")
    s.add_argument("--inner-steps", type=_pos_int, metavar="N", help=f"LFR inner steps (default: {lfr['steps']})")
    s.add_argument("--inner-alpha", type=_pos_float, help=f"LFR inner step size (default: {lfr['alpha']})")
    s.add_argument("--inner-eps", type=_nonneg_float, help=f"LFR inner radius (default: {lfr['eps']})")
    s.add_argument("--hvp", choices=get_args(Hvp), help=f"LFR Hessian-vector product (default: {lfr['hvp']})")
    s.add_argument("--seed", type=int, default=_DEFAULTS["seed"], help="(default: %(default)s)")
    s.add_argument("--attacks", type=_attack_list, metavar="A,B,..", default=ATTACKS, help=f"comma-separated (default: {','.join(ATTACKS)})")
    s.add_argument("--n", type=_pos_int, metavar="N", default=1000, help="evaluation images (default: %(default)s)")
    s.add_argument("--eps", type=_nonneg_float, default=_EVAL_DEFAULTS["eps"], help="L-inf radius of the evaluation attacks; --inner-eps sets the training radius (default: %(default)s)")
    s.add_argument("--alpha", type=_pos_float, default=_EVAL_DEFAULTS["alpha"], help="attack step (default: %(default)s)")
    s.add_argument("--steps", type=_pos_int, default=_EVAL_DEFAULTS["steps"], help="attack steps (default: %(default)s)")
    _add_common(s)
    s.set_defaults(run=_run_sweep, subparser=s)

def _run_sweep(args: argparse.Namespace) -> int:
    from lfr_rs.experiments.sweep import sweep

    if len(set(args.lam)) != len(args.lam) or not args.lam:
        raise _UsageError(f"--lam needs distinct values, got {','.join(map(str, args.lam)) or 'none'}")
    if args.dataset == "mnist" and args.data_root is None:
        raise _UsageError("--dataset mnist needs --data-root DIR (a folder with the MNIST IDX files; nothing is downloaded)")
    if (args.train_split == "test") != (args.holdout is not None):
        raise _UsageError("--train-split test and --holdout N go together")
    inner = {"steps": args.inner_steps, "alpha": args.inner_alpha, "eps": args.inner_eps, "hvp": args.hvp}
    base = TrainConfig(
        method="lfr", options={k: v for k, v in inner.items() if v is not None}, dataset=args.dataset,
        data_root=_data_root(args),
        train_split=args.train_split, holdout=args.holdout or 0, subset=args.subset, epochs=args.epochs,
        batch_size=args.batch_size, lr=args.lr, seed=args.seed, device=args.device,
    )
    record = sweep(args.lam, args.out, base=base, attacks=args.attacks, eval_n=args.n, eps=args.eps,
                   alpha=args.alpha, steps=args.steps, progress=args.progress)
    for run in record["runs"]:
        r = run["results"]
        cells = "  ".join(f"{k} {100 * r[k]:.2f}%" for k in ("clean", *args.attacks, "worst") if r.get(k) is not None)
        print(f"lam {run['lam']:<8g} {cells}")
    print(f"results: {args.out / 'sweep.json'}")
    return 0

def add_table1(sub: Any) -> None:
    from lfr_rs.experiments.table1 import PRESETS, TABLE1_METHODS

    p = sub.add_parser("table1", help="train and evaluate every defense of the paper's Table 1",
                       description="Table 1 of the paper: train Standard, AT, TRADES, LLR, LFR (and optionally GradNorm), "
                       "evaluate each under FGSM / PGD-40 / MI-FGSM / DDN, and write table1.{md,json,csv,png} with the "
                       "paper's rows beside ours. Resumable: rerun the same command to continue.")
    p.add_argument("--preset", choices=PRESETS, default="quick",
                   help="paper: the paper's settings (GPU, full MNIST); quick: scaled to 2 CPU cores (default: %(default)s)")
    _add_experiment_data(p)
    p.add_argument("--out", type=Path, metavar="DIR", help="output folder (default: runs/table1-PRESET-DATASET)")
    _add_methods(p, TABLE1_METHODS)
    _add_common(p)
    p.set_defaults(run=_run_table1, subparser=p)

def _run_table1(args: argparse.Namespace) -> int:
    from lfr_rs.experiments import table1

    _check_mnist_root(args)
    settings = table1.resolve(
        args.preset, args.dataset, data_root=_data_root(args),
        train_split=args.train_split, holdout=args.holdout, methods=args.methods, seed=args.seed, eps=args.eps,
        device=args.device,
    )
    out = args.out or Path("runs") / f"table1-{args.preset}-{args.dataset}"
    result = table1.run(settings, out, progress=args.progress, command=["lfr-rs", *args.argv])
    return _print_written(result.paths)

def add_frontier(sub: Any) -> None:
    from lfr_rs.experiments.frontier import DEFAULT_INNER_STEPS, FRONTIER_METHODS
    from lfr_rs.experiments.table1 import PRESETS

    p = sub.add_parser("frontier", help="strong robust accuracy against training time, per method and inner-step budget",
                       description="Train Standard, AT, TRADES, LLR and LFR with the table1 recipe at several inner-step "
                       "budgets (and LFR with hvp=fd), evaluate each with the strong cascade, and write "
                       "frontier.{json,md,png} with the Pareto frontier. Resumable: rerun the same command to continue.")
    p.add_argument("--preset", choices=(*PRESETS, "tiny"), metavar="{" + ",".join(PRESETS) + "}", default="quick",
                   help="as for table1 (default: %(default)s; 'tiny' is a seconds-long smoke run)")
    _add_experiment_data(p)
    p.add_argument("--inner-steps", type=_int_list, metavar="K1,K2,..", default=DEFAULT_INNER_STEPS,
                   help=f"inner-step budgets of AT, TRADES, LLR and LFR (default: {','.join(map(str, DEFAULT_INNER_STEPS))})")
    _add_methods(p, FRONTIER_METHODS)
    p.add_argument("--no-fd", dest="fd", action="store_false", help="leave out LFR with hvp=fd at the preset's inner steps")
    p.add_argument("--table1", type=Path, metavar="DIR", help="take the points a finished table1 run in DIR measured with these settings")
    p.add_argument("--out", type=_path, metavar="DIR", required=True, help="output folder (one folder per point, frontier.*)")
    _add_common(p)
    p.set_defaults(run=_run_frontier, subparser=p)

def _run_frontier(args: argparse.Namespace) -> int:
    from lfr_rs.experiments import frontier

    _check_mnist_root(args)
    if args.table1 is not None and not args.table1.is_dir():
        raise _UsageError(f"--table1 {args.table1}: no such folder")
    settings = frontier.resolve(
        args.preset, args.dataset, inner_steps=args.inner_steps, fd=args.fd, methods=args.methods,
        data_root=_data_root(args), train_split=args.train_split,
        holdout=args.holdout, seed=args.seed, eps=args.eps, device=args.device,
    )
    _writable_dir(args.out, "--out")
    result = frontier.run(settings, args.out, table1=args.table1, progress=args.progress, command=["lfr-rs", *args.argv])
    return _print_written(result.paths)
