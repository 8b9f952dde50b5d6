"""Gradient-norm penalty (Simon-Gabriel et al., 2019, https://arxiv.org/abs/1802.01421):
``||d_x CE(model(x_i), y_i)||_p`` per sample, by autograd double backward.

The loss is summed over the batch before differentiating, so row ``i`` of the
input gradient is sample ``i``'s own gradient; ``create_graph=True`` keeps the
result differentiable with respect to the model's parameters.
"""

from typing import Callable

import torch
import torch.nn.functional as F
from torch import Tensor


def input_grad(
    model: Callable[[Tensor], Tensor], inputs: Tensor, labels: Tensor, *, create_graph: bool = False
) -> Tensor:
    """``d/dx sum_i CE(model(x_i), y_i)`` at ``inputs`` (row ``i`` is sample ``i``'s gradient)."""
    x = inputs.detach().requires_grad_(True)
    ce = F.cross_entropy(model(x), labels, reduction="sum")
    (g,) = torch.autograd.grad(ce, x, create_graph=create_graph)
    return g


def grad_norm_penalty(model: Callable[[Tensor], Tensor], inputs: Tensor, labels: Tensor, *, p: float = 1.0) -> Tensor:
    """``(N,)`` per-sample ``||d_x CE||_p``, differentiable w.r.t. the parameters."""
    g = input_grad(model, inputs, labels, create_graph=True)
    return torch.linalg.vector_norm(g.flatten(1), ord=p, dim=1)
