"""CUDA graphs for fixed-shape attacks: ``graph=True`` on ``lfr_rs.fgsm``,
``lfr_rs.pgd``, ``lfr_rs.mifgsm`` and ``lfr_rs.apgd``, and :func:`lfr_perturb`
(the LFR inner maximization); ``fit(..., graph=True)`` captures the training
step (:mod:`lfr_rs.training.graphed`).

On a GPU a small model's attack step is bound by kernel launches and the
Python forward, not by arithmetic. With ``graph=True`` on CUDA inputs, the
first call for a batch shape runs the eager kernel (it makes every check and
its answer is returned), then captures the kernel's capture-safe body (all
steps, the model's forward and backward included) into one
``torch.cuda.CUDAGraph``. Later calls with that shape check the batch (one
host read), copy it into the graph's input buffers and replay the graph: one
launch for the whole attack, no Python and no host synchronization inside.

What differs from eager, and why:

* early stopping (``keep_best``) is masking: a fooled sample still goes
  through the passes but its update is zeroed and its kept candidate no
  longer changes, and the batch objective averages over the samples still
  stepping, as the eager kernel's smaller batch does: the eager result to
  float32 rounding (bit for bit on the CPU); there is no pass saving, the
  saved launches are the gain;
* PGD: one restart only (``restarts > 1`` raises ``ValueError``); APGD:
  every run (target, restart) covers the whole batch, a mask gating what it
  records;
* ``random_start`` draws inside the graph from torch's CUDA generator
  (reproducible under ``torch.manual_seed``, not the eager draws);
* the graph reads the model's parameters where they are: in-place updates
  (an optimizer step) are seen, replaced tensors or a changed forward are
  not; :func:`clear` drops the graphs of a model (and their memory).

When capture fails (a model that reads a value back, ``.item()``, or whose
shapes depend on the data), a ``UserWarning`` says why and that shape runs
eagerly from then on. On other devices ``graph=True`` warns and runs eagerly.
"""

from __future__ import annotations

import warnings
import weakref
from typing import Any, Callable, Dict, Optional, Tuple

import torch
from torch import Tensor

from lfr_rs import _native

__all__ = ["CapturedAttack", "apgd", "clear", "fgsm", "lfr_perturb", "mifgsm", "pgd"]

_NON_FINITE = "the model returned non-finite logits (NaN or inf)"
_TRAIN_MODE = "the model is in train mode"
_FAILED = "capture failed"

#: per model, per key (shape, dtype, device, parameters, mode), a captured
#: attack or _FAILED; weak on the model, so a dropped model frees its graphs
_cache: "weakref.WeakKeyDictionary[Any, Dict[tuple, Any]]" = weakref.WeakKeyDictionary()


class CapturedAttack:
    """One captured body: the static input buffers the graph reads, the
    output buffers it writes, and ``replay`` (a ``CUDAGraph``'s, or any
    callable that refills the outputs from the inputs)."""

    def __init__(self, replay: Callable[[], None], x: Tensor, y: Tensor, adv: Tensor, finite: Tensor,
                 classes: int) -> None:
        self.replay, self.x, self.y, self.adv, self.finite, self.classes = replay, x, y, adv, finite, classes

    def __call__(self, inputs: Tensor, labels: Tensor) -> Tensor:
        labels = _native._check_batch(inputs, labels, self.classes)
        self.x.copy_(inputs)
        self.y.copy_(labels)
        self.replay()
        if not bool(self.finite):
            raise ValueError(_NON_FINITE)
        return self.adv.clone()


def _capture(body: Callable[[Tensor, Tensor], Tuple[Tensor, Tensor]], x: Tensor, y: Tensor,
             classes: int) -> CapturedAttack:
    """Warms ``body`` up on a side stream (cuDNN's algorithm search and the
    allocator must not run under capture), then captures one call."""
    sx, sy = x.detach().clone(), y.detach().to(torch.long).clone()
    side = torch.cuda.Stream(device=x.device)
    side.wait_stream(torch.cuda.current_stream(x.device))
    with torch.cuda.stream(side):
        for _ in range(2):
            body(sx, sy)
    torch.cuda.current_stream(x.device).wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        adv, finite = body(sx, sy)
    return CapturedAttack(graph.replay, sx, sy, adv, finite, classes)


def _mode(model: Any) -> tuple:
    modules = model.modules() if isinstance(model, torch.nn.Module) else ()
    return tuple(m.training for m in modules)


def _classes(model: Any, inputs: Tensor) -> int:
    with torch.no_grad():
        return int(model(inputs[:1]).shape[1])


def clear(model: Optional[Any] = None) -> None:
    """Drops the captured graphs of ``model`` (of every model for ``None``)."""
    if model is None:
        _cache.clear()
    else:
        _cache.pop(model, None)


def _graphed(name: str, model: Any, inputs: Tensor, labels: Tensor, params: Dict[str, Any], *,
             warned: bool) -> Tensor:
    """Kernel ``name`` through a graph: the eager kernel (``_native.<name>``)
    on the first call per key, with its capture-safe body
    (``_native._<name>_fixed``) captured after it; the captured graph's replay
    on later calls; the eager kernel off CUDA or when capture failed.
    ``warned``: the binding has given the train-mode warning already.
    Warnings point at the caller's caller (the user's call)."""
    eager_kernel, body_kernel = getattr(_native, name), getattr(_native, f"_{name}_fixed")

    def eager() -> Tensor:
        with warnings.catch_warnings():
            if warned:
                warnings.filterwarnings("ignore", message=_TRAIN_MODE)
            return eager_kernel(model, inputs, labels, **params)

    def body(x: Tensor, y: Tensor) -> Tuple[Tensor, Tensor]:
        return body_kernel(model, x, y, **params)

    if not (isinstance(inputs, Tensor) and inputs.is_cuda):
        where = inputs.device if isinstance(inputs, Tensor) else type(inputs).__name__
        warnings.warn(f"graph=True needs CUDA inputs (got {where}); ran eagerly", UserWarning, stacklevel=3)
        return eager()
    key = (name, tuple(inputs.shape), inputs.dtype, inputs.device, tuple(sorted(params.items())), _mode(model))
    try:
        graphs = _cache.setdefault(model, {})
    except TypeError:  # not weakly referenceable: nothing to keep a graph under
        warnings.warn(f"graph=True needs a model that can be weakly referenced, got {type(model).__name__}; "
                      "ran eagerly", UserWarning, stacklevel=3)
        return eager()
    captured = graphs.get(key)
    if isinstance(captured, CapturedAttack):
        return captured(inputs, labels)
    out = eager()
    if captured is None:
        try:
            graphs[key] = _capture(body, inputs, labels, _classes(model, inputs))
        except Exception as exc:  # capture refuses host syncs and data-dependent shapes
            graphs[key] = _FAILED
            warnings.warn(f"CUDA graph capture failed ({type(exc).__name__}: {exc}); this shape runs eagerly",
                          UserWarning, stacklevel=3)
    return out


def fgsm(model: Any, inputs: Tensor, labels: Tensor, *, eps: float, targeted: bool = False,
         autocast: Optional[str] = None) -> Tensor:
    """:func:`lfr_rs.fgsm` through a CUDA graph (one forward, one backward
    and the step in one launch); the binding calls this for ``graph=True``."""
    return _graphed("fgsm", model, inputs, labels, dict(eps=eps, targeted=targeted, autocast=autocast), warned=True)


def pgd(model: Any, inputs: Tensor, labels: Tensor, *, eps: float, alpha: float, steps: int = 10,
        random_start: bool = True, norm: str = "linf", loss: str = "ce", targeted: bool = False,
        restarts: int = 1, keep_best: bool = False, autocast: Optional[str] = None) -> Tensor:
    """:func:`lfr_rs.pgd` through a CUDA graph (see the module's text); the
    binding calls this for ``graph=True``."""
    if restarts != 1:
        raise ValueError(f"graph=True runs one restart, got restarts={restarts}; use graph=False")
    return _graphed("pgd", model, inputs, labels, dict(
        eps=eps, alpha=alpha, steps=steps, random_start=random_start, norm=norm, loss=loss, targeted=targeted,
        keep_best=keep_best, autocast=autocast), warned=True)


def mifgsm(model: Any, inputs: Tensor, labels: Tensor, *, eps: float, alpha: float, steps: int = 10,
           decay: float = 1.0, targeted: bool = False, autocast: Optional[str] = None) -> Tensor:
    """:func:`lfr_rs.mifgsm` through a CUDA graph (the same iterates; no early
    stopping to mask); the binding calls this for ``graph=True``."""
    return _graphed("mifgsm", model, inputs, labels, dict(
        eps=eps, alpha=alpha, steps=steps, decay=decay, targeted=targeted, autocast=autocast), warned=True)


def apgd(model: Any, inputs: Tensor, labels: Tensor, *, eps: float, steps: int = 100, norm: str = "linf",
         loss: str = "ce", targeted: bool = False, n_target_classes: int = 9, restarts: int = 1, rho: float = 0.75,
         autocast: Optional[str] = None) -> Tensor:
    """:func:`lfr_rs.apgd` through a CUDA graph; the binding calls this for
    ``graph=True``. Every run (target, restart) covers the whole batch, a
    mask gating what it records, so a point still costs passes after it is
    fooled; the first run's random start equals the eager one's only on a
    batch the model classifies correctly (the eager kernel draws it for the
    correctly classified points alone)."""
    return _graphed("apgd", model, inputs, labels, dict(
        eps=eps, steps=steps, norm=norm, loss=loss, targeted=targeted, n_target_classes=n_target_classes,
        restarts=restarts, rho=rho, autocast=autocast), warned=True)


def lfr_perturb(model: Any, inputs: Tensor, labels: Tensor, *, eps: float, alpha: float, steps: int = 10,
                random_start: bool = True, start: str = "uniform", start_std: float = 0.001, hvp: str = "exact",
                fd_step: float = 0.01) -> Tensor:
    """:func:`lfr_rs.lfr_perturb` (the LFR inner maximization) through a CUDA
    graph: the same arguments, the eager result to float32 rounding on CUDA
    inputs (see the module's text); warns and runs eagerly elsewhere."""
    return _graphed("lfr_perturb", model, inputs, labels, dict(
        eps=eps, alpha=alpha, steps=steps, random_start=random_start, start=start, start_std=start_std, hvp=hvp,
        fd_step=fd_step), warned=False)
