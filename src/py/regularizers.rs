//! Bindings of the regularizer kernels (`src/regularizers/`): the gradient-norm
//! penalty, the LFR inner maximization and the TRADES / LLR inner maximizations.
use crate::py::args;
use crate::py::call::{run_kernel, run_kernel_in_any_mode, run_labelled, run_unlabelled, IntoPython, Mode};
use crate::py::tensor::PyTensor;
use crate::regularizers::{flatness_grad, grad_norm_penalty, lfr_perturb, llr_perturb, trades_perturb, LlrParams, TradesParams};
use pyo3::prelude::*;

/// Fused gradient-norm penalty ``||d_x CE(model(x_i), y_i)||_p`` per sample.
///
/// First-order defense of Simon-Gabriel et al. (2019, https://arxiv.org/abs/1802.01421);
/// evaluated at the LFR point ``x'`` it is the regularizer of eq. (4) of
/// Local Flatness Regularization. One call does the forward pass, the input
/// gradient with its graph kept (double backprop) and the norm, so the result
/// is differentiable with respect to the model's parameters.
///
/// Parameters
/// ----------
/// model : callable
///     Maps inputs to ``(N, C)`` logits.
/// inputs : torch.Tensor
///     Batch in [0, 1], shape ``(N, ...)``.
/// labels : torch.Tensor
///     ``(N,)`` integer labels.
/// p : {1, 2, inf}, default 1
///
/// Shape
/// -----
/// inputs ``(N, ...)``, labels ``(N,)``, returns ``(N,)``.
///
/// Returns
/// -------
/// torch.Tensor
///     Per-sample gradient norms; ``(ce + lam * pen.mean()).backward()`` trains.
#[pyfunction]
#[pyo3(name = "grad_norm_penalty", signature = (model, inputs, labels, *, p = 1.0))]
pub fn py_grad_norm_penalty(py: Python<'_>, model: &Bound<'_, PyAny>, inputs: PyTensor, labels: PyTensor, p: f64) -> PyResult<PyObject> {
    run_kernel_in_any_mode(py, model, inputs, labels, move |m, x, y| grad_norm_penalty(m, x, y, p))
}

/// Defines a binding with the keywords of `lfr_perturb` (which
/// `local_flatness` shares), stating their defaults once; `$params` is the
/// parsed [`LfrParams`](crate::regularizers::LfrParams).
macro_rules! lfr_binding {
    ($(#[$doc:meta])* $name:literal fn $rust:ident($py:ident, $model:ident, $inputs:ident, $labels:ident, $params:ident) -> $ret:ty $body:block) => {
        $(#[$doc])*
        #[pyfunction]
        #[pyo3(name = $name, signature = (model, inputs, labels, *, eps, alpha, steps = 10, random_start = true, start = "uniform", start_std = 0.001, hvp = "exact", fd_step = 0.01))]
        #[allow(clippy::too_many_arguments)]
        pub fn $rust(
            $py: Python<'_>,
            $model: &Bound<'_, PyAny>,
            $inputs: PyTensor,
            $labels: PyTensor,
            eps: f64,
            alpha: f64,
            steps: i64,
            random_start: bool,
            start: &str,
            start_std: f64,
            hvp: &str,
            fd_step: f64,
        ) -> PyResult<$ret> {
            let $params = args::lfr_params(eps, alpha, steps, random_start, start, start_std, hvp, fd_step)?;
            $body
        }
    };
}

lfr_binding! {
    /// LFR inner maximization, eq. (3): ``argmax_{x' in B_inf(x, eps)} ||d_x L(x')||_1``.
    ///
    /// Projected sign ascent along ``H(x') sign(g(x'))``, the gradient of the local
    /// flatness, computed exactly by double backprop (``hvp="exact"``) or by the
    /// forward difference ``(g(x' + h sign(g)) - g(x')) / h`` (``hvp="fd"``, two
    /// plain forward/backward passes, ``h = fd_step``). Local Flatness
    /// Regularization: Xu, Li, Jiang, Xia, "Adversarial Defense via Local Flatness Regularization".
    ///
    /// Parameters
    /// ----------
    /// model : callable
    /// inputs : torch.Tensor
    ///     Batch in [0, 1], shape ``(N, ...)``.
    /// labels : torch.Tensor
    ///     ``(N,)`` integer labels.
    /// eps : float
    /// alpha : float
    /// steps : int, default 10
    /// random_start : bool, default True
    ///     ``False`` starts the ascent at ``x``.
    /// start : {"uniform", "normal"}, default "uniform"
    ///     The random start: uniform in the eps-ball (Madry et al.), or
    ///     ``clamp(x + start_std * N(0, I), 0, 1)`` as the authors' ``LFR_loss.py``
    ///     (TRADES' start); both then clipped to [0, 1].
    /// start_std : float, default 0.001
    ///     Standard deviation of the ``"normal"`` start.
    /// hvp : {"exact", "fd"}, default "exact"
    /// fd_step : float, default 0.01
    ///
    /// Shape
    /// -----
    /// inputs ``(N, ...)``, labels ``(N,)``, returns ``(N, ...)``.
    ///
    /// Returns
    /// -------
    /// torch.Tensor
    ///     ``x'``, detached, in the eps-ball and in [0, 1].
    "lfr_perturb" fn py_lfr_perturb(py, model, inputs, labels, params) -> PyObject {
        run_kernel(py, model, inputs, labels, move |m, x, y| Ok(lfr_perturb(m, x, y, params, false)?.0))
    }
}

lfr_binding! {
    /// Local flatness ``gamma_C(x, eps)`` of Definition 1, with the maximizer.
    ///
    /// Runs :func:`lfr_perturb` and returns ``(x', ||d_x L(x')||_1)``; the second
    /// value is the achieved (lower-bound) estimate of
    /// ``max_{x' in B_inf(x, eps)} ||d_x L(x')||_1`` per sample.
    ///
    /// Parameters
    /// ----------
    /// Same as :func:`lfr_perturb`.
    ///
    /// Shape
    /// -----
    /// inputs ``(N, ...)``, labels ``(N,)``; returns ``(N, ...)`` and ``(N,)``.
    ///
    /// Returns
    /// -------
    /// tuple of torch.Tensor
    "local_flatness" fn py_local_flatness(py, model, inputs, labels, params) -> (PyObject, PyObject) {
        let (adv, gamma) = run_labelled(py, Mode::Eval, model, inputs, labels, move |m, x, y| lfr_perturb(m, x, y, params, true))?;
        let gamma = gamma.ok_or_else(|| pyo3::exceptions::PyRuntimeError::new_err("no flatness returned"))?;
        (adv, gamma).into_python(py)
    }
}

/// Gradient of the local flatness ``||d_x L(x)||_1`` with respect to ``x``.
///
/// ``H(x) sign(g(x))`` per sample: the ascent direction of :func:`lfr_perturb`,
/// exact (double backprop) or by forward finite difference.
///
/// Parameters
/// ----------
/// model : callable
/// inputs : torch.Tensor
/// labels : torch.Tensor
/// hvp : {"exact", "fd"}, default "exact"
/// fd_step : float, default 0.01
///
/// Shape
/// -----
/// inputs ``(N, ...)``, labels ``(N,)``, returns ``(N, ...)``.
///
/// Returns
/// -------
/// torch.Tensor
#[pyfunction]
#[pyo3(name = "flatness_grad", signature = (model, inputs, labels, *, hvp = "exact", fd_step = 0.01))]
pub fn py_flatness_grad(py: Python<'_>, model: &Bound<'_, PyAny>, inputs: PyTensor, labels: PyTensor, hvp: &str, fd_step: f64) -> PyResult<PyObject> {
    let hvp = args::hvp(hvp, fd_step)?;
    run_kernel(py, model, inputs, labels, move |m, x, y| flatness_grad(m, x, y, hvp))
}

/// TRADES inner maximization (Zhang et al., 2019, https://arxiv.org/abs/1901.08573).
///
/// As the official ``trades_loss``: start at ``x + 0.001 * randn``, ascend
/// ``KL(softmax(f(x)) || softmax(f(x_adv)))`` with sign steps of ``alpha``,
/// project to ``[x - eps, x + eps]`` and then [0, 1].
///
/// Parameters
/// ----------
/// model : callable
/// inputs : torch.Tensor
///     Batch in [0, 1], shape ``(N, ...)``.
/// eps : float
/// alpha : float
/// steps : int, default 10
///
/// Shape
/// -----
/// inputs ``(N, ...)``, returns ``(N, ...)``.
///
/// Returns
/// -------
/// torch.Tensor
#[pyfunction]
#[pyo3(name = "trades_perturb", signature = (model, inputs, *, eps, alpha, steps = 10))]
pub fn py_trades_perturb(py: Python<'_>, model: &Bound<'_, PyAny>, inputs: PyTensor, eps: f64, alpha: f64, steps: i64) -> PyResult<PyObject> {
    run_unlabelled(py, model, inputs, move |m, x| trades_perturb(m, x, TradesParams { eps, alpha, steps }))
}

/// LLR inner maximization (Qin et al., 2019, https://arxiv.org/abs/1907.02610).
///
/// Maximizes the local linearity error
/// ``gamma(x, delta) = |L(x + delta) - L(x) - delta^T grad_x L(x)|`` over the
/// L-inf ball (and [0, 1]) by projected sign ascent; returns ``x + delta``.
/// As in the paper, ``delta`` starts uniformly at random in the ball: at
/// ``delta = 0`` the error and its gradient vanish, so with
/// ``random_start=False`` the ascent stays at ``x``.
///
/// Parameters
/// ----------
/// model : callable
/// inputs : torch.Tensor
///     Batch in [0, 1], shape ``(N, ...)``.
/// labels : torch.Tensor
///     ``(N,)`` integer labels.
/// eps : float
/// alpha : float
/// steps : int, default 10
/// random_start : bool, default True
///
/// Shape
/// -----
/// inputs ``(N, ...)``, labels ``(N,)``, returns ``(N, ...)``.
///
/// Returns
/// -------
/// torch.Tensor
#[pyfunction]
#[pyo3(name = "llr_perturb", signature = (model, inputs, labels, *, eps, alpha, steps = 10, random_start = true))]
#[allow(clippy::too_many_arguments)]
pub fn py_llr_perturb(
    py: Python<'_>,
    model: &Bound<'_, PyAny>,
    inputs: PyTensor,
    labels: PyTensor,
    eps: f64,
    alpha: f64,
    steps: i64,
    random_start: bool,
) -> PyResult<PyObject> {
    let p = LlrParams { eps, alpha, steps, random_start };
    run_kernel(py, model, inputs, labels, move |m, x, y| llr_perturb(m, x, y, p))
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(py_grad_norm_penalty, m)?)?;
    m.add_function(wrap_pyfunction!(py_lfr_perturb, m)?)?;
    m.add_function(wrap_pyfunction!(py_local_flatness, m)?)?;
    m.add_function(wrap_pyfunction!(py_flatness_grad, m)?)?;
    m.add_function(wrap_pyfunction!(py_trades_perturb, m)?)?;
    m.add_function(wrap_pyfunction!(py_llr_perturb, m)?)?;
    Ok(())
}
