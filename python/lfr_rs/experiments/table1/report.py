"""Writing a Table 1 run: ``table1.md``, ``table1.json``, ``table1.csv`` and the
grouped bar chart ``table1.png`` (matplotlib, imported only here), each of our
rows beside the paper's."""

from __future__ import annotations

import csv
import io
import warnings
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence

from lfr_rs.losses import METHODS
from lfr_rs.experiments.table1.evaluation import COLUMNS
from lfr_rs.training import write_json

__all__ = ["PAPER_TABLE1", "SCHEMA_VERSION", "format_markdown", "write_csv", "write_outputs", "write_png"]

SCHEMA_VERSION = 1
# Table 1 of the paper (MNIST, SmallCNN, eps 0.3), in percent.
PAPER_TABLE1: Dict[str, Dict[str, float]] = {
    "standard": {"clean": 99.30, "fgsm": 33.69, "pgd": 2.04, "mifgsm": 2.55, "ddn": 14.16},
    "at": {"clean": 99.52, "fgsm": 97.26, "pgd": 95.37, "mifgsm": 94.17, "ddn": 94.05},
    "trades": {"clean": 99.49, "fgsm": 97.54, "pgd": 95.71, "mifgsm": 94.79, "ddn": 95.91},
    "llr": {"clean": 99.62, "fgsm": 97.94, "pgd": 95.63, "mifgsm": 94.60, "ddn": 93.95},
    "lfr": {"clean": 99.47, "fgsm": 98.14, "pgd": 96.82, "mifgsm": 96.01, "ddn": 96.89},
}


def _pct(value: Optional[float]) -> str:
    return "-" if value is None else f"{value:.2f}%"


def _ours(row: Mapping[str, Any], key: str) -> Optional[float]:
    value = row.get(key)
    return None if value is None else 100.0 * value


def run_lines(report: Mapping[str, Any]) -> List[str]:
    """The Markdown lines naming a run: its command, seed and eps, device and versions."""
    s, v = report["settings"], report["versions"]
    return [f"- command: `{report['command']}`", f"- seed {s['seed']}; {s['eps_reason']}",
            f"- device: {report['device']}; lfr-rs {v['lfr_rs']}, torch {v['torch']}, python {v['python']}"]


def format_markdown(report: Mapping[str, Any]) -> str:
    """The whole ``table1.md``: header lines, our rows each followed by the paper's, notes."""
    s = report["settings"]
    heads = [title for _, title in COLUMNS]
    lines = [f"# Table 1, `{s['preset']}` preset, {report['data']['description']}", ""]
    if not report["complete"]:
        lines += [f"**Partial table: {len(report['rows'])} of {len(s['methods'])} methods finished.** "
                  "Rerun the command to continue; finished methods are kept.", ""]
    lines += run_lines(report)
    lines += [f"- started {report['started']}, total wall-clock {report['wall_clock_s']:.0f} s "
              f"(load average at start/end: {report['load_average']['start']} / {report['load_average']['end']})"]
    for item in s.get("scaled") or ():
        lines.append(f"- scaled: {item}")
    lines += ["", "| Defense | source | " + " | ".join(heads) + " | wall-clock |", "|---|---|" + "---|" * (len(heads) + 1)]
    for method, row in report["rows"].items():
        title = METHODS[method].title
        ours = [_pct(_ours(row, key)) if key != "strong" else ("-" if row.get(key) is None else _pct(_ours(row, key)))
                for key, _ in COLUMNS]
        lines.append(f"| {title} | ours | " + " | ".join(ours) + f" | {row['wall_clock_s']:.0f} s |")
        paper = report["paper"].get(method)
        if paper is not None:
            lines.append(f"| {title} | paper | " + " | ".join(_pct(paper.get(key)) for key, _ in COLUMNS) + " | |")
    lines += ["", f"Paper rows: Table 1 of the paper ({report['paper_setting']})."]
    lines += [f"- {key}: {note}" for key, note in report["protocol"].items()]
    lines += ["- recipes: " + "; ".join(f"{METHODS[m].title}: {r}" for m, r in report["recipes"].items())]
    return "\n".join(lines) + "\n"


def write_csv(path: Path, report: Mapping[str, Any]) -> None:
    """One line per (defense, source): percentages, empty where not measured."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["method", "defense", "source", *[key for key, _ in COLUMNS], "n", "wall_clock_s"])
    for method, row in report["rows"].items():
        title = METHODS[method].title
        w.writerow([method, title, "ours", *[_fmt(_ours(row, k)) for k, _ in COLUMNS], row["n"], f"{row['wall_clock_s']:.1f}"])
        paper = report["paper"].get(method)
        if paper is not None:
            w.writerow([method, title, "paper", *[_fmt(paper.get(k)) for k, _ in COLUMNS], "", ""])
    path.write_text(buf.getvalue())


def _fmt(value: Optional[float]) -> str:
    return "" if value is None else f"{value:.2f}"


def write_png(path: Path, report: Mapping[str, Any]) -> None:
    """Grouped bars: one group per column, one bar per defense (ours solid, the
    paper's hatched beside it)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = [(k, t) for k, t in COLUMNS if k != "strong"]
    methods: Sequence[str] = list(report["rows"])
    series: List[tuple] = []
    for i, m in enumerate(methods):
        colour = f"C{i}"
        series.append((f"{METHODS[m].title} (ours)", [_ours(report["rows"][m], k) for k, _ in keys], colour, None))
        if m in report["paper"]:
            series.append((f"{METHODS[m].title} (paper)", [report["paper"][m].get(k) for k, _ in keys], colour, "//"))
    width = 0.8 / max(len(series), 1)
    fig, ax = plt.subplots(figsize=(max(9.5, 1.6 * len(keys) + 0.25 * len(series) + 1.5), 4.8))
    for j, (label, values, colour, hatch) in enumerate(series):
        xs = [i + (j - (len(series) - 1) / 2) * width for i in range(len(keys))]
        heights = [0.0 if v is None else v for v in values]
        ax.bar(xs, heights, width, label=label, color=colour, alpha=0.45 if hatch else 0.95, hatch=hatch,
               edgecolor=colour if hatch else None)
    ax.set_xticks(range(len(keys)))
    ax.set_xticklabels([t for _, t in keys])
    ax.set_ylabel("accuracy (%)")
    ax.set_ylim(0, 100)
    s = report["settings"]
    ax.set_title(f"Table 1, {s['preset']} preset: {report['data']['short']}, eps {s['eps']:g} (paper: MNIST, eps 0.3)", fontsize=10)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def write_outputs(out: Path, report: Mapping[str, Any], *, png: bool = True) -> Dict[str, Path]:
    """Writes the four files (the PNG only with ``png`` and matplotlib
    installed) and returns their paths."""
    paths = {"json": out / "table1.json", "md": out / "table1.md", "csv": out / "table1.csv"}
    write_json(paths["json"], report)
    paths["md"].write_text(format_markdown(report))
    write_csv(paths["csv"], report)
    if png:
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            warnings.warn("matplotlib is not installed, so table1.png was not drawn (pip install 'lfr-rs[plots]')", stacklevel=2)
        else:
            paths["png"] = out / "table1.png"
            write_png(paths["png"], report)
    return paths
