"""The TRADES inner maximization against its plain-PyTorch reference (float64, CPU)."""

import pytest
import torch
from torch.testing import assert_close

import lfr_rs
from reference import inner as ref
from regularizer_checks import (
    assert_in_ball_and_box,
    assert_inputs_survive_in_place_edit,
    assert_train_mode_warns,
    seeded,
)


def _trades(m, x, y):
    return lfr_rs.trades_perturb(m, x, eps=0.1, alpha=0.02, steps=2)


@pytest.mark.parametrize("steps", [1, 3])
def test_trades_matches_reference(cnn, images64, steps):
    x, _ = images64
    kwargs = dict(eps=0.1, alpha=0.03, steps=steps)
    got = seeded(3, lfr_rs.trades_perturb, cnn, x, **kwargs)
    want = seeded(3, ref.trades_perturb, cnn, x, **kwargs)
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
    got = seeded(5, lfr_rs.trades_perturb, model, x, **kwargs)
    want = seeded(5, ref.trades_perturb, model, x, **kwargs)
    assert_close(got, want, rtol=0, atol=1e-14)


def test_trades_stays_in_ball_and_box(default_cnn64, images64):
    x, _ = images64
    x0 = x.clone()
    adv = lfr_rs.trades_perturb(default_cnn64, x, eps=0.1, alpha=0.05, steps=3)
    assert_in_ball_and_box(adv, x, x0, eps=0.1)
    assert (adv == 0).any()


def test_trades_ascent_increases_kl(cnn, images64):
    x, _ = images64
    start = seeded(9, lambda: x + 0.001 * torch.randn_like(x))
    adv = seeded(9, lfr_rs.trades_perturb, cnn, x, eps=0.1, alpha=0.02, steps=5)
    with torch.no_grad():
        kl_start = ref.trades_kl(cnn, x, start)
        kl_adv = ref.trades_kl(cnn, x, adv)
    assert kl_adv > kl_start > 0


# --- arguments ----------------------------------------------------------------


@pytest.mark.parametrize("steps", [0, -1])
def test_steps_below_one_raises(default_cnn64, images64, steps):
    x, _ = images64
    with pytest.raises(ValueError, match="steps"):
        lfr_rs.trades_perturb(default_cnn64, x[:1], eps=0.1, alpha=0.02, steps=steps)


def test_empty_batch(default_cnn64):
    x = torch.empty(0, 1, 28, 28, dtype=torch.float64)
    assert lfr_rs.trades_perturb(default_cnn64, x, eps=0.1, alpha=0.02).shape == x.shape


# --- model hygiene: train-mode warning, in-place edits -------------------------


def test_train_mode_with_batchnorm_or_dropout_warns(batch):
    assert_train_mode_warns(_trades, batch)


def test_model_editing_its_argument_in_place_leaves_inputs_alone(default_cnn64, images64):
    assert_inputs_survive_in_place_edit(_trades, default_cnn64, images64)
