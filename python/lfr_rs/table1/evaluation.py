"""The one evaluation seam of ``lfr-rs table1``: :func:`evaluate_row`.

Today it composes the existing attack kernels with the paper protocol's
settings. The library's robust-accuracy evaluation (``lfr_rs.robust_accuracy``,
with ``protocol="paper"`` and the strong APGD-CE / APGD-T / Square cascade) is
being built in parallel; once it is merged, this function is the only place to
switch over (and :data:`STRONG_AVAILABLE` becomes true).
"""

from __future__ import annotations

from typing import Any, Callable, Dict, Optional, Tuple

import torch
from torch import Tensor
from tqdm.auto import tqdm

from lfr_rs.attacks import ddn, mifgsm, pgd
from lfr_rs.table1.presets import AttackSettings

__all__ = ["COLUMNS", "STRONG_AVAILABLE", "STRONG_NOTE", "evaluate_row", "protocol_notes"]

# (key, column title) in Table 1's order, plus the strong evaluation the paper did not run
COLUMNS: Tuple[Tuple[str, str], ...] = (
    ("clean", "Clean"), ("fgsm", "FGSM"), ("pgd", "PGD40"), ("mifgsm", "MI-FGSM"), ("ddn", "DDNA"), ("strong", "Strong"),
)
STRONG_AVAILABLE = False
STRONG_NOTE = "not yet available (the APGD-CE / APGD-T / Square cascade lands with the evaluation issue)"


def protocol_notes(a: AttackSettings) -> Dict[str, str]:
    """What each column measured, for the JSON and the Markdown table."""
    return {
        "robust": "share of evaluation images whose attacked version is classified correctly",
        "fgsm": f"uniform start in the {a.eps:g}-ball, then one signed step of {a.eps:g} (lfr_rs.pgd, steps=1)",
        "pgd": f"PGD-{a.steps}: uniform start, {a.steps} signed steps of {a.alpha:g} on the cross-entropy, last iterate",
        "mifgsm": f"MI-FGSM: {a.steps} steps of {a.alpha:g}, decay {a.mifgsm_decay:g}, no random start",
        "ddn": (
            f"DDN: {a.ddn_steps} iterations, init norm {a.ddn_init_norm:g}, gamma {a.ddn_gamma:g}, "
            f"{a.ddn_levels} levels, no norm bound; the column is the share still classified correctly"
        ),
        "strong": STRONG_NOTE,
    }


def _correct(model: Callable[[Tensor], Tensor], x: Tensor, y: Tensor) -> Tensor:
    with torch.no_grad():
        return model(x).argmax(1) == y


def evaluate_row(
    model: torch.nn.Module,
    inputs: Tensor,
    labels: Tensor,
    attack: AttackSettings,
    *,
    progress: Optional[bool] = None,
    desc: str = "eval",
) -> Dict[str, Any]:
    """Table 1's columns for ``model`` (put in eval mode) on ``inputs``, which
    must be on the model's device: fractions robust per attack, ``None`` for
    the strong column until it exists, and ``n``."""
    a = attack
    runs: Dict[str, Callable[[Tensor, Tensor], Tensor]] = {
        "fgsm": lambda x, y: pgd(model, x, y, eps=a.eps, alpha=a.eps, steps=1, random_start=True),
        "pgd": lambda x, y: pgd(model, x, y, eps=a.eps, alpha=a.alpha, steps=a.steps, random_start=True),
        "mifgsm": lambda x, y: mifgsm(model, x, y, eps=a.eps, alpha=a.alpha, steps=a.steps, decay=a.mifgsm_decay),
        "ddn": lambda x, y: ddn(
            model, x, y, steps=a.ddn_steps, gamma=a.ddn_gamma, init_norm=a.ddn_init_norm, levels=a.ddn_levels
        ),
    }
    counts = dict.fromkeys(["clean", *runs], 0)
    model.eval()
    with tqdm(total=len(inputs), unit="img", desc=desc, leave=False, disable=None if progress is None else not progress) as bar:
        for x, y in zip(inputs.split(a.batch_size), labels.split(a.batch_size)):
            counts["clean"] += int(_correct(model, x, y).sum())
            for key, attack_fn in runs.items():
                counts[key] += int(_correct(model, attack_fn(x, y), y).sum())
            bar.update(len(x))
    n = len(inputs)
    row: Dict[str, Any] = {key: counts[key] / n if n else None for key in counts}
    row["strong"] = None
    row["n"] = n
    return row
