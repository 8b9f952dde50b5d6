"""Checks of the Python entry points' own arguments (the kernels check theirs)."""

from torch import Tensor

from lfr_rs.exceptions import ShapeError

__all__ = ["check_pair"]


def check_pair(inputs: Tensor, labels: Tensor) -> None:
    """Raises ``ShapeError`` unless ``labels`` is ``(N,)`` for ``inputs`` ``(N, ...)``."""
    if inputs.dim() < 1:
        raise ShapeError("inputs must have a batch dimension, got a 0-d tensor")
    if labels.dim() != 1 or labels.shape[0] != inputs.shape[0]:
        raise ShapeError(
            f"labels must have shape (N,) = ({inputs.shape[0]},) to match inputs {tuple(inputs.shape)}, "
            f"got {tuple(labels.shape)}"
        )
