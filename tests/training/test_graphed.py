"""``fit(..., graph=True)`` on the CPU: the capture-safe kernels the captured
step runs equal the eager ones bit for bit, and the step driver (capture after
an eager step, replay, re-attaching the static gradients, warm-up and ragged
batches running eagerly, non-finite replays, failed captures) trains exactly
as the eager ``fit`` when its CUDA capture is replaced by re-running the
captured body. The capture itself is tested on a GPU (tests/test_gpu_graphs.py)."""

import dataclasses

import pytest
import torch
from torch import nn

from lfr_rs import ShapeError, _capture_safe, _native, losses
from lfr_rs.training import TensorBatches, TrainingDiverged, fit
from lfr_rs.training import graphed

# a few steps on 70 random images: the runs are compared, not judged
pytestmark = pytest.mark.filterwarnings("ignore:the run ended near chance")

METHODS = {
    "standard": losses.Standard(),
    "at": losses.AT(eps=0.1, alpha=0.03, steps=3),
    "trades": losses.Trades(eps=0.1, alpha=0.03, steps=2),
    "llr": losses.LLR(eps=0.1, alpha=0.03, steps=2, lam=1.0, mu=0.5),
    "gradnorm": losses.GradNorm(lam=0.05),
    "lfr": losses.LFR(eps=0.1, alpha=0.03, steps=2, lam=0.05),
    "lfr-fd": losses.LFR(eps=0.1, alpha=0.03, steps=2, lam=0.05, hvp="fd"),
}


class _Net(nn.Module):
    """Conv, BatchNorm (statistics the warm-up must not move), dropout (RNG) and a logit scale buffer."""

    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.Softplus(), nn.Flatten(), nn.Dropout(0.2),
                                  nn.Linear(4 * 36, 3))
        self.register_buffer("scale", torch.ones(()))

    def forward(self, x):
        return self.body(x) * self.scale


def _data():
    g = torch.Generator().manual_seed(3)
    return torch.rand(70, 1, 8, 8, generator=g), torch.randint(0, 3, (70,), generator=g)


def _fit(method, graph, epochs=3, fake=None):
    torch.manual_seed(0)
    model = _Net()
    if fake is not None:
        fake.model = model
    x, y = _data()
    batches = TensorBatches(x, y, 32, generator=torch.Generator().manual_seed(1))
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    result = fit(model, batches, method, opt, epochs=epochs, warmup=0.5, graph=graph, progress=False, verbose=False)
    return result.history, model.state_dict()


class _FakeRecord:
    """``graphed._record`` without CUDA: 'capture' runs the body once and
    undoes what it changed (BatchNorm statistics, the RNG), as a capture,
    which executes nothing, would; 'replay' re-runs it and copies its outputs
    and gradients into the captured ones. ``model`` is set by ``_fit``."""

    def __init__(self, fail=None, before_replay=None):
        self.fail, self.before_replay, self.model = fail, before_replay, None
        self.captures, self.replays = 0, 0

    def __call__(self, body, reset, restore):
        if self.fail:  # as a real capture that fails after its warm-up moved BatchNorm's statistics
            rng = torch.get_rng_state()
            body()
            torch.set_rng_state(rng)
            raise RuntimeError(self.fail)
        self.captures += 1
        rng = torch.get_rng_state()
        reset()
        out = body()
        restore()
        torch.set_rng_state(rng)
        static = [(p, p.grad) for p in self.model.parameters() if p.grad is not None]

        def replay():
            self.replays += 1
            if self.before_replay:
                self.before_replay(self.model, self.replays)
            attached = [p.grad for p in self.model.parameters()]
            reset()
            for o, n in zip(out, body()):
                o.copy_(n)
            for p, g in static:
                g.copy_(p.grad)
            # a graph writes into its own tensors and leaves ``.grad`` alone
            for p, g in zip(self.model.parameters(), attached):
                p.grad = g

        return replay, out


def _patch(monkeypatch, **kw):
    fake = _FakeRecord(**kw)
    monkeypatch.setattr(graphed, "_is_cuda", lambda device: True)
    monkeypatch.setattr(graphed, "_record", fake)
    return fake


@pytest.mark.parametrize("name", sorted(METHODS))
def test_the_capture_safe_kernels_give_the_eager_loss(name):
    method = METHODS[name]
    torch.manual_seed(0)
    model = _Net().eval()
    x, y = _data()
    torch.manual_seed(5)
    eager = method(model, x[:16], y[:16])
    torch.manual_seed(5)
    with _capture_safe.capture_safe() as flags:
        fixed = method(model, x[:16], y[:16])
    assert torch.equal(fixed, eager)
    kernels = {"standard": 0, "at": 1, "trades": 1, "llr": 1, "gradnorm": 1, "lfr": 2, "lfr-fd": 2}[name]
    assert len(flags) == kernels and all(bool(f) for f in flags)
    if kernels:  # outside the block the eager kernels run again
        assert not _capture_safe._FLAGS.get()


@pytest.mark.parametrize("name", sorted(METHODS))
def test_fit_replaying_captured_steps_is_the_eager_fit(monkeypatch, name):
    """3 epochs of batches 32, 32, 6 with a half-epoch warm-up: the first
    step (partial strength) and the first of each shape run eagerly, the
    full-size and the ragged shape are captured, and every later step (6) is
    a replay; losses, accuracies and weights equal the eager fit's."""
    eager_history, eager_weights = _fit(METHODS[name], graph=False)
    fake = _patch(monkeypatch)
    history, weights = _fit(METHODS[name], graph=True, fake=fake)
    assert (fake.captures, fake.replays) == (2, 6)
    for a, b in zip(history, eager_history):
        assert {k: v for k, v in a.items() if k != "time_s"} == {k: v for k, v in b.items() if k != "time_s"}
    for k in eager_weights:
        assert torch.equal(weights[k], eager_weights[k]), k


def test_a_failed_capture_warns_once_per_shape_and_trains_eagerly(monkeypatch):
    eager_history, eager_weights = _fit(METHODS["lfr"], graph=False)
    fake = _patch(monkeypatch, fail="operation not permitted when stream is capturing")
    with pytest.warns(UserWarning, match="capturing the lfr step failed") as record:
        history, weights = _fit(METHODS["lfr"], graph=True, fake=fake)
    assert len([w for w in record if "capturing" in str(w.message)]) == 2
    assert [h["loss"] for h in history] == [h["loss"] for h in eager_history]
    assert all(torch.equal(weights[k], eager_weights[k]) for k in weights)


def test_non_finite_logits_in_a_replay_stop_training_before_the_update(monkeypatch):
    def poison(model, n):
        if n == 2:
            model.scale.fill_(float("nan"))

    fake = _patch(monkeypatch, before_replay=poison)
    with pytest.raises(TrainingDiverged, match="non-finite logits"):
        _fit(METHODS["lfr"], graph=True, fake=fake)


def test_graph_true_warns_where_no_step_is_captured(monkeypatch):
    with pytest.warns(UserWarning, match="CUDA graphs need a CUDA device") as record:
        history, weights = _fit(METHODS["gradnorm"], graph=True, epochs=1)
    assert record[0].filename == __file__
    eager_history, eager_weights = _fit(METHODS["gradnorm"], graph=False, epochs=1)
    assert history[0]["loss"] == eager_history[0]["loss"]

    @dataclasses.dataclass(frozen=True)
    class Weighted(losses.Standard):
        weights: list = dataclasses.field(default_factory=list)  # unhashable

    monkeypatch.setattr(graphed, "_is_cuda", lambda device: True)
    with pytest.warns(UserWarning, match="Weighted is not hashable"):
        _fit(Weighted(), graph=True, epochs=1)



def test_a_replay_checks_its_batch_as_the_eager_step_does():
    """Before each replay the batch is checked outside the graph: for
    Standard the labels only (its inputs may be standardised), for every
    other method the inputs in [0, 1] as well."""
    x, y = torch.rand(4, 1, 8, 8), torch.tensor([0, 1, 2, 0])
    standardised = x * 4 - 2
    assert torch.equal(_native._check_batch(standardised, y.to(torch.int32), 3, inputs_in_unit_box=False), y)
    assert _native._check_batch(standardised, y, 3, inputs_in_unit_box=False).dtype == torch.int64
    with pytest.raises(ValueError, match="label 3 is out of range for a model with 3 classes"):
        _native._check_batch(x, torch.tensor([0, 1, 3, 0]), 3, inputs_in_unit_box=False)
    with pytest.raises(ValueError, match="non-negative"):
        _native._check_batch(x, torch.tensor([0, -1, 2, 0]), 3, inputs_in_unit_box=False)
    with pytest.raises(TypeError, match="integer"):
        _native._check_batch(x, y.float(), 3, inputs_in_unit_box=False)
    with pytest.raises(ShapeError, match=r"\(N,\) = \(4,\)"):
        _native._check_batch(x, y[:3], 3, inputs_in_unit_box=False)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        _native._check_batch(standardised, y, 3)
    assert torch.equal(_native._check_batch(x, y, 3), y)


def test_a_replayed_step_with_a_label_out_of_range_raises_before_the_replay(monkeypatch):
    """The first batch runs eagerly and is captured; the second, of the same
    shape, holds a label the 3-class model has no logit for: the check
    before its replay raises, and nothing is replayed."""
    x, y = _data()
    bad = y[32:64].clone()
    bad[5] = 3
    fake = _patch(monkeypatch)
    torch.manual_seed(0)
    model = fake.model = _Net()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    with pytest.raises(ValueError, match="label 3 is out of range"):
        fit(model, [(x[:32], y[:32]), (x[32:64], bad)], METHODS["standard"], opt, epochs=1, graph=True,
            progress=False, verbose=False)
    assert (fake.captures, fake.replays) == (1, 0)
