"""``torch.distributed`` plumbing shared by training and evaluation.

Everything here is a no-op in a single process, so the same code runs with
and without ``torchrun``. Under ``torchrun`` (``WORLD_SIZE`` in the
environment) :func:`init_from_env` joins the process group (gloo on CPU, NCCL
on CUDA). Data is split by :func:`shard_bounds`: rank ``r`` of ``W`` takes the
contiguous rows ``[r*n//W, (r+1)*n//W)`` of every global batch or evaluation
set, and per-rank integer counts are combined exactly with :func:`all_sum`.
"""

from __future__ import annotations

import atexit
import gc
import os
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, TypeVar, Union

import torch
import torch.distributed as dist
from torch import Tensor

from lfr_rs._checks import check_pair

__all__ = [
    "all_sum",
    "backend",
    "broadcast_object",
    "evaluate_sharded",
    "gather_cat",
    "gather_objects",
    "init_from_env",
    "is_main",
    "rank",
    "shard",
    "shard_bounds",
    "shutdown",
    "world_size",
]

T = TypeVar("T")


def init_from_env(device: Union[str, torch.device, None] = None) -> bool:
    """Joins the process group described by torchrun's environment
    (``RANK``, ``WORLD_SIZE``, ``MASTER_ADDR``/``MASTER_PORT``) unless one is
    already initialized: NCCL when ``device`` is CUDA (after selecting
    ``cuda:LOCAL_RANK``), gloo otherwise. Returns whether this process is part
    of a process group; without torchrun's variables it does nothing."""
    if dist.is_available() and dist.is_initialized():
        return True
    if "WORLD_SIZE" not in os.environ or "RANK" not in os.environ:
        return False
    if not dist.is_available():
        raise RuntimeError("this torch build has no torch.distributed, but WORLD_SIZE is set (torchrun?)")
    dev = None if device is None else torch.device(device)
    cuda = dev is not None and dev.type == "cuda"
    if dev is not None and cuda:
        torch.cuda.set_device(local_device(dev))
    dist.init_process_group(backend="nccl" if cuda else "gloo")
    # A process that exits with the group alive can abort in the interpreter's
    # teardown ("terminate called without an active exception": gloo's worker
    # threads still hold work whose tensors need the GIL), so the group this
    # function created is destroyed while Python is still whole.
    atexit.register(shutdown)
    return True


def shutdown() -> None:
    """Destroys the default process group if one is initialized; a no-op otherwise
    (and after a first call). :func:`init_from_env` registers it with ``atexit``.
    Objects in reference cycles that hold the group (a ``DistributedDataParallel``
    wrapper) are collected first, so that the group's threads end here and not
    in the interpreter's teardown."""
    if dist.is_available() and dist.is_initialized():
        gc.collect()
        dist.destroy_process_group()


def local_device(device: Union[str, torch.device]) -> torch.device:
    """``device``, with CUDA's index set to ``LOCAL_RANK`` under torchrun when none is given."""
    device = torch.device(device)
    if device.type == "cuda" and device.index is None:
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    return device


def _active() -> bool:
    return dist.is_available() and dist.is_initialized()


def world_size() -> int:
    return dist.get_world_size() if _active() else 1


def rank() -> int:
    return dist.get_rank() if _active() else 0


def is_main() -> bool:
    """Whether this process is rank 0 (the one that writes files and prints)."""
    return rank() == 0


def backend() -> Optional[str]:
    """The process group's backend (``"gloo"``, ``"nccl"``), or None in a single process."""
    return str(dist.get_backend()) if _active() else None


def shard_bounds(n: int, rank_: Optional[int] = None, world: Optional[int] = None) -> Tuple[int, int]:
    """``(start, stop)`` of rank ``rank_``'s contiguous share of ``n`` rows; shares differ by at most one row."""
    r = rank() if rank_ is None else rank_
    w = world_size() if world is None else world
    return r * n // w, (r + 1) * n // w


def shard(*tensors: Tensor) -> Tuple[Tensor, ...]:
    """This rank's rows of each tensor (all of them in a single process)."""
    n = len(tensors[0])
    if any(len(t) != n for t in tensors):
        raise ValueError(f"tensors to shard have different lengths: {[len(t) for t in tensors]}")
    start, stop = shard_bounds(n)
    return tuple(t[start:stop] for t in tensors)


def _comm_device() -> torch.device:
    return torch.device("cuda", torch.cuda.current_device()) if backend() == "nccl" else torch.device("cpu")


def all_sum(values: Sequence[Union[int, float]], dtype: torch.dtype = torch.float64) -> List[float]:
    """Element-wise sum over ranks. Integer counts below 2**53 come back exact in float64."""
    if not _active():
        return [float(v) for v in values]
    t = torch.tensor(list(values), dtype=dtype, device=_comm_device())
    dist.all_reduce(t)
    return [float(v) for v in t.cpu()]


def gather_cat(tensor: Tensor) -> Tensor:
    """Concatenation, in rank order, of every rank's ``tensor`` (lengths may differ)."""
    if not _active():
        return tensor
    parts: List[Any] = [None] * world_size()
    dist.all_gather_object(parts, tensor.detach().cpu())
    return torch.cat(parts).to(tensor.device)


def gather_objects(obj: T) -> List[T]:
    """Every rank's ``obj`` (picklable), in rank order, on every rank."""
    if not _active():
        return [obj]
    parts: List[Any] = [None] * world_size()
    dist.all_gather_object(parts, obj)
    return parts


def broadcast_object(obj: T) -> T:
    """Rank 0's ``obj`` on every rank."""
    if not _active():
        return obj
    box: List[Any] = [obj]
    dist.broadcast_object_list(box, src=0, device=_comm_device() if backend() == "nccl" else None)
    return box[0]


def evaluate_sharded(evaluate: Callable[..., Dict[str, Any]], model: Any, inputs: Tensor, labels: Tensor,
                     **kwargs: Any) -> Dict[str, Any]:
    """``evaluate(model, inputs, labels, **kwargs)`` on the whole set, on every
    rank. The evaluation harness (``lfr_rs.evaluate``, ``paper_protocol``,
    ``robust_accuracy``) shards the rows across ranks itself and gathers the
    per-sample outcomes in row order, so this module needs to know no
    protocol's keys. Attacks with a random start draw from each rank's
    generator, so those columns equal a single process's only in
    distribution; deterministic ones (MI-FGSM, DDN, and FGSM of the default
    harness) equal it exactly."""
    check_pair(inputs, labels)
    return evaluate(model, inputs, labels, **kwargs)
