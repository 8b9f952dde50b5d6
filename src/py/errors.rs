//! Python exception types and the mapping from [`LfrError`].
use crate::error::LfrError;
use pyo3::exceptions::{PyException, PyTypeError, PyValueError};
use pyo3::prelude::*;
use tch::TchError;

pub mod exc {
    use pyo3::create_exception;
    use pyo3::exceptions::PyException;

    create_exception!(lfr_rs, LfrError, PyException, "Base class of every lfr_rs error.");
    create_exception!(lfr_rs, ShapeError, LfrError, "Tensor shapes that do not fit together.");
    create_exception!(lfr_rs, DeviceError, LfrError, "Tensors or model on different devices.");
    create_exception!(lfr_rs, TorchError, LfrError, "An error reported by libtorch (message verbatim).");
}

impl From<LfrError> for PyErr {
    fn from(err: LfrError) -> PyErr {
        match err {
            LfrError::InvalidArgument(msg) => PyValueError::new_err(msg),
            LfrError::InvalidType(msg) => PyTypeError::new_err(msg),
            LfrError::Shape(msg) => exc::ShapeError::new_err(msg),
            LfrError::Device(msg) => exc::DeviceError::new_err(msg),
            LfrError::Torch(TchError::Torch(msg)) => exc::TorchError::new_err(msg),
            LfrError::Torch(other) => exc::TorchError::new_err(other.to_string()),
            LfrError::Model(inner) => match inner.downcast::<PyErr>() {
                Ok(original) => *original,
                Err(other) => exc::LfrError::new_err(other.to_string()),
            },
        }
    }
}

/// Registers the exception types on the module.
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add("LfrError", py.get_type::<exc::LfrError>())?;
    m.add("ShapeError", py.get_type::<exc::ShapeError>())?;
    m.add("DeviceError", py.get_type::<exc::DeviceError>())?;
    m.add("TorchError", py.get_type::<exc::TorchError>())?;
    let _ = py.get_type::<PyException>();
    Ok(())
}
