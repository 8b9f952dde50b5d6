"""``autocast=``: the model's forward under torch.autocast, the attack's
arithmetic in float32 (lfr_rs.precision), on the CPU's bfloat16."""

import inspect
import warnings

import pytest
import torch
from torch import nn

import lfr_rs
from lfr_rs.precision import Autocast, autocast_model

ATTACKS = {
    "fgsm": lambda m, x, y, **k: lfr_rs.fgsm(m, x, y, eps=0.1, **k),
    "pgd": lambda m, x, y, **k: lfr_rs.pgd(m, x, y, eps=0.1, alpha=0.02, steps=3, **k),
    "mifgsm": lambda m, x, y, **k: lfr_rs.mifgsm(m, x, y, eps=0.1, alpha=0.02, steps=3, **k),
    "ddn": lambda m, x, y, **k: lfr_rs.ddn(m, x, y, steps=3, **k),
    "apgd": lambda m, x, y, **k: lfr_rs.apgd(m, x, y, eps=0.1, steps=3, **k),
    "fab": lambda m, x, y, **k: lfr_rs.fab(m, x, y, eps=0.1, steps=3, **k),
    "square": lambda m, x, y, **k: lfr_rs.square(m, x, y, eps=0.1, queries=5, **k),
}


class Recording(nn.Module):
    """Records the dtype its first layer computed in."""

    def __init__(self, net):
        super().__init__()
        self.net, self.seen = net, set()

    def forward(self, x):
        self.seen.add(self.net.feature_extractor.conv1(x).dtype)
        return self.net(x)


@pytest.mark.parametrize("name", list(ATTACKS))
def test_every_attack_takes_autocast(name, trained_cnn, batch):
    x, y = batch[0][:8], batch[1][:8]
    model = Recording(trained_cnn)
    assert "autocast" in inspect.signature(getattr(lfr_rs, name)).parameters
    assert "autocast : {None" in getattr(lfr_rs, name).__doc__
    torch.manual_seed(0)
    adv = ATTACKS[name](model, x, y, autocast="bf16")
    assert model.seen == {torch.bfloat16}, "the model's layers ran in bfloat16"
    assert adv.dtype == torch.float32 and adv.shape == x.shape, "the iterate stays float32"
    # the same as passing the wrapped model yourself, bit for bit
    torch.manual_seed(0)
    assert torch.equal(ATTACKS[name](Autocast(trained_cnn, "bf16"), x, y), adv)


def test_autocast_none_is_the_kernel_itself(trained_cnn, batch):
    x, y = batch[0][:8], batch[1][:8]
    torch.manual_seed(0)
    a = lfr_rs.pgd(trained_cnn, x, y, eps=0.1, alpha=0.02, steps=5, autocast=None)
    torch.manual_seed(0)
    b = lfr_rs.pgd(trained_cnn, x, y, eps=0.1, alpha=0.02, steps=5)
    assert torch.equal(a, b)
    assert autocast_model(trained_cnn, None) is trained_cnn


def test_logits_and_input_gradient_are_float32(trained_cnn, batch):
    x = batch[0][:4].clone().requires_grad_(True)
    logits = Autocast(trained_cnn, "bf16")(x)
    assert logits.dtype == torch.float32
    logits.sum().backward()
    assert x.grad.dtype == torch.float32 and x.grad.abs().sum() > 0
    # the bfloat16 forward rounds: the logits are close to float32's, not equal
    reference = trained_cnn(x.detach())
    assert not torch.equal(logits.detach(), reference)
    assert torch.allclose(logits.detach(), reference, atol=0.25, rtol=0.05)


def test_robust_accuracy_records_autocast_and_stays_close(trained_cnn, batch):
    x, y = batch[0][:32], batch[1][:32]
    fast = dict(eps=0.1, steps=10, n_target_classes=3, queries=60, batch_size=16, detect_masking=False)
    full = lfr_rs.robust_accuracy(trained_cnn, x, y, **fast)
    low = lfr_rs.robust_accuracy(trained_cnn, x, y, autocast="bf16", **fast)
    assert full.settings["autocast"] is None and low.settings["autocast"] == "bf16"
    assert low.adversarial.dtype == torch.float32
    assert abs(low.worst - full.worst) <= 0.1
    assert not trained_cnn.training


def test_masking_checks_run_under_autocast_too(trained_cnn, batch):
    x, y = batch[0][:16], batch[1][:16]
    model = Recording(trained_cnn)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", lfr_rs.GradientMaskingWarning)
        r = lfr_rs.robust_accuracy(model, x, y, eps=0.3, attacks=("apgd-ce",), steps=5, batch_size=16, autocast="bf16")
    assert model.seen == {torch.bfloat16} and r.masking is not None


@pytest.mark.parametrize("value, error, match", [
    ("int8", ValueError, "bf16"),
    (16, TypeError, "autocast|string"),
    (torch.bfloat16, TypeError, "autocast|string"),
])
def test_bad_autocast_values(trained_cnn, batch, value, error, match):
    x, y = batch[0][:4], batch[1][:4]
    with pytest.raises(error, match=match):
        lfr_rs.pgd(trained_cnn, x, y, eps=0.1, alpha=0.02, autocast=value)
    with pytest.raises(error, match=match):
        lfr_rs.robust_accuracy(trained_cnn, x, y, eps=0.1, autocast=value, detect_masking=False)


def test_half_inputs_are_still_refused(trained_cnn, batch):
    x, y = batch[0][:4], batch[1][:4]
    with pytest.raises((TypeError, ValueError)):
        lfr_rs.pgd(trained_cnn, x.half(), y, eps=0.1, alpha=0.02, autocast="bf16")
