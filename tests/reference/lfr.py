"""LFR inner maximization (Xu et al., "Adversarial Defense via Local Flatness
Regularization", eq. 3): ``x' = argmax_{x' in B_inf(x, eps) ∩ [0,1]} ||d_x L(x')||_1``
by projected sign ascent, with torchattacks' projection order (ball, then box).

The ascent direction is ``d/dx' sum_i ||g_i(x')||_1 = H(x') sign(g(x'))``:
exactly by double backward, or by the forward difference
``(g(x' + h sign(g)) - g(x')) / h`` (the shifted point is not clipped).
"""

from typing import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

from .penalty import input_grad


def flatness_grad(
    model: Callable[[Tensor], Tensor],
    inputs: Tensor,
    labels: Tensor,
    *,
    hvp: str = "exact",
    fd_step: float = 0.01,
) -> Tensor:
    """Gradient of ``sum_i ||g_i(x)||_1`` with respect to ``x``."""
    x = inputs.detach()
    if hvp == "exact":
        xr = x.clone().requires_grad_(True)
        ce = F.cross_entropy(model(xr), labels, reduction="sum")
        (g,) = torch.autograd.grad(ce, xr, create_graph=True)
        (d,) = torch.autograd.grad(g.abs().sum(), xr)
        return d
    if hvp == "fd":
        g = input_grad(model, x, labels)
        g_h = input_grad(model, x + fd_step * g.sign(), labels)
        return (g_h - g) / fd_step
    raise ValueError(f"unknown hvp {hvp!r}")


def lfr_perturb(
    model: Callable[[Tensor], Tensor],
    inputs: Tensor,
    labels: Tensor,
    *,
    eps: float,
    alpha: float,
    steps: int = 10,
    random_start: bool = True,
    hvp: str = "exact",
    fd_step: float = 0.01,
) -> Tensor:
    """The last iterate of projected sign ascent on the local flatness."""
    x = inputs.detach()
    adv = (x + torch.empty_like(x).uniform_(-eps, eps)).clamp(0, 1) if random_start else x.clone()
    return _ascend(model, x, adv, labels, eps=eps, alpha=alpha, steps=steps, hvp=hvp, fd_step=fd_step)


def _ascend(model, x, adv, labels, *, eps, alpha, steps, hvp, fd_step):
    for _ in range(steps):
        d = flatness_grad(model, adv, labels, hvp=hvp, fd_step=fd_step)
        adv = adv + alpha * d.sign()
        delta = (adv - x).clamp(-eps, eps)
        adv = (x + delta).clamp(0, 1)
    return adv


def local_flatness(
    model: Callable[[Tensor], Tensor],
    inputs: Tensor,
    labels: Tensor,
    *,
    eps: float,
    alpha: float,
    steps: int = 10,
    random_start: bool = True,
    hvp: str = "exact",
    fd_step: float = 0.01,
) -> tuple[Tensor, Tensor]:
    """``(x', ||d_x L(x')||_1)``: the maximizer and the flatness it reaches (Definition 1)."""
    adv = lfr_perturb(
        model, inputs, labels, eps=eps, alpha=alpha, steps=steps, random_start=random_start, hvp=hvp, fd_step=fd_step
    )
    gamma = input_grad(model, adv, labels).flatten(1).norm(p=1, dim=1)
    return adv, gamma


def authors_lfr_perturb(
    model: Callable[[Tensor], Tensor],
    inputs: Tensor,
    labels: Tensor,
    *,
    eps: float,
    alpha: float,
    steps: int,
) -> Tensor:
    """The inner maximization as the authors' ``loss_function/LFR_loss.py``
    writes it: start at ``clamp(x + 0.001 * N(0, I), 0, 1)``; each step takes
    the sign of the gradient of ``||d_x mean_i CE_i(x')||_1`` (the batch-mean
    cross-entropy's input gradient, L1 over the whole batch), then
    ``min(max(x', x - eps), x + eps)`` and [0, 1]."""
    x = inputs.detach()
    adv = (x + 0.001 * torch.randn_like(x)).clamp(0.0, 1.0)
    for _ in range(steps):
        adv = adv.detach().requires_grad_(True)
        ce = F.cross_entropy(model(adv), labels)
        (g,) = torch.autograd.grad(ce, adv, create_graph=True)
        (d,) = torch.autograd.grad(g.abs().sum(), adv)
        adv = adv.detach() + alpha * d.sign()
        adv = torch.min(torch.max(adv, x - eps), x + eps).clamp(0.0, 1.0)
    return adv
