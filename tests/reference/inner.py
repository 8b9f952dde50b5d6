"""Inner maximizations of two related regularizers, in plain PyTorch.

* TRADES (Zhang et al., 2019, https://arxiv.org/abs/1901.08573), as the official
  ``trades_loss``: start at ``x + 0.001 * randn``, ascend the summed
  ``KL(softmax(f(x)) || softmax(f(x_adv)))`` with sign steps, then
  ``min(max(x_adv, x - eps), x + eps)`` and clip to [0, 1].
* LLR (Qin et al., 2019, https://arxiv.org/abs/1907.02610): ascend the local
  linearity error ``|L(x + delta) - L(x) - delta^T grad_x L(x)|`` (summed over
  the batch) with sign steps, projecting onto the L-inf ball, then [0, 1].
"""

from typing import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

from .penalty import input_grad


def trades_kl(model: Callable[[Tensor], Tensor], inputs: Tensor, adv: Tensor) -> Tensor:
    """Summed ``KL(softmax(f(x)) || softmax(f(adv)))``, the TRADES inner objective."""
    with torch.no_grad():
        natural = F.softmax(model(inputs), dim=1)
    return F.kl_div(F.log_softmax(model(adv), dim=1), natural, reduction="sum")


def trades_perturb(
    model: Callable[[Tensor], Tensor], inputs: Tensor, *, eps: float, alpha: float, steps: int = 10
) -> Tensor:
    x = inputs.detach()
    with torch.no_grad():
        natural = F.softmax(model(x), dim=1)
    adv = x + 0.001 * torch.randn_like(x)
    for _ in range(steps):
        adv = adv.detach().requires_grad_(True)
        kl = F.kl_div(F.log_softmax(model(adv), dim=1), natural, reduction="sum")
        (grad,) = torch.autograd.grad(kl, adv)
        adv = adv.detach() + alpha * grad.sign()
        adv = torch.min(torch.max(adv, x - eps), x + eps).clamp(0, 1)
    return adv


def _linearity_error(
    model: Callable[[Tensor], Tensor], x: Tensor, adv: Tensor, labels: Tensor, loss0: Tensor, grad0: Tensor
) -> Tensor:
    loss = F.cross_entropy(model(adv), labels, reduction="none")
    linear = ((adv - x) * grad0).flatten(1).sum(1)
    return (loss - loss0 - linear).abs()


def local_linearity(model: Callable[[Tensor], Tensor], inputs: Tensor, adv: Tensor, labels: Tensor) -> Tensor:
    """``(N,)`` local linearity error ``|L(adv) - L(x) - (adv - x)^T grad_x L(x)|`` per sample."""
    x = inputs.detach()
    with torch.no_grad():
        loss0 = F.cross_entropy(model(x), labels, reduction="none")
    return _linearity_error(model, x, adv, labels, loss0, input_grad(model, x, labels))


def llr_perturb(
    model: Callable[[Tensor], Tensor],
    inputs: Tensor,
    labels: Tensor,
    *,
    eps: float,
    alpha: float,
    steps: int = 10,
    random_start: bool = True,
) -> Tensor:
    x = inputs.detach()
    with torch.no_grad():
        loss0 = F.cross_entropy(model(x), labels, reduction="none")
    grad0 = input_grad(model, x, labels)
    adv = (x + torch.empty_like(x).uniform_(-eps, eps)).clamp(0, 1) if random_start else x.clone()
    for _ in range(steps):
        adv = adv.detach().requires_grad_(True)
        gamma = _linearity_error(model, x, adv, labels, loss0, grad0).sum()
        (grad,) = torch.autograd.grad(gamma, adv)
        adv = adv.detach() + alpha * grad.sign()
        delta = (adv - x).clamp(-eps, eps)
        adv = (x + delta).clamp(0, 1)
    return adv
