"""Robustness evaluation: the AutoAttack-style cascade (``robust_accuracy``),
the paper's protocol (``paper_protocol``) and the gradient-masking detector
(``masking_report``, ``GradientMaskingWarning``)."""

from lfr_rs.evaluation.cascade import (CASCADE_ATTACKS, AttackStats, RobustAccuracy, format_strong_table, masking_report,
                                      robust_accuracy)
from lfr_rs.evaluation.checks import GradientMaskingWarning, MaskingReport
from lfr_rs.evaluation.default import evaluate, format_row, format_table
from lfr_rs.evaluation.harness import HarnessRun, run_attacks
from lfr_rs.evaluation.protocols import ATTACKS, Attack
from lfr_rs.evaluation.paper import PAPER_ATTACKS, format_paper_table, paper_protocol

__all__ = [
    "ATTACKS",
    "Attack",
    "HarnessRun",
    "evaluate",
    "format_row",
    "format_table",
    "run_attacks",
    "AttackStats",
    "CASCADE_ATTACKS",
    "GradientMaskingWarning",
    "MaskingReport",
    "PAPER_ATTACKS",
    "RobustAccuracy",
    "format_paper_table",
    "format_strong_table",
    "masking_report",
    "paper_protocol",
    "robust_accuracy",
]
