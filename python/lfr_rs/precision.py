"""Mixed precision for the model only: ``autocast="bf16"`` (or ``"fp16"``)
runs the model's forward under ``torch.autocast`` while everything the
kernels compute from its logits stays in float32: the iterate, the
projection onto the ball, the loss and the per-sample bookkeeping. The
logits come back as float32, and the input gradient flows back through
autocast's casts in float32, so an attack's arithmetic is unchanged; only
the model's own matmuls and convolutions round to the lower precision.
Half-precision *inputs* are still refused by the kernels.

A lower-precision forward can only weaken an attack (its gradients are
noisier): measure how much a robust accuracy moves before trusting it, and
never report a number that rose.
"""

from __future__ import annotations

from typing import Any, Callable, Dict, Optional

import torch
from torch import Tensor, nn

__all__ = ["AUTOCAST_DTYPES", "Autocast", "autocast_model"]

#: the names ``autocast=`` accepts
AUTOCAST_DTYPES: Dict[str, torch.dtype] = {"bf16": torch.bfloat16, "fp16": torch.float16}


class Autocast(nn.Module):
    """``model`` with its forward under ``torch.autocast(dtype)`` on the
    input's device type, returning float32 logits. Its train/eval mode and
    parameters are the wrapped model's (it is a submodule)."""

    def __init__(self, model: Callable[[Tensor], Tensor], dtype: str) -> None:
        super().__init__()
        if dtype not in AUTOCAST_DTYPES:
            raise ValueError(f"autocast must be one of {sorted(AUTOCAST_DTYPES)} or None, got {dtype!r}")
        self.model = model
        self.dtype = dtype

    def forward(self, x: Tensor) -> Any:
        with torch.autocast(device_type=x.device.type, dtype=AUTOCAST_DTYPES[self.dtype]):
            out = self.model(x)
        # float32 logits: the loss, the margin and the argmax are computed in full precision
        return out.float() if isinstance(out, Tensor) and out.is_floating_point() else out

    def extra_repr(self) -> str:
        return f"dtype={self.dtype}"


def autocast_model(model: Callable[[Tensor], Tensor], autocast: Optional[str],
                   inputs: Optional[Tensor] = None) -> Callable[[Tensor], Tensor]:
    """``model`` itself for ``autocast=None``, else wrapped in :class:`Autocast`
    (``ValueError`` when torch has no autocast for ``inputs``' device type)."""
    if autocast is None:
        return model
    if not isinstance(autocast, str):
        raise TypeError(f"autocast must be a string ({sorted(AUTOCAST_DTYPES)}) or None, got {type(autocast).__name__}")
    wrapped = Autocast(model, autocast)
    if isinstance(inputs, Tensor) and not torch.amp.autocast_mode.is_autocast_available(inputs.device.type):
        raise ValueError(f"torch.autocast is not available on {inputs.device.type!r} inputs; use autocast=None")
    return wrapped
