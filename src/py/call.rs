//! The one shape of a kernel binding: check the model against the batch, run
//! the kernel with the GIL released (the model takes it back for each
//! forward, see `PyModel`), and wrap what the kernel returns.
use crate::error::Result;
use crate::py::model::{warn_if_training, PyModel};
use crate::py::tensor::{same_device, to_py, PyTensor};
use pyo3::prelude::*;
use tch::Tensor;

/// Whether a binding warns about a model in train mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// Attacks and evaluation: warn when BatchNorm or dropout layers are in
    /// train mode (the kernel would update or draw them).
    Eval,
    /// Training losses (the gradient-norm penalty), meant to run in train mode.
    Any,
}

/// A kernel's result as Python objects.
pub(crate) trait IntoPython {
    type Output;
    fn into_python(self, py: Python<'_>) -> PyResult<Self::Output>;
}

impl IntoPython for Tensor {
    type Output = PyObject;
    fn into_python(self, py: Python<'_>) -> PyResult<PyObject> {
        to_py(py, &self)
    }
}

impl IntoPython for (Tensor, Tensor) {
    type Output = (PyObject, PyObject);
    fn into_python(self, py: Python<'_>) -> PyResult<(PyObject, PyObject)> {
        Ok((to_py(py, &self.0)?, to_py(py, &self.1)?))
    }
}

/// The checks every binding makes, in this order: the train-mode warning
/// (which `filterwarnings = error` turns into the first exception), labels on
/// the inputs' device, then the model callable and on that device.
fn checked_model(py: Python<'_>, mode: Mode, model: &Bound<'_, PyAny>, inputs: &PyTensor, labels: Option<&PyTensor>) -> PyResult<PyModel> {
    if mode == Mode::Eval {
        warn_if_training(model)?;
    }
    if let Some(labels) = labels {
        same_device(&to_py(py, inputs)?.into_bound(py), &to_py(py, labels)?.into_bound(py), ("inputs", "labels"))?;
    }
    PyModel::new(model, inputs)
}

/// Runs `kernel(model, x, y)` with the GIL released and returns its Rust
/// result, for bindings that post-process it; the others use [`run_kernel`].
pub(crate) fn run_labelled<T, F>(py: Python<'_>, mode: Mode, model: &Bound<'_, PyAny>, inputs: PyTensor, labels: PyTensor, kernel: F) -> PyResult<T>
where
    T: Send,
    F: FnOnce(&PyModel, &Tensor, &Tensor) -> Result<T> + Send,
{
    let model = checked_model(py, mode, model, &inputs, Some(&labels))?;
    let (x, y, m) = (inputs.0, labels.0, &model);
    Ok(py.allow_threads(move || kernel(m, &x, &y))?)
}

/// Runs `kernel(model, x, y)` with the GIL released and wraps its result,
/// warning first if `model` has BatchNorm or dropout layers in train mode.
pub(crate) fn run_kernel<T, F>(py: Python<'_>, model: &Bound<'_, PyAny>, inputs: PyTensor, labels: PyTensor, kernel: F) -> PyResult<T::Output>
where
    T: IntoPython + Send,
    F: FnOnce(&PyModel, &Tensor, &Tensor) -> Result<T> + Send,
{
    run_labelled(py, Mode::Eval, model, inputs, labels, kernel)?.into_python(py)
}

/// [`run_kernel`] without the train-mode warning, for training losses (the
/// gradient-norm penalty) that are meant to run in train mode.
pub(crate) fn run_kernel_in_any_mode<T, F>(py: Python<'_>, model: &Bound<'_, PyAny>, inputs: PyTensor, labels: PyTensor, kernel: F) -> PyResult<T::Output>
where
    T: IntoPython + Send,
    F: FnOnce(&PyModel, &Tensor, &Tensor) -> Result<T> + Send,
{
    run_labelled(py, Mode::Any, model, inputs, labels, kernel)?.into_python(py)
}

/// [`run_kernel`] for a kernel that takes no labels (TRADES' inner maximization).
pub(crate) fn run_unlabelled<T, F>(py: Python<'_>, model: &Bound<'_, PyAny>, inputs: PyTensor, kernel: F) -> PyResult<T::Output>
where
    T: IntoPython + Send,
    F: FnOnce(&PyModel, &Tensor) -> Result<T> + Send,
{
    let model = checked_model(py, Mode::Eval, model, &inputs, None)?;
    let (x, m) = (inputs.0, &model);
    py.allow_threads(move || kernel(m, &x))?.into_python(py)
}
