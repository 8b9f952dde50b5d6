//! The model abstraction the kernels run: anything that maps a batch of inputs
//! to `(N, C)` logits, and [`CheckedModel`], the one way a kernel calls it.
use crate::error::{invalid, LfrError, Result};
use crate::inputs::{device_name, dtype_name};
use std::cell::{Cell, RefCell};
use tch::{Kind, Tensor};

/// A classifier: inputs `(N, ...)` in [0, 1] to logits `(N, C)`.
pub trait Model {
    fn logits(&self, x: &Tensor) -> Result<Tensor>;

    /// Reports a pending interrupt (Ctrl-C in Python) as an error, which the
    /// kernel returns at once. [`CheckedModel`] polls it before every forward.
    fn check_interrupt(&self) -> Result<()> {
        Ok(())
    }
}

impl<F> Model for F
where
    F: Fn(&Tensor) -> Result<Tensor>,
{
    fn logits(&self, x: &Tensor) -> Result<Tensor> {
        self(x)
    }
}

/// One kernel call's access to the model. Wrap the model once at the top of
/// the kernel, run every forward through it, and pass the kernel's result
/// through [`CheckedModel::finish`]:
///
/// ```ignore
/// let model = &CheckedModel::new(model, Some(&labels))?;
/// let out = tch::with_grad(|| { /* loop calling model.logits(..) */ });
/// model.finish(out)
/// ```
///
/// Each forward (i) polls [`Model::check_interrupt`], (ii) hands the model a
/// copy of its argument, so a model that edits it in place changes neither the
/// caller's tensors nor the kernel's iterates, (iii) checks the logits (shape
/// `(N, C)`, device, floating dtype, one class count for the whole call that
/// covers every label) and (iv) records on the device whether they were all
/// finite. Nothing here synchronizes with the device; `finish` reads the
/// record once (one host sync per call).
pub struct CheckedModel<'m, M: Model> {
    model: &'m M,
    max_label: Option<i64>,
    classes: Cell<Option<i64>>,
    all_finite: RefCell<Option<Tensor>>,
}

impl<'m, M: Model> CheckedModel<'m, M> {
    /// `labels` (already checked by `check_batch`) are compared with the class
    /// count of the first logits; `None` for label-free kernels.
    pub fn new(model: &'m M, labels: Option<&Tensor>) -> Result<Self> {
        let max_label = match labels {
            Some(y) if y.numel() > 0 => Some(y.f_max()?.f_int64_value(&[])?),
            _ => None,
        };
        Ok(CheckedModel { model, max_label, classes: Cell::new(None), all_finite: RefCell::new(None) })
    }

    /// Returns `result`, or the non-finite-logits error if any forward of this
    /// call returned NaN or inf (the root cause of whatever followed). An
    /// error raised by the model itself (an interrupt included) is returned
    /// unchanged.
    pub fn finish<T>(&self, result: Result<T>) -> Result<T> {
        if let Err(LfrError::Model(_)) = result {
            return result;
        }
        if let Some(flag) = self.all_finite.borrow().as_ref() {
            if flag.f_int64_value(&[])? == 0 {
                return non_finite();
            }
        }
        result
    }

    /// The device-side record of `finish` without reading it back: a 0-d
    /// bool tensor, true when every forward so far returned finite logits
    /// (for a kernel body that must not synchronize, such as one being
    /// captured into a CUDA graph).
    pub fn finite_flag(&self, device: tch::Device) -> Result<Tensor> {
        match self.all_finite.borrow().as_ref() {
            Some(flag) => Ok(flag.shallow_clone()),
            None => Ok(Tensor::f_ones([].as_slice(), (Kind::Bool, device))?),
        }
    }

    fn record(&self, logits: &Tensor) -> Result<()> {
        let classes = num_classes(logits);
        match self.classes.get() {
            Some(c) if c != classes => {
                return Err(LfrError::Shape(format!(
                    "the model returned {classes} classes after returning {c} earlier in this call"
                )))
            }
            Some(_) => {}
            None => {
                if let Some(hi) = self.max_label.filter(|hi| *hi >= classes) {
                    return out_of_range(hi, classes);
                }
                self.classes.set(Some(classes));
            }
        }
        if logits.numel() > 0 {
            let finite = logits.f_isfinite()?.f_all()?;
            let mut acc = self.all_finite.borrow_mut();
            *acc = Some(match acc.take() {
                Some(prev) => prev.f_logical_and(&finite)?,
                None => finite,
            });
        }
        Ok(())
    }
}

impl<M: Model> Model for CheckedModel<'_, M> {
    fn logits(&self, x: &Tensor) -> Result<Tensor> {
        self.model.check_interrupt()?;
        // A differentiable copy: gradients still reach `x`.
        let mut arg = x.f_empty_like()?;
        arg.f_copy_(x)?;
        let out = validated(self.model.logits(&arg)?, x)?;
        self.record(&out)?;
        Ok(out)
    }

    fn check_interrupt(&self) -> Result<()> {
        self.model.check_interrupt()
    }
}

/// Checks what a model returned: a floating `(N, C)` tensor on the input's
/// device, `N` matching the batch.
fn validated(out: Tensor, x: &Tensor) -> Result<Tensor> {
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
            "model returned logits on {} for inputs on {}",
            device_name(out.device()),
            device_name(x.device())
        )));
    }
    if !out.is_floating_point() {
        return Err(LfrError::InvalidType(format!(
            "model must return floating-point logits, got {}",
            dtype_name(out.kind())
        )));
    }
    Ok(out)
}

/// Runs the model and checks what it returned (see [`CheckedModel`], which
/// kernels use; this checks one call without the per-call bookkeeping).
pub fn checked_logits(model: &impl Model, x: &Tensor) -> Result<Tensor> {
    validated(model.logits(x)?, x)
}

/// Checks labels against the number of classes the model returned, and that
/// the logits are finite.
pub fn check_label_range(labels: &Tensor, logits: &Tensor) -> Result<()> {
    if logits.numel() > 0 && logits.f_isfinite()?.f_all()?.f_int64_value(&[])? == 0 {
        return non_finite();
    }
    check_labels_below(labels, num_classes(logits))
}

/// Checks every label against a class count (one host read).
pub fn check_labels_below(labels: &Tensor, classes: i64) -> Result<()> {
    if labels.numel() > 0 {
        let hi = labels.f_max()?.f_int64_value(&[])?;
        if hi >= classes {
            return out_of_range(hi, classes);
        }
    }
    Ok(())
}

fn non_finite<T>() -> Result<T> {
    invalid("the model returned non-finite logits (NaN or inf)")
}

fn out_of_range<T>(label: i64, classes: i64) -> Result<T> {
    invalid(format!("label {label} is out of range for a model with {classes} classes"))
}

/// Number of classes, read off logits already checked by [`checked_logits`].
pub fn num_classes(logits: &Tensor) -> i64 {
    logits.size().get(1).copied().unwrap_or(0)
}

/// Predicted class per sample.
pub fn predict(logits: &Tensor) -> Result<Tensor> {
    Ok(logits.f_argmax(1, false)?.f_to_kind(Kind::Int64)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;
    use tch::Device;

    #[test]
    fn non_finite_logits_on_a_later_call_fail_the_call() {
        let calls = Cell::new(0);
        let model = |x: &Tensor| -> Result<Tensor> {
            calls.set(calls.get() + 1);
            let out = x.f_flatten(1, -1)?.f_narrow(1, 0, 3)?;
            Ok(if calls.get() == 3 { out.f_mul_scalar(f64::NAN)? } else { out })
        };
        let x = Tensor::rand([2, 4], (Kind::Float, Device::Cpu));
        let labels = Tensor::from_slice(&[0i64, 2]);
        let checked = CheckedModel::new(&model, Some(&labels)).unwrap();
        for _ in 0..5 {
            let _ = checked.logits(&x).unwrap();
        }
        let err = checked.finish(Ok(())).unwrap_err();
        assert!(err.to_string().contains("non-finite"), "{err}");
        let clean = CheckedModel::new(&model, Some(&labels)).unwrap();
        let _ = clean.logits(&x).unwrap();
        assert!(clean.finish(Ok(())).is_ok());
    }

    #[test]
    fn labels_checked_against_the_first_logits() {
        let model = |x: &Tensor| -> Result<Tensor> { Ok(x.f_narrow(1, 0, 2)?) };
        let x = Tensor::rand([2, 4], (Kind::Float, Device::Cpu));
        let checked = CheckedModel::new(&model, Some(&Tensor::from_slice(&[0i64, 2]))).unwrap();
        assert!(checked.logits(&x).unwrap_err().to_string().contains("out of range"));
    }

    #[test]
    fn model_gets_a_copy_and_interrupts_stop_the_call() {
        struct Editing;
        impl Model for Editing {
            fn logits(&self, x: &Tensor) -> Result<Tensor> {
                let mut y = x.shallow_clone();
                let _ = y.f_zero_()?;
                Ok(y)
            }
        }
        let x = Tensor::ones([2, 3], (Kind::Float, Device::Cpu));
        let _ = CheckedModel::new(&Editing, None).unwrap().logits(&x).unwrap();
        assert_eq!(x.sum(Kind::Float).double_value(&[]), 6.0);

        struct Interrupted;
        impl Model for Interrupted {
            fn logits(&self, x: &Tensor) -> Result<Tensor> {
                Ok(x.shallow_clone())
            }
            fn check_interrupt(&self) -> Result<()> {
                Err(LfrError::Model("interrupted".into()))
            }
        }
        let err = CheckedModel::new(&Interrupted, None).unwrap().logits(&x).unwrap_err();
        assert!(matches!(err, LfrError::Model(_)));
    }
}

/// Fixtures of the kernels' unit tests (`src/model_fixtures.rs`).
#[cfg(test)]
#[path = "model_fixtures.rs"]
pub(crate) mod fixtures;
