"""FGSM, PGD (L-inf, L2) and MI-FGSM in plain PyTorch, operation for operation
as torchattacks 3.5.1 computes them (mean cross-entropy, step, then the
eps-ball, then [0, 1]); no random start. ``tests/test_reference_attacks.py``
checks them equal to torchattacks, so ``tests/test_gpu.py`` can use them where
torchattacks is not installed.
"""

from typing import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

Model = Callable[[Tensor], Tensor]


def _grad(model: Model, adv: Tensor, labels: Tensor) -> Tensor:
    adv = adv.detach().requires_grad_(True)
    (grad,) = torch.autograd.grad(F.cross_entropy(model(adv), labels), adv)
    return grad


def fgsm(model: Model, inputs: Tensor, labels: Tensor, *, eps: float) -> Tensor:
    return (inputs + eps * _grad(model, inputs, labels).sign()).clamp(0, 1).detach()


def pgd(model: Model, inputs: Tensor, labels: Tensor, *, eps: float, alpha: float, steps: int) -> Tensor:
    adv = inputs.clone().detach()
    for _ in range(steps):
        adv = adv + alpha * _grad(model, adv, labels).sign()
        adv = (inputs + (adv - inputs).clamp(-eps, eps)).clamp(0, 1).detach()
    return adv


def pgd_l2(model: Model, inputs: Tensor, labels: Tensor, *, eps: float, alpha: float, steps: int) -> Tensor:
    n = len(inputs)
    view = (-1,) + (1,) * (inputs.dim() - 1)
    adv = inputs.clone().detach()
    for _ in range(steps):
        grad = _grad(model, adv, labels)
        grad = grad / (grad.reshape(n, -1).norm(p=2, dim=1) + 1e-10).view(view)
        delta = adv + alpha * grad - inputs
        factor = torch.min(eps / delta.reshape(n, -1).norm(p=2, dim=1), torch.ones(n, dtype=delta.dtype, device=delta.device))
        adv = (inputs + delta * factor.view(view)).clamp(0, 1).detach()
    return adv


def mifgsm(model: Model, inputs: Tensor, labels: Tensor, *, eps: float, alpha: float, steps: int,
           decay: float = 1.0) -> Tensor:
    momentum = torch.zeros_like(inputs)
    dims = tuple(range(1, inputs.dim()))
    adv = inputs.clone().detach()
    for _ in range(steps):
        grad = _grad(model, adv, labels)
        grad = grad / grad.abs().mean(dim=dims, keepdim=True) + momentum * decay
        momentum = grad
        adv = adv + alpha * grad.sign()
        adv = (inputs + (adv - inputs).clamp(-eps, eps)).clamp(0, 1).detach()
    return adv
