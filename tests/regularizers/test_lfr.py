"""LFR inner maximization (eq. 3), its start modes, its ascent direction and the
local flatness (Definition 1), against plain-PyTorch references (tests/reference/lfr.py,
with a transcription of the authors' LFR_loss.py) in float64 on CPU."""

import math

import pytest
import torch
import torch.nn.functional as F
from torch.testing import assert_close

import lfr_rs
from lfr_rs.models import SmallCNN
from reference import lfr as ref
from reference.penalty import input_grad
from regularizer_checks import (
    assert_in_ball_and_box,
    assert_inputs_survive_in_place_edit,
    assert_train_mode_warns,
    linf,
    seeded,
)


@pytest.fixture(scope="module")
def smooth_cnn():
    """The softplus / average-pooling twin of SmallCNN: C^2, so finite differences converge."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(3)
        return SmallCNN(zero_init_last=False, smooth=True).double().eval()


@pytest.fixture(params=["default_cnn64", "smooth_cnn"])
def relu_or_smooth_cnn(request):
    return request.getfixturevalue(request.param)


@pytest.fixture(scope="module")
def images6(batch):
    """6 float64 MNIST test images with their labels (the start-mode tests)."""
    x, y = batch
    return x[:6].double(), y[:6].clone()


def _cosines(a, b):
    return F.cosine_similarity(a.flatten(1), b.flatten(1), dim=1)


# --- ascent direction ---------------------------------------------------------


def test_flatness_grad_exact_matches_double_backward(relu_or_smooth_cnn, images64):
    x, y = images64
    got = lfr_rs.flatness_grad(relu_or_smooth_cnn, x, y, hvp="exact")
    want = ref.flatness_grad(relu_or_smooth_cnn, x, y, hvp="exact")
    assert got.shape == x.shape and got.dtype == x.dtype and not got.requires_grad
    assert want.abs().amax() > 0
    assert_close(got, want, rtol=1e-10, atol=1e-15)
    # the same vector as the Hessian-vector product H(x) sign(g(x))
    v = input_grad(relu_or_smooth_cnn, x, y).sign()
    _, hv = torch.autograd.functional.hvp(
        lambda z: F.cross_entropy(relu_or_smooth_cnn(z), y, reduction="sum"), x, v
    )
    assert_close(got, hv, rtol=1e-8, atol=1e-14)


@pytest.mark.parametrize("fd_step", [1e-3, 1e-2])
def test_flatness_grad_fd_matches_forward_difference(relu_or_smooth_cnn, images64, fd_step):
    x, y = images64
    got = lfr_rs.flatness_grad(relu_or_smooth_cnn, x, y, hvp="fd", fd_step=fd_step)
    want = ref.flatness_grad(relu_or_smooth_cnn, x, y, hvp="fd", fd_step=fd_step)
    assert_close(got, want, rtol=1e-8, atol=1e-12)


@pytest.mark.parametrize("fd_step", [1e-4, 1e-3, 1e-2])
def test_fd_direction_agrees_with_exact_on_smooth_model(smooth_cnn, images64, fd_step):
    x, y = images64
    exact = lfr_rs.flatness_grad(smooth_cnn, x, y, hvp="exact")
    fd = lfr_rs.flatness_grad(smooth_cnn, x, y, hvp="fd", fd_step=fd_step)
    cos = _cosines(fd, exact)
    assert (cos > 0.99).all(), cos


def test_fd_direction_on_relu_model_is_unreliable(default_cnn64, images64):
    """Documents a fact, asserts nothing about it: on the piecewise-linear
    SmallCNN the forward difference crosses ReLU / max-pool kinks, where the
    input gradient jumps by O(1), so (g(x + h v) - g(x)) / h is dominated by
    those jumps and its cosine with the exact H sign(g) is near 0 or negative
    (measured: |cos| < 0.05 for h in 1e-6..1e-3, about -0.2 at h = 1e-2).
    Use hvp="exact" for ReLU networks, or a smooth model with hvp="fd"."""
    x, y = images64
    exact = lfr_rs.flatness_grad(default_cnn64, x, y, hvp="exact")
    for h in [1e-6, 1e-5, 1e-4, 1e-3, 1e-2]:
        cos = _cosines(lfr_rs.flatness_grad(default_cnn64, x, y, hvp="fd", fd_step=h), exact)
        assert torch.isfinite(cos).all()
        print(f"ReLU SmallCNN, fd_step={h:g}: cosine(fd, exact) per sample = {[round(c, 3) for c in cos.tolist()]}")


# --- inner maximization -------------------------------------------------------

EPS, ALPHA = 0.05, 0.03  # the ball's faces are reached at the second step


@pytest.mark.parametrize(
    "model, hvp", [("default_cnn64", "exact"), ("smooth_cnn", "exact"), ("smooth_cnn", "fd")], ids=lambda v: v
)
def test_lfr_perturb_matches_reference_step_by_step(request, images64, model, hvp):
    cnn = request.getfixturevalue(model)
    x, y = images64
    previous = x
    for steps in range(1, 4):
        kwargs = dict(eps=EPS, alpha=ALPHA, steps=steps, random_start=False, hvp=hvp, fd_step=1e-3)
        got = lfr_rs.lfr_perturb(cnn, x, y, **kwargs)
        want = ref.lfr_perturb(cnn, x, y, **kwargs)
        assert_close(got, want, rtol=0, atol=1e-14, msg=lambda m: f"step {steps}: {m}")
        assert not torch.equal(got, previous), f"step {steps} did not move"
        previous = got
    assert (linf(previous - x) > EPS - 1e-12).all(), "the projection was never exercised"


@pytest.mark.parametrize("hvp", ["exact", "fd"])
def test_lfr_perturb_random_start_matches_reference(default_cnn64, images64, hvp):
    x, y = images64
    kwargs = dict(eps=EPS, alpha=ALPHA, steps=2, random_start=True, hvp=hvp, fd_step=1e-3)
    torch.manual_seed(11)
    got = lfr_rs.lfr_perturb(default_cnn64, x, y, **kwargs)
    torch.manual_seed(11)
    want = ref.lfr_perturb(default_cnn64, x, y, **kwargs)
    assert_close(got, want, rtol=0, atol=1e-14)


@pytest.mark.parametrize("random_start", [False, True])
def test_lfr_perturb_stays_in_ball_and_box(default_cnn64, images64, random_start):
    x, y = images64
    x0 = x.clone()
    eps = 0.3
    adv = lfr_rs.lfr_perturb(default_cnn64, x, y, eps=eps, alpha=0.1, steps=3, random_start=random_start)
    assert adv.shape == x.shape and adv.dtype == x.dtype and not adv.requires_grad
    assert_in_ball_and_box(adv, x, x0, eps)
    assert ((adv == 0) | (adv == 1)).any()


def test_local_flatness_matches_reference(default_cnn64, images64):
    x, y = images64
    kwargs = dict(eps=0.1, alpha=0.02, steps=3)
    torch.manual_seed(5)
    adv, gamma = lfr_rs.local_flatness(default_cnn64, x, y, **kwargs)
    torch.manual_seed(5)
    want_adv, want_gamma = ref.local_flatness(default_cnn64, x, y, **kwargs)
    assert_close(adv, want_adv, rtol=0, atol=1e-14)
    assert gamma.shape == (len(x),) and gamma.dtype == x.dtype and not gamma.requires_grad
    assert_close(gamma, want_gamma, rtol=1e-10, atol=0)
    assert_close(gamma, lfr_rs.grad_norm_penalty(default_cnn64, adv, y, p=1.0).detach(), rtol=1e-10, atol=0)


def test_ascent_increases_flatness(default_cnn64, images64):
    """gamma_C(x, eps) >= ||g(x)||_1: the ascent finds a less flat point than x."""
    x, y = images64
    clean = lfr_rs.grad_norm_penalty(default_cnn64, x, y, p=1.0).detach()
    _, gamma = lfr_rs.local_flatness(default_cnn64, x, y, eps=0.1, alpha=0.03, steps=5)
    assert gamma.mean() > clean.mean()
    assert (gamma > clean).float().mean() >= 0.75, (gamma, clean)


@pytest.mark.parametrize("hvp", ["exact", "fd"])
@pytest.mark.parametrize("random_start", [False, True])
def test_theorem2_eps_zero_is_the_first_order_penalty(default_cnn64, images64, hvp, random_start):
    """Theorem 2: with eps = 0 the LFR point is x itself, so the LFR term is the
    first-order penalty ||d_x L(x)||_1."""
    x, y = images64
    adv = lfr_rs.lfr_perturb(default_cnn64, x, y, eps=0.0, alpha=0.05, steps=2, random_start=random_start, hvp=hvp)
    assert torch.equal(adv, x)
    at_adv = lfr_rs.grad_norm_penalty(default_cnn64, adv, y).detach()
    at_x = lfr_rs.grad_norm_penalty(default_cnn64, x, y).detach()
    assert torch.equal(at_adv, at_x)
    adv, gamma = lfr_rs.local_flatness(
        default_cnn64, x, y, eps=0.0, alpha=0.05, steps=1, random_start=random_start, hvp=hvp
    )
    assert torch.equal(adv, x) and torch.equal(gamma, at_x)


# --- start modes, against the authors' inner maximization -----------------------


@pytest.mark.parametrize("steps", [1, 3, 8])
def test_normal_start_matches_authors_inner_maximization(cnn, images6, steps):
    x, y = images6
    kwargs = dict(eps=0.05, alpha=0.02, steps=steps)
    got = seeded(7, lfr_rs.lfr_perturb, cnn, x, y, start="normal", start_std=0.001, **kwargs)
    want = seeded(7, ref.authors_lfr_perturb, cnn, x, y, **kwargs)
    assert got.shape == x.shape and got.dtype == x.dtype and not got.requires_grad
    assert_close(got, want, rtol=0, atol=1e-14)
    assert not torch.equal(got, x)
    if steps == 8:
        assert (linf(got - x) > 0.05 - 1e-12).all(), "the projection was never exercised"


def test_normal_start_is_clamped_gaussian(cnn, images6):
    """alpha = 0: the result is the start, clamp(x + std * N(0, I), 0, 1)."""
    x, y = images6
    got = seeded(3, lfr_rs.lfr_perturb, cnn, x, y, eps=0.3, alpha=0.0, steps=1, start="normal", start_std=0.01)
    want = seeded(3, lambda: (x + 0.01 * torch.randn_like(x)).clamp(0, 1))
    assert_close(got, want, rtol=0, atol=0)
    assert (x == 0).any() and (got == 0).any(), "the clamp at 0 was never exercised"


def test_uniform_stays_the_default(cnn, images6):
    x, y = images6
    kwargs = dict(eps=0.05, alpha=0.02, steps=2)
    default = seeded(5, lfr_rs.lfr_perturb, cnn, x, y, **kwargs)
    uniform = seeded(5, lfr_rs.lfr_perturb, cnn, x, y, start="uniform", **kwargs)
    normal = seeded(5, lfr_rs.lfr_perturb, cnn, x, y, start="normal", **kwargs)
    assert torch.equal(default, uniform) and not torch.equal(default, normal)
    assert_close(default, seeded(5, ref.lfr_perturb, cnn, x, y, **kwargs), rtol=0, atol=1e-14)


def test_no_random_start_ignores_the_start_mode(cnn, images6):
    x, y = images6
    kwargs = dict(eps=0.05, alpha=0.02, steps=2, random_start=False)
    assert torch.equal(
        lfr_rs.lfr_perturb(cnn, x, y, start="normal", **kwargs), lfr_rs.lfr_perturb(cnn, x, y, **kwargs)
    )


def test_local_flatness_takes_the_start(cnn, images6):
    x, y = images6
    kwargs = dict(eps=0.05, alpha=0.02, steps=2, start="normal")
    adv, gamma = seeded(2, lfr_rs.local_flatness, cnn, x, y, **kwargs)
    assert torch.equal(adv, seeded(2, lfr_rs.lfr_perturb, cnn, x, y, **kwargs))
    assert_close(gamma, lfr_rs.grad_norm_penalty(cnn, adv, y).detach(), rtol=1e-10, atol=0)


@pytest.mark.parametrize("fn", [lfr_rs.lfr_perturb, lfr_rs.local_flatness])
def test_bad_start_names_the_accepted_values(cnn, images6, fn):
    x, y = images6
    with pytest.raises(ValueError) as info:
        fn(cnn, x[:1], y[:1], eps=0.1, alpha=0.01, start="gaussian")
    assert '"uniform"' in str(info.value) and '"normal"' in str(info.value), str(info.value)


@pytest.mark.parametrize("std", [0.0, -0.001, math.nan, math.inf])
def test_bad_start_std_raises(cnn, images6, std):
    x, y = images6
    with pytest.raises(ValueError, match="start_std"):
        lfr_rs.lfr_perturb(cnn, x[:1], y[:1], eps=0.1, alpha=0.01, start="normal", start_std=std)


# --- arguments ----------------------------------------------------------------

LFR_CALLS = {
    "lfr_perturb": lambda m, x, y, **kw: lfr_rs.lfr_perturb(m, x, y, eps=0.1, alpha=0.02, steps=1, **kw),
    "local_flatness": lambda m, x, y, **kw: lfr_rs.local_flatness(m, x, y, eps=0.1, alpha=0.02, steps=1, **kw),
    "flatness_grad": lambda m, x, y, **kw: lfr_rs.flatness_grad(m, x, y, **kw),
}


@pytest.mark.parametrize("call", LFR_CALLS.values(), ids=LFR_CALLS.keys())
@pytest.mark.parametrize("hvp", ["Exact", "newton", ""])
def test_bad_hvp_names_the_accepted_values(default_cnn64, images64, call, hvp):
    x, y = images64
    with pytest.raises(ValueError) as info:
        call(default_cnn64, x[:1], y[:1], hvp=hvp)
    assert '"exact"' in str(info.value) and '"fd"' in str(info.value), str(info.value)


@pytest.mark.parametrize("call", LFR_CALLS.values(), ids=LFR_CALLS.keys())
@pytest.mark.parametrize("fd_step", [0.0, -0.01, math.nan, math.inf])
def test_bad_fd_step_raises(default_cnn64, images64, call, fd_step):
    x, y = images64
    with pytest.raises(ValueError, match="fd_step"):
        call(default_cnn64, x[:1], y[:1], hvp="fd", fd_step=fd_step)


@pytest.mark.parametrize("fn", [lfr_rs.lfr_perturb, lfr_rs.local_flatness])
@pytest.mark.parametrize("steps", [0, -1])
def test_steps_below_one_raises(default_cnn64, images64, fn, steps):
    x, y = images64
    with pytest.raises(ValueError, match="steps"):
        fn(default_cnn64, x[:1], y[:1], eps=0.1, alpha=0.02, steps=steps)


@pytest.mark.parametrize("hvp", ["exact", "fd"])
def test_empty_batch(default_cnn64, hvp):
    x = torch.empty(0, 1, 28, 28, dtype=torch.float64)
    y = torch.empty(0, dtype=torch.long)
    adv = lfr_rs.lfr_perturb(default_cnn64, x, y, eps=0.1, alpha=0.02, hvp=hvp)
    assert adv.shape == x.shape and adv.dtype == x.dtype
    adv, gamma = lfr_rs.local_flatness(default_cnn64, x, y, eps=0.1, alpha=0.02, hvp=hvp)
    assert adv.shape == x.shape and gamma.shape == (0,) and gamma.dtype == x.dtype
    assert lfr_rs.flatness_grad(default_cnn64, x, y, hvp=hvp).shape == x.shape


# --- model hygiene: train-mode warning, in-place edits -------------------------

# name -> kernel(model, x, y); the inner maximization and LFR's probes
LFR_KERNELS = {
    "lfr_perturb": lambda m, x, y: lfr_rs.lfr_perturb(m, x, y, eps=0.1, alpha=0.02, steps=2),
    "local_flatness": lambda m, x, y: lfr_rs.local_flatness(m, x, y, eps=0.1, alpha=0.02, steps=2)[0],
    "flatness_grad": lambda m, x, y: lfr_rs.flatness_grad(m, x, y, hvp="fd"),
}


@pytest.mark.parametrize("name", LFR_KERNELS)
def test_train_mode_with_batchnorm_or_dropout_warns(batch, name):
    assert_train_mode_warns(LFR_KERNELS[name], batch)


@pytest.mark.parametrize("name", LFR_KERNELS)
def test_model_editing_its_argument_in_place_leaves_inputs_alone(default_cnn64, images64, name):
    assert_inputs_survive_in_place_edit(LFR_KERNELS[name], default_cnn64, images64)
