"""``robust_accuracy(attacks="standard")``: AutoAttack's standard L-inf set
(APGD-CE, APGD-T, FAB-T, Square) with AutoAttack's budgets, and FAB / FAB-T
as cascade attacks."""

import pytest
import torch
from torch import nn

from lfr_rs.evaluation import robust_accuracy
from lfr_rs.evaluation.cascade import STANDARD_ATTACKS


def _mlp(classes=10):
    torch.manual_seed(0)
    return nn.Sequential(nn.Flatten(), nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, classes)).eval()


@pytest.fixture
def case():
    model = _mlp()
    x = torch.rand(12, 1, 8, 8, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        y = model(x).argmax(1)
    return model, x, y


def test_standard_is_autoattacks_list_and_budgets(case):
    model, x, y = case
    r = robust_accuracy(model, x, y, eps=0.02, attacks="standard", detect_masking=False)
    assert list(r.attacks) == ["apgd-ce", "apgd-t", "fab-t", "square"] == list(STANDARD_ATTACKS)
    s = r.settings
    assert (s["steps"], s["n_target_classes"], s["queries"], s["restarts"]) == (100, 9, 5000, 1)
    assert s["preset"] == "standard" and "AutoAttack version='standard'" in s["matches"]
    # the same as naming the list with the same budgets
    named = robust_accuracy(model, x, y, eps=0.02, attacks=list(STANDARD_ATTACKS), detect_masking=False)
    assert torch.equal(named.robust, r.robust) and named.worst == r.worst
    assert {k: v.fooled for k, v in named.attacks.items()} == {k: v.fooled for k, v in r.attacks.items()}


@pytest.mark.parametrize("budget", [dict(steps=10), dict(queries=100), dict(n_target_classes=3), dict(restarts=2)])
def test_standard_refuses_other_budgets(case, budget):
    model, x, y = case
    with pytest.raises(ValueError, match="AutoAttack's budgets"):
        robust_accuracy(model, x, y, eps=0.02, attacks="standard", detect_masking=False, **budget)


def test_standard_is_linf_only(case):
    model, x, y = case
    with pytest.raises(ValueError, match="L-inf standard set"):
        robust_accuracy(model, x, y, eps=0.5, norm="l2", attacks="standard", detect_masking=False)
    with pytest.raises(ValueError, match="fab-t: L-inf attacks here"):
        robust_accuracy(model, x, y, eps=0.5, norm="l2", attacks=("apgd-ce", "fab-t"), detect_masking=False)


@pytest.mark.parametrize("name", ["fab", "fab-t"])
def test_fab_in_the_cascade_fools_only_survivors_within_the_ball(case, name):
    model, x, y = case
    r = robust_accuracy(model, x, y, eps=0.15, attacks=("apgd-ce", name), steps=5, n_target_classes=3,
                        detect_masking=False)
    s = r.attacks[name]
    assert s.attacked == len(x) - r.attacks["apgd-ce"].fooled
    assert (r.adversarial - x).abs().max() <= 0.15 + 1e-6 and r.adversarial.min() >= 0 and r.adversarial.max() <= 1
    with torch.no_grad():
        fooled = model(r.adversarial).argmax(1) != y
    assert torch.equal(fooled, ~r.robust)


def test_standard_on_a_three_class_model_drops_apgd_t(case):
    _, x, _ = case
    model = _mlp(classes=3)
    with torch.no_grad():
        y = model(x).argmax(1)
    r = robust_accuracy(model, x, y, eps=0.02, attacks="standard", detect_masking=False)
    assert list(r.attacks) == ["apgd-ce", "fab-t", "square"] and r.settings["n_target_classes"] == 2
