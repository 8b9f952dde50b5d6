from typing import Callable, Optional

import torch

from lfr_rs._typing import Loss, Norm

__version__: str

Model = Callable[[torch.Tensor], torch.Tensor]

class LfrError(Exception): ...
class ShapeError(LfrError): ...
class DeviceError(LfrError): ...
class TorchError(LfrError): ...

def fgsm(model: Model, inputs: torch.Tensor, labels: torch.Tensor, *, eps: float, targeted: bool = False) -> torch.Tensor:
    """Fast Gradient Sign Method."""

def pgd(
    model: Model,
    inputs: torch.Tensor,
    labels: torch.Tensor,
    *,
    eps: float,
    alpha: float,
    steps: int = 10,
    random_start: bool = True,
    norm: Norm = "linf",
    loss: Loss = "ce",
    targeted: bool = False,
    restarts: int = 1,
    keep_best: bool = False,
) -> torch.Tensor:
    """Projected Gradient Descent (L-inf or L2)."""

def mifgsm(
    model: Model,
    inputs: torch.Tensor,
    labels: torch.Tensor,
    *,
    eps: float,
    alpha: float,
    steps: int = 10,
    decay: float = 1.0,
    targeted: bool = False,
) -> torch.Tensor:
    """Momentum Iterative FGSM."""

def ddn(
    model: Model,
    inputs: torch.Tensor,
    labels: torch.Tensor,
    *,
    steps: int = 100,
    gamma: float = 0.05,
    init_norm: float = 1.0,
    levels: Optional[int] = 256,
    targeted: bool = False,
) -> torch.Tensor:
    """Decoupled Direction and Norm (minimal L2) attack."""

def read_idx(path: str) -> torch.Tensor:
    """Reads an IDX file as a uint8 tensor."""

def load_idx_pair(images: str, labels: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Loads IDX images and labels as (float32 in [0, 1], int64)."""
