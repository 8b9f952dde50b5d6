//! The crate's single error type. `src/py/errors.rs` maps each variant to a
//! Python exception type.
use tch::TchError;
use thiserror::Error;

/// An error raised by a user-supplied model (for Python, the original `PyErr`).
pub type ModelError = Box<dyn std::error::Error + Send + Sync + 'static>;

#[derive(Debug, Error)]
pub enum LfrError {
    /// A bad argument value (`eps < 0`, unknown norm, NaN input, ...).
    #[error("{0}")]
    InvalidArgument(String),
    /// An argument of the wrong type or dtype (non-integer labels, ...).
    #[error("{0}")]
    InvalidType(String),
    /// Mismatched or unsupported tensor shapes.
    #[error("{0}")]
    Shape(String),
    /// Tensors (or the model) on different devices.
    #[error("{0}")]
    Device(String),
    /// An error reported by libtorch, message kept verbatim.
    #[error(transparent)]
    Torch(#[from] TchError),
    /// An error raised by the user's model, passed through unchanged.
    #[error("{0}")]
    Model(ModelError),
}

pub type Result<T> = std::result::Result<T, LfrError>;

/// Shorthand for `Err(LfrError::InvalidArgument(..))`.
pub(crate) fn invalid<T>(msg: impl Into<String>) -> Result<T> {
    Err(LfrError::InvalidArgument(msg.into()))
}
