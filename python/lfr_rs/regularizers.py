"""Regularizer kernels (Rust): the fused gradient-norm penalty, the LFR inner
maximization (and the local flatness it reaches), and the TRADES / LLR inner
maximizations."""

from lfr_rs._native import (
    flatness_grad,
    grad_norm_penalty,
    lfr_perturb,
    llr_perturb,
    local_flatness,
    trades_perturb,
)

__all__ = [
    "flatness_grad",
    "grad_norm_penalty",
    "lfr_perturb",
    "llr_perturb",
    "local_flatness",
    "trades_perturb",
]
