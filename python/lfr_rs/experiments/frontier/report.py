"""Writing a frontier run: ``frontier.json``, ``frontier.md`` (the points by
training time, which are on the frontier, and which method it favours at which
budget) and ``frontier.png`` (:func:`lfr_rs.plots.frontier`)."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any, Dict, List, Mapping, Sequence

from lfr_rs.experiments.table1.report import run_lines
from lfr_rs.training import write_json

__all__ = ["SCHEMA_VERSION", "budget_sentences", "format_markdown", "summary_line", "write_outputs"]

SCHEMA_VERSION = 1


def _pct(value: float) -> str:
    return f"{100 * value:.1f}%"


def _secs(t: float) -> str:
    return f"{t:.0f}" if t >= 10 else f"{t:.1f}"


def summary_line(point: Mapping[str, Any], note: str = "") -> str:
    """One console line per point."""
    eval_s = "" if point.get("eval_s") is None else f", eval {_secs(point['eval_s'])} s"
    return (f"{point['label']:<12} clean {_pct(point['clean'])}  strong {_pct(point['strong'])}  "
            f"(train {_secs(point['train_s'])} s{eval_s}{note})")


def budget_sentences(points: Sequence[Mapping[str, Any]], *, time_key: str = "train_s") -> List[str]:
    """One sentence per training-time range between consecutive frontier
    points: the most robust point that fits the budget (ties named together)."""
    front: Dict[tuple, List[Mapping[str, Any]]] = {}
    for p in points:
        if p["on_frontier"]:
            front.setdefault((p[time_key], p["strong"]), []).append(p)
    steps = sorted(front.items())
    lines = []
    for i, ((t, _), group) in enumerate(steps):
        span = f"{_secs(t)}-{_secs(steps[i + 1][0][0])} s" if i + 1 < len(steps) else f"{_secs(t)} s and more"
        p = group[0]
        tied = f" (tied with {', '.join(q['label'] for q in group[1:])})" if len(group) > 1 else ""
        lines.append(f"{span} of training: the frontier favours {p['label']}{tied}, {_pct(p['strong'])} strong robust "
                     f"accuracy ({_pct(p['clean'])} clean).")
    return lines


def format_markdown(report: Mapping[str, Any]) -> str:
    """The whole ``frontier.md``."""
    s = report["settings"]
    key = report.get("time_key", "train_s")
    points = sorted(report["points"], key=lambda p: (p[key], -p["strong"]))
    lines = [f"# Cost-robustness frontier, `{s['preset']}` preset, {report['data']['description']}", ""]
    if not report["complete"]:
        lines += [f"**Partial: {len(points)} of {len(s['points'])} points finished.** Rerun the command to continue; "
                  "finished points are kept.", ""]
    lines += run_lines(report)
    lines += [f"- started {report['started']} (load average at start/end: {report['load_average']['start']} / "
              f"{report['load_average']['end']})"]
    lines += [f"- strong: {report['strong']}; APGD {s['attack']['strong_steps']} steps, APGD-T "
              f"{s['attack']['strong_targets']} targets, Square {s['attack']['strong_queries']} queries, eps {s['eps']:g}"]
    inner = f"- inner steps {', '.join(map(str, s['frontier_inner_steps']))}, each of 4/3 eps / steps (the preset's rule)"
    if s["fd"]:
        inner += f"; LFR with hvp=fd at the preset's {s['inner_steps']} steps"
    lines.append(inner)
    for item in s.get("scaled") or ():
        lines.append(f"- scaled: {item}")
    if key == "cost_s":
        lines.append(f"- {report['cost']}")
        lines += ["", "| point | inner steps | hvp | step s | training s | recorded train s | eval s | clean | strong | "
                  "on frontier | source |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    else:
        lines += ["", "| point | inner steps | hvp | train s | eval s | clean | strong | on frontier | source |",
                  "|---|---|---|---|---|---|---|---|---|"]
    for p in points:
        eval_s = "-" if p.get("eval_s") is None else _secs(p["eval_s"])
        times = (f"{p['step_s']:.3f} | {_secs(p['cost_s'])} | {_secs(p['train_s'])}" if key == "cost_s"
                 else _secs(p["train_s"]))
        lines.append(f"| {p['label']} | {p['inner_steps']} | {p['hvp'] or '-'} | {times} | {eval_s} | "
                     f"{_pct(p['clean'])} | {_pct(p['strong'])} | {'yes' if p['on_frontier'] else 'no'} | {p['source']} |")
    what = ("SGD steps x the step time measured side by side" if key == "cost_s"
            else "the sum of the epochs' wall-clock")
    lines += ["", "On the frontier: no other point trains at least as fast and is at least as robust (strong), "
              f"better in one of the two. Training time is {what}.", ""]
    lines += budget_sentences(report["points"], time_key=key)
    return "\n".join(lines) + "\n"


def write_outputs(out: Path, report: Mapping[str, Any], *, png: bool = True) -> Dict[str, Path]:
    """Writes ``frontier.json`` and ``frontier.md``, and ``frontier.png`` with
    ``png`` and matplotlib installed; returns their paths."""
    paths = {"json": out / "frontier.json", "md": out / "frontier.md"}
    write_json(paths["json"], dict(report))
    paths["md"].write_text(format_markdown(report))
    if png:
        try:
            import matplotlib
        except ImportError:
            warnings.warn("matplotlib is not installed, so frontier.png was not drawn (pip install 'lfr-rs[plots]')",
                          stacklevel=2)
        else:
            matplotlib.use("Agg")
            import matplotlib.pyplot as plt

            from lfr_rs.plots import frontier

            fig = frontier(report)
            paths["png"] = out / "frontier.png"
            fig.savefig(paths["png"], dpi=120)
            plt.close(fig)
    return paths
