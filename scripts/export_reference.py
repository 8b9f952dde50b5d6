"""Exports the evaluated runs of a finished ``lfr-rs table1`` / ``frontier``
folder as reference checkpoints (results/reference, index.json with SHA-256s):

    python scripts/export_reference.py results/table1-reference-fashion-mnist [--names standard,lfr]
"""

import argparse
from pathlib import Path

from lfr_rs.experiments.table1.reference import export_reference

p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
p.add_argument("run_dir", type=Path)
p.add_argument("--dest", type=Path, default=Path("results/reference"))
p.add_argument("--names", help="comma-separated method or point folders (default: every evaluated one)")
args = p.parse_args()
for name in export_reference(args.run_dir, args.dest, names=args.names.split(",") if args.names else None):
    print(f"{args.dest / 'index.json'}: {name}")
