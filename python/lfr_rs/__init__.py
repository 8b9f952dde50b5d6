"""lfr-rs: adversarial attacks and Local Flatness Regularization, with Rust kernels.

Conventions: models return ``(N, C)`` logits; inputs are floating tensors in
[0, 1] (NCHW for images); ``labels`` are targets when ``targeted=True``.
"""

import torch as _torch  # noqa: F401  (libtorch must be initialised before the native module)

from lfr_rs._torch_check import check as _check_torch

_check_torch(_torch.__version__)  # a clear ImportError instead of an undefined symbol under another torch

from lfr_rs._native import __torch_version__  # noqa: E402  (the torch release the extension was built against)

from lfr_rs._native import __version__, tune_malloc
from lfr_rs.attacks import ddn, fgsm, mifgsm, pgd
from lfr_rs.exceptions import DeviceError, LfrError, ShapeError, TorchError
from lfr_rs.regularizers import (
    flatness_grad,
    grad_norm_penalty,
    lfr_perturb,
    llr_perturb,
    local_flatness,
    trades_perturb,
)
from lfr_rs.surfaces import surface, surface_directions

__all__ = [
    "DeviceError",
    "LfrError",
    "ShapeError",
    "TorchError",
    "__version__",
    "__torch_version__",
    "ddn",
    "fgsm",
    "flatness_grad",
    "grad_norm_penalty",
    "lfr_perturb",
    "llr_perturb",
    "local_flatness",
    "mifgsm",
    "pgd",
    "surface",
    "surface_directions",
    "trades_perturb",
    "tune_malloc",
]

# evaluation: APGD / FAB / Square kernels, the cascade, the paper protocol, the masking detector
from lfr_rs.attacks import apgd, fab, square  # noqa: E402
from lfr_rs.evaluation import (  # noqa: E402
    GradientMaskingWarning,
    MaskingReport,
    RobustAccuracy,
    evaluate,
    masking_report,
    paper_protocol,
    robust_accuracy,
)

__all__ += [
    "GradientMaskingWarning",
    "MaskingReport",
    "RobustAccuracy",
    "apgd",
    "evaluate",
    "fab",
    "masking_report",
    "paper_protocol",
    "robust_accuracy",
    "square",
]


# Names loaded on first use, so that `import lfr_rs` loads the kernels and the
# evaluation only: the experiments (and the training they run) come with them.
_LAZY = {"sweep": ("lfr_rs.experiments.sweep", "sweep"), "table1": ("lfr_rs.experiments.table1", None),
         "frontier": ("lfr_rs.experiments.frontier", None)}


def __getattr__(name: str) -> object:
    if name not in _LAZY:
        raise AttributeError(f"module 'lfr_rs' has no attribute {name!r}")
    import importlib

    module_name, attr = _LAZY[name]
    module = importlib.import_module(module_name)
    return module if attr is None else getattr(module, attr)
