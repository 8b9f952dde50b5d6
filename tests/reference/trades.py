"""TRADES (Zhang et al., 2019, https://arxiv.org/abs/1901.08573), transcribed from
the official ``trades.py`` (github.com/yaodongyu/TRADES): the L-inf inner
maximisation and the outer loss given its point.

``nn.KLDivLoss(size_average=False)`` of the original is written with its
current spelling, ``reduction="sum"``.
"""

from typing import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def trades_perturb(
    model: Callable[[Tensor], Tensor], x_natural: Tensor, x_start: Tensor, *, eps: float, alpha: float, steps: int
) -> Tensor:
    """The official loop from ``x_start`` (the original draws ``x + 0.001 * randn``)."""
    criterion_kl = nn.KLDivLoss(reduction="sum")
    x_adv = x_start.detach().clone()
    for _ in range(steps):
        x_adv.requires_grad_()
        with torch.enable_grad():
            loss_kl = criterion_kl(F.log_softmax(model(x_adv), dim=1), F.softmax(model(x_natural), dim=1))
        grad = torch.autograd.grad(loss_kl, [x_adv])[0]
        x_adv = x_adv.detach() + alpha * torch.sign(grad.detach())
        x_adv = torch.min(torch.max(x_adv, x_natural - eps), x_natural + eps)
        x_adv = torch.clamp(x_adv, 0.0, 1.0)
    return x_adv


def trades_loss(model: Callable[[Tensor], Tensor], x_natural: Tensor, x_adv: Tensor, y: Tensor, *, beta: float) -> Tensor:
    """The official outer loss: natural CE + beta * (1 / batch) * summed KL, with
    the model called on x, x_adv, x in that order."""
    criterion_kl = nn.KLDivLoss(reduction="sum")
    batch_size = len(x_natural)
    x_adv = torch.clamp(x_adv, 0.0, 1.0).detach()
    logits = model(x_natural)
    loss_natural = F.cross_entropy(logits, y)
    loss_robust = (1.0 / batch_size) * criterion_kl(
        F.log_softmax(model(x_adv), dim=1), F.softmax(model(x_natural), dim=1)
    )
    return loss_natural + beta * loss_robust
