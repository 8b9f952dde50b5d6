//! TRADES inner maximization (Zhang et al., ICML 2019, arXiv:1901.08573), as
//! the official `trades_loss` computes it: start at `x + 0.001 * N(0, I)`,
//! ascend `KL(softmax(f(x)) || softmax(f(x_adv)))` (summed) with sign steps,
//! then `min(max(x_adv, x - eps), x + eps)` and clip to [0, 1].
use crate::error::Result;
use crate::grad::grad;
use crate::inputs::{check_ascent_in, check_float, check_inputs};
use crate::model::{checked_logits, CheckedModel, Model};
use tch::{Kind, Reduction, Tensor};

#[derive(Debug, Clone, Copy)]
pub struct TradesParams {
    pub eps: f64,
    pub alpha: f64,
    pub steps: i64,
}

impl TradesParams {
    /// The hyper-parameters' checks, made by the kernel and its capture-safe
    /// form alike: `eps` and `alpha` non-negative and finite in `kind`, at
    /// least one step.
    fn check_in(&self, kind: tch::Kind) -> Result<()> {
        check_ascent_in(kind, self.eps, self.alpha, self.steps)
    }
}

/// Standard deviation of the official random start.
pub const START_STD: f64 = 0.001;

pub fn trades_perturb(model: &impl Model, x: &Tensor, p: TradesParams) -> Result<Tensor> {
    p.check_in(x.kind())?;
    check_inputs(x)?;
    let x = x.f_detach()?;
    if x.numel() == 0 {
        return Ok(x.f_detach_copy()?);
    }
    let model = &CheckedModel::new(model, None)?;
    model.finish(tch::with_grad(|| ascend(model, &x, &p)))
}

fn ascend(model: &impl Model, x: &Tensor, p: &TradesParams) -> Result<Tensor> {
    // The natural distribution is a constant of the inner problem (the
    // official code recomputes it every step; in eval mode it is the same).
    let natural = tch::no_grad(|| checked_logits(model, x))?.f_softmax(1, None::<Kind>)?;
    let (lower, upper) = (x.f_sub_scalar(p.eps)?, x.f_add_scalar(p.eps)?);
    let mut adv = x.f_add(&x.f_randn_like()?.f_mul_scalar(START_STD)?)?;
    for _ in 0..p.steps {
        let xr = adv.f_detach()?.f_set_requires_grad(true)?;
        let log_q = checked_logits(model, &xr)?.f_log_softmax(1, None::<Kind>)?;
        let kl = log_q.f_kl_div(&natural, Reduction::Sum, false)?;
        let grad = grad(&kl, &xr, false)?;
        adv = adv.f_add(&grad.f_sign()?.f_mul_scalar(p.alpha)?)?;
        adv = adv.f_max_other(&lower)?.f_min_other(&upper)?.f_clamp(0.0, 1.0)?;
    }
    Ok(adv)
}

/// [`trades_perturb`]'s capture-safe form: the same ascent on inputs whose
/// values the caller checked, with no host synchronization; returns `x'` and
/// a 0-d bool tensor, true when every logit the model returned was finite.
pub fn trades_perturb_fixed(model: &impl Model, x: &Tensor, p: TradesParams) -> Result<(Tensor, Tensor)> {
    p.check_in(x.kind())?;
    check_float(x)?;
    let x = x.f_detach()?;
    let model = CheckedModel::new(model, None)?;
    let adv = tch::with_grad(|| ascend(&model, &x, &p))?;
    Ok((adv, model.finite_flag(x.device())?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::fixtures::{in_linf_threat_set, interior, linear, off_vertex, on_box_faces, three_classes, two_classes};

    #[test]
    fn stays_in_the_eps_box_and_the_unit_box_and_leaves_the_inputs_alone() {
        let w = three_classes();
        let x = on_box_faces(16);
        let before = x.copy();
        let adv = trades_perturb(&linear(&w), &x, TradesParams { eps: 0.3, alpha: 0.1, steps: 5 }).unwrap();
        assert_eq!((adv.size(), adv.kind()), (x.size(), x.kind()));
        assert!(in_linf_threat_set(&adv, &x, 0.3));
        assert!(x.equal(&before));
    }

    /// Its random start makes bit-for-bit equality a test for Python
    /// (tests/training/test_graphed.py), where the global RNG is not shared
    /// with tests running in parallel; here the body's outcome and its flag.
    #[test]
    fn the_capture_safe_form_ascends_in_the_threat_set_and_flags_non_finite_logits() {
        let w = two_classes();
        let x = interior(8);
        let p = TradesParams { eps: 0.1, alpha: 0.04, steps: 10 };
        let (fixed, finite) = trades_perturb_fixed(&linear(&w), &x, p).unwrap();
        assert!(bool::try_from(finite).unwrap() && in_linf_threat_set(&fixed, &x, 0.1));
        assert!(off_vertex(&(&fixed - &x), &(w.get(1) - w.get(0)), 0.1) < 1e-12);
        let nan = |x: &Tensor| -> Result<Tensor> { Ok(x.f_narrow(1, 0, 2)?.f_div_scalar(0.0)?) };
        assert!(!bool::try_from(trades_perturb_fixed(&nan, &x, p).unwrap().1).unwrap());
    }

    #[test]
    fn two_class_linear_model_ends_on_a_vertex_along_the_weight_gap() {
        // d KL / d x' = (q_1 - p_1) (W_1 - W_0): every step moves each coordinate
        // along +-sign(W_1 - W_0), on the side the random start fell on.
        let w = two_classes();
        let x = interior(8);
        let adv = trades_perturb(&linear(&w), &x, TradesParams { eps: 0.1, alpha: 0.04, steps: 10 }).unwrap();
        assert!(off_vertex(&(&adv - &x), &(w.get(1) - w.get(0)), 0.1) < 1e-12);
    }
}
