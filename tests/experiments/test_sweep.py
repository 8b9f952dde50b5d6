"""``lfr_rs.sweep`` / ``lfr-rs sweep``: one run per lambda, JSON, resuming."""

import json

import pytest

import lfr_rs
from lfr_rs.cli import main
from lfr_rs.data import DEBIAN_FASHION_MNIST
from lfr_rs.training import CHECKPOINT, TrainConfig

# the sweep trains two-epoch models on a few images: fit warns that they end near chance, as it should
pytestmark = pytest.mark.filterwarnings("ignore:the run ended near chance:UserWarning")


@pytest.fixture(scope="module")
def fashion_root():
    if not DEBIAN_FASHION_MNIST.is_dir():
        pytest.skip(f"Debian's Fashion-MNIST is not installed at {DEBIAN_FASHION_MNIST}")
    return str(DEBIAN_FASHION_MNIST)


def tiny_base(root):
    return TrainConfig(method="lfr", options={"steps": 2, "alpha": 0.1}, dataset="fashion-mnist", data_root=root,
                       subset=192, epochs=1, batch_size=64)


def test_sweep_trains_evaluates_and_resumes(fashion_root, tmp_path):
    base = tiny_base(fashion_root)
    record = lfr_rs.sweep([0, 0.05], tmp_path, base=base, attacks=("fgsm",), eval_n=50, steps=3, progress=False)
    assert [r["lam"] for r in record["runs"]] == [0.0, 0.05]
    assert [r["method"] for r in record["runs"]] == ["standard", "lfr"]
    for run in record["runs"]:
        res = run["results"]
        assert res["n"] == 50 and res["attacks"] == ["fgsm"]
        assert 0 <= res["worst"] <= res["fgsm"] <= res["clean"] <= 1
        assert run["epochs"] == 1 and run["train_time_s"] > 0
    saved = json.loads((tmp_path / "sweep.json").read_text())
    assert saved == json.loads(json.dumps(record))
    lfr_config = json.loads((tmp_path / "lam_0.05" / "log.json").read_text())["config"]
    assert lfr_config["method"] == "lfr" and lfr_config["options"]["lam"] == 0.05
    assert lfr_config["options"]["steps"] == 2

    stamps = {p: p.stat().st_mtime_ns for p in [*tmp_path.glob("lam_*/checkpoint.pt"), *tmp_path.glob("lam_*/eval.json")]}
    assert len(stamps) == 4
    again = lfr_rs.sweep([0, 0.05], tmp_path, base=base, attacks=("fgsm",), eval_n=50, steps=3, progress=False)
    assert again["runs"] == record["runs"]
    assert {p: p.stat().st_mtime_ns for p in stamps} == stamps, "a finished sweep is neither retrained nor re-evaluated"

    # other attack settings re-evaluate the same checkpoints without retraining
    third = lfr_rs.sweep([0.05], tmp_path, base=base, attacks=("fgsm",), eval_n=50, steps=3, eps=0.1, progress=False)
    assert third["runs"][0]["results"]["eps"] == 0.1
    assert (tmp_path / "lam_0.05" / CHECKPOINT).stat().st_mtime_ns == stamps[tmp_path / "lam_0.05" / CHECKPOINT]


@pytest.mark.parametrize("lams, match", [([], "empty"), ([0.1, -1], ">= 0"), ([0.1, float("nan")], "finite"),
                                         ([0.1, 0.1], "distinct")])
def test_sweep_bad_lambdas(tmp_path, lams, match):
    with pytest.raises(ValueError, match=match):
        lfr_rs.sweep(lams, tmp_path, base=TrainConfig())


def test_sweep_bad_options(fashion_root, tmp_path):
    with pytest.raises(ValueError, match="unknown attack"):
        lfr_rs.sweep([0.1], tmp_path, base=tiny_base(fashion_root), attacks=("cw",))
    with pytest.raises(TypeError, match="beta"):
        lfr_rs.sweep([0.1], tmp_path, base=TrainConfig(options={"beta": 1.0}))
    with pytest.raises(ValueError, match="eval_n"):
        lfr_rs.sweep([0.1], tmp_path, base=tiny_base(fashion_root), eval_n=0)
    assert not list(tmp_path.iterdir()), "nothing is written for bad input"


def test_cli_sweep(fashion_root, tmp_path, capsys):
    out = tmp_path / "sweep"
    code = main(["sweep", "--lam", "0.02", "--dataset", "fashion-mnist", "--epochs", "1", "--subset", "128",
                 "--batch-size", "64", "--inner-steps", "1", "--inner-alpha", "0.3", "--hvp", "fd",
                 "--attacks", "fgsm", "--n", "20", "--out", str(out), "--no-progress"])
    assert code == 0
    printed = capsys.readouterr().out
    assert "lam 0.02" in printed and "fgsm" in printed
    config = json.loads((out / "lam_0.02" / "log.json").read_text())["config"]
    assert config["options"]["hvp"] == "fd" and config["options"]["steps"] == 1


@pytest.mark.parametrize("argv, match", [
    (["--lam", "0.1,-2"], "must be >= 0"),
    (["--lam", "0.1,0.1"], "distinct"),
    (["--lam", "x"], "expected a number"),
    (["--lam", "0.1", "--dataset", "mnist"], "--data-root"),
])
def test_cli_sweep_bad_input(tmp_path, capsys, argv, match):
    full = ["sweep", "--dataset", "fashion-mnist", "--epochs", "1", "--out", str(tmp_path), *argv]
    if full.count("--dataset") == 2:
        i = full.index("--dataset")
        del full[i:i + 2]
    with pytest.raises(SystemExit) as e:
        main(full)
    assert e.value.code == 2
    assert match in capsys.readouterr().err
