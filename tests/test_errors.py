"""Every bad input raises the documented exception type, and every exception
type is raised at least once. No PanicException (a BaseException) ever escapes."""

import subprocess
import sys

import pytest
import torch
from torch import nn

import lfr_rs

# name -> attack(model, x, y, **overrides) with valid defaults
ATTACKS = {
    "fgsm": lambda m, x, y, **kw: lfr_rs.fgsm(m, x, y, **{"eps": 0.1, **kw}),
    "pgd": lambda m, x, y, **kw: lfr_rs.pgd(m, x, y, **{"eps": 0.1, "alpha": 0.05, "steps": 2, **kw}),
    "mifgsm": lambda m, x, y, **kw: lfr_rs.mifgsm(m, x, y, **{"eps": 0.1, "alpha": 0.05, "steps": 2, **kw}),
    "ddn": lambda m, x, y, **kw: lfr_rs.ddn(m, x, y, **{"steps": 2, **kw}),
}
all_attacks = pytest.mark.parametrize("name", ATTACKS)


class Boom(Exception):
    pass


def raises(exc_type, fn, *args, match=None, **kwargs):
    """Calls ``fn`` and returns the exception it raises, which must be an
    ``Exception`` (not a bare ``BaseException`` such as PanicException) of
    ``exc_type``."""
    try:
        fn(*args, **kwargs)
    except Exception as e:  # noqa: BLE001
        assert isinstance(e, exc_type), f"expected {exc_type.__name__}, got {type(e).__name__}: {e}"
        if match is not None:
            assert match in str(e), str(e)
        return e
    except BaseException as e:  # a Rust panic surfaces as pyo3_runtime.PanicException
        pytest.fail(f"{type(e).__module__}.{type(e).__name__} escaped `except Exception`: {e!r}")
    pytest.fail(f"no exception raised, expected {exc_type.__name__}")


@pytest.fixture
def model():
    return nn.Sequential(nn.Flatten(), nn.Linear(16, 3))


@pytest.fixture
def x():
    return torch.rand(4, 1, 4, 4)


@pytest.fixture
def y():
    return torch.tensor([0, 1, 2, 1])


# --- argument values -> ValueError --------------------------------------------


@pytest.mark.parametrize("eps", [-0.1, float("nan"), float("inf")])
@pytest.mark.parametrize("name", ["fgsm", "pgd", "mifgsm"])
def test_bad_eps(model, x, y, name, eps):
    raises(ValueError, ATTACKS[name], model, x, y, eps=eps, match="eps")


@pytest.mark.parametrize("alpha", [-0.1, float("nan")])
@pytest.mark.parametrize("name", ["pgd", "mifgsm"])
def test_bad_alpha(model, x, y, name, alpha):
    raises(ValueError, ATTACKS[name], model, x, y, alpha=alpha, match="alpha")


@pytest.mark.parametrize("steps", [0, -1])
@pytest.mark.parametrize("name", ["pgd", "mifgsm", "ddn"])
def test_steps_below_one(model, x, y, name, steps):
    raises(ValueError, ATTACKS[name], model, x, y, steps=steps, match="steps")


@pytest.mark.parametrize("restarts", [0, -1])
def test_restarts_below_one(model, x, y, restarts):
    raises(ValueError, ATTACKS["pgd"], model, x, y, restarts=restarts, match="restarts")


@pytest.mark.parametrize("norm", ["l1", "Linf", "L2", ""])
def test_unknown_norm_lists_accepted_values(model, x, y, norm):
    e = raises(ValueError, ATTACKS["pgd"], model, x, y, norm=norm)
    assert "linf" in str(e) and "l2" in str(e)


@pytest.mark.parametrize("loss", ["dlr", "CE", "cw"])
def test_unknown_loss_lists_accepted_values(model, x, y, loss):
    e = raises(ValueError, ATTACKS["pgd"], model, x, y, loss=loss)
    assert "ce" in str(e) and "margin" in str(e)


def test_non_string_norm(model, x, y):
    raises(TypeError, ATTACKS["pgd"], model, x, y, norm=2)


@pytest.mark.parametrize("decay", [-1.0, float("nan")])
def test_bad_mifgsm_decay(model, x, y, decay):
    raises(ValueError, ATTACKS["mifgsm"], model, x, y, decay=decay, match="decay")


@pytest.mark.parametrize("gamma", [-0.1, 1.0, 1.5, float("nan")])
def test_ddn_gamma_out_of_range(model, x, y, gamma):
    raises(ValueError, ATTACKS["ddn"], model, x, y, gamma=gamma, match="gamma")


@pytest.mark.parametrize("levels", [1, 0, -1])
def test_ddn_levels_below_two(model, x, y, levels):
    raises(ValueError, ATTACKS["ddn"], model, x, y, levels=levels, match="levels")


@pytest.mark.parametrize("init_norm", [0.0, -1.0, float("nan")])
def test_ddn_bad_init_norm(model, x, y, init_norm):
    raises(ValueError, ATTACKS["ddn"], model, x, y, init_norm=init_norm, match="init_norm")


# --- inputs and labels --------------------------------------------------------


@all_attacks
def test_batch_sizes_differ(model, x, y, name):
    raises(lfr_rs.ShapeError, ATTACKS[name], model, x, y[:3])


@all_attacks
def test_labels_not_one_dimensional(model, x, y, name):
    raises(lfr_rs.ShapeError, ATTACKS[name], model, x, y[:, None])


def test_zero_dimensional_inputs(model, x, y):
    raises(lfr_rs.ShapeError, ATTACKS["pgd"], model, x[0, 0, 0, 0], y[:1])


@pytest.mark.parametrize("targeted", [False, True], ids=["untargeted", "targeted"])
@all_attacks
def test_label_out_of_range(model, x, y, name, targeted):
    raises(ValueError, ATTACKS[name], model, x, y + 1, targeted=targeted, match="out of range")


@all_attacks
def test_negative_label(model, x, y, name):
    raises(ValueError, ATTACKS[name], model, x, y - 1, match="non-negative")


@pytest.mark.parametrize("dtype", [torch.float32, torch.bool])
@all_attacks
def test_non_integer_labels(model, x, y, name, dtype):
    raises(TypeError, ATTACKS[name], model, x, y.to(dtype))


@pytest.mark.parametrize("dtype", [torch.int64, torch.uint8, torch.complex64])
def test_non_floating_inputs(model, x, y, dtype):
    raises(TypeError, ATTACKS["pgd"], model, x.to(dtype), y)


@all_attacks
def test_nan_inputs(model, x, y, name):
    x[1, 0, 2, 3] = float("nan")
    raises(ValueError, ATTACKS[name], model, x, y, match="NaN")


@pytest.mark.parametrize("bad", [-0.5, 1.5, float("inf")])
@all_attacks
def test_inputs_outside_unit_box(model, x, y, name, bad):
    x[2, 0, 1, 1] = bad
    raises(ValueError, ATTACKS[name], model, x, y, match="[0, 1]")


@pytest.mark.parametrize("which", ["inputs", "labels"])
@pytest.mark.parametrize("value", [None, [0.5, 0.5], "x"], ids=["none", "list", "str"])
@all_attacks
def test_non_tensor_arguments(model, x, y, name, which, value):
    args = (value, y) if which == "inputs" else (x, value)
    raises(TypeError, ATTACKS[name], model, *args, match=which)


def test_numpy_inputs(model, x, y):
    raises(TypeError, ATTACKS["pgd"], model, x.numpy(), y)


@pytest.mark.parametrize("kwarg,value", [("eps", "0.1"), ("steps", 2.5), ("levels", 2.5)])
def test_wrongly_typed_keywords(model, x, y, kwarg, value):
    name = "ddn" if kwarg == "levels" else "pgd"
    raises(TypeError, ATTACKS[name], model, x, y, **{kwarg: value})


# --- the model ----------------------------------------------------------------


@pytest.mark.parametrize(
    "wrap",
    [
        lambda m: lambda a: m(a)[:, 0],
        lambda m: lambda a: torch.cat([m(a), m(a[:1])]),
        lambda m: lambda a: m(a)[:, :, None],
    ],
    ids=["(N,)", "(N+1,C)", "(N,C,1)"],
)
@all_attacks
def test_model_returns_wrong_shape(model, x, y, name, wrap):
    raises(lfr_rs.ShapeError, ATTACKS[name], wrap(model), x, y, match="(N, C)")


@pytest.mark.parametrize(
    "wrap",
    [lambda m: lambda a: 3, lambda m: lambda a: (m(a),), lambda m: lambda a: m(a).detach().numpy()],
    ids=["int", "tuple", "numpy"],
)
@all_attacks
def test_model_returns_non_tensor(model, x, y, name, wrap):
    raises(TypeError, ATTACKS[name], wrap(model), x, y, match="torch.Tensor")


def test_model_returns_integer_logits(x, y):
    raises(TypeError, ATTACKS["pgd"], lambda a: torch.zeros(len(a), 3, dtype=torch.long), x, y)


@all_attacks
def test_model_exception_comes_back_unchanged(x, y, name):
    boom = Boom("inside the model")

    def model(a):
        raise boom

    assert raises(Boom, ATTACKS[name], model, x, y) is boom


def test_model_exception_raised_mid_attack_comes_back_unchanged(model, x, y):
    calls = []

    def flaky(a):
        calls.append(len(a))
        if len(calls) == 3:
            raise KeyError("third call")
        return model(a)

    e = raises(KeyError, ATTACKS["pgd"], flaky, x, y, steps=5)
    assert e.args == ("third call",) and len(calls) == 3


@pytest.mark.parametrize("not_callable", [3, "model", None])
@all_attacks
def test_model_not_callable(x, y, name, not_callable):
    raises(TypeError, ATTACKS[name], not_callable, x, y, match="callable")


# --- devices ------------------------------------------------------------------


@all_attacks
def test_model_on_another_device(model, x, y, name):
    raises(lfr_rs.DeviceError, ATTACKS[name], model.to("meta"), x, y)


@all_attacks
def test_inputs_on_another_device(model, x, y, name):
    raises(lfr_rs.DeviceError, ATTACKS[name], model, x.to("meta"), y)


def test_labels_on_another_device(model, x, y):
    raises(lfr_rs.DeviceError, ATTACKS["pgd"], model, x, y.to("meta"))


@pytest.mark.gpu
@pytest.mark.parametrize("moved", ["model", "inputs", "labels"])
@all_attacks
def test_cpu_cuda_mismatch(model, x, y, name, moved):
    model, x, y = model.cuda(), x.cuda(), y.cuda()
    if moved == "model":
        model = model.cpu()
    elif moved == "inputs":
        x = x.cpu()
    else:
        y = y.cpu()
    raises(lfr_rs.DeviceError, ATTACKS[name], model, x, y)


# --- libtorch errors ----------------------------------------------------------


class WrongShapeGradient(torch.autograd.Function):
    """The identity, whose backward returns a gradient of the wrong shape."""

    @staticmethod
    def forward(ctx, a):
        return a * 1.0

    @staticmethod
    def backward(ctx, grad):
        return grad[:1]


def bad_backward(model):
    return lambda a: WrongShapeGradient.apply(model(a))


@all_attacks
def test_libtorch_error_is_a_torch_error(model, x, y, name):
    # libtorch's autograd engine rejects the gradient the custom Function returns.
    raises(lfr_rs.TorchError, ATTACKS[name], bad_backward(model), x, y, match="invalid gradient")


@all_attacks
def test_logits_cut_from_the_inputs_are_explained(x, y, name):
    # Logits that require grad but ignore the inputs: autograd has no gradient for the inputs.
    bias = torch.zeros(3, requires_grad=True)
    raises(ValueError, ATTACKS[name], lambda a: bias.expand(len(a), 3) * 1.0, x, y,
           match="cut the autograd graph from its input")


CHILD = """
import sys, torch, lfr_rs
net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(16, 3))
x, y = torch.rand(4, 1, 4, 4), torch.tensor([0, 1, 2, 1])
case = sys.argv[1]
model = {"detached": lambda a: net(a).detach(), "constant": lambda a: torch.zeros(len(a), 3)}.get(case, net)
attacks = {
    "fgsm": lambda: lfr_rs.fgsm(model, x, y, eps=0.1),
    "pgd": lambda: lfr_rs.pgd(model, x, y, eps=0.1, alpha=0.05, steps=2),
    "mifgsm": lambda: lfr_rs.mifgsm(model, x, y, eps=0.1, alpha=0.05, steps=2),
    "ddn": lambda: lfr_rs.ddn(model, x, y, steps=2),
}
for name, attack in attacks.items():
    print(name, end=" ", flush=True)
    try:
        if case == "inference_mode":
            with torch.inference_mode():
                attack()
        else:
            attack()
    except Exception as e:
        print(type(e).__name__, isinstance(e, (lfr_rs.LfrError, ValueError, TypeError)), flush=True)
    else:
        print("no-error False", flush=True)
"""


@pytest.mark.parametrize("case", ["detached", "constant", "inference_mode"])
def test_logits_without_grad_raise_instead_of_crashing(case):
    # A child process, because these killed the interpreter (SIGSEGV in
    # libtorch's backward on a graph-less output).
    done = subprocess.run([sys.executable, "-c", CHILD, case], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, f"child died ({done.returncode}) after: {done.stdout!r}"
    lines = done.stdout.splitlines()
    assert len(lines) == len(ATTACKS) and all(line.endswith(" True") for line in lines), done.stdout


# --- the hierarchy --------------------------------------------------------------


@pytest.mark.parametrize("exc", [lfr_rs.ShapeError, lfr_rs.DeviceError, lfr_rs.TorchError])
def test_exception_hierarchy(exc):
    assert issubclass(exc, lfr_rs.LfrError)
    assert issubclass(lfr_rs.LfrError, Exception)
    assert exc.__module__.startswith("lfr_rs")


def test_each_error_is_caught_by_its_base(model, x, y):
    triggers = [
        lambda: ATTACKS["pgd"](model, x, y[:3]),
        lambda: ATTACKS["pgd"](bad_backward(model), x, y),
        lambda: ATTACKS["pgd"](model.to("meta"), x, y),
    ]
    seen = set()
    for trigger in triggers:
        with pytest.raises(lfr_rs.LfrError) as info:
            trigger()
        seen.add(type(info.value))
    assert seen == {lfr_rs.ShapeError, lfr_rs.DeviceError, lfr_rs.TorchError}


# --- every kernel ----------------------------------------------------------------

# name -> kernel(model, x, y, **overrides) with valid defaults; every public kernel
KERNELS = {
    **ATTACKS,
    "pgd-l2": lambda m, x, y, **kw: lfr_rs.pgd(m, x, y, **{"eps": 1.0, "alpha": 0.3, "steps": 2, "norm": "l2", **kw}),
    "grad_norm_penalty": lambda m, x, y, **kw: lfr_rs.grad_norm_penalty(m, x, y, **kw),
    "lfr_perturb": lambda m, x, y, **kw: lfr_rs.lfr_perturb(m, x, y, **{"eps": 0.1, "alpha": 0.05, "steps": 2, **kw}),
    "local_flatness": lambda m, x, y, **kw: lfr_rs.local_flatness(
        m, x, y, **{"eps": 0.1, "alpha": 0.05, "steps": 2, **kw}
    ),
    "flatness_grad": lambda m, x, y, **kw: lfr_rs.flatness_grad(m, x, y, **kw),
    "trades_perturb": lambda m, x, y, **kw: lfr_rs.trades_perturb(m, x, **{"eps": 0.1, "alpha": 0.05, "steps": 2, **kw}),
    "llr_perturb": lambda m, x, y, **kw: lfr_rs.llr_perturb(m, x, y, **{"eps": 0.1, "alpha": 0.05, "steps": 2, **kw}),
    "fab": lambda m, x, y, **kw: lfr_rs.fab(m, x, y, **{"eps": 0.1, "steps": 2, **kw}),
}
every_kernel = pytest.mark.parametrize("name", KERNELS)
SINGLE_CALL = {"fgsm", "grad_norm_penalty", "flatness_grad"}


@pytest.mark.parametrize("bad", [float("nan"), float("inf")], ids=["nan", "inf"])
@pytest.mark.parametrize("from_call", [1, 3], ids=["first-call", "third-call"])
@every_kernel
def test_non_finite_logits_raise_on_any_call(model, x, y, name, from_call, bad):
    if name in SINGLE_CALL and from_call > 1:
        pytest.skip("one model call")
    calls = []

    def diverging(a):
        calls.append(len(a))
        out = model(a)
        return out + bad if len(calls) >= from_call else out

    steps = {} if name in SINGLE_CALL else {"steps": 5}
    raises(ValueError, KERNELS[name], diverging, x, y, match="non-finite", **steps)
    assert len(calls) >= from_call


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@every_kernel
def test_half_precision_is_refused(model, x, y, name, dtype):
    raises(TypeError, KERNELS[name], model.to(dtype), x.to(dtype), y, match="half precision")


OVERFLOWING = {
    "fgsm": ["eps"],
    "pgd": ["eps", "alpha"],
    "pgd-l2": ["eps", "alpha"],
    "mifgsm": ["eps", "alpha", "decay"],
    "ddn": ["init_norm"],
    "lfr_perturb": ["eps", "alpha"],
    "local_flatness": ["eps", "alpha"],
    "trades_perturb": ["eps", "alpha"],
    "llr_perturb": ["eps", "alpha"],
}


@pytest.mark.parametrize("name,key", [(n, k) for n, keys in OVERFLOWING.items() for k in keys])
def test_hyper_parameters_overflowing_float32_are_refused(model, x, y, name, key):
    raises(ValueError, KERNELS[name], model, x, y, match=f"{key} = 1e300 overflows torch.float32", **{key: 1e300})


@pytest.mark.parametrize("name", ["fgsm", "pgd", "pgd-l2", "mifgsm", "lfr_perturb", "trades_perturb", "llr_perturb"])
def test_eps_finite_in_float64_is_accepted(model, x, y, name):
    out = KERNELS[name](model.double(), x.double(), y, eps=1e300)
    assert torch.isfinite(out).all() and out.min() >= 0 and out.max() <= 1


@pytest.mark.parametrize("fd_step,match", [(1e-300, "resolution"), (1e-9, "resolution"), (1e300, "overflows")])
@pytest.mark.parametrize("name", ["lfr_perturb", "local_flatness", "flatness_grad"])
def test_fd_step_outside_float32_is_refused(model, x, y, name, fd_step, match):
    raises(ValueError, KERNELS[name], model, x, y, hvp="fd", fd_step=fd_step, match=match)


@pytest.mark.parametrize("moved", ["inputs", "labels", "logits"])
@every_kernel
def test_device_errors_name_devices_as_torch_does(model, x, y, name, moved):
    if name == "trades_perturb" and moved == "labels":
        pytest.skip("no labels")
    if moved == "inputs":
        e = raises(lfr_rs.DeviceError, KERNELS[name], model, x.to("meta"), y)
    elif moved == "labels":
        e = raises(lfr_rs.DeviceError, KERNELS[name], model, x, y.to("meta"))
    else:
        e = raises(lfr_rs.DeviceError, KERNELS[name], lambda a: model(a).to("meta"), x, y)
    assert "meta" in str(e) and "cpu" in str(e), str(e)
    assert not any(tch_name in str(e) for tch_name in ("Mps", "Cpu", "Cuda")), str(e)


INTERRUPTED_CHILD = """
import functools, signal, sys, time
import torch, torch.nn.functional as F
import lfr_rs
signal.signal(signal.SIGINT, signal.default_int_handler)
model = functools.partial(F.linear, weight=torch.randn(3, 16))  # C-level: runs no Python bytecode
x, y = torch.rand(4, 16), torch.tensor([0, 1, 2, 1])
forever = 10**9
kernels = {
    "pgd": lambda: lfr_rs.pgd(model, x, y, eps=0.1, alpha=0.01, steps=forever),
    "mifgsm": lambda: lfr_rs.mifgsm(model, x, y, eps=0.1, alpha=0.01, steps=forever),
    "ddn": lambda: lfr_rs.ddn(model, x, y, steps=forever),
    "lfr_perturb": lambda: lfr_rs.lfr_perturb(model, x, y, eps=0.1, alpha=0.01, steps=forever),
    "trades_perturb": lambda: lfr_rs.trades_perturb(model, x, eps=0.1, alpha=0.01, steps=forever),
    "llr_perturb": lambda: lfr_rs.llr_perturb(model, x, y, eps=0.1, alpha=0.01, steps=forever),
}
for name, kernel in kernels.items():
    print("start", name, flush=True)
    started = time.monotonic()
    try:
        kernel()
    except KeyboardInterrupt:
        print("interrupted", name, f"{time.monotonic() - started:.1f}", flush=True)
"""


def test_ctrl_c_stops_kernels_running_a_c_level_model():
    import queue
    import signal
    import threading
    import time

    with subprocess.Popen([sys.executable, "-c", INTERRUPTED_CHILD], stdout=subprocess.PIPE, text=True) as child:
        lines: "queue.Queue[str]" = queue.Queue()
        threading.Thread(target=lambda: [lines.put(line) for line in child.stdout], daemon=True).start()
        try:
            for _ in range(6):
                start = lines.get(timeout=60).split()
                assert start[0] == "start", start
                time.sleep(0.3)  # the kernel is now in its loop, in Rust
                child.send_signal(signal.SIGINT)
                try:
                    done = lines.get(timeout=10).split()
                except queue.Empty:
                    pytest.fail(f"{start[1]} ignored SIGINT for 10 s")
                assert done[:2] == ["interrupted", start[1]], done
            assert child.wait(timeout=30) == 0
        finally:
            child.kill()
