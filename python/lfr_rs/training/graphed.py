"""The training step captured into a CUDA graph: ``fit(..., graph=True)``.

One step of :func:`lfr_rs.training.fit` is the clean accuracy count (eval
mode), the method's inner maximization (eval mode: PGD for AT, the TRADES and
LLR ascents, the LFR ascent with its Hessian-vector products), the outer loss
(train mode: the gradient-norm penalty's double backprop for LFR and
GradNorm, LLR's) and its backward.
On a GPU each of those is hundreds of small kernels launched from Python. With
``graph=True`` the first step for a (method, batch shape, dtype) runs eagerly,
as always, and the step is then captured once; later steps with that key check
the batch (one host read), copy it into the graph's input buffers and replay
the whole step in one launch. The optimizer's update stays eager (a few fused
launches), so learning-rate schedulers, weight decay and momentum behave as
without graphs.

The captured step runs the methods' own ``perturb`` and ``loss``, with their
kernels switched to the capture-safe bodies (:mod:`lfr_rs._capture_safe`):
the same arithmetic, the eager step's results to float32 rounding, but for the
random starts (AT, TRADES, LLR, LFR), drawn inside the graph from torch's CUDA generator.
Non-finite logits or loss in a replay raise :class:`TrainingDiverged` before
the optimizer steps, as in the eager step.

Steps that run eagerly, with one warning each: inputs not on CUDA,
``torchrun`` (DDP's gradient hooks), a method that is not hashable (the key),
and a model or a custom method that capture refuses (one reading a value
back, ``.item()``, calling an eager kernel, or with data-dependent shapes).
During a warm-up the method's strength changes every step: those steps run
eagerly, the capture happens at full strength.
"""

from __future__ import annotations

import functools
import warnings
from typing import Any, Callable, Dict, List, Optional, Tuple

import torch
from torch import Tensor, nn

from lfr_rs import _native
from lfr_rs import distributed as dist_
from lfr_rs._capture_safe import capture_safe
from lfr_rs.losses import Defense, Standard

__all__ = ["StepGraphs"]

_NON_FINITE = "the model returned non-finite logits or loss (NaN or inf)"
_FAILED = "capture failed"

def _is_cuda(device: torch.device) -> bool:
    return device.type == "cuda"


def _record(body: Callable[[], Any], reset: Callable[[], None], restore: Callable[[], None]) -> Tuple[Callable[[], None], Any]:
    """Warms ``body`` up twice on a side stream (``reset`` before each; cuDNN's
    algorithm search and the allocator must not run under capture), calls
    ``restore`` and ``reset``, then captures one call. Returns the graph's
    replay and the captured call's outputs."""
    device = torch.cuda.current_device()
    side = torch.cuda.Stream(device=device)
    side.wait_stream(torch.cuda.current_stream(device))
    with torch.cuda.stream(side):
        for _ in range(2):
            reset()
            body()
    torch.cuda.current_stream(device).wait_stream(side)
    restore()
    reset()
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        out = body()
    return graph.replay, out


class CapturedStep:
    """One captured step: the static batch buffers it reads, the loss,
    correct-count and finite flag it writes, and the parameters' static
    gradient tensors (re-attached after every replay, since an eager step in
    between replaces ``.grad``)."""

    def __init__(self, replay: Callable[[], None], x: Tensor, y: Tensor, out: Tuple[Tensor, Tensor, Tensor],
                 grads: List[Tuple[nn.Parameter, Tensor]], classes: int, check: Callable[..., Tensor]) -> None:
        self.replay, self.x, self.y, self.grads, self.classes, self.check = replay, x, y, grads, classes, check
        self.loss, self.correct, self.finite = out

    def __call__(self, x: Tensor, y: Tensor) -> Tuple[Tensor, int]:
        y = self.check(x, y, self.classes)
        self.x.copy_(x)
        self.y.copy_(y)
        self.replay()
        for p, g in self.grads:
            p.grad = g
        if not bool(self.finite):
            raise ValueError(_NON_FINITE)
        return self.loss, int(self.correct)


class StepGraphs:
    """The captured steps of one ``fit`` call, keyed by (method, batch shape,
    dtype, device); :meth:`step` replays one or returns None (run eagerly),
    :meth:`capture` records one after an eager step."""

    def __init__(self, model: nn.Module, module: nn.Module, device: torch.device, method: Defense) -> None:
        self.model, self.module = model, module
        self.steps: Dict[tuple, Any] = {}
        self.off = self._why_off(device, method)
        if self.off:
            warnings.warn(f"graph=True: {self.off}; training runs eagerly", UserWarning, stacklevel=3)

    @staticmethod
    def _why_off(device: torch.device, method: Defense) -> Optional[str]:
        if dist_.world_size() > 1:
            return "no captured step under torchrun (DDP's gradient hooks)"
        if not _is_cuda(device):
            return f"CUDA graphs need a CUDA device, got {device}"
        try:
            hash(method)
        except TypeError:
            return f"the method {type(method).__name__} is not hashable (it keys the captured steps)"
        return None

    def _key(self, method: Defense, x: Tensor) -> tuple:
        return (method, tuple(x.shape), x.dtype, x.device)

    def step(self, method: Defense, full: bool, x: Tensor, y: Tensor) -> Optional[Tuple[Tensor, int, int]]:
        """The replayed step's ``(loss, correct, classes)`` with the
        parameters' gradients in ``.grad``; None when this step must run
        eagerly (``full``: the method runs at full strength)."""
        if self.off or not full or not _is_cuda(x.device):
            return None
        captured = self.steps.get(self._key(method, x))
        if not isinstance(captured, CapturedStep):
            return None
        loss, correct = captured(x, y)
        return loss, correct, captured.classes

    def capture(self, method: Defense, full: bool, x: Tensor, y: Tensor, classes: int) -> None:
        """Captures the step for ``x``'s key after an eager step on it (once)."""
        key = self._key(method, x)
        if self.off or not full or not _is_cuda(x.device) or key in self.steps:
            return
        try:
            self.steps[key] = self._capture(method, x, y, classes)
        except Exception as exc:  # capture refuses host syncs and data-dependent shapes
            self.steps[key] = _FAILED
            warnings.warn(f"graph=True: capturing the {method.name} step failed ({type(exc).__name__}: {exc}); "
                          "this batch shape trains eagerly", UserWarning, stacklevel=5)

    def _body(self, method: Defense, x: Tensor, y: Tensor) -> Tuple[Tensor, Tensor, Tensor]:
        """The eager step of ``loop._step`` up to the backward, on the capture-safe kernels."""
        self.module.eval()
        with torch.no_grad():
            correct = (self.module(x).argmax(1) == y).sum()
        with capture_safe() as flags:
            x_adv = method.perturb(self.module, x, y)
            self.model.train()
            loss = method.loss(self.model, x, y, x_adv)
        loss.backward()
        finite = torch.isfinite(loss.detach())
        for flag in flags:
            finite = finite.logical_and(flag)
        return loss.detach(), correct, finite

    def _capture(self, method: Defense, x: Tensor, y: Tensor, classes: int) -> CapturedStep:
        # Standard's inputs need not lie in [0, 1] (standardised data): its labels alone are checked
        check = functools.partial(_native._check_batch, inputs_in_unit_box=not isinstance(method, Standard))
        sx, sy = x.detach().clone(), check(x, y, classes).clone()
        params = [p for p in self.model.parameters() if p.requires_grad]
        # the warm-up's train-mode forwards move BatchNorm's statistics: put them back
        buffers = list(self.module.buffers())
        saved = [b.detach().clone() for b in buffers]

        def reset() -> None:
            for p in params:
                p.grad = None

        def restore() -> None:
            with torch.no_grad():
                for b, s in zip(buffers, saved):
                    b.copy_(s)

        try:
            replay, out = _record(lambda: self._body(method, sx, sy), reset, restore)
        except Exception:  # leave the model as the eager step left it, but for its (unused) gradients
            restore()
            reset()
            raise
        grads = [(p, p.grad) for p in params if p.grad is not None]
        return CapturedStep(replay, sx, sy, out, grads, classes, check)
