"""Executes the notebooks top to bottom and collects the figures they write.

    python scripts/run_notebooks.py                                  # every notebooks/*.ipynb, in order
    python scripts/run_notebooks.py --figures results/figures        # ... and keep their PNGs
    python scripts/run_notebooks.py notebooks/02_decision_surfaces.ipynb --workdir /tmp/nb
    python scripts/run_notebooks.py --retrain                        # train the models instead of loading references

Each notebook runs (with nbclient and the ``python3`` kernel) from a copy laid
out as in the repository, ``WORKDIR/repo/notebooks/``, beside
``WORKDIR/shared`` (a link to the shared folder, default: the repository's
``../shared``), so the notebooks' relative data paths resolve and nothing is
written into the checkout. Notebooks run in the same WORKDIR share the models
they cache under ``runs/``; the executed copies (with outputs) stay there. Prints the wall time of each notebook; exits 1 with
the failing cell's error when a notebook fails. ``tests/test_notebooks.py``
runs this script once per notebook.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError, CellTimeoutError

REPO = Path(__file__).resolve().parent.parent


def workspace(workdir: Path, shared: Path) -> Path:
    """``workdir/repo/notebooks`` (created) with ``workdir/shared`` linked to ``shared``."""
    notebooks = workdir / "repo" / "notebooks"
    notebooks.mkdir(parents=True, exist_ok=True)
    link = workdir / "shared"
    if not link.exists() and not link.is_symlink():
        link.symlink_to(shared.resolve(), target_is_directory=True)
    return notebooks


def retrain(nb: "nbformat.NotebookNode") -> bool:
    """Sets ``RETRAIN = True`` in the notebook's settings cell (the first code
    cell that assigns it); returns whether one was found."""
    for cell in nb.cells:
        if cell.cell_type == "code" and any(line.startswith("RETRAIN = ") for line in cell.source.splitlines()):
            cell.source = "\n".join("RETRAIN = True" if line.startswith("RETRAIN = ") else line
                                     for line in cell.source.splitlines())
            return True
    return False


def run(path: Path, cwd: Path, timeout: int, *, retrain_models: bool = False) -> float:
    """Executes ``path`` with ``cwd`` as its working directory and leaves the
    executed copy, outputs included, in ``cwd``; returns seconds. With
    ``retrain_models`` a notebook that loads reference checkpoints trains its
    models instead."""
    nb = nbformat.read(path, as_version=4)
    if retrain_models:
        retrain(nb)
    client = NotebookClient(nb, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": str(cwd)}})
    tic = time.perf_counter()
    try:
        client.execute()
    finally:
        nbformat.write(nb, cwd / path.name)
    return time.perf_counter() - tic


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("notebooks", nargs="*", type=Path, help="default: notebooks/*.ipynb")
    parser.add_argument("--workdir", type=Path, help="where the notebooks run (default: a new temporary folder)")
    parser.add_argument("--shared", type=Path, default=REPO.parent / "shared",
                        help="the shared folder the notebooks reach as ../../shared (default: %(default)s)")
    parser.add_argument("--figures", type=Path, help="copy the PNGs the notebooks write here")
    parser.add_argument("--timeout", type=int, default=600, help="seconds per cell (default: %(default)s)")
    parser.add_argument("--retrain", action="store_true",
                        help="set RETRAIN = True: train the models at the notebook budget instead of loading the "
                             "reference checkpoints")
    args = parser.parse_args()
    paths = args.notebooks or sorted((REPO / "notebooks").glob("*.ipynb"))
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        parser.error(f"no such notebook: {', '.join(missing)}")
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="lfr-notebooks-"))
    cwd = workspace(workdir, args.shared)
    for path in paths:
        try:
            seconds = run(path, cwd, args.timeout, retrain_models=args.retrain)
        except (CellExecutionError, CellTimeoutError) as e:
            print(f"FAILED {path.name}:\n{e}", file=sys.stderr)
            return 1
        print(f"{path.name}: {seconds:.1f} s", flush=True)
    if args.figures is not None:
        args.figures.mkdir(parents=True, exist_ok=True)
        for png in sorted(cwd.glob("*.png")):
            shutil.copy(png, args.figures / png.name)
            print(f"figure: {args.figures / png.name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
