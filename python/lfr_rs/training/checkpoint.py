"""Checkpoint and log files: atomic writes and an integrity digest.

A checkpoint file is ``torch.save({"format": 2, "sha256": HEX, "payload": BYTES})``
where ``payload`` (a uint8 tensor) holds the ``torch.save`` serialization of the
training state and ``HEX`` its SHA-256. :func:`load_checkpoint` checks the digest before it
unpickles the state (both loads use ``weights_only=True``), so a flipped byte is an error,
never a silently different model. Files written before the digest existed
(format 1: the state itself) still load, unchecked.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import uuid
from pathlib import Path
from typing import IO, Any, Callable, Dict, Tuple, Union

import torch
from torch import nn

from lfr_rs.models import SmallCNN
from lfr_rs.training.config import TrainConfig

__all__ = [
    "CHECKPOINT",
    "LOG",
    "CheckpointError",
    "load_checkpoint",
    "load_model",
    "save_checkpoint",
    "write_json",
]

PathLike = Union[str, "os.PathLike[str]"]
CHECKPOINT = "checkpoint.pt"
LOG = "log.json"
FORMAT = 2


class CheckpointError(ValueError):
    """A file that is not an intact lfr-rs checkpoint (unreadable, not ours, or corrupted)."""


def _atomic_write(path: Path, write: Callable[[IO[bytes]], object]) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        with open(tmp, "xb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def save_checkpoint(path: PathLike, state: Dict[str, Any]) -> None:
    """Serializes ``state``, stores it with its SHA-256, writing to a temporary
    file beside ``path`` and then ``os.replace``-ing it."""
    buffer = io.BytesIO()
    torch.save(state, buffer)
    payload = buffer.getvalue()
    wrapped = {"format": FORMAT, "sha256": hashlib.sha256(payload).hexdigest(),
               "payload": torch.frombuffer(bytearray(payload), dtype=torch.uint8)}
    _atomic_write(Path(path), lambda f: torch.save(wrapped, f))


def write_json(path: PathLike, obj: Any) -> None:
    """Atomic JSON write (strict: no NaN)."""
    _atomic_write(Path(path), lambda f: f.write(json.dumps(obj, indent=2, allow_nan=False).encode() + b"\n"))


def _torch_load(source: Any, map_location: Any, path: PathLike) -> Any:
    try:
        return torch.load(source, map_location=map_location, weights_only=True)
    except IsADirectoryError:
        raise CheckpointError(f"{path} is a directory, not an lfr-rs checkpoint") from None
    except OSError:
        raise
    except Exception as e:  # torch.load on arbitrary bytes fails in many ways (KeyError, IndexError, ...)
        raise CheckpointError(f"{path} is not a readable lfr-rs checkpoint: {type(e).__name__}: {e}") from e


def load_checkpoint(path: PathLike, map_location: Union[str, torch.device] = "cpu") -> Dict[str, Any]:
    """The training state saved by :func:`save_checkpoint`, its digest verified.

    Raises :class:`CheckpointError` (a ``ValueError``) for a file that cannot
    be read, is not an lfr-rs checkpoint, or whose payload does not match its
    digest."""
    outer = _torch_load(path, "cpu", path)
    if isinstance(outer, dict) and outer.get("format") == FORMAT and {"sha256", "payload"} <= outer.keys():
        tensor = outer["payload"]
        payload = tensor.numpy().tobytes() if isinstance(tensor, torch.Tensor) and tensor.dtype == torch.uint8 else b""
        if hashlib.sha256(payload).hexdigest() != outer["sha256"]:
            raise CheckpointError(f"{path} is corrupted: its contents do not match the SHA-256 stored with them")
        state = _torch_load(io.BytesIO(payload), map_location, path)
    elif isinstance(outer, dict) and outer.get("format", 1) == 1:
        state = _torch_load(path, map_location, path) if map_location != "cpu" else outer
    elif isinstance(outer, dict) and {"model", "epoch"} <= outer.keys():
        raise CheckpointError(
            f"{path} holds an unwrapped training state (the dict load_checkpoint returns, saved with torch.save, "
            "e.g. torch.save(load_checkpoint(...), path)), not an lfr-rs checkpoint file: it carries no digest, so "
            "it cannot be verified. Load it with torch.load(path, weights_only=True) and save it with "
            "lfr_rs.training.save_checkpoint(path, state)"
        )
    else:
        raise CheckpointError(f"{path} is not an lfr-rs training checkpoint (unknown format {outer.get('format')!r})"
                              if isinstance(outer, dict) else f"{path} is not an lfr-rs training checkpoint")
    if not isinstance(state, dict) or not {"model", "epoch"} <= state.keys():
        raise CheckpointError(f"{path} is not an lfr-rs training checkpoint")
    return state


def load_model(path: PathLike, device: Union[str, torch.device] = "cpu") -> Tuple[nn.Module, TrainConfig]:
    """The checkpoint's SmallCNN (eval mode, on ``device``) and its config;
    for checkpoints written by :func:`lfr_rs.training.train`."""
    state = load_checkpoint(path, map_location=device)
    if not isinstance(state.get("config"), dict) or "method" not in state["config"]:
        raise CheckpointError(
            f"{path} was not written by lfr_rs.training.train (no run config): build your model and "
            "load_state_dict(load_checkpoint(path)['model'])"
        )
    try:
        config = TrainConfig.from_dict(state["config"])
        model = SmallCNN(**config.model).to(device)
        model.load_state_dict(state["model"])
    except (TypeError, RuntimeError, KeyError) as e:
        raise CheckpointError(f"{path}: the checkpoint does not match its config: {e}") from e
    return model.eval(), config
