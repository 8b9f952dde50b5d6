"""TRADES and LLR inner maximizations against plain-PyTorch references (float64, CPU)."""


import pytest
import torch
from torch import nn
from torch.testing import assert_close

import lfr_rs
from reference import inner as ref


@pytest.fixture(scope="module")
def images(images64):
    return images64


@pytest.fixture(params=["default_cnn64", "perturbed_cnn64"])
def cnn(request):
    return request.getfixturevalue(request.param)


def _linf(t):
    return t.flatten(1).abs().amax(1)


def _seeded(seed, fn, *args, **kwargs):
    torch.manual_seed(seed)
    return fn(*args, **kwargs)


# --- TRADES -------------------------------------------------------------------


@pytest.mark.parametrize("steps", [1, 3])
def test_trades_matches_reference(cnn, images, steps):
    x, _ = images
    kwargs = dict(eps=0.1, alpha=0.03, steps=steps)
    got = _seeded(3, lfr_rs.trades_perturb, cnn, x, **kwargs)
    want = _seeded(3, ref.trades_perturb, cnn, x, **kwargs)
    assert got.shape == x.shape and got.dtype == x.dtype and not got.requires_grad
    assert_close(got, want, rtol=0, atol=1e-14)


def test_trades_natural_distribution_keeps_float64():
    """A linear model with tiny logit slopes: the random start moves the
    softmax by ~1e-10, below float32 resolution (~6e-8), so only a float64
    natural distribution gives the reference's ascent direction."""
    gen = torch.Generator().manual_seed(0)
    w = torch.randn(16, 10, generator=gen, dtype=torch.float64)
    b = torch.randn(10, generator=gen, dtype=torch.float64)
    x = torch.rand(8, 16, generator=gen, dtype=torch.float64)

    def model(z):
        return b + 1e-6 * (z @ w)

    kwargs = dict(eps=0.1, alpha=0.01, steps=1)
    got = _seeded(5, lfr_rs.trades_perturb, model, x, **kwargs)
    want = _seeded(5, ref.trades_perturb, model, x, **kwargs)
    assert_close(got, want, rtol=0, atol=1e-14)


def test_trades_stays_in_ball_and_box(default_cnn64, images):
    x, _ = images
    x0 = x.clone()
    eps = 0.1
    adv = lfr_rs.trades_perturb(default_cnn64, x, eps=eps, alpha=0.05, steps=3)
    assert torch.equal(x, x0), "inputs were mutated"
    assert (_linf(adv - x) <= eps + 1e-12).all()
    assert adv.min() >= 0 and adv.max() <= 1
    assert ((adv - x).abs() > eps - 1e-12).any() and (adv == 0).any()


def test_trades_ascent_increases_kl(cnn, images):
    x, _ = images
    start = _seeded(9, lambda: x + 0.001 * torch.randn_like(x))
    adv = _seeded(9, lfr_rs.trades_perturb, cnn, x, eps=0.1, alpha=0.02, steps=5)
    with torch.no_grad():
        kl_start = ref.trades_kl(cnn, x, start)
        kl_adv = ref.trades_kl(cnn, x, adv)
    assert kl_adv > kl_start > 0


# --- LLR ----------------------------------------------------------------------


@pytest.mark.parametrize("random_start", [False, True])
def test_llr_matches_reference(cnn, images, random_start):
    x, y = images
    kwargs = dict(eps=0.1, alpha=0.03, steps=3, random_start=random_start)
    got = _seeded(4, lfr_rs.llr_perturb, cnn, x, y, **kwargs)
    want = _seeded(4, ref.llr_perturb, cnn, x, y, **kwargs)
    assert got.shape == x.shape and got.dtype == x.dtype and not got.requires_grad
    assert_close(got, want, rtol=0, atol=1e-14)


def test_llr_without_random_start_stays_at_x(default_cnn64, images):
    """At delta = 0 the linearity error is exactly 0 and autograd's |.|' (0) = 0,
    so the ascent never leaves x: LLR needs its random start."""
    x, y = images
    adv = lfr_rs.llr_perturb(default_cnn64, x, y, eps=0.1, alpha=0.03, steps=3, random_start=False)
    assert torch.equal(adv, x)


def test_llr_stays_in_ball_and_box(default_cnn64, images):
    x, y = images
    x0 = x.clone()
    eps = 0.1
    adv = lfr_rs.llr_perturb(default_cnn64, x, y, eps=eps, alpha=0.05, steps=3)
    assert torch.equal(x, x0), "inputs were mutated"
    assert (_linf(adv - x) <= eps + 1e-12).all()
    assert adv.min() >= 0 and adv.max() <= 1
    assert ((adv - x).abs() > eps - 1e-12).any() and (adv == 0).any()


def test_llr_ascent_increases_linearity_error(cnn, images):
    x, y = images
    eps = 0.1
    start = _seeded(6, lambda: (x + torch.empty_like(x).uniform_(-eps, eps)).clamp(0, 1))
    adv = _seeded(6, lfr_rs.llr_perturb, cnn, x, y, eps=eps, alpha=0.02, steps=5)
    assert torch.equal(ref.local_linearity(cnn, x, x, y).detach(), torch.zeros(len(x), dtype=x.dtype))
    gamma_start = ref.local_linearity(cnn, x, start, y).detach()
    gamma_adv = ref.local_linearity(cnn, x, adv, y).detach()
    assert (gamma_adv > 0).all()
    assert gamma_adv.sum() > gamma_start.sum()


# --- arguments ----------------------------------------------------------------


@pytest.mark.parametrize("steps", [0, -1])
def test_steps_below_one_raises(default_cnn64, images, steps):
    x, y = images
    with pytest.raises(ValueError, match="steps"):
        lfr_rs.trades_perturb(default_cnn64, x[:1], eps=0.1, alpha=0.02, steps=steps)
    with pytest.raises(ValueError, match="steps"):
        lfr_rs.llr_perturb(default_cnn64, x[:1], y[:1], eps=0.1, alpha=0.02, steps=steps)


def test_empty_batch(default_cnn64):
    x = torch.empty(0, 1, 28, 28, dtype=torch.float64)
    y = torch.empty(0, dtype=torch.long)
    assert lfr_rs.trades_perturb(default_cnn64, x, eps=0.1, alpha=0.02).shape == x.shape
    assert lfr_rs.llr_perturb(default_cnn64, x, y, eps=0.1, alpha=0.02).shape == x.shape


# --- model hygiene: train-mode warning, in-place edits -------------------------

# name -> kernel(model, x, y); the inner maximizations and LFR's probes
INNER = {
    "trades_perturb": lambda m, x, y: lfr_rs.trades_perturb(m, x, eps=0.1, alpha=0.02, steps=2),
    "llr_perturb": lambda m, x, y: lfr_rs.llr_perturb(m, x, y, eps=0.1, alpha=0.02, steps=2),
    "lfr_perturb": lambda m, x, y: lfr_rs.lfr_perturb(m, x, y, eps=0.1, alpha=0.02, steps=2),
    "local_flatness": lambda m, x, y: lfr_rs.local_flatness(m, x, y, eps=0.1, alpha=0.02, steps=2)[0],
    "flatness_grad": lambda m, x, y: lfr_rs.flatness_grad(m, x, y, hvp="fd"),
}


def _stateful_net():
    return nn.Sequential(nn.Conv2d(1, 4, 5, stride=3), nn.BatchNorm2d(4), nn.Dropout(0.1), nn.Flatten(), nn.Linear(256, 10))


@pytest.mark.parametrize("name", INNER)
def test_train_mode_with_batchnorm_or_dropout_warns(batch, name):
    x, y = batch[0][:8], batch[1][:8]
    with pytest.warns(UserWarning, match="train mode with BatchNorm2d, Dropout layers"):
        INNER[name](_stateful_net().train(), x, y)
    INNER[name](_stateful_net().eval(), x, y)  # filterwarnings = error


def test_grad_norm_penalty_runs_in_train_mode_without_warning(batch):
    # it is a training loss: train mode is where it belongs
    x, y = batch[0][:8], batch[1][:8]
    lfr_rs.grad_norm_penalty(_stateful_net().train(), x, y)


@pytest.mark.parametrize("name", [*INNER, "grad_norm_penalty"])
def test_model_editing_its_argument_in_place_leaves_inputs_alone(default_cnn64, images, name):
    x, y = images[0].clone(), images[1]
    x_before = x.clone()

    def vandal(a):
        a.data.mul_(0.5)
        return default_cnn64(a)

    kernel = INNER.get(name, lambda m, x, y: lfr_rs.grad_norm_penalty(m, x, y))
    kernel(vandal, x, y)
    assert torch.equal(x, x_before)
