"""MNIST-format datasets read from local IDX files (the Rust reader does the
parsing). Nothing is ever downloaded.

``root`` may be any of: a folder holding the IDX files; torchvision's layout
(``root/MNIST/raw/...`` or ``root/FashionMNIST/raw/...``); Debian's
``dataset-fashion-mnist`` folder ``/usr/share/datasets/fashion-mnist``. Files
may be plain (``*-ubyte``) or gzipped (``*-ubyte.gz``).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Optional, Tuple, Union

import torch

from lfr_rs._native import load_idx_pair, read_idx

__all__ = [
    "DEBIAN_FASHION_MNIST",
    "find_idx_pair",
    "load_dataset",
    "load_fashion_mnist",
    "load_mnist",
    "read_idx",
]

DEBIAN_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")

PathLike = Union[str, "os.PathLike[str]"]


def _candidates(root: Path, subfolder: str) -> list[Path]:
    return [root, root / subfolder / "raw", root / "raw", root / subfolder]


def find_idx_pair(root: PathLike, train: bool, subfolder: str = "MNIST") -> Tuple[Path, Path]:
    """Finds the (images, labels) IDX files of a split under ``root``."""
    prefix = "train" if train else "t10k"
    stems = (f"{prefix}-images-idx3-ubyte", f"{prefix}-labels-idx1-ubyte")
    root = Path(root).expanduser()
    for folder in _candidates(root, subfolder):
        found = []
        for stem in stems:
            hits = [folder / (stem + ext) for ext in ("", ".gz") if (folder / (stem + ext)).is_file()]
            if not hits:
                break
            found.append(hits[0])
        if len(found) == 2:
            return found[0], found[1]
    split = "train" if train else "test"
    raise FileNotFoundError(
        f"no {split} split ({stems[0]}[.gz], {stems[1]}[.gz]) under {root} "
        f"(looked in {', '.join(str(p) for p in _candidates(root, subfolder))}); "
        "lfr-rs never downloads data"
    )


def load_dataset(root: PathLike, train: bool, subfolder: str = "MNIST") -> Tuple[torch.Tensor, torch.Tensor]:
    """Images ``float32 (N, 1, H, W)`` in [0, 1] and labels ``int64 (N,)``."""
    images, labels = find_idx_pair(root, train, subfolder)
    return load_idx_pair(str(images), str(labels))


def load_mnist(root: PathLike, train: bool = False) -> Tuple[torch.Tensor, torch.Tensor]:
    """MNIST from local IDX files (see the module docstring for layouts)."""
    return load_dataset(root, train, "MNIST")


def load_fashion_mnist(root: Optional[PathLike] = None, train: bool = True) -> Tuple[torch.Tensor, torch.Tensor]:
    """Fashion-MNIST; ``root`` defaults to Debian's ``dataset-fashion-mnist``."""
    return load_dataset(DEBIAN_FASHION_MNIST if root is None else root, train, "FashionMNIST")
