"""lfr_rs.plots draws the three figures (Agg backend) and rejects bad input;
``import lfr_rs`` does not import matplotlib."""

import json
import subprocess
import sys

import pytest
import torch

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from lfr_rs import plots  # noqa: E402


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def bowl(steps=9):
    c = torch.linspace(-1, 1, steps)
    return 0.5 - c[:, None] ** 2 - c[None, :] ** 2  # positive near the centre only


def test_import_lfr_rs_does_not_import_matplotlib():
    code = "import sys, lfr_rs, lfr_rs.plots; assert 'matplotlib' not in sys.modules, 'matplotlib imported'"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_decision_surface_has_3d_and_2d_axes():
    fig = plots.decision_surface(bowl(), 0.3, title="standard")
    ax3d, ax2d = fig.axes
    assert ax3d.name == "3d" and ax2d.name == "rectilinear"
    assert ax3d.get_zlabel() == "decision value"
    assert ax2d.get_xlim() == pytest.approx((-0.3 - 0.0375, 0.3 + 0.0375))
    fig.canvas.draw()


def test_decision_surface_into_given_axes_and_batch_of_one():
    fig = plt.figure()
    axes = (fig.add_subplot(2, 2, 1, projection="3d"), fig.add_subplot(2, 2, 2))
    assert plots.decision_surface(bowl()[None], 0.3, axes=axes) is fig
    assert len(fig.axes) == 2
    with pytest.raises(ValueError, match="3D"):
        plots.decision_surface(bowl(), 0.3, axes=(fig.add_subplot(2, 2, 3), fig.add_subplot(2, 2, 4)))


def test_loss_surface():
    fig = plots.loss_surface(bowl().numpy(), 0.3)
    (ax,) = fig.axes
    assert ax.name == "3d" and ax.get_zlabel() == "cross-entropy"
    fig2 = plt.figure()
    ax2 = fig2.add_subplot(projection="3d")
    assert plots.loss_surface(bowl(), 0.3, ax=ax2, title="LFR") is fig2
    assert ax2.get_title() == "LFR"
    with pytest.raises(ValueError, match="3D"):
        plots.loss_surface(bowl(), 0.3, ax=plt.figure().add_subplot())


@pytest.mark.parametrize("values, match", [
    (torch.zeros(3, 4), "steps"),
    (torch.zeros(2, 5, 5), "steps"),
    (torch.full((5, 5), float("nan")), "NaN"),
])
def test_bad_surfaces(values, match):
    with pytest.raises(ValueError, match=match):
        plots.decision_surface(values, 0.3)


def test_bad_span():
    with pytest.raises(ValueError, match="span"):
        plots.loss_surface(bowl(), 0.0)


def sweep_record():
    results = lambda c, p: {"clean": c, "fgsm": p + 0.1, "pgd": p, "worst": p - 0.01}  # noqa: E731
    return {"runs": [{"lam": 0.02, "results": results(0.97, 0.6)}, {"lam": 0.0, "results": results(0.99, 0.05)},
                     {"lam": 0.1, "results": results(0.9, 0.7)}]}


def test_lambda_sweep_lines_and_order(tmp_path):
    fig = plots.lambda_sweep(sweep_record())
    (ax,) = fig.axes
    labels = [line.get_label() for line in ax.get_lines()]
    assert labels == ["clean", "FGSM", "PGD", "worst case"]
    clean = ax.get_lines()[0]
    assert list(clean.get_xdata()) == [0.0, 0.02, 0.1]  # sorted by lambda
    assert list(clean.get_ydata()) == pytest.approx([99, 97, 90])
    assert ax.get_xscale() == "symlog"
    # from sweep.json, into a given axes, chosen lines
    (tmp_path / "sweep.json").write_text(json.dumps(sweep_record()))
    fig2, ax2 = plt.subplots()
    assert plots.lambda_sweep(tmp_path, ax=ax2, keys=["pgd"]) is fig2
    assert [line.get_label() for line in ax2.get_lines()] == ["PGD"]


def test_lambda_sweep_bad_input():
    with pytest.raises(ValueError, match="no finished runs"):
        plots.lambda_sweep({"runs": []})
    with pytest.raises(ValueError, match="ddn_linf"):
        plots.lambda_sweep(sweep_record(), keys=["ddn_linf"])
