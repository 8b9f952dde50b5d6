//! APGD with a fixed batch shape and no host synchronization: the body a
//! CUDA graph captures (`lfr_rs.graphs.apgd`).
//!
//! The eager kernel drops fooled samples from its tensors and runs later
//! restarts and targets on the points still robust; here every run covers
//! the whole batch and a mask says who is still attacked. A sample's state
//! evolves as in the eager run (every update is per sample, and the loss is
//! summed, so a sample's gradient does not depend on who else is in the
//! batch); what is recorded is gated by the mask: a sample's first fooling
//! iterate is kept and nothing after it. The random starts are drawn for the
//! whole batch, so they equal the eager draws only in a run where the eager
//! kernel also attacks every row (the first run on a batch the model
//! classifies correctly). The caller checks the batch (`check_batch_for`);
//! the non-finite flag comes back as a tensor.
use crate::error::Result;
use crate::eval::apgd::run::Checkpoints;
use crate::eval::apgd::{begin, probe, ApgdParams};
use crate::eval::dlr::ranked_class;
use crate::eval::survivors::check_targets;
use crate::inputs::check_layout;
use crate::model::{checked_logits, num_classes, predict, CheckedModel, Model};
use crate::norm::batch_view;
use tch::Tensor;

/// Keeps `adv` in `found` where `hit`, marks it `done`.
fn record(found: &mut Tensor, done: &mut Tensor, adv: &Tensor, hit: &Tensor) -> Result<()> {
    *found = adv.f_where_self(&batch_view(hit, adv.dim())?, found)?;
    *done = done.f_logical_or(hit)?;
    Ok(())
}

/// One APGD run over the whole batch, recording only samples in `live`.
/// Returns `(fooled, adv)` like the eager run.
fn masked_run(model: &impl Model, x: &Tensor, y: &Tensor, t: Option<&Tensor>, p: &ApgdParams, live: &Tensor) -> Result<(Tensor, Tensor)> {
    let (mut run, pred) = begin(model, x, y, t, p)?;
    let mut found = run.adv.f_detach_copy()?;
    let mut done = live.f_zeros_like()?;
    let mut checks = Checkpoints::new(p);
    let fooled = pred.f_ne_tensor(&run.y)?;
    record(&mut found, &mut done, &run.adv, &fooled.f_logical_and(live)?)?;
    let mut live = live.f_logical_and(&fooled.f_logical_not()?)?;
    for i in 0..p.steps {
        run.advance(p, i == 0)?;
        let (loss, pred, g) = probe(model, p.loss, &run.adv, &run.y, run.t.as_ref())?;
        let fooled = pred.f_ne_tensor(&run.y)?;
        record(&mut found, &mut done, &run.adv, &fooled.f_logical_and(&live)?)?;
        live = live.f_logical_and(&fooled.f_logical_not()?)?;
        run.observe(&loss, g)?;
        checks.after_step(&mut run, p.rho)?;
    }
    Ok((done, found))
}

/// The schedule of runs (targets, restarts) over the whole batch, each
/// recording only the points every earlier run left robust.
fn masked_schedule(model: &impl Model, x: &Tensor, labels: &Tensor, p: &ApgdParams) -> Result<Tensor> {
    let clean = tch::no_grad(|| checked_logits(model, x))?;
    check_targets(p.targeted, p.n_target_classes, num_classes(&clean))?;
    let mut out = x.f_detach_copy()?;
    let mut robust = predict(&clean)?.f_eq_tensor(labels)?;
    let ranks: Vec<Option<i64>> = if p.targeted { (2..p.n_target_classes + 2).map(Some).collect() } else { vec![None] };
    for rank in ranks {
        let targets = rank.map(|r| ranked_class(&clean, r)).transpose()?;
        for _ in 0..p.restarts {
            let (fooled, adv) = tch::with_grad(|| masked_run(model, x, labels, targets.as_ref(), p, &robust))?;
            out = adv.f_where_self(&batch_view(&fooled, adv.dim())?, &out)?;
            robust = robust.f_logical_and(&fooled.f_logical_not()?)?;
        }
    }
    Ok(out)
}

/// APGD (APGD-T with `targeted`) on a batch already checked by the caller:
/// returns the adversarial batch and a 0-d bool tensor, true when every
/// logit the model returned was finite.
pub fn apgd_fixed(model: &impl Model, x: &Tensor, y: &Tensor, p: ApgdParams) -> Result<(Tensor, Tensor)> {
    p.check()?;
    check_layout(x, y)?;
    let x = x.f_detach()?;
    let model = CheckedModel::new(model, None)?;
    let adv = masked_schedule(&model, &x, y, &p)?;
    Ok((adv, model.finite_flag(x.device())?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eval::apgd::ApgdLoss;
    use crate::eval::fixtures::linear_model_and_points;
    use crate::norm::Norm;

    fn params(norm: Norm, loss: ApgdLoss) -> ApgdParams {
        ApgdParams { eps: 0.2, steps: 10, norm, loss, targeted: false, n_target_classes: 1, restarts: 1, rho: 0.75 }
    }

    /// Draw-independent: the close point is fooled inside the ball, the far
    /// one comes back as it was (the bitwise comparison with the eager
    /// kernel needs the same random draws on both sides, so it lives in
    /// tests/attacks/test_graphs.py, where nothing else draws meanwhile).
    #[test]
    fn fools_the_close_point_and_returns_the_far_one_unchanged() {
        let (model, x, y) = linear_model_and_points();
        for norm in [Norm::Linf, Norm::L2] {
            for loss in [ApgdLoss::Ce, ApgdLoss::Dlr] {
                let (adv, finite) = apgd_fixed(&model, &x, &y, params(norm, loss)).unwrap();
                assert!(bool::try_from(finite).unwrap());
                assert!(f64::try_from((&adv - &x).abs().max()).unwrap() <= 0.2 + 1e-12);
                let logits = model(&adv).unwrap();
                assert_eq!(Vec::<i64>::try_from(logits.argmax(1, false)).unwrap()[0], 2, "{norm:?} {loss:?}");
                assert!(adv.get(1).equal(&x.get(1)), "{norm:?} {loss:?}");
            }
        }
    }
}
