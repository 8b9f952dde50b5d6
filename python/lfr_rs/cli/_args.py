"""The ``lfr-rs`` argument types, validators and option groups the subcommands share."""

from __future__ import annotations

import argparse
import dataclasses
import inspect
import os
from pathlib import Path
from typing import Any, Callable, Mapping, Optional, Sequence, Tuple, get_args

import torch

from lfr_rs.data import DEBIAN_FASHION_MNIST
from lfr_rs.evaluation import ATTACKS, evaluate
from lfr_rs.losses import METHODS, method_options
from lfr_rs.training import Dataset, Split, TrainConfig

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

def _float_list(text: str) -> Tuple[float, ...]:
    return tuple(_nonneg_float(t.strip()) for t in text.split(",") if t.strip())

def _method_list(text: str) -> Tuple[str, ...]:
    names = tuple(m.strip() for m in text.split(",") if m.strip())
    bad = [m for m in names if m not in METHODS]
    if bad or not names or len(set(names)) != len(names):
        raise argparse.ArgumentTypeError(f"expected distinct methods among {','.join(METHODS)}, got {text!r}")
    return names

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


def _add_experiment_data(p: argparse.ArgumentParser) -> None:
    """The data, seed and eps options ``table1`` and ``frontier`` share."""
    p.add_argument("--dataset", choices=get_args(Dataset), default="fashion-mnist", help="(default: %(default)s)")
    p.add_argument("--data-root", type=Path, metavar="DIR", help=f"IDX folder (required for mnist; fashion-mnist: {DEBIAN_FASHION_MNIST})")
    p.add_argument("--train-split", choices=get_args(Split), default="train",
                   help="'test' trains on the test split minus its first --holdout images (default: %(default)s)")
    p.add_argument("--holdout", type=_pos_int, metavar="N", help="with --train-split test: first N test images kept for evaluation")
    p.add_argument("--seed", type=int, help="(default: 1000, the authors' script's)")
    p.add_argument("--eps", type=_pos_float, help="L-inf radius of both the training inner maximisation and the evaluation attacks (default: 0.3; 0.1 on fashion-mnist)")


def _add_methods(p: argparse.ArgumentParser, default: Sequence[str]) -> None:
    p.add_argument("--methods", type=_method_list, metavar="A,B,..", default=default,
                   help=f"comma-separated among {','.join(METHODS)} (default: {','.join(default)})")


def _data_root(args: argparse.Namespace) -> Optional[str]:
    """``--data-root`` as an absolute path string (runs record it), or None."""
    return None if args.data_root is None else str(args.data_root.resolve())


def _print_written(paths: Mapping[str, Path]) -> int:
    """Prints an experiment's Markdown table and the files it wrote; the command's exit code."""
    print(paths["md"].read_text())
    print(f"files: {', '.join(str(p) for p in paths.values())}")
    return 0


def _check_mnist_root(args: argparse.Namespace) -> None:
    if args.dataset == "mnist" and args.data_root is None:
        raise _UsageError("--dataset mnist needs --data-root DIR (MNIST IDX files; nothing is downloaded). With only "
                          "the 10,000 test images: --train-split test --holdout 2000")
