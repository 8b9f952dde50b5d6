"""Checks of the Python entry points' own arguments (the kernels check theirs),
and of what the model returns to the harness's own forward passes (the same
checks the kernels apply to their forwards)."""

from typing import Iterable, Optional, Sequence, Tuple

import torch
from torch import Tensor

from lfr_rs.exceptions import ShapeError

__all__ = ["attack_names", "check_logits", "check_pair"]


def check_pair(inputs: Tensor, labels: Tensor) -> None:
    """Raises ``ShapeError`` unless ``labels`` is ``(N,)`` for ``inputs`` ``(N, ...)``."""
    if inputs.dim() < 1:
        raise ShapeError("inputs must have a batch dimension, got a 0-d tensor")
    if labels.dim() != 1 or labels.shape[0] != inputs.shape[0]:
        raise ShapeError(
            f"labels must have shape (N,) = ({inputs.shape[0]},) to match inputs {tuple(inputs.shape)}, "
            f"got {tuple(labels.shape)}"
        )


def check_logits(out: object, n: int, labels: Optional[Tensor] = None) -> Tensor:
    """``out`` if it is finite ``(n, C)`` floating logits, with ``labels`` (if
    given) in ``[0, C)``. Raises ``TypeError`` for a non-tensor or
    non-floating output, ``ShapeError`` for another shape and ``ValueError``
    for NaN/inf logits or an out-of-range label."""
    if not isinstance(out, Tensor):
        raise TypeError(f"model must return a torch.Tensor of logits of shape (N, C) = ({n}, C) for a batch of "
                        f"{n}, got {type(out)}")
    if out.dim() != 2 or out.shape[0] != n or out.shape[1] < 1:
        raise ShapeError(f"model must return logits of shape (N, C) = ({n}, C) for a batch of {n}, "
                         f"got {list(out.shape)}")
    if not out.is_floating_point():
        raise TypeError(f"model must return floating-point logits, got {out.dtype}")
    if out.numel() and not bool(torch.isfinite(out).all()):
        raise ValueError("the model returned non-finite logits (NaN or inf)")
    if labels is not None and labels.numel():
        classes = out.shape[1]
        low, high = int(labels.min()), int(labels.max())
        if low < 0 or high >= classes:
            bad = low if low < 0 else high
            raise ValueError(f"label {bad} is out of range [0, {classes}) for a model with {classes} classes")
    return out


def attack_names(attacks: Iterable[str], known: Sequence[str], allow_empty: bool = False) -> Tuple[str, ...]:
    """``attacks`` as a tuple of names (one name may be passed as a string).
    Raises ``ValueError`` for an unknown name, a repeated one or (unless
    ``allow_empty``) none at all."""
    names = (attacks,) if isinstance(attacks, str) else tuple(attacks)
    unknown = [a for a in names if a not in known]
    if unknown or not (names or allow_empty):
        raise ValueError(f"unknown attack(s) {', '.join(map(str, unknown)) or '(none given)'}; "
                         f"expected some of {', '.join(known)}")
    repeated = sorted({a for a in names if names.count(a) > 1})
    if repeated:
        raise ValueError(f"attack(s) {', '.join(repeated)} given more than once; each runs at most once")
    return names
