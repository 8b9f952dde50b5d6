"""The training objectives of ``lfr_rs.losses`` against plain-PyTorch references,
in float64 on CPU with a given perturbation."""

import copy
import dataclasses
from typing import get_args

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from reference.lfr import authors_lfr_perturb
from reference.llr import llr_loss
from reference.trades import trades_loss

import lfr_rs
from lfr_rs.losses import AT, LFR, LLR, METHODS, GradNorm, Method, Standard, Trades, make_method, method_options
from lfr_rs.models import SmallCNN

TIGHT = {"rtol": 1e-10, "atol": 1e-12}


@pytest.fixture(params=[False, True], ids=["relu", "smooth"])
def model(request):
    """A small float64 convnet with dropout, in train mode."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(3)
        act = nn.Softplus() if request.param else nn.ReLU()
        net = nn.Sequential(nn.Conv2d(1, 4, 3), act, nn.Flatten(), nn.Dropout(0.3), nn.Linear(4 * 6 * 6, 10))
        return net.double().train()


@pytest.fixture
def data():
    g = torch.Generator().manual_seed(4)
    x = torch.rand(6, 1, 8, 8, generator=g, dtype=torch.float64)
    y = torch.randint(0, 10, (6,), generator=g)
    x_adv = (x + 0.3 * (2 * torch.rand(x.shape, generator=g, dtype=torch.float64) - 1)).clamp(0, 1)
    return x, y, x_adv


def _seeded(fn, seed=7):
    torch.manual_seed(seed)
    return fn()


def _param_grads(model, loss):
    return torch.autograd.grad(loss, [p for p in model.parameters()])


def test_registry_matches_literal():
    assert tuple(METHODS) == get_args(Method)
    assert all(METHODS[name].name == name for name in METHODS)


def test_make_method_errors_name_the_accepted_values():
    with pytest.raises(ValueError, match="expected one of standard, at"):
        make_method("madry")
    with pytest.raises(TypeError, match="accepted: eps, alpha, steps, beta"):
        make_method("trades", lam=1.0)
    assert make_method("lfr", lam=0.5) == LFR(lam=0.5)
    assert method_options("llr") == {"eps": 0.3, "alpha": 0.01, "steps": 40, "lam": 4.0, "mu": 3.0}


def test_methods_are_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        LFR().lam = 1.0  # type: ignore[misc]


@pytest.mark.parametrize("cls", [AT, Trades, LLR, LFR])
def test_loss_needs_the_perturbation(cls, model, data):
    x, y, _ = data
    with pytest.raises(ValueError, match="needs x_adv"):
        cls().loss(model, x, y)


def test_standard_is_cross_entropy(model, data):
    x, y, _ = data
    torch.testing.assert_close(
        _seeded(lambda: Standard()(model, x, y)), _seeded(lambda: F.cross_entropy(model(x), y)), **TIGHT
    )


def test_at_is_cross_entropy_at_the_pgd_point(model, data):
    x, y, _ = data
    model.eval()
    method = AT(steps=3)
    x_adv = _seeded(lambda: method.perturb(model, x, y))
    expected = _seeded(lambda: lfr_rs.pgd(model, x, y, eps=0.3, alpha=0.01, steps=3))
    torch.testing.assert_close(x_adv, expected, rtol=0, atol=0)
    torch.testing.assert_close(method.loss(model, x, y, x_adv), F.cross_entropy(model(x_adv), y), **TIGHT)
    torch.testing.assert_close(_seeded(lambda: method(model, x, y)), F.cross_entropy(model(x_adv), y), **TIGHT)


@pytest.mark.parametrize("beta", [1.0, 6.0])
def test_trades_matches_official_loss(model, data, beta):
    x, y, x_adv = data
    ours = _seeded(lambda: Trades(beta=beta).loss(model, x, y, x_adv))
    ref = _seeded(lambda: trades_loss(model, x, x_adv, y, beta=beta))
    torch.testing.assert_close(ours, ref, **TIGHT)
    # same dropout masks in the same call order, so the parameter gradients agree too
    g_ours = _param_grads(model, _seeded(lambda: Trades(beta=beta).loss(model, x, y, x_adv)))
    g_ref = _param_grads(model, _seeded(lambda: trades_loss(model, x, x_adv, y, beta=beta)))
    torch.testing.assert_close(g_ours, g_ref, **TIGHT)


def test_trades_perturb_is_the_kernel(model, data):
    x, y, _ = data
    model.eval()
    ours = _seeded(lambda: Trades(steps=3).perturb(model, x, y))
    kernel = _seeded(lambda: lfr_rs.trades_perturb(model, x, eps=0.3, alpha=0.01, steps=3))
    torch.testing.assert_close(ours, kernel, rtol=0, atol=0)


@pytest.mark.parametrize(("lam", "mu"), [(4.0, 3.0), (0.5, 0.0)])
def test_llr_matches_reference(model, data, lam, mu):
    x, y, x_adv = data
    model.eval()  # the reference runs one sample at a time, so no dropout
    ours = LLR(lam=lam, mu=mu).loss(model, x, y, x_adv)
    ref = llr_loss(model, x, x_adv, y, lam=lam, mu=mu)
    torch.testing.assert_close(ours, ref, **TIGHT)
    torch.testing.assert_close(_param_grads(model, ours), _param_grads(model, ref), **TIGHT)


def test_llr_perturb_is_the_kernel(model, data):
    x, y, _ = data
    model.eval()
    ours = _seeded(lambda: LLR(steps=3).perturb(model, x, y))
    kernel = _seeded(lambda: lfr_rs.llr_perturb(model, x, y, eps=0.3, alpha=0.01, steps=3))
    torch.testing.assert_close(ours, kernel, rtol=0, atol=0)


def _input_grad_l1(model, x, y):
    x = x.detach().requires_grad_(True)
    loss = F.cross_entropy(model(x), y, reduction="sum")
    (g,) = torch.autograd.grad(loss, x, create_graph=True)
    return g.flatten(1).abs().sum(1)


def test_gradnorm_is_ce_plus_l1_input_gradient(model, data):
    x, y, _ = data
    model.eval()
    ours = GradNorm(lam=0.3).loss(model, x, y)
    ref = F.cross_entropy(model(x), y) + 0.3 * _input_grad_l1(model, x, y).mean()
    torch.testing.assert_close(ours, ref, **TIGHT)
    torch.testing.assert_close(_param_grads(model, ours), _param_grads(model, ref), **TIGHT)


def test_lfr_loss_penalises_the_gradient_at_x_adv(model, data):
    x, y, x_adv = data
    model.eval()
    ours = LFR(lam=0.02).loss(model, x, y, x_adv)
    ref = F.cross_entropy(model(x), y) + 0.02 * _input_grad_l1(model, x_adv, y).mean()
    torch.testing.assert_close(ours, ref, **TIGHT)
    torch.testing.assert_close(_param_grads(model, ours), _param_grads(model, ref), **TIGHT)


def test_lfr_perturb_is_the_kernel(model, data):
    x, y, _ = data
    model.eval()
    method = LFR(steps=2, hvp="fd", fd_step=0.02)
    ours = _seeded(lambda: method.perturb(model, x, y))
    kernel = _seeded(lambda: lfr_rs.lfr_perturb(model, x, y, eps=0.3, alpha=0.01, steps=2, hvp="fd", fd_step=0.02))
    torch.testing.assert_close(ours, kernel, rtol=0, atol=0)


def test_lfr_defense_passes_the_start_through(cnn, batch):
    """The normal start reaches the kernel: the authors' inner maximization, on 6 MNIST images."""
    x, y = batch[0][:6].double(), batch[1][:6].clone()
    method = LFR(eps=0.05, alpha=0.02, steps=2, start="normal", start_std=0.001)
    got = _seeded(lambda: method.perturb(cnn, x, y), seed=4)
    want = _seeded(lambda: authors_lfr_perturb(cnn, x, y, eps=0.05, alpha=0.02, steps=2), seed=4)
    torch.testing.assert_close(got, want, rtol=0, atol=1e-14)
    model = copy.deepcopy(cnn)
    loss = method.loss(model, x, y, got)
    loss.backward()
    assert all(p.grad is not None for p in model.parameters())


def test_gradnorm_is_lfr_with_eps_zero(model, data):
    """Theorem 2: the first-order defense is LFR with eps = 0."""
    x, y, _ = data
    lfr = LFR(eps=0.0, steps=3, lam=0.1)
    x_prime = lfr.perturb(model.eval(), x, y)
    torch.testing.assert_close(x_prime, x, rtol=0, atol=0)
    model.train()
    ours = _seeded(lambda: lfr(model, x, y, x_prime))
    first_order = _seeded(lambda: GradNorm(lam=0.1)(model, x, y))
    torch.testing.assert_close(ours, first_order, **TIGHT)


@pytest.mark.parametrize("name", list(METHODS))
def test_every_method_trains(name):
    """Scalar loss, finite gradients for every parameter, in float32 as in training."""
    x = torch.rand(4, 1, 28, 28)
    y = torch.arange(4)
    model = SmallCNN(zero_init_last=False)
    options = {"steps": 2} if "steps" in method_options(name) else {}
    method = make_method(name, **options)
    x_adv = method.perturb(model.eval(), x, y)
    loss = method.loss(model.train(), x, y, x_adv)
    assert loss.shape == ()
    loss.backward()
    for p in model.parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all()
