//! Bindings of the loss-surface kernels (`crate::eval::surface`).
use crate::eval::{surface, surface_directions, SurfaceParams};
use crate::py::args;
use crate::py::call::run_kernel;
use crate::py::tensor::PyTensor;
use pyo3::prelude::*;

/// Decision or loss surface of ``model`` around each input (Fig. 1 and Fig. 2
/// of Local Flatness Regularization; the plotting method of Yu et al.,
/// "Interpreting and evaluating neural network robustness", IJCAI 2019).
///
/// Evaluates, for every input ``x_n``, the grid of points
/// ``clamp(x_n + a_i * u_n + b_j * v_n, 0, 1)`` with
/// ``a = b = torch.linspace(-span, span, steps)``: the points are **clipped
/// to [0, 1]**, so near the box's faces the plane bends onto them. The values
/// are, with ``z`` the logits of the point:
///
/// * ``kind="decision"``: the paper's decision value
///   ``z_y - max_{i != y} z_i`` on the **logits** (the paper's "logit value"),
///   positive exactly where the model predicts ``y``;
/// * ``kind="loss"``: the cross-entropy ``CE(z, y)``.
///
/// Forward passes run without autograd, ``batch_size`` grid points at a time
/// (points of different inputs share a pass).
///
/// Parameters
/// ----------
/// model : callable
///     Maps inputs to ``(N, C)`` logits; its train/eval mode is left as it is.
/// inputs : torch.Tensor
///     Batch in [0, 1], shape ``(N, ...)``; for one image pass ``x[i:i+1]``.
/// labels : torch.Tensor
///     ``(N,)`` integer labels.
/// u, v : torch.Tensor
///     Directions of the two axes, the inputs' shape, dtype and device (one
///     pair per input), e.g. from :func:`surface_directions`.
/// span : float
///     Half-width of the grid along each axis (in units of ``u`` and ``v``).
/// steps : int, default 41
///     Grid points per axis (at least 2).
/// kind : {"decision", "loss"}, default "decision"
/// batch_size : int, default 1024
///     Grid points per forward pass.
///
/// Shape
/// -----
/// inputs, u, v ``(N, ...)``, labels ``(N,)``, returns ``(N, steps, steps)``.
///
/// Returns
/// -------
/// torch.Tensor
///     ``values[n, i, j]`` at ``a_i`` along ``u`` (rows) and ``b_j`` along
///     ``v`` (columns), in the logits' dtype.
#[pyfunction]
#[pyo3(name = "surface", signature = (model, inputs, labels, u, v, *, span, steps = 41, kind = "decision", batch_size = 1024))]
#[allow(clippy::too_many_arguments)]
pub fn py_surface(
    py: Python<'_>,
    model: &Bound<'_, PyAny>,
    inputs: PyTensor,
    labels: PyTensor,
    u: PyTensor,
    v: PyTensor,
    span: f64,
    steps: i64,
    kind: &str,
    batch_size: i64,
) -> PyResult<PyObject> {
    let p = SurfaceParams { span, steps, kind: args::surface_kind(kind)?, batch_size };
    let (u, v) = (u.0, v.0);
    run_kernel(py, model, inputs, labels, move |m, x, y| surface(m, x, y, &u, &v, p))
}

/// The paper's two surface directions per input, each of unit L-inf norm.
///
/// ``u = sign(grad_x loss(model(x), y))``, the gradient-sign (FGSM) direction,
/// and ``v``: a random sign vector ``r`` (torch's default generator;
/// ``torch.manual_seed`` repeats it) with its component along ``u`` removed,
/// ``r - (<r, u> / <u, u>) u``, rescaled to ``max |v| = 1``. So ``<u, v> = 0``
/// per sample and both axes of a surface read as L-inf perturbation size.
///
/// Parameters
/// ----------
/// model : callable
/// inputs : torch.Tensor
///     Batch in [0, 1], shape ``(N, ...)``.
/// labels : torch.Tensor
///     ``(N,)`` integer labels.
/// loss : {"ce", "margin"}, default "ce"
///     Whose gradient gives ``u``: the cross-entropy, or the Carlini-Wagner
///     logit margin (never saturates; use it when the cross-entropy's
///     gradient underflows to exactly zero, which raises ``ValueError``).
///
/// Shape
/// -----
/// inputs ``(N, ...)``, labels ``(N,)``; returns two ``(N, ...)``.
///
/// Returns
/// -------
/// tuple of torch.Tensor
///     ``(u, v)``, detached, the inputs' shape, dtype and device.
#[pyfunction]
#[pyo3(name = "surface_directions", signature = (model, inputs, labels, *, loss = "ce"))]
pub fn py_surface_directions(py: Python<'_>, model: &Bound<'_, PyAny>, inputs: PyTensor, labels: PyTensor, loss: &str) -> PyResult<(PyObject, PyObject)> {
    let loss = args::loss(loss)?;
    run_kernel(py, model, inputs, labels, move |m, x, y| surface_directions(m, x, y, loss))
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(py_surface, m)?)?;
    m.add_function(wrap_pyfunction!(py_surface_directions, m)?)?;
    Ok(())
}
