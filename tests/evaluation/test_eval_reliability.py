"""The evaluation harness fails loudly on bad models and arguments, keeps the
caller's random state and train/eval flags, and (under torchrun) checks
gradient masking on every rank's samples."""

import os
import signal
import socket
import subprocess
import sys
import threading
import warnings
from pathlib import Path

import pytest
import torch
from torch import nn

import ddp_cases
import lfr_rs
from lfr_rs import cli
from lfr_rs.evaluation import GradientMaskingWarning, paper_protocol, robust_accuracy
from lfr_rs.training import CheckpointError, load_checkpoint, save_checkpoint

HERE = Path(__file__).resolve().parents[1]  # tests/: ddp_worker.py, ddp_cases.py
K = dict(steps=5, n_target_classes=2, queries=20)
FAST = dict(eps=0.1, detect_masking=False, **K)
PAPER = dict(attacks=("mifgsm",), steps=2, ddn_steps=2, progress=False)
# the cascade and its masking checks on ddp_cases' teacher, small enough for two CPU processes
STRONG_MASKING = dict(eps=0.03, attacks=("apgd-ce", "square"), steps=5, queries=30, batch_size=4, seed=0,
                      progress=False)


def mlp(classes=10):
    torch.manual_seed(0)
    return nn.Sequential(nn.Flatten(), nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, classes)).eval()


@pytest.fixture
def m():
    return mlp()


@pytest.fixture
def x():
    return torch.rand(16, 1, 8, 8, generator=torch.Generator().manual_seed(1))


@pytest.fixture
def y(m, x):
    with torch.no_grad():
        return m(x).argmax(1)


def quiet_masking():
    """A context in which the masking checks' warnings are not errors (pytest's filter)."""
    ctx = warnings.catch_warnings()
    ctx.__enter__()
    warnings.simplefilter("ignore", GradientMaskingWarning)
    return ctx


# --- what the model returns ------------------------------------------------------


def test_non_finite_clean_logits_raise_without_masking_checks(m, x, y):
    def standardised(a):  # 0 / 0 on a blank image
        flat = a.flatten(1)
        return m(((flat - flat.mean(1, keepdim=True)) / flat.std(1, keepdim=True)).view_as(a))

    x, y = x.clone(), y.clone()
    x[:4] = 0.0
    y[:4] = 1  # not the argmax of a NaN row (0): a harness that let NaN through would count them as fooled
    with pytest.raises(ValueError, match="non-finite"):
        robust_accuracy(standardised, x, y, **FAST)
    with pytest.raises(ValueError, match="non-finite"):
        paper_protocol(standardised, x, y, **PAPER)
    with pytest.raises(ValueError, match="non-finite"):
        lfr_rs.evaluate(standardised, x, y, attacks=("mifgsm",), steps=2)


@pytest.mark.parametrize("detect_masking", [False, True])
def test_out_of_range_labels_raise(m, x, y, detect_masking):
    bad = torch.full_like(y, 12)
    with pytest.raises(ValueError, match=r"label 12 is out of range \[0, 10\) for a model with 10 classes"):
        robust_accuracy(m, x, bad, **{**FAST, "detect_masking": detect_masking})


def test_out_of_range_labels_raise_in_the_other_harnesses(m, x, y):
    bad = torch.full_like(y, 12)
    with pytest.raises(ValueError, match="out of range"):
        paper_protocol(m, x, bad, **PAPER)
    with pytest.raises(ValueError, match="out of range"):
        lfr_rs.evaluate(m, x, bad, attacks=("mifgsm",), steps=2)


WRONG_SHAPES = {
    "(N,)": lambda net: lambda a: net(a)[:, 0],
    "(N,C,1)": lambda net: lambda a: net(a)[:, :, None],
}
HARNESSES = {
    "robust_accuracy": lambda f, x, y: robust_accuracy(f, x, y, **FAST),
    "paper_protocol": lambda f, x, y: paper_protocol(f, x, y, **PAPER),
    "evaluate": lambda f, x, y: lfr_rs.evaluate(f, x, y, attacks=("mifgsm",), steps=2),
    "pgd": lambda f, x, y: lfr_rs.pgd(f, x, y, eps=0.1, alpha=0.05, steps=2),
    "apgd": lambda f, x, y: lfr_rs.apgd(f, x, y, eps=0.1, steps=2),
}


@pytest.mark.parametrize("harness", HARNESSES)
@pytest.mark.parametrize("shape", WRONG_SHAPES)
def test_wrong_logit_shape_is_one_shape_error(m, x, y, harness, shape):
    with pytest.raises(lfr_rs.ShapeError, match=r"logits of shape \(N, C\) = \(16, C\) for a batch of 16, got \["):
        HARNESSES[harness](WRONG_SHAPES[shape](m), x, y)


@pytest.mark.parametrize("harness", HARNESSES)
def test_non_tensor_output_says_what_was_expected(m, x, y, harness):
    # Not a tensor at all is a TypeError (as in the kernels), naming the (N, C) logits expected and what came.
    with pytest.raises(TypeError, match=r"torch.Tensor of logits of shape \(N, C\).*tuple"):
        HARNESSES[harness](lambda a: (m(a),), x, y)


@pytest.mark.parametrize("kernel", ["pgd", "apgd", "fgsm", "grad_norm_penalty"])
def test_forward_that_detaches_its_input_is_explained(m, x, y, kernel):
    run = {
        "pgd": lambda f: lfr_rs.pgd(f, x, y, eps=0.1, alpha=0.05, steps=2),
        "apgd": lambda f: lfr_rs.apgd(f, x, y, eps=0.1, steps=2),
        "fgsm": lambda f: lfr_rs.fgsm(f, x, y, eps=0.1),
        "grad_norm_penalty": lambda f: lfr_rs.grad_norm_penalty(f, x, y),
    }[kernel]
    with pytest.raises(ValueError, match="cut the autograd graph from its input") as info:
        run(lambda a: m(a.detach()))
    assert not isinstance(info.value, lfr_rs.TorchError) and "frame #" not in str(info.value)


# --- attack lists and defaults ---------------------------------------------------------


def test_duplicate_attacks_are_refused(m, x, y):
    with pytest.raises(ValueError, match="apgd-ce given more than once"):
        robust_accuracy(m, x, y, attacks=("apgd-ce", "apgd-ce"), **FAST)
    with pytest.raises(ValueError, match="more than once"):
        paper_protocol(m, x, y, **{**PAPER, "attacks": ("mifgsm", "mifgsm")})


def test_a_single_attack_name_is_accepted(m, x, y):
    r = robust_accuracy(m, x, y, attacks="square", **FAST)
    assert list(r.attacks) == ["square"] and r.settings["attack_order"] == ["square"]
    assert paper_protocol(m, x, y, **{**PAPER, "attacks": "mifgsm"})["attacks"] == ["mifgsm"]
    with pytest.raises(ValueError, match="unknown attack"):
        robust_accuracy(m, x, y, attacks="squares", **FAST)
    with pytest.raises(ValueError, match="AutoAttack's budgets"):  # "standard" is AutoAttack's set, at its budgets
        robust_accuracy(m, x, y, attacks="standard", **FAST)


def test_default_attacks_follow_the_norm(m, x, y):
    r = robust_accuracy(m, x, y, eps=0.5, norm="l2", steps=5, n_target_classes=2, detect_masking=False)
    assert list(r.attacks) == ["apgd-ce", "apgd-t"]
    r = robust_accuracy(m, x, y, eps=0.05, steps=2, n_target_classes=2, queries=10, detect_masking=False)
    assert list(r.attacks) == ["apgd-ce", "apgd-t", "square"]


def test_default_target_classes_follow_the_model(x):
    small = mlp(classes=5)  # targeted DLR needs at least 4
    with torch.no_grad():
        y = small(x).argmax(1)
    r = robust_accuracy(small, x, y, eps=0.1, attacks=("apgd-t",), steps=3, detect_masking=False)
    assert r.settings["n_target_classes"] == 4 and r.attacks["apgd-t"].attacked == 16


@pytest.mark.parametrize("classes", [2, 3])
def test_default_attacks_skip_apgd_t_below_four_classes(x, classes):
    small = mlp(classes=classes)
    with torch.no_grad():
        y = small(x).argmax(1)
    r = robust_accuracy(small, x, y, eps=0.1, steps=3, queries=10, detect_masking=False)
    assert list(r.attacks) == ["apgd-ce", "square"] and r.settings["attack_order"] == ["apgd-ce", "square"]
    r = robust_accuracy(small, x, y, eps=0.5, norm="l2", steps=3, detect_masking=False)
    assert list(r.attacks) == ["apgd-ce"]


@pytest.mark.parametrize("attacks, classes", [(("apgd-ce", "apgd-t"), 3), (("apgd-ce", "apgd-dlr"), 2)])
def test_dlr_attacks_named_for_too_few_classes_fail_before_attacking(x, attacks, classes):
    small = mlp(classes=classes)
    with torch.no_grad():
        y = small(x).argmax(1)
    counted = []

    def model(b):
        counted.append(len(b))
        return small(b)

    with pytest.raises(ValueError, match=f"{attacks[1]} at least"):
        robust_accuracy(model, x, y, eps=0.1, attacks=attacks, steps=3, detect_masking=False)
    assert sum(counted) == len(x)  # only the clean pass ran


def test_default_target_classes_are_nine_for_ten_classes(m, x, y):
    r = robust_accuracy(m, x[:2], y[:2], eps=0.01, attacks=("apgd-t",), steps=1, detect_masking=False)
    assert r.settings["n_target_classes"] == 9


def test_evaluate_is_the_function(m, x, y):
    from lfr_rs.evaluation import evaluate

    assert lfr_rs.evaluate is evaluate and callable(lfr_rs.evaluate)
    out = lfr_rs.evaluate(m, x, y, protocol="paper", attacks=("mifgsm",), steps=2, ddn_steps=2, progress=False)
    assert out["protocol"] == "paper" and out["n"] == 16 and out["clean"] == 1.0


# --- random state and modes ------------------------------------------------------------


def test_masking_checks_are_seeded_and_leave_the_callers_generator_alone(m, x, y):
    ctx = quiet_masking()
    try:
        runs = []
        for caller_seed in (1, 2):
            torch.manual_seed(caller_seed)
            state = torch.get_rng_state()
            r = robust_accuracy(m, x, y, eps=0.1, attacks=("apgd-ce",), steps=5, seed=0)
            assert torch.equal(torch.get_rng_state(), state)
            runs.append(r.masking.summary())
    finally:
        ctx.__exit__(None, None, None)
    assert runs[0] == runs[1]
    assert runs[0]["pgd_accuracy"] is not None and runs[0]["eps1_accuracy"] is not None


class Gated(nn.Module):
    """An MLP whose first forward in each thread runs a hook (to make two evaluations overlap)."""

    def __init__(self, hooks):
        super().__init__()
        self.net = mlp()
        self.frozen = nn.Dropout(0.0).eval()  # frozen in eval inside a training model
        self.hooks, self.seen = hooks, set()

    def forward(self, a):
        me = threading.current_thread().name
        if me not in self.seen:
            self.seen.add(me)
            self.hooks.get(me, lambda: None)()
        return self.net(self.frozen(a))


def test_overlapping_evaluations_restore_the_original_modes(x, y):
    a_entered, b_entered, a_done = threading.Event(), threading.Event(), threading.Event()

    def a_hook():
        a_entered.set()
        assert b_entered.wait(30)

    def b_hook():
        b_entered.set()
        assert a_done.wait(30)

    model = Gated({"A": a_hook, "B": b_hook}).train()
    model.frozen.eval()
    before = {name: mod.training for name, mod in model.named_modules()}
    errors = []

    def run(done=None):
        try:
            robust_accuracy(model, x, y, eps=0.1, attacks="apgd-ce", steps=2, detect_masking=False)
        except BaseException as e:  # noqa: BLE001
            errors.append(e)
        finally:
            if done is not None:
                done.set()

    a = threading.Thread(target=run, args=(a_done,), name="A")
    b = threading.Thread(target=run, name="B")
    a.start()
    assert a_entered.wait(30)
    b.start()  # enters while A holds the model in eval mode, and finishes after A
    a.join(60)
    b.join(60)
    assert not a.is_alive() and not b.is_alive() and not errors, errors
    assert {name: mod.training for name, mod in model.named_modules()} == before
    assert model.training and not model.frozen.training


def test_nested_evaluations_restore_the_original_modes(x, y):
    model = mlp().train()
    ctx = quiet_masking()
    try:
        robust_accuracy(model, x[:4], y[:4], eps=0.1, attacks="apgd-ce", steps=2)  # the masking checks nest
    finally:
        ctx.__exit__(None, None, None)
    assert all(mod.training for mod in model.modules())


# --- checkpoints -----------------------------------------------------------------------------


def test_resaved_checkpoint_says_what_it_is_and_how_to_load_it(tmp_path, capsys):
    p, q = tmp_path / "checkpoint.pt", tmp_path / "resaved.pt"
    save_checkpoint(p, {"format": 2, "model": mlp().state_dict(), "epoch": 1, "config": {"method": "standard"}})
    torch.save(load_checkpoint(p), q)
    with pytest.raises(CheckpointError, match="unwrapped training state") as info:
        load_checkpoint(q)
    assert "torch.load" in str(info.value) and "save_checkpoint" in str(info.value)
    assert "unknown format" not in str(info.value)
    with pytest.raises(SystemExit):
        cli.main(["eval", str(q), "--device", "cpu"])
    err = capsys.readouterr().err
    assert "unwrapped training state" in err and "save_checkpoint" in err


# --- torchrun ----------------------------------------------------------------------------------

WORKER = """
import os, sys, warnings
import torch
import ddp_cases
from lfr_rs import distributed
from lfr_rs.evaluation import robust_accuracy

SETTINGS = {settings!r}
torch.set_num_threads(1)
distributed.init_from_env("cpu")
x, y = ddp_cases.data(9, seed=12)
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    r = robust_accuracy(ddp_cases._teacher(), x, y, **SETTINGS)
if distributed.is_main():
    torch.save({"n": r.n, "masking": r.masking.summary()}, sys.argv[1])
distributed.shutdown()  # then leave without the interpreter's teardown, where gloo's threads can abort
sys.stdout.flush()
os._exit(0)
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_masking_checks_cover_every_rank_under_torchrun(tmp_path):
    script, out = tmp_path / "worker.py", tmp_path / "out.pt"
    script.write_text(WORKER.replace("{settings!r}", repr(STRONG_MASKING)))
    env = dict(os.environ, OMP_NUM_THREADS="1", GLOO_SOCKET_IFNAME="lo", MASTER_ADDR="127.0.0.1",
               PYTHONPATH=os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")]))
    env.pop("WORLD_SIZE", None)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nnodes=1", "--nproc-per-node=2", "--rdzv-backend=c10d",
           f"--rdzv-endpoint=127.0.0.1:{_free_port()}", "--local-addr=127.0.0.1", str(script), str(out)]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)
    try:
        log, _ = proc.communicate(timeout=180)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        pytest.fail("torchrun did not finish within 180s")
    assert proc.returncode == 0, log
    sharded = torch.load(out, weights_only=False)
    assert sharded["n"] == 9 and sharded["masking"]["n"] == 9

    # Each rank checks its share (rows 0..3 and 4..8) from the same seed: the
    # combined numbers equal one process checking the two shares in turn.
    x, y = ddp_cases.data(9, seed=12)
    ctx = quiet_masking()
    try:
        parts = [robust_accuracy(ddp_cases._teacher(), x[a:b], y[a:b], **STRONG_MASKING)
                 for a, b in ((0, 4), (4, 9))]
    finally:
        ctx.__exit__(None, None, None)
    got = sharded["masking"]
    for key in ("pgd_accuracy", "dead_gradients", "eps1_accuracy"):
        assert got[key] == pytest.approx(sum(getattr(p.masking, key) * p.n for p in parts) / 9), key
    assert got["square_only"] == sum(p.masking.square_only for p in parts)
