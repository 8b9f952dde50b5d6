"""Surface kernels (Rust): the decision and loss surfaces of Fig. 1 and Fig. 2,
and the paper's pair of directions. Plot them with :mod:`lfr_rs.plots`."""

from lfr_rs._native import surface, surface_directions

__all__ = ["surface", "surface_directions"]
