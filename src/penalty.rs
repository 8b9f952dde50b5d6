//! The fused gradient-norm penalty `||d_x L(x, y)||_p` per sample (first-order
//! defense of Simon-Gabriel et al., 2019; the LFR term of eq. (4) when
//! evaluated at `x'`). One call: forward, input gradient with its graph kept
//! (`create_graph`), norm. The result is differentiable with respect to the
//! model's parameters, so `(ce + lam * pen.mean()).backward()` trains.
use crate::error::{invalid, Result};
use crate::grad::grad;
use crate::inputs::check_batch;
use crate::loss::Loss;
use crate::model::{checked_logits, CheckedModel, Model};
use crate::norm::lp_per_sample;
use tch::Tensor;

/// Per-sample cross-entropy at `xr` (which must require grad, returned
/// detached) and its input gradient. Labels are checked against the logits by
/// the caller's [`CheckedModel`], once per call. `L` is summed over the batch, so row `i` of the gradient is
/// `d_x L(x_i, y_i)`, independent of the batch size. With `create_graph` the
/// gradient can itself be differentiated (double backprop).
pub(crate) fn ce_input_grad(model: &impl Model, xr: &Tensor, labels: &Tensor, create_graph: bool) -> Result<(Tensor, Tensor)> {
    let logits = checked_logits(model, xr)?;
    let ce = Loss::CrossEntropy.objective(&logits, labels, false)?;
    let grad = grad(&ce.f_sum(None)?, xr, create_graph)?;
    Ok((ce.f_detach()?, grad))
}

/// Checks `p` is one of 1, 2, inf.
pub fn check_p(p: f64) -> Result<()> {
    if p == 1.0 || p == 2.0 || p == f64::INFINITY {
        Ok(())
    } else {
        invalid(format!("p must be 1, 2 or inf, got {p}"))
    }
}

/// `(N,)` tensor of `||d_x CE(model(x_i), y_i)||_p`, differentiable with
/// respect to the model's parameters.
pub fn grad_norm_penalty(model: &impl Model, x: &Tensor, y: &Tensor, p: f64) -> Result<Tensor> {
    check_p(p)?;
    let labels = check_batch(x, y)?;
    if x.numel() == 0 {
        return Ok(Tensor::f_zeros([0i64].as_slice(), (x.kind(), x.device()))?);
    }
    let model = &CheckedModel::new(model, Some(&labels))?;
    model.finish(tch::with_grad(|| {
        let xr = x.f_detach()?.f_set_requires_grad(true)?;
        let (_, grad) = ce_input_grad(model, &xr, &labels, true)?;
        lp_per_sample(&grad, p)
    }))
}
