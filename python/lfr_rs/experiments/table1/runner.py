"""``run``: train every method of Table 1 with the library's ``train``, evaluate
each through :func:`lfr_rs.experiments.table1.evaluation.evaluate_row`, write the outputs.

Layout of ``out``: ``settings.json`` (the resolved settings; a rerun with other
settings is refused), one folder per method (``checkpoint.pt`` and ``log.json``
from ``train``, ``row.json`` once evaluated), and ``table1.{md,json,csv,png}``.
A rerun continues interrupted training from its checkpoint and skips methods
whose ``row.json`` exists.
"""

from __future__ import annotations

import json
import os
import platform
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Dict, NamedTuple, Optional, Sequence, Union

import torch
from tqdm.auto import tqdm

from lfr_rs._native import __version__
from lfr_rs.experiments.common import (
    ROW, batch_seconds, calibrate, check_settings, data_description, device_name, load_avg,
    load_experiment_data, method_dir,
)
from lfr_rs.losses import METHODS
from lfr_rs.experiments.table1.evaluation import STRONG_AVAILABLE, STRONG_NOTE, evaluate_row, protocol_notes
from lfr_rs.experiments.table1.presets import Table1Settings
from lfr_rs.experiments.table1.report import PAPER_TABLE1, SCHEMA_VERSION, write_outputs
from lfr_rs.training import train, write_json

__all__ = ["Table1Result", "estimate_seconds", "run"]

class Table1Result(NamedTuple):
    report: Dict[str, Any]
    paths: Dict[str, Path]


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
            "command": " ".join(command) if command is not None else f"lfr_rs.experiments.table1.run({settings.preset!r}, ...)",
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
