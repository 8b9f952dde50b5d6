"""The paper's evaluation protocol (the authors' MNIST_eval.py), in plain PyTorch,
written from these facts of that script:

* PGD: 40 steps of 0.01 in the L-inf ball of 0.3, uniform random start, the
  cross-entropy *summed* over the batch, the last iterate;
* "FGSM": uniform random start, then one step of 0.3;
* MI-FGSM: 40 steps of 0.01, decay 0.1, no random start;
* DDN: 20 iterations, init norm 1, gamma 0.05, 256 levels, no norm bound; its
  column is the share still correctly classified after them;
* a sample is robust when its attacked input is classified correctly (the
  clean input need not be).

Random draws come from torch's default generator in the order clean, FGSM,
PGD, MI-FGSM, DDN per batch.
"""

from typing import Callable, Dict

import torch
import torch.nn.functional as F
from torch import Tensor

from reference.ddn import ddn

Model = Callable[[Tensor], Tensor]


def _input_grad(model: Model, adv: Tensor, y: Tensor) -> Tensor:
    adv = adv.detach().requires_grad_(True)
    loss = F.cross_entropy(model(adv), y, reduction="sum")
    return torch.autograd.grad(loss, adv)[0]


def _project(adv: Tensor, x: Tensor, eps: float) -> Tensor:
    return (x + (adv - x).clamp(-eps, eps)).clamp(0, 1)


def pgd_random_start(model: Model, x: Tensor, y: Tensor, *, eps: float, alpha: float, steps: int) -> Tensor:
    adv = (x + torch.empty_like(x).uniform_(-eps, eps)).clamp(0, 1)
    for _ in range(steps):
        adv = _project(adv + alpha * _input_grad(model, adv, y).sign(), x, eps)
    return adv


def mifgsm(model: Model, x: Tensor, y: Tensor, *, eps: float, alpha: float, steps: int, decay: float) -> Tensor:
    adv, momentum = x.clone(), torch.zeros_like(x)
    for _ in range(steps):
        g = _input_grad(model, adv, y)
        mean = g.abs().mean(dim=tuple(range(1, g.dim())), keepdim=True)
        g = g / torch.where(mean == 0, torch.ones_like(mean), mean) + decay * momentum
        momentum = g
        adv = _project(adv + alpha * g.sign(), x, eps)
    return adv


def paper_protocol(model: Model, inputs: Tensor, labels: Tensor, *, batch_size: int) -> Dict[str, float]:
    counts = dict.fromkeys(["clean", "fgsm", "pgd", "mifgsm", "ddn"], 0)
    attacks = {
        "fgsm": lambda x, y: pgd_random_start(model, x, y, eps=0.3, alpha=0.3, steps=1),
        "pgd": lambda x, y: pgd_random_start(model, x, y, eps=0.3, alpha=0.01, steps=40),
        "mifgsm": lambda x, y: mifgsm(model, x, y, eps=0.3, alpha=0.01, steps=40, decay=0.1),
        "ddn": lambda x, y: ddn(model, x, y, steps=20, init_norm=1.0, gamma=0.05, levels=256),
    }
    for x, y in zip(inputs.split(batch_size), labels.split(batch_size)):
        with torch.no_grad():
            counts["clean"] += int((model(x).argmax(1) == y).sum())
        for name, attack in attacks.items():
            adv = attack(x, y)
            with torch.no_grad():
                counts[name] += int((model(adv).argmax(1) == y).sum())
    return {k: v / len(inputs) for k, v in counts.items()}
