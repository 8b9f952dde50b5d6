"""``lfr-rs train``, ``eval`` and ``quickstart``."""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path
from typing import Any, Dict, Optional, Sequence, get_args

from lfr_rs import distributed
from lfr_rs._typing import Hvp, Protocol
from lfr_rs.cli._args import (
    _DEFAULTS,
    _EVAL_DEFAULTS,
    _METHOD_FLAGS,
    _UsageError,
    _add_common,
    _add_training_data,
    _attack_list,
    _data_root,
    _int_list,
    _method_help,
    _nonneg_float,
    _nonneg_int,
    _path,
    _pos_float,
    _pos_int,
    _writable_dir,
    _writable_file,
)
from lfr_rs.data import DEBIAN_FASHION_MNIST
from lfr_rs.evaluation import ATTACKS, evaluate, format_table
from lfr_rs.losses import METHODS, method_options
from lfr_rs.models import load_reference, reference_entry
from lfr_rs.training import CHECKPOINT, TrainConfig, eval_split, load_checkpoint, load_model, train, write_json


REFERENCE_PREFIX = "reference:"


def add_train(sub: Any) -> None:
    t = sub.add_parser("train", help="train SmallCNN with a defense", description="Train SmallCNN (TRADES' MNIST recipe).")
    t.add_argument("--method", required=True, choices=list(METHODS))
    _add_training_data(t, "run directory (checkpoint.pt, log.json)")
    t.add_argument("--momentum", type=_nonneg_float, default=_DEFAULTS["momentum"], help="(default: %(default)s)")
    t.add_argument("--weight-decay", type=_nonneg_float, default=_DEFAULTS["weight_decay"], help="(default: %(default)s)")
    t.add_argument("--milestones", type=_int_list, metavar="E1,E2,..", help="1-based epochs of lr x0.1, e.g. 55,75,90 (default: those of 100 scaled)")
    t.add_argument("--eps", type=_nonneg_float, help=_method_help("eps", "L-inf radius of the training inner maximisation (the PGD monitor of --eval-n uses it too unless --eval-eps)"))
    t.add_argument("--alpha", type=_pos_float, help=_method_help("alpha", "inner step size"))
    t.add_argument("--steps", type=_pos_int, help=_method_help("steps", "inner steps"))
    t.add_argument("--lam", type=_nonneg_float, help=_method_help("lam", "regularizer weight"))
    t.add_argument("--mu", type=_nonneg_float, help=_method_help("mu", "LLR gradient-alignment weight"))
    t.add_argument("--beta", type=_nonneg_float, help=_method_help("beta", "TRADES 1/lambda"))
    t.add_argument("--hvp", choices=get_args(Hvp), help=_method_help("hvp", "LFR Hessian-vector product"))
    t.add_argument("--fd-step", type=_pos_float, help="LFR finite-difference step with --hvp fd (default: the kernel's)")
    t.add_argument("--seed", type=int, default=_DEFAULTS["seed"], help="(default: %(default)s)")
    t.add_argument("--eval-n", type=_nonneg_int, metavar="N", default=0, help="log clean and PGD accuracy on N eval images each epoch")
    t.add_argument("--eval-eps", type=_nonneg_float, metavar="EPS",
                   help="radius of that PGD monitor (default: the method's --eps, or 0.3 for a method without one)")
    t.add_argument("--eval-alpha", type=_pos_float, metavar="A", help="step of that PGD monitor (default: 0.01 per 0.3 of radius)")
    t.add_argument("--warmup", type=_nonneg_float, metavar="EPOCHS",
                   help="ramp the radius and penalty weights from 0 over EPOCHS epochs (default: 0.3 x epochs "
                        "for runs under 50 epochs, else 0)")
    t.add_argument("--resume", action="store_true", help="continue --out/checkpoint.pt if it exists")
    t.add_argument("--graph", action="store_true",
                   help="on CUDA, replay each training step from a CUDA graph (lfr_rs.training.graphed); "
                        "warns and trains eagerly elsewhere")
    t.add_argument("--stop-after", type=_pos_int, metavar="N", help="stop after N epochs of this call (continue with --resume)")
    _add_common(t)
    t.set_defaults(run=_run_train, subparser=t)

def add_eval(sub: Any) -> None:
    e = sub.add_parser("eval", help="robust accuracy of a checkpoint (Table 1 row)")
    e.add_argument("checkpoint", type=Path,
                   help=f"a checkpoint.pt of lfr-rs train, or {REFERENCE_PREFIX}NAME for a committed reference model "
                        "(e.g. reference:fashion-mnist/lfr; see lfr_rs.models.list_references)")
    e.add_argument("--attacks", type=_attack_list, metavar="A,B,..", default=ATTACKS, help=f"comma-separated (default: {','.join(ATTACKS)})")
    e.add_argument("--n", "--n-images", dest="n", type=_pos_int, metavar="N",
                   help="first N evaluation images (default: all); under torchrun write --n-images")
    e.add_argument("--json", type=_path, metavar="PATH", help="results file (default: CHECKPOINT with suffix .eval.json)")
    e.add_argument("--data-root", type=Path, metavar="DIR", help="overrides the checkpoint's data root")
    e.add_argument("--eps", type=_nonneg_float, default=_EVAL_DEFAULTS["eps"], help="L-inf radius of the attacks (default: %(default)s)")
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

def add_quickstart(sub: Any) -> None:
    q = sub.add_parser("quickstart", help="standard-train on Fashion-MNIST for 1 epoch, then evaluate 1000 test images")
    q.add_argument("--out", type=_path, metavar="DIR", default=Path("runs/quickstart"), help="(default: %(default)s)")
    q.add_argument("--data-root", type=Path, metavar="DIR", help=f"Fashion-MNIST folder (default: {DEBIAN_FASHION_MNIST})")
    q.add_argument("--subset", type=_pos_int, metavar="N", help="train on the first N images (default: all 60000)")
    q.add_argument("--n", type=_pos_int, metavar="N", default=1000, help="test images to evaluate (default: %(default)s)")
    _add_common(q)
    q.set_defaults(run=_run_quickstart, subparser=q)

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
        data_root=_data_root(args),
        train_split=args.train_split, holdout=args.holdout or 0, subset=args.subset, epochs=args.epochs,
        batch_size=args.batch_size, lr=args.lr, momentum=args.momentum, weight_decay=args.weight_decay,
        milestones=args.milestones, seed=args.seed, eval_n=args.eval_n, device=args.device, warmup=args.warmup,
        eval_eps=args.eval_eps, eval_alpha=args.eval_alpha,
    )

def _run_train(args: argparse.Namespace) -> int:
    config = _train_config(args)
    config.resolved()  # bad combinations fail here, before any data is read
    if distributed.is_main():
        _writable_dir(args.out, "--out")
    result = train(config, args.out, resume=args.resume, stop_after=args.stop_after, progress=args.progress,
                   graph=args.graph)
    if distributed.is_main():
        print(f"checkpoint: {result.checkpoint}")
    return 0

def _evaluate_checkpoint(
    path: Path, *, n: Optional[int], attacks: Sequence[str], data_root: Optional[Path], device: str,
    eps: float, alpha: float, steps: int, ddn_steps: Optional[int], batch_size: Optional[int], progress: Optional[bool],
    name: Optional[str], json_path: Path, protocol: Optional[str] = None,
) -> Dict[str, Any]:
    reference = str(path).startswith(REFERENCE_PREFIX)
    if not reference and not path.is_file():
        raise _UsageError(f"no checkpoint at {path}" if not path.is_dir() else f"{path} is a directory, not a checkpoint")
    distributed.init_from_env(device)
    main = distributed.is_main()
    if main:
        _writable_file(json_path, "--json")
    device = str(distributed.local_device(device))
    if reference:
        name = str(path)[len(REFERENCE_PREFIX):]
        entry = reference_entry(name)
        model, config, epoch = load_reference(name, device=device), TrainConfig.from_dict(entry["config"]), entry["epochs"]
    else:
        epoch = load_checkpoint(path, map_location=device)["epoch"]
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
    record = {"checkpoint": str(path), "defense": title, "method": config.method, "epoch": epoch,
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

def _default_json(checkpoint: Path) -> Path:
    """Beside the checkpoint; ``runs/reference-DATASET-METHOD.eval.json`` for a reference model."""
    text = str(checkpoint)
    if text.startswith(REFERENCE_PREFIX):
        out = Path("runs") / f"reference-{text[len(REFERENCE_PREFIX):].replace('/', '-')}.eval.json"
        out.parent.mkdir(parents=True, exist_ok=True)
        return out
    return checkpoint.with_suffix(".eval.json")


def _run_eval(args: argparse.Namespace) -> int:
    _evaluate_checkpoint(
        args.checkpoint, n=args.n, attacks=args.attacks, data_root=args.data_root, device=args.device,
        eps=args.eps, alpha=args.alpha, steps=args.steps, ddn_steps=args.ddn_steps, batch_size=args.batch_size,
        progress=args.progress, name=args.name, json_path=args.json or _default_json(args.checkpoint),
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
