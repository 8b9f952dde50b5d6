"""``lfr-rs frontier``: points, resuming, refusing changed settings, reusing a
table1 run, the Pareto frontier, the outputs and the command line (tiny preset
on Debian's Fashion-MNIST)."""

import json
from pathlib import Path

import pytest
import torch

import lfr_rs.experiments.frontier.runner as runner
from lfr_rs.experiments import frontier, table1
from lfr_rs.cli import main
from lfr_rs.data import DEBIAN_FASHION_MNIST
from lfr_rs.experiments.frontier import Point, budget_sentences, pareto
from lfr_rs.training import load_checkpoint, train

METHODS = ("standard", "lfr")
POINTS = ["standard-k0", "lfr-k1", "lfr-k2", "lfr-k2-fd"]
SCORES = ("name", "method", "inner_steps", "hvp", "inner_alpha", "clean", "strong", "n", "epochs")


def _root():
    if not DEBIAN_FASHION_MNIST.is_dir():
        pytest.skip(f"Debian's Fashion-MNIST is not installed at {DEBIAN_FASHION_MNIST}")
    return str(DEBIAN_FASHION_MNIST)


def _settings(**kw):
    kw = {"inner_steps": (1, 2), "methods": METHODS, **kw}
    return frontier.resolve("tiny", "fashion-mnist", data_root=_root(), **kw)


def _scores(report):
    return {p["name"]: {k: p[k] for k in SCORES} for p in report["points"]}


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("frontier")
    return out, frontier.run(_settings(), out, progress=False, verbose=False, command=["lfr-rs", "frontier", "--test"])


@pytest.fixture(scope="module")
def tiny_table1(tmp_path_factory):
    out = tmp_path_factory.mktemp("table1")
    s = table1.resolve("tiny", "fashion-mnist", data_root=_root(), methods=METHODS)
    return out, table1.run(s, out, progress=False, verbose=False, png=False)


# --- settings and points --------------------------------------------------------


def test_points_and_their_training_configs():
    s = _settings(methods=("standard", "at", "lfr"), inner_steps=(5, 2))
    assert [p.name for p in s.points()] == ["standard-k0", "at-k2", "at-k5", "lfr-k2", "lfr-k5", "lfr-k2-fd"]
    base = table1.resolve("tiny", "fashion-mnist", data_root=_root(), methods=("standard", "at", "lfr"))
    assert s.train_config(Point("standard", 0)) == base.train_config("standard")
    at5 = s.train_config(Point("at", 5)).options
    assert at5["steps"] == 5 and at5["alpha"] == pytest.approx(4 / 3 * 0.1 / 5)
    # at the preset's inner steps a point is exactly the table1 row, and fd changes the hvp only
    assert s.train_config(Point("lfr", 2, "exact")) == base.train_config("lfr")
    fd = s.train_config(Point("lfr", 2, "fd"))
    assert fd.options == {**base.train_config("lfr").options, "hvp": "fd"}
    assert [p.name for p in _settings(fd=False).points()] == POINTS[:3]


def test_scaled_describes_the_frontiers_own_inner_steps():
    s = _settings(methods=("standard", "at", "lfr"), inner_steps=(1, 4))
    table = [i for i in s.base.scaled if i.startswith("inner maximisation:")]
    ours = [i for i in s.to_dict()["scaled"] if i.startswith("inner maximisation:")]
    assert len(table) == len(ours) == 1 and table[0].startswith("inner maximisation: 2 steps of ")
    a1, a4 = 4 / 3 * 0.1, 4 / 3 * 0.1 / 4
    assert ours[0].startswith(f"inner maximisation: 1, 4 steps of {a1:g}, {a4:g} respectively; LFR fd at the preset's 2")
    # the other items are the preset's, in its order
    assert [i for i in s.to_dict()["scaled"] if i not in ours] == [i for i in s.base.scaled if i not in table]
    no_fd = _settings(methods=("standard", "at"), inner_steps=(3,)).to_dict()["scaled"]
    assert any(i.startswith(f"inner maximisation: 3 steps of {4 / 3 * 0.1 / 3:g} (paper: 40 of") for i in no_fd)


def test_the_report_lists_every_inner_step_budget(tiny_run):
    md = (tiny_run[0] / "frontier.md").read_text()
    assert "- scaled: inner maximisation: 1, 2 steps of " in md and "inner maximisation: 2 steps of" not in md


def test_estimate_grows_with_the_inner_steps():
    e = frontier.estimate_seconds(_settings(methods=("standard", "at", "lfr"), inner_steps=(1, 4)), 48, 16)
    assert list(e) == ["standard-k0", "at-k1", "at-k4", "lfr-k1", "lfr-k4", "lfr-k2-fd"]
    train_s = {k: v["train_s"] for k, v in e.items()}
    assert 0 < train_s["standard-k0"] < train_s["at-k1"] < train_s["at-k4"] and train_s["lfr-k1"] < train_s["lfr-k4"]
    assert len({v["eval_s_at_most"] for v in e.values()}) == 1


@pytest.mark.parametrize("steps", [(), (0, 2), (2, 2)])
def test_bad_inner_steps_raise(steps):
    with pytest.raises(ValueError, match="inner_steps"):
        frontier.resolve("tiny", "fashion-mnist", inner_steps=steps)


# --- the Pareto frontier ----------------------------------------------------------


def _hand_made():
    pts = [("a", 10, 0.2), ("b", 20, 0.2), ("c", 20, 0.5), ("d", 20, 0.5), ("e", 5, 0.1), ("f", 30, 0.4), ("g", 10, 0.1)]
    return [{"label": n, "train_s": t, "strong": v, "clean": 0.9} for n, t, v in pts]


def test_pareto_on_hand_made_points_with_ties():
    points = _hand_made()
    # b: as robust as a but slower; g: as fast as a but less robust; f: slower and less robust than c;
    # c and d are equal, so neither dominates the other
    assert pareto(points) == [True, False, True, True, True, False, False]
    assert pareto([]) == []
    assert pareto([{"train_s": 1.0, "strong": 0.0}]) == [True]


def test_budget_sentences_follow_the_frontier():
    points = [{**p, "on_frontier": on} for p, on in zip(_hand_made(), pareto(_hand_made()))]
    assert budget_sentences(points) == [
        "5.0-10 s of training: the frontier favours e, 10.0% strong robust accuracy (90.0% clean).",
        "10-20 s of training: the frontier favours a, 20.0% strong robust accuracy (90.0% clean).",
        "20 s and more of training: the frontier favours c (tied with d), 50.0% strong robust accuracy (90.0% clean).",
    ]


# --- a run --------------------------------------------------------------------


def test_json_schema(tiny_run):
    out, result = tiny_run
    report = json.loads((out / "frontier.json").read_text())
    assert report == json.loads(json.dumps(result.report))
    assert set(report) == {"schema_version", "complete", "command", "data", "settings", "strong", "device", "versions", "started",
                           "this_invocation_s", "expected_wall_clock_s", "load_average", "time_key", "cost", "points"}
    assert report["time_key"] == "cost_s" and "side by side" in report["cost"]
    assert report["complete"] is True and "Partial" not in (out / "frontier.md").read_text()
    assert report["schema_version"] == frontier.SCHEMA_VERSION == 1 and report["command"] == "lfr-rs frontier --test"
    assert report["data"]["description"].startswith("Fashion-MNIST: training on 48 of 60,000 training images")
    assert report["device"].startswith("CPU: ") and set(report["versions"]) == {"lfr_rs", "torch", "python", "platform"}
    assert set(report["expected_wall_clock_s"]) == {"train_s", "eval_s_at_most"}
    assert report["settings"]["frontier_inner_steps"] == [1, 2] and report["settings"]["points"] == POINTS
    assert [p["name"] for p in report["points"]] == POINTS
    for p in report["points"]:
        assert set(p) == {"name", "label", "method", "inner_steps", "hvp", "inner_alpha", "train_s", "eval_s", "clean",
                          "strong", "n", "epochs", "source", "sgd_steps", "step_s", "cost_s", "on_frontier"}
        assert p["n"] == 16 and p["epochs"] == 2 and p["source"] == "trained"
        assert p["sgd_steps"] == 3 * 2 and p["cost_s"] == pytest.approx(p["sgd_steps"] * p["step_s"]) and p["step_s"] > 0
        assert p["train_s"] > 0 and p["eval_s"] > 0 and 0 <= p["strong"] <= p["clean"] <= 1
        assert (out / p["name"] / "point.json").is_file() and (out / p["name"] / "checkpoint.pt").is_file()
    assert [p["on_frontier"] for p in report["points"]] == pareto(report["points"], time_key="cost_s")
    assert [(p["inner_steps"], p["hvp"]) for p in report["points"]] == [(0, None), (1, "exact"), (2, "exact"), (2, "fd")]
    md = (out / "frontier.md").read_text()
    assert "| point | inner steps | hvp | step s | training s | recorded train s | eval s | clean | strong |" in md
    assert md.count(" of training: the frontier favours ") >= 1 and "lfr-rs frontier --test" in md


def test_resumed_equals_uninterrupted(tiny_run, tmp_path, monkeypatch):
    out_a, a = tiny_run
    s = _settings()
    lfr2 = Point("lfr", 2, "exact")
    # interrupted during lfr-k2's training (after epoch 1 of 2) ...
    first = train(s.train_config(lfr2), frontier.point_dir(tmp_path, lfr2), stop_after=1, verbose=False, progress=False)
    # ... and again while evaluating it (the third point evaluated)
    real, calls = runner.strong_evaluation, []

    def interrupted(*args, **kw):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(*args, **kw)

    monkeypatch.setattr(runner, "strong_evaluation", interrupted)
    with pytest.raises(KeyboardInterrupt):
        frontier.run(s, tmp_path, progress=False, verbose=False, png=False)
    assert (tmp_path / "lfr-k1" / "point.json").exists() and not (tmp_path / "lfr-k2" / "point.json").exists()
    partial = json.loads((tmp_path / "frontier.json").read_text())
    assert partial["complete"] is False and [p["name"] for p in partial["points"]] == POINTS[:2]
    assert "Partial: 2 of 4 points finished" in (tmp_path / "frontier.md").read_text()
    monkeypatch.setattr(runner, "strong_evaluation", real)
    b = frontier.run(s, tmp_path, progress=False, verbose=False, png=False)
    assert _scores(b.report) == _scores(a.report)
    # lfr-k2 continued from its checkpoint: its first epoch was not trained again
    log = json.loads((tmp_path / "lfr-k2" / "log.json").read_text())["epochs"]
    assert len(log) == 2 and log[0] == first.history[0]
    assert b.report["points"][2]["train_s"] == pytest.approx(sum(e["time_s"] for e in log))
    for name in POINTS:
        wa = load_checkpoint(out_a / name / "checkpoint.pt")["model"]
        wb = load_checkpoint(tmp_path / name / "checkpoint.pt")["model"]
        assert all(torch.equal(wa[k], wb[k]) for k in wa), name


def test_finished_points_are_skipped_and_budgets_may_change(tiny_run, monkeypatch, capsys):
    out, a = tiny_run
    monkeypatch.setattr(runner, "train", lambda *x, **k: pytest.fail("a finished point was trained again"))
    monkeypatch.setattr(runner, "strong_evaluation", lambda *x, **k: pytest.fail("a finished point was evaluated again"))
    b = frontier.run(_settings(), out, progress=False, png=False)
    assert _scores(b.report) == _scores(a.report)
    assert capsys.readouterr().out.count("finished earlier") == len(POINTS)
    fewer = frontier.run(_settings(inner_steps=(2,), fd=False), out, progress=False, verbose=False, png=False)
    assert [p["name"] for p in fewer.report["points"]] == ["standard-k0", "lfr-k2"]
    assert _scores(fewer.report)["lfr-k2"] == _scores(a.report)["lfr-k2"]
    # ... and back: the points left out were kept
    again = frontier.run(_settings(), out, progress=False, verbose=False, png=False)
    assert _scores(again.report) == _scores(a.report)


def test_changed_settings_are_refused(tiny_run):
    out, _ = tiny_run
    with pytest.raises(ValueError, match=r"frontier run with other settings \(seed: 1000 there, 7 now\)"):
        frontier.run(_settings(seed=7), out, progress=False, verbose=False)
    with pytest.raises(ValueError, match=r"eps: 0.1 there, 0.2 now"):
        frontier.run(_settings(eps=0.2), out, progress=False, verbose=False)


# --- reusing a table1 run -------------------------------------------------------------


def test_table1_reuse_takes_exactly_the_matching_points(tiny_run, tiny_table1, tmp_path, monkeypatch):
    _, a = tiny_run
    t1_dir, t1 = tiny_table1
    real, trained = runner.train, []

    def recording(config, out, **kw):
        trained.append(out.name)
        return real(config, out, **kw)

    monkeypatch.setattr(runner, "train", recording)
    b = frontier.run(_settings(), tmp_path, table1=t1_dir, progress=False, verbose=False, png=False)
    assert trained == ["lfr-k1", "lfr-k2-fd"]  # table1 ran 2 inner steps, exact hvp: standard and lfr-k2 are its rows
    points = {p["name"]: p for p in b.report["points"]}
    for name, method in (("standard-k0", "standard"), ("lfr-k2", "lfr")):
        row = t1.report["rows"][method]
        assert points[name]["source"] == f"table1 run {t1_dir}" and points[name]["eval_s"] is None
        assert (points[name]["clean"], points[name]["strong"], points[name]["train_s"]) == (row["clean"], row["strong"], row["train_s"])
    # the same configuration trained here gives the same model, so the same accuracies
    assert _scores(b.report) == _scores(a.report)


def test_table1_with_other_settings_is_refused(tiny_table1, tmp_path):
    t1_dir, _ = tiny_table1
    with pytest.raises(ValueError, match=r"--table1 .* other settings \(seed: 1000 there, 7 now\)"):
        frontier.table1_points(_settings(seed=7), t1_dir)
    with pytest.raises(FileNotFoundError, match="not an lfr-rs table1 output folder"):
        frontier.table1_points(_settings(), tmp_path)


# --- plot and command line -------------------------------------------------------------


def test_plot_has_a_log_time_axis(tiny_run):
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from lfr_rs import plots

    out, result = tiny_run
    for source in (result.report, out, out / "frontier.json"):
        fig = plots.frontier(source)
        (ax,) = fig.axes
        assert isinstance(fig, matplotlib.figure.Figure) and ax.get_xscale() == "log"
        assert ax.get_ylabel() == "strong robust accuracy (%)"
        assert sorted(t.get_text() for t in ax.texts) == ["k0", "k1", "k2", "k2 fd"]
        plt.close(fig)
    with pytest.raises(ValueError, match="no measured points"):
        plots.frontier({"points": []})
    png = (out / "frontier.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"


def _visible_xtick_labels(fig):
    fig.canvas.draw()
    (ax,) = fig.axes
    lo, hi = ax.get_xlim()
    ticks = ax.xaxis.get_major_ticks() + ax.xaxis.get_minor_ticks()
    return [t.label1 for t in ticks if t.label1.get_visible() and t.label1.get_text() and lo <= t.get_loc() <= hi]


@pytest.mark.parametrize("source", ["tiny", "fashion-mnist reference"])
def test_the_time_axis_labels_are_plain_numbers_that_do_not_overlap(source, tiny_run):
    """matplotlib's default labels the minor ticks of an axis spanning about a
    decade in scientific notation, on top of each other (the committed
    Fashion-MNIST reference frontier spans 297-5147 s)."""
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from lfr_rs import plots

    path = tiny_run[0] if source == "tiny" else Path(__file__).parents[2] / "results/frontier-reference-fashion-mnist"
    if not path.exists():
        pytest.skip(f"{path} is not in this checkout")
    fig = plots.frontier(path)
    labels = _visible_xtick_labels(fig)
    assert len(labels) >= 2
    for label in labels:
        float(label.get_text())  # plain numbers, no "10^3" mathtext
    boxes = sorted((label.get_window_extent() for label in labels), key=lambda b: b.x0)
    assert all(a.x1 <= b.x0 for a, b in zip(boxes, boxes[1:])), [label.get_text() for label in labels]
    plt.close(fig)


def test_cli_end_to_end(tmp_path, capsys):
    _root()
    args = ["frontier", "--preset", "tiny", "--dataset", "fashion-mnist", "--inner-steps", "1", "--methods", "standard,at",
            "--no-fd", "--threads", "1", "--no-progress", "--out", str(tmp_path)]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "expected wall-clock" in printed and "| point | inner steps |" in printed and "AT k1" in printed
    report = json.loads((tmp_path / "frontier.json").read_text())
    assert [p["name"] for p in report["points"]] == ["standard-k0", "at-k1"]
    assert report["command"] == "lfr-rs " + " ".join(args)
    assert main(args) == 0
    assert capsys.readouterr().out.count("finished earlier") == 2


@pytest.mark.parametrize(
    "extra, match",
    [
        (["--inner-steps", "0"], "must be >= 1"),
        (["--inner-steps", "2,2"], "inner_steps must be distinct"),
        (["--methods", "lfr,fgsm"], "distinct methods"),
        (["--dataset", "mnist"], "--data-root"),
        (["--preset", "huge"], "invalid choice"),
        (["--table1", "/nonexistent/t1"], "no such folder"),
        (["--train-split", "test"], "holdout"),
    ],
)
def test_cli_bad_arguments_exit_2(extra, match, tmp_path, capsys):
    with pytest.raises(SystemExit) as info:
        main(["frontier", "--preset", "tiny", "--out", str(tmp_path / "f"), *extra])
    assert info.value.code == 2
    assert match in capsys.readouterr().err


def test_cli_refuses_a_mismatched_table1(tiny_table1, tmp_path, capsys):
    t1_dir, _ = tiny_table1
    with pytest.raises(SystemExit) as info:
        main(["frontier", "--preset", "tiny", "--seed", "7", "--inner-steps", "2", "--table1", str(t1_dir),
              "--out", str(tmp_path)])
    assert info.value.code == 2
    assert "seed: 1000 there, 7 now" in capsys.readouterr().err


def test_step_seconds_are_measured_side_by_side_and_follow_the_passes():
    from lfr_rs.experiments.frontier.cost import step_seconds
    from lfr_rs.training import load_data

    s = _settings(methods=("standard", "at", "lfr"), inner_steps=(1, 8))
    data = load_data(s.train_config(Point("standard", 0)))
    times = step_seconds(s, s.points(), data.train_x[:16], data.train_y[:16], rounds=2)
    assert set(times) == {p.name for p in s.points()} and all(t > 0 for t in times.values())
    # 8 inner steps cost several times 1 (AT: 9 vs 2 passes; LFR: 9 vs 2 double backprops)
    assert times["at-k8"] > 2 * times["at-k1"] and times["lfr-k8"] > 2 * times["lfr-k1"]
    assert times["standard-k0"] < times["at-k1"] < times["lfr-k8"]
    with pytest.raises(ValueError, match="rounds"):
        step_seconds(s, s.points(), data.train_x[:16], data.train_y[:16], rounds=0)
