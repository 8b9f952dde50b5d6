"""Ranking stability of Table 1 runs that differ only in their seed.

    python scripts/table1_stability.py results/table1-quick-mnist-8k results/table1-quick-mnist-8k-seed1001 \
        --out results/table1-quick-mnist-8k/stability.md
"""

import argparse
import json
from pathlib import Path

from lfr_rs.experiments.table1.stability import compare, format_stability, load_report


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("runs", nargs="+", type=Path, help="table1.json files or the folders holding them")
    p.add_argument("--out", type=Path, help="write the Markdown here (and the numbers beside it as .json)")
    args = p.parse_args()
    result = compare([load_report(r) for r in args.runs])
    text = format_stability(result)
    print(text)
    if args.out:
        args.out.write_text(text)
        args.out.with_suffix(".json").write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
