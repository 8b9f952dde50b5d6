"""``fit``: any model, any iterable of batches, any method of :mod:`lfr_rs.losses`,
in one process or under ``torchrun``: checkpoints, resume, logs, evaluation.
See :mod:`lfr_rs.training.loop` for what one step does in each mode."""

from __future__ import annotations

import json
import time
import warnings
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, List, NamedTuple, Optional, Union

import torch
from torch import nn
from tqdm.auto import tqdm

from lfr_rs._native import __version__
from lfr_rs import distributed as dist_
from lfr_rs.losses import Defense, make_method
from lfr_rs.training.checkpoint import CHECKPOINT, LOG, PathLike, save_checkpoint, write_json
from lfr_rs.training.graphed import StepGraphs
from lfr_rs.training.loop import TrainingDiverged, run_epoch
from lfr_rs.training.resume import prepare_out, rng_state, run_identity, set_rng_state

__all__ = ["FitResult", "fit"]

# a run whose last epoch's training accuracy (over at least 10 samples per class)
# is below CHANCE_FACTOR / classes gets a warning
CHANCE_FACTOR = 1.5


class FitResult(NamedTuple):
    model: nn.Module
    history: List[Dict[str, Any]]
    checkpoint: Optional[Path]


def fit(
    model: nn.Module,
    train_loader: Iterable[Any],
    method: Union[Defense, str],
    optimizer: torch.optim.Optimizer,
    *,
    epochs: int,
    scheduler: Optional[Any] = None,
    eval_loader: Optional[Iterable[Any]] = None,
    evaluate: Optional[Callable[[nn.Module], Dict[str, Any]]] = None,
    out: Optional[PathLike] = None,
    resume: bool = False,
    stop_after: Optional[int] = None,
    device: Union[str, torch.device, None] = None,
    progress: Optional[bool] = None,
    verbose: bool = True,
    config: Optional[Dict[str, Any]] = None,
    warmup: float = 0.0,
    graph: bool = False,
) -> FitResult:
    """Trains ``model`` for ``epochs`` with ``method`` (a :class:`~lfr_rs.losses.Defense`
    or its name) on ``train_loader``, any re-iterable of ``(inputs, labels, ...)``
    batches (a ``DataLoader``, :class:`TensorBatches`, a list).

    ``scheduler`` (a torch LR scheduler) steps once per epoch. ``eval_loader``
    adds the clean accuracy on its batches to every epoch's log, ``evaluate``
    (``module -> dict``, called on every rank) whatever it returns. ``device``
    defaults to the model's; batches are moved there.

    With ``out``, rank 0 writes ``out/checkpoint.pt`` (model, optimizer,
    scheduler, epoch, RNG states of every rank and of the loader's
    ``generator``, history, ``config``, ``world_size``, ``backend``) and
    ``out/log.json`` after every epoch, atomically, once the weights are
    checked finite (non-finite weights raise :class:`TrainingDiverged` and
    leave the last good checkpoint in place). ``resume=True`` continues the
    checkpoint when there is one and reproduces the uninterrupted run: the
    method and its options, the optimizer's type and hyper-parameters, the
    scheduler's type and ``warmup`` must be the checkpoint's, and so must
    ``config`` but for ``data_root`` and ``device``; without ``resume`` an
    existing checkpoint is an error. ``stop_after`` returns after that many
    epochs of this call. ``progress=None`` shows bars on terminals.

    ``warmup`` (epochs, may be fractional) ramps the method's strength
    linearly from ``1 / steps`` to 1 over that many epochs of SGD steps: the
    radius and inner step of AT, TRADES, LLR and LFR, and the penalty weights
    of LLR, GradNorm and LFR (see :meth:`~lfr_rs.losses.Defense.at_strength`),
    step by step. It needs a ``train_loader`` with ``len()``.

    ``graph=True`` (CUDA) captures each step up to its backward into a CUDA
    graph after its first eager run per batch shape and replays it (see
    :mod:`lfr_rs.training.graphed`); other devices and ``torchrun`` warn and
    train eagerly.

    Under ``torchrun`` the process group is joined here (see
    :mod:`lfr_rs.distributed`) and the model wrapped in
    ``DistributedDataParallel``; ``train_loader`` must yield the same global
    batches on every rank. Returns the bare model, in eval mode.
    """
    if epochs < 1:
        raise ValueError(f"epochs must be positive, got {epochs}")
    if not warmup >= 0:
        raise ValueError(f"warmup must be a non-negative number of epochs, got {warmup}")
    if eval_loader is not None and hasattr(eval_loader, "__len__") and len(eval_loader) == 0:  # type: ignore[arg-type]
        raise ValueError("eval_loader is empty: pass a loader with at least one batch, or eval_loader=None")
    strength = _warmup_schedule(warmup, train_loader)
    method = make_method(method) if isinstance(method, str) else method
    module = model.module if isinstance(model, nn.parallel.DistributedDataParallel) else model
    first = next(iter(module.parameters()), None)
    dev = torch.device(device) if device is not None else (first.device if first is not None else torch.device("cpu"))
    dist_.init_from_env(dev)
    dev = dist_.local_device(dev)
    module.to(dev)
    world, rank = dist_.world_size(), dist_.rank()
    if world > 1 and not isinstance(model, nn.parallel.DistributedDataParallel):
        model = nn.parallel.DistributedDataParallel(module, device_ids=[dev.index] if dev.type == "cuda" else None)
    run: Dict[str, Any] = {"world_size": world, "backend": dist_.backend()}
    graphs = StepGraphs(model, module, dev, method) if graph else None

    identity = run_identity(method, optimizer, scheduler, warmup)
    path, state = prepare_out(out, resume, config, identity)
    history: List[Dict[str, Any]] = []
    start = 0
    if state is not None:
        module.load_state_dict(state["model"])
        try:
            optimizer.load_state_dict(state["optimizer"])
        except (KeyError, ValueError) as e:  # a checkpoint older than the recorded run identity
            raise ValueError(f"{path}: the checkpoint's optimizer state does not fit this {type(optimizer).__name__} "
                             f"({type(e).__name__}: {e}); resume with the optimizer that wrote it") from e
        if scheduler is not None and state.get("scheduler") is not None:
            scheduler.load_state_dict(state["scheduler"])
        rngs = state["rng"] if isinstance(state["rng"], list) else [state["rng"]]
        if len(rngs) != world:
            warnings.warn(f"resuming a run of world size {len(rngs)} with {world} process(es): it continues, "
                          "but its random numbers differ from the uninterrupted run's", stacklevel=2)
        set_rng_state(rngs[rank % len(rngs)], train_loader)
        start, history = int(state["epoch"]), list(state["history"])
        if verbose and dist_.is_main():
            tqdm.write(f"resuming {out}/{CHECKPOINT} after epoch {start}/{epochs}")

    last = epochs if stop_after is None else min(epochs, start + stop_after)
    classes, seen = 0, 0
    for epoch in range(start + 1, last + 1):
        lr = optimizer.param_groups[0]["lr"]
        tic = time.perf_counter()
        stats, (classes, seen) = run_epoch(model, module, method, optimizer, train_loader, dev, progress,
                                           f"{method.name} {epoch}/{epochs}",
                                           None if strength is None else strength(epoch), graphs)
        entry: Dict[str, Any] = {"epoch": epoch, **stats, "lr": lr, "time_s": time.perf_counter() - tic}
        if scheduler is not None:
            scheduler.step()
        if eval_loader is not None:
            entry["eval_clean"] = _clean_accuracy(module, eval_loader, dev)
        if evaluate is not None:
            tic = time.perf_counter()
            entry["eval"] = evaluate(module)
            entry["eval_time_s"] = time.perf_counter() - tic
        bad = _non_finite_weights(module)
        if bad:
            kept = f"; {path / CHECKPOINT} still holds epoch {epoch - 1}" if path is not None and epoch > 1 else ""
            raise TrainingDiverged(f"{method.name} training diverged in epoch {epoch}: non-finite weights after its "
                                   f"last step ({', '.join(bad[:3])}){kept}; lower the lr")
        history.append(entry)
        rngs = dist_.gather_objects(rng_state(train_loader))
        if path is not None and dist_.is_main():
            log = {"config": config, **run, "fit": identity, "epochs": history}
            _check_json(log, epoch)
            save_checkpoint(path / CHECKPOINT, {
                "format": 2, "lfr_rs_version": __version__, "epoch": epoch, "config": config, **run,
                "fit": identity, "model": module.state_dict(), "optimizer": optimizer.state_dict(),
                "scheduler": None if scheduler is None else scheduler.state_dict(),
                "rng": rngs, "history": history,
            })
            write_json(path / LOG, log)
        if verbose and dist_.is_main():
            tqdm.write(_summary(entry, epochs))
    if history and last == epochs and classes and seen >= 10 * classes:
        _warn_near_chance(history[-1], classes)
    return FitResult(module.eval(), history, None if path is None else path / CHECKPOINT)


def _warmup_schedule(warmup: float, loader: Iterable[Any]) -> Optional[Callable[[int], Callable[[int], float]]]:
    """``epoch -> (step -> strength)``: ``min(1, global_step / (warmup * len(loader)))``
    with the global step counted from 1; None without a warm-up."""
    if warmup == 0:
        return None
    if not hasattr(loader, "__len__"):
        raise TypeError("warmup needs a train_loader with len() (the ramp is counted in SGD steps)")
    per_epoch = len(loader)  # type: ignore[arg-type]
    if per_epoch == 0:
        raise ValueError("the training loader is empty (len() == 0): nothing to train")
    ramp = warmup * per_epoch

    def for_epoch(epoch: int) -> Callable[[int], float]:
        return lambda i: min(1.0, ((epoch - 1) * per_epoch + i + 1) / ramp)

    return for_epoch


def _non_finite_weights(module: nn.Module) -> List[str]:
    """Names of the parameters and floating buffers holding NaN or infinity."""
    tensors = [*module.named_parameters(), *module.named_buffers()]
    return [name for name, t in tensors if t.is_floating_point() and not bool(torch.isfinite(t.detach()).all())]


def _check_json(log: Dict[str, Any], epoch: int) -> None:
    """Raises before anything of ``epoch`` is written when its log cannot be strict JSON."""
    try:
        json.dumps(log, allow_nan=False)
    except (TypeError, ValueError) as e:
        raise ValueError(f"the log of epoch {epoch} cannot be written as JSON ({e}): nothing of that epoch was "
                         "saved; an evaluate callable must return finite numbers, strings, lists and dicts") from e


def _clean_accuracy(module: nn.Module, loader: Iterable[Any], device: torch.device) -> float:
    """Clean accuracy on ``loader``'s batches, each split across ranks and the counts summed."""
    module.eval()
    correct, n = 0, 0
    with torch.no_grad():
        for batch in loader:
            x, y = dist_.shard(batch[0].to(device), batch[1].to(device))
            correct += int((module(x).argmax(1) == y).sum()) if len(y) else 0
            n += len(y)
    total_correct, total = dist_.all_sum([correct, n])
    if not total:
        raise ValueError("eval_loader yielded no samples: pass a loader with at least one batch, or eval_loader=None")
    return total_correct / total


def _warn_near_chance(entry: Dict[str, Any], classes: int) -> None:
    chance = 1.0 / classes
    if entry["train_acc"] < CHANCE_FACTOR * chance and dist_.is_main():
        warnings.warn(
            f"the run ended near chance accuracy: training accuracy {entry['train_acc']:.1%} in its last epoch, "
            f"chance is {chance:.1%}. The model has not learned; raise the learning rate or the epochs "
            "(or lower the inner maximization's strength)", UserWarning, stacklevel=3)


def _summary(entry: Dict[str, Any], epochs: int) -> str:
    line = (
        f"epoch {entry['epoch']}/{epochs}  loss {entry['loss']:.4f}  train acc {entry['train_acc']:.2%}  "
        f"lr {entry['lr']:.4g}  {entry['time_s']:.1f}s"
    )
    if "eval_clean" in entry:
        line += f"  | eval clean {entry['eval_clean']:.2%}"
    if "eval" in entry and "pgd" in entry["eval"]:
        ev = entry["eval"]
        line += f"  | eval n={ev['n']} clean {ev['clean']:.2%} pgd{ev['steps']} {ev['pgd']:.2%}"
    return line
