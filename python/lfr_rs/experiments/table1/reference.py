"""``export_reference``: the weights of a finished table1 (or frontier) run as
the repository's reference checkpoints (``results/reference``), each with its
SHA-256 and what produced it, for :func:`lfr_rs.models.load_reference`."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any, Dict, Iterable, List, Optional, Union

import torch

from lfr_rs.models import INDEX
from lfr_rs.training import CHECKPOINT, LOG, load_checkpoint, write_json

__all__ = ["export_reference"]

PathLike = Union[str, "os.PathLike[str]"]
_RESULT_FILES = ("row.json", "point.json")


def _report(run_dir: Path) -> Dict[str, Any]:
    for name in ("table1.json", "frontier.json"):
        if (run_dir / name).is_file():
            return dict(json.loads((run_dir / name).read_text()))
    return {}


def export_reference(run_dir: PathLike, dest: PathLike, *, names: Optional[Iterable[str]] = None,
                     repo_root: Optional[PathLike] = None) -> List[str]:
    """Writes ``dest/DATASET/NAME.pt`` (the bare ``state_dict``) for every
    evaluated method or point folder ``NAME`` of ``run_dir`` (or only
    ``names``) and records it in ``dest/index.json`` as ``DATASET/NAME`` with
    its SHA-256, architecture, training config, seed, command, machine,
    training log (a path relative to ``repo_root``) and evaluation results.
    Returns the names written."""
    run_dir, dest = Path(run_dir), Path(dest)
    root = Path(repo_root) if repo_root is not None else Path.cwd()
    report = _report(run_dir)
    folders = sorted(p.parent for f in _RESULT_FILES for p in run_dir.glob(f"*/{f}"))
    if names is not None:
        wanted = set(names)
        folders = [f for f in folders if f.name in wanted]
        missing = wanted - {f.name for f in folders}
        if missing:
            raise ValueError(f"{run_dir}: no evaluated run named {', '.join(sorted(missing))}")
    if not folders:
        raise ValueError(f"{run_dir}: no evaluated method or point folders (row.json / point.json)")
    index_path = dest / INDEX
    index: Dict[str, Any] = json.loads(index_path.read_text()) if index_path.is_file() else {"checkpoints": {}}
    written = []
    for folder in folders:
        state = load_checkpoint(folder / CHECKPOINT)
        config = state["config"]
        name = f"{config['dataset']}/{folder.name}"
        file = Path(config["dataset"]) / f"{folder.name}.pt"
        (dest / file).parent.mkdir(parents=True, exist_ok=True)
        torch.save(state["model"], dest / file)
        digest = hashlib.sha256((dest / file).read_bytes()).hexdigest()
        result = next(json.loads((folder / f).read_text()) for f in _RESULT_FILES if (folder / f).is_file())
        index["checkpoints"][name] = {
            "file": file.as_posix(), "sha256": digest, "architecture": "SmallCNN", "model": config["model"],
            "method": config["method"], "config": config, "seed": config["seed"], "epochs": state["epoch"],
            "command": report.get("command"), "machine": report.get("device"),
            "log": os.path.relpath(folder / LOG, root), "results": result,
        }
        written.append(name)
    write_json(index_path, index)
    return written
