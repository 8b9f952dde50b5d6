"""``Literal`` aliases for the kernels' string options."""

from typing import Literal

Norm = Literal["linf", "l2"]
Loss = Literal["ce", "margin"]
Hvp = Literal["exact", "fd"]
SurfaceKind = Literal["decision", "loss"]
Start = Literal["uniform", "normal"]

__all__ = ["Hvp", "Loss", "Norm", "Start", "SurfaceKind"]

# evaluation
ApgdLoss = Literal["ce", "dlr"]
CascadeAttack = Literal["apgd-ce", "apgd-dlr", "apgd-t", "fab", "fab-t", "square"]
Protocol = Literal["paper", "strong", "both"]
__all__ += ["ApgdLoss", "CascadeAttack", "Protocol"]
