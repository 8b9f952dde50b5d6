//! The model abstraction the kernels run: anything that maps a batch of inputs
//! to `(N, C)` logits.
use crate::error::{LfrError, Result};
use tch::{Kind, Tensor};

/// A classifier: inputs `(N, ...)` in [0, 1] to logits `(N, C)`.
pub trait Model {
    fn logits(&self, x: &Tensor) -> Result<Tensor>;
}

impl<F> Model for F
where
    F: Fn(&Tensor) -> Result<Tensor>,
{
    fn logits(&self, x: &Tensor) -> Result<Tensor> {
        self(x)
    }
}

/// Runs the model and checks what it returned: a floating `(N, C)` tensor on
/// the input's device, `N` matching the batch.
pub fn checked_logits(model: &impl Model, x: &Tensor) -> Result<Tensor> {
    let out = model.logits(x)?;
    let n = x.size().first().copied().unwrap_or(0);
    let size = out.size();
    match size.as_slice() {
        [rows, cols] if *rows == n && *cols >= 1 => {}
        _ => {
            return Err(LfrError::Shape(format!(
                "model must return logits of shape (N, C) = ({n}, C) for a batch of {n}, got {size:?}"
            )))
        }
    }
    if out.device() != x.device() {
        return Err(LfrError::Device(format!(
            "model returned logits on {:?} for inputs on {:?}",
            out.device(),
            x.device()
        )));
    }
    if !out.is_floating_point() {
        return Err(LfrError::InvalidType(format!(
            "model must return floating-point logits, got {:?}",
            out.kind()
        )));
    }
    Ok(out)
}

/// Number of classes, read off logits already checked by [`checked_logits`].
pub fn num_classes(logits: &Tensor) -> i64 {
    logits.size().get(1).copied().unwrap_or(0)
}

/// Predicted class per sample.
pub fn predict(logits: &Tensor) -> Result<Tensor> {
    Ok(logits.f_argmax(1, false)?.f_to_kind(Kind::Int64)?)
}
