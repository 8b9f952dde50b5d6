"""``graph=True`` on a CUDA device (the attacks, the LFR inner maximization,
``fit``'s training step): captured once per shape, replayed after, the eager
result (run by scripts/gpu_check.sh on the
GPU machine; skipped without a CUDA device). float64 models, so that a sign
step never flips on a last-bit difference."""

import copy
import warnings

import pytest
import torch

import lfr_rs
from lfr_rs import graphs

pytestmark = pytest.mark.gpu

KW = dict(eps=0.15, alpha=0.02, steps=10, random_start=False)


@pytest.fixture
def model64(trained_cnn, cuda):
    return copy.deepcopy(trained_cnn).double().to(cuda)


@pytest.fixture
def data64(batch, cuda):
    x, y = batch
    return x.double().to(cuda), y.to(cuda)


@pytest.mark.parametrize("keep_best", [False, True])
def test_the_first_call_captures_and_later_calls_replay_the_eager_result(model64, data64, keep_best):
    x, y = data64
    graphs.clear()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no capture failure
        for part in (slice(0, 32), slice(32, 64), slice(64, 96)):
            got = lfr_rs.pgd(model64, x[part], y[part], graph=True, keep_best=keep_best, **KW)
            want = lfr_rs.pgd(model64, x[part], y[part], keep_best=keep_best, **KW)
            assert torch.allclose(got, want, rtol=0, atol=1e-12)
    entries = graphs._cache[model64]
    assert len(entries) == 1 and isinstance(next(iter(entries.values())), graphs.CapturedAttack)
    graphs.clear(model64)
    assert model64 not in graphs._cache


def test_a_random_start_stays_in_the_ball(model64, data64):
    x, y = data64
    for _ in range(3):
        adv = lfr_rs.pgd(model64, x[:32], y[:32], eps=0.1, alpha=0.02, steps=5, graph=True)
        assert (adv - x[:32]).abs().max() <= 0.1 + 1e-12 and adv.min() >= 0 and adv.max() <= 1


def test_a_model_that_reads_a_value_back_falls_back_with_a_warning(model64, data64):
    x, y = data64

    class Syncing(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.inner = model64

        def forward(self, inputs):
            out = self.inner(inputs)
            return out * (1.0 if out.abs().max().item() < 1e9 else 0.0)

    model = Syncing().eval()
    with pytest.warns(UserWarning, match="CUDA graph capture failed"):
        first = lfr_rs.pgd(model, x[:16], y[:16], **KW, graph=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the failure is remembered: no second try, no second warning
        again = lfr_rs.pgd(model, x[:16], y[:16], **KW, graph=True)
    want = lfr_rs.pgd(model64, x[:16], y[:16], **KW)
    assert torch.equal(first, want) and torch.equal(again, want)


def test_non_finite_logits_in_a_replay_raise(model64, data64):
    x, y = data64
    class Scaled(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.inner = model64
            self.register_buffer("scale", torch.ones((), dtype=torch.float64, device=x.device))

        def forward(self, inputs):
            return self.inner(inputs) * self.scale

    model = Scaled().eval()
    lfr_rs.pgd(model, x[:16], y[:16], **KW, graph=True)
    lfr_rs.pgd(model, x[16:32], y[16:32], **KW, graph=True)
    model.scale.fill_(float("inf"))  # in place: the graph reads it
    with pytest.raises(ValueError, match="non-finite logits"):
        lfr_rs.pgd(model, x[16:32], y[16:32], **KW, graph=True)


@pytest.mark.parametrize("hvp", ["exact", "fd"])
def test_the_lfr_inner_maximization_replays_the_eager_result(model64, data64, hvp):
    x, y = data64
    kw = dict(eps=0.1, alpha=0.02, steps=5, random_start=False, hvp=hvp)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for part in (slice(0, 32), slice(32, 64)):
            got = graphs.lfr_perturb(model64, x[part], y[part], **kw)
            want = lfr_rs.lfr_perturb(model64, x[part], y[part], **kw)
            assert torch.allclose(got, want, rtol=0, atol=1e-12)


@pytest.mark.parametrize("loss", ["ce", "dlr"])
def test_apgd_replays_stay_in_the_ball_and_measure_what_eager_measures(model64, data64, loss):
    """A replay draws its random start inside the graph (not the eager
    draws), so the outcome is compared, not the bits: the bit-for-bit
    comparison of the captured body with the eager kernel is on the CPU
    (tests/attacks/test_graphs.py)."""
    x, y = data64
    kw = dict(eps=0.15, steps=20, loss=loss)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        lfr_rs.apgd(model64, x[:64], y[:64], graph=True, **kw)  # eager, then captured
        got = lfr_rs.apgd(model64, x[64:128], y[64:128], graph=True, **kw)  # a replay
    assert (got - x[64:128]).abs().max() <= 0.15 + 1e-12 and got.min() >= 0 and got.max() <= 1
    want = lfr_rs.apgd(model64, x[64:128], y[64:128], **kw)
    acc = [(model64(a).argmax(1) == y[64:128]).double().mean().item() for a in (got, want)]
    assert abs(acc[0] - acc[1]) <= 0.1, acc


def test_mifgsm_replays_the_eager_result(model64, data64):
    x, y = data64
    kw = dict(eps=0.1, alpha=0.02, steps=8)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for part in (slice(0, 32), slice(32, 64)):
            got = lfr_rs.mifgsm(model64, x[part], y[part], graph=True, **kw)
            assert torch.allclose(got, lfr_rs.mifgsm(model64, x[part], y[part], **kw), rtol=0, atol=1e-12)


def test_fgsm_replays_the_eager_result(model64, data64):
    x, y = data64
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for part in (slice(0, 32), slice(32, 64)):
            got = lfr_rs.fgsm(model64, x[part], y[part], eps=0.1, graph=True)
            assert torch.allclose(got, lfr_rs.fgsm(model64, x[part], y[part], eps=0.1), rtol=0, atol=1e-12)


@pytest.fixture
def train_run(batch, cuda, monkeypatch):
    from lfr_rs.training import TensorBatches, fit
    from lfr_rs.training import graphed

    x, y = batch
    x, y = x[:96].double().to(cuda), y[:96].to(cuda)
    calls = {"replays": 0}
    real = graphed.CapturedStep.__call__

    def counted(self, *a):
        calls["replays"] += 1
        return real(self, *a)

    monkeypatch.setattr(graphed.CapturedStep, "__call__", counted)

    def run(method, graph, model_wrapper=None):
        torch.manual_seed(0)
        net = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 5, stride=2), torch.nn.BatchNorm2d(4), torch.nn.Softplus(),
                                  torch.nn.Flatten(), torch.nn.Linear(4 * 12 * 12, 10)).double().to(cuda)
        model = net if model_wrapper is None else model_wrapper(net)
        opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
        batches = TensorBatches(x, y, 32, generator=torch.Generator().manual_seed(1))
        calls["replays"] = 0
        result = fit(model, batches, method, opt, epochs=3, graph=graph, progress=False, verbose=False)
        return result.history, {k: v.clone() for k, v in net.state_dict().items()}, calls["replays"]

    return run


@pytest.mark.parametrize("name", ["standard", "gradnorm"])
def test_fit_with_a_captured_step_trains_as_the_eager_fit(train_run, name):
    """Methods without random starts: the same losses and weights to float64
    rounding; 8 of the 9 steps are replays."""
    from lfr_rs import losses

    method = losses.make_method(name)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="the run ended near chance")
        eager, eager_w, _ = train_run(method, False)
        warnings.simplefilter("error")
        got, got_w, replays = train_run(method, True)
    assert replays == 8
    for a, b in zip(got, eager):
        assert abs(a["loss"] - b["loss"]) <= 1e-9 and a["train_acc"] == b["train_acc"]
    for k in eager_w:
        assert torch.allclose(got_w[k].double(), eager_w[k].double(), rtol=0, atol=1e-9), k


@pytest.mark.parametrize("name", ["lfr", "lfr-fd", "at", "trades", "llr"])
def test_fit_with_a_captured_step_with_random_starts_replays_and_learns(train_run, name):
    """Random starts are drawn inside the graph: the run is compared by its
    losses, not its bits."""
    from lfr_rs import losses

    method = {
        "lfr": losses.LFR(eps=0.1, alpha=0.025, steps=5, lam=0.02),
        "lfr-fd": losses.LFR(eps=0.1, alpha=0.025, steps=5, lam=0.02, hvp="fd"),
        "at": losses.AT(eps=0.1, alpha=0.025, steps=5),
        "trades": losses.Trades(eps=0.1, alpha=0.025, steps=5),
        "llr": losses.LLR(eps=0.1, alpha=0.025, steps=5),
    }[name]
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="the run ended near chance")
        eager, _, _ = train_run(method, False)
        warnings.simplefilter("error", category=UserWarning)
        warnings.filterwarnings("ignore", message="the run ended near chance")
        got, _, replays = train_run(method, True)
    assert replays == 8
    assert all(abs(a["loss"] - b["loss"]) <= 0.05 * b["loss"] for a, b in zip(got, eager)), (got, eager)


def test_a_training_model_that_reads_a_value_back_trains_eagerly_with_a_warning(train_run):
    from lfr_rs import losses

    class Syncing(torch.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, x):
            out = self.inner(x)
            if out.abs().max().item() > 1e9:  # a host read: capture refuses it
                raise RuntimeError("unreachable")
            return out

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="the run ended near chance")
        eager, _, _ = train_run(losses.GradNorm(), False, Syncing)
    with pytest.warns(UserWarning, match="capturing the gradnorm step failed"):
        got, _, replays = train_run(losses.GradNorm(), True, Syncing)
    assert replays == 0 and [h["loss"] for h in got] == [h["loss"] for h in eager]
