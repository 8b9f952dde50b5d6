"""``train(config, out_dir)``: a configured SmallCNN run on MNIST-format data,
a thin user of :func:`lfr_rs.training.fit`.

TRADES' MNIST recipe: SGD with momentum 0.9, lr 0.01, batch 128, 100 epochs,
lr x0.1 at epochs 55, 75 and 90 (scaled to other lengths by
:func:`~lfr_rs.training.scaled_milestones`). Under ``torchrun`` ``batch_size``
stays the global batch.
"""

from __future__ import annotations

from typing import Any, Dict, Optional

import torch

from lfr_rs import distributed
from lfr_rs.evaluation import evaluate
from lfr_rs.models import SmallCNN
from lfr_rs.training.checkpoint import PathLike
from lfr_rs.training.config import TrainConfig, load_data
from lfr_rs.training.fit import FitResult, fit
from lfr_rs.training.loop import TensorBatches

__all__ = ["TrainResult", "train"]

TrainResult = FitResult


def train(
    config: TrainConfig,
    out_dir: PathLike,
    *,
    resume: bool = False,
    stop_after: Optional[int] = None,
    progress: Optional[bool] = None,
    verbose: bool = True,
    graph: bool = False,
) -> FitResult:
    """Trains ``SmallCNN(**config.model)`` with ``config.method``, checkpointing
    every epoch into ``out_dir`` (see :func:`~lfr_rs.training.fit` for the
    files, ``resume``, ``stop_after``, ``progress`` and ``graph``: CUDA graphs
    for the training step, a speed option outside the run's configuration).

    Seeds torch's global RNG with ``config.seed`` (model initialisation,
    dropout, random starts) and the shuffle with its own generator; under
    ``torchrun``, ranks above 0 then reseed their global RNG from the seed and
    their rank, so their dropout masks and random starts differ.
    """
    config = config.resolved()
    data = load_data(config)
    device = torch.device(config.device)
    eval_x, eval_y = data.eval_x[: config.eval_n], data.eval_y[: config.eval_n]

    torch.manual_seed(config.seed)
    model = SmallCNN(**config.model)
    optimizer = torch.optim.SGD(
        model.parameters(), lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay
    )
    milestones, decay = config.milestones or (), config.lr_decay
    # LambdaLR's epoch index is 0-based: epoch e + 1 runs at lr * decay ** #{m <= e + 1}
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda e: decay ** sum(e + 1 >= m for m in milestones)
    )
    batches = TensorBatches(data.train_x, data.train_y, config.batch_size,
                            generator=torch.Generator().manual_seed(config.seed))
    distributed.init_from_env(device)
    rank = distributed.rank()
    if rank > 0:
        torch.manual_seed((config.seed + 1) * 1_000_003 + rank)

    def evaluate_pgd(module: torch.nn.Module) -> Dict[str, Any]:
        dev = next(module.parameters()).device
        return distributed.evaluate_sharded(evaluate, module, eval_x.to(dev), eval_y.to(dev), attacks=("pgd",),
                                            eps=config.eval_eps, alpha=config.eval_alpha, progress=False)

    return fit(
        model, batches, config.build_method(), optimizer, epochs=config.epochs, scheduler=scheduler,
        evaluate=evaluate_pgd if config.eval_n else None, out=out_dir, resume=resume, stop_after=stop_after,
        device=device, progress=progress, verbose=verbose, config=config.to_dict(), warmup=config.warmup,
        graph=graph,
    )
