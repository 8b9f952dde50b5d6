//! Validation of what the kernels are given: a batch in [0, 1], integer labels
//! of the same length, finite hyper-parameters. Checks of what the model
//! returns live in `model.rs`, which builds on this module.
use crate::error::{invalid, LfrError, Result};
use tch::{Device, Kind, Tensor};

/// A device as torch names it. tch reports every device other than CPU,
/// CUDA and Vulkan (meta, xpu, ...) as `Mps`, so that one cannot be named
/// exactly here; the Python layer compares devices by their torch names first.
pub fn device_name(device: Device) -> String {
    match device {
        Device::Cpu => "cpu".into(),
        Device::Cuda(i) => format!("cuda:{i}"),
        Device::Vulkan => "vulkan".into(),
        Device::Mps => "a device other than cpu or cuda (mps, meta, ...)".into(),
    }
}

/// A dtype as torch names it (`torch.float32`).
pub fn dtype_name(kind: Kind) -> String {
    let name = match kind {
        Kind::Uint8 => "uint8",
        Kind::Int8 => "int8",
        Kind::Int16 => "int16",
        Kind::Int => "int32",
        Kind::Int64 => "int64",
        Kind::Half => "float16",
        Kind::Float => "float32",
        Kind::Double => "float64",
        Kind::ComplexHalf => "complex32",
        Kind::ComplexFloat => "complex64",
        Kind::ComplexDouble => "complex128",
        Kind::Bool => "bool",
        Kind::BFloat16 => "bfloat16",
        other => return format!("{other:?}"),
    };
    format!("torch.{name}")
}

/// Checks `x`: float32 or float64, batch-first, finite, in [0, 1].
///
/// Half precision is refused: a loss gradient taken through a float16 model
/// underflows to zero for confidently classified samples (they never move)
/// and L2 norms of such gradients divide zero by zero, while bfloat16's
/// 8-bit mantissa cannot keep an iterate inside an eps-ball to the last
/// rounding. Attacks cast a half model and its inputs with `.float()`.
pub fn check_inputs(x: &Tensor) -> Result<()> {
    if x.is_sparse() || x.is_mkldnn() {
        return Err(LfrError::InvalidType("inputs must be a dense (strided) tensor".into()));
    }
    if matches!(x.kind(), Kind::Half | Kind::BFloat16) {
        return Err(LfrError::InvalidType(format!(
            "inputs are {}: half precision is not supported (gradients underflow, norms overflow); \
             pass model.float() and inputs.float() (float32 or float64)",
            dtype_name(x.kind())
        )));
    }
    if !x.is_floating_point() {
        return Err(LfrError::InvalidType(format!(
            "inputs must be a floating-point tensor (torch.float32 or torch.float64), got {}",
            dtype_name(x.kind())
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
    check_labels(x, y)
}

/// The labels' half of [`check_batch`], for inputs that need not be images
/// in [0, 1]: integer, `(N,)` for `N` inputs, on the inputs' device,
/// non-negative. Returns them as `Int64`.
pub fn check_labels(x: &Tensor, y: &Tensor) -> Result<Tensor> {
    let integer = matches!(y.kind(), Kind::Int64 | Kind::Int | Kind::Int16 | Kind::Int8 | Kind::Uint8);
    if !integer {
        return Err(LfrError::InvalidType(format!(
            "labels must be an integer tensor (torch.long), got {}",
            dtype_name(y.kind())
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
            "inputs are on {} but labels are on {}",
            device_name(x.device()),
            device_name(y.device())
        )));
    }
    if n > 0 && y.f_min()?.f_int64_value(&[])? < 0 {
        return invalid("labels must be non-negative class indices");
    }
    Ok(y.f_to_kind(Kind::Int64)?)
}

/// Inputs of a capture-safe body: float32 or float64 (read off the dtype).
pub fn check_float(x: &Tensor) -> Result<()> {
    if !matches!(x.kind(), Kind::Float | Kind::Double) {
        return Err(LfrError::InvalidType(format!(
            "inputs must be torch.float32 or torch.float64, got {}",
            dtype_name(x.kind())
        )));
    }
    Ok(())
}

/// The shape, dtype and device checks of [`check_batch`], which read nothing
/// back from the device: for capture-safe kernel bodies, whose callers make
/// the value checks once per batch.
pub fn check_layout(x: &Tensor, y: &Tensor) -> Result<()> {
    check_float(x)?;
    if y.kind() != Kind::Int64 {
        return Err(LfrError::InvalidType(format!("labels must be torch.int64, got {}", dtype_name(y.kind()))));
    }
    let n = x.size().first().copied().unwrap_or(0);
    if x.dim() < 1 || y.size() != [n] || x.device() != y.device() {
        return Err(LfrError::Shape(format!(
            "labels {:?} must be (N,) on the inputs' device for inputs {:?}",
            y.size(),
            x.size()
        )));
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

/// Hyper-parameters `(name, value)` that must stay finite once cast to the
/// inputs' dtype (`eps = 1e300` is `inf` in float32, and `0 * inf` is NaN).
pub fn check_finite_in(kind: Kind, params: &[(&str, f64)]) -> Result<()> {
    for &(name, value) in params {
        let finite = match kind {
            Kind::Float => (value as f32).is_finite(),
            _ => value.is_finite(),
        };
        if !finite {
            return invalid(format!(
                "{name} = {value:e} overflows {} (the inputs' dtype; largest finite value {:e})",
                dtype_name(kind),
                f32::MAX
            ));
        }
    }
    Ok(())
}

/// The hyper-parameters every sign ascent shares (PGD, the TRADES, LLR and
/// LFR inner maximisations): `eps` and `alpha` finite and >= 0, at least one
/// step.
pub fn check_ascent(eps: f64, alpha: f64, steps: i64) -> Result<()> {
    check_non_negative("eps", eps)?;
    check_non_negative("alpha", alpha)?;
    check_count("steps", steps)
}

/// [`check_ascent`], and `eps` and `alpha` finite once cast to `kind`.
pub fn check_ascent_in(kind: Kind, eps: f64, alpha: f64, steps: i64) -> Result<()> {
    check_ascent(eps, alpha, steps)?;
    check_finite_in(kind, &[("eps", eps), ("alpha", alpha)])
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

    #[test]
    fn labels_alone_allow_inputs_outside_the_unit_box() {
        let x = Tensor::rand([4, 3], (Kind::Float, Device::Cpu)) * 4.0 - 2.0;
        let y = Tensor::from_slice(&[0i32, 1, 2, 1]);
        assert_eq!(check_labels(&x, &y).map(|l| l.kind()).ok(), Some(Kind::Int64));
        assert!(check_batch(&x, &y).is_err());
        assert!(check_labels(&x, &(&y - 1)).is_err());
    }

    #[test]
    fn ascent_hyper_parameters() {
        assert!(check_ascent_in(Kind::Float, 0.3, 0.01, 40).is_ok());
        assert!(check_ascent_in(Kind::Double, 1e300, 0.01, 1).is_ok());
        let overflow = check_ascent_in(Kind::Float, 1e300, 0.01, 1).unwrap_err().to_string();
        assert!(overflow.contains("eps = 1e300 overflows torch.float32"), "{overflow}");
        assert!(check_ascent(0.3, -0.01, 1).unwrap_err().to_string().contains("alpha"));
        assert!(check_ascent(0.3, 0.01, 0).unwrap_err().to_string().contains("steps"));
    }
}
