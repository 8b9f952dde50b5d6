"""Is the ranking a Table 1 run shows stable across seeds? Compares the
``table1.json`` of runs that differ only in their seed, column by column."""

from __future__ import annotations

import itertools
import json
import math
from pathlib import Path
from typing import Any, Dict, List, Mapping, Sequence, Union

from lfr_rs.losses import METHODS

__all__ = ["compare", "format_stability", "load_report", "ranking"]

RANKED = ("clean", "fgsm", "pgd", "mifgsm", "ddn", "strong")
_TITLES = {"clean": "Clean", "fgsm": "FGSM", "pgd": "PGD40", "mifgsm": "MI-FGSM", "ddn": "DDNA", "strong": "Strong"}


def load_report(path: Union[str, Path]) -> Dict[str, Any]:
    """A ``table1.json``, given it or the folder that holds it."""
    p = Path(path)
    return json.loads((p / "table1.json" if p.is_dir() else p).read_text())


def ranking(report: Mapping[str, Any], column: str) -> List[str]:
    """Methods from most to least accurate in ``column`` (ties keep the table's order)."""
    rows = report["rows"]
    return sorted(rows, key=lambda m: -rows[m][column])


def _pairs_agreeing(a: Sequence[str], b: Sequence[str]) -> float:
    pos_a, pos_b = {m: i for i, m in enumerate(a)}, {m: i for i, m in enumerate(b)}
    pairs = list(itertools.combinations(a, 2))
    same = sum((pos_a[x] < pos_a[y]) == (pos_b[x] < pos_b[y]) for x, y in pairs)
    return same / len(pairs) if pairs else 1.0


def compare(reports: Sequence[Mapping[str, Any]]) -> Dict[str, Any]:
    """Per column: each seed's ranking, whether all agree, the share of method
    pairs ordered alike in every pair of seeds, and the largest accuracy gap
    between seeds for one method (in points) beside the binomial standard
    error of one accuracy on the evaluation set."""
    if len(reports) < 2:
        raise ValueError("compare needs at least two runs")
    keys = [{k: v for k, v in r["settings"].items() if k not in ("seed", "data_root", "device")} for r in reports]
    if any(k != keys[0] for k in keys[1:]):
        raise ValueError("the runs differ in more than their seed")
    n = min(int(row["n"]) for r in reports for row in r["rows"].values())
    out: Dict[str, Any] = {"seeds": [r["settings"]["seed"] for r in reports], "n": n, "columns": {}}
    for col in RANKED:
        if any(row.get(col) is None for r in reports for row in r["rows"].values()):
            continue  # a column some run did not measure (tables made before the strong evaluation existed)
        ranks = [ranking(r, col) for r in reports]
        agree = min(_pairs_agreeing(a, b) for a, b in itertools.combinations(ranks, 2))
        gap = max(
            abs(a["rows"][m][col] - b["rows"][m][col]) for a, b in itertools.combinations(reports, 2) for m in a["rows"]
        )
        out["columns"][col] = {"rankings": ranks, "identical": all(r == ranks[0] for r in ranks),
                               "pairs_agreeing": agree, "max_seed_gap_points": 100 * gap}
    out["standard_error_points"] = 100 * math.sqrt(0.25 / n) if n else None
    return out


def format_stability(result: Mapping[str, Any]) -> str:
    """Markdown: one line per column with each seed's ranking."""
    seeds = result["seeds"]
    lines = [f"Ranking stability across seeds {', '.join(map(str, seeds))} ({result['n']} evaluation images; "
             f"one accuracy's binomial standard error is at most {result['standard_error_points']:.1f} points)", "",
             "| column | " + " | ".join(f"seed {s} ranking" for s in seeds) + " | identical | pairs ordered alike | "
             "largest seed-to-seed change of one row |", "|---|" + "---|" * (len(seeds) + 3)]
    for col, c in result["columns"].items():
        ranks = [" > ".join(METHODS[m].title for m in r) for r in c["rankings"]]
        lines.append(f"| {_TITLES[col]} | " + " | ".join(ranks) +
                     f" | {'yes' if c['identical'] else 'no'} | {c['pairs_agreeing']:.0%} | {c['max_seed_gap_points']:.1f} points |")
    return "\n".join(lines) + "\n"
