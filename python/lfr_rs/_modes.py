"""Eval mode for the evaluation harness, restored module by module.

``model.train()`` after an evaluation would put *every* submodule in train
mode, including one the user had frozen in eval mode inside a training model;
so the harness records each submodule's flag and puts back exactly that.
"""

from typing import Any, List, Tuple

from torch import nn

__all__ = ["enter_eval", "restore_modes"]


def enter_eval(model: Any) -> List[Tuple[nn.Module, bool]]:
    """Puts ``model`` (if it is an ``nn.Module``) in eval mode and returns each
    submodule's previous flag for :func:`restore_modes`."""
    if not isinstance(model, nn.Module):
        return []
    saved = [(m, m.training) for m in model.modules()]
    model.eval()
    return saved


def restore_modes(saved: List[Tuple[nn.Module, bool]]) -> None:
    """Puts back the flags :func:`enter_eval` recorded."""
    for module, training in saved:
        module.training = training
