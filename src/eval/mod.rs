//! Evaluation kernels: Auto-PGD (APGD, APGD-T) and the Square Attack, the
//! attacks of an AutoAttack-style robust-accuracy cascade.
pub mod apgd;
pub mod apgd_run;
pub mod dlr;
pub mod square;

pub use apgd::{apgd, ApgdLoss, ApgdParams};
pub use square::{square, SquareParams};
