//! Evaluation kernels: tools that look at a trained model rather than train it.
pub mod surface;
