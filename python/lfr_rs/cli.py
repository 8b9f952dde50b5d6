"""``lfr-rs`` command line: ``train``, ``eval``, ``quickstart``, ``sweep``, ``table1`` and ``frontier``.

    lfr-rs train --method lfr --dataset fashion-mnist --epochs 100 --out runs/lfr
    lfr-rs train --method at --dataset mnist --data-root DIR --train-split test --holdout 2000 \\
        --epochs 10 --out runs/at
    lfr-rs eval runs/lfr/checkpoint.pt --attacks fgsm,pgd,mifgsm,ddn --n 1000
    lfr-rs quickstart
    lfr-rs sweep --lam 0,0.005,0.01,0.02,0.05,0.1 --dataset fashion-mnist --epochs 10 --out runs/sweep
    lfr-rs table1 --preset quick --dataset fashion-mnist --out runs/table1
    lfr-rs frontier --preset quick --dataset fashion-mnist --out runs/frontier

Bad input exits with status 2 and a message; failures during a run exit 1.
"""

from __future__ import annotations

import argparse
import dataclasses
import inspect
import os
import sys
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, get_args

import torch

from lfr_rs import LfrError, __version__, distributed
from lfr_rs._typing import Hvp
from lfr_rs._typing import Protocol
from lfr_rs.data import DEBIAN_FASHION_MNIST
from lfr_rs.evaluate import ATTACKS, evaluate, format_table
from lfr_rs.losses import METHODS, method_options
from lfr_rs.training import (
    CHECKPOINT,
    Dataset,
    Split,
    TrainConfig,
    TrainingDiverged,
    eval_split,
    load_checkpoint,
    load_model,
    train,
    write_json,
)

__all__ = ["build_parser", "main"]

_DEFAULTS = {f.name: f.default for f in dataclasses.fields(TrainConfig)}
_EVAL_DEFAULTS = {k: p.default for k, p in inspect.signature(evaluate).parameters.items() if k in ("eps", "alpha", "steps")}
# CLI flag -> method option; each applies only to the methods that have it
_METHOD_FLAGS = ("eps", "alpha", "steps", "lam", "mu", "beta", "hvp", "fd_step")


class _UsageError(Exception):
    """Bad input found after parsing: reported like an argparse error (exit 2)."""


def _number(kind: Callable[[str], Any], low: float, inclusive: bool) -> Callable[[str], Any]:
    op = ">=" if inclusive else ">"

    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {'an integer' if kind is int else 'a number'}, got {text!r}") from None
        if not (value >= low if inclusive else value > low) or value != value:
            raise argparse.ArgumentTypeError(f"must be {op} {low:g}, got {text}")
        return value

    return parse


_pos_int = _number(int, 1, True)
_nonneg_int = _number(int, 0, True)
_pos_float = _number(float, 0, False)
_nonneg_float = _number(float, 0, True)


def _attack_list(text: str) -> Tuple[str, ...]:
    names = tuple(a.strip() for a in text.split(",") if a.strip())
    bad = [a for a in names if a not in ATTACKS]
    if bad or not names:
        raise argparse.ArgumentTypeError(f"unknown attack(s) {', '.join(bad) or repr(text)}; choose from {','.join(ATTACKS)}")
    return names


def _int_list(text: str) -> Tuple[int, ...]:
    return tuple(_pos_int(t) for t in text.split(",") if t.strip())


def _path(text: str) -> Path:
    if not text.strip():
        raise argparse.ArgumentTypeError("must not be empty")
    return Path(text)


def _writable_dir(path: Path, flag: str) -> None:
    """Creates ``path`` (a run directory) now, so a bad one fails before any training."""
    if path.exists() and not path.is_dir():
        raise _UsageError(f"{flag} {path}: exists and is not a directory")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise _UsageError(f"{flag} {path}: cannot create the directory ({e.strerror or e})") from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise _UsageError(f"{flag} {path}: the directory is not writable")


def _writable_file(path: Path, flag: str) -> None:
    """Checks that ``path`` can be written, before the work whose result it will hold."""
    if path.is_dir():
        raise _UsageError(f"{flag} {path}: is a directory; give a file name")
    parent = path.parent
    if not parent.is_dir():
        raise _UsageError(f"{flag} {path}: the folder {parent} does not exist")
    if not os.access(parent, os.W_OK | os.X_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise _UsageError(f"{flag} {path}: not writable")


def _method_help(option: str, what: str) -> str:
    defaults = ", ".join(f"{m} {method_options(m)[option]}" for m in METHODS if option in method_options(m))
    return f"{what} (default: {defaults})"


def _device(text: str) -> str:
    try:
        device = torch.device(text)
    except RuntimeError as e:
        raise argparse.ArgumentTypeError(str(e)) from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise argparse.ArgumentTypeError(f"{text}: CUDA is not available")
    if device.type == "meta":
        raise argparse.ArgumentTypeError(f"{text}: this torch cannot use meta devices here (meta tensors hold no data)")
    try:  # any other backend (mps, xpu, ...) this torch build or machine lacks fails here, not at the checkpoint
        torch.empty(0, device=device)
    except (RuntimeError, AssertionError, NotImplementedError) as e:
        first = (str(e).strip().splitlines() or [type(e).__name__])[0][:160]
        raise argparse.ArgumentTypeError(f"{text}: this torch cannot use {device.type} devices here ({first})") from None
    return text


def _add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--device", type=_device, default=_DEFAULTS["device"], help="torch device (default: %(default)s)")
    p.add_argument("--threads", type=_pos_int, metavar="N", help="CPU threads for torch (default: torch's choice)")
    p.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                   help="progress bars (default: on terminals only)")


def _add_training_data(p: argparse.ArgumentParser, out_help: str) -> None:
    """The data, output and SGD options ``train`` and ``sweep`` share."""
    p.add_argument("--dataset", required=True, choices=get_args(Dataset))
    p.add_argument("--data-root", type=Path, metavar="DIR", help=f"IDX folder (required for mnist; fashion-mnist: {DEBIAN_FASHION_MNIST})")
    p.add_argument("--train-split", choices=get_args(Split), default=_DEFAULTS["train_split"],
                   help="'test' trains on the test split minus its first --holdout images (default: %(default)s)")
    p.add_argument("--holdout", type=_pos_int, metavar="N", help="with --train-split test: first N test images kept for evaluation")
    p.add_argument("--epochs", type=_pos_int, metavar="N", required=True)
    p.add_argument("--out", type=_path, metavar="DIR", required=True, help=out_help)
    p.add_argument("--subset", type=_pos_int, metavar="N", help="train on the first N training images")
    p.add_argument("--batch-size", type=_pos_int, metavar="N", default=_DEFAULTS["batch_size"], help="(default: %(default)s)")
    p.add_argument("--lr", type=_pos_float, default=_DEFAULTS["lr"], help="(default: %(default)s)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lfr-rs", description="Adversarial training and robustness evaluation.")
    parser.add_argument("--version", action="version", version=f"lfr-rs {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="{train,eval,quickstart,sweep,table1,frontier}")

    t = sub.add_parser("train", help="train SmallCNN with a defense", description="Train SmallCNN (TRADES' MNIST recipe).")
    t.add_argument("--method", required=True, choices=list(METHODS))
    _add_training_data(t, "run directory (checkpoint.pt, log.json)")
    t.add_argument("--momentum", type=_nonneg_float, default=_DEFAULTS["momentum"], help="(default: %(default)s)")
    t.add_argument("--weight-decay", type=_nonneg_float, default=_DEFAULTS["weight_decay"], help="(default: %(default)s)")
    t.add_argument("--milestones", type=_int_list, metavar="E1,E2,..", help="1-based epochs of lr x0.1, e.g. 55,75,90 (default: those of 100 scaled)")
    t.add_argument("--eps", type=_nonneg_float, help=_method_help("eps", "L-inf radius of the inner maximisation"))
    t.add_argument("--alpha", type=_pos_float, help=_method_help("alpha", "inner step size"))
    t.add_argument("--steps", type=_pos_int, help=_method_help("steps", "inner steps"))
    t.add_argument("--lam", type=_nonneg_float, help=_method_help("lam", "regularizer weight"))
    t.add_argument("--mu", type=_nonneg_float, help=_method_help("mu", "LLR gradient-alignment weight"))
    t.add_argument("--beta", type=_nonneg_float, help=_method_help("beta", "TRADES 1/lambda"))
    t.add_argument("--hvp", choices=get_args(Hvp), help=_method_help("hvp", "LFR Hessian-vector product"))
    t.add_argument("--fd-step", type=_pos_float, help="LFR finite-difference step with --hvp fd (default: the kernel's)")
    t.add_argument("--seed", type=int, default=_DEFAULTS["seed"], help="(default: %(default)s)")
    t.add_argument("--eval-n", type=_nonneg_int, metavar="N", default=0, help="log clean and PGD accuracy on N eval images each epoch")
    t.add_argument("--resume", action="store_true", help="continue --out/checkpoint.pt if it exists")
    t.add_argument("--stop-after", type=_pos_int, metavar="N", help="stop after N epochs of this call (continue with --resume)")
    _add_common(t)
    t.set_defaults(run=_run_train, subparser=t)

    e = sub.add_parser("eval", help="robust accuracy of a checkpoint (Table 1 row)")
    e.add_argument("checkpoint", type=Path)
    e.add_argument("--attacks", type=_attack_list, metavar="A,B,..", default=ATTACKS, help=f"comma-separated (default: {','.join(ATTACKS)})")
    e.add_argument("--n", "--n-images", dest="n", type=_pos_int, metavar="N",
                   help="first N evaluation images (default: all); under torchrun write --n-images")
    e.add_argument("--json", type=_path, metavar="PATH", help="results file (default: CHECKPOINT with suffix .eval.json)")
    e.add_argument("--data-root", type=Path, metavar="DIR", help="overrides the checkpoint's data root")
    e.add_argument("--eps", type=_nonneg_float, default=_EVAL_DEFAULTS["eps"], help="(default: %(default)s)")
    e.add_argument("--alpha", type=_pos_float, default=_EVAL_DEFAULTS["alpha"], help="(default: %(default)s)")
    e.add_argument("--steps", type=_pos_int, default=_EVAL_DEFAULTS["steps"], help="(default: %(default)s)")
    e.add_argument("--ddn-steps", type=_pos_int, metavar="N", help="(default: --steps)")
    e.add_argument("--batch-size", type=_pos_int, metavar="N", help="attack batch size (default: evaluate()'s)")
    e.add_argument("--name", help="row label (default: the method's name)")
    e.add_argument("--protocol", choices=get_args(Protocol),
                   help="paper: the authors' MNIST_eval.py; strong: APGD-CE/APGD-T/Square cascade with the "
                        "gradient-masking checks; both (default: lfr-rs' harness, --attacks)")
    _add_common(e)
    e.set_defaults(run=_run_eval, subparser=e)

    q = sub.add_parser("quickstart", help="standard-train on Fashion-MNIST for 1 epoch, then evaluate 1000 test images")
    q.add_argument("--out", type=_path, metavar="DIR", default=Path("runs/quickstart"), help="(default: %(default)s)")
    q.add_argument("--data-root", type=Path, metavar="DIR", help=f"Fashion-MNIST folder (default: {DEBIAN_FASHION_MNIST})")
    q.add_argument("--subset", type=_pos_int, metavar="N", help="train on the first N images (default: all 60000)")
    q.add_argument("--n", type=_pos_int, metavar="N", default=1000, help="test images to evaluate (default: %(default)s)")
    _add_common(q)
    q.set_defaults(run=_run_quickstart, subparser=q)
    _add_sweep(sub)
    _add_table1(sub)
    _add_frontier(sub)
    return parser


def _train_config(args: argparse.Namespace) -> TrainConfig:
    options = {k: getattr(args, k) for k in _METHOD_FLAGS if getattr(args, k) is not None}
    accepted = method_options(args.method)
    extra = [k for k in options if k not in accepted]
    if extra:
        flags = ", ".join("--" + k.replace("_", "-") for k in extra)
        raise _UsageError(f"{flags} does not apply to --method {args.method} (its options: {', '.join(accepted) or 'none'})")
    if args.dataset == "mnist" and args.data_root is None:
        raise _UsageError("--dataset mnist needs --data-root DIR (a folder with the MNIST IDX files; nothing is downloaded)")
    if args.train_split == "test" and args.holdout is None:
        raise _UsageError("--train-split test needs --holdout N: the first N test images are kept for evaluation")
    if args.train_split == "train" and args.holdout is not None:
        raise _UsageError("--holdout only applies with --train-split test")
    return TrainConfig(
        method=args.method, options=options, dataset=args.dataset,
        data_root=None if args.data_root is None else str(args.data_root.resolve()),
        train_split=args.train_split, holdout=args.holdout or 0, subset=args.subset, epochs=args.epochs,
        batch_size=args.batch_size, lr=args.lr, momentum=args.momentum, weight_decay=args.weight_decay,
        milestones=args.milestones, seed=args.seed, eval_n=args.eval_n, device=args.device,
    )


def _run_train(args: argparse.Namespace) -> int:
    config = _train_config(args)
    config.resolved()  # bad combinations fail here, before any data is read
    if distributed.is_main():
        _writable_dir(args.out, "--out")
    result = train(config, args.out, resume=args.resume, stop_after=args.stop_after, progress=args.progress)
    if distributed.is_main():
        print(f"checkpoint: {result.checkpoint}")
    return 0


def _evaluate_checkpoint(
    path: Path, *, n: Optional[int], attacks: Sequence[str], data_root: Optional[Path], device: str,
    eps: float, alpha: float, steps: int, ddn_steps: Optional[int], batch_size: Optional[int], progress: Optional[bool],
    name: Optional[str], json_path: Path, protocol: Optional[str] = None,
) -> Dict[str, Any]:
    if not path.is_file():
        raise _UsageError(f"no checkpoint at {path}" if not path.is_dir() else f"{path} is a directory, not a checkpoint")
    distributed.init_from_env(device)
    main = distributed.is_main()
    if main:
        _writable_file(json_path, "--json")
    device = str(distributed.local_device(device))
    state = load_checkpoint(path, map_location=device)
    model, config = load_model(path, device=device)
    if data_root is not None:
        config = dataclasses.replace(config, data_root=str(data_root.resolve()))
    x, y = eval_split(config)
    split = f"test[:{config.holdout}]" if config.train_split == "test" else "test"
    if n is not None:
        if n > len(x):
            raise _UsageError(f"--n {n}: the evaluation set ({config.dataset} {split}) has only {len(x)} images")
        x, y = x[:n], y[:n]
    extra = {} if batch_size is None else {"batch_size": batch_size}
    # under torchrun each rank attacks its share of the images; the counts are summed exactly
    results = distributed.evaluate_sharded(
        evaluate, model, x.to(device), y.to(device), attacks=attacks, eps=eps, alpha=alpha, steps=steps,
        ddn_steps=ddn_steps, progress=progress if main else False, protocol=protocol, **extra,
    )
    title = name or METHODS[config.method].title
    record = {"checkpoint": str(path), "defense": title, "method": config.method, "epoch": state["epoch"],
              "dataset": config.dataset, "split": split, "world_size": distributed.world_size(), "results": results}
    if main:
        print(_format_results(title, protocol, results))
        write_json(json_path, record)
        print(f"results: {json_path}")
    return record


def _format_results(title: str, protocol: Optional[str], results: Dict[str, Any]) -> str:
    from lfr_rs.evaluation import format_paper_table, format_strong_table

    if protocol is None:
        return format_table({title: results})
    parts = {"paper": results} if protocol == "paper" else {"strong": results} if protocol == "strong" else results
    return "\n\n".join(format_paper_table({title: r}) if p == "paper" else format_strong_table(title, r)
                        for p, r in parts.items())


def _run_eval(args: argparse.Namespace) -> int:
    _evaluate_checkpoint(
        args.checkpoint, n=args.n, attacks=args.attacks, data_root=args.data_root, device=args.device,
        eps=args.eps, alpha=args.alpha, steps=args.steps, ddn_steps=args.ddn_steps, batch_size=args.batch_size,
        progress=args.progress, name=args.name, json_path=args.json or args.checkpoint.with_suffix(".eval.json"),
        protocol=args.protocol,
    )
    return 0


def _run_quickstart(args: argparse.Namespace) -> int:
    root = args.data_root or DEBIAN_FASHION_MNIST
    if not Path(root).is_dir():
        raise _UsageError(f"Fashion-MNIST not found at {root}: install Debian's dataset-fashion-mnist or pass --data-root DIR")
    _writable_dir(args.out, "--out")
    config = TrainConfig(method="standard", dataset="fashion-mnist", data_root=str(Path(root).resolve()),
                         subset=args.subset, epochs=1, device=args.device)
    print(f"1/2 standard training of SmallCNN on Fashion-MNIST ({args.subset or 'all'} images, 1 epoch) -> {args.out}")
    train(config, args.out, resume=True, progress=args.progress)
    print(f"2/2 clean / FGSM / PGD-40 / MI-FGSM / DDN on the first {args.n} test images")
    _evaluate_checkpoint(
        args.out / CHECKPOINT, n=args.n, attacks=ATTACKS, data_root=None, device=args.device, batch_size=None,
        progress=args.progress, name=None, json_path=args.out / "eval.json", ddn_steps=None, **_EVAL_DEFAULTS,
    )
    return 0


def _float_list(text: str) -> Tuple[float, ...]:
    return tuple(_nonneg_float(t.strip()) for t in text.split(",") if t.strip())


def _add_sweep(sub: Any) -> None:
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
    s.add_argument("--eps", type=_nonneg_float, default=_EVAL_DEFAULTS["eps"], help="attack radius (default: %(default)s)")
    s.add_argument("--alpha", type=_pos_float, default=_EVAL_DEFAULTS["alpha"], help="attack step (default: %(default)s)")
    s.add_argument("--steps", type=_pos_int, default=_EVAL_DEFAULTS["steps"], help="attack steps (default: %(default)s)")
    _add_common(s)
    s.set_defaults(run=_run_sweep, subparser=s)


def _run_sweep(args: argparse.Namespace) -> int:
    from lfr_rs.sweeps import sweep

    if len(set(args.lam)) != len(args.lam) or not args.lam:
        raise _UsageError(f"--lam needs distinct values, got {','.join(map(str, args.lam)) or 'none'}")
    if args.dataset == "mnist" and args.data_root is None:
        raise _UsageError("--dataset mnist needs --data-root DIR (a folder with the MNIST IDX files; nothing is downloaded)")
    if (args.train_split == "test") != (args.holdout is not None):
        raise _UsageError("--train-split test and --holdout N go together")
    inner = {"steps": args.inner_steps, "alpha": args.inner_alpha, "eps": args.inner_eps, "hvp": args.hvp}
    base = TrainConfig(
        method="lfr", options={k: v for k, v in inner.items() if v is not None}, dataset=args.dataset,
        data_root=None if args.data_root is None else str(args.data_root.resolve()),
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


def _method_list(text: str) -> Tuple[str, ...]:
    names = tuple(m.strip() for m in text.split(",") if m.strip())
    bad = [m for m in names if m not in METHODS]
    if bad or not names or len(set(names)) != len(names):
        raise argparse.ArgumentTypeError(f"expected distinct methods among {','.join(METHODS)}, got {text!r}")
    return names


def _add_table1(sub: Any) -> None:
    from lfr_rs.table1 import PRESETS, TABLE1_METHODS

    p = sub.add_parser("table1", help="train and evaluate every defense of the paper's Table 1",
                       description="Table 1 of the paper: train Standard, AT, TRADES, LLR, LFR (and optionally GradNorm), "
                       "evaluate each under FGSM / PGD-40 / MI-FGSM / DDN, and write table1.{md,json,csv,png} with the "
                       "paper's rows beside ours. Resumable: rerun the same command to continue.")
    p.add_argument("--preset", choices=PRESETS, default="quick",
                   help="paper: the paper's settings (GPU, full MNIST); quick: scaled to 2 CPU cores (default: %(default)s)")
    p.add_argument("--dataset", choices=get_args(Dataset), default="fashion-mnist", help="(default: %(default)s)")
    p.add_argument("--data-root", type=Path, metavar="DIR", help=f"IDX folder (required for mnist; fashion-mnist: {DEBIAN_FASHION_MNIST})")
    p.add_argument("--train-split", choices=get_args(Split), default="train",
                   help="'test' trains on the test split minus its first --holdout images (default: %(default)s)")
    p.add_argument("--holdout", type=_pos_int, metavar="N", help="with --train-split test: first N test images kept for evaluation")
    p.add_argument("--out", type=Path, metavar="DIR", help="output folder (default: runs/table1-PRESET-DATASET)")
    p.add_argument("--methods", type=_method_list, metavar="A,B,..", default=TABLE1_METHODS,
                   help=f"comma-separated among {','.join(METHODS)} (default: {','.join(TABLE1_METHODS)})")
    p.add_argument("--seed", type=int, help="(default: 1000, the authors' script's)")
    p.add_argument("--eps", type=_pos_float, help="L-inf radius for training and attacks (default: 0.3; 0.1 on fashion-mnist)")
    _add_common(p)
    p.set_defaults(run=_run_table1, subparser=p)


def _run_table1(args: argparse.Namespace) -> int:
    from lfr_rs import table1

    if args.dataset == "mnist" and args.data_root is None:
        raise _UsageError("--dataset mnist needs --data-root DIR (MNIST IDX files; nothing is downloaded). With only "
                          "the 10,000 test images: --train-split test --holdout 2000")
    settings = table1.resolve(
        args.preset, args.dataset, data_root=None if args.data_root is None else str(args.data_root.resolve()),
        train_split=args.train_split, holdout=args.holdout, methods=args.methods, seed=args.seed, eps=args.eps,
        device=args.device,
    )
    out = args.out or Path("runs") / f"table1-{args.preset}-{args.dataset}"
    result = table1.run(settings, out, progress=args.progress, command=["lfr-rs", *args.argv])
    print(result.paths["md"].read_text())
    print(f"files: {', '.join(str(p) for p in result.paths.values())}")
    return 0


def _add_frontier(sub: Any) -> None:
    from lfr_rs.frontier import DEFAULT_INNER_STEPS, FRONTIER_METHODS
    from lfr_rs.table1 import PRESETS

    p = sub.add_parser("frontier", help="strong robust accuracy against training time, per method and inner-step budget",
                       description="Train Standard, AT, TRADES, LLR and LFR with the table1 recipe at several inner-step "
                       "budgets (and LFR with hvp=fd), evaluate each with the strong cascade, and write "
                       "frontier.{json,md,png} with the Pareto frontier. Resumable: rerun the same command to continue.")
    p.add_argument("--preset", choices=(*PRESETS, "tiny"), metavar="{" + ",".join(PRESETS) + "}", default="quick",
                   help="as for table1 (default: %(default)s; 'tiny' is a seconds-long smoke run)")
    p.add_argument("--dataset", choices=get_args(Dataset), default="fashion-mnist", help="(default: %(default)s)")
    p.add_argument("--data-root", type=Path, metavar="DIR", help=f"IDX folder (required for mnist; fashion-mnist: {DEBIAN_FASHION_MNIST})")
    p.add_argument("--train-split", choices=get_args(Split), default="train",
                   help="'test' trains on the test split minus its first --holdout images (default: %(default)s)")
    p.add_argument("--holdout", type=_pos_int, metavar="N", help="with --train-split test: first N test images kept for evaluation")
    p.add_argument("--inner-steps", type=_int_list, metavar="K1,K2,..", default=DEFAULT_INNER_STEPS,
                   help=f"inner-step budgets of AT, TRADES, LLR and LFR (default: {','.join(map(str, DEFAULT_INNER_STEPS))})")
    p.add_argument("--methods", type=_method_list, metavar="A,B,..", default=FRONTIER_METHODS,
                   help=f"comma-separated among {','.join(METHODS)} (default: {','.join(FRONTIER_METHODS)})")
    p.add_argument("--no-fd", dest="fd", action="store_false", help="leave out LFR with hvp=fd at the preset's inner steps")
    p.add_argument("--seed", type=int, help="(default: 1000, as table1)")
    p.add_argument("--eps", type=_pos_float, help="L-inf radius for training and attacks (default: 0.3; 0.1 on fashion-mnist)")
    p.add_argument("--table1", type=Path, metavar="DIR", help="take the points a finished table1 run in DIR measured with these settings")
    p.add_argument("--out", type=_path, metavar="DIR", required=True, help="output folder (one folder per point, frontier.*)")
    _add_common(p)
    p.set_defaults(run=_run_frontier, subparser=p)


def _run_frontier(args: argparse.Namespace) -> int:
    from lfr_rs import frontier

    if args.dataset == "mnist" and args.data_root is None:
        raise _UsageError("--dataset mnist needs --data-root DIR (MNIST IDX files; nothing is downloaded). With only "
                          "the 10,000 test images: --train-split test --holdout 2000")
    if args.table1 is not None and not args.table1.is_dir():
        raise _UsageError(f"--table1 {args.table1}: no such folder")
    settings = frontier.resolve(
        args.preset, args.dataset, inner_steps=args.inner_steps, fd=args.fd, methods=args.methods,
        data_root=None if args.data_root is None else str(args.data_root.resolve()), train_split=args.train_split,
        holdout=args.holdout, seed=args.seed, eps=args.eps, device=args.device,
    )
    _writable_dir(args.out, "--out")
    result = frontier.run(settings, args.out, table1=args.table1, progress=args.progress, command=["lfr-rs", *args.argv])
    print(result.paths["md"].read_text())
    print(f"files: {', '.join(str(p) for p in result.paths.values())}")
    return 0


def main(argv: Optional[List[str]] = None) -> int:
    """Entry point of ``lfr-rs`` and ``python -m lfr_rs``; returns the exit status."""
    args = build_parser().parse_args(argv)
    args.argv = sys.argv[1:] if argv is None else list(argv)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    try:
        return int(args.run(args))
    except TrainingDiverged as e:
        # a run failure whatever the method (the kernels' non-finite checks included), not bad input
        print(f"lfr-rs {args.command}: error: {e}", file=sys.stderr)
        return 1
    except (_UsageError, ValueError, FileNotFoundError, FileExistsError, NotADirectoryError, IsADirectoryError,
            PermissionError) as e:
        args.subparser.error(str(e))
    except (LfrError, FloatingPointError) as e:
        print(f"lfr-rs {args.command}: error: {type(e).__name__}: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"lfr-rs {args.command}: interrupted; continue a training run with --resume", file=sys.stderr)
        return 130
    return 2  # not reached: error() exits


if __name__ == "__main__":
    sys.exit(main())
