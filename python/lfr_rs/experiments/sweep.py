"""The lambda sweep of Fig. 3: LFR trained and evaluated at several values of
its regularizer weight ``lam``.

Each lambda is one training run in ``out_dir/lam_<value>/`` (its checkpoint,
``log.json`` and ``eval.json``), so an interrupted sweep resumes where it
stopped: finished runs are kept, an unfinished one continues from its last
epoch, and evaluations already written for the same settings are reused.
``out_dir/sweep.json`` collects every finished lambda and is rewritten after
each one; :func:`lfr_rs.plots.lambda_sweep` draws it.

``lam = 0`` is the plain cross-entropy, so it is trained as ``"standard"``
(the same objective without LFR's inner maximisation, which a zero weight
discards).
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import time
from pathlib import Path
from typing import Any, Dict, Iterable, List, Optional, Sequence, Union

from tqdm.auto import tqdm

from lfr_rs.defaults import PAPER_ALPHA, PAPER_EPS, PAPER_STEPS
from lfr_rs.evaluation import ATTACKS, evaluate
from lfr_rs.training import TrainConfig, eval_split, train, write_json

__all__ = ["SWEEP_JSON", "sweep"]

SWEEP_JSON = "sweep.json"
EVAL_JSON = "eval.json"
PathLike = Union[str, "os.PathLike[str]"]


def _run_dir(out: Path, lam: float) -> Path:
    return out / f"lam_{lam:g}"


def _config_for(base: TrainConfig, lam: float) -> TrainConfig:
    if lam == 0:
        return dataclasses.replace(base, method="standard", options={})
    return dataclasses.replace(base, method="lfr", options={**base.options, "lam": lam})


def _check_lams(lams: Iterable[float]) -> List[float]:
    values = [float(lam) for lam in lams]
    if not values:
        raise ValueError("lams is empty: give at least one lambda")
    bad = [lam for lam in values if not math.isfinite(lam) or lam < 0]
    if bad:
        raise ValueError(f"lambdas must be finite and >= 0, got {bad}")
    if len({f"{lam:g}" for lam in values}) != len(values):
        raise ValueError(f"lambdas must be distinct, got {values}")
    return values


def _read_eval(path: Path, settings: Dict[str, Any]) -> Optional[Dict[str, Any]]:
    """A previous evaluation of the same checkpoint epoch and settings, if any."""
    if not path.is_file():
        return None
    try:
        record = json.loads(path.read_text())
    except json.JSONDecodeError:
        return None
    return record if record.get("settings") == settings else None


def sweep(
    lams: Sequence[float],
    out_dir: PathLike,
    *,
    base: TrainConfig,
    attacks: Iterable[str] = ATTACKS,
    eval_n: Optional[int] = 1000,
    eps: float = PAPER_EPS,
    alpha: float = PAPER_ALPHA,
    steps: int = PAPER_STEPS,
    ddn_steps: Optional[int] = None,
    progress: Optional[bool] = None,
) -> Dict[str, Any]:
    """Trains LFR at each lambda in ``lams`` with ``base`` (method options such
    as ``eps``/``steps``/``hvp`` are LFR's; ``base.method`` is ignored) and
    evaluates each model with :func:`lfr_rs.evaluate` on the first
    ``eval_n`` evaluation images (``None``: all), clean and under ``attacks``.

    Resumable (see the module docstring); ``progress=None`` shows bars on
    terminals only. Returns the ``sweep.json`` record: ``base`` (the config),
    ``evaluation`` (the attack settings) and ``runs``, one entry per lambda
    with ``lam``, ``method``, ``checkpoint``, ``epochs``, ``train_time_s`` and
    ``results`` (the accuracies as fractions, ``worst`` included).
    """
    values = _check_lams(lams)
    attacks = tuple(attacks)
    unknown = [a for a in attacks if a not in ATTACKS]
    if unknown:
        raise ValueError(f"unknown attack(s) {', '.join(unknown)}; expected some of {', '.join(ATTACKS)}")
    if eval_n is not None and eval_n < 1:
        raise ValueError(f"eval_n must be at least 1 (or None for all), got {eval_n}")
    configs = [_config_for(base, lam).resolved() for lam in values]  # bad options fail before any training
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    settings = {"attacks": list(attacks), "eval_n": eval_n, "eps": eps, "alpha": alpha, "steps": steps,
                "ddn_steps": ddn_steps}
    record: Dict[str, Any] = {"base": base.to_dict(), "evaluation": settings, "runs": []}
    eval_x, eval_y = eval_split(configs[0])
    if eval_n is not None:
        if eval_n > len(eval_x):
            raise ValueError(f"eval_n {eval_n}: the evaluation set has only {len(eval_x)} images")
        eval_x, eval_y = eval_x[:eval_n], eval_y[:eval_n]
    bar = tqdm(list(zip(values, configs)), desc="lambda sweep", unit="run",
               disable=None if progress is None else not progress)
    for lam, config in bar:
        bar.set_postfix(lam=f"{lam:g}")
        run = _run_dir(out, lam)
        trained = train(config, run, resume=True, progress=progress, verbose=False)
        epoch = trained.history[-1]["epoch"] if trained.history else 0
        run_settings = {**settings, "epoch": epoch}
        done = _read_eval(run / EVAL_JSON, run_settings)
        if done is None:
            tic = time.perf_counter()
            device = config.device
            results = evaluate(
                trained.model, eval_x.to(device), eval_y.to(device), attacks=attacks, eps=eps, alpha=alpha,
                steps=steps, ddn_steps=ddn_steps, progress=progress,
            )
            done = {"settings": run_settings, "results": results, "eval_time_s": time.perf_counter() - tic}
            write_json(run / EVAL_JSON, done)
        record["runs"].append({
            "lam": lam, "method": config.method, "checkpoint": str(trained.checkpoint), "epochs": epoch,
            "train_time_s": sum(entry["time_s"] for entry in trained.history), "results": done["results"],
        })
        write_json(out / SWEEP_JSON, record)
    return record
