"""Checks the regularizer kernels' tests share: the l-inf distance, seeded calls,
the eps-ball and [0, 1] box, the train-mode warning and a model that edits its
argument in place. A kernel here is ``kernel(model, x, y) -> Tensor``."""

import pytest
import torch
from torch import nn


def linf(t):
    return t.flatten(1).abs().amax(1)


def seeded(seed, fn, *args, **kwargs):
    torch.manual_seed(seed)
    return fn(*args, **kwargs)


def assert_in_ball_and_box(adv, x, x0, eps):
    """``adv`` lies in the eps-ball around ``x`` and in [0, 1], reaches the ball's
    faces somewhere, and ``x`` still equals its copy ``x0`` taken before the call."""
    assert torch.equal(x, x0), "inputs were mutated"
    assert (linf(adv - x) <= eps + 1e-12).all()
    assert adv.min() >= 0 and adv.max() <= 1
    assert ((adv - x).abs() > eps - 1e-12).any()


def _stateful_net():
    return nn.Sequential(nn.Conv2d(1, 4, 5, stride=3), nn.BatchNorm2d(4), nn.Dropout(0.1), nn.Flatten(), nn.Linear(256, 10))


def assert_train_mode_warns(kernel, batch):
    """A model in train mode with BatchNorm or Dropout warns; the same model in eval mode does not."""
    x, y = batch[0][:8], batch[1][:8]
    with pytest.warns(UserWarning, match="train mode with BatchNorm2d, Dropout layers"):
        kernel(_stateful_net().train(), x, y)
    kernel(_stateful_net().eval(), x, y)  # filterwarnings = error


def run_in_train_mode(kernel, batch):
    """Runs ``kernel`` on a train-mode model with BatchNorm and Dropout (a warning fails the test)."""
    x, y = batch[0][:8], batch[1][:8]
    kernel(_stateful_net().train(), x, y)


def assert_inputs_survive_in_place_edit(kernel, model, images):
    """A model that halves its argument in place leaves the caller's inputs alone."""
    x, y = images[0].clone(), images[1]
    x_before = x.clone()

    def vandal(a):
        a.data.mul_(0.5)
        return model(a)

    kernel(vandal, x, y)
    assert torch.equal(x, x_before)
