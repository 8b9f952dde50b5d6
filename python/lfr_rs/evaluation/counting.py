"""A model wrapper that counts the forward and backward passes the kernels spend."""

from __future__ import annotations

import time
from contextlib import contextmanager
from typing import Any, Callable, Dict, Iterator, Protocol

import torch
from torch import Tensor

__all__ = ["Costs", "PassCounter"]


class Costs(Protocol):
    """Where passes and seconds are booked, per name (a harness run, a
    masking report)."""

    forward: Dict[str, int]
    backward: Dict[str, int]
    seconds: Dict[str, float]


class PassCounter:
    """Calls ``model`` and counts images: ``forward`` for every image passed,
    ``backward`` for those passed with autograd recording (the kernels
    differentiate every such call once)."""

    def __init__(self, model: Callable[[Tensor], Tensor]) -> None:
        self.model = model
        self.forward = 0
        self.backward = 0
        self.calls = 0

    def __call__(self, x: Tensor) -> Tensor:
        self.calls += 1
        self.forward += x.shape[0]
        if torch.is_grad_enabled() and x.requires_grad:
            self.backward += x.shape[0]
        return self.model(x)

    def parameters(self) -> Iterator[Any]:
        """The wrapped model's parameters (the kernels check their device)."""
        params = getattr(self.model, "parameters", None)
        return iter(()) if params is None else params()

    def snapshot(self) -> tuple:
        return (self.forward, self.backward, self.calls)

    @contextmanager
    def charged(self, costs: Costs, name: str) -> Iterator["PassCounter"]:
        """Books the passes and seconds spent inside the block under ``name``
        in ``costs``, adding to what the name already holds."""
        before, tic = self.snapshot(), time.perf_counter()
        try:
            yield self
        finally:
            after = self.snapshot()
            costs.forward[name] = costs.forward.get(name, 0) + after[0] - before[0]
            costs.backward[name] = costs.backward.get(name, 0) + after[1] - before[1]
            costs.seconds[name] = costs.seconds.get(name, 0.0) + time.perf_counter() - tic
