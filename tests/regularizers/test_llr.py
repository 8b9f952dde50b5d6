"""The LLR inner maximization against its plain-PyTorch reference (float64, CPU)."""

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


def _llr(m, x, y):
    return lfr_rs.llr_perturb(m, x, y, eps=0.1, alpha=0.02, steps=2)


@pytest.mark.parametrize("random_start", [False, True])
def test_llr_matches_reference(cnn, images64, random_start):
    x, y = images64
    kwargs = dict(eps=0.1, alpha=0.03, steps=3, random_start=random_start)
    got = seeded(4, lfr_rs.llr_perturb, cnn, x, y, **kwargs)
    want = seeded(4, ref.llr_perturb, cnn, x, y, **kwargs)
    assert got.shape == x.shape and got.dtype == x.dtype and not got.requires_grad
    assert_close(got, want, rtol=0, atol=1e-14)


def test_llr_without_random_start_stays_at_x(default_cnn64, images64):
    """At delta = 0 the linearity error is exactly 0 and autograd's |.|' (0) = 0,
    so the ascent never leaves x: LLR needs its random start."""
    x, y = images64
    adv = lfr_rs.llr_perturb(default_cnn64, x, y, eps=0.1, alpha=0.03, steps=3, random_start=False)
    assert torch.equal(adv, x)


def test_llr_stays_in_ball_and_box(default_cnn64, images64):
    x, y = images64
    x0 = x.clone()
    adv = lfr_rs.llr_perturb(default_cnn64, x, y, eps=0.1, alpha=0.05, steps=3)
    assert_in_ball_and_box(adv, x, x0, eps=0.1)
    assert (adv == 0).any()


def test_llr_ascent_increases_linearity_error(cnn, images64):
    x, y = images64
    eps = 0.1
    start = seeded(6, lambda: (x + torch.empty_like(x).uniform_(-eps, eps)).clamp(0, 1))
    adv = seeded(6, lfr_rs.llr_perturb, cnn, x, y, eps=eps, alpha=0.02, steps=5)
    assert torch.equal(ref.local_linearity(cnn, x, x, y).detach(), torch.zeros(len(x), dtype=x.dtype))
    gamma_start = ref.local_linearity(cnn, x, start, y).detach()
    gamma_adv = ref.local_linearity(cnn, x, adv, y).detach()
    assert (gamma_adv > 0).all()
    assert gamma_adv.sum() > gamma_start.sum()


# --- arguments ----------------------------------------------------------------


@pytest.mark.parametrize("steps", [0, -1])
def test_steps_below_one_raises(default_cnn64, images64, steps):
    x, y = images64
    with pytest.raises(ValueError, match="steps"):
        lfr_rs.llr_perturb(default_cnn64, x[:1], y[:1], eps=0.1, alpha=0.02, steps=steps)


def test_empty_batch(default_cnn64):
    x = torch.empty(0, 1, 28, 28, dtype=torch.float64)
    y = torch.empty(0, dtype=torch.long)
    assert lfr_rs.llr_perturb(default_cnn64, x, y, eps=0.1, alpha=0.02).shape == x.shape


# --- model hygiene: train-mode warning, in-place edits -------------------------


def test_train_mode_with_batchnorm_or_dropout_warns(batch):
    assert_train_mode_warns(_llr, batch)


def test_model_editing_its_argument_in_place_leaves_inputs_alone(default_cnn64, images64):
    assert_inputs_survive_in_place_edit(_llr, default_cnn64, images64)
