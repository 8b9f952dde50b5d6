"""Local linearity regularization (Qin et al., 2019, https://arxiv.org/abs/1907.02610),
eq. (8): ``E[l(x) + lam * g(d; x) + mu * |d^T grad_x l(x)|]`` with the local
linearity error ``g(d; x) = |l(x + d) - l(x) - d^T grad_x l(x)|``.

Written one sample at a time (its own forward pass and input gradient), an
independent check of the batched loss; the inner maximisation is in ``inner.py``.
"""

from typing import Callable

import torch
import torch.nn.functional as F
from torch import Tensor


def llr_loss(
    model: Callable[[Tensor], Tensor], x_natural: Tensor, x_adv: Tensor, y: Tensor, *, lam: float, mu: float
) -> Tensor:
    """The LLR objective averaged over the batch, given the inner maximiser ``x_adv``."""
    terms = []
    for i in range(len(x_natural)):
        x = x_natural[i : i + 1].detach().requires_grad_(True)
        yi = y[i : i + 1]
        delta = (x_adv[i : i + 1] - x_natural[i : i + 1]).detach()
        loss = F.cross_entropy(model(x), yi)
        (grad,) = torch.autograd.grad(loss, x, create_graph=True)
        first_order = torch.sum(delta * grad)
        gamma = (F.cross_entropy(model(x + delta), yi) - loss - first_order).abs()
        terms.append(loss + lam * gamma + mu * first_order.abs())
    return torch.stack(terms).mean()
