"""Exception types. ``LfrError`` is the base of the library's own errors; bad
argument values raise the builtin ``ValueError`` / ``TypeError``, and an error
raised by the user's model comes back unchanged."""

from lfr_rs._native import DeviceError, LfrError, ShapeError, TorchError

__all__ = ["DeviceError", "LfrError", "ShapeError", "TorchError"]
