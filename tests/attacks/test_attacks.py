"""Attacks: parity with torchattacks 3.5.1 and the DDN oracle, a linear model
with closed-form answers (adv_lib's trick), and properties every kernel keeps."""

import copy
import warnings
from dataclasses import dataclass

import pytest
import torch
import torchattacks
from reference.ddn import ddn as ddn_reference
from torch import nn

import lfr_rs

# --- parity with torchattacks ------------------------------------------------

# name -> (ours(model, x, y, targeted), torchattacks attack(model))
PARITY = {
    "fgsm": (
        lambda m, x, y, t: lfr_rs.fgsm(m, x, y, eps=0.1, targeted=t),
        lambda m: torchattacks.FGSM(m, eps=0.1),
    ),
    "pgd": (
        lambda m, x, y, t: lfr_rs.pgd(m, x, y, eps=0.2, alpha=0.02, steps=5, random_start=False, targeted=t),
        lambda m: torchattacks.PGD(m, eps=0.2, alpha=0.02, steps=5, random_start=False),
    ),
    "pgd-random-start": (
        lambda m, x, y, t: lfr_rs.pgd(m, x, y, eps=0.2, alpha=0.02, steps=5, targeted=t),
        lambda m: torchattacks.PGD(m, eps=0.2, alpha=0.02, steps=5, random_start=True),
    ),
    "pgdl2": (
        lambda m, x, y, t: lfr_rs.pgd(
            m, x, y, eps=2.0, alpha=0.25, steps=5, random_start=False, norm="l2", targeted=t
        ),
        lambda m: torchattacks.PGDL2(m, eps=2.0, alpha=0.25, steps=5, random_start=False),
    ),
    "pgdl2-random-start": (
        lambda m, x, y, t: lfr_rs.pgd(m, x, y, eps=2.0, alpha=0.25, steps=5, norm="l2", targeted=t),
        lambda m: torchattacks.PGDL2(m, eps=2.0, alpha=0.25, steps=5, random_start=True),
    ),
    "mifgsm": (
        lambda m, x, y, t: lfr_rs.mifgsm(m, x, y, eps=0.2, alpha=0.02, steps=5, decay=1.0, targeted=t),
        lambda m: torchattacks.MIFGSM(m, eps=0.2, alpha=0.02, steps=5, decay=1.0),
    ),
}


@pytest.mark.parametrize("targeted", [False, True], ids=["untargeted", "targeted"])
@pytest.mark.parametrize("name", PARITY)
@pytest.mark.parametrize("model_name", ["untrained_cnn", "trained_cnn"])
def test_matches_torchattacks(request, batch, model_name, name, targeted):
    model = request.getfixturevalue(model_name)
    x, y = batch[0][:32], batch[1][:32]
    if targeted:
        y = (y + 1) % 10
    ours, theirs = PARITY[name]
    attack = theirs(model)
    if targeted:
        attack.set_mode_targeted_by_label(quiet=True)
    torch.manual_seed(7)
    got = ours(model, x, y, targeted)
    torch.manual_seed(7)
    want = attack(x, y)
    assert not torch.equal(got, x)
    torch.testing.assert_close(got, want, rtol=0, atol=1e-6)


@pytest.mark.slow
@pytest.mark.parametrize("norm", ["linf", "l2"])
def test_matches_torchattacks_madry_mnist_settings(trained_cnn, mnist, norm):
    x, y = mnist[0][2000:2512], mnist[1][2000:2512]
    if norm == "linf":
        attack = torchattacks.PGD(trained_cnn, eps=0.3, alpha=0.01, steps=40)
        kwargs = dict(eps=0.3, alpha=0.01)
    else:
        attack = torchattacks.PGDL2(trained_cnn, eps=2.0, alpha=0.1, steps=40)
        kwargs = dict(eps=2.0, alpha=0.1)
    torch.manual_seed(11)
    got = lfr_rs.pgd(trained_cnn, x, y, steps=40, norm=norm, **kwargs)
    torch.manual_seed(11)
    torch.testing.assert_close(got, attack(x, y), rtol=0, atol=1e-6)


def margin_pgd(model, x, y, *, eps, alpha, steps, targeted):
    """torchattacks' PGD loop (no random start) ascending the Carlini-Wagner
    logit margin ``max_{j != y} z_j - z_y`` (negated when targeted)."""
    adv = x.clone()
    for _ in range(steps):
        adv.requires_grad_(True)
        logits = model(adv)
        true = logits.gather(1, y[:, None])[:, 0]
        others = logits.masked_fill(nn.functional.one_hot(y, logits.shape[1]).bool(), float("-inf")).amax(1)
        value = (true - others) if targeted else (others - true)
        (grad,) = torch.autograd.grad(value.mean(), adv)
        adv = adv.detach() + alpha * grad.sign()
        adv = (x + (adv - x).clamp(-eps, eps)).clamp(0, 1)
    return adv


@pytest.mark.parametrize("targeted", [False, True], ids=["untargeted", "targeted"])
def test_pgd_margin_loss_matches_reference_loop(trained_cnn, batch, targeted):
    x, y = batch[0][:32], batch[1][:32]
    if targeted:
        y = (y + 1) % 10
    kwargs = dict(eps=0.2, alpha=0.02, steps=5, targeted=targeted)
    got = lfr_rs.pgd(trained_cnn, x, y, loss="margin", random_start=False, **kwargs)
    torch.testing.assert_close(got, margin_pgd(trained_cnn, x, y, **kwargs), rtol=0, atol=1e-6)


# --- DDN against the plain-PyTorch oracle -----------------------------------


@pytest.mark.parametrize("targeted", [False, True], ids=["untargeted", "targeted"])
@pytest.mark.parametrize("levels", [256, None], ids=["quantized", "continuous"])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_ddn_matches_reference(trained_cnn, batch, dtype, levels, targeted):
    model = copy.deepcopy(trained_cnn).to(dtype)
    x, y = batch[0][:16].to(dtype), batch[1][:16]
    if targeted:
        y = (y + 3) % 10
    kwargs = dict(steps=15, gamma=0.05, init_norm=1.0, levels=levels, targeted=targeted)
    got = lfr_rs.ddn(model, x, y, **kwargs)
    want = ddn_reference(model, x, y, **kwargs)
    assert not torch.equal(got, x)
    atol = 1e-12 if dtype == torch.float64 else 1e-5
    torch.testing.assert_close(got, want, rtol=0, atol=atol)


def test_ddn_zero_gradient_steps_at_random_like_reference():
    # Below 0.5 the thresholded inputs give a zero gradient, so the first step
    # is a seeded random direction.
    model = nn.Sequential(nn.Flatten(), nn.Threshold(0.5, 0.0), nn.Linear(64, 10)).double()
    x = 0.4 * torch.rand(8, 1, 8, 8, dtype=torch.float64)
    y = model(x).argmax(1)
    torch.manual_seed(5)
    got = lfr_rs.ddn(model, x, y, steps=10)
    torch.manual_seed(5)
    want = ddn_reference(model, x, y, steps=10)
    torch.manual_seed(6)
    other_seed = lfr_rs.ddn(model, x, y, steps=10)
    assert torch.isfinite(got).all()
    torch.testing.assert_close(got, want, rtol=0, atol=1e-12)
    assert not torch.equal(got, other_seed)


def test_ddn_with_one_step_returns_inputs(trained_cnn, batch):
    x, y = batch[0][:32], batch[1][:32]
    assert torch.equal(lfr_rs.ddn(trained_cnn, x, y, steps=1), x)


@pytest.mark.parametrize("targeted", [False, True], ids=["untargeted", "targeted"])
def test_ddn_returns_adversarials_or_inputs(trained_cnn, batch, targeted):
    x, y = batch[0][:32], batch[1][:32]
    labels = (y + 1) % 10 if targeted else y
    adv = lfr_rs.ddn(trained_cnn, x, labels, steps=30, targeted=targeted)
    pred = trained_cnn(adv).argmax(1)
    success = pred == labels if targeted else pred != labels
    unchanged = (adv == x).flatten(1).all(1)
    assert (success | unchanged).all()
    assert success.float().mean() > 0.8
    if not targeted:
        already_wrong = trained_cnn(x).argmax(1) != y
        assert unchanged[already_wrong].all()
    # adversarials found after the first step lie on the 1/255 grid
    grid = adv[success & ~unchanged] * 255
    torch.testing.assert_close(grid, grid.round(), rtol=0, atol=1e-3)


# --- a linear model whose minimal perturbations are known --------------------


@dataclass
class LinearProblem:
    """Two-class ``f(x) = W x + b`` on flattened inputs, and inputs classified
    with logit margin ``m``: the smallest flip is ``m / ||w_wrong - w_true||_1``
    in L-inf and ``m / ||w_wrong - w_true||_2`` in L2, along ``sign(dw)`` and
    ``dw`` respectively. Inputs sit far enough inside [0, 1] that clipping
    never changes the answer."""

    model: nn.Module
    inputs: torch.Tensor
    labels: torch.Tensor
    direction: torch.Tensor  # per sample w_wrong - w_true, flattened
    margin: float

    def radius(self, norm):
        p = 1 if norm == "linf" else 2
        return self.margin / self.direction[0].norm(p=p).item()


@pytest.fixture
def linear():
    dim, n = 64, 16
    dw = (0.5 + torch.rand(dim, dtype=torch.float64)) * torch.where(torch.rand(dim) < 0.5, -1.0, 1.0)
    w0 = torch.randn(dim, dtype=torch.float64)
    model = nn.Sequential(nn.Flatten(), nn.Linear(dim, 2)).double().requires_grad_(False)
    model[1].weight.copy_(torch.stack([w0, w0 + dw]))
    model[1].bias.copy_(torch.tensor([0.0, -0.5 * dw.sum().item()]))
    margin = 0.1 * dw.norm(p=1).item()
    labels = torch.arange(n) % 2
    sign = 1.0 - 2.0 * labels.double()  # +1 where the true class is 0
    x0 = 0.45 + 0.1 * torch.rand(n, dim, dtype=torch.float64)
    # move each input along dw until its margin is exactly `margin`
    shift = (-sign * margin - (x0 @ dw + model[1].bias[1])) / dw.dot(dw)
    x = x0 + shift[:, None] * dw
    direction = sign[:, None] * dw
    problem = LinearProblem(model, x.view(n, 1, 8, 8), labels, direction.expand(n, dim), margin)
    logits = model(problem.inputs)
    margins = logits.gather(1, labels[:, None]) - logits.gather(1, 1 - labels[:, None])
    torch.testing.assert_close(margins, torch.full((n, 1), margin, dtype=torch.float64))
    l2_step = 1.1 * problem.radius("l2") * direction / dw.norm()
    for delta in (1.1 * problem.radius("linf") * direction.sign(), l2_step):
        assert ((x + delta).min() > 0.05) and ((x + delta).max() < 0.95)
    return problem


@pytest.mark.parametrize("targeted", [False, True], ids=["untargeted", "targeted"])
@pytest.mark.parametrize("loss", ["ce", "margin"])
@pytest.mark.parametrize("random_start", [False, True], ids=["origin", "random-start"])
@pytest.mark.parametrize("norm", ["linf", "l2"])
def test_pgd_flips_exactly_beyond_the_minimal_radius(linear, norm, random_start, loss, targeted):
    r = linear.radius(norm)
    labels = 1 - linear.labels if targeted else linear.labels
    kwargs = dict(steps=30, random_start=random_start, norm=norm, loss=loss, targeted=targeted)
    above = lfr_rs.pgd(linear.model, linear.inputs, labels, eps=1.01 * r, alpha=r / 4, **kwargs)
    below = lfr_rs.pgd(linear.model, linear.inputs, labels, eps=0.99 * r, alpha=r / 4, **kwargs)
    assert (linear.model(above).argmax(1) != linear.labels).all()
    assert (linear.model(below).argmax(1) == linear.labels).all()


@pytest.mark.parametrize("targeted", [False, True], ids=["untargeted", "targeted"])
def test_fgsm_and_mifgsm_step_along_the_weight_difference(linear, targeted):
    labels = 1 - linear.labels if targeted else linear.labels
    eps = 0.05
    want = (linear.inputs + eps * linear.direction.sign().view_as(linear.inputs)).clamp(0, 1)
    fgsm = lfr_rs.fgsm(linear.model, linear.inputs, labels, eps=eps, targeted=targeted)
    mifgsm = lfr_rs.mifgsm(linear.model, linear.inputs, labels, eps=eps, alpha=eps / 4, steps=8, targeted=targeted)
    torch.testing.assert_close(fgsm, want, rtol=0, atol=1e-12)
    torch.testing.assert_close(mifgsm, want, rtol=0, atol=1e-12)


@pytest.mark.parametrize("targeted", [False, True], ids=["untargeted", "targeted"])
def test_ddn_finds_the_minimal_l2_perturbation(linear, targeted):
    labels = 1 - linear.labels if targeted else linear.labels
    adv = lfr_rs.ddn(linear.model, linear.inputs, labels, steps=200, levels=None, targeted=targeted)
    assert (linear.model(adv).argmax(1) != linear.labels).all()
    l2 = (adv - linear.inputs).flatten(1).norm(dim=1)
    r = linear.radius("l2")
    assert (l2 >= r * (1 - 1e-9)).all()
    assert (l2 <= r * 1.03).all(), (l2 / r).max()


# --- properties shared by every kernel ---------------------------------------

# name -> (attack(model, x, y, **kw), (norm, radius) of its threat ball or None)
ATTACKS = {
    "fgsm": (lambda m, x, y, **kw: lfr_rs.fgsm(m, x, y, eps=0.1, **kw), ("linf", 0.1)),
    "pgd-linf": (lambda m, x, y, **kw: lfr_rs.pgd(m, x, y, eps=0.1, alpha=0.03, steps=5, **kw), ("linf", 0.1)),
    "pgd-l2": (
        lambda m, x, y, **kw: lfr_rs.pgd(m, x, y, eps=1.5, alpha=0.5, steps=5, norm="l2", **kw),
        ("l2", 1.5),
    ),
    "pgd-margin": (
        lambda m, x, y, **kw: lfr_rs.pgd(m, x, y, eps=0.1, alpha=0.03, steps=5, loss="margin", **kw),
        ("linf", 0.1),
    ),
    "pgd-keep-best": (
        lambda m, x, y, **kw: lfr_rs.pgd(m, x, y, eps=0.1, alpha=0.03, steps=5, restarts=2, keep_best=True, **kw),
        ("linf", 0.1),
    ),
    "pgd-l2-keep-best": (
        lambda m, x, y, **kw: lfr_rs.pgd(
            m, x, y, eps=1.5, alpha=0.5, steps=5, norm="l2", restarts=2, keep_best=True, **kw
        ),
        ("l2", 1.5),
    ),
    "mifgsm": (lambda m, x, y, **kw: lfr_rs.mifgsm(m, x, y, eps=0.1, alpha=0.03, steps=5, **kw), ("linf", 0.1)),
    "ddn": (lambda m, x, y, **kw: lfr_rs.ddn(m, x, y, steps=10, **kw), None),
}

all_attacks = pytest.mark.parametrize("name", ATTACKS)
targeted_or_not = pytest.mark.parametrize("targeted", [False, True], ids=["untargeted", "targeted"])


def assert_valid_adversarial(adv, x, ball):
    assert adv.shape == x.shape and adv.dtype == x.dtype and adv.device == x.device
    assert adv.min() >= 0 and adv.max() <= 1
    if ball is not None:
        norm, eps = ball
        if norm == "linf":
            assert (adv - x).abs().max() <= eps + 1e-6
        else:
            assert (adv - x).flatten(1).norm(dim=1).max() <= eps + 1e-5


@targeted_or_not
@all_attacks
def test_output_in_threat_ball_and_box(trained_cnn, batch, name, targeted):
    attack, ball = ATTACKS[name]
    x, y = batch[0][:16], batch[1][:16]
    adv = attack(trained_cnn, x, (y + 1) % 10 if targeted else y, targeted=targeted)
    assert_valid_adversarial(adv, x, ball)
    assert not torch.equal(adv, x)


@all_attacks
def test_float64_in_float64_out(trained_cnn, batch, name):
    attack, ball = ATTACKS[name]
    model = copy.deepcopy(trained_cnn).double()
    x, y = batch[0][:8].double(), batch[1][:8]
    assert_valid_adversarial(attack(model, x, y), x, ball)


@all_attacks
def test_inputs_and_labels_not_mutated(trained_cnn, batch, name):
    x, y = batch[0][:8].clone(), batch[1][:8].clone()
    x_before, y_before = x.clone(), y.clone()
    ATTACKS[name][0](trained_cnn, x, y)
    assert torch.equal(x, x_before) and torch.equal(y, y_before)


@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
@all_attacks
def test_model_mode_untouched(trained_cnn, batch, name, training):
    model = copy.deepcopy(trained_cnn).train(training)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "the model is in train mode", UserWarning)
        ATTACKS[name][0](model, batch[0][:8], batch[1][:8])
    assert all(m.training is training for m in model.modules())


def stateful_net():
    return nn.Sequential(nn.Conv2d(1, 4, 5, stride=3), nn.BatchNorm2d(4), nn.Dropout(0.1), nn.Flatten(), nn.Linear(256, 10))


@all_attacks
def test_train_mode_with_batchnorm_or_dropout_warns_once(batch, name):
    model = stateful_net().train()
    x, y = batch[0][:8], batch[1][:8]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("default")
        for _ in range(3):
            ATTACKS[name][0](model, x, y)
    assert len(caught) == 1, [str(w.message) for w in caught]
    assert caught[0].category is UserWarning and caught[0].filename == __file__
    assert "BatchNorm2d, Dropout" in str(caught[0].message) and "model.eval()" in str(caught[0].message)
    assert model.training and model[1].num_batches_tracked > 0  # the mode is still left as it is


@all_attacks
def test_eval_mode_or_stateless_model_does_not_warn(batch, name):
    x, y = batch[0][:8], batch[1][:8]
    stateless = nn.Sequential(nn.Flatten(), nn.Linear(784, 10)).train()
    half_eval = stateful_net().train()
    half_eval[1].eval()
    half_eval[2].eval()
    for model in (stateful_net().eval(), stateless, half_eval):
        ATTACKS[name][0](model, x, y)  # filterwarnings = error


@all_attacks
def test_model_editing_its_argument_in_place_leaves_inputs_alone(trained_cnn, batch, name):
    x, y = batch[0][:8].clone(), batch[1][:8]
    x_before = x.clone()

    def vandal(a):
        out = trained_cnn(a)
        a.data.mul_(0.5)
        return out

    ATTACKS[name][0](vandal, x, y)
    assert torch.equal(x, x_before)


@all_attacks
def test_output_is_a_new_detached_tensor(untrained_cnn, batch, name):
    model = copy.deepcopy(untrained_cnn)  # parameters require grad
    x = batch[0][:8].clone().requires_grad_(True)
    adv = ATTACKS[name][0](model, x, batch[1][:8])
    assert not adv.requires_grad and adv.grad_fn is None
    assert adv.data_ptr() != x.data_ptr()
    assert x.grad is None
    assert all(p.grad is None for p in model.parameters())


@all_attacks
def test_same_result_under_no_grad_and_channels_last(trained_cnn, batch, name):
    attack = ATTACKS[name][0]
    x, y = batch[0][:8], batch[1][:8]
    torch.manual_seed(3)
    want = attack(trained_cnn, x, y)
    torch.manual_seed(3)
    with torch.no_grad():
        under_no_grad = attack(trained_cnn, x, y)
    torch.manual_seed(3)
    channels_last = attack(trained_cnn, x.contiguous(memory_format=torch.channels_last), y)
    assert torch.equal(under_no_grad, want)
    torch.testing.assert_close(channels_last, want, rtol=0, atol=1e-6)


@all_attacks
def test_empty_batch_gives_empty_output(trained_cnn, name):
    x, y = torch.empty(0, 1, 28, 28), torch.empty(0, dtype=torch.long)
    adv = ATTACKS[name][0](trained_cnn, x, y)
    assert adv.shape == x.shape and adv.dtype == x.dtype


def test_random_start_follows_torch_manual_seed(trained_cnn, batch):
    x, y = batch[0][:8], batch[1][:8]
    runs = []
    for seed in (1, 1, 2):
        torch.manual_seed(seed)
        runs.append(lfr_rs.pgd(trained_cnn, x, y, eps=0.1, alpha=0.01, steps=1))
    assert torch.equal(runs[0], runs[1])
    assert not torch.equal(runs[0], runs[2])


# name -> (attack(model, x, target) strong enough to reach most targets)
TARGETED = {
    "fgsm": lambda m, x, t: lfr_rs.fgsm(m, x, t, eps=0.15, targeted=True),
    "pgd-linf": lambda m, x, t: lfr_rs.pgd(m, x, t, eps=0.3, alpha=0.05, steps=20, targeted=True),
    "pgd-l2": lambda m, x, t: lfr_rs.pgd(m, x, t, eps=4.0, alpha=0.5, steps=20, norm="l2", targeted=True),
    "pgd-margin": lambda m, x, t: lfr_rs.pgd(
        m, x, t, eps=0.3, alpha=0.05, steps=20, loss="margin", targeted=True
    ),
    "mifgsm": lambda m, x, t: lfr_rs.mifgsm(m, x, t, eps=0.3, alpha=0.05, steps=20, targeted=True),
    "ddn": lambda m, x, t: lfr_rs.ddn(m, x, t, steps=50, targeted=True),
}


@pytest.mark.parametrize("name", TARGETED)
def test_targeted_moves_toward_target(trained_cnn, batch, name):
    x, y = batch[0][:32], batch[1][:32]
    target = (y + 5) % 10
    adv = TARGETED[name](trained_cnn, x, target)
    with torch.no_grad():
        before = trained_cnn(x).softmax(1).gather(1, target[:, None])
        after = trained_cnn(adv).softmax(1).gather(1, target[:, None])
    assert after.mean() > before.mean() + 0.05
    if name != "fgsm":
        assert (trained_cnn(adv).argmax(1) == target).float().mean() >= 0.6


# --- keep_best and restarts ----------------------------------------------------


class CountingModel(nn.Module):
    """Forwards to ``model`` and counts calls and samples."""

    def __init__(self, model):
        super().__init__()
        self.model = model
        self.calls = 0
        self.samples = 0

    def forward(self, x):
        self.calls += 1
        self.samples += len(x)
        return self.model(x)


def fooled(model, adv, y):
    with torch.no_grad():
        return model(adv).argmax(1) != y


@pytest.mark.parametrize("norm,eps,alpha", [("linf", 0.1, 0.02), ("l2", 1.5, 0.3)])
def test_keep_best_fools_every_sample_plain_pgd_fools(trained_cnn, batch, norm, eps, alpha):
    x, y = batch[0][:64], batch[1][:64]
    plain_model, best_model = CountingModel(trained_cnn), CountingModel(trained_cnn)
    kwargs = dict(eps=eps, alpha=alpha, steps=10, norm=norm)
    torch.manual_seed(4)
    plain = lfr_rs.pgd(plain_model, x, y, **kwargs)
    torch.manual_seed(4)
    best = lfr_rs.pgd(best_model, x, y, keep_best=True, **kwargs)
    fooled_plain, fooled_best = fooled(trained_cnn, plain, y), fooled(trained_cnn, best, y)
    assert 0 < fooled_plain.sum() < len(y)
    assert not (fooled_plain & ~fooled_best).any()
    assert fooled_best.sum() >= fooled_plain.sum()
    assert best_model.samples < plain_model.samples
    assert_valid_adversarial(best, x, (norm, eps))


def test_keep_best_returns_the_first_fooling_iterate(trained_cnn, batch):
    x, y = batch[0][:64], batch[1][:64]
    kwargs = dict(eps=0.15, alpha=0.05, random_start=False)
    one_step = lfr_rs.pgd(trained_cnn, x, y, steps=1, **kwargs)
    best = lfr_rs.pgd(trained_cnn, x, y, steps=6, keep_best=True, **kwargs)
    at_start = fooled(trained_cnn, x, y)
    after_one = fooled(trained_cnn, one_step, y) & ~at_start
    assert at_start.any() and after_one.any()
    assert torch.equal(best[at_start], x[at_start])
    assert torch.equal(best[after_one], one_step[after_one])


@pytest.mark.parametrize("keep_best", [False, True], ids=["last-iterate", "keep-best"])
def test_restarts_never_do_worse_than_one_run(trained_cnn, batch, keep_best):
    x, y = batch[0][:64], batch[1][:64]
    kwargs = dict(eps=0.1, alpha=0.02, steps=5, keep_best=keep_best)
    torch.manual_seed(9)
    once = fooled(trained_cnn, lfr_rs.pgd(trained_cnn, x, y, restarts=1, **kwargs), y)
    torch.manual_seed(9)
    adv = lfr_rs.pgd(trained_cnn, x, y, restarts=3, **kwargs)
    thrice = fooled(trained_cnn, adv, y)
    assert_valid_adversarial(adv, x, ("linf", 0.1))
    assert not (once & ~thrice).any()
    assert thrice.sum() > once.sum()
