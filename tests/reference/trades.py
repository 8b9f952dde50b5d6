"""TRADES (Zhang et al., 2019, https://arxiv.org/abs/1901.08573), transcribed from
the official ``trades.py`` (github.com/yaodongyu/TRADES): the outer loss
given the inner maximisation's point (that one is in ``inner.py``).

``nn.KLDivLoss(size_average=False)`` of the original is written with its
current spelling, ``reduction="sum"``.
"""

from typing import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn


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
