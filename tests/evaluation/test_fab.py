"""FAB and FAB-T: parity with torchattacks 3.5.1's ``FAB`` (norm="Linf",
n_restarts=1, so the run starts at the clean input) on a trained SmallCNN and
real MNIST images, properties, and bad input."""

import copy

import pytest
import torch
import torchattacks

import lfr_rs


def _fooled(model, adv, y):
    with torch.no_grad():
        return model(adv).argmax(1) != y


def _linf(a, b):
    return (a - b).flatten(1).abs().amax(1)


def _torchattacks_fab(model, x, y, eps, steps, targeted, n_target_classes):
    # multi_targeted runs targets 2 .. n_classes, AutoAttack's fab-t
    attack = torchattacks.FAB(model, norm="Linf", eps=eps, steps=steps, n_restarts=1,
                              multi_targeted=targeted, n_classes=n_target_classes + 1)
    return attack(x, y)


@pytest.mark.parametrize("targeted", [False, True], ids=["fab", "fab-t"])
def test_fab_iterates_match_torchattacks(trained_cnn, batch, targeted):
    # One run from the clean input (one target for FAB-T). torchattacks returns
    # the nearest fooling iterate of `steps` steps, lfr_rs the first one within
    # eps: a point first fooled within eps at step s is the nearest of steps
    # 1..s (the earlier fooling ones lie outside eps), so it must equal
    # torchattacks' output for steps=s, and both must fool the same points
    # after every number of steps.
    x, y = batch
    eps = 0.12
    before, checked = torch.zeros(len(y), dtype=torch.bool), 0
    for s in range(1, 8):
        ours = lfr_rs.fab(trained_cnn, x, y, eps=eps, steps=s, targeted=targeted, n_target_classes=1)
        ta = _torchattacks_fab(trained_cnn, x, y, eps, s, targeted, 1)
        fo, ft = _fooled(trained_cnn, ours, y), _fooled(trained_cnn, ta, y)
        assert torch.equal(fo, ft), f"step {s}: fooled sets differ at {torch.nonzero(fo != ft).flatten().tolist()}"
        new = fo & ~before
        torch.testing.assert_close(ours[new], ta[new])
        torch.testing.assert_close(ours[~fo], x[~fo], rtol=0, atol=0)
        checked += int(new.sum())
        before = fo
    assert checked > 10 and not before.all(), "the test should see points fooled at several steps and some robust"


def test_fab_t_over_nine_targets_fools_what_torchattacks_fools(trained_cnn, batch):
    x, y = batch[0][:64], batch[1][:64]
    ours = lfr_rs.fab(trained_cnn, x, y, eps=0.1, steps=5, targeted=True, n_target_classes=9)
    ta = _torchattacks_fab(trained_cnn, x, y, 0.1, 5, True, 9)
    fo = _fooled(trained_cnn, ours, y)
    assert torch.equal(fo, _fooled(trained_cnn, ta, y))
    assert 0 < fo.sum() < len(y)


@pytest.mark.parametrize("targeted", [False, True], ids=["fab", "fab-t"])
def test_properties(trained_cnn, batch, targeted):
    x, y = batch[0][:32], batch[1][:32]
    x0, y0 = x.clone(), y.clone()
    adv = lfr_rs.fab(trained_cnn, x, y, eps=0.15, steps=6, targeted=targeted, n_target_classes=3)
    assert torch.equal(x, x0) and torch.equal(y, y0), "inputs not mutated"
    assert adv.shape == x.shape and adv.dtype == x.dtype and not adv.requires_grad
    assert adv.min() >= 0 and adv.max() <= 1
    assert _linf(adv, x).max() <= 0.15
    fooled = _fooled(trained_cnn, adv, y)
    clean_wrong = _fooled(trained_cnn, x, y)
    assert torch.equal(adv[clean_wrong], x[clean_wrong]), "misclassified points come back as they are"
    assert (fooled & ~clean_wrong).any()
    unchanged = (adv == x).flatten(1).all(1)
    assert torch.equal(unchanged | fooled, torch.ones_like(fooled)), "every changed point fools the model"
    empty = lfr_rs.fab(trained_cnn, x[:0], y[:0], eps=0.1)
    assert empty.shape == (0, 1, 28, 28)


def test_float64_and_train_mode_warning(trained_cnn, batch):
    x, y = batch[0][:8].double(), batch[1][:8]
    model = copy.deepcopy(trained_cnn).double()
    adv = lfr_rs.fab(model, x, y, eps=0.15, steps=4)
    assert adv.dtype == torch.float64 and _linf(adv, x).max() <= 0.15
    with pytest.warns(UserWarning, match="train mode with Dropout"):
        lfr_rs.fab(model.train(), x, y, eps=0.15, steps=1)


def _three_class_plane(x):
    # class 0 (logit 0) everywhere near (0.5, 0.5); class 1 (gradient norm 1)
    # ranks second but is 0.2 away in L-inf, class 2 (gradient norm 4) ranks
    # third but is only 0.1 away.
    return torch.stack([torch.zeros_like(x[:, 0]), x[:, 0] - 0.7, 4 * (x[:, 1] - 0.6)], 1)


def test_fab_t_reaches_its_target_where_fab_takes_the_nearest_boundary():
    x = torch.full((1, 2), 0.5, dtype=torch.float64)
    y = torch.tensor([0])
    untargeted = lfr_rs.fab(_three_class_plane, x, y, eps=0.3)
    targeted = lfr_rs.fab(_three_class_plane, x, y, eps=0.3, targeted=True, n_target_classes=1)
    assert _three_class_plane(untargeted).argmax(1).item() == 2
    assert _three_class_plane(targeted).argmax(1).item() == 1
    # the linearization is exact: one step, the projection times eta = 1.05
    torch.testing.assert_close(untargeted, torch.tensor([[0.5, 0.5 + 1.05 * 0.1]], dtype=torch.float64))
    torch.testing.assert_close(targeted, torch.tensor([[0.5 + 1.05 * 0.2, 0.5]], dtype=torch.float64))
    assert torch.equal(lfr_rs.fab(_three_class_plane, x, y, eps=0.05), x), "nothing within eps = 0.05"


def test_restarts_start_from_torch_default_generator(trained_cnn, batch):
    x, y = batch[0][:16], batch[1][:16]
    runs = []
    for _ in range(2):
        torch.manual_seed(3)
        runs.append(lfr_rs.fab(trained_cnn, x, y, eps=0.08, steps=3, restarts=3))
    assert torch.equal(runs[0], runs[1])


def test_early_stopping_spends_no_passes_on_fooled_points(trained_cnn, batch):
    x, y = batch[0][:64], batch[1][:64]
    seen = []

    def model(t):
        seen.append(len(t))
        return trained_cnn(t)

    lfr_rs.fab(model, x, y, eps=0.3, steps=10)
    # clean pass, then per step one differentiated pass and one prediction, on the points still robust
    assert seen[0] == 64 and seen[-1] < seen[1]
    assert sum(seen) < 21 * 64 / 2


@pytest.mark.parametrize(
    "kwargs,exc,match",
    [
        ({"eps": -0.1}, ValueError, "eps"),
        ({"eps": float("nan")}, ValueError, "eps"),
        ({"eps": 0.1, "steps": 0}, ValueError, "steps"),
        ({"eps": 0.1, "restarts": 0}, ValueError, "restarts"),
        ({"eps": 0.1, "alpha_max": 1.5}, ValueError, "alpha_max"),
        ({"eps": 0.1, "eta": 0.0}, ValueError, "eta"),
        ({"eps": 0.1, "beta": 0.0}, ValueError, "beta"),
        ({"eps": 0.1, "targeted": True, "n_target_classes": 10}, ValueError, "classes - 1"),
        ({"eps": 0.1, "n_target_classes": 0}, ValueError, "n_target_classes"),
        ({"eps": "0.1"}, TypeError, None),
    ],
)
def test_bad_arguments(trained_cnn, batch, kwargs, exc, match):
    x, y = batch[0][:4], batch[1][:4]
    with pytest.raises(exc, match=match):
        lfr_rs.fab(trained_cnn, x, y, **kwargs)


@pytest.mark.parametrize(
    "call,exc,match",
    [
        (lambda m, x, y: lfr_rs.fab(m, x, y[:3], eps=0.1), lfr_rs.ShapeError, "labels"),
        (lambda m, x, y: lfr_rs.fab(m, x, y + 10, eps=0.1), ValueError, "out of range"),
        (lambda m, x, y: lfr_rs.fab(m, x, y.float(), eps=0.1), TypeError, "integer"),
        (lambda m, x, y: lfr_rs.fab(m, x * 2, y, eps=0.1), ValueError, r"\[0, 1\]"),
        (lambda m, x, y: lfr_rs.fab(lambda t: m(t)[:, :1].expand(-1, 3).T, x, y, eps=0.1), lfr_rs.ShapeError, "N, C"),
    ],
)
def test_bad_input(trained_cnn, batch, call, exc, match):
    x, y = batch[0][:4], batch[1][:4]
    with pytest.raises(exc, match=match):
        call(trained_cnn, x, y)


def test_model_errors_come_back_unchanged(batch):
    x, y = batch[0][:4], batch[1][:4]

    class Boom(RuntimeError):
        pass

    def model(t):
        raise Boom("mine")

    with pytest.raises(Boom, match="mine"):
        lfr_rs.fab(model, x, y, eps=0.1)
