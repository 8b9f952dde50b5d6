"""The kernels :mod:`lfr_rs.losses` calls (PGD, the LFR, TRADES and LLR inner
maximizations, the gradient-norm penalty), switchable to their capture-safe
bodies.

Normally each function here is the eager kernel of the same name. Inside
:func:`capture_safe` it runs the kernel's capture-safe body instead
(``_native._<name>_fixed``: the same arithmetic, no host synchronization, the
non-finite check returned as a 0-d bool tensor and collected in the list the
context yields), so that a method's unchanged ``perturb`` and ``loss`` can be
captured into a CUDA graph (:mod:`lfr_rs.training.graphed`). The bodies leave
the batch's value checks to the caller (``_native._check_batch``, once per
batch, outside the graph). The defaults are read off the eager bindings'
signatures, so both routes run the same parameters.
"""

from __future__ import annotations

import inspect
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, Callable, Dict, Iterator, List, Optional

from torch import Tensor

from lfr_rs import _native

__all__ = ["capture_safe", "grad_norm_penalty", "lfr_perturb", "llr_perturb", "pgd", "trades_perturb"]

_FLAGS: ContextVar[Optional[List[Tensor]]] = ContextVar("lfr_rs_capture_safe", default=None)


@contextmanager
def capture_safe() -> Iterator[List[Tensor]]:
    """Within the block the functions of this module run their capture-safe
    bodies; yields the list that collects their finite flags."""
    flags: List[Tensor] = []
    token = _FLAGS.set(flags)
    try:
        yield flags
    finally:
        _FLAGS.reset(token)


def _defaults(kernel: Callable[..., Any], *drop: str) -> Dict[str, Any]:
    params = inspect.signature(kernel).parameters.values()
    return {p.name: p.default for p in params if p.default is not p.empty and p.name not in drop}


def _route(name: str, model: Any, tensors: tuple, kwargs: Dict[str, Any], drop: tuple = ()) -> Tensor:
    """``_native.<name>(model, *tensors, **kwargs)``, or inside
    :func:`capture_safe` its body ``_native._<name>_fixed`` with the eager
    defaults filled in and its finite flag collected."""
    flags = _FLAGS.get()
    eager = getattr(_native, name)
    if flags is None:
        return eager(model, *tensors, **kwargs)
    out, finite = getattr(_native, f"_{name}_fixed")(model, *tensors, **{**_defaults(eager, *drop), **kwargs})
    flags.append(finite)
    return out


def pgd(model: Any, inputs: Tensor, labels: Tensor, **kwargs: Any) -> Tensor:
    """:func:`lfr_rs.pgd` (one restart, no graph of its own inside a captured step)."""
    return _route("pgd", model, (inputs, labels), kwargs, drop=("restarts", "graph"))


def lfr_perturb(model: Any, inputs: Tensor, labels: Tensor, **kwargs: Any) -> Tensor:
    """:func:`lfr_rs.lfr_perturb`."""
    return _route("lfr_perturb", model, (inputs, labels), kwargs)


def grad_norm_penalty(model: Any, inputs: Tensor, labels: Tensor, **kwargs: Any) -> Tensor:
    """:func:`lfr_rs.grad_norm_penalty`."""
    return _route("grad_norm_penalty", model, (inputs, labels), kwargs)


def trades_perturb(model: Any, inputs: Tensor, **kwargs: Any) -> Tensor:
    """:func:`lfr_rs.trades_perturb`."""
    return _route("trades_perturb", model, (inputs,), kwargs)


def llr_perturb(model: Any, inputs: Tensor, labels: Tensor, **kwargs: Any) -> Tensor:
    """:func:`lfr_rs.llr_perturb`."""
    return _route("llr_perturb", model, (inputs, labels), kwargs)
