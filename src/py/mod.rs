//! The Python binding layer: the only code that names pyo3 / pyo3-tch. It
//! converts arguments and results; the math lives in the kernels.
pub mod args;
pub mod data;
pub mod errors;
pub mod functions;
pub mod model;
pub mod regularizers;
pub mod tensor;

use pyo3::prelude::*;

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    errors::register(m)?;
    functions::register(m)?;
    data::register(m)?;
    regularizers::register(m)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
