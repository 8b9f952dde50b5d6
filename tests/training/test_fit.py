"""``lfr_rs.training.fit`` with models and loaders that are not SmallCNN and
in-memory MNIST: a CIFAR-style ResNet-18 with BatchNorm, a torch DataLoader,
the BatchNorm/dropout rule, divergence, resume."""

import json

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from lfr_rs.losses import LFR, Defense, Standard, Trades
from lfr_rs.models import ResNet18, SmallCNN
from lfr_rs.training import CHECKPOINT, LOG, TensorBatches, TrainingDiverged, fit, load_checkpoint


def _bn_state(model):
    return {k: v.clone() for k, v in model.state_dict().items() if "running" in k or "num_batches" in k}


class _BatchNormSpy(Defense):
    """Wraps a method; checks that its inner maximisation leaves BatchNorm statistics alone."""

    name = "spy"

    def __init__(self, inner):
        self.inner = inner
        self.calls = 0

    def perturb(self, model, inputs, labels):
        before = _bn_state(model)
        x_adv = self.inner.perturb(model, inputs, labels)
        after = _bn_state(model)
        assert before.keys() == after.keys() and before
        for k in before:
            assert torch.equal(before[k], after[k]), f"inner maximisation changed {k}"
        assert not model.training
        self.calls += 1
        return x_adv

    def loss(self, model, inputs, labels, x_adv=None):
        assert model.training
        return self.inner.loss(model, inputs, labels, x_adv)


@pytest.mark.parametrize("inner", [LFR(eps=0.03, alpha=0.01, steps=2), Trades(eps=0.03, alpha=0.01, steps=2)],
                         ids=["lfr", "trades"])
def test_inner_maximisation_leaves_batchnorm_statistics(inner):
    torch.manual_seed(0)
    model = ResNet18(width=4)
    x, y = torch.rand(8, 3, 32, 32), torch.randint(0, 10, (8,))
    spy = _BatchNormSpy(inner)
    start = _bn_state(model)
    fit(model, [(x, y)], spy, torch.optim.SGD(model.parameters(), lr=0.01), epochs=1, progress=False, verbose=False)
    assert spy.calls == 1
    # the outer loss (train mode) is what moves them, once per model call of the method
    changed = _bn_state(model)
    assert not torch.equal(start["bn1.running_mean"], changed["bn1.running_mean"])
    calls = 2 if isinstance(inner, LFR) else 3
    assert int(changed["bn1.num_batches_tracked"]) == calls


def test_resnet18_trains_on_random_32x32_and_nothing_else_changes():
    torch.manual_seed(0)
    model = ResNet18(width=8)
    x, y = torch.rand(16, 3, 32, 32), torch.randint(0, 10, (16,))
    x0, y0 = x.clone(), y.clone()
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    result = fit(model, [(x, y)] * 4, LFR(eps=0.03, alpha=0.01, steps=2, lam=0.1), opt, epochs=3,
                 progress=False, verbose=False)
    losses = [e["loss"] for e in result.history]
    assert losses[-1] < losses[0]
    assert torch.equal(x, x0) and torch.equal(y, y0)  # the batches are not touched
    assert result.model is model and not model.training
    assert model(x).shape == (16, 10)


def _loader(seed):
    g = torch.Generator().manual_seed(42)
    x, y = torch.rand(40, 1, 8, 8, generator=g), torch.randint(0, 3, (40,), generator=g)
    return DataLoader(TensorDataset(x, y), batch_size=8, shuffle=True, generator=torch.Generator().manual_seed(seed))


def _net():
    torch.manual_seed(1)
    return nn.Sequential(nn.Flatten(), nn.Linear(64, 16), nn.ReLU(), nn.Dropout(0.2), nn.Linear(16, 3))


@pytest.mark.filterwarnings("ignore:the run ended near chance")  # random labels
def test_fit_with_a_dataloader_resumes_like_the_uninterrupted_run(tmp_path):
    def run(out, **kw):
        model = _net()
        opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
        sched = torch.optim.lr_scheduler.StepLR(opt, 1, gamma=0.5)
        return fit(model, _loader(7), "at", opt, epochs=3, scheduler=sched, out=out, progress=False, verbose=False,
                   config={"run": 1}, **kw)

    full = run(tmp_path / "full")
    run(tmp_path / "part", stop_after=1)
    torch.manual_seed(99)
    resumed = run(tmp_path / "part", resume=True)
    assert [e["loss"] for e in resumed.history] == [e["loss"] for e in full.history]
    assert [e["lr"] for e in full.history] == [0.1, 0.05, 0.025]
    for k, v in full.model.state_dict().items():
        assert torch.equal(v, resumed.model.state_dict()[k]), k
    state = load_checkpoint(tmp_path / "full" / CHECKPOINT)
    assert state["world_size"] == 1 and state["backend"] is None and state["config"] == {"run": 1}
    log = json.loads((tmp_path / "full" / LOG).read_text())
    assert log["world_size"] == 1 and [e["epoch"] for e in log["epochs"]] == [1, 2, 3]
    with pytest.raises(ValueError, match="the run differs"):
        model = _net()
        fit(model, _loader(7), "at", torch.optim.SGD(model.parameters(), lr=0.1), epochs=3, out=tmp_path / "full",
            resume=True, config={"run": 2}, progress=False, verbose=False)


@pytest.mark.filterwarnings("ignore:the run ended near chance")  # random labels
def test_fit_eval_loader_and_method_by_name():
    model = _net()
    result = fit(model, _loader(0), "standard", torch.optim.SGD(model.parameters(), lr=0.1), epochs=1,
                 eval_loader=_loader(1), progress=False, verbose=False)
    assert 0 <= result.history[0]["eval_clean"] <= 1 and result.checkpoint is None


@pytest.mark.parametrize("method", [Standard(), LFR(eps=0.1, alpha=0.05, steps=2)], ids=["standard", "lfr"])
def test_divergence_is_a_training_failure_for_every_method(method):
    """A diverging LFR run once surfaced the kernel's ValueError ("bad input", exit 2)."""
    torch.manual_seed(0)
    model = SmallCNN(zero_init_last=False)
    g = torch.Generator().manual_seed(0)
    x, y = torch.rand(64, 1, 28, 28, generator=g), torch.randint(0, 10, (64,), generator=g)
    opt = torch.optim.SGD(model.parameters(), lr=1e12)
    with pytest.raises(TrainingDiverged, match="lower the lr"):
        fit(model, TensorBatches(x, y, 16), method, opt, epochs=2, progress=False, verbose=False)


def test_batch_smaller_than_world_is_fine_in_one_process():
    model = _net()
    fit(model, [(torch.rand(1, 1, 8, 8), torch.tensor([1]))], Standard(), torch.optim.SGD(model.parameters(), lr=0.1),
        epochs=1, progress=False, verbose=False)
    assert F.softmax(model(torch.rand(2, 1, 8, 8)), 1).shape == (2, 3)
