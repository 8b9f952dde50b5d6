//! Tensor conversion. Extraction goes through pyo3-tch's `PyTensor` (a
//! `TypeError` for non-tensors); wrapping is done here because pyo3-tch's
//! `IntoPyObject` turns a failed wrap into `None`.
use crate::error::LfrError;
use pyo3::prelude::*;
use tch::Tensor;

pub use pyo3_tch::PyTensor;

/// Wraps a tensor as a `torch.Tensor` without copying.
pub fn to_py(py: Python<'_>, t: &Tensor) -> PyResult<PyObject> {
    let ptr = t.pyobject_wrap().map_err(LfrError::from)?;
    if ptr.is_null() {
        return Err(PyErr::fetch(py));
    }
    // SAFETY: `pyobject_wrap` returns a new (owned) reference to a THPVariable.
    Ok(unsafe { PyObject::from_owned_ptr(py, ptr as *mut pyo3::ffi::PyObject) })
}

/// A `DeviceError` naming both devices as torch does, unless `a` and `b`
/// (tensors) are on the same one.
pub fn same_device(a: &Bound<'_, PyAny>, b: &Bound<'_, PyAny>, what: (&str, &str)) -> PyResult<()> {
    let (da, db) = (a.getattr("device")?, b.getattr("device")?);
    if da.eq(&db)? {
        return Ok(());
    }
    Err(LfrError::Device(format!("{} are on {} but {} are on {}", what.0, da.str()?, what.1, db.str()?)).into())
}
