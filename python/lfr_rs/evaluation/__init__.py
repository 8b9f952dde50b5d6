"""Robustness evaluation: the AutoAttack-style cascade (``robust_accuracy``),
the paper's protocol (``paper_protocol``) and the gradient-masking detector
(``masking_report``, ``GradientMaskingWarning``)."""

from lfr_rs.evaluation.cascade import (CASCADE_ATTACKS, AttackStats, RobustAccuracy, format_strong_table, masking_report,
                                      robust_accuracy)
from lfr_rs.evaluation.checks import GradientMaskingWarning, MaskingReport
from lfr_rs.evaluation.paper import PAPER_ATTACKS, format_paper_table, paper_protocol

__all__ = [
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
