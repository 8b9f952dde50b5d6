"""DistributedDataParallel under torchrun: 2 CPU processes (gloo) on the
loopback interface, started by the tests with a timeout.

The single-process side of each comparison runs here, from the same fixed
seeds (``ddp_cases.py``); the DDP side runs in ``ddp_worker.py`` or the CLI."""

import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import ddp_cases
from lfr_rs import cli, distributed
from lfr_rs.evaluation import evaluate
from lfr_rs.evaluation import robust_accuracy
from lfr_rs.training import CHECKPOINT, LOG, fit, load_checkpoint

from conftest import MNIST_ROOT

HERE = Path(__file__).resolve().parents[1]  # tests/: ddp_worker.py, ddp_cases.py
TIMEOUT = 180
F32 = {"rtol": 1e-5, "atol": 1e-6}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env():
    env = dict(os.environ, OMP_NUM_THREADS="1", GLOO_SOCKET_IFNAME="lo", MASTER_ADDR="127.0.0.1",
               PYTHONPATH=os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")]))
    env.pop("WORLD_SIZE", None)
    return env


def _launch(*launcher_and_cmd, cwd=None):
    """Starts one torchrun launcher in its own process group; returns the Popen."""
    return subprocess.Popen(
        [sys.executable, "-m", "torch.distributed.run", *map(str, launcher_and_cmd)], env=_env(), cwd=cwd,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
    )


def _wait(procs):
    outputs = []
    try:
        for p in procs:
            out, _ = p.communicate(timeout=TIMEOUT)
            outputs.append(out)
    except subprocess.TimeoutExpired:
        for p in procs:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGKILL)  # the launcher's group: its workers too
        pytest.fail(f"torchrun did not finish within {TIMEOUT}s")
    for p, out in zip(procs, outputs):
        assert p.returncode == 0, out
    return outputs


def _torchrun(*cmd, nproc=2):
    rdzv = ["--nnodes=1", f"--nproc-per-node={nproc}", "--rdzv-backend=c10d",
            f"--rdzv-endpoint=127.0.0.1:{_free_port()}", "--local-addr=127.0.0.1"]
    return _wait([_launch(*rdzv, *cmd)])[0]


def _worker(scenario, out):
    return _torchrun(HERE / "ddp_worker.py", scenario, out)


@pytest.fixture(scope="module")
def ddp_results(tmp_path_factory):
    out = tmp_path_factory.mktemp("ddp")
    _worker("same-weights", out)
    return torch.load(out / "same-weights.pt", weights_only=True)


def _assert_same_state(a, b, **tol):
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(a[k], b[k], msg=k, **tol)


@pytest.mark.parametrize("name", ["standard", "gradnorm"])
def test_ddp_epoch_equals_single_process(ddp_results, name):
    model, opt, loader, method = ddp_cases.deterministic_case(name)
    start = {k: v.clone() for k, v in model.state_dict().items()}
    fit(model, loader, method, opt, epochs=1, progress=False, verbose=False)
    _assert_same_state(ddp_results[name], model.state_dict(), **F32)
    assert not torch.allclose(start["3.weight"], model.state_dict()["3.weight"])  # it trained


def test_ddp_lfr_gradient_equals_single_process_at_the_same_point(ddp_results):
    # lr 1, no momentum: the update is minus the (double-backprop) gradient, averaged by DDP over shards of 5 and 6
    model, opt, loader, method = ddp_cases.lfr_gradient_case()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    fit(model, loader, method, opt, epochs=1, progress=False, verbose=False)
    _assert_same_state(ddp_results["lfr_step"], model.state_dict(), **F32)
    # the same step without the penalty differs: the double-backprop term is part of what was compared
    model0, opt0, loader0, _ = ddp_cases.lfr_gradient_case()
    fit(model0, loader0, ddp_cases.FixedPointLFR(eps=0.2, lam=0.0), opt0, epochs=1, progress=False, verbose=False)
    diff = (model0.state_dict()["0.weight"] - model.state_dict()["0.weight"]).abs().max()
    assert diff > 1e-4
    assert not torch.equal(before["0.weight"], model.state_dict()["0.weight"])


def test_ddp_lfr_trains(ddp_results):
    losses = [e["loss"] for e in ddp_results["lfr_history"]]
    assert len(losses) == 4 and losses[-1] < 0.9 * losses[0]  # one process: 2.32 -> 1.91


def test_ddp_evaluation_equals_single_process(ddp_results):
    x, y = ddp_cases.data(21, seed=12)
    single = evaluate(ddp_cases._teacher(), x, y, attacks=("fgsm", "mifgsm", "ddn"), eps=0.05, alpha=0.01,
                      steps=5, progress=False)
    sharded = ddp_results["eval"]
    assert sharded["n"] == single["n"] == 21 and sharded["world_size"] == 2
    for key in ("clean", "fgsm", "mifgsm", "ddn_linf", "worst", "ddn_success_rate"):
        assert sharded[key] == single[key], key
    assert 0 < single["fgsm"] < single["clean"]  # the comparison is not between trivial numbers


def test_ddp_robust_accuracy_equals_single_process_per_shard(ddp_results):
    # Each rank runs the cascade on its contiguous share with the same seeding, so
    # the combined result must equal one process running the two shards in turn.
    x, y = ddp_cases.data(21, seed=12)
    parts = [robust_accuracy(ddp_cases._teacher(), x[a:b], y[a:b], **ddp_cases.STRONG) for a, b in ((0, 10), (10, 21))]
    sharded = ddp_results["strong_eval"]
    assert sharded["n"] == 21
    assert torch.equal(sharded["robust"], torch.cat([p.robust for p in parts]))
    assert torch.equal(sharded["adversarial"], torch.cat([p.adversarial for p in parts]))
    for name, (acc, fooled, attacked, fwd, bwd) in sharded["attacks"].items():
        assert fooled == sum(p.attacks[name].fooled for p in parts)
        assert attacked == sum(p.attacks[name].attacked for p in parts)
        assert (fwd, bwd) == (sum(p.attacks[name].forward for p in parts), sum(p.attacks[name].backward for p in parts))
        assert acc == sum(round(p.attacks[name].accuracy * p.n) for p in parts) / 21
    assert sharded["worst"] == float(sharded["robust"].float().mean())
    assert 0 < sum(f for _, f, _, _, _ in sharded["attacks"].values()) < 21  # some fooled, some robust


def test_ddp_resume_equals_uninterrupted_run(tmp_path):
    _worker("full-and-part", tmp_path)  # an uninterrupted run, and one stopped after epoch 1
    assert load_checkpoint(tmp_path / "part" / CHECKPOINT)["epoch"] == 1
    _worker("resume", tmp_path)  # fresh processes: only the checkpoint carries over
    full = load_checkpoint(tmp_path / "full" / CHECKPOINT)
    resumed = load_checkpoint(tmp_path / "part" / CHECKPOINT)
    assert resumed["epoch"] == full["epoch"] == 2
    for k in full["model"]:
        assert torch.equal(full["model"][k], resumed["model"][k]), k
    assert [e["loss"] for e in resumed["history"]] == [e["loss"] for e in full["history"]]
    assert full["world_size"] == 2 and full["backend"] == "gloo" and len(full["rng"]) == 2
    log = json.loads((tmp_path / "full" / LOG).read_text())
    assert log["world_size"] == 2 and log["backend"] == "gloo"
    assert sorted(p.name for p in (tmp_path / "full").iterdir()) == [CHECKPOINT, LOG]


def _mnist():
    if not any((MNIST_ROOT / f"t10k-images-idx3-ubyte{e}").exists() for e in ("", ".gz")):
        pytest.skip(f"no MNIST test split under {MNIST_ROOT}")
    return str(MNIST_ROOT)


def _train_cmd(root, out):
    return ["-m", "lfr_rs", "train", "--method", "lfr", "--dataset", "mnist", "--data-root", root,
            "--train-split", "test", "--holdout", "2000", "--subset", "96", "--batch-size", "32", "--epochs", "1",
            "--steps", "2", "--out", out, "--no-progress"]


def test_cli_train_two_nodes_on_localhost_then_distributed_eval(tmp_path):
    """Two torchrun launchers (--nnodes=2, one process each) rendezvous over c10d on 127.0.0.1."""
    root = _mnist()
    port = _free_port()
    procs = [
        _launch("--nnodes=2", f"--node-rank={rank}", "--nproc-per-node=1", "--rdzv-backend=c10d",
                f"--rdzv-endpoint=127.0.0.1:{port}", "--rdzv-id=lfr-test", "--local-addr=127.0.0.1",
                *_train_cmd(root, tmp_path / "run"))
        for rank in (0, 1)
    ]
    outs = _wait(procs)
    assert sum("epoch 1/1" in o for o in outs) == 1  # rank 0 alone prints
    state = load_checkpoint(tmp_path / "run" / CHECKPOINT)
    assert state["world_size"] == 2 and state["backend"] == "gloo" and state["epoch"] == 1

    single = tmp_path / "single.json"
    assert cli.main(["eval", str(tmp_path / "run" / CHECKPOINT), "--attacks", "fgsm,mifgsm", "--steps", "3",
                     "--n", "25", "--json", str(single)]) == 0
    sharded = tmp_path / "ddp.json"
    # torchrun's own parser rejects "--n" as an ambiguous abbreviation of its options, hence --n-images
    _torchrun("-m", "lfr_rs", "eval", tmp_path / "run" / CHECKPOINT, "--attacks", "fgsm,mifgsm", "--steps", "3",
              "--n-images", "25", "--json", sharded)
    a, b = json.loads(single.read_text()), json.loads(sharded.read_text())
    assert b["world_size"] == 2 and a["world_size"] == 1
    for key in ("n", "clean", "fgsm", "mifgsm", "worst"):
        assert a["results"][key] == b["results"][key], key

    # the paper protocol through the CLI: MI-FGSM is deterministic, so the sharded counts equal one process's
    paper = ["--protocol", "paper", "--attacks", "mifgsm", "--steps", "3", "--n-images", "25"]
    assert cli.main(["eval", str(tmp_path / "run" / CHECKPOINT), *paper, "--json", str(single)]) == 0
    _torchrun("-m", "lfr_rs", "eval", tmp_path / "run" / CHECKPOINT, *paper, "--json", sharded)
    a, b = json.loads(single.read_text()), json.loads(sharded.read_text())
    assert b["world_size"] == 2 and b["results"]["world_size"] == 2 and b["results"]["protocol"] == "paper"
    for key in ("n", "clean", "mifgsm", "worst"):
        assert a["results"][key] == b["results"][key], key


def test_ddp_paper_protocol_equals_single_process(ddp_results):
    x, y = ddp_cases.data(21, seed=12)
    single = evaluate(ddp_cases._teacher(), x, y, protocol="paper", **ddp_cases.PAPER)
    sharded = ddp_results["paper_eval"]
    assert sharded["n"] == single["n"] == 21 and sharded["world_size"] == 2 and sharded["protocol"] == "paper"
    for key in ("clean", "mifgsm", "ddn", "worst"):
        assert sharded[key] == single[key], key
    assert 0 < single["mifgsm"] < single["clean"]  # the comparison is not between trivial numbers


def test_every_protocol_gets_the_whole_set_and_shards_itself(monkeypatch):
    # the harness shards the rows (run_attacks, robust_accuracy) and gathers per-sample outcomes,
    # so evaluate_sharded hands every protocol the whole set and knows none of their keys
    monkeypatch.setattr(distributed, "world_size", lambda: 2)
    monkeypatch.setattr(distributed, "rank", lambda: 1)
    x, y = ddp_cases.data(5)
    calls = []

    def fake_evaluate(model, inputs, labels, **kwargs):
        calls.append((kwargs.get("protocol"), len(inputs)))
        return {"n": len(inputs)}

    for protocol in (None, "paper", "strong", "both"):
        assert distributed.evaluate_sharded(fake_evaluate, None, x, y, protocol=protocol, eps=0.1) == {"n": 5}
    assert calls == [(None, 5), ("paper", 5), ("strong", 5), ("both", 5)]
    assert distributed.shard(x)[0].shape[0] == 3  # what the harness itself then attacks on rank 1 of 2
    with pytest.raises(ValueError, match="unknown protocol"):
        distributed.evaluate_sharded(evaluate, ddp_cases._teacher(), x, y, protocol="robust")


SHUTDOWN_SCRIPT = """
import atexit, sys
import torch.distributed as dist
from lfr_rs import distributed

# registered before the group exists, so it runs after the handler init_from_env registers (LIFO)
atexit.register(lambda: print("group alive at exit:", dist.is_initialized(), flush=True))
assert distributed.init_from_env("cpu") and dist.is_initialized()
distributed.shutdown()
assert not dist.is_initialized()
distributed.shutdown()  # a second call is a no-op
assert distributed.init_from_env("cpu")
"""


def test_init_from_env_destroys_its_group_at_exit(tmp_path):
    # A gloo process that exits with its group alive can abort in the interpreter's
    # teardown ("terminate called without an active exception"); the group
    # init_from_env made is destroyed by its atexit handler before that.
    env = dict(os.environ, WORLD_SIZE="1", RANK="0", LOCAL_RANK="0", MASTER_ADDR="127.0.0.1",
               MASTER_PORT=str(_free_port()), GLOO_SOCKET_IFNAME="lo")
    proc = subprocess.run([sys.executable, "-c", SHUTDOWN_SCRIPT], env=env, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "group alive at exit: False" in proc.stdout
