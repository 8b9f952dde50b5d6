"""The paper's own evaluation protocol: the authors' released MNIST_eval.py,
which Table 1 of *Adversarial Defense via Local Flatness Regularization* follows.

Facts of that script (they differ from ``evaluate``'s defaults):

* PGD: 40 steps of 0.01 in the L-inf ball of 0.3 from a uniform random
  start, cross-entropy summed over the batch, the last iterate;
* "FGSM": a uniform random start, then **one step of 0.3** (a one-iteration
  PGD with random init);
* MI-FGSM: 40 steps of 0.01, **decay 0.1**, no random start;
* DDN: **20 iterations**, init norm 1, gamma 0.05, 256 levels and **no norm
  bound**; its column is the share of samples still correctly classified
  after those 20 iterations;
* a sample counts as robust when the model classifies the attacked input
  correctly; the clean input need not be correct.

Summing or averaging the loss gives the same sign of the gradient, so PGD's
L-inf steps are the same.
"""

from __future__ import annotations

from typing import Any, Dict, Iterable, Mapping, Optional, Union

import torch
from torch import Tensor

from lfr_rs._checks import attack_names, check_pair
from lfr_rs.defaults import PAPER_ALPHA, PAPER_EPS, PAPER_STEPS
from lfr_rs.evaluation.harness import fraction, run_attacks
from lfr_rs.evaluation.protocols import PAPER_ATTACKS, paper_attacks

__all__ = ["PAPER_ATTACKS", "format_paper_table", "paper_protocol"]

DDN_LABEL = "DDN (20 it., no norm bound; still correct)"


def paper_protocol(
    model: torch.nn.Module,
    inputs: Tensor,
    labels: Tensor,
    *,
    attacks: Union[str, Iterable[str]] = PAPER_ATTACKS,
    eps: float = PAPER_EPS,
    alpha: float = PAPER_ALPHA,
    steps: int = PAPER_STEPS,
    ddn_steps: int = 20,
    mifgsm_decay: float = 0.1,
    batch_size: int = 500,
    progress: Optional[bool] = None,
) -> Dict[str, Any]:
    """Accuracies (fractions) of ``model`` in eval mode under the authors'
    protocol (module docstring), batched; attacks draw from torch's generator
    in the order clean, fgsm, pgd, mifgsm, ddn per batch. ``attacks`` is a
    name or a sequence of distinct names; the model must return finite
    ``(N, C)`` logits and ``labels`` lie in ``[0, C)``. ``passes`` holds each
    attack's forward and backward passes. Under ``torchrun`` the
    rows are sharded and every rank returns the whole set's result."""
    check_pair(inputs, labels)
    attacks = attack_names(attacks, PAPER_ATTACKS, allow_empty=True)
    table = paper_attacks(eps=eps, alpha=alpha, steps=steps, ddn_steps=ddn_steps, mifgsm_decay=mifgsm_decay)
    run = run_attacks(model, inputs, labels, {a: table[a] for a in attacks}, batch_size=batch_size,
                      progress=progress, desc="paper protocol")
    n = run.n
    worst = torch.ones_like(run.clean)
    out: Dict[str, Any] = {"protocol": "paper", "n": n, "eps": eps, "alpha": alpha, "steps": steps,
                           "ddn_steps": ddn_steps, "mifgsm_decay": mifgsm_decay, "attacks": list(attacks),
                           "clean": fraction(run.clean, n)}
    for a in attacks:
        out[a] = fraction(run.correct[a], n)
        worst &= run.correct[a]
    out["worst"] = fraction(worst, n)
    out["passes"] = run.passes()
    if run.world_size > 1:
        out["world_size"] = run.world_size
    return out


_COLUMNS = (("Clean", "clean"), ("FGSM", "fgsm"), ("PGD{steps}", "pgd"), ("MI-FGSM", "mifgsm"), (DDN_LABEL, "ddn"))


def format_paper_table(rows: Mapping[str, Mapping[str, Any]]) -> str:
    """Table 1 under the paper's protocol, in percent; ``-`` for attacks not run."""
    first = next(iter(rows.values()), {})
    names = [name.format(steps=first.get("steps", "")) for name, _ in _COLUMNS]
    lines = ["| " + " | ".join(["Defense", *names]) + " |", "|" + "---|" * (len(names) + 1)]
    for defense, r in rows.items():
        cells = ["-" if r.get(key) is None else f"{100 * r[key]:.2f}%" for _, key in _COLUMNS]
        lines.append("| " + " | ".join([defense, *cells]) + " |")
    lines.append(
        f"Paper protocol (authors' MNIST_eval.py): eps={first.get('eps')}; FGSM = random start + one step of eps; "
        f"MI-FGSM decay {first.get('mifgsm_decay')}; a point counts when its attacked input is classified correctly "
        "(clean correctness not required)."
    )
    return "\n".join(lines)
