"""``run``: train every method of Table 1 with the library's ``train``, evaluate
each through :func:`lfr_rs.table1.evaluation.evaluate_row`, write the outputs.

Layout of ``out``: ``settings.json`` (the resolved settings; a rerun with other
settings is refused), one folder per method (``checkpoint.pt`` and ``log.json``
from ``train``, ``row.json`` once evaluated), and ``table1.{md,json,csv,png}``.
A rerun continues interrupted training from its checkpoint and skips methods
whose ``row.json`` exists.
"""

from __future__ import annotations

import dataclasses
import json
import os
import platform
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Dict, List, Mapping, NamedTuple, Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from lfr_rs._machine import cpu_name
from lfr_rs import __version__, grad_norm_penalty
from lfr_rs.losses import METHODS
from lfr_rs.models import SmallCNN
from lfr_rs.table1.evaluation import STRONG_AVAILABLE, STRONG_NOTE, evaluate_row, protocol_notes
from lfr_rs.table1.presets import Table1Settings
from lfr_rs.table1.report import PAPER_TABLE1, SCHEMA_VERSION, write_outputs
from lfr_rs.training import load_data, train, write_json

__all__ = [
    "ExperimentData", "Table1Result", "batch_seconds", "calibrate", "check_settings", "data_description", "device_name",
    "estimate_seconds", "load_avg", "load_experiment_data", "method_dir", "run", "settings_diff",
]

SETTINGS = "settings.json"
ROW = "row.json"


class Table1Result(NamedTuple):
    report: Dict[str, Any]
    paths: Dict[str, Path]


def method_dir(out: Union[str, "os.PathLike[str]"], method: str) -> Path:
    return Path(out) / method


def _fmt_n(n: int) -> str:
    return f"{n:,}"


def data_description(s: Table1Settings, n_train: int, n_train_total: int, n_eval: int, n_eval_total: int) -> Dict[str, str]:
    """The output's first line: which images trained and which evaluated."""
    name = {"mnist": "MNIST", "fashion-mnist": "Fashion-MNIST"}[s.dataset]
    train_part = f"{_fmt_n(n_train)}" + ("" if n_train == n_train_total else f" of {_fmt_n(n_train_total)}")
    eval_part = f"{_fmt_n(n_eval)}" + ("" if n_eval == n_eval_total else f" of {_fmt_n(n_eval_total)}")
    if s.train_split == "test":
        line = (f"{name}: training on {train_part} {name} test images (test[{s.holdout}:]), evaluating on {eval_part} "
                f"other test images (test[:{s.holdout}]); the {name} training split is not used")
        short = f"{name}, test split {n_train_total}/{s.holdout}"
    else:
        line = f"{name}: training on {train_part} training images, evaluating on {eval_part} test images"
        short = name
    return {"description": line, "short": short}


def _time_pass(fn: Any, reps: int = 3) -> float:
    fn()
    best = float("inf")
    for _ in range(reps):
        tic = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - tic)
    return best


def calibrate(device: str, batch_size: int) -> Tuple[float, float]:
    """Seconds of one forward/backward (``u``) and one double backprop (``v``)
    of a SmallCNN batch on ``device``, best of three."""
    dev = torch.device(device)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = SmallCNN(zero_init_last=False).to(dev)
        x = torch.rand(batch_size, 1, 28, 28, device=dev)
        y = torch.randint(0, 10, (batch_size,), device=dev)

        def plain() -> None:
            xr = x.clone().requires_grad_(True)
            F.cross_entropy(model(xr), y).backward()

        def double() -> None:
            grad_norm_penalty(model, x, y).mean().backward()

        return _time_pass(plain), _time_pass(double)


def batch_seconds(u: float, v: float, k: int) -> Dict[str, float]:
    """Training cost of one batch per method with ``k`` inner steps:
    standard u, AT (k+1)u, TRADES (k+2)u, LLR ku+v, GradNorm v, LFR (k+1)v,
    LFR with ``hvp="fd"`` ("lfr-fd": two gradients per inner step) 2ku+v."""
    return {"standard": u, "at": (k + 1) * u, "trades": (k + 2) * u, "llr": k * u + v, "gradnorm": v,
            "lfr": (k + 1) * v, "lfr-fd": 2 * k * u + v}


def estimate_seconds(s: Table1Settings, n_train: int, n_eval: int, *, inner_steps: Optional[int] = None) -> Dict[str, float]:
    """Expected wall-clock per method, from a calibration on this device
    (:func:`calibrate`, costs per batch in :func:`batch_seconds`, with
    ``inner_steps`` in place of the settings' if given); evaluation
    (1 + 40 + 40 + 20)u per batch."""
    u, v = calibrate(s.device, s.batch_size)
    per_batch = batch_seconds(u, v, s.inner_steps if inner_steps is None else inner_steps)
    batches = -(-n_train // s.batch_size) * s.epochs
    a = s.attack
    eval_s = -(-n_eval // s.batch_size) * (1 + 1 + 2 * a.steps + a.ddn_steps) * u
    return {m: batches * per_batch[m] + eval_s for m in s.methods}


class ExperimentData(NamedTuple):
    """The data a Table 1 or frontier run trains and evaluates on, with the
    sizes it uses (``n_train``, ``n_eval``) and the sizes of the splits."""

    data: Any
    n_train: int
    n_train_total: int
    n_eval: int
    n_eval_total: int


def load_experiment_data(s: Table1Settings) -> ExperimentData:
    data = load_data(dataclasses.replace(s.train_config(s.methods[0]), subset=None))
    n_train_total, n_eval_total = len(data.train_x), len(data.eval_x)
    n_train = n_train_total if s.train_n is None else min(s.train_n, n_train_total)
    n_eval = n_eval_total if s.eval_n is None else min(s.eval_n, n_eval_total)
    return ExperimentData(data, n_train, n_train_total, n_eval, n_eval_total)


def device_name(device: str) -> str:
    d = torch.device(device)
    if d.type == "cuda":
        return f"{torch.cuda.get_device_name(d)} (CUDA)"
    return f"CPU: {cpu_name()}, {os.cpu_count()} cores, {torch.get_num_threads()} torch threads"


def load_avg() -> str:
    try:
        return "{:.2f}, {:.2f}, {:.2f}".format(*os.getloadavg())
    except OSError:
        return "n/a"


def settings_diff(saved: Mapping[str, Any], ours: Mapping[str, Any]) -> List[str]:
    """``"key: saved there, ours now"`` for every key of ``ours`` whose saved value differs."""
    return [f"{k}: {saved.get(k)!r} there, {v!r} now" for k, v in ours.items() if saved.get(k) != v]


def check_settings(out: Path, record: Mapping[str, Any], comparable: Mapping[str, Any], what: str = "a Table 1 run") -> None:
    """Writes ``record`` to ``out/settings.json`` on the first run; later runs
    must agree with it on every key of ``comparable`` (ValueError otherwise)."""
    path = out / SETTINGS
    if not path.exists():
        write_json(path, dict(record))
        return
    diff = settings_diff(json.loads(path.read_text()), comparable)
    if diff:
        raise ValueError(
            f"{out} holds {what} with other settings ({'; '.join(diff)}); rerun with the same settings to "
            "continue it, or choose another --out"
        )


def _check_settings(out: Path, s: Table1Settings) -> None:
    check_settings(out, s.to_dict(), s.comparable())


def _summary(method: str, row: Dict[str, Any], note: str = "") -> str:
    cells = "  ".join(f"{k} {100 * row[k]:.2f}%" for k in ("clean", "fgsm", "pgd", "mifgsm", "ddn"))
    return f"{METHODS[method].title:<9} {cells}  ({row['wall_clock_s']:.0f} s{note})"


def run(
    settings: Table1Settings,
    out: Union[str, "os.PathLike[str]"],
    *,
    progress: Optional[bool] = None,
    verbose: bool = True,
    png: bool = True,
    command: Optional[Sequence[str]] = None,
) -> Table1Result:
    """Trains and evaluates every method of ``settings`` into ``out`` (resuming
    what is there), then writes ``table1.{md,json,csv,png}``."""
    say = tqdm.write if verbose else (lambda *_: None)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    started = datetime.now(timezone.utc).isoformat(timespec="seconds")
    load_start = load_avg()
    tic_all = time.perf_counter()
    data, n_train, n_train_total, eval_n, n_eval_total = load_experiment_data(settings)
    described = data_description(settings, n_train, n_train_total, eval_n, n_eval_total)
    _check_settings(out, settings)
    say(f"Table 1 ({settings.preset} preset): {described['description']}.")
    say(f"{settings.eps_reason}.")
    for item in settings.scaled:
        say(f"scaled: {item}")
    say(f"strong evaluation: {STRONG_NOTE}")
    estimate = estimate_seconds(settings, n_train, eval_n)
    total = sum(estimate.values())
    say(f"expected wall-clock: about {total / 60:.1f} min on {device_name(settings.device)} "
        f"({', '.join(f'{m} {t / 60:.1f}' for m, t in estimate.items())} min; calibrated just now)")

    rows: Dict[str, Dict[str, Any]] = {}

    def report(final: bool) -> Dict[str, Any]:
        return {
            "schema_version": SCHEMA_VERSION,
            "complete": final and len(rows) == len(settings.methods),
            "command": " ".join(command) if command is not None else f"lfr_rs.table1.run({settings.preset!r}, ...)",
            "data": described,
            "settings": settings.to_dict(),
            "recipes": {m: settings.recipe(m) for m in settings.methods},
            "train_configs": {m: settings.train_config(m).resolved().to_dict() for m in settings.methods},
            "protocol": protocol_notes(settings.attack),
            "strong_available": STRONG_AVAILABLE,
            "rows": rows,
            "paper": {m: PAPER_TABLE1[m] for m in settings.methods if m in PAPER_TABLE1},
            "paper_setting": "MNIST, 60,000 training / 10,000 test images, eps 0.3, 100 epochs",
            "device": device_name(settings.device),
            "versions": {"lfr_rs": __version__, "torch": torch.__version__, "python": sys.version.split()[0],
                         "platform": platform.platform()},
            "started": started,
            "wall_clock_s": sum(r["wall_clock_s"] for r in rows.values()),
            "this_invocation_s": time.perf_counter() - tic_all,
            "expected_wall_clock_s": total,
            "load_average": {"start": load_start, "end": load_avg()},
        }

    device = torch.device(settings.device)
    eval_x, eval_y = data.eval_x[:eval_n].to(device), data.eval_y[:eval_n].to(device)
    for method in settings.methods:
        mdir = method_dir(out, method)
        row_path = mdir / ROW
        if row_path.exists():
            rows[method] = json.loads(row_path.read_text())
            say(_summary(method, rows[method], ", finished earlier"))
            continue
        config = settings.train_config(method)
        result = train(config, mdir, resume=True, progress=progress, verbose=False)
        train_s = sum(float(e["time_s"]) for e in result.history)
        torch.manual_seed(settings.seed)
        tic = time.perf_counter()
        row = evaluate_row(result.model, eval_x, eval_y, settings.attack, progress=progress, desc=f"eval {method}")
        eval_s = time.perf_counter() - tic
        row.update({"train_s": train_s, "eval_s": eval_s, "wall_clock_s": train_s + eval_s,
                    "epochs": len(result.history), "final_train_loss": result.history[-1]["loss"]})
        write_json(row_path, row)
        rows[method] = row
        say(_summary(method, row))
        if len(rows) < len(settings.methods):
            write_outputs(out, report(final=False), png=False)  # the table so far, in case of an interruption

    final = report(final=True)
    paths = write_outputs(out, final, png=png)
    say(f"wrote {', '.join(str(p) for p in paths.values())}")
    return Table1Result(final, paths)
