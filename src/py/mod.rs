//! The Python binding layer: the only code that names pyo3 / pyo3-tch. It
//! converts arguments and results; the math lives in the kernels.
pub mod args;
pub mod attacks;
pub mod call;
pub mod data;
pub mod errors;
pub mod eval;
pub mod graphs;
pub mod model;
pub mod regularizers;
pub mod surface;
pub mod tensor;

use pyo3::prelude::*;

/// Raises glibc's mmap (32 MiB) and trim (2 GiB) thresholds for this process.
///
/// Double backprop (LFR, the gradient-norm penalty) allocates many large
/// short-lived buffers; with these thresholds they stay in the heap instead of
/// being mapped, unmapped and faulted in again every step. Process-wide: it
/// also affects plain PyTorch code, and resident memory stays higher. The
/// same as starting Python with
/// ``GLIBC_TUNABLES=glibc.malloc.mmap_threshold=33554432:glibc.malloc.trim_threshold=2147483647``.
///
/// Returns
/// -------
/// bool
///     True when glibc accepted both settings (False on other C libraries).
#[pyfunction]
fn tune_malloc() -> bool {
    crate::alloc::tune_malloc()
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(tune_malloc, m)?)?;
    errors::register(m)?;
    attacks::register(m)?;
    data::register(m)?;
    regularizers::register(m)?;
    eval::register(m)?;
    surface::register(m)?;
    graphs::register(m)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
