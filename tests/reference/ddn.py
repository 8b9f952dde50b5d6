"""Decoupled Direction and Norm (Rony et al., 2019, https://arxiv.org/abs/1811.09600).

A transcription of adv_lib's ``ddn`` in plain PyTorch, kept line for line with
the Rust kernel so that float64 runs agree to rounding.
"""

import math
from typing import Callable, Optional

import torch
import torch.nn.functional as F
from torch import Tensor


def _batch_view(t: Tensor, like: Tensor) -> Tensor:
    return t.view(-1, *([1] * (like.dim() - 1)))


def _l2(t: Tensor) -> Tensor:
    return t.flatten(1).norm(p=2, dim=1)


def ddn(
    model: Callable[[Tensor], Tensor],
    inputs: Tensor,
    labels: Tensor,
    *,
    steps: int = 100,
    gamma: float = 0.05,
    init_norm: float = 1.0,
    levels: Optional[int] = 256,
    targeted: bool = False,
) -> Tensor:
    """Smallest-L2 adversarial found per sample, or the input where none was."""
    x = inputs.detach()
    n = len(x)
    delta = torch.zeros_like(x)
    norm = torch.full((n,), init_norm, dtype=x.dtype, device=x.device)
    worst_norm = _l2(torch.maximum(x, 1 - x))
    best_l2 = worst_norm.clone()
    best = x.clone()

    for i in range(steps):
        alpha = 0.01 + 0.99 * (1 + math.cos(math.pi * i / steps)) / 2
        l2 = _l2(delta)
        adv = (x + delta).requires_grad_(True)
        logits = model(adv)
        pred = logits.argmax(1)
        is_adv = pred == labels if targeted else pred != labels
        improved = is_adv & (l2 < best_l2)
        best_l2 = torch.where(improved, l2, best_l2)
        best = torch.where(_batch_view(improved, x), adv.detach(), best)

        obj = F.cross_entropy(logits, labels, reduction="none")
        if targeted:
            obj = -obj
        (g,) = torch.autograd.grad(obj.sum(), adv)

        gn = _l2(g)
        unit = g / _batch_view(gn, x)
        # a zero gradient gives no direction: step somewhere at random instead
        zero = gn < 1e-12
        if zero.any():
            unit = torch.where(_batch_view(zero, x), torch.randn_like(unit), unit)
        delta = delta + unit * alpha

        norm = torch.where(is_adv, norm * (1 - gamma), norm * (1 + gamma))
        norm = torch.minimum(norm, worst_norm)

        delta = (delta * _batch_view(norm / _l2(delta), x) + x).clamp(0, 1)
        if levels is not None:
            q = levels - 1
            delta = (delta * q).round() / q
        delta = delta - x

    return best
