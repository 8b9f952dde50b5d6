//! Momentum Iterative FGSM (Dong et al., 2018, arXiv:1710.06081), as
//! torchattacks 3.5.1 computes it:
//! `g_t = grad_t / mean|grad_t| + decay * g_{t-1}`,
//! `x_{t+1} = Π_{B_inf(x, eps) ∩ [0,1]}(x_t + alpha * sign(g_t))`.
use crate::attacks::Objective;
use crate::error::Result;
use crate::inputs::{check_batch, check_count, check_finite_in, check_layout, check_non_negative};
use crate::loss::Loss;
use crate::model::{CheckedModel, Model};
use crate::project::project_linf;
use tch::Tensor;

#[derive(Debug, Clone, Copy)]
pub struct MifgsmParams {
    pub eps: f64,
    pub alpha: f64,
    pub steps: i64,
    pub decay: f64,
    pub targeted: bool,
}

/// Divides each sample's gradient by its mean absolute value. A sample whose
/// gradient is all zero is left at zero (torchattacks would produce NaN).
fn normalize_l1_mean(grad: &Tensor) -> Result<Tensor> {
    let dims: Vec<i64> = (1..grad.dim() as i64).collect();
    let mean = grad.f_abs()?.f_mean_dim(dims.as_slice(), true, None)?;
    let zero = mean.f_eq(0.0)?;
    let safe = mean.f_masked_fill(&zero, 1.0)?;
    Ok(grad.f_div(&safe)?)
}

impl MifgsmParams {
    fn check(&self) -> Result<()> {
        check_non_negative("eps", self.eps)?;
        check_non_negative("alpha", self.alpha)?;
        check_non_negative("decay", self.decay)?;
        check_count("steps", self.steps)
    }
}

/// The momentum iteration on a checked batch; reads nothing back from the
/// device (so that a CUDA graph can capture it).
fn iterate(model: &impl Model, obj: &Objective, x: &Tensor, p: &MifgsmParams) -> Result<Tensor> {
    let mut momentum = x.f_zeros_like()?;
    let mut adv = x.f_detach_copy()?;
    for _ in 0..p.steps {
        let probe = obj.probe(model, &adv, &obj.labels)?;
        let g = normalize_l1_mean(&probe.grad)?.f_add(&momentum.f_mul_scalar(p.decay)?)?;
        let moved = adv.f_add(&g.f_sign()?.f_mul_scalar(p.alpha)?)?;
        adv = project_linf(&moved, x, p.eps)?;
        momentum = g;
    }
    Ok(adv)
}

pub fn mifgsm(model: &impl Model, x: &Tensor, y: &Tensor, p: MifgsmParams) -> Result<Tensor> {
    p.check()?;
    let labels = check_batch(x, y)?;
    check_finite_in(x.kind(), &[("eps", p.eps), ("alpha", p.alpha), ("decay", p.decay)])?;
    let x = x.f_detach()?;
    if x.numel() == 0 {
        return Ok(x.f_detach_copy()?);
    }
    let model = &CheckedModel::new(model, Some(&labels))?;
    model.finish(tch::with_grad(|| iterate(model, &Objective::new(labels, Loss::CrossEntropy, p.targeted), &x, &p)))
}

/// [`mifgsm`]'s capture-safe form, on a batch whose values the caller
/// checked (`check_batch_for`): the same iterates, no host synchronization;
/// returns the adversarial batch and a 0-d bool tensor, true when every
/// logit the model returned was finite.
pub fn mifgsm_fixed(model: &impl Model, x: &Tensor, y: &Tensor, p: MifgsmParams) -> Result<(Tensor, Tensor)> {
    p.check()?;
    check_layout(x, y)?;
    check_finite_in(x.kind(), &[("eps", p.eps), ("alpha", p.alpha), ("decay", p.decay)])?;
    let x = x.f_detach()?;
    let model = CheckedModel::new(model, None)?;
    let obj = Objective::new(y.shallow_clone(), Loss::CrossEntropy, p.targeted).prechecked();
    let adv = tch::with_grad(|| iterate(&model, &obj, &x, &p))?;
    Ok((adv, model.finite_flag(x.device())?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_gradient_stays_zero() {
        let g = Tensor::from_slice(&[0.0f64, 0.0, 1.0, -3.0]).reshape([2, 2]);
        let n = normalize_l1_mean(&g).unwrap();
        assert_eq!(Vec::<f64>::try_from(n.flatten(0, -1)).unwrap(), vec![0.0, 0.0, 0.5, -1.5]);
    }

    #[test]
    fn the_capture_safe_form_is_the_eager_attack() {
        use crate::model::fixtures::{interior, three_classes};
        let w = three_classes();
        let model = |x: &Tensor| -> Result<Tensor> { Ok(x.f_matmul(&w.f_tr()?)?.f_tanh()?.f_mul_scalar(4.0)?) };
        let (x, y) = (interior(5), Tensor::from_slice(&[0i64, 1, 2, 0, 1]));
        let p = MifgsmParams { eps: 0.1, alpha: 0.02, steps: 8, decay: 1.0, targeted: false };
        let eager = mifgsm(&model, &x, &y, p).unwrap();
        let (fixed, finite) = mifgsm_fixed(&model, &x, &y, p).unwrap();
        assert!(fixed.equal(&eager) && !fixed.equal(&x) && bool::try_from(finite).unwrap());
    }
}
