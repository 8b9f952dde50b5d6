"""Eval mode for the evaluation harness, restored module by module.

``model.train()`` after an evaluation would put *every* submodule in train
mode, including one the user had frozen in eval mode inside a training model;
so the harness records each submodule's flag and puts back exactly that.

Evaluations may overlap (threads, or a harness calling another): each
submodule keeps a count of the evaluations holding it, the first one in
records its flag and the last one out puts it back, so an inner or
overlapping call never records, and then restores, another call's eval mode.
"""

import threading
import weakref
from typing import Any, List

from torch import nn

__all__ = ["enter_eval", "restore_modes"]

_lock = threading.Lock()
# submodule -> [evaluations holding it, its flag before the first of them]
_held: "weakref.WeakKeyDictionary[nn.Module, List[Any]]" = weakref.WeakKeyDictionary()


def enter_eval(model: Any) -> List[nn.Module]:
    """Puts ``model`` (if it is an ``nn.Module``) in eval mode and returns the
    submodules to hand to :func:`restore_modes`."""
    if not isinstance(model, nn.Module):
        return []
    with _lock:
        modules = list(model.modules())
        for module in modules:
            entry = _held.get(module)
            if entry is None:
                _held[module] = [1, module.training]
            else:
                entry[0] += 1
        model.eval()
    return modules


def restore_modes(saved: List[nn.Module]) -> None:
    """Releases what :func:`enter_eval` took; the last evaluation out puts
    back each submodule's original flag."""
    with _lock:
        for module in saved:
            entry = _held.get(module)
            if entry is None:
                continue
            entry[0] -= 1
            if entry[0] == 0:
                module.training = entry[1]
                del _held[module]
