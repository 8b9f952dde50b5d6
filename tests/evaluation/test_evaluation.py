"""The evaluation layer: the strong cascade (``robust_accuracy``), the paper's
protocol against its plain-PyTorch reference, the gradient-masking detector,
and the input/label length checks of every entry point."""

import copy
import warnings

import pytest
import torch

import lfr_rs
from lfr_rs.evaluation import evaluate
from lfr_rs.evaluation import AttackStats, RobustAccuracy, paper_protocol
from lfr_rs.losses import make_method as method
from lfr_rs.training import train_epoch
from reference.paper_protocol import paper_protocol as paper_reference

FAST = dict(steps=10, n_target_classes=3, queries=60, batch_size=16)


# --- inputs and labels of different lengths ------------------------------------

def _entry_points(model):
    return {
        "evaluate": lambda x, y: evaluate(model, x, y, attacks=("fgsm",)),
        "evaluate-paper": lambda x, y: evaluate(model, x, y, protocol="paper"),
        "paper_protocol": lambda x, y: paper_protocol(model, x, y),
        "robust_accuracy": lambda x, y: lfr_rs.robust_accuracy(model, x, y, eps=0.1, **FAST),
        "masking_report": lambda x, y: lfr_rs.masking_report(model, x, y, eps=0.1),
        "train_epoch": lambda x, y: train_epoch(
            copy.deepcopy(model), method("standard"), torch.optim.SGD(model.parameters(), lr=0.0), x, y, batch_size=8
        ),
    }


@pytest.mark.parametrize("name", list(_entry_points(None)))
def test_entry_points_reject_inputs_and_labels_of_different_lengths(untrained_cnn, batch, name):
    # Before the fix, evaluate() on 24 inputs and 20 labels reported n=24 and
    # an accuracy over mismatched pairs.
    x, y = batch[0][:24], batch[1][:20]
    with pytest.raises(lfr_rs.ShapeError, match=r"labels must have shape \(N,\) = \(24,\)"):
        _entry_points(untrained_cnn)[name](x, y)


# --- the paper protocol -------------------------------------------------------

def test_paper_protocol_matches_reference_attack_by_attack(trained_cnn, batch):
    x, y = batch[0][:16], batch[1][:16]
    torch.manual_seed(0)
    ours = paper_protocol(trained_cnn, x, y, batch_size=8)
    torch.manual_seed(0)
    want = paper_reference(trained_cnn, x, y, batch_size=8)
    for key in ("clean", "fgsm", "pgd", "mifgsm", "ddn"):
        assert ours[key] == want[key], key
    assert ours["worst"] <= min(ours[k] for k in ("fgsm", "pgd", "mifgsm", "ddn"))
    # evaluate(protocol="paper") is this protocol
    assert evaluate(trained_cnn, x[:4], y[:4], protocol="paper", attacks=("fgsm",))["protocol"] == "paper"


def test_paper_table_labels_the_ddn_column(trained_cnn, batch):
    from lfr_rs.evaluation import format_paper_table

    r = paper_protocol(trained_cnn, batch[0][:8], batch[1][:8], attacks=("ddn",))
    table = format_paper_table({"Standard": r})
    assert "DDN (20 it., no norm bound; still correct)" in table and "| - |" in table


# --- the cascade --------------------------------------------------------------

def test_cascade_runs_each_attack_on_the_survivors_only(trained_cnn, batch):
    x, y = batch[0][:32], batch[1][:32]
    r = lfr_rs.robust_accuracy(trained_cnn, x, y, eps=0.1, detect_masking=False, **FAST)
    assert isinstance(r, RobustAccuracy) and list(r.attacks) == ["apgd-ce", "apgd-t", "square"]
    with torch.no_grad():
        clean_ok = trained_cnn(x).argmax(1) == y
        adv_ok = trained_cnn(r.adversarial).argmax(1) == y
    assert r.clean == clean_ok.float().mean().item()
    previous = int(clean_ok.sum())
    for s in r.attacks.values():
        assert isinstance(s, AttackStats)
        assert s.attacked == previous, "each attack sees exactly the points all earlier ones failed on"
        previous -= s.fooled
        assert s.forward >= s.attacked and s.seconds >= 0
    assert r.attacks["square"].backward == 0 and r.attacks["apgd-ce"].backward > 0
    assert torch.equal(r.robust, clean_ok & adv_ok)
    assert r.worst == r.robust.float().mean().item() == r.attacks["square"].accuracy
    assert (r.adversarial - x).abs().max() <= 0.1 + 1e-6
    assert 0 <= r.adversarial.min() and r.adversarial.max() <= 1
    summary = r.summary()
    assert summary["attacks"]["apgd-t"]["attacked"] == r.attacks["apgd-t"].attacked
    table = lfr_rs.evaluation.format_strong_table("Standard", summary)
    assert "| apgd-t |" in table and f"worst case {100 * r.worst:.2f}%" in table
    # the cascade is at least as strong as each of its attacks alone
    alone = lfr_rs.robust_accuracy(trained_cnn, x, y, eps=0.1, attacks=("apgd-ce",), detect_masking=False, **FAST)
    assert r.worst <= alone.worst


def test_cascade_leaves_mode_and_rng_alone(trained_cnn, batch):
    model = copy.deepcopy(trained_cnn).train()
    state = torch.get_rng_state()
    lfr_rs.robust_accuracy(model, batch[0][:8], batch[1][:8], eps=0.1, attacks=("apgd-ce",), detect_masking=False, **FAST)
    assert model.training and torch.equal(torch.get_rng_state(), state)


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(attacks=("pgd",)), "unknown attack"),
        (dict(attacks=()), "unknown attack"),
        (dict(batch_size=0), "batch_size"),
        (dict(norm="l1"), "norm"),
        (dict(norm="l2", attacks=("square",)), "L-inf"),
    ],
)
def test_cascade_bad_arguments(trained_cnn, batch, kwargs, match):
    with pytest.raises(ValueError, match=match):
        lfr_rs.robust_accuracy(trained_cnn, batch[0][:4], batch[1][:4], eps=0.1, detect_masking=False, **kwargs)


# --- the gradient-masking detector --------------------------------------------

class SaturatedSoftmax(torch.nn.Module):
    """Returns softmax(1e4 * logits) in float32 as its "logits": the gradient vanishes."""

    def __init__(self, net):
        super().__init__()
        self.net = net

    def forward(self, x):
        return torch.softmax(1e4 * self.net(x), dim=1)


class Rounded(torch.nn.Module):
    """Rounds its input to 1/255 steps: zero gradient almost everywhere."""

    def __init__(self, net):
        super().__init__()
        self.net = net

    def forward(self, x):
        return self.net(torch.round(x * 255) / 255)


class Noisy(torch.nn.Module):
    """Adds fresh noise on every call, also in eval mode."""

    def __init__(self, net):
        super().__init__()
        self.net = net

    def forward(self, x):
        return self.net((x + 0.05 * torch.randn_like(x)).clamp(0, 1))


def _report(model, batch, n=32, eps=0.3, **kwargs):
    x, y = batch[0][:n], batch[1][:n]
    cascade = lfr_rs.robust_accuracy(model, x, y, eps=eps, detect_masking=False, **FAST)
    return lfr_rs.masking_report(model, x, y, eps=eps, cascade=cascade, batch_size=16, eps1_n=16, **kwargs)


def test_masking_fires_on_zero_gradients_and_eps1(trained_cnn, batch):
    with pytest.warns(lfr_rs.GradientMaskingWarning) as record:
        report = _report(Rounded(trained_cnn), batch)
    messages = " ".join(str(w.message) for w in record)
    assert report.dead_gradients == 1.0 and "exactly zero" in messages
    assert report.eps1_accuracy > 0 and "eps = 1" in messages


def test_masking_fires_when_square_beats_the_gradient_attacks(trained_cnn, batch):
    with pytest.warns(lfr_rs.GradientMaskingWarning) as record:
        report = _report(SaturatedSoftmax(trained_cnn), batch)
    messages = " ".join(str(w.message) for w in record)
    assert report.square_only >= 2 and "Square" in messages
    assert report.dead_gradients > 0.05


def test_masking_fires_on_a_randomized_model(trained_cnn, batch):
    with pytest.warns(lfr_rs.GradientMaskingWarning) as record:
        report = _report(Noisy(trained_cnn), batch, n=16)
    assert report.randomized and any("randomized" in str(w.message) for w in record)


def test_masking_fires_when_pgd_overstates_apgd(trained_cnn, batch):
    # The rule alone: a cascade whose APGD found every point (accuracy 0)
    # against PGD-40 at a small eps, where most points survive.
    x, y = batch[0][:16], batch[1][:16]
    stats = AttackStats("apgd-ce", accuracy=0.0, fooled=16, attacked=16, seconds=0.0, forward=0, backward=0)
    fake = RobustAccuracy(n=16, eps=0.02, norm="linf", clean=1.0, attacks={"apgd-ce": stats}, worst=0.0,
                          robust=torch.zeros(16, dtype=torch.bool), adversarial=x)
    with pytest.warns(lfr_rs.GradientMaskingWarning, match="PGD-40 reports"):
        report = lfr_rs.masking_report(trained_cnn, x, y, eps=0.02, cascade=fake, eps1_n=4)
    assert report.pgd_accuracy > 0.02


def test_masking_quiet_on_a_standard_model(trained_cnn, batch):
    with warnings.catch_warnings():
        warnings.simplefilter("error", lfr_rs.GradientMaskingWarning)
        report = _report(trained_cnn, batch)
    assert report.warnings == [] and report.dead_gradients == 0 and report.eps1_accuracy == 0
    assert not report.randomized


@pytest.mark.slow
def test_masking_quiet_on_an_lfr_trained_model(mnist):
    from lfr_rs.models import SmallCNN

    images, labels = mnist
    x, y = images[:2000], labels[:2000]
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(3)
        model = SmallCNN(zero_init_last=False)
        opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
        lfr = method("lfr", steps=5, alpha=0.06, hvp="fd")
        for _ in range(2):
            train_epoch(model, lfr, opt, x, y, batch_size=64, order=torch.randperm(len(x)))
    model.eval()
    xt, yt = images[-64:], labels[-64:]
    with warnings.catch_warnings():
        warnings.simplefilter("error", lfr_rs.GradientMaskingWarning)
        r = lfr_rs.robust_accuracy(model, xt, yt, eps=0.3, steps=20, n_target_classes=3, queries=500, batch_size=64)
    assert r.masking.warnings == []


def test_harness_restores_each_submodule_mode(trained_cnn, batch):
    # A wrapper in train mode around a network frozen in eval mode: the harness
    # must put back both flags, not call wrapper.train() (which would switch the
    # shared network to train mode for every later caller).
    x, y = batch[0][:8], batch[1][:8]
    wrapper = Rounded(trained_cnn)
    assert wrapper.training and not trained_cnn.training
    lfr_rs.robust_accuracy(wrapper, x, y, eps=0.1, detect_masking=False, **FAST)
    paper_protocol(wrapper, x, y, eps=0.1, steps=2, ddn_steps=2, progress=False)
    with pytest.warns(lfr_rs.GradientMaskingWarning):
        _report(wrapper, batch, n=8)
    assert wrapper.training and not trained_cnn.training
    assert not any(m.training for m in trained_cnn.modules())
