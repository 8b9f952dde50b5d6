"""The evaluation protocols as tables of attack callables for
:func:`lfr_rs.evaluation.harness.run_attacks`, each ``(model, x, y) -> x_adv``
(adv_lib's ``run_attack`` tables, with ``functools.partial``).

* :func:`default_attacks`: lfr-rs' harness (``lfr_rs.evaluate``): FGSM, PGD
  keeping each sample's first misclassified iterate, MI-FGSM, and DDN projected
  onto the L-inf ball (with its raw L2 norms and raw outcome as extras);
* :func:`paper_attacks`: the authors' MNIST_eval.py (``paper_protocol``);
* :func:`strong_attacks`: APGD-CE, APGD-DLR, APGD-T, FAB, FAB-T and Square for
  :func:`lfr_rs.robust_accuracy`, which runs its table in the harness's
  cascade mode (each attack only on the survivors of the ones before).
"""

from __future__ import annotations

from functools import partial
from typing import Callable, Dict, Literal, Sequence, Tuple, get_args

import torch
from torch import Tensor

from lfr_rs._checks import check_logits
from lfr_rs.attacks import apgd, ddn, fab, fgsm, mifgsm, pgd, square
from lfr_rs.evaluation.harness import AttackFn

__all__ = ["ATTACKS", "Attack", "PAPER_ATTACKS", "default_attacks", "paper_attacks", "strong_attacks"]

Attack = Literal["fgsm", "pgd", "mifgsm", "ddn"]
ATTACKS: Tuple[Attack, ...] = get_args(Attack)
PAPER_ATTACKS: Tuple[str, ...] = ("fgsm", "pgd", "mifgsm", "ddn")


def _ddn_linf(model: Callable[[Tensor], Tensor], x: Tensor, y: Tensor, *, eps: float,
              steps: int) -> Tuple[Tensor, Dict[str, Tensor]]:
    """DDN's minimal-L2 point projected onto the L-inf ball of ``eps``, with
    the raw perturbation's L2 norm and whether the raw point is still correct."""
    raw = ddn(model, x, y, steps=steps)
    with torch.no_grad():
        raw_correct = check_logits(model(raw), len(raw)).argmax(1) == y
    return x + (raw - x).clamp(-eps, eps), {"ddn_l2": (raw - x).flatten(1).norm(dim=1), "ddn_raw_correct": raw_correct}


def default_attacks(*, eps: float, alpha: float, steps: int, ddn_steps: int) -> Dict[str, AttackFn]:
    return {
        "fgsm": partial(fgsm, eps=eps),
        "pgd": partial(pgd, eps=eps, alpha=alpha, steps=steps, keep_best=True),
        "mifgsm": partial(mifgsm, eps=eps, alpha=alpha, steps=steps),
        "ddn": partial(_ddn_linf, eps=eps, steps=ddn_steps),
    }


def paper_attacks(*, eps: float, alpha: float, steps: int, ddn_steps: int, mifgsm_decay: float) -> Dict[str, AttackFn]:
    return {
        "fgsm": partial(pgd, eps=eps, alpha=eps, steps=1, random_start=True),
        "pgd": partial(pgd, eps=eps, alpha=alpha, steps=steps, random_start=True),
        "mifgsm": partial(mifgsm, eps=eps, alpha=alpha, steps=steps, decay=mifgsm_decay),
        "ddn": partial(ddn, steps=ddn_steps, init_norm=1.0, gamma=0.05, levels=256),
    }


def strong_attacks(names: Sequence[str], *, eps: float, norm: str, steps: int, n_target_classes: int, queries: int,
                   restarts: int) -> Dict[str, AttackFn]:
    table = {
        "apgd-ce": partial(apgd, eps=eps, steps=steps, norm=norm, loss="ce", restarts=restarts),
        "apgd-dlr": partial(apgd, eps=eps, steps=steps, norm=norm, loss="dlr", restarts=restarts),
        "apgd-t": partial(apgd, eps=eps, steps=steps, norm=norm, loss="dlr", targeted=True,
                          n_target_classes=n_target_classes, restarts=restarts),
        "fab": partial(fab, eps=eps, steps=steps, restarts=restarts),
        "fab-t": partial(fab, eps=eps, steps=steps, restarts=restarts, targeted=True, n_target_classes=n_target_classes),
        "square": partial(square, eps=eps, queries=queries, restarts=restarts),
    }
    return {a: table[a] for a in names}
