//! Momentum Iterative FGSM (Dong et al., 2018, arXiv:1710.06081), as
//! torchattacks 3.5.1 computes it:
//! `g_t = grad_t / mean|grad_t| + decay * g_{t-1}`,
//! `x_{t+1} = Π_{B_inf(x, eps) ∩ [0,1]}(x_t + alpha * sign(g_t))`.
use crate::attacks::Objective;
use crate::error::Result;
use crate::inputs::{check_batch, check_count, check_finite_in, check_non_negative};
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

pub fn mifgsm(model: &impl Model, x: &Tensor, y: &Tensor, p: MifgsmParams) -> Result<Tensor> {
    check_non_negative("eps", p.eps)?;
    check_non_negative("alpha", p.alpha)?;
    check_non_negative("decay", p.decay)?;
    check_count("steps", p.steps)?;
    let labels = check_batch(x, y)?;
    check_finite_in(x.kind(), &[("eps", p.eps), ("alpha", p.alpha), ("decay", p.decay)])?;
    let x = x.f_detach()?;
    if x.numel() == 0 {
        return Ok(x.f_detach_copy()?);
    }
    let model = &CheckedModel::new(model, Some(&labels))?;
    model.finish(tch::with_grad(|| {
        let obj = Objective::new(labels, Loss::CrossEntropy, p.targeted);
        let mut momentum = x.f_zeros_like()?;
        let mut adv = x.f_detach_copy()?;
        for _ in 0..p.steps {
            let probe = obj.probe(model, &adv, &obj.labels)?;
            let g = normalize_l1_mean(&probe.grad)?.f_add(&momentum.f_mul_scalar(p.decay)?)?;
            let moved = adv.f_add(&g.f_sign()?.f_mul_scalar(p.alpha)?)?;
            adv = project_linf(&moved, &x, p.eps)?;
            momentum = g;
        }
        Ok(adv)
    }))
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
}
