"""``run``: train and evaluate every point of a frontier, resumably, reusing
the matching rows of a finished ``lfr-rs table1`` run when asked.

Layout of ``out``: ``settings.json`` (the shared settings; a rerun with other
ones is refused, while the methods and inner-step budgets may change), one
folder per point, ``<method>-k<K>[-fd]/`` (``checkpoint.pt`` and ``log.json``
from :func:`lfr_rs.training.train`, ``point.json`` once evaluated), and
``frontier.{json,md,png}``.
"""

from __future__ import annotations

import json
import os
import platform
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Dict, List, NamedTuple, Optional, Sequence, Union

import torch
from tqdm.auto import tqdm

from lfr_rs._native import __version__
from lfr_rs.experiments.frontier.cost import sgd_steps, step_seconds
from lfr_rs.experiments.frontier.points import NO_INNER_STEPS, FrontierSettings, Point, pareto
from lfr_rs.experiments.frontier.report import SCHEMA_VERSION, summary_line, write_outputs
from lfr_rs.experiments.table1.evaluation import STRONG_NOTE, strong_evaluation
from lfr_rs.experiments.common import (
    ROW,
    SETTINGS,
    batch_seconds,
    calibrate,
    check_settings,
    data_description,
    device_name,
    load_avg,
    load_experiment_data,
    method_dir,
    settings_diff,
)
from lfr_rs.training import LOG, train, write_json

__all__ = ["POINT", "FrontierResult", "estimate_seconds", "point_dir", "run", "table1_points"]

POINT = "point.json"
PathLike = Union[str, "os.PathLike[str]"]


class FrontierResult(NamedTuple):
    report: Dict[str, Any]
    paths: Dict[str, Path]


def point_dir(out: PathLike, point: Point) -> Path:
    return Path(out) / point.name


def estimate_seconds(s: FrontierSettings, n_train: int, n_eval: int) -> Dict[str, Dict[str, float]]:
    """Per point, the expected training wall-clock (``train_s``, from one
    calibration on the device, see :func:`lfr_rs.experiments.common.batch_seconds`)
    and a bound on the strong evaluation (``eval_s_at_most``: every APGD step
    on every image plus Square's queries as forward passes, a third of ``u``
    each; points fooled early cost far less)."""
    u, v = calibrate(s.base.device, s.base.batch_size)
    a = s.base.attack
    batches = -(-n_train // s.base.batch_size) * s.base.epochs
    eval_s = -(-n_eval // s.base.batch_size) * ((1 + a.strong_steps * (1 + a.strong_targets)) * u + a.strong_queries * u / 3)
    out = {}
    for p in s.points():
        key = "lfr-fd" if p.hvp == "fd" else p.method
        out[p.name] = {"train_s": batches * batch_seconds(u, v, p.inner_steps)[key], "eval_s_at_most": eval_s}
    return out


def table1_points(s: FrontierSettings, table1_dir: PathLike) -> Dict[str, Dict[str, Any]]:
    """The points a finished ``lfr-rs table1`` run in ``table1_dir`` already
    measured: its rows (``row.json`` with a Strong column) of our methods whose
    inner steps are its own and whose ``hvp`` is its exact one. Its settings
    (``settings.json``) and each row's training configuration (``log.json``)
    must equal ours apart from the methods, device and data folder; otherwise
    ValueError."""
    src = Path(table1_dir)
    path = src / SETTINGS
    if not path.is_file():
        raise FileNotFoundError(f"--table1 {src}: no {SETTINGS} there (not an lfr-rs table1 output folder)")
    saved = json.loads(path.read_text())
    diff = settings_diff(saved, s.comparable())
    if diff:
        raise ValueError(f"--table1 {src} was run with other settings ({'; '.join(diff)}); "
                         "its rows cannot stand for this frontier's points")
    found: Dict[str, Dict[str, Any]] = {}
    for point in s.points():
        matches = point.method in NO_INNER_STEPS or (point.inner_steps == saved["inner_steps"] and point.hvp != "fd")
        row_path = method_dir(src, point.method) / ROW
        if not matches or point.method not in saved["methods"] or not row_path.is_file():
            continue
        row = json.loads(row_path.read_text())
        if row.get("strong") is None:
            raise ValueError(f"--table1 {row_path} has no Strong column (made before it existed); rerun that table")
        ours = s.train_config(point).resolved().to_dict()
        theirs = json.loads((method_dir(src, point.method) / LOG).read_text())["config"]
        ignore = ("device", "data_root")
        config_diff = settings_diff(theirs, {k: v for k, v in ours.items() if k not in ignore})
        if config_diff:
            raise ValueError(f"--table1 {src}: {point.method} was trained with another configuration "
                             f"({'; '.join(config_diff)})")
        found[point.name] = {
            **_point_keys(point, s), "train_s": float(row["train_s"]), "eval_s": None, "clean": row["clean"],
            "strong": row["strong"], "n": row["n"], "epochs": row["epochs"], "source": f"table1 run {src}",
        }
    return found


def _point_keys(point: Point, s: FrontierSettings) -> Dict[str, Any]:
    alpha = None if point.method in NO_INNER_STEPS else s.inner_alpha(point.inner_steps)
    return {"name": point.name, "label": point.label, "method": point.method, "inner_steps": point.inner_steps,
            "hvp": point.hvp, "inner_alpha": alpha}


def run(
    settings: FrontierSettings,
    out: PathLike,
    *,
    table1: Optional[PathLike] = None,
    progress: Optional[bool] = None,
    verbose: bool = True,
    png: bool = True,
    command: Optional[Sequence[str]] = None,
) -> FrontierResult:
    """Trains and evaluates every point of ``settings`` into ``out`` (resuming
    what is there; points of a matching ``table1`` run are taken from it), then
    writes ``frontier.{json,md,png}``."""
    say = tqdm.write if verbose else (lambda *_: None)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    base = settings.base
    started = datetime.now(timezone.utc).isoformat(timespec="seconds")
    load_start = load_avg()
    tic_all = time.perf_counter()
    data, n_train, n_train_total, n_eval, n_eval_total = load_experiment_data(base)
    if n_eval < 1:
        raise ValueError("the frontier needs at least one evaluation image")
    described = data_description(base, n_train, n_train_total, n_eval, n_eval_total)
    reused = {} if table1 is None else table1_points(settings, table1)
    check_settings(out, settings.record(), settings.comparable(), what="a frontier run")
    say(f"Cost-robustness frontier ({base.preset} preset): {described['description']}.")
    say(f"{base.eps_reason}. strong evaluation: {STRONG_NOTE}.")
    points = settings.points()
    steps = sgd_steps(settings, n_train)
    say(f"timing one training step of each of the {len(points)} points, side by side ...")
    batch = min(base.batch_size, n_train)
    step_s = step_seconds(settings, points, data.train_x[:batch], data.train_y[:batch])
    estimate = estimate_seconds(settings, n_train, n_eval)
    todo = [p.name for p in points if p.name not in reused and not (point_dir(out, p) / POINT).exists()]
    total = {"train_s": sum(steps * step_s[name] for name in todo),
             "eval_s_at_most": sum(estimate[name]["eval_s_at_most"] for name in todo)}
    say(f"{len(points)} points, {len(todo)} to train and evaluate: expected wall-clock about {total['train_s'] / 60:.1f} "
        f"min of training plus at most {total['eval_s_at_most'] / 60:.1f} min of evaluation on "
        f"{device_name(base.device)} (measured just now)")

    device = torch.device(base.device)
    eval_x, eval_y = data.eval_x[:n_eval].to(device), data.eval_y[:n_eval].to(device)
    measured: List[Dict[str, Any]] = []

    def report() -> Dict[str, Any]:
        return {
            "schema_version": SCHEMA_VERSION,
            "complete": len(measured) == len(points),
            "command": " ".join(command) if command is not None else f"lfr_rs.experiments.frontier.run({base.preset!r}, ...)",
            "data": described,
            "settings": settings.to_dict(),
            "strong": STRONG_NOTE,
            "device": device_name(base.device),
            "versions": {"lfr_rs": __version__, "torch": torch.__version__, "python": sys.version.split()[0],
                         "platform": platform.platform()},
            "started": started,
            "this_invocation_s": time.perf_counter() - tic_all,
            "expected_wall_clock_s": total,  # of the points this invocation measures
            "load_average": {"start": load_start, "end": load_avg()},
            "time_key": "cost_s",
            "cost": COST_NOTE.format(steps=steps, batch=base.batch_size),
            "points": _with_costs(measured, steps, step_s),
        }

    for point in tqdm(points, desc="frontier", unit="point", disable=None if progress is None else not progress):
        pdir = point_dir(out, point)
        path = pdir / POINT
        if path.exists():
            record = json.loads(path.read_text())
            note = ", finished earlier"
        elif point.name in reused:
            record = reused[point.name]
            pdir.mkdir(parents=True, exist_ok=True)
            write_json(path, record)
            note = f", from {record['source']}"
        else:
            record = _measure(settings, point, pdir, eval_x, eval_y, progress)
            write_json(path, record)
            note = ""
        measured.append(record)
        say(summary_line(record, note))
        if len(measured) < len(points):
            write_outputs(out, report(), png=False)  # the frontier so far, in case of an interruption

    final = report()
    paths = write_outputs(out, final, png=png)
    say(f"wrote {', '.join(str(p) for p in paths.values())}")
    return FrontierResult(final, paths)


COST_NOTE = ("training time = the {steps} SGD steps of every point x the median seconds of one of its steps (batch "
             "{batch}), all points timed side by side in this invocation (lfr_rs.experiments.frontier.cost.step_seconds); train_s "
             "is the wall-clock each training recorded, which also holds whatever else the machine did then")


def _with_costs(measured: Sequence[Dict[str, Any]], steps: int, step_s: Dict[str, float]) -> List[Dict[str, Any]]:
    points = [{**r, "sgd_steps": steps, "step_s": step_s[r["name"]], "cost_s": steps * step_s[r["name"]]}
              for r in measured]
    return [{**p, "on_frontier": on} for p, on in zip(points, pareto(points, time_key="cost_s"))]


def _measure(s: FrontierSettings, point: Point, pdir: Path, eval_x: torch.Tensor, eval_y: torch.Tensor,
             progress: Optional[bool]) -> Dict[str, Any]:
    """Trains ``point`` (continuing its checkpoint) and runs the strong evaluation."""
    result = train(s.train_config(point), pdir, resume=True, progress=progress, verbose=False)
    train_s = sum(float(e["time_s"]) for e in result.history)
    torch.manual_seed(s.base.seed)
    tic = time.perf_counter()
    strong = strong_evaluation(result.model, eval_x, eval_y, s.base.attack, progress=progress)
    eval_s = time.perf_counter() - tic
    return {**_point_keys(point, s), "train_s": train_s, "eval_s": eval_s, "clean": strong.clean,
            "strong": strong.worst, "n": strong.n, "epochs": len(result.history), "source": "trained"}
