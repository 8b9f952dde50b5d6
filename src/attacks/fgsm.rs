//! Fast Gradient Sign Method (Goodfellow et al., 2015, arXiv:1412.6572):
//! `x_adv = clip_[0,1](x + eps * sign(grad_x L(x, y)))`.
use crate::attacks::Objective;
use crate::error::Result;
use crate::inputs::{check_batch, check_finite_in, check_layout, check_non_negative};
use crate::loss::Loss;
use crate::model::{CheckedModel, Model};
use tch::Tensor;

#[derive(Debug, Clone, Copy)]
pub struct FgsmParams {
    pub eps: f64,
    pub targeted: bool,
}

/// One signed-gradient step of size `eps` on the cross-entropy, clipped to
/// [0, 1]; with `targeted`, a descent step toward the target labels `y`.
pub fn fgsm(model: &impl Model, x: &Tensor, y: &Tensor, p: FgsmParams) -> Result<Tensor> {
    check_non_negative("eps", p.eps)?;
    let labels = check_batch(x, y)?;
    check_finite_in(x.kind(), &[("eps", p.eps)])?;
    let x = x.f_detach()?;
    if x.numel() == 0 {
        return Ok(x.f_detach_copy()?);
    }
    let model = &CheckedModel::new(model, Some(&labels))?;
    model.finish(tch::with_grad(|| step(model, Objective::new(labels, Loss::CrossEntropy, p.targeted), &x, p.eps)))
}

/// The signed step from `x`, clipped to [0, 1].
fn step(model: &impl Model, obj: Objective, x: &Tensor, eps: f64) -> Result<Tensor> {
    let probe = obj.probe(model, x, &obj.labels)?;
    let step = probe.grad.f_sign()?.f_mul_scalar(eps)?;
    Ok(x.f_add(&step)?.f_clamp(0.0, 1.0)?)
}

/// [`fgsm`]'s capture-safe form: the same step on a batch whose values the
/// caller checked (`check_batch_for`), with no host synchronization; returns
/// the adversarial batch and a 0-d bool tensor, true when the logits were
/// finite.
pub fn fgsm_fixed(model: &impl Model, x: &Tensor, y: &Tensor, p: FgsmParams) -> Result<(Tensor, Tensor)> {
    check_non_negative("eps", p.eps)?;
    check_layout(x, y)?;
    check_finite_in(x.kind(), &[("eps", p.eps)])?;
    let x = x.f_detach()?;
    let model = CheckedModel::new(model, None)?;
    let obj = Objective::new(y.shallow_clone(), Loss::CrossEntropy, p.targeted).prechecked();
    let adv = tch::with_grad(|| step(&model, obj, &x, p.eps))?;
    Ok((adv, model.finite_flag(x.device())?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::fixtures::{interior, three_classes};

    #[test]
    fn the_capture_safe_form_is_the_eager_step() {
        let w = three_classes();
        let model = |x: &Tensor| -> Result<Tensor> { Ok(x.f_matmul(&w.f_tr()?)?.f_tanh()?.f_mul_scalar(4.0)?) };
        let x = interior(5);
        let y = Tensor::from_slice(&[0i64, 1, 2, 0, 1]);
        for targeted in [false, true] {
            let p = FgsmParams { eps: 0.1, targeted };
            let eager = fgsm(&model, &x, &y, p).unwrap();
            let (fixed, finite) = fgsm_fixed(&model, &x, &y, p).unwrap();
            assert!(fixed.equal(&eager) && !fixed.equal(&x), "targeted {targeted}");
            assert!(bool::try_from(finite).unwrap());
        }
        let nan = |x: &Tensor| -> Result<Tensor> { Ok(x.f_narrow(1, 0, 3)?.f_div_scalar(0.0)?) };
        let (_, finite) = fgsm_fixed(&nan, &x, &y, FgsmParams { eps: 0.1, targeted: false }).unwrap();
        assert!(!bool::try_from(finite).unwrap());
    }
}
