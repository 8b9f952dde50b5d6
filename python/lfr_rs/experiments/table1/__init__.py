"""Table 1 of *Adversarial Defense via Local Flatness Regularization* in one
call: train Standard, AT, TRADES, LLR and LFR (optionally GradNorm) with the
library's training loop, evaluate each under the paper's attacks, and write
``table1.{md,json,csv,png}`` with the paper's rows beside ours.

>>> from lfr_rs.experiments import table1
>>> settings = table1.resolve("quick", "fashion-mnist")
>>> table1.run(settings, "runs/table1")          # resumable: rerun to continue

CLI: ``lfr-rs table1 --preset quick --dataset fashion-mnist --out runs/table1``.
"""

from lfr_rs.experiments.table1.evaluation import COLUMNS, STRONG_AVAILABLE, evaluate_row
from lfr_rs.experiments.table1.presets import PRESETS, TABLE1_METHODS, AttackSettings, Preset, Table1Settings, resolve
from lfr_rs.experiments.table1.report import PAPER_TABLE1, SCHEMA_VERSION
from lfr_rs.experiments.common import method_dir
from lfr_rs.experiments.table1.runner import Table1Result, estimate_seconds, run

__all__ = [
    "COLUMNS",
    "PAPER_TABLE1",
    "PRESETS",
    "SCHEMA_VERSION",
    "STRONG_AVAILABLE",
    "TABLE1_METHODS",
    "AttackSettings",
    "Preset",
    "Table1Result",
    "Table1Settings",
    "estimate_seconds",
    "evaluate_row",
    "method_dir",
    "resolve",
    "run",
]
