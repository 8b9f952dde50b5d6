"""Gradient-masking checks: tell when a robust-accuracy number measured with
gradients cannot be trusted (Athalye et al., 2018, arXiv:1802.00420, section
3.1; Croce & Hein, 2020). They read a cascade's result and probe the model with
a few attacks of their own; they never run the cascade (as AutoAttack's
``checks.py``): :func:`lfr_rs.evaluation.cascade.masking_report` does both."""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional

import torch
from torch import Tensor

from lfr_rs import distributed
from lfr_rs._modes import enter_eval, restore_modes
from lfr_rs._checks import check_logits, check_pair
from lfr_rs._typing import Norm
from lfr_rs.attacks import apgd, pgd
from lfr_rs.evaluation.counting import PassCounter
from lfr_rs.regularizers import grad_norm_penalty

__all__ = ["GradientMaskingWarning", "MaskingReport", "THRESHOLDS", "run_checks"]

#: When each check fires.
THRESHOLDS: Dict[str, float] = {
    "pgd_over_apgd": 0.02,  # PGD accuracy above the APGD worst case by more than this
    "square_only": 0.01,  # Square fools more than this share of the points (and at least 2)
    "dead_gradients": 0.05,  # share of points whose input gradient is 0 or non-finite
    "eps1_accuracy": 0.0,  # accuracy at eps = 1 (L-inf) above this
}


class GradientMaskingWarning(UserWarning):
    """A robust accuracy measured with gradients that is probably too high."""


@dataclass
class MaskingReport:
    """The numbers behind each check, and the warnings they raised."""

    n: int
    #: PGD-40 (keep_best) accuracy and the accuracy after the cascade's gradient attacks
    pgd_accuracy: Optional[float] = None
    apgd_accuracy: Optional[float] = None
    #: points Square fooled after every gradient attack failed
    square_only: Optional[int] = None
    square_attacked: Optional[int] = None
    #: share of points whose input gradient is exactly 0 or non-finite
    dead_gradients: Optional[float] = None
    #: accuracy at eps = 1 on at most ``eps1_n`` points (L-inf only): APGD's
    #: on the points the cascade left standing, the others counted as fooled
    eps1_accuracy: Optional[float] = None
    #: points the eps = 1 check attacked (the cascade's survivors among its first ``eps1_n``)
    eps1_attacked: Optional[int] = None
    #: two forward passes of the same batch differ
    randomized: Optional[bool] = None
    warnings: List[str] = field(default_factory=list)
    #: per check (``"pgd"``, ``"dead_gradients"``, ``"eps1"``, ``"randomized"``):
    #: image-forward and image-backward passes it spent, summed over ranks
    forward: Dict[str, int] = field(default_factory=dict)
    backward: Dict[str, int] = field(default_factory=dict)
    #: per check, seconds (the slowest rank's); left out of ``summary()``,
    #: which repeats exactly when the run does
    seconds: Dict[str, float] = field(default_factory=dict)

    def summary(self) -> Dict[str, Any]:
        out = dict(vars(self))
        out.pop("seconds")
        return out


def _correct(model: Callable[[Tensor], Tensor], x: Tensor, y: Tensor, batch_size: int) -> Tensor:
    with torch.no_grad():
        return torch.cat([check_logits(model(b), len(b)).argmax(1) == t
                          for b, t in zip(x.split(batch_size), y.split(batch_size))])


def run_checks(
    model: torch.nn.Module,
    inputs: Tensor,
    labels: Tensor,
    *,
    eps: float,
    norm: Norm,
    cascade: Any,
    batch_size: int = 500,
    eps1_n: int = 100,
    warn: bool = True,
    progress: Optional[bool] = None,
) -> MaskingReport:
    """Runs the gradient-masking checks on ``model`` (in eval mode) and, with
    ``warn``, raises one ``GradientMaskingWarning`` per failed check:

    1. PGD-40 accuracy exceeds the APGD worst case by more than 2 points;
    2. Square (no gradients) fools more than 1% of the points (and at least 2)
       that every gradient attack failed on;
    3. the input gradient of the loss is exactly zero or non-finite for more
       than 5% of the points;
    4. (L-inf) accuracy at eps = 1.0, where any image is reachable, is not 0
       (APGD runs only on the points the cascade left standing: one it
       fooled within ``eps`` is fooled within 1, whose ball holds the
       whole image range);
    5. two forward passes of the same inputs differ (a randomized model).

    ``cascade`` is a ``robust_accuracy`` result on the same inputs. The checks
    draw from torch's generator as it stands (``robust_accuracy`` seeds it
    first).

    Under ``torchrun`` every rank passes the whole set (and the whole set's
    ``cascade``); each rank checks its contiguous share and the counts are
    summed, so every rank gets the whole set's report.
    """
    check_pair(inputs, labels)
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    n = len(inputs)
    report = MaskingReport(n=n)
    if n == 0:
        return report
    start, stop = distributed.shard_bounds(n)
    modes = enter_eval(model)
    try:
        _run_checks(report, model, inputs[start:stop], labels[start:stop], eps=eps, norm=norm, cascade=cascade,
                    batch_size=batch_size, eps1_rows=max(0, min(stop, eps1_n) - start),
                    standing=_standing(cascade, n)[start:stop])
    finally:
        restore_modes(modes)
    if warn:
        for message in report.warnings:
            warnings.warn(message, GradientMaskingWarning, stacklevel=2)
    return report


def _standing(cascade: Any, n: int) -> Tensor:
    """``(n,)`` bool: the points the cascade left correctly classified (all of
    them when the result carries no per-sample mask)."""
    robust = getattr(cascade, "robust", None)
    if isinstance(robust, Tensor) and robust.shape == (n,):
        return robust.detach().to("cpu", torch.bool)
    return torch.ones(n, dtype=torch.bool)


def _pgd_gap(pgd_robust: int, apgd_accuracy: float, n: int) -> float:
    """PGD-40's accuracy minus APGD's, from counts: APGD's accuracy is a
    float32 share (41/50 is 0.81999999...), which would make a gap of exactly
    the threshold (42/50 against 41/50) fire."""
    return (pgd_robust - round(apgd_accuracy * n)) / n


def _run_checks(report: MaskingReport, model: Any, x: Tensor, y: Tensor, *, eps: float, norm: str, cascade: Any,
                batch_size: int, eps1_rows: int, standing: Tensor) -> None:
    """Fills ``report`` from this rank's rows ``x`` (the first ``eps1_rows``
    of them in the eps = 1 check, attacked where ``standing``), the counts
    summed over ranks."""
    counter = PassCounter(model)
    batches = list(zip(x.split(batch_size), y.split(batch_size)))
    gradient = [s for name, s in cascade.attacks.items() if name.startswith("apgd")]
    pgd_robust = 0
    if gradient:
        with counter.charged(report, "pgd") as m:
            for xb, yb in batches:
                adv = pgd(m, xb, yb, eps=eps, alpha=2.5 * eps / 40, steps=40, norm=norm, keep_best=True)
                pgd_robust += int((_correct(m, adv, yb, batch_size) & _correct(m, xb, yb, batch_size)).sum())
    dead = 0
    with counter.charged(report, "dead_gradients") as m:
        for xb, yb in batches:
            penalties = grad_norm_penalty(m, xb, yb, p=1).detach()
            dead += int(((penalties == 0) | ~torch.isfinite(penalties)).sum())
    eps1_correct, eps1_attacked = 0, 0
    if norm == "linf":
        rows = standing[:eps1_rows].nonzero().squeeze(1).to(x.device)
        eps1_attacked = len(rows)
        with counter.charged(report, "eps1") as m:
            for xb, yb in zip(x[rows].split(batch_size), y[rows].split(batch_size)) if len(rows) else ():
                adv = apgd(m, xb, yb, eps=1.0, steps=20, loss="ce")
                eps1_correct += int(_correct(m, adv, yb, batch_size).sum())
    randomized = 0
    with counter.charged(report, "randomized") as m, torch.no_grad():
        if len(x):
            first = x[:batch_size]
            a, b = check_logits(m(first), len(first)), check_logits(m(first), len(first))
            randomized = int(not torch.allclose(a, b, rtol=1e-5, atol=1e-6))
    names = list(report.forward)
    passes = [int(v) for v in distributed.all_sum([*report.forward.values(), *report.backward.values()])]
    report.forward, report.backward = dict(zip(names, passes[:len(names)])), dict(zip(names, passes[len(names):]))
    if distributed.world_size() > 1:
        slowest = distributed.gather_objects(list(report.seconds.values()))
        report.seconds = {name: max(r[i] for r in slowest) for i, name in enumerate(names)}
    n, pgd_robust, dead, eps1_correct, eps1_total, eps1_attacked, randomized = (int(v) for v in distributed.all_sum(
        [len(x), pgd_robust, dead, eps1_correct, eps1_rows if norm == "linf" else 0, eps1_attacked, randomized]))

    if gradient:
        report.apgd_accuracy = gradient[-1].accuracy
        report.pgd_accuracy = pgd_robust / n
        gap = _pgd_gap(pgd_robust, report.apgd_accuracy, n)
        if gap > THRESHOLDS["pgd_over_apgd"]:
            report.warnings.append(
                f"PGD-40 reports {100 * report.pgd_accuracy:.1f}% robust accuracy but APGD only "
                f"{100 * report.apgd_accuracy:.1f}%: plain PGD is being misled (a step-size or loss-scale effect "
                "typical of gradient masking). Report the APGD/cascade number, never the PGD one."
            )
    if "square" in cascade.attacks:
        s = cascade.attacks["square"]
        report.square_only, report.square_attacked = s.fooled, s.attacked
        if s.fooled >= 2 and s.fooled > THRESHOLDS["square_only"] * cascade.n:
            report.warnings.append(
                f"Square, a black-box attack that uses no gradients, fooled {s.fooled} of the {s.attacked} points that "
                "every gradient attack failed on: the gradients are uninformative (masked or obfuscated). Trust only "
                "the cascade's worst case, and check the model with more Square queries and restarts."
            )
    report.dead_gradients = dead / n
    if report.dead_gradients > THRESHOLDS["dead_gradients"]:
        report.warnings.append(
            f"The input gradient of the loss is exactly zero or non-finite for {100 * report.dead_gradients:.1f}% of "
            "the points: gradient attacks cannot move them, so their robustness is not measured (saturated softmax, "
            "rounding or other non-differentiable input processing). Evaluate with Square, or remove the operation "
            "for the attack (BPDA)."
        )
    if eps1_total:
        report.eps1_accuracy = eps1_correct / eps1_total
        report.eps1_attacked = eps1_attacked
        if report.eps1_accuracy > THRESHOLDS["eps1_accuracy"]:
            report.warnings.append(
                f"At eps = 1, where the attacker may choose any image, APGD leaves {100 * report.eps1_accuracy:.1f}% "
                "of the points correctly classified; it should be 0%. The attack is not working on this model "
                "(masked gradients), so smaller-eps numbers overstate its robustness."
            )
    report.randomized = randomized > 0
    if report.randomized:
        report.warnings.append(
            "Two forward passes of the same inputs in eval mode give different logits: the model is randomized, "
            "and attacks on one draw overstate its robustness. Attack the expectation (EOT, several samples per "
            "gradient) and report accuracy over several draws."
        )
