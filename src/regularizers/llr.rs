//! LLR inner maximization (Qin et al., NeurIPS 2019, arXiv:1907.02610): find
//! `delta` in `B_inf(0, eps)` (with `x + delta` in [0, 1]) maximizing the local
//! linearity error `gamma(x, delta) = |L(x + delta) - L(x) - delta^T grad_x L(x)|`,
//! per sample, by projected sign ascent.
use crate::error::Result;
use crate::grad::grad;
use crate::inputs::{check_ascent_in, check_batch, check_layout};
use crate::loss::Loss;
use crate::model::{checked_logits, CheckedModel, Model};
use crate::norm::Norm;
use crate::project::project_linf;
use crate::regularizers::penalty::ce_input_grad;
use tch::Tensor;

#[derive(Debug, Clone, Copy)]
pub struct LlrParams {
    pub eps: f64,
    pub alpha: f64,
    pub steps: i64,
    pub random_start: bool,
}

impl LlrParams {
    /// The hyper-parameters' checks, made by the kernel and its capture-safe
    /// form alike: `eps` and `alpha` non-negative and finite in `kind`, at
    /// least one step.
    fn check_in(&self, kind: tch::Kind) -> Result<()> {
        check_ascent_in(kind, self.eps, self.alpha, self.steps)
    }
}

pub fn llr_perturb(model: &impl Model, x: &Tensor, y: &Tensor, p: LlrParams) -> Result<Tensor> {
    p.check_in(x.kind())?;
    let labels = check_batch(x, y)?;
    let x = x.f_detach()?;
    if x.numel() == 0 {
        return Ok(x.f_detach_copy()?);
    }
    let model = &CheckedModel::new(model, Some(&labels))?;
    model.finish(tch::with_grad(|| ascend(model, &x, &labels, &p)))
}

fn ascend(model: &impl Model, x: &Tensor, labels: &Tensor, p: &LlrParams) -> Result<Tensor> {
    let xr = x.f_detach()?.f_set_requires_grad(true)?;
    let (loss0, grad0) = ce_input_grad(model, &xr, labels, false)?;
    let mut adv = if p.random_start { Norm::Linf.random_start(x, p.eps)? } else { x.f_detach_copy()? };
    for _ in 0..p.steps {
        let ar = adv.f_detach()?.f_set_requires_grad(true)?;
        let loss = Loss::CrossEntropy.objective(&checked_logits(model, &ar)?, labels, false)?;
        let linear = ar.f_sub(x)?.f_mul(&grad0)?.f_flatten(1, -1)?.f_sum_dim_intlist(1, false, None)?;
        let gamma = loss.f_sub(&loss0)?.f_sub(&linear)?.f_abs()?.f_sum(None)?;
        let grad = grad(&gamma, &ar, false)?;
        adv = project_linf(&adv.f_add(&grad.f_sign()?.f_mul_scalar(p.alpha)?)?, x, p.eps)?;
    }
    Ok(adv)
}

/// [`llr_perturb`]'s capture-safe form: the same ascent on a batch whose
/// values the caller checked (`check_batch_for`), with no host
/// synchronization; returns `x'` and a 0-d bool tensor, true when every
/// logit the model returned was finite.
pub fn llr_perturb_fixed(model: &impl Model, x: &Tensor, y: &Tensor, p: LlrParams) -> Result<(Tensor, Tensor)> {
    p.check_in(x.kind())?;
    check_layout(x, y)?;
    let x = x.f_detach()?;
    let model = CheckedModel::new(model, None)?;
    let adv = tch::with_grad(|| ascend(&model, &x, y, &p))?;
    Ok((adv, model.finite_flag(x.device())?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::fixtures::{in_linf_threat_set, interior, linear, off_vertex, on_box_faces, three_classes, two_classes};

    fn params(random_start: bool) -> LlrParams {
        LlrParams { eps: 0.1, alpha: 0.05, steps: 10, random_start }
    }

    #[test]
    fn without_a_random_start_the_ascent_stays_at_x() {
        // At delta = 0 the linearity error and its gradient vanish.
        let w = three_classes();
        let x = on_box_faces(4);
        let y = Tensor::from_slice(&[0i64, 1, 2, 1]);
        let adv = llr_perturb(&linear(&w), &x, &y, params(false)).unwrap();
        assert!(adv.equal(&x));
    }

    /// Bit-for-bit equality with a random start is tested from Python
    /// (tests/training/test_graphed.py), where the global RNG is not shared
    /// with tests running in parallel.
    #[test]
    fn the_capture_safe_form_is_the_eager_ascent() {
        let w = three_classes();
        let x = interior(6);
        let y = Tensor::from_slice(&[0i64, 1, 2, 1, 0, 2]);
        let eager = llr_perturb(&linear(&w), &x, &y, params(false)).unwrap();
        let (fixed, finite) = llr_perturb_fixed(&linear(&w), &x, &y, params(false)).unwrap();
        assert!(fixed.equal(&eager) && bool::try_from(finite).unwrap());
        let (moved, _) = llr_perturb_fixed(&linear(&w), &x, &y, params(true)).unwrap();
        assert!(in_linf_threat_set(&moved, &x, 0.1) && !moved.equal(&x));
        let nan = |x: &Tensor| -> Result<Tensor> { Ok(x.f_narrow(1, 0, 3)?.f_div_scalar(0.0)?) };
        assert!(!bool::try_from(llr_perturb_fixed(&nan, &x, &y, params(true)).unwrap().1).unwrap());
    }

    #[test]
    fn two_class_linear_model_ends_on_a_vertex_of_the_ball() {
        // The loss is softplus(t), t = z_other - z_y linear in x, so the error
        // softplus(t + v) - softplus(t) - sigmoid(t) v (v the change of t) grows with |v|
        // and its gradient is +-sign(W_0 - W_1): the ascent ends at x +- eps sign(W_0 - W_1).
        let w = two_classes();
        let x = interior(8);
        let y = Tensor::from_slice(&[0i64, 1, 0, 1, 0, 1, 0, 1]);
        let adv = llr_perturb(&linear(&w), &x, &y, params(true)).unwrap();
        assert!(off_vertex(&(&adv - &x), &(w.get(0) - w.get(1)), 0.1) < 1e-12);
    }

    #[test]
    fn stays_in_the_ball_and_the_box() {
        let w = three_classes();
        let x = on_box_faces(16);
        let y = Tensor::from_slice(&[0i64, 1, 2, 0, 1, 2, 0, 1, 2, 0, 1, 2, 0, 1, 2, 0]);
        let adv = llr_perturb(&linear(&w), &x, &y, LlrParams { eps: 0.3, ..params(true) }).unwrap();
        assert!(in_linf_threat_set(&adv, &x, 0.3));
    }
}
