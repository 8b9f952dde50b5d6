//! Fast Gradient Sign Method (Goodfellow et al., 2015, arXiv:1412.6572):
//! `x_adv = clip_[0,1](x + eps * sign(grad_x L(x, y)))`.
use crate::attacks::Objective;
use crate::error::Result;
use crate::inputs::{check_batch, check_finite_in, check_non_negative};
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
    model.finish(tch::with_grad(|| {
        let obj = Objective::new(labels, Loss::CrossEntropy, p.targeted);
        let probe = obj.probe(model, &x, &obj.labels)?;
        let step = probe.grad.f_sign()?.f_mul_scalar(p.eps)?;
        Ok(x.f_add(&step)?.f_clamp(0.0, 1.0)?)
    }))
}
