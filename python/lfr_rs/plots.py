"""The paper's figures as functions returning matplotlib ``Figure`` objects.

* :func:`decision_surface`: Fig. 1, one input's decision surface in 3D beside
  its 2D map, red where the model's prediction is correct;
* :func:`loss_surface`: Fig. 2, one input's loss surface in 3D;
* :func:`lambda_sweep`: Fig. 3, clean and adversarial accuracy against LFR's
  lambda, one line per attack plus the per-sample worst case;
* :func:`frontier`: beyond the paper, strong robust accuracy against training
  wall-clock per method and inner-step budget, with the Pareto frontier.

The values come from :func:`lfr_rs.surface`, :func:`lfr_rs.sweep` and
:func:`lfr_rs.experiments.frontier.run`; these
functions only draw. matplotlib is imported when a function is called, so
``import lfr_rs`` does not need it (``pip install matplotlib``).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, Optional, Sequence, Tuple, Union

import numpy as np
import torch

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["decision_surface", "frontier", "lambda_sweep", "loss_surface"]

CORRECT = "#d62728"  # red: the prediction is correct (the paper's convention)
WRONG = "#1f77b4"
_ATTACK_LABELS = {"clean": "clean", "fgsm": "FGSM", "pgd": "PGD", "mifgsm": "MI-FGSM", "ddn_linf": "DDN (L-inf)",
                  "worst": "worst case"}


def _pyplot() -> Any:
    try:
        import matplotlib.pyplot as plt
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError("lfr_rs.plots needs matplotlib: pip install matplotlib") from e
    return plt


def _grid(values: Union[torch.Tensor, np.ndarray], span: float) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(A, B, Z)`` meshes of one surface: ``Z[i, j]`` at ``a_i`` along u, ``b_j`` along v."""
    z = values.detach().cpu().double().numpy() if isinstance(values, torch.Tensor) else np.asarray(values, dtype=float)
    if z.ndim == 3 and z.shape[0] == 1:
        z = z[0]
    if z.ndim != 2 or z.shape[0] != z.shape[1] or z.shape[0] < 2:
        raise ValueError(f"values must be one (steps, steps) surface with steps >= 2, got shape {tuple(z.shape)}")
    if not np.isfinite(z).all():
        raise ValueError("values contain NaN or inf")
    if not np.isfinite(span) or span <= 0:
        raise ValueError(f"span must be a finite number > 0, got {span}")
    coords = np.linspace(-span, span, z.shape[0])
    a, b = np.meshgrid(coords, coords, indexing="ij")
    return a, b, z


def _new_3d_axes(ax: Optional["Axes"], title: Optional[str]) -> Tuple["Figure", "Axes"]:
    if ax is None:
        fig = _pyplot().figure(figsize=(5, 4.5))
        ax = fig.add_subplot(projection="3d")
    elif getattr(ax, "name", None) != "3d":
        raise ValueError("ax must be a 3D axes: fig.add_subplot(projection='3d')")
    if title:
        ax.set_title(title)
    return ax.figure, ax


def decision_surface(
    values: Union[torch.Tensor, np.ndarray],
    span: float,
    *,
    axes: Optional[Tuple["Axes", "Axes"]] = None,
    title: Optional[str] = None,
    xlabel: str = "gradient direction",
    ylabel: str = "random direction",
) -> "Figure":
    """Fig. 1 for one input: the 3D decision surface and its 2D map side by side.

    ``values`` is one ``(steps, steps)`` surface from
    ``lfr_rs.surface(..., span=span, kind="decision")`` (a leading batch
    dimension of 1 is accepted). Grid cells are red where the decision value
    is positive (the prediction is correct), blue elsewhere; the 2D map draws
    the decision boundary (value 0) in black and marks the clean input with a
    cross. ``axes=(ax3d, ax2d)`` draws into existing axes (the first made with
    ``projection="3d"``); otherwise a new figure is made.
    """
    a, b, z = _grid(values, span)
    if axes is None:
        fig = _pyplot().figure(figsize=(9, 4))
        ax3d = fig.add_subplot(1, 2, 1, projection="3d")
        ax2d = fig.add_subplot(1, 2, 2)
    else:
        ax3d, ax2d = axes
        if getattr(ax3d, "name", None) != "3d":
            raise ValueError("axes[0] must be a 3D axes: fig.add_subplot(projection='3d')")
        fig = ax3d.figure
    from matplotlib.colors import ListedColormap

    colors = np.where(z > 0, CORRECT, WRONG)
    ax3d.plot_surface(a, b, z, facecolors=colors, linewidth=0, antialiased=False, shade=True)
    ax3d.set_xlabel(xlabel)
    ax3d.set_ylabel(ylabel)
    ax3d.set_zlabel("decision value")
    ax2d.pcolormesh(a, b, (z > 0).astype(float), cmap=ListedColormap([WRONG, CORRECT]), vmin=0, vmax=1,
                    shading="nearest")
    if z.min() < 0 < z.max():
        ax2d.contour(a, b, z, levels=[0.0], colors="k", linewidths=1.0)
    ax2d.plot([0], [0], marker="x", color="k")
    ax2d.set_xlabel(xlabel)
    ax2d.set_ylabel(ylabel)
    ax2d.set_aspect("equal")
    if title:
        ax3d.set_title(title)
        ax2d.set_title(f"{title}: correct (red)")
    return fig


def loss_surface(
    values: Union[torch.Tensor, np.ndarray],
    span: float,
    *,
    ax: Optional["Axes"] = None,
    title: Optional[str] = None,
    xlabel: str = "gradient direction",
    ylabel: str = "random direction",
    cmap: str = "viridis",
) -> "Figure":
    """Fig. 2 for one input: the 3D loss surface from
    ``lfr_rs.surface(..., span=span, kind="loss")``. ``ax`` must be a 3D axes
    (``projection="3d"``); by default a new figure is made."""
    a, b, z = _grid(values, span)
    fig, ax = _new_3d_axes(ax, title)
    ax.plot_surface(a, b, z, cmap=cmap, linewidth=0, antialiased=True)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_zlabel("cross-entropy")
    return fig


def _load_record(result: Union[Mapping[str, Any], str, "os.PathLike[str]"], name: str) -> Mapping[str, Any]:
    if isinstance(result, Mapping):
        return result
    path = Path(result)
    if path.is_dir():
        path = path / name
    return json.loads(path.read_text())


def lambda_sweep(
    result: Union[Mapping[str, Any], str, "os.PathLike[str]"],
    *,
    ax: Optional["Axes"] = None,
    keys: Optional[Sequence[str]] = None,
    title: Optional[str] = "LFR: accuracy against lambda",
) -> "Figure":
    """Fig. 3: accuracy (percent) against lambda, one line for clean inputs, one
    per attack and one for the per-sample worst case over the attacks.

    ``result`` is what :func:`lfr_rs.sweep` returns, or its ``sweep.json`` (or
    the sweep's folder). ``keys`` picks lines among the results' keys
    (default: every accuracy present). The lambda axis is symmetric-log so
    that 0 sits beside the small values.
    """
    record = _load_record(result, "sweep.json")
    runs = sorted(record.get("runs", []), key=lambda r: r["lam"])
    if not runs:
        raise ValueError("the sweep has no finished runs to plot")
    present = [k for k in _ATTACK_LABELS if all(r["results"].get(k) is not None for r in runs)]
    keys = present if keys is None else list(keys)
    missing = [k for k in keys if k not in present]
    if missing:
        raise ValueError(f"no accuracy {', '.join(missing)} in every run; available: {', '.join(present)}")
    if ax is None:
        fig, ax = _pyplot().subplots(figsize=(6, 4))
    else:
        fig = ax.figure
    lams = [r["lam"] for r in runs]
    for key in keys:
        style = {"color": "k", "linestyle": "--"} if key == "worst" else {}
        ax.plot(lams, [100 * r["results"][key] for r in runs], marker="o", label=_ATTACK_LABELS[key], **style)
    positive = [lam for lam in lams if lam > 0]
    if positive:
        ax.set_xscale("symlog", linthresh=min(positive))
    ax.set_xlabel("lambda")
    ax.set_ylabel("accuracy (%)")
    ax.set_ylim(0, 100)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize="small")
    if title:
        ax.set_title(title)
    return fig


_MARKERS = {"standard": "s", "at": "o", "trades": "^", "llr": "D", "lfr": "*", "gradnorm": "v"}


def _plain_log_ticks(axis: Any, span: float) -> None:
    """Plain-number labels on a log axis, at 1-2-5 steps per decade (every
    integer step when the data span less than a factor 5), and none on the
    minor ticks: matplotlib's default labels the minor ticks of an axis
    spanning about a decade in scientific notation, which overlap."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    subs = (1.0, 2.0, 5.0) if span >= 5 else tuple(float(k) for k in range(1, 10))
    axis.set_major_locator(LogLocator(base=10, subs=subs))
    axis.set_major_formatter(FuncFormatter(lambda v, _pos: f"{v:g}"))
    axis.set_minor_formatter(NullFormatter())


def frontier(
    result: Union[Mapping[str, Any], str, "os.PathLike[str]"],
    *,
    ax: Optional["Axes"] = None,
    title: Optional[str] = "Strong robust accuracy against training time",
) -> "Figure":
    """Strong robust accuracy (percent) against training wall-clock (seconds,
    log scale): one marker and colour per method, each point annotated with
    its inner steps (``fd``: LFR with ``hvp="fd"``, open marker), and the
    Pareto frontier (the points the report marks ``on_frontier``) as a step line.

    ``result`` is what :func:`lfr_rs.experiments.frontier.run` reports, or its
    ``frontier.json`` (or the run's folder).
    """
    from lfr_rs.losses import METHODS

    record = _load_record(result, "frontier.json")
    points = list(record.get("points", []))
    key = record.get("time_key", "train_s")  # "cost_s": steps x side-by-side step time (lfr_rs.experiments.frontier.cost)
    if not points:
        raise ValueError("the frontier has no measured points to plot")
    if any(p[key] <= 0 for p in points):
        raise ValueError("training times must be positive for the log-scale axis")
    if ax is None:
        fig, ax = _pyplot().subplots(figsize=(7, 4.5))
    else:
        fig = ax.figure
    methods = list(dict.fromkeys(p["method"] for p in points))
    for i, method in enumerate(methods):
        colour = f"C{i}"
        for fd in (False, True):
            mine = [p for p in points if p["method"] == method and (p.get("hvp") == "fd") == fd]
            if not mine:
                continue
            label = METHODS[method].title + (" (hvp=fd)" if fd else "")
            ax.scatter([p[key] for p in mine], [100 * p["strong"] for p in mine], marker=_MARKERS.get(method, "o"),
                       s=60, label=label, edgecolors=colour, facecolors="none" if fd else colour, zorder=3)
            for p in mine:
                text = f"k{p['inner_steps']}" + (" fd" if fd else "")
                ax.annotate(text, (p[key], 100 * p["strong"]), textcoords="offset points", xytext=(5, 4),
                            fontsize=7, color=colour)
    if any("on_frontier" not in p for p in points):
        raise ValueError("the frontier's points carry no on_frontier flags: draw it from lfr_rs.experiments.frontier.run's "
                         "report or its frontier.json")
    front = sorted((p for p in points if p["on_frontier"]), key=lambda p: p[key])
    xs = [p[key] for p in front] + [max(p[key] for p in points)]
    ys = [100 * p["strong"] for p in front] + [100 * front[-1]["strong"]]
    ax.step(xs, ys, where="post", color="k", linewidth=1, alpha=0.6, label="Pareto frontier", zorder=2)
    ax.set_xscale("log")
    _plain_log_ticks(ax.xaxis, max(p[key] for p in points) / min(p[key] for p in points))
    ax.set_xlabel("training time (s, log scale): SGD steps x step time measured side by side" if key == "cost_s"
                  else "training wall-clock (s, log scale)")
    ax.set_ylabel("strong robust accuracy (%)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize="small")
    if title:
        ax.set_title(title)
    return fig
