"""The one evaluation seam of ``lfr-rs table1``: :func:`evaluate_row`.

The paper's columns come from :func:`lfr_rs.evaluation.paper_protocol` (the
authors' MNIST_eval.py), the "Strong" column from
:func:`lfr_rs.robust_accuracy` (APGD-CE, APGD-T, Square, each on the survivors
of the ones before), which the paper did not run.
"""

from __future__ import annotations

from typing import Any, Dict, Optional, Tuple

import torch
from torch import Tensor

from lfr_rs.evaluation import RobustAccuracy, paper_protocol, robust_accuracy
from lfr_rs.experiments.table1.presets import AttackSettings

__all__ = ["COLUMNS", "STRONG_AVAILABLE", "STRONG_NOTE", "evaluate_row", "protocol_notes", "strong_evaluation"]

# (key, column title) in Table 1's order, plus the strong evaluation the paper did not run
COLUMNS: Tuple[Tuple[str, str], ...] = (
    ("clean", "Clean"), ("fgsm", "FGSM"), ("pgd", "PGD40"), ("mifgsm", "MI-FGSM"), ("ddn", "DDNA"), ("strong", "Strong"),
)
STRONG_AVAILABLE = True
STRONG_NOTE = "worst case of the APGD-CE / APGD-T / Square cascade (lfr_rs.robust_accuracy)"


def protocol_notes(a: AttackSettings) -> Dict[str, str]:
    """What each column measured, for the JSON and the Markdown table."""
    return {
        "robust": "share of evaluation images whose attacked version is classified correctly",
        "fgsm": f"uniform start in the {a.eps:g}-ball, then one signed step of {a.eps:g}",
        "pgd": f"PGD-{a.steps}: uniform start, {a.steps} signed steps of {a.alpha:g} on the summed cross-entropy, last iterate",
        "mifgsm": f"MI-FGSM: {a.steps} steps of {a.alpha:g}, decay {a.mifgsm_decay:g}, no random start",
        "ddn": (
            f"DDN: {a.ddn_steps} iterations, init norm {a.ddn_init_norm:g}, gamma {a.ddn_gamma:g}, "
            f"{a.ddn_levels} levels, no norm bound; the column is the share still classified correctly"
        ),
        "strong": (
            f"{STRONG_NOTE}: APGD {a.strong_steps} steps, APGD-T over {a.strong_targets} targets, Square "
            f"{a.strong_queries} queries, seed 0; robust = clean input correct and no attack fooled it"
        ),
    }


def strong_evaluation(
    model: torch.nn.Module, inputs: Tensor, labels: Tensor, attack: AttackSettings, *, progress: Optional[bool] = None,
) -> RobustAccuracy:
    """The "Strong" column: :func:`lfr_rs.robust_accuracy` at the settings' ``strong_*`` budgets."""
    a = attack
    return robust_accuracy(
        model, inputs, labels, eps=a.eps, batch_size=a.batch_size, steps=a.strong_steps,
        n_target_classes=a.strong_targets, queries=a.strong_queries, detect_masking=False, progress=progress,
    )


def evaluate_row(
    model: torch.nn.Module,
    inputs: Tensor,
    labels: Tensor,
    attack: AttackSettings,
    *,
    progress: Optional[bool] = None,
    desc: str = "eval",
) -> Dict[str, Any]:
    """Table 1's columns for ``model`` (evaluated in eval mode) on ``inputs``,
    which must be on the model's device: fractions robust per attack and ``n``."""
    a = attack
    paper = paper_protocol(
        model, inputs, labels, eps=a.eps, alpha=a.alpha, steps=a.steps, ddn_steps=a.ddn_steps,
        mifgsm_decay=a.mifgsm_decay, batch_size=a.batch_size, progress=progress,
    )
    strong = strong_evaluation(model, inputs, labels, a, progress=progress)
    row: Dict[str, Any] = {key: paper.get(key) for key, _ in COLUMNS if key != "strong"}
    row["strong"] = strong.worst if strong.n else None
    row["n"] = len(inputs)
    return row
