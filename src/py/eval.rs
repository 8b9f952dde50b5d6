//! Bindings of the evaluation kernels (`src/eval/`): `apgd` and `square`.
use crate::eval::{apgd, square, ApgdLoss, ApgdParams, SquareParams};
use crate::py::args;
use crate::py::functions::run_kernel;
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
#[pyo3(name = "apgd", signature = (model, inputs, labels, *, eps, steps = 100, norm = "linf", loss = "ce", targeted = false, n_target_classes = 9, restarts = 1, rho = 0.75))]
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
) -> PyResult<PyObject> {
    let p = ApgdParams {
        eps,
        steps,
        norm: args::norm(norm)?,
        loss: ApgdLoss::parse(loss)?,
        targeted,
        n_target_classes,
        restarts,
        rho,
    };
    run_kernel(py, model, inputs, labels, move |m, x, y| apgd(m, x, y, p))
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
#[pyo3(name = "square", signature = (model, inputs, labels, *, eps, queries = 5000, p_init = 0.8, restarts = 1))]
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
) -> PyResult<PyObject> {
    let p = SquareParams { eps, queries, p_init, restarts };
    run_kernel(py, model, inputs, labels, move |m, x, y| square(m, x, y, p))
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(py_apgd, m)?)?;
    m.add_function(wrap_pyfunction!(py_square, m)?)?;
    Ok(())
}
