//! PGD with a fixed batch shape and no host synchronization: the body that a
//! CUDA graph captures once per shape and replays (`lfr_rs.graphs`).
//!
//! Same iterates as [`crate::attacks::pgd::pgd`] with one restart, to float32
//! rounding. Per-sample early stopping (`keep_best`) becomes masking on the
//! device: a fooled sample still goes through the forward and backward, but
//! the batch objective averages over the samples still stepping (as the
//! eager kernel's smaller batch does), its update is zeroed and it is never
//! offered again, so the kept candidate is the same. Nothing reads a device value
//! back: the caller checks the batch and the label range beforehand
//! (`check_batch_for`), and the non-finite flag comes back as a tensor.
use crate::attacks::pgd::{last_iterate, Candidate, PgdParams};
use crate::attacks::Objective;
use crate::error::{invalid, Result};
use crate::inputs::{check_finite_in, check_inputs, check_labels, check_layout};
use crate::model::{check_labels_below, checked_logits, CheckedModel, Model};
use crate::norm::batch_view;
use tch::Tensor;

/// Offers new candidates on every row where `live` (rows not yet fooled).
fn offer_masked(best: &mut Candidate, live: &Tensor, adv: &Tensor, value: &Tensor, fooled: &Tensor) -> Result<()> {
    let value = value.f_to_kind(best.value.kind())?;
    let better = live.f_logical_and(&fooled.f_logical_or(&value.f_gt_tensor(&best.value)?)?)?;
    best.adv = adv.f_where_self(&batch_view(&better, adv.dim())?, &best.adv)?;
    best.value = value.f_where_self(&better, &best.value)?;
    best.success = fooled.f_where_self(live, &best.success)?;
    Ok(())
}

/// [`crate::attacks::pgd`]'s `keep_best` loop with masks for index sets.
fn tracked_masked(model: &impl Model, obj: &Objective, x: &Tensor, y: &Tensor, p: &PgdParams) -> Result<Tensor> {
    let mut adv = if p.random_start { p.norm.random_start(x, p.eps)? } else { x.f_detach_copy()? };
    let mut best = Candidate::start(adv.f_detach_copy()?)?;
    let mut live = best.success.f_logical_not()?;
    for step in 0..=p.steps {
        let (logits, value, grad) = if step == p.steps {
            let logits = tch::no_grad(|| checked_logits(model, &adv))?;
            let value = obj.loss.objective(&logits, y, obj.targeted)?;
            (logits, value, None)
        } else {
            let probe = obj.probe_rows(model, &adv, y, Some(&live))?;
            (probe.logits, probe.value, Some(probe.grad))
        };
        let fooled = obj.success(&logits, y)?;
        offer_masked(&mut best, &live, &adv, &value, &fooled)?;
        let Some(grad) = grad else { break };
        live = live.f_logical_and(&fooled.f_logical_not()?)?;
        let next = p.norm.step(&adv, &grad, x, p.alpha, p.eps)?;
        adv = next.f_where_self(&batch_view(&live, adv.dim())?, &adv)?;
    }
    Ok(best.adv)
}

/// The value checks [`pgd_fixed`] leaves to its caller, made once per batch
/// outside the captured body: inputs in [0, 1] and finite, labels integer
/// and in `[0, classes)`. Returns the labels as `Int64`.
pub fn check_batch_for(x: &Tensor, y: &Tensor, classes: i64) -> Result<Tensor> {
    check_inputs(x)?;
    check_labels_for(x, y, classes)
}

/// The labels' half of [`check_batch_for`], for a step whose inputs need not
/// lie in [0, 1] (Standard training): labels integer, `(N,)`, on the inputs'
/// device and in `[0, classes)`. Returns them as `Int64`.
pub fn check_labels_for(x: &Tensor, y: &Tensor, classes: i64) -> Result<Tensor> {
    let labels = check_labels(x, y)?;
    check_labels_below(&labels, classes)?;
    Ok(labels)
}

/// PGD on a batch already checked by the caller (inputs in [0, 1], labels in
/// range): returns the adversarial batch and a 0-d bool tensor, true when
/// every logit the model returned was finite. One restart only.
pub fn pgd_fixed(model: &impl Model, x: &Tensor, y: &Tensor, p: PgdParams) -> Result<(Tensor, Tensor)> {
    p.check()?;
    if p.restarts != 1 {
        return invalid(format!(
            "a fixed-shape (CUDA graph) PGD runs one restart, got restarts={}; use the eager kernel",
            p.restarts
        ));
    }
    check_layout(x, y)?;
    check_finite_in(x.kind(), &[("eps", p.eps), ("alpha", p.alpha)])?;
    let x = x.f_detach()?;
    let model = CheckedModel::new(model, None)?;
    let adv = tch::with_grad(|| {
        let obj = Objective::new(y.shallow_clone(), p.loss, p.targeted).prechecked();
        if p.keep_best {
            tracked_masked(&model, &obj, &x, y, &p)
        } else {
            last_iterate(&model, &obj, &x, y, &p)
        }
    });
    match adv {
        Err(e) => Err(e),
        Ok(adv) => Ok((adv, model.finite_flag(x.device())?)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::attacks::pgd::pgd;
    use crate::loss::Loss;
    use crate::model::fixtures::{interior, three_classes};
    use crate::norm::Norm;
    use tch::Kind;

    fn params(norm: Norm, keep_best: bool) -> PgdParams {
        PgdParams {
            eps: 0.06,
            alpha: 0.01,
            steps: 12,
            random_start: false,
            norm,
            loss: Loss::CrossEntropy,
            targeted: false,
            restarts: 1,
            keep_best,
        }
    }

    fn tanh_model(w: &Tensor) -> impl Fn(&Tensor) -> Result<Tensor> + '_ {
        move |x: &Tensor| Ok(x.f_flatten(1, -1)?.f_matmul(&w.f_tr()?)?.f_tanh()? * 4.0)
    }

    #[test]
    fn equals_the_eager_kernel_with_and_without_keep_best() {
        tch::manual_seed(0);
        let w = three_classes();
        let x = interior(6);
        // labels the model gets right, so rows are fooled along the way
        let y = tanh_model(&w)(&x).unwrap().argmax(1, false);
        for norm in [Norm::Linf, Norm::L2] {
            for keep_best in [false, true] {
                let p = params(norm, keep_best);
                let eager = pgd(&tanh_model(&w), &x, &y, p).unwrap();
                let (fixed, finite) = pgd_fixed(&tanh_model(&w), &x, &y, p).unwrap();
                let gap = f64::try_from((&eager - &fixed).abs().max()).unwrap();
                assert!(gap < 1e-12, "{norm:?} keep_best={keep_best}: gap {gap}");
                let fooled = i64::try_from(tanh_model(&w)(&fixed).unwrap().argmax(1, false).ne_tensor(&y).sum(Kind::Int64)).unwrap();
                assert!(fooled > 0 && fooled < 6, "some rows must stop early and some go on: {fooled} fooled");
                assert!(bool::try_from(finite).unwrap());
            }
        }
    }

    #[test]
    fn non_finite_logits_come_back_as_a_false_flag() {
        let model = |x: &Tensor| -> Result<Tensor> { Ok(x.f_flatten(1, -1)?.f_narrow(1, 0, 3)? / 0.0) };
        let y = Tensor::from_slice(&[0i64, 1]);
        let (_, finite) = pgd_fixed(&model, &interior(2), &y, params(Norm::Linf, true)).unwrap();
        assert!(!bool::try_from(finite).unwrap());
    }

    #[test]
    fn more_than_one_restart_is_refused() {
        let w = three_classes();
        let y = Tensor::from_slice(&[0i64, 1]);
        let p = PgdParams { restarts: 2, ..params(Norm::Linf, true) };
        assert!(matches!(pgd_fixed(&tanh_model(&w), &interior(2), &y, p), Err(crate::error::LfrError::InvalidArgument(_))));
    }
}
