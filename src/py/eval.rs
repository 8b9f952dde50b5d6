//! Bindings of the evaluation kernels (`src/eval/`): `apgd`, `fab`, `square`.
use crate::eval::{apgd, fab, square, FabParams, SquareParams};
use crate::py::args;
use crate::py::call::run_kernel;
use crate::py::graphs::{self, graph_kwargs};
use crate::py::model::with_autocast;
use crate::py::tensor::PyTensor;
use pyo3::prelude::*;

/// Auto-PGD (Croce & Hein, 2020, https://arxiv.org/abs/2003.01690), the
/// gradient attack of AutoAttack; ``targeted=True`` is APGD-T.
///
/// From a random point of the eps-ball, momentum steps (0.75) of size
/// ``eta``, starting at ``2 * eps`` and halved per sample at checkpoints
/// (after 22%, then every 3% fewer, at least 6% of ``steps``) when the loss
/// rose in at most ``rho`` of the steps since the last checkpoint or the best
/// loss stalled; the sample then restarts from its highest-loss point.
/// Arithmetic and random draws follow torchattacks 3.5.1 (``APGD``, ``APGDT``),
/// so ``torch.manual_seed(s)`` before the call reproduces their starting
/// points. Samples the model misclassifies are left as they are, and a sample
/// costs no more passes once an iterate fools the model.
///
/// Parameters
/// ----------
/// model : callable
///     Maps inputs to ``(N, C)`` logits; its train/eval mode is left as it is.
/// inputs : torch.Tensor
///     Batch in [0, 1], shape ``(N, ...)``.
/// labels : torch.Tensor
///     ``(N,)`` true labels, also with ``targeted=True`` (APGD-T picks its
///     targets itself).
/// eps : float
///     Radius of the threat ball.
/// steps : int, default 100
///     Iterations per run.
/// norm : {"linf", "l2"}, default "linf"
/// loss : {"ce", "dlr"}, default "ce"
///     Cross-entropy or the Difference of Logits Ratio (eq. 5; targeted: eq. 6,
///     which needs 4 classes).
/// targeted : bool, default False
///     APGD-T: one run per target class, the ``n_target_classes`` classes the
///     model ranks highest on the clean input after its top one, each run only
///     on the points still robust.
/// n_target_classes : int, default 9
/// restarts : int, default 1
///     Random restarts (per target), each only on the points still robust.
/// rho : float, default 0.75
///     Step-size halving threshold.
/// autocast : {None, "bf16", "fp16"}, default None
///     Run the model's forward under ``torch.autocast`` with this dtype (the
///     logits come back float32); the iterate, projection and loss stay
///     float32 (:mod:`lfr_rs.precision`).
/// graph : bool, default False
///     On CUDA inputs, capture the whole attack (every target and restart,
///     over the whole batch with masks for the points still robust) into a
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
///     Per sample the first iterate that fooled the model, or the input where
///     none did (new, detached; inputs' shape, dtype and device).
#[pyfunction]
#[pyo3(name = "apgd", signature = (model, inputs, labels, *, eps, steps = 100, norm = "linf", loss = "ce", targeted = false, n_target_classes = 9, restarts = 1, rho = 0.75, autocast = None, graph = false))]
#[allow(clippy::too_many_arguments)]
pub fn py_apgd(
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
    graph: bool,
) -> PyResult<PyObject> {
    if graph {
        return graphs::dispatch(model, "apgd", &inputs, &labels, &graph_kwargs!(py; eps, steps, norm, loss, targeted, n_target_classes, restarts, rho, autocast));
    }
    let p = args::apgd_params(eps, steps, norm, loss, targeted, n_target_classes, restarts, rho)?;
    let model = &with_autocast(model, autocast, &inputs)?;
    run_kernel(py, model, inputs, labels, move |m, x, y| apgd(m, x, y, p))
}

/// Fast Adaptive Boundary attack, L-inf (Croce & Hein, 2020,
/// https://arxiv.org/abs/1907.02044); ``targeted=True`` is FAB-T, AutoAttack's
/// ``fab-t``.
///
/// Each step linearizes the model at the iterate, takes the closest decision
/// boundary (FAB-T: the target's), projects both the iterate and the original
/// point onto it within [0, 1], and moves to a mix of the two projections
/// (overshoot ``eta``, weight of the original point at most ``alpha_max``);
/// a misclassified iterate is pulled back towards the original point by
/// ``beta``. The projection, the arithmetic and the random starts of later
/// restarts (torch's default generator, so ``torch.manual_seed`` repeats a
/// run) follow torchattacks 3.5.1's ``FAB`` (AutoAttack's ``fab_pt.py``).
/// Untargeted FAB differentiates every logit (``C`` backward passes per step),
/// FAB-T one difference. FAB minimises the distance, but here a sample stops,
/// with no more passes, at its first misclassified iterate within ``eps``,
/// which is returned (torchattacks returns the nearest iterate of the run;
/// both fool the same samples). Samples the model misclassifies are left as
/// they are.
///
/// Parameters
/// ----------
/// model : callable
///     Maps inputs to ``(N, C)`` logits; its train/eval mode is left as it is.
/// inputs : torch.Tensor
///     Batch in [0, 1], shape ``(N, ...)``.
/// labels : torch.Tensor
///     ``(N,)`` true labels, also with ``targeted=True`` (FAB-T picks its
///     targets itself).
/// eps : float
///     L-inf radius within which an adversarial point counts.
/// steps : int, default 10
///     Iterations per run (AutoAttack's ``fab-t`` runs 100).
/// restarts : int, default 1
///     Runs (per target), each only on the points still robust; the first
///     starts at the input, the others at a random point on the surface of
///     the L-inf ball of radius ``eps / 2`` (clipped to [0, 1]).
/// alpha_max : float, default 0.1
///     Largest weight of the step from the original point, in [0, 1].
/// eta : float, default 1.05
///     Overshoot of the projections (> 0).
/// beta : float, default 0.9
///     Backward step after a success, in (0, 1].
/// targeted : bool, default False
///     FAB-T: one run per target class, the ``n_target_classes`` classes the
///     model ranks highest on the clean input after its top one, each run only
///     on the points still robust; success is any misclassification, as in
///     AutoAttack.
/// n_target_classes : int, default 9
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
///     Per sample the first iterate within ``eps`` that fooled the model, or
///     the input where none did (new, detached; inputs' shape, dtype and
///     device).
#[pyfunction]
#[pyo3(name = "fab", signature = (model, inputs, labels, *, eps, steps = 10, restarts = 1, alpha_max = 0.1, eta = 1.05, beta = 0.9, targeted = false, n_target_classes = 9, autocast = None))]
#[allow(clippy::too_many_arguments)]
pub fn py_fab(
    py: Python<'_>,
    model: &Bound<'_, PyAny>,
    inputs: PyTensor,
    labels: PyTensor,
    eps: f64,
    steps: i64,
    restarts: i64,
    alpha_max: f64,
    eta: f64,
    beta: f64,
    targeted: bool,
    n_target_classes: i64,
    autocast: Option<&str>,
) -> PyResult<PyObject> {
    let p = FabParams { eps, steps, restarts, alpha_max, eta, beta, targeted, n_target_classes };
    let model = &with_autocast(model, autocast, &inputs)?;
    run_kernel(py, model, inputs, labels, move |m, x, y| fab(m, x, y, p))
}

/// Square Attack, L-inf (Andriushchenko et al., 2020, https://arxiv.org/abs/1912.00049).
///
/// Score-based random search with forward passes only: from vertical stripes
/// of ``+-eps``, each query changes one square window (the same for the whole
/// batch; its area shrinks on AutoAttack's ``p`` schedule from ``p_init``) by
/// ``+-2 eps`` per channel, clipped to the eps-ball and [0, 1], and keeps it
/// where it lowers the margin ``z_y - max_{j != y} z_j``. Draws and arithmetic
/// follow torchattacks 3.5.1's ``Square``. A sample stops querying once fooled.
///
/// Parameters
/// ----------
/// model : callable
/// inputs : torch.Tensor
///     Images in [0, 1], shape ``(N, C, H, W)``.
/// labels : torch.Tensor
///     ``(N,)`` true labels.
/// eps : float
///     L-inf radius.
/// queries : int, default 5000
///     Iterations (one forward pass per still-robust sample each).
/// p_init : float, default 0.8
///     Initial fraction of pixels in the window.
/// restarts : int, default 1
///     Runs, each only on the points still robust.
/// autocast : {None, "bf16", "fp16"}, default None
///     Run the model's forward under ``torch.autocast`` with this dtype (the
///     logits come back float32); the iterate, projection and loss stay
///     float32 (:mod:`lfr_rs.precision`).
///
/// Shape
/// -----
/// inputs ``(N, C, H, W)``, labels ``(N,)``, returns ``(N, C, H, W)``.
///
/// Returns
/// -------
/// torch.Tensor
///     Per sample the first point found that the model misclassifies, or the
///     input where none was found.
#[pyfunction]
#[pyo3(name = "square", signature = (model, inputs, labels, *, eps, queries = 5000, p_init = 0.8, restarts = 1, autocast = None))]
#[allow(clippy::too_many_arguments)]
pub fn py_square(
    py: Python<'_>,
    model: &Bound<'_, PyAny>,
    inputs: PyTensor,
    labels: PyTensor,
    eps: f64,
    queries: i64,
    p_init: f64,
    restarts: i64,
    autocast: Option<&str>,
) -> PyResult<PyObject> {
    let p = SquareParams { eps, queries, p_init, restarts };
    let model = &with_autocast(model, autocast, &inputs)?;
    run_kernel(py, model, inputs, labels, move |m, x, y| square(m, x, y, p))
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(py_apgd, m)?)?;
    m.add_function(wrap_pyfunction!(py_fab, m)?)?;
    m.add_function(wrap_pyfunction!(py_square, m)?)?;
    Ok(())
}
