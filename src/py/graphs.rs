//! Bindings of the capture-safe kernel bodies (FGSM, PGD, MI-FGSM, APGD, the
//! LFR, TRADES and LLR inner maximizations, the gradient-norm penalty) that `lfr_rs.graphs`
//! and the captured training step capture into CUDA graphs, and of the
//! per-batch checks made outside the graph.
use crate::attacks::fgsm::{fgsm_fixed, FgsmParams};
use crate::attacks::mifgsm::{mifgsm_fixed, MifgsmParams};
use crate::attacks::pgd_fixed::{check_batch_for, check_labels_for, pgd_fixed};
use crate::eval::apgd::fixed::apgd_fixed;
use crate::py::args;
use crate::py::call::{run_kernel_in_any_mode, run_unlabelled};
use crate::py::model::{warn_if_training, with_autocast};
use crate::py::tensor::{to_py, PyTensor};
use crate::regularizers::{grad_norm_penalty_fixed, lfr_perturb_fixed, llr_perturb_fixed, trades_perturb_fixed, LlrParams, TradesParams};
use pyo3::prelude::*;
use pyo3::types::PyDict;

/// The keyword arguments a binding hands to `lfr_rs.graphs` for `graph=True`:
/// `graph_kwargs!(py; eps, alpha)` is `{"eps": eps, "alpha": alpha}`.
macro_rules! graph_kwargs {
    ($py:expr; $($name:ident),* $(,)?) => {{
        let kwargs = pyo3::types::PyDict::new($py);
        $(kwargs.set_item(stringify!($name), $name)?;)*
        kwargs
    }};
}
pub(crate) use graph_kwargs;

/// A binding's `graph=True`: the train-mode warning the eager binding gives
/// (pointing at the caller), then the call handed to `lfr_rs.graphs.<name>`
/// with the binding's keyword arguments.
pub fn dispatch<'py>(model: &Bound<'py, PyAny>, name: &str, inputs: &PyTensor, labels: &PyTensor, kwargs: &Bound<'py, PyDict>) -> PyResult<PyObject> {
    let py = model.py();
    warn_if_training(model)?;
    let args = (model, to_py(py, &inputs.0)?, to_py(py, &labels.0)?);
    Ok(py.import("lfr_rs.graphs")?.getattr(name)?.call(args, Some(kwargs))?.unbind())
}

/// The checks the eager kernels make of a batch, made once before a graph
/// replays on it: labels integer, ``(N,)``, on the inputs' device, in
/// ``[0, classes)``; with ``inputs_in_unit_box`` (the attacks' and the
/// defenses' steps) inputs floating point, finite, in [0, 1] too, without it
/// (Standard training, whose inputs may be standardised) the labels only.
/// Returns the labels as ``torch.int64``.
#[pyfunction]
#[pyo3(name = "_check_batch", signature = (inputs, labels, classes, *, inputs_in_unit_box = true))]
pub fn py_check_batch(py: Python<'_>, inputs: PyTensor, labels: PyTensor, classes: i64, inputs_in_unit_box: bool) -> PyResult<PyObject> {
    let (x, y) = (inputs.0, labels.0);
    let check = if inputs_in_unit_box { check_batch_for } else { check_labels_for };
    let labels = py.allow_threads(move || check(&x, &y, classes))?;
    to_py(py, &labels)
}

/// PGD's capture-safe body (``src/attacks/pgd_fixed.rs``): no host
/// synchronization, one restart, early stopping as masking. The caller has
/// checked the batch with ``_check_batch``. Returns ``(adversarial, finite)``,
/// ``finite`` a 0-d bool tensor, false when the model returned NaN or inf.
#[pyfunction]
#[pyo3(name = "_pgd_fixed", signature = (model, inputs, labels, *, eps, alpha, steps, random_start, norm, loss, targeted, keep_best, autocast = None))]
#[allow(clippy::too_many_arguments)]
pub fn py_pgd_fixed(
    py: Python<'_>,
    model: &Bound<'_, PyAny>,
    inputs: PyTensor,
    labels: PyTensor,
    eps: f64,
    alpha: f64,
    steps: i64,
    random_start: bool,
    norm: &str,
    loss: &str,
    targeted: bool,
    keep_best: bool,
    autocast: Option<&str>,
) -> PyResult<(PyObject, PyObject)> {
    let p = args::pgd_params(eps, alpha, steps, random_start, norm, loss, targeted, 1, keep_best)?;
    let model = &with_autocast(model, autocast, &inputs)?;
    run_kernel_in_any_mode(py, model, inputs, labels, move |m, x, y| pgd_fixed(m, x, y, p))
}

/// ``lfr_perturb``'s capture-safe body (``src/regularizers/lfr.rs``): the same
/// ascent with no host synchronization, on a batch checked with
/// ``_check_batch``. Returns ``(x', finite)``.
#[pyfunction]
#[pyo3(name = "_lfr_perturb_fixed", signature = (model, inputs, labels, *, eps, alpha, steps, random_start, start, start_std, hvp, fd_step))]
#[allow(clippy::too_many_arguments)]
pub fn py_lfr_perturb_fixed(
    py: Python<'_>,
    model: &Bound<'_, PyAny>,
    inputs: PyTensor,
    labels: PyTensor,
    eps: f64,
    alpha: f64,
    steps: i64,
    random_start: bool,
    start: &str,
    start_std: f64,
    hvp: &str,
    fd_step: f64,
) -> PyResult<(PyObject, PyObject)> {
    let p = args::lfr_params(eps, alpha, steps, random_start, start, start_std, hvp, fd_step)?;
    run_kernel_in_any_mode(py, model, inputs, labels, move |m, x, y| lfr_perturb_fixed(m, x, y, p))
}

/// APGD's capture-safe body (``src/eval/apgd/fixed.rs``): every run over the
/// whole batch with masks for the points still robust, no host
/// synchronization, on a batch checked with ``_check_batch``. Returns
/// ``(adversarial, finite)``.
#[pyfunction]
#[pyo3(name = "_apgd_fixed", signature = (model, inputs, labels, *, eps, steps, norm, loss, targeted, n_target_classes, restarts, rho, autocast = None))]
#[allow(clippy::too_many_arguments)]
pub fn py_apgd_fixed(
    py: Python<'_>,
    model: &Bound<'_, PyAny>,
    inputs: PyTensor,
    labels: PyTensor,
    eps: f64,
    steps: i64,
    norm: &str,
    loss: &str,
    targeted: bool,
    n_target_classes: i64,
    restarts: i64,
    rho: f64,
    autocast: Option<&str>,
) -> PyResult<(PyObject, PyObject)> {
    let p = args::apgd_params(eps, steps, norm, loss, targeted, n_target_classes, restarts, rho)?;
    let model = &with_autocast(model, autocast, &inputs)?;
    run_kernel_in_any_mode(py, model, inputs, labels, move |m, x, y| apgd_fixed(m, x, y, p))
}

/// MI-FGSM's capture-safe body (``src/attacks/mifgsm.rs``), on a batch
/// checked with ``_check_batch``. Returns ``(adversarial, finite)``.
#[pyfunction]
#[pyo3(name = "_mifgsm_fixed", signature = (model, inputs, labels, *, eps, alpha, steps, decay, targeted, autocast = None))]
#[allow(clippy::too_many_arguments)]
pub fn py_mifgsm_fixed(
    py: Python<'_>,
    model: &Bound<'_, PyAny>,
    inputs: PyTensor,
    labels: PyTensor,
    eps: f64,
    alpha: f64,
    steps: i64,
    decay: f64,
    targeted: bool,
    autocast: Option<&str>,
) -> PyResult<(PyObject, PyObject)> {
    let p = MifgsmParams { eps, alpha, steps, decay, targeted };
    let model = &with_autocast(model, autocast, &inputs)?;
    run_kernel_in_any_mode(py, model, inputs, labels, move |m, x, y| mifgsm_fixed(m, x, y, p))
}

/// FGSM's capture-safe body (``src/attacks/fgsm.rs``), on a batch checked
/// with ``_check_batch``. Returns ``(adversarial, finite)``.
#[pyfunction]
#[pyo3(name = "_fgsm_fixed", signature = (model, inputs, labels, *, eps, targeted, autocast = None))]
pub fn py_fgsm_fixed(py: Python<'_>, model: &Bound<'_, PyAny>, inputs: PyTensor, labels: PyTensor, eps: f64, targeted: bool, autocast: Option<&str>) -> PyResult<(PyObject, PyObject)> {
    let p = FgsmParams { eps, targeted };
    let model = &with_autocast(model, autocast, &inputs)?;
    run_kernel_in_any_mode(py, model, inputs, labels, move |m, x, y| fgsm_fixed(m, x, y, p))
}

/// The gradient-norm penalty's capture-safe body
/// (``src/regularizers/penalty.rs``), for a captured training step: the
/// same differentiable per-sample norms with no host synchronization, on a
/// batch whose labels the caller checked. Returns ``(norms, finite)``.
#[pyfunction]
#[pyo3(name = "_grad_norm_penalty_fixed", signature = (model, inputs, labels, *, p = 1.0))]
pub fn py_grad_norm_penalty_fixed(py: Python<'_>, model: &Bound<'_, PyAny>, inputs: PyTensor, labels: PyTensor, p: f64) -> PyResult<(PyObject, PyObject)> {
    run_kernel_in_any_mode(py, model, inputs, labels, move |m, x, y| grad_norm_penalty_fixed(m, x, y, p))
}

/// The TRADES inner maximization's capture-safe body
/// (``src/regularizers/trades.rs``), on inputs checked with ``_check_batch``.
/// Returns ``(x', finite)``.
#[pyfunction]
#[pyo3(name = "_trades_perturb_fixed", signature = (model, inputs, *, eps, alpha, steps))]
pub fn py_trades_perturb_fixed(py: Python<'_>, model: &Bound<'_, PyAny>, inputs: PyTensor, eps: f64, alpha: f64, steps: i64) -> PyResult<(PyObject, PyObject)> {
    run_unlabelled(py, model, inputs, move |m, x| trades_perturb_fixed(m, x, TradesParams { eps, alpha, steps }))
}

/// The LLR inner maximization's capture-safe body
/// (``src/regularizers/llr.rs``), on a batch checked with ``_check_batch``.
/// Returns ``(x', finite)``.
#[pyfunction]
#[pyo3(name = "_llr_perturb_fixed", signature = (model, inputs, labels, *, eps, alpha, steps, random_start))]
#[allow(clippy::too_many_arguments)]
pub fn py_llr_perturb_fixed(
    py: Python<'_>,
    model: &Bound<'_, PyAny>,
    inputs: PyTensor,
    labels: PyTensor,
    eps: f64,
    alpha: f64,
    steps: i64,
    random_start: bool,
) -> PyResult<(PyObject, PyObject)> {
    let p = LlrParams { eps, alpha, steps, random_start };
    run_kernel_in_any_mode(py, model, inputs, labels, move |m, x, y| llr_perturb_fixed(m, x, y, p))
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(py_trades_perturb_fixed, m)?)?;
    m.add_function(wrap_pyfunction!(py_llr_perturb_fixed, m)?)?;
    m.add_function(wrap_pyfunction!(py_fgsm_fixed, m)?)?;
    m.add_function(wrap_pyfunction!(py_grad_norm_penalty_fixed, m)?)?;
    m.add_function(wrap_pyfunction!(py_check_batch, m)?)?;
    m.add_function(wrap_pyfunction!(py_pgd_fixed, m)?)?;
    m.add_function(wrap_pyfunction!(py_lfr_perturb_fixed, m)?)?;
    m.add_function(wrap_pyfunction!(py_apgd_fixed, m)?)?;
    m.add_function(wrap_pyfunction!(py_mifgsm_fixed, m)?)?;
    Ok(())
}
