//! Auto-PGD (Croce & Hein, 2020, arXiv:2003.01690, Algorithm 1), the gradient
//! attack of AutoAttack, with torchattacks 3.5.1's arithmetic:
//!
//! * step `z = P(x_k + eta_k * dir(g_k))`, then momentum
//!   `x_{k+1} = P(x_k + 0.75 (z - x_k) + 0.25 (x_k - x_{k-1}))` (no momentum at k = 0),
//!   where `P` clips to the ball (`min(max(., x - eps), x + eps)` for L-inf,
//!   radial for L2) and then to [0, 1];
//! * `eta_0 = 2 eps`; at each checkpoint (every `p_j` steps, `p_1 = 0.22 N`,
//!   shrinking by `0.03 N` to at least `0.06 N`) a sample's step is halved and
//!   it restarts from its highest-loss point when the loss rose in at most
//!   `rho` of the steps since the last checkpoint (condition 1, with
//!   AutoAttack's convention that the loss before the first step is 0), or when
//!   its step was not halved last time and its best loss did not improve
//!   (condition 2).
//!
//! Per-sample early stopping: a sample is final, and costs no more passes, as
//! soon as one iterate fools the model; that iterate is returned. Points the
//! model already misclassifies are returned unchanged. Every sample's
//! trajectory is exactly the one it would follow in a full-batch run.
pub mod fixed;
pub mod params;
pub mod run;

pub use crate::eval::apgd::params::{ApgdLoss, ApgdParams};

use crate::error::Result;
use crate::eval::apgd::run::{random_start, Checkpoints, Run};
use crate::eval::survivors::{checked, on_survivors, Schedule};
use crate::grad::grad;
use crate::model::{checked_logits, predict, Model};
use tch::{Kind, Tensor};

/// One forward and one backward: per-sample loss, predicted class and the
/// gradient of the summed loss. The only place the APGD loop calls the model.
pub(crate) fn probe(model: &impl Model, loss: ApgdLoss, x: &Tensor, y: &Tensor, t: Option<&Tensor>) -> Result<(Tensor, Tensor, Tensor)> {
    let xr = x.f_detach()?.f_set_requires_grad(true)?;
    let logits = checked_logits(model, &xr)?;
    let value = loss.value(&logits, y, t)?;
    let g = grad(&value.f_sum(None)?, &xr, false)?;
    Ok((value.f_detach()?, predict(&logits)?, g))
}

/// Writes the rows `fooled` of the run into `found` (positions in `run.idx`).
fn record(found: &mut Tensor, done: &mut Tensor, run: &Run, fooled: &Tensor) -> Result<()> {
    let rows = fooled.f_nonzero()?.f_squeeze_dim(1)?;
    if rows.numel() > 0 {
        let at = run.idx.f_index_select(0, &rows)?;
        *found = found.f_index_copy(0, &at, &run.adv.f_index_select(0, &rows)?)?;
        *done = done.f_index_fill(0, &at, 1)?;
    }
    Ok(())
}

/// The start of one APGD run: a random start, its probe, and the run's
/// state over every row of `x`; returns the state and the start's predicted
/// classes.
pub(crate) fn begin(model: &impl Model, x: &Tensor, y: &Tensor, t: Option<&Tensor>, p: &ApgdParams) -> Result<(Run, Tensor)> {
    let m = x.size().first().copied().unwrap_or(0);
    let adv = random_start(x, p)?;
    let (loss, pred, g) = probe(model, p.loss, &adv, y, t)?;
    let run = Run {
        idx: Tensor::f_arange(m, (Kind::Int64, x.device()))?,
        x: x.shallow_clone(),
        y: y.shallow_clone(),
        t: t.map(|t| t.shallow_clone()),
        lo: x.f_sub_scalar(p.eps)?,
        hi: x.f_add_scalar(p.eps)?,
        adv_old: adv.shallow_clone(),
        x_best: adv.shallow_clone(),
        adv,
        grad_best: g.shallow_clone(),
        grad: g,
        step: Tensor::f_full([m].as_slice(), 2.0 * p.eps, (x.kind(), x.device()))?,
        loss_best_last: loss.f_detach_copy()?,
        loss_best: loss,
        reduced_last: Tensor::f_ones([m].as_slice(), (Kind::Bool, x.device()))?,
        loss_prev: Tensor::f_zeros([m].as_slice(), (x.kind(), x.device()))?,
        rose: Vec::new(),
    };
    Ok((run, pred))
}

/// One APGD run from a random start. Returns `(fooled, adv)`: which samples
/// were fooled and, for those, the first fooling iterate.
fn single_run(model: &impl Model, x: &Tensor, y: &Tensor, t: Option<&Tensor>, p: &ApgdParams) -> Result<(Tensor, Tensor)> {
    let (mut run, pred) = begin(model, x, y, t, p)?;
    let mut found = run.adv.f_detach_copy()?;
    let m = x.size().first().copied().unwrap_or(0);
    let mut done = Tensor::f_zeros([m].as_slice(), (Kind::Bool, x.device()))?;
    let mut checks = Checkpoints::new(p);
    let mut fooled = pred.f_ne_tensor(&run.y)?;
    record(&mut found, &mut done, &run, &fooled)?;
    for i in 0..p.steps {
        let keep = fooled.f_logical_not()?.f_nonzero()?.f_squeeze_dim(1)?;
        if keep.numel() == 0 {
            break;
        }
        if keep.numel() < run.idx.numel() {
            run.retain(&keep)?;
        }
        run.advance(p, i == 0)?;
        let (loss, pred, g) = probe(model, p.loss, &run.adv, &run.y, run.t.as_ref())?;
        fooled = pred.f_ne_tensor(&run.y)?;
        // Recorded before a checkpoint can move `adv` back to the best point.
        record(&mut found, &mut done, &run, &fooled)?;
        run.observe(&loss, g)?;
        checks.after_step(&mut run, p.rho)?;
    }
    Ok((done, found))
}

/// Auto-PGD; with `targeted`, APGD-T. Returns per sample the first iterate
/// that fools the model over all runs (restarts, targets), run only on the
/// points still robust, or the input where none did.
pub fn apgd(model: &impl Model, x: &Tensor, y: &Tensor, p: ApgdParams) -> Result<Tensor> {
    p.check()?;
    let schedule = Schedule { targeted: p.targeted, n_target_classes: p.n_target_classes, restarts: p.restarts };
    checked(model, x, y, |model, x, labels| {
        on_survivors(model, x, labels, schedule, |xs, ys, ts, _| tch::with_grad(|| single_run(model, xs, ys, ts, &p)))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::norm::Norm;

    #[test]
    fn linear_model_is_fooled_inside_the_ball() {
        let (model, x, y) = crate::eval::fixtures::linear_model_and_points();
        for norm in [Norm::Linf, Norm::L2] {
            let p = ApgdParams {
                eps: 0.2,
                steps: 10,
                norm,
                loss: ApgdLoss::Dlr,
                targeted: false,
                n_target_classes: 1,
                restarts: 1,
                rho: 0.75,
            };
            let adv = apgd(&model, &x, &y, p).unwrap();
            let d = (&adv - &x).abs().max().double_value(&[]);
            assert!(d <= 0.2 + 1e-12);
            let pred = Vec::<i64>::try_from(adv.f_matmul(&Tensor::from_slice(&[1.0f64, -1.0]).reshape([2, 1])).unwrap().lt(0.0).to_kind(Kind::Int64).reshape([-1])).unwrap();
            assert_eq!(pred, vec![1, 0], "{norm:?}: the close point is fooled, the far one is not");
        }
    }
}
