"""What one point's training costs, measured so that points compare fairly.

A frontier's points are trained one after another, sometimes over hours and
sometimes in different processes (``--table1`` reuses a table's rows), so the
wall-clock each training recorded mixes the method's cost with whatever else
the machine did at the time. :func:`step_seconds` times one SGD step of every
point side by side instead: the same batch, in one process, in interleaved
rounds (every point once per round, median over rounds), through the training
loop's own step. A point's training time is then its SGD steps times that.
"""

from __future__ import annotations

import statistics
import time
from typing import Dict, Sequence

import torch
from torch import Tensor

from lfr_rs.experiments.frontier.points import FrontierSettings, Point
from lfr_rs.losses import make_method
from lfr_rs.models import SmallCNN
from lfr_rs.training.loop import run_epoch

__all__ = ["sgd_steps", "step_seconds"]


def sgd_steps(settings: FrontierSettings, n_train: int) -> int:
    """SGD steps of every point's training: batches per epoch times epochs."""
    base = settings.base
    return -(-n_train // base.batch_size) * base.epochs


def step_seconds(settings: FrontierSettings, points: Sequence[Point], x: Tensor, y: Tensor, *,
                 rounds: int = 3) -> Dict[str, float]:
    """Median seconds of one training step (inner maximisation, outer loss,
    backward, SGD update) of each point on the batch ``x, y`` (on the settings'
    device), after one untimed warm-up round; points interleaved within each
    of ``rounds`` rounds."""
    if rounds < 1:
        raise ValueError(f"rounds must be >= 1, got {rounds}")
    device = torch.device(settings.base.device)
    x, y = x.to(device), y.to(device)
    runs = {}
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(settings.base.seed)
        for point in points:
            config = settings.train_config(point).resolved()
            model = SmallCNN(**config.model).to(device)
            optimizer = torch.optim.SGD(model.parameters(), lr=config.lr, momentum=config.momentum,
                                        weight_decay=config.weight_decay)
            runs[point.name] = (model, make_method(config.method, **config.options), optimizer)
        times: Dict[str, list] = {name: [] for name in runs}
        for r in range(rounds + 1):
            for name, (model, method, optimizer) in runs.items():
                if device.type == "cuda":
                    torch.cuda.synchronize(device)
                tic = time.perf_counter()
                run_epoch(model, model, method, optimizer, [(x, y)], None, False, None)
                if device.type == "cuda":
                    torch.cuda.synchronize(device)
                if r > 0:  # round 0 warms up
                    times[name].append(time.perf_counter() - tic)
    return {name: statistics.median(t) for name, t in times.items()}
