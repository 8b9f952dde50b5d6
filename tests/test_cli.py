"""``lfr-rs`` / ``python -m lfr_rs``: train and eval end to end, bad input."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from lfr_rs.cli import main
from lfr_rs.data import DEBIAN_FASHION_MNIST
from lfr_rs.training import CHECKPOINT, LOG, load_checkpoint

MNIST_ROOT = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "mnist"


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


def test_eval_default_json_beside_checkpoint(mnist_root, tmp_path, capsys):
    assert main(_train_args(mnist_root, tmp_path, "--subset", "64")) == 0
    assert main(["eval", str(tmp_path / CHECKPOINT), "--attacks", "fgsm", "--n", "10", "--name", "Mine"]) == 0
    assert "| Mine |" in capsys.readouterr().out
    assert json.loads((tmp_path / "checkpoint.eval.json").read_text())["results"]["attacks"] == ["fgsm"]


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
