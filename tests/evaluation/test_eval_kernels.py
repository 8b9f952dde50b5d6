"""APGD, APGD-T and Square: parity with torchattacks 3.5.1 on a trained SmallCNN
and real MNIST images, properties, and bad input."""

import copy

import pytest
import torch
import torchattacks

import lfr_rs


def _fooled(model, adv, y):
    with torch.no_grad():
        return model(adv).argmax(1) != y


@pytest.mark.parametrize("norm,eps", [("linf", 0.08), ("l2", 1.0)])
@pytest.mark.parametrize("loss", ["ce", "dlr"])
def test_apgd_iterates_match_torchattacks(trained_cnn, batch, norm, eps, loss):
    # For steps <= 4 the checkpoint schedule is "every step", so runs of 1..4
    # steps share their first iterates: a point first fooled at step s must be
    # torchattacks' iterate s exactly (to float32 rounding), and both must fool
    # the same points after every step.
    x, y = batch
    before, checked = None, 0
    for s in range(1, 5):
        torch.manual_seed(0)
        ours = lfr_rs.apgd(trained_cnn, x, y, eps=eps, steps=s, norm=norm, loss=loss)
        ta = torchattacks.APGD(trained_cnn, norm={"linf": "Linf", "l2": "L2"}[norm], eps=eps, steps=s, seed=0, loss=loss)(x, y)
        fo, ft = _fooled(trained_cnn, ours, y), _fooled(trained_cnn, ta, y)
        assert torch.equal(fo, ft), f"step {s}"
        if before is not None:
            new = fo & ~before
            torch.testing.assert_close(ours[new], ta[new])
            checked += int(new.sum())
        before = fo
    assert checked > 0, "no point first fooled after step 1; the test checks nothing"


def test_apgd_t_matches_torchattacks(trained_cnn, batch):
    x, y = batch[0][:48], batch[1][:48]
    torch.manual_seed(0)
    ours = lfr_rs.apgd(trained_cnn, x, y, eps=0.15, steps=3, loss="dlr", targeted=True, n_target_classes=9)
    ta = torchattacks.APGDT(trained_cnn, eps=0.15, steps=3, seed=0, n_classes=10)(x, y)
    assert torch.equal(_fooled(trained_cnn, ours, y), _fooled(trained_cnn, ta, y))


def test_square_matches_torchattacks_exactly(trained_cnn, batch):
    # Same draws in the same order: the whole output is equal.
    x, y = batch[0][:32], batch[1][:32]
    torch.manual_seed(0)
    ours = lfr_rs.square(trained_cnn, x, y, eps=0.1, queries=40)
    ta = torchattacks.Square(trained_cnn, eps=0.1, n_queries=40, seed=0)(x, y)
    assert _fooled(trained_cnn, ours, y).sum() > 0
    torch.testing.assert_close(ours, ta, rtol=0, atol=0)


@pytest.mark.parametrize("eps", [0.1, 0.3])
def test_apgd_robust_accuracy_within_a_point_of_torchattacks(trained_cnn, batch, eps):
    x, y = batch
    torch.manual_seed(0)
    ours = lfr_rs.apgd(trained_cnn, x, y, eps=eps, steps=20, loss="ce")
    ta = torchattacks.APGD(trained_cnn, eps=eps, steps=20, seed=0, loss="ce")(x, y)
    acc_ours = 1 - _fooled(trained_cnn, ours, y).float().mean()
    acc_ta = 1 - _fooled(trained_cnn, ta, y).float().mean()
    # same starting points and trajectories: never weaker, and within a point
    assert acc_ours <= acc_ta and acc_ta - acc_ours <= 0.01


def test_early_stopping_spends_no_passes_on_fooled_points(trained_cnn, batch):
    x, y = batch[0][:64], batch[1][:64]
    seen = []

    def model(t):
        seen.append(len(t))
        return trained_cnn(t)

    lfr_rs.apgd(model, x, y, eps=0.3, steps=20)
    # clean pass, random start, then only the points still robust
    assert seen[0] == 64 and seen[-1] < seen[1]
    assert sum(seen) < 21 * 64 / 2
    seen.clear()
    lfr_rs.square(model, x, y, eps=0.3, queries=20)
    assert seen[-1] < seen[1]


KERNELS = {
    "apgd-linf": lambda m, x, y: lfr_rs.apgd(m, x, y, eps=0.2, steps=5),
    "apgd-l2": lambda m, x, y: lfr_rs.apgd(m, x, y, eps=1.0, steps=5, norm="l2", loss="dlr"),
    "apgd-t": lambda m, x, y: lfr_rs.apgd(m, x, y, eps=0.2, steps=3, loss="dlr", targeted=True, n_target_classes=3),
    "square": lambda m, x, y: lfr_rs.square(m, x, y, eps=0.2, queries=10),
}


@pytest.mark.parametrize("name", list(KERNELS))
def test_properties(trained_cnn, batch, name):
    x, y = batch[0][:16], batch[1][:16]
    x0, y0 = x.clone(), y.clone()
    model = copy.deepcopy(trained_cnn).train()
    with pytest.warns(UserWarning, match="train mode with Dropout"):  # the kernels run it as set, and say so
        adv = KERNELS[name](model, x, y)
    assert model.training, "mode left as set"
    assert torch.equal(x, x0) and torch.equal(y, y0), "inputs not mutated"
    assert adv.shape == x.shape and adv.dtype == x.dtype and not adv.requires_grad
    assert adv.min() >= 0 and adv.max() <= 1
    d = adv - x
    if name == "apgd-l2":
        assert d.flatten(1).norm(dim=1).max() <= 1.0 + 1e-5
    else:
        assert d.abs().max() <= 0.2 + 1e-6
    empty = KERNELS[name](trained_cnn, x[:0], y[:0])
    assert empty.shape == (0, 1, 28, 28)


@pytest.mark.parametrize(
    "call,exc,match",
    [
        (lambda m, x, y: lfr_rs.apgd(m, x, y, eps=-0.1), ValueError, "eps"),
        (lambda m, x, y: lfr_rs.apgd(m, x, y, eps=0.1, steps=0), ValueError, "steps"),
        (lambda m, x, y: lfr_rs.apgd(m, x, y, eps=0.1, loss="margin"), ValueError, "dlr"),
        (lambda m, x, y: lfr_rs.apgd(m, x, y, eps=0.1, norm="l1"), ValueError, "linf"),
        (lambda m, x, y: lfr_rs.apgd(m, x, y, eps=0.1, rho=0.0), ValueError, "rho"),
        (lambda m, x, y: lfr_rs.apgd(m, x, y, eps=0.1, restarts=0), ValueError, "restarts"),
        (lambda m, x, y: lfr_rs.apgd(m, x, y, eps=0.1, targeted=True, n_target_classes=10), ValueError, "classes - 1"),
        (lambda m, x, y: lfr_rs.apgd(m, x, y[:3], eps=0.1), lfr_rs.ShapeError, "labels"),
        (lambda m, x, y: lfr_rs.apgd(m, x, y + 10, eps=0.1), ValueError, "out of range"),
        (lambda m, x, y: lfr_rs.square(m, x, y, eps=-1.0), ValueError, "eps"),
        (lambda m, x, y: lfr_rs.square(m, x, y, eps=0.1, queries=0), ValueError, "queries"),
        (lambda m, x, y: lfr_rs.square(m, x, y, eps=0.1, p_init=0.0), ValueError, "p_init"),
        (lambda m, x, y: lfr_rs.square(m, x.flatten(1), y, eps=0.1), lfr_rs.ShapeError, "N, C, H, W"),
        (lambda m, x, y: lfr_rs.square(m, x, y.float(), eps=0.1), TypeError, "integer"),
        (lambda m, x, y: lfr_rs.square(m, x * 2, y, eps=0.1), ValueError, r"\[0, 1\]"),
    ],
)
def test_bad_input(trained_cnn, batch, call, exc, match):
    x, y = batch[0][:4], batch[1][:4]
    with pytest.raises(exc, match=match):
        call(trained_cnn, x, y)


def test_dlr_needs_three_classes(batch):
    x, y = batch[0][:4], torch.zeros(4, dtype=torch.long)
    two = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(784, 2))
    with pytest.raises(ValueError, match="at least 3 classes"):
        lfr_rs.apgd(two, x, y, eps=0.1, loss="dlr")


def test_model_errors_come_back_unchanged(batch):
    x, y = batch[0][:4], batch[1][:4]

    class Boom(RuntimeError):
        pass

    def model(t):
        raise Boom("mine")

    for call in (lambda: lfr_rs.apgd(model, x, y, eps=0.1), lambda: lfr_rs.square(model, x, y, eps=0.1)):
        with pytest.raises(Boom, match="mine"):
            call()
