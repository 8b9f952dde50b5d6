from typing import Callable, Optional

import torch

from lfr_rs._typing import ApgdLoss, Hvp, Loss, Norm, Start, SurfaceKind

__version__: str
__torch_version__: str

_Model = Callable[[torch.Tensor], torch.Tensor]

class LfrError(Exception): ...
class ShapeError(LfrError): ...
class DeviceError(LfrError): ...
class TorchError(LfrError): ...

def fgsm(
    model: _Model,
    inputs: torch.Tensor,
    labels: torch.Tensor,
    *,
    eps: float,
    targeted: bool = False,
    autocast: str | None = None,
    graph: bool = False,
) -> torch.Tensor:
    """Fast Gradient Sign Method."""

def pgd(
    model: _Model,
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
    autocast: str | None = None,
    graph: bool = False,
) -> torch.Tensor:
    """Projected Gradient Descent (L-inf or L2)."""

def _check_batch(
    inputs: torch.Tensor, labels: torch.Tensor, classes: int, *, inputs_in_unit_box: bool = True
) -> torch.Tensor:
    """The eager kernels' batch checks, made before a CUDA graph replays (lfr_rs.graphs);
    without inputs_in_unit_box the labels only (Standard's captured training step)."""

def _fgsm_fixed(
    model: _Model, inputs: torch.Tensor, labels: torch.Tensor, *, eps: float, targeted: bool, autocast: str | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """FGSM's capture-safe body: (adversarial, finite)."""

def _grad_norm_penalty_fixed(
    model: _Model, inputs: torch.Tensor, labels: torch.Tensor, *, p: float = 1.0
) -> tuple[torch.Tensor, torch.Tensor]:
    """The gradient-norm penalty's capture-safe body: (norms, finite)."""

def _trades_perturb_fixed(
    model: _Model, inputs: torch.Tensor, *, eps: float, alpha: float, steps: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """The TRADES inner maximization's capture-safe body: (x', finite)."""

def _llr_perturb_fixed(
    model: _Model, inputs: torch.Tensor, labels: torch.Tensor, *, eps: float, alpha: float, steps: int, random_start: bool
) -> tuple[torch.Tensor, torch.Tensor]:
    """The LLR inner maximization's capture-safe body: (x', finite)."""

def _pgd_fixed(
    model: _Model,
    inputs: torch.Tensor,
    labels: torch.Tensor,
    *,
    eps: float,
    alpha: float,
    steps: int,
    random_start: bool,
    norm: Norm,
    loss: Loss,
    targeted: bool,
    keep_best: bool,
    autocast: str | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """PGD's capture-safe body: ``(adversarial, finite)``, no host synchronization."""

def _lfr_perturb_fixed(
    model: _Model,
    inputs: torch.Tensor,
    labels: torch.Tensor,
    *,
    eps: float,
    alpha: float,
    steps: int,
    random_start: bool,
    start: str,
    start_std: float,
    hvp: str,
    fd_step: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The LFR inner maximization's capture-safe body: ``(x', finite)``."""

def _apgd_fixed(
    model: _Model,
    inputs: torch.Tensor,
    labels: torch.Tensor,
    *,
    eps: float,
    steps: int,
    norm: Norm,
    loss: ApgdLoss,
    targeted: bool,
    n_target_classes: int,
    restarts: int,
    rho: float,
    autocast: str | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """APGD's capture-safe body: ``(adversarial, finite)``, masks for index sets."""

def _mifgsm_fixed(
    model: _Model,
    inputs: torch.Tensor,
    labels: torch.Tensor,
    *,
    eps: float,
    alpha: float,
    steps: int,
    decay: float,
    targeted: bool,
    autocast: str | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """MI-FGSM's capture-safe body: ``(adversarial, finite)``."""

def mifgsm(
    model: _Model,
    inputs: torch.Tensor,
    labels: torch.Tensor,
    *,
    eps: float,
    alpha: float,
    steps: int = 10,
    decay: float = 1.0,
    targeted: bool = False,
    autocast: str | None = None,
    graph: bool = False,
) -> torch.Tensor:
    """Momentum Iterative FGSM."""

def ddn(
    model: _Model,
    inputs: torch.Tensor,
    labels: torch.Tensor,
    *,
    steps: int = 100,
    gamma: float = 0.05,
    init_norm: float = 1.0,
    levels: Optional[int] = 256,
    targeted: bool = False,
    autocast: str | None = None,
) -> torch.Tensor:
    """Decoupled Direction and Norm (minimal L2) attack."""

def read_idx(path: str) -> torch.Tensor:
    """Reads an IDX file as a uint8 tensor."""

def load_idx_pair(images: str, labels: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Loads IDX images and labels as (float32 in [0, 1], int64)."""

def grad_norm_penalty(model: _Model, inputs: torch.Tensor, labels: torch.Tensor, *, p: float = 1.0) -> torch.Tensor:
    """Per-sample ||d_x CE||_p, differentiable w.r.t. the model's parameters."""

def lfr_perturb(
    model: _Model,
    inputs: torch.Tensor,
    labels: torch.Tensor,
    *,
    eps: float,
    alpha: float,
    steps: int = 10,
    random_start: bool = True,
    start: Start = "uniform",
    start_std: float = 0.001,
    hvp: Hvp = "exact",
    fd_step: float = 0.01,
) -> torch.Tensor:
    """LFR inner maximization (eq. 3)."""

def local_flatness(
    model: _Model,
    inputs: torch.Tensor,
    labels: torch.Tensor,
    *,
    eps: float,
    alpha: float,
    steps: int = 10,
    random_start: bool = True,
    start: Start = "uniform",
    start_std: float = 0.001,
    hvp: Hvp = "exact",
    fd_step: float = 0.01,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(x', ||d_x L(x')||_1): the local flatness of Definition 1 and its maximizer."""

def flatness_grad(
    model: _Model, inputs: torch.Tensor, labels: torch.Tensor, *, hvp: Hvp = "exact", fd_step: float = 0.01
) -> torch.Tensor:
    """Gradient of ||d_x L(x)||_1 with respect to x (H(x) sign(g(x)))."""

def trades_perturb(model: _Model, inputs: torch.Tensor, *, eps: float, alpha: float, steps: int = 10) -> torch.Tensor:
    """TRADES inner maximization (KL ascent from x + 0.001 randn)."""

def llr_perturb(
    model: _Model,
    inputs: torch.Tensor,
    labels: torch.Tensor,
    *,
    eps: float,
    alpha: float,
    steps: int = 10,
    random_start: bool = True,
) -> torch.Tensor:
    """LLR inner maximization of the local linearity error."""

def tune_malloc() -> bool:
    """Raises glibc's mmap and trim thresholds for this process (see the docstring)."""

def surface(
    model: _Model,
    inputs: torch.Tensor,
    labels: torch.Tensor,
    u: torch.Tensor,
    v: torch.Tensor,
    *,
    span: float,
    steps: int = 41,
    kind: SurfaceKind = "decision",
    batch_size: int = 1024,
) -> torch.Tensor:
    """Decision or loss values on the grid clamp(x + a u + b v, 0, 1), (N, steps, steps)."""

def surface_directions(
    model: _Model, inputs: torch.Tensor, labels: torch.Tensor, *, loss: Loss = "ce"
) -> tuple[torch.Tensor, torch.Tensor]:
    """Gradient-sign direction and an orthogonal random sign direction, unit L-inf."""
def apgd(
    model: _Model,
    inputs: torch.Tensor,
    labels: torch.Tensor,
    *,
    eps: float,
    steps: int = 100,
    norm: Norm = "linf",
    loss: ApgdLoss = "ce",
    targeted: bool = False,
    n_target_classes: int = 9,
    restarts: int = 1,
    rho: float = 0.75,
    autocast: str | None = None,
    graph: bool = False,
) -> torch.Tensor:
    """Auto-PGD (APGD; APGD-T with targeted=True)."""

def fab(
    model: _Model,
    inputs: torch.Tensor,
    labels: torch.Tensor,
    *,
    eps: float,
    steps: int = 10,
    restarts: int = 1,
    alpha_max: float = 0.1,
    eta: float = 1.05,
    beta: float = 0.9,
    targeted: bool = False,
    n_target_classes: int = 9,
    autocast: str | None = None,
) -> torch.Tensor:
    """L-inf Fast Adaptive Boundary attack (FAB; FAB-T with targeted=True)."""

def square(
    model: _Model,
    inputs: torch.Tensor,
    labels: torch.Tensor,
    *,
    eps: float,
    queries: int = 5000,
    p_init: float = 0.8,
    restarts: int = 1,
    autocast: str | None = None,
) -> torch.Tensor:
    """L-inf Square Attack (score-based, forward passes only)."""
