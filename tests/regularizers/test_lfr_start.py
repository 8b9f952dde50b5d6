"""The LFR inner maximization's start modes against the authors' LFR_loss.py
(a plain-PyTorch transcription in tests/reference/lfr.py), float64 on CPU."""

import copy
import math

import pytest
import torch
from torch.testing import assert_close

import lfr_rs
from lfr_rs.losses import LFR
from reference import lfr as ref


@pytest.fixture(scope="module")
def images(batch):
    x, y = batch
    return x[:6].double(), y[:6].clone()


@pytest.fixture(scope="module", params=["default_cnn64", "perturbed_cnn64"])
def cnn(request):
    return request.getfixturevalue(request.param)


def _seeded(seed, fn, *args, **kwargs):
    torch.manual_seed(seed)
    return fn(*args, **kwargs)


@pytest.mark.parametrize("steps", [1, 3, 8])
def test_normal_start_matches_authors_inner_maximization(cnn, images, steps):
    x, y = images
    kwargs = dict(eps=0.05, alpha=0.02, steps=steps)
    got = _seeded(7, lfr_rs.lfr_perturb, cnn, x, y, start="normal", start_std=0.001, **kwargs)
    want = _seeded(7, ref.authors_lfr_perturb, cnn, x, y, **kwargs)
    assert got.shape == x.shape and got.dtype == x.dtype and not got.requires_grad
    assert_close(got, want, rtol=0, atol=1e-14)
    assert not torch.equal(got, x)
    if steps == 8:
        assert ((got - x).abs().flatten(1).amax(1) > 0.05 - 1e-12).all(), "the projection was never exercised"


def test_normal_start_is_clamped_gaussian(cnn, images):
    """alpha = 0: the result is the start, clamp(x + std * N(0, I), 0, 1)."""
    x, y = images
    got = _seeded(3, lfr_rs.lfr_perturb, cnn, x, y, eps=0.3, alpha=0.0, steps=1, start="normal", start_std=0.01)
    want = _seeded(3, lambda: (x + 0.01 * torch.randn_like(x)).clamp(0, 1))
    assert_close(got, want, rtol=0, atol=0)
    assert (x == 0).any() and (got == 0).any(), "the clamp at 0 was never exercised"


def test_uniform_stays_the_default(cnn, images):
    x, y = images
    kwargs = dict(eps=0.05, alpha=0.02, steps=2)
    default = _seeded(5, lfr_rs.lfr_perturb, cnn, x, y, **kwargs)
    uniform = _seeded(5, lfr_rs.lfr_perturb, cnn, x, y, start="uniform", **kwargs)
    normal = _seeded(5, lfr_rs.lfr_perturb, cnn, x, y, start="normal", **kwargs)
    assert torch.equal(default, uniform) and not torch.equal(default, normal)
    assert_close(default, _seeded(5, ref.lfr_perturb, cnn, x, y, **kwargs), rtol=0, atol=1e-14)


def test_no_random_start_ignores_the_start_mode(cnn, images):
    x, y = images
    kwargs = dict(eps=0.05, alpha=0.02, steps=2, random_start=False)
    assert torch.equal(
        lfr_rs.lfr_perturb(cnn, x, y, start="normal", **kwargs), lfr_rs.lfr_perturb(cnn, x, y, **kwargs)
    )


def test_local_flatness_takes_the_start(cnn, images):
    x, y = images
    kwargs = dict(eps=0.05, alpha=0.02, steps=2, start="normal")
    adv, gamma = _seeded(2, lfr_rs.local_flatness, cnn, x, y, **kwargs)
    assert torch.equal(adv, _seeded(2, lfr_rs.lfr_perturb, cnn, x, y, **kwargs))
    assert_close(gamma, lfr_rs.grad_norm_penalty(cnn, adv, y).detach(), rtol=1e-10, atol=0)


@pytest.mark.parametrize("fn", [lfr_rs.lfr_perturb, lfr_rs.local_flatness])
def test_bad_start_names_the_accepted_values(cnn, images, fn):
    x, y = images
    with pytest.raises(ValueError) as info:
        fn(cnn, x[:1], y[:1], eps=0.1, alpha=0.01, start="gaussian")
    assert '"uniform"' in str(info.value) and '"normal"' in str(info.value), str(info.value)


@pytest.mark.parametrize("std", [0.0, -0.001, math.nan, math.inf])
def test_bad_start_std_raises(cnn, images, std):
    x, y = images
    with pytest.raises(ValueError, match="start_std"):
        lfr_rs.lfr_perturb(cnn, x[:1], y[:1], eps=0.1, alpha=0.01, start="normal", start_std=std)


def test_lfr_defense_passes_the_start_through(cnn, images):
    x, y = images
    method = LFR(eps=0.05, alpha=0.02, steps=2, start="normal", start_std=0.001)
    got = _seeded(4, method.perturb, cnn, x, y)
    want = _seeded(4, ref.authors_lfr_perturb, cnn, x, y, eps=0.05, alpha=0.02, steps=2)
    assert_close(got, want, rtol=0, atol=1e-14)
    model = copy.deepcopy(cnn)
    loss = method.loss(model, x, y, got)
    loss.backward()
    assert all(p.grad is not None for p in model.parameters())
