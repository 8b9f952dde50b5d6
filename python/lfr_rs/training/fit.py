"""``fit``: any model, any iterable of batches, any method of :mod:`lfr_rs.losses`,
in one process or under ``torchrun``: checkpoints, resume, logs, evaluation.
See :mod:`lfr_rs.training.loop` for what one step does in each mode."""

from __future__ import annotations

import time
import warnings
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, List, NamedTuple, Optional, Tuple, Union

import torch
from torch import nn
from tqdm.auto import tqdm

from lfr_rs import __version__
from lfr_rs import distributed as dist_
from lfr_rs.losses import Defense, make_method
from lfr_rs.training.checkpoint import CHECKPOINT, LOG, PathLike, load_checkpoint, save_checkpoint, write_json
from lfr_rs.training.loop import run_epoch

__all__ = ["FitResult", "fit"]

# config fields that may differ when a run is resumed elsewhere
RELOCATABLE = ("data_root", "device")
# a run whose last epoch's training accuracy (over at least 10 samples per class)
# is below CHANCE_FACTOR / classes gets a warning
CHANCE_FACTOR = 1.5


class FitResult(NamedTuple):
    model: nn.Module
    history: List[Dict[str, Any]]
    checkpoint: Optional[Path]


def _rng_state(loader: Any) -> Dict[str, Any]:
    cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []
    gen = getattr(loader, "generator", None)
    return {"torch": torch.get_rng_state(), "cuda": cuda,
            "loader": gen.get_state() if isinstance(gen, torch.Generator) else None}


def _set_rng_state(state: Dict[str, Any], loader: Any) -> None:
    torch.set_rng_state(state["torch"].cpu())
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda"]])
    gen = getattr(loader, "generator", None)
    if isinstance(gen, torch.Generator) and state.get("loader") is not None:
        gen.set_state(state["loader"].cpu())


def _same_run(saved: Optional[Dict[str, Any]], ours: Optional[Dict[str, Any]], path: Path) -> Optional[str]:
    if ours is None:
        return None
    saved = saved or {}
    diff = [f"{k}: checkpoint {saved.get(k)!r}, now {ours[k]!r}" for k in ours
            if k not in RELOCATABLE and saved.get(k) != ours[k]]
    return f"cannot resume {path}: the run differs ({'; '.join(diff)})" if diff else None


def _prepare_out(out: Optional[PathLike], resume: bool, config: Optional[Dict[str, Any]]) -> Tuple[Optional[Path], Any]:
    """Rank 0 checks ``out`` and reads its checkpoint; every rank gets the result (or the same error)."""
    if out is None:
        return None, None
    if str(out) == "":
        raise ValueError("the output directory is an empty path")
    out = Path(out)
    result: Any = None
    if dist_.is_main():
        try:
            out.mkdir(parents=True, exist_ok=True)
            ckpt = out / CHECKPOINT
            if ckpt.exists():
                if not resume:
                    raise FileExistsError(f"{ckpt} exists: resume it (--resume) or choose another output directory")
                result = load_checkpoint(ckpt)
                mismatch = _same_run(result.get("config"), config, ckpt)
                if mismatch:
                    raise ValueError(mismatch)
        except (OSError, ValueError) as e:
            result = e
    state = dist_.broadcast_object(result)
    if isinstance(state, BaseException):
        raise state
    return out, state


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
    ``out/log.json`` after every epoch, atomically. ``resume=True`` continues
    the checkpoint when there is one (``config`` must match it but for
    ``data_root`` and ``device``) and reproduces the uninterrupted run;
    without it an existing checkpoint is an error. ``stop_after`` returns after
    that many epochs of this call. ``progress=None`` shows bars on terminals.

    Under ``torchrun`` the process group is joined here (see
    :mod:`lfr_rs.distributed`) and the model wrapped in
    ``DistributedDataParallel``; ``train_loader`` must yield the same global
    batches on every rank. Returns the bare model, in eval mode.
    """
    if epochs < 1:
        raise ValueError(f"epochs must be positive, got {epochs}")
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

    path, state = _prepare_out(out, resume, config)
    history: List[Dict[str, Any]] = []
    start = 0
    if state is not None:
        module.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        if scheduler is not None and state.get("scheduler") is not None:
            scheduler.load_state_dict(state["scheduler"])
        rngs = state["rng"] if isinstance(state["rng"], list) else [state["rng"]]
        if len(rngs) != world:
            warnings.warn(f"resuming a run of world size {len(rngs)} with {world} process(es): it continues, "
                          "but its random numbers differ from the uninterrupted run's", stacklevel=2)
        _set_rng_state(rngs[rank % len(rngs)], train_loader)
        start, history = int(state["epoch"]), list(state["history"])
        if verbose and dist_.is_main():
            tqdm.write(f"resuming {out}/{CHECKPOINT} after epoch {start}/{epochs}")

    last = epochs if stop_after is None else min(epochs, start + stop_after)
    classes, seen = 0, 0
    for epoch in range(start + 1, last + 1):
        lr = optimizer.param_groups[0]["lr"]
        tic = time.perf_counter()
        stats, (classes, seen) = run_epoch(model, module, method, optimizer, train_loader, dev, progress,
                                    f"{method.name} {epoch}/{epochs}")
        entry: Dict[str, Any] = {"epoch": epoch, **stats, "lr": lr, "time_s": time.perf_counter() - tic}
        if scheduler is not None:
            scheduler.step()
        if eval_loader is not None:
            entry["eval_clean"] = _clean_accuracy(module, eval_loader, dev)
        if evaluate is not None:
            tic = time.perf_counter()
            entry["eval"] = evaluate(module)
            entry["eval_time_s"] = time.perf_counter() - tic
        history.append(entry)
        rngs = dist_.gather_objects(_rng_state(train_loader))
        if path is not None and dist_.is_main():
            save_checkpoint(path / CHECKPOINT, {
                "format": 2, "lfr_rs_version": __version__, "epoch": epoch, "config": config, **run,
                "model": module.state_dict(), "optimizer": optimizer.state_dict(),
                "scheduler": None if scheduler is None else scheduler.state_dict(),
                "rng": rngs, "history": history,
            })
            write_json(path / LOG, {"config": config, **run, "epochs": history})
        if verbose and dist_.is_main():
            tqdm.write(_summary(entry, epochs))
    if history and last == epochs and classes and seen >= 10 * classes:
        _warn_near_chance(history[-1], classes)
    return FitResult(module.eval(), history, None if path is None else path / CHECKPOINT)


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
    return total_correct / total if total else float("nan")


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
