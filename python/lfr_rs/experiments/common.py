"""What the experiments share: their settings file and result file names, the
data a run trains and evaluates on, the timing calibration of a SmallCNN
batch, and the description of the machine and its load."""

from __future__ import annotations

import dataclasses
import json
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Dict, List, Mapping, NamedTuple, Tuple, Union

import torch
import torch.nn.functional as F

from lfr_rs._machine import cpu_name
from lfr_rs.models import SmallCNN
from lfr_rs.regularizers import grad_norm_penalty
from lfr_rs.training import load_data, write_json

if TYPE_CHECKING:  # the settings are Table 1's; the frontier passes its base settings
    from lfr_rs.experiments.table1.presets import Table1Settings

__all__ = [
    "ROW", "SETTINGS", "ExperimentData", "batch_seconds", "calibrate", "check_settings", "data_description",
    "device_name", "load_avg", "load_experiment_data", "method_dir", "settings_diff",
]

SETTINGS = "settings.json"
ROW = "row.json"


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
