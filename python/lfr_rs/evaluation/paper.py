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

from typing import Any, Callable, Dict, Iterable, Mapping, Optional, Tuple, Union

import torch
from torch import Tensor
from tqdm.auto import tqdm

from lfr_rs._modes import enter_eval, restore_modes
from lfr_rs._checks import attack_names, check_logits, check_pair
from lfr_rs.attacks import ddn, mifgsm, pgd

__all__ = ["PAPER_ATTACKS", "format_paper_table", "paper_protocol"]

PAPER_ATTACKS: Tuple[str, ...] = ("fgsm", "pgd", "mifgsm", "ddn")
DDN_LABEL = "DDN (20 it., no norm bound; still correct)"


def paper_protocol(
    model: torch.nn.Module,
    inputs: Tensor,
    labels: Tensor,
    *,
    attacks: Union[str, Iterable[str]] = PAPER_ATTACKS,
    eps: float = 0.3,
    alpha: float = 0.01,
    steps: int = 40,
    ddn_steps: int = 20,
    mifgsm_decay: float = 0.1,
    batch_size: int = 500,
    progress: Optional[bool] = None,
) -> Dict[str, Any]:
    """Accuracies (fractions) of ``model`` in eval mode under the authors'
    protocol (module docstring), batched; attacks draw from torch's generator
    in the order clean, fgsm, pgd, mifgsm, ddn per batch. ``attacks`` is a
    name or a sequence of distinct names; the model must return finite
    ``(N, C)`` logits and ``labels`` lie in ``[0, C)``."""
    check_pair(inputs, labels)
    attacks = attack_names(attacks, PAPER_ATTACKS, allow_empty=True)
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    runs: Dict[str, Callable[[Tensor, Tensor], Tensor]] = {
        "fgsm": lambda x, y: pgd(model, x, y, eps=eps, alpha=eps, steps=1, random_start=True),
        "pgd": lambda x, y: pgd(model, x, y, eps=eps, alpha=alpha, steps=steps, random_start=True),
        "mifgsm": lambda x, y: mifgsm(model, x, y, eps=eps, alpha=alpha, steps=steps, decay=mifgsm_decay),
        "ddn": lambda x, y: ddn(model, x, y, steps=ddn_steps, init_norm=1.0, gamma=0.05, levels=256),
    }
    counts = dict.fromkeys(["clean", *attacks, "worst"], 0)
    modes = enter_eval(model)
    try:
        with tqdm(total=len(inputs), unit="img", desc="paper protocol",
                  disable=None if progress is None else not progress) as bar:
            for x, y in zip(inputs.split(batch_size), labels.split(batch_size)):
                with torch.no_grad():
                    counts["clean"] += int((check_logits(model(x), len(x), y).argmax(1) == y).sum())
                worst = torch.ones_like(y, dtype=torch.bool)
                for attack in attacks:
                    adv = runs[attack](x, y)
                    with torch.no_grad():
                        correct = check_logits(model(adv), len(adv)).argmax(1) == y
                    counts[attack] += int(correct.sum())
                    worst &= correct
                counts["worst"] += int(worst.sum())
                bar.update(len(x))
    finally:
        restore_modes(modes)
    n = len(inputs)
    out: Dict[str, Any] = {"protocol": "paper", "n": n, "eps": eps, "alpha": alpha, "steps": steps,
                           "ddn_steps": ddn_steps, "mifgsm_decay": mifgsm_decay, "attacks": list(attacks)}
    out.update({k: (v / n if n else None) for k, v in counts.items()})
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
