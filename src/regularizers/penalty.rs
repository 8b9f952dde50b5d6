//! The fused gradient-norm penalty `||d_x L(x, y)||_p` per sample (first-order
//! defense of Simon-Gabriel et al., 2019; the LFR term of eq. (4) when
//! evaluated at `x'`). One call: forward, input gradient with its graph kept
//! (`create_graph`), norm. The result is differentiable with respect to the
//! model's parameters, so `(ce + lam * pen.mean()).backward()` trains.
use crate::error::{invalid, Result};
use crate::grad::grad;
use crate::inputs::{check_batch, check_layout};
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
    model.finish(tch::with_grad(|| norms(model, x, &labels, p)))
}

fn norms(model: &impl Model, x: &Tensor, labels: &Tensor, p: f64) -> Result<Tensor> {
    let xr = x.f_detach()?.f_set_requires_grad(true)?;
    let (_, grad) = ce_input_grad(model, &xr, labels, true)?;
    lp_per_sample(&grad, p)
}

/// [`grad_norm_penalty`]'s capture-safe form, for a training step captured
/// into a CUDA graph: the same differentiable norms on a batch whose values
/// the caller checked, with no host synchronization; returns them and a 0-d
/// bool tensor, true when the logits were finite.
pub fn grad_norm_penalty_fixed(model: &impl Model, x: &Tensor, y: &Tensor, p: f64) -> Result<(Tensor, Tensor)> {
    check_p(p)?;
    check_layout(x, y)?;
    let model = CheckedModel::new(model, None)?;
    let pen = tch::with_grad(|| norms(&model, x, y, p))?;
    Ok((pen, model.finite_flag(x.device())?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::fixtures::{interior, two_classes};
    use tch::Kind;

    /// Logits `x W^T + b`.
    fn affine<'a>(w: &'a Tensor, b: &'a Tensor) -> impl Fn(&Tensor) -> Result<Tensor> + 'a {
        move |x: &Tensor| Ok(x.f_matmul(&w.f_transpose(0, 1)?)?.f_add(b)?)
    }

    fn bias() -> Tensor {
        Tensor::from_slice(&[0.1f64, -0.2])
    }

    #[test]
    fn linear_model_penalty_is_the_weight_gap_scaled_by_one_minus_p_y() {
        let (w, b) = (two_classes(), bias());
        let model = affine(&w, &b);
        let x = interior(3);
        let y = Tensor::from_slice(&[0i64, 1, 0]);
        // With two classes d_x CE(x, y) = (1 - p_y) (W_other - W_y): the norm is (1 - p_y) ||W_0 - W_1||_p.
        let p_y = model(&x).unwrap().softmax(1, Kind::Double).gather(1, &y.unsqueeze(1), false).squeeze_dim(1);
        let gap = w.get(0) - w.get(1);
        for p in [1.0, 2.0, f64::INFINITY] {
            let want = (p_y.ones_like() - &p_y) * gap.norm_scalaropt_dim(p, [0i64].as_slice(), false);
            let got = grad_norm_penalty(&model, &x, &y, p).unwrap();
            assert!(f64::try_from((got - want).abs().max()).unwrap() < 1e-12, "p = {p}");
        }
    }

    #[test]
    fn weight_gradient_of_the_penalty_matches_a_central_difference() {
        let (w, b) = (two_classes(), bias());
        let x = interior(3);
        let y = Tensor::from_slice(&[0i64, 1, 1]);
        let total = |w: &Tensor| grad_norm_penalty(&affine(w, &b), &x, &y, 2.0).unwrap().sum(Kind::Double);
        let leaf = w.detach_copy().set_requires_grad(true);
        let g = Vec::<f64>::try_from(grad(&total(&leaf), &leaf, false).unwrap().flatten(0, -1)).unwrap();
        let h = 1e-6;
        for (k, g_k) in g.iter().enumerate() {
            let mut e = vec![0.0f64; 8];
            e[k] = h;
            let e = Tensor::from_slice(&e).reshape([2, 4]);
            let fd = (f64::try_from(total(&(&w + &e))).unwrap() - f64::try_from(total(&(&w - &e))).unwrap()) / (2.0 * h);
            assert!((g_k - fd).abs() < 1e-6, "weight {k}: autograd {g_k}, central difference {fd}");
        }
    }

    #[test]
    fn the_capture_safe_form_is_the_eager_penalty() {
        let (w, b) = (two_classes(), bias());
        let model = affine(&w, &b);
        let x = interior(3);
        let y = Tensor::from_slice(&[0i64, 1, 0]);
        for p in [1.0, 2.0, f64::INFINITY] {
            let (fixed, finite) = grad_norm_penalty_fixed(&model, &x, &y, p).unwrap();
            assert!(fixed.equal(&grad_norm_penalty(&model, &x, &y, p).unwrap()) && bool::try_from(finite).unwrap());
        }
        let nan = |x: &Tensor| -> Result<Tensor> { Ok(x.f_narrow(1, 0, 2)?.f_div_scalar(0.0)?) };
        let (_, finite) = grad_norm_penalty_fixed(&nan, &x, &y, 1.0).unwrap();
        assert!(!bool::try_from(finite).unwrap());
    }

    #[test]
    fn rejects_other_norms_and_an_empty_batch_gives_an_empty_penalty() {
        let (w, b) = (two_classes(), bias());
        let model = affine(&w, &b);
        let x = interior(2);
        let y = Tensor::from_slice(&[0i64, 1]);
        assert!(grad_norm_penalty(&model, &x, &y, 3.0).unwrap_err().to_string().contains("1, 2 or inf"));
        let empty = grad_norm_penalty(&model, &x.narrow(0, 0, 0), &y.narrow(0, 0, 0), 1.0).unwrap();
        assert_eq!(empty.size(), vec![0]);
    }
}
