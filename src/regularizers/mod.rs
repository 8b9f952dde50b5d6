//! Training-time kernels: the gradient-norm penalty and the inner
//! maximizations of the defenses (LFR, LLR, TRADES), one kernel per file.
pub mod lfr;
pub mod llr;
pub mod penalty;
pub mod trades;

pub use lfr::{flatness_grad, lfr_perturb, lfr_perturb_fixed, Hvp, LfrParams, Start};
pub use llr::{llr_perturb, llr_perturb_fixed, LlrParams};
pub use penalty::{check_p, grad_norm_penalty, grad_norm_penalty_fixed};
pub use trades::{trades_perturb, trades_perturb_fixed, TradesParams, START_STD};
