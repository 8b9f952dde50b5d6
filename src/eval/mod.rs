//! Evaluation kernels, tools that look at a trained model rather than train
//! it: Auto-PGD (APGD, APGD-T), FAB (FAB-T) and the Square Attack (the
//! attacks of an AutoAttack-style robust-accuracy cascade), and loss/decision
//! surfaces.
pub mod apgd;
pub mod dlr;
pub mod fab;
pub mod square;
pub mod surface;
pub mod survivors;

pub use apgd::{apgd, ApgdLoss, ApgdParams};
pub use fab::{fab, FabParams};
pub use square::{square, SquareParams};
pub use surface::{surface, surface_directions, SurfaceKind, SurfaceParams};
#[cfg(test)]
pub(crate) mod fixtures;
