"""The training step and epoch behind :func:`lfr_rs.training.fit`.

**Modes.** Each step runs the method's inner maximisation on the bare module in
``eval()`` mode and the outer loss in ``train()`` mode, as TRADES' official code
does. In eval mode BatchNorm normalizes with its running statistics and leaves
them unchanged, and dropout is off, so the inner maximisation attacks the model
that will be evaluated and never moves the BatchNorm statistics; only the
outer loss's forwards (one per model call of the method) update them.

**Distributed.** Under ``torchrun`` (see :mod:`lfr_rs.distributed`) the model is
wrapped in ``DistributedDataParallel``; every rank iterates the same global
batches (same shuffle) and trains on its contiguous shard of each. The inner
maximisation runs on ``ddp.module`` (no gradient synchronization), the outer
loss through DDP, scaled by ``n_rank * world / n_global`` so that DDP's mean
over ranks is the gradient of the loss on the global batch even when shards
differ in size. Rank 0 alone writes checkpoints, logs and progress bars; every
rank resumes from rank 0's checkpoint.

**Graphs.** With ``fit(..., graph=True)`` on CUDA the step up to the backward
is replayed from a CUDA graph once captured (:mod:`lfr_rs.training.graphed`);
the checks, the loss bookkeeping and the optimizer step below are the same.
"""

from __future__ import annotations

from typing import Callable, Dict, Iterable, Iterator, Optional, Tuple

import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from lfr_rs.exceptions import LfrError
from lfr_rs._checks import check_pair
from lfr_rs import distributed as dist_
from lfr_rs.losses import Defense
from lfr_rs.training.graphed import StepGraphs

__all__ = ["TensorBatches", "TrainingDiverged", "run_epoch", "train_epoch"]


class TrainingDiverged(FloatingPointError):
    """The loss, the weights or the logits became NaN or infinite during training."""


class TensorBatches:
    """Shuffled ``(inputs, labels)`` batches of in-memory tensors, reshuffled on
    every iteration by its own ``generator`` (saved in checkpoints by ``fit``)."""

    def __init__(self, inputs: Tensor, labels: Tensor, batch_size: int, *, shuffle: bool = True,
                 generator: Optional[torch.Generator] = None) -> None:
        check_pair(inputs, labels)
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        self.inputs, self.labels, self.batch_size, self.shuffle = inputs, labels, batch_size, shuffle
        self.generator = torch.Generator() if generator is None else generator

    def __len__(self) -> int:
        return -(-len(self.inputs) // self.batch_size)

    def __iter__(self) -> Iterator[Tuple[Tensor, Tensor]]:
        n = len(self.inputs)
        order = torch.randperm(n, generator=self.generator) if self.shuffle else torch.arange(n)
        for idx in order.split(self.batch_size):
            idx = idx.to(self.inputs.device)
            yield self.inputs[idx], self.labels[idx]


def _finite(t: Tensor) -> bool:
    return bool(torch.isfinite(t).all())


def _diverged(method: Defense, seen: int, why: str) -> TrainingDiverged:
    return TrainingDiverged(f"{method.name} training diverged after {seen} samples ({why}); lower the lr")


def _diagnose(module: nn.Module, x: Tensor) -> Optional[str]:
    """Why a kernel may have refused the model: non-finite weights or logits on finite inputs."""
    if not all(_finite(p.detach()) for p in module.parameters()):
        return "non-finite weights"
    if _finite(x):
        with torch.no_grad():
            if not _finite(module(x)):
                return "non-finite logits"
    return None


class _Epoch:
    """Running sums of one epoch, combined over ranks once per step."""

    def __init__(self) -> None:
        self.loss, self.correct, self.seen, self.classes = 0.0, 0, 0, 0


def _step(model: nn.Module, module: nn.Module, method: Defense, optimizer: torch.optim.Optimizer,
          x_all: Tensor, y_all: Tensor, stats: _Epoch, graphs: Optional[StepGraphs] = None, full: bool = True) -> None:
    world = dist_.world_size()
    n_all = len(y_all)
    if n_all < world:
        raise ValueError(f"a batch of {n_all} samples cannot be split over {world} ranks: use batches of at least "
                         "world_size samples (drop_last=True for a DataLoader)")
    x, y = dist_.shard(x_all, y_all) if world > 1 else (x_all, y_all)
    try:
        replayed = None if graphs is None else graphs.step(method, full, x, y)
        if replayed is None:
            module.eval()
            with torch.no_grad():
                logits = module(x)
                correct, classes = int((logits.argmax(1) == y).sum()), logits.shape[-1]
            x_adv = method.perturb(module, x, y)
            model.train()
            optimizer.zero_grad(set_to_none=True)
            loss = method.loss(model, x, y, x_adv)
            (loss if world == 1 else loss * (len(y) * world / n_all)).backward()
        else:
            loss, correct, classes = replayed
    except (ValueError, LfrError) as e:
        why = _diagnose(module, x)
        if why is not None:
            raise _diverged(method, stats.seen, why) from e
        raise
    value = float(loss.detach())
    stats.classes = max(stats.classes, classes)
    total: float
    n_correct: float
    if world == 1:
        total, n_correct = value * len(y), correct
    else:
        # one small all-reduce: global loss and accuracy, plus a check that every rank holds the same batch
        check = float((y_all.to(torch.float64).cpu() * torch.arange(1, n_all + 1, dtype=torch.float64)).sum())
        total, n_correct, n_check = dist_.all_sum([value * len(y), correct, check])
        if n_check != check * world:
            raise RuntimeError("the ranks hold different global batches: every rank must iterate the same "
                               "batches in the same order (seed the loader's shuffle identically on every rank)")
    if not (total == total and abs(total) != float("inf")):
        raise _diverged(method, stats.seen, f"loss {total / n_all}")
    optimizer.step()
    if graphs is not None and replayed is None:
        graphs.capture(method, full, x, y, classes)
    stats.loss += total
    stats.correct += int(n_correct)
    stats.seen += n_all


def _unpack(batch: object) -> Tuple[Tensor, Tensor]:
    """``(inputs, labels)`` from a batch ``(inputs, labels, ...)``; anything else is a TypeError that says so."""
    if (isinstance(batch, (tuple, list)) and len(batch) >= 2 and isinstance(batch[0], Tensor)
            and isinstance(batch[1], Tensor)):
        return batch[0], batch[1]
    got = (f"a {type(batch).__name__} of {len(batch)}: ({', '.join(type(b).__name__ for b in batch)})"
           if isinstance(batch, (tuple, list)) else f"a {type(batch).__name__}")
    raise TypeError(f"training batches must be (inputs, labels[, ...]) pairs of tensors, got {got}")


def run_epoch(model: nn.Module, module: nn.Module, method: Defense, optimizer: torch.optim.Optimizer,
               batches: Iterable[Tuple[Tensor, Tensor]], device: Optional[torch.device],
               progress: Optional[bool], desc: Optional[str],
               strength: Optional[Callable[[int], float]] = None,
               graphs: Optional[StepGraphs] = None) -> Tuple[Dict[str, float], Tuple[int, int]]:
    """One pass over ``batches``. ``strength(i)`` (the warm-up) gives the
    strength in (0, 1] at which the ``i``-th step of the epoch runs ``method``;
    ``graphs`` replays captured steps (``fit(..., graph=True)``)."""
    stats = _Epoch()
    show = dist_.is_main() and (progress is None or progress)
    total = len(batches) if hasattr(batches, "__len__") else None  # type: ignore[arg-type]
    bar = tqdm(batches, total=total, desc=desc, disable=None if show and progress is None else not show, leave=False)
    t = 1.0
    for i, batch in enumerate(bar):
        x, y = _unpack(batch)
        if device is not None:
            x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
        t = 1.0 if strength is None else strength(i)
        _step(model, module, method.at_strength(t), optimizer, x, y, stats, graphs, t == 1.0)
        bar.set_postfix(loss=f"{stats.loss / stats.seen:.4f}", acc=f"{stats.correct / stats.seen:.3f}")
    module.eval()
    if stats.seen == 0:
        raise ValueError("the training loader yielded no samples this epoch (an empty dataset, or fewer samples "
                         "than one batch with drop_last=True): nothing was trained")
    out = {"loss": stats.loss / stats.seen, "train_acc": stats.correct / stats.seen}
    if strength is not None:
        out["strength"] = t
    return out, (stats.classes, stats.seen)


def train_epoch(
    model: nn.Module,
    method: Defense,
    optimizer: torch.optim.Optimizer,
    inputs: Tensor,
    labels: Tensor,
    *,
    batch_size: int,
    order: Optional[Tensor] = None,
    progress: Optional[bool] = None,
    desc: Optional[str] = None,
) -> Dict[str, float]:
    """One pass over ``inputs[order]`` in batches, in this process. Returns the
    mean loss and the clean accuracy on the training batches (eval mode, before
    each step)."""
    check_pair(inputs, labels)
    order = torch.arange(len(inputs)) if order is None else order
    batches = [(inputs[i], labels[i]) for i in (idx.to(inputs.device) for idx in order.split(batch_size))]
    stats, _ = run_epoch(model, model, method, optimizer, batches, None, progress, desc)
    return stats
