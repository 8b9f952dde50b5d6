"""Decision and loss surfaces as a plain loop over the grid: one forward pass
per point, ``clamp(x + a u + b v, 0, 1)`` with ``a = b = linspace(-span, span, steps)``;
the decision value is ``z_y - max_{i != y} z_i`` on the logits. And the
paper's direction pair: ``sign`` of the per-sample loss gradient, and a sign
vector with its component along it removed, scaled to unit L-inf norm.
"""

from typing import Callable, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor

Model = Callable[[Tensor], Tensor]


def point_value(logits: Tensor, label: int, kind: str) -> Tensor:
    """The value of one ``(C,)`` row of logits."""
    if kind == "loss":
        return F.cross_entropy(logits[None], torch.tensor([label]))
    others = torch.cat([logits[:label], logits[label + 1 :]])
    return logits[label] - others.max()


@torch.no_grad()
def surface(model: Model, inputs: Tensor, labels: Tensor, u: Tensor, v: Tensor, *, span: float, steps: int,
            kind: str) -> Tensor:
    coords = torch.linspace(-span, span, steps, dtype=inputs.dtype)
    out = torch.empty(len(inputs), steps, steps, dtype=inputs.dtype)
    for n in range(len(inputs)):
        for i in range(steps):
            for j in range(steps):
                point = (inputs[n] + coords[i] * u[n] + coords[j] * v[n]).clamp(0, 1)
                out[n, i, j] = point_value(model(point[None])[0], int(labels[n]), kind)
    return out


def orthogonal_sign_direction(u: Tensor, r: Tensor) -> Tensor:
    """``r - (<r, u> / <u, u>) u`` per sample, scaled to unit L-inf norm."""
    uf, rf = u.flatten(1), r.flatten(1)
    v = rf - ((rf * uf).sum(1) / (uf * uf).sum(1))[:, None] * uf
    return (v / v.abs().amax(1, keepdim=True)).view_as(u)


def gradient_sign(model: Model, inputs: Tensor, labels: Tensor) -> Tensor:
    x = inputs.detach().requires_grad_(True)
    (g,) = torch.autograd.grad(F.cross_entropy(model(x), labels, reduction="sum"), x)
    return g.sign()


def directions(model: Model, inputs: Tensor, labels: Tensor, r: Tensor) -> Tuple[Tensor, Tensor]:
    u = gradient_sign(model, inputs, labels)
    return u, orthogonal_sign_direction(u, r)
