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
import sys
from typing import List, Optional

import torch

from lfr_rs._native import __version__
from lfr_rs.exceptions import LfrError
from lfr_rs.cli._args import _UsageError
from lfr_rs.cli.experiments import add_frontier, add_sweep, add_table1
from lfr_rs.cli.train_eval import add_eval, add_quickstart, add_train
from lfr_rs.training import TrainingDiverged

__all__ = ["build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lfr-rs", description="Adversarial training and robustness evaluation.")
    parser.add_argument("--version", action="version", version=f"lfr-rs {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="{train,eval,quickstart,sweep,table1,frontier}")
    for add in (add_train, add_eval, add_quickstart, add_sweep, add_table1, add_frontier):
        add(sub)
    return parser


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
