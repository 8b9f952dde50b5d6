"""Robust-accuracy harness: clean, FGSM, PGD, MI-FGSM and DDN, as in Table 1 of
Local Flatness Regularization (eps 0.3, step 0.01, 40 iterations).

A sample counts as robust to an attack when the model classifies both the clean
input and the attack's output correctly. PGD keeps, per sample, the first
misclassified iterate (``keep_best=True``). DDN is a minimal-L2 attack, so it
gets two numbers: ``ddn_median_l2``, the median L2 norm of its successful
perturbations, and ``ddn_linf``, the accuracy after projecting its output onto
the L-inf ball of the evaluation eps (``x + clamp(x_ddn - x, -eps, eps)``); the
table's DDN column is ``ddn_linf``.
"""

from __future__ import annotations

from typing import Any, Dict, Iterable, Mapping, Optional, Sequence, Tuple, Union, get_args

import torch
from torch import Tensor

from lfr_rs._checks import attack_names, check_pair
from lfr_rs._typing import Protocol
from lfr_rs.defaults import PAPER_ALPHA, PAPER_EPS, PAPER_STEPS
from lfr_rs.evaluation.cascade import robust_accuracy
from lfr_rs.evaluation.harness import fraction, run_attacks
from lfr_rs.evaluation.paper import paper_protocol
from lfr_rs.evaluation.protocols import ATTACKS, Attack, default_attacks

__all__ = ["ATTACKS", "Attack", "evaluate", "format_row", "format_table"]


def evaluate(
    model: torch.nn.Module,
    inputs: Tensor,
    labels: Tensor,
    *,
    attacks: Union[str, Iterable[str]] = ATTACKS,
    eps: float = PAPER_EPS,
    alpha: float = PAPER_ALPHA,
    steps: int = PAPER_STEPS,
    ddn_steps: Optional[int] = None,
    batch_size: int = 500,
    progress: Optional[bool] = None,
    protocol: Optional[Protocol] = None,
) -> Dict[str, Any]:
    """Accuracies (fractions) of ``model`` in eval mode on ``inputs``, clean and
    under each attack, batched; ``inputs`` must be on the model's device.
    ``attacks`` is a name or a sequence of distinct names; the model must
    return finite ``(N, C)`` logits and ``labels`` lie in ``[0, C)``.

    ``ddn_steps=None`` runs DDN for ``steps`` iterations too. Returns ``n``, the
    settings, ``clean``, one accuracy per attack (``ddn_linf`` for DDN, plus
    ``ddn_median_l2`` (None when DDN never succeeded) and ``ddn_success_rate``
    over the correctly classified inputs), ``worst``: accuracy against all
    the attacks at once (per sample), and ``passes``: the forward and backward
    passes of each attack.

    ``protocol="paper"`` runs the authors' protocol instead
    (``lfr_rs.evaluation.paper_protocol``: ``attacks``, ``eps``, ``alpha``,
    ``steps`` apply, ``ddn_steps`` defaults to 20), ``"strong"`` the
    AutoAttack-style cascade (``robust_accuracy(...).summary()`` at ``eps``), and
    ``"both"`` returns ``{"paper": ..., "strong": ...}``.

    Under ``torchrun`` every protocol shards the rows itself and every rank
    returns the whole set's result (per-sample outcomes gathered in row
    order, so the DDN median is exact).
    """
    check_pair(inputs, labels)
    if protocol is not None:
        return _by_protocol(model, inputs, labels, protocol, attacks=attacks, eps=eps, alpha=alpha, steps=steps,
                            ddn_steps=ddn_steps, batch_size=batch_size, progress=progress)
    attacks = attack_names(attacks, ATTACKS, allow_empty=True)
    ddn_steps = steps if ddn_steps is None else ddn_steps
    table = default_attacks(eps=eps, alpha=alpha, steps=steps, ddn_steps=ddn_steps)
    run = run_attacks(model, inputs, labels, {a: table[a] for a in attacks}, batch_size=batch_size,
                      progress=progress, desc="eval")
    n, ok = run.n, run.clean
    worst = ok.clone()
    out: Dict[str, Any] = {"n": n, "eps": eps, "alpha": alpha, "steps": steps, "attacks": list(attacks),
                           "clean": fraction(ok, n)}
    for a in attacks:
        robust = ok & run.correct[a]
        worst &= robust
        out["ddn_linf" if a == "ddn" else a] = fraction(robust, n)
    out["worst"] = fraction(worst, n)
    if "ddn" in attacks:
        broken = ok & ~run.values["ddn_raw_correct"]
        found = run.values["ddn_l2"][broken].double()
        out["ddn_steps"] = ddn_steps
        out["ddn_median_l2"] = float(found.quantile(0.5)) if len(found) else None
        out["ddn_success_rate"] = int(broken.sum()) / int(ok.sum()) if int(ok.sum()) else None
    out["passes"] = run.passes()
    if run.world_size > 1:
        out["world_size"] = run.world_size
    return out


def _by_protocol(model: torch.nn.Module, inputs: Tensor, labels: Tensor, protocol: str, *,
                 attacks: Union[str, Iterable[str]],
                 eps: float, alpha: float, steps: int, ddn_steps: Optional[int], batch_size: int,
                 progress: Optional[bool]) -> Dict[str, Any]:
    if protocol not in get_args(Protocol):
        raise ValueError(f"unknown protocol {protocol!r}; expected one of {get_args(Protocol)}")
    out: Dict[str, Any] = {}
    if protocol in ("paper", "both"):
        out["paper"] = paper_protocol(model, inputs, labels, attacks=attacks, eps=eps, alpha=alpha, steps=steps,
                                      ddn_steps=20 if ddn_steps is None else ddn_steps, batch_size=batch_size,
                                      progress=progress)
    if protocol in ("strong", "both"):
        out["strong"] = robust_accuracy(model, inputs, labels, eps=eps, batch_size=batch_size,
                                        progress=progress).summary()
    return out if protocol == "both" else out[protocol]


_COLUMNS: Sequence[Tuple[str, str]] = (
    ("Clean", "clean"), ("FGSM", "fgsm"), ("PGD", "pgd"), ("MI-FGSM", "mifgsm"), ("DDN", "ddn_linf"),
)


def _cell(value: Optional[float]) -> str:
    return "-" if value is None else f"{100 * value:.2f}%"


def format_row(defense: str, results: Mapping[str, Any]) -> str:
    """``| defense | Clean | FGSM | PGD40 | MI-FGSM | DDN |`` (Table 1), in percent;
    ``-`` for attacks not run."""
    return "| " + " | ".join([defense, *(_cell(results.get(key)) for _, key in _COLUMNS)]) + " |"


def format_table(rows: Mapping[str, Mapping[str, Any]]) -> str:
    """Table 1 for ``{defense: results}`` with a header and a note on DDN."""
    first = next(iter(rows.values()), {})
    names = [f"PGD{first.get('steps', '')}" if key == "pgd" else name for name, key in _COLUMNS]
    lines = ["| " + " | ".join(["Defense", *names]) + " |", "|" + "---|" * (len(names) + 1)]
    lines += [format_row(defense, results) for defense, results in rows.items()]
    notes = []
    for defense, r in rows.items():
        if "ddn_linf" in r:
            l2 = "n/a" if r.get("ddn_median_l2") is None else f"{r['ddn_median_l2']:.3f}"
            notes.append(f"{defense}: median L2 of successful DDN perturbations {l2}")
    if notes:
        lines.append(
            f"DDN column: accuracy after projecting DDN's minimal-L2 adversarials onto the L-inf ball "
            f"eps={first.get('eps')} ({first.get('ddn_steps')} DDN steps). " + "; ".join(notes) + "."
        )
    return "\n".join(lines)
