"""Training objectives: standard, PGD-AT, TRADES, LLR, gradient-norm and LFR.

Each method is a frozen dataclass with two steps, so that the training loop can
run them in different modes (TRADES' official code runs the inner maximisation
with ``model.eval()`` and the outer loss with ``model.train()``):

* ``perturb(model, inputs, labels)`` runs the inner maximisation with a Rust
  kernel and returns the detached point ``x'`` (``None`` when there is none);
* ``loss(model, inputs, labels, x_adv)`` returns the scalar outer objective,
  ready for ``.backward()``.

Calling a method, ``method(model, inputs, labels)``, does both in the model's
current mode. Defaults are the paper's MNIST settings (eps 0.3, step 0.01, 40
steps, LFR lambda 0.02, TRADES 1/lambda = 1, LLR lambda 4 and mu 3).

>>> loss = LFR(lam=0.02)(model, x, y)
>>> loss.backward()
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Callable, ClassVar, Dict, Literal, Optional, Tuple, Type

import torch
import torch.nn.functional as F
from torch import Tensor

from lfr_rs._typing import Hvp, Start
from lfr_rs.defaults import (PAPER_ALPHA, PAPER_EPS, PAPER_LFR_LAM, PAPER_LLR_LAM, PAPER_LLR_MU, PAPER_STEPS,
                             PAPER_TRADES_BETA)
from lfr_rs._capture_safe import grad_norm_penalty, lfr_perturb, llr_perturb, pgd, trades_perturb

__all__ = [
    "AT",
    "LFR",
    "LLR",
    "METHODS",
    "Defense",
    "GradNorm",
    "Method",
    "Standard",
    "Trades",
    "make_method",
    "method_options",
]

Model = Callable[[Tensor], Tensor]
Method = Literal["standard", "at", "trades", "llr", "gradnorm", "lfr"]


@dataclass(frozen=True)
class Defense:
    """A training objective: an optional inner maximisation plus an outer loss."""

    name: ClassVar[str]
    title: ClassVar[str]  # the Defense column of Table 1
    #: the options a warm-up ramps from 0 (:meth:`at_strength`): the radius, its step and the penalty weights
    ramped: ClassVar[Tuple[str, ...]] = ()

    def at_strength(self, t: float) -> "Defense":
        """This method with every option of ``ramped`` multiplied by ``t`` in
        (0, 1] (the warm-up of :func:`lfr_rs.training.fit`); ``t = 1`` is the
        method itself."""
        if not 0.0 < t <= 1.0:
            raise ValueError(f"a warm-up strength must lie in (0, 1], got {t}")
        if t == 1.0 or not self.ramped:
            return self
        return dataclasses.replace(self, **{k: getattr(self, k) * t for k in self.ramped})

    def perturb(self, model: Model, inputs: Tensor, labels: Tensor) -> Optional[Tensor]:
        """The inner maximisation's detached point ``x'``, or ``None``."""
        return None

    def loss(self, model: Model, inputs: Tensor, labels: Tensor, x_adv: Optional[Tensor] = None) -> Tensor:
        """The scalar outer objective, differentiable w.r.t. the model's parameters."""
        raise NotImplementedError

    def __call__(self, model: Model, inputs: Tensor, labels: Tensor, x_adv: Optional[Tensor] = None) -> Tensor:
        """``loss`` at ``x_adv``, or at ``perturb``'s point when None; no mode switching."""
        if x_adv is None:
            x_adv = self.perturb(model, inputs, labels)
        return self.loss(model, inputs, labels, x_adv)

    def _needs(self, x_adv: Optional[Tensor]) -> Tensor:
        if x_adv is None:
            raise ValueError(f"the {self.name!r} loss needs x_adv: pass perturb()'s result, or call the method itself")
        return x_adv


@dataclass(frozen=True)
class Standard(Defense):
    """Cross-entropy on clean inputs."""

    name: ClassVar[str] = "standard"
    title: ClassVar[str] = "Standard"

    def loss(self, model: Model, inputs: Tensor, labels: Tensor, x_adv: Optional[Tensor] = None) -> Tensor:
        return F.cross_entropy(model(inputs), labels)


@dataclass(frozen=True)
class AT(Defense):
    """Madry et al. (2018, https://arxiv.org/abs/1706.06083): cross-entropy at the
    L-inf PGD point (random start)."""

    eps: float = PAPER_EPS
    alpha: float = PAPER_ALPHA
    steps: int = PAPER_STEPS
    name: ClassVar[str] = "at"
    ramped: ClassVar[Tuple[str, ...]] = ("eps", "alpha")
    title: ClassVar[str] = "AT"

    def perturb(self, model: Model, inputs: Tensor, labels: Tensor) -> Tensor:
        return pgd(model, inputs, labels, eps=self.eps, alpha=self.alpha, steps=self.steps)

    def loss(self, model: Model, inputs: Tensor, labels: Tensor, x_adv: Optional[Tensor] = None) -> Tensor:
        return F.cross_entropy(model(self._needs(x_adv)), labels)


@dataclass(frozen=True)
class Trades(Defense):
    """Zhang et al. (2019, https://arxiv.org/abs/1901.08573), as the official
    ``trades_loss``: ``CE(f(x), y) + beta * KL(f(x) || f(x'))`` with the KL summed
    and divided by the batch size. ``beta`` is the paper's ``1/lambda``.

    The model is called on ``x``, ``x'`` and ``x`` again, in that order, as in
    the official code (with dropout active the KL target gets its own mask).
    """

    eps: float = PAPER_EPS
    alpha: float = PAPER_ALPHA
    steps: int = PAPER_STEPS
    beta: float = PAPER_TRADES_BETA
    name: ClassVar[str] = "trades"
    ramped: ClassVar[Tuple[str, ...]] = ("eps", "alpha")
    title: ClassVar[str] = "TRADES"

    def perturb(self, model: Model, inputs: Tensor, labels: Tensor) -> Tensor:
        return trades_perturb(model, inputs, eps=self.eps, alpha=self.alpha, steps=self.steps)

    def loss(self, model: Model, inputs: Tensor, labels: Tensor, x_adv: Optional[Tensor] = None) -> Tensor:
        x_adv = self._needs(x_adv)
        natural = F.cross_entropy(model(inputs), labels)
        kl = F.kl_div(F.log_softmax(model(x_adv), dim=1), F.softmax(model(inputs), dim=1), reduction="sum")
        return natural + self.beta * kl / len(inputs)


@dataclass(frozen=True)
class LLR(Defense):
    """Local linearity regularization (Qin et al., 2019, https://arxiv.org/abs/1907.02610):
    ``mean[L(x) + lam * g(x, d) + mu * |d^T grad_x L(x)|]`` with
    ``g(x, d) = |L(x + d) - L(x) - d^T grad_x L(x)|`` at the kernel's ``d = x' - x``.

    ``grad_x L(x)`` is taken with ``create_graph=True`` so both terms train.
    """

    eps: float = PAPER_EPS
    alpha: float = PAPER_ALPHA
    steps: int = PAPER_STEPS
    lam: float = PAPER_LLR_LAM
    mu: float = PAPER_LLR_MU
    name: ClassVar[str] = "llr"
    ramped: ClassVar[Tuple[str, ...]] = ("eps", "alpha", "lam", "mu")
    title: ClassVar[str] = "LLR"

    def perturb(self, model: Model, inputs: Tensor, labels: Tensor) -> Tensor:
        return llr_perturb(model, inputs, labels, eps=self.eps, alpha=self.alpha, steps=self.steps)

    def loss(self, model: Model, inputs: Tensor, labels: Tensor, x_adv: Optional[Tensor] = None) -> Tensor:
        x_adv = self._needs(x_adv)
        x = inputs.detach().requires_grad_(True)
        clean = F.cross_entropy(model(x), labels, reduction="none")
        # samples are independent, so the gradient of the sum is the per-sample gradient
        (grad,) = torch.autograd.grad(clean.sum(), x, create_graph=True)
        linear = ((x_adv - inputs).detach() * grad).flatten(1).sum(1)
        adv = F.cross_entropy(model(x_adv), labels, reduction="none")
        gamma = (adv - clean - linear).abs()
        return (clean + self.lam * gamma + self.mu * linear.abs()).mean()


@dataclass(frozen=True)
class GradNorm(Defense):
    """First-order defense (Simon-Gabriel et al., 2019, https://arxiv.org/abs/1802.01421):
    ``mean[L(x) + lam * ||d_x L(x)||_1]``, the L-inf dual norm. It is LFR with
    ``eps = 0`` (Theorem 2); ``lam = eps`` is the first-order twin of
    eps-FGSM adversarial training (Theorem 3)."""

    lam: float = PAPER_LFR_LAM
    name: ClassVar[str] = "gradnorm"
    ramped: ClassVar[Tuple[str, ...]] = ("lam",)
    title: ClassVar[str] = "GradNorm"

    def loss(self, model: Model, inputs: Tensor, labels: Tensor, x_adv: Optional[Tensor] = None) -> Tensor:
        clean = F.cross_entropy(model(inputs), labels)
        return clean + self.lam * grad_norm_penalty(model, inputs, labels, p=1.0).mean()


@dataclass(frozen=True)
class LFR(Defense):
    """Local Flatness Regularization, eqs. (2)-(4): ``mean[L(x) + lam * ||d_x L(x')||_1]``
    with ``x' = argmax_{B_inf(x, eps)} ||d_x L(x')||_1`` from :func:`lfr_rs.lfr_perturb`.

    ``fd_step=None`` leaves the kernel's finite-difference step; ``start`` and
    ``start_std`` (``None``: the kernel's) pick the inner maximisation's random
    start (``start="normal", start_std=0.001`` is the authors' ``LFR_loss.py``).
    """

    eps: float = PAPER_EPS
    alpha: float = PAPER_ALPHA
    steps: int = PAPER_STEPS
    lam: float = PAPER_LFR_LAM
    hvp: Hvp = "exact"
    fd_step: Optional[float] = None
    start: Optional[Start] = None
    start_std: Optional[float] = None
    name: ClassVar[str] = "lfr"
    ramped: ClassVar[Tuple[str, ...]] = ("eps", "alpha", "lam")
    title: ClassVar[str] = "LFR"

    def perturb(self, model: Model, inputs: Tensor, labels: Tensor) -> Tensor:
        given = {"fd_step": self.fd_step, "start": self.start, "start_std": self.start_std}
        extra: Dict[str, Any] = {k: v for k, v in given.items() if v is not None}
        return lfr_perturb(
            model, inputs, labels, eps=self.eps, alpha=self.alpha, steps=self.steps, hvp=self.hvp, **extra
        )

    def loss(self, model: Model, inputs: Tensor, labels: Tensor, x_adv: Optional[Tensor] = None) -> Tensor:
        x_adv = self._needs(x_adv)
        clean = F.cross_entropy(model(inputs), labels)
        return clean + self.lam * grad_norm_penalty(model, x_adv, labels, p=1.0).mean()


METHODS: Dict[str, Type[Defense]] = {
    cls.name: cls for cls in (Standard, AT, Trades, LLR, GradNorm, LFR)
}


def method_options(name: str) -> Dict[str, Any]:
    """The options of method ``name`` with their defaults."""
    cls = _lookup(name)
    return {f.name: f.default for f in dataclasses.fields(cls)}


def make_method(name: str, **options: Any) -> Defense:
    """``METHODS[name](**options)``, with errors that name the accepted values."""
    cls = _lookup(name)
    unknown = sorted(set(options) - set(method_options(name)))
    if unknown:
        accepted = ", ".join(method_options(name)) or "none"
        raise TypeError(f"method {name!r} takes no option(s) {', '.join(unknown)} (accepted: {accepted})")
    return cls(**options)


def _lookup(name: str) -> Type[Defense]:
    try:
        return METHODS[name]
    except KeyError:
        raise ValueError(f"unknown method {name!r}; expected one of {', '.join(METHODS)}") from None
