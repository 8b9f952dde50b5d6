//! `PyModel`: a Python callable (usually a `torch.nn.Module`) as a [`Model`].
use crate::error::{LfrError, Result};
use crate::model::Model;
use crate::py::tensor::{same_device, to_py, PyTensor};
use pyo3::exceptions::{PyTypeError, PyUserWarning};
use pyo3::prelude::*;
use pyo3::types::PyTuple;
use std::ffi::CString;
use tch::Tensor;

pub struct PyModel {
    callable: Py<PyAny>,
}

impl PyModel {
    /// Wraps `model`, checking that it is callable and, when it has
    /// parameters, that the first one lives on the inputs' device.
    pub fn new(model: &Bound<'_, PyAny>, inputs: &Tensor) -> PyResult<Self> {
        if !model.is_callable() {
            return Err(PyTypeError::new_err(format!(
                "model must be callable (a torch.nn.Module), got {}",
                model.get_type()
            )));
        }
        if let Ok(params) = model.getattr("parameters").and_then(|f| f.call0()) {
            if let Ok(Some(first)) = params.try_iter().map(|mut it| it.next()) {
                // Compared as Python sees them: tch's Device has no name for every torch device.
                let param_device = first?.getattr("device")?;
                let input_device = to_py(model.py(), inputs)?.getattr(model.py(), "device")?;
                if !param_device.eq(&input_device)? {
                    return Err(LfrError::Device(format!(
                        "model parameters are on {} but inputs are on {}; move one with .to(device)",
                        param_device.str()?,
                        input_device.bind(model.py()).str()?
                    ))
                    .into());
                }
            }
        }
        Ok(PyModel { callable: model.clone().unbind() })
    }

    pub fn callable(&self) -> &Py<PyAny> {
        &self.callable
    }
}

/// Warns (a `UserWarning`; Python's default filter shows it once per call
/// site) when `model` is a `torch.nn.Module` with BatchNorm or dropout layers
/// in train mode: the kernel would update their running statistics and draw
/// dropout masks. Kernels leave the mode as it is, so this only says so.
pub fn warn_if_training(model: &Bound<'_, PyAny>) -> PyResult<()> {
    let py = model.py();
    if !model.is_instance(&py.import("torch.nn")?.getattr("Module")?)? {
        return Ok(());
    }
    let stateful = PyTuple::new(
        py,
        [
            py.import("torch.nn.modules.batchnorm")?.getattr("_BatchNorm")?,
            py.import("torch.nn.modules.dropout")?.getattr("_DropoutNd")?,
        ],
    )?;
    let mut names: Vec<String> = Vec::new();
    for module in model.call_method0("modules")?.try_iter()? {
        let module = module?;
        if module.is_instance(&stateful)? && module.getattr("training")?.is_truthy()? {
            let name = module.get_type().name()?.to_string();
            if !names.contains(&name) {
                names.push(name);
            }
        }
    }
    if names.is_empty() {
        return Ok(());
    }
    let message = CString::new(format!(
        "the model is in train mode with {} layers: this kernel updates their running statistics \
         and draws dropout masks. Call model.eval() before attacking (lfr_rs never changes the mode)",
        names.join(", ")
    ))?;
    PyErr::warn(py, py.get_type::<PyUserWarning>().as_any(), &message, 1)
}

impl Model for PyModel {
    /// Runs Python's signal handlers (for Ctrl-C, `KeyboardInterrupt`, which
    /// comes back unchanged). A Python-level model gets them run by the
    /// interpreter anyway; a C-level callable (`functools.partial(F.linear,
    /// weight=w)`) never would.
    fn check_interrupt(&self) -> Result<()> {
        Python::with_gil(|py| py.check_signals()).map_err(|e| LfrError::Model(Box::new(e)))
    }

    /// Takes the GIL for the forward pass only; autograd runs without it.
    fn logits(&self, x: &Tensor) -> Result<Tensor> {
        Python::with_gil(|py| {
            let arg = to_py(py, x).map_err(|e| LfrError::Model(Box::new(e)))?;
            let out = self
                .callable
                .call1(py, (arg.clone_ref(py),))
                .map_err(|e| LfrError::Model(Box::new(e)))?;
            let out = out.bind(py);
            let Ok(t) = out.extract::<PyTensor>() else {
                let n = x.size().first().copied().unwrap_or(0);
                return Err(LfrError::InvalidType(format!(
                    "model must return a torch.Tensor of logits of shape (N, C) = ({n}, C) for a batch of {n}, \
                     got {}",
                    out.get_type()
                )));
            };
            same_device(arg.bind(py), out, ("inputs", "the model's logits"))
                .map_err(|e| LfrError::Model(Box::new(e)))?;
            Ok(t.0)
        })
    }
}

/// `model` wrapped to run its forward under `torch.autocast(dtype)` with
/// float32 logits (`lfr_rs.precision.autocast_model`, which also checks the
/// value against `inputs`' device), or `model` itself for `None`.
pub fn with_autocast<'py>(model: &Bound<'py, PyAny>, autocast: Option<&str>, inputs: &PyTensor) -> PyResult<Bound<'py, PyAny>> {
    let Some(dtype) = autocast else {
        return Ok(model.clone());
    };
    let py = model.py();
    let inputs = to_py(py, &inputs.0)?;
    py.import("lfr_rs.precision")?.getattr("autocast_model")?.call1((model, dtype, inputs))
}
