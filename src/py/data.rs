//! Bindings for the IDX reader.
use crate::data;
use crate::py::tensor::to_py;
use pyo3::prelude::*;
use std::path::PathBuf;

/// Reads an IDX file (``*-ubyte`` or ``*-ubyte.gz``) as a uint8 tensor of its shape.
#[pyfunction]
#[pyo3(name = "read_idx")]
pub fn py_read_idx(py: Python<'_>, path: PathBuf) -> PyResult<PyObject> {
    let t = py.allow_threads(move || data::read_idx(&path))?;
    to_py(py, &t)
}

/// Loads an image/label pair of IDX files as ``(float32 (N, 1, H, W) in [0, 1], int64 (N,))``.
#[pyfunction]
#[pyo3(name = "load_idx_pair")]
pub fn py_load_idx_pair(py: Python<'_>, images: PathBuf, labels: PathBuf) -> PyResult<(PyObject, PyObject)> {
    let (x, y) = py.allow_threads(move || data::load_idx_pair(&images, &labels))?;
    Ok((to_py(py, &x)?, to_py(py, &y)?))
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(py_read_idx, m)?)?;
    m.add_function(wrap_pyfunction!(py_load_idx_pair, m)?)?;
    Ok(())
}
