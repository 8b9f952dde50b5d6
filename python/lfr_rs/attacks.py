"""Adversarial attacks (Rust kernels): FGSM, PGD (L-inf / L2), MI-FGSM, DDN."""

from lfr_rs._native import ddn, fgsm, mifgsm, pgd

__all__ = ["ddn", "fgsm", "mifgsm", "pgd"]
from lfr_rs._native import apgd, fab, square  # evaluation kernels (src/eval/)
__all__ += ["apgd", "fab", "square"]
