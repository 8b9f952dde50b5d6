//! lfr-rs: adversarial attacks and Local Flatness Regularization kernels on
//! libtorch, with a thin PyO3 binding (`src/py/`).
pub mod alloc;
pub mod attacks;
pub mod data;
pub mod error;
pub mod eval;
pub mod grad;
pub mod inputs;
pub mod lfr;
pub mod llr;
pub mod loss;
pub mod model;
pub mod norm;
pub mod penalty;
pub mod project;
pub mod trades;

#[cfg(feature = "python")]
pub mod py;

#[cfg(feature = "python")]
#[pyo3::pymodule]
fn _native(m: &pyo3::Bound<'_, pyo3::types::PyModule>) -> pyo3::PyResult<()> {
    // torch must be initialised before any tensor is wrapped (tch-rs #723).
    m.py().import("torch")?;
    py::register(m)
}
