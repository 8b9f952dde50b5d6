"""A model wrapper that counts the forward and backward passes the kernels spend."""

from __future__ import annotations

from typing import Any, Callable, Iterator

import torch
from torch import Tensor

__all__ = ["PassCounter"]


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
