"""The cost-robustness frontier: Standard, AT, TRADES, LLR and LFR trained at
several inner-step budgets with ``lfr-rs table1``'s recipe on the same data,
each evaluated with the strong cascade (:func:`lfr_rs.robust_accuracy`), and
strong robust accuracy set against training wall-clock.

>>> from lfr_rs.experiments import frontier
>>> settings = frontier.resolve("quick", "fashion-mnist", inner_steps=(2, 5, 10))
>>> frontier.run(settings, "runs/frontier")          # resumable: rerun to continue

Writes ``frontier.json``, ``frontier.md`` and ``frontier.png``
(:func:`lfr_rs.plots.frontier`). CLI: ``lfr-rs frontier --preset quick
--dataset fashion-mnist --out runs/frontier``.
"""

from lfr_rs.experiments.frontier.points import (
    DEFAULT_INNER_STEPS,
    FRONTIER_METHODS,
    FrontierSettings,
    Point,
    pareto,
    resolve,
)
from lfr_rs.experiments.frontier.report import SCHEMA_VERSION, budget_sentences
from lfr_rs.experiments.frontier.runner import FrontierResult, estimate_seconds, point_dir, run, table1_points

__all__ = [
    "DEFAULT_INNER_STEPS",
    "FRONTIER_METHODS",
    "SCHEMA_VERSION",
    "FrontierResult",
    "FrontierSettings",
    "Point",
    "budget_sentences",
    "estimate_seconds",
    "pareto",
    "point_dir",
    "resolve",
    "run",
    "table1_points",
]
