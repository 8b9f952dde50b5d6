//! Validation of what the kernels are given: a batch in [0, 1], integer labels
//! of the same length, finite hyper-parameters.
use crate::error::{invalid, LfrError, Result};
use crate::model::num_classes;
use tch::{Kind, Tensor};

/// Checks `x`: floating, batch-first, finite, in [0, 1].
pub fn check_inputs(x: &Tensor) -> Result<()> {
    if x.is_sparse() || x.is_mkldnn() {
        return Err(LfrError::InvalidType("inputs must be a dense (strided) tensor".into()));
    }
    if !x.is_floating_point() {
        return Err(LfrError::InvalidType(format!(
            "inputs must be a floating-point tensor, got {:?}",
            x.kind()
        )));
    }
    if x.dim() < 1 {
        return Err(LfrError::Shape("inputs must have a batch dimension, got a 0-d tensor".into()));
    }
    if x.numel() > 0 {
        let lo = x.f_min()?.f_double_value(&[])?;
        let hi = x.f_max()?.f_double_value(&[])?;
        if lo.is_nan() || hi.is_nan() {
            return invalid("inputs contain NaN");
        }
        if lo < 0.0 || hi > 1.0 {
            return invalid(format!("inputs must lie in [0, 1], got values in [{lo}, {hi}]"));
        }
    }
    Ok(())
}

/// Checks `x` (see [`check_inputs`]) and `y` (integer, 1-D, one label per
/// sample, same device) and returns the labels as `Int64`.
pub fn check_batch(x: &Tensor, y: &Tensor) -> Result<Tensor> {
    check_inputs(x)?;
    let integer = matches!(y.kind(), Kind::Int64 | Kind::Int | Kind::Int16 | Kind::Int8 | Kind::Uint8);
    if !integer {
        return Err(LfrError::InvalidType(format!(
            "labels must be an integer tensor (torch.long), got {:?}",
            y.kind()
        )));
    }
    let n = x.size().first().copied().unwrap_or(0);
    if y.size() != [n] {
        return Err(LfrError::Shape(format!(
            "labels must have shape (N,) = ({n},) to match inputs {:?}, got {:?}",
            x.size(),
            y.size()
        )));
    }
    if y.device() != x.device() {
        return Err(LfrError::Device(format!(
            "inputs are on {:?} but labels are on {:?}",
            x.device(),
            y.device()
        )));
    }
    if n > 0 && y.f_min()?.f_int64_value(&[])? < 0 {
        return invalid("labels must be non-negative class indices");
    }
    Ok(y.f_to_kind(Kind::Int64)?)
}

/// Checks labels against the number of classes the model returned, and that
/// the logits are finite.
pub fn check_label_range(labels: &Tensor, logits: &Tensor) -> Result<()> {
    if logits.numel() > 0 && logits.f_isfinite()?.f_all()?.f_int64_value(&[])? == 0 {
        return invalid("the model returned non-finite logits (NaN or inf)");
    }
    let classes = num_classes(logits);
    if labels.numel() > 0 {
        let hi = labels.f_max()?.f_int64_value(&[])?;
        if hi >= classes {
            return invalid(format!(
                "label {hi} is out of range for a model with {classes} classes"
            ));
        }
    }
    Ok(())
}

/// A finite, non-negative hyper-parameter (`eps`, `alpha`, ...).
pub fn check_non_negative(name: &str, value: f64) -> Result<()> {
    if !value.is_finite() || value < 0.0 {
        return invalid(format!("{name} must be a finite number >= 0, got {value}"));
    }
    Ok(())
}

/// A finite, strictly positive hyper-parameter.
pub fn check_positive(name: &str, value: f64) -> Result<()> {
    if !value.is_finite() || value <= 0.0 {
        return invalid(format!("{name} must be a finite number > 0, got {value}"));
    }
    Ok(())
}

/// A count of at least one (`steps`, `restarts`).
pub fn check_count(name: &str, value: i64) -> Result<()> {
    if value < 1 {
        return invalid(format!("{name} must be >= 1, got {value}"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Device;

    #[test]
    fn rejects_bad_batches() {
        let x = Tensor::rand([4, 3], (Kind::Float, Device::Cpu));
        let y = Tensor::from_slice(&[0i64, 1, 2, 1]);
        assert!(check_batch(&x, &y).is_ok());
        assert!(matches!(check_batch(&x, &y.narrow(0, 0, 3)), Err(LfrError::Shape(_))));
        assert!(matches!(check_batch(&x, &y.to_kind(Kind::Float)), Err(LfrError::InvalidType(_))));
        assert!(matches!(check_batch(&(&x + 1.5), &y), Err(LfrError::InvalidArgument(_))));
        let nan = x.detach_copy().fill_(f64::NAN);
        assert!(check_batch(&nan, &y).unwrap_err().to_string().contains("NaN"));
        assert!(check_batch(&x, &(&y - 1)).is_err());
        assert!(check_count("steps", 0).is_err());
        assert!(check_non_negative("eps", f64::NAN).is_err());
        assert!(check_non_negative("eps", -0.1).is_err());
    }
}
