"""``fit``'s guards: divergence in an epoch's last step, empty loaders, batches
that are not pairs, a resumed run that was trained differently, and the warm-up."""

import json

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from lfr_rs.losses import AT, LFR, LLR, GradNorm, Standard, Trades, make_method
from lfr_rs.training import CHECKPOINT, LOG, TrainingDiverged, fit, load_checkpoint, save_checkpoint


class _Loud(nn.Module):
    """A tiny MLP whose logits are scaled by 1e3, so that a huge lr makes its weights overflow."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))

    def forward(self, x):
        return self.net(x) * 1e3


def _data(n=16):
    g = torch.Generator().manual_seed(0)
    return torch.rand(n, 1, 8, 8, generator=g), torch.randint(0, 10, (n,), generator=g)


def _quiet(**kw):
    return dict(progress=False, verbose=False, **kw)


@pytest.mark.parametrize("method", ["standard", "at", "lfr", "trades"])
def test_a_divergence_in_the_last_step_is_not_saved(tmp_path, method):
    model = _Loud()
    x, y = _data()
    options = {} if method == "standard" else {"eps": 0.1, "alpha": 0.05, "steps": 2}
    with pytest.raises(TrainingDiverged, match="non-finite weights"):
        fit(model, [(x, y)], make_method(method, **options), torch.optim.SGD(model.parameters(), lr=1e37),
            epochs=1, out=tmp_path, **_quiet())
    assert not (tmp_path / CHECKPOINT).exists() and not (tmp_path / LOG).exists()


def test_the_last_good_checkpoint_is_kept(tmp_path):
    model = _Loud()
    x, y = _data()
    opt = torch.optim.SGD(model.parameters(), lr=1e-4)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda e: 1.0 if e == 0 else 1e41)
    with pytest.raises(TrainingDiverged, match="still holds epoch 1"):
        fit(model, [(x, y)], "standard", opt, epochs=2, scheduler=sched, out=tmp_path, **_quiet())
    state = load_checkpoint(tmp_path / CHECKPOINT)
    assert state["epoch"] == 1
    assert all(bool(torch.isfinite(v).all()) for v in state["model"].values())
    assert [e["epoch"] for e in json.loads((tmp_path / LOG).read_text())["epochs"]] == [1]


@pytest.mark.parametrize("loader", [
    DataLoader(TensorDataset(*_data(5)), batch_size=8, drop_last=True), [],
], ids=["drop_last", "list"])
def test_an_empty_loader_is_an_error(tmp_path, loader):
    model = _Loud()
    with pytest.raises(ValueError, match="no samples|empty"):
        fit(model, loader, "standard", torch.optim.SGD(model.parameters(), lr=0.1), epochs=2, out=tmp_path,
            **_quiet())
    assert not (tmp_path / CHECKPOINT).exists()


@pytest.mark.parametrize("batch", [(torch.rand(4, 1, 8, 8),), torch.rand(4, 1, 8, 8), (torch.rand(4, 1, 8, 8), 3)],
                         ids=["one-tuple", "tensor", "not-a-tensor"])
def test_batches_must_be_pairs(batch):
    model = _Loud()
    with pytest.raises(TypeError, match=r"\(inputs, labels"):
        fit(model, [batch], "standard", torch.optim.SGD(model.parameters(), lr=0.1), epochs=1, **_quiet())


@pytest.mark.parametrize("eval_loader", [[], DataLoader(TensorDataset(*_data(5)), batch_size=8, drop_last=True),
                                         iter([])], ids=["list", "drop_last", "iterator"])
def test_an_empty_eval_loader_is_refused_before_anything_is_written(tmp_path, eval_loader):
    model = _Loud()
    x, y = _data()
    with pytest.raises(ValueError, match="eval_loader"):
        fit(model, [(x, y)], "standard", torch.optim.SGD(model.parameters(), lr=1e-3), epochs=1,
            eval_loader=eval_loader, out=tmp_path, **_quiet())
    assert not (tmp_path / CHECKPOINT).exists() and not (tmp_path / LOG).exists()


def test_a_non_json_evaluation_writes_neither_file(tmp_path):
    model = _Loud()
    x, y = _data()
    with pytest.raises(ValueError, match="cannot be written as JSON"):
        fit(model, [(x, y)], "standard", torch.optim.SGD(model.parameters(), lr=1e-3), epochs=1,
            evaluate=lambda m: {"score": float("nan")}, out=tmp_path, **_quiet())
    assert not (tmp_path / CHECKPOINT).exists() and not (tmp_path / LOG).exists()


@pytest.mark.filterwarnings("ignore:the run ended near chance")
@pytest.mark.parametrize("change, match", [
    (lambda p: ("lfr", torch.optim.SGD(p, lr=0.1)), "method: checkpoint 'standard', now 'lfr'"),
    (lambda p: ("standard", torch.optim.SGD(p, lr=0.5)), r"optimizer_options.lr: checkpoint 0.1, now 0.5"),
    (lambda p: ("standard", torch.optim.Adam(p, lr=0.1)), "optimizer: checkpoint 'SGD', now 'Adam'"),
    (lambda p: (AT(eps=0.2), torch.optim.SGD(p, lr=0.1)), "method"),
])
def test_resume_without_config_refuses_a_different_run(tmp_path, change, match):
    x, y = _data()
    model = _Loud()
    fit(model, [(x, y)], "standard", torch.optim.SGD(model.parameters(), lr=0.1), epochs=3, stop_after=1,
        out=tmp_path, **_quiet())
    model = _Loud()
    method, opt = change(model.parameters())
    with pytest.raises(ValueError, match=match):
        fit(model, [(x, y)], method, opt, epochs=2, resume=True, out=tmp_path, **_quiet())


@pytest.mark.filterwarnings("ignore:the run ended near chance")
def test_a_checkpoint_without_a_run_identity_refuses_another_optimizer_clearly(tmp_path):
    x, y = _data()
    model = _Loud()
    fit(model, [(x, y)], "standard", torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9), epochs=3,
        stop_after=1, out=tmp_path, **_quiet())
    state = load_checkpoint(tmp_path / CHECKPOINT)
    del state["fit"]  # as written before run identities were recorded
    save_checkpoint(tmp_path / CHECKPOINT, state)
    model = _Loud()
    with pytest.raises(ValueError, match="optimizer state does not fit this Adam"):
        fit(model, [(x, y)], "standard", torch.optim.Adam(model.parameters(), lr=0.1), epochs=2, resume=True,
            out=tmp_path, **_quiet())


@pytest.mark.filterwarnings("ignore:the run ended near chance")
def test_resume_with_the_same_run_continues(tmp_path):
    x, y = _data()
    model = _Loud()
    fit(model, [(x, y)], "standard", torch.optim.SGD(model.parameters(), lr=1e-4), epochs=2, stop_after=1,
        out=tmp_path, **_quiet())
    model = _Loud()
    result = fit(model, [(x, y)], "standard", torch.optim.SGD(model.parameters(), lr=1e-4), epochs=2, resume=True,
                 out=tmp_path, **_quiet())
    assert [e["epoch"] for e in result.history] == [1, 2]
    assert load_checkpoint(tmp_path / CHECKPOINT)["fit"]["optimizer_options"]["lr"] == 1e-4


# ---- warm-up


def test_at_strength_scales_the_ramped_options_only():
    lfr = LFR(eps=0.3, alpha=0.01, steps=40, lam=0.02)
    half = lfr.at_strength(0.5)
    assert (half.eps, half.alpha, half.lam, half.steps) == (0.15, 0.005, 0.01, 40)
    llr = LLR(eps=0.3, alpha=0.01, lam=4.0, mu=3.0).at_strength(0.25)
    assert (llr.eps, llr.alpha, llr.lam, llr.mu) == (0.075, 0.0025, 1.0, 0.75)
    assert Trades(beta=6.0).at_strength(0.5).beta == 6.0 and Trades().at_strength(0.5).eps == 0.15
    assert GradNorm(lam=0.02).at_strength(0.5).lam == 0.01
    assert Standard().at_strength(0.1) == Standard() and lfr.at_strength(1.0) is lfr
    for bad in (0.0, -0.1, 1.5):
        with pytest.raises(ValueError, match=r"\(0, 1\]"):
            lfr.at_strength(bad)


class _Recorder(AT):
    """AT that records the radius of every step it runs."""

    seen: list = []

    def perturb(self, model, inputs, labels):
        _Recorder.seen.append(round(self.eps, 10))
        return super().perturb(model, inputs, labels)


@pytest.mark.filterwarnings("ignore:the run ended near chance")
def test_warmup_ramps_the_radius_linearly_over_sgd_steps(tmp_path):
    x, y = _data(16)
    batches = [(x[:8], y[:8]), (x[8:], y[8:])]
    _Recorder.seen = []
    model = _Loud()
    result = fit(model, batches, _Recorder(eps=0.4, alpha=0.1, steps=1), torch.optim.SGD(model.parameters(), lr=1e-4),
                 epochs=3, warmup=2, out=tmp_path, stop_after=2, **_quiet())
    assert _Recorder.seen == [0.1, 0.2, 0.3, 0.4]  # 4 warm-up steps: 1/4, 2/4, 3/4, 4/4 of eps
    assert [e["strength"] for e in result.history] == [0.5, 1.0]
    model = _Loud()
    fit(model, batches, _Recorder(eps=0.4, alpha=0.1, steps=1), torch.optim.SGD(model.parameters(), lr=1e-4),
        epochs=3, warmup=2, out=tmp_path, resume=True, **_quiet())
    assert _Recorder.seen == [0.1, 0.2, 0.3, 0.4, 0.4, 0.4]  # resumed after the ramp: full strength
    with pytest.raises(ValueError, match="warmup: checkpoint 2, now 1"):
        fit(_Loud(), batches, _Recorder(eps=0.4, alpha=0.1, steps=1), torch.optim.SGD(model.parameters(), lr=1e-4),
            epochs=4, warmup=1, out=tmp_path, resume=True, **_quiet())


def test_warmup_needs_a_sized_loader_and_a_valid_length():
    x, y = _data(8)
    model = _Loud()
    opt = torch.optim.SGD(model.parameters(), lr=1e-4)
    with pytest.raises(TypeError, match="len"):
        fit(model, iter([(x, y)]), "at", opt, epochs=1, warmup=1, **_quiet())
    with pytest.raises(ValueError, match="warmup"):
        fit(model, [(x, y)], "at", opt, epochs=1, warmup=-1, **_quiet())
