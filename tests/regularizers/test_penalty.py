"""The fused gradient-norm penalty against autograd double backward (float64, CPU)."""

import copy
import math

import pytest
import torch
import torch.nn.functional as F
from torch.testing import assert_close

import lfr_rs
from reference.penalty import grad_norm_penalty as ref_penalty
from regularizer_checks import assert_inputs_survive_in_place_edit, run_in_train_mode

NORMS = [1.0, 2.0, math.inf]


OBJECTIVES = {
    "pen.sum()": lambda ce, pen: pen.sum(),
    "(ce + 0.3 pen).mean()": lambda ce, pen: (ce + 0.3 * pen).mean(),
}


@pytest.mark.parametrize("p", NORMS)
def test_value_matches_double_backward(cnn, images64, p):
    x, y = images64
    got = lfr_rs.grad_norm_penalty(cnn, x, y, p=p)
    want = ref_penalty(cnn, x, y, p=p)
    assert got.shape == (len(x),) and got.dtype == torch.float64
    assert (want > 0).all()
    assert_close(got, want.detach(), rtol=1e-10, atol=0)


@pytest.mark.parametrize("p", NORMS)
def test_parameter_gradients_match_double_backward(cnn, images64, p):
    x, y = images64
    params = list(cnn.parameters())
    names = [n for n, _ in cnn.named_parameters()]
    for key, objective in OBJECTIVES.items():
        ce = F.cross_entropy(cnn(x), y, reduction="none")
        got = torch.autograd.grad(objective(ce, lfr_rs.grad_norm_penalty(cnn, x, y, p=p)), params)
        ce = F.cross_entropy(cnn(x), y, reduction="none")
        want = torch.autograd.grad(objective(ce, ref_penalty(cnn, x, y, p=p)), params)
        for name, g, w in zip(names, got, want):
            w_norm = torch.linalg.vector_norm(w)
            assert w_norm > 0, f"{key}: reference gradient of {name} is 0"
            rel = (torch.linalg.vector_norm(g - w) / w_norm).item()
            assert rel < 1e-6, f"{key}, p={p}: {name} relative error {rel:.3g}"


def test_batch_independence(default_cnn64, images64):
    x, y = images64
    for p in NORMS:
        together = lfr_rs.grad_norm_penalty(default_cnn64, x, y, p=p).detach()
        alone = torch.cat(
            [lfr_rs.grad_norm_penalty(default_cnn64, x[i : i + 1], y[i : i + 1], p=p).detach() for i in range(len(x))]
        )
        assert_close(alone, together, rtol=1e-10, atol=0)


@pytest.mark.parametrize("p", NORMS)
def test_empty_batch(default_cnn64, p):
    x = torch.empty(0, 1, 28, 28, dtype=torch.float64)
    y = torch.empty(0, dtype=torch.long)
    pen = lfr_rs.grad_norm_penalty(default_cnn64, x, y, p=p)
    assert pen.shape == (0,) and pen.dtype == torch.float64


@pytest.mark.parametrize("p", [3.0, 0.0, math.nan, -1.0, 0.5, -math.inf])
def test_bad_p_raises(default_cnn64, images64, p):
    x, y = images64
    with pytest.raises(ValueError, match="1, 2 or inf"):
        lfr_rs.grad_norm_penalty(default_cnn64, x, y, p=p)


def test_sgd_step_changes_every_parameter(untrained_cnn, batch):
    """``(ce + lam * pen.mean()).backward()`` trains every parameter."""
    x, y = batch[0][:8], batch[1][:8]
    model = copy.deepcopy(untrained_cnn)
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    before = [p.detach().clone() for p in model.parameters()]
    pen = lfr_rs.grad_norm_penalty(model, x, y)
    loss = F.cross_entropy(model(x), y) + 0.5 * pen.mean()
    loss.backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
    opt.step()
    changed = [name for (name, p), b in zip(model.named_parameters(), before) if not torch.equal(b, p)]
    assert changed == [name for name, _ in model.named_parameters()]


def test_small_gradient_step_lowers_penalty_to_first_order(perturbed_cnn64, images64):
    """pen(theta - lr grad) ~ pen(theta) - lr ||grad||^2 for a small lr.

    On the perturbed model only: at the default init every conv bias is 0 and
    MNIST's background is 0, so whole maps of ReLU pre-activations sit exactly
    at the kink and any step on the biases (even 1e-7) switches them at once
    (measured: the mean penalty jumps from 1.26 to 1.92)."""
    x, y = images64
    model = copy.deepcopy(perturbed_cnn64)
    lr = 1e-6
    pen0 = lfr_rs.grad_norm_penalty(model, x, y).mean()
    pen0.backward()
    predicted = lr * sum(p.grad.pow(2).sum() for p in model.parameters())
    with torch.no_grad():
        for p in model.parameters():
            p.sub_(lr * p.grad)
    pen1 = lfr_rs.grad_norm_penalty(model, x, y).mean().detach()
    assert pen1 < pen0
    ratio = ((pen0.detach() - pen1) / predicted).item()
    assert 0.5 < ratio < 1.5, ratio


@pytest.mark.parametrize("requires_grad", [False, True])
def test_input_untouched(default_cnn64, images64, requires_grad):
    model = copy.deepcopy(default_cnn64)
    x0, y = images64
    x = x0.clone().requires_grad_(requires_grad)
    pen = lfr_rs.grad_norm_penalty(model, x, y)
    assert pen.requires_grad and pen.grad_fn is not None
    pen.sum().backward()
    assert x.grad is None
    assert torch.equal(x.detach(), x0)


def test_runs_in_train_mode_without_warning(batch):
    # it is a training loss: train mode is where it belongs
    run_in_train_mode(lfr_rs.grad_norm_penalty, batch)


def test_model_editing_its_argument_in_place_leaves_inputs_alone(default_cnn64, images64):
    assert_inputs_survive_in_place_edit(lfr_rs.grad_norm_penalty, default_cnn64, images64)
