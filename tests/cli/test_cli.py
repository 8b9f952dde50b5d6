"""``lfr-rs`` / ``python -m lfr_rs``: train and eval end to end, bad input."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import MNIST_ROOT

from lfr_rs.cli import main
from lfr_rs.data import DEBIAN_FASHION_MNIST
from lfr_rs.training import CHECKPOINT, LOG, load_checkpoint



@pytest.fixture(scope="module")
def mnist_root():
    if not any((MNIST_ROOT / f"t10k-images-idx3-ubyte{ext}").exists() for ext in ("", ".gz")):
        pytest.skip(f"no MNIST test split under {MNIST_ROOT}")
    return str(MNIST_ROOT)


@pytest.fixture(scope="module")
def fashion_root():
    if not DEBIAN_FASHION_MNIST.is_dir():
        pytest.skip(f"Debian's Fashion-MNIST is not installed at {DEBIAN_FASHION_MNIST}")
    return DEBIAN_FASHION_MNIST


def _cli(*args, timeout=600):
    return subprocess.run([sys.executable, "-m", "lfr_rs", *map(str, args)], capture_output=True, text=True, timeout=timeout)


def _train_args(root, out, *extra):
    args = ["train", "--method", "standard", "--dataset", "mnist", "--data-root", root, "--train-split", "test",
            "--holdout", "100", "--subset", "256", "--epochs", "1", "--out", out, *extra]
    return [str(a) for a in args]


def test_train_then_eval_end_to_end(mnist_root, tmp_path):
    out = tmp_path / "run"
    done = _cli(*_train_args(mnist_root, out))
    assert done.returncode == 0, done.stderr
    assert "epoch 1/1" in done.stdout
    assert load_checkpoint(out / CHECKPOINT)["epoch"] == 1
    assert len(json.loads((out / LOG).read_text())["epochs"]) == 1

    report = tmp_path / "eval.json"
    done = _cli("eval", out / CHECKPOINT, "--attacks", "fgsm,pgd,mifgsm,ddn", "--n", "20", "--steps", "3", "--json", report)
    assert done.returncode == 0, done.stderr
    assert "| Defense | Clean | FGSM | PGD3 | MI-FGSM | DDN |" in done.stdout
    assert "| Standard |" in done.stdout and "L-inf ball" in done.stdout
    record = json.loads(report.read_text())
    assert record["split"] == "test[:100]" and record["method"] == "standard"
    results = record["results"]
    assert results["n"] == 20 and results["steps"] == 3
    for key in ("clean", "fgsm", "pgd", "mifgsm", "ddn_linf", "worst"):
        assert 0 <= results[key] <= results["clean"] <= 1
    assert results["ddn_median_l2"] is None or results["ddn_median_l2"] > 0


def test_train_resume_in_process(mnist_root, tmp_path, capsys):
    args = _train_args(mnist_root, tmp_path, "--subset", "64")
    assert main(args) == 0
    assert main([*args, "--resume"]) == 0
    assert "resuming" in capsys.readouterr().out
    with pytest.raises(SystemExit) as exit_:
        main([*args[:-2], "--epochs", "1", "--out", str(tmp_path), "--lr", "0.5", "--resume"])
    assert exit_.value.code == 2
    assert "cannot resume" in capsys.readouterr().err


@pytest.mark.filterwarnings("ignore:the run ended near chance")  # 64 images, one epoch
def test_train_graph_off_cuda_warns_and_trains_as_without(mnist_root, tmp_path):
    assert main(_train_args(mnist_root, tmp_path / "eager", "--subset", "64")) == 0
    with pytest.warns(UserWarning, match="CUDA graphs need a CUDA device"):
        assert main(_train_args(mnist_root, tmp_path / "graph", "--subset", "64", "--graph")) == 0
    logs = [json.loads((tmp_path / run / LOG).read_text())["epochs"][0] for run in ("eager", "graph")]
    assert logs[0]["loss"] == logs[1]["loss"]


def test_eval_default_json_beside_checkpoint(mnist_root, tmp_path, capsys):
    assert main(_train_args(mnist_root, tmp_path, "--subset", "64")) == 0
    assert main(["eval", str(tmp_path / CHECKPOINT), "--attacks", "fgsm", "--n", "10", "--name", "Mine"]) == 0
    assert "| Mine |" in capsys.readouterr().out
    assert json.loads((tmp_path / "checkpoint.eval.json").read_text())["results"]["attacks"] == ["fgsm"]


@pytest.mark.filterwarnings("ignore:the run ended near chance")  # 256 images, one epoch: it is
def test_quickstart_small(fashion_root, tmp_path, capsys):
    assert main(["quickstart", "--out", str(tmp_path), "--subset", "256", "--n", "10", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "| Standard |" in out and "PGD40" in out
    assert json.loads((tmp_path / "eval.json").read_text())["results"]["n"] == 10


@pytest.mark.slow
@pytest.mark.timeout(3600)
def test_quickstart_default(fashion_root, tmp_path):
    done = _cli("quickstart", "--out", tmp_path / "qs", timeout=None)
    assert done.returncode == 0, done.stderr
    assert "| Standard |" in done.stdout


BAD = [
    ([], "required"),
    (["train", "--method", "madry", "--dataset", "mnist", "--epochs", "1", "--out", "x"], "invalid choice"),
    (["train", "--method", "at", "--dataset", "mnist", "--epochs", "1", "--out", "x"], "--data-root"),
    (["train", "--method", "at", "--dataset", "fashion-mnist", "--epochs", "0", "--out", "x"], "must be >= 1"),
    (["train", "--method", "at", "--dataset", "fashion-mnist", "--epochs", "1", "--out", "x", "--eps", "-0.1"], "must be >= 0"),
    (["train", "--method", "at", "--dataset", "fashion-mnist", "--epochs", "1", "--out", "x", "--lam", "1"], "--lam does not apply"),
    (["train", "--method", "lfr", "--dataset", "fashion-mnist", "--epochs", "1", "--out", "x", "--hvp", "approx"], "invalid choice"),
    (["train", "--method", "lfr", "--dataset", "fashion-mnist", "--epochs", "x", "--out", "x"], "expected an integer"),
    (["train", "--method", "at", "--dataset", "fashion-mnist", "--epochs", "1", "--out", "x", "--holdout", "5"], "only applies"),
    (["train", "--method", "at", "--dataset", "fashion-mnist", "--epochs", "1", "--out", "x", "--train-split", "test"], "needs --holdout"),
    (["eval", "missing.pt"], "no checkpoint"),
    (["eval", "missing.pt", "--attacks", "fgsm,cw"], "unknown attack"),
    (["eval", "missing.pt", "--n", "0"], "must be >= 1"),
    (["train", "--method", "at", "--dataset", "fashion-mnist", "--epochs", "1", "--out", ""], "must not be empty"),
    (["train", "--method", "at", "--dataset", "fashion-mnist", "--epochs", "3", "--out", "x", "--milestones", "2,2"],
     "distinct, increasing"),
    (["quickstart", "--data-root", "/nonexistent"], "not found"),
]


@pytest.mark.parametrize(("argv", "message"), BAD, ids=[m for _, m in BAD])
def test_bad_input_exits_2_with_a_message(argv, message, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def _exit_2(argv, capsys):
    with pytest.raises(SystemExit) as exit_:
        main([str(a) for a in argv])
    err = capsys.readouterr().err
    assert exit_.value.code == 2, err
    assert "Traceback" not in err
    return err


def test_bad_paths_exit_2_with_a_message(mnist_root, tmp_path, capsys, monkeypatch):
    """These once printed raw tracebacks with exit 1 (or trained into the current directory)."""
    monkeypatch.chdir(tmp_path)
    a_file = tmp_path / "file"
    a_file.write_text("x")
    assert "must not be empty" in _exit_2(_train_args(mnist_root, ""), capsys)
    assert list(tmp_path.iterdir()) == [a_file]  # nothing trained into the current directory
    assert "not a directory" in _exit_2(_train_args(mnist_root, a_file), capsys)
    assert "cannot create" in _exit_2(_train_args(mnist_root, a_file / "run"), capsys)
    assert "cannot create" in _exit_2(_train_args(mnist_root, "/proc/lfr-rs-run"), capsys)

    assert main(_train_args(mnist_root, tmp_path / "run", "--subset", "64")) == 0
    ckpt = tmp_path / "run" / CHECKPOINT
    assert "is a directory" in _exit_2(["eval", ckpt, "--attacks", "fgsm", "--n", "5", "--json", tmp_path], capsys)
    assert "does not exist" in _exit_2(["eval", ckpt, "--json", tmp_path / "no" / "x.json"], capsys)
    assert "is a directory" in _exit_2(["eval", tmp_path / "run"], capsys)
    text = tmp_path / "notes.txt"
    text.write_text("eval me\n" * 20)
    assert "not a readable lfr-rs checkpoint" in _exit_2(["eval", text], capsys)
    import torch

    torch.save({"model": {}, "epoch": 1}, tmp_path / "handmade.pt")
    assert "not written by lfr_rs.training.train" in _exit_2(["eval", tmp_path / "handmade.pt"], capsys)
    torch.save({"model": {}, "epoch": 1, "config": {"method": "standard", "model": {"oops": 1}}}, tmp_path / "h2.pt")
    assert "does not match its config" in _exit_2(["eval", tmp_path / "h2.pt"], capsys)
    torch.save({"weights": [1, 2]}, tmp_path / "h3.pt")
    assert "not an lfr-rs training checkpoint" in _exit_2(["eval", tmp_path / "h3.pt"], capsys)


@pytest.mark.parametrize("method", ["standard", "lfr"])
def test_divergence_is_a_run_failure_for_every_method(mnist_root, tmp_path, capsys, method):
    """A diverging LFR run once exited 2 with the usage text ("bad input")."""
    extra = ["--steps", "2"] if method == "lfr" else []
    args = _train_args(mnist_root, tmp_path, "--subset", "128", "--batch-size", "16", "--lr", "1e12", *extra)
    args[args.index("--method") + 1] = method
    assert main(args) == 1
    err = capsys.readouterr().err
    assert "diverged" in err and "lower the lr" in err and "usage:" not in err


def test_mnist_without_train_split(mnist_root, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["train", "--method", "standard", "--dataset", "mnist", "--data-root", mnist_root,
              "--epochs", "1", "--out", str(tmp_path)])
    assert exit_.value.code == 2
    assert "--train-split test --holdout N" in capsys.readouterr().err


def test_existing_run_without_resume(mnist_root, tmp_path, capsys):
    args = _train_args(mnist_root, tmp_path, "--subset", "64")
    assert main(args) == 0
    with pytest.raises(SystemExit) as exit_:
        main(args)
    assert exit_.value.code == 2 and "--resume" in capsys.readouterr().err


def test_bad_input_subprocess(mnist_root, tmp_path):
    done = _cli("eval", tmp_path / "nope.pt")
    assert done.returncode == 2
    assert "lfr-rs eval: error: no checkpoint" in done.stderr and "Traceback" not in done.stderr
    (tmp_path / "bad.pt").write_text("garbage")
    done = _cli("eval", tmp_path / "bad.pt")
    assert done.returncode == 2 and "not a readable lfr-rs checkpoint" in done.stderr


def test_eval_protocol_paper(mnist_root, tmp_path, capsys):
    assert main(_train_args(mnist_root, tmp_path, "--subset", "64")) == 0
    assert main(["eval", str(tmp_path / CHECKPOINT), "--protocol", "paper", "--attacks", "fgsm,ddn", "--n", "6"]) == 0
    out = capsys.readouterr().out
    assert "DDN (20 it., no norm bound; still correct)" in out and "Paper protocol" in out
    results = json.loads((tmp_path / "checkpoint.eval.json").read_text())["results"]
    assert results["protocol"] == "paper" and results["ddn_steps"] == 20 and results["n"] == 6


@pytest.mark.parametrize("device", ["mps", "meta", "xpu"])
def test_unavailable_device_is_named_not_blamed_on_the_checkpoint(tmp_path, capsys, device):
    # `--device mps` used to fail later with a message about the checkpoint file
    ck = tmp_path / "checkpoint.pt"
    ck.write_bytes(b"not read")
    err = _exit_2(["eval", ck, "--device", device], capsys)
    assert f"{device}: this torch cannot use {device} devices here" in err and "checkpoint.pt" not in err


@pytest.mark.parametrize("extra, eps, alpha", [
    (["--method", "at", "--eps", "0.1", "--steps", "2"], 0.1, round(0.01 / 3, 10)),
    (["--method", "standard"], 0.3, 0.01),
    (["--method", "standard", "--eval-eps", "0.05", "--eval-alpha", "0.02"], 0.05, 0.02),
], ids=["method-eps", "paper", "explicit"])
def test_train_monitor_uses_the_runs_radius(mnist_root, tmp_path, extra, eps, alpha):
    args = [a for a in _train_args(mnist_root, tmp_path, "--subset", "32", "--eval-n", "8") if a != "standard"]
    args.remove("--method")
    assert main([*args, *extra]) == 0
    log = json.loads((tmp_path / LOG).read_text())
    assert log["config"]["eval_eps"] == eps and log["config"]["eval_alpha"] == alpha
    monitor = log["epochs"][0]["eval"]
    assert monitor["eps"] == eps and monitor["alpha"] == alpha
