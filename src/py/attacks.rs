//! Bindings of the gradient attacks (`src/attacks/`): `fgsm`, `pgd`, `mifgsm`, `ddn`.
use crate::attacks::ddn::{ddn, DdnParams};
use crate::attacks::fgsm::{fgsm, FgsmParams};
use crate::attacks::mifgsm::{mifgsm, MifgsmParams};
use crate::attacks::pgd::pgd;
use crate::py::args;
use crate::py::call::run_kernel;
use crate::py::graphs::{self, graph_kwargs};
use crate::py::model::with_autocast;
use crate::py::tensor::PyTensor;
use pyo3::prelude::*;

/// Fast Gradient Sign Method (Goodfellow et al., 2015, https://arxiv.org/abs/1412.6572).
///
/// ``x_adv = clamp(x + eps * sign(grad_x CE(model(x), y)), 0, 1)``; with
/// ``targeted=True`` the step descends the loss of the target labels ``y``.
///
/// Parameters
/// ----------
/// model : callable
///     A ``torch.nn.Module`` (or function) mapping inputs to ``(N, C)`` logits.
///     Its train/eval mode is left as it is.
/// inputs : torch.Tensor
///     Batch in [0, 1], floating point, any shape ``(N, ...)``.
/// labels : torch.Tensor
///     ``(N,)`` integer class indices (targets when ``targeted``).
/// eps : float
///     L-inf budget.
/// targeted : bool, default False
/// autocast : {None, "bf16", "fp16"}, default None
///     Run the model's forward under ``torch.autocast`` with this dtype (the
///     logits come back float32); the iterate, projection and loss stay
///     float32 (:mod:`lfr_rs.precision`).
/// graph : bool, default False
///     On CUDA inputs, capture the step (forward, backward, sign step) into a
///     CUDA graph on the first call per batch shape and replay it on later
///     calls (:mod:`lfr_rs.graphs`); warns and runs eagerly elsewhere.
///
/// Shape
/// -----
/// inputs ``(N, ...)``, labels ``(N,)``, returns ``(N, ...)``.
///
/// Returns
/// -------
/// torch.Tensor
///     New detached adversarial batch with the inputs' shape, dtype and device.
#[pyfunction]
#[pyo3(name = "fgsm", signature = (model, inputs, labels, *, eps, targeted = false, autocast = None, graph = false))]
#[allow(clippy::too_many_arguments)]
pub fn py_fgsm(py: Python<'_>, model: &Bound<'_, PyAny>, inputs: PyTensor, labels: PyTensor, eps: f64, targeted: bool, autocast: Option<&str>, graph: bool) -> PyResult<PyObject> {
    if graph {
        return graphs::dispatch(model, "fgsm", &inputs, &labels, &graph_kwargs!(py; eps, targeted, autocast));
    }
    let p = FgsmParams { eps, targeted };
    let model = &with_autocast(model, autocast, &inputs)?;
    run_kernel(py, model, inputs, labels, move |m, x, y| fgsm(m, x, y, p))
}

/// Projected Gradient Descent (Madry et al., 2018, https://arxiv.org/abs/1706.06083).
///
/// ``x_{t+1} = P(x_t + alpha * d_t)`` with ``d_t = sign(g_t)`` (``norm="linf"``) or
/// ``g_t / ||g_t||_2`` (``norm="l2"``), where ``P`` projects onto the eps-ball
/// around ``x`` and then onto [0, 1] (torchattacks 3.5.1's order and arithmetic).
///
/// Parameters
/// ----------
/// model : callable
///     Maps inputs to ``(N, C)`` logits; its train/eval mode is left as it is.
/// inputs : torch.Tensor
///     Batch in [0, 1], shape ``(N, ...)``.
/// labels : torch.Tensor
///     ``(N,)`` integer labels (targets when ``targeted``).
/// eps : float
///     Radius of the threat ball.
/// alpha : float
///     Step size.
/// steps : int, default 10
/// random_start : bool, default True
///     Start from a uniform (L-inf) or radial (L2) random point of the ball,
///     drawn from torch's default generator (``torch.manual_seed`` repeats it).
/// norm : {"linf", "l2"}, default "linf"
/// loss : {"ce", "margin"}, default "ce"
///     Cross-entropy or the Carlini-Wagner logit margin.
/// targeted : bool, default False
/// restarts : int, default 1
///     Extra random restarts run only on samples not yet fooled.
/// keep_best : bool, default False
///     Return per sample the first iterate that fools the model (else the
///     highest-loss one) and stop spending passes on fooled samples; the
///     fast way to measure robust accuracy.
/// autocast : {None, "bf16", "fp16"}, default None
///     Run the model's forward under ``torch.autocast`` with this dtype (the
///     logits come back float32); the iterate, projection and loss stay
///     float32 (:mod:`lfr_rs.precision`).
/// graph : bool, default False
///     On CUDA inputs, capture the whole attack into a CUDA graph on the
///     first call per batch shape and replay it on later calls
///     (:mod:`lfr_rs.graphs`: one restart, early stopping as masking, the
///     eager result to float32 rounding); warns and runs eagerly elsewhere.
///
/// Shape
/// -----
/// inputs ``(N, ...)``, labels ``(N,)``, returns ``(N, ...)``.
///
/// Returns
/// -------
/// torch.Tensor
///     New detached adversarial batch (inputs' shape, dtype and device).
#[pyfunction]
#[pyo3(name = "pgd", signature = (model, inputs, labels, *, eps, alpha, steps = 10, random_start = true, norm = "linf", loss = "ce", targeted = false, restarts = 1, keep_best = false, autocast = None, graph = false))]
#[allow(clippy::too_many_arguments)]
pub fn py_pgd(
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
    restarts: i64,
    keep_best: bool,
    autocast: Option<&str>,
    graph: bool,
) -> PyResult<PyObject> {
    if graph {
        return graphs::dispatch(model, "pgd", &inputs, &labels, &graph_kwargs!(py; eps, alpha, steps, random_start, norm, loss, targeted, restarts, keep_best, autocast));
    }
    let p = args::pgd_params(eps, alpha, steps, random_start, norm, loss, targeted, restarts, keep_best)?;
    let model = &with_autocast(model, autocast, &inputs)?;
    run_kernel(py, model, inputs, labels, move |m, x, y| pgd(m, x, y, p))
}

/// Momentum Iterative FGSM (Dong et al., 2018, https://arxiv.org/abs/1710.06081).
///
/// ``g_t = grad_t / mean(|grad_t|) + decay * g_{t-1}``,
/// ``x_{t+1} = P(x_t + alpha * sign(g_t))`` (L-inf ball, then [0, 1]), as
/// torchattacks 3.5.1; an all-zero gradient is left at zero instead of NaN.
///
/// Parameters
/// ----------
/// model : callable
/// inputs : torch.Tensor
///     Batch in [0, 1], shape ``(N, ...)``.
/// labels : torch.Tensor
///     ``(N,)`` integer labels (targets when ``targeted``).
/// eps : float
/// alpha : float
/// steps : int, default 10
/// decay : float, default 1.0
/// targeted : bool, default False
/// autocast : {None, "bf16", "fp16"}, default None
///     Run the model's forward under ``torch.autocast`` with this dtype (the
///     logits come back float32); the iterate, projection and loss stay
///     float32 (:mod:`lfr_rs.precision`).
/// graph : bool, default False
///     On CUDA inputs, capture all steps into a CUDA graph on the first call
///     per batch shape and replay it on later calls (:mod:`lfr_rs.graphs`);
///     warns and runs eagerly elsewhere.
///
/// Shape
/// -----
/// inputs ``(N, ...)``, labels ``(N,)``, returns ``(N, ...)``.
///
/// Returns
/// -------
/// torch.Tensor
#[pyfunction]
#[pyo3(name = "mifgsm", signature = (model, inputs, labels, *, eps, alpha, steps = 10, decay = 1.0, targeted = false, autocast = None, graph = false))]
#[allow(clippy::too_many_arguments)]
pub fn py_mifgsm(
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
    graph: bool,
) -> PyResult<PyObject> {
    if graph {
        return graphs::dispatch(model, "mifgsm", &inputs, &labels, &graph_kwargs!(py; eps, alpha, steps, decay, targeted, autocast));
    }
    let p = MifgsmParams { eps, alpha, steps, decay, targeted };
    let model = &with_autocast(model, autocast, &inputs)?;
    run_kernel(py, model, inputs, labels, move |m, x, y| mifgsm(m, x, y, p))
}

/// Decoupled Direction and Norm attack (Rony et al., 2019, https://arxiv.org/abs/1811.09600).
///
/// Minimal-L2 attack: each step moves along the unit-L2 loss gradient with a
/// cosine-annealed step (1 to 0.01), rescales the perturbation to a norm that
/// shrinks by ``1 - gamma`` while adversarial and grows by ``1 + gamma``
/// otherwise, projects to [0, 1] and quantizes to ``levels`` grey levels.
///
/// Parameters
/// ----------
/// model : callable
/// inputs : torch.Tensor
///     Batch in [0, 1], shape ``(N, ...)``.
/// labels : torch.Tensor
///     ``(N,)`` integer labels (targets when ``targeted``).
/// steps : int, default 100
/// gamma : float, default 0.05
/// init_norm : float, default 1.0
/// levels : int or None, default 256
///     Quantization levels; ``None`` disables quantization.
/// targeted : bool, default False
/// autocast : {None, "bf16", "fp16"}, default None
///     Run the model's forward under ``torch.autocast`` with this dtype (the
///     logits come back float32); the iterate, projection and loss stay
///     float32 (:mod:`lfr_rs.precision`).
///
/// Shape
/// -----
/// inputs ``(N, ...)``, labels ``(N,)``, returns ``(N, ...)``.
///
/// Returns
/// -------
/// torch.Tensor
///     Per sample the smallest-L2 adversarial found, or the input itself
///     where none was found.
#[pyfunction]
#[pyo3(
    name = "ddn",
    signature = (model, inputs, labels, *, steps = 100, gamma = 0.05, init_norm = 1.0, levels = Some(256), targeted = false, autocast = None),
    text_signature = "(model, inputs, labels, *, steps=100, gamma=0.05, init_norm=1.0, levels=256, targeted=False, autocast=None)"
)]
#[allow(clippy::too_many_arguments)]
pub fn py_ddn(
    py: Python<'_>,
    model: &Bound<'_, PyAny>,
    inputs: PyTensor,
    labels: PyTensor,
    steps: i64,
    gamma: f64,
    init_norm: f64,
    levels: Option<i64>,
    targeted: bool,
    autocast: Option<&str>,
) -> PyResult<PyObject> {
    let p = DdnParams { steps, gamma, init_norm, levels, targeted };
    let model = &with_autocast(model, autocast, &inputs)?;
    run_kernel(py, model, inputs, labels, move |m, x, y| ddn(m, x, y, p))
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(py_fgsm, m)?)?;
    m.add_function(wrap_pyfunction!(py_pgd, m)?)?;
    m.add_function(wrap_pyfunction!(py_mifgsm, m)?)?;
    m.add_function(wrap_pyfunction!(py_ddn, m)?)?;
    Ok(())
}
