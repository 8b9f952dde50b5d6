"""What the gradient-masking checks spend: passes and seconds per check, and
the eps = 1 check run only on the points the cascade left standing."""

import warnings

import pytest
import torch

import lfr_rs
from test_evaluation import FAST, Rounded


def _cascade_and_report(model, batch, n=32, eps=0.3, eps1_n=16):
    x, y = batch[0][:n], batch[1][:n]
    cascade = lfr_rs.robust_accuracy(model, x, y, eps=eps, detect_masking=False, **FAST)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", lfr_rs.GradientMaskingWarning)
        report = lfr_rs.masking_report(model, x, y, eps=eps, cascade=cascade, batch_size=16, eps1_n=eps1_n)
    return cascade, report


def test_each_check_reports_its_passes(trained_cnn, batch):
    _, report = _cascade_and_report(trained_cnn, batch, n=32)
    assert set(report.forward) == set(report.backward) == set(report.seconds) == {
        "pgd", "dead_gradients", "eps1", "randomized"}
    # one forward and one backward per point for the input gradient; two forwards of the first batch, no backward
    assert report.forward["dead_gradients"] == report.backward["dead_gradients"] == 32
    assert (report.forward["randomized"], report.backward["randomized"]) == (32, 0)
    assert report.backward["pgd"] > 0 and report.forward["pgd"] >= report.backward["pgd"]
    assert all(s >= 0 for s in report.seconds.values())


def test_eps1_check_skips_points_the_cascade_fooled(trained_cnn, batch):
    # eps 0.3 on the standard model: the cascade fools every point, so the
    # eps = 1 answer is known (fooled within 0.3, fooled within 1) and costs nothing
    cascade, report = _cascade_and_report(trained_cnn, batch)
    assert cascade.worst == 0.0
    assert report.eps1_attacked == 0 and report.forward["eps1"] == report.backward["eps1"] == 0
    assert report.eps1_accuracy == 0.0


def test_eps1_check_attacks_the_survivors_among_its_points(trained_cnn, batch):
    # rounding the input hides the gradient: the cascade leaves points standing
    model = Rounded(trained_cnn)
    cascade, report = _cascade_and_report(model, batch, eps=0.1, eps1_n=16)
    standing = int(cascade.robust[:16].sum())
    assert standing > 0 and report.eps1_attacked == standing
    assert report.backward["eps1"] > 0
    # the survivors the attack still cannot move keep the accuracy above 0, so the check still fires
    assert 0 < report.eps1_accuracy <= standing / 16


def test_summary_leaves_seconds_out_and_repeats(trained_cnn, batch):
    runs = [_cascade_and_report(trained_cnn, batch, n=16)[1].summary() for _ in range(2)]
    assert "seconds" not in runs[0] and runs[0]["forward"]["dead_gradients"] == 16
    assert runs[0] == runs[1]


def test_eps1_points_beyond_the_set_are_not_counted(trained_cnn, batch):
    cascade, report = _cascade_and_report(Rounded(trained_cnn), batch, n=24, eps=0.1, eps1_n=100)
    assert report.eps1_attacked == int(cascade.robust.sum())
    assert report.eps1_accuracy * 24 == pytest.approx(round(report.eps1_accuracy * 24))


def test_pgd_rule_compares_counts_not_float32_shares():
    from lfr_rs.evaluation.checks import THRESHOLDS, _pgd_gap
    apgd = float(torch.tensor(41, dtype=torch.float32) / 50)  # the share robust_accuracy stores: 0.8199999...
    assert 42 / 50 - apgd > THRESHOLDS["pgd_over_apgd"]  # subtracting shares would fire on one point in 50
    assert _pgd_gap(42, apgd, 50) == THRESHOLDS["pgd_over_apgd"] == 0.02
    assert _pgd_gap(43, apgd, 50) > THRESHOLDS["pgd_over_apgd"]


def test_pgd_rule_fires_above_the_threshold_only(trained_cnn, batch):
    x, y = batch[0][:50], batch[1][:50]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", lfr_rs.GradientMaskingWarning)
        probe = lfr_rs.masking_report(trained_cnn, x, y, eps=0.02, cascade=_fake(x, 1.0), eps1_n=0)
    k = round(probe.pgd_accuracy * 50)
    assert k >= 2
    with warnings.catch_warnings():
        warnings.simplefilter("error", lfr_rs.GradientMaskingWarning)
        quiet = lfr_rs.masking_report(trained_cnn, x, y, eps=0.02, cascade=_fake(x, float(torch.tensor(k - 1.0) / 50)),
                                      eps1_n=0)
    assert quiet.pgd_accuracy == k / 50 and quiet.warnings == []
    with pytest.warns(lfr_rs.GradientMaskingWarning, match="PGD-40 reports"):
        lfr_rs.masking_report(trained_cnn, x, y, eps=0.02, cascade=_fake(x, float(torch.tensor(k - 2.0) / 50)), eps1_n=0)


def _fake(x, accuracy):
    """A cascade result whose only gradient attack left ``accuracy`` of the points standing."""
    from lfr_rs.evaluation import AttackStats, RobustAccuracy
    n = len(x)
    stats = AttackStats("apgd-ce", accuracy=accuracy, fooled=0, attacked=n, seconds=0.0, forward=0, backward=0)
    return RobustAccuracy(n=n, eps=0.02, norm="linf", clean=1.0, attacks={"apgd-ce": stats}, worst=accuracy,
                          robust=torch.ones(n, dtype=torch.bool), adversarial=x)
