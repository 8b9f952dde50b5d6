"""``lfr-rs table1``: the paper preset's resolved settings, the output schema,
resuming, and refusing changed settings (tiny preset on real MNIST images)."""

import csv
import dataclasses
import importlib.util
import json

import pytest
import torch

import lfr_rs.experiments.table1.runner as runner
from lfr_rs.experiments import table1
from lfr_rs.cli import main
from lfr_rs.training import load_checkpoint, lr_at, train

from conftest import MNIST_ROOT

TINY_METHODS = ("standard", "at", "trades", "llr", "lfr", "gradnorm")


def _tiny(methods=("standard", "lfr"), **kw):
    if not MNIST_ROOT.is_dir():
        pytest.skip(f"MNIST test set not found under {MNIST_ROOT}")
    return table1.resolve("tiny", "mnist", data_root=str(MNIST_ROOT), train_split="test", holdout=16, methods=methods, **kw)


# --- presets ------------------------------------------------------------------


def test_paper_preset_is_the_papers_and_authors_facts():
    s = table1.resolve("paper", "mnist", data_root="/data/mnist")
    assert s.eps == 0.3 and s.seed == 1000 and s.methods == ("standard", "at", "trades", "llr", "lfr")
    assert s.train_n is None and s.eval_n is None and s.train_split == "train"
    configs = {m: s.train_config(m).resolved() for m in ("standard", "at", "trades", "llr", "lfr", "gradnorm")}
    for m, c in configs.items():
        assert (c.epochs, c.batch_size, c.lr, c.momentum, c.weight_decay, c.lr_decay, c.seed) == (
            100, 128, 0.01, 0.9, 0.0, 0.1, 1000), m
        assert c.train_split == "train" and c.subset is None and c.dataset == "mnist"
    for m in ("standard", "lfr", "llr", "gradnorm"):  # the authors' MNIST_defense.py
        assert configs[m].model["drop"] == 0.0 and configs[m].milestones == (90,), m
    for m in ("at", "trades"):  # TRADES' train_trades_mnist.py
        assert configs[m].model["drop"] == 0.5 and configs[m].milestones == (55, 75, 90), m
    lfr = configs["lfr"]
    assert [lr_at(e, lfr.lr, lfr.milestones, lfr.lr_decay) for e in (1, 89, 90, 100)] == pytest.approx([0.01, 0.01, 0.001, 0.001])
    assert lfr.options == {"eps": 0.3, "alpha": 0.01, "steps": 40, "lam": 0.02, "hvp": "exact", "fd_step": None,
                           "start": "normal", "start_std": 0.001}
    assert configs["at"].options == {"eps": 0.3, "alpha": 0.01, "steps": 40}
    assert configs["trades"].options == {"eps": 0.3, "alpha": 0.01, "steps": 40, "beta": 1.0}
    assert configs["llr"].options == {"eps": 0.3, "alpha": 0.01, "steps": 40, "lam": 4.0, "mu": 3.0}
    assert configs["standard"].options == {}
    a = s.attack
    assert (a.eps, a.alpha, a.steps, a.mifgsm_decay) == (0.3, 0.01, 40, 0.1)
    assert (a.ddn_steps, a.ddn_init_norm, a.ddn_gamma, a.ddn_levels) == (20, 1.0, 0.05, 256)


def test_fashion_mnist_defaults_to_eps_01_and_says_why():
    s = table1.resolve("paper", "fashion-mnist")
    assert s.eps == 0.1 and "Fashion-MNIST" in s.eps_reason and "0.3" in s.eps_reason
    assert s.attack.alpha == pytest.approx(0.01 / 3) and s.inner_alpha == pytest.approx(0.01 / 3)
    assert table1.resolve("paper", "fashion-mnist", eps=0.3).eps == 0.3


@pytest.mark.parametrize("dataset", ["mnist", "fashion-mnist"])
def test_quick_preset_keeps_eps_and_says_what_it_scaled(dataset):
    paper = table1.resolve("paper", dataset)
    quick = table1.resolve("quick", dataset)
    assert quick.eps == paper.eps and quick.methods == paper.methods
    # the paper protocol is the paper's; only the strong cascade's budgets are reduced
    assert quick.attack.strong_steps < paper.attack.strong_steps == 100
    assert dataclasses.replace(quick.attack, strong_steps=100, strong_targets=9, strong_queries=5000) == paper.attack
    assert quick.inner_steps * quick.inner_alpha == pytest.approx(paper.inner_steps * paper.inner_alpha)
    assert quick.epochs < paper.epochs and quick.train_n and quick.eval_n
    assert len(quick.scaled) >= 4 and not paper.scaled


@pytest.mark.parametrize("dataset, epochs, warmup", [("fashion-mnist", 4, 1.2), ("mnist", 20, 6.0)])
def test_reference_preset(dataset, epochs, warmup):
    kw = {"data_root": "/data/mnist", "train_split": "test", "holdout": 2000} if dataset == "mnist" else {}
    s = table1.resolve("reference", dataset, **kw)
    paper = table1.resolve("paper", dataset, **kw)
    assert s.train_n is None and s.eval_n == 1000 and s.epochs == epochs and s.inner_steps == 10
    assert s.inner_steps * s.inner_alpha == pytest.approx(paper.inner_steps * paper.inner_alpha)
    assert (s.attack.strong_steps, s.attack.strong_targets, s.attack.strong_queries) == (100, 3, 1000)
    for m in ("standard", "at", "trades", "llr", "lfr", "gradnorm"):
        c = s.train_config(m).resolved()
        assert c.warmup == warmup and c.milestones == s.milestones and c.milestones[0] > warmup
    assert any("warm-up" in line for line in s.scaled)


def test_warmup_is_on_in_short_presets_and_off_in_the_paper_preset():
    for m in ("at", "lfr", "llr"):
        assert table1.resolve("paper", "mnist").train_config(m).resolved().warmup == 0.0
        assert table1.resolve("quick", "mnist").train_config(m).resolved().warmup == 0.3
    assert table1.resolve("quick", "fashion-mnist").eval_n == 500


def test_eps_given_equal_to_the_default_compares_equal():
    """Prose (why eps is what it is) is not a setting: 0.3 given on the command line is MNIST's default."""
    given = table1.resolve("quick", "mnist", eps=0.3)
    default = table1.resolve("quick", "mnist")
    assert given.eps_reason != default.eps_reason and given.comparable() == default.comparable()


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"preset": "full"}, "preset"),
        ({"dataset": "cifar10"}, "dataset"),
        ({"methods": ("lfr", "pgd")}, "methods"),
        ({"methods": ("lfr", "lfr")}, "methods"),
        ({"train_split": "test"}, "holdout"),
        ({"holdout": 100}, "holdout"),
        ({"eps": 0.0}, "eps"),
    ],
)
def test_bad_settings_raise(kwargs, match):
    with pytest.raises(ValueError, match=match):
        table1.resolve(**{"preset": "quick", "dataset": "mnist", **kwargs})


# --- a run --------------------------------------------------------------------


def _scores(report):
    return {m: {k: v for k, v in row.items() if not k.endswith("_s")} for m, row in report["rows"].items()}


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("table1")
    s = _tiny(TINY_METHODS)
    png = importlib.util.find_spec("matplotlib") is not None
    return out, table1.run(s, out, progress=False, verbose=False, png=png, command=["lfr-rs", "table1", "--test"])


def test_json_schema(tiny_run):
    out, result = tiny_run
    report = json.loads((out / "table1.json").read_text())
    assert report == json.loads(json.dumps(result.report))
    expected = {"schema_version", "complete", "command", "data", "settings", "recipes", "train_configs", "protocol", "strong_available",
                "rows", "paper", "paper_setting", "device", "versions", "started", "wall_clock_s", "this_invocation_s",
                "expected_wall_clock_s", "load_average"}
    assert set(report) == expected
    assert report["schema_version"] == table1.SCHEMA_VERSION == 1 and report["complete"] is True
    assert report["command"] == "lfr-rs table1 --test" and report["settings"]["seed"] == 1000
    assert report["data"]["description"].startswith("MNIST: training on 48 of 9,984 MNIST test images (test[16:]), evaluating on 16")
    assert set(report["versions"]) == {"lfr_rs", "torch", "python", "platform"}
    assert report["strong_available"] is True and "APGD-CE / APGD-T / Square" in report["protocol"]["strong"]
    assert list(report["rows"]) == list(TINY_METHODS)
    for m, row in report["rows"].items():
        assert row["n"] == 16 and row["epochs"] == 2
        # the cascade counts only clean-correct points, so it can never exceed clean accuracy
        assert 0.0 <= row["strong"] <= row["clean"] and row["strong"] * 16 == int(row["strong"] * 16), m
        for key in ("clean", "fgsm", "pgd", "mifgsm", "ddn"):
            assert 0.0 <= row[key] <= 1.0 and row[key] * 16 == int(row[key] * 16), (m, key)
        assert row["wall_clock_s"] == pytest.approx(row["train_s"] + row["eval_s"]) and row["train_s"] > 0
    assert set(report["paper"]) == {"standard", "at", "trades", "llr", "lfr"}
    assert report["paper"]["lfr"]["pgd"] == 96.82
    assert report["recipes"]["lfr"] == "authors' MNIST_defense.py" and report["recipes"]["trades"] == "TRADES' train_trades_mnist.py"
    assert report["train_configs"]["lfr"]["options"]["start"] == "normal"


def test_md_csv_png(tiny_run):
    out, result = tiny_run
    md = (out / "table1.md").read_text()
    assert "| LFR | ours |" in md and "| LFR | paper | 99.47% | 98.14% | 96.82% | 96.01% | 96.89% | - | |" in md
    assert "| GradNorm | paper |" not in md and "lfr-rs table1 --test" in md and "APGD-CE / APGD-T / Square" in md
    with open(out / "table1.csv") as f:
        rows = list(csv.DictReader(f))
    assert [(r["method"], r["source"]) for r in rows][:3] == [("standard", "ours"), ("standard", "paper"), ("at", "ours")]
    assert len(rows) == 6 + 5
    assert all((r["strong"] == "") == (r["source"] == "paper") for r in rows)
    ours = {r["method"]: r for r in rows if r["source"] == "ours"}
    assert float(ours["lfr"]["pgd"]) == pytest.approx(100 * result.report["rows"]["lfr"]["pgd"], abs=0.006)
    pytest.importorskip("matplotlib")
    png = (out / "table1.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000


def test_resumed_table_equals_uninterrupted(tiny_run, tmp_path, monkeypatch):
    out_a, a = tiny_run
    s = _tiny(TINY_METHODS)
    # interrupted during LFR's training (after epoch 1 of 2) ...
    train(s.train_config("lfr"), table1.method_dir(tmp_path, "lfr"), stop_after=1, verbose=False, progress=False)
    # ... and again while evaluating LFR
    real = runner.evaluate_row

    def interrupted(model, x, y, attack, **kw):
        if kw.get("desc") == "eval lfr":
            raise KeyboardInterrupt
        return real(model, x, y, attack, **kw)

    monkeypatch.setattr(runner, "evaluate_row", interrupted)
    with pytest.raises(KeyboardInterrupt):
        table1.run(s, tmp_path, progress=False, verbose=False, png=False)
    partial = json.loads((tmp_path / "table1.json").read_text())
    assert partial["complete"] is False and list(partial["rows"]) == ["standard", "at", "trades", "llr"]
    assert "Partial table: 4 of 6 methods finished" in (tmp_path / "table1.md").read_text()
    assert (table1.method_dir(tmp_path, "at") / "row.json").exists()
    assert not (table1.method_dir(tmp_path, "lfr") / "row.json").exists()
    monkeypatch.setattr(runner, "evaluate_row", real)
    b = table1.run(s, tmp_path, progress=False, verbose=False, png=False)
    assert _scores(b.report) == _scores(a.report)
    for m in TINY_METHODS:
        wa = load_checkpoint(table1.method_dir(out_a, m) / "checkpoint.pt")["model"]
        wb = load_checkpoint(table1.method_dir(tmp_path, m) / "checkpoint.pt")["model"]
        assert all(torch.equal(wa[k], wb[k]) for k in wa), m


def test_finished_methods_are_skipped(tiny_run, monkeypatch, capsys):
    out, a = tiny_run
    monkeypatch.setattr(runner, "train", lambda *a, **k: pytest.fail("a finished method was trained again"))
    monkeypatch.setattr(runner, "evaluate_row", lambda *a, **k: pytest.fail("a finished method was evaluated again"))
    b = table1.run(_tiny(TINY_METHODS), out, progress=False, png=False)
    assert _scores(b.report) == _scores(a.report)
    printed = capsys.readouterr()
    assert (printed.out + printed.err).count("finished earlier") == len(TINY_METHODS)


def test_changed_settings_are_refused(tiny_run):
    out, _ = tiny_run
    with pytest.raises(ValueError, match=r"other settings \(seed: 1000 there, 7 now\)"):
        table1.run(_tiny(TINY_METHODS, seed=7), out, progress=False, verbose=False)
    with pytest.raises(ValueError, match="methods"):
        table1.run(_tiny(("standard",)), out, progress=False, verbose=False)


def test_identical_settings_given_explicitly_continue(tiny_run, monkeypatch):
    out, a = tiny_run
    monkeypatch.setattr(runner, "train", lambda *a, **k: pytest.fail("a finished method was trained again"))
    b = table1.run(_tiny(TINY_METHODS, eps=0.3), out, progress=False, verbose=False, png=False)
    assert _scores(b.report) == _scores(a.report)


def test_cli_table1_needs_mnist_root(capsys):
    with pytest.raises(SystemExit) as info:
        main(["table1", "--preset", "paper", "--dataset", "mnist"])
    assert info.value.code == 2
    assert "--holdout 2000" in capsys.readouterr().err


def test_cli_rejects_unknown_methods(capsys):
    with pytest.raises(SystemExit):
        main(["table1", "--methods", "lfr,fgsm"])
    assert "distinct methods" in capsys.readouterr().err


# --- ranking stability --------------------------------------------------------


def _fake(seed, pgd, n=500):
    rows = {m: {"clean": 0.9, "fgsm": 0.5, "pgd": p, "mifgsm": p, "ddn": 0.2, "n": n} for m, p in pgd.items()}
    settings = {"preset": "quick", "dataset": "mnist", "seed": seed, "eps": 0.3, "device": "cpu"}
    return {"settings": settings, "rows": rows}


def test_stability_compares_rankings():
    from lfr_rs.experiments.table1.stability import compare, format_stability

    a = _fake(1000, {"standard": 0.0, "at": 0.5, "lfr": 0.6})
    b = _fake(1001, {"standard": 0.01, "at": 0.62, "lfr": 0.58})
    result = compare([a, b])
    assert result["columns"]["pgd"]["rankings"] == [["lfr", "at", "standard"], ["at", "lfr", "standard"]]
    assert result["columns"]["pgd"]["identical"] is False
    assert result["columns"]["pgd"]["pairs_agreeing"] == pytest.approx(2 / 3)
    assert result["columns"]["pgd"]["max_seed_gap_points"] == pytest.approx(12.0)
    assert result["columns"]["clean"]["identical"] is True
    assert result["standard_error_points"] == pytest.approx(100 * (0.25 / 500) ** 0.5)
    text = format_stability(result)
    assert "| PGD40 | LFR > AT > Standard | AT > LFR > Standard | no | 67% | 12.0 points |" in text
    with pytest.raises(ValueError, match="more than their seed"):
        compare([a, {**b, "settings": {**b["settings"], "eps": 0.1}}])
    with pytest.raises(ValueError, match="two runs"):
        compare([a])


def test_stability_ranks_the_strong_column_when_every_run_has_it():
    from lfr_rs.experiments.table1.stability import compare, format_stability

    a = _fake(1000, {"standard": 0.0, "at": 0.5, "lfr": 0.6})
    b = _fake(1001, {"standard": 0.01, "at": 0.62, "lfr": 0.58})
    assert "strong" not in compare([a, b])["columns"]  # tables made before the strong evaluation
    for report, strong in ((a, {"standard": 0.0, "at": 0.3, "lfr": 0.4}), (b, {"standard": 0.0, "at": 0.35, "lfr": 0.3})):
        for m, v in strong.items():
            report["rows"][m]["strong"] = v
    result = compare([a, b])
    assert result["columns"]["strong"]["rankings"] == [["lfr", "at", "standard"], ["at", "lfr", "standard"]]
    assert "| Strong | LFR > AT > Standard | AT > LFR > Standard | no |" in format_stability(result)
