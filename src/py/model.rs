//! `PyModel`: a Python callable (usually a `torch.nn.Module`) as a [`Model`].
use crate::error::{LfrError, Result};
use crate::model::Model;
use crate::py::tensor::{to_py, PyTensor};
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
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

impl Model for PyModel {
    /// Takes the GIL for the forward pass only; autograd runs without it.
    fn logits(&self, x: &Tensor) -> Result<Tensor> {
        Python::with_gil(|py| {
            let arg = to_py(py, x).map_err(|e| LfrError::Model(Box::new(e)))?;
            let out = self
                .callable
                .call1(py, (arg,))
                .map_err(|e| LfrError::Model(Box::new(e)))?;
            let out = out.bind(py);
            match out.extract::<PyTensor>() {
                Ok(t) => Ok(t.0),
                Err(_) => Err(LfrError::InvalidType(format!(
                    "model must return a torch.Tensor of logits, got {}",
                    out.get_type()
                ))),
            }
        })
    }
}
