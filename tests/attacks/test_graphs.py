"""The CUDA-graph path of PGD on the CPU: the capture-safe body equals the
eager kernel, the replay driver checks every batch and raises on non-finite
logits, and ``graph=True`` off CUDA warns and runs eagerly. The capture itself
is tested on a GPU (tests/test_gpu_graphs.py)."""

import copy

import pytest
import torch

import lfr_rs
from lfr_rs import _native, graphs

BODY = dict(random_start=False, norm="linf", loss="ce", targeted=False)


def _fixed(model, x, y, **kw):
    params = {**BODY, **kw}
    return _native._pgd_fixed(model, x, y, **params)


@pytest.mark.parametrize("norm", ["linf", "l2"])
@pytest.mark.parametrize("keep_best", [False, True])
def test_the_fixed_shape_body_is_the_eager_kernel(trained_cnn, batch, norm, keep_best):
    """float64, so that a sign step never flips on a last-bit difference; the
    batch mean runs over every row there and over the rows left here."""
    model, (x, y) = copy.deepcopy(trained_cnn).double(), batch
    x, y = x[:32].double(), y[:32]
    eps, alpha = (0.15, 0.02) if norm == "linf" else (1.5, 0.2)
    eager = lfr_rs.pgd(model, x, y, eps=eps, alpha=alpha, steps=20, random_start=False, norm=norm, keep_best=keep_best)
    fixed, finite = _fixed(model, x, y, eps=eps, alpha=alpha, steps=20, norm=norm, keep_best=keep_best)
    assert bool(finite)
    assert torch.equal(fixed, eager)
    fooled = (model(fixed).argmax(1) != y).sum().item()
    assert 0 < fooled < 32, "some rows must stop early and some go on"


def test_the_fixed_shape_body_in_float32_keeps_every_eager_outcome(trained_cnn, batch):
    x, y = batch
    eager = lfr_rs.pgd(trained_cnn, x, y, eps=0.15, alpha=0.02, steps=20, random_start=False, keep_best=True)
    fixed, _ = _fixed(trained_cnn, x, y, eps=0.15, alpha=0.02, steps=20, keep_best=True)
    same = (trained_cnn(eager).argmax(1) == trained_cnn(fixed).argmax(1)).float().mean().item()
    assert same >= 0.99
    assert (fixed - x).abs().max() <= 0.15 + 1e-6


def test_non_finite_logits_come_back_as_a_false_flag(batch):
    x, y = batch

    def nan_model(inputs):
        return inputs.flatten(1)[:, :10] / 0.0 * 0.0

    _, finite = _fixed(nan_model, x[:4], y[:4], eps=0.1, alpha=0.02, steps=2, keep_best=True)
    assert not bool(finite)


def test_the_body_refuses_layouts_it_cannot_check_without_a_host_read(trained_cnn, batch):
    x, y = batch
    with pytest.raises(TypeError, match="int64"):
        _fixed(trained_cnn, x[:4], y[:4].int(), eps=0.1, alpha=0.02, steps=2, keep_best=False)
    with pytest.raises(TypeError, match="float32 or torch.float64"):
        _fixed(trained_cnn, x[:4].half(), y[:4], eps=0.1, alpha=0.02, steps=2, keep_best=False)


def _replayed(model, x, y, **kw):
    """A CapturedAttack whose replay re-runs the body into the same buffers:
    the driver's logic without a CUDA graph."""
    sx, sy = x.clone(), y.clone()
    adv, finite = _fixed(model, sx, sy, **kw)

    def replay():
        a, f = _fixed(model, sx, sy, **kw)
        adv.copy_(a)
        finite.copy_(f)

    return graphs.CapturedAttack(replay, sx, sy, adv, finite, classes=10)


def test_a_replay_checks_each_batch_and_returns_a_fresh_tensor(trained_cnn, batch):
    x, y = batch
    kw = dict(eps=0.1, alpha=0.02, steps=5, keep_best=True)
    captured = _replayed(trained_cnn, x[:16], y[:16], **kw)
    for part in (slice(16, 32), slice(32, 48)):
        out = captured(x[part], y[part])
        want, _ = _fixed(trained_cnn, x[part], y[part], **kw)
        assert torch.equal(out, want) and out.data_ptr() != captured.adv.data_ptr()
    with pytest.raises(ValueError, match="label 12 is out of range"):
        captured(x[:16], torch.full((16,), 12))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        captured(x[:16] * 2, y[:16])
    with pytest.raises(TypeError, match="integer"):
        captured(x[:16], y[:16].float())


def test_a_replay_with_non_finite_logits_raises(batch):
    x, y = batch
    state = {"bad": False}

    def model(inputs):
        logits = inputs.flatten(1)[:, :10] * 3.0
        return logits / 0.0 if state["bad"] else logits

    captured = _replayed(model, x[:8], y[:8], eps=0.1, alpha=0.02, steps=2, keep_best=False)
    captured(x[8:16], y[8:16])
    state["bad"] = True
    with pytest.raises(ValueError, match="non-finite logits"):
        captured(x[8:16], y[8:16])


def test_graph_true_off_cuda_warns_and_is_the_eager_kernel(trained_cnn, batch):
    x, y = batch
    kw = dict(eps=0.1, alpha=0.02, steps=5, random_start=False, keep_best=True)
    with pytest.warns(UserWarning, match="graph=True needs CUDA inputs") as record:
        out = lfr_rs.pgd(trained_cnn, x[:16], y[:16], graph=True, **kw)
    assert record[0].filename == __file__
    assert torch.equal(out, lfr_rs.pgd(trained_cnn, x[:16], y[:16], **kw))


def test_graph_true_runs_one_restart(trained_cnn, batch):
    x, y = batch
    with pytest.raises(ValueError, match="one restart"):
        lfr_rs.pgd(trained_cnn, x[:4], y[:4], eps=0.1, alpha=0.02, restarts=2, graph=True)


@pytest.mark.parametrize("hvp", ["exact", "fd"])
def test_the_lfr_body_is_the_eager_inner_maximization(trained_cnn, batch, hvp):
    x, y = batch
    kw = dict(eps=0.1, alpha=0.02, steps=4, random_start=False, start="uniform", start_std=0.001, hvp=hvp,
              fd_step=0.01)
    eager = lfr_rs.lfr_perturb(trained_cnn, x[:16], y[:16], **kw)
    fixed, finite = _native._lfr_perturb_fixed(trained_cnn, x[:16], y[:16], **kw)
    assert bool(finite) and torch.equal(fixed, eager) and not torch.equal(fixed, x[:16])


def test_lfr_perturb_through_graphs_off_cuda_warns_and_is_eager(trained_cnn, batch):
    x, y = batch
    kw = dict(eps=0.1, alpha=0.02, steps=3, random_start=False, hvp="fd")
    with pytest.warns(UserWarning, match="graph=True needs CUDA inputs") as record:
        out = graphs.lfr_perturb(trained_cnn, x[:8], y[:8], **kw)
    assert record[0].filename == __file__
    assert torch.equal(out, lfr_rs.lfr_perturb(trained_cnn, x[:8], y[:8], **kw))


@pytest.mark.parametrize("loss", ["ce", "dlr"])
@pytest.mark.parametrize("norm", ["linf", "l2"])
def test_the_apgd_body_is_the_eager_attack_on_a_correctly_classified_batch(trained_cnn, batch, loss, norm):
    """One run: both sides draw the random start for the whole batch (every
    point is classified correctly), so they must agree bit for bit; fooled
    points are frozen by a mask here and dropped there."""
    model = copy.deepcopy(trained_cnn).double()
    x, y = batch
    x = x[:64].double()
    keep = model(x).argmax(1) == y[:64]
    x, y = x[keep][:24], y[:64][keep][:24]
    eps = 0.15 if norm == "linf" else 1.5
    kw = dict(eps=eps, steps=20, norm=norm, loss=loss, targeted=False, n_target_classes=9, restarts=1, rho=0.75)
    torch.manual_seed(5)
    eager = lfr_rs.apgd(model, x, y, **kw)
    torch.manual_seed(5)
    fixed, finite = _native._apgd_fixed(model, x, y, **kw)
    assert bool(finite) and torch.equal(fixed, eager)
    fooled = (model(fixed).argmax(1) != y).sum().item()
    assert 0 < fooled < len(y), "some points must stop early and some go on"


def test_the_apgd_body_with_targets_and_restarts_keeps_the_eager_outcomes(trained_cnn, batch):
    """Later runs draw their starts for the whole batch here and for the
    survivors there, so only the semantics can be compared: in the ball, a
    point the clean model gets wrong returned unchanged, robust accuracy
    within 2 points."""
    x, y = batch
    kw = dict(eps=0.15, steps=20, norm="linf", loss="dlr", targeted=True, n_target_classes=3, restarts=2, rho=0.75)
    eager = lfr_rs.apgd(trained_cnn, x, y, **kw)
    fixed, _ = _native._apgd_fixed(trained_cnn, x, y, **kw)
    assert (fixed - x).abs().max() <= 0.15 + 1e-6 and fixed.min() >= 0 and fixed.max() <= 1
    wrong = trained_cnn(x).argmax(1) != y
    assert wrong.any() and torch.equal(fixed[wrong], x[wrong])
    acc = [(trained_cnn(a).argmax(1) == y).float().mean().item() for a in (eager, fixed)]
    assert abs(acc[0] - acc[1]) <= 0.02, acc


def test_apgd_graph_true_off_cuda_warns_and_is_eager(trained_cnn, batch):
    x, y = batch
    torch.manual_seed(1)
    with pytest.warns(UserWarning, match="graph=True needs CUDA inputs") as record:
        out = lfr_rs.apgd(trained_cnn, x[:16], y[:16], eps=0.1, steps=5, graph=True)
    assert record[0].filename == __file__
    torch.manual_seed(1)
    assert torch.equal(out, lfr_rs.apgd(trained_cnn, x[:16], y[:16], eps=0.1, steps=5))


def test_the_mifgsm_body_is_the_eager_attack(trained_cnn, batch):
    x, y = batch
    kw = dict(eps=0.1, alpha=0.02, steps=6, decay=1.0, targeted=False)
    eager = lfr_rs.mifgsm(trained_cnn, x[:32], y[:32], **kw)
    fixed, finite = _native._mifgsm_fixed(trained_cnn, x[:32], y[:32], **kw)
    assert bool(finite) and torch.equal(fixed, eager)
    with pytest.warns(UserWarning, match="graph=True needs CUDA inputs"):
        assert torch.equal(lfr_rs.mifgsm(trained_cnn, x[:32], y[:32], graph=True, **kw), eager)


@pytest.mark.parametrize("targeted", [False, True])
def test_the_fgsm_body_is_the_eager_step(trained_cnn, batch, targeted):
    x, y = batch
    eager = lfr_rs.fgsm(trained_cnn, x[:32], y[:32], eps=0.1, targeted=targeted)
    fixed, finite = _native._fgsm_fixed(trained_cnn, x[:32], y[:32], eps=0.1, targeted=targeted)
    assert bool(finite) and torch.equal(fixed, eager) and not torch.equal(fixed, x[:32])
    with pytest.warns(UserWarning, match="graph=True needs CUDA inputs") as record:
        assert torch.equal(lfr_rs.fgsm(trained_cnn, x[:32], y[:32], eps=0.1, targeted=targeted, graph=True), eager)
    assert record[0].filename == __file__
