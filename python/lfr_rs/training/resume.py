"""What a checkpoint records about the run that wrote it, and whether a call
of :func:`lfr_rs.training.fit` may continue it: the random states to restore,
the run identity (method, optimizer, scheduler, warm-up) and the config, both
compared before anything is loaded."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Dict, Optional, Tuple

import torch

from lfr_rs import distributed as dist_
from lfr_rs.losses import Defense
from lfr_rs.training.checkpoint import CHECKPOINT, PathLike, load_checkpoint

__all__ = ["RELOCATABLE", "prepare_out", "rng_state", "run_identity", "set_rng_state"]

# config fields that may differ when a run is resumed elsewhere
RELOCATABLE = ("data_root", "device")

def rng_state(loader: Any) -> Dict[str, Any]:
    cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []
    gen = getattr(loader, "generator", None)
    return {"torch": torch.get_rng_state(), "cuda": cuda,
            "loader": gen.get_state() if isinstance(gen, torch.Generator) else None}


def set_rng_state(state: Dict[str, Any], loader: Any) -> None:
    torch.set_rng_state(state["torch"].cpu())
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda"]])
    gen = getattr(loader, "generator", None)
    if isinstance(gen, torch.Generator) and state.get("loader") is not None:
        gen.set_state(state["loader"].cpu())


def _plain(value: Any) -> Any:
    """A JSON-comparable form of an optimizer hyper-parameter or method option."""
    if isinstance(value, (bool, int, float, str)) or value is None:
        return value
    if isinstance(value, (tuple, list)):
        return [_plain(v) for v in value]
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        return value.item()
    return repr(value)


def run_identity(method: Defense, optimizer: torch.optim.Optimizer, scheduler: Any, warmup: float) -> Dict[str, Any]:
    """What a resumed ``fit`` must share with the run it continues: the method
    and its options, the optimizer's type and hyper-parameters, the scheduler's
    type and the warm-up."""
    options = dataclasses.asdict(method) if dataclasses.is_dataclass(method) else {}
    return {
        "method": getattr(method, "name", type(method).__name__),
        "method_options": {k: _plain(v) for k, v in options.items()},
        "optimizer": type(optimizer).__name__,
        "optimizer_options": {k: _plain(v) for k, v in optimizer.defaults.items()},
        "scheduler": None if scheduler is None else type(scheduler).__name__,
        "warmup": warmup,
    }


def _same_run(saved: Optional[Dict[str, Any]], ours: Optional[Dict[str, Any]], path: Path) -> Optional[str]:
    if ours is None:
        return None
    saved = saved or {}
    diff = [f"{k}: checkpoint {saved.get(k)!r}, now {ours[k]!r}" for k in ours
            if k not in RELOCATABLE and saved.get(k) != ours[k]]
    return f"cannot resume {path}: the run differs ({'; '.join(diff)})" if diff else None


def _same_identity(saved: Optional[Dict[str, Any]], ours: Dict[str, Any], path: Path) -> Optional[str]:
    """The differences between a checkpoint's run identity and this call's
    (None for checkpoints written before identities were recorded)."""
    if saved is None:
        return None
    diff = []
    for key, value in ours.items():
        theirs = saved.get(key)
        if isinstance(value, dict) and isinstance(theirs, dict):
            diff += [f"{key}.{k}: checkpoint {theirs.get(k)!r}, now {value.get(k)!r}"
                     for k in sorted(set(value) | set(theirs)) if theirs.get(k) != value.get(k)]
        elif theirs != value:
            diff.append(f"{key}: checkpoint {theirs!r}, now {value!r}")
    if not diff:
        return None
    return (f"cannot resume {path}: it was trained differently ({'; '.join(diff)}); resume with the same method, "
            "optimizer, scheduler and warm-up, or choose another output directory")


def prepare_out(out: Optional[PathLike], resume: bool, config: Optional[Dict[str, Any]],
                 identity: Dict[str, Any]) -> Tuple[Optional[Path], Any]:
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
                mismatch = (_same_run(result.get("config"), config, ckpt)
                            or _same_identity(result.get("fit"), identity, ckpt))
                if mismatch:
                    raise ValueError(mismatch)
        except (OSError, ValueError) as e:
            result = e
    state = dist_.broadcast_object(result)
    if isinstance(state, BaseException):
        raise state
    return out, state
